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

use crate::report::backbone::{num, stats};
use crate::report::compat as report_compat;
use crate::report::faults::FaultReport;
use crate::report::fmt::{STYLE, count, esc, secs, us};
use crate::report::schema::CompatMatrix;
use crate::report::schema::{LatencySummary, TargetMetric};
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
        let r = Report::read(d).map_err(|e| CompareError::Input(e.to_string()))?;
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
        if let Some(why) = r.scenario.definition.durability_shortfall(r.target.brokers.len()) {
            warnings.push(format!("DURABILITY NOT COMPARABLE in {label}: {why}"));
        }
        if !r.audit.complete && r.audit.counts.unverified > 0 {
            warnings.push(format!(
                "AUDIT INCOMPLETE in {label}: {} acknowledged records were never reached by its audit reader \
                 (unverified, not lost)",
                count(r.audit.counts.unverified)
            ));
        }
        if r.audit.duplicates_cause == Some(crate::report::DuplicateCause::EmbeddedCluster) {
            warnings.push(format!(
                "DUPLICATES NOT THE TARGET'S in {label}: its {} duplicates are the embedded cluster's (it does not \
                 deduplicate an idempotent producer's retries)",
                count(r.audit.counts.duplicates)
            ));
        }
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
                metric("unverified (not reached by the audit)", |r| count(r.audit.counts.unverified)),
                metric("audit complete", |r| if r.audit.complete { "yes".into() } else { "NO".into() }),
                metric("duplicates", |r| match r.audit.duplicates_cause {
                    Some(c) if r.audit.counts.duplicates > 0 => {
                        format!("{} ({})", count(r.audit.counts.duplicates), c.short())
                    }
                    _ => count(r.audit.counts.duplicates),
                }),
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
            rows.push(fault("p99 recovered", |x| x.recovered_text()));
            rows.push(fault("throughput dip", |x| format!("{:.0}%", x.throughput.dip_pct)));
        }
        out.push(("Recovery after faults", side_by_side(runs, rows)));
    }
    // The brokers' own series, where any run sampled them: the cluster's max and mean per metric,
    // then the first mover of each stress window.
    let sampled: Vec<TargetMetric> = TargetMetric::ALL
        .into_iter()
        .filter(|m| runs.iter().any(|(_, r)| r.backbone.as_ref().is_some_and(|b| stats(b, *m).is_some())))
        .collect();
    if !sampled.is_empty() {
        let mut rows = Vec::new();
        for m in sampled {
            let unit = if m.unit().is_empty() { String::new() } else { format!(" ({})", m.unit()) };
            let cell = move |r: &Report, pick: fn((f64, f64, f64)) -> f64| {
                r.backbone.as_ref().and_then(|b| stats(b, m)).map_or_else(|| "-".into(), |s| num(pick(s)))
            };
            rows.push(metric(format!("{m} max{unit}"), move |r| cell(r, |s| s.2)));
            rows.push(metric(format!("{m} mean{unit}"), move |r| cell(r, |s| s.1)));
        }
        let windows: Vec<String> = runs
            .first()
            .and_then(|(_, r)| r.backbone.as_ref())
            .map(|b| b.findings.iter().map(|f| f.window.clone()).collect())
            .unwrap_or_default();
        for w in windows {
            rows.push(metric(format!("{w}: first to move"), move |r| {
                r.backbone.as_ref().and_then(|b| b.findings.iter().find(|f| f.window == w)).map_or_else(
                    || "-".into(),
                    |f| {
                        f.moves.first().map_or_else(|| "none".into(), |m| format!("{} at {:.0} s", m.metric, m.first_s))
                    },
                )
            }));
        }
        out.push(("Backbone (the target's own metrics)", side_by_side(runs, rows)));
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
    let charts = charts::write_comparison(&refs, out).map_err(|e| CompareError::Output(e.to_string()))?;
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

/// A row of the cost section: a cost line, the total, or a latency beside them.
#[derive(Clone, Copy)]
enum CostRow {
    Line(crate::cost::Line),
    Total,
    AckP99,
    E2eP99,
}

/// The cost section of a bake-off: each run under each pricing its directory's `cost.json`
/// holds (`fleetstorm cost DIR --pricing ...`), per month, beside its latency. `None` when no run
/// was priced.
pub fn cost_section(dirs: &[PathBuf], runs: &[(String, Report)]) -> Result<Option<Table>, CompareError> {
    let mut columns: Vec<(String, &Report, crate::cost::Priced)> = Vec::new();
    for (d, (label, r)) in dirs.iter().zip(runs) {
        let Some(c) = crate::cost::read(d).map_err(|e| CompareError::Input(e.to_string()))? else { continue };
        if c.run_id != r.run_id {
            return Err(CompareError::Input(format!(
                "{}: cost.json prices run {}, report.json is run {}: price this run again (fleetstorm cost)",
                d.display(),
                c.run_id,
                r.run_id
            )));
        }
        for p in c.priced {
            columns.push((format!("{label} / {}", p.pricing), r, p));
        }
    }
    if columns.is_empty() {
        return Ok(None);
    }
    let mut rows: Vec<CostRow> = crate::cost::Line::ALL
        .iter()
        .copied()
        .filter(|l| columns.iter().any(|(_, _, p)| p.line(*l).is_some()))
        .map(CostRow::Line)
        .collect();
    rows.extend([CostRow::Total, CostRow::AckP99, CostRow::E2eP99]);
    let mut t = Table::of(rows).col("per month", |row: &CostRow| match row {
        CostRow::Line(l) => Cell::code(l.name()),
        CostRow::Total => Cell::plain("total"),
        CostRow::AckP99 => Cell::plain("ack p99"),
        CostRow::E2eP99 => Cell::plain("end-to-end p99 (slowest group)"),
    });
    for (head, r, p) in &columns {
        t = t.col(head.clone(), move |row: &CostRow| match row {
            CostRow::Line(l) => p.line(*l).map_or_else(
                || "-".to_string(),
                |c| {
                    format!(
                        "{} ({})",
                        crate::cost::render::money(c.monthly, &p.currency),
                        crate::cost::render::drivers(c)
                    )
                },
            ),
            CostRow::Total => crate::cost::render::money(p.monthly, &p.currency),
            CostRow::AckP99 => us(r.produce.latency_from_intended.p99_us),
            CostRow::E2eP99 => r.consumers.values().map(|g| g.e2e_latency.p99_us).max().map_or_else(|| "-".into(), us),
        });
    }
    Ok(Some(t.done()))
}

/// Add the cost section to a bake-off already written into `out` (`compare.md`, `compare.html`);
/// returns the Markdown added (empty when no run was priced).
pub fn append_cost(dirs: &[PathBuf], runs: &[(String, Report)], out: &Path) -> Result<String, CompareError> {
    let Some(table) = cost_section(dirs, runs)? else { return Ok(String::new()) };
    let md = format!(
        "## Cost\n\nEach run priced under each pricing file of its `cost.json`, per month at the run's measured rates (an \
         estimate: see each run's cost.md for the assumptions), beside its latency.\n\n{}",
        table.markdown()
    );
    let io = |name: &str, e: std::io::Error| CompareError::Output(format!("cannot write {name}: {e}"));
    let path = out.join("compare.md");
    let mut text = std::fs::read_to_string(&path).map_err(|e| io("compare.md", e))?;
    text.push('\n');
    text.push_str(&md);
    std::fs::write(&path, text).map_err(|e| io("compare.md", e))?;
    let path = out.join("compare.html");
    let html = std::fs::read_to_string(&path).map_err(|e| io("compare.html", e))?;
    let section = format!("<h2>Cost</h2>{}</body></html>", table.html());
    let html = match html.rfind("</body></html>") {
        Some(i) => format!("{}{section}", &html[..i]),
        None => format!("{html}{section}"),
    };
    std::fs::write(&path, html).map_err(|e| io("compare.html", e))?;
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
    check("audit.unverified".into(), "audit", ba.unverified as f64, ca.unverified as f64, Worse::Higher, &n);
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
    charts::write_comparison(&refs, out).map_err(|e| CompareError::Output(e.to_string()))?;
    Ok(md)
}

// ------------------------------------------------------------------ compatibility matrices
//
// `fleetstorm check --compat --out DIR` writes `compat.json`; a run's directory may hold one too.
// A comparison of directories shows the runs side by side when each has a report.json, and the
// matrices side by side when they have a compat.json: a directory holding only the matrix is
// comparable (matrix only), one holding both shows both.

/// What the directories of a comparison hold.
#[derive(Debug, Default)]
pub struct Compared {
    /// The runs, labelled, when every directory holds a report.json.
    pub runs: Vec<(String, Report)>,
    /// The compatibility matrices, labelled, of the directories that hold a compat.json.
    pub matrices: Vec<(String, CompatMatrix)>,
    pub warnings: Vec<String>,
}

/// Read the directories of a comparison: their reports (checked as [`load`] checks them) and
/// their compatibility matrices.
pub fn load_dirs(dirs: &[PathBuf], allow_different: bool) -> Result<Compared, CompareError> {
    let mut out = Compared::default();
    let mut without_report = Vec::new();
    let mut without_matrix = Vec::new();
    for d in dirs {
        let dir_name = d.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let matrix = report_compat::read(d).map_err(|e| CompareError::Input(e.to_string()))?;
        let has_report = if d.is_dir() { d.join("report.json").is_file() } else { d.is_file() };
        match (&matrix, has_report) {
            (None, false) => {
                return Err(CompareError::Input(format!(
                    "{}: neither a run's report.json nor a check's {} in it",
                    d.display(),
                    report_compat::FILE
                )));
            }
            (_, false) => without_report.push(dir_name.clone()),
            (None, true) => without_matrix.push(dir_name.clone()),
            (Some(_), true) => {}
        }
        if let Some(m) = matrix {
            out.matrices.push((format!("{} ({dir_name})", m.profile), m));
        }
    }
    if without_report.is_empty() {
        let (runs, warnings) = load(dirs, allow_different)?;
        out.runs = runs;
        out.warnings = warnings;
    } else if without_report.len() < dirs.len() {
        out.warnings.push(format!(
            "RUNS NOT COMPARED: {} hold(s) no report.json; only the compatibility matrices are compared",
            without_report.join(", ")
        ));
    }
    if !out.matrices.is_empty() && !without_matrix.is_empty() {
        out.warnings.push(format!("NO COMPATIBILITY MATRIX in {}: its column is missing", without_matrix.join(", ")));
    }
    Ok(out)
}

/// A bake-off of whatever the directories hold: the runs (as [`bake_off`]) and the
/// compatibility matrices side by side, into compare.md and compare.html; returns the markdown.
pub fn bake_off_dirs(c: &Compared, out: &Path) -> Result<String, CompareError> {
    let mut md = if c.runs.is_empty() {
        std::fs::create_dir_all(out)
            .map_err(|e| CompareError::Output(format!("cannot create {}: {e}", out.display())))?;
        let mut md = String::from("# fleetstorm comparison: compatibility\n\n");
        for w in &c.warnings {
            let _ = writeln!(md, "> **{w}**\n");
        }
        md
    } else {
        bake_off(&c.runs, &c.warnings, out)?
    };
    if c.matrices.is_empty() {
        return Ok(md);
    }
    md.push_str(&report_compat::comparison_markdown(&c.matrices));
    let section = compat_html(&c.matrices);
    let html = if c.runs.is_empty() {
        let mut html = format!(
            "<!doctype html><html><head><meta charset=utf-8><title>fleetstorm comparison: compatibility</title><style>{STYLE}</style></head><body><h1>Comparison: compatibility</h1>"
        );
        for w in &c.warnings {
            let _ = write!(html, "<div class=warn><b>{}</b></div>", esc(w));
        }
        html + &section + "</body></html>"
    } else {
        let path = out.join("compare.html");
        let html = std::fs::read_to_string(&path)
            .map_err(|e| CompareError::Output(format!("cannot read {}: {e}", path.display())))?;
        match html.rfind("</body>") {
            Some(at) => format!("{}{section}{}", &html[..at], &html[at..]),
            None => html + &section,
        }
    };
    for (name, text) in [("compare.md", &md), ("compare.html", &html)] {
        std::fs::write(out.join(name), text).map_err(|e| CompareError::Output(format!("cannot write {name}: {e}")))?;
    }
    Ok(md)
}

fn compat_html(matrices: &[(String, CompatMatrix)]) -> String {
    let mut html = String::from("<h2>Compatibility</h2><ul>");
    for (label, m) in matrices {
        let _ = write!(html, "<li><b>{}</b>: {}</li>", esc(label), esc(&report_compat::tally(m)));
    }
    let _ = write!(html, "</ul>{}", report_compat::side_by_side(matrices).html());
    let diffs = report_compat::differences(matrices);
    if !diffs.is_empty() {
        html.push_str("<h3>Where they differ</h3><ul>");
        for cap in diffs {
            let _ = write!(html, "<li><b>{}</b><ul>", esc(cap.label()));
            for (label, m) in matrices {
                let line = m
                    .cell(cap)
                    .map_or_else(|| "no cell".to_string(), |c| format!("{}: {}", c.outcome.verdict(), c.detail));
                let _ = write!(html, "<li>{}: {}</li>", esc(label), esc(&line));
            }
            html.push_str("</ul></li>");
        }
        html.push_str("</ul>");
    }
    html
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture::{self, lat};

    fn runs(a: Report, b: Report) -> Vec<(String, Report)> {
        vec![("fast (a)".to_string(), a), ("slow (b)".to_string(), b)]
    }

    #[test]
    fn a_bake_off_shows_the_brokers_series_side_by_side_and_dashes_where_a_run_has_none() {
        use crate::report::schema::{Backbone, BackboneSeries, Finding, Move, SourceKind};
        let mut a = fixture::report("kafka");
        let b = fixture::report("redpanda");
        let urp = |vs: &[f64]| BackboneSeries {
            metric: TargetMetric::UnderReplicatedPartitions,
            broker: None,
            kind: SourceKind::Admin,
            points: vs.iter().enumerate().map(|(t, v)| [t as f64, *v]).collect(),
        };
        a.backbone = Some(Backbone {
            series: vec![urp(&[0.0, 6.0, 0.0])],
            findings: vec![Finding {
                window: "fault kill".into(),
                from_s: 1.0,
                to_s: 2.0,
                moves: vec![Move {
                    metric: TargetMetric::UnderReplicatedPartitions,
                    first_s: 1.0,
                    baseline: 0.0,
                    peak: 6.0,
                }],
                text: String::new(),
            }],
            ..Backbone::default()
        });
        let s = sections(&runs(a, b));
        let title = "Backbone (the target's own metrics)";
        assert_eq!(row(&s, title, "under_replicated_partitions max"), ["under_replicated_partitions max", "6", "-"]);
        assert_eq!(row(&s, title, "under_replicated_partitions mean"), ["under_replicated_partitions mean", "2", "-"]);
        assert_eq!(
            row(&s, title, "fault kill: first to move"),
            ["fault kill: first to move", "under_replicated_partitions at 1 s", "-"]
        );
    }

    /// The cells of the row whose first cell is `metric`, in a section.
    fn row(sections: &[(&str, Table)], title: &str, metric: &str) -> Vec<String> {
        let (_, t) = sections.iter().find(|(t, _)| *t == title).unwrap_or_else(|| panic!("no section {title}"));
        let r = t.rows().iter().find(|r| r[0].text() == metric).unwrap_or_else(|| panic!("no row {metric}"));
        r.iter().map(Cell::text).collect()
    }

    fn check<'a>(checks: &'a [Check], metric: &str) -> &'a Check {
        checks.iter().find(|c| c.metric == metric).unwrap_or_else(|| panic!("no check {metric}"))
    }

    #[test]
    fn bake_off_sections_put_each_run_in_its_own_column() {
        let mut slow = fixture::report("slow");
        slow.produce.latency_from_intended = lat(3_000);
        slow.harness.saturated = true;
        let s = sections(&runs(fixture::report("fast"), slow));
        let titles: Vec<&str> = s.iter().map(|(t, _)| *t).collect();
        assert_eq!(titles, ["Throughput", "Latency and lag", "Delivery audit", "Recovery after faults", "Harness"]);
        for (title, t) in &s {
            assert_eq!(t.heads(), ["metric", "fast (a)", "slow (b)"], "{title}");
        }
        assert_eq!(row(&s, "Throughput", "achieved/s"), ["achieved/s", "1499.5", "1499.5"]);
        assert_eq!(
            row(&s, "Latency and lag", "ack p99 (from intended)"),
            ["ack p99 (from intended)", "4.0ms", "12.0ms"]
        );
        assert_eq!(row(&s, "Latency and lag", "sink max lag"), ["sink max lag", "1,234", "1,234"]);
        assert_eq!(row(&s, "Delivery audit", "lost"), ["lost", "2", "2"]);
        assert_eq!(row(&s, "Recovery after faults", "kill p99 recovered"), ["kill p99 recovered", "4.25s", "4.25s"]);
        assert_eq!(row(&s, "Recovery after faults", "pause unavailable"), ["pause unavailable", "n/a", "n/a"]);
        assert_eq!(row(&s, "Harness", "harness saturated"), ["harness saturated", "no", "YES"]);
    }

    #[test]
    fn bake_off_shows_a_dash_for_a_group_or_fault_the_first_run_has_and_another_lacks() {
        let mut other = fixture::report("other");
        other.consumers.clear();
        other.faults.clear();
        let s = sections(&runs(fixture::report("fast"), other));
        assert_eq!(row(&s, "Latency and lag", "sink end-to-end p99"), ["sink end-to-end p99", "8.0ms", "-"]);
        assert_eq!(row(&s, "Recovery after faults", "kill throughput dip"), ["kill throughput dip", "35%", "-"]);
    }

    #[test]
    fn bake_off_without_faults_has_no_recovery_section() {
        let (mut a, mut b) = (fixture::report("a"), fixture::report("b"));
        a.faults.clear();
        b.faults.clear();
        assert!(sections(&runs(a, b)).iter().all(|(t, _)| *t != "Recovery after faults"));
    }

    #[test]
    fn bake_off_writes_the_markdown_it_returns_and_escaped_html() {
        let dir = tempfile::tempdir().unwrap();
        let runs = vec![("a|<b>".to_string(), fixture::report("a")), ("c".to_string(), fixture::report("c"))];
        let md = bake_off(&runs, &["mind <this>".to_string()], dir.path()).unwrap();
        assert_eq!(md, std::fs::read_to_string(dir.path().join("compare.md")).unwrap());
        assert!(md.starts_with("# fleetstorm comparison: fixture\n\n> **mind <this>**\n\n"), "{md}");
        assert!(md.contains("Scenario `scenarios/fixture.yaml`, seed 7, fingerprint `0123456789ab`."), "{md}");
        assert!(md.contains(
            "## Throughput\n\n| metric | a\\|<b> | c |\n|---|---|---|\n| status | completed | completed |\n"
        ));
        let html = std::fs::read_to_string(dir.path().join("compare.html")).unwrap();
        assert!(html.contains("<div class=warn><b>mind &lt;this&gt;</b></div>"), "{html}");
        assert!(html.contains("<h2>Throughput</h2><table><tr><th>metric</th><th>a|&lt;b&gt;</th><th>c</th></tr>"));
        assert!(!html.contains("<b>mind <this>") && !html.contains("<th>a|<b></th>"));
    }

    #[test]
    fn parse_tolerances_reads_percentages_with_or_without_the_sign() {
        let t = parse_tolerances(" p99=15%, throughput=5 ,audit=0%,").unwrap();
        assert_eq!(t, BTreeMap::from([("audit".into(), 0.0), ("p99".into(), 15.0), ("throughput".into(), 5.0)]));
        assert!(parse_tolerances("").unwrap().is_empty());
    }

    #[test]
    fn parse_tolerances_rejects_unknown_metrics_missing_values_and_non_numbers() {
        let msg = |text: &str| match parse_tolerances(text) {
            Err(CompareError::Input(m)) => m,
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(
            msg("p98=5%"),
            "unknown metric `p98` in --max-regression; known: throughput, p50, p99, p999, e2e, lag, recovery, audit"
        );
        assert_eq!(msg("p99"), "`p99`: write KEY=PERCENT, e.g. p99=15%");
        assert_eq!(msg("p99=fast"), "`fast` is not a percentage in --max-regression p99=fast");
    }

    #[test]
    fn baseline_flags_a_latency_regression_beyond_its_tolerance() {
        let base = fixture::report("base");
        let mut cand = fixture::report("cand");
        cand.produce.latency_from_intended.p99_us = 8_000; // 4ms -> 8ms: +100%, tolerance 15%
        let checks = baseline(&base, &cand, &BTreeMap::new());
        let c = check(&checks, "produce.latency.p99");
        assert!(c.regressed, "{c:?}");
        assert_eq!((c.key.as_str(), c.tolerance_pct, c.change_pct), ("p99", 15.0, 100.0));
        assert_eq!((c.display_baseline.as_str(), c.display_candidate.as_str()), ("4.0ms", "8.0ms"));
        assert_eq!(checks.iter().filter(|c| c.regressed).count(), 1, "only p99 moved: {checks:?}");
    }

    #[test]
    fn baseline_tolerates_a_change_within_its_tolerance_or_its_absolute_slack() {
        let mut base = fixture::report("base");
        base.produce.latency_from_intended.p99_us = 100_000;
        base.produce.latency_from_intended.p50_us = 100;
        let mut cand = base.clone();
        cand.produce.latency_from_intended.p99_us = 110_000; // +10%, tolerance 15%
        cand.produce.latency_from_intended.p50_us = 400; // +300%, but 300us is under the 500us slack
        cand.produce.msgs_per_s *= 1.5; // better, not worse
        let checks = baseline(&base, &cand, &BTreeMap::new());
        assert!(checks.iter().all(|c| !c.regressed), "{checks:?}");
        assert_eq!(check(&checks, "produce.latency.p50").change_pct, 300.0);
    }

    #[test]
    fn baseline_per_metric_overrides_loosen_or_tighten_one_tolerance() {
        let mut base = fixture::report("base");
        base.produce.latency_from_intended.p99_us = 100_000;
        let mut cand = base.clone();
        cand.produce.latency_from_intended.p99_us = 110_000; // +10%
        let tight = baseline(&base, &cand, &BTreeMap::from([("p99".to_string(), 5.0)]));
        assert!(check(&tight, "produce.latency.p99").regressed);
        assert_eq!(check(&tight, "produce.latency.p99").tolerance_pct, 5.0);
        assert_eq!(check(&tight, "produce.latency.p50").tolerance_pct, 20.0, "other keys keep their default");
        cand.produce.latency_from_intended.p99_us = 300_000; // +200%
        let loose = baseline(&base, &cand, &BTreeMap::from([("p99".to_string(), 250.0)]));
        assert!(!check(&loose, "produce.latency.p99").regressed);
    }

    #[test]
    fn baseline_counts_any_audit_increase_and_a_throughput_drop_as_regressions() {
        let base = fixture::report("base");
        let mut cand = base.clone();
        cand.audit.counts.lost += 1;
        cand.audit.counts.duplicates = 0; // fewer is fine
        cand.produce.msgs_per_s = base.produce.msgs_per_s * 0.9; // -10%, tolerance 5%
        let checks = baseline(&base, &cand, &BTreeMap::new());
        assert!(check(&checks, "audit.lost").regressed);
        assert!(!check(&checks, "audit.duplicates").regressed);
        assert!(check(&checks, "produce.msgs_per_s").regressed);
        assert!(!check(&checks, "produce.achieved_rate").regressed);
    }

    #[test]
    fn baseline_checks_groups_and_faults_both_runs_have_and_a_fault_that_never_recovered_regresses() {
        let base = fixture::report("base");
        let mut cand = base.clone();
        cand.faults[0].recovery.recovered_s = None;
        let checks = baseline(&base, &cand, &BTreeMap::new());
        let c = check(&checks, "faults.kill.recovered");
        assert!(c.regressed && !c.change_pct.is_finite(), "{c:?}");
        assert!(checks.iter().any(|c| c.metric == "consumers.sink.e2e.p99"));
        cand.consumers.clear();
        let checks = baseline(&base, &cand, &BTreeMap::new());
        assert!(!checks.iter().any(|c| c.metric.starts_with("consumers.")), "{checks:?}");
    }

    #[test]
    fn write_baseline_marks_regressions_in_markdown_and_junit() {
        let dir = tempfile::tempdir().unwrap();
        let base = ("base (a)".to_string(), fixture::report("base"));
        let mut cand = ("cand (b)".to_string(), fixture::report("cand"));
        cand.1.audit.counts.lost = 5;
        let checks = baseline(&base.1, &cand.1, &BTreeMap::new());
        let md = write_baseline(&base, &cand, &checks, &[], dir.path()).unwrap();
        assert!(md.contains("baseline **base (a)**, candidate **cand (b)**: **1 regression(s)**"), "{md}");
        assert!(
            md.contains("| metric | baseline | candidate | change | allowed | verdict |\n|---|---|---|---|---|---|\n")
        );
        assert!(md.contains("| `audit.lost` | 2 | 5 | +150.0% | 0% (audit) | **REGRESSED** |"), "{md}");
        assert!(md.contains("| `produce.latency.p99` | 4.0ms | 4.0ms | +0.0% | 15% (p99) | ok |"), "{md}");
        let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
        assert!(junit.contains("failures=\"1\""), "{junit}");
    }
}
