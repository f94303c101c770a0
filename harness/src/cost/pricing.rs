//! Pricing files (`pricing/*.yaml`): an operating model, its sizing and topology, and the price of
//! each meter with the public source it came from. They are the user's data: the code holds no
//! price. Read with the config's YAML machinery, so every problem is reported at once with
//! file:line:col and its field.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::config::units::{ByteSize, Dur, Ratio};
use crate::config::yaml::{self, Pos};
use crate::config::{ConfigError, Diagnostic};

/// How the target keeps its data, which decides which meters a workload drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperatingModel {
    /// Self-managed Kafka on VMs with block storage: brokers replicate to each other (across
    /// zones, charged), every replica on a broker's disk.
    BrokerDisk,
    /// A managed Kafka service: broker-hours and storage per GB-month; replication between the
    /// service's brokers is not charged, client traffic across zones is.
    Managed,
    /// A Kafka-compatible platform on shared storage (object storage plus a WAL): one copy in
    /// object storage, no broker-to-broker replication, object requests charged.
    SharedStorage,
}

impl OperatingModel {
    /// The name a pricing file uses.
    pub fn name(self) -> &'static str {
        match self {
            OperatingModel::BrokerDisk => "broker_disk",
            OperatingModel::Managed => "managed",
            OperatingModel::SharedStorage => "shared_storage",
        }
    }
}

/// One price and where it was read.
#[derive(Clone, Debug, Deserialize)]
pub struct Price {
    /// In the file's currency.
    pub price: f64,
    /// The public page the price was read from.
    pub source: String,
}

/// A fixed monthly or hourly item (a WAL volume per broker, a subscription).
#[derive(Clone, Debug, Deserialize)]
pub struct Fixed {
    pub name: String,
    /// Per hour, for each of `quantity`.
    pub per_hour: Price,
    #[serde(default = "one")]
    pub quantity: u32,
}

fn one() -> u32 {
    1
}

