//! The report's "Backbone" section: the target's own series (sampled by `backbone/`), a
//! warning for each source that failed, and per stress window what moved first.
//!
//! The rule, stated where a reader meets the findings (summary, HTML, docs/backbone.md):
//! the **baseline window** runs from the end of warm-up to the start of the first stress window
//! (a fault, a reconnect wave, a replay, a slowdown, a group restart), and needs at least 3 seconds of samples. For each cluster
//! series (brokers combined: traffic and partitions summed, latencies the worst broker, idle
//! ratios the lowest), its baseline mean μ and standard deviation σ; a series **moves** in a
//! stress window (from its start to 10 s after its end, or to the next window's start if that
//! comes first) at the first second where |value − μ| > max(3σ, 25 % of |μ|, the metric's
//! floor). Log size, which grows with every record kept, is left out of the findings. Moves are listed first mover first;
//! nothing is said beyond that (no causes are guessed).

use std::fmt::Write as _;

use super::Report;
use super::schema::{Backbone, Finding, Move, Settle, TargetMetric};

/// After a window ends, how long its effects are still looked for.
const TAIL_S: f64 = 10.0;
/// The fewest baseline seconds that make a baseline.
const MIN_BASELINE: usize = 3;

/// The smallest change worth calling a move, in the metric's unit.
fn floor(m: TargetMetric) -> f64 {
    match m {
        TargetMetric::BytesIn | TargetMetric::BytesOut => 16.0 * 1024.0,
        TargetMetric::MessagesIn => 50.0,
        TargetMetric::ProduceLatencyP99 | TargetMetric::FetchLatencyP99 | TargetMetric::ProduceQueueP99 => 2.0,
        TargetMetric::IsrShrinks => 0.5,
        TargetMetric::NetworkIdle | TargetMetric::RequestHandlerIdle | TargetMetric::Cpu => 10.0,
        TargetMetric::LogSize => 1024.0 * 1024.0,
        TargetMetric::UnderReplicatedPartitions
        | TargetMetric::OfflinePartitions
        | TargetMetric::ActiveController
        | TargetMetric::Leaders => 0.5,
    }
}

/// The run's stress windows: `(label, from_s, to_s)`, in time order.
pub fn stress_windows(r: &Report) -> Vec<(String, f64, f64)> {
    let mut out: Vec<(String, f64, f64)> = Vec::new();
    for f in &r.faults {
        if let Some(from) = f.started_s {
            let to = f.ended_s.unwrap_or(from).max(from);
            out.push((format!("fault {}", f.name), from, to));
        }
    }
    for w in &r.waves {
        let to = w.flush_end_s.unwrap_or(w.reconnect_until_s).max(w.start_s);
        out.push((format!("wave {}#{}", w.name, w.occurrence), w.start_s, to));
    }
    for (name, g) in &r.consumers {
        for rp in &g.replays {
            let to = rp.at_s + rp.caught_up_s.unwrap_or(0.0);
            out.push((format!("replay by {name} to {}", rp.to), rp.at_s, to));
        }
        for sl in &g.slowdowns {
            out.push((format!("{} of {name}", sl.kind), sl.at_s, sl.at_s + sl.for_s));
        }
        for rs in &g.restarts {
            out.push((format!("restart of {name}"), rs.at_s, rs.at_s + rs.rebalance_s.unwrap_or(0.0)));
        }
    }
    out.sort_by(|a, b| a.1.total_cmp(&b.1));
    out
}

/// Put the sampled backbone into the report: warnings for failing sources, findings.
pub fn attach(r: &mut Report, mut b: Backbone) {
    for s in &b.sources {
        if s.failures > 0 {
            r.warnings.push(format!(
                "backbone: metrics source {} failed {} of {} samples{} (its series have gaps; the run is unaffected)",
                s.name,
                s.failures,
                s.failures + s.samples,
                s.last_error.as_ref().map(|e| format!(", last: {e}")).unwrap_or_default()
            ));
        }
    }
    let windows = stress_windows(r);
    let from = r.scenario.warmup_s;
    let to = windows.first().map_or(r.load_s, |w| w.1);
    b.baseline = Some([from, to]);
    // A window's tail ends where the next window starts: what happens then is the next one's.
    b.findings = windows
        .iter()
        .enumerate()
        .map(|(i, (label, s, e))| {
            let next = windows.get(i + 1).map_or(f64::INFINITY, |w| w.1);
            let tail_end = (*e + TAIL_S).min(next.max(*e));
            finding(&b, from, to, label, *s, *e, tail_end)
        })
        .collect();
    r.backbone = Some(b);
}

