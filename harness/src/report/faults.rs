//! Recovery metrics per fault, computed from the timeline and what the fault scheduler recorded.
//! Pure functions: everything here can be recomputed from `report.json`'s timeline.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::schema::ActionRecord;
use super::schema::AuditPoint;
use super::schema::{RebalanceEvent, RebalanceKind, TimelinePoint};
use crate::faults::FaultRun;

/// A fault and what it did to the run.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct FaultReport {
    pub name: String,
    /// `broker_kill`, `broker_stop`, `broker_pause`, `latency`, `network`, `broker_replace`,
    /// `scale_out` or `scale_in`.
    pub kind: String,
    /// How the broker was chosen, e.g. `the leader of telemetry[0]`.
    pub selector: String,
    /// The broker it hit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker: Option<i32>,
    /// `embedded`, `process` or `command`.
    pub mechanism: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// What a `network` fault did to the broker's links.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<crate::config::scenario::NetworkSpec>,
    /// Seconds since the load started, as planned.
    pub planned_at_s: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_restore_s: Option<f64>,
    /// When the fault took effect and when it was undone (seconds since the load started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_s: Option<f64>,
    /// Partitions the broker led when the fault started, as `topic[partition]`.
    pub affected_partitions: Vec<String>,
    pub unavailable: Unavailability,
    pub recovery: Recovery,
    pub throughput: Throughput,
    /// Errors by kind from the fault's start to the end of its impact.
    pub errors: BTreeMap<String, u64>,
    /// Consumer groups that rebalanced during the fault's impact.
    pub rebalances: BTreeMap<String, Disturbance>,
    /// The audit's verdict on records intended to be sent while the fault was in effect.
    pub audit: AuditPoint,
    /// What the mechanism did, with its commands and output.
    pub actions: Vec<ActionRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl FaultReport {
    /// The kind, with what a network fault did: `network (clients: delay 100ms ±20ms)`.
    pub fn what(&self) -> String {
        match &self.network {
            Some(n) => format!("{} ({n})", self.kind),
            None => self.kind.clone(),
        }
    }

    /// When p99 was back, or why that is not known: `4.70s`, `not before the next fault (32.0s)`.
    pub fn recovered_text(&self) -> String {
        match (self.recovery.recovered_s, self.recovery.until_s) {
            (None, Some(next)) => format!("not before the next fault ({next:.1}s)"),
            (v, _) => super::fmt::secs(v),
        }
    }

    /// The partition data its actions moved, as they measured it: `scale_out 3.9 s, 28.4 MB
    /// (metrics); scale_in 6.0 s, 28.4 MB (metrics)`. `None` if no action moved data.
    pub fn moved(&self) -> Option<String> {
        let parts: Vec<String> = self
            .actions
            .iter()
            .filter(|a| matches!(a.action.as_str(), "broker_replace" | "scale_out" | "scale_in"))
            .map(|a| match &a.movement {
                Some(m) => format!("{} {m}", a.action),
                None if a.ok => format!("{} unmeasured", a.action),
                None => format!("{} failed", a.action),
            })
            .collect();
        if parts.is_empty() { None } else { Some(parts.join("; ")) }
    }
}

/// How long writes were refused: from the fault until a record sent after it was acknowledged.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct Unavailability {
    /// Until every affected partition acknowledged again. `None`: some never did (or none was
    /// affected, see `affected_partitions`).
    #[serde(default)]
    pub affected_partitions_s: Option<f64>,
    /// Per topic holding affected partitions: until every one of its partitions acknowledged again.
    pub topics: BTreeMap<String, Option<f64>>,
    /// Per affected partition.
    pub partitions: BTreeMap<String, Option<f64>>,
}

/// How long acknowledgement latency took to come back.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct Recovery {
    /// Mean of the per-second p99 (from intended send time) over up to 10 seconds before the fault.
    #[serde(default)]
    pub baseline_p99_us: Option<u64>,
    /// Twice the baseline: recovered means three consecutive seconds at or below this.
    #[serde(default)]
    pub threshold_us: Option<u64>,
    /// Seconds from the fault's start until the p99 was back within the threshold. `None`: it
    /// never came back before the run ended, or there was no baseline.
    #[serde(default)]
    pub recovered_s: Option<f64>,
    /// The worst per-second p99 during the fault's impact.
    #[serde(default)]
    pub peak_p99_us: Option<u64>,
    /// Where the measurement stopped, when a later fault began after this one was undone (its
    /// start, seconds since the load started): what follows is that fault's. `None`: the load's end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_s: Option<f64>,
}

