//! Assembling a run's report: pure functions from what the run knew before its load and one
//! bundle of measurements ([`Load`]) to a [`Report`]. The run's lifecycle (`run.rs`) collects the
//! measurements; everything computed from them happens here, so it can be tested on crafted input.

use std::collections::BTreeMap;
use std::time::SystemTime;

use super::schema::RebalanceEvent;
use super::{
    AuditReport, ClassReport, GroupReport, ProduceReport, Report, SCHEMA_VERSION, ScenarioInfo, Status, StopCause,
    TargetInfo,
};
use crate::config::profile::Redactor;
use crate::config::scenario::Scenario;
use crate::driver::stats::Measured;
use crate::driver::{consumer, producer};
use crate::faults::FaultRun;
use crate::plan::Plan;
use crate::recorder::Recording;
use crate::report::schema::{AuditCounts, AuditPoint, RebalanceKind};

/// What is known of a run before any measurement.
pub struct RunInfo<'a> {
    pub scenario: &'a Scenario,
    pub scenario_file: &'a str,
    pub fingerprint: &'a str,
    pub run_id: u64,
    pub started: SystemTime,
    pub elapsed_s: f64,
    pub warnings: &'a [String],
    pub target: TargetInfo,
    /// Set when the run is one shard of a campaign.
    pub campaign: Option<super::CampaignInfo>,
    /// How `producer.instances: auto` was resolved, if it was.
    pub instances_why: Option<&'a str>,
}

/// How a run ended: its status, what stopped it early (if anything) and why, in words.
#[derive(Clone, Debug, PartialEq)]
pub struct Ending {
    pub status: Status,
    pub cause: Option<StopCause>,
    pub reason: Option<String>,
}

impl Ending {
    pub fn completed() -> Self {
        Ending { status: Status::Completed, cause: None, reason: None }
    }

    pub fn stopped(cause: StopCause, reason: impl Into<String>) -> Self {
        Ending { status: cause.status(), cause: Some(cause), reason: Some(reason.into()) }
    }
}

/// The report of a run: what is known before any measurement, its ending, and the measurements
/// when it got as far as its load.
pub fn assemble(info: &RunInfo<'_>, ending: Ending, load: Option<Load<'_>>) -> Report {
    let m = info;
    let s = m.scenario;
    let ended = SystemTime::now();
    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        fleetstorm_version: env!("CARGO_PKG_VERSION").to_string(),
        run_id: format!("{:016x}", m.run_id),
        status: ending.status,
        stopped_by: ending.cause,
        campaign: m.campaign.clone(),
        merged: None,
        status_reason: ending.reason,
        scenario: ScenarioInfo {
            name: s.name.clone(),
            description: s.description.clone(),
            file: m.scenario_file.to_string(),
            fingerprint: m.fingerprint.to_string(),
            seed: s.seed,
            duration_s: s.duration.as_secs_f64(),
            warmup_s: s.warmup.as_secs_f64(),
            devices: s.fleet.devices,
            definition: redact_scenario(s),
        },
        target: m.target.clone(),
        started_at: humantime::format_rfc3339_millis(m.started).to_string(),
        ended_at: humantime::format_rfc3339_millis(ended).to_string(),
        load_s: 0.0,
        measured_s: 0.0,
        elapsed_s: m.elapsed_s,
        clock: "monotonic clock of the fleetstorm process; producers and consumers share it, so end-to-end latency needs no clock sync".into(),
        warnings: m.warnings.to_vec(),
        harness: super::HarnessReport {
            cores: crate::recorder::monitor::cores(),
            producer_instances: info.scenario.producer.instances.count(),
            producer_instances_why: info.instances_why.map(str::to_string),
            ..Default::default()
        },
        max_rate: None,
        gates: Vec::new(),
        errors: BTreeMap::new(),
        produce: ProduceReport::default(),
        consumers: BTreeMap::new(),
        audit: AuditReport { enabled: s.audit.enabled, ..AuditReport::default() },
        faults: Vec::new(),
        waves: Vec::new(),
        partitions: None,
        spectra: BTreeMap::new(),
        timeline: Vec::new(),
        cost_drivers: None,
        backbone: None,
        cost: Vec::new(),
    };
    if let Some(l) = load {
        fill(&mut report, s, l);
    }
    report
}

