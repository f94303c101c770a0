//! The scenario: what a device fleet sends, who reads it, for how long.
//!
//! The doc comments on these types are the user documentation of the scenario format
//! (`docs/scenario.md` is written from them). Every field is optional unless marked required;
//! unknown fields are errors.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

use super::dist::Dist;
use super::units::{ByteSize, Dur, Rate, Ratio};

mod faults;
mod groups;
pub use faults::{BrokerSelector, FaultKind, FaultSpec, Links, NetworkSpec};
pub use groups::{BatchSpec, ConsumerGroupSpec, DeadLetter, GroupRestart, Replay, ReplayTarget, Slowdown, StartOffset};

/// A scenario file.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
pub struct Scenario {
    /// Required. Short name, used in the report and in default consumer group ids.
    /// Letters, digits, `.`, `_` and `-`.
    pub name: String,
    /// What this scenario exercises and what to look at in its report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Required. Seed for every random choice (device phases, shares, sizes, arrivals). The same
    /// seed gives the same schedule of device events, whatever the target.
    pub seed: u64,
    /// Required. How long the load runs, warm-up included, e.g. `30s`, `10m`.
    pub duration: Dur,
    /// Initial part of the run left out of latency histograms and rates (still audited).
    #[serde(default)]
    pub warmup: Dur,
    /// After the load stops, how long to wait at most for outstanding acknowledgements, the
    /// delivery audit and the consumer groups to catch up. Default `30s`.
    #[serde(default = "default_drain")]
    pub drain: Dur,
    /// Abort the run (status `failed`, exit 3) when no acknowledgement arrives for this long
    /// while messages are outstanding. Default `60s`.
    #[serde(default = "default_target_timeout")]
    pub target_timeout: Dur,
    /// Required. The topics the fleet writes to. Created when missing; an existing topic whose
    /// partitions, replication or configs differ is reported as a warning.
    pub topics: Vec<TopicSpec>,
    /// Required. The simulated devices and what they send.
    pub fleet: Fleet,
    /// Producer settings shared by every payload class.
    #[serde(default)]
    pub producer: ProducerSpec,
    /// Consumer groups reading the fleet's topics while it runs.
    #[serde(default)]
    pub consumers: Vec<ConsumerGroupSpec>,
    /// The delivery audit: an extra reader that checks every acknowledged message arrived once.
    #[serde(default)]
    pub audit: AuditSpec,
    /// Faults injected during the load. The profile says how (its `faults` mechanism).
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
    /// Reconnect waves: part of the fleet goes offline, buffers its events, then flushes them.
    #[serde(default)]
    pub waves: Vec<WaveSpec>,
    /// Assertions checked at the end of the run (exit code 1 when one fails), e.g.
    /// `produce.latency.p99 < 250ms`, `audit.lost == 0`. See the README for the metrics.
    #[serde(default)]
    pub gates: Vec<GateSpec>,
}

/// A reconnect wave: at `at`, some devices go offline for `offline`. They keep creating events
/// into a bounded buffer (one per device and payload class); on reconnect (spread over
/// `reconnect_jitter`) they send the buffer in creation order at `flush_rate`, then carry on.
/// Buffered events keep their creation time, so the report separates event age from transport
/// latency.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
pub struct WaveSpec {
    /// Label in the report. Default `wave-<n>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Required. When the devices drop off, from the start of the load.
    pub at: Dur,
    /// Required. How long they stay offline (before the reconnect jitter).
    pub offline: Dur,
    /// Which devices: a cohort declared in `fleet.cohorts` (default: the whole fleet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohort: Option<String>,
    /// Share of those devices that go offline, chosen with the seed. Default `100%`.
    #[serde(default = "full_share")]
    pub share: Ratio,
    /// Each device reconnects at a seeded moment within this long after `offline` ends. Default `0`.
    #[serde(default)]
    pub reconnect_jitter: Dur,
    /// How fast a reconnected device sends its backlog (per device and class), e.g. `20/s`.
    /// Default: all at once, as fast as the producer allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flush_rate: Option<Rate>,
    /// The buffer of each device and payload class while offline.
    #[serde(default)]
    pub buffer: BufferSpec,
    /// Repeat the wave, e.g. `{every: 5m, times: 3}` (the same devices each time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<Repeat>,
}

