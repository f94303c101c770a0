//! The run's lifecycle, and only that: set up → start drivers and faults → load → drain →
//! finish. Every stage builds its own parts from its own config: the drivers their client
//! properties (`driver::{producer,consumer,audit}::start`), the faults their scheduler, the report
//! its contents (`report::assemble`, pure functions of the measurements this file collects).
//!
//! 1. apply overrides, check the scenario against the profile (located like any diagnostic);
//! 2. connect (or start the embedded cluster), create topics, read watermarks, commit consumer
//!    groups' start offsets;
//! 3. start the collector, audit reader, group members and producers; wait until all are
//!    connected and every group has joined;
//! 4. start the clock: the load runs open-loop for the scenario's duration while this thread
//!    ticks the faults and watches for interrupts, a lost target and live gates;
//! 5. drain: producers wait for outstanding acknowledgements, readers catch up, bounded by the
//!    scenario's `drain`;
//! 6. reconcile the audit, assemble and write the report, print the summary.
//!
//! Whatever happens after the output directory exists, a report is written.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

use crate::clock::{Clock, MonotonicClock};
use crate::config::profile::{Profile, Redactor, TargetKind};
use crate::config::scenario::Scenario;
use crate::config::units::Dur;
use crate::config::{Loaded, gates as gate_grammar, validate};
use crate::cost::{self, CostFile, pricing::PricingFile};
use crate::driver::launch;
use crate::driver::target::Connection;
use crate::driver::{ClientEvents, Control, Shared, producer};
use crate::faults::Scheduler;
use crate::faults::mechanism::Mechanism;
use crate::plan::Plan;
use crate::plan::rng::mix;
use crate::recorder::audit::{Reach, Verdict, group_missed};
use crate::recorder::{Hist, LiveCounters};
use crate::report::assemble::{self, Ending, Load, RunInfo};
use crate::report::gates::Judge;
use crate::report::{Report, Status, StopCause, TargetInfo, summary};
use crate::signals::Interrupts;

mod campaign;
mod out;
mod watch;

