//! What runs leave behind: charts, HTML, interval logs, gates, JUnit, comparisons.

use crate::common;

use std::path::Path;

use common::*;

fn scenario(name: &str, seed: u64, extra: &str) -> String {
    format!(
        r#"
name: {name}
seed: {seed}
duration: 10s
warmup: 1s
drain: 20s
topics: [{{name: rep.t, partitions: 6, replication: 3}}]
fleet:
  devices: 1500
  classes:
    - {{name: tel, topic: rep.t, rate: 1/1s, size: 300B}}
    - {{name: hb, topic: rep.t, rate: 1/2s, size: 64B, format: binary}}
consumers:
  - {{name: sink, members: 2, topics: [rep.t]}}
{extra}"#
    )
}

fn run(dir: &Path, name: &str, text: &str, args: &[&str]) -> (std::process::Output, std::path::PathBuf) {
    let f = write(dir, &format!("{name}.yaml"), text);
    let out = dir.join(format!("{name}-out"));
    let o = bin().arg("run").arg(&f).arg("--out").arg(&out).arg("-q").args(args).output().unwrap();
    (o, out)
}

fn png_ok(p: &Path) {
    let b = std::fs::read(p).unwrap();
    assert!(b.len() > 5_000, "{} is tiny", p.display());
    assert!(b.starts_with(b"\x89PNG\r\n\x1a\n"), "{} is not a PNG", p.display());
    assert_eq!(&b[12..16], b"IHDR");
    let (w, h) = (u32::from_be_bytes(b[16..20].try_into().unwrap()), u32::from_be_bytes(b[20..24].try_into().unwrap()));
    assert_eq!((w, h), (1100, 480));
    assert_eq!(&b[b.len() - 8..b.len() - 4], b"IEND", "{} is truncated", p.display());
}

fn svg_ok(p: &Path) -> String {
    let s = std::fs::read_to_string(p).unwrap();
    assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"), "{}", p.display());
    assert!(s.contains("<polyline") || s.contains("<path"), "{} draws nothing", p.display());
    assert!(s.contains("<text"), "{} has no labels", p.display());
    s
}

/// Sum of counts per tag in an interval log, read back with the hdrhistogram crate.
fn hlog_counts(p: &Path) -> std::collections::BTreeMap<String, u64> {
    use base64::Engine;
    use hdrhistogram::serialization::Deserializer;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    let bytes = std::fs::read(p).unwrap();
    let mut out = std::collections::BTreeMap::new();
    let mut d = Deserializer::new();
    let mut intervals = 0;
    for e in IntervalLogIterator::new(&bytes) {
        if let LogEntry::Interval(i) = e.unwrap() {
            intervals += 1;
            let raw = base64::engine::general_purpose::STANDARD.decode(i.encoded_histogram()).unwrap();
            let h: hdrhistogram::Histogram<u64> = d.deserialize(&mut raw.as_slice()).unwrap();
            *out.entry(i.tag().map(|t| t.as_str().to_string()).unwrap_or_default()).or_insert(0) += h.len();
        }
    }
    assert!(intervals > 5, "{}: {intervals} intervals", p.display());
    out
}