impl WaveSpec {
    pub fn label(&self, index: usize) -> String {
        self.name.clone().unwrap_or_else(|| format!("wave-{}", index + 1))
    }
}

/// An offline device's buffer.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
pub struct BufferSpec {
    /// Events kept per device and payload class. Default 1000.
    #[serde(default = "default_capacity")]
    pub capacity: u32,
    /// What a full buffer drops: `drop_oldest` (keep the newest) or `drop_newest`. Drops are
    /// counted in the report. Default `drop_oldest`.
    #[serde(default)]
    pub overflow: Overflow,
}

impl Default for BufferSpec {
    fn default() -> Self {
        BufferSpec { capacity: default_capacity(), overflow: Overflow::default() }
    }
}

fn default_capacity() -> u32 {
    1000
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Overflow {
    #[default]
    DropOldest,
    DropNewest,
}

/// Repetition of a timed event.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
pub struct Repeat {
    /// Required. Time between the starts of two occurrences.
    pub every: Dur,
    /// Required. How many occurrences in all (the first included).
    pub times: u32,
}

fn default_drain() -> Dur {
    Dur::from_secs(30)
}

fn default_target_timeout() -> Dur {
    Dur::from_secs(60)
}

/// A topic the scenario writes to.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
pub struct TopicSpec {
    /// Required. Topic name.
    pub name: String,
    /// Number of partitions. Default 12.
    #[serde(default = "default_partitions")]
    pub partitions: u32,
    /// Replication factor. Default 3.
    #[serde(default = "default_replication")]
    pub replication: u16,
    /// Topic configs applied on creation, e.g. `retention.ms: 3600000`, `min.insync.replicas: 2`.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

fn default_partitions() -> u32 {
    12
}

fn default_replication() -> u16 {
    3
}

/// The simulated fleet.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
pub struct Fleet {
    /// Required. Number of simulated devices.
    pub devices: u64,
    /// Device id pattern: `{n}` is the device number, `{n:06}` pads it with zeros to 6 digits.
    /// The id is the record key. Default `device-{n:06}`.
    #[serde(default = "default_id_pattern")]
    pub id_pattern: String,
    /// Required. What the devices send: one entry per payload class.
    pub classes: Vec<PayloadClass>,
    /// Named groups of devices (regions, gateways, sites), as disjoint seeded shares of the
    /// fleet. Waves can target a cohort.
    #[serde(default)]
    pub cohorts: Vec<Cohort>,
    /// Firmware versions and rollouts between them. Payload classes can change size, headers and
    /// format per version (`classes[].versions`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<Firmware>,
}

/// A named group of devices.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
pub struct Cohort {
    /// Required.
    pub name: String,
    /// Required. Share of the fleet. Cohorts do not overlap; their shares add up to at most 100%.
    pub share: Ratio,
}

/// The fleet's firmware.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
pub struct Firmware {
    /// Required. Versions at the start, with their shares of the fleet (adding up to 100%).
    pub versions: Vec<FirmwareVersion>,
    /// Rollouts: devices move from one version to another over a window.
    #[serde(default)]
    pub rollouts: Vec<Rollout>,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
pub struct FirmwareVersion {
    /// Required, e.g. `"1.4"`.
    pub name: String,
    /// Share of the fleet running it at the start. Default `0%` (a version only rolled out to).
    #[serde(default)]
    pub share: Ratio,
}

/// A rollout: each selected device upgrades at a seeded moment within `[start, start + over]`, so
/// the new version's share ramps linearly across the window.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
pub struct Rollout {
    /// Only devices on this version upgrade (default: devices on any other version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Required. The version they move to (declared in `versions`).
    pub to: String,
    /// Required. When the rollout begins.
    pub start: Dur,
    /// Required. How long it takes to reach every selected device.
    pub over: Dur,
    /// Share of the eligible devices that upgrade. Default `100%`.
    #[serde(default = "full_share")]
    pub share: Ratio,
}

fn default_id_pattern() -> String {
    "device-{n:06}".into()
}

/// A kind of message some devices send at some rate.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
pub struct PayloadClass {
    /// Required. Class name, e.g. `heartbeat`, `telemetry`, `diagnostics`.
    pub name: String,
    /// Required. Topic this class is written to (one of `topics`).
    pub topic: String,
    /// Share of the fleet's devices that send this class, chosen with the seed. Default `100%`.
    #[serde(default = "full_share")]
    pub share: Ratio,
    /// When the devices send: `rate` (at `rate` or `total_rate`; the default) or `reconnect`:
    /// one record each time a device comes back from a reconnect wave, at the moment it
    /// reconnects, and nothing otherwise (the session, hello or state-sync message of a
    /// connection surge, beside the buffered flush). A `reconnect` class has no rate, shape or
    /// skew, and needs `waves`.
    #[serde(default)]
    pub trigger: Trigger,
    /// How often each participating device sends, e.g. `1/30s`. Give this or `total_rate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Rate>,
    /// The class's rate across all its devices, e.g. `2000/s`; spread evenly over them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_rate: Option<Rate>,
    /// How sends are spaced in time: `fixed` (periodic, each device at its own seeded phase) or
    /// `poisson` (exponential gaps). Default `fixed`.
    #[serde(default)]
    pub arrival: Arrival,
    /// The record key: `device_id` (the device's id; all of a device's records land on one
    /// partition in order, and the audit checks that order) or `none` (unkeyed: librdkafka's
    /// sticky partitioner spreads records over partitions in large batches; per-device order is
    /// not guaranteed, so the audit counts loss and duplicates but not reordering). Default
    /// `device_id`.
    #[serde(default)]
    pub key: KeyMode,
    /// Size of each record value: a plain size (`256B`) or a distribution. Default `256B`.
    #[serde(default = "default_size")]
    pub size: Dist<ByteSize>,
    /// Record value format. Both carry the fields the delivery audit needs. Default `json`.
    #[serde(default)]
    pub format: ValueFormat,
    /// Record headers added to every message of this class.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// How the rate changes over the run: `{stages: [...]}` (steps and linear ramps) or
    /// `{diurnal: {...}}` (a daily curve, compressible to a short period). Default: constant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<RateShape>,
    /// Per firmware version: a different size, format or extra headers (e.g. a schema header).
    #[serde(default)]
    pub versions: BTreeMap<String, VersionOverride>,
    /// Uneven activity over the class's devices: `{zipf: {exponent: 1.1}}` or
    /// `{hot: {share: 5%, factor: 20}}`. Records are keyed by device, so busy devices make hot
    /// partitions. `rate` stays the per-device *mean* (and `total_rate` the class's total): skew
    /// moves traffic between devices, it does not add any. Which devices are busy is chosen with
    /// the seed. Default: every device at the same rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skew: Option<Skew>,
}

/// When a class's devices send.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// At the class's rate.
    #[default]
    Rate,
    /// Once each time the device reconnects after a reconnect wave.
    Reconnect,
}

/// How a class's activity is spread over its devices.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Skew {
    /// Zipf's law: the device of (seeded) rank `r` sends at a rate proportional to
    /// `1 / r^exponent`. With `exponent: 1.1` over 60,000 devices the busiest device sends 14% of
    /// the class's records, and the busiest 1% of devices 73%.
    Zipf(ZipfSkew),
    /// A hot cohort: `share` of the class's devices send `factor` times as often as the others.
    Hot(HotSkew),
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
pub struct ZipfSkew {
    /// Required. Above 0 (0 would be even) and at most 4.
    pub exponent: f64,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
pub struct HotSkew {
    /// Required. Share of the class's devices that are hot, above 0% and at most 100%.
    pub share: Ratio,
    /// Required. How many times as often a hot device sends as a cold one: 1 to 10,000.
    pub factor: f64,
}

/// A class's payload under one firmware version.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
pub struct VersionOverride {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Dist<ByteSize>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<ValueFormat>,
    /// Headers added to (or replacing) the class's headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// A multiplier on a class's rate over time.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RateShape {
    /// From each stage's `at`, the rate is `factor` times the class's rate; with `ramp`, it moves
    /// linearly there from the previous factor over that long. Before the first stage: 1.
    Stages(Vec<Stage>),
    /// A cosine day: `low` at the trough, `high` at `peak_at`, repeating every `period`
    /// (`24h` for real days, `10m` to compress a day into a short run).
    Diurnal(Diurnal),
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
pub struct Stage {
    /// Required.
    pub at: Dur,
    /// Required. Multiplier of the class's rate (0 silences it).
    pub factor: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp: Option<Dur>,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
pub struct Diurnal {
    /// Required. Length of one day.
    pub period: Dur,
    /// Required. Factor at the quietest moment.
    pub low: f64,
    /// Required. Factor at the peak.
    pub high: f64,
    /// When in the period the peak falls. Default: half a period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_at: Option<Dur>,
}

fn full_share() -> Ratio {
    Ratio(1.0)
}

fn default_size() -> Dist<ByteSize> {
    Dist::Fixed(ByteSize(256))
}

/// What a class's records are keyed by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyMode {
    /// The device id (`fleet.id_pattern`).
    #[default]
    DeviceId,
    /// No key.
    None,
}

impl KeyMode {
    pub fn keyed(self) -> bool {
        self == KeyMode::DeviceId
    }
}

/// How a device's sends are spaced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Arrival {
    /// Every device sends at a fixed period; phases are spread evenly over the period.
    #[default]
    Fixed,
    /// Exponentially distributed gaps (a Poisson process per device).
    Poisson,
}

/// Format of record values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ValueFormat {
    /// A JSON envelope `{"fs":1,"run":..,"dev":..,"seq":..,..,"pad":".."}`.
    #[default]
    Json,
    /// A 48-byte binary header followed by random bytes.
    Binary,
}

/// Producer settings. Each maps onto a librdkafka property; `librdkafka` passes any other
/// property through (and wins over the fields above).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
pub struct ProducerSpec {
    /// `all`, `1` or `0`. Default `all`.
    #[serde(default)]
    pub acks: Acks,
    /// How long librdkafka waits to fill a batch (`linger.ms`). Default `5ms`.
    #[serde(default = "default_linger")]
    pub linger: Dur,
    /// Maximum batch size (`batch.size`). Default `1MiB`.
    #[serde(default = "default_batch")]
    pub batch_size: ByteSize,
    /// `none`, `gzip`, `snappy`, `lz4` or `zstd`. Default `none`.
    #[serde(default)]
    pub compression: Compression,
    /// Idempotent producer (`enable.idempotence`). Default `true`.
    #[serde(default = "yes")]
    pub idempotence: bool,
    /// Messages each producer instance may have awaiting acknowledgement
    /// (`queue.buffering.max.messages`). When full, due sends wait: each wait is counted as
    /// backpressure and shows up as send lag, never hidden. Default 100000.
    #[serde(default = "default_in_flight")]
    pub max_in_flight: u64,
    /// How long a message may wait for acknowledgement before it fails (`message.timeout.ms`).
    /// Default `30s`.
    #[serde(default = "default_message_timeout")]
    pub message_timeout: Dur,
    /// Number of producer instances (each its own librdkafka client and thread); devices are
    /// split evenly between them. `auto` (the default): as many as the cores that are free when
    /// the run starts can drive, at two cores per instance (its thread and librdkafka's); the
    /// report says how many it used and why (`harness.producer_instances`).
    #[serde(default)]
    pub instances: Instances,
    /// Any other librdkafka producer property, passed through as is.
    #[serde(default)]
    pub librdkafka: BTreeMap<String, String>,
}

impl Default for ProducerSpec {
    fn default() -> Self {
        ProducerSpec {
            acks: Acks::default(),
            linger: default_linger(),
            batch_size: default_batch(),
            compression: Compression::default(),
            idempotence: true,
            max_in_flight: default_in_flight(),
            message_timeout: default_message_timeout(),
            instances: Instances::Auto,
            librdkafka: BTreeMap::new(),
        }
    }
}

fn default_linger() -> Dur {
    Dur::from_millis(5)
}

fn default_batch() -> ByteSize {
    ByteSize(1 << 20)
}

fn default_in_flight() -> u64 {
    100_000
}

fn default_message_timeout() -> Dur {
    Dur::from_secs(30)
}

fn yes() -> bool {
    true
}

fn one() -> u32 {
    1
}

/// How many producer instances a run starts: a number, or `auto`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Instances {
    #[default]
    Auto,
    Count(u32),
}

impl Instances {
    /// The number of instances; `auto` counts as one until the run resolves it
    /// ([`Instances::resolve`]).
    pub fn count(self) -> u32 {
        match self {
            Instances::Auto => 1,
            Instances::Count(n) => n,
        }
    }

    /// Resolve `auto` for a machine with `cores` cores, a one-minute load average of
    /// `load_avg`, and `reserved` cores taken by something else of this run (an in-process
    /// embedded cluster): one instance per two free cores (its thread and librdkafka's broker
    /// threads), at least 1 and at most 16. Returns the count and, for `auto`, why.
    pub fn resolve(self, cores: usize, load_avg: f64, reserved: usize) -> (u32, Option<String>) {
        match self {
            Instances::Count(n) => (n, None),
            Instances::Auto => {
                let busy = if load_avg.is_finite() { load_avg.max(0.0).round() as usize } else { 0 };
                let free = cores.saturating_sub(busy).saturating_sub(reserved);
                let n = u32::try_from((free / 2).clamp(1, 16)).unwrap_or(1);
                let why = format!(
                    "auto: {cores} core(s), load average {load_avg:.1}{}, {free} free: {n} instance(s) at two cores each",
                    if reserved > 0 {
                        format!(", {reserved} for the in-process embedded cluster")
                    } else {
                        String::new()
                    }
                );
                (n, Some(why))
            }
        }
    }
}

impl Serialize for Instances {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Instances::Auto => s.serialize_str("auto"),
            Instances::Count(n) => s.serialize_u32(*n),
        }
    }
}

