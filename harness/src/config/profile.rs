//! The profile: which Kafka-compatible target a scenario runs against and how to reach it.
//!
//! Values may reference environment variables (`${KAFKA_PASSWORD}`, `${REGION:-eu-west-1}`);
//! `$${` writes a literal `${`. Secrets (any librdkafka property whose name says password,
//! secret, token, jaas or private key) never appear in output, logs or reports: see [`Redactor`].

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::units::Dur;

/// A profile file.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
pub struct Profile {
    /// Required. Short name, shown in reports and comparisons, e.g. `local-kafka`, `msk-prod`.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Required. `embedded` (librdkafka's in-process mock cluster, zero set-up) or `kafka`
    /// (any Kafka-compatible cluster reached through `bootstrap_servers`).
    pub kind: TargetKind,
    /// Brokers in the embedded cluster. Default 3. Only for `kind: embedded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brokers: Option<u32>,
    /// Added round-trip time of every embedded broker, e.g. `20ms`: a slower target for the same
    /// workload (comparisons, regression checks). Only for `kind: embedded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round_trip_time: Option<Dur>,
    /// Bootstrap servers, a list or a comma-separated string. Required for `kind: kafka`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_servers: Option<Servers>,
    /// librdkafka properties for every client (security, TLS, SASL, timeouts...).
    #[serde(default)]
    pub librdkafka: BTreeMap<String, String>,
    /// How long to wait for the target to answer before giving up (exit 3). Default `15s`.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: Dur,
    /// How this target's brokers are faulted. Default for `kind: embedded`: the embedded
    /// cluster's own controls; a `kafka` target without it cannot run scenarios with faults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<FaultMechanism>,
    /// Values the profile took from secret-looking environment variables or put into
    /// secret-looking properties: known to the run's redactor before anything is printed.
    #[serde(skip)]
    #[schemars(skip)]
    pub secrets: Vec<String>,
}

/// How faults reach the brokers.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FaultMechanism {
    /// The embedded cluster's controls: broker down/up (leadership moves to a surviving
    /// replica, as an election would), round-trip time.
    Embedded,
    /// Signals to local broker processes found through pid files (SIGKILL, SIGTERM, SIGSTOP,
    /// SIGCONT), restarts through a command. For `scripts/kafka-cluster.sh`.
    Process(ProcessFaults),
    /// Shell command templates, for docker, kubectl, ssh or systemd. `{broker}` is replaced by
    /// the broker id, `{latency_ms}` by the added latency.
    Command(CommandFaults),
}

/// The `process` fault mechanism.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
pub struct ProcessFaults {
    /// Required. Pid file of broker `{broker}`. Relative paths are relative to the profile file.
    pub pid_file: String,
    /// Required. Command that starts broker `{broker}` again with its data and returns once it
    /// answers. Runs with `sh -c` in the profile file's directory.
    pub restart: String,
    /// How long a graceful stop may take before SIGKILL. Default `30s`.
    #[serde(default = "default_stop_timeout")]
    pub stop_timeout: Dur,
    /// How long `restart` may take. Default `120s`.
    #[serde(default = "default_command_timeout")]
    pub timeout: Dur,
}

/// The `command` fault mechanism: one template per action; a fault whose actions have no
/// template is rejected before the run starts.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
pub struct CommandFaults {
    /// Kill broker `{broker}` at once, e.g. `docker kill kafka-{broker}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_kill: Option<String>,
    /// Stop broker `{broker}` gracefully, e.g. `docker stop kafka-{broker}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_stop: Option<String>,
    /// Start a killed or stopped broker again, e.g. `docker start kafka-{broker}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_start: Option<String>,
    /// Freeze broker `{broker}`, e.g. `docker pause kafka-{broker}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_pause: Option<String>,
    /// Unfreeze it, e.g. `docker unpause kafka-{broker}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_resume: Option<String>,
    /// Add `{latency_ms}` of delay to broker `{broker}` (e.g. `tc qdisc ... netem delay`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_add: Option<String>,
    /// Remove it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_remove: Option<String>,
    /// How long each command may run before it is killed (and the action counted as failed).
    /// Default `120s`.
    #[serde(default = "default_command_timeout")]
    pub timeout: Dur,
}

impl Default for CommandFaults {
    fn default() -> Self {
        CommandFaults {
            broker_kill: None,
            broker_stop: None,
            broker_start: None,
            broker_pause: None,
            broker_resume: None,
            latency_add: None,
            latency_remove: None,
            timeout: default_command_timeout(),
        }
    }
}

