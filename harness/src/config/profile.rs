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
    /// SASL/OAUTHBEARER tokens made by fleetstorm: `msk_iam` (Amazon MSK IAM) or
    /// `unsecured_jwt` (Kafka's unsecured JWT, for local tests). With it, `security.protocol`
    /// defaults to `SASL_SSL` (`msk_iam`) or `SASL_PLAINTEXT` (`unsecured_jwt`) and
    /// `sasl.mechanism` to `OAUTHBEARER`; values that contradict them are refused. For OIDC
    /// (client credentials), leave this out and set librdkafka's own properties
    /// (`sasl.oauthbearer.method: oidc`, `sasl.oauthbearer.client.id`, ...): librdkafka fetches
    /// those tokens itself. See docs/oauthbearer.md.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauthbearer: Option<OauthBearer>,
    /// The target's own metrics, sampled during the run onto the report's timeline (its
    /// "Backbone" section): Prometheus/OpenMetrics endpoints, and what the Kafka protocol tells
    /// without any agent (partitions' leaders and in-sync replicas). Default: the protocol only,
    /// every 5s. See docs/backbone.md.
    #[serde(default)]
    pub metrics: Metrics,
    /// Values the profile took from secret-looking environment variables or put into
    /// secret-looking properties: known to the run's redactor before anything is printed.
    #[serde(skip)]
    #[schemars(skip)]
    pub secrets: Vec<String>,
}

/// Where the target's own metrics come from.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// How often each Prometheus endpoint is scraped. Default `1s`.
    #[serde(default = "default_scrape_interval")]
    pub interval: Dur,
    /// How often the cluster's metadata (leaders, in-sync replicas) is sampled through the Kafka
    /// protocol, `0s` for never. Default `5s`.
    #[serde(default = "default_admin_interval")]
    pub admin_interval: Dur,
    /// Prometheus / OpenMetrics endpoints, usually one per broker.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prometheus: Vec<PromSource>,
    /// After the readers drained, keep sampling until the metadata shows every partition led
    /// and fully in sync again, for at most this long (the report says after how long, or that
    /// it did not). `0s` (the default) ends sampling with the run. Needs `admin_interval`.
    #[serde(default)]
    pub settle: Dur,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            interval: default_scrape_interval(),
            admin_interval: default_admin_interval(),
            prometheus: Vec::new(),
            settle: Dur::default(),
        }
    }
}

fn default_scrape_interval() -> Dur {
    Dur::from_secs(1)
}

fn default_admin_interval() -> Dur {
    Dur::from_secs(5)
}

/// One Prometheus endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PromSource {
    /// `http://host:port/path` (or `https://`).
    pub url: String,
    /// The broker id this endpoint describes (its series are labelled with it). Leave it out
    /// for an endpoint that reports several brokers with a label of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker: Option<i32>,
    /// Whose metric names it exposes: `kafka_jmx` (Apache Kafka with the Prometheus JMX exporter
    /// and `scripts/kafka-jmx-exporter.yaml`'s rules), `redpanda` (`/public_metrics`).
    #[serde(default)]
    pub vocabulary: Vocabulary,
}

/// The metric names a vendor's endpoint uses (mapped to one vocabulary in `backbone/vocab.rs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Vocabulary {
    #[default]
    KafkaJmx,
    Redpanda,
}

impl Metrics {
    /// Problems with this section, as `(field path, message)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let ms = self.interval.0.as_millis();
        if !(200..=60_000).contains(&ms) {
            out.push(("metrics.interval".into(), "interval must be between 200ms and 1m".into()));
        }
        let admin = self.admin_interval.0.as_millis();
        if admin != 0 && !(1_000..=300_000).contains(&admin) {
            out.push((
                "metrics.admin_interval".into(),
                "admin_interval must be 0s (never) or between 1s and 5m".into(),
            ));
        }
        if self.settle.0 > std::time::Duration::from_secs(3600) {
            out.push(("metrics.settle".into(), "settle must be at most 1h".into()));
        }
        if !self.settle.0.is_zero() && self.admin_interval.0.is_zero() {
            out.push((
                "metrics.settle".into(),
                "settle waits for what the metadata says: admin_interval must not be 0s".into(),
            ));
        }
        for (i, s) in self.prometheus.iter().enumerate() {
            let scheme_ok = s.url.starts_with("http://") || s.url.starts_with("https://");
            let host = s.url.split_once("://").map_or("", |(_, rest)| rest);
            if !scheme_ok || host.is_empty() || host.starts_with('/') || s.url.chars().any(char::is_whitespace) {
                out.push((
                    format!("metrics.prometheus[{i}].url"),
                    format!("`{}` is not an http:// or https:// URL", s.url),
                ));
            }
        }
        out
    }
}

