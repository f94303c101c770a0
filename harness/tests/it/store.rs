//! Results in object storage (issue 10, part 4), against a real S3-compatible server: moto in
//! server mode, started by `scripts/moto.sh` (which installs it into a venv when it is missing),
//! one server per test, stopped by a guard even when the test fails. Nothing here mocks the client.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use fleetstorm::store::{self, Location, StoreEnv, StoreError};

/// A recognisable secret: it must never reach a message.
const SECRET: &str = "FLEETSTORM-TEST-SECRET-7f3a9c51";

/// One moto server, stopped on drop.
struct Moto {
    state: tempfile::TempDir,
    url: String,
}

fn moto_sh(state: &Path, args: &[&str]) -> Output {
    Command::new(root().join("scripts/moto.sh"))
        .args(args)
        .env("FLEETSTORM_MOTO_STATE", state)
        .output()
        .unwrap_or_else(|e| panic!("cannot run scripts/moto.sh: {e}"))
}

impl Moto {
    fn start() -> Moto {
        let state = tempfile::tempdir().unwrap();
        let o = moto_sh(state.path(), &["start"]);
        let url = String::from_utf8_lossy(&o.stdout).lines().last().unwrap_or_default().trim().to_string();
        let moto = Moto { state, url };
        assert!(
            o.status.success() && moto.url.starts_with("http://127.0.0.1:"),
            "moto could not be started: {}",
            text(&o)
        );
        moto
    }

    fn bucket(&self, name: &str) {
        let o = moto_sh(self.state.path(), &["bucket", name]);
        assert!(o.status.success(), "cannot create bucket {name}: {}", text(&o));
    }

    /// The variables that point a client at this server.
    fn vars(&self) -> Vec<(String, String)> {
        vars(&self.url)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let o = moto_sh(self.state.path(), &["stop"]);
        if !o.status.success() {
            eprintln!("moto.sh stop: {}", text(&o));
        }
    }
}

fn vars(endpoint: &str) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_ACCESS_KEY_ID", "AKIDFLEETSTORMTEST"),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_REGION", "us-east-1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The binary, with this machine's AWS configuration replaced by `vars` and its temporary
/// directory (where `--out s3://` stages) inside the test's.
fn fleetstorm(vars: &[(String, String)], tmp: &Path) -> Command {
    let mut c = bin();
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            c.env_remove(k);
        }
    }
    c.envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))).env("TMPDIR", tmp);
    c
}

fn quick(dir: &Path, name: &str) -> PathBuf {
    write(dir, "s.yaml", &small_scenario(name, 20, "2s").replace("drain: 20s", "drain: 3s"))
}

/// Every file under `dir`, relative, sorted, with its bytes.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().to_string();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// The run's local directory, from the summary's `report` line.
fn report_dir(stdout: &str) -> Option<PathBuf> {
    let line = stdout.lines().find(|l| l.trim_start().starts_with("report "))?;
    let path = line.trim_start().strip_prefix("report")?.trim();
    Path::new(path).parent().map(Path::to_path_buf)
}

