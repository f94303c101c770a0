//! Amazon MSK IAM tokens: a SigV4 *presigned* `GET https://kafka.<region>.amazonaws.com/?Action=kafka-cluster%3AConnect`
//! URL, base64url-encoded without padding, exactly as AWS's signers build it
//! (aws-msk-iam-sasl-signer-python / -go / -js; the Java `aws-msk-iam-auth` sends the same URL).
//!
//! The signature is `aws-sigv4`'s (AWS's own crate, query-parameter signing, service
//! `kafka-cluster`, 900 s); this module only lays the URL out in the official signers' order:
//! `Action`, `X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`,
//! `X-Amz-SignedHeaders`, `X-Amz-Security-Token` (temporary credentials), `X-Amz-Signature`, then
//! `User-Agent` (appended after signing, not signed). `harness/tests/data/msk_iam/vectors.json`
//! holds tokens the official Python signer made with its clock frozen; the unit tests compare
//! byte for byte.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign};
use aws_sigv4::sign::v4;
use base64::Engine;

use super::AuthError;

/// How long a presigned token is valid: the official signers' `X-Amz-Expires`.
pub const TOKEN_EXPIRES: Duration = Duration::from_secs(900);
/// The SigV4 service name of MSK's data plane.
const SERVICE: &str = "kafka-cluster";

/// The `User-Agent` query parameter fleetstorm sends (the official signers send their own name).
pub fn user_agent() -> String {
    format!("fleetstorm/{}", env!("CARGO_PKG_VERSION"))
}

/// A token and when it stops being valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// base64url (no padding) of the presigned URL.
    pub value: String,
    /// Milliseconds since the Unix epoch: the signature's expiry (`now` + 900 s), or the
    /// credentials' own expiry if that comes first (a presigned URL dies with its credentials).
    pub expires_ms: i64,
}

