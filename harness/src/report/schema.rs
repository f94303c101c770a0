//! The types written into `report.json` by the stages before the report: the published schema's
//! leaves. **This file is a leaf**: it imports nothing of the crate, so the recorder, the drivers
//! and the faults can fill these types without depending on the rest of `report/`, and a change
//! to a recorder internal cannot change the schema unnoticed (the recorder's windows and
//! collector state live in `recorder/`, these only describe what is published). The report's
//! own top-level types are in `report/mod.rs`, the per-fault and per-shape entries next to the
//! pure functions that build them (`faults.rs`, `shapes.rs`); the JSON schema in
//! `docs/report.schema.json` is generated from all of them.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// What a consumer-group member saw happen to its assignment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RebalanceKind {
    /// Partitions were assigned to the member.
    Assign,
    /// Partitions were taken away by a rebalance.
    Revoke,
    /// The member closed when the run was over (not a rebalance).
    Leave,
}

impl fmt::Display for RebalanceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RebalanceKind::Assign => "assign",
            RebalanceKind::Revoke => "revoke",
            RebalanceKind::Leave => "leave",
        })
    }
}

/// Percentiles of a latency histogram, in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LatencySummary {
    pub count: u64,
    pub min_us: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    /// Samples above one hour, recorded as one hour.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub clamped: u64,
}

/// One point of a latency percentile spectrum.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SpectrumPoint {
    pub percentile: f64,
    pub value_us: u64,
}

/// Percentiles of one timeline window, in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WindowLatency {
    pub count: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

/// A partition assignment or revocation seen by a consumer-group member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RebalanceEvent {
    /// Microseconds since the load started (0 before it).
    pub t_us: u64,
    pub member: u32,
    pub kind: RebalanceKind,
    pub partitions: usize,
}

/// One second of the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TimelinePoint {
    /// Seconds since the load started.
    pub t: u32,
    /// Records handed to the client library in this second.
    pub produced: u64,
    pub acked: u64,
    pub failed: u64,
    pub acked_bytes: u64,
    pub backpressure: u64,
    /// p99 of actual minus intended send time.
    pub send_lag_p99_us: u64,
    /// Acknowledgement latency from the intended send time, for records acknowledged in this second.
    pub produce: WindowLatency,
    /// Per consumer group.
    pub consumers: BTreeMap<String, GroupPoint>,
    /// Records the delivery audit read in this second.
    pub audit_reads: u64,
    /// Errors by kind in this second (producer delivery, consumer and client errors).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub errors: BTreeMap<String, u64>,
    /// Faults active during this second.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<String>,
    /// The audit's verdict on records whose *intended send time* falls in this second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditPoint>,
    /// Records sent per firmware version (fleets with firmware only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub versions: BTreeMap<String, u64>,
    /// Waves whose devices were offline or flushing during this second.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waves: Vec<String>,
    /// fleetstorm's own CPU and memory, and the host's CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harness: Option<HarnessPoint>,
}

/// One consumer group in one second.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GroupPoint {
    pub consumed: u64,
    /// Records acknowledged but not yet consumed by the group, sampled at the end of the second.
    pub lag: u64,
    /// Of `consumed`, records the group had read before.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rereads: u64,
    pub e2e: WindowLatency,
    /// Event age (from creation) p99 of first reads.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub age_p99_us: u64,
}

/// The audit's verdict.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AuditCounts {
    /// Messages the target acknowledged.
    pub acked: u64,
    /// Distinct messages of this run read back.
    pub seen: u64,
    /// Acknowledged, never read back, and the reader read past where it was: lost.
    pub lost: u64,
    /// Acknowledged, never read back, and the reader never got that far (it had not caught up
    /// when the audit's own drain ended): not verified either way, never counted as lost.
    #[serde(default)]
    pub unverified: u64,
    /// Extra copies in the log: the same message read back at more than one offset (a message
    /// written three times counts two).
    pub duplicates: u64,
    /// Up to 10 duplicates, as `class/device#seq at topic[partition]@offset` (the extra copy).
    #[serde(default)]
    pub duplicate_examples: Vec<String>,
    /// Reads of an offset the audit reader had already read (its fetch position went back, e.g.
    /// after a leader change). Not copies in the log: never counted in `duplicates`.
    #[serde(default)]
    pub rereads: u64,
    /// Read back after a later message of the same device and class.
    pub reordered: u64,
    /// The producer reported a failure, yet the record arrived.
    pub failed_but_seen: u64,
    /// Read back but neither acknowledged nor failed by the producer.
    pub unacked_seen: u64,
    /// Records in the audited topics from other runs or other writers (skipped).
    pub foreign: u64,
    /// Records of this campaign sent by other shards (skipped: each shard audits the records of
    /// its own devices; `fleetstorm merge` adds the shards' audits up).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub other_shards: u64,
    /// Up to 10 lost messages, as `class/device#seq`, to start an investigation from.
    pub lost_examples: Vec<String>,
}

