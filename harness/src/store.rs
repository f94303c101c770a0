//! Where results live when pods cannot share a disk: a local directory or an S3-compatible object
//! store (`s3://BUCKET/PREFIX`), through the `object_store` crate.
//!
//! `run --out s3://...` writes into a local staging directory as usual and uploads it once the
//! report is written ([`RunOut`]); `merge` turns its arguments into local directories with
//! [`fetch_inputs`], so it only ever reads local files. Credentials and the endpoint come from the
//! environment (`AmazonS3Builder::from_env`: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `AWS_REGION`/`AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL`/`AWS_ENDPOINT`,
//! `AWS_ALLOW_HTTP`, web identity through `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`); see
//! docs/object-storage.md.
//!
//! The API is blocking: each call drives `object_store`'s futures on one small current-thread
//! tokio runtime, kept for the process so that the HTTP connection pool outlives a call. Errors
//! never carry a credential: every message built from the client's errors has the values of the
//! secret variables replaced (the client's `Debug` is never printed; [`Location`]'s shows the URL).

use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::TryStreamExt as _;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjPath;
use object_store::{BackoffConfig, ObjectStore, ObjectStoreExt as _, PutPayload, RetryConfig, WriteMultipart};

/// The file a result directory is recognised by.
const REPORT: &str = "report.json";

/// Files larger than this are uploaded in parts (S3 refuses a single PUT above 5 GiB, and a part
/// upload keeps memory bounded); smaller ones in one PUT.
const MULTIPART_ABOVE: u64 = 32 << 20;

/// Environment variables whose values never appear in a message.
const SECRET_VARS: &[&str] =
    &["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SSE_CUSTOMER_KEY_BASE64"];

/// Why a location could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "{url}: unsupported scheme `{scheme}://`: give a local path or s3://BUCKET/PREFIX (S3 or an S3-compatible \
         server such as MinIO; GCS and Azure are not supported yet)"
    )]
    Scheme { url: String, scheme: String },
    #[error("{url}: {reason}")]
    Url { url: String, reason: String },
    #[error("{url}: cannot set up the object-store client: {reason}")]
    Config { url: String, reason: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{url}: {op} failed: {reason}")]
    Remote { url: String, op: String, reason: String },
    #[error("{url}: no {REPORT} there nor in any of its immediate subdirectories{found}")]
    NoResults { url: String, found: String },
    #[error("the object-store client's runtime could not start: {0}")]
    Runtime(String),
}

/// Where configuration and credentials come from: the process environment, or given variables
/// (tests, which must not change the environment of a process running other tests).
#[derive(Clone, Debug, Default)]
pub enum StoreEnv {
    #[default]
    Process,
    Vars(Vec<(String, String)>),
}

impl StoreEnv {
    fn vars(&self) -> Vec<(String, String)> {
        match self {
            StoreEnv::Process => std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .filter(|(k, _)| k.starts_with("AWS_"))
                .collect(),
            StoreEnv::Vars(v) => v.clone(),
        }
    }

    fn secrets(&self) -> Vec<String> {
        let vars = self.vars();
        let mut s: Vec<String> = vars
            .into_iter()
            .filter(|(k, v)| SECRET_VARS.contains(&k.as_str()) && v.len() >= 4)
            .map(|(_, v)| v)
            .collect();
        // Longest first, so that a secret containing another is replaced whole.
        s.sort_by_key(|v| std::cmp::Reverse(v.len()));
        s
    }
}

/// A local directory, or a prefix in an S3 bucket.
#[derive(Clone)]
pub enum Location {
    Local(PathBuf),
    Object {
        /// `s3://bucket/prefix`, without a trailing slash: how messages name it.
        url: String,
        store: Arc<dyn ObjectStore>,
        /// The key prefix inside the bucket (empty for the whole bucket).
        prefix: ObjPath,
        /// Values scrubbed from every message.
        secrets: Arc<Vec<String>>,
    },
}

impl fmt::Debug for Location {
    // Never the client's Debug: it holds the credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Location({self})")
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::Object { url, .. } => f.write_str(url),
        }
    }
}

impl Location {
    /// `s3://BUCKET[/PREFIX]` is object storage (`s3a://` too), configured from the environment
    /// through `AmazonS3Builder::from_env`; `file://PATH` and anything without a `scheme://` is a
    /// local path; any other scheme is an error.
    pub fn parse(s: &str) -> Result<Location, StoreError> {
        Location::parse_in(s, &StoreEnv::Process)
    }

