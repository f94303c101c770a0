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

    let o = bin()
        .args(["bench", "produce", "--bootstrap", &bootstrap, "--count", "30000", "--size", "1024", "--acks", "all"])
        .arg("--out")
        .arg(dir.path().join("p"))
        .output()
        .unwrap();
    let p = json(&o);
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

    let o = bin()
        .args(["bench", "rate", "--bootstrap", &bootstrap, "--rate", "2000/s", "--duration", "3s"])
        .arg("--out")
        .arg(dir.path().join("r"))
        .output()
        .unwrap();
    let r = json(&o);
    // Planned: what the seeded schedule actually holds in the measured window (≈ 2000/s).
    let planned = r["planned_per_s"].as_f64().unwrap();
    assert!((planned - 2000.0).abs() < 100.0, "{r}");
    let ratio = r["ratio"].as_f64().unwrap();
    assert!((0.95..=1.01).contains(&ratio), "{r}");

    // Replay reads: a filled topic read from its start by the group member and by the audit
    // reader, both taking records in batches from a queue of their own (driver/fetch.rs);
    // every record is recorded as the fill's run's (distinct records, so none lost to a
    // partition that never moved to the batch queue).
    let base = ["bench", "consume", "--bootstrap", &bootstrap, "--topic", "replay", "--partitions", "16"];
    let o = bin()
        .args(base)
        .args(["--fill", "--count", "20000", "--size", "100", "--acks", "1"])
        .arg("--out")
        .arg(dir.path().join("fill"))
        .output()
        .unwrap();
    let fill = json(&o);
    assert_eq!(fill["acked"], 20000, "{fill}");
    let id = fill["run_id"].as_str().unwrap().to_string();
    for reader in ["group", "audit"] {
        let o = bin()
            .args(base)
            .args(["--reader", reader, "--run-id", &id])
            .arg("--out")
            .arg(dir.path().join(reader))
            .output()
            .unwrap();
        let c = json(&o);
        assert_eq!((c["count"].as_u64(), c["recorded"].as_u64()), (Some(20000), Some(20000)), "{reader}: {c}");
    }

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
