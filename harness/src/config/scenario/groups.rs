//! Consumer groups: who reads, how fast, and what happens to them over time.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::super::dist::Dist;
use super::super::units::{Dur, Rate, Ratio};
use super::*;

/// A consumer group reading while the fleet sends.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
pub struct ConsumerGroupSpec {
    /// Required. Name in the scenario and the report, e.g. `warehouse`.
    pub name: String,
    /// Kafka `group.id`. Default `fleetstorm.<scenario>.<name>.<run id>`, so every run starts clean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// Number of members (consumer instances) in the group. Default 1.
    #[serde(default = "one")]
    pub members: u32,
    /// Required. Topics the group subscribes to.
    pub topics: Vec<String>,
    /// Where the group starts reading. Default `latest`.
    #[serde(default)]
    pub start: StartOffset,
    /// Simulated work per record, a plain duration (`2ms`) or a distribution. Default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_time: Option<Dist<Dur>>,
    /// Simulated work per batch instead of per record: every `size` records cost `time`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchSpec>,
    /// The sink slows down (`factor`) or stalls (`stall: true`) for a while.
    #[serde(default)]
    pub slowdowns: Vec<Slowdown>,
    /// A share of records fails processing and goes to a dead-letter topic (declared in
    /// `topics`), counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<DeadLetter>,
    /// The group seeks back and re-reads history while ingest goes on.
    #[serde(default)]
    pub replays: Vec<Replay>,
    /// The group's members close and rejoin.
    #[serde(default)]
    pub restarts: Vec<GroupRestart>,
    /// Any other librdkafka consumer property, passed through as is.
    #[serde(default)]
    pub librdkafka: BTreeMap<String, String>,
}

/// Per-batch processing time.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
pub struct BatchSpec {
    /// Required. Records per batch.
    pub size: u32,
    /// Required. Work per batch: a plain duration or a distribution.
    pub time: Dist<Dur>,
}

/// A sink slowdown or stall.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
pub struct Slowdown {
    /// Required. When it starts.
    pub at: Dur,
    /// Required. How long it lasts.
    #[serde(rename = "for")]
    pub lasts: Dur,
    /// Processing takes this many times longer (e.g. `5`). Give this or `stall`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<f64>,
    /// The members stop reading altogether.
    #[serde(default)]
    pub stall: bool,
}

/// Dead-letter routing.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
pub struct DeadLetter {
    /// Required. Share of records that fail processing (seeded).
    pub rate: Ratio,
    /// Required. Topic they are written to (one of `topics`).
    pub topic: String,
}

/// A replay: at `at`, every member seeks its partitions back and reads forward again.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
pub struct Replay {
    /// Required. When the group seeks back.
    pub at: Dur,
    /// Required. `earliest`, `{ago: 10m}` (by record timestamp) or `{records: 100000}` (per
    /// partition).
    pub to: ReplayTarget,
    /// Cap on the group's read rate while it catches up, e.g. `5000/s`. Default: as fast as it can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Rate>,
}

/// Where a replay seeks to.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReplayTarget {
    /// The start of each partition's retained log.
    Earliest,
    /// The first record with a timestamp at or after this long before the replay.
    Ago(Dur),
    /// This many records back from the current position, per partition.
    Records(u64),
}

/// A group restart: members close (leaving the group) and rejoin `down` later.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
pub struct GroupRestart {
    /// Required.
    pub at: Dur,
    /// How long the members stay away. Default `0`.
    #[serde(default)]
    pub down: Dur,
}

/// Where a consumer group starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StartOffset {
    /// The end of each partition when the run starts: the group reads everything this run
    /// produces and nothing older.
    #[default]
    Latest,
    /// The start of each partition's retained log: the group replays history, then keeps up.
    Earliest,
    /// The group's committed offsets (for a named `group_id`); `latest` where none exist.
    Committed,
}
