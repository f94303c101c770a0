//! The consumer-group driver: one thread per group member, subscribed like any application.
//!
//! Metrics recorded (per one-second window, per group):
//! - `consumed` records and bytes; `foreign` records (not written by this run); `rereads`
//!   (records of this run the group had read before: replays, restarts, redelivery);
//! - end-to-end latency (consumption minus the record's intended send time) and event age
//!   (consumption minus its creation time), both for first reads only, on the harness's single
//!   monotonic clock;
//! - records routed to the dead-letter topic; consumer errors by kind;
//! - each partition's consumed position (for lag); every assignment and revocation, and the
//!   member's own leave when the run ends (`leave`, apart: it is no rebalance the target caused).
//!
//! Behaviour over time, from the scenario: per-record or per-batch processing time (a slow sink
//! falls behind exactly as a real one would), slowdowns (processing `factor` times longer),
//! stalls (no reads), replays (seek back, re-read, optionally rate-capped) and restarts (close,
//! leave the group, rejoin).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::client::OAuthToken;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::fetch::{self, Read};
use super::group::GroupLedger;
use super::{Control, Ctx, error_kind};
use crate::clock::{Clock, MonotonicClock};
use crate::config::dist::Dist;
use crate::config::scenario::{BatchSpec, GroupRestart, Replay, ReplayTarget, Slowdown};
use crate::config::units::Dur;
use crate::plan::rng::{SplitMix, mix, unit};
use crate::recorder::audit::Stream;
use crate::recorder::{ConsumerWindow, Hist, OffsetBook, Source, Start, WindowClock, WindowData};
use crate::report::schema::{RebalanceEvent, RebalanceKind};
use crate::wire;

/// Dead-letter routing of a group.
#[derive(Clone)]
pub struct DeadLetterArgs {
    pub topic: String,
    pub rate: f64,
    pub config: ClientConfig,
}

/// Everything a group member needs.
pub struct MemberArgs {
    pub group: usize,
    pub member: u32,
    pub config: ClientConfig,
    pub topics: Vec<String>,
    /// All scenario topics, in plan order (for partition indexes).
    pub plan_topics: Vec<String>,
    pub ctx: Ctx,
    pub start: Start,
    pub control: Arc<Control>,
    pub source: Source,
    pub template: Hist,
    pub book: Arc<OffsetBook>,
    /// This group's reader in the offset book.
    pub reader: usize,
    pub run_id: u64,
    pub processing: Option<Dist<Dur>>,
    pub batch: Option<BatchSpec>,
    pub slowdowns: Vec<Slowdown>,
    pub replays: Vec<Replay>,
    pub restarts: Vec<GroupRestart>,
    pub dead_letter: Option<DeadLetterArgs>,
    pub ledger: Arc<GroupLedger>,
    pub seed: u64,
    /// Incremented when the member first receives an assignment (or fails to start).
    pub ready: Arc<AtomicU32>,
    /// The group's librdkafka statistics.
    pub stats: Arc<super::stats::Meter>,
}

/// A replay as one member performed it.
#[derive(Clone, Debug, Default)]
pub struct ReplayDone {
    pub index: usize,
    pub at_us: u64,
    /// Partitions sought back, and the records between the new positions and the old ones.
    pub partitions: usize,
    pub records_back: u64,
    /// When the member had read back up to where it was (None: not before the end).
    pub caught_up_us: Option<u64>,
    pub error: Option<String>,
}

/// What a member reports when it ends.
#[derive(Debug, Default)]
pub struct MemberOutcome {
    pub consumed: u64,
    pub rebalances: Vec<RebalanceEvent>,
    pub replays: Vec<ReplayDone>,
    /// When each restart closed the member and when it rejoined (µs).
    pub restarts: Vec<(u64, Option<u64>)>,
    pub dead_letter_acked: u64,
    pub dead_letter_failed: u64,
    pub error: Option<String>,
}

struct MCtx {
    base: Ctx,
    ready: Arc<AtomicU32>,
    joined: Arc<AtomicBool>,
    member: u32,
    start: Start,
    rebalances: Arc<Mutex<Vec<RebalanceEvent>>>,
    /// Set when the run is over and the member closes: its revocation is then a `leave`.
    leaving: AtomicBool,
    stats: Arc<super::stats::Meter>,
}

impl ClientContext for MCtx {
    fn stats_raw(&self, statistics: &[u8]) {
        self.stats.record(statistics);
    }

    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(&self, config: Option<&str>) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        self.base.generate_oauth_token(config)
    }

    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.base.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.base.error(error, reason);
    }
}

