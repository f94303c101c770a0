//! The benchmark commands (scripts/bench.sh drives them): they run the real code paths and
//! report what they measured.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::*;

fn json(o: &std::process::Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", text(o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    // Exactly one JSON line on stdout: the run summary goes to stderr.
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    serde_json::from_str(stdout.trim()).unwrap()
}

/// `fleetstorm bench ARGS --out OUT`: its one JSON line.
fn bench(args: &[&str], out: &std::path::Path) -> serde_json::Value {
    json(&bin().arg("bench").args(args).arg("--out").arg(out).output().unwrap())
}

#[test]
fn bench_produce_rate_and_consume_measure_real_runs_on_a_served_embedded_cluster() {
    let _g = serial();
    let mut serve = bin()
        .args([
            "serve-embedded",
            "--brokers",
            "3",
            "--topic",
            "bench:12",
            "--topic",
            "replay:16",
            "--until-stdin-closes",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(serve.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let bootstrap = line.trim().strip_prefix("bootstrap=").unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();

    let p = bench(
        &["produce", "--bootstrap", &bootstrap, "--count", "30000", "--size", "1024", "--acks", "all"],
        &dir.path().join("p"),
    );
    assert_eq!(p["acked"], 30000, "{p}");
    assert_eq!(p["size"], 1024);
    assert!(p["msgs_per_s"].as_f64().unwrap() > 0.0);
    // The bytes are the records' real size: 1 KiB values.
    let mbps = p["mb_per_s"].as_f64().unwrap();
    let rate = p["msgs_per_s"].as_f64().unwrap();
    assert!((mbps * 1e6 / rate - 1024.0).abs() < 1.0, "{p}");
    // It is a real run: its report is there, with the max-rate section.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("p/report.json")).unwrap()).unwrap();
    assert_eq!(report["max_rate"]["acked"], 30000);
    assert_eq!(report["status"], "completed");

    let r = bench(&["rate", "--bootstrap", &bootstrap, "--rate", "2000/s", "--duration", "3s"], &dir.path().join("r"));
    // Planned: what the seeded schedule actually holds in the measured window (≈ 2000/s).
    let planned = r["planned_per_s"].as_f64().unwrap();
    assert!((planned - 2000.0).abs() < 100.0, "{r}");
    let ratio = r["ratio"].as_f64().unwrap();
    assert!((0.95..=1.01).contains(&ratio), "{r}");

    // Replay reads: a filled topic read from its start by the group member and by the audit
    // reader, both taking records in batches from a queue of their own (driver/fetch.rs);
    // every record is recorded as the fill's run's (distinct records, so none lost to a
    // partition that never moved to the batch queue).
    let base = ["consume", "--bootstrap", &bootstrap, "--topic", "replay", "--partitions", "16"];
    let fill = bench(
        &[&base[..], &["--fill", "--count", "20000", "--size", "100", "--acks", "1"]].concat(),
        &dir.path().join("fill"),
    );
    assert_eq!(fill["acked"], 20000, "{fill}");
    let id = fill["run_id"].as_str().unwrap().to_string();
    for reader in ["group", "audit"] {
        let c = bench(&[&base[..], &["--reader", reader, "--run-id", &id]].concat(), &dir.path().join(reader));
        assert_eq!((c["count"].as_u64(), c["recorded"].as_u64()), (Some(20000), Some(20000)), "{reader}: {c}");
    }

    // A whole run: produce, the audit and one group. It says how it ended and what was planned,
    // so a short repetition explains itself (its report stays in its own directory).
    let w = bench(
        &[
            "whole",
            "--bootstrap",
            &bootstrap,
            "--topic",
            "bench",
            "--rate",
            "2000/s",
            "--duration",
            "3s",
            "--acks",
            "1",
        ],
        &dir.path().join("w"),
    );
    assert_eq!(w["status"], "completed", "{w}");
    let planned = w["planned"].as_u64().unwrap();
    assert!(planned > 4000 && w["acked"] == planned && w["audited"] == planned, "{w}");
    assert_eq!(
        (w["failed"].as_u64(), w["unsent_at_end"].as_u64(), w["lost"].as_u64()),
        (Some(0), Some(0), Some(0)),
        "{w}"
    );
    assert!(w["cpu_ns_per_record"].as_f64().unwrap() > 0.0, "{w}");
    assert!(w["report"].as_str().unwrap().ends_with("report.json"), "{w}");

    drop(serve.stdin.take());
    let status = serve.wait().unwrap();
    assert!(status.success());
}

#[test]
fn fleet_bench_builds_the_schedule_of_every_device() {
    let o = bin().args(["bench", "fleet", "--devices", "200000", "--classes", "2"]).output().unwrap();
    let f = json(&o);
    assert_eq!(f["devices"], 200000);
    assert_eq!(f["streams"], 400000);
    assert!(f["ready_s"].as_f64().unwrap() > 0.0);
    assert!(f["bytes_per_device"].as_f64().unwrap() > 0.0, "{f}");
}
