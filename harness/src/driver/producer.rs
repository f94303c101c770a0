//! The producer driver: sends one shard of the plan, open-loop, on its own thread.
//!
//! Each event is sent when its intended time comes, whatever happened to earlier ones; the
//! driver never waits for an acknowledgement before the next send. When librdkafka's queue is full
//! (`max_in_flight` outstanding), the send waits, the wait is counted as backpressure, and the
//! delay shows up as send lag and in latency from the intended time: never hidden.
//!
//! Metrics recorded (per one-second window, per payload class unless noted):
//! - `sent`, `acked`, `failed`, `acked_bytes`;
//! - acknowledgement latency from the **intended** send time (coordinated-omission free) and from
//!   the actual send time;
//! - send lag (actual minus intended send time), for the whole instance;
//! - backpressure waits; delivery errors by kind;
//! - the audit's acknowledged/failed ledger and each partition's acknowledged end offset.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext, PurgeConfig};

use super::{Control, Ctx, error_kind};
use crate::clock::{Clock, MonotonicClock, Pacer, Step};
use crate::plan::Plan;
use crate::recorder::audit::{AckLedger, Stream};
use crate::recorder::{Hist, OffsetBook, ProducerWindow, Source, Start, WindowClock, WindowData};
use crate::wire::{self, Filler, Stamp};

/// Everything a producer instance needs.
pub struct ProducerArgs {
    pub instance: u32,
    pub instances: u32,
    pub plan: Arc<Plan>,
    pub run_id: u64,
    pub config: ClientConfig,
    pub ctx: Ctx,
    pub start: Start,
    pub control: Arc<Control>,
    pub source: Source,
    pub template: Hist,
    pub book: Arc<OffsetBook>,
    pub filler: Arc<Filler>,
    /// How long to wait for outstanding acknowledgements after the last send.
    pub drain: Duration,
    /// Incremented once the producer is connected and ready to send.
    pub ready: Arc<AtomicU32>,
}

/// What a producer instance reports when it ends.
#[derive(Debug, Default)]
pub struct ProducerOutcome {
    pub ledger: AckLedger,
    /// Events whose intended time fell inside the load window (handed to librdkafka or not).
    pub planned: u64,
    /// Of `planned`, those intended after warm-up (the measured window).
    pub planned_measured: u64,
    /// Events handed to librdkafka.
    pub sent: u64,
    /// Events still unresolved when the drain ended (then purged, and counted as failed).
    pub purged: u64,
    /// When the last send happened (µs since load start).
    pub last_send_us: u64,
    /// Fatal error that stopped this instance, if any.
    pub error: Option<String>,
    /// Largest gap between acknowledgements while messages were outstanding, µs.
    pub longest_ack_gap_us: u64,
    /// What this instance's devices did in each wave occurrence.
    pub waves: Vec<crate::plan::WaveCounts>,
}

struct InFlight {
    intended_us: u64,
    send_us: u64,
    stream: Stream,
    seq: u64,
    topic: u16,
    bytes: u32,
    firmware: u16,
}

struct State {
    window: ProducerWindow,
    ledger: AckLedger,
    last_ack_us: u64,
    longest_ack_gap_us: u64,
}

struct PCtx {
    base: Ctx,
    state: Mutex<State>,
    start: Start,
    book: Arc<OffsetBook>,
}

impl PCtx {
    fn state(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a panic elsewhere; the data is still the best we have.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ClientContext for PCtx {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.base.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.base.error(error, reason);
    }
}

impl ProducerContext for PCtx {
    type DeliveryOpaque = Box<InFlight>;