/// The audit's verdict on the records intended to be sent in one second.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AuditPoint {
    pub acked: u64,
    pub lost: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unverified: u64,
    pub duplicates: u64,
    pub reordered: u64,
}

/// One second of the harness's own resource use.
/// How the acknowledged traffic spread over the partitions, and each partition's acknowledgement
/// latency (hot partitions). Records intended after warm-up only, like the run's rates.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Partitions {
    /// Partitions tracked at most, over all topics (in the scenario's topic order).
    pub tracked_limit: u32,
    /// Partitions past the limit, and the acknowledgements on them (counted, not broken down).
    pub untracked_partitions: u64,
    pub untracked_acked: u64,
    /// Per topic, by name.
    pub topics: BTreeMap<String, TopicPartitions>,
    /// A merged report (`fleetstorm merge`): why the per-partition latencies are absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One topic's partitions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TopicPartitions {
    /// Partitions of the topic tracked (all of them unless `all_tracked` is false).
    pub partitions: u32,
    pub all_tracked: bool,
    /// Acknowledged records on the tracked partitions, and per second of the measured window.
    pub acked: u64,
    pub per_s: f64,
    /// Each partition's share if the traffic were even (1 / partitions).
    pub even_share: f64,
    /// The busiest tenth of the partitions (at least one), busiest first.
    pub hottest: Vec<i32>,
    /// Their share of the topic's acknowledged records (0 to 1).
    pub hottest_share: f64,
    /// Acknowledgement p99 (from intended send time) of the hottest partitions' records together,
    /// and of the other partitions' records together (µs). Absent when there were none, and in a
    /// merged report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hottest_p99_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rest_p99_us: Option<u64>,
    /// Every partition that acknowledged a record, by partition number.
    pub lines: Vec<PartitionLine>,
}

/// One partition.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PartitionLine {
    pub partition: i32,
    pub acked: u64,
    pub per_s: f64,
    /// Share of the topic's acknowledged records (0 to 1).
    pub share: f64,
    /// Acknowledgement latency from the intended send time (2 significant digits; 0 in a merged
    /// report).
    pub p50_us: u64,
    pub p99_us: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HarnessPoint {
    /// fleetstorm's CPU use, in percent of one core (200 = two cores busy). With the embedded
    /// cluster this includes the cluster, which runs in the same process.
    pub cpu_pct: f32,
    /// The part of `cpu_pct` used by librdkafka's own threads (named `rdk:*`: the client's broker
    /// I/O threads, and the embedded cluster's). Absent where per-thread accounting is
    /// unavailable (non-Linux).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub librdkafka_cpu_pct: Option<f32>,
    /// fleetstorm's resident memory, MiB.
    pub rss_mib: f32,
    /// The whole machine's CPU use, percent of all cores.
    pub host_cpu_pct: f32,
}

/// One action a mechanism performed, as it goes into the report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ActionRecord {
    /// `broker_kill`, `broker_start`, `broker_resume`, `latency_remove`, `broker_replace`,
    /// `scale_out`, `scale_in`...
    pub action: String,
    pub broker: i32,
    /// Seconds since the load started, when the action began.
    pub at_s: f64,
    pub duration_s: f64,
    pub ok: bool,
    /// The command run, for the process and command mechanisms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// What the action printed or why it failed (last 4000 characters).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output: String,
    /// The partition data the action moved (broker replacement, scale-out, scale-in), as its
    /// command measured and reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub movement: Option<Movement>,
}

/// Partition data moved between brokers by one action, as the command measured it: its output
/// held a line `fleetstorm: completed_s=S bytes_moved=B bytes_source=metrics|log-dirs`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Movement {
    /// Seconds from the start of the movement until every moved partition was fully replicated
    /// on its new replicas (every ISR complete).
    pub completed_s: f64,
    /// Bytes moved; `None` if the command could not measure them (unverified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_moved: Option<u64>,
    pub bytes_source: BytesSource,
}

