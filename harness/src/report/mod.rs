//! The report: `report.json` first; everything else (summary, charts, comparisons) is drawn from
//! it alone. The JSON schema is generated from these types (`docs/report.schema.json`, kept in
//! sync by a test) and their doc comments are its documentation.

pub mod assemble;
pub mod backbone;
pub mod charts;
pub mod compat;
pub mod error;
pub mod faults;
#[cfg(test)]
pub(crate) mod fixture;
pub mod fmt;
pub mod gates;
pub mod harness;
pub mod html;
pub mod interactive;
pub mod schema;
pub mod shapes;
pub mod summary;
pub mod table;

use std::collections::BTreeMap;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::scenario::Scenario;
pub use schema::{AuditCounts, LatencySummary, RebalanceEvent, SpectrumPoint, TimelinePoint};

/// Bumped on any incompatible change to the report's shape.
pub const SCHEMA_VERSION: u32 = 1;

/// A run's report.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Report {
    pub schema_version: u32,
    pub fleetstorm_version: String,
    /// Random per run; carried in every record the run writes.
    pub run_id: String,
    /// `completed`: ran its full duration. `aborted`: interrupted (Ctrl-C, SIGTERM).
    /// `failed`: could not start, or lost its target.
    pub status: Status,
    /// What stopped an aborted or failed run (absent for a completed one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<StopCause>,
    /// One shard of a campaign (`run --shard I/N`); absent for a single run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<CampaignInfo>,
    /// A report merged from a campaign's shards (`fleetstorm merge`); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<MergeInfo>,
    /// Why the run was aborted or failed, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    pub scenario: ScenarioInfo,
    pub target: TargetInfo,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub ended_at: String,
    /// Seconds the load ran (sending), from its start to the last send.
    pub load_s: f64,
    /// Seconds from the end of warm-up to the end of the load: the window rates are computed on.
    pub measured_s: f64,
    /// Seconds the whole run took, connection and drain included.
    pub elapsed_s: f64,
    /// Which clock latencies were measured on.
    pub clock: String,
    /// Things the reader should know before trusting the numbers.
    pub warnings: Vec<String>,
    /// fleetstorm's own resource use, and whether it limited the run.
    #[serde(default)]
    pub harness: HarnessReport,
    /// Max-rate benchmarks only (`fleetstorm bench produce`): records acknowledged from the first
    /// send to the last acknowledgement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rate: Option<MaxRate>,
    /// Every gate and its verdict.
    #[serde(default)]
    pub gates: Vec<gates::GateResult>,
    /// Errors by kind: delivery errors (`MessageTimedOut`...), send errors (`send.*`), consumer
    /// errors (`consumer.<group>.*`) and client-level errors (`client.*`).
    pub errors: BTreeMap<String, u64>,
    pub produce: ProduceReport,
    /// Per consumer group, by name.
    pub consumers: BTreeMap<String, GroupReport>,
    pub audit: AuditReport,
    /// Each fault, when it happened, and the target's recovery.
    pub faults: Vec<faults::FaultReport>,
    /// Each occurrence of each reconnect wave.
    pub waves: Vec<shapes::WaveReport>,
    /// Acknowledged records and latency per partition: how even the load was, and how the
    /// hottest partitions fared. Absent for a run that never reached its load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<schema::Partitions>,
    /// Percentile spectra of the main latency histograms (after warm-up), for charts and for
    /// comparisons: `produce.latency_from_intended`, `produce.latency_from_send`,
    /// `consumers.<group>.e2e_latency`.
    pub spectra: BTreeMap<String, Vec<SpectrumPoint>>,
    /// One point per second since the load started.
    pub timeline: Vec<TimelinePoint>,
    /// What the workload put on the wire and kept: the measured drivers of cost lines
    /// (`fleetstorm cost` prices them). Absent for a run that never reached its load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_drivers: Option<schema::CostDrivers>,
    /// The target's own metrics on the run's timeline (the profile's `metrics`), and what moved
    /// first in each stress window. Absent for a run that never reached its load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backbone: Option<schema::Backbone>,
    /// The run priced under each pricing file given to `run --pricing` (or `merge --pricing`):
    /// estimates at the user's prices, what `cost.*` gates read. Empty when it was not priced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cost: Vec<schema::CostEstimate>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Completed,
    Aborted,
    Failed,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Completed => "completed",
            Status::Aborted => "aborted",
            Status::Failed => "failed",
        })
    }
}

