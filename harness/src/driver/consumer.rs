//! The consumer-group driver: one thread per group member, subscribed like any application.
//!
//! Metrics recorded (per one-second window, per group):
//! - `consumed` records and bytes, and `foreign` records (not written by this run);
//! - end-to-end latency: consumption time minus the record's intended send time, on the
//!   harness's single monotonic clock (producers and consumers share the process);
//! - consumer errors by kind; each partition's consumed position (for lag);
//! - rebalances (partition assignments and revocations) of the member.
//!
//! With `processing_time`, each record costs simulated work: the member is busy for a drawn
//! duration before it polls again, so a slow sink falls behind exactly as a real one would.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};

use super::{Control, Ctx, error_kind};
use crate::clock::{Clock, MonotonicClock};
use crate::config::dist::Dist;
use crate::config::units::Dur;
use crate::plan::rng::{SplitMix, mix};
use crate::recorder::{ConsumerWindow, Hist, OffsetBook, RebalanceEvent, Source, Start, WindowClock, WindowData};
use crate::wire;

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
    pub seed: u64,
    /// Incremented when the member first receives an assignment (or fails to start).
    pub ready: Arc<AtomicU32>,
}

/// What a member reports when it ends.
#[derive(Debug, Default)]
pub struct MemberOutcome {
    pub consumed: u64,
    pub rebalances: Vec<RebalanceEvent>,
    pub error: Option<String>,
}

struct MCtx {
    base: Ctx,
    ready: Arc<AtomicU32>,
    joined: AtomicBool,
    member: u32,
    start: Start,
    rebalances: Mutex<Vec<RebalanceEvent>>,
}

impl ClientContext for MCtx {
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
                ("assign", tpl.count())
            }
            Rebalance::Revoke(tpl) => ("revoke", tpl.count()),
            Rebalance::Error(e) => {
                tracing::warn!("rebalance error: {e}");
                return;
            }
        };
        let mut r = self.rebalances.lock().unwrap_or_else(|p| p.into_inner());
        r.push(RebalanceEvent { t_us, member: self.member, kind: kind.into(), partitions });
    }
}

/// Start a group member on its own thread.
pub fn spawn(args: MemberArgs) -> std::io::Result<std::thread::JoinHandle<MemberOutcome>> {
    std::thread::Builder::new().name(format!("consumer-{}-{}", args.group, args.member)).spawn(move || run(args))
}

/// Decoding shared by group members and the audit reader.
pub(super) struct Reading {
    pub plan_topics: Vec<String>,
    pub book: Arc<OffsetBook>,
    pub reader: usize,
}

impl Reading {
    /// Note the record's position; return the flattened partition index.
    pub fn position(&self, m: &BorrowedMessage<'_>) -> Option<usize> {
        let t = self.plan_topics.iter().position(|t| t == m.topic())?;
        let idx = self.book.index(t, m.partition())?;
        self.book.consumed(self.reader, idx, m.offset());
        Some(idx)
    }
}

fn run(args: MemberArgs) -> MemberOutcome {
    let mut out = MemberOutcome::default();
    let ctx = MCtx {
        base: args.ctx.clone(),
        ready: args.ready.clone(),
        joined: AtomicBool::new(false),
        member: args.member,
        start: args.start.clone(),
        rebalances: Mutex::new(Vec::new()),
    };
    let consumer: BaseConsumer<MCtx> = match args.config.create_with_context(ctx) {
        Ok(c) => c,
        Err(e) => {
            out.error = Some(format!("could not create consumer: {}", args.ctx.redactor.scrub(&e.to_string())));
            args.ready.fetch_add(1, Ordering::SeqCst);
            args.source.done();
            return out;
        }
    };
    let topics: Vec<&str> = args.topics.iter().map(String::as_str).collect();
    if let Err(e) = consumer.subscribe(&topics) {
        out.error = Some(format!("could not subscribe: {e}"));
        args.ready.fetch_add(1, Ordering::SeqCst);
        args.source.done();
        return out;
    }
    let reading = Reading { plan_topics: args.plan_topics.clone(), book: args.book.clone(), reader: args.reader };
    let mut rng = SplitMix::new(mix(args.seed, &[0x434f, args.group as u64, u64::from(args.member)]));
    let mut window = ConsumerWindow::new(&args.template);
    let mut windows = WindowClock::default();
    let mut busy_until = 0u64;
    let flush = |window: &mut ConsumerWindow, second: u32| {
        let w = std::mem::replace(window, ConsumerWindow::new(&args.template));
        args.source.send(second, WindowData::Consumer { group: args.group, window: Box::new(w) });
    };

    while !args.control.stop_reading.load(Ordering::Relaxed) && !args.control.hard() {
        let clock = args.start.get().copied();
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let now = clock.map_or(0, |c| c.now_us());
                reading.position(&m);
                window.consumed += 1;
                out.consumed += 1;
                let payload = m.payload().unwrap_or_default();
                window.bytes += payload.len() as u64;
                match (wire::decode(payload), clock) {
                    (Some(stamp), Some(c)) if stamp.run == args.run_id => {
                        let intended = stamp.intended_us.saturating_sub(c.origin_unix_us());
                        window.e2e.record(now.saturating_sub(intended));
                    }
                    _ => window.foreign += 1,
                }
                if let (Some(dist), Some(c)) = (&args.processing, clock) {
                    // Work is back to back: an oversleep of the previous record is paid back, and
                    // only a real idle gap (waiting for data) restarts the clock of work.
                    let base = if now > busy_until + 1_000 { now } else { busy_until };
                    busy_until = base + dist.sample(&mut rng).as_micros();
                    work_until(busy_until, &c, &args.control, &mut windows, &mut window, &flush);
                }
            }
            Some(Err(e)) => {
                *window.errors.entry(error_kind(&e)).or_insert(0) += 1;
            }
            None => {}
        }
        if let Some(c) = clock
            && let Some(second) = windows.roll(c.now_us())
        {
            flush(&mut window, second);
        }
    }
    flush(&mut window, windows.current());
    out.rebalances = std::mem::take(&mut *consumer.context().rebalances.lock().unwrap_or_else(|p| p.into_inner()));
    if !consumer.context().joined.load(Ordering::SeqCst) {
        // Never joined: do not leave the run waiting for this member.
        args.ready.fetch_add(1, Ordering::SeqCst);
    }
    args.source.done();
    out
}

/// Simulated per-record work: stay busy until `until`, still flushing windows every second.
fn work_until(
    until: u64,
    clock: &MonotonicClock,
    control: &Control,
    windows: &mut WindowClock,
    window: &mut ConsumerWindow,
    flush: &dyn Fn(&mut ConsumerWindow, u32),
) {
    loop {
        let now = clock.now_us();
        if let Some(second) = windows.roll(now) {
            flush(window, second);
        }
        if now >= until || control.stop_reading.load(Ordering::Relaxed) || control.hard() {
            return;
        }
        std::thread::sleep(Duration::from_micros((until - now).min(100_000)));
    }
}