/// Where a movement's byte count comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BytesSource {
    /// The brokers' `ReassignmentBytesInPerSec` counters, before and after.
    Metrics,
    /// The record segments in the brokers' log directories.
    LogDirs,
    /// Not measured.
    Unverified,
}

impl BytesSource {
    pub fn as_str(self) -> &'static str {
        match self {
            BytesSource::Metrics => "metrics",
            BytesSource::LogDirs => "log-dirs",
            BytesSource::Unverified => "unverified",
        }
    }
}

impl Movement {
    /// The last `fleetstorm: completed_s=... bytes_moved=... bytes_source=...` line of `output`.
    pub fn parse(output: &str) -> Option<Movement> {
        let line = output.lines().rev().find_map(|l| l.trim().strip_prefix("fleetstorm:"))?;
        let mut completed = None;
        let mut bytes = None;
        let mut source = BytesSource::Unverified;
        for kv in line.split_whitespace() {
            match kv.split_once('=') {
                Some(("completed_s", v)) => completed = v.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0),
                Some(("bytes_moved", v)) => bytes = v.parse::<u64>().ok(),
                Some(("bytes_source", "metrics")) => source = BytesSource::Metrics,
                Some(("bytes_source", "log-dirs")) => source = BytesSource::LogDirs,
                _ => {}
            }
        }
        let bytes_moved = bytes.filter(|_| source != BytesSource::Unverified);
        let bytes_source = if bytes_moved.is_some() { source } else { BytesSource::Unverified };
        Some(Movement { completed_s: completed?, bytes_moved, bytes_source })
    }
}

impl std::fmt::Display for Movement {
    /// `12.3 s, 28.4 MB (metrics)` or `12.3 s, bytes unverified`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.bytes_moved {
            Some(b) => {
                write!(f, "{:.1} s, {:.1} MB ({})", self.completed_s, b as f64 / 1e6, self.bytes_source.as_str())
            }
            None => write!(f, "{:.1} s, bytes unverified", self.completed_s),
        }
    }
}

/// The compatibility matrix of one target (`fleetstorm check --compat`, written as
/// `compat.json`): what IoT pipelines rely on, each capability tried on scratch topics with the
/// actual requests, and what came back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CompatMatrix {
    /// The version of this file's layout.
    pub schema_version: u32,
    /// The profile's name.
    pub profile: String,
    /// The target was the embedded cluster (librdkafka's mock cluster).
    pub embedded: bool,
    /// The bootstrap servers the probes used.
    pub bootstrap: String,
    /// Broker ids the target listed.
    pub brokers: Vec<i32>,
    /// The librdkafka version that made the requests.
    pub librdkafka: String,
    /// The compression codecs this build of librdkafka has (its `builtin.features`).
    pub codecs_built: Vec<String>,
    /// When the check started (RFC 3339, UTC).
    pub started: String,
    /// How long the whole check took, seconds.
    pub elapsed_s: f64,
    /// The time each probe was allowed, seconds.
    pub probe_timeout_s: f64,
    /// One cell per capability, in [`Capability`] order.
    pub cells: Vec<CompatCell>,
    /// Scratch topics made for the check.
    pub scratch_topics: Vec<String>,
    /// What could not be cleaned up (scratch topics not deleted), and other remarks on the
    /// check itself (never on the target's verdicts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl CompatMatrix {
    /// The cell of `capability`, if the matrix has one.
    pub fn cell(&self, capability: Capability) -> Option<&CompatCell> {
        self.cells.iter().find(|c| c.capability == capability)
    }
}

/// One capability's verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CompatCell {
    pub capability: Capability,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// One line: what was tried and what was seen.
    pub detail: String,
    /// How long the probe took, milliseconds.
    pub elapsed_ms: u64,
}

/// What a capability's probe concluded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Outcome {
    /// The target did what was asked and the result was checked.
    Works,
    /// The target said no: `code` is its error code (librdkafka's name for it; `UnsupportedFeature`
    /// when the target does not offer the API at all).
    Refused { code: String },
    /// The target answered, but what it did is not what Kafka does.
    Wrong { expected: String, seen: String },
    /// Our side could not tell (a timeout, a codec this build lacks, a step before it that did not
    /// work): never the target's fault.
    Unverified,
}

