//! SASL/OAUTHBEARER tokens made by fleetstorm, from the profile's `oauthbearer` section:
//! [`msk_iam`] (Amazon MSK IAM, credentials from the standard AWS chain in [`credentials`]) and
//! Kafka's unsecured JWT (local and CI clusters). Every client context holds an [`Auth`] and
//! answers librdkafka's token refresh through it.
//!
//! How librdkafka 2.12 and rust-rdkafka 0.39 ask for tokens (read in rdkafka-0.39.0
//! `src/client.rs`, `src/producer/base_producer.rs`, `src/consumer/base_consumer.rs`,
//! `src/admin.rs`, and librdkafka's `rdkafka.c`, `rdkafka_sasl_oauthbearer.c`, `rdkafka_event.h`):
//!
//! - `BaseProducer` and `BaseConsumer` always enable the `OAUTHBEARER_TOKEN_REFRESH` event.
//!   librdkafka enqueues a refresh when the client starts and again at 80 % of each token's
//!   remaining lifetime, on the client's main queue (a consumer with a `group.id` forwards it to
//!   the consumer queue), so it is served only when the client is polled. rust-rdkafka's
//!   `poll_event` consumes the event in every case and calls
//!   `ClientContext::generate_oauth_token` only when the context's `ENABLE_REFRESH_OAUTH_TOKEN`
//!   is true; otherwise the event is destroyed, and destroying it runs the refresh op's callback
//!   with `ERR__DESTROY`, which refreshes nothing. Our contexts set the constant (it is per type,
//!   not per client), so every client of every profile routes refreshes here.
//! - **librdkafka's own unsecured JWT** (`enable.sasl.oauthbearer.unsecure.jwt=true`): its first
//!   token is made synchronously while the client is created, but its refreshes travel as that
//!   same event, so behind a context with the constant false they are dropped and the token is
//!   never renewed: connections made after `lifeSeconds` (default 3600) fail to authenticate.
//!   With ours, a profile using it (and no `oauthbearer`) gets the token librdkafka would have
//!   made, from the `sasl.oauthbearer.config` handed to the callback ([`Source::Librdkafka`]).
//! - **OIDC** (`sasl.oauthbearer.method=oidc`): `rd_kafka_new` installs librdkafka's builtin
//!   refresh callback (client credentials, JWT bearer or Azure IMDS) and the SASL init marks the
//!   handle `internal_refresh`: its refresh ops carry `RD_KAFKA_OP_F_FORCE_CB`, which
//!   `rd_kafka_event_setup` refuses to turn into an event, and are served by librdkafka's
//!   background thread. They never reach rust-rdkafka, so our callback cannot take OIDC over,
//!   whatever the constant says (and validation refuses `oauthbearer` together with `oidc`).
//! - An error returned from the callback becomes `rd_kafka_oauthbearer_set_token_failure`:
//!   librdkafka raises an authentication error (counted by the context's `error`) and asks again
//!   10 s later.
//! - `AdminClient` polls only its own result queue, never the main queue: a refresh for an admin
//!   client is never served, and neither is the first token of a client that makes a blocking
//!   request (metadata) before it is polled. [`Auth::prime`] therefore gives those clients their
//!   first token directly (`rd_kafka_oauthbearer_set_token`) as soon as they are created.
//!
//! Lifetimes: an MSK IAM token is a URL presigned for 900 s (the official signers' value) and is
//! offered with that expiry (or the credentials' own, if sooner), so librdkafka asks for the next
//! one after 720 s; an unsecured JWT lives its configured `lifetime` (default 1 h).

pub mod credentials;
pub mod msk_iam;

use std::borrow::Cow;
use std::ffi::CString;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use rdkafka::ClientContext;
use rdkafka::client::{Client, OAuthToken};

use crate::config::profile::{OauthBearer, Profile};
use crate::report::schema::{TokenProvider, TokenTally};

/// Why no token could be made. Never carries a secret key, a session token or a token.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("`{0}` is not an AWS region name")]
    Region(String),
    #[error("could not sign the MSK IAM token: {0}")]
    Sign(String),
    #[error("the system clock is before 1970")]
    Clock,
    #[error("no AWS credentials: {0}")]
    Credentials(String),
    #[error("sasl.oauthbearer.config: {0}")]
    Config(String),
    #[error(
        "SASL/OAUTHBEARER needs a token provider: the profile's `oauthbearer`, librdkafka's OIDC \
         (`sasl.oauthbearer.method: oidc`) or its unsecured JWT"
    )]
    NoProvider,
    #[error("librdkafka refused the token: {0}")]
    Refused(String),
}

