//! AWS credentials for MSK IAM: the standard chain, through `aws-config` (AWS's own crate), in its
//! order: environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), the
//! shared files (`~/.aws/credentials`, `~/.aws/config`, `AWS_SHARED_CREDENTIALS_FILE`,
//! `AWS_CONFIG_FILE`, `AWS_PROFILE`; static keys and `role_arn` chains), web identity
//! (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`: IRSA on EKS), container credentials
//! (`AWS_CONTAINER_CREDENTIALS_FULL_URI` + `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`: EKS Pod
//! Identity; ECS task roles), then EC2 instance metadata (IMDSv2).
//!
//! Built without `aws-config`'s default features: its default HTTPS client builds `aws-lc-sys`
//! (a C/CMake build this project already declined for `object_store`), so HTTP goes through
//! `aws-smithy-http-client` with rustls on *ring*, already in the tree. Also left out: SSO
//! profiles and `credential_process` (features `sso` and `credentials-process`).
//!
//! librdkafka asks for a token from its client threads; the chain is async, so it runs on a
//! current-thread runtime of its own (its HTTP connections live there between lookups), driven on
//! a scoped thread so that it is never inside a caller's runtime, and shut down in the background
//! when the chain is dropped (wherever the last client goes). Credentials are reused while they
//! stay valid for longer than a token lives.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aws_config::Region;
use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::provider_config::ProviderConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;
use aws_smithy_http_client::tls;

use super::AuthError;
use super::msk_iam::TOKEN_EXPIRES;

/// How long credentials without an expiry (static keys) are reused before the chain is asked
/// again (a rotated shared credentials file is picked up within this).
const STATIC_REUSE: Duration = Duration::from_secs(300);

/// The standard AWS credential chain, resolved lazily and cached.
pub struct Chain {
    /// Always `Some` until dropped.
    runtime: Option<tokio::runtime::Runtime>,
    chain: DefaultCredentialsChain,
    cached: Mutex<Option<(Credentials, SystemTime)>>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Chain")
    }
}

impl Chain {
    /// The chain for `region` (STS calls for web identity go to that region's endpoint). Builds
    /// nothing over the network: credentials are looked up on the first token.
    pub fn new(region: &str) -> Result<Chain, AuthError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| AuthError::Credentials(format!("could not start the credential runtime: {e}")))?;
        let region = Region::new(region.to_string());
        let chain = off_runtime(|| {
            runtime.block_on(async move {
                let http = aws_smithy_http_client::Builder::new()
                    .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
                    .build_https();
                let conf = ProviderConfig::default().with_http_client(http);
                DefaultCredentialsChain::builder().configure(conf).region(region).build().await
            })
        })?;
        Ok(Chain { runtime: Some(runtime), chain, cached: Mutex::new(None) })
    }

    /// Credentials valid for at least one token's lifetime from `now`.
    pub fn credentials(&self, now: SystemTime) -> Result<Credentials, AuthError> {
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((c, fetched)) = cached.as_ref()
            && still_good(c, *fetched, now)
        {
            return Ok(c.clone());
        }
        let runtime = self.runtime.as_ref().ok_or_else(|| AuthError::Credentials("the chain is closed".into()))?;
        let fresh = off_runtime(|| runtime.block_on(self.chain.provide_credentials()))?
            .map_err(|e| AuthError::Credentials(describe(&e)))?;
        *cached = Some((fresh.clone(), now));
        Ok(fresh)
    }
}

/// Whether credentials fetched at `fetched` may sign a token at `now`: temporary ones while they
/// outlive the token by a minute, static ones for [`STATIC_REUSE`].
fn still_good(c: &Credentials, fetched: SystemTime, now: SystemTime) -> bool {
    match c.expiry() {
        Some(until) => until.duration_since(now).is_ok_and(|left| left > TOKEN_EXPIRES + Duration::from_secs(60)),
        None => now.duration_since(fetched).is_ok_and(|age| age < STATIC_REUSE),
    }
}

/// The chain's error with its causes. `aws-config`'s errors name providers, files and variables,
/// never a key's value; [`super::TokenSource`] scrubs them of the secrets it knows all the same.
fn describe(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Run `f` on a scoped thread of its own, outside any runtime its caller may be inside.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T, AuthError> {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("aws-credentials".into())
            .spawn_scoped(s, f)
            .map_err(|e| AuthError::Credentials(format!("could not start the credential thread: {e}")))?
            .join()
            .map_err(|_| AuthError::Credentials("the credential thread panicked".into()))
    })
}