impl<'de> Deserialize<'de> for Instances {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Instances;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number of instances or `auto`")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Instances, E> {
                u32::try_from(v).map(Instances::Count).map_err(|_| E::custom("instances must be between 1 and 64"))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Instances, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom("instances must be between 1 and 64"))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Instances, E> {
                match v {
                    "auto" => Ok(Instances::Auto),
                    _ => v
                        .parse::<u32>()
                        .map(Instances::Count)
                        .map_err(|_| E::custom(format!("`{v}`: expected a number of instances or `auto`"))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Instances {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Instances".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "a number of instances (1-64) or `auto`",
            "anyOf": [{ "type": "integer", "minimum": 1, "maximum": 64 }, { "const": "auto" }]
        })
    }
}

/// Producer acknowledgement level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum Acks {
    #[default]
    #[serde(rename = "all", alias = "-1")]
    All,
    #[serde(rename = "1")]
    Leader,
    #[serde(rename = "0")]
    None,
}

impl Acks {
    pub fn as_librdkafka(self) -> &'static str {
        match self {
            Acks::All => "all",
            Acks::Leader => "1",
            Acks::None => "0",
        }
    }
}

/// Producer compression codec.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    pub fn as_librdkafka(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// The delivery audit.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
pub struct AuditSpec {
    /// Read back everything the run produced and check it arrived once and in order. Default `true`.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// How much longer than the scenario's `drain` the audit reader may keep reading, up to the
    /// partition ends acknowledged when the load stopped, once the consumer groups have stopped.
    /// Records it does not reach by then are reported `unverified`, never `lost`. Default `60s`.
    #[serde(default = "default_audit_drain")]
    pub drain: Dur,
}

