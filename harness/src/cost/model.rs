//! The cost model: a finished run's measured drivers (`report.cost_drivers`) times a pricing
//! file's prices, line by line, each line split by the workload behaviour that drives it. Pure:
//! tested on crafted reports against hand-computed figures.
//!
//! Rates are the run's: counters divided by `cost_drivers.basis_s`, scaled to an hour, and a
//! month is 730 hours. A GiB is 2^30 bytes.

use serde::{Deserialize, Serialize};

use super::pricing::{OperatingModel, Pricing, PricingFile};
use crate::report::Report;
use crate::report::schema::CostDrivers;
pub use crate::report::schema::{CostDriver as Driver, CostLine as Line};

pub const HOURS_PER_MONTH: f64 = 730.0;
const GIB: f64 = (1u64 << 30) as f64;

/// One part of a line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Part {
    pub driver: Driver,
    /// The measured quantity priced: GiB per hour (transfer), GiB retained (storage), requests
    /// per hour, instances.
    pub quantity: f64,
    pub unit: String,
    pub hourly: f64,
    pub monthly: f64,
    /// Of the line, 0..=1.
    pub share: f64,
}

/// One cost line and its parts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LineCost {
    pub line: Line,
    pub hourly: f64,
    pub monthly: f64,
    pub parts: Vec<Part>,
}

/// A run priced under one pricing file (`cost.json` holds one per file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Priced {
    pub pricing: String,
    pub file: String,
    pub model: OperatingModel,
    pub region: String,
    pub as_of: String,
    pub currency: String,
    pub brokers: u32,
    pub instance: String,
    pub hourly: f64,
    pub monthly: f64,
    pub lines: Vec<LineCost>,
    /// What the figures assume, to be read next to them.
    pub assumptions: Vec<String>,
}

impl Priced {
    pub fn line(&self, l: Line) -> Option<&LineCost> {
        self.lines.iter().find(|c| c.line == l)
    }
}

/// Why a report cannot be priced.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ModelError {
    #[error("the report has no cost drivers (a run that never reached its load, or one made before they existed)")]
    NoDrivers,
    #[error(
        "the report has no wire counters (librdkafka's statistics were off: `statistics.interval.ms` 0?); pricing \
         it would price zeros"
    )]
    NoWire,
    #[error("the report's load lasted 0 s: no rate to price")]
    NoBasis,
    #[error("{file}: topology.egress_groups names `{group}`, which the run has no consumer group of")]
    UnknownEgressGroup { file: String, group: String },
}

struct Builder {
    lines: Vec<LineCost>,
}

impl Builder {
    /// Add a part priced per hour.
    fn hourly(&mut self, line: Line, driver: Driver, quantity: f64, unit: &str, hourly: f64) {
        self.part(
            line,
            Part { driver, quantity, unit: unit.into(), hourly, monthly: hourly * HOURS_PER_MONTH, share: 0.0 },
        );
    }

    /// Add a part priced per month.
    fn monthly(&mut self, line: Line, driver: Driver, quantity: f64, unit: &str, monthly: f64) {
        self.part(
            line,
            Part { driver, quantity, unit: unit.into(), hourly: monthly / HOURS_PER_MONTH, monthly, share: 0.0 },
        );
    }

    fn part(&mut self, line: Line, part: Part) {
        if part.quantity <= 0.0 {
            return;
        }
        match self.lines.iter_mut().find(|l| l.line == line) {
            Some(l) => l.parts.push(part),
            None => self.lines.push(LineCost { line, hourly: 0.0, monthly: 0.0, parts: vec![part] }),
        }
    }

    fn finish(mut self) -> Vec<LineCost> {
        for l in &mut self.lines {
            l.hourly = l.parts.iter().map(|p| p.hourly).sum();
            l.monthly = l.parts.iter().map(|p| p.monthly).sum();
            for p in &mut l.parts {
                p.share = if l.monthly > 0.0 { p.monthly / l.monthly } else { 0.0 };
            }
            l.parts.sort_by(|a, b| b.monthly.total_cmp(&a.monthly).then_with(|| a.driver.cmp(&b.driver)));
        }
        self.lines.sort_by_key(|l| l.line);
        self.lines
    }
}