/// The dip in acknowledged throughput.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct Throughput {
    pub baseline_acked_per_s: f64,
    pub min_acked_per_s: f64,
    /// 100 * (1 - min / baseline).
    pub dip_pct: f64,
}

/// A consumer group's rebalance during a fault.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct Disturbance {
    /// From the first revocation (or assignment) to the last assignment.
    pub duration_s: f64,
    pub revocations: u32,
    pub assignments: u32,
}

/// What the report builder knows that the fault run does not.
pub struct Context<'a> {
    pub timeline: &'a [TimelinePoint],
    /// `topic[partition]` and topic name of every flattened partition.
    pub partitions: &'a [(String, String)],
    pub warmup_s: f64,
    /// When the load ended (seconds).
    pub load_end_s: f64,
    /// When each fault of the run began (seconds since the load started), in any order: a fault's
    /// recovery is measured only until the next one that began after it was undone.
    pub fault_starts_s: &'a [f64],
    pub rebalances: &'a BTreeMap<String, Vec<RebalanceEvent>>,
}

const BASELINE_WINDOWS: u32 = 10;
const RECOVERED_WINDOWS: usize = 3;

pub fn build(run: &FaultRun, cx: &Context<'_>) -> FaultReport {
    let secs = |us: u64| us as f64 / 1e6;
    let mut r = FaultReport {
        name: run.label.clone(),
        kind: run.kind.map(|k| k.as_str().to_string()).unwrap_or_default(),
        selector: run.selector.clone(),
        broker: run.broker,
        mechanism: run.mechanism.clone(),
        latency_ms: run.latency_us.map(|l| l as f64 / 1e3),
        network: run.network,
        planned_at_s: secs(run.planned_at_us),
        planned_restore_s: run.planned_restore_us.map(secs),
        started_s: run.injected_at_us.map(secs),
        ended_s: run.restored_at_us.map(secs),
        affected_partitions: run.affected.iter().filter_map(|i| cx.partitions.get(*i)).map(|p| p.0.clone()).collect(),
        actions: run.actions.clone(),
        error: run.error.clone(),
        ..FaultReport::default()
    };
    let Some(start_us) = run.injected_at_us else { return r };

    // Unavailability, from the acknowledgement watch.
    let gap = |i: usize| run.first_acks.get(i).copied().flatten().map(|t| secs(t.saturating_sub(start_us)));
    for &i in &run.affected {
        if let Some((name, _)) = cx.partitions.get(i) {
            r.unavailable.partitions.insert(name.clone(), gap(i));
        }
    }
    if !run.affected.is_empty() {
        r.unavailable.affected_partitions_s = worst(run.affected.iter().map(|&i| gap(i)));
        let topics: Vec<&String> = run.affected.iter().filter_map(|i| cx.partitions.get(*i)).map(|p| &p.1).collect();
        for topic in topics {
            let all = cx.partitions.iter().enumerate().filter(|(_, p)| &p.1 == topic).map(|(i, _)| gap(i));
            r.unavailable.topics.insert(topic.clone(), worst(all));
        }
    }
    measure(&mut r, start_us, cx);
    r
}

