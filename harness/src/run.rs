//! The run: wires config, plan, drivers, recorder and report together, in that order.
//!
//! 1. apply overrides, check the scenario against the profile;
//! 2. connect (or start the embedded cluster), create topics, read watermarks;
//! 3. commit consumer groups' start offsets; start the collector, audit reader, group members and
//!    producers; wait until all are connected and every group has joined;
//! 4. start the clock: the load runs open-loop for the scenario's duration, while this thread
//!    watches for interrupts and a lost target;
//! 5. drain: producers wait for outstanding acknowledgements, readers catch up, bounded by the
//!    scenario's `drain`;
//! 6. reconcile the audit, write `report.json` and `summary.md`, print the summary.
//!
//! Whatever happens after the output directory exists, a report is written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

use crate::clock::{Clock, MonotonicClock};
use crate::config::profile::{Profile, Redactor, TargetKind};
use crate::config::scenario::{Scenario, StartOffset};
use crate::config::units::Dur;
use crate::config::{Loaded, validate};
use crate::driver::target::{Connection, MOCK_MAX_BYTES, MOCK_MAX_SETS};
use crate::driver::{ClientEvents, Control, Ctx, audit, client_config, consumer, producer, props};
use crate::faults::mechanism::Mechanism;
use crate::faults::{FaultRun, Scheduler};
use crate::plan::Plan;
use crate::plan::rng::mix;
use crate::recorder::audit::{AckLedger, AuditCounts, SeenLedger, Stream, reconcile};
use crate::recorder::{Collector, CollectorConfig, Hist, OffsetBook, RebalanceEvent, Recording};
use crate::report::{
    AuditReport, ClassReport, GroupReport, ProduceReport, Report, SCHEMA_VERSION, ScenarioInfo, Status, TargetInfo,
    summary,
};
use crate::signals::Interrupts;
use crate::wire::Filler;

/// Options from the command line.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Draw a live progress line on stderr (a terminal, not --quiet).
    pub progress: bool,
    pub out: Option<PathBuf>,
    pub duration: Option<Dur>,
    pub seed: Option<u64>,
    /// Max-rate benchmark: send this many records as fast as possible, unpaced.
    pub unpaced: Option<u64>,
    /// Print the summary on stderr (stdout carries something else, e.g. a benchmark's JSON line).
    pub summary_to_stderr: bool,
}

/// Why a run did not even start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Bad input: exit 2.
    #[error("{0}")]
    Invalid(String),
    /// Nowhere to write the report: exit 3.
    #[error("{0}")]
    CouldNotStart(String),
}

/// A run that wrote its report.
#[derive(Debug)]
pub struct Finished {
    pub report: Report,
    pub dir: PathBuf,
}

/// Everything known about the run before any measurement.
struct Meta {
    scenario: Scenario,
    scenario_file: String,
    fingerprint: String,
    profile: Profile,
    run_id: u64,
    started: SystemTime,
    t0: Instant,
    dir: PathBuf,
    warnings: Vec<String>,
    bootstrap: String,
    brokers: Vec<i32>,
    /// Where the profile's relative paths and fault commands are resolved.
    base_dir: PathBuf,
}

pub fn run(
    sc: Loaded<Scenario>,
    pr: Loaded<Profile>,
    opts: &RunOptions,
    intr: &Interrupts,
) -> Result<Finished, RunError> {
    let started = SystemTime::now();
    let t0 = Instant::now();
    // The scenario with the command-line overrides applied, checked again if they changed it;
    // then what the profile's target cannot do. One pass, every problem located in its file.
    let mut prepared = sc.prepare(crate::config::Overrides { duration: opts.duration, seed: opts.seed });
    let profile = pr.value;
    let mut warnings = Vec::new();
    if profile.kind == TargetKind::Embedded {
        let limits = validate::on_embedded(&prepared.scenario, profile.embedded_brokers());
        prepared.add(limits.errors);
        warnings = limits.warnings;
    }
    let base_dir =
        pr.file.parent().map(Path::to_path_buf).filter(|p| !p.as_os_str().is_empty()).unwrap_or_else(|| ".".into());
    let mechanism = Mechanism::new(profile.fault_mechanism().as_ref(), base_dir.clone());
    let faults = mechanism.check(&prepared.scenario.faults);
    prepared.add(faults.into_iter().map(|(i, m)| (format!("faults[{i}].kind"), m)));
    let target = match pr.file.to_str() {
        Some(f) if f.starts_with('(') => "the default embedded target".to_string(),
        _ => format!("profile {}", pr.file.display()),
    };
    let overrides =
        if opts.duration.is_some() || opts.seed.is_some() { "with the command-line overrides, " } else { "" };
    let against = format!(" ({overrides}against {target})");
    let mut notes = prepared.notes.clone();
    for d in prepared.locate(warnings) {
        tracing::warn!("{d}");
        notes.push(d.to_string());
    }
    // FIXME(issue 9): the runner parses the gates again instead of taking these.
    let (scenario, _gates) = prepared.finish().map_err(|e| {
        RunError::Invalid(e.diagnostics().iter().map(|d| format!("{d}{against}")).collect::<Vec<_>>().join("\n"))
    })?;

    let run_id = mix(
        started.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0),
        &[u64::from(std::process::id())],
    );
    let dir = opts.out.clone().unwrap_or_else(|| default_dir(&scenario.name, started));
    std::fs::create_dir_all(&dir)
        .map_err(|e| RunError::CouldNotStart(format!("cannot create the report directory {}: {e}", dir.display())))?;
    let canonical = serde_json::to_vec(&scenario).unwrap_or_default();
    let meta = Meta {
        fingerprint: format!("{:x}", Sha256::digest(&canonical)),
        scenario_file: sc.file.display().to_string(),
        scenario,
        profile,
        run_id,
        started,
        t0,
        dir,
        warnings: notes,
        bootstrap: String::new(),
        brokers: Vec::new(),
        base_dir,
    };
    Ok(Runner {
        meta,
        intr: intr.clone(),
        progress: opts.progress,
        unpaced: opts.unpaced,
        summary_to_stderr: opts.summary_to_stderr,
    }
    .go())
}