fn default_audit_drain() -> Dur {
    Dur::from_secs(60)
}

impl Default for AuditSpec {
    fn default() -> Self {
        AuditSpec { enabled: true, drain: default_audit_drain() }
    }
}

impl Scenario {
    /// What a target with `brokers` brokers cannot honour of the scenario's durability settings
    /// (replication, `min.insync.replicas`), in words; `None` when it can (or the broker count is
    /// unknown). A one-broker target that accepted `replication: 3` gives durability figures that are
    /// not comparable with a three-broker run's.
    pub fn durability_shortfall(&self, brokers: usize) -> Option<String> {
        if brokers == 0 {
            return None;
        }
        let short: Vec<String> = self
            .topics
            .iter()
            .filter_map(|t| {
                let isr = t.config.get("min.insync.replicas").and_then(|v| v.trim().parse::<usize>().ok()).unwrap_or(1);
                let mut asks = Vec::new();
                if usize::from(t.replication) > brokers {
                    asks.push(format!("replication {}", t.replication));
                }
                if isr > brokers {
                    asks.push(format!("min.insync.replicas {isr}"));
                }
                (!asks.is_empty()).then(|| format!("`{}` asks {}", t.name, asks.join(" and ")))
            })
            .collect();
        (!short.is_empty()).then(|| {
            format!(
                "the target has {brokers} broker(s) and cannot honour the scenario's durability: {}; its loss and \
                 durability figures are not comparable with a target that can",
                short.join(", ")
            )
        })
    }