/// The figures of a fault that follow from the timeline (recovery, throughput dip, errors, the
/// audit of its seconds, rebalances), from its start (`start_us`), its end (`ended_s`, else the
/// load's end) and its unavailability window. [`build`] calls it on a run's timeline;
/// `fleetstorm merge` calls it again on the merged timeline of a campaign.
pub fn measure(r: &mut FaultReport, start_us: u64, cx: &Context<'_>) {
    let secs = |us: u64| us as f64 / 1e6;
    let start_s = secs(start_us);
    let end_s = r.ended_s.unwrap_or(cx.load_end_s);
    r.errors.clear();
    r.rebalances.clear();
    r.audit = AuditPoint::default();
    r.recovery = Recovery::default();
    r.throughput = Throughput::default();

    // Baseline: up to 10 seconds before the fault, after warm-up.
    let first = start_s.floor() as u32;
    let warm = cx.warmup_s.ceil() as u32;
    let baseline: Vec<&TimelinePoint> = cx
        .timeline
        .iter()
        .filter(|p| p.t >= warm && p.t < first && p.t + BASELINE_WINDOWS >= first && p.faults.is_empty())
        .collect();
    let base_p99 = mean(baseline.iter().filter(|p| p.produce.count > 0).map(|p| p.produce.p99_us as f64));
    r.recovery.baseline_p99_us = base_p99.map(|v| v.round() as u64);
    r.throughput.baseline_acked_per_s = mean(baseline.iter().map(|p| p.acked as f64)).unwrap_or(0.0);

    // Recovery: from the first second after the fault, the first three consecutive seconds with
    // acknowledgements and p99 within twice the baseline.
    // Only whole seconds of load: the drain after it has no sends, and would look like a dip. And
    // only until the next fault that began after this one ended: its impact is its own (regression:
    // in scenarios/network-faults.yaml every fault's peak was the last fault's 14 s stall).
    let next = cx.fault_starts_s.iter().copied().filter(|&s| s > start_s && s >= end_s).reduce(f64::min);
    r.recovery.until_s = next.filter(|&s| s < cx.load_end_s);
    let load_end = next.map_or(cx.load_end_s, |s| s.min(cx.load_end_s)).floor() as u32;
    let after: Vec<&TimelinePoint> = cx.timeline.iter().filter(|p| p.t >= first && p.t < load_end).collect();
    if let Some(base) = base_p99 {
        let threshold = (2.0 * base).round() as u64;
        r.recovery.threshold_us = Some(threshold);
        let good = |p: &TimelinePoint| p.acked > 0 && p.produce.p99_us <= threshold;
        let disturbed = after.iter().position(|p| !good(p));
        r.recovery.recovered_s = match disturbed {
            None => Some(0.0),
            Some(d) => (d..after.len())
                .find(|&i| {
                    after.len() >= i + RECOVERED_WINDOWS && after[i..i + RECOVERED_WINDOWS].iter().all(|p| good(p))
                })
                .map(|i| (f64::from(after[i].t) - start_s).max(0.0)),
        };
    }
    // The fault's impact: until restored and recovered, whichever is later.
    let impact_end = [
        Some(end_s),
        r.recovery.recovered_s.map(|x| start_s + x),
        r.unavailable.affected_partitions_s.map(|x| start_s + x),
    ]
    .into_iter()
    .flatten()
    .fold(end_s, f64::max);
    let impact: Vec<&TimelinePoint> = after.iter().copied().filter(|p| f64::from(p.t) <= impact_end).collect();
    r.recovery.peak_p99_us = impact.iter().map(|p| p.produce.p99_us).max();
    let min = impact.iter().map(|p| p.acked as f64).fold(f64::INFINITY, f64::min);
    r.throughput.min_acked_per_s = if min.is_finite() { min } else { 0.0 };
    if r.throughput.baseline_acked_per_s > 0.0 {
        r.throughput.dip_pct =
            (100.0 * (1.0 - r.throughput.min_acked_per_s / r.throughput.baseline_acked_per_s)).max(0.0);
    }
    for p in &impact {
        for (k, v) in &p.errors {
            *r.errors.entry(k.clone()).or_insert(0) += v;
        }
    }
    // Audit: records intended to be sent while the fault was in effect.
    for p in cx.timeline.iter().filter(|p| p.t >= first && f64::from(p.t) <= end_s) {
        if let Some(a) = &p.audit {
            r.audit.acked += a.acked;
            r.audit.lost += a.lost;
            r.audit.duplicates += a.duplicates;
            r.audit.reordered += a.reordered;
        }
    }
    // Rebalances that began during the impact.
    let (from_us, to_us) = (start_us, ((impact_end + 30.0) * 1e6) as u64);
    for (group, events) in cx.rebalances {
        // A member's own `leave` at the end of the run is no disturbance (regression: the
        // real-Kafka kill report counted the two members' closing revocations as a 0 s rebalance).
        let during: Vec<&RebalanceEvent> =
            events.iter().filter(|e| e.kind != RebalanceKind::Leave && e.t_us >= from_us && e.t_us <= to_us).collect();
        if during.is_empty() {
            continue;
        }
        let first_t = during.iter().map(|e| e.t_us).min().unwrap_or(from_us);
        let last_assign =
            during.iter().filter(|e| e.kind == RebalanceKind::Assign).map(|e| e.t_us).max().unwrap_or(first_t);
        r.rebalances.insert(
            group.clone(),
            Disturbance {
                duration_s: secs(last_assign.saturating_sub(first_t)),
                revocations: during.iter().filter(|e| e.kind == RebalanceKind::Revoke).count() as u32,
                assignments: during.iter().filter(|e| e.kind == RebalanceKind::Assign).count() as u32,
            },
        );
    }
}

