//! Comparing runs, from their `report.json` alone.
//!
//! - **Bake-off** (`fleetstorm compare DIR DIR...`): the same scenario and seed against several
//!   targets, side by side, with overlay charts (`compare.md`, `compare.html`).
//! - **Baseline** (`fleetstorm compare --baseline BASE CANDIDATE`): did the candidate regress?
//!   Each metric has a tolerance (relative, plus an absolute slack so that noise on tiny values
//!   is not a regression); any audit finding that grows is a regression. Writes
//!   `regression.md`, `regression.json` and `junit.xml`.
//!
//! Runs of different workloads (scenario fingerprint, which covers the seed and every
//! setting) are refused: a bake-off on different workloads is worthless. `--allow-different`
//! turns the refusal into a loud warning.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::recorder::LatencySummary;
use crate::report::faults::FaultReport;
use crate::report::fmt::{STYLE, count, esc, secs, us};
use crate::report::table::{Cell, Table};
use crate::report::{GroupReport, Report, charts};

/// Why a comparison could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Output(String),
}

/// Labelled reports, and warnings about them.
pub type Loaded = (Vec<(String, Report)>, Vec<String>);

/// Load reports, label them, and check they ran the same workload.
pub fn load(dirs: &[PathBuf], allow_different: bool) -> Result<Loaded, CompareError> {
    let mut runs = Vec::new();
    for d in dirs {
        let r = Report::read(d).map_err(CompareError::Input)?;
        let dir_name = d.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        runs.push((format!("{} ({dir_name})", r.target.profile), r));
    }
    let mut warnings = Vec::new();
    if let Some((_, first)) = runs.first() {
        for (label, r) in &runs[1..] {
            if r.scenario.fingerprint != first.scenario.fingerprint {
                let mut diffs = Vec::new();
                if r.scenario.name != first.scenario.name {
                    diffs.push(format!("scenario {} vs {}", first.scenario.name, r.scenario.name));
                }
                if r.scenario.seed != first.scenario.seed {
                    diffs.push(format!("seed {} vs {}", first.scenario.seed, r.scenario.seed));
                }
                if r.scenario.duration_s != first.scenario.duration_s {
                    diffs.push(format!("duration {}s vs {}s", first.scenario.duration_s, r.scenario.duration_s));
                }
                if diffs.is_empty() {
                    diffs.push("the scenario's settings differ (fingerprints differ)".into());
                }
                let msg = format!("{label} did not run the same workload as {}: {}", runs[0].0, diffs.join(", "));
                if !allow_different {
                    return Err(CompareError::Input(format!(
                        "{msg}. A comparison of different workloads is worthless; pass --allow-different to compare anyway"
                    )));
                }
                warnings.push(format!("DIFFERENT WORKLOADS: {msg}"));
            }
        }
    }
    for (label, r) in &runs {
        if r.harness.saturated {
            warnings.push(format!(
                "HARNESS SATURATED in {label}: its figures describe fleetstorm's host, not the target (see that \
                 report's warning)"
            ));
        }
    }
    Ok((runs, warnings))
}

/// One row of a bake-off: a metric, and how to read it from a run's report.
struct Metric<'a> {
    name: String,
    get: Box<dyn Fn(&Report) -> String + 'a>,
}

fn metric<'a>(name: impl Into<String>, get: impl Fn(&Report) -> String + 'a) -> Metric<'a> {
    Metric { name: name.into(), get: Box::new(get) }
}

/// A bake-off section: one row per metric, one column per run.
fn side_by_side(runs: &[(String, Report)], metrics: Vec<Metric<'_>>) -> Table {
    let mut t = Table::of(metrics).col("metric", |m| m.name.clone());
    for (label, report) in runs {
        t = t.col(label.as_str(), |m| (m.get)(report));
    }
    t.done()
}

