//! Cost drivers and `fleetstorm cost` on the embedded cluster: the wire counters a run reports
//! agree with librdkafka's statistics and with fleetstorm's own count of what it produced; a run
//! prices line by line; a malformed pricing file is exit 2 with file:line:col; `compare` shows a
//! run priced under two files side by side.

use crate::common;

use common::*;
use fleetstorm::exit::Exit;
use fleetstorm::report::Status;
use fleetstorm::signals::Interrupts;

/// Keys are `dev-NNNNN`: 9 bytes each, so the records' key bytes are known exactly.
const KEY_BYTES: u64 = 9;

fn scenario(name: &str) -> String {
    format!(
        r#"
name: {name}
seed: 11
duration: 6s
warmup: 1s
drain: 20s
topics:
  - {{name: {name}.tel, partitions: 6, replication: 3, config: {{retention.ms: "86400000"}}}}
  - {{name: {name}.hb, partitions: 3, replication: 2}}
fleet:
  devices: 2000
  id_pattern: "dev-{{n:05}}"
  classes:
    - name: telemetry
      topic: {name}.tel
      rate: 1/2s
      size: {{uniform: {{min: 300B, max: 900B}}}}
    - name: heartbeat
      topic: {name}.hb
      rate: 1/4s
      format: binary
      size: 64B
producer: {{acks: all, linger: 5ms, compression: lz4, idempotence: true}}
consumers:
  - name: sink
    members: 1
    topics: [{name}.tel, {name}.hb]
  - name: analytics
    members: 1
    topics: [{name}.tel]
    replays: [{{at: 4s, to: earliest}}]
"#
    )
}

/// One short run, shared by the tests below (each priced differently).
fn run_once(dir: &std::path::Path) -> std::path::PathBuf {
    let s = write(dir, "s.yaml", &scenario("cost"));
    let out = dir.join("run");
    let args = run_args(s, out.clone());
    let exit = fleetstorm::run_scenario(&args, &Interrupts::default()).unwrap();
    assert_eq!(exit, Exit::Ok);
    out
}