impl Outcome {
    pub fn verdict(&self) -> Verdict {
        match self {
            Outcome::Works => Verdict::Works,
            Outcome::Refused { .. } => Verdict::Refused,
            Outcome::Wrong { .. } => Verdict::Wrong,
            Outcome::Unverified => Verdict::Unverified,
        }
    }
}

/// An [`Outcome`] without its evidence, for tables and comparisons.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Works,
    Refused,
    Wrong,
    Unverified,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Works => "works",
            Verdict::Refused => "refused",
            Verdict::Wrong => "wrong",
            Verdict::Unverified => "unverified",
        })
    }
}

/// What IoT pipelines rely on, one matrix row each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// CreateTopics: a scratch topic with 3 partitions, then seen in metadata.
    CreateTopics,
    /// DescribeConfigs of the scratch topic lists its `cleanup.policy`.
    DescribeConfigs,
    /// A topic created with `cleanup.policy=compact` and DescribeConfigs shows it (accepted; that
    /// compaction then happens takes too long to observe).
    CompactedTopic,
    /// A topic created with `message.timestamp.type=LogAppendTime` stamps records with the
    /// broker's time.
    LogAppendTime,
    /// `enable.idempotence=true`: records acknowledged and read back exactly once, in order.
    IdempotentProduce,
    /// A committed transaction's records are visible to a `read_committed` reader.
    TransactionCommit,
    /// An aborted transaction's records are invisible to `read_committed`, visible to
    /// `read_uncommitted`.
    TransactionAbort,
    /// ListOffsets by timestamp (`offsets_for_times`): replay by time.
    ReplayByTime,
    /// Record headers round trip (order, duplicate keys, binary and empty values).
    Headers,
    CompressionNone,
    CompressionGzip,
    CompressionSnappy,
    CompressionLz4,
    CompressionZstd,
    /// A 900 KiB record (under Kafka's default 1 MiB limit) acknowledged and read back.
    LargeRecord,
    /// DeleteRecords, then the partition's earliest offset moved there.
    DeleteRecords,
    /// The classic group protocol: join, assignment, consume, commit, committed offsets read back.
    ClassicGroup,
    /// The KIP-848 `consumer` group protocol (`group.protocol=consumer`): the same.
    ConsumerGroupProtocol,
}

impl Capability {
    /// Every capability, in matrix order.
    pub const ALL: [Capability; 18] = [
        Capability::CreateTopics,
        Capability::DescribeConfigs,
        Capability::CompactedTopic,
        Capability::LogAppendTime,
        Capability::IdempotentProduce,
        Capability::TransactionCommit,
        Capability::TransactionAbort,
        Capability::ReplayByTime,
        Capability::Headers,
        Capability::CompressionNone,
        Capability::CompressionGzip,
        Capability::CompressionSnappy,
        Capability::CompressionLz4,
        Capability::CompressionZstd,
        Capability::LargeRecord,
        Capability::DeleteRecords,
        Capability::ClassicGroup,
        Capability::ConsumerGroupProtocol,
    ];

    /// The row's name in tables.
    pub fn label(self) -> &'static str {
        match self {
            Capability::CreateTopics => "CreateTopics",
            Capability::DescribeConfigs => "DescribeConfigs",
            Capability::CompactedTopic => "compacted topic",
            Capability::LogAppendTime => "LogAppendTime topic",
            Capability::IdempotentProduce => "idempotent produce",
            Capability::TransactionCommit => "transaction commit",
            Capability::TransactionAbort => "transaction abort",
            Capability::ReplayByTime => "replay by time (ListOffsets)",
            Capability::Headers => "record headers",
            Capability::CompressionNone => "compression none",
            Capability::CompressionGzip => "compression gzip",
            Capability::CompressionSnappy => "compression snappy",
            Capability::CompressionLz4 => "compression lz4",
            Capability::CompressionZstd => "compression zstd",
            Capability::LargeRecord => "900 KiB record",
            Capability::DeleteRecords => "DeleteRecords",
            Capability::ClassicGroup => "group protocol classic",
            Capability::ConsumerGroupProtocol => "group protocol consumer (KIP-848)",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Where a run's SASL/OAUTHBEARER tokens came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenProvider {
    /// Amazon MSK IAM (SigV4-signed), the profile's `oauthbearer.msk_iam`.
    MskIam,
    /// The profile's `oauthbearer.unsecured_jwt`.
    UnsecuredJwt,
    /// librdkafka's unsecured JWT settings, its refreshes answered by fleetstorm.
    Librdkafka,
}

impl fmt::Display for TokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenProvider::MskIam => "msk_iam",
            TokenProvider::UnsecuredJwt => "unsecured_jwt",
            TokenProvider::Librdkafka => "librdkafka unsecured JWT",
        })
    }
}

