//! The real-Kafka tier: behaviour claimed against Apache Kafka, proven on a real 3-broker cluster
//! (`scripts/kafka-cluster.sh start`, bootstrap servers in FLEETSTORM_KAFKA_BOOTSTRAP). Built only
//! with `--features kafka-tests`; `scripts/test.sh` runs it.

mod common;
#[path = "kafka/network.rs"]
mod network;
#[path = "kafka/scale.rs"]
mod scale;
#[path = "kafka/secured.rs"]
mod secured;

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

/// The same, with the brokers' metrics endpoints (FLEETSTORM_KAFKA_METRICS_URLS, which
/// `scripts/kafka-cluster.sh env` prints) scraped every second.
fn metered_profile(dir: &std::path::Path) -> std::path::PathBuf {
    let urls = std::env::var("FLEETSTORM_KAFKA_METRICS_URLS")
        .expect("FLEETSTORM_KAFKA_METRICS_URLS: eval \"$(scripts/kafka-cluster.sh env)\" (scripts/test.sh does)");
    let sources: String =
        urls.split(',').enumerate().map(|(i, u)| format!("    - {{url: \"{u}\", broker: {}}}\n", i + 1)).collect();
    write(
        dir,
        "kafka-metered.yaml",
        &format!(
            "name: local-kafka\nkind: kafka\nbootstrap_servers: {}\nconnect_timeout: 20s\nmetrics:\n  prometheus:\n{sources}",
            bootstrap()
        ),
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
# 50 ms linger, as IoT ingest runs: with librdkafka's 5 ms default, 1,500 msg/s over six
# partitions is ~1,200 tiny produce requests a second, which three JVMs sharing two cores with
# the harness cannot acknowledge in time (regression: CI run of 2026-11-28, harness saturated).
producer: {{acks: all, idempotence: true, linger: 50ms}}
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
        .arg(metered_profile(dir.path()))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = read_report(&out);
    assert_eq!(r.status, Status::Completed);
    assert_eq!(r.target.kind, "kafka");
    // Issue 14: the bytes the producers put on the wire (librdkafka's statistics) agree with the
    // bytes the brokers counted in (the JMX exporter's BytesInPerSec, integrated over the run):
    // no fewer than the records' keys and values, no more than every byte the producers sent.
    let wire = r.cost_drivers.as_ref().and_then(|c| c.produce.wire).expect("the producers' wire counters");
    let b = r.backbone.as_ref().expect("a backbone section");
    use fleetstorm::report::schema::{SourceKind, TargetMetric};
    let brokers_in: f64 = b
        .series
        .iter()
        .filter(|s| s.metric == TargetMetric::BytesIn && s.kind == SourceKind::Prometheus)
        // Each rate covers the second before its point (the first one too: the sampler scrapes
        // from before the load starts, its points only from the start).
        .map(|s| {
            let mut before = s.points.first().map_or(0.0, |p| (p[0] - 1.0).max(0.0));
            s.points.iter().map(|&[t, v]| v * (t - std::mem::replace(&mut before, t))).sum::<f64>()
        })
        .sum();
    eprintln!(
        "brokers' bytes in {brokers_in:.0}; producers' record bytes {}, bytes sent {}",
        wire.tx_record_bytes, wire.tx_bytes
    );
    assert!(
        brokers_in >= 0.95 * wire.tx_record_bytes as f64 && brokers_in <= 1.05 * wire.tx_bytes as f64,
        "brokers' bytes in {brokers_in:.0} outside [0.95 x {}, 1.05 x {}]",
        wire.tx_record_bytes,
        wire.tx_bytes
    );
    assert_eq!(r.target.brokers.len(), 3);
    let a = &r.audit.counts;
    assert!(r.audit.complete);
    assert!(a.acked >= 14_000, "acked {}", a.acked);
    assert_eq!((a.lost, a.duplicates, a.reordered), (0, 0, 0), "{a:?}");
    assert_eq!(r.consumers["sink"].consumed, a.acked);
    let p = &r.produce;
    assert_eq!(p.failed, 0);
    assert!((p.achieved_rate - p.planned_rate).abs() / p.planned_rate < 0.01);
    // The three broker JVMs share this machine's two cores with the harness, and when they are
    // slow to acknowledge, librdkafka's idempotent producer spins (see BENCHMARKS.md). The report
    // may then say the run was saturated, and must say why (regressions: CI of 2026-11-28, 4 s of
    // send lag while the host was 97% busy, which made this test red though nothing was lost; and
    // a verdict that named no cause, now one that says what was measured). What
    // may never happen is fleetstorm's own work being the bottleneck, or any other warning.
    let h = &r.harness;
    let own = h.cpu_pct_mean - h.librdkafka_cpu_pct_mean.unwrap_or(0.0);
    assert!(own < 50.0, "fleetstorm's own CPU {own:.0}% of a core: {h:?}");
    assert_eq!(h.cpu_saturated_s, 0, "{h:?}");
    let explained = |w: &String| {
        w.starts_with("HARNESS SATURATED")
            && (w.contains("other processes on this machine")
                || w.contains("went to librdkafka's threads")
                || w.contains("kept from its schedule by something other than its own work"))
    };
    let rest: Vec<&String> = r.warnings.iter().filter(|w| !explained(w)).collect();
    assert!(rest.is_empty(), "{rest:?}");
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
    let args =
        fleetstorm::cli::RunArgs { profile: Some(profile(dir.path())), ..run_args(scenario, dir.path().join("out")) };
    let exit = fleetstorm::run_scenario(&args, &fleetstorm::signals::Interrupts::default()).unwrap();
    assert_eq!(exit, Exit::Ok);
}

/// Read every record of `topic` from the beginning with a plain consumer (not the audit's code
/// path: its own JSON parsing) and count the distinct records of run `run_id`.
fn independent_count(topic: &str, run_id: &str) -> usize {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", "independent-check")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let md = consumer.fetch_metadata(Some(topic), std::time::Duration::from_secs(10)).unwrap();
    let mut tpl = TopicPartitionList::new();
    let mut ends = Vec::new();
    for p in md.topics()[0].partitions() {
        let (_, high) = consumer.fetch_watermarks(topic, p.id(), std::time::Duration::from_secs(10)).unwrap();
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning).unwrap();
        ends.push((p.id(), high));
    }
    consumer.assign(&tpl).unwrap();
    let mut distinct = std::collections::HashSet::new();
    let mut positions: std::collections::HashMap<i32, i64> = std::collections::HashMap::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while ends.iter().any(|(p, high)| positions.get(p).copied().unwrap_or(0) < *high) {
        assert!(std::time::Instant::now() < deadline, "independent read did not finish");
        if let Some(Ok(m)) = consumer.poll(std::time::Duration::from_millis(500)) {
            positions.insert(m.partition(), m.offset() + 1);
            let v: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
            if v["run"] == run_id {
                distinct.insert((v["dev"].as_str().unwrap().to_string(), v["cls"].as_u64(), v["seq"].as_u64()));
            }
        }
    }
    distinct.len()
}