fn finding(b: &Backbone, base_from: f64, base_to: f64, label: &str, from: f64, to: f64, tail_end: f64) -> Finding {
    let mut moves: Vec<Move> = Vec::new();
    let mut short = false;
    // Log size grows with every record kept: it leaves any baseline by its nature, so it is
    // charted and gated but says nothing about a window.
    for metric in TargetMetric::ALL.into_iter().filter(|m| *m != TargetMetric::LogSize) {
        let series = b.cluster(metric);
        if series.is_empty() {
            continue;
        }
        let base: Vec<f64> = series.iter().filter(|(t, _)| *t >= base_from && *t < base_to).map(|(_, v)| *v).collect();
        if base.len() < MIN_BASELINE {
            short = true;
            continue;
        }
        let mean = base.iter().sum::<f64>() / base.len() as f64;
        let sd = (base.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / base.len() as f64).sqrt();
        let band = (3.0 * sd).max(0.25 * mean.abs()).max(floor(metric));
        let inside: Vec<(f64, f64)> = series.iter().copied().filter(|(t, _)| *t >= from && *t <= tail_end).collect();
        let Some(first) = inside.iter().find(|(_, v)| (v - mean).abs() > band) else {
            continue;
        };
        let peak =
            inside.iter().map(|(_, v)| *v).fold(mean, |p, v| if (v - mean).abs() > (p - mean).abs() { v } else { p });
        moves.push(Move { metric, first_s: first.0, baseline: mean, peak });
    }
    moves.sort_by(|a, b| a.first_s.total_cmp(&b.first_s).then(a.metric.cmp(&b.metric)));
    let text = if moves.is_empty() {
        if short {
            format!("{label}: no baseline window of {MIN_BASELINE} s or more before the first stress window")
        } else {
            format!("{label}: no broker metric left its baseline band")
        }
    } else {
        let mut t = format!("{label} ({from:.0}-{to:.0} s): ");
        for (i, m) in moves.iter().enumerate() {
            let _ = write!(
                t,
                "{}{} at {:.0} s ({} -> {}{})",
                if i == 0 { "" } else { ", then " },
                m.metric,
                m.first_s,
                num(m.baseline),
                num(m.peak),
                if m.metric.unit().is_empty() { String::new() } else { format!(" {}", m.metric.unit()) }
            );
            if i == 0 && moves.len() > 1 {
                t.push_str(" first");
            }
        }
        t
    };
    Finding { window: label.to_string(), from_s: from, to_s: to, moves, text }
}

