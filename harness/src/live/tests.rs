use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::*;
use crate::recorder::{Hist, LiveCounters};

fn text(id: &Identity, live: Arc<LiveCounters>) -> String {
    let r = registry(id, live, vec!["telemetry".into()], vec!["sink".into()], Arc::new(AtomicU64::new(7)));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &r).unwrap();
    out
}

#[test]
fn encodes_counters_histograms_and_the_identity() {
    let live = Arc::new(LiveCounters::new(1, 1));
    live.classes[0].sent.store(10, Ordering::Relaxed);
    live.classes[0].acked.store(9, Ordering::Relaxed);
    let mut h = Hist::template().unwrap();
    for us in [400, 1_500, 1_500, 90_000_000] {
        h.record(us);
    }
    live.classes[0].ack_latency.add(&h);
    live.groups[0].lag.store(42, Ordering::Relaxed);
    let id = Identity {
        run_id: "00000000000000ab".into(),
        scenario: "smoke".into(),
        profile: "embedded".into(),
        target_kind: "embedded".into(),
        shard: Some("1/3".into()),
    };
    let t = text(&id, live);
    for line in [
        "fleetstorm_events_planned_total{shard=\"1/3\"} 7",
        "fleetstorm_records_sent_total{shard=\"1/3\",class=\"telemetry\"} 10",
        "fleetstorm_records_acked_total{shard=\"1/3\",class=\"telemetry\"} 9",
        "fleetstorm_ack_latency_seconds_bucket{shard=\"1/3\",le=\"0.0005\",class=\"telemetry\"} 1",
        "fleetstorm_ack_latency_seconds_bucket{shard=\"1/3\",le=\"0.002\",class=\"telemetry\"} 3",
        "fleetstorm_ack_latency_seconds_bucket{shard=\"1/3\",le=\"60.0\",class=\"telemetry\"} 3",
        "fleetstorm_ack_latency_seconds_bucket{shard=\"1/3\",le=\"+Inf\",class=\"telemetry\"} 4",
        "fleetstorm_ack_latency_seconds_count{shard=\"1/3\",class=\"telemetry\"} 4",
        "fleetstorm_consumer_lag_records{shard=\"1/3\",group=\"sink\"} 42",
        "# TYPE fleetstorm_consumer_e2e_latency_seconds histogram",
        "# UNIT fleetstorm_consumer_e2e_latency_seconds seconds",
    ] {
        assert!(t.lines().any(|l| l == line), "no `{line}` in\n{t}");
    }
    assert!(t.contains("fleetstorm_run_info{shard=\"1/3\",run_id=\"00000000000000ab\",scenario=\"smoke\""), "{t}");
    assert!(t.ends_with("# EOF\n"));
}

#[test]
fn an_unsharded_run_has_no_shard_label() {
    let t = text(&Identity::default(), Arc::new(LiveCounters::new(1, 0)));
    assert!(!t.contains("shard="), "{t}");
    assert!(t.lines().any(|l| l == "fleetstorm_records_sent_total{class=\"telemetry\"} 0"), "{t}");
}

#[test]
fn bad_addresses_and_ports_in_use_are_told_apart() {
    for bad in ["9464", ":9464", "127.0.0.1:http", "127.0.0.1:70000", "no-such-host.invalid:9464"] {
        assert!(matches!(bind(bad), Err(LiveError::BadAddress { .. })), "{bad}");
    }
    let taken = bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let e = bind(&addr).unwrap_err();
    assert!(matches!(e, LiveError::Bind { .. }), "{e}");
    assert!(e.to_string().contains(&addr), "{e}");
}