fn kill_scenario(name: &str, duration: &str, restore_after: &str) -> String {
    format!(
        r#"
name: {name}
seed: 11
duration: {duration}
warmup: 3s
drain: 60s
topics:
  - {{name: {name}.tel, partitions: 6, replication: 3, config: {{min.insync.replicas: "2"}}}}
fleet:
  devices: 1500
  classes:
    - {{name: telemetry, topic: {name}.tel, rate: 1/2s, size: {{uniform: {{min: 200B, max: 600B}}}}}}
producer: {{acks: all, idempotence: true, message_timeout: 120s}}
consumers:
  - {{name: sink, members: 2, topics: [{name}.tel]}}
faults:
  - name: kill-leader
    at: 8s
    kind: broker_kill
    broker: {{leader_of: {{topic: {name}.tel, partition: 0}}}}
    restore_after: {restore_after}
"#
    )
}

#[test]
fn sigkill_of_a_partition_leader_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let name = unique("kill");
    // The brokers' own metrics must show the kill and the recovery, as gates and in the report.
    let gates =
        "gates:\n  - target.under_replicated_partitions.max >= 1\n  - target.under_replicated_partitions.last == 0\n";
    let scenario = write(dir.path(), "s.yaml", &format!("{}{gates}", kill_scenario(&name, "45s", "15s")));
    let profile = common::root().join("profiles/local-kafka.yaml");
    let out = dir.path().join("out");
    let o = bin().arg("run").arg(&scenario).arg("--profile").arg(&profile).arg("--out").arg(&out).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = read_report(&out);
    assert_eq!(r.status, Status::Completed);
    let f = &r.faults[0];
    assert_eq!((f.kind.as_str(), f.mechanism.as_str()), ("broker_kill", "process"));
    assert!(f.error.is_none(), "{:?}", f.error);
    assert!(f.actions[0].output.contains("SIGKILL sent to pid"), "{:?}", f.actions);
    assert!(f.started_s.is_some() && f.ended_s.is_some());
    let unavailable = f.unavailable.affected_partitions_s.expect("writes resumed after the kill");
    assert!(unavailable > 0.0, "{unavailable}");
    assert!(f.recovery.recovered_s.is_some(), "{:?}", f.recovery);
    // Nothing acknowledged was lost, across the kill and the restart.
    let a = &r.audit.counts;
    assert!(r.audit.complete);
    assert_eq!(a.lost, 0, "{a:?}");
    assert_eq!(a.duplicates, 0, "idempotent producer: {a:?}");
    assert_eq!(f.audit.lost, 0);
    // A plain consumer, independent of the audit, finds at least every acknowledged record.
    let distinct = independent_count(&format!("{name}.tel"), &r.run_id);
    assert!(distinct as u64 >= a.acked, "independent consumer saw {distinct}, acknowledged {}", a.acked);
    // The backbone: every broker's endpoint scraped without failure, bytes in per broker, produce
    // latency, and under-replicated partitions rising after the kill and back to 0 at the end
    // (also judged by the gates above), named in the kill's finding.
    let b = r.backbone.as_ref().expect("a backbone section");
    use fleetstorm::report::schema::{SourceKind, TargetMetric as T};
    let prom: Vec<_> = b.sources.iter().filter(|s| s.kind == SourceKind::Prometheus).collect();
    assert_eq!(prom.len(), 3, "{:?}", b.sources);
    assert!(prom.iter().all(|s| s.samples >= 30), "{:?}", b.sources);
    let brokers_with = |m: T| {
        b.series
            .iter()
            .filter(|s| s.metric == m && s.kind == SourceKind::Prometheus)
            .map(|s| s.broker)
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(brokers_with(T::BytesIn).len(), 3, "{:?}", brokers_with(T::BytesIn));
    assert!(!brokers_with(T::ProduceLatencyP99).is_empty());
    let urp = b.cluster(T::UnderReplicatedPartitions);
    let killed_at = f.started_s.unwrap();
    let peak = urp.iter().filter(|(t, _)| *t >= killed_at).map(|(_, v)| *v).fold(0.0, f64::max);
    assert!(peak >= 1.0, "URP never rose after the kill at {killed_at}: {urp:?}");
    // Back to 0 once the restarted broker caught up: the profile's `metrics.settle` keeps
    // sampling after the run until the metadata shows every partition in sync (a restart under
    // load takes 10-40 s on this 2-core machine, so the run itself often ends first).
    let restarted = f.ended_s.unwrap();
    let settle = b.settle.as_ref().expect("local-kafka.yaml waits for the cluster to settle");
    let after = settle.after_s.unwrap_or_else(|| panic!("not settled: {settle:?}; URP {urp:?}"));
    let (t_last, v_last) = urp.last().copied().unwrap();
    assert_eq!(v_last, 0.0, "{urp:?}");
    assert!(t_last > restarted && t_last >= settle.from_s, "{urp:?} {settle:?}");
    eprintln!(
        "URP peak {peak} after the kill at {killed_at:.0} s; restart done at {restarted:.0} s; every partition in sync {after:.1} s after the run (t = {:.0} s)",
        settle.from_s + after
    );
    let finding = b.findings.iter().find(|x| x.window == "fault kill-leader").expect("a finding for the kill");
    assert!(finding.moves.iter().any(|m| m.metric == T::UnderReplicatedPartitions), "{}", finding.text);
    eprintln!("{}", finding.text);
    assert!(r.gates.iter().all(|g| g.passed), "{:?}", r.gates);
    // All three brokers are back for the next test.
    let status =
        std::process::Command::new(common::root().join("scripts/kafka-cluster.sh")).arg("status").output().unwrap();
    assert!(status.status.success(), "{}", text(&status));
}

