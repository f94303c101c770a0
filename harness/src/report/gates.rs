//! Gates judged: each gate parsed by `config/gates.rs` (the grammar, the metric tables, the checks
//! against the scenario) is read from a finished report here, live gates from what the run knows
//! while the load goes; then the verdicts and their JUnit file.
//!
//! Every metric is read by an exhaustive `match` on its type: a metric added to config's tables
//! without a reader here does not compile.

use std::ops::Deref;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::schema::LatencySummary;
use super::schema::{CostEstimate, CostLine};
use super::{GroupReport, ProduceReport, Report};
use crate::config::gates::{
    AuditMetric, ClassLatency, CostItem, CostPeriod, FaultMetric, Gate, GroupLatency, GroupMetric, HarnessMetric,
    Metric, ProduceLatency, ProduceMetric, Quantile, TargetStat, Unit, WaveMetric,
};

/// A metric's value as shown in results: `250ms`, `1,234`, `5.00%`, `500.0/s`.
fn show(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Duration => super::fmt::us(v.max(0.0) as u64),
        Unit::Percent => format!("{v:.2}%"),
        Unit::Rate => format!("{v:.1}/s"),
        Unit::Money => {
            let cents = (v.max(0.0) * 100.0).round() as u64;
            format!("{}.{:02}", super::fmt::count(cents / 100), cents % 100)
        }
        Unit::Count => {
            if v.fract() == 0.0 {
                super::fmt::count(v as u64)
            } else {
                format!("{v:.3}")
            }
        }
    }
}

fn quantile(l: &LatencySummary, q: Quantile) -> Option<f64> {
    (l.count > 0).then_some(match q {
        Quantile::P50 => l.p50_us as f64,
        Quantile::P90 => l.p90_us as f64,
        Quantile::P99 => l.p99_us as f64,
        Quantile::P999 => l.p999_us as f64,
        Quantile::Max => l.max_us as f64,
        Quantile::Min => l.min_us as f64,
        Quantile::Mean => l.mean_us,
    })
}

fn produce(m: ProduceMetric, p: &ProduceReport) -> f64 {
    match m {
        ProduceMetric::AchievedRate => p.achieved_rate,
        ProduceMetric::PlannedRate => p.planned_rate,
        ProduceMetric::Rate => p.msgs_per_s,
        ProduceMetric::AchievedRatio => {
            if p.planned_rate > 0.0 {
                100.0 * p.achieved_rate / p.planned_rate
            } else {
                0.0
            }
        }
        ProduceMetric::Acked => p.acked as f64,
        ProduceMetric::Failed => p.failed as f64,
        ProduceMetric::Purged => p.purged as f64,
        ProduceMetric::Backpressure => p.backpressure as f64,
    }
}

fn produce_latency(l: ProduceLatency, p: &ProduceReport) -> &LatencySummary {
    match l {
        ProduceLatency::FromIntended => &p.latency_from_intended,
        ProduceLatency::FromSend => &p.latency_from_send,
        ProduceLatency::SendLag => &p.send_lag,
    }
}

fn group(m: GroupMetric, g: &GroupReport) -> f64 {
    match m {
        GroupMetric::MaxLag => g.max_lag as f64,
        GroupMetric::FinalLag => g.final_lag as f64,
        GroupMetric::Consumed => g.consumed as f64,
        GroupMetric::Rereads => g.rereads as f64,
        GroupMetric::Missed => g.missed as f64,
        GroupMetric::Rate => g.msgs_per_s,
    }
}

fn group_latency(l: GroupLatency, g: &GroupReport) -> &LatencySummary {
    match l {
        GroupLatency::E2e => &g.e2e_latency,
        GroupLatency::EventAge => &g.event_age,
    }
}

fn harness(m: HarnessMetric, h: &super::HarnessReport) -> f64 {
    match m {
        HarnessMetric::Saturated => f64::from(u8::from(h.saturated)),
        HarnessMetric::CpuSaturatedS => f64::from(h.cpu_saturated_s),
        HarnessMetric::LaggingS => f64::from(h.lagging_s),
        HarnessMetric::CpuPctMean => f64::from(h.cpu_pct_mean),
        HarnessMetric::CpuPctPeak => f64::from(h.cpu_pct_peak),
        HarnessMetric::HostCpuPctMean => f64::from(h.host_cpu_pct_mean),
        HarnessMetric::RssMibPeak => f64::from(h.rss_mib_peak),
    }
}