/// The producer's effective `enable.idempotence`: the scenario's `producer.idempotence`, unless
/// `producer.librdkafka` sets the property (layered last; the profile's map comes first and is
/// overridden by `producer.idempotence`).
fn idempotent(s: &Scenario) -> bool {
    s.producer
        .librdkafka
        .get("enable.idempotence")
        .map_or(s.producer.idempotence, |v| v.trim().eq_ignore_ascii_case("true"))
}

/// A max-rate benchmark's figures: records acknowledged from the first send to the last
/// acknowledgement.
fn max_rate(r: &Report, outcomes: &[producer::ProducerOutcome]) -> super::MaxRate {
    let first = outcomes.iter().map(|o| o.first_send_us).min().unwrap_or(0);
    let last = outcomes.iter().map(|o| o.drained_us.max(o.last_send_us)).max().unwrap_or(0);
    let secs = last.saturating_sub(first) as f64 / 1e6;
    let acked = r.produce.acked;
    let bytes: u64 = r.produce.classes.values().map(|c| c.acked_bytes).sum();
    super::MaxRate {
        acked,
        seconds: secs,
        msgs_per_s: if secs > 0.0 { acked as f64 / secs } else { 0.0 },
        mb_per_s: if secs > 0.0 { bytes as f64 / secs / 1e6 } else { 0.0 },
    }
}

/// The measurements of a run that got as far as its load.
pub struct Load<'a> {
    pub rec: &'a Recording,
    pub plan: &'a Plan,
    pub outcomes: &'a [producer::ProducerOutcome],
    pub members: &'a [Vec<consumer::MemberOutcome>],
    pub group_ids: &'a [String],
    pub audit: Option<AuditCounts>,
    pub audit_complete: bool,
    /// Records the audit reader had not reached when it stopped.
    pub audit_behind: u64,
    pub drain_s: f64,
    pub load_s: f64,
    pub audit_seconds: Option<Vec<AuditPoint>>,
    pub client_errors: BTreeMap<u32, BTreeMap<String, u64>>,
    pub fault_runs: Vec<FaultRun>,
    /// The run's partitions: (topic index in the plan, partition).
    pub partitions: &'a [(usize, i32)],
    pub wave_counts: Vec<crate::plan::WaveCounts>,
    pub missed: Vec<(u64, Vec<String>)>,
    /// A max-rate benchmark: report the rate from the first send to the last acknowledgement.
    pub unpaced: bool,
    /// librdkafka's statistics: the producers', and each group's (by index); `None`: not measured.
    pub wire: Option<(Measured, Vec<Measured>)>,
}