/// Who makes the OAUTHBEARER tokens.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OauthBearer {
    /// Amazon MSK IAM: a SigV4-signed token from the standard AWS credential chain
    /// (environment, shared profile files, web identity for IRSA, EKS Pod Identity / ECS
    /// container credentials, EC2 instance metadata), made again before it expires.
    MskIam(MskIam),
    /// Kafka's unsecured JWT (`alg: none`), accepted by brokers that validate with Kafka's
    /// `OAuthBearerUnsecuredValidatorCallbackHandler`: local and CI clusters only.
    UnsecuredJwt(UnsecuredJwt),
}

/// The `msk_iam` token provider.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct MskIam {
    /// Required. The AWS region of the MSK cluster, e.g. `us-east-1` (the token is signed for
    /// `kafka.<region>.amazonaws.com`).
    pub region: String,
}

/// The `unsecured_jwt` token provider.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct UnsecuredJwt {
    /// Required. The principal (the token's `sub` claim), e.g. `fleetstorm`.
    pub principal: String,
    /// How long each token is valid, e.g. `15m`; librdkafka asks for a new one at 80 % of it.
    /// Default `1h`.
    #[serde(default = "default_jwt_lifetime")]
    pub lifetime: Dur,
}

fn default_jwt_lifetime() -> Dur {
    Dur::from_secs(3600)
}