#[test]
fn upload_and_download_round_trip_byte_identical_with_nested_paths() {
    let moto = Moto::start();
    moto.bucket("fleetstorm");
    let env = StoreEnv::Vars(moto.vars());
    let src = tempfile::tempdir().unwrap();
    let files: &[(&str, Vec<u8>)] = &[
        ("report.json", br#"{"status":"completed"}"#.to_vec()),
        ("summary.md", "# résumé\n".as_bytes().to_vec()),
        ("hlog/produce.hlog", (0..=255u8).cycle().take(100_000).collect()),
        ("charts/a/b/deep.svg", b"<svg/>".to_vec()),
        ("empty.txt", Vec::new()),
        // Above the multipart threshold (32 MiB): uploaded in 8 MiB parts.
        ("big.bin", (0..40u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect()),
    ];
    for (name, bytes) in files {
        let p = src.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    let to = Location::parse_in("s3://fleetstorm/runs/r1/", &env).unwrap();
    let written = store::upload_dir(src.path(), &to).unwrap();
    let mut expected: Vec<String> = files.iter().map(|(n, _)| format!("s3://fleetstorm/runs/r1/{n}")).collect();
    expected.sort();
    // report.json last: a half-uploaded directory is never taken for a result.
    expected.retain(|n| !n.ends_with("r1/report.json"));
    expected.push("s3://fleetstorm/runs/r1/report.json".into());
    assert_eq!(written, expected);

    let back = tempfile::tempdir().unwrap();
    let got = store::download_dir(&Location::parse_in("s3://fleetstorm/runs/r1", &env).unwrap(), back.path()).unwrap();
    assert_eq!(got.len(), files.len());
    assert!(tree(src.path()) == tree(back.path()), "the downloaded tree differs from the uploaded one");

    // A prefix is a directory, not a string prefix: runs/r1 does not take runs/r10.
    std::fs::write(src.path().join("report.json"), b"r10").unwrap();
    store::upload_dir(src.path(), &Location::parse_in("s3://fleetstorm/runs/r10", &env).unwrap()).unwrap();
    let again = tempfile::tempdir().unwrap();
    let got = store::download_dir(&Location::parse_in("s3://fleetstorm/runs/r1", &env).unwrap(), again.path()).unwrap();
    assert_eq!(got.len(), files.len());
    assert_eq!(std::fs::read(again.path().join("report.json")).unwrap(), files[0].1);

    // Nothing under a prefix is an error that names it.
    let e =
        store::download_dir(&Location::parse_in("s3://fleetstorm/nothing", &env).unwrap(), again.path()).unwrap_err();
    assert!(matches!(e, StoreError::NoResults { .. }) && e.to_string().contains("s3://fleetstorm/nothing"), "{e}");
}

#[test]
fn a_run_with_out_s3_lands_its_files_in_the_bucket() {
    let _g = serial();
    let moto = Moto::start();
    moto.bucket("fleetstorm");
    let dir = tempfile::tempdir().unwrap();
    let scenario = quick(dir.path(), "s3run");
    let o = fleetstorm(&moto.vars(), dir.path())
        .arg("run")
        .arg(&scenario)
        .args(["--out", "s3://fleetstorm/campaign/run1"])
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(stderr.contains("files to s3://fleetstorm/campaign/run1/"), "{stderr}");
    // The staging directory was under the (test's) temporary directory, and is gone after the upload.
    let staged = report_dir(&stdout).unwrap_or_else(|| panic!("no report line: {stdout}"));
    assert!(staged.starts_with(dir.path()) && !staged.exists(), "{}", staged.display());

    let back = tempfile::tempdir().unwrap();
    let env = StoreEnv::Vars(moto.vars());
    store::download_dir(&Location::parse_in("s3://fleetstorm/campaign/run1", &env).unwrap(), back.path()).unwrap();
    let names: Vec<String> = tree(back.path()).into_iter().map(|(n, _)| n).collect();
    for want in ["report.json", "summary.md", "report.html"] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    assert!(names.iter().any(|n| n.ends_with(".hlog")), "no .hlog in {names:?}");
    assert!(names.iter().any(|n| n.ends_with(".svg")), "no chart in {names:?}");
    let r = read_report(back.path());
    assert_eq!(r.status, fleetstorm::report::Status::Completed);
    assert!(r.produce.acked > 0);
    assert!(!text(&o).contains(SECRET));
}

#[test]
fn an_upload_that_fails_exits_4_keeps_the_local_copy_and_prints_no_secret() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let scenario = quick(dir.path(), "s3fail");
    let check = |o: &Output, url: &str| {
        let all = text(o);
        assert_eq!(o.status.code(), Some(4), "{all}");
        assert!(all.contains(url), "the message does not name {url}: {all}");
        assert!(!all.contains(SECRET), "the secret leaked: {all}");
        assert!(!all.contains("AKIDFLEETSTORMTEST"), "the access key leaked: {all}");
        let kept = report_dir(&String::from_utf8_lossy(&o.stdout)).unwrap_or_else(|| panic!("no report line: {all}"));
        assert!(kept.join("report.json").is_file(), "{}", kept.display());
        assert!(all.contains(&format!("the local copy is kept in {}", kept.display())), "{all}");
    };

    // An endpoint where nothing listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let o = fleetstorm(&vars(&format!("http://127.0.0.1:{port}")), dir.path())
        .arg("run")
        .arg(&scenario)
        .args(["--out", "s3://fleetstorm/run1"])
        .output()
        .unwrap();
    check(&o, "s3://fleetstorm/run1");

    // A real server, but no such bucket.
    let moto = Moto::start();
    let o = fleetstorm(&moto.vars(), dir.path())
        .arg("run")
        .arg(&scenario)
        .args(["--out", "s3://no-such-bucket/run2"])
        .output()
        .unwrap();
    check(&o, "s3://no-such-bucket/run2");

    // An unsupported scheme is refused before the run (exit 2), naming the URL.
    let o =
        fleetstorm(&moto.vars(), dir.path()).arg("run").arg(&scenario).args(["--out", "gs://b/p"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("gs://b/p") && text(&o).contains("unsupported scheme"), "{}", text(&o));
}

#[test]
fn fetch_inputs_finds_the_shard_directories_under_a_prefix() {
    let moto = Moto::start();
    moto.bucket("fleetstorm");
    let env = StoreEnv::Vars(moto.vars());
    let src = tempfile::tempdir().unwrap();
    let put = |rel: &str, bytes: &[u8]| {
        let p = src.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    };
    for i in 0..2 {
        put(&format!("shard-{i}/report.json"), format!("{{\"shard\":{i}}}").as_bytes());
        put(&format!("shard-{i}/produce.hlog"), format!("hlog {i}").as_bytes());
        put(&format!("shard-{i}/charts/p99.svg"), b"<svg/>");
    }
    put("notes/readme.txt", b"not a shard");
    put("index.txt", b"campaign index");
    store::upload_dir(src.path(), &Location::parse_in("s3://fleetstorm/campaign", &env).unwrap()).unwrap();
    // A sibling whose name starts the same is not under the prefix.
    let other = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(other.path().join("shard-9")).unwrap();
    std::fs::write(other.path().join("shard-9/report.json"), b"{}").unwrap();
    store::upload_dir(other.path(), &Location::parse_in("s3://fleetstorm/campaign-old", &env).unwrap()).unwrap();

    let local = tempfile::tempdir().unwrap();
    std::fs::write(local.path().join("report.json"), b"{}").unwrap();
    let args = vec![
        "s3://fleetstorm/campaign/".to_string(),
        "s3://fleetstorm/campaign/shard-1".to_string(),
        local.path().display().to_string(),
    ];
    let (dirs, guard) = store::fetch_inputs_in(&args, &env).unwrap();
    let tmp = guard.path().unwrap().to_path_buf();
    assert_eq!(dirs.len(), 4, "{dirs:?}");
    assert!(dirs[0].ends_with("0/shard-0") && dirs[1].ends_with("0/shard-1"), "{dirs:?}");
    assert!(dirs[..3].iter().all(|d| d.starts_with(&tmp)), "{dirs:?}");
    assert_eq!(dirs[3], local.path());
    for (i, d) in [(0, &dirs[0]), (1, &dirs[1]), (1, &dirs[2])] {
        assert_eq!(tree(d), tree(&src.path().join(format!("shard-{i}"))), "{}", d.display());
    }
    drop(guard);
    assert!(!tmp.exists(), "the guard left {}", tmp.display());

    // A prefix with no result directory says what it holds.
    let e = store::fetch_inputs_in(&["s3://fleetstorm/campaign/notes".to_string()], &env).unwrap_err().to_string();
    assert!(e.contains("s3://fleetstorm/campaign/notes: no report.json") && e.contains("readme.txt"), "{e}");
}