/// An unsecured JWT (`{"alg":"none"}`), as librdkafka's builtin makes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Jwt {
    pub principal: String,
    pub lifetime: Duration,
    pub principal_claim: String,
    pub scope_claim: String,
    pub scope: Vec<String>,
}

impl Jwt {
    pub fn new(principal: &str, lifetime: Duration) -> Jwt {
        Jwt {
            principal: principal.to_string(),
            lifetime,
            principal_claim: "sub".into(),
            scope_claim: "scope".into(),
            scope: Vec::new(),
        }
    }

    /// librdkafka's `sasl.oauthbearer.config` for its unsecured JWT:
    /// `principal=P [lifeSeconds=N] [scope=a,b] [principalClaimName=C] [scopeClaimName=C]`.
    /// SASL extensions (`extension_NAME=value`) cannot be passed through rust-rdkafka's token.
    pub fn from_librdkafka_config(config: &str) -> Result<Jwt, AuthError> {
        let mut jwt = Jwt::new("", Duration::from_secs(3600));
        for pair in config.split_whitespace() {
            let Some((name, value)) = pair.split_once('=') else {
                return Err(AuthError::Config(format!("`{pair}` is not name=value")));
            };
            if value.is_empty() || value.contains('"') {
                return Err(AuthError::Config(format!("`{name}` must be non-empty and without quotes")));
            }
            match name {
                "principal" => jwt.principal = value.into(),
                "principalClaimName" => jwt.principal_claim = value.into(),
                "scopeClaimName" => jwt.scope_claim = value.into(),
                "scope" => {
                    for s in value.split(',').filter(|s| !s.is_empty()) {
                        if !jwt.scope.iter().any(|x| x == s) {
                            jwt.scope.push(s.into());
                        }
                    }
                }
                "lifeSeconds" => {
                    let secs: u64 = value
                        .parse()
                        .map_err(|_| AuthError::Config(format!("lifeSeconds `{value}` is not a number")))?;
                    jwt.lifetime = Duration::from_secs(secs);
                }
                n if n.starts_with("extension_") => {
                    return Err(AuthError::Config(
                        "SASL extensions cannot be refreshed through rust-rdkafka; use the profile's `oauthbearer`"
                            .into(),
                    ));
                }
                n => return Err(AuthError::Config(format!("unknown name `{n}`"))),
            }
        }
        if jwt.principal.is_empty() {
            return Err(AuthError::Config("no principal=<value>".into()));
        }
        Ok(jwt)
    }

    /// The token and its expiry (ms since the Unix epoch) for `now`: librdkafka's layout,
    /// `eyJhbGciOiJub25lIn0.` + base64url of `{"sub":"P","iat":S.mmm,"exp":S.mmm}` + `.`.
    pub fn token_at(&self, now: SystemTime) -> Result<(String, i64), AuthError> {
        let now_ms = i64::try_from(now.duration_since(UNIX_EPOCH).map_err(|_| AuthError::Clock)?.as_millis())
            .map_err(|_| AuthError::Clock)?;
        let life_ms = i64::try_from(self.lifetime.as_millis()).unwrap_or(i64::MAX / 2);
        let secs = |ms: i64| format!("{}.{:03}", ms / 1000, ms % 1000);
        let mut claims = format!(
            "{{\"{}\":\"{}\",\"iat\":{},\"exp\":{}",
            self.principal_claim,
            self.principal,
            secs(now_ms),
            secs(now_ms + life_ms)
        );
        if !self.scope.is_empty() {
            let scope: Vec<String> = self.scope.iter().map(|s| format!("\"{s}\"")).collect();
            claims.push_str(&format!(",\"{}\":[{}]", self.scope_claim, scope.join(",")));
        }
        claims.push('}');
        let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims);
        Ok((format!("eyJhbGciOiJub25lIn0.{body}."), now_ms + life_ms))
    }
}