    /// [`Location::parse`], with the configuration taken from `env`.
    pub fn parse_in(s: &str, env: &StoreEnv) -> Result<Location, StoreError> {
        let Some((scheme, rest)) = split_scheme(s) else {
            return Ok(Location::Local(PathBuf::from(s)));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "file" => Ok(Location::Local(PathBuf::from(rest))),
            "s3" | "s3a" => {
                let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
                let url_err = |reason: &str| StoreError::Url { url: s.to_string(), reason: reason.to_string() };
                if bucket.is_empty() {
                    return Err(url_err("no bucket: expected s3://BUCKET/PREFIX"));
                }
                let key = key.trim_matches('/');
                let prefix = ObjPath::parse(key)
                    .map_err(|e| url_err(&format!("invalid key prefix `{key}` ({e}): no empty, `.` or `..` parts")))?;
                let url = if key.is_empty() { format!("s3://{bucket}") } else { format!("s3://{bucket}/{key}") };
                let builder = match env {
                    StoreEnv::Process => AmazonS3Builder::from_env(),
                    StoreEnv::Vars(vars) => vars.iter().fold(AmazonS3Builder::new(), |b, (k, v)| {
                        // The same rule as `from_env`: AWS_* names that the builder knows.
                        match k.strip_prefix("AWS_").and(k.to_ascii_lowercase().parse::<AmazonS3ConfigKey>().ok()) {
                            Some(key) => b.with_config(key, v),
                            None => b,
                        }
                    }),
                };
                let secrets = Arc::new(env.secrets());
                let store = builder
                    .with_bucket_name(bucket)
                    .with_retry(retry())
                    .build()
                    .map_err(|e| StoreError::Config { url: url.clone(), reason: scrub(&secrets, &chain(&e)) })?;
                Ok(Location::Object { url, store: Arc::new(store), prefix, secrets })
            }
            other => Err(StoreError::Scheme { url: s.to_string(), scheme: other.to_string() }),
        }
    }

    /// Whether this is object storage (not a local path).
    pub fn is_remote(&self) -> bool {
        matches!(self, Location::Object { .. })
    }
}

/// A request is retried 5 times, backing off (jittered) from 0.2 s up to 5 s, within 2 minutes: an
/// unreachable endpoint is given up after seconds; `object_store`'s default waits up to 3 minutes.
fn retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        max_retries: 5,
        retry_timeout: Duration::from_secs(120),
    }
}

/// `scheme` and the rest of `scheme://rest`, when `s` starts with a URL scheme.
fn split_scheme(s: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = s.split_once("://")?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic() && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)))
        .then_some((scheme, rest))
}

/// An error and its causes on one line, each cause once.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let t = s.to_string();
        if !text.contains(&t) {
            text = format!("{text}: {t}");
        }
        source = s.source();
    }
    text
}

fn scrub(secrets: &[String], text: &str) -> String {
    secrets.iter().fold(text.to_string(), |t, s| t.replace(s.as_str(), "[redacted]"))
}

/// The process's one runtime for object-store calls (current-thread: the calls are few and
/// sequential; kept so that pooled connections stay usable from one call to the next).
fn block_on<F: std::future::Future>(f: F) -> Result<F::Output, StoreError> {
    static RT: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    let rt = RT
        .get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| StoreError::Runtime(e.clone()))?;
    Ok(rt.block_on(f))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.to_path_buf(), source }
}