fn fill(r: &mut Report, s: &Scenario, l: Load<'_>) {
    let rec = l.rec;
    let plan = l.plan;
    let warmup_s = (plan.warmup_us as f64 / 1e6).ceil();
    let measured = (l.load_s - warmup_s).max(0.0);
    let per_s = |v: u64| if measured > 0.0 { v as f64 / measured } else { 0.0 };
    r.load_s = l.load_s;
    r.measured_s = measured;
    // Errors by kind: the recorder's (delivery, send), the clients', and each group's, prefixed.
    r.errors = rec.errors.clone();
    for (k, v) in l.client_errors.values().flatten() {
        *r.errors.entry(k.clone()).or_insert(0) += v;
    }
    for (g, totals) in s.consumers.iter().zip(&rec.groups) {
        for (k, v) in &totals.errors {
            *r.errors.entry(format!("consumer.{}.{k}", g.name)).or_insert(0) += v;
        }
    }

    let mut from_intended = rec.send_lag.empty_like();
    let mut from_send = rec.send_lag.empty_like();
    let p = &mut r.produce;
    for (i, c) in rec.classes.iter().enumerate() {
        from_intended.add(&c.from_intended);
        from_send.add(&c.from_send);
        let cp = &plan.classes[i];
        p.classes.insert(
            cp.name.clone(),
            ClassReport {
                topic: plan.topics[cp.topic].clone(),
                devices: cp.participants,
                planned_rate: cp.planned_rate(),
                attempted: c.sent,
                acked: c.acked,
                failed: c.failed,
                acked_bytes: c.acked_bytes,
                msgs_per_s: per_s(c.measured_acked),
                bytes_per_s: per_s(c.measured_bytes),
                latency_from_intended: c.from_intended.summary(),
                latency_from_send: c.from_send.summary(),
            },
        );
        p.attempted += c.sent;
        p.acked += c.acked;
        p.failed += c.failed;
    }
    p.planned = l.outcomes.iter().map(|o| o.planned).sum();
    p.purged = l.outcomes.iter().map(|o| o.purged).sum();
    p.unsent_at_end = l.outcomes.iter().map(|o| o.unsent_at_end).sum();
    // Counted always; a warning when the sender was more than 100 ms of planned events behind at
    // the end (a few milliseconds on a busy host is what send lag already shows).
    if p.unsent_at_end as f64 > plan.planned_rate() * 0.1 {
        let partly = l.outcomes.iter().any(|o| o.unsent_counted_partly);
        r.warnings.push(format!(
            "{}{} planned events were still due when the load's {:.1} s were over and were not sent: the sender fell \
             behind its schedule (see send lag and the harness verdict); rates and the achieved ratio count them as \
             planned",
            if partly { "at least " } else { "" },
            super::fmt::count(p.unsent_at_end),
            l.load_s
        ));
    }
    p.backpressure = rec.backpressure;
    p.planned_rate = per_s(l.outcomes.iter().map(|o| o.planned_measured).sum());
    p.nominal_rate = plan.planned_rate();
    p.achieved_rate = per_s(rec.classes.iter().map(|c| c.measured_sent).sum());
    p.msgs_per_s = per_s(rec.classes.iter().map(|c| c.measured_acked).sum());
    p.bytes_per_s = per_s(rec.classes.iter().map(|c| c.measured_bytes).sum());
    p.latency_from_intended = from_intended.summary();
    p.latency_from_send = from_send.summary();
    p.send_lag = rec.send_lag.summary();
    let mut tally = crate::recorder::partitions::PartitionTally::default();
    for o in l.outcomes {
        tally.merge(&o.partitions);
    }
    r.partitions = Some(tally.summarise(&plan.topics, l.partitions, measured));
    r.spectra.insert("produce.latency_from_intended".into(), from_intended.spectrum());
    r.spectra.insert("produce.latency_from_send".into(), from_send.spectrum());
    for (g, t) in s.consumers.iter().zip(&rec.groups) {
        r.spectra.insert(format!("consumers.{}.e2e_latency", g.name), t.e2e.spectrum());
    }

    for (gi, g) in s.consumers.iter().enumerate() {
        let t = &rec.groups[gi];
        let members = &l.members[gi];
        r.consumers.insert(
            g.name.clone(),
            GroupReport {
                group_id: l.group_ids[gi].clone(),
                members: g.members,
                topics: g.topics.clone(),
                consumed: t.consumed,
                foreign: t.foreign,
                rereads: t.rereads,
                missed: l.missed.get(gi).map_or(0, |m| m.0),
                missed_examples: l.missed.get(gi).map(|m| m.1.clone()).unwrap_or_default(),
                msgs_per_s: per_s(t.consumed),
                e2e_latency: t.e2e.summary(),
                event_age: t.age.summary(),
                max_lag: t.max_lag,
                final_lag: t.final_lag,
                assignments: count_kind(members, RebalanceKind::Assign),
                revocations: count_kind(members, RebalanceKind::Revoke),
                rebalances: {
                    let mut all: Vec<RebalanceEvent> =
                        members.iter().flat_map(|m| m.rebalances.iter().cloned()).collect();
                    all.sort_by_key(|e| (e.t_us, e.member));
                    all.truncate(1000);
                    all
                },
                dead_letter: g.dead_letter.as_ref().map(|dl| super::DeadLetterReport {
                    topic: dl.topic.clone(),
                    routed: t.dead_lettered,
                    acked: members.iter().map(|m| m.dead_letter_acked).sum(),
                    failed: members.iter().map(|m| m.dead_letter_failed).sum(),
                }),
                replays: Vec::new(),
                slowdowns: Vec::new(),
                restarts: Vec::new(),
            },
        );
    }
    let names = plan.firmware_names();
    let total_sent: u64 = rec.versions.iter().map(|v| v.sent).sum();
    for (name, v) in names.iter().zip(&rec.versions) {
        r.produce.versions.insert(
            name.clone(),
            super::VersionReport {
                attempted: v.sent,
                acked: v.acked,
                acked_bytes: v.acked_bytes,
                share: if total_sent > 0 { v.sent as f64 / total_sent as f64 } else { 0.0 },
            },
        );
    }
    if let Some(a) = l.audit {
        r.audit.counts = a;
    }
    r.audit.complete = l.audit_complete;
    r.audit.drain_s = l.drain_s;
    if r.audit.counts.duplicates > 0 {
        let cause = super::DuplicateCause::of(idempotent(s), r.target.kind == "embedded");
        r.audit.duplicates_cause = Some(cause);
        r.warnings.push(format!(
            "{} duplicate record(s) in the log, e.g. {}: {}",
            r.audit.counts.duplicates,
            r.audit.counts.duplicate_examples.first().map_or("-", String::as_str),
            cause.explain()
        ));
    }
    r.timeline = rec.timeline.clone();
    for (second, errors) in &l.client_errors {
        if let Some(p) = r.timeline.get_mut(*second as usize) {
            for (k, v) in errors {
                *p.errors.entry(k.clone()).or_insert(0) += v;
            }
        }
    }
    if let Some(points) = &l.audit_seconds {
        for (i, a) in points.iter().enumerate() {
            if let Some(p) = r.timeline.get_mut(i) {
                p.audit = Some(a.clone());
            }
        }
    }
    for f in &l.fault_runs {
        if let Some(start) = f.injected_at_us {
            let end = f.restored_at_us.unwrap_or((l.load_s * 1e6) as u64);
            for p in r.timeline.iter_mut().filter(|p| {
                let (a, b) = (u64::from(p.t) * 1_000_000, u64::from(p.t + 1) * 1_000_000);
                a < end && b > start
            }) {
                p.faults.push(f.label.clone());
            }
        }
    }
    let partition_names: Vec<(String, String)> =
        l.partitions.iter().map(|(t, p)| (format!("{}[{p}]", plan.topics[*t]), plan.topics[*t].clone())).collect();
    let rebalances: BTreeMap<String, Vec<RebalanceEvent>> =
        r.consumers.iter().map(|(name, g)| (name.clone(), g.rebalances.clone())).collect();
    let fault_starts: Vec<f64> =
        l.fault_runs.iter().filter_map(|f| f.injected_at_us).map(|us| us as f64 / 1e6).collect();
    let cx = super::faults::Context {
        timeline: &r.timeline,
        partitions: &partition_names,
        warmup_s: plan.warmup_us as f64 / 1e6,
        load_end_s: l.load_s,
        fault_starts_s: &fault_starts,
        rebalances: &rebalances,
    };
    r.faults = l.fault_runs.iter().map(|f| super::faults::build(f, &cx)).collect();
    super::harness::verdict(r, l.load_s);
    for c in plan.classes.iter().filter(|c| !c.keyed) {
        r.warnings.push(format!(
            "class `{}` is unkeyed (key: none): the audit counts its lost and duplicated records, not per-device order",
            c.name
        ));
    }
    shape_metrics(r, s, plan, l.members, &l.wave_counts);
    for f in &r.faults {
        if let Some(e) = &f.error {
            r.warnings.push(format!("fault `{}`: {e}", f.name));
        }
    }
    let clamped: u64 = rec.classes.iter().map(|c| c.from_intended.clamped).sum::<u64>() + rec.send_lag.clamped;
    if clamped > 0 {
        r.warnings.push(format!("{clamped} latency samples exceeded one hour and were recorded as one hour"));
    }
    if l.unpaced {
        r.max_rate = Some(max_rate(r, l.outcomes));
    }
    r.cost_drivers = Some(cost_drivers(r, s, rec, l.wire.as_ref()));
    if s.audit.enabled && !l.audit_complete {
        r.warnings.push(format!(
            "the audit reader did not catch up within the drain and its own {} ({} records behind): acknowledged \
             records it never reached are `unverified`, not lost",
            s.audit.drain, l.audit_behind
        ));
    }
    if rec.late_windows > 0 {
        r.warnings.push(format!(
            "{} recorder windows arrived late and are missing from the timeline percentiles",
            rec.late_windows
        ));
    }
}