impl OauthBearer {
    /// The `security.protocol` set when the profile does not say.
    pub fn default_protocol(&self) -> &'static str {
        match self {
            OauthBearer::MskIam(_) => "SASL_SSL",
            OauthBearer::UnsecuredJwt(_) => "SASL_PLAINTEXT",
        }
    }

    /// Problems with this section on a `kind` target with these librdkafka properties, as
    /// `(field path, message)`.
    pub fn problems(&self, kind: TargetKind, librdkafka: &BTreeMap<String, String>) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if kind == TargetKind::Embedded {
            out.push((
                "oauthbearer".into(),
                "the embedded cluster does not authenticate: `oauthbearer` needs `kind: kafka`".into(),
            ));
        }
        let prop = |k: &str| librdkafka.get(k).map(|v| (format!("librdkafka.{k}"), v.trim().to_ascii_uppercase()));
        match self {
            OauthBearer::MskIam(m) => {
                let r = &m.region;
                let label = !r.is_empty()
                    && r.len() <= 32
                    && r.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !r.starts_with('-')
                    && !r.ends_with('-');
                if !label {
                    out.push((
                        "oauthbearer.msk_iam.region".into(),
                        format!("`{r}` is not an AWS region name (like `us-east-1`)"),
                    ));
                }
            }
            OauthBearer::UnsecuredJwt(j) => {
                if j.principal.is_empty()
                    || j.principal.chars().any(|c| c == '"' || c == '\\' || c.is_whitespace() || c.is_control())
                {
                    out.push((
                        "oauthbearer.unsecured_jwt.principal".into(),
                        "the principal must be non-empty, without quotes, backslashes or spaces".into(),
                    ));
                }
                let secs = j.lifetime.0.as_secs();
                if !(10..=86_400).contains(&secs) {
                    out.push((
                        "oauthbearer.unsecured_jwt.lifetime".into(),
                        "lifetime must be between 10s and 24h".into(),
                    ));
                }
            }
        }
        if let Some((path, v)) = prop("security.protocol") {
            let ok = match self {
                // MSK's IAM listeners are TLS only (port 9098, 9198 public).
                OauthBearer::MskIam(_) => v == "SASL_SSL",
                OauthBearer::UnsecuredJwt(_) => v == "SASL_SSL" || v == "SASL_PLAINTEXT",
            };
            if !ok {
                let want = match self {
                    OauthBearer::MskIam(_) => "`SASL_SSL` (MSK's IAM listeners are TLS only)",
                    OauthBearer::UnsecuredJwt(_) => "`SASL_PLAINTEXT` or `SASL_SSL`",
                };
                out.push((
                    path,
                    format!("`oauthbearer` needs security.protocol {want}; leave it out to get the default"),
                ));
            }
        }
        for key in ["sasl.mechanism", "sasl.mechanisms"] {
            if let Some((path, v)) = prop(key)
                && v != "OAUTHBEARER"
            {
                out.push((path, "`oauthbearer` needs the OAUTHBEARER mechanism; leave it out to get it".into()));
            }
        }
        if let Some((path, v)) = prop("sasl.oauthbearer.method")
            && v == "OIDC"
        {
            out.push((
                path,
                "`sasl.oauthbearer.method: oidc` is librdkafka's own token provider; use it or `oauthbearer`, not both"
                    .into(),
            ));
        }
        if let Some((path, v)) = prop("enable.sasl.oauthbearer.unsecure.jwt")
            && v == "TRUE"
        {
            out.push((
                path,
                "librdkafka's own unsecured JWT and `oauthbearer` are exclusive; use `oauthbearer: {unsecured_jwt: ...}`".into(),
            ));
        }
        out
    }
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
    /// How long `restart` (and the network commands) may take. Default `120s`.
    #[serde(default = "default_command_timeout")]
    pub timeout: Dur,
    /// Network faults, which signals cannot do: commands as in the `command` mechanism
    /// (`network_apply` with `{broker}`, `{network}`..., and `network_clear`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_apply: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_clear: Option<String>,
    /// Broker replacement (`kind: broker_replace`): stop broker `{broker}`, wipe its partition
    /// data, start it empty and return once it is back in every ISR. Undone by `restart`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace: Option<String>,
    /// Add broker `{broker}` and reassign `{topics}` over every broker (`{move_args}`:
    /// `--topics T,... [--throttle B]`), returning once the reassignment completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_out: Option<String>,
    /// Reassign `{topics}` off broker `{broker}`, then stop it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_in: Option<String>,
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
    /// Degrade or cut broker `{broker}`'s links. Placeholders: `{links}` (clients, peers, all),
    /// `{delay_ms}`, `{jitter_ms}`, `{loss_pct}`, `{rate_kbps}` (0 when not set), `{partition}`
    /// (true/false) and `{network}` (all of them as `--links clients --delay-ms 100 ...`, the
    /// shape `scripts/kafka-cluster.sh net {broker} apply` takes). E.g. `tc qdisc add dev eth0
    /// root netem delay {delay_ms}ms {jitter_ms}ms loss {loss_pct}%` over ssh, or a Chaos Mesh
    /// NetworkChaos (docs/faults.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_apply: Option<String>,
    /// Undo it; must succeed when nothing is applied (it also runs at `fleetstorm restore`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_clear: Option<String>,
    /// Replace broker `{broker}`: stop it, wipe its data, start it empty, return once it is back
    /// in every ISR (undone by `broker_start`). A line `fleetstorm: completed_s=S bytes_moved=B
    /// bytes_source=metrics|log-dirs` in its output goes into the report (docs/faults.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_replace: Option<String>,
    /// Add broker `{broker}` and move partitions onto it (`{topics}`: the scenario's topics,
    /// comma separated; `{throttle}`: bytes per second, 0 for none; `{move_args}`: both as
    /// `--topics T,... --throttle B`), e.g. a Cruise Control `add_broker` request
    /// (docs/faults.md). Returns once the movement completed; undone by `scale_in`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_out: Option<String>,
    /// Move partitions off broker `{broker}` and stop it, e.g. Cruise Control's
    /// `remove_broker`. Undone by `scale_out`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_in: Option<String>,
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
            network_apply: None,
            network_clear: None,
            broker_replace: None,
            scale_out: None,
            scale_in: None,
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
            oauthbearer: None,
            metrics: Metrics::default(),
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

    /// The librdkafka properties of every client: the profile's, with `oauthbearer`'s defaults
    /// (`security.protocol`, `sasl.mechanism`) where the profile leaves them out.
    pub fn client_properties(&self) -> BTreeMap<String, String> {
        let mut props = self.librdkafka.clone();
        if let Some(o) = &self.oauthbearer {
            props.entry("security.protocol".into()).or_insert_with(|| o.default_protocol().into());
            if !props.contains_key("sasl.mechanisms") {
                props.entry("sasl.mechanism".into()).or_insert_with(|| "OAUTHBEARER".into());
            }
        }
        props
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

    fn problems_of(text: &str) -> Vec<String> {
        match crate::config::parse_profile("p.yaml", text, &env) {
            Ok(_) => Vec::new(),
            Err(crate::config::ConfigError::Invalid { diagnostics, .. }) => {
                diagnostics.iter().map(ToString::to_string).collect()
            }
            Err(e) => vec![e.to_string()],
        }
    }

    const KAFKA: &str = "name: k\nkind: kafka\nbootstrap_servers: h:9098\n";

    #[test]
    fn settling_needs_the_metadata_and_a_bound() {
        assert!(problems_of(&format!("{KAFKA}metrics:\n  settle: 90s\n")).is_empty());
        let p = problems_of(&format!("{KAFKA}metrics:\n  settle: 90s\n  admin_interval: 0s\n"));
        assert!(
            p.iter().any(|d| d.contains("p.yaml:5") && d.contains("metrics.settle") && d.contains("admin_interval")),
            "{p:?}"
        );
        let p = problems_of(&format!("{KAFKA}metrics:\n  settle: 2h\n"));
        assert!(p.iter().any(|d| d.contains("metrics.settle") && d.contains("at most 1h")), "{p:?}");
    }

    #[test]
    fn an_oauthbearer_section_sets_the_sasl_defaults_it_needs() {
        let p = crate::config::parse_profile(
            "p.yaml",
            &format!("{KAFKA}oauthbearer:\n  msk_iam: {{region: eu-west-1}}\n"),
            &env,
        )
        .unwrap();
        assert_eq!(p.oauthbearer, Some(OauthBearer::MskIam(MskIam { region: "eu-west-1".into() })));
        let props = p.client_properties();
        assert_eq!(props["security.protocol"], "SASL_SSL");
        assert_eq!(props["sasl.mechanism"], "OAUTHBEARER");
        let p = crate::config::parse_profile(
            "p.yaml",
            &format!("{KAFKA}oauthbearer: {{unsecured_jwt: {{principal: fleet}}}}\nlibrdkafka: {{sasl.mechanisms: oauthbearer}}\n"),
            &env,
        )
        .unwrap();
        assert_eq!(
            p.oauthbearer,
            Some(OauthBearer::UnsecuredJwt(UnsecuredJwt { principal: "fleet".into(), lifetime: Dur::from_secs(3600) }))
        );
        let props = p.client_properties();
        assert_eq!(props["security.protocol"], "SASL_PLAINTEXT");
        assert!(!props.contains_key("sasl.mechanism"), "sasl.mechanisms is the same property: not set twice");
        // Without the section, the properties are the profile's own.
        let plain = crate::config::parse_profile("p.yaml", KAFKA, &env).unwrap();
        assert!(plain.client_properties().is_empty());
    }

    #[test]
    fn oauthbearer_contradictions_are_located_in_the_file() {
        let text = format!(
            "{KAFKA}oauthbearer:\n  msk_iam:\n    region: US_EAST_1\nlibrdkafka:\n  security.protocol: SASL_PLAINTEXT\n  \
             sasl.mechanism: SCRAM-SHA-512\n  sasl.oauthbearer.method: OIDC\n  enable.sasl.oauthbearer.unsecure.jwt: \"true\"\n"
        );
        let p = problems_of(&text);
        let want = [
            "p.yaml:6:13: oauthbearer.msk_iam.region: `US_EAST_1` is not an AWS region name",
            "p.yaml:8:22: librdkafka.security.protocol: `oauthbearer` needs security.protocol `SASL_SSL`",
            "p.yaml:9:19: librdkafka.sasl.mechanism: `oauthbearer` needs the OAUTHBEARER mechanism",
            "p.yaml:10:28: librdkafka.sasl.oauthbearer.method: `sasl.oauthbearer.method: oidc` is librdkafka's own",
            "p.yaml:11:41: librdkafka.enable.sasl.oauthbearer.unsecure.jwt: librdkafka's own unsecured JWT",
        ];
        assert_eq!(p.len(), want.len(), "{p:#?}");
        for w in want {
            assert!(p.iter().any(|d| d.starts_with(w)), "missing {w} in {p:#?}");
        }
    }

    #[test]
    fn oauthbearer_fields_are_checked() {
        let p = problems_of(&format!(
            "{KAFKA}oauthbearer:\n  unsecured_jwt: {{principal: \"a b\", lifetime: 5s, scope: x}}\n"
        ));
        assert!(p.iter().any(|d| d.contains("unknown field `scope`")), "{p:#?}");
        let p = problems_of(&format!("{KAFKA}oauthbearer:\n  unsecured_jwt: {{principal: \"a b\", lifetime: 5s}}\n"));
        assert!(p.iter().any(|d| d.starts_with("p.yaml:5:30: oauthbearer.unsecured_jwt.principal:")), "{p:#?}");
        assert!(p.iter().any(|d| d.contains("lifetime must be between 10s and 24h")), "{p:#?}");
        let p = problems_of(&format!("{KAFKA}oauthbearer: {{msk_iam: {{}}}}\n"));
        assert!(p.iter().any(|d| d.contains("region")), "{p:#?}");
        let p = problems_of(&format!("{KAFKA}oauthbearer: {{kerberos: {{}}}}\n"));
        assert!(p.iter().any(|d| d.contains("msk_iam") && d.contains("unsecured_jwt")), "{p:#?}");
        let p = problems_of("name: e\nkind: embedded\noauthbearer: {unsecured_jwt: {principal: x}}\n");
        assert!(p.iter().any(|d| d.contains("needs `kind: kafka`")), "{p:#?}");
        // SASL_SSL is fine for an unsecured JWT, and OAUTHBEARER in any case.
        let ok = format!(
            "{KAFKA}oauthbearer: {{unsecured_jwt: {{principal: x}}}}\nlibrdkafka: {{security.protocol: sasl_ssl, sasl.mechanism: OAuthBearer}}\n"
        );
        assert_eq!(problems_of(&ok), Vec::<String>::new());
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