pub use campaign::Campaign;

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
    /// Reuse a non-empty output directory, removing the previous run's files first.
    pub overwrite: bool,
    /// One shard of a campaign (`--shard I/N`).
    pub campaign: Option<Campaign>,
    /// Pricing files (`--pricing`), read and checked: the finished report is priced under each.
    pub pricing: Vec<PricingFile>,
    /// `--metrics-addr HOST:PORT`: serve live metrics there while the run runs.
    pub metrics_addr: Option<String>,
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
    /// Why `report.json` (or what is drawn from it) could not be written, if it could not.
    pub write_error: Option<String>,
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
    /// The scenario's gates (or the --gates file's), parsed and checked once, in config.
    gates: Vec<Judge>,
    bootstrap: String,
    brokers: Vec<i32>,
    /// The connection's OAUTHBEARER token source (its tally goes in the report).
    auth: crate::driver::auth::Auth,
    /// Where the profile's relative paths and fault commands are resolved.
    base_dir: PathBuf,
    campaign: Option<Campaign>,
    /// What the report says about the campaign (set once the start is agreed).
    campaign_info: Option<crate::report::CampaignInfo>,
    /// How `producer.instances: auto` was resolved.
    instances_why: Option<String>,
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
    // A cost gate needs a pricing file to judge it (and `cost[NAME]` the one of that name). A
    // shard of a campaign moves a part of the traffic: its cost gates are the merge's to judge
    // (`merge --pricing`), so a shard neither needs pricing for them nor judges them.
    let sharded = opts.campaign.as_ref().is_some_and(|c| !c.shard.is_whole());
    if !sharded {
        let priced: Vec<String> = opts.pricing.iter().map(|f| f.pricing.name.clone()).collect();
        let unpriced = gate_grammar::check_pricing(&prepared.gates, &prepared.scenario.gates, &priced);
        prepared.add(unpriced);
    }
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
    if let Some(c) = &opts.campaign
        && !c.shard.is_whole()
        && profile.kind == TargetKind::Embedded
    {
        return Err(RunError::Invalid(format!(
            "{}: a sharded run (--shard {}) needs a target every shard reaches; the embedded cluster lives inside \
             one process. Start `fleetstorm serve-embedded` and point a `kind: kafka` profile at it",
            pr.file.display(),
            c.shard
        )));
    }
    let (scenario, mut gates) = prepared.finish().map_err(|e| {
        RunError::Invalid(e.diagnostics().iter().map(|d| format!("{d}{against}")).collect::<Vec<_>>().join("\n"))
    })?;
    let groups: Vec<String> = scenario.consumers.iter().map(|g| g.name.clone()).collect();
    cost::check_groups(&opts.pricing, &groups).map_err(|e| RunError::Invalid(e.to_string()))?;
    if sharded {
        let (cost, rest): (Vec<_>, Vec<_>) =
            gates.into_iter().partition(|g| matches!(g.metric, gate_grammar::Metric::Cost(..)));
        gates = rest;
        for g in cost {
            notes.push(format!(
                "gate `{}` is not judged on a shard, which moves a part of the traffic: `fleetstorm merge --pricing` \
                 judges it on the campaign",
                g.spec.gate
            ));
        }
    }

    let run_id = match &opts.campaign {
        Some(c) => c.run_id(),
        None => mix(
            started.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0),
            &[u64::from(std::process::id())],
        ),
    };
    // Listening before anything else starts: a bad address (exit 2) or a port in use (exit 3)
    // stops the run here, before the output directory exists.
    let metrics = match &opts.metrics_addr {
        Some(addr) => Some(crate::live::bind(addr).map_err(|e| match e {
            crate::live::LiveError::BadAddress { .. } => RunError::Invalid(e.to_string()),
            e => RunError::CouldNotStart(e.to_string()),
        })?),
        None => None,
    };
    let dir = out::dir(opts, &scenario.name, started)?;
    let canonical = serde_json::to_vec(&scenario).unwrap_or_default();
    // `producer.instances: auto` becomes a number now (after the fingerprint, which keeps
    // `auto`: the same scenario compares with itself on another machine).
    let mut scenario = scenario;
    let reserved = usize::from(profile.kind == TargetKind::Embedded);
    let (instances, instances_why) = scenario.producer.instances.resolve(
        crate::recorder::monitor::cores(),
        crate::recorder::monitor::load_average(),
        reserved,
    );
    scenario.producer.instances = crate::config::scenario::Instances::Count(instances);
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
        gates: gates.into_iter().map(Judge::from).collect(),
        bootstrap: String::new(),
        brokers: Vec::new(),
        auth: crate::driver::auth::Auth::default(),
        base_dir,
        campaign: opts.campaign.clone(),
        campaign_info: None,
        instances_why,
    };
    let redactor = Arc::new(Redactor::for_run(&meta.profile, &meta.scenario));
    Ok(Runner {
        meta,
        redactor,
        intr: intr.clone(),
        progress: opts.progress,
        unpaced: opts.unpaced,
        summary_to_stderr: opts.summary_to_stderr,
        pricing: opts.pricing.clone(),
        metrics,
        live_server: None,
    }
    .go())
}

struct Runner {
    meta: Meta,
    /// Every secret of the profile and the scenario, known before anything is printed.
    redactor: Arc<Redactor>,
    intr: Interrupts,
    progress: bool,
    unpaced: Option<u64>,
    summary_to_stderr: bool,
    /// `--pricing`: price the finished report under each.
    pricing: Vec<PricingFile>,
    /// `--metrics-addr`: the socket, bound before the run; then the server, kept until the
    /// report is written (dropped with the runner).
    metrics: Option<std::net::TcpListener>,
    live_server: Option<crate::live::Server>,
}

/// What stopped the load early, if anything: the first cause wins.
#[derive(Default)]
struct Stop(Option<(StopCause, String)>);

impl Stop {
    fn set(&mut self, cause: StopCause, reason: impl Into<String>) {
        if self.0.is_none() {
            self.0 = Some((cause, reason.into()));
        }
    }

    fn ending(self) -> Ending {
        self.0.map_or_else(Ending::completed, |(cause, reason)| Ending::stopped(cause, reason))
    }
}

