//! The target's own metrics in fleetstorm's one vocabulary (whatever each vendor calls them):
//! what a profile's `metrics` sources are mapped to, what `target.<metric>.<stat>` gates name,
//! and what the report's backbone section holds.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::gates::Unit;

/// A broker-side metric in fleetstorm's one vocabulary, whatever the vendor calls it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TargetMetric {
    /// Bytes per second produced into the broker (all topics).
    BytesIn,
    /// Bytes per second fetched from the broker, consumers and replicas.
    BytesOut,
    /// Records per second produced into the broker.
    MessagesIn,
    /// Produce requests' total time, 99th percentile as the broker reports it, ms.
    ProduceLatencyP99,
    /// Consumer fetch requests' total time, 99th percentile, ms.
    FetchLatencyP99,
    /// Time produce requests waited in the request queue, 99th percentile, ms.
    ProduceQueueP99,
    /// Partitions with fewer in-sync replicas than replicas.
    UnderReplicatedPartitions,
    /// Partitions with no leader.
    OfflinePartitions,
    /// In-sync replica set shrinks per second.
    IsrShrinks,
    /// 1 on the broker that is the active controller.
    ActiveController,
    /// Partition leaders on the broker.
    Leaders,
    /// Bytes of log on the broker's disks.
    LogSize,
    /// Network threads' idle share, percent (low: the network layer is saturated).
    NetworkIdle,
    /// Request handler threads' idle share, percent (low: request handling is saturated).
    RequestHandlerIdle,
    /// The broker process's CPU, percent of one core.
    Cpu,
}

/// How a metric's per-broker values make one cluster value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Combine {
    Sum,
    Max,
    Min,
}

impl TargetMetric {
    pub const ALL: [TargetMetric; 15] = [
        TargetMetric::BytesIn,
        TargetMetric::BytesOut,
        TargetMetric::MessagesIn,
        TargetMetric::ProduceLatencyP99,
        TargetMetric::FetchLatencyP99,
        TargetMetric::ProduceQueueP99,
        TargetMetric::UnderReplicatedPartitions,
        TargetMetric::OfflinePartitions,
        TargetMetric::IsrShrinks,
        TargetMetric::ActiveController,
        TargetMetric::Leaders,
        TargetMetric::LogSize,
        TargetMetric::NetworkIdle,
        TargetMetric::RequestHandlerIdle,
        TargetMetric::Cpu,
    ];

    /// The name in reports and gates (`target.<name>.max`).
    pub fn name(self) -> &'static str {
        match self {
            TargetMetric::BytesIn => "bytes_in",
            TargetMetric::BytesOut => "bytes_out",
            TargetMetric::MessagesIn => "messages_in",
            TargetMetric::ProduceLatencyP99 => "produce_latency_p99",
            TargetMetric::FetchLatencyP99 => "fetch_latency_p99",
            TargetMetric::ProduceQueueP99 => "produce_queue_p99",
            TargetMetric::UnderReplicatedPartitions => "under_replicated_partitions",
            TargetMetric::OfflinePartitions => "offline_partitions",
            TargetMetric::IsrShrinks => "isr_shrinks",
            TargetMetric::ActiveController => "active_controller",
            TargetMetric::Leaders => "leaders",
            TargetMetric::LogSize => "log_size",
            TargetMetric::NetworkIdle => "network_idle",
            TargetMetric::RequestHandlerIdle => "request_handler_idle",
            TargetMetric::Cpu => "cpu",
        }
    }

    pub fn from_name(name: &str) -> Option<TargetMetric> {
        TargetMetric::ALL.into_iter().find(|m| m.name() == name)
    }

    pub fn unit(self) -> &'static str {
        match self {
            TargetMetric::BytesIn | TargetMetric::BytesOut => "B/s",
            TargetMetric::MessagesIn => "rec/s",
            TargetMetric::ProduceLatencyP99 | TargetMetric::FetchLatencyP99 | TargetMetric::ProduceQueueP99 => "ms",
            TargetMetric::IsrShrinks => "/s",
            TargetMetric::LogSize => "B",
            TargetMetric::NetworkIdle | TargetMetric::RequestHandlerIdle | TargetMetric::Cpu => "%",
            TargetMetric::UnderReplicatedPartitions
            | TargetMetric::OfflinePartitions
            | TargetMetric::ActiveController
            | TargetMetric::Leaders => "",
        }
    }

    /// How a gate's threshold on it is written (latencies as durations, ratios as percent).
    pub fn gate_unit(self) -> Unit {
        match self {
            TargetMetric::BytesIn | TargetMetric::BytesOut | TargetMetric::MessagesIn | TargetMetric::IsrShrinks => {
                Unit::Rate
            }
            TargetMetric::ProduceLatencyP99 | TargetMetric::FetchLatencyP99 | TargetMetric::ProduceQueueP99 => {
                Unit::Duration
            }
            TargetMetric::NetworkIdle | TargetMetric::RequestHandlerIdle | TargetMetric::Cpu => Unit::Percent,
            TargetMetric::UnderReplicatedPartitions
            | TargetMetric::OfflinePartitions
            | TargetMetric::ActiveController
            | TargetMetric::Leaders
            | TargetMetric::LogSize => Unit::Count,
        }
    }

    /// Brokers' values add up (traffic, partitions), or the worst one speaks for the cluster.
    pub fn combine(self) -> Combine {
        match self {
            TargetMetric::ProduceLatencyP99 | TargetMetric::FetchLatencyP99 | TargetMetric::ProduceQueueP99 => {
                Combine::Max
            }
            TargetMetric::NetworkIdle | TargetMetric::RequestHandlerIdle => Combine::Min,
            TargetMetric::Cpu => Combine::Max,
            _ => Combine::Sum,
        }
    }
}

impl fmt::Display for TargetMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
