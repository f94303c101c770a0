//! The recorder: histograms, the per-second timeline, consumer lag and the audit ledgers.
//!
//! Drivers never share a histogram. Each driver thread fills its own one-second [`WindowData`] and
//! hands it to the [`Collector`] thread at every second boundary; the collector merges windows into
//! the timeline (with per-window percentiles) and, after warm-up, into the run's totals. Lag is
//! sampled once a second from the [`OffsetBook`], which drivers update with plain atomics.
//!
//! Histograms are HdrHistograms in microseconds with 3 significant digits, tracking 1 µs to 1 h.
//! A value above an hour is recorded as an hour and counted in `clamped`: never dropped silently.

pub mod audit;
pub mod hlog;
pub mod monitor;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hdrhistogram::Histogram;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::clock::{Clock, MonotonicClock};

/// Largest value a histogram tracks, in microseconds (one hour).
pub const HIST_MAX_US: u64 = 3_600_000_000;

/// A latency histogram in microseconds.
#[derive(Clone, Debug)]
pub struct Hist {
    pub h: Histogram<u64>,
    /// Values above [`HIST_MAX_US`], recorded as the maximum.
    pub clamped: u64,
}

impl Hist {
    /// The template every other histogram of a run is cloned from (so that creating one on the
    /// hot path cannot fail).
    pub fn template() -> Result<Hist, hdrhistogram::CreationError> {
        Ok(Hist { h: Histogram::new_with_bounds(1, HIST_MAX_US, 3)?, clamped: 0 })
    }

    /// An empty histogram with the same bounds.
    pub fn empty_like(&self) -> Hist {
        Hist { h: Histogram::new_from(&self.h), clamped: 0 }
    }

    #[inline]
    pub fn record(&mut self, us: u64) {
        if us > HIST_MAX_US {
            self.clamped += 1;
        }
        self.h.saturating_record(us);
    }

    /// Empty, keeping the allocation.
    pub fn reset(&mut self) {
        self.h.reset();
        self.clamped = 0;
    }

    pub fn add(&mut self, other: &Hist) {
        // Same bounds by construction; `add` only fails when the other cannot fit.
        if self.h.add(&other.h).is_err() {
            self.clamped += other.h.len();
        }
        self.clamped += other.clamped;
    }

    pub fn len(&self) -> u64 {
        self.h.len()
    }

    pub fn is_empty(&self) -> bool {
        self.h.is_empty()
    }

    pub fn summary(&self) -> LatencySummary {
        let h = &self.h;
        if h.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: h.len(),
            min_us: h.min(),
            mean_us: (h.mean() * 10.0).round() / 10.0,
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
            clamped: self.clamped,
        }
    }

    /// The percentile spectrum, HdrHistogram style: points at 50%, 75%, 87.5%... (5 per halving
    /// of the distance to 100%), up to the maximum.
    pub fn spectrum(&self) -> Vec<SpectrumPoint> {
        if self.h.is_empty() {
            return Vec::new();
        }
        let mut out: Vec<SpectrumPoint> = Vec::new();
        for v in self.h.iter_quantiles(5) {
            let p = v.quantile_iterated_to() * 100.0;
            let value = self.h.highest_equivalent(v.value_iterated_to());
            if out.last().is_none_or(|l| p > l.percentile) {
                out.push(SpectrumPoint { percentile: (p * 1e6).round() / 1e6, value_us: value });
            }
            if p >= 100.0 {
                break;
            }
        }
        out
    }

    pub fn window(&self) -> WindowLatency {
        let h = &self.h;
        if h.is_empty() {
            return WindowLatency::default();
        }
        WindowLatency {
            count: h.len(),
            p50_us: h.value_at_quantile(0.50),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        }
    }
}

/// Percentiles of a latency histogram, in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LatencySummary {
    pub count: u64,
    pub min_us: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    /// Samples above one hour, recorded as one hour.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub clamped: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// One point of a latency percentile spectrum.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SpectrumPoint {
    pub percentile: f64,
    pub value_us: u64,
}

/// Percentiles of one timeline window, in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WindowLatency {
    pub count: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

/// A partition assignment or revocation seen by a consumer-group member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RebalanceEvent {
    /// Microseconds since the load started (0 before it).
    pub t_us: u64,
    pub member: u32,
    /// `assign`, `revoke`, or `leave` (the member closing when the run is over).
    pub kind: String,
    pub partitions: usize,
}