fn default_stop_timeout() -> Dur {
    Dur::from_secs(30)
}

fn default_command_timeout() -> Dur {
    Dur::from_secs(120)
}

fn default_connect_timeout() -> Dur {
    Dur::from_secs(15)
}

/// The kind of target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    Embedded,
    Kafka,
}

/// Bootstrap servers written as a list or as one comma-separated string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Servers {
    List(Vec<String>),
    Joined(String),
}

impl Servers {
    pub fn joined(&self) -> String {
        match self {
            Servers::List(items) => items.join(","),
            Servers::Joined(s) => s.split(',').map(str::trim).collect::<Vec<_>>().join(","),
        }
    }
}

impl Profile {
    /// The default target: a 3-broker embedded cluster.
    pub fn embedded() -> Self {
        Profile {
            name: "embedded".into(),
            description: Some("librdkafka's in-process mock cluster".into()),
            kind: TargetKind::Embedded,
            brokers: Some(3),
            round_trip_time: None,
            bootstrap_servers: None,
            librdkafka: BTreeMap::new(),
            connect_timeout: default_connect_timeout(),
            faults: None,
            secrets: Vec::new(),
        }
    }

    /// The fault mechanism in effect: the declared one, or the embedded controls for an
    /// embedded target.
    pub fn fault_mechanism(&self) -> Option<FaultMechanism> {
        match (&self.faults, self.kind) {
            (Some(m), _) => Some(m.clone()),
            (None, TargetKind::Embedded) => Some(FaultMechanism::Embedded),
            (None, TargetKind::Kafka) => None,
        }
    }

    pub fn embedded_brokers(&self) -> u32 {
        self.brokers.unwrap_or(3)
    }
}

/// Is this librdkafka property a secret?
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    // `pass` also catches misspellings (`sasl.passwrod`) and passphrases.
    ["pass", "secret", "token", "jaas", "private", "credential", "oauthbearer.config", "apikey", "api.key", "api_key"]
        .iter()
        .any(|s| k.contains(s))
        || k == "ssl.key.pem"
        || k == "ssl_key"
}

/// Whether an environment variable's name says it holds a secret (`KAFKA_PASSWORD`,
/// `AWS_SECRET_ACCESS_KEY`, `API_TOKEN`...): its value is kept out of every output, whichever
/// field it was put in.
pub fn is_secret_var(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    ["PASS", "SECRET", "TOKEN", "KEY", "CREDENTIAL", "JAAS", "PRIVATE", "AUTH"].iter().any(|s| n.contains(s))
}

/// `text` quoted for `sh -c` as one word: a value from the environment put into a command
/// template can never run a command of its own.
pub fn shell_quote(text: &str) -> String {
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c)) {
        return text.to_string();
    }
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// The text shown instead of a secret.
pub const REDACTED: &str = "[redacted]";

/// Removes secret values from anything headed for output. Built from the profile and scenario
/// properties; every string that leaves the process through logs, errors or reports passes it.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// A redactor of these values (shorter than three characters: ignored).
    pub fn of_values(values: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = values.into_iter().filter(|v| v.len() >= 3).collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    /// A copy of `value` with every string in it scrubbed (a report, before it is written or
    /// anything is drawn from it). Unchanged if it does not round-trip through JSON.
    pub fn scrub_all<T: Serialize + serde::de::DeserializeOwned>(&self, value: T) -> T {
        if self.secrets.is_empty() {
            return value;
        }
        fn walk(r: &Redactor, v: &mut serde_json::Value) {
            match v {
                serde_json::Value::String(s) => *s = r.scrub(s),
                serde_json::Value::Array(a) => a.iter_mut().for_each(|x| walk(r, x)),
                serde_json::Value::Object(m) => m.values_mut().for_each(|x| walk(r, x)),
                _ => {}
            }
        }
        match serde_json::to_value(&value) {
            Ok(mut v) => {
                walk(self, &mut v);
                serde_json::from_value(v).unwrap_or(value)
            }
            Err(_) => value,
        }
    }

    /// The redactor of a run: every secret-looking property of the profile, the producer and the
    /// consumer groups.
    pub fn for_run(profile: &Profile, scenario: &super::scenario::Scenario) -> Self {
        let props = Self::from_properties(
            profile
                .librdkafka
                .iter()
                .chain(scenario.producer.librdkafka.iter())
                .chain(scenario.consumers.iter().flat_map(|g| g.librdkafka.iter())),
        );
        Self::of_values(props.secrets.into_iter().chain(profile.secrets.iter().cloned()))
    }

    /// The redactor of a profile alone (`fleetstorm check` without a scenario).
    pub fn for_profile(profile: &Profile) -> Self {
        let props = Self::from_properties(profile.librdkafka.iter());
        Self::of_values(props.secrets.into_iter().chain(profile.secrets.iter().cloned()))
    }

    pub fn from_properties<'a>(props: impl IntoIterator<Item = (&'a String, &'a String)>) -> Self {
        let mut secrets: Vec<String> =
            props.into_iter().filter(|(k, v)| is_secret_key(k) && v.len() >= 3).map(|(_, v)| v.clone()).collect();
        // Longest first, so a secret containing another is removed whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), REDACTED);
            }
        }
        out
    }

    /// A copy of `props` with secret values replaced.
    pub fn redact_map(props: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        props
            .iter()
            .map(|(k, v)| (k.clone(), if is_secret_key(k) { REDACTED.to_string() } else { v.clone() }))
            .collect()
    }
}