/// The largest value, or `None` if any is missing.
fn worst(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let mut max: Option<f64> = None;
    for v in values {
        let v = v?;
        max = Some(max.map_or(v, |m: f64| m.max(v)));
    }
    max
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0u32), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / f64::from(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::scenario::FaultKind;
    use crate::report::schema::WindowLatency;

    fn point(t: u32, acked: u64, p99: u64) -> TimelinePoint {
        TimelinePoint {
            t,
            acked,
            produce: WindowLatency { count: acked, p99_us: p99, ..WindowLatency::default() },
            ..TimelinePoint::default()
        }
    }

    fn timeline() -> Vec<TimelinePoint> {
        // Steady 1000/s at p99 10ms; a fault at 20.3s: 2 s without acks, then slow, then fine.
        let mut tl: Vec<TimelinePoint> = (0..40).map(|t| point(t, 1000, 10_000)).collect();
        tl[20] = point(20, 300, 400_000);
        tl[21] = point(21, 0, 0);
        tl[22] = point(22, 1500, 900_000);
        tl[23] = point(23, 1200, 50_000);
        tl[24] = point(24, 1000, 25_000);
        tl[25] = point(25, 1000, 12_000);
        tl[26] = point(26, 1000, 15_000);
        tl[27] = point(27, 1000, 11_000);
        tl[22].errors.insert("MessageTimedOut".into(), 4);
        tl[35].errors.insert("late".into(), 1);
        tl[21].audit = Some(AuditPoint { acked: 900, lost: 0, unverified: 0, duplicates: 2, reordered: 0 });
        tl
    }

    fn run() -> FaultRun {
        FaultRun {
            label: "kill".into(),
            kind: Some(FaultKind::BrokerKill),
            broker: Some(2),
            planned_at_us: 20_000_000,
            injected_at_us: Some(20_300_000),
            restored_at_us: Some(26_000_000),
            affected: vec![1],
            first_acks: vec![Some(20_400_000), Some(22_800_000), Some(21_000_000), Some(22_000_000)],
            ..FaultRun::default()
        }
    }

    fn parts() -> Vec<(String, String)> {
        vec![
            ("a[0]".into(), "a".into()),
            ("a[1]".into(), "a".into()),
            ("a[2]".into(), "a".into()),
            ("b[0]".into(), "b".into()),
        ]
    }

    #[test]
    fn members_leaving_at_the_end_of_the_run_are_no_rebalance() {
        // Regression: the real-Kafka kill report showed the sink's two closing revocations as a
        // rebalance of 0 s with no assignment.
        let tl = timeline();
        let parts = parts();
        let leave = |member| RebalanceEvent { t_us: 40_100_000, member, kind: RebalanceKind::Leave, partitions: 3 };
        let rebalances = BTreeMap::from([("sink".to_string(), vec![leave(0), leave(1)])]);
        let cx = Context {
            timeline: &tl,
            partitions: &parts,
            warmup_s: 2.0,
            load_end_s: 40.0,
            fault_starts_s: &[],
            rebalances: &rebalances,
        };
        assert!(build(&run(), &cx).rebalances.is_empty());
    }

    #[test]
    fn recovery_metrics_follow_the_timeline() {
        let tl = timeline();
        let parts = parts();
        let mut rebalances = BTreeMap::new();
        rebalances.insert(
            "sink".to_string(),
            vec![
                RebalanceEvent { t_us: 1_000_000, member: 0, kind: RebalanceKind::Assign, partitions: 3 },
                RebalanceEvent { t_us: 21_000_000, member: 0, kind: RebalanceKind::Revoke, partitions: 3 },
                RebalanceEvent { t_us: 24_500_000, member: 0, kind: RebalanceKind::Assign, partitions: 2 },
                // The member's own close at the end of the run, inside the 30 s after the impact.
                RebalanceEvent { t_us: 40_100_000, member: 0, kind: RebalanceKind::Leave, partitions: 2 },
            ],
        );
        let cx = Context {
            timeline: &tl,
            partitions: &parts,
            warmup_s: 2.0,
            load_end_s: 40.0,
            fault_starts_s: &[],
            rebalances: &rebalances,
        };
        let r = build(&run(), &cx);
        assert_eq!(r.affected_partitions, vec!["a[1]"]);
        assert_eq!(r.unavailable.affected_partitions_s, Some(2.5));
        assert_eq!(r.unavailable.topics["a"], Some(2.5));
        assert_eq!(r.recovery.baseline_p99_us, Some(10_000));
        assert_eq!(r.recovery.threshold_us, Some(20_000));
        // Seconds 25, 26, 27 are the first three good ones: 25 - 20.3.
        assert!((r.recovery.recovered_s.unwrap() - 4.7).abs() < 1e-9, "{:?}", r.recovery.recovered_s);
        assert_eq!(r.recovery.peak_p99_us, Some(900_000));
        assert_eq!(r.throughput.baseline_acked_per_s, 1000.0);
        assert_eq!(r.throughput.min_acked_per_s, 0.0);
        assert_eq!(r.throughput.dip_pct, 100.0);
        assert_eq!(r.errors.get("MessageTimedOut"), Some(&4));
        assert!(!r.errors.contains_key("late"), "errors after the impact are not the fault's");
        assert_eq!(r.audit.duplicates, 2);
        let d = &r.rebalances["sink"];
        assert_eq!((d.revocations, d.assignments), (1, 1));
        assert!((d.duration_s - 3.5).abs() < 1e-9);
    }

    #[test]
    fn a_partition_that_never_acknowledges_again_leaves_the_window_open() {
        let tl = timeline();
        let parts = parts();
        let mut r = run();
        r.first_acks[1] = None;
        let none = BTreeMap::new();
        let cx = Context {
            timeline: &tl,
            partitions: &parts,
            warmup_s: 0.0,
            load_end_s: 40.0,
            fault_starts_s: &[],
            rebalances: &none,
        };
        let f = build(&r, &cx);
        assert_eq!(f.unavailable.affected_partitions_s, None);
        assert_eq!(f.unavailable.partitions["a[1]"], None);
    }

    #[test]
    fn a_fault_that_never_started_has_no_metrics() {
        let mut r = run();
        r.injected_at_us = None;
        r.error = Some("could not choose the broker".into());
        let none = BTreeMap::new();
        let cx = Context {
            timeline: &[],
            partitions: &[],
            warmup_s: 0.0,
            load_end_s: 40.0,
            fault_starts_s: &[],
            rebalances: &none,
        };
        let f = build(&r, &cx);
        assert!(f.started_s.is_none());
        assert!(f.recovery.recovered_s.is_none());
        assert_eq!(f.error.as_deref(), Some("could not choose the broker"));
    }

    #[test]
    fn a_later_fault_is_not_counted_in_an_earlier_ones_recovery() {
        // The fault at 20.3 s (restored at 26 s) leaves p99 above its threshold (20 ms) until a
        // second fault at 32 s stalls the load for 3 s; all is well from 35 s. Without the horizon
        // the first fault "recovers" at 35 s and its peak is the second fault's stall.
        let mut tl = timeline();
        for t in 25..32u32 {
            tl[t as usize] = point(t, 1000, 30_000);
        }
        for t in 32..35u32 {
            tl[t as usize] = point(t, 10, 5_000_000);
        }
        let none = BTreeMap::new();
        let parts = parts();
        let starts = [32.0, 20.3];
        let cx = Context {
            timeline: &tl,
            partitions: &parts,
            warmup_s: 2.0,
            load_end_s: 40.0,
            fault_starts_s: &starts,
            rebalances: &none,
        };
        let f = build(&run(), &cx);
        assert_eq!(f.recovery.until_s, Some(32.0));
        assert_eq!(f.recovery.peak_p99_us, Some(900_000));
        assert_eq!(f.recovery.recovered_s, None, "not recovered before the next fault");
        let alone = Context { fault_starts_s: &[], ..cx };
        let f = build(&run(), &alone);
        assert_eq!((f.recovery.until_s, f.recovery.peak_p99_us), (None, Some(5_000_000)));
        assert!((f.recovery.recovered_s.unwrap() - 14.7).abs() < 1e-9, "{:?}", f.recovery);
    }

    #[test]
    fn a_fault_without_visible_effect_recovers_at_once() {
        let tl: Vec<TimelinePoint> = (0..30).map(|t| point(t, 1000, 10_000)).collect();
        let none = BTreeMap::new();
        let parts = parts();
        let cx = Context {
            timeline: &tl,
            partitions: &parts,
            warmup_s: 0.0,
            load_end_s: 30.0,
            fault_starts_s: &[],
            rebalances: &none,
        };
        let f = build(&run(), &cx);
        assert_eq!(f.recovery.recovered_s, Some(0.0));
        assert_eq!(f.throughput.dip_pct, 0.0);
    }
}
