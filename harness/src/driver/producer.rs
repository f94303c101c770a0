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
//! - the audit's acknowledged/failed ledger and each partition's acknowledged end offset;
//! - per partition, for the whole run after warm-up: acknowledgements, bytes and latency from the
//!   intended send time (`recorder::partitions`, hot partitions).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::client::OAuthToken;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, DeliveryResult, Producer, ProducerContext, PurgeConfig};

use super::pacer::{Pacer, Step};
use super::produce::{self, Delivered, Events, HeaderTemplate, TopicHandle};
use super::{Control, Ctx, Shared, error_kind, props};
use crate::clock::{Clock, MonotonicClock};
use crate::config::scenario::{ProducerSpec, ValueFormat};
use crate::plan::Plan;
use crate::recorder::audit::{AckLedger, Stream};
use crate::recorder::partitions::PartitionTally;
use crate::recorder::{Acked, Hist, OffsetBook, ProducerWindow, Source, Start, WindowClock, WindowData};
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
    /// Max-rate benchmark: ignore intended times, send this many events as fast as librdkafka
    /// accepts them. `None`: the normal, open-loop schedule.
    pub unpaced: Option<u64>,
    /// Keep the acknowledged/failed ledger (the audit and the consumer groups' coverage read it).
    pub keep_ledger: bool,
    /// The producers' librdkafka statistics.
    pub stats: Arc<super::stats::Meter>,
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
    /// Of `planned`, events still due when the load's duration was over: counted, never sent late.
    pub unsent_at_end: u64,
    /// Counting `unsent_at_end` took too long and stopped: it is a lower bound.
    pub unsent_counted_partly: bool,
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
    /// First send, and the moment the last acknowledgement arrived (µs since load start).
    pub first_send_us: u64,
    pub drained_us: u64,
    /// Acknowledgements per partition after warm-up.
    pub partitions: PartitionTally,
}

/// What the delivery report needs about a record, kept in a slab indexed by the record's opaque
/// (no allocation per record).
#[derive(Clone, Copy)]
struct InFlight {
    intended_us: u64,
    send_us: u64,
    stream: Stream,
    seq: u64,
    topic: u16,
    bytes: u32,
    firmware: u16,
}

/// The producer thread's bookkeeping of records in flight and acknowledged: owned by that thread
/// alone (delivery reports are read on it, [`Events`]), so it takes no lock.
struct Acks {
    window: ProducerWindow,
    /// `None` when nothing reads it (no audit, no consumer group): saves a hash insert per ack.
    ledger: Option<AckLedger>,
    flights: Vec<InFlight>,
    free: Vec<usize>,
    last_ack_us: u64,
    longest_ack_gap_us: u64,
    /// Per partition, records intended from `measured_from` on (after warm-up).
    partitions: PartitionTally,
    measured_from: u64,
    book: Arc<OffsetBook>,
    /// Value buffers lent to librdkafka, one per slot.
    lender: produce::Lender,
}

/// Values from `LEND_MIN` to `LEND_MAX` bytes are lent to librdkafka rather than copied (see
/// [`produce::Lender`]). Below, the copy costs less than a slot's buffer (callgrind, 100 B: 26
/// instructions saved in librdkafka's produce call, more spent keeping the buffers); above, a slot's
/// buffer, kept between records, would hold too much while idle.
const LEND_MIN: usize = 512;
const LEND_MAX: usize = 16 * 1024;