/// The lines a cost item adds up.
fn cost_lines(i: CostItem) -> &'static [CostLine] {
    match i {
        CostItem::Compute => &[CostLine::Compute],
        CostItem::Storage => &[CostLine::Storage],
        CostItem::ObjectRequests => &[CostLine::ObjectRequests],
        CostItem::CrossZone => &[CostLine::CrossZone],
        CostItem::Egress => &[CostLine::Egress],
        CostItem::Fixed => &[CostLine::Fixed],
        CostItem::Transfer => &[CostLine::CrossZone, CostLine::Egress],
    }
}

/// A priced run's bill or lines, per hour or per month. A line the pricing has no part of (no
/// object requests on broker disks) costs 0.
fn cost(e: &CostEstimate, p: CostPeriod, item: Option<CostItem>) -> f64 {
    let of = |hourly: f64, monthly: f64| match p {
        CostPeriod::Monthly => monthly,
        CostPeriod::Hourly => hourly,
    };
    match item {
        None => of(e.hourly, e.monthly),
        Some(i) => e.lines.iter().filter(|l| cost_lines(i).contains(&l.line)).map(|l| of(l.hourly, l.monthly)).sum(),
    }
}

/// The metric's values in a report, labelled; `None` where it has no value.
fn values(metric: &Metric, r: &Report) -> Vec<(String, Option<f64>)> {
    let one = |v: Option<f64>| vec![(String::new(), v)];
    match metric {
        Metric::Produce(m) => one(Some(produce(*m, &r.produce))),
        Metric::ProduceLatency(l, q) => one(quantile(produce_latency(*l, &r.produce), *q)),
        Metric::ClassLatency(sel, l, q) => r
            .produce
            .classes
            .iter()
            .filter(|(n, _)| sel.matches(n))
            .map(|(n, c)| {
                let s = match l {
                    ClassLatency::FromIntended => &c.latency_from_intended,
                    ClassLatency::FromSend => &c.latency_from_send,
                };
                (n.clone(), quantile(s, *q))
            })
            .collect(),
        Metric::Group(sel, m) => {
            r.consumers.iter().filter(|(n, _)| sel.matches(n)).map(|(n, g)| (n.clone(), Some(group(*m, g)))).collect()
        }
        Metric::GroupLatency(sel, l, q) => r
            .consumers
            .iter()
            .filter(|(n, _)| sel.matches(n))
            .map(|(n, g)| (n.clone(), quantile(group_latency(*l, g), *q)))
            .collect(),
        Metric::Audit(m) => {
            let c = &r.audit.counts;
            let v = match m {
                AuditMetric::Lost => c.lost,
                AuditMetric::Unverified => c.unverified,
                AuditMetric::Duplicates => c.duplicates,
                AuditMetric::Reordered => c.reordered,
                AuditMetric::FailedButSeen => c.failed_but_seen,
                AuditMetric::UnackedSeen => c.unacked_seen,
                AuditMetric::Acked => c.acked,
                AuditMetric::Seen => c.seen,
            };
            one(r.audit.enabled.then_some(v as f64))
        }
        // Without samples (self-monitoring unavailable) there is nothing to judge.
        Metric::Harness(m) => one((r.harness.cores > 0).then_some(harness(*m, &r.harness))),
        // `None` where the fault has no such value (e.g. writes never resumed after it).
        Metric::Fault(sel, m) => r
            .faults
            .iter()
            .filter(|x| sel.matches(&x.name))
            .map(|x| {
                let v = match m {
                    FaultMetric::Unavailable => x.unavailable.affected_partitions_s.map(|s| s * 1e6),
                    FaultMetric::UnavailableTopic => {
                        x.unavailable.topics.values().try_fold(0.0f64, |m, v| v.map(|v| m.max(v))).map(|s| s * 1e6)
                    }
                    FaultMetric::Recovered => x.recovery.recovered_s.map(|s| s * 1e6),
                    FaultMetric::Dip => x.started_s.map(|_| x.throughput.dip_pct),
                };
                (x.name.clone(), v)
            })
            .collect(),
        Metric::Wave(sel, m) => r
            .waves
            .iter()
            .filter(|w| sel.matches(&w.name))
            .map(|w| {
                let v = match m {
                    WaveMetric::Dropped => Some(w.dropped as f64),
                    WaveMetric::Unsent => Some(w.unsent as f64),
                    WaveMetric::Flush => w.flush_end_s.map(|e| (e - w.start_s) * 1e6),
                };
                (format!("{}#{}", w.name, w.occurrence + 1), v)
            })
            .collect(),
        Metric::Errors(sel) => {
            let total: u64 = r.errors.iter().filter(|(k, _)| sel.matches(k)).map(|(_, v)| *v).sum();
            one(Some(total as f64))
        }
        // Per second over the run's sampled seconds; none without a sampled series.
        Metric::Target(m, stat) => {
            let series = r.backbone.as_ref().map(|b| b.cluster(*m)).unwrap_or_default();
            let vs: Vec<f64> = series.iter().map(|(_, v)| *v).collect();
            let v = match stat {
                TargetStat::Max => vs.iter().copied().reduce(f64::max),
                TargetStat::Min => vs.iter().copied().reduce(f64::min),
                TargetStat::Mean => (!vs.is_empty()).then(|| vs.iter().sum::<f64>() / vs.len() as f64),
                TargetStat::Last => vs.last().copied(),
            };
            // Latencies are ms in the series, µs in a duration threshold.
            let scale = if m.gate_unit() == crate::config::gates::Unit::Duration { 1000.0 } else { 1.0 };
            one(v.map(|v| v * scale))
        }
        // Labelled by pricing, in its currency; none when the run was not priced.
        Metric::Cost(sel, p, item) => r
            .cost
            .iter()
            .filter(|e| sel.matches(&e.pricing))
            .map(|e| (format!("{} ({})", e.pricing, e.currency), Some(cost(e, *p, *item))))
            .collect(),
    }
}