/// `part` of `whole`, apportioned by `share / total` (rounded; 0 when `total` is 0).
fn apportion(whole: u64, share: u64, total: u64) -> u64 {
    if total == 0 { 0 } else { (u128::from(whole) * u128::from(share) / u128::from(total)) as u64 }
}

/// The measured drivers of cost lines: wire bytes from librdkafka's statistics, value bytes from
/// the recorder, replication and retention from the scenario's topics. Needs `r.produce` filled.
pub fn cost_drivers(
    r: &Report,
    s: &Scenario,
    rec: &Recording,
    wire: Option<&(Measured, Vec<Measured>)>,
) -> super::schema::CostDrivers {
    use super::schema::{ClassDrivers, CostDrivers, GroupDrivers, ProduceDrivers, TopicDrivers};
    let basis_s = r.load_s;
    // Statistics turned off (a user's `statistics.interval.ms: 0`) leave no callback: absent,
    // never zero.
    let produced = wire.map(|w| &w.0).filter(|m| m.callbacks > 0);
    let value_bytes: u64 = r.produce.classes.values().map(|c| c.acked_bytes).sum();
    let classes: BTreeMap<String, ClassDrivers> = r
        .produce
        .classes
        .iter()
        .map(|(name, c)| {
            let d = ClassDrivers {
                topic: c.topic.clone(),
                records: c.acked,
                value_bytes: c.acked_bytes,
                wire_bytes: produced.map(|m| apportion(m.counts.tx_bytes, c.acked_bytes, value_bytes)),
                requests: produced.map(|m| apportion(m.counts.tx_requests, c.acked_bytes, value_bytes)),
            };
            (name.clone(), d)
        })
        .collect();
    let mut groups = BTreeMap::new();
    for (gi, g) in s.consumers.iter().enumerate() {
        let Some(t) = rec.groups.get(gi) else { continue };
        let m = wire.and_then(|w| w.1.get(gi)).filter(|m| m.callbacks > 0);
        let live = t.bytes.saturating_sub(t.reread_bytes + t.foreign_bytes);
        let read = live + t.reread_bytes;
        groups.insert(
            g.name.clone(),
            GroupDrivers {
                live_value_bytes: live,
                reread_value_bytes: t.reread_bytes,
                foreign_value_bytes: t.foreign_bytes,
                wire: m.map(|m| m.counts),
                live_wire_bytes: m.map(|m| apportion(m.counts.rx_bytes, live, read)),
                reread_wire_bytes: m.map(|m| apportion(m.counts.rx_bytes, t.reread_bytes, read)),
            },
        );
    }
    let mut topics = BTreeMap::new();
    for t in &s.topics {
        let ingress: Option<u64> = produced
            .is_some()
            .then(|| classes.values().filter(|c| c.topic == t.name).filter_map(|c| c.wire_bytes).sum::<u64>());
        let retention_s = t
            .config
            .get("retention.ms")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| *v >= 0.0)
            .map(|ms| ms / 1e3);
        let rf = u64::from(t.replication);
        topics.insert(
            t.name.clone(),
            TopicDrivers {
                replication: t.replication,
                retention_s,
                ingress_wire_bytes: ingress,
                replication_bytes: ingress.map(|b| b * rf.saturating_sub(1)),
                retained_bytes: match (ingress, retention_s) {
                    (Some(b), Some(ret)) if basis_s > 0.0 => Some(b as f64 / basis_s * rf as f64 * ret),
                    _ => None,
                },
            },
        );
    }
    let all: Vec<&Measured> = wire.map(|w| std::iter::once(&w.0).chain(&w.1).collect()).unwrap_or_default();
    CostDrivers {
        basis_s,
        stats_interval_ms: crate::driver::stats::INTERVAL_MS,
        stats_callbacks: all.iter().map(|m| m.callbacks).sum(),
        stats_parse_ms: all.iter().map(|m| m.parse.as_secs_f64() * 1e3).sum(),
        stats_unreadable: all.iter().map(|m| m.unreadable).sum(),
        produce: ProduceDrivers { wire: produced.map(|m| m.counts), value_bytes, classes },
        groups,
        topics,
    }
}