    /// Shorten the load to `duration` (a command-line override): timed events that would start at
    /// or after the new end are removed, each with a note saying so.
    pub fn shorten(&mut self, duration: Dur) -> Shortened {
        let mut out = Shortened::default();
        self.duration = duration;
        if self.warmup >= duration {
            self.warmup = Dur::ZERO;
            out.notes.push(format!("warm-up removed: it is not shorter than --duration {duration}"));
        }
        /// Keep the items that start before the end; remember which, by their index in the file.
        fn keep<T>(
            out: &mut Shortened,
            list: String,
            items: &mut Vec<T>,
            duration: Dur,
            what: impl Fn(usize, &T) -> (String, Dur),
        ) {
            let mut kept = Vec::new();
            let mut i = 0;
            items.retain(|item| {
                let (label, at) = what(i, item);
                let keep = at < duration;
                if keep {
                    kept.push(i);
                } else {
                    out.notes
                        .push(format!("{label} at {at} skipped: after the end of the shortened load ({duration})"));
                }
                i += 1;
                keep
            });
            if kept.len() < i {
                out.kept.push((list, kept));
            }
        }
        keep(&mut out, "faults".into(), &mut self.faults, duration, |i, f| (format!("fault `{}`", f.label(i)), f.at));
        keep(&mut out, "waves".into(), &mut self.waves, duration, |i, w| (format!("wave `{}`", w.label(i)), w.at));
        if let Some(fw) = &mut self.fleet.firmware {
            keep(&mut out, "fleet.firmware.rollouts".into(), &mut fw.rollouts, duration, |_, r| {
                (format!("rollout to {}", r.to), r.start)
            });
        }
        for (gi, g) in self.consumers.iter_mut().enumerate() {
            let name = g.name.clone();
            let p = format!("consumers[{gi}]");
            keep(&mut out, format!("{p}.slowdowns"), &mut g.slowdowns, duration, |_, s| {
                (format!("slowdown of `{name}`"), s.at)
            });
            keep(&mut out, format!("{p}.replays"), &mut g.replays, duration, |_, r| {
                (format!("replay of `{name}`"), r.at)
            });
            keep(&mut out, format!("{p}.restarts"), &mut g.restarts, duration, |_, r| {
                (format!("restart of `{name}`"), r.at)
            });
        }
        out
    }
}