/// The side-by-side sections: (title, table).
fn sections(runs: &[(String, Report)]) -> Vec<(&'static str, Table)> {
    let mut out = Vec::new();
    out.push((
        "Throughput",
        side_by_side(
            runs,
            vec![
                metric("status", |r| r.status.to_string()),
                metric("planned/s", |r| format!("{:.1}", r.produce.planned_rate)),
                metric("achieved/s", |r| format!("{:.1}", r.produce.achieved_rate)),
                metric("acked/s", |r| format!("{:.1}", r.produce.msgs_per_s)),
                metric("MB/s", |r| format!("{:.2}", r.produce.bytes_per_s / 1e6)),
                metric("failed", |r| count(r.produce.failed)),
                metric("backpressure", |r| count(r.produce.backpressure)),
            ],
        ),
    ));
    let ack = |q: &str, get: fn(&LatencySummary) -> u64| {
        metric(format!("ack {q} (from intended)"), move |r| us(get(&r.produce.latency_from_intended)))
    };
    let mut lat =
        vec![ack("p50", |l| l.p50_us), ack("p99", |l| l.p99_us), ack("p99.9", |l| l.p999_us), ack("max", |l| l.max_us)];
    // The first run's groups; a run without one (refused unless --allow-different) shows "-".
    for g in runs.first().map(|(_, r)| r.consumers.keys().cloned().collect::<Vec<_>>()).unwrap_or_default() {
        let group = |what: &str, cell: fn(&GroupReport) -> String| {
            let g = g.clone();
            metric(format!("{g} {what}"), move |r| r.consumers.get(&g).map_or_else(|| "-".into(), cell))
        };
        lat.push(group("end-to-end p99", |x| us(x.e2e_latency.p99_us)));
        lat.push(group("max lag", |x| count(x.max_lag)));
    }
    out.push(("Latency and lag", side_by_side(runs, lat)));
    out.push((
        "Delivery audit",
        side_by_side(
            runs,
            vec![
                metric("acked", |r| count(r.audit.counts.acked)),
                metric("lost", |r| count(r.audit.counts.lost)),
                metric("duplicates", |r| count(r.audit.counts.duplicates)),
                metric("reordered", |r| count(r.audit.counts.reordered)),
            ],
        ),
    ));
    let faults: Vec<String> =
        runs.first().map(|(_, r)| r.faults.iter().map(|f| f.name.clone()).collect()).unwrap_or_default();
    if !faults.is_empty() {
        let mut rows = Vec::new();
        for f in faults {
            let fault = |what: &str, cell: fn(&FaultReport) -> String| {
                let f = f.clone();
                metric(format!("{f} {what}"), move |r| {
                    r.faults.iter().find(|x| x.name == f).map_or_else(|| "-".into(), cell)
                })
            };
            rows.push(fault("unavailable", |x| secs(x.unavailable.affected_partitions_s)));
            rows.push(fault("p99 recovered", |x| secs(x.recovery.recovered_s)));
            rows.push(fault("throughput dip", |x| format!("{:.0}%", x.throughput.dip_pct)));
        }
        out.push(("Recovery after faults", side_by_side(runs, rows)));
    }
    out.push((
        "Harness",
        side_by_side(
            runs,
            vec![
                metric("fleetstorm CPU mean (of one core)", |r| format!("{:.0}%", r.harness.cpu_pct_mean)),
                metric("host CPU mean", |r| format!("{:.0}%", r.harness.host_cpu_pct_mean)),
                metric("harness saturated", |r| if r.harness.saturated { "YES".into() } else { "no".into() }),
            ],
        ),
    ));
    out
}

/// A bake-off: writes compare.md, compare.html and overlay charts into `out`; returns the
/// markdown.
pub fn bake_off(runs: &[(String, Report)], warnings: &[String], out: &Path) -> Result<String, CompareError> {
    std::fs::create_dir_all(out).map_err(|e| CompareError::Output(format!("cannot create {}: {e}", out.display())))?;
    let first = &runs[0].1;
    let mut md = format!("# fleetstorm comparison: {}\n\n", first.scenario.name);
    for w in warnings {
        let _ = writeln!(md, "> **{w}**\n");
    }
    let _ = writeln!(
        md,
        "Scenario `{}`, seed {}, fingerprint `{}`.\n",
        first.scenario.file,
        first.scenario.seed,
        &first.scenario.fingerprint[..12.min(first.scenario.fingerprint.len())]
    );
    let sections = sections(runs);
    for (title, table) in &sections {
        let _ = writeln!(md, "## {title}\n\n{}", table.markdown());
    }
    let refs: Vec<(String, &Report)> = runs.iter().map(|(l, r)| (l.clone(), r)).collect();
    let charts = charts::write_comparison(&refs, out).map_err(CompareError::Output)?;
    let mut html = format!(
        "<!doctype html><html><head><meta charset=utf-8><title>fleetstorm comparison: {}</title><style>{STYLE}</style></head><body><h1>Comparison: {}</h1>",
        esc(&first.scenario.name),
        esc(&first.scenario.name)
    );
    for w in warnings {
        let _ = write!(html, "<div class=warn><b>{}</b></div>", esc(w));
    }
    for (title, table) in &sections {
        let _ = write!(html, "<h2>{}</h2>{}", esc(title), table.html());
    }
    for c in &charts {
        let _ = write!(html, "<h2>{}</h2><div class=chart id=\"{}\">{}</div>", esc(&c.title), c.name, c.svg);
    }
    html.push_str("</body></html>");
    for (name, text) in [("compare.md", &md), ("compare.html", &html)] {
        std::fs::write(out.join(name), text).map_err(|e| CompareError::Output(format!("cannot write {name}: {e}")))?;
    }
    Ok(md)
}