impl fmt::Display for TokenTally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "OAUTHBEARER ({}): {} tokens issued (the latest {:.1}s after connecting), {} failed",
            self.provider, self.issued, self.latest_after_s, self.failed
        )
    }
}

/// The OAUTHBEARER tokens fleetstorm handed to librdkafka over the run (every client's first
/// token and each refresh librdkafka asked for), and the refreshes that failed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TokenTally {
    pub provider: TokenProvider,
    pub issued: u64,
    pub failed: u64,
    /// Seconds from the connection's start to the latest token issued: past the first tokens'
    /// refresh point (80 % of their lifetime), librdkafka renewed them during the run.
    pub latest_after_s: f64,
}

/// Counters from librdkafka's statistics for a set of clients (summed over their instances).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WireCounts {
    /// Bytes written to the brokers' sockets: every request, after compression.
    pub tx_bytes: u64,
    /// Bytes read from the brokers' sockets: every response (fetched records included).
    pub rx_bytes: u64,
    pub tx_requests: u64,
    pub rx_responses: u64,
    /// Keys plus values of the records produced, before compression (`txmsg_bytes`).
    pub tx_record_bytes: u64,
    /// Keys plus values of the records fetched, before decompression (`rxmsg_bytes`).
    pub rx_record_bytes: u64,
}

impl WireCounts {
    pub fn add(&mut self, o: &WireCounts) {
        self.tx_bytes += o.tx_bytes;
        self.rx_bytes += o.rx_bytes;
        self.tx_requests += o.tx_requests;
        self.rx_responses += o.rx_responses;
        self.tx_record_bytes += o.tx_record_bytes;
        self.rx_record_bytes += o.rx_record_bytes;
    }
}

/// What the workload put on the wire and kept: the measured drivers of a target's cost lines,
/// without prices (`fleetstorm cost` prices them). Wire figures come from librdkafka's statistics;
/// where one wire figure is split between classes or between live reads and re-reads, it is split
/// in proportion to the value bytes fleetstorm counted for each (an apportionment, said so here).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CostDrivers {
    /// Seconds the counters cover, the basis of every rate: the load, warm-up included
    /// (librdkafka's counters cannot be split at the warm-up; connection set-up and the drain's
    /// traffic are in them too).
    pub basis_s: f64,
    /// librdkafka's `statistics.interval.ms` for producers and group members; bytes a group
    /// member moved after its last callback (up to one interval per member instance) are missing.
    pub stats_interval_ms: u64,
    /// Statistics callbacks served, the time spent reading them, and documents that could not
    /// be read (their counters are missing, never taken as zero).
    pub stats_callbacks: u64,
    pub stats_parse_ms: f64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stats_unreadable: u64,
    pub produce: ProduceDrivers,
    /// Per consumer group, by name.
    pub groups: BTreeMap<String, GroupDrivers>,
    /// Per topic, by name.
    pub topics: BTreeMap<String, TopicDrivers>,
}

/// The producers' traffic.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProduceDrivers {
    /// The producers' clients together; absent when statistics were turned off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wire: Option<WireCounts>,
    /// Value bytes of acknowledged records, as fleetstorm counted them.
    pub value_bytes: u64,
    /// Per payload class, by name.
    pub classes: BTreeMap<String, ClassDrivers>,
}

/// One payload class's share of the producers' traffic.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ClassDrivers {
    pub topic: String,
    pub records: u64,
    /// Value bytes of acknowledged records.
    pub value_bytes: u64,
    /// The producers' socket bytes apportioned by value bytes (absent without statistics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wire_bytes: Option<u64>,
    /// Produce-side requests apportioned the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
}

/// One consumer group's reads.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GroupDrivers {
    /// Value bytes of first reads of this run's records (live reads).
    pub live_value_bytes: u64,
    /// Value bytes of records read again: replays, restarts, redelivery.
    pub reread_value_bytes: u64,
    /// Value bytes of records not written by this run.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub foreign_value_bytes: u64,
    /// The group's members together; absent when statistics were turned off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wire: Option<WireCounts>,
    /// `wire.rx_bytes` apportioned between live reads and re-reads by value bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_wire_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reread_wire_bytes: Option<u64>,
}