impl Runner {
    fn go(mut self) -> Finished {
        let s = self.meta.scenario.clone();
        let redactor = self.redactor.clone();
        let start: crate::recorder::Start = Arc::new(OnceLock::new());
        let events = Arc::new(ClientEvents::new(start.clone()));
        let shard = self.meta.campaign.as_ref().map(|c| c.shard).unwrap_or_default();
        let plan = Arc::new(Plan::from_scenario(&s).sharded(shard));
        let live = Arc::new(LiveCounters::new(plan.classes.len(), s.consumers.len()));
        if let Some(listener) = self.metrics.take() {
            let m = &self.meta;
            let id = crate::live::Identity {
                run_id: format!("{:016x}", m.run_id),
                scenario: s.name.clone(),
                profile: m.profile.name.clone(),
                target_kind: match m.profile.kind {
                    TargetKind::Embedded => "embedded".into(),
                    TargetKind::Kafka => "kafka".into(),
                },
                shard: (!shard.is_whole()).then(|| shard.to_string()),
            };
            let sources = crate::live::Sources {
                live: live.clone(),
                classes: plan.classes.iter().map(|c| c.name.clone()).collect(),
                groups: s.consumers.iter().map(|g| g.name.clone()).collect(),
                plan: plan.clone(),
                start: start.clone(),
            };
            match crate::live::Server::start(listener, &id, sources) {
                Ok(server) => {
                    tracing::info!("serving live metrics on http://{}/metrics", server.addr);
                    self.live_server = Some(server);
                }
                Err(e) => return self.fail_early(StopCause::Harness, e.to_string()),
            }
        }
        tracing::info!(
            "run {:016x}: {} devices, {} classes, planned {:.1} events/s for {}",
            self.meta.run_id,
            s.fleet.devices,
            s.fleet.classes.len(),
            plan.planned_rate(),
            s.duration
        );

        // 2. Set up the target: first undo what a run with this profile left applied when it
        // died (its journal), so that this one starts from a whole cluster.
        self.restore_left_faults();
        let p = &self.meta.profile;
        let target_desc = match p.kind {
            TargetKind::Embedded => format!("the embedded cluster ({} brokers)", p.embedded_brokers()),
            TargetKind::Kafka => p.bootstrap_servers.as_ref().map(|b| b.joined()).unwrap_or_default(),
        };
        tracing::info!("connecting to {target_desc}");
        let intr = self.intr.clone();
        let cancel: crate::driver::target::Cancel = Arc::new(move || intr.count() > 0);
        let conn = match Connection::open(p, events.clone(), redactor.clone(), cancel) {
            Ok(c) => c,
            Err(e) => return self.fail_early(StopCause::Setup, redactor.scrub(&e.to_string())),
        };
        self.meta.bootstrap = conn.bootstrap.clone();
        self.meta.brokers = conn.brokers.clone();
        self.meta.auth = conn.auth.clone();
        let layout = match launch::lay_out(&conn, &s, &plan, self.meta.run_id) {
            Ok(l) => l,
            Err(e) => return self.fail_early(StopCause::Setup, redactor.scrub(&e.to_string())),
        };
        self.meta.warnings.extend(layout.warnings.iter().cloned());
        let cancelled = || self.intr.count() > 0;
        let mut agreement = match &self.meta.campaign {
            Some(c) => {
                let opened = campaign::Agreement::open(&conn, c, &self.meta.fingerprint);
                match opened.and_then(|mut a| a.laid_out(&cancelled).map(|()| a)) {
                    Ok(a) => Some(a),
                    Err(e) => return self.fail_early(StopCause::Setup, redactor.scrub(&e.to_string())),
                }
            }
            None => None,
        };

        // 3. Start the drivers and wait until every client is connected and every group joined.
        let template = match Hist::template() {
            Ok(t) => t,
            Err(e) => return self.fail_early(StopCause::Harness, format!("histogram: {e}")),
        };
        let shared = Shared::new(&conn, events.clone(), redactor.clone(), start.clone(), template, self.meta.run_id);
        let opts = launch::Options { hlog_dir: self.meta.dir.clone(), unpaced: self.unpaced, live: Some(live) };
        let mut d = match launch::start(&s, &plan, &layout, shared, &opts) {
            Ok(d) => d,
            Err(e) => return self.fail_early(StopCause::Harness, e.to_string()),
        };
        // The target's own metrics, from now until the readers are joined.
        let probe = match conn.replica_probe() {
            Ok(p) => Some(Box::new(p) as Box<dyn crate::backbone::AdminProbe>),
            Err(e) => {
                self.meta.warnings.push(format!("backbone: no metadata probe ({})", redactor.scrub(&e.to_string())));
                None
            }
        };
        let sampler = match crate::backbone::Sampler::start(&self.meta.profile.metrics, probe, start.clone()) {
            Ok(s) => Some(s),
            Err(e) => {
                self.meta.warnings.push(format!("backbone: the target's metrics are not sampled ({e})"));
                None
            }
        };
        let (book, control) = (d.shared.book.clone(), d.shared.control.clone());
        let stats = d.shared.stats.clone();
        let mut stop = Stop::default();
        match d.wait_ready(Duration::from_secs(60), &|| self.intr.count() > 0) {
            launch::Ready::All => {}
            launch::Ready::Interrupted => stop.set(StopCause::Interrupted, "interrupted before the load started"),
            launch::Ready::Partly(w) => self.meta.warnings.push(w),
        }

        // 4. The load: at once, or at the instant the campaign's shards agreed on.
        if let Some(a) = &mut agreement
            && stop.0.is_none()
        {
            let cancelled = || self.intr.count() > 0;
            match a.ready(&cancelled) {
                Ok(at) => {
                    self.meta.campaign_info = Some(a.info(at));
                    self.meta.warnings.push(campaign::clock_note(a.skew_ms));
                    tracing::info!(
                        "campaign: load starts at {}",
                        humantime::format_rfc3339_millis(SystemTime::UNIX_EPOCH + Duration::from_millis(at))
                    );
                    if !campaign::sleep_until(at, &cancelled) {
                        stop.set(StopCause::Interrupted, "interrupted before the load started");
                    }
                }
                Err(e) => {
                    let reason = redactor.scrub(&e.to_string());
                    tracing::error!("{reason}");
                    stop.set(StopCause::Setup, reason);
                }
            }
        }
        let clock = MonotonicClock::start();
        let _ = start.set(clock);
        if stop.0.is_some() {
            control.stop_sending.store(true, Ordering::SeqCst);
            control.drain_until_us.store(0, Ordering::SeqCst);
        } else {
            tracing::info!("load started ({:.1}s after launch)", self.meta.t0.elapsed().as_secs_f64());
        }
        // Faults are injected by one shard only (shard 0), and recorded there.
        let fault_specs = if shard.index == 0 { &s.faults[..] } else { &[] };
        let mut faults = Scheduler::new(
            fault_specs,
            self.meta.profile.fault_mechanism().as_ref(),
            self.meta.base_dir.clone(),
            s.seed,
            plan.topics.clone(),
            clock,
        )
        .scrubbing(redactor.clone())
        .journaling(
            crate::faults::journal::Journal::for_profile(&self.meta.profile.name),
            &format!("{:016x}", self.meta.run_id),
        );
        let mut faults_restored = faults.is_empty();
        let gates = std::mem::take(&mut self.meta.gates);
        let mut watch = watch::Watch::new(&s, &gates);
        while d.producers.iter().any(|h| !h.is_finished()) {
            std::thread::sleep(Duration::from_millis(50));
            let now = clock.now_us();
            self.check_interrupts(&control, &clock, &mut stop);
            if !faults_restored {
                if now >= plan.duration_us || control.stop_sending.load(Ordering::Relaxed) {
                    // The load is over: bring every broker back before draining.
                    faults.restore_all(&conn, &book);
                    faults_restored = true;
                } else {
                    faults.tick(&conn, &book);
                }
            }
            if let Some((cause, reason, drain_until)) = watch.tick(now, &d, &events)
                && !control.stop_sending.load(Ordering::Relaxed)
            {
                tracing::error!("{}; stopping the load", redactor.scrub(&reason));
                stop.set(cause, reason);
                control.stop_sending.store(true, Ordering::SeqCst);
                control.drain_until_us.store(drain_until, Ordering::SeqCst);
            }
            if let Some(line) = watch.progress(now, &plan, &d, &faults.active()) {
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
        let (outcomes, failures) = d.join_producers();
        for f in failures {
            stop.set(StopCause::Harness, f);
        }
        let load_end_us = outcomes.iter().map(|o| o.last_send_us).max().unwrap_or(0).min(plan.duration_us.max(1));

        // 5. Drain the readers: until they caught up with every acknowledgement, or time is up;
        // then the audit reads on within a bound of its own (what it does not reach is
        // unverified, never lost).
        let drain_started = clock.now_us();
        let bounds = launch::Drain {
            readers_until_us: load_end_us.saturating_add(s.drain.as_micros()).max(drain_started),
            audit_for_us: s.audit.drain.as_micros(),
        };
        let audit_complete = d.drain(&clock, &bounds, &mut || self.check_interrupts(&control, &clock, &mut stop));
        let drain_s = (clock.now_us().saturating_sub(load_end_us)) as f64 / 1e6;
        let (ledgers, group_ids, audit_reader) = (d.ledgers.clone(), d.group_ids.clone(), d.audit_reader);
        let names: Vec<String> = s.consumers.iter().map(|g| g.name.clone()).collect();
        let joined = d.join_readers(s.consumers.len(), &names);
        self.meta.warnings.extend(joined.warnings.iter().cloned());
        for f in joined.failures {
            stop.set(StopCause::Harness, f);
        }
        let mut sampler = sampler;
        let settle = self.meta.profile.metrics.settle.0;
        if let Some(sm) = sampler.as_mut()
            && !settle.is_zero()
            && self.intr.count() == 0
        {
            // The cluster's recovery after the load: until the metadata shows every partition
            // led and in sync again (a restarted broker catching up), within the profile's bound.
            tracing::info!("waiting up to {:.0} s for every partition to be fully replicated", settle.as_secs_f64());
            let now_s = clock.now_us() as f64 / 1e6;
            sm.settle(settle, now_s, &mut || self.intr.count() > 0);
        }
        let backbone = sampler.map(crate::backbone::Sampler::finish);
        let Some(rec) = joined.recording else {
            return self.fail_early(StopCause::Harness, "the collector thread panicked".into());
        };

        // 6. Warnings the numbers need; reconcile; assemble and write the report.
        if conn.is_embedded() {
            self.meta.warnings.extend(launch::mock_retention_warning(&book, &plan));
        }
        if stop.0.is_none() && self.unpaced.is_none() && load_end_us + 1_000_000 < plan.duration_us {
            stop.set(StopCause::CutShort, "the load stopped before its duration");
        }
        drop(conn);

        let (acks, wave_counts) = producer::merge(&outcomes, plan.wave_instances().len());
        let reach = Reach { fully_read: book.fully_read(audit_reader), ordered: s.producer.idempotence };
        let verdict = joined.seen.map(|seen| Verdict::of(&plan, &acks, &seen, &reach));
        // A group's members on other shards read the rest of its partitions, so a shard alone
        // cannot say what the group missed.
        let missed = if shard.is_whole() {
            s.consumers.iter().zip(&ledgers).map(|(g, l)| group_missed(&plan, &acks, &g.topics, &l.merged())).collect()
        } else {
            if !s.consumers.is_empty() {
                self.meta.warnings.push(format!(
                    "shard {shard}: consumer groups' `missed` is not computed per shard (the group's members on other \
                     shards read the rest); the campaign's delivery is judged by the audit"
                ));
            }
            Vec::new()
        };
        let load = Load {
            rec: &rec,
            plan: &plan,
            outcomes: &outcomes,
            members: &joined.members,
            group_ids: &group_ids,
            audit_seconds: verdict.as_ref().map(|v| v.by_second.clone()),
            audit: verdict.map(|v| v.counts),
            audit_complete,
            audit_behind: book.lag(audit_reader),
            drain_s,
            load_s: load_end_us as f64 / 1e6,
            client_errors: events.errors_by_second(),
            fault_runs,
            partitions: &book.partitions,
            wave_counts,
            missed,
            unpaced: self.unpaced.is_some(),
            wire: Some(stats.measured(s.consumers.len())),
        };
        let mut report = self.assemble(stop.ending(), Some(load));
        if let Some(b) = backbone {
            crate::report::backbone::attach(&mut report, b);
        }
        // Priced before the gates, which may read the estimate.
        let cost = self.price(&mut report);
        report.gates = gates.iter().map(|g| g.evaluate(&report)).collect();
        if report.status != Status::Completed {
            for g in &mut report.gates {
                g.detail = format!("{} (run {}: partial data)", g.detail, report.status).trim().to_string();
            }
        }
        self.finish(report, cost)
    }

    /// `--pricing`: the report priced under each file, the estimates kept in it. A report that
    /// cannot be priced (no statistics, a 0 s load) says why in its warnings; its cost gates
    /// then fail as not priced.
    fn price(&self, report: &mut Report) -> Option<CostFile> {
        if self.pricing.is_empty() {
            return None;
        }
        match cost::attach(&self.meta.dir.display().to_string(), report, &self.pricing) {
            Ok(c) => Some(c),
            Err(e) => {
                let why = format!("the run was not priced: {e}");
                tracing::warn!("{why}");
                report.warnings.push(why);
                None
            }
        }
    }

    /// Undo the faults a dead run with this profile left applied; what was done becomes
    /// warnings of this run.
    fn restore_left_faults(&mut self) {
        let mechanism = Mechanism::new(self.meta.profile.fault_mechanism().as_ref(), self.meta.base_dir.clone());
        if mechanism.is_embedded() || matches!(mechanism, Mechanism::None) {
            return;
        }
        let journal = crate::faults::journal::Journal::for_profile(&self.meta.profile.name);
        match crate::faults::journal::restore_left(&journal, &mechanism, &MonotonicClock::start()) {
            Ok(r) => {
                for line in r.lines() {
                    let line = self.redactor.scrub(&format!("faults left by an earlier run: {line}"));
                    tracing::warn!("{line}");
                    self.meta.warnings.push(line);
                }
            }
            Err(e) => {
                let line = format!("faults left by an earlier run: {e}");
                tracing::warn!("{line}");
                self.meta.warnings.push(line);
            }
        }
    }

    fn check_interrupts(&self, control: &Control, clock: &MonotonicClock, stop: &mut Stop) {
        let n = self.intr.count();
        if n >= 1 && !control.stop_sending.load(Ordering::Relaxed) {
            control.stop_sending.store(true, Ordering::SeqCst);
            control.drain_until_us.store(clock.now_us() + 5_000_000, Ordering::SeqCst);
        }
        if n >= 1 {
            stop.set(StopCause::Interrupted, "interrupted");
        }
        if n >= 2 {
            control.hard_stop.store(true, Ordering::SeqCst);
        }
    }

    /// The run could not start or could not go on: write what is known (status aborted when it
    /// was interrupted meanwhile).
    fn fail_early(self, cause: StopCause, reason: String) -> Finished {
        let reason = self.redactor.scrub(&reason);
        tracing::error!("{reason}");
        let cause = if self.intr.count() > 0 { StopCause::Interrupted } else { cause };
        let report = self.assemble(Ending::stopped(cause, reason), None);
        self.finish(report, None)
    }

    fn finish(self, report: Report, cost: Option<CostFile>) -> Finished {
        // Whatever field a secret ended up in (a driver's error, a fault's command, a warning),
        // it leaves no file and no line of the summary.
        let report = self.redactor.scrub_all(report);
        let dir = self.meta.dir.clone();
        let path = dir.join("report.json");
        let write_error = match report.write(&dir).map_err(|e| format!("could not write {}: {e}", path.display())) {
            Ok(()) => report
                .write_derived(&dir)
                .err()
                .map(|e| format!("could not write the report's summary, charts or HTML in {}: {e}", dir.display())),
            Err(e) => Some(e),
        };
        // cost.json and cost.md beside the report, as `fleetstorm cost` writes them.
        let write_error = match (write_error, &cost) {
            (None, Some(c)) => cost::write(c, &dir).err().map(|e| e.to_string()),
            (e, _) => e,
        };
        if let Some(e) = &write_error {
            tracing::error!("{e}");
        }
        let shown = if write_error.is_some() { "(not written)".to_string() } else { path.display().to_string() };
        let text = summary::text(&report, &shown);
        if self.unpaced.is_some() || self.summary_to_stderr {
            eprint!("{text}");
        } else {
            print!("{text}");
        }
        for line in cost.iter().flat_map(cost::totals) {
            eprintln!("{line}");
        }
        Finished { report, dir, write_error }
    }

    fn assemble(&self, ending: Ending, load: Option<Load<'_>>) -> Report {
        let m = &self.meta;
        let info = RunInfo {
            scenario: &m.scenario,
            scenario_file: &m.scenario_file,
            fingerprint: &m.fingerprint,
            run_id: m.run_id,
            started: m.started,
            elapsed_s: m.t0.elapsed().as_secs_f64(),
            warnings: &m.warnings,
            target: TargetInfo { oauthbearer: m.auth.tally(), ..TargetInfo::of(&m.profile, &m.bootstrap, &m.brokers) },
            campaign: m.campaign_info.clone(),
            instances_why: m.instances_why.as_deref(),
        };
        assemble::assemble(&info, ending, load)
    }
}