#[test]
fn a_command_mechanism_fault_works_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let name = unique("cmd");
    let script = common::root().join("scripts/kafka-cluster.sh");
    let profile = write(
        dir.path(),
        "p.yaml",
        &format!(
            "name: local-kafka-commands\nkind: kafka\nbootstrap_servers: {}\nfaults:\n  command:\n    broker_pause: {s} pause {{broker}}\n    broker_resume: {s} resume {{broker}}\n    broker_kill: {s} kill {{broker}}\n    broker_start: {s} restart {{broker}}\n    timeout: 120s\n",
            bootstrap(),
            s = script.display()
        ),
    );
    let scenario = kill_scenario(&name, "30s", "6s").replace("kind: broker_kill", "kind: broker_pause");
    let scenario = write(dir.path(), "s.yaml", &scenario);
    let out = dir.path().join("out");
    let o = bin().arg("run").arg(&scenario).arg("--profile").arg(&profile).arg("--out").arg(&out).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = read_report(&out);
    let f = &r.faults[0];
    assert_eq!((f.kind.as_str(), f.mechanism.as_str()), ("broker_pause", "command"));
    assert!(f.error.is_none(), "{:?}", f.error);
    assert_eq!(f.actions.len(), 2);
    assert!(f.actions[0].command.as_deref().unwrap().ends_with(&format!("pause {}", f.broker.unwrap())));
    assert!(f.actions[1].command.as_deref().unwrap().ends_with(&format!("resume {}", f.broker.unwrap())));
    assert!(f.actions.iter().all(|a| a.ok && a.exit_code == Some(0)), "{:?}", f.actions);
    // Restored on schedule: `restore_after` counts from the planned time, and the pause command
    // itself may take a while on a loaded machine (regression: CI 2026-11-28, 0.6 s to pause, so
    // started-to-ended was 5.4 s for a 6 s fault).
    let restored = f.ended_s.unwrap() - f.planned_at_s;
    assert!((6.0..12.0).contains(&restored), "restored {restored}s after the planned start: {f:?}");
    assert!(f.started_s.unwrap() < f.planned_restore_s.unwrap());
    assert_eq!(r.audit.counts.lost, 0);
    let status = std::process::Command::new(&script).arg("status").output().unwrap();
    assert!(status.status.success(), "{}", text(&status));
}