/// One topic's ingress, replication and retention.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TopicDrivers {
    /// Replication factor (the scenario's).
    pub replication: u16,
    /// `retention.ms` of the topic's declared config, in seconds; absent when not declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_s: Option<f64>,
    /// Producer socket bytes of the classes writing it (apportioned; absent without statistics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_wire_bytes: Option<u64>,
    /// Follower fetch traffic on a broker-replicated target: ingress × (replication − 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_bytes: Option<u64>,
    /// Bytes kept on broker disks at steady state at the measured ingress rate:
    /// ingress per second × replication × retention (absent without a declared retention).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retained_bytes: Option<f64>,
}

pub use crate::config::target_metric::{Combine, TargetMetric};

/// What kind of place a source reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// A Prometheus / OpenMetrics endpoint.
    Prometheus,
    /// The Kafka protocol (metadata: leaders, in-sync replicas), no agent needed.
    Admin,
}

/// One metrics source and how it fared.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BackboneSource {
    /// The URL (Prometheus) or `kafka protocol` (admin).
    pub name: String,
    pub kind: SourceKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker: Option<i32>,
    pub samples: u64,
    pub failures: u64,
    /// Mean time one sample took, ms.
    pub mean_ms: f64,
    /// The latest failure, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// One metric of one broker (or of the cluster, `broker` absent) from one source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BackboneSeries {
    pub metric: TargetMetric,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker: Option<i32>,
    pub kind: SourceKind,
    /// `[seconds since the load started, value]`, in time order.
    pub points: Vec<[f64; 2]>,
}

/// A metric that left its baseline during a stress window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Move {
    pub metric: TargetMetric,
    /// When it first left its baseline band, seconds since the load started.
    pub first_s: f64,
    /// Its mean over the baseline window.
    pub baseline: f64,
    /// Its value furthest from the baseline inside the window.
    pub peak: f64,
}

/// What the brokers' series did during one stress window, against the baseline window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Finding {
    /// `fault kill-leader`, `wave morning-reconnect#0`...
    pub window: String,
    pub from_s: f64,
    pub to_s: f64,
    /// The metrics that moved, first mover first.
    pub moves: Vec<Move>,
    /// The same in one sentence.
    pub text: String,
}

/// The target's own view of the run: its metrics on the run's timeline, and findings per
/// stress window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Backbone {
    pub sources: Vec<BackboneSource>,
    pub series: Vec<BackboneSeries>,
    /// The baseline window the findings compare against, `[from, to]` seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<[f64; 2]>,
    pub findings: Vec<Finding>,
    /// How the cluster settled after the run, when the profile asked to wait (`metrics.settle`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle: Option<Settle>,
}

/// The wait, after the readers drained, for the metadata to show every partition led and fully
/// in sync (`metrics.settle`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Settle {
    /// The most the run would wait, seconds.
    pub limit_s: f64,
    /// Seconds from the start of the wait to the first metadata sample with no under-replicated
    /// and no offline partition; none when it did not come within the limit (or the wait was
    /// interrupted, or no sample succeeded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_s: Option<f64>,
    /// When the wait started, seconds on the run's timeline.
    pub from_s: f64,
    /// Under-replicated plus offline partitions at the last sample of the wait; none when no
    /// sample succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy: Option<u64>,
}