impl ConsumerContext for MCtx {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let t_us = self.start.get().map_or(0, |c| c.now_us());
        let (kind, partitions) = match rebalance {
            Rebalance::Assign(tpl) => {
                if !self.joined.swap(true, Ordering::SeqCst) {
                    self.ready.fetch_add(1, Ordering::SeqCst);
                }
                (RebalanceKind::Assign, tpl.count())
            }
            Rebalance::Revoke(tpl) if self.leaving.load(Ordering::SeqCst) => (RebalanceKind::Leave, tpl.count()),
            Rebalance::Revoke(tpl) => (RebalanceKind::Revoke, tpl.count()),
            Rebalance::Error(e) => {
                tracing::warn!("rebalance error: {e}");
                return;
            }
        };
        let mut r = self.rebalances.lock().unwrap_or_else(|p| p.into_inner());
        r.push(RebalanceEvent { t_us, member: self.member, kind, partitions });
    }
}

/// Counts the dead-letter producer's deliveries.
#[derive(Default)]
struct DlqCtx {
    acked: AtomicU64,
    failed: AtomicU64,
    auth: super::auth::Auth,
}

impl ClientContext for DlqCtx {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(&self, config: Option<&str>) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        self.auth.generate(config)
    }
}

impl ProducerContext for DlqCtx {
    type DeliveryOpaque = ();

    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        match r {
            Ok(_) => self.acked.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// Start a group member on its own thread.
pub fn spawn(args: MemberArgs) -> std::io::Result<std::thread::JoinHandle<MemberOutcome>> {
    std::thread::Builder::new().name(format!("consumer-{}-{}", args.group, args.member)).spawn(move || run(args))
}

/// Decoding shared by group members and the audit reader.
pub(super) struct Reading {
    pub book: Arc<OffsetBook>,
    pub reader: usize,
}

impl Reading {
    /// Note a read at `offset` of partition `partition` of plan topic `topic`; return the
    /// flattened partition index.
    pub fn at(&self, topic: usize, partition: i32, offset: i64) -> Option<usize> {
        let idx = self.book.index(topic, partition)?;
        self.book.consumed(self.reader, idx, offset);
        Some(idx)
    }
}

/// A timed change in the member's behaviour.
#[derive(Clone, Debug)]
enum Cue {
    SlowFrom(f64),
    SlowTo,
    StallFrom,
    StallTo,
    Replay(usize),
    Restart(Duration),
}

fn cues(args: &MemberArgs) -> Vec<(u64, Cue)> {
    let mut v = Vec::new();
    for s in &args.slowdowns {
        let (from, to) = (s.at.as_micros(), s.at.as_micros() + s.lasts.as_micros());
        if s.stall {
            v.push((from, Cue::StallFrom));
            v.push((to, Cue::StallTo));
        } else {
            v.push((from, Cue::SlowFrom(s.factor.unwrap_or(1.0))));
            v.push((to, Cue::SlowTo));
        }
    }
    for (i, r) in args.replays.iter().enumerate() {
        v.push((r.at.as_micros(), Cue::Replay(i)));
    }
    for r in &args.restarts {
        v.push((r.at.as_micros(), Cue::Restart(r.down.0)));
    }
    v.sort_by_key(|(t, _)| *t);
    v
}

/// A replay in progress: (replay index, positions to read back up to, read cap per second,
/// records read since, when it started).
type Replaying = (usize, Vec<(String, i32, i64)>, Option<f64>, u64, u64);

struct Member<'a> {
    args: &'a MemberArgs,
    out: MemberOutcome,
    window: ConsumerWindow,
    windows: WindowClock,
    rebalances: Arc<Mutex<Vec<RebalanceEvent>>>,
    joined: Arc<AtomicBool>,
    rng: SplitMix,
    busy_until: u64,
    slow: f64,
    stalled: bool,
    batch_count: u32,
    replaying: Option<Replaying>,
    dlq: Option<BaseProducer<DlqCtx>>,
}

impl Member<'_> {
    fn connect(&mut self) -> Result<BaseConsumer<MCtx>, String> {
        let ctx = MCtx {
            base: self.args.ctx.clone(),
            ready: self.args.ready.clone(),
            joined: self.joined.clone(),
            member: self.args.member,
            start: self.args.start.clone(),
            rebalances: self.rebalances.clone(),
            leaving: AtomicBool::new(false),
            stats: self.args.stats.clone(),
        };
        let consumer: BaseConsumer<MCtx> = self
            .args
            .config
            .create_with_context(ctx)
            .map_err(|e| format!("could not create consumer: {}", self.args.ctx.redactor.scrub(&e.to_string())))?;
        let topics: Vec<&str> = self.args.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics).map_err(|e| format!("could not subscribe: {e}"))?;
        Ok(consumer)
    }

    fn flush(&mut self, second: u32) {
        let w = std::mem::replace(&mut self.window, ConsumerWindow::new(&self.args.template));
        self.args.source.send(second, WindowData::Consumer { group: self.args.group, window: Box::new(w) });
    }

    fn roll(&mut self, clock: Option<MonotonicClock>) {
        if let Some(c) = clock
            && let Some(second) = self.windows.roll(c.now_us())
        {
            self.flush(second);
        }
        if let Some(p) = &self.dlq {
            p.poll(Duration::ZERO);
        }
    }

    fn stopping(&self) -> bool {
        self.args.control.stop_reading.load(Ordering::Relaxed) || self.args.control.hard()
    }

    /// Stay busy until `until` (simulated work or a pause), still flushing windows.
    fn wait_until(&mut self, until: u64, clock: MonotonicClock) {
        loop {
            self.roll(Some(clock));
            let now = clock.now_us();
            if now >= until || self.stopping() {
                return;
            }
            std::thread::sleep(Duration::from_micros((until - now).min(50_000)));
        }
    }

    fn work(&mut self, now: u64, clock: MonotonicClock) {
        let a = self.args;
        let cost = if let Some(d) = &a.processing {
            Some(d.sample(&mut self.rng).as_micros())
        } else if let Some(b) = &a.batch {
            self.batch_count += 1;
            if self.batch_count >= b.size {
                self.batch_count = 0;
                Some(b.time.sample(&mut self.rng).as_micros())
            } else {
                None
            }
        } else {
            None
        };
        if let Some(us) = cost {
            // Work is back to back: an oversleep of the previous record is paid back, and only a
            // real idle gap (waiting for data) restarts the clock of work.
            let base = if now > self.busy_until + 1_000 { now } else { self.busy_until };
            self.busy_until = base + (us as f64 * self.slow) as u64;
            self.wait_until(self.busy_until, clock);
        }
    }

    fn handle(&mut self, m: &Read<'_>, reading: &Reading, clock: Option<MonotonicClock>) {
        let now = clock.map_or(0, |c| c.now_us());
        if let Some(t) = m.topic {
            reading.at(t, m.partition, m.offset);
        }
        self.window.consumed += 1;
        self.out.consumed += 1;
        let payload = m.payload.unwrap_or_default();
        self.window.bytes += payload.len() as u64;
        match (wire::decode(payload), clock) {
            (Some(stamp), Some(c)) if stamp.run == self.args.run_id => {
                let stream = Stream { class: stamp.class, device: stamp.device };
                if self.args.ledger.first_read(stream, stamp.seq) {
                    let origin = c.origin_unix_us();
                    self.window.e2e.record(now.saturating_sub(stamp.intended_us.saturating_sub(origin)));
                    self.window.age.record(now.saturating_sub(stamp.created_us.saturating_sub(origin)));
                    if let Some(dl) = &self.args.dead_letter
                        && unit(mix(self.args.seed, &[0x444c, stamp.class.into(), stamp.device.into(), stamp.seq]))
                            < dl.rate
                    {
                        self.dead_letter(m, &dl.topic);
                    }
                } else {
                    self.window.rereads += 1;
                    self.window.reread_bytes += payload.len() as u64;
                }
            }
            _ => {
                self.window.foreign += 1;
                self.window.foreign_bytes += payload.len() as u64;
            }
        }
        if let Some((_, _, Some(cap), read, since)) = &mut self.replaying
            && let Some(c) = clock
        {
            *read += 1;
            // Rate cap while catching up: never ahead of `cap` records per second.
            let due = *since + (*read as f64 / *cap * 1e6) as u64;
            if due > c.now_us() {
                self.wait_until(due, c);
            }
        }
        if let Some(c) = clock {
            self.work(now, c);
        }
    }

    fn dead_letter(&mut self, m: &Read<'_>, topic: &str) {
        let Some(p) = &self.dlq else { return };
        let mut record: BaseRecord<'_, [u8], [u8], ()> = BaseRecord::to(topic);
        if let Some(k) = m.key {
            record = record.key(k);
        }
        if let Some(v) = m.payload {
            record = record.payload(v);
        }
        match p.send(record) {
            Ok(()) => self.window.dead_lettered += 1,
            Err((e, _)) => *self.window.errors.entry(format!("dead_letter.{}", error_kind(&e))).or_insert(0) += 1,
        }
    }

    fn replay(&mut self, consumer: &BaseConsumer<MCtx>, index: usize, now: u64) {
        let spec = &self.args.replays[index];
        let mut done = ReplayDone { index, at_us: now, ..ReplayDone::default() };
        let result = (|| -> Result<Vec<(String, i32, i64)>, String> {
            let position = consumer.position().map_err(|e| e.to_string())?;
            let timeout = Duration::from_secs(10);
            let mut target = TopicPartitionList::new();
            let mut before = Vec::new();
            for el in position.elements() {
                let here = match el.offset() {
                    Offset::Offset(o) => o,
                    _ => consumer.fetch_watermarks(el.topic(), el.partition(), timeout).map_err(|e| e.to_string())?.1,
                };
                before.push((el.topic().to_string(), el.partition(), here));
                let to = match &spec.to {
                    ReplayTarget::Earliest => Offset::Beginning,
                    ReplayTarget::Records(n) => Offset::Offset((here - i64::try_from(*n).unwrap_or(i64::MAX)).max(0)),
                    ReplayTarget::Ago(d) => {
                        let ms = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |t| t.as_millis() as i64)
                            - (d.as_micros() / 1000) as i64;
                        Offset::Offset(ms)
                    }
                };
                target.add_partition_offset(el.topic(), el.partition(), to).map_err(|e| e.to_string())?;
            }
            if matches!(spec.to, ReplayTarget::Ago(_)) {
                target = consumer.offsets_for_times(target, timeout).map_err(|e| e.to_string())?;
            }
            let mut records_back = 0;
            for (el, (_, _, here)) in target.elements().iter().zip(&before) {
                let low = consumer.fetch_watermarks(el.topic(), el.partition(), timeout).map_or(0, |w| w.0);
                let to = match el.offset() {
                    Offset::Offset(o) => o.max(low),
                    Offset::End => *here,
                    _ => low,
                };
                records_back += u64::try_from(here - to).unwrap_or(0);
            }
            done.partitions = before.len();
            done.records_back = records_back;
            consumer.seek_partitions(target, timeout).map_err(|e| e.to_string())?;
            Ok(before)
        })();
        match result {
            Ok(before) => {
                tracing::info!(
                    "group member {}#{}: replay {} seeks back {} records on {} partitions",
                    self.args.group,
                    self.args.member,
                    index + 1,
                    done.records_back,
                    done.partitions
                );
                self.replaying = Some((index, before, spec.rate.map(|r| r.as_per_sec()), 0, now));
            }
            Err(e) => {
                tracing::warn!("replay {} failed: {e}", index + 1);
                done.error = Some(e);
            }
        }
        self.out.replays.push(done);
    }

    /// Read with `consumer` until the run stops (None) or a restart is due: (when, how long to
    /// stay away). Records come in batches ([`fetch::Batches`]); a member that spends time per
    /// record (processing, a rate-capped replay) takes one at a time, so that it serves its
    /// client's events (rebalances) between records as before.
    fn serve(
        &mut self,
        consumer: &BaseConsumer<MCtx>,
        reading: &Reading,
        cues: &[(u64, Cue)],
        next_cue: &mut usize,
    ) -> Option<(u64, Duration)> {
        let mut batches = fetch::Batches::new(consumer, &[], &self.args.plan_topics);
        while !self.stopping() {
            let clock = self.args.start.get().copied();
            if let Some(c) = clock {
                while *next_cue < cues.len() && c.now_us() >= cues[*next_cue].0 {
                    let now = c.now_us();
                    let cue = cues[*next_cue].1.clone();
                    *next_cue += 1;
                    match cue {
                        Cue::SlowFrom(f) => self.slow = f,
                        Cue::SlowTo => self.slow = 1.0,
                        Cue::StallFrom => self.stalled = true,
                        Cue::StallTo => self.stalled = false,
                        Cue::Replay(i) => self.replay(consumer, i, now),
                        Cue::Restart(down) => return Some((now, down)),
                    }
                }
                if self.stalled {
                    self.wait_until(c.now_us() + 50_000, c);
                    continue;
                }
            }
            let paced = self.args.processing.is_some()
                || self.args.batch.is_some()
                || matches!(self.replaying, Some((_, _, Some(_), _, _)));
            batches.read(Duration::from_millis(10), if paced { 1 } else { fetch::BATCH }, |r| match r {
                // The clock may have started while reading: read it again for this record.
                Ok(r) => {
                    self.handle(r, reading, self.args.start.get().copied());
                    // At-least-once: an offset is stored (and later committed) only once its
                    // record is processed. With librdkafka's automatic store, records that
                    // rust-rdkafka's `BaseConsumer` drop polls and discards while closing would
                    // be committed unread.
                    if let Err(e) = r.store_offset() {
                        *self.window.errors.entry(format!("offset_store.{}", error_kind(&e))).or_insert(0) += 1;
                    }
                }
                Err(e) => *self.window.errors.entry(error_kind(&e)).or_insert(0) += 1,
            });
            if let Some(c) = clock {
                self.check_replay(consumer, c.now_us());
            }
            self.roll(clock);
        }
        None
    }

    /// Has the replaying member read back up to where it was?
    fn check_replay(&mut self, consumer: &BaseConsumer<MCtx>, now: u64) {
        let Some((index, before, ..)) = &self.replaying else { return };
        let Ok(position) = consumer.position() else { return };
        let caught_up = before.iter().all(|(t, p, here)| {
            position.find_partition(t, *p).is_none_or(|el| matches!(el.offset(), Offset::Offset(o) if o >= *here))
        });
        if caught_up {
            let index = *index;
            if let Some(r) = self.out.replays.iter_mut().rev().find(|r| r.index == index) {
                r.caught_up_us = Some(now);
            }
            self.replaying = None;
        }
    }
}

