//! `bench consume` and `bench whole`: what reading costs, and what a whole run costs per record.
//!
//! `bench consume --fill` writes a topic through an ordinary max-rate run and prints that run's
//! id; `bench consume --reader group|audit --run-id ID` then replays the topic from its start
//! through the very drivers a run starts (`group::start`, `audit::start`, with the offset book,
//! the collector and its interval logs), believing it belongs to that run, so that every record
//! is decoded and recorded as a run's own: end-to-end latency and event age, the group's ledger
//! and offsets (group member), or the seen-ledger with its order check (audit reader).
//! Timed from the first record read to the last, as `rdkafka_performance -C` times itself.
//!
//! `bench whole` is an ordinary open-loop run with the audit and one consumer group, and says
//! how much CPU the fleetstorm process spent per record produced, split by thread kind.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{BenchError, Load, profile, run_on_target, scenario, scenario_with};
use crate::clock::MonotonicClock;
use crate::config::{self, Overrides};
use crate::driver::target::Connection;
use crate::driver::{ClientEvents, Shared, audit, group, launch};
use crate::plan::Plan;
use crate::recorder::{Collector, Hist, LiveCounters, OffsetBook, Start};

/// Which of fleetstorm's readers `bench consume` measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reader {
    /// A consumer-group member (one member of a group starting at `earliest`).
    Group,
    /// The delivery-audit reader (assigned every partition from its start).
    Audit,
}

