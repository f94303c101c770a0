//! Starting and joining a run's drivers. The run's lifecycle (`run.rs`) only dispatches: this
//! module lays the target out for the run (topics, watermarks, group start offsets), builds the
//! offset book and the collector, starts the audit reader, every group's members and the
//! producers (each of which builds its own client properties from its own spec), and joins them
//! when the run is over.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

use super::target::{Connection, MOCK_MAX_BYTES, MOCK_MAX_SETS, TargetError};
use super::{Shared, audit, consumer, group, producer};
use crate::clock::Clock;
use crate::config::scenario::{Scenario, StartOffset};
use crate::plan::Plan;
use crate::recorder::audit::SeenLedger;
use crate::recorder::{Collector, CollectorConfig, LiveCounters, OffsetBook, Recording};
use crate::wire::Filler;

/// Why the drivers could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the {what} thread: {source}")]
pub struct LaunchError {
    what: &'static str,
    source: std::io::Error,
}

fn thread(what: &'static str) -> impl FnOnce(std::io::Error) -> LaunchError {
    move |source| LaunchError { what, source }
}

/// The target's partitions as the run sees them: (topic index, partition), and their watermarks
/// before the load, in the same order.
pub struct Layout {
    pub partitions: Vec<(usize, i32)>,
    pub lows: Vec<i64>,
    pub highs: Vec<i64>,
    /// What the target could not do as the scenario asked (e.g. topic configs it ignores).
    pub warnings: Vec<String>,
}

/// Create or check the scenario's topics, read their watermarks, and commit each group's start
/// offsets under its id (see `group::start_offsets`).
pub fn lay_out(conn: &Connection, s: &Scenario, plan: &Plan, run_id: u64) -> Result<Layout, TargetError> {
    let topics = conn.ensure_topics(&s.topics)?;
    // A principal that may not write or read what the scenario needs would fail every send or
    // fetch: say so now, in one line, rather than after the load.
    let mut unverified = None;
    let denied = match conn.denials(&needs(s, run_id)) {
        Ok(d) => d,
        Err(TargetError::Refused(c)) => return Err(TargetError::Refused(c)),
        // A target that cannot say (no KIP-430 answer) is not refused for it: the run goes on
        // and the report says what could not be checked.
        Err(e) => {
            unverified =
                Some(format!("permissions unverified: the target did not say what this principal may do ({e})"));
            Vec::new()
        }
    };
    if let Some(first) = denied.first() {
        for d in &denied[1..] {
            tracing::error!("{d}");
        }
        return Err(TargetError::Refused(super::probe::Cause::Denied(first.clone())));
    }
    if !topics.created.is_empty() {
        tracing::info!("created topics: {}", topics.created.join(", "));
    }
    for w in &topics.warnings {
        tracing::warn!("{w}");
    }
    let marks = conn.watermarks(&plan.topics, &topics.partitions)?;
    let partitions: Vec<(usize, i32)> =
        topics.partitions.iter().enumerate().flat_map(|(t, n)| (0..*n as i32).map(move |p| (t, p))).collect();
    let mut warnings = topics.warnings;
    warnings.extend(unverified);
    warnings.extend(s.durability_shortfall(conn.brokers.len()));
    let layout = Layout {
        partitions,
        lows: marks.iter().map(|m| m.0).collect(),
        highs: marks.iter().map(|m| m.1).collect(),
        warnings,
    };
    // In a campaign, shard 0 commits (before it announces it has laid out); the others' members
    // join once every shard has, and find the offsets there.
    for g in s.consumers.iter().filter(|_| plan.shard.index == 0) {
        let id = group::group_id(g, &s.name, run_id);
        if let Some(offsets) = group::start_offsets(g, &plan.topics, &layout.partitions, &layout.lows, &layout.highs) {
            conn.commit_offsets(&id, &offsets)?;
        }
    }
    Ok(layout)
}

/// What a run of `s` needs of the target: DESCRIBE on every topic, WRITE where classes (and dead
/// letters) write, READ where groups and the audit read, READ on each group.
pub fn needs(s: &Scenario, run_id: u64) -> super::probe::Needs {
    use super::probe::Operation::{Describe, Read, Write};
    let mut n = super::probe::Needs::default();
    let mut add = |topic: &str, op| {
        let ops = n.topics.entry(topic.to_string()).or_insert_with(|| vec![Describe]);
        if !ops.contains(&op) {
            ops.push(op);
        }
    };
    for c in &s.fleet.classes {
        add(&c.topic, Write);
        if s.audit.enabled {
            add(&c.topic, Read);
        }
    }
    for g in &s.consumers {
        for t in &g.topics {
            add(t, Read);
        }
        if let Some(d) = &g.dead_letter {
            add(&d.topic, Write);
        }
    }
    n.groups = s.consumers.iter().map(|g| group::group_id(g, &s.name, run_id)).collect();
    n
}