/// What [`Scenario::shorten`] did: notes for the user, and which items of each shortened list were
/// kept, so that a problem found in the shortened scenario is located where the file has it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shortened {
    pub notes: Vec<String>,
    /// Each list that lost items (`faults`, `consumers[0].replays`, ...), with the file's index of
    /// each item kept, in order.
    kept: Vec<(String, Vec<usize>)>,
}

impl Shortened {
    /// The field path in the file of `path` in the shortened scenario: `faults[1].kind` is
    /// `faults[2].kind` when the file's second fault was removed.
    pub fn original_path(&self, path: &str) -> String {
        for (list, kept) in &self.kept {
            let Some(rest) = path.strip_prefix(list.as_str()).and_then(|r| r.strip_prefix('[')) else { continue };
            let Some((index, tail)) = rest.split_once(']') else { continue };
            if let Some(original) = index.parse::<usize>().ok().and_then(|i| kept.get(i)) {
                return format!("{list}[{original}]{tail}");
            }
        }
        path.to_string()
    }
}

/// A gate as written in the scenario: a string, or a mapping with options.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct GateSpec {
    /// The assertion, `METRIC OP THRESHOLD`, e.g. `produce.latency.p99 < 250ms`.
    pub gate: String,
    /// A label for JUnit and the report (default: the gate itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Stop the run as soon as the gate fails (only for metrics known while running:
    /// `consumers.<group>.max_lag`, `produce.failed`, `produce.backpressure`, `errors.*`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub abort_on_fail: bool,
}