/// Price a finished run under one pricing file.
pub fn price(report: &Report, file: &PricingFile) -> Result<Priced, ModelError> {
    let d: &CostDrivers = report.cost_drivers.as_ref().ok_or(ModelError::NoDrivers)?;
    let p: &Pricing = &file.pricing;
    let produced = d.produce.wire.ok_or(ModelError::NoWire)?;
    if d.basis_s <= 0.0 {
        return Err(ModelError::NoBasis);
    }
    for g in &p.topology.egress_groups {
        if !d.groups.contains_key(g) {
            return Err(ModelError::UnknownEgressGroup { file: file.file.clone(), group: g.clone() });
        }
    }
    // Counters over the basis, scaled to one hour, in GiB.
    let per_hour_gib = |bytes: f64| bytes / d.basis_s * 3600.0 / GIB;
    let zones = f64::from(p.topology.zones);
    let crossing = (zones - 1.0) / zones;
    let ps = &p.prices;
    let mut b = Builder { lines: Vec::new() };
    let mut assumptions = vec![
        format!(
            "rates are the run's: counters over its {:.1} s of load (warm-up included), scaled to an hour; a month is \
             {HOURS_PER_MONTH} hours; 1 GiB = 2^30 bytes",
            d.basis_s
        ),
        format!(
            "prices are the pricing file's ({}, {}, as of {}), list prices to be checked by the user",
            file.file, p.region, p.as_of
        ),
    ];

    b.hourly(
        Line::Compute,
        Driver::Sizing,
        f64::from(p.sizing.brokers),
        "instances",
        f64::from(p.sizing.brokers) * ps.instance_hour.price,
    );
    for f in &p.fixed {
        b.hourly(
            Line::Fixed,
            Driver::Fixed(f.name.clone()),
            f64::from(f.quantity),
            "items",
            f64::from(f.quantity) * f.per_hour.price,
        );
    }

    // Produce: the producers' socket traffic both ways, apportioned to classes by value bytes.
    let produce_bytes = (produced.tx_bytes + produced.rx_bytes) as f64;
    let value_total = d.produce.value_bytes as f64;
    let copies = |rf: u16| match p.model {
        OperatingModel::SharedStorage => 1.0,
        OperatingModel::BrokerDisk | OperatingModel::Managed => f64::from(rf),
    };
    let headroom = p.storage_headroom.unwrap_or(1.0);
    for (name, c) in &d.produce.classes {
        let share = if value_total > 0.0 { c.value_bytes as f64 / value_total } else { 0.0 };
        let wire = produce_bytes * share;
        let ingress = produced.tx_bytes as f64 * share;
        if p.topology.zones > 1 && !p.topology.zone_local_produce {
            let gib = per_hour_gib(wire) * crossing;
            b.hourly(Line::CrossZone, Driver::Produce(name.clone()), gib, "GiB/h", gib * ps.cross_zone_gb.price);
        }
        let topic = d.topics.get(&c.topic);
        let rf = topic.map_or(1, |t| t.replication);
        if p.model == OperatingModel::BrokerDisk && p.topology.zones > 1 {
            // Followers in distinct zones (rack-aware placement): min(RF - 1, zones - 1) copies
            // cross.
            let cross_copies = f64::from(rf.saturating_sub(1)).min(zones - 1.0);
            let gib = per_hour_gib(ingress) * cross_copies;
            b.hourly(Line::CrossZone, Driver::Replication(name.clone()), gib, "GiB/h", gib * ps.cross_zone_gb.price);
        }
        let retention_s = topic.and_then(|t| t.retention_s).unwrap_or(p.default_retention.0.as_secs_f64());
        let retained_gib = ingress / d.basis_s * retention_s * copies(rf) * headroom / GIB;
        b.monthly(
            Line::Storage,
            Driver::Retention(name.clone()),
            retained_gib,
            "GiB",
            retained_gib * ps.storage_gb_month.price,
        );
        if p.model == OperatingModel::SharedStorage
            && let (Some(size), Some(put)) = (p.object_size, &ps.object_put_1000)
        {
            let puts = ingress / d.basis_s * 3600.0 / size.0 as f64;
            b.hourly(Line::ObjectRequests, Driver::Produce(name.clone()), puts, "PUT/h", puts / 1000.0 * put.price);
        }
    }

    // Reads: each group's socket traffic both ways, split between live reads and re-reads by
    // value bytes.
    for (name, g) in &d.groups {
        let Some(w) = g.wire else { continue };
        let total = (w.rx_bytes + w.tx_bytes) as f64;
        let read = (g.live_value_bytes + g.reread_value_bytes) as f64;
        let (live, replay) = if read > 0.0 {
            (total * g.live_value_bytes as f64 / read, total * g.reread_value_bytes as f64 / read)
        } else {
            (total, 0.0)
        };
        for (driver, bytes) in [(Driver::Live(name.clone()), live), (Driver::Replay(name.clone()), replay)] {
            if p.topology.egress_groups.contains(name) {
                let gib = per_hour_gib(bytes);
                b.hourly(Line::Egress, driver, gib, "GiB/h", gib * ps.egress_gb.price);
            } else if p.topology.zones > 1 && !p.topology.rack_aware_fetch {
                let gib = per_hour_gib(bytes) * crossing;
                b.hourly(Line::CrossZone, driver, gib, "GiB/h", gib * ps.cross_zone_gb.price);
            }
        }
        if p.model == OperatingModel::SharedStorage
            && let (Some(size), Some(get)) = (p.object_size, &ps.object_get_1000)
        {
            let from_objects = p.replay_from_object_storage.map_or(1.0, |r| r.0);
            let gets = replay * from_objects / d.basis_s * 3600.0 / size.0 as f64;
            b.hourly(Line::ObjectRequests, Driver::Replay(name.clone()), gets, "GET/h", gets / 1000.0 * get.price);
        }
    }

    if p.topology.zones > 1 {
        assumptions.push(format!(
            "brokers spread evenly over {} zones: {:.0} % of client traffic crosses zones{}{}",
            p.topology.zones,
            crossing * 100.0,
            if p.topology.zone_local_produce { "; producers write in their own zone" } else { "" },
            if p.topology.rack_aware_fetch { "; consumers fetch in their own zone (rack-aware)" } else { "" },
        ));
    }
    assumptions.push(match p.model {
        OperatingModel::BrokerDisk => "replicas placed rack-aware: a class's ingress crosses zones min(RF - 1, zones - 1) times; every replica on broker disk".into(),
        OperatingModel::Managed => "replication between the service's brokers is not charged; storage holds every replica".into(),
        OperatingModel::SharedStorage => format!(
            "one copy in object storage (no broker replication); writes in objects of {} B; replays read from object storage ({:.0} %), live reads from the brokers' cache",
            p.object_size.map_or(0, |s| s.0),
            p.replay_from_object_storage.map_or(100.0, |r| r.0 * 100.0)
        ),
    });
    assumptions.push(format!(
        "retained bytes at steady state: the measured ingress rate × copies × retention (topics without `retention.ms`: {}){}",
        p.default_retention,
        if headroom > 1.0 { format!(" × headroom {headroom}") } else { String::new() }
    ));
    assumptions.push(
        "wire bytes from librdkafka's statistics; split between classes, and between live reads and re-reads, in proportion to value bytes (an apportionment)".into(),
    );
    let lines = b.finish();
    Ok(Priced {
        pricing: p.name.clone(),
        file: file.file.clone(),
        model: p.model,
        region: p.region.clone(),
        as_of: p.as_of.clone(),
        currency: p.currency.clone(),
        brokers: p.sizing.brokers,
        instance: p.sizing.instance.clone(),
        hourly: lines.iter().map(|l| l.hourly).sum(),
        monthly: lines.iter().map(|l| l.monthly).sum(),
        lines,
        assumptions,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::cost::pricing;
    use crate::report::schema::{ClassDrivers, GroupDrivers, ProduceDrivers, TopicDrivers, WireCounts};

    const G: u64 = 1 << 30;

    /// One hour of load: per-hour figures are the counters. Producers: 3 GiB out, 1 GiB back;
    /// classes `telemetry` (3/4 of value bytes) and `heartbeat` (1/4) on topic `t`, replication 3,
    /// retention one day. Group `analytics`: 1.5 GiB in, 0.5 GiB out; a quarter of its reads live,
    /// three quarters re-reads.
    fn crafted() -> Report {
        let mut r = crate::report::fixture::report("embedded");
        let class =
            |value_bytes| ClassDrivers { topic: "t".into(), records: 1, value_bytes, wire_bytes: None, requests: None };
        r.cost_drivers = Some(CostDrivers {
            basis_s: 3600.0,
            stats_interval_ms: 1000,
            stats_callbacks: 1,
            stats_parse_ms: 0.0,
            stats_unreadable: 0,
            produce: ProduceDrivers {
                wire: Some(WireCounts { tx_bytes: 3 * G, rx_bytes: G, ..WireCounts::default() }),
                value_bytes: 400,
                classes: BTreeMap::from([("telemetry".into(), class(300)), ("heartbeat".into(), class(100))]),
            },
            groups: BTreeMap::from([(
                "analytics".into(),
                GroupDrivers {
                    live_value_bytes: 50,
                    reread_value_bytes: 150,
                    wire: Some(WireCounts { rx_bytes: 3 * G / 2, tx_bytes: G / 2, ..WireCounts::default() }),
                    ..GroupDrivers::default()
                },
            )]),
            topics: BTreeMap::from([(
                "t".into(),
                TopicDrivers { replication: 3, retention_s: Some(86_400.0), ..TopicDrivers::default() },
            )]),
        });
        r
    }

    fn pricing(edit: impl Fn(&mut pricing::Pricing)) -> pricing::PricingFile {
        let src = "\
name: p
model: broker_disk
region: r
as_of: 2026-12-01
currency: USD
sizing: {brokers: 3, instance: i}
topology: {zones: 3}
default_retention: 7d
object_size: 16MiB
prices:
  instance_hour: {price: 0.2, source: https://example.com/a}
  storage_gb_month: {price: 0.1, source: https://example.com/b}
  cross_zone_gb: {price: 0.02, source: https://example.com/c}
  egress_gb: {price: 0.09, source: https://example.com/d}
  object_put_1000: {price: 0.005, source: https://example.com/e}
  object_get_1000: {price: 0.0004, source: https://example.com/f}
";
        let mut f = pricing::parse("p.yaml", src).expect("the test's pricing parses");
        edit(&mut f.pricing);
        f
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    fn part(p: &Priced, line: Line, driver: Driver) -> f64 {
        p.line(line).and_then(|l| l.parts.iter().find(|x| x.driver == driver)).map_or(f64::NAN, |x| x.hourly)
    }

    #[test]
    fn broker_disk_lines_match_the_hand_computed_figures() {
        let p = price(&crafted(), &pricing(|_| {})).expect("priced");
        // Compute: 3 brokers × 0.2.
        assert!(close(p.line(Line::Compute).map_or(0.0, |l| l.hourly), 0.6));
        // Cross-zone, 2/3 of client traffic at 0.02/GiB: produce 4 GiB/h split 3:1 → 3 × 2/3 and
        // 1 × 2/3 GiB; replication of the 3 GiB/h ingress split 3:1, two follower copies → 4.5 and
        // 1.5 GiB; analytics' 2 GiB/h split 1:3 → 0.5 × 2/3 live, 1.5 × 2/3 replay.
        let cz = |d| part(&p, Line::CrossZone, d);
        assert!(close(cz(Driver::Produce("telemetry".into())), 0.04));
        assert!(close(cz(Driver::Produce("heartbeat".into())), 0.02 * 2.0 / 3.0));
        assert!(close(cz(Driver::Replication("telemetry".into())), 0.09));
        assert!(close(cz(Driver::Replication("heartbeat".into())), 0.03));
        assert!(close(cz(Driver::Live("analytics".into())), 0.02 / 3.0));
        assert!(close(cz(Driver::Replay("analytics".into())), 0.02));
        let line = p.line(Line::CrossZone).map_or(0.0, |l| l.hourly);
        assert!(close(line, 0.2), "{line}");
        let replay = p
            .line(Line::CrossZone)
            .and_then(|l| l.parts.iter().find(|x| x.driver == Driver::Replay("analytics".into())));
        assert!(replay.is_some_and(|x| close(x.share, 0.1)), "replay by analytics is 10 % of transfer: {replay:?}");
        // Storage: telemetry 2.25 GiB/h × 24 h × 3 copies = 162 GiB, heartbeat 54 GiB, at 0.1.
        let st = p.line(Line::Storage).map_or(0.0, |l| l.monthly);
        assert!(close(st, 21.6), "{st}");
        assert!(close(p.monthly, 0.6 * 730.0 + 0.2 * 730.0 + 21.6), "{}", p.monthly);
        assert!(close(p.hourly, p.monthly / 730.0));
        assert!(p.line(Line::ObjectRequests).is_none() && p.line(Line::Egress).is_none());
    }

    #[test]
    fn a_managed_service_charges_no_replication_transfer() {
        let p = price(&crafted(), &pricing(|p| p.model = OperatingModel::Managed)).expect("priced");
        let line = p.line(Line::CrossZone).map_or(0.0, |l| l.hourly);
        assert!(close(line, 0.2 - 0.09 - 0.03), "{line}");
        assert!(close(p.line(Line::Storage).map_or(0.0, |l| l.monthly), 21.6));
    }

    #[test]
    fn shared_storage_keeps_one_copy_and_prices_object_requests() {
        let p = price(&crafted(), &pricing(|p| p.model = OperatingModel::SharedStorage)).expect("priced");
        assert!(close(p.line(Line::Storage).map_or(0.0, |l| l.monthly), 7.2)); // 54 + 18 GiB at 0.1
        // PUTs: 2.25 GiB/h in 16 MiB objects = 144/h; GETs: 1.5 GiB/h of replay = 96/h.
        let put = part(&p, Line::ObjectRequests, Driver::Produce("telemetry".into()));
        assert!(close(put, 144.0 / 1000.0 * 0.005), "{put}");
        let get = part(&p, Line::ObjectRequests, Driver::Replay("analytics".into()));
        assert!(close(get, 96.0 / 1000.0 * 0.0004), "{get}");
        assert!(
            p.line(Line::CrossZone)
                .is_some_and(|l| l.parts.iter().all(|x| !matches!(x.driver, Driver::Replication(_))))
        );
    }

    #[test]
    fn egress_groups_leave_the_region_and_one_zone_has_no_cross_zone_line() {
        let p = price(
            &crafted(),
            &pricing(|p| {
                p.topology.egress_groups = vec!["analytics".into()];
                p.topology.zones = 1;
            }),
        )
        .expect("priced");
        assert!(close(p.line(Line::Egress).map_or(0.0, |l| l.hourly), 2.0 * 0.09));
        assert!(p.line(Line::CrossZone).is_none());
    }

    #[test]
    fn rack_aware_fetch_takes_reads_off_the_cross_zone_line() {
        let p = price(&crafted(), &pricing(|p| p.topology.rack_aware_fetch = true)).expect("priced");
        assert!(close(p.line(Line::CrossZone).map_or(0.0, |l| l.hourly), 0.2 - 0.02 / 3.0 - 0.02));
    }

    #[test]
    fn a_report_without_wire_counters_or_with_an_unknown_egress_group_is_refused() {
        let mut r = crafted();
        if let Some(d) = &mut r.cost_drivers {
            d.produce.wire = None;
        }
        assert_eq!(price(&r, &pricing(|_| {})), Err(ModelError::NoWire));
        r.cost_drivers = None;
        assert_eq!(price(&r, &pricing(|_| {})), Err(ModelError::NoDrivers));
        let e = price(&crafted(), &pricing(|p| p.topology.egress_groups = vec!["nope".into()]));
        assert!(matches!(e, Err(ModelError::UnknownEgressGroup { .. })), "{e:?}");
    }

    #[test]
    fn an_unknown_egress_group_is_found_before_the_run_from_the_scenarios_groups() {
        let files = [pricing(|p| p.topology.egress_groups = vec!["analytics".into()])];
        assert!(super::super::check_groups(&files, &["analytics".into()]).is_ok());
        let e = super::super::check_groups(&files, &["warehouse".into()]).unwrap_err().to_string();
        assert!(e.contains("topology.egress_groups names `analytics`, which the run has no consumer group of"), "{e}");
    }
}