fn default_dir(name: &str, at: SystemTime) -> PathBuf {
    let stamp =
        humantime::format_rfc3339_seconds(at).to_string().replace([':', '-'], "").replace('T', "-").replace('Z', "");
    PathBuf::from("reports").join(format!("{name}-{stamp}"))
}

struct Runner {
    meta: Meta,
    intr: Interrupts,
    progress: bool,
    unpaced: Option<u64>,
    summary_to_stderr: bool,
}

/// How the load phase ended.
#[derive(Default)]
struct Ending {
    status: Option<(Status, String)>,
}

impl Ending {
    fn set(&mut self, status: Status, reason: impl Into<String>) {
        if self.status.is_none() {
            self.status = Some((status, reason.into()));
        }
    }
}

impl Runner {
    fn go(mut self) -> Finished {
        let s = self.meta.scenario.clone();
        let redactor = Arc::new(Redactor::from_properties(
            self.meta
                .profile
                .librdkafka
                .iter()
                .chain(s.producer.librdkafka.iter())
                .chain(s.consumers.iter().flat_map(|g| g.librdkafka.iter())),
        ));
        let start: crate::recorder::Start = Arc::new(OnceLock::new());
        let events = Arc::new(ClientEvents::new(start.clone()));
        let plan = Arc::new(Plan::from_scenario(&s));
        tracing::info!(
            "run {:016x}: {} devices, {} classes, planned {:.1} events/s for {}",
            self.meta.run_id,
            s.fleet.devices,
            s.fleet.classes.len(),
            plan.planned_rate(),
            s.duration
        );
        let target_desc = match self.meta.profile.kind {
            TargetKind::Embedded => format!("the embedded cluster ({} brokers)", self.meta.profile.embedded_brokers()),
            TargetKind::Kafka => self.meta.profile.bootstrap_servers.as_ref().map(|b| b.joined()).unwrap_or_default(),
        };
        tracing::info!("connecting to {target_desc}");
        let conn = match Connection::open(&self.meta.profile, events.clone(), redactor.clone()) {
            Ok(c) => c,
            Err(e) => return self.fail_early(redactor.scrub(&e.to_string())),
        };
        self.meta.bootstrap = conn.bootstrap.clone();
        self.meta.brokers = conn.brokers.clone();
        let topics = match conn.ensure_topics(&s.topics) {
            Ok(t) => t,
            Err(e) => return self.fail_early(redactor.scrub(&e.to_string())),
        };
        if !topics.created.is_empty() {
            tracing::info!("created topics: {}", topics.created.join(", "));
        }
        for w in &topics.warnings {
            tracing::warn!("{w}");
        }
        self.meta.warnings.extend(topics.warnings.iter().cloned());
        let marks = match conn.watermarks(&plan.topics, &topics.partitions) {
            Ok(m) => m,
            Err(e) => return self.fail_early(redactor.scrub(&e.to_string())),
        };
        let lows: Vec<i64> = marks.iter().map(|m| m.0).collect();
        let highs: Vec<i64> = marks.iter().map(|m| m.1).collect();

        // The offset book: partition ends, and one reader per group plus the audit.
        let mut book = OffsetBook::new(&topics.partitions, &highs);
        let topic_index = |name: &str| plan.topics.iter().position(|t| t == name).unwrap_or(0);
        let mut group_readers = Vec::new();
        let mut group_ids = Vec::new();
        for g in &s.consumers {
            let tix: Vec<usize> = g.topics.iter().map(|t| topic_index(t)).collect();
            let start = if g.start == StartOffset::Earliest { &lows } else { &highs };
            group_readers.push(book.add_reader(&tix, start));
            group_ids.push(
                g.group_id
                    .clone()
                    .unwrap_or_else(|| format!("fleetstorm.{}.{}.{:08x}", s.name, g.name, self.meta.run_id >> 32)),
            );
        }
        // The audit reads the topics the fleet writes (not, say, a dead-letter topic, whose
        // copies would look like duplicates).
        let fleet_topics: Vec<usize> =
            (0..plan.topics.len()).filter(|t| plan.classes.iter().any(|c| c.topic == *t)).collect();
        let audit_reader = book.add_reader(&fleet_topics, &highs);
        let book = Arc::new(book);
        for (g, gid) in s.consumers.iter().zip(&group_ids) {
            let start = match g.start {
                StartOffset::Latest => &highs,
                StartOffset::Earliest => &lows,
                StartOffset::Committed => continue,
            };
            let offsets: Vec<(String, i32, i64)> = g
                .topics
                .iter()
                .flat_map(|t| {
                    let ti = topic_index(t);
                    book.partitions
                        .iter()
                        .enumerate()
                        .filter(move |(_, (pt, _))| *pt == ti)
                        .map(|(i, (_, p))| (t.clone(), *p, start[i]))
                        .collect::<Vec<_>>()
                })
                .collect();
            if let Err(e) = conn.commit_offsets(gid, &offsets) {
                return self.fail_early(redactor.scrub(&e.to_string()));
            }
        }

        // Drivers.
        let template = match Hist::template() {
            Ok(t) => t,
            Err(e) => return self.fail_early(format!("histogram: {e}")),
        };
        let control = Arc::new(Control::default());
        let ready = Arc::new(AtomicU32::new(0));
        let live_counters = Arc::new(crate::recorder::LiveCounters::default());
        let mut collector = Collector::new(CollectorConfig {
            live: live_counters.clone(),
            hlog: Some(crate::recorder::hlog::HlogConfig {
                dir: self.meta.dir.clone(),
                classes: plan.classes.iter().map(|c| c.name.clone()).collect(),
            }),
            classes: plan.classes.len(),
            versions: plan.firmware_names().to_vec(),
            groups: s.consumers.iter().map(|g| g.name.clone()).collect(),
            group_readers: group_readers.clone(),
            warmup_us: plan.warmup_us,
            load_end_us: plan.duration_us,
            template: template.clone(),
            book: book.clone(),
            start: start.clone(),
        });
        let ctx = |role: String| Ctx { role: role.into(), events: events.clone(), redactor: redactor.clone() };
        let base = &conn.base;
        let reader_defaults = conn.reader_defaults();
        let mut expected_ready = 0u32;

        let audit_handle = if s.audit.enabled {
            expected_ready += 1;
            let assignment: Vec<(String, i32, i64)> = book
                .partitions
                .iter()
                .enumerate()
                .filter(|(_, (t, _))| fleet_topics.contains(t))
                .map(|(i, (t, p))| (plan.topics[*t].clone(), *p, highs[i]))
                .collect();
            let extra = props([
                ("group.id", format!("fleetstorm.audit.{:016x}", self.meta.run_id)),
                ("client.id", "fleetstorm-audit".to_string()),
                ("enable.auto.commit", "false".into()),
                ("enable.auto.offset.store", "false".into()),
                ("auto.offset.reset", "earliest".into()),
            ]);
            let spawned = audit::spawn(audit::AuditArgs {
                config: client_config(&conn.bootstrap, &[base, &reader_defaults, &extra]),
                assignment,
                plan_topics: plan.topics.clone(),
                keyed: plan.classes.iter().map(|c| c.keyed).collect(),
                ctx: ctx("audit".into()),
                start: start.clone(),
                control: control.clone(),
                source: collector.source(),
                book: book.clone(),
                reader: audit_reader,
                run_id: self.meta.run_id,
                ready: ready.clone(),
            });
            match spawned {
                Ok(h) => Some(h),
                Err(e) => return self.fail_early(format!("cannot start the audit thread: {e}")),
            }
        } else {
            None
        };

        let mut members = Vec::new();
        let mut group_ledgers = Vec::new();
        for (gi, g) in s.consumers.iter().enumerate() {
            let ledger = Arc::new(consumer::GroupLedger::default());
            group_ledgers.push(ledger.clone());
            let dead_letter = g.dead_letter.as_ref().map(|dl| consumer::DeadLetterArgs {
                topic: dl.topic.clone(),
                rate: dl.rate.0,
                config: client_config(
                    &conn.bootstrap,
                    &[base, &props([("client.id", format!("fleetstorm-{}-dlq", g.name)), ("linger.ms", "5".into())])],
                ),
            });
            for m in 0..g.members {
                expected_ready += 1;
                let extra = props([
                    ("group.id", group_ids[gi].clone()),
                    ("client.id", format!("fleetstorm-{}-{m}", g.name)),
                    ("enable.auto.commit", "true".into()),
                    ("enable.auto.offset.store", "false".into()),
                    ("auto.commit.interval.ms", "1000".into()),
                    ("auto.offset.reset", if g.start == StartOffset::Committed { "latest" } else { "earliest" }.into()),
                ]);
                let spawned = consumer::spawn(consumer::MemberArgs {
                    group: gi,
                    member: m,
                    config: client_config(&conn.bootstrap, &[base, &reader_defaults, &extra, &g.librdkafka]),
                    topics: g.topics.clone(),
                    plan_topics: plan.topics.clone(),
                    ctx: ctx(format!("consumer {}#{m}", g.name)),
                    start: start.clone(),
                    control: control.clone(),
                    source: collector.source(),
                    template: template.clone(),
                    book: book.clone(),
                    reader: group_readers[gi],
                    run_id: self.meta.run_id,
                    processing: g.processing_time.clone(),
                    batch: g.batch.clone(),
                    slowdowns: g.slowdowns.clone(),
                    replays: g.replays.clone(),
                    restarts: g.restarts.clone(),
                    dead_letter: dead_letter.clone(),
                    ledger: ledger.clone(),
                    seed: s.seed,
                    ready: ready.clone(),
                });
                match spawned {
                    Ok(h) => members.push((gi, h)),
                    Err(e) => return self.fail_early(format!("cannot start a consumer thread: {e}")),
                }
            }
        }

        let filler = Arc::new(Filler::new(s.seed));
        let pspec = &s.producer;
        let pprops = props([
            ("acks", pspec.acks.as_librdkafka().to_string()),
            ("linger.ms", format!("{}", pspec.linger.as_secs_f64() * 1e3)),
            ("batch.size", pspec.batch_size.0.min(2_147_483_647).to_string()),
            ("compression.type", pspec.compression.as_librdkafka().to_string()),
            ("enable.idempotence", pspec.idempotence.to_string()),
            ("queue.buffering.max.messages", pspec.max_in_flight.to_string()),
            ("queue.buffering.max.kbytes", "2097151".to_string()),
            ("message.timeout.ms", (pspec.message_timeout.as_micros() / 1000).max(1).to_string()),
        ]);
        let mut producers = Vec::new();
        for i in 0..pspec.instances {
            expected_ready += 1;
            let id = props([("client.id", format!("fleetstorm-producer-{i}"))]);
            let spawned = producer::spawn(producer::ProducerArgs {
                instance: i,
                instances: pspec.instances,
                plan: plan.clone(),
                run_id: self.meta.run_id,
                config: client_config(&conn.bootstrap, &[base, &pprops, &id, &pspec.librdkafka]),
                ctx: ctx(format!("producer {i}")),
                start: start.clone(),
                control: control.clone(),
                source: collector.source(),
                template: template.clone(),
                book: book.clone(),
                filler: filler.clone(),
                drain: s.drain.0,
                ready: ready.clone(),
                unpaced: self.unpaced.map(|n| n.div_ceil(u64::from(pspec.instances))),
                keep_ledger: s.audit.enabled || !s.consumers.is_empty(),
            });
            match spawned {
                Ok(h) => producers.push(h),
                Err(e) => return self.fail_early(format!("cannot start a producer thread: {e}")),
            }
        }
        let collector = match collector.spawn() {
            Ok(h) => h,
            Err(e) => return self.fail_early(format!("cannot start the collector: {e}")),
        };

        let mut ending = Ending::default();
        // Wait until every client is connected and every group member has its partitions.
        let join_deadline = Instant::now() + Duration::from_secs(60);
        tracing::info!("waiting for {expected_ready} clients to connect and consumer groups to join");
        while ready.load(Ordering::SeqCst) < expected_ready {
            if self.intr.count() > 0 {
                ending.set(Status::Aborted, "interrupted before the load started");
                break;
            }
            if Instant::now() > join_deadline {
                let w = format!(
                    "only {} of {expected_ready} clients were ready after 60s; the load started anyway",
                    ready.load(Ordering::SeqCst)
                );
                tracing::warn!("{w}");
                self.meta.warnings.push(w);
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let setup_s = self.meta.t0.elapsed().as_secs_f64();

        // The load.
        let clock = MonotonicClock::start();
        let _ = start.set(clock);
        if ending.status.is_some() {
            control.stop_sending.store(true, Ordering::SeqCst);
            control.drain_until_us.store(0, Ordering::SeqCst);
        } else {
            tracing::info!("load started ({setup_s:.1}s after launch)");
        }
        let mut faults = Scheduler::new(
            &s.faults,
            self.meta.profile.fault_mechanism().as_ref(),
            self.meta.base_dir.clone(),
            s.seed,
            plan.topics.clone(),
            clock,
        );
        let mut faults_restored = faults.is_empty();
        let (gates, _) = crate::report::gates::parse_all(&s.gates, &s);
        let live_gates: Vec<_> = gates.iter().filter(|g| g.spec.abort_on_fail).collect();
        let mut max_lag: Vec<u64> = vec![0; s.consumers.len()];
        let mut next_gate_check = 1_000_000u64;
        let drain_us = s.drain.as_micros();
        let target_timeout_us = s.target_timeout.as_micros();
        let mut last_acked = 0u64;
        let mut last_change = 0u64;
        let mut next_progress = 1_000_000u64;
        while producers.iter().any(|h| !h.is_finished()) {
            std::thread::sleep(Duration::from_millis(50));
            let now = clock.now_us();
            self.check_interrupts(&control, &clock, &mut ending);
            if !faults_restored {
                if now >= plan.duration_us || control.stop_sending.load(Ordering::Relaxed) {
                    // The load is over: bring every broker back before draining.
                    faults.restore_all(&conn, &book);
                    faults_restored = true;
                } else {
                    faults.tick(&conn, &book);
                }
            }
            let acked: u64 = book.acked_per_partition().iter().map(|(_, c)| c).sum();
            if acked != last_acked {
                last_acked = acked;
                last_change = now;
            } else if now.saturating_sub(last_change) > target_timeout_us
                && !control.stop_sending.load(Ordering::Relaxed)
            {
                let reason = format!("target lost: no acknowledgement for {}", s.target_timeout);
                tracing::error!("{reason}; stopping the load");
                ending.set(Status::Failed, reason);
                control.stop_sending.store(true, Ordering::SeqCst);
                control.drain_until_us.store(now, Ordering::SeqCst);
            }
            if !live_gates.is_empty() && now >= next_gate_check {
                next_gate_check += 1_000_000;
                for (i, r) in group_readers.iter().enumerate() {
                    max_lag[i] = max_lag[i].max(book.lag(*r));
                }
                let live = crate::report::gates::Live {
                    max_lag: s.consumers.iter().map(|g| g.name.clone()).zip(max_lag.iter().copied()).collect(),
                    failed: live_counters.failed.load(Ordering::Relaxed),
                    backpressure: live_counters.backpressure.load(Ordering::Relaxed),
                    errors: live_counters
                        .errors
                        .lock()
                        .map(|m| m.iter().map(|(k, v)| (k.clone(), *v)).chain(events.errors()).collect())
                        .unwrap_or_default(),
                };
                if let Some(failed) = live_gates.iter().filter_map(|g| g.evaluate_live(&live)).find(|r| !r.passed)
                    && !control.stop_sending.load(Ordering::Relaxed)
                {
                    let reason = format!("gate `{}` failed during the run ({})", failed.gate, failed.value);
                    tracing::error!("{reason}: stopping the load");
                    ending.set(Status::Aborted, reason);
                    control.stop_sending.store(true, Ordering::SeqCst);
                    control.drain_until_us.store(now + 5_000_000, Ordering::SeqCst);
                }
            }
            if now >= next_progress {
                next_progress = (now / 1_000_000 + 1) * 1_000_000;
                let lags: Vec<String> = s
                    .consumers
                    .iter()
                    .zip(&group_readers)
                    .map(|(g, r)| format!("{}={}", g.name, summary::count(book.lag(*r))))
                    .collect();
                let active = faults.active();
                let line = format!(
                    "[{:>4}s/{}s] {}  acked {}/s  p99 {}  lag {}{}",
                    now / 1_000_000,
                    s.duration.0.as_secs(),
                    if now < plan.warmup_us { "warm-up" } else { "load" },
                    summary::count(live_counters.last_acked.load(Ordering::Relaxed)),
                    summary::us(live_counters.last_p99_us.load(Ordering::Relaxed)),
                    if lags.is_empty() { "-".into() } else { lags.join(" ") },
                    if active.is_empty() { String::new() } else { format!("  faults {}", active.join(",")) }
                );
                if self.progress {
                    eprint!("\r\x1b[2K{line}");
                } else {
                    tracing::debug!("{line}");
                }
            }
        }
        if self.progress {
            eprintln!();
        }
        if !faults_restored {
            faults.restore_all(&conn, &book);
        }
        let fault_runs = faults.finish(&book);
        let mut outcomes = Vec::new();
        for h in producers {
            match h.join() {
                Ok(o) => outcomes.push(o),
                Err(_) => ending.set(Status::Failed, "a producer thread panicked"),
            }
        }
        let load_end_us = outcomes.iter().map(|o| o.last_send_us).max().unwrap_or(0).min(plan.duration_us.max(1));
        for o in &outcomes {
            if let Some(e) = &o.error {
                ending.set(Status::Failed, e.clone());
            }
        }

        // Drain the readers: until they caught up with every acknowledgement, or time is up.
        let drain_started = clock.now_us();
        let reader_deadline = load_end_us.saturating_add(drain_us).max(drain_started);
        let caught_up = |book: &OffsetBook| {
            (audit_handle.is_none() || book.lag(audit_reader) == 0) && group_readers.iter().all(|r| book.lag(*r) == 0)
        };
        loop {
            self.check_interrupts(&control, &clock, &mut ending);
            let deadline = reader_deadline.min(control.drain_until_us.load(Ordering::Relaxed).max(drain_started));
            if caught_up(&book) || control.hard() || clock.now_us() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let audit_complete = audit_handle.is_some() && book.lag(audit_reader) == 0;
        control.stop_reading.store(true, Ordering::SeqCst);
        let drain_s = (clock.now_us().saturating_sub(load_end_us)) as f64 / 1e6;

        let mut member_outcomes: Vec<Vec<consumer::MemberOutcome>> = s.consumers.iter().map(|_| Vec::new()).collect();
        for (g, h) in members {
            match h.join() {
                Ok(o) => {
                    if let Some(e) = &o.error {
                        ending.set(Status::Failed, e.clone());
                    }
                    member_outcomes[g].push(o);
                }
                Err(_) => ending.set(Status::Failed, "a consumer thread panicked"),
            }
        }
        let seen = match audit_handle.map(|h| h.join()) {
            Some(Ok(o)) => {
                if let Some(e) = &o.error {
                    ending.set(Status::Failed, e.clone());
                }
                Some(o.ledger)
            }
            Some(Err(_)) => {
                ending.set(Status::Failed, "the audit thread panicked");
                None
            }
            None => None,
        };
        let rec = match collector.join() {
            Ok(r) => r,
            Err(_) => return self.fail_early("the collector thread panicked".into()),
        };

        // Warnings the numbers need.
        if conn.is_embedded() {
            let over: Vec<(usize, u64, u64)> = book
                .acked_per_partition()
                .iter()
                .enumerate()
                .filter(|(_, (bytes, count))| *bytes > MOCK_MAX_BYTES || *count > MOCK_MAX_SETS)
                .map(|(i, (b, c))| (i, *b, *c))
                .collect();
            if let Some(worst) = over.iter().max_by_key(|(_, b, _)| *b) {
                let (t, p) = book.partitions[worst.0];
                self.meta.warnings.push(format!(
                    "embedded cluster retention exceeded on {} partition(s), up to {:.1} MiB in {}[{p}]: it keeps at most 5 MiB or 100,000 message sets per partition and drops the oldest, so a reader that fell further behind than that missed records (the audit reads live and says whether it did)",
                    over.len(),
                    worst.1 as f64 / 1048576.0,
                    plan.topics[t]
                ));
            }
        }
        if s.audit.enabled && !audit_complete {
            self.meta.warnings.push(format!(
                "the audit reader did not catch up within the drain ({} records behind): `lost` may count records not yet read",
                book.lag(audit_reader)
            ));
        }
        if rec.late_windows > 0 {
            self.meta.warnings.push(format!(
                "{} recorder windows arrived late and are missing from the timeline percentiles",
                rec.late_windows
            ));
        }
        if ending.status.is_none() && self.unpaced.is_none() && load_end_us + 1_000_000 < plan.duration_us {
            ending.set(Status::Failed, "the load stopped before its duration");
        }
        drop(conn);

        let mut acks = AckLedger::default();
        let mut wave_counts = vec![crate::plan::WaveCounts::default(); plan.wave_instances().len()];
        for o in &outcomes {
            acks.merge(&o.ledger);
            for (a, b) in wave_counts.iter_mut().zip(&o.waves) {
                a.merge(b);
            }
        }
        let audit_seconds = seen.as_ref().map(|seen| {
            crate::recorder::audit::by_second(&acks, seen, &|st, seq| {
                // Only asked about records seen without an acknowledgement (rare). Their creation
                // second stands in for the intended send second, which differs only for records
                // buffered by a wave.
                plan.created_us(usize::from(st.class), u64::from(st.device), seq).map(|us| (us / 1_000_000) as u32)
            })
        });
        let audit = seen.map(|seen| audit_counts(&plan, &acks, &seen));
        let missed: Vec<(u64, Vec<String>)> = s
            .consumers
            .iter()
            .zip(&group_ledgers)
            .map(|(g, ledger)| {
                let classes: Vec<u16> = plan
                    .classes
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| g.topics.contains(&plan.topics[c.topic]))
                    .map(|(i, _)| i as u16)
                    .collect();
                let (n, examples) = crate::recorder::audit::missed(&acks, &ledger.merged(), &classes);
                let describe = |(st, seq): (Stream, u64)| {
                    let class = plan.classes.get(usize::from(st.class)).map_or("?", |c| c.name.as_str());
                    format!("{class}/{}#{seq}", plan.ids.render(u64::from(st.device)))
                };
                (n, examples.into_iter().map(describe).collect())
            })
            .collect();
        let client_errors = events.errors_by_second();
        let partition_names: Vec<(String, String)> = book
            .partitions
            .iter()
            .map(|(t, p)| (format!("{}[{p}]", plan.topics[*t]), plan.topics[*t].clone()))
            .collect();
        let mut errors = rec.errors.clone();
        errors.extend(events.errors());
        for (g, totals) in s.consumers.iter().zip(&rec.groups) {
            for (k, v) in &totals.errors {
                *errors.entry(format!("consumer.{}.{k}", g.name)).or_insert(0) += v;
            }
        }

        let (status, reason) = ending.status.unwrap_or((Status::Completed, String::new()));
        let load = Load {
            rec: &rec,
            plan: &plan,
            outcomes: &outcomes,
            members: &member_outcomes,
            group_ids: &group_ids,
            audit,
            audit_complete,
            drain_s,
            load_s: load_end_us as f64 / 1e6,
            errors,
            audit_seconds,
            client_errors,
            fault_runs,
            partition_names,
            wave_counts,
            missed,
        };
        let mut report = self.assemble(status, (!reason.is_empty()).then_some(reason), Some(load));
        if self.unpaced.is_some() {
            let first = outcomes.iter().map(|o| o.first_send_us).min().unwrap_or(0);
            let last = outcomes.iter().map(|o| o.drained_us.max(o.last_send_us)).max().unwrap_or(0);
            let secs = last.saturating_sub(first) as f64 / 1e6;
            let acked = report.produce.acked;
            let bytes: u64 = report.produce.classes.values().map(|c| c.acked_bytes).sum();
            report.max_rate = Some(crate::report::MaxRate {
                acked,
                seconds: secs,
                msgs_per_s: if secs > 0.0 { acked as f64 / secs } else { 0.0 },
                mb_per_s: if secs > 0.0 { bytes as f64 / secs / 1e6 } else { 0.0 },
            });
        }
        report.gates = gates.iter().map(|g| g.evaluate(&report)).collect();
        if report.status != Status::Completed {
            for g in &mut report.gates {
                g.detail = format!("{} (run {}: partial data)", g.detail, report.status).trim().to_string();
            }
        }
        self.finish(report)
    }

    fn check_interrupts(&self, control: &Control, clock: &MonotonicClock, ending: &mut Ending) {
        let n = self.intr.count();
        if n >= 1 && !control.stop_sending.load(Ordering::Relaxed) {
            ending.set(Status::Aborted, "interrupted");
            control.stop_sending.store(true, Ordering::SeqCst);
            control.drain_until_us.store(clock.now_us() + 5_000_000, Ordering::SeqCst);
        }
        if n >= 1 {
            ending.set(Status::Aborted, "interrupted");
        }
        if n >= 2 {
            control.hard_stop.store(true, Ordering::SeqCst);
        }
    }

    /// The run could not start or could not go on: write what is known, status failed.
    fn fail_early(self, reason: String) -> Finished {
        tracing::error!("{reason}");
        let status = if self.intr.count() > 0 { Status::Aborted } else { Status::Failed };
        let report = self.assemble(status, Some(reason), None);
        self.finish(report)
    }

    fn finish(self, report: Report) -> Finished {
        let dir = self.meta.dir.clone();
        let path = dir.join("report.json");
        if let Err(e) = report.write(&dir) {
            tracing::error!("could not write {}: {e}", path.display());
        }
        if let Err(e) = report.write_derived(&dir) {
            tracing::error!("could not write the report's summary, charts or HTML: {e}");
        }
        let text = summary::text(&report, &path.display().to_string());
        if self.unpaced.is_some() || self.summary_to_stderr {
            eprint!("{text}");
        } else {
            print!("{text}");
        }
        Finished { report, dir }
    }

    fn assemble(&self, status: Status, reason: Option<String>, load: Option<Load<'_>>) -> Report {
        let m = &self.meta;
        let s = &m.scenario;
        let ended = SystemTime::now();
        let mut report = Report {
            schema_version: SCHEMA_VERSION,
            fleetstorm_version: env!("CARGO_PKG_VERSION").to_string(),
            run_id: format!("{:016x}", m.run_id),
            status,
            status_reason: reason,
            scenario: ScenarioInfo {
                name: s.name.clone(),
                description: s.description.clone(),
                file: m.scenario_file.clone(),
                fingerprint: m.fingerprint.clone(),
                seed: s.seed,
                duration_s: s.duration.as_secs_f64(),
                warmup_s: s.warmup.as_secs_f64(),
                devices: s.fleet.devices,
                definition: redact_scenario(s),
            },
            target: TargetInfo {
                profile: m.profile.name.clone(),
                kind: match m.profile.kind {
                    TargetKind::Embedded => "embedded".into(),
                    TargetKind::Kafka => "kafka".into(),
                },
                bootstrap_servers: m.bootstrap.clone(),
                brokers: m.brokers.clone(),
                librdkafka: Redactor::redact_map(&m.profile.librdkafka),
            },
            started_at: humantime::format_rfc3339_millis(m.started).to_string(),
            ended_at: humantime::format_rfc3339_millis(ended).to_string(),
            load_s: 0.0,
            measured_s: 0.0,
            elapsed_s: m.t0.elapsed().as_secs_f64(),
            clock: "monotonic clock of the fleetstorm process; producers and consumers share it, so end-to-end latency needs no clock sync".into(),
            warnings: m.warnings.clone(),
            harness: crate::report::HarnessReport { cores: crate::recorder::monitor::cores(), ..Default::default() },
            max_rate: None,
            gates: Vec::new(),
            errors: BTreeMap::new(),
            produce: ProduceReport::default(),
            consumers: BTreeMap::new(),
            audit: AuditReport { enabled: s.audit.enabled, ..AuditReport::default() },
            faults: Vec::new(),
            waves: Vec::new(),
            spectra: BTreeMap::new(),
            timeline: Vec::new(),
        };
        if let Some(l) = load {
            fill(&mut report, s, l);
        }
        report
    }
}

/// The measurements of a run that got as far as its load.
struct Load<'a> {
    rec: &'a Recording,
    plan: &'a Plan,
    outcomes: &'a [producer::ProducerOutcome],
    members: &'a [Vec<consumer::MemberOutcome>],
    group_ids: &'a [String],
    audit: Option<AuditCounts>,
    audit_complete: bool,
    drain_s: f64,
    load_s: f64,
    errors: BTreeMap<String, u64>,
    audit_seconds: Option<Vec<crate::recorder::audit::AuditPoint>>,
    client_errors: BTreeMap<u32, BTreeMap<String, u64>>,
    fault_runs: Vec<FaultRun>,
    partition_names: Vec<(String, String)>,
    wave_counts: Vec<crate::plan::WaveCounts>,
    missed: Vec<(u64, Vec<String>)>,
}

fn fill(r: &mut Report, s: &Scenario, l: Load<'_>) {
    let rec = l.rec;
    let plan = l.plan;
    let warmup_s = (plan.warmup_us as f64 / 1e6).ceil();
    let measured = (l.load_s - warmup_s).max(0.0);
    let per_s = |v: u64| if measured > 0.0 { v as f64 / measured } else { 0.0 };
    r.load_s = l.load_s;
    r.measured_s = measured;
    r.errors = l.errors;

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
    p.backpressure = rec.backpressure;
    p.planned_rate = per_s(l.outcomes.iter().map(|o| o.planned_measured).sum());
    p.nominal_rate = plan.planned_rate();
    p.achieved_rate = per_s(rec.classes.iter().map(|c| c.measured_sent).sum());
    p.msgs_per_s = per_s(rec.classes.iter().map(|c| c.measured_acked).sum());
    p.bytes_per_s = per_s(rec.classes.iter().map(|c| c.measured_bytes).sum());
    p.latency_from_intended = from_intended.summary();
    p.latency_from_send = from_send.summary();
    p.send_lag = rec.send_lag.summary();
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
                assignments: count_kind(members, "assign"),
                revocations: count_kind(members, "revoke"),
                rebalances: {
                    let mut all: Vec<RebalanceEvent> =
                        members.iter().flat_map(|m| m.rebalances.iter().cloned()).collect();
                    all.sort_by_key(|e| (e.t_us, e.member));
                    all.truncate(1000);
                    all
                },
                dead_letter: g.dead_letter.as_ref().map(|dl| crate::report::DeadLetterReport {
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
            crate::report::VersionReport {
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
    let rebalances: BTreeMap<String, Vec<RebalanceEvent>> =
        r.consumers.iter().map(|(name, g)| (name.clone(), g.rebalances.clone())).collect();
    let cx = crate::report::faults::Context {
        timeline: &r.timeline,
        partitions: &l.partition_names,
        warmup_s: plan.warmup_us as f64 / 1e6,
        load_end_s: l.load_s,
        rebalances: &rebalances,
    };
    r.faults = l.fault_runs.iter().map(|f| crate::report::faults::build(f, &cx)).collect();
    harness_verdict(r, l.load_s);
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
}

/// Waves, replays, slowdowns and restarts: what happened, from the timeline and the drivers.
fn shape_metrics(
    r: &mut Report,
    s: &Scenario,
    plan: &Plan,
    members: &[Vec<consumer::MemberOutcome>],
    waves: &[crate::plan::WaveCounts],
) {
    use crate::report::shapes;
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

/// Did the harness limit the run? CPU at its cores, or send lag without backpressure. The
/// warning says whose CPU it was (fleetstorm's threads or librdkafka's) and whether the host was
/// busy with something else, so the reader knows what to change.
fn harness_verdict(r: &mut Report, load_s: f64) {
    if let Some(w) = judge_harness(&mut r.harness, &r.timeline, load_s, r.target.kind == "embedded") {
        r.warnings.insert(0, w);
    }
}

/// Fills `h` from the timeline's harness samples; the warning when the harness saturated.
fn judge_harness(
    h: &mut crate::report::HarnessReport,
    timeline: &[crate::recorder::TimelinePoint],
    load_s: f64,
    embedded: bool,
) -> Option<String> {
    let cores = h.cores.max(1);
    let load: Vec<&crate::recorder::TimelinePoint> =
        timeline.iter().filter(|p| f64::from(p.t) + 1.0 <= load_s.ceil()).collect();
    let points: Vec<crate::recorder::monitor::HarnessPoint> = load.iter().filter_map(|p| p.harness).collect();
    if !points.is_empty() {
        let n = points.len() as f32;
        h.cpu_pct_mean = points.iter().map(|p| p.cpu_pct).sum::<f32>() / n;
        h.cpu_pct_peak = points.iter().map(|p| p.cpu_pct).fold(0.0, f32::max);
        h.host_cpu_pct_mean = points.iter().map(|p| p.host_cpu_pct).sum::<f32>() / n;
        let rdk: Vec<f32> = points.iter().filter_map(|p| p.librdkafka_cpu_pct).collect();
        h.librdkafka_cpu_pct_mean = (!rdk.is_empty()).then(|| rdk.iter().sum::<f32>() / rdk.len() as f32);
    }
    h.rss_mib_peak = timeline.iter().filter_map(|p| p.harness).map(|p| p.rss_mib).fold(0.0, f32::max);
    h.cpu_saturated_s = points.iter().filter(|p| p.cpu_pct >= 90.0 * cores as f32).count() as u32;
    // Seconds the sender fell behind its schedule while the client's queue had room.
    let lagging: Vec<&crate::recorder::TimelinePoint> =
        load.iter().copied().filter(|p| p.send_lag_p99_us > 10_000 && p.backpressure == 0).collect();
    h.lagging_s = lagging.len() as u32;
    h.saturated = h.cpu_saturated_s >= 3 || h.lagging_s >= 3;
    if !h.saturated {
        return None;
    }
    let mut why = Vec::new();
    if h.cpu_saturated_s >= 3 {
        why.push(format!("{} s with fleetstorm's CPU at 90% or more of its {cores} core(s)", h.cpu_saturated_s));
    }
    if h.lagging_s >= 3 {
        why.push(format!("{} s with send lag p99 over 10 ms and no backpressure", h.lagging_s));
    }
    let mut explained = false;
    if let Some(rdk) = h.librdkafka_cpu_pct_mean {
        let own = (h.cpu_pct_mean - rdk).max(0.0);
        if rdk > own && rdk >= 25.0 {
            explained = true;
            why.push(format!(
                "most of fleetstorm's CPU went to librdkafka's threads ({rdk:.0}% of a core against {own:.0}% for \
                 fleetstorm's own){}",
                if embedded {
                    ", which include the embedded cluster's brokers"
                } else {
                    ": the Kafka client was busy, e.g. with many small requests (raise `linger`) or with slow \
                     acknowledgements"
                }
            ));
        }
    }
    // Seconds the sender fell behind while the host's CPU was busy and fleetstorm itself was
    // not: something else on the machine had the cores.
    let lagging_harness: Vec<crate::recorder::monitor::HarnessPoint> =
        lagging.iter().filter_map(|p| p.harness).collect();
    let contended: Vec<f32> = lagging_harness
        .iter()
        .filter(|x| x.host_cpu_pct >= 90.0 && x.cpu_pct < 50.0 * cores as f32)
        .map(|x| x.host_cpu_pct)
        .collect();
    if h.lagging_s >= 3 && contended.len() * 2 >= h.lagging_s as usize {
        explained = true;
        why.push(format!(
            "in {} of those seconds the host's CPU was {:.0}% busy on average while fleetstorm's own use \
             was low: other processes on this machine (a co-located target?) took the CPU fleetstorm needed \
             to keep its schedule",
            contended.len(),
            contended.iter().sum::<f32>() / contended.len() as f32
        ));
    }
    // Lag that neither fleetstorm's CPU, nor librdkafka's, nor a host busy all second explains:
    // say what was measured in those seconds (regression: a real-Kafka run on two cores gave a
    // verdict that named no cause for 4 s of lag).
    if h.lagging_s >= 3 && h.cpu_saturated_s < 3 && !explained && !lagging_harness.is_empty() {
        let n = lagging_harness.len() as f32;
        let own: f32 = lagging_harness.iter().map(|x| x.cpu_pct - x.librdkafka_cpu_pct.unwrap_or(0.0)).sum::<f32>() / n;
        let host: f32 = lagging_harness.iter().map(|x| x.host_cpu_pct).sum::<f32>() / n;
        if own < 50.0 * cores as f32 {
            why.push(format!(
                "in those seconds fleetstorm's own work used {own:.0}% of a core and the host {host:.0}% on \
                 average: the sender was kept from its schedule by something other than its own work (bursts \
                 of other processes' CPU too short for per-second figures, or waits inside the Kafka client)"
            ));
        }
    }
    Some(format!(
        "HARNESS SATURATED: results not valid for the target ({}){}",
        why.join("; "),
        if embedded { "; the embedded cluster runs inside fleetstorm and shares its CPU" } else { "" }
    ))
}

fn count_kind(members: &[consumer::MemberOutcome], kind: &str) -> u32 {
    members.iter().flat_map(|m| &m.rebalances).filter(|e| e.kind == kind).count() as u32
}

fn audit_counts(plan: &Plan, acks: &AckLedger, seen: &SeenLedger) -> AuditCounts {
    let describe = |st: Stream, seq: u64| {
        let class = plan.classes.get(usize::from(st.class)).map_or("?", |c| c.name.as_str());
        format!("{class}/{}#{seq}", plan.ids.render(u64::from(st.device)))
    };
    reconcile(acks, seen, &describe)
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
    use super::judge_harness;
    use crate::recorder::TimelinePoint;
    use crate::recorder::monitor::HarnessPoint;
    use crate::report::HarnessReport;

    fn second(t: u32, lag_us: u64, cpu: f32, rdk: f32, host: f32) -> TimelinePoint {
        TimelinePoint {
            t,
            send_lag_p99_us: lag_us,
            harness: Some(HarnessPoint {
                cpu_pct: cpu,
                librdkafka_cpu_pct: Some(rdk),
                rss_mib: 20.0,
                host_cpu_pct: host,
            }),
            ..TimelinePoint::default()
        }
    }

    fn judge(timeline: &[TimelinePoint]) -> (HarnessReport, Option<String>) {
        let mut h = HarnessReport { cores: 2, ..HarnessReport::default() };
        let w = judge_harness(&mut h, timeline, timeline.len() as f64, false);
        (h, w)
    }

    #[test]
    fn a_harness_that_kept_up_has_no_verdict() {
        let tl: Vec<_> = (0..10).map(|t| second(t, 400, 30.0, 10.0, 40.0)).collect();
        let (h, w) = judge(&tl);
        assert!(!h.saturated && w.is_none());
        assert_eq!(h.librdkafka_cpu_pct_mean, Some(10.0));
    }

    #[test]
    fn lag_on_a_host_busy_with_other_processes_is_blamed_on_them() {
        let tl: Vec<_> = (0..10).map(|t| second(t, 30_000, 15.0, 5.0, 98.0)).collect();
        let (h, w) = judge(&tl);
        assert!(h.saturated);
        let w = w.unwrap();
        assert!(w.contains("10 s with send lag p99 over 10 ms"), "{w}");
        assert!(w.contains("in 10 of those seconds the host's CPU was 98% busy"), "{w}");
        assert!(!w.contains("librdkafka's threads"), "{w}");
    }

    #[test]
    fn lag_with_librdkafka_busy_names_the_client_not_the_host() {
        let tl: Vec<_> = (0..10).map(|t| second(t, 30_000, 75.0, 68.0, 84.0)).collect();
        let (h, w) = judge(&tl);
        assert!(h.saturated);
        let w = w.unwrap();
        assert!(w.contains("librdkafka's threads (68% of a core against 7%"), "{w}");
        assert!(!w.contains("other processes"), "{w}");
    }

    #[test]
    fn on_the_embedded_cluster_librdkafka_threads_include_the_cluster() {
        let tl: Vec<_> = (0..10).map(|t| second(t, 30_000, 75.0, 68.0, 84.0)).collect();
        let mut h = HarnessReport { cores: 2, ..HarnessReport::default() };
        let w = judge_harness(&mut h, &tl, 10.0, true).unwrap();
        assert!(w.contains("which include the embedded cluster's brokers"), "{w}");
        assert!(!w.contains("the Kafka client was busy"), "{w}");
    }

    #[test]
    fn lag_without_a_busy_host_or_client_says_what_was_measured() {
        // Regression: real Kafka on two cores, 4 s of lag and a verdict that named no cause.
        let tl: Vec<_> = (0..10).map(|t| second(t, if t < 4 { 30_000 } else { 400 }, 20.0, 12.0, 75.0)).collect();
        let (h, w) = judge(&tl);
        assert_eq!((h.saturated, h.lagging_s), (true, 4));
        let w = w.unwrap();
        assert!(w.contains("fleetstorm's own work used 8% of a core and the host 75%"), "{w}");
        assert!(w.contains("kept from its schedule by something other than its own work"), "{w}");
        // Not said when a cause was named.
        let (_, busy) = judge(&(0..10).map(|t| second(t, 30_000, 15.0, 5.0, 98.0)).collect::<Vec<_>>());
        assert!(!busy.unwrap().contains("something other than its own work"));
    }

    #[test]
    fn cpu_at_the_cores_is_saturation_even_without_lag() {
        let tl: Vec<_> = (0..10).map(|t| second(t, 400, 195.0, 20.0, 99.0)).collect();
        let (h, w) = judge(&tl);
        assert_eq!(h.cpu_saturated_s, 10);
        assert!(w.unwrap().contains("fleetstorm's CPU at 90% or more of its 2 core(s)"));
    }
}
