//! A crafted report with every section filled in, for the tests of what is drawn from a report
//! (summary, HTML, tables, comparisons). Built from values, not from a run, so that each test
//! can change the one figure it is about.

use std::collections::BTreeMap;

use super::faults::FaultReport;
use super::gates::GateResult;
use super::shapes::{ReplayReport, RestartReport, SlowdownReport, WaveReport};
use super::{
    AuditReport, ClassReport, DeadLetterReport, GroupReport, HarnessReport, ProduceReport, Report, SCHEMA_VERSION,
    ScenarioInfo, Status, TargetInfo, VersionReport,
};
use crate::report::schema::AuditCounts;
use crate::report::schema::LatencySummary;

/// A latency summary whose quantiles double from `p50_us` on.
pub fn lat(p50_us: u64) -> LatencySummary {
    LatencySummary {
        count: 1_000,
        min_us: p50_us / 2,
        mean_us: p50_us as f64 * 1.5,
        p50_us,
        p90_us: p50_us * 2,
        p99_us: p50_us * 4,
        p999_us: p50_us * 8,
        max_us: p50_us * 16,
        clamped: 0,
    }
}

/// A completed run on `profile` with gates, a group, the audit, firmware, a wave, two faults
/// (one not performed), errors and the harness's own figures.
pub fn report(profile: &str) -> Report {
    let definition = serde_json::from_value(serde_json::json!({
        "name": "fixture",
        "seed": 7,
        "duration": "60s",
        "topics": [{"name": "t"}],
        "fleet": {"devices": 1500, "classes": [{"name": "tel", "topic": "t", "rate": "1/1s"}]},
    }))
    .expect("the fixture scenario deserializes");
    let sink = GroupReport {
        group_id: "fleetstorm-sink".into(),
        members: 2,
        topics: vec!["t".into()],
        consumed: 89_990,
        rereads: 12,
        msgs_per_s: 1_498.7,
        e2e_latency: lat(2_000),
        event_age: lat(5_000),
        max_lag: 1_234,
        final_lag: 3,
        assignments: 2,
        revocations: 1,
        replays: vec![ReplayReport { at_s: 30.0, to: "earliest".into(), records_back: 40_000, ..Default::default() }],
        slowdowns: vec![SlowdownReport { at_s: 20.0, for_s: 5.0, kind: "slow".into(), ..Default::default() }],
        restarts: vec![RestartReport { at_s: 40.0, rebalance_s: Some(3.2), rereads: 12, ..Default::default() }],
        dead_letter: Some(DeadLetterReport { topic: "t.dlq".into(), routed: 4, acked: 4, failed: 0 }),
        ..Default::default()
    };
    let mut kill = FaultReport {
        name: "kill".into(),
        kind: "broker_kill".into(),
        broker: Some(2),
        mechanism: "embedded".into(),
        started_s: Some(10.0),
        ended_s: Some(20.0),
        ..Default::default()
    };
    kill.unavailable.affected_partitions_s = Some(1.5);
    kill.recovery.recovered_s = Some(4.25);
    kill.throughput.dip_pct = 35.2;
    kill.audit.lost = 2;
    let pause = FaultReport {
        name: "pause".into(),
        kind: "broker_pause".into(),
        mechanism: "process".into(),
        error: Some("no pid file for broker 3".into()),
        ..Default::default()
    };
    Report {
        schema_version: SCHEMA_VERSION,
        fleetstorm_version: "0.1.0".into(),
        run_id: "run-1".into(),
        status: Status::Completed,
        stopped_by: None,
        campaign: None,
        merged: None,
        status_reason: None,
        scenario: ScenarioInfo {
            name: "fixture".into(),
            description: Some("a crafted report".into()),
            file: "scenarios/fixture.yaml".into(),
            fingerprint: "0123456789abcdef0123".into(),
            seed: 7,
            duration_s: 60.0,
            warmup_s: 5.0,
            devices: 1_500,
            definition,
        },
        target: TargetInfo {
            profile: profile.into(),
            kind: "embedded".into(),
            bootstrap_servers: "127.0.0.1:9092".into(),
            brokers: vec![1, 2, 3],
            librdkafka: BTreeMap::from([("linger.ms".to_string(), "5".to_string())]),
            oauthbearer: None,
        },
        started_at: "2026-12-01T10:00:00Z".into(),
        ended_at: "2026-12-01T10:01:10Z".into(),
        load_s: 60.0,
        measured_s: 55.0,
        elapsed_s: 70.0,
        clock: "monotonic".into(),
        warnings: vec!["the embedded cluster may have dropped records".into()],
        harness: HarnessReport {
            cores: 2,
            cpu_pct_mean: 40.0,
            cpu_pct_peak: 80.0,
            librdkafka_cpu_pct_mean: Some(10.0),
            rss_mib_peak: 120.0,
            host_cpu_pct_mean: 55.0,
            ..Default::default()
        },
        max_rate: None,
        gates: vec![
            GateResult {
                name: "audit.lost == 0".into(),
                gate: "audit.lost == 0".into(),
                threshold: "0".into(),
                value: "0".into(),
                passed: true,
                ..Default::default()
            },
            GateResult {
                name: "fast".into(),
                gate: "produce.latency.p99 < 1us".into(),
                threshold: "1us".into(),
                value: "4.0ms".into(),
                passed: false,
                detail: "failed: 4.0ms is not < 1us".into(),
                abort_on_fail: false,
            },
        ],
        errors: BTreeMap::from([("MessageTimedOut".to_string(), 3)]),
        produce: ProduceReport {
            planned: 90_000,
            attempted: 89_973,
            acked: 89_970,
            failed: 3,
            planned_rate: 1_500.0,
            nominal_rate: 1_500.0,
            achieved_rate: 1_499.5,
            msgs_per_s: 1_499.0,
            bytes_per_s: 450_000.0,
            latency_from_intended: lat(1_000),
            latency_from_send: lat(900),
            send_lag: lat(50),
            classes: BTreeMap::from([(
                "tel".to_string(),
                ClassReport { topic: "t".into(), latency_from_intended: lat(1_000), ..Default::default() },
            )]),
            versions: BTreeMap::from([
                ("1.0".to_string(), VersionReport { attempted: 60_000, acked: 59_998, acked_bytes: 0, share: 0.667 }),
                ("2.0".to_string(), VersionReport { attempted: 29_973, acked: 29_972, acked_bytes: 0, share: 0.333 }),
            ]),
            ..Default::default()
        },
        consumers: BTreeMap::from([("sink".to_string(), sink)]),
        audit: AuditReport {
            enabled: true,
            counts: AuditCounts {
                acked: 89_970,
                seen: 89_968,
                lost: 2,
                duplicates: 1,
                lost_examples: vec!["tel/12#3".into(), "tel/40#7".into()],
                ..Default::default()
            },
            complete: true,
            drain_s: 1.0,
            duplicates_cause: Some(super::DuplicateCause::EmbeddedCluster),
        },
        faults: vec![kill, pause],
        waves: vec![WaveReport {
            name: "storm".into(),
            occurrence: 0,
            start_s: 30.0,
            offline_until_s: 40.0,
            reconnect_until_s: 45.0,
            flush_end_s: Some(48.5),
            streams: 600,
            buffered: 6_000,
            dropped: 10,
            unsent: 5,
            baseline_sent_per_s: 1_500.0,
            peak_sent_per_s: 4_200,
            peak_ratio: Some(2.8),
            ..Default::default()
        }],
        partitions: Some(partitions()),
        spectra: BTreeMap::new(),
        timeline: Vec::new(),
        cost_drivers: None,
        backbone: None,
        cost: Vec::new(),
    }
}