/// What stopped a run before its end, as a type: the exit code and comparisons read this, never
/// the wording of `status_reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StopCause {
    /// SIGINT or SIGTERM (status `aborted`).
    Interrupted,
    /// A gate with `abort_on_fail` failed during the run (status `aborted`).
    Gate,
    /// The target could not be reached or set up: connection, topics, offsets (status `failed`).
    Setup,
    /// No acknowledgement for the scenario's `target_timeout` (status `failed`).
    TargetLost,
    /// A driver failed or a thread of the harness died (status `failed`).
    Harness,
    /// The load stopped before its duration for another reason (status `failed`).
    CutShort,
}

impl StopCause {
    /// The status a run stopped this way ends with.
    pub fn status(self) -> Status {
        match self {
            StopCause::Interrupted | StopCause::Gate => Status::Aborted,
            StopCause::Setup | StopCause::TargetLost | StopCause::Harness | StopCause::CutShort => Status::Failed,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ScenarioInfo {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub file: String,
    /// SHA-256 of the scenario as run (after `--duration`/`--seed` overrides): two runs with the
    /// same fingerprint ran the same workload.
    pub fingerprint: String,
    pub seed: u64,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub devices: u64,
    /// The scenario as run, every default filled in.
    pub definition: Scenario,
}

impl TargetInfo {
    /// What a report says of the profile's target; secret-looking properties redacted.
    pub fn of(p: &crate::config::Profile, bootstrap: &str, brokers: &[i32]) -> TargetInfo {
        TargetInfo {
            profile: p.name.clone(),
            kind: match p.kind {
                crate::config::profile::TargetKind::Embedded => "embedded".into(),
                crate::config::profile::TargetKind::Kafka => "kafka".into(),
            },
            bootstrap_servers: bootstrap.to_string(),
            brokers: brokers.to_vec(),
            librdkafka: crate::config::profile::Redactor::redact_map(&p.librdkafka),
            oauthbearer: None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct TargetInfo {
    /// The profile's name (`embedded` when none was given).
    pub profile: String,
    /// `embedded` or `kafka`.
    pub kind: String,
    pub bootstrap_servers: String,
    pub brokers: Vec<i32>,
    /// librdkafka properties from the profile, secrets replaced by `[redacted]`.
    pub librdkafka: BTreeMap<String, String>,
    /// SASL/OAUTHBEARER tokens fleetstorm made for the run's clients (none without a provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauthbearer: Option<schema::TokenTally>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct ProduceReport {
    /// Events whose intended time fell inside the load.
    pub planned: u64,
    /// Records handed to the client library.
    pub attempted: u64,
    pub acked: u64,
    pub failed: u64,
    /// Still unacknowledged when the drain ended; purged and counted in `failed`.
    pub purged: u64,
    /// Of `planned`, events still due when the load's duration was over (the sender had fallen
    /// behind): counted, never sent late past the end.
    #[serde(default)]
    pub unsent_at_end: u64,
    /// Sends that found the client's queue full and waited.
    pub backpressure: u64,
    /// Events per second the schedule planned over the measured window (exact, seeded).
    pub planned_rate: f64,
    /// Events per second the scenario declares (the schedule's long-run average).
    pub nominal_rate: f64,
    /// Records sent per second over the measured window.
    pub achieved_rate: f64,
    /// Records acknowledged per second over the measured window.
    pub msgs_per_s: f64,
    /// Acknowledged value bytes per second over the measured window.
    pub bytes_per_s: f64,
    /// Acknowledgement latency from the intended send time (coordinated-omission free).
    pub latency_from_intended: LatencySummary,
    /// Acknowledgement latency from the actual send time.
    pub latency_from_send: LatencySummary,
    /// Actual minus intended send time.
    pub send_lag: LatencySummary,
    pub classes: BTreeMap<String, ClassReport>,
    /// Per firmware version (fleets with firmware only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub versions: BTreeMap<String, VersionReport>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct VersionReport {
    pub attempted: u64,
    pub acked: u64,
    pub acked_bytes: u64,
    /// Share of all records sent.
    pub share: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct ClassReport {
    pub topic: String,
    pub devices: u64,
    pub planned_rate: f64,
    pub attempted: u64,
    pub acked: u64,
    pub failed: u64,
    pub acked_bytes: u64,
    pub msgs_per_s: f64,
    pub bytes_per_s: f64,
    pub latency_from_intended: LatencySummary,
    pub latency_from_send: LatencySummary,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct GroupReport {
    pub group_id: String,
    pub members: u32,
    pub topics: Vec<String>,
    pub consumed: u64,
    /// Records not written by this run.
    pub foreign: u64,
    /// Records of this run read more than once (replays, restarts, redelivery).
    pub rereads: u64,
    /// Acknowledged records of the group's topics it never read: skipped (an at-least-once
    /// breach, e.g. across a restart) or not reached before the run ended (see `final_lag`).
    pub missed: u64,
    /// Up to 10 missed records, as `class/device#seq`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missed_examples: Vec<String>,
    pub msgs_per_s: f64,
    /// Consumption time minus intended send time, first reads of this run's records.
    pub e2e_latency: LatencySummary,
    /// Consumption time minus creation time: includes the time a device held the record while
    /// offline.
    pub event_age: LatencySummary,
    /// Largest lag (records) sampled once a second.
    pub max_lag: u64,
    /// Lag when the run ended.
    pub final_lag: u64,
    pub assignments: u32,
    pub revocations: u32,
    /// Every assignment and revocation, in time order (at most 1000).
    pub rebalances: Vec<RebalanceEvent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<DeadLetterReport>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replays: Vec<shapes::ReplayReport>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slowdowns: Vec<shapes::SlowdownReport>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restarts: Vec<shapes::RestartReport>,
}

/// A max-rate benchmark's result.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct MaxRate {
    pub acked: u64,
    pub seconds: f64,
    pub msgs_per_s: f64,
    pub mb_per_s: f64,
}

/// The harness's own resource use over the load, and its verdict on itself.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct HarnessReport {
    /// Cores fleetstorm could run on (affinity respected).
    pub cores: usize,
    /// Producer instances the run used (each its own librdkafka client and thread).
    #[serde(default)]
    pub producer_instances: u32,
    /// How `producer.instances: auto` chose that number (absent when the scenario set it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer_instances_why: Option<String>,
    pub cpu_pct_mean: f32,
    pub cpu_pct_peak: f32,
    /// The part of `cpu_pct_mean` used by librdkafka's own threads (client I/O, and the embedded
    /// cluster when it runs in-process); the rest is fleetstorm's own work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub librdkafka_cpu_pct_mean: Option<f32>,
    pub rss_mib_peak: f32,
    pub host_cpu_pct_mean: f32,
    /// Load seconds with fleetstorm's CPU at 90% or more of its cores.
    pub cpu_saturated_s: u32,
    /// Load seconds with send lag p99 over 10 ms while the client's queue had room (no
    /// backpressure): the harness, not the target, fell behind its schedule.
    pub lagging_s: u32,
    /// True when either lasted 3 seconds or more: the results say more about the harness than
    /// about the target.
    pub saturated: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct DeadLetterReport {
    pub topic: String,
    /// Records that failed processing and were sent to the dead-letter topic.
    pub routed: u64,
    pub acked: u64,
    pub failed: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct AuditReport {
    pub enabled: bool,
    #[serde(flatten)]
    pub counts: AuditCounts,
    /// The reader caught up with everything acknowledged before the drain ended. When false,
    /// `lost` may include records that were simply not read yet.
    pub complete: bool,
    /// Seconds spent after the load waiting for acknowledgements and readers.
    pub drain_s: f64,
    /// Whose the duplicates are, when there are any (see [`DuplicateCause`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicates_cause: Option<DuplicateCause>,
}

/// Whose a duplicate in the log is. fleetstorm's producer never sends a record twice itself (a
/// full queue is retried before the record is enqueued; a failed record is counted, not resent),
/// so a second copy comes from the client library's retries and what the target did with them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DuplicateCause {
    /// The producer was not idempotent: a retried batch whose first attempt had been written is
    /// written again. At-least-once delivery, as configured.
    ProducerRetries,
    /// The embedded cluster (librdkafka's mock) checks sequence numbers only for transactional
    /// producers, so it writes an idempotent producer's retried batch again when the first
    /// attempt's response was lost (a broker killed or paused with requests in flight). A
    /// limitation of the embedded cluster, not a finding about any real target.
    EmbeddedCluster,
    /// The producer was idempotent and the target kept more than one copy: the target's.
    Target,
}

impl DuplicateCause {
    /// Attribute duplicates: `idempotent` is the producer's effective `enable.idempotence`,
    /// `embedded` whether the target was the embedded cluster.
    pub fn of(idempotent: bool, embedded: bool) -> DuplicateCause {
        match (idempotent, embedded) {
            (false, _) => DuplicateCause::ProducerRetries,
            (true, true) => DuplicateCause::EmbeddedCluster,
            (true, false) => DuplicateCause::Target,
        }
    }

    /// A few words for the summary line.
    pub fn short(self) -> &'static str {
        match self {
            DuplicateCause::ProducerRetries => "retries without idempotence",
            DuplicateCause::EmbeddedCluster => "the embedded cluster's, see warnings",
            DuplicateCause::Target => "the target's",
        }
    }

    /// One sentence for the report's warnings.
    pub fn explain(self) -> &'static str {
        match self {
            DuplicateCause::ProducerRetries => {
                "the producer is not idempotent (enable.idempotence false): a retried batch whose first attempt \
                 had been written was written again (at-least-once, as configured)"
            }
            DuplicateCause::EmbeddedCluster => {
                "the embedded cluster (librdkafka's mock) checks sequence numbers only for transactional \
                 producers, so it wrote an idempotent producer's retry again after the first attempt's response \
                 was lost (a broker killed or paused with requests in flight): a limitation of the embedded \
                 cluster, not a finding about a real target"
            }
            DuplicateCause::Target => {
                "the producer was idempotent, and the target kept more than one copy at distinct offsets: the \
                 target did not deduplicate the client's retries"
            }
        }
    }
}

/// The campaign a shard run belongs to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CampaignInfo {
    /// Shared by every shard of the campaign; every record carries its hash as the run id.
    pub id: String,
    pub shard: u32,
    pub shards: u32,
    /// The agreed start of the load, Unix milliseconds: second 0 of every shard's timeline.
    pub start_unix_ms: u64,
    /// This shard's clock minus the target's, in ms, as observed at the start (absent when
    /// the target did not stamp records itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_skew_ms: Option<f64>,
}

/// What a merged report was made of.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MergeInfo {
    pub campaign: String,
    pub shards: u32,
    /// Shard indexes merged, and the ones missing (only with `--allow-partial`).
    pub merged: Vec<u32>,
    pub missing: Vec<u32>,
    /// Per merged shard: its own harness verdict, so a saturated shard is named.
    pub per_shard: Vec<ShardSummary>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ShardSummary {
    pub shard: u32,
    pub status: String,
    pub acked: u64,
    pub harness_saturated: bool,
    pub cpu_pct_mean: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_skew_ms: Option<f64>,
}

impl Report {
    /// Write `report.json` atomically (temporary file, then rename).
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        let tmp = dir.join(".report.json.tmp");
        std::fs::write(&tmp, json)?;
        std::fs::rename(tmp, dir.join("report.json"))
    }

    /// Write everything drawn from the report: `summary.md`, the charts (PNG and SVG),
    /// `report.html`, and `junit.xml` when there are gates. Returns the files written.
    pub fn write_derived(&self, dir: &Path) -> Result<Vec<std::path::PathBuf>, error::WriteError> {
        let mut files = Vec::new();
        let mut put = |name: &str, text: &str| -> Result<(), error::WriteError> {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|cause| error::WriteError::Io { path: path.clone(), cause })?;
            files.push(path);
            Ok(())
        };
        put("summary.md", &summary::markdown(self))?;
        let charts = charts::write_all(self, dir)?;
        put("report.html", &html::render(self, &charts))?;
        if !self.gates.is_empty() {
            put(
                "junit.xml",
                &gates::junit(&format!("fleetstorm.{}", self.scenario.name), &self.gates, self.elapsed_s),
            )?;
        }
        for c in &charts {
            files.push(dir.join(format!("{}.png", c.name)));
            files.push(dir.join(format!("{}.svg", c.name)));
        }
        Ok(files)
    }

    pub fn read(dir: &Path) -> Result<Report, error::ReadError> {
        use error::ReadError;
        let path = if dir.is_dir() { dir.join("report.json") } else { dir.to_path_buf() };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(cause) => return Err(ReadError::Io { path, cause }),
        };
        let v: serde_json::Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(cause) => return Err(ReadError::NotJson { path, cause }),
        };
        match v.get("schema_version").and_then(serde_json::Value::as_u64) {
            Some(n) if n == u64::from(SCHEMA_VERSION) => {}
            Some(found) => return Err(ReadError::SchemaVersion { path, found, reads: SCHEMA_VERSION }),
            None => return Err(ReadError::NotAReport { path }),
        }
        serde_json::from_value(v).map_err(|cause| ReadError::Invalid { path, cause })
    }
}

/// The JSON Schema of `report.json`.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Report)).unwrap_or_default()
}

#[cfg(test)]
mod cause_tests {
    use super::DuplicateCause;

    #[test]
    fn duplicates_are_attributed_by_idempotence_and_target() {
        assert_eq!(DuplicateCause::of(false, true), DuplicateCause::ProducerRetries);
        assert_eq!(DuplicateCause::of(false, false), DuplicateCause::ProducerRetries);
        assert_eq!(DuplicateCause::of(true, true), DuplicateCause::EmbeddedCluster);
        assert_eq!(DuplicateCause::of(true, false), DuplicateCause::Target);
        let json = serde_json::to_string(&DuplicateCause::EmbeddedCluster).unwrap_or_default();
        assert_eq!(json, "\"embedded_cluster\"");
    }
}