/// A gate (parsed and checked in config) with its evaluation.
#[derive(Clone, Debug)]
pub struct Judge(Gate);

impl From<Gate> for Judge {
    fn from(g: Gate) -> Self {
        Judge(g)
    }
}

impl Deref for Judge {
    type Target = Gate;

    fn deref(&self) -> &Gate {
        &self.0
    }
}

impl Judge {
    /// Evaluate on a finished report. A gate on `audit.lost` over an audit that did not reach
    /// every acknowledged record fails as unverified: it neither passes nor accuses the target.
    pub fn evaluate(&self, r: &Report) -> GateResult {
        let mut result = self.judge(values(&self.metric, r));
        let unverified = r.audit.counts.unverified;
        if matches!(self.metric, Metric::Audit(AuditMetric::Lost)) && r.audit.enabled && unverified > 0 {
            result.passed = false;
            result.value = format!("{} ({} unverified)", result.value, super::fmt::count(unverified));
            result.detail = format!(
                "unverified: the audit reader never reached {} acknowledged records, so loss is neither ruled out \
                 nor shown",
                super::fmt::count(unverified)
            );
        }
        if matches!(self.metric, Metric::Cost(..)) && r.cost.is_empty() {
            result.detail = "not priced: the run has no cost estimate (run or merge it with --pricing FILE, or price \
                             it afterwards with `fleetstorm cost`, which judges no gate)"
                .into();
        }
        if matches!(self.metric, Metric::Audit(AuditMetric::Duplicates))
            && !result.passed
            && let Some(cause) = r.audit.duplicates_cause
        {
            result.detail = format!("{}; duplicates are {}", result.detail, cause.short());
        }
        result
    }

