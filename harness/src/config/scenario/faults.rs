//! Faults injected into the target during the load, and which broker they hit.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::super::units::{ByteSize, Dur, Ratio};

/// A fault injected into the target during the load.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
pub struct FaultSpec {
    /// Label in the report and timeline. Default `<kind>-<n>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Required. When, counted from the start of the load, e.g. `30s`.
    pub at: Dur,
    /// Required. What happens to the broker.
    pub kind: FaultKind,
    /// Which broker: an id (`2`), `random` (chosen with the seed), or the leader of a partition at
    /// the time of the fault: `{leader_of: {topic: telemetry, partition: 0}}`. Default `random`.
    #[serde(default)]
    pub broker: BrokerSelector,
    /// How long until the fault is undone (broker restarted, resumed, latency removed). Default:
    /// when the load ends. Every fault is undone when the run ends or is aborted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_after: Option<Dur>,
    /// Added round-trip time, for `kind: latency`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Dur>,
    /// What happens to the broker's links, for `kind: network`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkSpec>,
    /// Replication throttle while partitions move, bytes per second per broker (`kind:
    /// scale_out` / `scale_in`), e.g. `10MiB`. Default: unthrottled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<ByteSize>,
}

/// A network fault on one broker's links: any of delay (with jitter), loss, a bandwidth cap, or
/// a partition. Applied by the profile's mechanism (`network_apply` / `network_clear`
/// templates; `scripts/kafka-cluster.sh net` on the local cluster); the embedded cluster can
/// only delay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// Whose links to the broker: `clients` (default: producers', consumers' and the audit's),
    /// `peers` (the other brokers': replication and the controller quorum) or `all`.
    #[serde(default)]
    pub links: Links,
    /// Added round-trip time, e.g. `100ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Dur>,
    /// Random variation of the delay, up to this much either way (needs `delay`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<Dur>,
    /// Share of packets dropped, e.g. `5%`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<Ratio>,
    /// Bandwidth cap per direction, bytes per second, e.g. `512KiB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<ByteSize>,
    /// Cut the links: every packet dropped, connections hang until they time out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partition: bool,
}

impl NetworkSpec {
    /// Whether it does anything at all.
    pub fn is_empty(&self) -> bool {
        self.delay.is_none() && self.loss.is_none() && self.bandwidth.is_none() && !self.partition
    }

    /// The effect as arguments, in the shape `scripts/kafka-cluster.sh net N apply` takes:
    /// `--links clients --delay-ms 100 --jitter-ms 20 --loss-pct 5 --rate-kbps 512 --partition`.
    pub fn args(&self) -> String {
        let mut out = format!("--links {}", self.links.as_str());
        if let Some(d) = self.delay {
            out.push_str(&format!(" --delay-ms {}", d.0.as_millis()));
        }
        if let Some(j) = self.jitter {
            out.push_str(&format!(" --jitter-ms {}", j.0.as_millis()));
        }
        if let Some(l) = self.loss {
            out.push_str(&format!(" --loss-pct {}", trim(l.0 * 100.0)));
        }
        if let Some(b) = self.bandwidth {
            out.push_str(&format!(" --rate-kbps {}", (b.0 / 1024).max(1)));
        }
        if self.partition {
            out.push_str(" --partition");
        }
        out
    }
}

impl std::fmt::Display for NetworkSpec {
    /// `clients: delay 100ms ±20ms, loss 5%, bandwidth 512KiB/s, partitioned`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(d) = self.delay {
            parts.push(match self.jitter {
                Some(j) => format!("delay {d} ±{j}"),
                None => format!("delay {d}"),
            });
        }
        if let Some(l) = self.loss {
            parts.push(format!("loss {l}"));
        }
        if let Some(b) = self.bandwidth {
            parts.push(format!("bandwidth {b}/s"));
        }
        if self.partition {
            parts.push("partitioned".into());
        }
        write!(f, "{}: {}", self.links.as_str(), parts.join(", "))
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Whose links a network fault acts on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Links {
    #[default]
    Clients,
    Peers,
    All,
}

impl Links {
    pub fn as_str(self) -> &'static str {
        match self {
            Links::Clients => "clients",
            Links::Peers => "peers",
            Links::All => "all",
        }
    }
}

impl FaultSpec {
    pub fn label(&self, index: usize) -> String {
        self.name.clone().unwrap_or_else(|| format!("{}-{}", self.kind.as_str(), index + 1))
    }
}