/// Waves, replays, slowdowns and restarts: what happened, from the timeline and the drivers.
fn shape_metrics(
    r: &mut Report,
    s: &Scenario,
    plan: &Plan,
    members: &[Vec<consumer::MemberOutcome>],
    waves: &[crate::plan::WaveCounts],
) {
    use super::shapes;
    let group_names: Vec<String> = s.consumers.iter().map(|g| g.name.clone()).collect();
    for (instance, (w, i)) in plan.wave_instances().into_iter().enumerate() {
        let wp = &plan.waves[w];
        let c = waves.get(instance).cloned().unwrap_or_default();
        let report = shapes::wave(
            &r.timeline,
            &shapes::WaveInput {
                name: &wp.label,
                occurrence: i,
                start_s: wp.start_ns(i) as f64 / 1e9,
                offline_s: wp.offline_ns as f64 / 1e9,
                jitter_s: wp.jitter_ns as f64 / 1e9,
                streams: c.streams,
                buffered: c.buffered,
                dropped: c.dropped,
                unsent: c.unsent,
                flush_end_s: (c.flush_end_us > 0).then(|| c.flush_end_us as f64 / 1e6),
            },
            &group_names,
        );
        let until = report.flush_end_s.unwrap_or(report.reconnect_until_s).max(report.reconnect_until_s);
        for p in r.timeline.iter_mut().filter(|p| f64::from(p.t) + 1.0 > report.start_s && f64::from(p.t) < until) {
            p.waves.push(wp.label.clone());
        }
        r.waves.push(report);
    }
    for (gi, g) in s.consumers.iter().enumerate() {
        let others: Vec<String> = group_names.iter().filter(|n| **n != g.name).cloned().collect();
        let outcomes = &members[gi];
        let replays: Vec<shapes::ReplayReport> = g
            .replays
            .iter()
            .enumerate()
            .map(|(j, spec)| {
                let done: Vec<&consumer::ReplayDone> =
                    outcomes.iter().flat_map(|m| m.replays.iter()).filter(|d| d.index == j).collect();
                let caught_up = if !done.is_empty() && done.iter().all(|d| d.caught_up_us.is_some()) {
                    done.iter().filter_map(|d| d.caught_up_us).max().map(|t| t as f64 / 1e6)
                } else {
                    None
                };
                shapes::replay(
                    &r.timeline,
                    &g.name,
                    &others,
                    &shapes::ReplayInput {
                        at_s: spec.at.as_secs_f64(),
                        to: match &spec.to {
                            crate::config::scenario::ReplayTarget::Earliest => "earliest".into(),
                            crate::config::scenario::ReplayTarget::Ago(d) => format!("ago {d}"),
                            crate::config::scenario::ReplayTarget::Records(n) => format!("records {n}"),
                        },
                        rate_cap: spec.rate.map(|x| x.as_per_sec()),
                        records_back: done.iter().map(|d| d.records_back).sum(),
                        caught_up_s: caught_up,
                        errors: done.iter().filter_map(|d| d.error.clone()).collect(),
                    },
                )
            })
            .collect();
        let slowdowns: Vec<shapes::SlowdownReport> = g
            .slowdowns
            .iter()
            .map(|sl| {
                let kind = if sl.stall { "stall".to_string() } else { format!("x{}", sl.factor.unwrap_or(1.0)) };
                shapes::slowdown(&r.timeline, &g.name, sl.at.as_secs_f64(), sl.lasts.as_secs_f64(), kind)
            })
            .collect();
        let events: Vec<RebalanceEvent> = outcomes.iter().flat_map(|m| m.rebalances.iter().cloned()).collect();
        let restarts: Vec<shapes::RestartReport> = g
            .restarts
            .iter()
            .map(|rs| shapes::restart(&r.timeline, &g.name, rs.at.as_secs_f64(), rs.down.as_secs_f64(), &events))
            .collect();
        if let Some(gr) = r.consumers.get_mut(&g.name) {
            gr.replays = replays;
            gr.slowdowns = slowdowns;
            gr.restarts = restarts;
        }
    }
}