/// A run's started drivers, and what the run watches them through.
pub struct Drivers {
    pub shared: Shared,
    pub producers: Vec<JoinHandle<producer::ProducerOutcome>>,
    members: Vec<(usize, JoinHandle<consumer::MemberOutcome>)>,
    pub ledgers: Vec<Arc<group::GroupLedger>>,
    audit: Option<JoinHandle<audit::AuditOutcome>>,
    collector: JoinHandle<Recording>,
    pub live: Arc<LiveCounters>,
    pub group_ids: Vec<String>,
    /// Each group's reader in the offset book, and the audit's.
    pub group_readers: Vec<usize>,
    pub audit_reader: usize,
}

/// What the drivers left when they were joined.
pub struct Joined {
    pub members: Vec<Vec<consumer::MemberOutcome>>,
    pub seen: Option<SeenLedger>,
    pub recording: Option<Recording>,
    /// Drivers that failed or threads that died, in words.
    pub failures: Vec<String>,
    /// What the report must say about how the drivers ended (members that never closed).
    pub warnings: Vec<String>,
}

/// How long group members may take to close (leave their group) once the run is over.
const MEMBER_CLOSE: Duration = Duration::from_secs(15);

/// How the run wants its drivers started.
pub struct Options {
    /// Where the collector writes HdrHistogram interval logs.
    pub hlog_dir: PathBuf,
    /// Max-rate benchmark: this many records, unpaced.
    pub unpaced: Option<u64>,
    /// The counters the collector keeps up to date for the run to watch (and `--metrics-addr`
    /// to serve); none: new ones, sized for the scenario.
    pub live: Option<Arc<LiveCounters>>,
}

/// The collector of a run of `s` (and of `bench consume`, which starts readers the same way):
/// interval logs in `hlog_dir`, `group_readers` the offset-book readers of the scenario's groups.
pub fn collector_config(
    s: &Scenario,
    plan: &Plan,
    shared: &Shared,
    live: Arc<LiveCounters>,
    hlog_dir: &std::path::Path,
    group_readers: Vec<usize>,
) -> CollectorConfig {
    CollectorConfig {
        live,
        hlog: Some(crate::recorder::hlog::HlogConfig {
            dir: hlog_dir.to_path_buf(),
            classes: plan.classes.iter().map(|c| c.name.clone()).collect(),
        }),
        classes: plan.classes.len(),
        versions: plan.firmware_names().to_vec(),
        groups: s.consumers.iter().map(|g| g.name.clone()).collect(),
        group_readers,
        warmup_us: plan.warmup_us,
        load_end_us: plan.duration_us,
        template: shared.template.clone(),
        book: shared.book.clone(),
        start: shared.start.clone(),
    }
}