    fn judge(&self, values: Vec<(String, Option<f64>)>) -> GateResult {
        let unit = self.metric.unit();
        let mut failures = Vec::new();
        let mut shown = Vec::new();
        if values.is_empty() {
            failures.push("no value to check".to_string());
        }
        for (label, v) in &values {
            let prefix = if label.is_empty() { String::new() } else { format!("{label}: ") };
            match v {
                None => {
                    failures.push(format!("{prefix}no value"));
                    shown.push(format!("{prefix}n/a"));
                }
                Some(v) => {
                    shown.push(format!("{prefix}{}", show(unit, *v)));
                    if !self.op.holds(*v, self.threshold) {
                        failures.push(format!("{prefix}{}", show(unit, *v)));
                    }
                }
            }
        }
        GateResult {
            name: self.spec.name.clone().unwrap_or_else(|| self.spec.gate.clone()),
            gate: self.spec.gate.clone(),
            threshold: self.threshold_text.clone(),
            value: shown.join(", "),
            passed: failures.is_empty(),
            detail: if failures.is_empty() { String::new() } else { format!("failed: {}", failures.join(", ")) },
            abort_on_fail: self.spec.abort_on_fail,
        }
    }

    /// Evaluate a live gate on what is known while running; `None` if it cannot be judged live.
    pub fn evaluate_live(&self, live: &Live) -> Option<GateResult> {
        let one = |v: u64| vec![(String::new(), Some(v as f64))];
        let values = match &self.metric {
            Metric::Group(sel, GroupMetric::MaxLag) => {
                live.max_lag.iter().filter(|(n, _)| sel.matches(n)).map(|(n, v)| (n.clone(), Some(*v as f64))).collect()
            }
            Metric::Produce(ProduceMetric::Failed) => one(live.failed),
            Metric::Produce(ProduceMetric::Backpressure) => one(live.backpressure),
            Metric::Errors(sel) => one(live.errors.iter().filter(|(k, _)| sel.matches(k)).map(|(_, v)| *v).sum()),
            Metric::Group(
                _,
                GroupMetric::FinalLag
                | GroupMetric::Consumed
                | GroupMetric::Rereads
                | GroupMetric::Missed
                | GroupMetric::Rate,
            )
            | Metric::Produce(
                ProduceMetric::AchievedRate
                | ProduceMetric::PlannedRate
                | ProduceMetric::Rate
                | ProduceMetric::AchievedRatio
                | ProduceMetric::Acked
                | ProduceMetric::Purged,
            )
            | Metric::ProduceLatency(..)
            | Metric::ClassLatency(..)
            | Metric::GroupLatency(..)
            | Metric::Audit(_)
            | Metric::Fault(..)
            | Metric::Wave(..)
            | Metric::Harness(_)
            | Metric::Cost(..)
            | Metric::Target(..) => return None,
        };
        Some(self.judge(values))
    }
}

/// What live gates can see while the load runs.
#[derive(Clone, Debug, Default)]
pub struct Live {
    pub max_lag: Vec<(String, u64)>,
    pub failed: u64,
    pub backpressure: u64,
    pub errors: Vec<(String, u64)>,
}

/// A gate's verdict.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GateResult {
    pub name: String,
    pub gate: String,
    pub threshold: String,
    /// The value(s) observed, with units.
    pub value: String,
    pub passed: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub abort_on_fail: bool,
}

