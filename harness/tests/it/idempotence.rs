//! Issue 16, item 7: an unexplained duplicate. `readiness.yaml` on the embedded cluster once
//! reported `duplicates 1` with the idempotent producer on, around a broker kill. These tests
//! find whose it is, from the bottom up:
//!
//! 1. librdkafka alone (no fleetstorm code): an idempotent producer and the embedded cluster
//!    (librdkafka's mock), a produce request whose response is held back by a round-trip time,
//!    the leader taken down before the response leaves. The producer retries the batch with the
//!    same producer id and sequence, as it must, and the mock writes it again: it checks sequence
//!    numbers only for transactional producers (`rd_kafka_mock_validate_records` returns early
//!    without a transactional id). So the duplicate is the embedded cluster's.
//! 2. The same moment through fleetstorm (a latency fault on the leader with a kill inside it):
//!    the audit counts the copies at distinct offsets and the report names the embedded cluster
//!    as their cause.
//!
//! On a real Kafka cluster the same kill of a leader with requests in flight leaves no duplicate:
//! `tests/kafka.rs`, `sigkill_of_a_partition_leader_loses_no_acknowledged_record` and
//! `a_paused_leader_makes_the_producer_retry_without_duplicates`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use crate::common::*;
use fleetstorm::report::DuplicateCause;
use fleetstorm::signals::Interrupts;

/// Every record of partition 0 of `topic`, by payload: how many copies the log holds.
fn copies(bootstrap: &str, topic: &str) -> HashMap<String, usize> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "copies")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let (_, high) = consumer.fetch_watermarks(topic, 0, Duration::from_secs(10)).unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning).unwrap();
    consumer.assign(&tpl).unwrap();
    let mut n = HashMap::new();
    let mut next = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while next < high {
        assert!(Instant::now() < deadline, "read {next} of {high}");
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            if m.offset() < next {
                continue; // a re-read by this reader, not a copy in the log
            }
            next = m.offset() + 1;
            *n.entry(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned()).or_insert(0) += 1;
        }
    }
    n
}

#[test]
fn embedded_cluster_writes_an_idempotent_retry_again_when_its_response_was_lost() {
    let _g = serial();
    let mock = MockCluster::new(3).unwrap();
    mock.create_topic("t", 1, 3).unwrap();
    mock.partition_leader("t", 0, Some(1)).unwrap();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", mock.bootstrap_servers())
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "0")
        .create()
        .unwrap();
    // The producer has its id and the partition's leader before the moment that matters.
    producer.send(BaseRecord::to("t").key("k").payload("first")).unwrap();
    producer.flush(Duration::from_secs(10)).unwrap();

    // Responses from broker 1 now leave 2 s after their request arrived; the records themselves
    // are written at once.
    mock.broker_round_trip_time(1, Duration::from_secs(2)).unwrap();
    for i in 0..20 {
        producer.send(BaseRecord::to("t").key("k").payload(&format!("r{i}"))).unwrap();
        producer.poll(Duration::from_millis(10));
    }
    producer.poll(Duration::from_millis(300));
    // The leader dies with its responses unsent; leadership moves to broker 2.
    mock.broker_down(1).unwrap();
    mock.partition_leader("t", 0, Some(2)).unwrap();
    mock.broker_round_trip_time(1, Duration::ZERO).unwrap();
    producer.flush(Duration::from_secs(30)).unwrap();
    mock.broker_up(1).unwrap();

    let n = copies(&mock.bootstrap_servers(), "t");
    for i in 0..20 {
        assert!(n.get(&format!("r{i}")).copied().unwrap_or(0) >= 1, "r{i} missing: {n:?}");
    }
    let extra: usize = n.values().map(|c| c - 1).sum();
    assert!(
        extra > 0,
        "the embedded cluster deduplicated the idempotent retry: if a newer librdkafka's mock checks \
         sequences for idempotent producers too, DuplicateCause::EmbeddedCluster is no longer needed: {n:?}"
    );
}

#[test]
fn a_kill_inside_a_latency_fault_on_the_embedded_cluster_is_reported_as_the_clusters_duplicates() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(
        dir.path(),
        "s.yaml",
        r#"
name: idempotent-retry
seed: 5
duration: 12s
warmup: 1s
drain: 30s
topics: [{name: dup.t, partitions: 3, replication: 3}]
fleet:
  devices: 300
  classes: [{name: tel, topic: dup.t, rate: 4/s, size: 300B}]
producer: {acks: all, idempotence: true, linger: 0ms, message_timeout: 60s}
faults:
  - {name: slow, at: 3s, kind: latency, latency: 1s, broker: {leader_of: {topic: dup.t, partition: 0}}, restore_after: 6s}
  - {name: kill, at: 5s, kind: broker_kill, broker: {leader_of: {topic: dup.t, partition: 0}}, restore_after: 2s}
"#,
    );
    let out = dir.path().join("out");
    let args = run_args(scenario, out.clone());
    fleetstorm::run_scenario(&args, &Interrupts::default()).unwrap();
    let r = read_report(&out);
    let a = &r.audit;
    assert_eq!(a.counts.lost, 0, "{a:?}");
    assert!(a.counts.duplicates > 0, "no retry was written twice this time: {a:?}");
    assert_eq!(a.duplicates_cause, Some(DuplicateCause::EmbeddedCluster), "{a:?}");
    assert!(a.counts.duplicate_examples[0].contains(" at dup.t["), "{:?}", a.counts.duplicate_examples);
    assert!(
        r.warnings.iter().any(|w| w.contains("checks sequence numbers only for transactional")),
        "{:?}",
        r.warnings
    );
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("checks sequence numbers only for transactional"), "{summary}");
}