/// One payload class's share of a producer window.
#[derive(Clone, Debug)]
pub struct ClassWindow {
    pub sent: u64,
    pub acked: u64,
    pub failed: u64,
    pub acked_bytes: u64,
    /// Acknowledgement latency from the intended send time.
    pub from_intended: Hist,
    /// Acknowledgement latency from the actual send time.
    pub from_send: Hist,
}

/// Records of one firmware version in a producer window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VersionWindow {
    pub sent: u64,
    pub acked: u64,
    pub acked_bytes: u64,
}

/// One second of one producer instance.
#[derive(Clone, Debug)]
pub struct ProducerWindow {
    pub classes: Vec<ClassWindow>,
    /// Per firmware version (one entry without firmware).
    pub versions: Vec<VersionWindow>,
    /// Actual send time minus intended send time.
    pub send_lag: Hist,
    /// Sends that found librdkafka's queue full and had to wait.
    pub backpressure: u64,
    pub errors: BTreeMap<String, u64>,
}

impl ProducerWindow {
    pub fn new(classes: usize, versions: usize, template: &Hist) -> Self {
        ProducerWindow {
            versions: vec![VersionWindow::default(); versions.max(1)],
            classes: (0..classes)
                .map(|_| ClassWindow {
                    sent: 0,
                    acked: 0,
                    failed: 0,
                    acked_bytes: 0,
                    from_intended: template.empty_like(),
                    from_send: template.empty_like(),
                })
                .collect(),
            send_lag: template.empty_like(),
            backpressure: 0,
            errors: BTreeMap::new(),
        }
    }
    /// One record handed to the client library, `send_lag_us` after its intended time.
    #[inline]
    pub fn sent(&mut self, class: usize, version: usize, send_lag_us: u64) {
        if let Some(v) = self.versions.get_mut(version) {
            v.sent += 1;
        }
        if let Some(w) = self.classes.get_mut(class) {
            w.sent += 1;
        }
        self.send_lag.record(send_lag_us);
    }

    /// Move the send side (sent counts, send lag, backpressure) of `sends` into this window,
    /// leaving `sends` empty. The producer counts sends in a window of its own, without a lock,
    /// and merges it when the second closes.
    pub fn absorb_sends(&mut self, sends: &mut ProducerWindow) {
        for (a, b) in self.versions.iter_mut().zip(sends.versions.iter_mut()) {
            a.sent += std::mem::take(&mut b.sent);
        }
        for (a, b) in self.classes.iter_mut().zip(sends.classes.iter_mut()) {
            a.sent += std::mem::take(&mut b.sent);
        }
        self.send_lag.add(&sends.send_lag);
        sends.send_lag.reset();
        self.backpressure += std::mem::take(&mut sends.backpressure);
    }

    /// One acknowledgement: the record's size, and its latency from the intended and from the
    /// actual send time. This is the producer side's per-sample recording cost
    /// (`benches/recorder.rs` measures it).
    #[inline]
    pub fn acked(&mut self, class: usize, version: usize, bytes: u64, from_intended_us: u64, from_send_us: u64) {
        if let Some(v) = self.versions.get_mut(version) {
            v.acked += 1;
            v.acked_bytes += bytes;
        }
        if let Some(w) = self.classes.get_mut(class) {
            w.acked += 1;
            w.acked_bytes += bytes;
            w.from_intended.record(from_intended_us);
            w.from_send.record(from_send_us);
        }
    }
}

/// One second of one consumer group member.
#[derive(Clone, Debug)]
pub struct ConsumerWindow {
    pub consumed: u64,
    pub bytes: u64,
    /// Records not written by this run (other runs, other writers).
    pub foreign: u64,
    /// Records of this run the group had already read (replays, restarts, redelivery).
    pub rereads: u64,
    /// Records routed to the dead-letter topic.
    pub dead_lettered: u64,
    /// End-to-end latency: consumption time minus the record's intended send time (first reads).
    pub e2e: Hist,
    /// Event age: consumption time minus the record's creation time (first reads). Differs from
    /// `e2e` for records a device buffered while offline.
    pub age: Hist,
    pub errors: BTreeMap<String, u64>,
}

impl ConsumerWindow {
    pub fn new(template: &Hist) -> Self {
        ConsumerWindow {
            consumed: 0,
            bytes: 0,
            foreign: 0,
            rereads: 0,
            dead_lettered: 0,
            e2e: template.empty_like(),
            age: template.empty_like(),
            errors: BTreeMap::new(),
        }
    }
}