/// Every file under `dir`, as `/`-separated names relative to it, sorted. Symbolic links to
/// files are followed; links to directories are not (no cycles).
fn files_under(dir: &Path) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((d, rel)) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(io(&d))? {
            let e = e.map_err(io(&d))?;
            let name = e.file_name().into_string().map_err(|n| StoreError::Io {
                path: d.join(&n),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, "the file name is not UTF-8"),
            })?;
            let rel = if rel.is_empty() { name } else { format!("{rel}/{name}") };
            let ft = e.file_type().map_err(io(&e.path()))?;
            if ft.is_dir() {
                stack.push((e.path(), rel));
            } else if e.path().is_file() {
                out.push(rel);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The key of `rel` (a `/`-separated relative name) under `prefix`.
fn key(prefix: &ObjPath, rel: &str) -> ObjPath {
    ObjPath::from_iter(prefix.parts().chain(rel.split('/').map(object_store::path::PathPart::from)))
}

/// Upload every file under `local` to `to`, keeping relative names (`a/b.hlog` goes to
/// `PREFIX/a/b.hlog`); to a local `to`, copy. Returns what was written, as URLs or paths, in
/// name order except that the top-level `report.json` goes last: a directory is recognised as a
/// result by its `report.json` ([`fetch_inputs`]), so an interrupted upload never looks complete.
pub fn upload_dir(local: &Path, to: &Location) -> Result<Vec<String>, StoreError> {
    let mut files = files_under(local)?;
    files.sort_by_key(|f| f == REPORT);
    match to {
        Location::Local(dir) => {
            let mut written = Vec::new();
            for rel in &files {
                let dest = dir.join(rel);
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent).map_err(io(parent))?;
                }
                std::fs::copy(local.join(rel), &dest).map_err(io(&dest))?;
                written.push(dest.display().to_string());
            }
            Ok(written)
        }
        Location::Object { url, store, prefix, secrets } => block_on(async {
            let mut written = Vec::new();
            for rel in &files {
                let path = local.join(rel);
                let dest = format!("{url}/{rel}");
                let failed = |op: &str, e: &dyn std::error::Error| StoreError::Remote {
                    url: dest.clone(),
                    op: op.to_string(),
                    reason: scrub(secrets, &chain(e)),
                };
                let len = std::fs::metadata(&path).map_err(io(&path))?.len();
                if len <= MULTIPART_ABOVE {
                    let bytes = std::fs::read(&path).map_err(io(&path))?;
                    store.put(&key(prefix, rel), PutPayload::from(bytes)).await.map_err(|e| failed("upload", &e))?;
                } else {
                    put_in_parts(store.as_ref(), &key(prefix, rel), &path).await.map_err(|e| match e {
                        Part::Io(source) => StoreError::Io { path: path.clone(), source },
                        Part::Store(e) => failed("multipart upload", &e),
                    })?;
                }
                written.push(dest);
            }
            Ok(written)
        })?,
    }
}

enum Part {
    Io(std::io::Error),
    Store(object_store::Error),
}

/// A large file, read and sent 8 MiB at a time (at most a few parts in flight), aborted on error.
async fn put_in_parts(store: &dyn ObjectStore, key: &ObjPath, path: &Path) -> Result<(), Part> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path).map_err(Part::Io)?;
    let upload = store.put_multipart(key).await.map_err(Part::Store)?;
    let mut w = WriteMultipart::new_with_chunk_size(upload, 8 << 20);
    let mut buf = vec![0u8; 8 << 20];
    loop {
        let n = match file.read(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                let _ = w.abort().await;
                return Err(Part::Io(e));
            }
        };
        if n == 0 {
            break;
        }
        if let Err(e) = w.wait_for_capacity(4).await {
            let _ = w.abort().await;
            return Err(Part::Store(e));
        }
        w.write(&buf[..n]);
    }
    w.finish().await.map(|_| ()).map_err(Part::Store)
}

/// Download everything under `from` into `into` (created if missing), keeping relative names;
/// from a local `from`, copy. Returns the files written, sorted. Nothing there is an error (a
/// mistyped prefix must not look like an empty result).
pub fn download_dir(from: &Location, into: &Path) -> Result<Vec<PathBuf>, StoreError> {
    std::fs::create_dir_all(into).map_err(io(into))?;
    match from {
        Location::Local(dir) => {
            let mut written = Vec::new();
            for rel in files_under(dir)? {
                let dest = into.join(&rel);
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent).map_err(io(parent))?;
                }
                std::fs::copy(dir.join(&rel), &dest).map_err(io(&dest))?;
                written.push(dest);
            }
            Ok(written)
        }
        Location::Object { url, store, prefix, secrets } => block_on(async {
            let remote = |op: &str, e: &dyn std::error::Error| StoreError::Remote {
                url: url.clone(),
                op: op.to_string(),
                reason: scrub(secrets, &chain(e)),
            };
            let listed: Vec<_> = store.list(opt(prefix)).try_collect().await.map_err(|e| remote("list", &e))?;
            if listed.is_empty() {
                return Err(StoreError::NoResults { url: url.clone(), found: " (nothing is stored under it)".into() });
            }
            let mut written = Vec::new();
            for meta in listed {
                let Some(parts) = meta.location.prefix_match(prefix) else { continue };
                let rel: Vec<String> = parts.map(|p| p.as_ref().to_string()).collect();
                let dest = safe_join(into, &rel).ok_or_else(|| StoreError::Url {
                    url: format!("{url}/{}", rel.join("/")),
                    reason: "this key cannot be a local file name".into(),
                })?;
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent).map_err(io(parent))?;
                }
                let bytes =
                    async { store.get(&meta.location).await?.bytes().await }.await.map_err(|e| StoreError::Remote {
                        url: format!("{url}/{}", rel.join("/")),
                        op: "download".into(),
                        reason: scrub(secrets, &chain(&e)),
                    })?;
                std::fs::write(&dest, &bytes).map_err(io(&dest))?;
                written.push(dest);
            }
            written.sort();
            Ok(written)
        })?,
    }
}