/// Which way is worse, and how much change is tolerated.
#[derive(Clone, Copy, Debug)]
enum Worse {
    Higher,
    Lower,
}

/// One metric checked against the baseline.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub metric: String,
    /// The tolerance key that governs it (for `--max-regression`).
    pub key: String,
    pub baseline: f64,
    pub candidate: f64,
    /// Relative change, candidate vs baseline (positive: higher).
    pub change_pct: f64,
    /// The allowed relative change in the worse direction.
    pub tolerance_pct: f64,
    pub regressed: bool,
    pub display_baseline: String,
    pub display_candidate: String,
}

/// Default tolerances per key, in percent, and the absolute slack under which a change never
/// counts.
pub const TOLERANCES: &[(&str, f64, f64, &str)] = &[
    ("throughput", 5.0, 0.0, "acknowledged and achieved records per second (lower is worse)"),
    ("p50", 20.0, 500.0, "acknowledgement p50 from intended send time, µs slack"),
    ("p99", 15.0, 1_000.0, "acknowledgement p99, µs slack"),
    ("p999", 25.0, 2_000.0, "acknowledgement p99.9, µs slack"),
    ("e2e", 20.0, 2_000.0, "end-to-end p99 per group, µs slack"),
    ("lag", 25.0, 100.0, "max lag per group, records of slack"),
    ("recovery", 25.0, 500_000.0, "fault unavailability and p99 recovery, µs slack"),
    ("audit", 0.0, 0.0, "lost, duplicated, reordered, missed, failed: any increase"),
];

/// Parse `p99=15%,throughput=5%`.
pub fn parse_tolerances(text: &str) -> Result<BTreeMap<String, f64>, CompareError> {
    let mut out = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| CompareError::Input(format!("`{part}`: write KEY=PERCENT, e.g. p99=15%")))?;
        if !TOLERANCES.iter().any(|(key, ..)| *key == k) {
            let keys: Vec<&str> = TOLERANCES.iter().map(|t| t.0).collect();
            return Err(CompareError::Input(format!(
                "unknown metric `{k}` in --max-regression; known: {}",
                keys.join(", ")
            )));
        }
        let pct: f64 = v
            .trim_end_matches('%')
            .parse()
            .map_err(|_| CompareError::Input(format!("`{v}` is not a percentage in --max-regression {k}={v}")))?;
        out.insert(k.to_string(), pct);
    }
    Ok(out)
}

/// Compare a candidate with a baseline.
pub fn baseline(base: &Report, cand: &Report, overrides: &BTreeMap<String, f64>) -> Vec<Check> {
    let tol = |key: &str| {
        let (_, pct, slack, _) = TOLERANCES.iter().find(|t| t.0 == key).copied().unwrap_or(("", 10.0, 0.0, ""));
        (overrides.get(key).copied().unwrap_or(pct), slack)
    };
    let mut checks = Vec::new();
    let mut check = |metric: String, key: &str, b: f64, c: f64, worse: Worse, show: &dyn Fn(f64) -> String| {
        let (pct, slack) = tol(key);
        let change = if b != 0.0 {
            (c - b) / b.abs() * 100.0
        } else if c == 0.0 {
            0.0
        } else {
            f64::INFINITY
        };
        let delta = match worse {
            Worse::Higher => c - b,
            Worse::Lower => b - c,
        };
        let regressed = delta > slack && delta > b.abs() * pct / 100.0;
        checks.push(Check {
            metric,
            key: key.into(),
            baseline: b,
            candidate: c,
            change_pct: change,
            tolerance_pct: pct,
            regressed,
            display_baseline: show(b),
            display_candidate: show(c),
        });
    };
    let rate = |v: f64| format!("{v:.1}/s");
    let lat = |v: f64| us(v as u64);
    let n = |v: f64| count(v as u64);
    check(
        "produce.msgs_per_s".into(),
        "throughput",
        base.produce.msgs_per_s,
        cand.produce.msgs_per_s,
        Worse::Lower,
        &rate,
    );
    check(
        "produce.achieved_rate".into(),
        "throughput",
        base.produce.achieved_rate,
        cand.produce.achieved_rate,
        Worse::Lower,
        &rate,
    );
    let (bl, cl) = (&base.produce.latency_from_intended, &cand.produce.latency_from_intended);
    check("produce.latency.p50".into(), "p50", bl.p50_us as f64, cl.p50_us as f64, Worse::Higher, &lat);
    check("produce.latency.p99".into(), "p99", bl.p99_us as f64, cl.p99_us as f64, Worse::Higher, &lat);
    check("produce.latency.p999".into(), "p999", bl.p999_us as f64, cl.p999_us as f64, Worse::Higher, &lat);
    for (g, bg) in &base.consumers {
        if let Some(cg) = cand.consumers.get(g) {
            check(
                format!("consumers.{g}.e2e.p99"),
                "e2e",
                bg.e2e_latency.p99_us as f64,
                cg.e2e_latency.p99_us as f64,
                Worse::Higher,
                &lat,
            );
            check(format!("consumers.{g}.max_lag"), "lag", bg.max_lag as f64, cg.max_lag as f64, Worse::Higher, &n);
            check(format!("consumers.{g}.missed"), "audit", bg.missed as f64, cg.missed as f64, Worse::Higher, &n);
        }
    }
    let (ba, ca) = (&base.audit.counts, &cand.audit.counts);
    check("audit.lost".into(), "audit", ba.lost as f64, ca.lost as f64, Worse::Higher, &n);
    check("audit.duplicates".into(), "audit", ba.duplicates as f64, ca.duplicates as f64, Worse::Higher, &n);
    check("audit.reordered".into(), "audit", ba.reordered as f64, ca.reordered as f64, Worse::Higher, &n);
    check("produce.failed".into(), "audit", base.produce.failed as f64, cand.produce.failed as f64, Worse::Higher, &n);
    for bf in &base.faults {
        if let Some(cf) = cand.faults.iter().find(|f| f.name == bf.name) {
            let s = |v: Option<f64>| v.map_or(f64::INFINITY, |x| x * 1e6);
            check(
                format!("faults.{}.unavailable", bf.name),
                "recovery",
                s(bf.unavailable.affected_partitions_s),
                s(cf.unavailable.affected_partitions_s),
                Worse::Higher,
                &lat,
            );
            check(
                format!("faults.{}.recovered", bf.name),
                "recovery",
                s(bf.recovery.recovered_s),
                s(cf.recovery.recovered_s),
                Worse::Higher,
                &lat,
            );
        }
    }
    checks
}