/// What a source hands the collector for one second.
#[derive(Debug)]
pub enum WindowData {
    Producer(Box<ProducerWindow>),
    Consumer { group: usize, window: Box<ConsumerWindow> },
    Audit { reads: u64 },
}

/// A message to the collector.
#[derive(Debug)]
pub enum Msg {
    /// Data of second `second` (since the load started) from source `source`.
    Window { source: usize, second: u32, data: WindowData },
    /// The source will send nothing more.
    Done { source: usize },
}

/// A driver's handle on the collector.
#[derive(Clone, Debug)]
pub struct Source {
    pub id: usize,
    tx: Sender<Msg>,
}

impl Source {
    pub fn send(&self, second: u32, data: WindowData) {
        // The collector outlives every source; if it is gone the run is ending anyway.
        let _ = self.tx.send(Msg::Window { source: self.id, second, data });
    }

    pub fn done(&self) {
        let _ = self.tx.send(Msg::Done { source: self.id });
    }
}

/// Tracks which one-second window a driver is filling.
#[derive(Clone, Copy, Debug, Default)]
pub struct WindowClock {
    second: u32,
}

impl WindowClock {
    /// If `now_us` is past the current window, returns the window to flush and moves on.
    #[inline]
    pub fn roll(&mut self, now_us: u64) -> Option<u32> {
        let s = u32::try_from(now_us / 1_000_000).unwrap_or(u32::MAX);
        if s > self.second {
            let done = self.second;
            self.second = s;
            Some(done)
        } else {
            None
        }
    }

    pub fn current(&self) -> u32 {
        self.second
    }
}

/// Shared, lock-free offsets: how far the log has grown (from acknowledgements) and how far each
/// reader has read, per partition. Lag = end - position, summed over a reader's partitions.
#[derive(Debug)]
pub struct OffsetBook {
    /// (topic index, partition) of each flattened partition index.
    pub partitions: Vec<(usize, i32)>,
    base: Vec<usize>,
    ends: Vec<AtomicI64>,
    acked_bytes: Vec<AtomicU64>,
    acked_count: Vec<AtomicU64>,
    readers: Vec<Reader>,
    watches: Vec<Watch>,
    /// Bit `i` set: watch slot `i` is armed.
    watch_mask: AtomicU32,
}

/// Number of faults whose acknowledgement recovery can be watched at the same time.
pub const WATCH_SLOTS: usize = 8;

/// Per partition, the first acknowledgement of a record *sent* after `since_us`: when a fault
/// starts, this says when each partition accepted writes again.
#[derive(Debug)]
struct Watch {
    since_us: AtomicU64,
    first_ack_us: Vec<AtomicU64>,
}

#[derive(Debug)]
struct Reader {
    partitions: Vec<usize>,
    positions: Vec<AtomicI64>,
}

impl OffsetBook {
    /// `partitions[t]` is the partition count of topic `t`; `start_ends` the log end offsets at
    /// the start, flattened.
    pub fn new(partitions: &[u32], start_ends: &[i64]) -> Self {
        let mut base = Vec::with_capacity(partitions.len());
        let mut flat = Vec::new();
        for (t, &n) in partitions.iter().enumerate() {
            base.push(flat.len());
            for p in 0..n {
                flat.push((t, p as i32));
            }
        }
        let ends =
            flat.iter().enumerate().map(|(i, _)| AtomicI64::new(start_ends.get(i).copied().unwrap_or(0))).collect();
        OffsetBook {
            watches: (0..WATCH_SLOTS)
                .map(|_| Watch {
                    since_us: AtomicU64::new(u64::MAX),
                    first_ack_us: flat.iter().map(|_| AtomicU64::new(u64::MAX)).collect(),
                })
                .collect(),
            watch_mask: AtomicU32::new(0),
            acked_bytes: flat.iter().map(|_| AtomicU64::new(0)).collect(),
            acked_count: flat.iter().map(|_| AtomicU64::new(0)).collect(),
            partitions: flat,
            base,
            ends,
            readers: Vec::new(),
        }
    }