impl<'de> Deserialize<'de> for GateSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Full {
            gate: String,
            #[serde(default)]
            name: Option<String>,
            #[serde(default)]
            abort_on_fail: bool,
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = GateSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a gate such as `audit.lost == 0`, or `{gate: ..., abort_on_fail: true}`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<GateSpec, E> {
                Ok(GateSpec { gate: v.to_string(), name: None, abort_on_fail: false })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<GateSpec, A::Error> {
                let f = Full::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(GateSpec { gate: f.gate, name: f.name, abort_on_fail: f.abort_on_fail })
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: `broker: 2` was written into report.json as a number that the report could not
    /// read back, so `fleetstorm report` and `compare` refused any run that named a broker by id.
    #[test]
    fn every_broker_selector_survives_a_json_round_trip() {
        for sel in [
            BrokerSelector::Id(2),
            BrokerSelector::Random,
            BrokerSelector::LeaderOf { topic: "t".into(), partition: 3 },
        ] {
            let json = serde_json::to_string(&sel).unwrap();
            assert_eq!(serde_json::from_str::<BrokerSelector>(&json).unwrap(), sel, "{json}");
        }
    }
}

#[cfg(test)]
mod instances_tests {
    use super::Instances;

    #[test]
    fn auto_takes_two_free_cores_per_instance_and_a_number_is_kept() {
        assert_eq!(Instances::Count(3).resolve(64, 0.0, 0), (3, None));
        assert_eq!(Instances::Auto.resolve(2, 0.0, 1).0, 1, "2 cores with the embedded cluster in-process");
        assert_eq!(Instances::Auto.resolve(8, 0.2, 0).0, 4);
        assert_eq!(Instances::Auto.resolve(8, 4.0, 0).0, 2, "busy cores are not free");
        assert_eq!(Instances::Auto.resolve(64, 0.0, 0).0, 16, "at most 16");
        assert_eq!(Instances::Auto.resolve(1, f64::NAN, 0).0, 1, "at least 1");
        let (_, why) = Instances::Auto.resolve(8, 4.0, 1);
        assert_eq!(
            why.as_deref(),
            Some(
                "auto: 8 core(s), load average 4.0, 1 for the in-process embedded cluster, 3 free: 1 instance(s) at two cores each"
            )
        );
    }

    #[test]
    fn instances_parse_from_a_number_or_auto_and_say_what_else_is_wrong() {
        let p = |v: &str| {
            let text = format!(
                "name: n\nseed: 1\nduration: 1s\ntopics: [{{name: t}}]\nfleet:\n  devices: 1\n  classes: [{{name: c, topic: t, rate: 1/s, size: 200B}}]\nproducer: {{instances: {v}}}\n"
            );
            crate::config::parse_scenario("s.yaml", &text).map(|s| s.producer.instances).map_err(|e| e.to_string())
        };
        assert_eq!(p("4"), Ok(Instances::Count(4)));
        assert_eq!(p("auto"), Ok(Instances::Auto));
        let e = p("many").unwrap_err();
        assert!(e.contains("s.yaml:8:") && e.contains("expected a number of instances or `auto`"), "{e}");
        assert!(p("0").unwrap_err().contains("instances must be between 1 and 64"));
    }
}