/// Topic `t`'s 12 partitions, partition 7 hot (about a third of the records) and slower.
pub fn partitions() -> crate::report::schema::Partitions {
    use crate::report::schema::{PartitionLine, Partitions, TopicPartitions};
    let lines: Vec<PartitionLine> = (0..12)
        .map(|p| {
            let acked = if p == 7 { 30_000 } else { 5_000 };
            PartitionLine {
                partition: p,
                acked,
                per_s: acked as f64 / 58.0,
                share: acked as f64 / 85_000.0,
                p50_us: if p == 7 { 9_000 } else { 2_000 },
                p99_us: if p == 7 { 41_000 } else { 8_000 },
            }
        })
        .collect();
    let topic = TopicPartitions {
        partitions: 12,
        all_tracked: true,
        acked: 85_000,
        per_s: 1_465.5,
        even_share: 0.0833,
        hottest: vec![7, 0],
        hottest_share: 0.4118,
        hottest_p99_us: Some(40_000),
        rest_p99_us: Some(8_100),
        lines,
    };
    Partitions {
        tracked_limit: 256,
        untracked_partitions: 0,
        untracked_acked: 0,
        topics: BTreeMap::from([("t".to_string(), topic)]),
        note: None,
    }
}

/// A run priced under two pricing files (`run --pricing`): `ec2` with four lines, `msk` with one.
pub fn priced() -> Vec<crate::report::schema::CostEstimate> {
    use crate::report::schema::{CostDriver, CostEstimate, CostLine, CostLineEstimate, CostShare};
    let line = |line: CostLine, monthly: f64, drivers: Vec<(CostDriver, f64)>| CostLineEstimate {
        line,
        hourly: monthly / 730.0,
        monthly,
        drivers: drivers.into_iter().map(|(driver, share)| CostShare { driver, share }).collect(),
    };
    let est = |name: &str, lines: Vec<CostLineEstimate>| CostEstimate {
        pricing: name.into(),
        file: format!("pricing/{name}.yaml"),
        currency: "USD".into(),
        hourly: lines.iter().map(|l| l.hourly).sum(),
        monthly: lines.iter().map(|l| l.monthly).sum(),
        lines,
    };
    vec![
        est(
            "ec2",
            vec![
                line(CostLine::Compute, 357.41, vec![(CostDriver::Sizing, 1.0)]),
                line(CostLine::Storage, 12.0, vec![(CostDriver::Retention("telemetry".into()), 1.0)]),
                line(
                    CostLine::CrossZone,
                    1_200.0,
                    vec![
                        (CostDriver::Replay("analytics".into()), 0.38),
                        (CostDriver::Replication("telemetry".into()), 0.34),
                        (CostDriver::Live("sink".into()), 0.28),
                    ],
                ),
                line(CostLine::Fixed, 91.1, vec![(CostDriver::Fixed("KRaft controllers".into()), 1.0)]),
            ],
        ),
        est("msk", vec![line(CostLine::Compute, 600.0, vec![(CostDriver::Sizing, 1.0)])]),
    ]
}