#[test]
fn wire_bytes_agree_with_librdkafkas_statistics_and_the_run_prices_line_by_line() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let out = run_once(dir.path());
    let r = read_report(&out);
    assert_eq!(r.status, Status::Completed);
    assert_eq!(r.produce.failed, 0);
    assert_eq!(r.produce.purged, 0);
    let d = r.cost_drivers.as_ref().expect("every report that reached its load has cost drivers");
    let wire = d.produce.wire.expect("statistics are on for producers");
    // librdkafka's record bytes (keys + values, before compression) against fleetstorm's own
    // count of the acknowledged records' values plus their 9-byte keys. Exact unless librdkafka
    // sent a batch twice (a retry counts again in its statistics, once in ours): no fault here,
    // so no retry is expected; the tolerance of 0.5 % only keeps one retried batch from failing
    // the test while any systematic gap (a lost last interval is ~1/6 of this run) fails it.
    let ours = d.produce.value_bytes + r.produce.acked * KEY_BYTES;
    let theirs = wire.tx_record_bytes;
    let gap = (theirs as f64 - ours as f64).abs() / ours as f64;
    assert!(gap <= 0.005, "librdkafka txmsg_bytes {theirs} against fleetstorm's {ours} ({:.3} %)", gap * 100.0);
    // The socket carries those records compressed (lz4) plus the protocol: neither zero nor the
    // raw record bytes.
    assert!(wire.tx_bytes > 0 && wire.tx_bytes != theirs, "{wire:?}");
    assert!(wire.tx_requests > 0 && wire.rx_responses > 0, "{wire:?}");
    // Classes split the wire bytes by value bytes and add up to them (to rounding).
    let split: u64 = d.produce.classes.values().filter_map(|c| c.wire_bytes).sum();
    assert!(wire.tx_bytes - split < d.produce.classes.len() as u64, "{split} of {}", wire.tx_bytes);
    // The replaying group re-read records; the live group did not.
    let analytics = &d.groups["analytics"];
    assert!(analytics.reread_value_bytes > 0, "{analytics:?}");
    assert_eq!(d.groups["sink"].reread_value_bytes, 0);
    assert!(analytics.wire.is_some_and(|w| w.rx_bytes > 0));
    // Replication and retention from the scenario's topics.
    let tel = &d.topics["cost.tel"];
    assert_eq!(tel.replication_bytes, tel.ingress_wire_bytes.map(|b| b * 2));
    assert!(tel.retained_bytes.is_some() && d.topics["cost.hb"].retained_bytes.is_none());
    // The statistics' overhead is in the report: callbacks served and the time spent reading them.
    assert!(d.stats_callbacks >= 6, "{d:?}");
    eprintln!(
        "statistics: {} callbacks, {:.2} ms parsing over {:.1} s; wire {wire:?}; ours {ours}",
        d.stats_callbacks, d.stats_parse_ms, d.basis_s
    );

    // Priced under two files, line by line.
    let o = bin()
        .args(["cost"])
        .arg(&out)
        .arg("--pricing")
        .arg(root().join("pricing/self-managed-kafka-ec2.yaml"))
        .arg(root().join("pricing/shared-storage-s3.yaml"))
        .output()
        .unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    for needle in [
        "self-managed-kafka-ec2",
        "shared-storage-s3",
        "`compute`",
        "`cross_zone`",
        "`storage`",
        "`object_requests`",
        "replay by analytics",
        "replication of telemetry",
    ] {
        assert!(t.contains(needle), "`{needle}` missing from:\n{t}");
    }
    let cost = fleetstorm::cost::read(&out).unwrap().expect("cost.json written");
    assert_eq!(cost.priced.len(), 2);
    // The same measured traffic costs the same compute under both (same sizing and instance
    // price), and only the broker-disk model pays replication across zones.
    assert!(cost.priced.iter().all(|p| p.monthly > 0.0));
    let replication = |i: usize| {
        cost.priced[i].line(fleetstorm::cost::Line::CrossZone).map_or(0, |l| {
            l.parts.iter().filter(|p| matches!(p.driver, fleetstorm::cost::model::Driver::Replication(_))).count()
        })
    };
    assert_eq!((replication(0), replication(1)), (2, 0));

    // compare: the run priced under two files, side by side (the same run twice, each with its
    // own cost.json, is what a bake-off of one workload under two operating models looks like).
    let other = dir.path().join("run-b");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(out.join("report.json"), other.join("report.json")).unwrap();
    let o = bin()
        .args(["cost"])
        .arg(&other)
        .arg("--pricing")
        .arg(root().join("pricing/managed-kafka-msk.yaml"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let cmp = dir.path().join("cmp");
    let o = bin().args(["compare"]).arg(&out).arg(&other).arg("--out").arg(&cmp).output().unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    let md = std::fs::read_to_string(cmp.join("compare.md")).unwrap();
    assert!(md.contains("## Cost"), "{md}");
    for needle in ["self-managed-kafka-ec2", "shared-storage-s3", "managed-kafka-msk", "p99"] {
        assert!(md.contains(needle), "`{needle}` missing from compare.md:\n{md}");
    }
}

#[test]
fn malformed_or_missing_pricing_is_exit_2_with_file_line_col() {
    let dir = tempfile::tempdir().unwrap();
    // A report is not even needed to refuse a bad pricing file: it is read first.
    let good = std::fs::read_to_string(root().join("pricing/managed-kafka-msk.yaml")).unwrap();
    let bad = good.replacen("    price: 0.204", "    price: twenty cents", 1);
    let line = bad.lines().position(|l| l.contains("twenty cents")).unwrap() + 1;
    let p = write(dir.path(), "bad.yaml", &bad);
    let o = bin().args(["cost"]).arg(dir.path()).arg("--pricing").arg(&p).output().unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains(&format!("bad.yaml:{line}:12: prices.instance_hour.price")), "{t}");
    // A missing price is named, never taken as zero.
    let missing = good.replace("  egress_gb:\n    price: 0.09\n", "  egress_gb:\n");
    let p = write(dir.path(), "missing.yaml", &missing);
    let o = bin().args(["cost"]).arg(dir.path()).arg("--pricing").arg(&p).output().unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("missing.yaml:") && t.contains("prices.egress_gb") && t.contains("price"), "{t}");
    // A directory without a report is bad input too.
    let o = bin()
        .args(["cost"])
        .arg(dir.path())
        .arg("--pricing")
        .arg(root().join("pricing/managed-kafka-msk.yaml"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

/// `run --pricing`: a short priced run judges its cost gates, writes cost.json and cost.md beside
/// the report, prints the monthly totals on stderr and shows the cost table in the summary.
#[test]
fn a_run_with_pricing_is_priced_and_its_cost_gates_judged() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let s = scenario("priced")
        .replace("duration: 6s", "duration: 3s")
        .replace("devices: 2000", "devices: 500")
        .replace("at: 4s", "at: 2s")
        + "gates:\n  - cost.monthly < 1M\n  - cost[managed-kafka-msk].monthly.transfer < 1k\n  - {name: too-cheap, gate: \"cost.hourly.compute < 0.01\"}\n";
    let s = write(dir.path(), "s.yaml", &s);
    let out = dir.path().join("run");
    let o = bin()
        .arg("run")
        .arg(&s)
        .arg("--out")
        .arg(&out)
        .arg("--pricing")
        .arg(root().join("pricing/self-managed-kafka-ec2.yaml"))
        .arg(root().join("pricing/managed-kafka-msk.yaml"))
        .output()
        .unwrap();
    let t = text(&o);
    // The compute line alone costs more than a cent an hour: the third gate fails, exit 1.
    assert_eq!(o.status.code(), Some(1), "{t}");
    let stderr = String::from_utf8_lossy(&o.stderr);
    for name in ["self-managed-kafka-ec2", "managed-kafka-msk"] {
        assert!(stderr.contains(&format!("cost: {name}: ")) && stderr.contains("USD per month"), "{stderr}");
    }
    let r = read_report(&out);
    assert_eq!(r.cost.len(), 2);
    let passed: Vec<(&str, bool)> = r.gates.iter().map(|g| (g.name.as_str(), g.passed)).collect();
    assert_eq!(
        passed,
        [("cost.monthly < 1M", true), ("cost[managed-kafka-msk].monthly.transfer < 1k", true), ("too-cheap", false)],
        "{:?}",
        r.gates
    );
    assert!(
        r.gates[0].value.contains("self-managed-kafka-ec2 (USD): ")
            && r.gates[0].value.contains("managed-kafka-msk (USD): ")
    );
    // The same figures as `fleetstorm cost` writes: cost.json's totals are the report's.
    let cost = fleetstorm::cost::read(&out).unwrap().expect("cost.json beside the report");
    assert_eq!(
        cost.priced.iter().map(|p| p.monthly).collect::<Vec<_>>(),
        r.cost.iter().map(|e| e.monthly).collect::<Vec<_>>()
    );
    assert!(out.join("cost.md").exists());
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("## Cost (estimate)") && md.contains("`managed-kafka-msk`"), "{md}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<h2 id=\"cost\">Cost (estimate)</h2>"), "{html}");
}