fn count_kind(members: &[consumer::MemberOutcome], kind: RebalanceKind) -> u32 {
    members.iter().flat_map(|m| &m.rebalances).filter(|e| e.kind == kind).count() as u32
}

fn redact_scenario(s: &Scenario) -> Scenario {
    let mut s = s.clone();
    s.producer.librdkafka = Redactor::redact_map(&s.producer.librdkafka);
    for g in &mut s.consumers {
        g.librdkafka = Redactor::redact_map(&g.librdkafka);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::{ClassTotals, GroupTotals, Hist};
    use crate::report::schema::{RebalanceEvent, TimelinePoint};

    const SCENARIO: &str = r#"
name: crafted
seed: 1
duration: 10s
warmup: 2s
topics: [{name: t, partitions: 2}]
fleet:
  devices: 10
  classes: [{name: tel, topic: t, rate: 1/1s, size: 300B}]
consumers: [{name: sink, topics: [t]}]
"#;

    fn scenario() -> Scenario {
        crate::config::parse_scenario("crafted.yaml", SCENARIO).unwrap()
    }

    fn info(s: &Scenario) -> RunInfo<'_> {
        RunInfo {
            scenario: s,
            scenario_file: "crafted.yaml",
            fingerprint: "f",
            run_id: 0xabcd,
            started: SystemTime::UNIX_EPOCH,
            elapsed_s: 12.5,
            warnings: &[],
            campaign: None,
            instances_why: None,
            target: TargetInfo {
                profile: "embedded".into(),
                kind: "embedded".into(),
                bootstrap_servers: "127.0.0.1:1".into(),
                brokers: vec![1, 2, 3],
                librdkafka: BTreeMap::new(),
                oauthbearer: None,
            },
        }
    }

    fn hist(values: &[u64]) -> Hist {
        let mut h = Hist::template().unwrap();
        for v in values {
            h.record(*v);
        }
        h
    }

    /// 10 s of load, 2 s warm-up: 8 measured seconds; the class acked 80 records after warm-up.
    fn recording() -> Recording {
        let t = hist(&[1_000, 2_000, 3_000]);
        Recording {
            timeline: (0..10).map(|t| TimelinePoint { t, acked: 10, ..TimelinePoint::default() }).collect(),
            classes: vec![ClassTotals {
                sent: 100,
                acked: 98,
                failed: 2,
                acked_bytes: 9_800,
                measured_acked: 80,
                measured_bytes: 8_000,
                measured_sent: 80,
                from_intended: t.clone(),
                from_send: t.clone(),
            }],
            send_lag: t.clone(),
            backpressure: 3,
            errors: [("MessageTimedOut".to_string(), 2)].into(),
            groups: vec![GroupTotals {
                consumed: 98,
                bytes: 9_800,
                foreign: 0,
                rereads: 18,
                reread_bytes: 1_800,
                foreign_bytes: 0,
                dead_lettered: 0,
                e2e: t.clone(),
                age: t,
                max_lag: 7,
                final_lag: 0,
                errors: [("Fetch".to_string(), 1)].into(),
            }],
            audit_reads: 98,
            late_windows: 0,
            versions: Vec::new(),
        }
    }

    #[test]
    fn a_run_that_never_started_keeps_its_cause_and_no_measurements() {
        let s = scenario();
        let r = assemble(&info(&s), Ending::stopped(StopCause::Setup, "no brokers"), None);
        assert_eq!((r.status, r.stopped_by), (Status::Failed, Some(StopCause::Setup)));
        assert_eq!(r.status_reason.as_deref(), Some("no brokers"));
        assert_eq!(r.run_id, "000000000000abcd");
        assert_eq!((r.produce.acked, r.timeline.len(), r.load_s), (0, 0, 0.0));
        assert_eq!(r.elapsed_s, 12.5);
        let done = assemble(&info(&s), Ending::completed(), None);
        assert_eq!((done.status, done.stopped_by, done.status_reason), (Status::Completed, None, None));
    }

    #[test]
    fn rates_count_only_the_measured_window_and_errors_are_merged_by_kind() {
        let s = scenario();
        let plan = Plan::from_scenario(&s);
        let rec = recording();
        let producers = [producer::ProducerOutcome { planned: 100, planned_measured: 80, ..Default::default() }];
        let rebalance = |kind| RebalanceEvent { t_us: 0, member: 0, kind, partitions: 2 };
        let members = vec![vec![consumer::MemberOutcome {
            rebalances: vec![rebalance(RebalanceKind::Assign), rebalance(RebalanceKind::Leave)],
            ..Default::default()
        }]];
        let client = [(3u32, [("client.BrokerTransportFailure".to_string(), 4u64)].into())].into();
        let load = Load {
            rec: &rec,
            plan: &plan,
            outcomes: &producers,
            members: &members,
            group_ids: &["g".to_string()],
            audit: None,
            audit_complete: true,
            audit_behind: 0,
            drain_s: 0.5,
            load_s: 10.0,
            audit_seconds: None,
            client_errors: client,
            fault_runs: Vec::new(),
            partitions: &[(0, 0), (0, 1)],
            wave_counts: Vec::new(),
            missed: vec![(0, Vec::new())],
            unpaced: false,
            wire: None,
        };
        let r = assemble(&info(&s), Ending::completed(), Some(load));
        assert_eq!(r.measured_s, 8.0);
        assert_eq!(r.produce.msgs_per_s, 10.0, "80 acked after warm-up over 8 s");
        assert_eq!(r.produce.planned_rate, 10.0);
        assert_eq!((r.produce.acked, r.produce.failed, r.produce.backpressure), (98, 2, 3));
        assert_eq!(r.errors["MessageTimedOut"], 2);
        assert_eq!(r.errors["client.BrokerTransportFailure"], 4);
        assert_eq!(r.errors["consumer.sink.Fetch"], 1);
        assert_eq!(r.timeline[3].errors["client.BrokerTransportFailure"], 4, "client errors land on their second");
        let g = &r.consumers["sink"];
        assert_eq!((g.assignments, g.revocations, g.rebalances.len()), (1, 0, 2), "a leave is no revocation");
        assert!(r.max_rate.is_none());
    }

    #[test]
    fn cost_drivers_split_wire_bytes_by_value_bytes_and_replicate_by_the_topics_factor() {
        use crate::driver::stats::Measured;
        use crate::report::schema::WireCounts;
        let s = scenario();
        let rec = recording();
        let mut r = assemble(&info(&s), Ending::completed(), None);
        r.load_s = 10.0;
        r.produce.classes.insert(
            "tel".into(),
            ClassReport { topic: "t".into(), acked: 98, acked_bytes: 9_800, ..Default::default() },
        );
        let measured = |counts| Measured { counts, callbacks: 10, ..Measured::default() };
        let wire = (
            measured(WireCounts { tx_bytes: 20_000, tx_requests: 40, ..WireCounts::default() }),
            vec![measured(WireCounts { rx_bytes: 5_000, ..WireCounts::default() })],
        );
        let d = cost_drivers(&r, &s, &rec, Some(&wire));
        assert_eq!(d.produce.value_bytes, 9_800);
        assert_eq!((d.produce.classes["tel"].wire_bytes, d.produce.classes["tel"].requests), (Some(20_000), Some(40)));
        // 9,800 value bytes read: 1,800 re-read, 8,000 live; 5,000 wire bytes split 8,000 : 1,800.
        let g = &d.groups["sink"];
        assert_eq!((g.live_value_bytes, g.reread_value_bytes), (8_000, 1_800));
        assert_eq!((g.live_wire_bytes, g.reread_wire_bytes), (Some(4_081), Some(918)));
        // Topic `t`: replication 3 by default, no retention declared.
        let t = &d.topics["t"];
        assert_eq!((t.replication, t.ingress_wire_bytes, t.replication_bytes), (3, Some(20_000), Some(40_000)));
        assert_eq!((t.retention_s, t.retained_bytes), (None, None));
        // Statistics that never called back (turned off) give no wire figures, never zeros.
        let off = (Measured::default(), vec![Measured::default()]);
        let d = cost_drivers(&r, &s, &rec, Some(&off));
        assert!(d.produce.wire.is_none() && d.produce.classes["tel"].wire_bytes.is_none());
        assert!(d.groups["sink"].wire.is_none() && d.topics["t"].replication_bytes.is_none());
    }

    #[test]
    fn a_max_rate_run_reports_from_first_send_to_last_acknowledgement() {
        let s = scenario();
        let mut r = assemble(&info(&s), Ending::completed(), None);
        r.produce.acked = 1_000;
        let o = producer::ProducerOutcome {
            first_send_us: 1_000_000,
            last_send_us: 1_400_000,
            drained_us: 1_500_000,
            ..Default::default()
        };
        let m = max_rate(&r, &[o]);
        assert_eq!((m.acked, m.seconds, m.msgs_per_s), (1_000, 0.5, 2_000.0));
    }

    #[test]
    fn a_target_with_fewer_brokers_than_the_replication_is_named() {
        let mut s = scenario();
        s.topics[0].replication = 3;
        s.topics[0].config.insert("min.insync.replicas".into(), "2".into());
        let why = s.durability_shortfall(1).unwrap();
        assert!(
            why.contains("has 1 broker(s)") && why.contains("`t` asks replication 3 and min.insync.replicas 2"),
            "{why}"
        );
        assert!(s.durability_shortfall(2).unwrap().contains("replication 3"));
        assert_eq!(s.durability_shortfall(3), None);
        assert_eq!(s.durability_shortfall(0), None, "unknown broker count: no claim");
    }
}