/// Write regression.md, regression.json and junit.xml; return the markdown.
pub fn write_baseline(
    base: &(String, Report),
    cand: &(String, Report),
    checks: &[Check],
    warnings: &[String],
    out: &Path,
) -> Result<String, CompareError> {
    std::fs::create_dir_all(out).map_err(|e| CompareError::Output(format!("cannot create {}: {e}", out.display())))?;
    let regressions = checks.iter().filter(|c| c.regressed).count();
    let mut md = format!(
        "# fleetstorm baseline check: {}\n\nbaseline **{}**, candidate **{}**: {}\n\n",
        cand.1.scenario.name,
        base.0,
        cand.0,
        if regressions == 0 { "no regression".to_string() } else { format!("**{regressions} regression(s)**") }
    );
    for w in warnings {
        let _ = writeln!(md, "> **{w}**\n");
    }
    let table = Table::of(checks)
        .col("metric", |c| Cell::code(&c.metric))
        .col("baseline", |c| &c.display_baseline)
        .col("candidate", |c| &c.display_candidate)
        .col("change", |c| if c.change_pct.is_finite() { format!("{:+.1}%", c.change_pct) } else { "new".into() })
        .col("allowed", |c| format!("{}% ({})", c.tolerance_pct, c.key))
        .col("verdict", |c| if c.regressed { Cell::alarm("REGRESSED") } else { Cell::plain("ok") });
    md.push_str(&table.done().markdown());
    let json = serde_json::to_string_pretty(&serde_json::json!({
        "baseline": base.0, "candidate": cand.0, "regressions": regressions, "checks": checks, "warnings": warnings,
    }))
    .unwrap_or_default();
    let results: Vec<crate::report::gates::GateResult> = checks
        .iter()
        .map(|c| crate::report::gates::GateResult {
            name: c.metric.clone(),
            gate: format!("{} within {}% of baseline", c.metric, c.tolerance_pct),
            threshold: c.display_baseline.clone(),
            value: c.display_candidate.clone(),
            passed: !c.regressed,
            detail: if c.regressed { format!("regressed {:+.1}%", c.change_pct) } else { String::new() },
            abort_on_fail: false,
        })
        .collect();
    let junit = crate::report::gates::junit(&format!("fleetstorm.baseline.{}", cand.1.scenario.name), &results, 0.0);
    for (name, text) in [("regression.md", &md), ("regression.json", &json), ("junit.xml", &junit)] {
        std::fs::write(out.join(name), text).map_err(|e| CompareError::Output(format!("cannot write {name}: {e}")))?;
    }
    let refs: Vec<(String, &Report)> = vec![(base.0.clone(), &base.1), (cand.0.clone(), &cand.1)];
    charts::write_comparison(&refs, out).map_err(CompareError::Output)?;
    Ok(md)
}