/// What a fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// The broker dies at once (SIGKILL, `docker kill`, mock broker down). Undone by a restart
    /// with its data.
    BrokerKill,
    /// The broker shuts down gracefully (SIGTERM, `docker stop`). Undone by a restart.
    BrokerStop,
    /// The broker freezes with its connections open (SIGSTOP, `docker pause`; on the embedded
    /// cluster a round-trip time as long as the pause). Undone by resuming it.
    BrokerPause,
    /// Requests to the broker take `latency` longer (embedded cluster, or a command mechanism).
    Latency,
    /// The broker's links degrade or break (`network`: delay, jitter, loss, bandwidth,
    /// partition). Undone by clearing it.
    Network,
    /// Broker replacement: the broker is stopped, its partition data wiped and it starts again
    /// empty, under the same id; the fault lasts until it is back in every ISR. Refused (by the
    /// local cluster's script) while a partition is under-replicated. Undone by starting it.
    BrokerReplace,
    /// A broker (`broker: <new id>`) joins the running cluster and the partitions of the
    /// scenario's topics are reassigned over every broker, `throttle`d if set. Undone by
    /// `scale_in` of the same broker.
    ScaleOut,
    /// The broker is decommissioned: the partitions of the scenario's topics are reassigned off
    /// it, then it is stopped (and unregistered, if it is not a controller). Undone by
    /// `scale_out` of the same broker.
    ScaleIn,
}

impl FaultKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::BrokerKill => "broker_kill",
            FaultKind::BrokerStop => "broker_stop",
            FaultKind::BrokerPause => "broker_pause",
            FaultKind::Latency => "latency",
            FaultKind::Network => "network",
            FaultKind::BrokerReplace => "broker_replace",
            FaultKind::ScaleOut => "scale_out",
            FaultKind::ScaleIn => "scale_in",
        }
    }

    /// Whether the fault moves partition data between brokers: its injection lasts as long as
    /// the movement, and the fault counts from the start of it.
    pub fn moves_data(self) -> bool {
        matches!(self, FaultKind::BrokerReplace | FaultKind::ScaleOut | FaultKind::ScaleIn)
    }
}

/// Which broker a fault hits.
#[derive(Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum BrokerSelector {
    /// A broker id.
    Id(i32),
    /// One of the target's brokers, chosen with the seed.
    #[default]
    Random,
    /// The leader of this partition when the fault starts.
    LeaderOf { topic: String, partition: i32 },
}

impl std::fmt::Display for BrokerSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BrokerSelector::Id(id) => write!(f, "broker {id}"),
            BrokerSelector::Random => write!(f, "a random broker"),
            BrokerSelector::LeaderOf { topic, partition } => write!(f, "the leader of {topic}[{partition}]"),
        }
    }
}

#[derive(Deserialize)]
struct LeaderOfParams {
    topic: String,
    partition: i32,
}

impl Serialize for BrokerSelector {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            // As text: JSON has no enum tag that is a number, and a report must read back
            // (regression: `fleetstorm report`/`compare` refused any run with `broker: <id>`).
            BrokerSelector::Id(id) => s.serialize_str(&id.to_string()),
            BrokerSelector::Random => s.serialize_str("random"),
            BrokerSelector::LeaderOf { topic, partition } => {
                #[derive(Serialize)]
                struct P<'a> {
                    topic: &'a str,
                    partition: i32,
                }
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("leader_of", &P { topic, partition: *partition })?;
                m.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for BrokerSelector {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{self, EnumAccess, VariantAccess, Visitor};
        enum Tag {
            Random,
            LeaderOf,
            Other(String),
        }
        impl<'de> Deserialize<'de> for Tag {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = Tag;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a broker id, `random` or `leader_of`")
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<Tag, E> {
                        Ok(match v {
                            "random" => Tag::Random,
                            "leader_of" => Tag::LeaderOf,
                            other => Tag::Other(other.to_string()),
                        })
                    }
                }
                d.deserialize_identifier(V)
            }
        }
        struct SelVisitor;
        impl<'de> Visitor<'de> for SelVisitor {
            type Value = BrokerSelector;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a broker id, `random`, or `{leader_of: {topic, partition}}`")
            }
            fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<BrokerSelector, A::Error> {
                let (tag, variant) = data.variant::<Tag>()?;
                match tag {
                    Tag::Random => variant.unit_variant().map(|()| BrokerSelector::Random),
                    Tag::LeaderOf => variant
                        .newtype_variant::<LeaderOfParams>()
                        .map(|p| BrokerSelector::LeaderOf { topic: p.topic, partition: p.partition }),
                    Tag::Other(text) => match text.parse::<i32>() {
                        Ok(id) => variant.unit_variant().map(|()| BrokerSelector::Id(id)),
                        Err(_) => Err(de::Error::custom(format!(
                            "unknown broker `{text}`: expected a broker id, `random` or `{{leader_of: {{topic, partition}}}}`"
                        ))),
                    },
                }
            }
        }
        d.deserialize_enum("BrokerSelector", &["random", "leader_of"], SelVisitor)
    }
}