/// Why a `${VAR}` reference could not be expanded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InterpolateError {
    #[error("unterminated `${{` (write `$${{` for a literal)")]
    Unterminated,
    #[error("`${{{0}}}` is not a valid variable reference")]
    InvalidReference(String),
    #[error("environment variable `{0}` is not set")]
    Unset(String),
}

/// Expand `${VAR}` and `${VAR:-default}` in `text`, telling `used` each variable's name and the
/// value put in; with `quote`, each value goes in shell-quoted (a command template).
pub fn interpolate_noting(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    quote: bool,
    used: &mut dyn FnMut(&str, &str),
) -> Result<String, InterpolateError> {
    // `interpolate` takes a `Fn`: collect what it used through a cell.
    let noted = std::cell::RefCell::new(Vec::new());
    let out = interpolate(text, &|name: &str| {
        let v = lookup(name)?;
        noted.borrow_mut().push((name.to_string(), v.clone()));
        Some(if quote { shell_quote(&v) } else { v })
    });
    for (n, v) in noted.into_inner() {
        used(&n, &v);
    }
    out
}

/// Expand `${VAR}` and `${VAR:-default}` in `text`.
pub fn interpolate(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, InterpolateError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix("${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(end) = body.find('}') else {
                return Err(InterpolateError::Unterminated);
            };
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(InterpolateError::InvalidReference(expr.to_string()));
            }
            match lookup(name).or_else(|| default.map(str::to_string)) {
                Some(v) => out.push_str(&v),
                None => return Err(InterpolateError::Unset(name.to_string())),
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PASS" => Some("hunter22".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn interpolation_expands_and_defaults() {
        assert_eq!(interpolate("a-${PASS}-b", &env).unwrap(), "a-hunter22-b");
        assert_eq!(interpolate("${NOPE:-x}", &env).unwrap(), "x");
        assert_eq!(interpolate("$${PASS}", &env).unwrap(), "${PASS}");
        assert_eq!(interpolate("cost $5", &env).unwrap(), "cost $5");
        assert!(interpolate("${NOPE}", &env).unwrap_err().to_string().contains("`NOPE` is not set"));
        assert!(interpolate("${PASS", &env).is_err());
        // The messages users read, unchanged since they were strings.
        assert_eq!(
            interpolate("${PASS", &env).unwrap_err().to_string(),
            "unterminated `${` (write `$${` for a literal)"
        );
        assert_eq!(interpolate("${a b}", &env).unwrap_err().to_string(), "`${a b}` is not a valid variable reference");
    }

    #[test]
    fn secrets_are_scrubbed_and_redacted() {
        let mut props = BTreeMap::new();
        props.insert("sasl.password".to_string(), "hunter22".to_string());
        props.insert("sasl.username".to_string(), "alice".to_string());
        let r = Redactor::from_properties(&props);
        assert_eq!(r.scrub("auth failed for alice with hunter22"), "auth failed for alice with [redacted]");
        let red = Redactor::redact_map(&props);
        assert_eq!(red["sasl.password"], REDACTED);
        assert_eq!(red["sasl.username"], "alice");
    }

    #[test]
    fn secret_keys_are_recognised() {
        for k in [
            "sasl.password",
            "ssl.key.password",
            "ssl.keystore.password",
            "sasl.oauthbearer.client.secret",
            "ssl.key.pem",
            "sasl.jaas.config",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in ["bootstrap.servers", "security.protocol", "sasl.username", "ssl.ca.location"] {
            assert!(!is_secret_key(k), "{k}");
        }
    }
}