fn run(args: MemberArgs) -> MemberOutcome {
    let joined = Arc::new(AtomicBool::new(false));
    let dlq_ctx = || DlqCtx { auth: args.ctx.auth.clone(), ..DlqCtx::default() };
    let dlq = args.dead_letter.as_ref().and_then(|dl| match dl.config.create_with_context(dlq_ctx()) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::error!("could not create the dead-letter producer: {e}");
            None
        }
    });
    let mut m = Member {
        args: &args,
        out: MemberOutcome::default(),
        window: ConsumerWindow::new(&args.template),
        windows: WindowClock::default(),
        rebalances: Arc::new(Mutex::new(Vec::new())),
        joined: joined.clone(),
        rng: SplitMix::new(mix(args.seed, &[0x434f, args.group as u64, u64::from(args.member)])),
        busy_until: 0,
        slow: 1.0,
        stalled: false,
        batch_count: 0,
        replaying: None,
        dlq,
    };
    let mut consumer = match m.connect() {
        Ok(c) => Some(c),
        Err(e) => {
            m.out.error = Some(e);
            None
        }
    };
    let reading = Reading { book: args.book.clone(), reader: args.reader };
    let cues = cues(&args);
    let mut next_cue = 0;
    // One consumer's life per turn: a restart closes it (leaving the group, committing
    // offsets), stays away, and rejoins with a new one.
    while let Some(cons) = consumer.take() {
        let Some((at, down)) = m.serve(&cons, &reading, &cues, &mut next_cue) else {
            consumer = Some(cons);
            break;
        };
        drop(cons);
        let Some(c) = args.start.get().copied() else { break };
        m.wait_until(c.now_us() + u64::try_from(down.as_micros()).unwrap_or(0), c);
        match m.connect() {
            Ok(cons) => {
                m.out.restarts.push((at, Some(c.now_us())));
                consumer = Some(cons);
            }
            Err(e) => {
                m.out.restarts.push((at, None));
                m.out.error = Some(format!("could not rejoin after a restart: {e}"));
            }
        }
    }
    let last = m.windows.current();
    m.flush(last);
    // Done with the recorder before closing: a target that never answers the group leave keeps
    // the close waiting, and must not keep the collector (and so the report) waiting with it.
    args.source.done();
    if let Some(c) = &consumer {
        c.context().leaving.store(true, Ordering::SeqCst);
    }
    drop(consumer);
    if let Some(p) = &m.dlq {
        let _ = p.flush(Duration::from_secs(10));
        m.out.dead_letter_acked = p.context().acked.load(Ordering::Relaxed);
        m.out.dead_letter_failed = p.context().failed.load(Ordering::Relaxed);
    }
    m.out.rebalances = std::mem::take(&mut *m.rebalances.lock().unwrap_or_else(|p| p.into_inner()));
    if !joined.load(Ordering::SeqCst) {
        // Never joined: do not leave the run waiting for this member.
        args.ready.fetch_add(1, Ordering::SeqCst);
    }
    m.out
}