#[test]
fn charts_html_and_interval_logs_are_written_and_reproducible_from_the_json() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let extra = "faults: [{name: kill, at: 4s, kind: broker_kill, restore_after: 3s}]\n";
    let (o, out) = run(dir.path(), "charts", &scenario("charts", 1, extra), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let charts = ["throughput", "latency", "spectrum", "lag"];
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let mut svgs = Vec::new();
    for c in charts {
        png_ok(&out.join(format!("{c}.png")));
        svgs.push(svg_ok(&out.join(format!("{c}.svg"))));
        assert!(html.contains(&format!("id=\"{c}\"><svg")), "report.html does not inline {c}");
    }
    assert!(html.contains("kill") && html.contains("Delivery audit"));
    assert!(!html.contains("src=\"http"), "self-contained");
    // `fleetstorm report` draws the same from report.json alone.
    let again = dir.path().join("again");
    std::fs::create_dir_all(&again).unwrap();
    std::fs::copy(out.join("report.json"), again.join("report.json")).unwrap();
    let o = bin().arg("report").arg(&again).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    for (c, original) in charts.iter().zip(&svgs) {
        png_ok(&again.join(format!("{c}.png")));
        assert_eq!(&svg_ok(&again.join(format!("{c}.svg"))), original, "{c} differs when redrawn");
    }
    assert_eq!(
        std::fs::read_to_string(again.join("summary.md")).unwrap(),
        std::fs::read_to_string(out.join("summary.md")).unwrap()
    );
    // Interval logs parse back to the same counts as the timeline.
    let r = read_report(&out);
    let produce = hlog_counts(&out.join("produce-latency.hlog"));
    assert_eq!(produce.keys().cloned().collect::<Vec<_>>(), vec!["hb", "tel"]);
    let timeline_acks: u64 = r.timeline.iter().map(|p| p.produce.count).sum();
    assert_eq!(produce.values().sum::<u64>(), timeline_acks);
    assert_eq!(timeline_acks, r.produce.acked);
    let e2e = hlog_counts(&out.join("e2e-latency.hlog"));
    let timeline_e2e: u64 = r.timeline.iter().map(|p| p.consumers["sink"].e2e.count).sum();
    assert_eq!(e2e["sink"], timeline_e2e);
    assert!(hlog_counts(&out.join("send-lag.hlog")).values().sum::<u64>() >= r.produce.acked);
}

#[test]
fn gates_pass_fail_and_land_in_junit() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let gates = "gates:\n  - audit.lost == 0\n  - {gate: \"produce.latency.p99 < 1us\", name: impossible}\n  - consumers.sink.max_lag < 1M\n";
    let (o, out) = run(dir.path(), "gates", &scenario("gates", 2, gates), &[]);
    assert_eq!(o.status.code(), Some(1), "a failed gate exits 1: {}", text(&o));
    assert!(text(&o).contains("FAILED   produce.latency.p99 < 1us"), "{}", text(&o));
    let r = read_report(&out);
    assert_eq!(r.gates.iter().map(|g| g.passed).collect::<Vec<_>>(), vec![true, false, true]);
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(junit.contains("tests=\"3\" failures=\"1\""), "{junit}");
    assert!(junit.contains("name=\"impossible\"") && junit.contains("<failure message=\"failed: "), "{junit}");
    // --gates replaces them; passing gates exit 0.
    let file = write(dir.path(), "ok-gates.yaml", "gates: [audit.duplicates == 0, \"produce.achieved_ratio > 99%\"]\n");
    let (o, out) = run(dir.path(), "gates2", &scenario("gates", 2, gates), &["--gates", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(junit.contains("tests=\"2\" failures=\"0\""), "{junit}");
}

#[test]
fn an_unknown_gate_metric_is_rejected_by_validate() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "bad.yaml",
        &scenario("badgates", 1, "gates:\n  - produce.latency.p99 < 1s\n  - consumers.sinks.max_lag < 10\n"),
    );
    let o = bin().arg("validate").arg(&f).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let t = text(&o);
    assert!(t.contains("gates[1]: unknown consumer group in `sinks.max_lag`"), "{t}");
    assert!(!t.contains("gates[0]"), "{t}");
}

#[test]
fn a_live_gate_stops_the_run_early() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let extra = "  - {name: slow, members: 1, topics: [rep.t], processing_time: 20ms}\ngates:\n  - {gate: \"consumers.slow.max_lag < 300\", abort_on_fail: true}\n";
    let text_ = scenario("live", 3, extra).replace("duration: 10s", "duration: 60s");
    let started = std::time::Instant::now();
    let (o, out) = run(dir.path(), "live", &text_, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(started.elapsed().as_secs() < 40, "stopped early");
    let r = read_report(&out);
    assert_eq!(r.status, fleetstorm::report::Status::Aborted);
    assert!(r.status_reason.unwrap().contains("gate `consumers.slow.max_lag < 300` failed"));
    assert!(r.load_s < 30.0);
}