/// A value short enough for a sentence.
pub fn num(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// A cluster series' min, mean and max, for tables and gates.
pub fn stats(b: &Backbone, metric: TargetMetric) -> Option<(f64, f64, f64)> {
    let s = b.cluster(metric);
    if s.is_empty() {
        return None;
    }
    let (mut lo, mut hi, mut sum) = (f64::MAX, f64::MIN, 0.0);
    for (_, v) in &s {
        lo = lo.min(*v);
        hi = hi.max(*v);
        sum += v;
    }
    Some((lo, sum / s.len() as f64, hi))
}

/// The section's lines for the terminal summary.
pub fn summary_lines(b: &Backbone) -> Vec<String> {
    let mut out = Vec::new();
    let sources: Vec<String> = b
        .sources
        .iter()
        .map(|s| {
            format!("{}{}", s.name, if s.failures > 0 { format!(" ({} failed)", s.failures) } else { String::new() })
        })
        .collect();
    out.push(format!("backbone   {} series from {}", b.series.len(), sources.join(", ")));
    for f in &b.findings {
        out.push(format!("           {}", f.text));
    }
    if let Some(s) = &b.settle {
        out.push(format!("           {}", settle_text(s)));
    }
    out
}

/// The wait after the run (`metrics.settle`) in one sentence.
pub fn settle_text(s: &Settle) -> String {
    match (s.after_s, s.unhealthy) {
        (Some(a), _) => format!(
            "settled: every partition led and fully in sync {a:.1} s after the run (the wait began at {:.0} s)",
            s.from_s
        ),
        (None, Some(n)) => format!(
            "not settled within {:.0} s: {n} partition(s) under-replicated or offline at the last sample",
            s.limit_s
        ),
        (None, None) => {
            format!("unverified whether it settled: no metadata sample succeeded within {:.0} s", s.limit_s)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::schema::{BackboneSeries, SourceKind};

    fn series(metric: TargetMetric, broker: Option<i32>, kind: SourceKind, f: impl Fn(f64) -> f64) -> BackboneSeries {
        BackboneSeries { metric, broker, kind, points: (0..40).map(|t| [t as f64 + 0.3, f(t as f64)]).collect() }
    }

    #[test]
    fn brokers_combine_per_metric_and_the_worse_source_counts() {
        let b = Backbone {
            series: vec![
                series(TargetMetric::BytesIn, Some(1), SourceKind::Prometheus, |_| 100.0),
                series(TargetMetric::BytesIn, Some(2), SourceKind::Prometheus, |_| 50.0),
                series(TargetMetric::ProduceLatencyP99, Some(1), SourceKind::Prometheus, |_| 3.0),
                series(TargetMetric::ProduceLatencyP99, Some(2), SourceKind::Prometheus, |_| 9.0),
                series(TargetMetric::UnderReplicatedPartitions, Some(1), SourceKind::Prometheus, |_| 1.0),
                series(TargetMetric::UnderReplicatedPartitions, None, SourceKind::Admin, |_| 4.0),
            ],
            ..Backbone::default()
        };
        assert_eq!(b.cluster(TargetMetric::BytesIn)[5], (5.0, 150.0));
        assert_eq!(b.cluster(TargetMetric::ProduceLatencyP99)[5], (5.0, 9.0));
        assert_eq!(b.cluster(TargetMetric::UnderReplicatedPartitions)[5], (5.0, 4.0));
        assert_eq!(stats(&b, TargetMetric::BytesIn), Some((150.0, 150.0, 150.0)));
    }

    #[test]
    fn a_late_scrape_does_not_make_a_sum_dip() {
        let mut late = series(TargetMetric::BytesIn, Some(2), SourceKind::Prometheus, |_| 50.0);
        late.points.retain(|[t, _]| *t < 10.0 || *t > 11.0);
        let b = Backbone {
            series: vec![series(TargetMetric::BytesIn, Some(1), SourceKind::Prometheus, |_| 100.0), late],
            ..Backbone::default()
        };
        assert!(b.cluster(TargetMetric::BytesIn).iter().all(|(_, v)| *v == 150.0));
    }

    #[test]
    fn the_first_mover_in_a_window_is_named_first_and_steady_series_are_not() {
        // Baseline 5-20 s; a window at 20-25 s: URP jumps at 21 s, latency at 23 s, bytes in
        // wobble inside their band throughout.
        let b = Backbone {
            series: vec![
                series(TargetMetric::UnderReplicatedPartitions, None, SourceKind::Admin, |t| {
                    if (21.0..30.0).contains(&t) { 12.0 } else { 0.0 }
                }),
                series(TargetMetric::ProduceLatencyP99, Some(1), SourceKind::Prometheus, |t| {
                    if (23.0..26.0).contains(&t) { 40.0 } else { 4.0 + (t % 2.0) }
                }),
                series(TargetMetric::BytesIn, Some(1), SourceKind::Prometheus, |t| 1e6 + 1e4 * (t % 3.0)),
            ],
            ..Backbone::default()
        };
        let f = finding(&b, 5.0, 20.0, "fault kill", 20.0, 25.0, 35.0);
        let order: Vec<TargetMetric> = f.moves.iter().map(|m| m.metric).collect();
        assert_eq!(order, [TargetMetric::UnderReplicatedPartitions, TargetMetric::ProduceLatencyP99]);
        assert_eq!((f.moves[0].first_s, f.moves[0].baseline, f.moves[0].peak), (21.0, 0.0, 12.0));
        assert_eq!(f.moves[1].first_s, 23.0);
        assert!(
            f.text.starts_with("fault kill (20-25 s): under_replicated_partitions at 21 s (0 -> 12) first"),
            "{}",
            f.text
        );
        // Too short a baseline: said so, nothing claimed.
        let f = finding(&b, 5.0, 6.0, "wave w#0", 6.0, 8.0, 18.0);
        assert!(f.moves.is_empty() && f.text.contains("no baseline window"), "{}", f.text);
    }
}