#[derive(Clone, Debug, Deserialize)]
pub struct Sizing {
    /// Brokers (or the service's broker count), as the user sizes the cluster.
    pub brokers: u32,
    /// Instance type, e.g. `m7g.xlarge` or `kafka.m7g.large` (a label; its price is `prices.instance_hour`).
    pub instance: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Topology {
    /// Availability zones the brokers are spread over, evenly.
    pub zones: u32,
    /// Consumers fetch from a replica in their own zone (KIP-392 `client.rack`).
    #[serde(default)]
    pub rack_aware_fetch: bool,
    /// Producers write to a broker in their own zone (a shared-storage platform's zone-aware
    /// routing).
    #[serde(default)]
    pub zone_local_produce: bool,
    /// Consumer groups that read from outside the region: their traffic is priced as egress.
    #[serde(default)]
    pub egress_groups: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Prices {
    /// One broker (instance) for one hour.
    pub instance_hour: Price,
    /// One GiB of retained data for one month (block storage, the service's storage, or object
    /// storage).
    pub storage_gb_month: Price,
    /// One GiB crossing between availability zones (both sides' charges together).
    pub cross_zone_gb: Price,
    /// One GiB leaving the region to the internet.
    pub egress_gb: Price,
    /// 1,000 object-storage writes (shared storage).
    #[serde(default)]
    pub object_put_1000: Option<Price>,
    /// 1,000 object-storage reads (shared storage).
    #[serde(default)]
    pub object_get_1000: Option<Price>,
}

/// A pricing file.
#[derive(Clone, Debug, Deserialize)]
pub struct Pricing {
    pub name: String,
    pub model: OperatingModel,
    /// Cloud region the prices are for, e.g. `us-east-1`.
    pub region: String,
    /// The date the prices were read, `YYYY-MM-DD`.
    pub as_of: String,
    pub currency: String,
    /// Anything the reader must know (that the prices are to be checked, what is left out).
    #[serde(default)]
    pub note: String,
    pub sizing: Sizing,
    pub topology: Topology,
    pub prices: Prices,
    /// Retention of topics that declare no `retention.ms` (Kafka's default is 7 days).
    pub default_retention: Dur,
    /// Disk provisioned per byte retained (e.g. `1.5`: disks kept a third empty). Default 1.
    #[serde(default)]
    pub storage_headroom: Option<f64>,
    /// Shared storage: the size of an object written (a WAL upload or a segment), for request
    /// counts.
    #[serde(default)]
    pub object_size: Option<ByteSize>,
    /// Shared storage: the share of re-reads (replays) served from object storage rather than
    /// the brokers' cache. Default 100%.
    #[serde(default)]
    pub replay_from_object_storage: Option<Ratio>,
    #[serde(default)]
    pub fixed: Vec<Fixed>,
}

/// A pricing file as read, with where it came from.
#[derive(Clone, Debug)]
pub struct PricingFile {
    pub file: String,
    pub pricing: Pricing,
}

impl Pricing {
    /// Semantic problems as `(field path, message)`.
    fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut price = |path: &str, p: &Price| {
            if !p.price.is_finite() || p.price < 0.0 {
                out.push((format!("{path}.price"), format!("must be a number of at least 0, got {}", p.price)));
            }
            if !(p.source.starts_with("https://") || p.source.starts_with("http://")) {
                out.push((
                    format!("{path}.source"),
                    "must be the public page the price was read from (an http(s) URL)".to_string(),
                ));
            }
        };
        let ps = &self.prices;
        price("prices.instance_hour", &ps.instance_hour);
        price("prices.storage_gb_month", &ps.storage_gb_month);
        price("prices.cross_zone_gb", &ps.cross_zone_gb);
        price("prices.egress_gb", &ps.egress_gb);
        if let Some(p) = &ps.object_put_1000 {
            price("prices.object_put_1000", p);
        }
        if let Some(p) = &ps.object_get_1000 {
            price("prices.object_get_1000", p);
        }
        for (i, f) in self.fixed.iter().enumerate() {
            price(&format!("fixed[{i}].per_hour"), &f.per_hour);
        }
        if self.sizing.brokers == 0 {
            out.push(("sizing.brokers".into(), "must be at least 1".into()));
        }
        if self.topology.zones == 0 {
            out.push(("topology.zones".into(), "must be at least 1".into()));
        }
        if !valid_date(&self.as_of) {
            out.push(("as_of".into(), format!("must be a date `YYYY-MM-DD`, got `{}`", self.as_of)));
        }
        if let Some(h) = self.storage_headroom
            && !(h.is_finite() && h >= 1.0)
        {
            out.push(("storage_headroom".into(), format!("must be at least 1, got {h}")));
        }
        if self.model == OperatingModel::SharedStorage {
            for (field, missing) in [
                ("prices.object_put_1000", ps.object_put_1000.is_none()),
                ("prices.object_get_1000", ps.object_get_1000.is_none()),
                ("object_size", self.object_size.is_none()),
            ] {
                if missing {
                    out.push(("model".into(), format!("a `shared_storage` model needs `{field}`")));
                }
            }
        }
        if self.object_size.is_some_and(|s| s.0 == 0) {
            out.push(("object_size".into(), "must be more than 0 bytes".into()));
        }
        out
    }
}

fn valid_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 3
        && [4, 2, 2].iter().zip(&parts).all(|(n, p)| p.len() == *n && p.bytes().all(|b| b.is_ascii_digit()))
        && matches!(parts[1].parse::<u32>(), Ok(1..=12))
        && matches!(parts[2].parse::<u32>(), Ok(1..=31))
}

fn invalid(file: &str, errors: Vec<(Pos, String, String)>) -> ConfigError {
    ConfigError::Invalid {
        file: file.to_string(),
        diagnostics: errors
            .into_iter()
            .map(|(pos, path, message)| Diagnostic { file: file.to_string(), pos, path, message })
            .collect(),
    }
}