impl Acks {
    fn park(&mut self, f: InFlight) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.flights[i] = f;
                i
            }
            None => {
                self.flights.push(f);
                self.flights.len() - 1
            }
        }
    }

    fn take(&mut self, i: usize) -> Option<InFlight> {
        let f = *self.flights.get(i)?;
        self.free.push(i);
        Some(f)
    }

    /// A record the client refused or failed to deliver.
    fn failed(&mut self, stream: Stream, seq: u64, kind: String) {
        if let Some(w) = self.window.classes.get_mut(usize::from(stream.class)) {
            w.failed += 1;
        }
        *self.window.errors.entry(kind).or_insert(0) += 1;
        if let Some(l) = self.ledger.as_mut() {
            l.failed(stream, seq);
        }
    }

    /// One produce response's delivery reports, all acknowledged at `now`.
    fn settle(&mut self, batch: &[Delivered], now: u64) {
        let book = self.book.clone();
        // The offset book takes one update per partition of the response, not one per record.
        let mut run: Option<(usize, Acked)> = None;
        for d in batch {
            self.lender.returned(d);
            let Some(f) = self.take(d.opaque) else {
                continue;
            };
            if let Some(code) = d.error {
                self.failed(f.stream, f.seq, error_kind(&KafkaError::MessageProduction(code)));
                continue;
            }
            self.longest_ack_gap_us = self.longest_ack_gap_us.max(now.saturating_sub(self.last_ack_us.max(f.send_us)));
            self.last_ack_us = now;
            self.window.acked(
                usize::from(f.stream.class),
                usize::from(f.firmware),
                u64::from(f.bytes),
                now.saturating_sub(f.intended_us),
                now.saturating_sub(f.send_us),
            );
            let idx = book.index(usize::from(f.topic), d.partition);
            if let Some(l) = self.ledger.as_mut() {
                let second = u32::try_from(f.intended_us / 1_000_000).unwrap_or(u32::MAX);
                l.acked(f.stream, f.seq, second, idx.unwrap_or(usize::MAX));
            }
            let Some(idx) = idx else { continue };
            if f.intended_us >= self.measured_from {
                self.partitions.acked(idx, u64::from(f.bytes), now.saturating_sub(f.intended_us));
            }
            match &mut run {
                Some((i, a)) if *i == idx => {
                    a.last_offset = a.last_offset.max(d.offset);
                    a.bytes += u64::from(f.bytes);
                    a.count += 1;
                    a.latest_send_us = a.latest_send_us.max(f.send_us);
                }
                _ => {
                    if let Some((i, a)) = run.take() {
                        book.acked_many(i, a, now);
                    }
                    let a =
                        Acked { last_offset: d.offset, bytes: u64::from(f.bytes), count: 1, latest_send_us: f.send_us };
                    run = Some((idx, a));
                }
            }
        }
        if let Some((i, a)) = run {
            book.acked_many(i, a, now);
        }
    }
}

/// The client's context: logs, errors, statistics and tokens. Delivery reports do not come
/// here (see [`Events`]).
struct PCtx {
    base: Ctx,
    stats: Arc<super::stats::Meter>,
}

impl ClientContext for PCtx {
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

impl ProducerContext for PCtx {
    type DeliveryOpaque = usize;