impl Backbone {
    /// The cluster's value of `metric` per whole second: brokers combined per source
    /// (`TargetMetric::combine`), then the largest over sources (two sources of the same
    /// quantity, e.g. under-replicated partitions from the brokers and from metadata, agree or
    /// the worse one counts).
    pub fn cluster(&self, metric: TargetMetric) -> Vec<(f64, f64)> {
        // Each series by whole second (its last value in that second).
        let series: Vec<(SourceKind, BTreeMap<i64, f64>)> = self
            .series
            .iter()
            .filter(|s| s.metric == metric)
            .map(|s| {
                let by: BTreeMap<i64, f64> =
                    s.points.iter().filter(|[_, v]| v.is_finite()).map(|[t, v]| (t.floor() as i64, *v)).collect();
                (s.kind, by)
            })
            .collect();
        let seconds: std::collections::BTreeSet<i64> = series.iter().flat_map(|(_, by)| by.keys().copied()).collect();
        let mut out = Vec::new();
        for t in seconds {
            let mut best: Option<f64> = None;
            for kind in [SourceKind::Prometheus, SourceKind::Admin] {
                // A broker sampled a moment late in this second still counts with its
                // previous value (within 3 s), so a sum does not dip for a late scrape.
                let vs: Vec<f64> = series
                    .iter()
                    .filter(|(k, _)| *k == kind)
                    .filter_map(|(_, by)| by.range(t - 3..=t).next_back().map(|(_, v)| *v))
                    .collect();
                if vs.is_empty() {
                    continue;
                }
                let v = match metric.combine() {
                    Combine::Sum => vs.iter().sum(),
                    Combine::Max => vs.iter().copied().fold(f64::MIN, f64::max),
                    Combine::Min => vs.iter().copied().fold(f64::MAX, f64::min),
                };
                best = Some(best.map_or(v, |b: f64| b.max(v)));
            }
            if let Some(v) = best {
                out.push((t as f64, v));
            }
        }
        out
    }
}

/// A cost line, as a cloud bill groups meters (`fleetstorm cost`, `run --pricing`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CostLine {
    /// Brokers (instances or the service's broker-hours), as sized in the pricing file.
    Compute,
    /// Retained data: block storage, the service's storage or object storage, GB-month.
    Storage,
    /// Object-storage writes and reads (shared storage).
    ObjectRequests,
    /// Traffic between availability zones.
    CrossZone,
    /// Traffic leaving the region.
    Egress,
    /// The pricing file's fixed items.
    Fixed,
}

impl CostLine {
    pub fn name(self) -> &'static str {
        match self {
            CostLine::Compute => "compute",
            CostLine::Storage => "storage",
            CostLine::ObjectRequests => "object_requests",
            CostLine::CrossZone => "cross_zone",
            CostLine::Egress => "egress",
            CostLine::Fixed => "fixed",
        }
    }

    pub const ALL: [CostLine; 6] = [
        CostLine::Compute,
        CostLine::Storage,
        CostLine::ObjectRequests,
        CostLine::CrossZone,
        CostLine::Egress,
        CostLine::Fixed,
    ];
}

/// The workload behaviour (or the sizing) a part of a cost line comes from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum CostDriver {
    /// The cluster's size, whatever the workload does.
    Sizing,
    /// A fixed item of the pricing file.
    Fixed(String),
    /// A payload class's produce traffic (client to broker).
    Produce(String),
    /// Copies of a class's records made by the brokers.
    Replication(String),
    /// A class's records kept for the retention.
    Retention(String),
    /// A group's first reads.
    Live(String),
    /// A group's re-reads: replays, restarts, redelivery.
    Replay(String),
}

impl fmt::Display for CostDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CostDriver::Sizing => f.write_str("cluster size"),
            CostDriver::Fixed(n) => write!(f, "fixed: {n}"),
            CostDriver::Produce(c) => write!(f, "produce of {c}"),
            CostDriver::Replication(c) => write!(f, "replication of {c}"),
            CostDriver::Retention(c) => write!(f, "retention of {c}"),
            CostDriver::Live(g) => write!(f, "live reads by {g}"),
            CostDriver::Replay(g) => write!(f, "replay by {g}"),
        }
    }
}

/// The run priced under one pricing file (`run --pricing`, `merge --pricing`): an **estimate** at
/// the user's prices from the measured `cost_drivers`, at the run's rates; `cost.json` and
/// `cost.md` beside the report hold every part and the assumptions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CostEstimate {
    /// The pricing file's `name` (what `cost[NAME].monthly` gates select).
    pub pricing: String,
    /// The pricing file as given.
    pub file: String,
    pub currency: String,
    pub hourly: f64,
    /// 730 hours.
    pub monthly: f64,
    /// Each line, in the bill's order, with what drives it.
    pub lines: Vec<CostLineEstimate>,
}

/// One line of a [`CostEstimate`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CostLineEstimate {
    pub line: CostLine,
    pub hourly: f64,
    pub monthly: f64,
    /// The behaviours behind the line, largest first, each with its share of the line (0..=1).
    pub drivers: Vec<CostShare>,
}

/// A behaviour's share of a cost line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CostShare {
    pub driver: CostDriver,
    pub share: f64,
}