    fn delivery(&self, result: &DeliveryResult<'_>, f: Box<InFlight>) {
        // Nothing is sent before the start, so the clock is always set here.
        let now = self.start.get().map_or(f.send_us, Clock::now_us);
        let mut st = self.state();
        let class = usize::from(f.stream.class);
        match result {
            Ok(msg) => {
                st.longest_ack_gap_us = st.longest_ack_gap_us.max(now.saturating_sub(st.last_ack_us.max(f.send_us)));
                st.last_ack_us = now;
                if let Some(v) = st.window.versions.get_mut(usize::from(f.firmware)) {
                    v.acked += 1;
                    v.acked_bytes += u64::from(f.bytes);
                }
                if let Some(w) = st.window.classes.get_mut(class) {
                    w.acked += 1;
                    w.acked_bytes += u64::from(f.bytes);
                    w.from_intended.record(now.saturating_sub(f.intended_us));
                    w.from_send.record(now.saturating_sub(f.send_us));
                }
                st.ledger.acked(f.stream, f.seq, u32::try_from(f.intended_us / 1_000_000).unwrap_or(u32::MAX));
                if let Some(idx) = self.book.index(usize::from(f.topic), msg.partition()) {
                    self.book.acked(idx, msg.offset(), u64::from(f.bytes), f.send_us, now);
                }
            }
            Err((e, _)) => {
                if let Some(w) = st.window.classes.get_mut(class) {
                    w.failed += 1;
                }
                *st.window.errors.entry(error_kind(e)).or_insert(0) += 1;
                st.ledger.failed(f.stream, f.seq);
            }
        }
    }
}

/// Start a producer instance on its own thread.
pub fn spawn(args: ProducerArgs) -> std::io::Result<std::thread::JoinHandle<ProducerOutcome>> {
    std::thread::Builder::new().name(format!("producer-{}", args.instance)).spawn(move || run(args))
}

fn wait_for_start(start: &Start, control: &Control) -> Option<MonotonicClock> {
    loop {
        if let Some(c) = start.get() {
            return Some(*c);
        }
        if control.stop_sending.load(Ordering::Relaxed) || control.hard() {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn run(args: ProducerArgs) -> ProducerOutcome {
    let mut out = ProducerOutcome::default();
    let ctx = PCtx {
        base: args.ctx.clone(),
        state: Mutex::new(State {
            window: ProducerWindow::new(args.plan.classes.len(), args.plan.firmware_names().len(), &args.template),
            ledger: AckLedger::default(),
            last_ack_us: 0,
            longest_ack_gap_us: 0,
        }),
        start: args.start.clone(),
        book: args.book.clone(),
    };
    let producer: BaseProducer<PCtx> = match args.config.create_with_context(ctx) {
        Ok(p) => p,
        Err(e) => {
            out.error = Some(format!("could not create producer: {}", args.ctx.redactor.scrub(&e.to_string())));
            args.ready.fetch_add(1, Ordering::SeqCst);
            args.source.done();
            return out;
        }
    };
    // Connect and learn partition leaders before the clock starts, so the first sends do not
    // measure connection set-up.
    for topic in &args.plan.topics {
        if let Err(e) = producer.client().fetch_metadata(Some(topic), Duration::from_secs(10)) {
            tracing::warn!(
                "producer {}: metadata for {topic}: {}",
                args.instance,
                args.ctx.redactor.scrub(&e.to_string())
            );
        }
    }
    args.ready.fetch_add(1, Ordering::SeqCst);
    let Some(clock) = wait_for_start(&args.start, &args.control) else {
        args.source.done();
        return out;
    };
    let mut windows = WindowClock::default();
    let flush = |producer: &BaseProducer<PCtx>, second: u32| {
        let w = {
            let mut st = producer.context().state();
            std::mem::replace(
                &mut st.window,
                ProducerWindow::new(args.plan.classes.len(), args.plan.firmware_names().len(), &args.template),
            )
        };
        args.source.send(second, WindowData::Producer(Box::new(w)));
    };

    send_all(&args, &producer, &clock, &mut windows, &mut out, &flush);
    out.last_send_us = clock.now_us();
    drain(&args, &producer, &clock, &mut windows, &mut out, &flush);

    flush(&producer, windows.current());
    {
        let st = producer.context().state();
        out.ledger = st.ledger.clone();
        out.longest_ack_gap_us = st.longest_ack_gap_us;
    }
    args.source.done();
    out
}

type FlushFn<'a> = dyn Fn(&BaseProducer<PCtx>, u32) + 'a;

fn send_all(
    args: &ProducerArgs,
    producer: &BaseProducer<PCtx>,
    clock: &MonotonicClock,
    windows: &mut WindowClock,
    out: &mut ProducerOutcome,
    flush: &FlushFn<'_>,
) {
    let plan = &args.plan;
    let mut schedule = plan.schedule(args.instance, args.instances);
    let mut pacer = Pacer::new(schedule.by_ref(), plan.duration_us);
    // Headers per class and firmware version, built once.
    let headers: Vec<Vec<Option<OwnedHeaders>>> = plan
        .classes
        .iter()
        .map(|c| {
            c.payloads
                .iter()
                .map(|p| {
                    (!p.headers.is_empty()).then(|| {
                        p.headers.iter().fold(OwnedHeaders::new_with_capacity(p.headers.len()), |h, (k, v)| {
                            h.insert(Header { key: k, value: Some(v) })
                        })
                    })
                })
                .collect()
        })
        .collect();
    let origin_unix = clock.origin_unix_us();
    // Warm-up ends on a whole second, like the recorder's windows.
    let measured_from = plan.warmup_us.div_ceil(1_000_000) * 1_000_000;
    let mut key = Vec::with_capacity(64);
    let mut value = Vec::with_capacity(4096);
    let mut since_poll = 0u32;
    loop {
        if args.control.stop_sending.load(Ordering::Relaxed) || args.control.hard() {
            break;
        }
        let now = clock.now_us();
        if let Some(second) = windows.roll(now) {
            flush(producer, second);
        }
        match pacer.step(now) {
            Step::Done => break,
            Step::WaitUntil(t) => {
                producer.poll(Duration::ZERO);
                since_poll = 0;
                let wait = t.saturating_sub(clock.now_us());
                if wait > 2_000 {
                    // Serve delivery reports while waiting; wake 1 ms early, then sleep precisely.
                    producer.poll(Duration::from_micros((wait - 1_000).min(50_000)));
                } else if wait > 0 {
                    std::thread::sleep(Duration::from_micros(wait));
                }
            }
            Step::Send(ev) => {
                out.planned += 1;
                if ev.intended_us >= measured_from {
                    out.planned_measured += 1;
                }
                let class = &plan.classes[usize::from(ev.class)];
                plan.ids.write(u64::from(ev.device), &mut key);
                let stamp = Stamp {
                    run: args.run_id,
                    device: ev.device,
                    class: ev.class,
                    firmware: ev.firmware,
                    seq: ev.seq,
                    created_us: origin_unix + ev.created_us,
                    intended_us: origin_unix + ev.intended_us,
                };
                wire::encode(
                    class.payload(ev.firmware).format,
                    &stamp,
                    &key,
                    ev.size as usize,
                    &args.filler,
                    &mut value,
                );
                let topic = &plan.topics[class.topic];
                let bytes = u32::try_from(value.len()).unwrap_or(u32::MAX);
                let mut send_us = clock.now_us();
                let mut record = BaseRecord::with_opaque_to(
                    topic,
                    Box::new(InFlight {
                        intended_us: ev.intended_us,
                        send_us,
                        stream: Stream { class: ev.class, device: ev.device },
                        seq: ev.seq,
                        topic: class.topic as u16,
                        bytes,
                        firmware: ev.firmware,
                    }),
                )
                .key(key.as_slice())
                .payload(value.as_slice())
                .timestamp(i64::try_from(stamp.created_us / 1000).unwrap_or(0));
                let class_headers = &headers[usize::from(ev.class)];
                if let Some(Some(h)) = class_headers.get(usize::from(ev.firmware)).or(class_headers.first()) {
                    record = record.headers(h.clone());
                }
                loop {
                    match producer.send(record) {
                        Ok(()) => {
                            out.sent += 1;
                            let mut st = producer.context().state();
                            if let Some(v) = st.window.versions.get_mut(usize::from(ev.firmware)) {
                                v.sent += 1;
                            }
                            if let Some(w) = st.window.classes.get_mut(usize::from(ev.class)) {
                                w.sent += 1;
                            }
                            st.window.send_lag.record(send_us.saturating_sub(ev.intended_us));
                            break;
                        }
                        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                            producer.context().state().window.backpressure += 1;
                            producer.poll(Duration::from_millis(1));
                            if args.control.hard() {
                                break;
                            }
                            record = back;
                            send_us = clock.now_us();
                            {
                                let f = &mut record.delivery_opaque;
                                f.send_us = send_us;
                            }
                        }
                        Err((e, _)) => {
                            let mut st = producer.context().state();
                            if let Some(w) = st.window.classes.get_mut(usize::from(ev.class)) {
                                w.failed += 1;
                            }
                            *st.window.errors.entry(format!("send.{}", error_kind(&e))).or_insert(0) += 1;
                            st.ledger.failed(Stream { class: ev.class, device: ev.device }, ev.seq);
                            break;
                        }
                    }
                }
                since_poll += 1;
                if since_poll >= 64 {
                    producer.poll(Duration::ZERO);
                    since_poll = 0;
                }
            }
        }
    }
    let _ = pacer;
    out.waves = std::mem::take(&mut schedule.waves);
}

fn drain(
    args: &ProducerArgs,
    producer: &BaseProducer<PCtx>,
    clock: &MonotonicClock,
    windows: &mut WindowClock,
    out: &mut ProducerOutcome,
    flush: &FlushFn<'_>,
) {
    let own_deadline = clock.now_us().saturating_add(u64::try_from(args.drain.as_micros()).unwrap_or(u64::MAX));
    loop {
        if let Some(second) = windows.roll(clock.now_us()) {
            flush(producer, second);
        }
        if producer.in_flight_count() == 0 {
            producer.poll(Duration::ZERO);
            break;
        }
        let deadline = own_deadline.min(args.control.drain_until_us.load(Ordering::Relaxed));
        if clock.now_us() >= deadline || args.control.hard() {
            out.purged = u64::try_from(producer.in_flight_count()).unwrap_or(0);
            producer.purge(PurgeConfig::default().queue().inflight());
            // Purged messages fail with PurgeQueue/PurgeInflight: serve their reports.
            for _ in 0..20 {
                producer.poll(Duration::from_millis(10));
                if producer.in_flight_count() == 0 {
                    break;
                }
            }
            break;
        }
        producer.poll(Duration::from_millis(10));
    }
}