/// The token for `credentials` in `region`, signed at `now`.
pub fn token(region: &str, credentials: &Credentials, now: SystemTime, user_agent: &str) -> Result<Token, AuthError> {
    if region.is_empty() || !region.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(AuthError::Region(region.to_string()));
    }
    let host = format!("kafka.{region}.amazonaws.com");
    let endpoint = format!("https://{host}/");
    let action = "Action=kafka-cluster%3AConnect";
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(TOKEN_EXPIRES);
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SERVICE)
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| AuthError::Sign(e.to_string()))?
        .into();
    let request =
        SignableRequest::new("GET", format!("{endpoint}?{action}"), std::iter::empty(), SignableBody::Bytes(&[]))
            .map_err(|e| AuthError::Sign(e.to_string()))?;
    let (instructions, _signature) = sign(request, &params).map_err(|e| AuthError::Sign(e.to_string()))?.into_parts();
    let (_headers, signed) = instructions.into_parts();
    let value_of = |name: &str| signed.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_ref());
    let mut url = format!("{endpoint}?{action}");
    for name in [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Security-Token",
        "X-Amz-Signature",
    ] {
        match value_of(name) {
            Some(v) => {
                url.push('&');
                url.push_str(name);
                url.push('=');
                url.push_str(&encode(v));
            }
            None if name == "X-Amz-Security-Token" => {}
            None => return Err(AuthError::Sign(format!("the signer gave no `{name}`"))),
        }
    }
    url.push_str("&User-Agent=");
    url.push_str(&encode(user_agent));
    let signed_at = now.duration_since(UNIX_EPOCH).map_err(|_| AuthError::Clock)?;
    let mut expires_ms = millis(signed_at + TOKEN_EXPIRES);
    if let Some(until) = credentials.expiry() {
        let until = until.duration_since(UNIX_EPOCH).map_err(|_| AuthError::Clock)?;
        expires_ms = expires_ms.min(millis(until));
    }
    Ok(Token { value: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url), expires_ms })
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Percent-encoding of a query value as botocore and the Go SDK write it: everything but the
/// unreserved characters (`A-Z a-z 0-9 - _ . ~`), upper-case hex.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Vectors {
        vectors: Vec<Vector>,
    }

    #[derive(serde::Deserialize)]
    struct Vector {
        name: String,
        region: String,
        access_key_id: String,
        secret_access_key: String,
        session_token: Option<String>,
        now: String,
        user_agent: String,
        token: String,
        expiry_ms: i64,
    }

    fn vectors() -> Vec<Vector> {
        let text = include_str!("../../../tests/data/msk_iam/vectors.json");
        serde_json::from_str::<Vectors>(text).unwrap().vectors
    }

    #[test]
    fn msk_iam_tokens_equal_the_official_signer_byte_for_byte() {
        let vs = vectors();
        assert_eq!(vs.len(), 3);
        for v in vs {
            let creds = Credentials::new(&v.access_key_id, &v.secret_access_key, v.session_token.clone(), None, "test");
            let now = humantime::parse_rfc3339(&v.now).unwrap();
            let t = token(&v.region, &creds, now, &v.user_agent).unwrap();
            assert_eq!(t.value, v.token, "{}", v.name);
            assert_eq!(t.expires_ms, v.expiry_ms, "{}", v.name);
        }
    }

    #[test]
    fn a_different_instant_or_key_gives_a_different_token() {
        let v = &vectors()[0];
        let creds = Credentials::new(&v.access_key_id, &v.secret_access_key, None, None, "test");
        let now = humantime::parse_rfc3339(&v.now).unwrap();
        let later = token(&v.region, &creds, now + Duration::from_secs(1), &v.user_agent).unwrap();
        assert_ne!(later.value, v.token);
        assert_eq!(later.expires_ms, v.expiry_ms + 1000);
        let other = Credentials::new(&v.access_key_id, "another-secret", None, None, "test");
        assert_ne!(token(&v.region, &other, now, &v.user_agent).unwrap().value, v.token);
    }

    #[test]
    fn the_token_decodes_to_the_presigned_url_and_never_holds_the_secret_key() {
        let v = &vectors()[1];
        let creds = Credentials::new(&v.access_key_id, &v.secret_access_key, v.session_token.clone(), None, "test");
        let now = humantime::parse_rfc3339(&v.now).unwrap();
        let t = token(&v.region, &creds, now, &user_agent()).unwrap();
        let url =
            String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&t.value).unwrap()).unwrap();
        assert!(
            url.starts_with("https://kafka.eu-west-1.amazonaws.com/?Action=kafka-cluster%3AConnect&X-Amz-Algorithm=")
        );
        assert!(url.contains("&X-Amz-Expires=900&"));
        assert!(url.ends_with(&format!("&User-Agent=fleetstorm%2F{}", env!("CARGO_PKG_VERSION"))));
        assert!(!url.contains(&v.secret_access_key) && !url.contains(&encode(&v.secret_access_key)));
    }

    #[test]
    fn the_lifetime_ends_with_the_credentials_when_they_expire_first() {
        let v = &vectors()[1];
        let now = humantime::parse_rfc3339(&v.now).unwrap();
        let soon = now + Duration::from_secs(300);
        let creds = Credentials::new(&v.access_key_id, &v.secret_access_key, v.session_token.clone(), Some(soon), "t");
        let t = token(&v.region, &creds, now, &v.user_agent).unwrap();
        assert_eq!(t.expires_ms, v.expiry_ms - 600_000);
        // The signature itself does not depend on the credentials' expiry.
        assert_eq!(t.value, v.token);
    }

    #[test]
    fn a_region_that_is_not_a_host_label_is_refused() {
        let creds = Credentials::new("AKID", "secret-key", None, None, "t");
        for r in ["", "us-east-1.evil.com/x", "us east 1"] {
            assert!(matches!(token(r, &creds, SystemTime::now(), "ua"), Err(AuthError::Region(_))), "{r}");
        }
    }
}