    /// Register a reader of `topics` starting at `start[i]` for flattened partition `i`.
    pub fn add_reader(&mut self, topics: &[usize], start: &[i64]) -> usize {
        let partitions: Vec<usize> =
            (0..self.partitions.len()).filter(|i| topics.contains(&self.partitions[*i].0)).collect();
        let positions =
            (0..self.partitions.len()).map(|i| AtomicI64::new(start.get(i).copied().unwrap_or(0))).collect();
        self.readers.push(Reader { partitions, positions });
        self.readers.len() - 1
    }

    #[inline]
    pub fn index(&self, topic: usize, partition: i32) -> Option<usize> {
        let base = *self.base.get(topic)?;
        let i = base + usize::try_from(partition).ok()?;
        (self.partitions.get(i)?.0 == topic).then_some(i)
    }

    /// A record sent at `send_us` was acknowledged at `ack_us` at `offset` of partition `idx`.
    #[inline]
    pub fn acked(&self, idx: usize, offset: i64, bytes: u64, send_us: u64, ack_us: u64) {
        if let Some(e) = self.ends.get(idx) {
            e.fetch_max(offset + 1, Ordering::Relaxed);
            self.acked_bytes[idx].fetch_add(bytes, Ordering::Relaxed);
            self.acked_count[idx].fetch_add(1, Ordering::Relaxed);
            let mask = self.watch_mask.load(Ordering::Relaxed);
            if mask != 0 {
                for (slot, w) in self.watches.iter().enumerate() {
                    if mask & (1 << slot) != 0 && send_us >= w.since_us.load(Ordering::Relaxed) {
                        w.first_ack_us[idx].fetch_min(ack_us, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    /// Start watching for the first acknowledgement, per partition, of records sent from
    /// `since_us` on. `None` when every slot is in use.
    pub fn arm_watch(&self, since_us: u64) -> Option<usize> {
        for (slot, w) in self.watches.iter().enumerate() {
            if w.since_us.compare_exchange(u64::MAX, since_us, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                for a in &w.first_ack_us {
                    a.store(u64::MAX, Ordering::SeqCst);
                }
                self.watch_mask.fetch_or(1 << slot, Ordering::SeqCst);
                return Some(slot);
            }
        }
        None
    }

    /// First acknowledgement time per flattened partition (`None`: none yet).
    pub fn watch_result(&self, slot: usize) -> Vec<Option<u64>> {
        self.watches.get(slot).map_or_else(Vec::new, |w| {
            w.first_ack_us.iter().map(|a| Some(a.load(Ordering::Relaxed)).filter(|v| *v != u64::MAX)).collect()
        })
    }

    pub fn release_watch(&self, slot: usize) {
        if let Some(w) = self.watches.get(slot) {
            self.watch_mask.fetch_and(!(1 << slot), Ordering::SeqCst);
            w.since_us.store(u64::MAX, Ordering::SeqCst);
        }
    }

    /// Flattened partition indexes of `topic` (by index).
    pub fn partitions_of(&self, topic: usize) -> Vec<usize> {
        (0..self.partitions.len()).filter(|i| self.partitions[*i].0 == topic).collect()
    }

    #[inline]
    pub fn consumed(&self, reader: usize, idx: usize, offset: i64) {
        if let Some(p) = self.readers.get(reader).and_then(|r| r.positions.get(idx)) {
            p.store(offset + 1, Ordering::Relaxed);
        }
    }

    /// A reader reached the end of a partition (`offset` is the next to read).
    pub fn caught_up(&self, reader: usize, idx: usize, offset: i64) {
        if let Some(p) = self.readers.get(reader).and_then(|r| r.positions.get(idx)) {
            p.fetch_max(offset, Ordering::Relaxed);
        }
    }

    pub fn lag(&self, reader: usize) -> u64 {
        let Some(r) = self.readers.get(reader) else { return 0 };
        r.partitions
            .iter()
            .map(|&i| {
                let end = self.ends[i].load(Ordering::Relaxed);
                let pos = r.positions[i].load(Ordering::Relaxed);
                u64::try_from(end - pos).unwrap_or(0)
            })
            .sum()
    }

    /// Acknowledged bytes and records per flattened partition.
    pub fn acked_per_partition(&self) -> Vec<(u64, u64)> {
        self.acked_bytes
            .iter()
            .zip(&self.acked_count)
            .map(|(b, c)| (b.load(Ordering::Relaxed), c.load(Ordering::Relaxed)))
            .collect()
    }
}

/// One second of the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TimelinePoint {
    /// Seconds since the load started.
    pub t: u32,
    /// Records handed to the client library in this second.
    pub produced: u64,
    pub acked: u64,
    pub failed: u64,
    pub acked_bytes: u64,
    pub backpressure: u64,
    /// p99 of actual minus intended send time.
    pub send_lag_p99_us: u64,
    /// Acknowledgement latency from the intended send time, for records acknowledged in this second.
    pub produce: WindowLatency,
    /// Per consumer group.
    pub consumers: BTreeMap<String, GroupPoint>,
    /// Records the delivery audit read in this second.
    pub audit_reads: u64,
    /// Errors by kind in this second (producer delivery, consumer and client errors).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub errors: BTreeMap<String, u64>,
    /// Faults active during this second.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<String>,
    /// The audit's verdict on records whose *intended send time* falls in this second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<crate::recorder::audit::AuditPoint>,
    /// Records sent per firmware version (fleets with firmware only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub versions: BTreeMap<String, u64>,
    /// Waves whose devices were offline or flushing during this second.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waves: Vec<String>,
    /// fleetstorm's own CPU and memory, and the host's CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harness: Option<monitor::HarnessPoint>,
}

/// One consumer group in one second.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GroupPoint {
    pub consumed: u64,
    /// Records acknowledged but not yet consumed by the group, sampled at the end of the second.
    pub lag: u64,
    /// Of `consumed`, records the group had read before.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rereads: u64,
    pub e2e: WindowLatency,
    /// Event age (from creation) p99 of first reads.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub age_p99_us: u64,
}

/// Totals of one payload class over the run.
#[derive(Clone, Debug)]
pub struct ClassTotals {
    pub sent: u64,
    pub acked: u64,
    pub failed: u64,
    pub acked_bytes: u64,
    /// Acknowledged after warm-up (for rates).
    pub measured_acked: u64,
    pub measured_bytes: u64,
    pub measured_sent: u64,
    pub from_intended: Hist,
    pub from_send: Hist,
}

/// Totals of one consumer group.
#[derive(Clone, Debug)]
pub struct GroupTotals {
    pub consumed: u64,
    pub bytes: u64,
    pub foreign: u64,
    pub rereads: u64,
    pub dead_lettered: u64,
    pub e2e: Hist,
    pub age: Hist,
    pub max_lag: u64,
    pub final_lag: u64,
    pub errors: BTreeMap<String, u64>,
}

/// Everything the collector measured.
#[derive(Clone, Debug)]
pub struct Recording {
    pub timeline: Vec<TimelinePoint>,
    pub classes: Vec<ClassTotals>,
    pub send_lag: Hist,
    pub backpressure: u64,
    pub errors: BTreeMap<String, u64>,
    pub groups: Vec<GroupTotals>,
    pub audit_reads: u64,
    /// Windows that arrived after their second had been closed (merged into totals only).
    pub late_windows: u64,
    /// Per firmware version, over the run.
    pub versions: Vec<VersionWindow>,
}

/// Set once, when the load starts: the run's clock. Drivers started earlier wait for it.
pub type Start = Arc<OnceLock<MonotonicClock>>;

/// Running totals the run can watch while the load goes on (for live gates).
#[derive(Debug, Default)]
pub struct LiveCounters {
    /// The last closed second: its acknowledgements, and their p99 from intended send time (µs).
    pub last_acked: AtomicU64,
    pub last_p99_us: AtomicU64,
    pub failed: AtomicU64,
    pub backpressure: AtomicU64,
    pub errors: std::sync::Mutex<BTreeMap<String, u64>>,
}

/// What the collector needs to know.
pub struct CollectorConfig {
    pub live: Arc<LiveCounters>,
    /// Where to write HdrHistogram interval logs (none: don't), with class names.
    pub hlog: Option<hlog::HlogConfig>,
    pub classes: usize,
    /// Firmware version names (empty without firmware).
    pub versions: Vec<String>,
    pub groups: Vec<String>,
    /// The offset-book reader of each group, for lag.
    pub group_readers: Vec<usize>,
    pub warmup_us: u64,
    /// The scheduled end of the load: sends and acknowledgements after it do not count toward
    /// rates (a late harness must not look on time).
    pub load_end_us: u64,
    pub template: Hist,
    pub book: Arc<OffsetBook>,
    pub start: Start,
}

#[derive(Debug)]
struct Agg {
    producer: Option<ProducerWindow>,
    consumers: Vec<Option<ConsumerWindow>>,
    audit_reads: u64,
}

/// The thread that merges windows. Create with [`Collector::new`], hand out [`Source`]s, then
/// [`Collector::spawn`].
pub struct Collector {
    cfg: CollectorConfig,
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
    sources: usize,
}

impl Collector {
    pub fn new(cfg: CollectorConfig) -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        Collector { cfg, tx, rx, sources: 0 }
    }

    pub fn source(&mut self) -> Source {
        self.sources += 1;
        Source { id: self.sources - 1, tx: self.tx.clone() }
    }

    /// Run until every source is done and every `Source` handle is dropped.
    pub fn spawn(self) -> std::io::Result<std::thread::JoinHandle<Recording>> {
        let Collector { cfg, tx, rx, sources } = self;
        drop(tx);
        std::thread::Builder::new().name("collector".into()).spawn(move || State::new(cfg, sources).run(rx))
    }
}

struct State {
    monitor: Option<monitor::Monitor>,
    harness: BTreeMap<u32, monitor::HarnessPoint>,
    hlogs: Option<hlog::Hlogs>,
    cfg: CollectorConfig,
    progress: Vec<Option<u32>>,
    done: Vec<bool>,
    pending: BTreeMap<u32, Agg>,
    closed_through: Option<u32>,
    lag: Vec<BTreeMap<u32, u64>>,
    rec: Recording,
}

impl State {
    fn new(cfg: CollectorConfig, sources: usize) -> Self {
        let t = &cfg.template;
        let rec = Recording {
            timeline: Vec::new(),
            classes: (0..cfg.classes)
                .map(|_| ClassTotals {
                    sent: 0,
                    acked: 0,
                    failed: 0,
                    acked_bytes: 0,
                    measured_acked: 0,
                    measured_bytes: 0,
                    measured_sent: 0,
                    from_intended: t.empty_like(),
                    from_send: t.empty_like(),
                })
                .collect(),
            send_lag: t.empty_like(),
            backpressure: 0,
            errors: BTreeMap::new(),
            groups: cfg
                .groups
                .iter()
                .map(|_| GroupTotals {
                    consumed: 0,
                    bytes: 0,
                    foreign: 0,
                    rereads: 0,
                    dead_lettered: 0,
                    e2e: t.empty_like(),
                    age: t.empty_like(),
                    max_lag: 0,
                    final_lag: 0,
                    errors: BTreeMap::new(),
                })
                .collect(),
            audit_reads: 0,
            late_windows: 0,
            versions: Vec::new(),
        };
        State {
            monitor: monitor::Monitor::new(),
            harness: BTreeMap::new(),
            hlogs: cfg.hlog.clone().map(hlog::Hlogs::new),
            lag: cfg.groups.iter().map(|_| BTreeMap::new()).collect(),
            cfg,
            progress: vec![None; sources],
            done: vec![false; sources],
            pending: BTreeMap::new(),
            closed_through: None,
            rec,
        }
    }

    fn run(mut self, rx: Receiver<Msg>) -> Recording {
        let mut next_tick: Option<u64> = None;
        loop {
            let clock = self.cfg.start.get().copied();
            let timeout = match (clock, next_tick) {
                (Some(c), Some(t)) => Duration::from_micros(t.saturating_sub(c.now_us())),
                (Some(c), None) => {
                    next_tick = Some((c.now_us() / 1_000_000 + 1) * 1_000_000);
                    Duration::from_millis(0)
                }
                (None, _) => Duration::from_millis(50),
            };
            match rx.recv_timeout(timeout) {
                Ok(msg) => self.handle(msg),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if let (Some(c), Some(t)) = (clock, next_tick)
                && c.now_us() >= t
            {
                self.sample_lag((t / 1_000_000).saturating_sub(1) as u32);
                next_tick = Some(t + 1_000_000);
            }
        }
        self.close_through(u32::MAX);
        for (g, totals) in self.rec.groups.iter_mut().enumerate() {
            totals.final_lag = self.cfg.book.lag(self.cfg.group_readers[g]);
            totals.max_lag = totals.max_lag.max(totals.final_lag);
        }
        self.rec
    }

    fn sample_lag(&mut self, second: u32) {
        if let Some(m) = &mut self.monitor
            && !self.harness.contains_key(&second)
        {
            self.harness.insert(second, m.sample());
        }
        for (g, reader) in self.cfg.group_readers.iter().enumerate() {
            if self.lag[g].contains_key(&second) {
                continue;
            }
            let lag = self.cfg.book.lag(*reader);
            self.lag[g].insert(second, lag);
            self.rec.groups[g].max_lag = self.rec.groups[g].max_lag.max(lag);
        }
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Window { source, second, data } => {
                if let Some(p) = self.progress.get_mut(source) {
                    *p = Some(p.map_or(second, |old| old.max(second)));
                }
                if self.closed_through.is_some_and(|c| second <= c) {
                    self.rec.late_windows += 1;
                    let mut agg = self.empty_agg();
                    merge(&mut agg, data);
                    self.totals(second, &agg);
                } else {
                    let groups = self.cfg.groups.len();
                    let agg = self.pending.entry(second).or_insert_with(|| Agg {
                        producer: None,
                        consumers: (0..groups).map(|_| None).collect(),
                        audit_reads: 0,
                    });
                    merge(agg, data);
                }
            }
            Msg::Done { source } => {
                if let Some(d) = self.done.get_mut(source) {
                    *d = true;
                }
            }
        }
        // Close every second that all live sources have moved past.
        let live: Vec<Option<u32>> =
            self.progress.iter().zip(&self.done).filter(|(_, d)| !**d).map(|(p, _)| *p).collect();
        let through = if live.is_empty() {
            None
        } else if live.iter().all(Option::is_some) {
            live.iter().flatten().min().copied()
        } else {
            None
        };
        if let Some(t) = through {
            self.close_through(t);
        }
    }

    fn empty_agg(&self) -> Agg {
        Agg { producer: None, consumers: self.cfg.groups.iter().map(|_| None).collect(), audit_reads: 0 }
    }

    fn close_through(&mut self, through: u32) {
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() > through {
                break;
            }
            let (second, agg) = entry.remove_entry();
            self.close(second, agg);
            self.closed_through = Some(second);
        }
    }

    fn totals(&mut self, second: u32, agg: &Agg) {
        let measured = u64::from(second) * 1_000_000 >= self.cfg.warmup_us;
        let in_load = measured && u64::from(second) * 1_000_000 < self.cfg.load_end_us;
        if let Some(p) = &agg.producer {
            for (c, w) in self.rec.classes.iter_mut().zip(&p.classes) {
                c.sent += w.sent;
                c.acked += w.acked;
                c.failed += w.failed;
                c.acked_bytes += w.acked_bytes;
                if in_load {
                    c.measured_acked += w.acked;
                    c.measured_bytes += w.acked_bytes;
                    c.measured_sent += w.sent;
                }
                if measured {
                    c.from_intended.add(&w.from_intended);
                    c.from_send.add(&w.from_send);
                }
            }
            if measured {
                self.rec.send_lag.add(&p.send_lag);
            }
            if self.rec.versions.len() < p.versions.len() {
                self.rec.versions.resize(p.versions.len(), VersionWindow::default());
            }
            for (a, b) in self.rec.versions.iter_mut().zip(&p.versions) {
                a.sent += b.sent;
                a.acked += b.acked;
                a.acked_bytes += b.acked_bytes;
            }
            self.rec.backpressure += p.backpressure;
            for (k, v) in &p.errors {
                *self.rec.errors.entry(k.clone()).or_insert(0) += v;
            }
            let failed: u64 = p.classes.iter().map(|c| c.failed).sum();
            self.cfg.live.failed.fetch_add(failed, Ordering::Relaxed);
            self.cfg.live.backpressure.fetch_add(p.backpressure, Ordering::Relaxed);
            if !p.errors.is_empty()
                && let Ok(mut e) = self.cfg.live.errors.lock()
            {
                for (k, v) in &p.errors {
                    *e.entry(k.clone()).or_insert(0) += v;
                }
            }
        }
        for (g, w) in agg.consumers.iter().enumerate() {
            if let Some(w) = w {
                let t = &mut self.rec.groups[g];
                t.consumed += w.consumed;
                t.bytes += w.bytes;
                t.foreign += w.foreign;
                t.rereads += w.rereads;
                t.dead_lettered += w.dead_lettered;
                if measured {
                    t.e2e.add(&w.e2e);
                    t.age.add(&w.age);
                }
                for (k, v) in &w.errors {
                    *t.errors.entry(k.clone()).or_insert(0) += v;
                }
            }
        }
        self.rec.audit_reads += agg.audit_reads;
    }

    fn close(&mut self, second: u32, agg: Agg) {
        self.totals(second, &agg);
        if let (Some(h), Some(clock)) = (&mut self.hlogs, self.cfg.start.get()) {
            h.write(second, clock.origin_unix_us(), agg.producer.as_ref(), &agg.consumers, &self.cfg.groups);
        }
        // Closed before its tick: the current values are the closest samples there are.
        self.sample_lag(second);
        // Fill gaps so that the timeline has one point per second.
        let next = self.rec.timeline.last().map_or(0, |p| p.t + 1);
        for t in next..second {
            let point = self.point(t, None);
            self.rec.timeline.push(point);
        }
        let point = self.point(second, Some(&agg));
        self.cfg.live.last_acked.store(point.acked, Ordering::Relaxed);
        self.cfg.live.last_p99_us.store(point.produce.p99_us, Ordering::Relaxed);
        self.rec.timeline.push(point);
    }

    fn point(&self, second: u32, agg: Option<&Agg>) -> TimelinePoint {
        let mut p = TimelinePoint { t: second, ..TimelinePoint::default() };
        if let Some(pw) = agg.and_then(|a| a.producer.as_ref()) {
            let mut lat = self.cfg.template.empty_like();
            for w in &pw.classes {
                p.produced += w.sent;
                p.acked += w.acked;
                p.failed += w.failed;
                p.acked_bytes += w.acked_bytes;
                lat.add(&w.from_intended);
            }
            p.backpressure = pw.backpressure;
            for (name, v) in self.cfg.versions.iter().zip(&pw.versions) {
                p.versions.insert(name.clone(), v.sent);
            }
            p.errors.extend(pw.errors.iter().map(|(k, v)| (k.clone(), *v)));
            p.send_lag_p99_us = if pw.send_lag.is_empty() { 0 } else { pw.send_lag.h.value_at_quantile(0.99) };
            p.produce = lat.window();
        }
        for (g, name) in self.cfg.groups.iter().enumerate() {
            let mut gp = GroupPoint { lag: self.lag[g].get(&second).copied().unwrap_or(0), ..GroupPoint::default() };
            if let Some(Some(w)) = agg.map(|a| &a.consumers[g]) {
                gp.consumed = w.consumed;
                gp.rereads = w.rereads;
                gp.e2e = w.e2e.window();
                gp.age_p99_us = w.age.window().p99_us;
                for (k, v) in &w.errors {
                    *p.errors.entry(format!("consumer.{name}.{k}")).or_insert(0) += v;
                }
            }
            p.consumers.insert(name.clone(), gp);
        }
        p.audit_reads = agg.map_or(0, |a| a.audit_reads);
        p.harness = self.harness.get(&second).copied();
        p
    }
}

fn merge(agg: &mut Agg, data: WindowData) {
    match data {
        WindowData::Producer(w) => match &mut agg.producer {
            None => agg.producer = Some(*w),
            Some(p) => {
                for (a, b) in p.classes.iter_mut().zip(&w.classes) {
                    a.sent += b.sent;
                    a.acked += b.acked;
                    a.failed += b.failed;
                    a.acked_bytes += b.acked_bytes;
                    a.from_intended.add(&b.from_intended);
                    a.from_send.add(&b.from_send);
                }
                for (a, b) in p.versions.iter_mut().zip(&w.versions) {
                    a.sent += b.sent;
                    a.acked += b.acked;
                    a.acked_bytes += b.acked_bytes;
                }
                p.send_lag.add(&w.send_lag);
                p.backpressure += w.backpressure;
                for (k, v) in w.errors {
                    *p.errors.entry(k).or_insert(0) += v;
                }
            }
        },
        WindowData::Consumer { group, window } => {
            if let Some(slot) = agg.consumers.get_mut(group) {
                match slot {
                    None => *slot = Some(*window),
                    Some(c) => {
                        c.consumed += window.consumed;
                        c.bytes += window.bytes;
                        c.foreign += window.foreign;
                        c.rereads += window.rereads;
                        c.dead_lettered += window.dead_lettered;
                        c.e2e.add(&window.e2e);
                        c.age.add(&window.age);
                        for (k, v) in window.errors {
                            *c.errors.entry(k).or_insert(0) += v;
                        }
                    }
                }
            }
        }
        WindowData::Audit { reads } => agg.audit_reads += reads,
    }
}

#[cfg(test)]
mod tests;