#[test]
fn a_slower_target_is_flagged_against_a_baseline_and_different_workloads_are_refused() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let base_text = scenario("cmp", 5, "");
    let (o, base) = run(dir.path(), "base", &base_text, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let slow = write(dir.path(), "slow.yaml", "name: embedded-slow\nkind: embedded\nround_trip_time: 40ms\n");
    let (o, cand) = run(dir.path(), "cand", &base_text, &["--profile", slow.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = dir.path().join("regression");
    let o = bin().args(["compare", "--baseline"]).arg(&base).arg(&cand).arg("--out").arg(&out).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "a regression exits 1: {}", text(&o));
    let md = std::fs::read_to_string(out.join("regression.md")).unwrap();
    let p99 = md.lines().find(|l| l.contains("`produce.latency.p99`")).unwrap();
    assert!(p99.contains("REGRESSED"), "{md}");
    assert!(std::fs::read_to_string(out.join("junit.xml")).unwrap().contains("<failure"));
    // Looser tolerances are honoured.
    let o = bin()
        .args(["compare", "--baseline"])
        .arg(&base)
        .arg(&cand)
        .args(["--max-regression", "p50=100000%,p99=100000%,p999=100000%,e2e=100000%,lag=100000%,throughput=50%"])
        .arg("--out")
        .arg(dir.path().join("loose"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // A bake-off of the two targets.
    let o = bin().arg("compare").arg(&base).arg(&cand).arg("--out").arg(dir.path().join("bake")).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let html = std::fs::read_to_string(dir.path().join("bake/compare.html")).unwrap();
    assert!(html.contains("embedded-slow") && html.contains("id=\"compare-spectrum\"><svg"));
    // A different workload (seed) is refused, or compared with a loud warning.
    let (_, other) = run(dir.path(), "other", &scenario("cmp", 6, ""), &[]);
    let o = bin().arg("compare").arg(&base).arg(&other).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("did not run the same workload") && text(&o).contains("seed 5 vs 6"), "{}", text(&o));
    let o = bin()
        .arg("compare")
        .arg(&base)
        .arg(&other)
        .arg("--allow-different")
        .arg("--out")
        .arg(dir.path().join("diff"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(std::fs::read_to_string(dir.path().join("diff/compare.md")).unwrap().contains("DIFFERENT WORKLOADS"));
    // A run whose harness saturated is called out in a bake-off: its numbers are not the target's.
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cand.join("report.json")).unwrap()).unwrap();
    doc["harness"]["saturated"] = serde_json::Value::Bool(true);
    let sat = dir.path().join("saturated");
    std::fs::create_dir_all(&sat).unwrap();
    std::fs::write(sat.join("report.json"), doc.to_string()).unwrap();
    // The base as one that kept up, whatever this machine's load did to the real verdict (the
    // comparison's rendering is what this checks; the verdict has its own tests).
    let mut kept: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(base.join("report.json")).unwrap()).unwrap();
    kept["harness"]["saturated"] = serde_json::Value::Bool(false);
    let base = dir.path().join("kept-up");
    std::fs::create_dir_all(&base).unwrap();
    std::fs::write(base.join("report.json"), kept.to_string()).unwrap();
    let o = bin().arg("compare").arg(&base).arg(&sat).arg("--out").arg(dir.path().join("sat")).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let md = std::fs::read_to_string(dir.path().join("sat/compare.md")).unwrap();
    assert!(md.contains("HARNESS SATURATED in embedded-slow (saturated)"), "{md}");
    assert!(md.lines().any(|l| l.starts_with("| harness saturated | no | YES |")), "{md}");
}
