//! Benchmarks of the harness itself (`fleetstorm bench ...`, driven by `scripts/bench.sh`), and
//! `fleetstorm serve-embedded`, an embedded cluster in its own process so that fleetstorm and
//! librdkafka's `rdkafka_performance` can be measured against the very same target.
//!
//! Every benchmark goes through the code a real run uses: `bench produce` is a run whose producers
//! ignore intended times (max rate); `bench rate` is an ordinary open-loop run; `bench fleet`
//! builds the real plan and schedule.

use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::{self, Loaded, Profile};
use crate::report::Report;
use crate::run::{self, RunOptions};
use crate::signals::Interrupts;

pub mod read;

/// Settings shared by the produce benchmarks.
#[derive(Clone, Debug)]
pub struct Load {
    pub bootstrap: String,
    pub topic: String,
    pub partitions: u32,
    pub size: u64,
    pub acks: String,
    pub linger_ms: u32,
    pub devices: u64,
    /// Producer instances (each its own librdkafka client and thread).
    pub instances: u32,
    /// Records keyed by device id (`false`: unkeyed, like `rdkafka_performance`).
    pub keyed: bool,
    /// Topic retention, if set (a real cluster; the embedded one ignores topic configs).
    pub retention_ms: Option<u64>,
    /// Replication factor if the topic has to be created.
    pub replication: u16,
    pub out: PathBuf,
}

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Run(#[from] run::RunError),
    #[error(transparent)]
    Target(#[from] crate::driver::target::TargetError),
    #[error("the run produced no max-rate result")]
    NoMaxRate,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn scenario(l: &Load, rate_per_s: f64, duration_s: f64, name: &str) -> Result<Loaded<config::Scenario>, BenchError> {
    scenario_with(l, rate_per_s, duration_s, name, "audit: {enabled: false}\n")
}

/// The benchmark scenario with `readers` (its `audit:` and any `consumers:`, YAML) at the end.
fn scenario_with(
    l: &Load,
    rate_per_s: f64,
    duration_s: f64,
    name: &str,
    readers: &str,
) -> Result<Loaded<config::Scenario>, BenchError> {
    let text = format!(
        "name: {name}\nseed: 1\nduration: {duration_s}s\ndrain: 60s\ntarget_timeout: 60s\n\
         topics: [{{name: {topic}, partitions: {p}, replication: {rf}{config}}}]\n\
         fleet:\n  devices: {d}\n  classes: [{{name: m, topic: {topic}, total_rate: {rate_per_s}/s, size: {size}B, format: binary, key: {key}}}]\n\
         producer: {{instances: {instances}, acks: \"{acks}\", linger: {linger}ms, batch_size: 1000000B, compression: none, idempotence: false, max_in_flight: 100000}}\n\
         {readers}",
        topic = l.topic,
        p = l.partitions,
        d = l.devices,
        size = l.size,
        acks = l.acks,
        linger = l.linger_ms,
        instances = l.instances,
        key = if l.keyed { "device_id" } else { "none" },
        rf = l.replication,
        // Short retention in small segments, so repeated benchmarks do not fill a real cluster's disk.
        config = l.retention_ms.map_or(String::new(), |ms| {
            format!(", config: {{retention.ms: \"{ms}\", segment.bytes: \"67108864\"}}")
        }),
    );
    config::scenario_from_text("(bench)", text).map_err(BenchError::from)
}

fn profile(bootstrap: &str) -> Result<Loaded<Profile>, BenchError> {
    let text = format!("name: bench-target\nkind: kafka\nbootstrap_servers: \"{bootstrap}\"\n");
    config::profile_from_text("(bench)", text, &|_| None, false).map_err(BenchError::from)
}

/// One ordinary run of a benchmark scenario against the benchmark's target, quiet but for its
/// summary; `unpaced`: send that many records as fast as the target takes them.
fn run_on_target(l: &Load, sc: Loaded<config::Scenario>, unpaced: Option<u64>) -> Result<Report, BenchError> {
    let opts = RunOptions {
        progress: false,
        out: Some(l.out.clone()),
        duration: None,
        seed: None,
        unpaced,
        summary_to_stderr: true,
        // The benchmark's output directory is scratch space, reused by every repetition.
        overwrite: true,
        campaign: None,
        pricing: Vec::new(),
        metrics_addr: None,
    };
    let finished = run::run(sc, profile(&l.bootstrap)?, &opts, &Interrupts::default())?;
    Ok(finished.report)
}

/// The result of `bench produce`.
#[derive(Clone, Debug, Serialize)]
pub struct ProduceResult {
    pub tool: &'static str,
    pub instances: u32,
    pub keyed: bool,
    pub size: u64,
    pub acks: String,
    pub count: u64,
    pub acked: u64,
    pub seconds: f64,
    pub msgs_per_s: f64,
    pub mb_per_s: f64,
    pub harness_cpu_pct_peak: f32,
}

/// Send `count` records as fast as the target takes them.
pub fn produce(l: &Load, count: u64) -> Result<ProduceResult, BenchError> {
    // Enough schedule for `count` events; the producer stops at `count`.
    let duration = 600.0;
    let sc = scenario(l, (count as f64 * 2.0 / duration).ceil(), duration, "bench-produce")?;
    let r = run_on_target(l, sc, Some(count))?;
    let m = r.max_rate.clone().ok_or(BenchError::NoMaxRate)?;
    Ok(ProduceResult {
        tool: if l.keyed { "fleetstorm" } else { "fleetstorm-unkeyed" },
        instances: l.instances,
        keyed: l.keyed,
        size: l.size,
        acks: l.acks.clone(),
        count,
        acked: m.acked,
        seconds: m.seconds,
        msgs_per_s: m.msgs_per_s,
        mb_per_s: m.mb_per_s,
        harness_cpu_pct_peak: r.harness.cpu_pct_peak,
    })
}

/// The result of `bench rate`.
#[derive(Clone, Debug, Serialize)]
pub struct RateResult {
    pub planned_per_s: f64,
    pub achieved_per_s: f64,
    pub ratio: f64,
    pub send_lag_p99_us: u64,
    pub send_lag_p50_us: u64,
    pub backpressure: u64,
    pub ack_p99_us: u64,
    pub harness_saturated: bool,
    pub harness_cpu_pct_peak: f32,
    pub harness_cpu_pct_mean: f32,
    /// The whole machine's CPU: near 100% means the sender competed for CPU (on this machine,
    /// with a co-located target's JVMs).
    pub host_cpu_pct_mean: f32,
}

/// An ordinary open-loop run at `rate` per second.
pub fn rate(l: &Load, rate_per_s: f64, duration_s: f64) -> Result<RateResult, BenchError> {
    let mut sc = scenario(l, rate_per_s, duration_s, "bench-rate")?;
    sc.value.warmup = config::units::Dur::from_secs(1);
    let r = run_on_target(l, sc, None)?;
    let p = &r.produce;
    Ok(RateResult {
        planned_per_s: p.planned_rate,
        achieved_per_s: p.achieved_rate,
        ratio: if p.planned_rate > 0.0 { p.achieved_rate / p.planned_rate } else { 0.0 },
        send_lag_p99_us: p.send_lag.p99_us,
        send_lag_p50_us: p.send_lag.p50_us,
        backpressure: p.backpressure,
        ack_p99_us: p.latency_from_intended.p99_us,
        harness_saturated: r.harness.saturated,
        harness_cpu_pct_peak: r.harness.cpu_pct_peak,
        harness_cpu_pct_mean: r.harness.cpu_pct_mean,
        host_cpu_pct_mean: r.harness.host_cpu_pct_mean,
    })
}

/// The result of `bench fleet`.
#[derive(Clone, Debug, Serialize)]
pub struct FleetResult {
    pub devices: u64,
    pub classes: usize,
    /// Plan and schedule built, first event ready.
    pub ready_s: f64,
    pub rss_before_mib: f64,
    pub rss_after_mib: f64,
    /// Resident memory added per simulated device, bytes.
    pub bytes_per_device: f64,
    pub streams: usize,
}

fn rss_bytes() -> u64 {
    // /proc/self/statm: size resident shared ... in pages.
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
        .map_or(0, |pages| pages * 4096)
}

/// Build the plan and schedule of a fleet of `devices` idle devices (one event per hour each).
pub fn fleet(devices: u64, classes: usize) -> Result<FleetResult, BenchError> {
    let class_lines: String = (0..classes)
        .map(|i| format!("    - {{name: c{i}, topic: t, rate: 1/1h, size: 64B, format: binary}}\n"))
        .collect();
    let text = format!(
        "name: bench-fleet\nseed: 1\nduration: 1h\ntopics: [{{name: t}}]\nfleet:\n  devices: {devices}\n  classes:\n{class_lines}"
    );
    let s = config::parse_scenario("(bench)", &text)?;
    let before = rss_bytes();
    let t0 = Instant::now();
    let plan = crate::plan::Plan::from_scenario(&s);
    let mut schedule = plan.schedule(0, 1);
    let first = schedule.peek_time();
    let ready_s = t0.elapsed().as_secs_f64();
    let after = rss_bytes();
    let streams = schedule.live_streams();
    // Keep the schedule alive until measured, and prove it works.
    let _ = (first, schedule.next());
    Ok(FleetResult {
        devices,
        classes,
        ready_s,
        rss_before_mib: before as f64 / 1048576.0,
        rss_after_mib: after as f64 / 1048576.0,
        bytes_per_device: after.saturating_sub(before) as f64 / devices as f64,
        streams,
    })
}

/// What the delivery ledgers hold after a scenario's whole plan was sent and read back.
#[derive(Debug, serde::Serialize)]
pub struct LedgerResult {
    pub scenario: String,
    pub records: u64,
    pub streams: u64,
    /// Heap of the acknowledgement ledger and of the audit's seen-ledger (table capacities).
    pub ack_ledger_mib: f64,
    pub seen_ledger_mib: f64,
    /// Per consumer group, the ledger of what it read (every record of its topics).
    pub group_ledgers_mib: Vec<(String, f64)>,
    /// All of them, per record.
    pub bytes_per_record: f64,
    /// The process's resident memory before and after filling them (the allocator's view).
    pub rss_before_mib: f64,
    pub rss_after_mib: f64,
}

/// `fleetstorm bench ledger SCENARIO`: fill the audit's and the groups' ledgers with every
/// record of the scenario's plan, as a run in which everything is acknowledged and read back
/// would, and measure what they hold. The ledgers keep one bit per record, so they grow with
/// the number of records: this says by how much for a given workload.
pub fn ledger(path: &std::path::Path, duration: Option<config::units::Dur>) -> Result<LedgerResult, BenchError> {
    use crate::recorder::audit::{AckLedger, BitSet, SeenLedger, Stream};
    let prepared = config::load_scenario(path)?.prepare(config::Overrides { duration, seed: None });
    let (s, _) = prepared.finish()?;
    let plan = crate::plan::Plan::from_scenario(&s);
    let before = rss_bytes();
    let (mut acks, mut seen) = (AckLedger::default(), SeenLedger::default());
    let group_topics: Vec<Vec<usize>> = s
        .consumers
        .iter()
        .map(|g| g.topics.iter().filter_map(|t| plan.topics.iter().position(|x| x == t)).collect())
        .collect();
    let mut groups: Vec<BitSet> = vec![BitSet::default(); s.consumers.len()];
    let mut records = 0u64;
    let mut streams = std::collections::HashSet::new();
    for e in plan.schedule(0, 1) {
        let stream = Stream { class: e.class, device: e.device };
        let second = (e.intended_us / 1_000_000) as u32;
        let topic = plan.classes[usize::from(e.class)].topic;
        acks.acked(stream, e.seq, second, topic * 1024 + (e.device % 24) as usize);
        seen.saw(stream, e.seq, second);
        for (g, topics) in groups.iter_mut().zip(&group_topics) {
            if topics.contains(&topic) {
                g.insert(stream, e.seq);
            }
        }
        records += 1;
        streams.insert((e.class, e.device));
    }
    let after = rss_bytes();
    let mib = |b: u64| b as f64 / 1048576.0;
    let group_bytes: Vec<u64> = groups.iter().map(BitSet::heap_bytes).collect();
    let total = acks.heap_bytes() + seen.heap_bytes() + group_bytes.iter().sum::<u64>();
    Ok(LedgerResult {
        scenario: s.name.clone(),
        records,
        streams: streams.len() as u64,
        ack_ledger_mib: mib(acks.heap_bytes()),
        seen_ledger_mib: mib(seen.heap_bytes()),
        group_ledgers_mib: s.consumers.iter().zip(&group_bytes).map(|(g, b)| (g.name.clone(), mib(*b))).collect(),
        bytes_per_record: total as f64 / records.max(1) as f64,
        rss_before_mib: mib(before),
        rss_after_mib: mib(after),
    })
}

/// `fleetstorm serve-embedded`: an embedded cluster in this process until Ctrl-C or SIGTERM (or,
/// with `until_stdin_closes`, the end of stdin). Prints `bootstrap=<servers>` on stdout once its
/// topics exist.
pub fn serve_embedded(brokers: u32, topics: &[(String, u32)], until_stdin_closes: bool) -> Result<(), BenchError> {
    let mut p = Profile::embedded();
    p.brokers = Some(brokers);
    let events = std::sync::Arc::new(crate::driver::ClientEvents::default());
    let redactor = std::sync::Arc::new(crate::config::profile::Redactor::default());
    let conn = crate::driver::target::Connection::open(&p, events, redactor, std::sync::Arc::new(|| false))?;
    let specs: Vec<config::scenario::TopicSpec> = topics
        .iter()
        .map(|(name, partitions)| config::scenario::TopicSpec {
            name: name.clone(),
            partitions: *partitions,
            replication: u16::try_from(brokers.min(3)).unwrap_or(3),
            config: Default::default(),
        })
        .collect();
    conn.ensure_topics(&specs)?;
    println!("bootstrap={}", conn.bootstrap);
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    let interrupts = Interrupts::install();
    let eof = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = eof.clone();
    if until_stdin_closes {
        std::thread::spawn(move || {
            let mut sink = [0u8; 64];
            let mut stdin = std::io::stdin();
            while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        });
    }
    while interrupts.count() == 0 && !eof.load(std::sync::atomic::Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(conn);
    Ok(())
}