impl Drop for Chain {
    fn drop(&mut self) {
        // Dropping a runtime inside async code panics; shutting it down in the background never does.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHILD: &str = "FLEETSTORM_AUTH_CHAIN_CHILD";
    const TEST: &str = "driver::auth::credentials::tests::the_chain_takes_the_environment_then_the_shared_files";

    /// What the chain resolves in a child process with exactly `env` (plus `CHILD`).
    fn resolve_in_child(env: &[(&str, &str)]) -> String {
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env_clear()
            .env(CHILD, "1")
            // No instance metadata here: a miss must not wait out IMDS timeouts.
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout
            .lines()
            .find_map(|l| l.split_once("CHAIN ").map(|(_, rest)| rest))
            .unwrap_or_else(|| panic!("no answer from the child: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
        line.to_string()
    }

    #[test]
    fn the_chain_takes_the_environment_then_the_shared_files() {
        if std::env::var_os(CHILD).is_some() {
            // The child: resolve once, print what came out (never a secret).
            let chain = Chain::new("eu-west-1").unwrap();
            match chain.credentials(SystemTime::now()) {
                Ok(c) => println!("CHAIN ok {} token={}", c.access_key_id(), c.session_token().is_some()),
                Err(e) => println!("CHAIN err {e}"),
            }
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().display().to_string();
        std::fs::create_dir_all(dir.path().join(".aws")).unwrap();
        std::fs::write(
            dir.path().join(".aws/credentials"),
            "[default]\naws_access_key_id = AKIDHOMEFILE\naws_secret_access_key = home-secret-value\n\n\
             [other]\naws_access_key_id = AKIDOTHERPROFILE\naws_secret_access_key = other-secret-value\n",
        )
        .unwrap();
        let elsewhere = dir.path().join("creds-elsewhere");
        std::fs::write(
            &elsewhere,
            "[default]\naws_access_key_id = AKIDENVFILE\naws_secret_access_key = file-secret-value\naws_session_token = file-session-token\n",
        )
        .unwrap();
        let elsewhere = elsewhere.display().to_string();

        // The environment first, even with a credentials file in HOME.
        let env_keys = [
            ("HOME", home.as_str()),
            ("AWS_ACCESS_KEY_ID", "AKIDFROMENV"),
            ("AWS_SECRET_ACCESS_KEY", "env-secret-value"),
        ];
        assert_eq!(resolve_in_child(&env_keys), "ok AKIDFROMENV token=false");
        let with_token = [env_keys[0], env_keys[1], env_keys[2], ("AWS_SESSION_TOKEN", "env-session-token")];
        assert_eq!(resolve_in_child(&with_token), "ok AKIDFROMENV token=true");
        // Then ~/.aws/credentials, its default profile or AWS_PROFILE's.
        assert_eq!(resolve_in_child(&[("HOME", &home)]), "ok AKIDHOMEFILE token=false");
        assert_eq!(resolve_in_child(&[("HOME", &home), ("AWS_PROFILE", "other")]), "ok AKIDOTHERPROFILE token=false");
        // AWS_SHARED_CREDENTIALS_FILE instead of HOME's.
        assert_eq!(
            resolve_in_child(&[("HOME", &home), ("AWS_SHARED_CREDENTIALS_FILE", &elsewhere)]),
            "ok AKIDENVFILE token=true"
        );
        // Nothing anywhere: an error that says so, naming no secret.
        let empty = tempfile::tempdir().unwrap();
        let none = resolve_in_child(&[("HOME", &empty.path().display().to_string())]);
        assert!(none.starts_with("err no AWS credentials"), "{none}");
        // A profile that does not exist is named.
        let missing = resolve_in_child(&[("HOME", &home), ("AWS_PROFILE", "nope")]);
        assert!(missing.starts_with("err ") && missing.contains("nope"), "{missing}");
        for secret in ["home-secret-value", "other-secret-value", "file-secret-value", "file-session-token"] {
            assert!(!none.contains(secret) && !missing.contains(secret));
        }
    }

    #[test]
    fn credentials_are_reused_only_while_they_outlive_a_token() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let temp = |left: u64| Credentials::new("AKID", "s3cr3t", None, Some(now + Duration::from_secs(left)), "t");
        assert!(still_good(&temp(900 + 61), now, now));
        assert!(!still_good(&temp(900 + 59), now, now));
        assert!(!still_good(&temp(0), now, now));
        let fixed = Credentials::new("AKID", "s3cr3t", None, None, "t");
        assert!(still_good(&fixed, now, now + STATIC_REUSE - Duration::from_secs(1)));
        assert!(!still_good(&fixed, now, now + STATIC_REUSE));
    }
}