fn opt(prefix: &ObjPath) -> Option<&ObjPath> {
    (!prefix.as_ref().is_empty()).then_some(prefix)
}

/// `into` joined with each part, if every part is a plain file name (no `..`, no root, no
/// separator): a key never writes outside `into`.
fn safe_join(into: &Path, parts: &[String]) -> Option<PathBuf> {
    if parts.is_empty() {
        return None;
    }
    let mut out = into.to_path_buf();
    for p in parts {
        let mut c = Path::new(p).components();
        match (c.next(), c.next()) {
            (Some(Component::Normal(n)), None) if n == p.as_str() => out.push(n),
            _ => return None,
        }
    }
    Some(out)
}

/// A temporary directory removed when dropped (where [`fetch_inputs`] downloads to). Holds
/// nothing when every input was local.
#[derive(Debug, Default)]
pub struct TempDirGuard(Option<tempfile::TempDir>);

impl TempDirGuard {
    /// The directory, if one was made.
    pub fn path(&self) -> Option<&Path> {
        self.0.as_ref().map(tempfile::TempDir::path)
    }

    fn dir(&mut self) -> Result<PathBuf, StoreError> {
        if self.0.is_none() {
            let tmp = std::env::temp_dir();
            self.0 = Some(tempfile::Builder::new().prefix("fleetstorm-inputs-").tempdir().map_err(io(&tmp))?);
        }
        self.path().map(Path::to_path_buf).ok_or_else(|| StoreError::Runtime("no temporary directory".into()))
    }
}

/// `merge`'s inputs as local directories: each argument is a local path or an `s3://` URL.
///
/// The rule, for either kind: an argument holding `report.json` directly is one result
/// directory; otherwise each of its immediate subdirectories (for a URL, each key prefix one `/`
/// level down) holding `report.json` directly is one, in name order, and subdirectories without
/// one are skipped; an argument with none of either is an error. A local argument that is not a
/// directory (or holds `report.json` itself) is passed through unchanged, for `merge` to judge;
/// URLs are downloaded (everything under each result prefix, nested paths kept) into one
/// temporary directory that lives as long as the returned guard.
pub fn fetch_inputs(args: &[String]) -> Result<(Vec<PathBuf>, TempDirGuard), StoreError> {
    fetch_inputs_in(args, &StoreEnv::Process)
}

/// [`fetch_inputs`], with the object-store configuration taken from `env`.
pub fn fetch_inputs_in(args: &[String], env: &StoreEnv) -> Result<(Vec<PathBuf>, TempDirGuard), StoreError> {
    let mut guard = TempDirGuard::default();
    let mut dirs = Vec::new();
    for (i, arg) in args.iter().enumerate() {
        match Location::parse_in(arg, env)? {
            Location::Local(p) => dirs.extend(local_results(p)?),
            remote @ Location::Object { .. } => {
                let into = guard.dir()?.join(format!("{i}"));
                for (name, loc) in remote_results(&remote)? {
                    let d = if name.is_empty() { into.clone() } else { into.join(&name) };
                    download_dir(&loc, &d)?;
                    dirs.push(d);
                }
            }
        }
    }
    Ok((dirs, guard))
}

fn local_results(p: PathBuf) -> Result<Vec<PathBuf>, StoreError> {
    if !p.is_dir() || p.join(REPORT).exists() {
        return Ok(vec![p]);
    }
    let mut subs: Vec<PathBuf> = std::fs::read_dir(&p)
        .map_err(io(&p))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|s| s.is_dir() && s.join(REPORT).is_file())
        .collect();
    if subs.is_empty() {
        // Not ours to judge: merge says what is missing.
        return Ok(vec![p]);
    }
    subs.sort();
    Ok(subs)
}