/// Issue 16, item 7, on a real cluster: the moment that makes the embedded cluster write a
/// retried batch twice (a leader holding requests it never answers, `tests/it/idempotence.rs`)
/// leaves no duplicate on Kafka. The leader is frozen (SIGSTOP) for 15 s, longer than the
/// producer's 3 s request timeout, so requests in flight time out and the idempotent producer
/// retries them, same producer id and sequence, to the new leader.
#[test]
fn a_paused_leader_makes_the_producer_retry_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let name = unique("retry");
    let scenario = kill_scenario(&name, "35s", "15s")
        .replace("kind: broker_kill", "kind: broker_pause")
        .replace("message_timeout: 120s}", "message_timeout: 120s, librdkafka: {request.timeout.ms: \"3000\"}}");
    let scenario = write(dir.path(), "s.yaml", &scenario);
    let out = dir.path().join("out");
    let profile = common::root().join("profiles/local-kafka.yaml");
    let o = bin().arg("run").arg(&scenario).arg("--profile").arg(&profile).arg("--out").arg(&out).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = read_report(&out);
    let f = &r.faults[0];
    assert_eq!((f.kind.as_str(), f.mechanism.as_str()), ("broker_pause", "process"));
    assert!(f.error.is_none(), "{:?}", f.error);
    // A produce request cannot stay outstanding past request.timeout.ms (3 s): a record
    // acknowledged more than 3 s after it was sent went out again after its first request timed
    // out (librdkafka retries quietly: no error event to count).
    let slowest = r.produce.latency_from_send.max_us;
    assert!(slowest > 3_000_000, "no record waited past the request timeout, so nothing was retried: {slowest} us");
    let a = &r.audit.counts;
    assert!(r.audit.complete, "{a:?}");
    assert_eq!((a.lost, a.duplicates), (0, 0), "{a:?}");
    assert_eq!(r.audit.duplicates_cause, None);
    let status =
        std::process::Command::new(common::root().join("scripts/kafka-cluster.sh")).arg("status").output().unwrap();
    assert!(status.status.success(), "{}", text(&status));
}