/// Where a client's tokens come from.
pub enum Source {
    /// Amazon MSK IAM.
    MskIam { region: String, chain: credentials::Chain, user_agent: String },
    /// The profile's `unsecured_jwt`.
    UnsecuredJwt(Jwt),
    /// librdkafka's own unsecured JWT (`enable.sasl.oauthbearer.unsecure.jwt`), refreshed here
    /// from `sasl.oauthbearer.config` because rust-rdkafka would drop its refreshes.
    Librdkafka,
}

/// A token source and the secrets it has handled (to keep them out of logs).
pub struct TokenSource {
    source: Source,
    seen: Mutex<Vec<String>>,
    issued: AtomicU64,
    failed: AtomicU64,
    /// When the source was made, and how long after that its latest token was (in ms).
    created: std::time::Instant,
    latest_ms: AtomicU64,
}

/// How many recent secret values a source remembers for scrubbing.
const SEEN: usize = 16;

impl TokenSource {
    pub fn new(source: Source) -> TokenSource {
        // Values the chain may read from the environment: known before any message is made.
        let seen = ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"]
            .iter()
            .filter_map(|v| std::env::var(v).ok())
            .filter(|v| v.len() >= 3)
            .collect();
        TokenSource {
            source,
            seen: Mutex::new(seen),
            issued: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            created: std::time::Instant::now(),
            latest_ms: AtomicU64::new(0),
        }
    }

    /// The source of a profile's `oauthbearer` section.
    pub fn from_section(section: &OauthBearer) -> Result<TokenSource, AuthError> {
        Ok(TokenSource::new(match section {
            OauthBearer::MskIam(m) => Source::MskIam {
                region: m.region.clone(),
                chain: credentials::Chain::new(&m.region)?,
                user_agent: msk_iam::user_agent(),
            },
            OauthBearer::UnsecuredJwt(j) => Source::UnsecuredJwt(Jwt::new(&j.principal, j.lifetime.0)),
        }))
    }

    /// A token for now. `config` is librdkafka's `sasl.oauthbearer.config`.
    pub fn token(&self, config: Option<&str>) -> Result<OAuthToken, AuthError> {
        let token = self.token_at(SystemTime::now(), config).map_err(|e| self.scrub_error(e));
        if token.is_ok() {
            self.issued.fetch_add(1, Ordering::Relaxed);
            let ms = u64::try_from(self.created.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.latest_ms.fetch_max(ms, Ordering::Relaxed);
        } else {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        token
    }

    /// The tokens made so far, and the attempts that failed.
    pub fn tally(&self) -> TokenTally {
        let provider = match self.source {
            Source::MskIam { .. } => TokenProvider::MskIam,
            Source::UnsecuredJwt(_) => TokenProvider::UnsecuredJwt,
            Source::Librdkafka => TokenProvider::Librdkafka,
        };
        TokenTally {
            provider,
            issued: self.issued.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            latest_after_s: self.latest_ms.load(Ordering::Relaxed) as f64 / 1000.0,
        }
    }

    fn token_at(&self, now: SystemTime, config: Option<&str>) -> Result<OAuthToken, AuthError> {
        let (token, principal_name, lifetime_ms) = match &self.source {
            Source::MskIam { region, chain, user_agent } => {
                let creds = chain.credentials(now)?;
                self.remember([Some(creds.secret_access_key()), creds.session_token()]);
                let t = msk_iam::token(region, &creds, now, user_agent)?;
                (t.value, "msk-iam".to_string(), t.expires_ms)
            }
            Source::UnsecuredJwt(jwt) => {
                let (t, exp) = jwt.token_at(now)?;
                (t, jwt.principal.clone(), exp)
            }
            Source::Librdkafka => {
                let jwt = Jwt::from_librdkafka_config(config.unwrap_or_default())?;
                let (t, exp) = jwt.token_at(now)?;
                (t, jwt.principal, exp)
            }
        };
        self.remember([Some(token.as_str())]);
        Ok(OAuthToken { token, principal_name, lifetime_ms })
    }

    fn remember<'a>(&self, values: impl IntoIterator<Item = Option<&'a str>>) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        for v in values.into_iter().flatten() {
            if v.len() >= 3 && !seen.iter().any(|s| s == v) {
                seen.push(v.to_string());
            }
        }
        let excess = seen.len().saturating_sub(SEEN);
        seen.drain(..excess);
    }