/// JUnit XML: one test case per gate.
pub fn junit(suite: &str, results: &[GateResult], time_s: f64) -> String {
    let esc = super::fmt::esc;
    let failures = results.iter().filter(|g| !g.passed).count();
    let mut o = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"fleetstorm\" tests=\"{}\" failures=\"{failures}\" time=\"{time_s:.3}\">\n  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{time_s:.3}\">\n",
        results.len(),
        esc(suite),
        results.len()
    );
    for g in results {
        o.push_str(&format!("    <testcase classname=\"{}.gates\" name=\"{}\">\n", esc(suite), esc(&g.name)));
        o.push_str(&format!(
            "      <system-out>gate: {}\nvalue: {}\nthreshold: {}</system-out>\n",
            esc(&g.gate),
            esc(&g.value),
            esc(&g.threshold)
        ));
        if !g.passed {
            o.push_str(&format!("      <failure message=\"{}\">{}</failure>\n", esc(&g.detail), esc(&g.gate)));
        }
        o.push_str("    </testcase>\n");
    }
    o.push_str("  </testsuite>\n</testsuites>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::gates::{Op, Sel};
    use crate::config::scenario::GateSpec;

    fn judge(metric: Metric, op: Op, threshold: f64) -> Judge {
        let spec = GateSpec { gate: "g".into(), name: None, abort_on_fail: false };
        Judge(Gate { spec, metric, op, threshold, threshold_text: threshold.to_string() })
    }

    #[test]
    fn every_live_metric_is_judged_live() {
        // config's tables say which metrics abort_on_fail accepts; each must have a live reader.
        let live = Live { max_lag: vec![("g".into(), 5)], failed: 1, backpressure: 2, errors: vec![("x".into(), 3)] };
        let mut metrics: Vec<Metric> = ProduceMetric::ALL.iter().map(|m| Metric::Produce(*m)).collect();
        metrics.extend(GroupMetric::ALL.iter().map(|m| Metric::Group(Sel::All, *m)));
        metrics.push(Metric::Errors(Sel::All));
        metrics.push(Metric::Audit(AuditMetric::Lost));
        for m in metrics {
            let judged = judge(m.clone(), Op::Lt, 10.0).evaluate_live(&live);
            assert_eq!(judged.is_some(), m.is_live(), "{m:?}");
        }
        let r = judge(Metric::Group(Sel::All, GroupMetric::MaxLag), Op::Lt, 4.0).evaluate_live(&live).unwrap();
        assert_eq!((r.passed, r.value.as_str()), (false, "g: 5"));
    }

    #[test]
    fn target_gates_read_the_clusters_series_and_fail_without_one() {
        use crate::config::target_metric::TargetMetric as T;
        use crate::report::schema::{Backbone, BackboneSeries, SourceKind};
        let mut r = crate::report::fixture::report("embedded");
        let urp = |stat| judge(Metric::Target(T::UnderReplicatedPartitions, stat), Op::Eq, 0.0);
        let none = urp(TargetStat::Max).evaluate(&r);
        assert!(!none.passed, "no series, no pass: {none:?}");
        let points = |vs: &[f64]| vs.iter().enumerate().map(|(t, v)| [t as f64, *v]).collect::<Vec<_>>();
        r.backbone = Some(Backbone {
            series: vec![
                BackboneSeries {
                    metric: T::UnderReplicatedPartitions,
                    broker: Some(1),
                    kind: SourceKind::Prometheus,
                    points: points(&[0.0, 3.0, 3.0, 0.0]),
                },
                BackboneSeries {
                    metric: T::UnderReplicatedPartitions,
                    broker: Some(3),
                    kind: SourceKind::Prometheus,
                    points: points(&[0.0, 2.0, 1.0, 0.0]),
                },
                BackboneSeries {
                    metric: T::ProduceLatencyP99,
                    broker: Some(1),
                    kind: SourceKind::Prometheus,
                    points: points(&[4.0, 30.0]),
                },
            ],
            ..Backbone::default()
        });
        let max = urp(TargetStat::Max).evaluate(&r);
        assert_eq!((max.passed, max.value.as_str()), (false, "5"));
        assert!(urp(TargetStat::Last).evaluate(&r).passed);
        // Latencies are judged as durations: 30 ms > 25ms.
        let p99 = judge(Metric::Target(T::ProduceLatencyP99, TargetStat::Max), Op::Lt, 25_000.0).evaluate(&r);
        assert!(!p99.passed, "{p99:?}");
    }

    fn priced(name: &str, monthly: f64, lines: &[(CostLine, f64)]) -> CostEstimate {
        use super::super::schema::CostLineEstimate;
        CostEstimate {
            pricing: name.into(),
            file: format!("{name}.yaml"),
            currency: "USD".into(),
            hourly: monthly / 730.0,
            monthly,
            lines: lines
                .iter()
                .map(|(l, m)| CostLineEstimate { line: *l, hourly: m / 730.0, monthly: *m, drivers: Vec::new() })
                .collect(),
        }
    }

    #[test]
    fn cost_gates_read_the_priced_bill_its_lines_and_one_pricing_by_name() {
        let mut r = crate::report::fixture::report("embedded");
        let unpriced = judge(Metric::Cost(Sel::All, CostPeriod::Monthly, None), Op::Lt, 12000.0).evaluate(&r);
        assert!(!unpriced.passed && unpriced.detail.starts_with("not priced"), "{unpriced:?}");
        r.cost = vec![
            priced(
                "ec2",
                9000.0,
                &[(CostLine::Compute, 6000.0), (CostLine::CrossZone, 2500.0), (CostLine::Egress, 500.0)],
            ),
            priced("msk", 13000.5, &[(CostLine::Compute, 13000.5)]),
        ];
        // Every pricing must pass; the failure names which.
        let all = judge(Metric::Cost(Sel::All, CostPeriod::Monthly, None), Op::Lt, 12000.0).evaluate(&r);
        assert!(!all.passed);
        assert_eq!(all.value, "ec2 (USD): 9,000.00, msk (USD): 13,000.50");
        assert_eq!(all.detail, "failed: msk (USD): 13,000.50");
        let one = judge(Metric::Cost(Sel::Named("ec2".into()), CostPeriod::Monthly, None), Op::Lt, 12000.0);
        assert!(one.evaluate(&r).passed);
        // transfer = cross_zone + egress; a line the pricing lacks is 0.
        let t =
            judge(Metric::Cost(Sel::All, CostPeriod::Monthly, Some(CostItem::Transfer)), Op::Le, 3000.0).evaluate(&r);
        assert_eq!((t.passed, t.value.as_str()), (true, "ec2 (USD): 3,000.00, msk (USD): 0.00"));
        let h =
            judge(Metric::Cost(Sel::Named("ec2".into()), CostPeriod::Hourly, Some(CostItem::Compute)), Op::Gt, 8.21)
                .evaluate(&r);
        assert_eq!((h.passed, h.value.as_str()), (true, "ec2 (USD): 8.22"));
    }

    #[test]
    fn junit_has_one_case_per_gate_and_failures() {
        let results = vec![
            GateResult { name: "a".into(), gate: "audit.lost == 0".into(), passed: true, ..GateResult::default() },
            GateResult {
                name: "b<".into(),
                gate: "x < 1".into(),
                passed: false,
                detail: "failed: 3".into(),
                ..GateResult::default()
            },
        ];
        let x = junit("quick", &results, 1.5);
        assert!(x.contains("tests=\"2\" failures=\"1\""));
        assert_eq!(x.matches("<testcase").count(), 2);
        assert!(x.contains("<failure message=\"failed: 3\">"));
        assert!(x.contains("name=\"b&lt;\""));
    }

    #[test]
    fn a_duplicates_gate_names_whose_duplicates_they_are() {
        let mut r = crate::report::fixture::report("embedded");
        r.audit.counts.duplicates = 3;
        r.audit.duplicates_cause = Some(crate::report::DuplicateCause::EmbeddedCluster);
        let g = judge(Metric::Audit(AuditMetric::Duplicates), Op::Eq, 0.0).evaluate(&r);
        assert!(!g.passed, "three copies in the log fail the gate, whoever wrote them");
        assert!(g.detail.ends_with("duplicates are the embedded cluster's, see warnings"), "{}", g.detail);
        r.audit.counts.duplicates = 0;
        r.audit.duplicates_cause = None;
        let g = judge(Metric::Audit(AuditMetric::Duplicates), Op::Eq, 0.0).evaluate(&r);
        assert!(g.passed && g.detail.is_empty(), "{g:?}");
    }

    #[test]
    fn a_lost_gate_over_an_incomplete_audit_fails_as_unverified_not_as_loss() {
        let mut r = crate::report::fixture::report("embedded");
        r.audit.enabled = true;
        r.audit.counts.lost = 0;
        r.audit.counts.unverified = 21_885;
        let g = judge(Metric::Audit(AuditMetric::Lost), Op::Eq, 0.0).evaluate(&r);
        assert!(!g.passed, "an unverified audit never passes a loss gate");
        assert_eq!(g.value, "0 (21,885 unverified)");
        assert!(g.detail.starts_with("unverified:") && !g.detail.contains("failed: "), "{}", g.detail);
        r.audit.counts.unverified = 0;
        assert!(judge(Metric::Audit(AuditMetric::Lost), Op::Eq, 0.0).evaluate(&r).passed);
        r.audit.counts.unverified = 3;
        let u = judge(Metric::Audit(AuditMetric::Unverified), Op::Eq, 0.0).evaluate(&r);
        assert_eq!((u.passed, u.value.as_str()), (false, "3"));
    }
}