/// Start the collector, the audit reader, every group's members and the producers. `shared.book`
/// is replaced by the run's offset book (partition ends, one reader per group, then the audit).
pub fn start(
    s: &Scenario,
    plan: &Arc<Plan>,
    layout: &Layout,
    mut shared: Shared,
    opts: &Options,
) -> Result<Drivers, LaunchError> {
    let counts: Vec<u32> =
        (0..plan.topics.len()).map(|t| layout.partitions.iter().filter(|(pt, _)| *pt == t).count() as u32).collect();
    let mut book = OffsetBook::new(&counts, &layout.highs);
    let topic_index = |name: &str| plan.topics.iter().position(|t| t == name).unwrap_or(0);
    let group_readers: Vec<usize> = s
        .consumers
        .iter()
        .map(|g| {
            let tix: Vec<usize> = g.topics.iter().map(|t| topic_index(t)).collect();
            let r = book.add_reader(&tix, if g.start == StartOffset::Earliest { &layout.lows } else { &layout.highs });
            if !plan.shard.is_whole() {
                book.set_local_only(r);
            }
            r
        })
        .collect();
    // The audit reads the topics the fleet writes (not, say, a dead-letter topic, whose copies
    // would look like duplicates).
    let fleet_topics: Vec<usize> =
        (0..plan.topics.len()).filter(|t| plan.classes.iter().any(|c| c.topic == *t)).collect();
    let audit_reader = book.add_reader(&fleet_topics, &layout.highs);
    shared.book = Arc::new(book);
    let live = opts.live.clone().unwrap_or_else(|| Arc::new(LiveCounters::new(plan.classes.len(), s.consumers.len())));
    let mut collector =
        Collector::new(collector_config(s, plan, &shared, live.clone(), &opts.hlog_dir, group_readers.clone()));
    let audit = if s.audit.enabled {
        let assignment: Vec<(String, i32, i64)> = layout
            .partitions
            .iter()
            .zip(&layout.highs)
            .filter(|((t, _), _)| fleet_topics.contains(t))
            .map(|((t, p), high)| (plan.topics[*t].clone(), *p, *high))
            .collect();
        let keyed = plan.classes.iter().map(|c| c.keyed).collect();
        let source = collector.source();
        let mine = audit::Mine { shard: plan.shard, seed: plan.seed };
        Some(
            audit::start(assignment, &plan.topics, keyed, mine, audit_reader, &shared, source)
                .map_err(thread("audit"))?,
        )
    } else {
        None
    };
    let (mut members, mut ledgers, mut group_ids) = (Vec::new(), Vec::new(), Vec::new());
    for (gi, g) in s.consumers.iter().enumerate() {
        let id = group::group_id(g, &s.name, shared.run_id);
        let at = group::Placement { index: gi, group_id: &id, reader: group_readers[gi], shard: plan.shard };
        let started = group::start(g, &at, &plan.topics, s.seed, &shared, &mut || collector.source())
            .map_err(thread("consumer"))?;
        members.extend(started.members.into_iter().map(|h| (gi, h)));
        ledgers.push(started.ledger);
        group_ids.push(id);
    }
    let launch = producer::Launch {
        plan: plan.clone(),
        filler: Arc::new(Filler::new(s.seed)),
        drain: s.drain.0,
        unpaced: opts.unpaced,
        keep_ledger: s.audit.enabled || !s.consumers.is_empty(),
    };
    let producers =
        producer::start(&s.producer, &launch, &shared, &mut || collector.source()).map_err(thread("producer"))?;
    let collector = collector.spawn().map_err(thread("collector"))?;
    Ok(Drivers { shared, producers, members, ledgers, audit, collector, live, group_ids, group_readers, audit_reader })
}

/// How long the readers may drain after the load.
pub struct Drain {
    /// The groups and the audit read until then (µs since the load started), or until the run's
    /// `control.drain_until_us` if earlier (an interrupt or a lost target).
    pub readers_until_us: u64,
    /// Then the audit alone reads on for at most this long.
    pub audit_for_us: u64,
}

/// How the wait for the clients ended.
pub enum Ready {
    All,
    Interrupted,
    /// Not every client was ready in time; the load starts anyway, and this says so.
    Partly(String),
}