/// Issue 10: three shard processes of one campaign (as a Kubernetes Indexed Job runs them, the
/// index from JOB_COMPLETION_INDEX) against the real cluster: they agree on one start through the
/// control topic, send disjoint parts of the fleet that add up to the whole plan, audit their own
/// records, and only shard 0 kills a broker.
#[test]
fn three_shards_of_a_campaign_send_the_whole_plan_once_and_one_of_them_kills_a_broker() {
    let dir = tempfile::tempdir().unwrap();
    let name = unique("shards");
    let scenario = write(dir.path(), "s.yaml", &kill_scenario(&name, "35s", "8s"));
    let profile = common::root().join("profiles/local-kafka.yaml");
    let campaign = format!("it-{name}");
    let children: Vec<_> = (0..3)
        .map(|i| {
            bin()
                .arg("run")
                .arg(&scenario)
                .arg("--profile")
                .arg(&profile)
                .args(["--shards", "3", "--start-timeout", "90s"])
                .arg("--out")
                .arg(dir.path().join(format!("shard-{i}")))
                .env("JOB_COMPLETION_INDEX", i.to_string())
                .env("FLEETSTORM_CAMPAIGN", &campaign)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    for o in &outputs {
        assert_eq!(o.status.code(), Some(0), "{}", text(o));
    }
    let reports: Vec<_> = (0..3).map(|i| read_report(&dir.path().join(format!("shard-{i}")))).collect();
    let whole = {
        let o = bin().arg("plan").arg(&scenario).arg("--json").output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["total"].as_u64().unwrap()
    };
    let starts: Vec<u64> = reports.iter().map(|r| r.campaign.as_ref().unwrap().start_unix_ms).collect();
    assert!(starts.iter().all(|s| *s == starts[0]), "one agreed start: {starts:?}");
    let planned: u64 = reports.iter().map(|r| r.produce.planned).sum();
    let acked: u64 = reports.iter().map(|r| r.produce.acked).sum();
    assert_eq!(planned, whole, "the shards' plans add up to the unsharded plan");
    assert_eq!(reports[0].run_id, reports[2].run_id, "one run id across the campaign");
    for r in &reports {
        let a = &r.audit.counts;
        assert!(r.audit.complete, "{a:?}");
        assert_eq!((a.lost, a.duplicates), (0, 0), "{a:?}");
        assert!(a.other_shards > 0, "each shard saw the others' records and left them to them: {a:?}");
        let c = r.campaign.as_ref().unwrap();
        assert!(c.clock_skew_ms.is_some_and(|s| s.abs() < 1000.0), "Kafka stamps the control topic: {c:?}");
    }
    assert_eq!(reports.iter().map(|r| r.audit.counts.acked).sum::<u64>(), acked);
    // The kill came from shard 0 only, with its recovery measured there.
    assert_eq!(reports[0].faults.len(), 1);
    // Its recovery metrics are measured (whether p99 came back under its threshold before the
    // load ended depends on the host: CI on a clean clone, 2026-12-02, it had not).
    let f0 = &reports[0].faults[0];
    assert!(f0.started_s.is_some() && f0.recovery.baseline_p99_us.is_some(), "{f0:?}");
    assert!(f0.unavailable.affected_partitions_s.is_some(), "{f0:?}");
    assert!(reports[1].faults.is_empty() && reports[2].faults.is_empty());
    // An independent reader finds exactly the acknowledged records of the campaign.
    let distinct = independent_count(&format!("{name}.tel"), &reports[0].run_id);
    let attempted: u64 = reports.iter().map(|r| r.produce.attempted).sum();
    assert!(
        (acked..=attempted).contains(&(distinct as u64)),
        "independent count {distinct}: every acknowledged record, nothing not sent (acked {acked}, sent {attempted})"
    );
    // One merged report: the plan's count, the shards' sums, the fault once with its recovery.
    let merged = dir.path().join("merged");
    let o = bin().arg("merge").arg(dir.path()).arg("--out").arg(&merged).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let m = read_report(&merged);
    assert_eq!(m.produce.planned, whole);
    assert_eq!(m.produce.acked, acked);
    assert_eq!((m.audit.counts.lost, m.audit.counts.duplicates), (0, 0), "{:?}", m.audit);
    assert_eq!(m.faults.len(), 1, "the kill appears once");
    assert!(m.faults[0].recovery.baseline_p99_us.is_some(), "{:?}", m.faults[0]);
    assert!(m.faults[0].unavailable.affected_partitions_s.is_some(), "{:?}", m.faults[0]);
    let status =
        std::process::Command::new(common::root().join("scripts/kafka-cluster.sh")).arg("status").output().unwrap();
    assert!(status.status.success(), "{}", text(&status));
}

/// Issue 12 item 5: `check --compat` on Apache Kafka 4.x works for every capability (each cell an
/// actual request, checked), cleans up its scratch topics, and differs from the embedded
/// cluster's matrix where the mock falls short (replay by time, aborted transactions, the admin
/// APIs); `compare` shows the two side by side.
#[test]
fn compat_matrix_on_kafka_works_everywhere_and_differs_from_the_embedded_one() {
    use fleetstorm::report::schema::{Capability, CompatMatrix, Outcome};
    use rdkafka::consumer::{BaseConsumer, Consumer};

    let dir = tempfile::tempdir().unwrap();
    let check = |profile: &std::path::Path, out: &std::path::Path| -> CompatMatrix {
        let o =
            bin().arg("check").arg("--profile").arg(profile).arg("--compat").arg("--out").arg(out).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        serde_json::from_str(&std::fs::read_to_string(out.join("compat.json")).unwrap()).unwrap()
    };
    let (kafka_dir, embedded_dir) = (dir.path().join("kafka"), dir.path().join("embedded"));
    let kafka = check(&profile(dir.path()), &kafka_dir);
    assert!(!kafka.embedded);
    assert_eq!(kafka.cells.iter().map(|c| c.capability).collect::<Vec<_>>(), Capability::ALL);
    let not_working: Vec<String> = kafka
        .cells
        .iter()
        .filter(|c| c.outcome != Outcome::Works)
        .map(|c| format!("{}: {:?} {}", c.capability, c.outcome, c.detail))
        .collect();
    assert!(not_working.is_empty(), "{not_working:#?}");
    assert!(kafka.warnings.is_empty(), "scratch topics deleted: {:?}", kafka.warnings);

    // The scratch topics are gone (deletion propagates to every broker's metadata shortly).
    let consumer: BaseConsumer = rdkafka::ClientConfig::new().set("bootstrap.servers", bootstrap()).create().unwrap();
    assert_eq!(kafka.scratch_topics.len(), 3, "{:?}", kafka.scratch_topics);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let md = consumer.fetch_metadata(None, std::time::Duration::from_secs(10)).unwrap();
        let left: Vec<&str> =
            md.topics().iter().map(|t| t.name()).filter(|n| kafka.scratch_topics.iter().any(|s| s == n)).collect();
        if left.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "scratch topics still listed: {left:?}");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }

    let embedded = check(&common::root().join("profiles/embedded.yaml"), &embedded_dir);
    let differ: Vec<Capability> = Capability::ALL
        .into_iter()
        .filter(|&c| kafka.cell(c).map(|x| x.outcome.verdict()) != embedded.cell(c).map(|x| x.outcome.verdict()))
        .collect();
    assert!(differ.contains(&Capability::ReplayByTime), "{differ:?}");
    assert!(differ.contains(&Capability::TransactionAbort), "{differ:?}");
    assert!(differ.contains(&Capability::CreateTopics), "{differ:?}");

    let c = fleetstorm::compare::load_dirs(&[kafka_dir, embedded_dir], false).unwrap();
    let md = fleetstorm::compare::bake_off_dirs(&c, &dir.path().join("cmp")).unwrap();
    assert!(md.contains("| capability | local-kafka (kafka) | embedded (embedded) | same |"), "{md}");
    assert!(md.contains("| replay by time (ListOffsets) | works | **WRONG** | DIFFERS |"), "{md}");
}