    /// `text` without any secret this source has handled.
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if !seen.iter().any(|s| text.contains(s.as_str())) {
            return Cow::Borrowed(text);
        }
        let mut out = text.to_string();
        for s in seen.iter() {
            out = out.replace(s.as_str(), crate::config::profile::REDACTED);
        }
        Cow::Owned(out)
    }

    fn scrub_error(&self, e: AuthError) -> AuthError {
        match e {
            AuthError::Credentials(m) => AuthError::Credentials(self.scrub(&m).into_owned()),
            AuthError::Sign(m) => AuthError::Sign(self.scrub(&m).into_owned()),
            AuthError::Config(m) => AuthError::Config(self.scrub(&m).into_owned()),
            AuthError::Refused(m) => AuthError::Refused(self.scrub(&m).into_owned()),
            other => other,
        }
    }
}

/// What a client context holds to answer librdkafka's OAUTHBEARER refresh. Cheap to clone.
#[derive(Clone, Default)]
pub struct Auth(Option<Arc<TokenSource>>);

impl Auth {
    /// The token source of a profile: its `oauthbearer` section, else librdkafka's own unsecured
    /// JWT when enabled, else none.
    pub fn for_profile(profile: &Profile) -> Result<Auth, AuthError> {
        if let Some(section) = &profile.oauthbearer {
            return Ok(Auth(Some(Arc::new(TokenSource::from_section(section)?))));
        }
        let builtin = profile
            .librdkafka
            .get("enable.sasl.oauthbearer.unsecure.jwt")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        Ok(Auth(builtin.then(|| Arc::new(TokenSource::new(Source::Librdkafka)))))
    }

    pub fn of(source: TokenSource) -> Auth {
        Auth(Some(Arc::new(source)))
    }

    /// What the run's token source has done, if it has one.
    pub fn tally(&self) -> Option<TokenTally> {
        self.0.as_ref().map(|s| s.tally())
    }

