//! The collector thread: merges every driver's one-second windows into the timeline (with
//! per-window percentiles) and, after warm-up, into the run's totals; samples lag and the
//! harness's own resource use once a second.

use super::*;

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
    /// Value bytes of `rereads` and of `foreign` records (`bytes` counts every record).
    pub reread_bytes: u64,
    pub foreign_bytes: u64,
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

/// Running totals the run can watch while the load goes on (live gates, the progress line,
/// `run --metrics-addr`). The collector thread updates them as it merges windows (about once a
/// second, never per record); everything counted here since the load started adds up, once the
/// collector ends, to the recording's totals (warm-up included, unlike rates and percentiles).
#[derive(Debug, Default)]
pub struct LiveCounters {
    /// The last closed second: its acknowledgements, and their p99 from intended send time (µs).
    pub last_acked: AtomicU64,
    pub last_p99_us: AtomicU64,
    pub failed: AtomicU64,
    pub backpressure: AtomicU64,
    pub errors: std::sync::Mutex<BTreeMap<String, u64>>,
    /// Per payload class, in the plan's order (empty when built with `default()`).
    pub classes: Vec<LiveClass>,
    /// Per consumer group, in the scenario's order.
    pub groups: Vec<LiveGroup>,
    /// Records the audit reader has read so far.
    pub audit_reads: AtomicU64,
    /// Seconds of the timeline closed so far.
    pub seconds_closed: AtomicU64,
    /// The harness's own CPU (percent of one core, `f32` bits) and RSS (MiB, `f32` bits), last
    /// sample; 0 before the first.
    pub harness_cpu_pct: AtomicU32,
    pub harness_rss_mib: AtomicU32,
}

impl LiveCounters {
    /// Counters for `classes` payload classes and `groups` consumer groups.
    pub fn new(classes: usize, groups: usize) -> LiveCounters {
        LiveCounters {
            classes: (0..classes).map(|_| LiveClass::default()).collect(),
            groups: (0..groups).map(|_| LiveGroup::default()).collect(),
            ..LiveCounters::default()
        }
    }
}

/// One payload class so far.
#[derive(Debug, Default)]
pub struct LiveClass {
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub failed: AtomicU64,
    pub acked_bytes: AtomicU64,
    /// Acknowledgement latency from the intended send time.
    pub ack_latency: LiveHist,
}

/// One consumer group so far.
#[derive(Debug, Default)]
pub struct LiveGroup {
    pub consumed: AtomicU64,
    pub rereads: AtomicU64,
    /// The last lag sample (records behind the acknowledged ends).
    pub lag: AtomicU64,
    /// End-to-end latency (first reads) from the intended send time.
    pub e2e: LiveHist,
}

/// Upper bounds (µs) of [`LiveHist`]'s buckets, 500 µs to 1 min; one more bucket holds the rest.
pub const LIVE_BUCKETS_US: [u64; 16] = [
    500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000, 2_000_000, 5_000_000,
    10_000_000, 30_000_000, 60_000_000,
];

/// A fixed-bucket histogram fed from the windows' HdrHistograms (each recorded value's bucket
/// goes whole into the first bound at or above its lowest equivalent value: HdrHistogram's 0.1%).
/// Counts per bucket, not cumulative; the last is above every bound.
#[derive(Debug, Default)]
pub struct LiveHist {
    pub buckets: [AtomicU64; LIVE_BUCKETS_US.len() + 1],
    pub sum_us: AtomicU64,
}

impl LiveHist {
    pub fn add(&self, h: &Hist) {
        let mut sum = 0u64;
        for v in h.h.iter_recorded() {
            let value = h.h.lowest_equivalent(v.value_iterated_to());
            let n = v.count_at_value();
            let i = LIVE_BUCKETS_US.partition_point(|b| *b < value);
            if let Some(b) = self.buckets.get(i) {
                b.fetch_add(n, Ordering::Relaxed);
            }
            sum = sum.saturating_add(h.h.median_equivalent(value).saturating_mul(n));
        }
        self.sum_us.fetch_add(sum, Ordering::Relaxed);
    }

    /// The count in each bucket (not cumulative), and the sum in µs.
    pub fn snapshot(&self) -> ([u64; LIVE_BUCKETS_US.len() + 1], u64) {
        let mut out = [0u64; LIVE_BUCKETS_US.len() + 1];
        for (o, b) in out.iter_mut().zip(&self.buckets) {
            *o = b.load(Ordering::Relaxed);
        }
        (out, self.sum_us.load(Ordering::Relaxed))
    }
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

    /// Run until every source is done (or every `Source` handle is dropped).
    pub fn spawn(self) -> std::io::Result<std::thread::JoinHandle<Recording>> {
        let Collector { cfg, tx, rx, sources } = self;
        drop(tx);
        std::thread::Builder::new().name("collector".into()).spawn(move || State::new(cfg, sources).run(rx))
    }
}

struct State {
    monitor: Option<monitor::Monitor>,
    harness: BTreeMap<u32, HarnessPoint>,
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
                    reread_bytes: 0,
                    foreign_bytes: 0,
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
            // Every source said it is done: nothing more will come, even if a driver thread is
            // still closing its client (a target that never answers a group leave).
            if !self.done.is_empty() && self.done.iter().all(|d| *d) {
                break;
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
            let h = m.sample();
            self.cfg.live.harness_cpu_pct.store(h.cpu_pct.to_bits(), Ordering::Relaxed);
            self.cfg.live.harness_rss_mib.store(h.rss_mib.to_bits(), Ordering::Relaxed);
            self.harness.insert(second, h);
        }
        for (g, reader) in self.cfg.group_readers.iter().enumerate() {
            if self.lag[g].contains_key(&second) {
                continue;
            }
            let lag = self.cfg.book.lag(*reader);
            if let Some(l) = self.cfg.live.groups.get(g) {
                l.lag.store(lag, Ordering::Relaxed);
            }
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
        let live = &self.cfg.live;
        if let Some(p) = &agg.producer {
            for (l, w) in live.classes.iter().zip(&p.classes) {
                l.sent.fetch_add(w.sent, Ordering::Relaxed);
                l.acked.fetch_add(w.acked, Ordering::Relaxed);
                l.failed.fetch_add(w.failed, Ordering::Relaxed);
                l.acked_bytes.fetch_add(w.acked_bytes, Ordering::Relaxed);
                l.ack_latency.add(&w.from_intended);
            }
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
                if let Some(l) = live.groups.get(g) {
                    l.consumed.fetch_add(w.consumed, Ordering::Relaxed);
                    l.rereads.fetch_add(w.rereads, Ordering::Relaxed);
                    l.e2e.add(&w.e2e);
                }
                let t = &mut self.rec.groups[g];
                t.consumed += w.consumed;
                t.bytes += w.bytes;
                t.foreign += w.foreign;
                t.rereads += w.rereads;
                t.reread_bytes += w.reread_bytes;
                t.foreign_bytes += w.foreign_bytes;
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
        live.audit_reads.fetch_add(agg.audit_reads, Ordering::Relaxed);
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
        self.cfg.live.seconds_closed.store(u64::from(second) + 1, Ordering::Relaxed);
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
                        c.reread_bytes += window.reread_bytes;
                        c.foreign_bytes += window.foreign_bytes;
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