/// The OAUTHBEARER listener (`scripts/kafka-cluster.sh start --security oauthbearer`; its bootstrap
/// list in FLEETSTORM_KAFKA_OAUTH_BOOTSTRAP, which `scripts/kafka-cluster.sh env` prints), with the
/// tokens made by fleetstorm's own `unsecured_jwt` provider rather than librdkafka's: the
/// quickstart, briefly, under the broker's ACLs for User:fleet, with a clean audit. Tokens live
/// 12 s, so librdkafka asks every client for a new one (at 80 %) during the load.
#[test]
fn quickstart_over_oauthbearer_with_fleetstorms_token_provider_loses_nothing() {
    let bootstrap = std::env::var("FLEETSTORM_KAFKA_OAUTH_BOOTSTRAP").expect(
        "FLEETSTORM_KAFKA_OAUTH_BOOTSTRAP must name the OAUTHBEARER listener: \
         scripts/kafka-cluster.sh start --security oauthbearer && eval \"$(scripts/kafka-cluster.sh env)\"",
    );
    let dir = tempfile::tempdir().unwrap();
    let name = unique("oauth");
    let quickstart = std::fs::read_to_string(root().join("scenarios/quickstart.yaml")).unwrap();
    let scenario = write(dir.path(), "s.yaml", &quickstart.replace("building.", &format!("{name}.")));
    let profile = write(
        dir.path(),
        "oauth.yaml",
        &format!(
            "name: local-kafka-oauth-fleetstorm\nkind: kafka\nbootstrap_servers: {bootstrap}\nconnect_timeout: 20s\n\
             oauthbearer:\n  unsecured_jwt: {{principal: fleet, lifetime: 12s}}\n"
        ),
    );
    let out = dir.path().join("out");
    let o = bin()
        .args(["run", "--duration", "15s"])
        .arg(&scenario)
        .arg("--profile")
        .arg(&profile)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = read_report(&out);
    assert_eq!(r.status, Status::Completed);
    assert_eq!(r.target.brokers.len(), 3);
    let a = &r.audit.counts;
    assert!(r.audit.complete, "{a:?}");
    assert!(a.acked >= 10_000, "acked {}", a.acked);
    assert_eq!((a.lost, a.duplicates, a.reordered), (0, 0, 0), "{a:?}");
    assert_eq!(r.consumers["warehouse"].consumed, a.acked);
    // Every client got its first token from us, and librdkafka asked again at 80 % of each 12 s
    // lifetime (the clients start within the first seconds; a token made 9.6 s after that is a
    // renewal). None failed.
    let t = r.target.oauthbearer.expect("the report tallies the tokens");
    eprintln!("{t}");
    assert!(t.latest_after_s > 9.6, "no token renewed during the run: {t}");
    assert_eq!(t.failed, 0, "{t}");
    // No authentication failed along the way (a refresh that failed would be counted here).
    assert!(!r.errors.keys().any(|k| k.contains("Authentication")), "{:?}", r.errors);
}