    /// For `ClientContext::generate_oauth_token`.
    pub fn generate(&self, config: Option<&str>) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        match &self.0 {
            Some(s) => Ok(s.token(config)?),
            None => Err(Box::new(AuthError::NoProvider)),
        }
    }

    /// `text` without any token or AWS secret this client's source has handled.
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match &self.0 {
            Some(s) => s.scrub(text),
            None => Cow::Borrowed(text),
        }
    }

    /// Give a new client its first token now, without waiting for it to be polled (admin
    /// clients never poll the queue the refresh arrives on; a first metadata request would wait).
    /// Nothing to do without a provider of ours.
    pub fn prime<C: ClientContext>(&self, client: &Client<C>) -> Result<(), AuthError> {
        let Some(source) = &self.0 else {
            return Ok(());
        };
        if matches!(source.source, Source::Librdkafka) {
            // librdkafka made the first one itself, synchronously.
            return Ok(());
        }
        let t = source.token(None)?;
        let token = CString::new(t.token).map_err(|_| AuthError::Refused("the token holds a NUL byte".into()))?;
        let principal =
            CString::new(t.principal_name).map_err(|_| AuthError::Refused("the principal holds a NUL byte".into()))?;
        let mut errstr = [0 as std::ffi::c_char; 512];
        // SAFETY: `client.native_ptr()` is the live `rd_kafka_t` of `client`, borrowed for the
        // whole call; `token` and `principal` are NUL-terminated and outlive it; no extensions
        // (a null array of size 0, which librdkafka accepts); `errstr` is a writable buffer whose
        // size is passed, and librdkafka NUL-terminates what it writes there. The call takes the
        // SASL handle's lock, so it is safe while librdkafka's threads run.
        let code = unsafe {
            rdkafka::bindings::rd_kafka_oauthbearer_set_token(
                client.native_ptr(),
                token.as_ptr(),
                t.lifetime_ms,
                principal.as_ptr(),
                std::ptr::null_mut(),
                0,
                errstr.as_mut_ptr(),
                errstr.len(),
            )
        };
        if code == rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR {
            return Ok(());
        }
        let bytes: Vec<u8> = errstr.iter().take_while(|c| **c != 0).map(|c| *c as u8).collect();
        Err(source.scrub_error(AuthError::Refused(String::from_utf8_lossy(&bytes).into_owned())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(secs * 1000 + ms)
    }

    fn claims(token: &str) -> String {
        let mut parts = token.split('.');
        assert_eq!(parts.next(), Some("eyJhbGciOiJub25lIn0"));
        let body = parts.next().unwrap();
        assert_eq!(parts.next(), Some(""), "an unsecured JWS has an empty signature");
        String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap()
    }

    #[test]
    fn the_unsecured_jwt_is_laid_out_as_librdkafkas() {
        // The header is librdkafka's constant: {"alg":"none"}.
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode("eyJhbGciOiJub25lIn0").unwrap();
        assert_eq!(header, br#"{"alg":"none"}"#);
        let jwt = Jwt::new("fleet", Duration::from_secs(600));
        let (t, exp) = jwt.token_at(at(1_796_206_500, 7)).unwrap();
        assert_eq!(claims(&t), r#"{"sub":"fleet","iat":1796206500.007,"exp":1796207100.007}"#);
        assert_eq!(exp, 1_796_207_100_007);
        assert!(!t.contains('=') && !t.contains('+') && !t.contains('/'));
    }

    #[test]
    fn librdkafkas_unsecured_config_is_understood_and_its_mistakes_named() {
        let jwt = Jwt::from_librdkafka_config(
            "principalClaimName=azp principal=admin scopeClaimName=roles scope=role1,,role2,role1 lifeSeconds=60",
        )
        .unwrap();
        let (t, exp) = jwt.token_at(at(1_000, 0)).unwrap();
        assert_eq!(claims(&t), r#"{"azp":"admin","iat":1000.000,"exp":1060.000,"roles":["role1","role2"]}"#);
        assert_eq!(exp, 1_060_000);
        assert_eq!(Jwt::from_librdkafka_config("principal=a").unwrap().lifetime, Duration::from_secs(3600));
        for (bad, says) in [
            ("", "no principal"),
            ("lifeSeconds=10", "no principal"),
            ("principal=a bogus=1", "unknown name `bogus`"),
            ("principal=a lifeSeconds=x", "not a number"),
            ("principal=a extension_trace=1", "extensions"),
            ("principal", "not name=value"),
        ] {
            let e = Jwt::from_librdkafka_config(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn a_source_offers_its_token_with_the_lifetime_it_was_given() {
        let s = TokenSource::new(Source::UnsecuredJwt(Jwt::new("fleet", Duration::from_secs(900))));
        let t = s.token_at(at(2_000_000_000, 0), None).unwrap();
        assert_eq!(t.principal_name, "fleet");
        assert_eq!(t.lifetime_ms, 2_000_000_000_000 + 900_000);
        // librdkafka refreshes at 80 %: 720 s after this one was made.
        let lib = TokenSource::new(Source::Librdkafka);
        let t = lib.token_at(at(100, 0), Some("principal=admin lifeSeconds=30")).unwrap();
        assert_eq!((t.principal_name.as_str(), t.lifetime_ms), ("admin", 130_000));
        assert!(matches!(lib.token_at(at(100, 0), None), Err(AuthError::Config(_))));
    }

    #[test]
    fn without_a_provider_the_refresh_fails_saying_what_is_missing() {
        let e = Auth::default().generate(Some("principal=x")).err().unwrap().to_string();
        assert!(e.contains("needs a token provider") && e.contains("oidc"), "{e}");
    }

    #[test]
    fn tokens_and_secrets_a_source_handled_are_scrubbed_from_text() {
        let s = TokenSource::new(Source::UnsecuredJwt(Jwt::new("fleet", Duration::from_secs(900))));
        let t = s.token(None).unwrap();
        let line = format!("SASL handshake with {} failed", t.token);
        assert_eq!(s.scrub(&line), format!("SASL handshake with {} failed", crate::config::profile::REDACTED));
        s.remember([Some("wJalrXUtnFEMI/K7MDENG"), Some("IQoJb3JpZ2luX2Vj"), None]);
        let e = s.scrub_error(AuthError::Credentials("bad key wJalrXUtnFEMI/K7MDENG and IQoJb3JpZ2luX2Vj".into()));
        let text = e.to_string();
        assert!(!text.contains("wJalrXUtnFEMI") && !text.contains("IQoJb3JpZ2luX2Vj"), "{text}");
        assert!(matches!(s.scrub("nothing secret"), Cow::Borrowed(_)));
    }
}