/// CPU time of this process so far (user + system), in nanoseconds.
pub fn process_cpu_ns() -> u64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0;
    }
    let tv = |t: libc::timeval| {
        u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(t.tv_usec).unwrap_or(0) * 1000
    };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Per live thread of this process: (name, CPU nanoseconds so far), from /proc/self/task/*/stat.
fn thread_cpu_ns() -> Vec<(u64, String, u64)> {
    // SAFETY: sysconf has no preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ns_per_tick = if tick > 0 { 1_000_000_000 / tick as u64 } else { 10_000_000 };
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return Vec::new() };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let tid: u64 = e.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
        let (open, close) = (stat.find('(')?, stat.rfind(')')?);
        let name = stat.get(open + 1..close)?.to_string();
        // After the name: state is field 3; utime and stime are fields 14 and 15.
        let rest: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
        let utime: u64 = rest.get(11)?.parse().ok()?;
        let stime: u64 = rest.get(12)?.parse().ok()?;
        Some((tid, name, (utime + stime) * ns_per_tick))
    })
    .collect()
}

/// The kind of a thread, by its name: what the whole-run split is reported by.
fn thread_kind(name: &str) -> &'static str {
    if name.starts_with("producer") {
        "producer"
    } else if name.starts_with("consumer") {
        "group"
    } else if name == "audit" {
        "audit"
    } else if name == "collector" {
        "collector"
    } else if name.starts_with("rdk:") {
        "librdkafka"
    } else if name == "bench-sampler" {
        "bench"
    } else {
        "other"
    }
}

/// Samples every thread's CPU time while a run goes on, so that threads that end before the run
/// returns (producers, readers) are still counted (up to the last sample, every 100 ms).
struct ThreadSampler {
    stop: Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<BTreeMap<u64, (String, u64)>>>,
}

impl ThreadSampler {
    fn start() -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("bench-sampler".into())
            .spawn(move || {
                let mut last: BTreeMap<u64, (String, u64)> = BTreeMap::new();
                loop {
                    for (tid, name, ns) in thread_cpu_ns() {
                        let e = last.entry(tid).or_insert((name.clone(), 0));
                        // A thread renames itself once it runs (librdkafka's): keep the latest.
                        *e = (name, e.1.max(ns));
                    }
                    if flag.load(Ordering::Relaxed) {
                        return last;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
            .ok();
        ThreadSampler { stop, handle }
    }

    /// CPU nanoseconds per thread kind since `before` (a sample taken before the run).
    fn finish(mut self, before: &[(u64, String, u64)]) -> BTreeMap<String, u64> {
        self.stop.store(true, Ordering::Relaxed);
        let last = self.handle.take().and_then(|h| h.join().ok()).unwrap_or_default();
        let mut by_kind = BTreeMap::new();
        for (tid, (name, ns)) in last {
            let earlier = before.iter().find(|(t, ..)| *t == tid).map_or(0, |b| b.2);
            *by_kind.entry(thread_kind(&name).to_string()).or_insert(0) += ns.saturating_sub(earlier);
        }
        by_kind
    }
}

/// The result of `bench consume --fill`.
#[derive(Clone, Debug, Serialize)]
pub struct FillResult {
    pub tool: &'static str,
    /// The run whose records the topic now holds (hex): `bench consume --run-id` takes it.
    pub run_id: String,
    pub size: u64,
    pub count: u64,
    pub acked: u64,
    pub seconds: f64,
    pub msgs_per_s: f64,
}

/// Fill the topic with `count` records through an ordinary max-rate run (keyed by device id).
pub fn fill(l: &Load, count: u64) -> Result<FillResult, BenchError> {
    let duration = 600.0;
    let sc = scenario(l, (count as f64 * 2.0 / duration).ceil(), duration, "bench-consume-fill")?;
    let r = run_on_target(l, sc, Some(count))?;
    let m = r.max_rate.clone().ok_or(BenchError::NoMaxRate)?;
    Ok(FillResult {
        tool: "fleetstorm-fill",
        run_id: r.run_id.clone(),
        size: l.size,
        count,
        acked: m.acked,
        seconds: m.seconds,
        msgs_per_s: m.msgs_per_s,
    })
}

/// The result of `bench consume`.
#[derive(Clone, Debug, Serialize)]
pub struct ConsumeResult {
    pub tool: &'static str,
    pub reader: Reader,
    /// Records in the topic, all read.
    pub count: u64,
    /// Records read as this run's and recorded (group: first reads in its ledger; audit:
    /// distinct records in the seen-ledger). Equal to `count` when the topic holds only the
    /// fill's records.
    pub recorded: u64,
    /// Value bytes read, as the group's windows count them (0 for the audit, which counts none).
    pub bytes: u64,
    /// From the first record read to the last.
    pub seconds: f64,
    pub msgs_per_s: f64,
    pub mb_per_s: f64,
    /// CPU of this process (user + system, all threads: librdkafka's included) over the same span.
    pub cpu_s: f64,
    pub cpu_ns_per_record: f64,
}

/// Read every record of `l.topic` from its start with one of fleetstorm's readers, as a reader of
/// run `run_id` (the run that filled it).
pub fn consume(l: &Load, reader: Reader, run_id: u64) -> Result<ConsumeResult, BenchError> {
    // The fill's scenario, with one consumer group starting at the earliest offsets (a fresh group
    // id each time) and the audit: what a run that replays history starts.
    let fresh = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let readers = match reader {
        Reader::Group => format!(
            "audit: {{enabled: false}}\nconsumers: [{{name: g, members: 1, topics: [{topic}], start: earliest, \
             group_id: fleetstorm.bench-consume.{fresh:x}}}]\n",
            topic = l.topic
        ),
        Reader::Audit => "audit: {enabled: true}\n".to_string(),
    };
    let sc = scenario_with(l, 1000.0, 600.0, "bench-consume", &readers)?;
    let (s, _) = sc.prepare(Overrides { duration: None, seed: None }).finish()?;
    let plan = Plan::from_scenario(&s);

    let start = Start::default();
    let events = Arc::new(ClientEvents::new(start.clone()));
    let redactor = Arc::new(crate::config::profile::Redactor::default());
    let p = profile(&l.bootstrap)?;
    let conn = Connection::open(&p.value, events.clone(), redactor.clone(), Arc::new(|| false))?;
    let layout = launch::lay_out(&conn, &s, &plan, run_id)?;
    let total: u64 = layout.highs.iter().zip(&layout.lows).map(|(h, lo)| u64::try_from(h - lo).unwrap_or(0)).sum();
    let template = Hist::template().map_err(|e| BenchError::Io(std::io::Error::other(e.to_string())))?;
    let mut shared = Shared::new(&conn, events, redactor, start.clone(), template, run_id);

    // The offset book as `launch::start` lays it out; the reader starts at the log starts and the
    // log ends are where the fill left them.
    let counts: Vec<u32> =
        (0..plan.topics.len()).map(|t| layout.partitions.iter().filter(|(pt, _)| *pt == t).count() as u32).collect();
    let mut book = OffsetBook::new(&counts, &layout.highs);
    let all_topics: Vec<usize> = (0..plan.topics.len()).collect();
    let book_reader = book.add_reader(&all_topics, &layout.lows);
    shared.book = Arc::new(book);
    std::fs::create_dir_all(&l.out)?;
    let live = Arc::new(LiveCounters::new(plan.classes.len(), s.consumers.len()));
    let groups = if reader == Reader::Group { vec![book_reader] } else { Vec::new() };
    let mut collector = Collector::new(launch::collector_config(&s, &plan, &shared, live, &l.out, groups));
    // The clock runs before the readers start: in a run it starts once they are ready, before
    // any record of the run exists; here the records are there already, and a reader only
    // records what it reads while the clock runs.
    let _ = start.set(MonotonicClock::start());

    let (mut members, mut ledger, mut audit_handle) = (Vec::new(), None, None);
    match reader {
        Reader::Group => {
            let id = group::group_id(&s.consumers[0], &s.name, run_id);
            let at = group::Placement { index: 0, group_id: &id, reader: book_reader, shard: plan.shard };
            let started =
                group::start(&s.consumers[0], &at, &plan.topics, s.seed, &shared, &mut || collector.source())?;
            members = started.members;
            ledger = Some(started.ledger);
        }
        Reader::Audit => {
            let assignment: Vec<(String, i32, i64)> = layout
                .partitions
                .iter()
                .zip(&layout.lows)
                .map(|((t, p), low)| (plan.topics[*t].clone(), *p, *low))
                .collect();
            let keyed = plan.classes.iter().map(|c| c.keyed).collect();
            let mine = audit::Mine { shard: plan.shard, seed: plan.seed };
            audit_handle =
                Some(audit::start(assignment, &plan.topics, keyed, mine, book_reader, &shared, collector.source())?);
        }
    }
    let collector = collector.spawn()?;

    // From the first record read to the last, polled every millisecond; the records already read
    // at the first look are left out of the rate, so the poll's granularity does not bias it.
    let book = shared.book.clone();
    let read = || total - book.lag(book_reader).min(total);
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut first: Option<(Instant, u64, u64)> = None;
    // FLEETSTORM_BENCH_TRACE=1: the records read so far, every millisecond, on stderr (how the
    // fetch stalls of BENCHMARKS.md, "Replay reads", were found).
    let trace = std::env::var_os("FLEETSTORM_BENCH_TRACE").is_some();
    let t_start = Instant::now();
    let mut last = None;
    while Instant::now() < deadline {
        let n = read();
        if first.is_none() && n > 0 {
            first = Some((Instant::now(), n, process_cpu_ns()));
        }
        if n >= total {
            last = Some((Instant::now(), process_cpu_ns()));
            break;
        }
        if trace {
            eprintln!("bench consume: {:.3} s {n}", t_start.elapsed().as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    shared.control.stop_reading.store(true, Ordering::SeqCst);
    shared.control.stop_audit.store(true, Ordering::SeqCst);
    let mut recorded = 0;
    for m in members {
        let _ = m.join();
    }
    if let Some(l) = &ledger {
        recorded = l.merged().len();
    }
    if let Some(h) = audit_handle
        && let Ok(o) = h.join()
    {
        recorded = o.ledger.distinct();
    }
    let recording = collector.join().ok();
    let bytes = recording.as_ref().and_then(|r| r.groups.first()).map_or(0, |g| g.bytes);
    let (Some((t0, n0, cpu0)), Some((t1, cpu1))) = (first, last) else {
        return Err(BenchError::Io(std::io::Error::other(format!("read {} of {total} records in 600 s", read()))));
    };
    let seconds = (t1 - t0).as_secs_f64().max(1e-9);
    let timed = total.saturating_sub(n0).max(1);
    let cpu_ns = cpu1.saturating_sub(cpu0);
    Ok(ConsumeResult {
        tool: match reader {
            Reader::Group => "fleetstorm-group",
            Reader::Audit => "fleetstorm-audit",
        },
        reader,
        count: total,
        recorded,
        bytes,
        seconds,
        msgs_per_s: timed as f64 / seconds,
        mb_per_s: bytes as f64 / total.max(1) as f64 * timed as f64 / seconds / 1e6,
        cpu_s: cpu_ns as f64 / 1e9,
        cpu_ns_per_record: cpu_ns as f64 / timed as f64,
    })
}

/// The result of `bench whole`.
#[derive(Clone, Debug, Serialize)]
pub struct WholeResult {
    /// How the run ended, and its report: a repetition that fell short says why (its status,
    /// failures, records left unsent, the report's warnings), and its report stays behind.
    pub status: crate::report::Status,
    pub report: String,
    pub warnings: Vec<String>,
    pub planned_per_s: f64,
    pub duration_s: f64,
    /// Records planned, failed, and still unsent when the load ended.
    pub planned: u64,
    pub failed: u64,
    pub unsent_at_end: u64,
    /// Records acknowledged, and read by the audit and the group.
    pub acked: u64,
    pub audited: u64,
    pub group_consumed: u64,
    pub lost: u64,
    /// CPU of the fleetstorm process over the whole run (set-up and drain included).
    pub cpu_s: f64,
    pub cpu_ns_per_record: f64,
    /// The same, per thread kind (producer, librdkafka, audit, group, collector, other), sampled
    /// every 100 ms from /proc/self/task (a thread's last 100 ms before it ends can be missed).
    pub cpu_ns_per_record_by_thread: BTreeMap<String, f64>,
    pub harness_saturated: bool,
}

/// An ordinary open-loop run at `rate` per second for `duration_s`, with the audit and one
/// consumer group: CPU nanoseconds per record of the whole process.
pub fn whole(l: &Load, rate_per_s: f64, duration_s: f64) -> Result<WholeResult, BenchError> {
    let readers = format!("audit: {{enabled: true}}\nconsumers: [{{name: g, members: 1, topics: [{}]}}]\n", l.topic);
    let mut sc = scenario_with(l, rate_per_s, duration_s, "bench-whole", &readers)?;
    sc.value.warmup = config::units::Dur::from_secs(1);
    let before = thread_cpu_ns();
    let sampler = ThreadSampler::start();
    let cpu0 = process_cpu_ns();
    let r = run_on_target(l, sc, None)?;
    let mut by_kind = sampler.finish(&before);
    // The sampler's own thread is the benchmark's, not the run's.
    let sampling = by_kind.remove("bench").unwrap_or(0);
    let cpu_ns = process_cpu_ns().saturating_sub(cpu0).saturating_sub(sampling);
    let acked = r.produce.acked;
    let per = |ns: u64| ns as f64 / acked.max(1) as f64;
    Ok(WholeResult {
        status: r.status,
        report: l.out.join("report.json").display().to_string(),
        warnings: r.warnings.clone(),
        planned_per_s: r.produce.planned_rate,
        duration_s,
        planned: r.produce.planned,
        failed: r.produce.failed,
        unsent_at_end: r.produce.unsent_at_end,
        acked,
        audited: r.audit.counts.seen,
        group_consumed: r.consumers.values().map(|g| g.consumed).sum(),
        lost: r.audit.counts.lost,
        cpu_s: cpu_ns as f64 / 1e9,
        cpu_ns_per_record: per(cpu_ns),
        cpu_ns_per_record_by_thread: by_kind.into_iter().map(|(k, v)| (k, per(v))).collect(),
        harness_saturated: r.harness.saturated,
    })
}
