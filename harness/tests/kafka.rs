//! The real-Kafka tier: behaviour claimed against Apache Kafka, proven on a real 3-broker cluster
//! (`scripts/kafka-cluster.sh start`, bootstrap servers in FLEETSTORM_KAFKA_BOOTSTRAP). Built only
//! with `--features kafka-tests`; `scripts/test.sh` runs it.

mod common;

use common::*;
use fleetstorm::exit::Exit;
use fleetstorm::report::Status;

fn bootstrap() -> String {
    std::env::var("FLEETSTORM_KAFKA_BOOTSTRAP")
        .expect("FLEETSTORM_KAFKA_BOOTSTRAP must name the test cluster (scripts/test.sh sets it)")
}

fn profile(dir: &std::path::Path) -> std::path::PathBuf {
    write(
        dir,
        "kafka.yaml",
        &format!("name: local-kafka\nkind: kafka\nbootstrap_servers: {}\nconnect_timeout: 20s\n", bootstrap()),
    )
}

/// A unique suffix so that every test writes fresh topics.
fn unique(name: &str) -> String {
    format!("{name}-{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis())
}

#[test]
fn baseline_on_kafka_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let name = unique("baseline");
    let scenario = write(
        dir.path(),
        "s.yaml",
        &format!(
            r#"
name: {name}
seed: 3
duration: 10s
warmup: 2s
topics:
  - name: {name}.tel
    partitions: 6
    replication: 3
    config: {{min.insync.replicas: "2"}}
fleet:
  devices: 3000
  classes:
    - {{name: telemetry, topic: {name}.tel, rate: 1/2s, size: {{uniform: {{min: 200B, max: 1KiB}}}}}}
producer: {{acks: all, idempotence: true}}
consumers:
  - {{name: sink, members: 2, topics: [{name}.tel]}}
"#
        ),
    );
    let out = dir.path().join("out");
    let o = bin()
        .arg("run")
        .arg(&scenario)
        .arg("--profile")
        .arg(profile(dir.path()))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = read_report(&out);
    assert_eq!(r.status, Status::Completed);
    assert_eq!(r.target.kind, "kafka");
    assert_eq!(r.target.brokers.len(), 3);
    let a = &r.audit.counts;
    assert!(r.audit.complete);
    assert!(a.acked >= 14_000, "acked {}", a.acked);
    assert_eq!((a.lost, a.duplicates, a.reordered), (0, 0, 0), "{a:?}");
    assert_eq!(r.consumers["sink"].consumed, a.acked);
    let p = &r.produce;
    assert_eq!(p.failed, 0);
    assert!((p.achieved_rate - p.planned_rate).abs() / p.planned_rate < 0.01);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}

#[test]
fn an_existing_topic_that_differs_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let name = unique("mismatch");
    let scenario = |partitions: u32, retention: &str| {
        format!(
            "name: {name}\nseed: 1\nduration: 2s\ntopics:\n  - {{name: {name}.t, partitions: {partitions}, replication: 3, config: {{retention.ms: \"{retention}\"}}}}\nfleet:\n  devices: 10\n  classes:\n    - {{name: a, topic: {name}.t, rate: 1/1s}}\n"
        )
    };
    let first = write(dir.path(), "a.yaml", &scenario(3, "3600000"));
    let o = bin()
        .arg("run")
        .arg(&first)
        .arg("--profile")
        .arg(profile(dir.path()))
        .arg("--out")
        .arg(dir.path().join("a"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let second = write(dir.path(), "b.yaml", &scenario(6, "7200000"));
    let o = bin()
        .arg("run")
        .arg(&second)
        .arg("--profile")
        .arg(profile(dir.path()))
        .arg("--out")
        .arg(dir.path().join("b"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = read_report(&dir.path().join("b"));
    let w = r.warnings.join("\n");
    assert!(w.contains("exists with 3 partitions, the scenario declares 6"), "{w}");
    assert!(w.contains("exists with retention.ms=3600000, the scenario declares 7200000"), "{w}");
    assert_eq!(r.audit.counts.lost, 0);
}

#[test]
fn run_exit_code_is_ok_on_kafka() {
    // The library entry point against Kafka, as tests of downstream tools would call it.
    let dir = tempfile::tempdir().unwrap();
    let name = unique("lib");
    let scenario =
        write(dir.path(), "s.yaml", &small_scenario(&name, 500, "4s").replace("replication: 1", "replication: 3"));
    let args = fleetstorm::cli::RunArgs {
        scenario,
        profile: Some(profile(dir.path())),
        out: Some(dir.path().join("out")),
        duration: None,
        seed: None,
    };
    let exit = fleetstorm::run_scenario(&args, &fleetstorm::signals::Interrupts::default()).unwrap();
    assert_eq!(exit, Exit::Ok);
}