impl Drivers {
    /// Wait until every client is connected and every group member has its partitions, for at
    /// most `limit`; `interrupted` is asked between looks.
    pub fn wait_ready(&self, limit: Duration, interrupted: &dyn Fn() -> bool) -> Ready {
        let (ready, expected) = (&self.shared.ready, self.shared.ready_expected.load(Ordering::SeqCst));
        let deadline = std::time::Instant::now() + limit;
        tracing::info!("waiting for {expected} clients to connect and consumer groups to join");
        while ready.load(Ordering::SeqCst) < expected {
            if interrupted() {
                return Ready::Interrupted;
            }
            if std::time::Instant::now() > deadline {
                let w = format!(
                    "only {} of {expected} clients were ready after {}s; the load started anyway",
                    ready.load(Ordering::SeqCst),
                    limit.as_secs()
                );
                tracing::warn!("{w}");
                return Ready::Partly(w);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ready::All
    }

    /// Drain the readers: until they caught up with every acknowledgement or the bounds are up,
    /// calling `tick` between looks (it may shorten the bounds through `control`); the groups then
    /// stop, the audit reads on within its own bound, then stops too. Whether the audit read
    /// everything acknowledged.
    pub fn drain(&self, clock: &dyn Clock, bounds: &Drain, tick: &mut dyn FnMut()) -> bool {
        let control = &self.shared.control;
        let started = clock.now_us();
        let cap = || control.drain_until_us.load(Ordering::Relaxed).max(started);
        let wait = |done: &dyn Fn() -> bool, until: u64, tick: &mut dyn FnMut()| loop {
            tick();
            if done() || control.hard() || clock.now_us() >= until.min(cap()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        wait(&|| self.caught_up(), bounds.readers_until_us, tick);
        control.stop_reading.store(true, Ordering::SeqCst);
        let book = &self.shared.book;
        let audit_until = clock.now_us().saturating_add(bounds.audit_for_us);
        if self.audit.is_some() {
            wait(&|| book.lag(self.audit_reader) == 0, audit_until, tick);
        }
        control.stop_audit.store(true, Ordering::SeqCst);
        self.audit.is_some() && book.lag(self.audit_reader) == 0
    }

    /// Whether every reader (groups and the audit) has read up to the acknowledged ends.
    pub fn caught_up(&self) -> bool {
        let book = &self.shared.book;
        (self.audit.is_none() || book.lag(self.audit_reader) == 0)
            && self.group_readers.iter().all(|r| book.lag(*r) == 0)
    }

    pub fn has_audit(&self) -> bool {
        self.audit.is_some()
    }

    /// Join the producers (they end on their own: load over, then drained).
    pub fn join_producers(&mut self) -> (Vec<producer::ProducerOutcome>, Vec<String>) {
        let mut failures = Vec::new();
        let mut outcomes = Vec::new();
        for h in self.producers.drain(..) {
            match h.join() {
                Ok(o) => {
                    failures.extend(o.error.clone());
                    outcomes.push(o);
                }
                Err(_) => failures.push("a producer thread panicked".into()),
            }
        }
        (outcomes, failures)
    }

    /// Join the readers and the collector (after `control.stop_reading`).
    pub fn join_readers(self, groups: usize, group_names: &[String]) -> Joined {
        let mut failures = Vec::new();
        let mut unclosed = Vec::new();
        let mut members: Vec<Vec<consumer::MemberOutcome>> = (0..groups).map(|_| Vec::new()).collect();
        // A member closes by leaving its group; a target that never answers keeps it waiting.
        // Its reads are all recorded by then: wait a bounded time, then go on without it.
        let deadline = std::time::Instant::now() + MEMBER_CLOSE;
        for (g, h) in self.members {
            while !h.is_finished() && std::time::Instant::now() < deadline && !self.shared.control.hard() {
                std::thread::sleep(Duration::from_millis(20));
            }
            if !h.is_finished() {
                unclosed.push(group_names.get(g).cloned().unwrap_or_default());
                continue;
            }
            match h.join() {
                Ok(o) => {
                    failures.extend(o.error.clone());
                    members[g].push(o);
                }
                Err(_) => failures.push("a consumer thread panicked".into()),
            }
        }
        let seen = match self.audit.map(JoinHandle::join) {
            Some(Ok(o)) => {
                failures.extend(o.error);
                Some(o.ledger)
            }
            Some(Err(_)) => {
                failures.push("the audit thread panicked".into());
                None
            }
            None => None,
        };
        let recording = self.collector.join().ok();
        if recording.is_none() {
            failures.push("the collector thread panicked".into());
        }
        let warnings = if unclosed.is_empty() {
            Vec::new()
        } else {
            vec![format!(
                "{} consumer group member(s) ({}) did not close within {}s: the target did not answer their leave of \
                 the group; what they read is recorded, their rebalance events and counts are missing",
                unclosed.len(),
                unclosed.join(", "),
                MEMBER_CLOSE.as_secs()
            )]
        };
        Joined { members, seen, recording, failures, warnings }
    }
}

/// The embedded cluster keeps at most 5 MiB or 100,000 message sets per partition: say where the
/// run outgrew that, since a reader that fell further behind missed records.
pub fn mock_retention_warning(book: &OffsetBook, plan: &Plan) -> Option<String> {
    let over: Vec<(usize, u64)> = book
        .acked_per_partition()
        .iter()
        .enumerate()
        .filter(|(_, (bytes, count))| *bytes > MOCK_MAX_BYTES || *count > MOCK_MAX_SETS)
        .map(|(i, (b, _))| (i, *b))
        .collect();
    let worst = over.iter().max_by_key(|(_, b)| *b)?;
    let (t, p) = book.partitions[worst.0];
    Some(format!(
        "embedded cluster retention exceeded on {} partition(s), up to {:.1} MiB in {}[{p}]: it keeps at most 5 MiB or \
         100,000 message sets per partition and drops the oldest, so a reader that fell further behind than that \
         missed records (the audit reads live and says whether it did)",
        over.len(),
        worst.1 as f64 / 1048576.0,
        plan.topics[t]
    ))
}