#[test]
fn bad_pricing_or_a_cost_gate_without_pricing_is_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let s = write(
        dir.path(),
        "s.yaml",
        &(scenario("unpriced") + "gates:\n  - audit.lost == 0\n  - cost.monthly < 12000\n"),
    );
    let gate_line = std::fs::read_to_string(&s).unwrap().lines().position(|l| l.contains("cost.monthly")).unwrap() + 1;
    let out = dir.path().join("run");
    // A cost gate and no --pricing: exit 2, located at the gate, nothing run.
    let o = bin().arg("run").arg(&s).arg("--out").arg(&out).output().unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains(&format!("s.yaml:{gate_line}:")) && t.contains("gates[1]") && t.contains("--pricing"), "{t}");
    assert!(!out.join("report.json").exists(), "{t}");
    // `cost[NAME]` must name one of the pricing files given.
    let named = write(dir.path(), "g.yaml", "gates:\n  - cost[nope].monthly < 1\n");
    let o = bin()
        .arg("run")
        .arg(&s)
        .arg("--out")
        .arg(&out)
        .arg("--gates")
        .arg(&named)
        .arg("--pricing")
        .arg(root().join("pricing/managed-kafka-msk.yaml"))
        .output()
        .unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("g.yaml:2:") && t.contains("pricing `nope`") && t.contains("`managed-kafka-msk`"), "{t}");
    // A malformed pricing file: exit 2 with file:line:col, before the run.
    let good = std::fs::read_to_string(root().join("pricing/managed-kafka-msk.yaml")).unwrap();
    let p = write(dir.path(), "bad.yaml", &good.replacen("    price: 0.204", "    price: twenty cents", 1));
    let o = bin().arg("run").arg(&s).arg("--out").arg(&out).arg("--pricing").arg(&p).output().unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("bad.yaml:") && t.contains("prices.instance_hour.price"), "{t}");
    assert!(!out.join("report.json").exists(), "{t}");
}