/// Parse and check a pricing file's text; `file` names it in diagnostics.
pub fn parse(file: &str, src: &str) -> Result<PricingFile, ConfigError> {
    let root = yaml::parse(src).map_err(|e| invalid(file, vec![(e.pos, e.path, e.message)]))?;
    let pricing: Pricing = yaml::from_node(&root)
        .map_err(|errs| invalid(file, errs.into_iter().map(|e| (e.pos, e.path, e.message)).collect()))?;
    let index: HashMap<String, Pos> = yaml::path_index(&root);
    let mut problems: Vec<(Pos, String, String)> =
        pricing.problems().into_iter().map(|(path, m)| (yaml::locate(&index, &path), path, m)).collect();
    problems.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    problems.dedup();
    if problems.is_empty() { Ok(PricingFile { file: file.to_string(), pricing }) } else { Err(invalid(file, problems)) }
}

/// Read and check a pricing file.
pub fn load(path: &Path) -> Result<PricingFile, ConfigError> {
    let file = path.display().to_string();
    let src = std::fs::read_to_string(path).map_err(|source| ConfigError::Io { file: file.clone(), source })?;
    parse(&file, &src)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const GOOD: &str = "\
name: test
model: broker_disk
region: us-east-1
as_of: 2026-12-01
currency: USD
sizing: {brokers: 3, instance: m7g.xlarge}
topology: {zones: 3}
default_retention: 7d
prices:
  instance_hour: {price: 0.2, source: https://example.com/ec2}
  storage_gb_month: {price: 0.1, source: https://example.com/ebs}
  cross_zone_gb: {price: 0.02, source: https://example.com/transfer}
  egress_gb: {price: 0.09, source: https://example.com/transfer}
";

    fn errors(src: &str) -> Vec<String> {
        match parse("p.yaml", src) {
            Ok(_) => Vec::new(),
            Err(e) => e.diagnostics().iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn a_complete_file_parses() {
        let p = parse("p.yaml", GOOD).map(|f| f.pricing);
        assert!(matches!(p, Ok(ref p) if p.sizing.brokers == 3 && p.model == OperatingModel::BrokerDisk), "{p:?}");
    }

    #[test]
    fn a_missing_price_is_an_error_at_its_parent_never_a_zero() {
        let src = GOOD.replace("  egress_gb: {price: 0.09, source: https://example.com/transfer}\n", "");
        let e = errors(&src);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("p.yaml:10:3: prices") && e[0].contains("egress_gb"), "{e:?}");
    }

    #[test]
    fn a_malformed_price_and_a_missing_source_are_located_with_their_fields() {
        let src = GOOD
            .replace("price: 0.2,", "price: cheap,")
            .replace("{price: 0.1, source: https://example.com/ebs}", "{price: -1, source: my notes}");
        let e = errors(&src);
        assert!(e.iter().any(|d| d.starts_with("p.yaml:10:26: prices.instance_hour.price")), "{e:?}");
        assert_eq!(e.len(), 1, "type errors stop the checks that need the value: {e:?}");
        let src = GOOD.replace("{price: 0.1, source: https://example.com/ebs}", "{price: -1, source: my notes}");
        let e = errors(&src);
        assert!(e.iter().any(|d| d.starts_with("p.yaml:11:29: prices.storage_gb_month.price: must be")), "{e:?}");
        assert!(e.iter().any(|d| d.starts_with("p.yaml:11:41: prices.storage_gb_month.source")), "{e:?}");
    }

    #[test]
    fn shared_storage_needs_object_prices_and_size() {
        let e = errors(&GOOD.replace("model: broker_disk", "model: shared_storage"));
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e.iter().all(|d| d.starts_with("p.yaml:2:8: model: a `shared_storage` model needs")), "{e:?}");
    }

    #[test]
    fn dates_and_counts_are_checked() {
        let e = errors(&GOOD.replace("2026-12-01", "Dec 2026").replace("brokers: 3", "brokers: 0"));
        assert!(e.iter().any(|d| d.starts_with("p.yaml:4:8: as_of")), "{e:?}");
        assert!(e.iter().any(|d| d.contains("sizing.brokers: must be at least 1")), "{e:?}");
    }
}