    /// Only reached if rust-rdkafka's own `poll` serves the queue (its `Drop` does, after a
    /// purge): every record was settled or counted as purged by then.
    fn delivery(&self, _: &DeliveryResult<'_>, _: usize) {}
}

/// Start a producer instance on its own thread.
pub fn spawn(args: ProducerArgs) -> std::io::Result<std::thread::JoinHandle<ProducerOutcome>> {
    std::thread::Builder::new().name(format!("producer-{}", args.instance)).spawn(move || run(args))
}

/// The producer's librdkafka properties, from the scenario's `producer` section (the user's own
/// `librdkafka` map is layered on top by [`start`]).
pub fn properties(spec: &ProducerSpec) -> BTreeMap<String, String> {
    props([
        ("acks", spec.acks.as_librdkafka().to_string()),
        ("linger.ms", format!("{}", spec.linger.as_secs_f64() * 1e3)),
        ("batch.size", spec.batch_size.0.min(2_147_483_647).to_string()),
        ("compression.type", spec.compression.as_librdkafka().to_string()),
        ("enable.idempotence", spec.idempotence.to_string()),
        // The queue is the backpressure point: `max_in_flight` records outstanding, then the send
        // waits and the wait is counted. Its byte limit is set to librdkafka's maximum so that the
        // record count alone decides.
        ("queue.buffering.max.messages", spec.max_in_flight.to_string()),
        ("queue.buffering.max.kbytes", "2097151".to_string()),
        ("message.timeout.ms", (spec.message_timeout.as_micros() / 1000).max(1).to_string()),
        // Statistics give the bytes on the wire, after compression (the report's cost drivers).
        super::stats::property(),
    ])
}

/// All instances' acknowledgement ledgers and wave counts, merged.
pub fn merge(outcomes: &[ProducerOutcome], wave_instances: usize) -> (AckLedger, Vec<crate::plan::WaveCounts>) {
    let mut acks = AckLedger::default();
    let mut waves = vec![crate::plan::WaveCounts::default(); wave_instances];
    for o in outcomes {
        acks.merge(&o.ledger);
        for (a, b) in waves.iter_mut().zip(&o.waves) {
            a.merge(b);
        }
    }
    (acks, waves)
}

/// How a run's producers are to be started.
pub struct Launch {
    pub plan: Arc<Plan>,
    pub filler: Arc<Filler>,
    /// How long to wait for outstanding acknowledgements after the last send.
    pub drain: Duration,
    /// Max-rate benchmark: this many records in all, unpaced.
    pub unpaced: Option<u64>,
    /// Keep the acknowledged/failed ledger (the audit or a consumer group reads it).
    pub keep_ledger: bool,
}

/// Start the scenario's producer instances, each on its own thread with its own share of the plan.
pub fn start(
    spec: &ProducerSpec,
    launch: &Launch,
    shared: &Shared,
    source: &mut dyn FnMut() -> Source,
) -> std::io::Result<Vec<std::thread::JoinHandle<ProducerOutcome>>> {
    let common = properties(spec);
    let mut handles = Vec::new();
    let instances = spec.instances.count();
    for i in 0..instances {
        shared.ready_expected.fetch_add(1, Ordering::SeqCst);
        let id = props([("client.id", format!("fleetstorm-producer-{i}"))]);
        handles.push(spawn(ProducerArgs {
            instance: i,
            instances,
            plan: launch.plan.clone(),
            run_id: shared.run_id,
            config: shared.writer_config(&[&common, &id, &spec.librdkafka]),
            ctx: shared.ctx(format!("producer {i}")),
            start: shared.start.clone(),
            control: shared.control.clone(),
            source: source(),
            template: shared.template.clone(),
            book: shared.book.clone(),
            filler: launch.filler.clone(),
            drain: launch.drain,
            ready: shared.ready.clone(),
            unpaced: launch.unpaced.map(|n| n.div_ceil(u64::from(instances))),
            keep_ledger: launch.keep_ledger,
            stats: shared.stats.producers.clone(),
        })?);
    }
    Ok(handles)
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

/// How long a producer waits, before the clock starts, for its idempotent producer id.
const PRODUCER_ID_WAIT: Duration = Duration::from_secs(10);

/// An idempotent producer sends nothing until the cluster gave it a producer id, and librdkafka
/// asks for one at creation, before any broker is up, then again 500 ms later: without this wait
/// the first records of about half the runs waited ~0.5 s, measured as the target's latency and
/// taken into the first fault's baseline. Wait (serving the client, whose statistics tell the
/// state) until the id is assigned, within [`PRODUCER_ID_WAIT`]; then the clock may start.
fn wait_for_producer_id(args: &ProducerArgs, producer: &BaseProducer<PCtx>, name: &str) {
    if args.config.get("enable.idempotence") != Some("true") {
        return;
    }
    let until = Instant::now() + PRODUCER_ID_WAIT;
    while !args.stats.producer_id_assigned(name) {
        if Instant::now() >= until {
            tracing::warn!(
                "producer {}: no idempotent producer id after {}s; the first sends will wait for it",
                args.instance,
                PRODUCER_ID_WAIT.as_secs()
            );
            return;
        }
        if args.control.stop_sending.load(Ordering::Relaxed) || args.control.hard() {
            return;
        }
        producer.poll(Duration::from_millis(20));
    }
}

fn run(args: ProducerArgs) -> ProducerOutcome {
    let mut out = ProducerOutcome::default();
    let ctx = PCtx { base: args.ctx.clone(), stats: args.stats.clone() };
    let producer: BaseProducer<PCtx> = match args.config.create_with_context(ctx) {
        Ok(p) => p,
        Err(e) => {
            out.error = Some(format!("could not create producer: {}", args.ctx.redactor.scrub(&e.to_string())));
            args.ready.fetch_add(1, Ordering::SeqCst);
            args.source.done();
            return out;
        }
    };
    // The first OAUTHBEARER token now: the metadata requests below come before any poll.
    if let Err(e) = args.ctx.auth.prime(producer.client()) {
        out.error = Some(format!("producer {}: {}", args.instance, args.ctx.redactor.scrub(&e.to_string())));
        args.ready.fetch_add(1, Ordering::SeqCst);
        args.source.done();
        return out;
    }
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
    // librdkafka's name of this client, as its statistics documents name it.
    let name = produce::instance_name(producer.client());
    wait_for_producer_id(&args, &producer, &name);
    args.ready.fetch_add(1, Ordering::SeqCst);
    let Some(clock) = wait_for_start(&args.start, &args.control) else {
        args.source.done();
        return out;
    };
    let mut windows = WindowClock::default();
    let new_window = || ProducerWindow::new(args.plan.classes.len(), args.plan.firmware_names().len(), &args.template);
    let mut sends = new_window();
    let flush = |acks: &mut Acks, second: u32, sends: &mut ProducerWindow| {
        let mut w = std::mem::replace(&mut acks.window, new_window());
        w.absorb_sends(sends);
        args.source.send(second, WindowData::Producer(Box::new(w)));
    };
    let mut link = Link {
        producer: &producer,
        events: Events::new(&producer),
        acks: Acks {
            window: new_window(),
            ledger: args.keep_ledger.then(AckLedger::default),
            flights: Vec::new(),
            free: Vec::new(),
            last_ack_us: 0,
            longest_ack_gap_us: 0,
            // Creating a histogram with these bounds cannot fail; if it did, acks are only counted.
            partitions: PartitionTally::new(args.book.partitions.len()).unwrap_or_default(),
            // Warm-up ends on a whole second, like the recorder's windows.
            measured_from: args.plan.warmup_us.div_ceil(1_000_000) * 1_000_000,
            book: args.book.clone(),
            lender: produce::Lender::default(),
        },
        clock,
    };

    // Topic handles: the per-record produce call skips librdkafka's topic lookup.
    let topics: Vec<TopicHandle> = match args.plan.topics.iter().map(|t| TopicHandle::new(&producer, t)).collect() {
        Some(t) => t,
        None => {
            out.error = Some("could not create a librdkafka topic handle".into());
            args.source.done();
            return out;
        }
    };
    send_all(&args, &mut link, &topics, &mut windows, &mut sends, &mut out, &flush);
    out.last_send_us = clock.now_us();
    drain(&args, &mut link, &mut windows, &mut sends, &mut out, &flush);

    // One more statistics callback, so the wire counters include the drain's last requests.
    super::stats::settle(&producer.context().stats, &name, || link.poll(Duration::from_millis(50)));
    flush(&mut link.acks, windows.current(), &mut sends);
    let Link { events, acks, .. } = link;
    drop(events);
    out.ledger = acks.ledger.unwrap_or_default();
    out.longest_ack_gap_us = acks.longest_ack_gap_us;
    out.partitions = acks.partitions;
    drop(topics);
    args.source.done();
    out
}

/// A producer, its queue and its bookkeeping: what the send loop and the drain work on.
struct Link<'p> {
    producer: &'p BaseProducer<PCtx>,
    events: Events<'p, PCtx>,
    acks: Acks,
    clock: MonotonicClock,
}

impl Link<'_> {
    /// Serve the producer's queue for up to `timeout`: delivery reports into `acks`, at one
    /// clock reading per produce response.
    fn poll(&mut self, timeout: Duration) {
        let (acks, clock) = (&mut self.acks, &self.clock);
        self.events.serve(timeout, &mut |batch| acks.settle(batch, clock.now_us()));
    }
}

/// Close a second: hand the window (acknowledgement side from `Acks`, send side from the send
/// loop's own tally) to the recorder.
type FlushFn<'a> = dyn Fn(&mut Acks, u32, &mut ProducerWindow) + 'a;

fn send_all(
    args: &ProducerArgs,
    link: &mut Link<'_>,
    topics: &[TopicHandle<'_>],
    windows: &mut WindowClock,
    sends: &mut ProducerWindow,
    out: &mut ProducerOutcome,
    flush: &FlushFn<'_>,
) {
    let (producer, clock) = (link.producer, link.clock);
    let plan = &args.plan;
    let mut schedule = plan.schedule(args.instance, args.instances);
    let mut pacer = Pacer::new(schedule.by_ref(), plan.duration_us);
    // Headers per class and firmware version, built once; each record gets a copy.
    let headers: Vec<Vec<Option<HeaderTemplate>>> = plan
        .classes
        .iter()
        .map(|c| {
            c.payloads
                .iter()
                .map(|p| {
                    (!p.headers.is_empty())
                        .then(|| HeaderTemplate::new(p.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
                })
                .collect()
        })
        .collect();
    let origin_unix = clock.origin_unix_us();
    // Warm-up ends on a whole second, like the recorder's windows.
    let measured_from = plan.warmup_us.div_ceil(1_000_000) * 1_000_000;
    let mut key = Vec::with_capacity(64);
    let mut value = Vec::with_capacity(4096);
    let mut cursor = (args.instance as usize) << 16;
    let mut since_poll = 0u32;
    loop {
        if args.control.stop_sending.load(Ordering::Relaxed) || args.control.hard() {
            break;
        }
        // One clock read per record: it paces, and it is the record's send time (the encoding
        // below takes well under a microsecond).
        let now = clock.now_us();
        if let Some(second) = windows.roll(now) {
            flush(&mut link.acks, second, sends);
        }
        let step = match args.unpaced {
            // Max rate: every event is due at once, until the limit.
            Some(limit) if out.planned >= limit => Step::Done,
            Some(_) => pacer.step(u64::MAX - 1),
            None => pacer.step(now),
        };
        match step {
            Step::Done => break,
            Step::WaitUntil(t) => {
                link.poll(Duration::ZERO);
                since_poll = 0;
                let wait = t.saturating_sub(clock.now_us());
                if wait > 2_000 {
                    // Serve delivery reports while waiting; wake 1 ms early, then sleep precisely.
                    link.poll(Duration::from_micros((wait - 1_000).min(50_000)));
                } else if wait > 0 {
                    std::thread::sleep(Duration::from_micros(wait));
                }
            }
            Step::Send(ev)
                if args.unpaced.is_none()
                    && now >= plan.duration_us
                    && now.saturating_sub(ev.intended_us) > END_GRACE_US =>
            {
                // The load is over and the sender is behind: events still due were planned but
                // are not sent late (at most `END_GRACE_US` after the end, by a sender that
                // nearly kept up).
                count_unsent(&ev, &mut pacer, measured_from, out);
                break;
            }
            Step::Send(ev) => {
                if out.planned == 0 {
                    out.first_send_us = now;
                }
                out.planned += 1;
                if ev.intended_us >= measured_from {
                    out.planned_measured += 1;
                }
                let class = &plan.classes[usize::from(ev.class)];
                let format = class.payload(ev.firmware).format;
                // The device id is the key of a keyed class and a field of a JSON value; an
                // unkeyed binary record carries only the device number, so no id is written.
                if class.keyed || matches!(format, ValueFormat::Json) {
                    plan.ids.write(u64::from(ev.device), &mut key);
                }
                let stamp = Stamp {
                    run: args.run_id,
                    device: ev.device,
                    class: ev.class,
                    firmware: ev.firmware,
                    seq: ev.seq,
                    created_us: origin_unix + ev.created_us,
                    intended_us: origin_unix + ev.intended_us,
                };
                let Some(topic) = topics.get(class.topic) else {
                    break;
                };
                let mut send_us = now;
                let slot = link.acks.park(InFlight {
                    intended_us: ev.intended_us,
                    send_us,
                    stream: Stream { class: ev.class, device: ev.device },
                    seq: ev.seq,
                    topic: class.topic as u16,
                    bytes: 0,
                    firmware: ev.firmware,
                });
                // Values up to LEND_MAX are written into the slot's own buffer and lent to
                // librdkafka (no copy); larger ones into `value`, which librdkafka copies.
                let want = ev.size as usize;
                let lendable = (LEND_MIN..=LEND_MAX).contains(&want);
                let (buf, lent) = match if lendable { link.acks.lender.buffer(slot) } else { None } {
                    Some(b) => {
                        // Sized once for the value (no growth while encoding); a slot that once
                        // held a much larger value gives the memory back.
                        if b.capacity() < want + 64 || b.capacity() > 2 * want + 256 {
                            *b = Vec::with_capacity(want + 64);
                        }
                        (b, true)
                    }
                    _ => (&mut value, false),
                };
                wire::encode(format, &stamp, &key, want, &args.filler, &mut cursor, buf);
                let bytes = u32::try_from(buf.len()).unwrap_or(u32::MAX);
                if let Some(f) = link.acks.flights.get_mut(slot) {
                    f.bytes = bytes;
                }
                let class_headers = &headers[usize::from(ev.class)];
                let record = produce::Record {
                    topic,
                    key: if class.keyed { &key } else { &[] },
                    value: if lent { &[] } else { &value },
                    timestamp_ms: i64::try_from(stamp.created_us / 1000).unwrap_or(0),
                    headers: class_headers
                        .get(usize::from(ev.firmware))
                        .or(class_headers.first())
                        .and_then(Option::as_ref),
                    opaque: slot,
                };
                loop {
                    let sent = if lent {
                        produce::produce_lent(producer, &record, &mut link.acks.lender, slot)
                    } else {
                        produce::produce(producer, &record)
                    };
                    match sent {
                        Ok(()) => {
                            out.sent += 1;
                            sends.sent(
                                usize::from(ev.class),
                                usize::from(ev.firmware),
                                send_us.saturating_sub(ev.intended_us),
                            );
                            break;
                        }
                        Err(RDKafkaErrorCode::QueueFull) => {
                            sends.backpressure += 1;
                            link.poll(Duration::from_millis(1));
                            if args.control.hard() {
                                link.acks.take(slot);
                                break;
                            }
                            send_us = clock.now_us();
                            if let Some(f) = link.acks.flights.get_mut(slot) {
                                f.send_us = send_us;
                            }
                        }
                        Err(code) => {
                            let kind = format!("send.{}", error_kind(&KafkaError::MessageProduction(code)));
                            link.acks.take(slot);
                            link.acks.failed(Stream { class: ev.class, device: ev.device }, ev.seq, kind);
                            break;
                        }
                    }
                }
                since_poll += 1;
                if since_poll >= 64 {
                    link.poll(Duration::ZERO);
                    since_poll = 0;
                }
            }
        }
    }
    let _ = pacer;
    out.waves = std::mem::take(&mut schedule.waves);
}

/// Past the load's end, an event still due is sent only if the sender is less than this behind
/// it: a sender a few milliseconds late on its last event is not cut, one seconds behind is.
const END_GRACE_US: u64 = 100_000;

/// How long counting the events left unsent at the end may take; past it the count is a lower
/// bound (the run says so).
const UNSENT_COUNT_BUDGET: Duration = Duration::from_secs(2);

/// Count `first` and every event still due before the end as planned but unsent.
fn count_unsent<I: Iterator<Item = crate::plan::Event>>(
    first: &crate::plan::Event,
    pacer: &mut Pacer<I>,
    measured_from: u64,
    out: &mut ProducerOutcome,
) {
    let count = |e: &crate::plan::Event, out: &mut ProducerOutcome| {
        out.planned += 1;
        out.planned_measured += u64::from(e.intended_us >= measured_from);
        out.unsent_at_end += 1;
    };
    count(first, out);
    let started = std::time::Instant::now();
    while let Step::Send(e) = pacer.step(u64::MAX - 1) {
        count(&e, out);
        if out.unsent_at_end % 4096 == 0 && started.elapsed() > UNSENT_COUNT_BUDGET {
            out.unsent_counted_partly = true;
            break;
        }
    }
}

fn drain(
    args: &ProducerArgs,
    link: &mut Link<'_>,
    windows: &mut WindowClock,
    sends: &mut ProducerWindow,
    out: &mut ProducerOutcome,
    flush: &FlushFn<'_>,
) {
    let (producer, clock) = (link.producer, link.clock);
    let own_deadline = clock.now_us().saturating_add(u64::try_from(args.drain.as_micros()).unwrap_or(u64::MAX));
    loop {
        if let Some(second) = windows.roll(clock.now_us()) {
            flush(&mut link.acks, second, sends);
        }
        if producer.in_flight_count() == 0 {
            link.poll(Duration::ZERO);
            out.drained_us = clock.now_us();
            break;
        }
        let deadline = own_deadline.min(args.control.drain_until_us.load(Ordering::Relaxed));
        if clock.now_us() >= deadline || args.control.hard() {
            out.purged = u64::try_from(producer.in_flight_count()).unwrap_or(0);
            producer.purge(PurgeConfig::default().queue().inflight());
            // Purged messages fail with PurgeQueue/PurgeInflight: serve their reports.
            for _ in 0..20 {
                link.poll(Duration::from_millis(10));
                if producer.in_flight_count() == 0 {
                    break;
                }
            }
            break;
        }
        link.poll(Duration::from_millis(10));
    }
}