/// The result prefixes under a URL, by the rule of [`fetch_inputs`]: ("", itself) or each
/// (subdirectory name, its location).
fn remote_results(loc: &Location) -> Result<Vec<(String, Location)>, StoreError> {
    let Location::Object { url, store, prefix, secrets } = loc else {
        return Ok(Vec::new());
    };
    let listing = block_on(store.list_with_delimiter(opt(prefix)))?.map_err(|e| StoreError::Remote {
        url: url.clone(),
        op: "list".into(),
        reason: scrub(secrets, &chain(&e)),
    })?;
    if listing.objects.iter().any(|o| o.location.filename() == Some(REPORT)) {
        return Ok(vec![(String::new(), loc.clone())]);
    }
    let mut found = Vec::new();
    let mut skipped = Vec::new();
    for sub in &listing.common_prefixes {
        let Some(name) = sub.filename().map(str::to_string) else { continue };
        let sub_url = format!("{url}/{name}");
        let has_report = block_on(store.head(&sub.clone().join(REPORT)))?;
        match has_report {
            Ok(_) => found.push((
                name,
                Location::Object { url: sub_url, store: store.clone(), prefix: sub.clone(), secrets: secrets.clone() },
            )),
            Err(object_store::Error::NotFound { .. }) => skipped.push(name),
            Err(e) => {
                return Err(StoreError::Remote {
                    url: format!("{sub_url}/{REPORT}"),
                    op: "look-up".into(),
                    reason: scrub(secrets, &chain(&e)),
                });
            }
        }
    }
    if found.is_empty() {
        let mut seen: Vec<String> =
            listing.objects.iter().filter_map(|o| o.location.filename()).map(String::from).collect();
        seen.extend(skipped.iter().map(|s| format!("{s}/")));
        let found = if seen.is_empty() {
            " (nothing is stored under it)".to_string()
        } else {
            format!(" (it holds {})", seen.join(", "))
        };
        return Err(StoreError::NoResults { url: url.clone(), found });
    }
    for s in &skipped {
        tracing::warn!("{url}/{s}/ holds no {REPORT}: not an input");
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

/// `run --out`: a local directory, or a URL the run's files are uploaded to from a local staging
/// directory once the report is written.
#[derive(Debug)]
pub enum RunOut {
    /// `--out DIR` or the default directory: nothing to do after the run.
    Local(Option<PathBuf>),
    /// `--out s3://...`: the run writes into `staging`, a fresh directory under the system's
    /// temporary directory, which is removed after a complete upload and kept otherwise.
    Staged { to: Location, staging: PathBuf },
}

impl RunOut {
    /// Resolve `--out`; an unsupported scheme or a bad URL is an error before the run starts.
    pub fn resolve(out: Option<&Path>) -> Result<RunOut, StoreError> {
        let Some(s) = out.and_then(Path::to_str) else {
            return Ok(RunOut::Local(out.map(Path::to_path_buf)));
        };
        match Location::parse(s)? {
            Location::Local(_) => Ok(RunOut::Local(out.map(Path::to_path_buf))),
            to => {
                let tmp = std::env::temp_dir();
                let staging = tempfile::Builder::new().prefix("fleetstorm-run-").tempdir().map_err(io(&tmp))?.keep();
                Ok(RunOut::Staged { to, staging })
            }
        }
    }

    /// Where the run writes.
    pub fn dir(&self) -> Option<PathBuf> {
        match self {
            RunOut::Local(d) => d.clone(),
            RunOut::Staged { staging, .. } => Some(staging.clone()),
        }
    }

    /// After the report is written in `dir`: upload it, say where on stderr, remove the staging
    /// directory. On failure the local copy stays; the caller says where (exit 4).
    pub fn publish(&self, dir: &Path) -> Result<(), StoreError> {
        let RunOut::Staged { to, staging } = self else { return Ok(()) };
        let written = upload_dir(dir, to)?;
        eprintln!("uploaded {} files to {to}/", written.len());
        if dir == staging.as_path()
            && let Err(e) = std::fs::remove_dir_all(staging)
        {
            tracing::warn!("could not remove the staging directory {}: {e}", staging.display());
        }
        Ok(())
    }
}

impl Drop for RunOut {
    /// A staging directory the run never wrote into (it did not start) goes; one with files stays.
    fn drop(&mut self) {
        if let RunOut::Staged { staging, .. } = self {
            let _ = std::fs::remove_dir(staging);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(secret: &str) -> StoreEnv {
        StoreEnv::Vars(vec![
            ("AWS_ACCESS_KEY_ID".into(), "AKIDEXAMPLE".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), secret.into()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_ENDPOINT_URL".into(), "http://127.0.0.1:9".into()),
            ("AWS_ALLOW_HTTP".into(), "true".into()),
        ])
    }

    #[test]
    fn urls_and_paths_are_told_apart() {
        let e = env("s3cr3t-value");
        for local in ["reports/x", "/abs/dir", "./s3:/x", "s3", "C:\\x", "dir/s3://y"] {
            assert!(matches!(Location::parse_in(local, &e).unwrap(), Location::Local(_)), "{local}");
        }
        assert!(
            matches!(Location::parse_in("file:///tmp/x", &e).unwrap(), Location::Local(p) if p == Path::new("/tmp/x"))
        );
        let Location::Object { url, prefix, .. } = Location::parse_in("s3://bucket/a/b/", &e).unwrap() else {
            panic!("not object storage")
        };
        assert_eq!((url.as_str(), prefix.as_ref()), ("s3://bucket/a/b", "a/b"));
        let Location::Object { url, prefix, .. } = Location::parse_in("s3://bucket", &e).unwrap() else {
            panic!("not object storage")
        };
        assert_eq!((url.as_str(), prefix.as_ref()), ("s3://bucket", ""));
    }

    #[test]
    fn unknown_schemes_and_bad_urls_are_clear_errors() {
        let e = env("s3cr3t-value");
        let msg = Location::parse_in("gs://b/p", &e).unwrap_err().to_string();
        assert!(msg.contains("gs://b/p") && msg.contains("unsupported scheme `gs://`"), "{msg}");
        let msg = Location::parse_in("s3:///p", &e).unwrap_err().to_string();
        assert!(msg.contains("no bucket"), "{msg}");
        let msg = Location::parse_in("s3://b/a/../c", &e).unwrap_err().to_string();
        assert!(msg.contains("invalid key prefix"), "{msg}");
    }

    #[test]
    fn no_message_or_debug_output_carries_a_credential() {
        let secret = "Sup3rS3cretValueXYZ";
        let e = env(secret);
        let loc = Location::parse_in("s3://b/p", &e).unwrap();
        assert_eq!(format!("{loc:?}"), "Location(s3://b/p)");
        let secrets = e.secrets();
        let text = scrub(&secrets, &format!("denied for AKIDEXAMPLE with {secret}"));
        assert_eq!(text, "denied for [redacted] with [redacted]");
    }

    #[test]
    fn keys_never_escape_the_download_directory() {
        let into = Path::new("/tmp/in");
        assert_eq!(safe_join(into, &["a".into(), "b.hlog".into()]), Some(PathBuf::from("/tmp/in/a/b.hlog")));
        for bad in [vec!["..".to_string()], vec!["a/b".into()], vec!["/etc".into()], vec![], vec![".".into()]] {
            assert_eq!(safe_join(into, &bad), None, "{bad:?}");
        }
    }

    #[test]
    fn local_inputs_expand_to_their_result_subdirectories() {
        let d = tempfile::tempdir().unwrap();
        for s in ["shard-1", "shard-0"] {
            std::fs::create_dir_all(d.path().join(s)).unwrap();
            std::fs::write(d.path().join(s).join("report.json"), "{}").unwrap();
        }
        std::fs::create_dir_all(d.path().join("notes")).unwrap();
        let args = vec![d.path().display().to_string(), d.path().join("shard-0").display().to_string()];
        let (dirs, guard) = fetch_inputs_in(&args, &StoreEnv::Vars(Vec::new())).unwrap();
        assert_eq!(dirs, vec![d.path().join("shard-0"), d.path().join("shard-1"), d.path().join("shard-0")]);
        assert!(guard.path().is_none());
    }

    #[test]
    fn local_round_trip_keeps_nested_names() {
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("a/b")).unwrap();
        std::fs::write(src.path().join("a/b/c.hlog"), b"xyz").unwrap();
        std::fs::write(src.path().join("report.json"), b"{}").unwrap();
        let dst = tempfile::tempdir().unwrap();
        let written = upload_dir(src.path(), &Location::Local(dst.path().to_path_buf())).unwrap();
        assert_eq!(written.len(), 2);
        assert_eq!(std::fs::read(dst.path().join("a/b/c.hlog")).unwrap(), b"xyz");
        assert_eq!(files_under(dst.path()).unwrap(), vec!["a/b/c.hlog".to_string(), "report.json".into()]);
    }
}
