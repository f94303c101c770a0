//! `fleetstorm merge`: one report from the shards of a campaign (`run --shard I/N` on N
//! machines), with the same schema, summary, charts, HTML, `.hlog` files, gates and JUnit as a
//! single run.
//!
//! A new stage after the report, reading finished reports only: report → merge → report. It
//! never imports the plan, the drivers or the run; everything it needs is in each shard's
//! `report.json` and `.hlog` files.
//!
//! - **Exact where it can be**: latency summaries, spectra and the per-second percentiles come
//!   from the shards' HdrHistogram interval logs merged interval by interval ([`hlogs`]), so a
//!   merged p99 is the p99 of every sample of every shard, never a mean of p99s.
//! - **Counters add**: every device belongs to one shard, so produce counts, per class and per
//!   firmware version, waves' counts, consumed records and the delivery audit add up; so does
//!   lag, second by second (each shard counts the partitions its own group members read, against
//!   its own acknowledgements: an approximation of the group's lag, see the README).
//! - **Faults are injected by one shard**: their records come from the shard that injected them;
//!   the figures that depend on the timeline (recovery, dip, errors, audit) are recomputed on the
//!   merged timeline with the same functions a run uses, as are waves, replays, slowdowns and
//!   restarts.
//! - **Shards that don't belong together are refused**: a different campaign, scenario
//!   fingerprint, shard count or start, a shard given twice, a shard missing (unless
//!   `--allow-partial`, which says so in `merged.missing` and a warning).
//! - **Each shard's harness verdict is kept** (`merged.per_shard`); a saturated shard is named.
//! - **Cost drivers add up** ([`cost_drivers`]): bytes and requests per class and group, and per
//!   topic (the same topics on every shard: their bytes sum, the topics are not repeated); with
//!   `--pricing` the merged report is priced like a run's.

pub mod hlogs;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::config::scenario::Scenario;
use crate::recorder::Hist;
use crate::recorder::hlog::FILES;
use crate::report::error::{ReadError, WriteError};
use crate::report::faults::{self, FaultReport};
use crate::report::gates::Judge;
use crate::report::schema::{
    AuditPoint, CostDrivers, HarnessPoint, LatencySummary, PartitionLine, Partitions, RebalanceEvent, TimelinePoint,
    TopicPartitions, WireCounts,
};
use crate::report::shapes;
use crate::report::{
    ClassReport, GroupReport, HarnessReport, MaxRate, MergeInfo, Report, ShardSummary, Status, VersionReport,
};

/// At most this many examples (lost, duplicated, missed records) in a merged list.
const EXAMPLES: usize = 10;

/// Why a merge was refused or could not be written.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("give at least one shard directory to merge")]
    NoInput,
    #[error(
        "{}: not a shard of a campaign (its report.json has no `campaign`: it was not run with --shard I/N)",
        dir.display()
    )]
    NotAShard { dir: PathBuf },
    #[error("{}: {what} is {found}, but {} has {expected}: these shards are not of one campaign", dir.display(), first.display())]
    Mismatch { what: &'static str, dir: PathBuf, found: String, first: PathBuf, expected: String },
    #[error("{}: shard {shard} of {shards} does not exist (shards are numbered 0 to {})", dir.display(), shards.saturating_sub(1))]
    ShardOutOfRange { dir: PathBuf, shard: u32, shards: u32 },
    #[error("shard {shard} is given twice: {} and {}", a.display(), b.display())]
    Duplicate { shard: u32, a: PathBuf, b: PathBuf },
    #[error(
        "campaign `{campaign}`: shard(s) {} of {shards} missing (merged would be {} of {shards}); give every shard's \
         directory, or pass --allow-partial to merge the others into a report marked partial",
        list(missing),
        shards - missing.len() as u32
    )]
    Missing { campaign: String, missing: Vec<u32>, shards: u32 },
    #[error("{}: not a valid interval log: {why}", path.display())]
    Hlog { path: PathBuf, why: String },
    #[error("{}: {problems}", path.display())]
    Gates { path: PathBuf, problems: String },
    #[error("--out {}: {why}", dir.display())]
    Out { dir: PathBuf, why: String },
    #[error("cannot write {}: {cause}", path.display())]
    Write { path: PathBuf, cause: std::io::Error },
    #[error(transparent)]
    Derived(#[from] WriteError),
    #[error("the merged report could not be priced: {0}")]
    Cost(Box<crate::cost::CostError>),
}

impl MergeError {
    /// The inputs were at fault (exit 2), not the writing of the output (exit 4).
    pub fn is_input(&self) -> bool {
        match self {
            MergeError::Write { .. } | MergeError::Derived(_) => false,
            MergeError::Cost(e) => e.is_input(),
            _ => true,
        }
    }
}

fn list(v: &[u32]) -> String {
    v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}

/// What to merge and where.
#[derive(Clone, Debug, Default)]
pub struct MergeOptions {
    /// The shards' output directories.
    pub dirs: Vec<PathBuf>,
    /// Where the merged report goes: a new or empty directory.
    pub out: PathBuf,
    /// Merge what is there when shards are missing, and say so.
    pub allow_partial: bool,
    /// Gates to evaluate instead of the scenario's own.
    pub gates: Option<PathBuf>,
    /// Say what is being done on stderr.
    pub progress: bool,
    /// Price the merged report under these (`--pricing`, read and checked by the caller).
    pub pricing: Vec<crate::cost::pricing::PricingFile>,
}

/// One shard's report and where it came from.
#[derive(Clone, Debug)]
pub struct Shard {
    pub dir: PathBuf,
    pub index: u32,
    pub report: Report,
}

/// Shards that belong together, in shard order, and the indexes missing.
#[derive(Clone, Debug)]
pub struct Campaign {
    pub id: String,
    pub shards: u32,
    pub start_unix_ms: u64,
    pub parts: Vec<Shard>,
    pub missing: Vec<u32>,
    /// The shards' timelines, folded as they were read (their own then dropped, so that 64
    /// shards of an hour never hold 64 timelines at once); `None`: fold the parts' timelines.
    pub folded: Option<Folded>,
}

/// Read the shards' reports and check they belong together.
pub fn load(dirs: &[PathBuf], allow_partial: bool) -> Result<Campaign, MergeError> {
    let mut parts = Vec::new();
    let mut folded = Folded::default();
    for dir in dirs {
        let mut report = Report::read(dir)?;
        let Some(c) = &report.campaign else { return Err(MergeError::NotAShard { dir: dir.clone() }) };
        let index = c.shard;
        folded.add(&report.timeline);
        report.timeline = Vec::new();
        parts.push(Shard { dir: dir.clone(), index, report });
    }
    let mut c = check(parts, allow_partial)?;
    c.folded = Some(folded);
    Ok(c)
}

/// Check that shards belong together: one campaign, one scenario, one shard count and start,
/// each index once, none missing (unless `allow_partial`).
pub fn check(mut parts: Vec<Shard>, allow_partial: bool) -> Result<Campaign, MergeError> {
    let Some(first) = parts.first().cloned() else { return Err(MergeError::NoInput) };
    let Some(c0) = first.report.campaign.clone() else { return Err(MergeError::NotAShard { dir: first.dir }) };
    for p in &parts {
        let Some(c) = &p.report.campaign else { return Err(MergeError::NotAShard { dir: p.dir.clone() }) };
        let differs = |what: &'static str, found: String, expected: String| {
            (found != expected).then(|| MergeError::Mismatch {
                what,
                dir: p.dir.clone(),
                found,
                first: first.dir.clone(),
                expected,
            })
        };
        let quoted = |s: &str| format!("`{s}`");
        let fingerprint = |r: &Report| quoted(&r.scenario.fingerprint);
        if let Some(e) = differs("the campaign", quoted(&c.id), quoted(&c0.id))
            .or_else(|| differs("the scenario fingerprint", fingerprint(&p.report), fingerprint(&first.report)))
            .or_else(|| differs("the shard count", c.shards.to_string(), c0.shards.to_string()))
            .or_else(|| {
                differs("the agreed start (Unix ms)", c.start_unix_ms.to_string(), c0.start_unix_ms.to_string())
            })
        {
            return Err(e);
        }
        if c.shard >= c.shards {
            return Err(MergeError::ShardOutOfRange { dir: p.dir.clone(), shard: c.shard, shards: c.shards });
        }
    }
    parts.sort_by_key(|p| p.index);
    for w in parts.windows(2) {
        if w[0].index == w[1].index {
            return Err(MergeError::Duplicate { shard: w[0].index, a: w[0].dir.clone(), b: w[1].dir.clone() });
        }
    }
    let present: BTreeSet<u32> = parts.iter().map(|p| p.index).collect();
    let missing: Vec<u32> = (0..c0.shards).filter(|i| !present.contains(i)).collect();
    if !missing.is_empty() && !allow_partial {
        return Err(MergeError::Missing { campaign: c0.id, missing, shards: c0.shards });
    }
    Ok(Campaign { id: c0.id, shards: c0.shards, start_unix_ms: c0.start_unix_ms, parts, missing, folded: None })
}

/// The merged histogram families, in the order of [`FILES`].
pub struct Latencies {
    pub from_intended: hlogs::Family,
    pub from_send: hlogs::Family,
    pub send_lag: hlogs::Family,
    pub e2e: hlogs::Family,
    pub age: hlogs::Family,
}

/// Merge the shards' interval logs; write the merged logs into `out` when given. The five
/// families are independent: each is merged on its own thread.
pub fn merge_latencies(c: &Campaign, out: Option<&Path>, progress: bool) -> Result<Latencies, MergeError> {
    let template = Hist::template().map_err(|e| MergeError::Hlog { path: PathBuf::new(), why: e.to_string() })?;
    let warmup_us = c.parts.first().map_or(0, |p| (p.report.scenario.warmup_s * 1e6).round() as u64);
    let origin_unix_us = c.start_unix_ms.saturating_mul(1000);
    let merged: Vec<Result<hlogs::Family, MergeError>> = std::thread::scope(|scope| {
        let threads: Vec<_> = FILES
            .iter()
            .map(|name| {
                let inputs: Vec<PathBuf> = c.parts.iter().map(|p| p.dir.join(name)).collect();
                let path = out.map(|o| o.join(name));
                let template = &template;
                let thread = scope.spawn(move || {
                    let output = path.as_deref().map(|path| hlogs::Output { path, origin_unix_us });
                    hlogs::merge_family(name, &inputs, template, warmup_us, output.as_ref())
                });
                (name, thread)
            })
            .collect();
        threads
            .into_iter()
            .map(|(name, t)| {
                t.join().unwrap_or_else(|_| {
                    Err(MergeError::Hlog { path: PathBuf::from(name), why: "the merging thread panicked".into() })
                })
            })
            .collect()
    });
    let mut families = Vec::new();
    for (name, f) in FILES.iter().zip(merged) {
        let f = f?;
        if progress {
            eprintln!("  {name}: {} intervals merged into {}", f.intervals_in, f.seconds.len());
        }
        families.push(f);
    }
    let mut it = families.into_iter();
    let mut next = || it.next().ok_or_else(|| MergeError::Hlog { path: PathBuf::new(), why: "missing family".into() });
    Ok(Latencies { from_intended: next()?, from_send: next()?, send_lag: next()?, e2e: next()?, age: next()? })
}

/// `fleetstorm merge`: check, merge, evaluate the gates and write every output file. Returns the
/// merged report.
pub fn merge(opts: &MergeOptions) -> Result<Report, MergeError> {
    if opts.dirs.is_empty() {
        return Err(MergeError::NoInput);
    }
    let campaign = load(&opts.dirs, opts.allow_partial)?;
    let priced: Vec<String> = opts.pricing.iter().map(|f| f.pricing.name.clone()).collect();
    let gates = match &opts.gates {
        Some(path) => Some(read_gates(path, &campaign, &priced)?),
        None => None,
    };
    prepare_out(&opts.out, &opts.dirs)?;
    if opts.progress {
        eprintln!(
            "merging {} of {} shard(s) of campaign `{}` into {}",
            campaign.parts.len(),
            campaign.shards,
            campaign.id,
            opts.out.display()
        );
    }
    let lat = merge_latencies(&campaign, Some(&opts.out), opts.progress)?;
    let mut report = combine(&campaign, &lat)?;
    let judges = match gates {
        Some(g) => g,
        None => scenario_gates(&report.scenario.definition, &opts.out, &priced)?,
    };
    let cost = price(&mut report, &opts.out, &opts.pricing)?;
    evaluate_gates(&mut report, &judges, &campaign);
    report.write(&opts.out).map_err(|cause| MergeError::Write { path: opts.out.join("report.json"), cause })?;
    report.write_derived(&opts.out)?;
    if let Some(c) = &cost {
        crate::cost::write(c, &opts.out).map_err(|e| MergeError::Cost(Box::new(e)))?;
        for line in crate::cost::totals(c) {
            eprintln!("{line}");
        }
    }
    Ok(report)
}

/// `--pricing`: the merged report priced under each file, before its gates are judged.
fn price(
    r: &mut Report,
    out: &Path,
    files: &[crate::cost::pricing::PricingFile],
) -> Result<Option<crate::cost::CostFile>, MergeError> {
    if files.is_empty() {
        return Ok(None);
    }
    crate::cost::attach(&out.display().to_string(), r, files).map(Some).map_err(|e| MergeError::Cost(Box::new(e)))
}

fn read_gates(path: &Path, c: &Campaign, priced: &[String]) -> Result<Vec<Judge>, MergeError> {
    let file = crate::config::read_gates(path)
        .map_err(|e| MergeError::Gates { path: path.to_path_buf(), problems: e.to_string() })?;
    let scenario = c.parts.first().map(|p| &p.report.scenario.definition);
    let scenario = scenario.ok_or(MergeError::NoInput)?;
    judges(&file.value, scenario, path, priced)
}

fn scenario_gates(s: &Scenario, out: &Path, priced: &[String]) -> Result<Vec<Judge>, MergeError> {
    judges(&s.gates, s, &out.join("report.json"), priced)
}

fn judges(
    specs: &[crate::config::scenario::GateSpec],
    s: &Scenario,
    path: &Path,
    priced: &[String],
) -> Result<Vec<Judge>, MergeError> {
    let (gates, problems) = crate::config::gates::parse_all(specs, s);
    let mut problems: Vec<String> = problems.iter().map(|(i, e)| format!("gates[{i}]: {e}")).collect();
    // A cost gate is judged on the merged report priced with --pricing, never on a shard's part.
    let unpriced = crate::config::gates::check_pricing(&gates, specs, priced);
    problems.extend(unpriced.into_iter().map(|(at, e)| format!("{at}: {e}")));
    if !problems.is_empty() {
        let problems = problems.join("; ");
        return Err(MergeError::Gates { path: path.to_path_buf(), problems });
    }
    Ok(gates.into_iter().map(Judge::from).collect())
}

fn evaluate_gates(r: &mut Report, judges: &[Judge], c: &Campaign) {
    r.gates = judges.iter().map(|g| g.evaluate(r)).collect();
    let partial = (!c.missing.is_empty()).then(|| format!("shard(s) {} missing", list(&c.missing)));
    let stopped = (r.status != Status::Completed).then(|| format!("run {}", r.status));
    if let Some(why) = partial.or(stopped) {
        for g in &mut r.gates {
            g.detail = format!("{} ({why}: partial data)", g.detail).trim().to_string();
        }
    }
}

/// A new or empty directory, none of the inputs.
fn prepare_out(out: &Path, inputs: &[PathBuf]) -> Result<(), MergeError> {
    let bad = |why: String| MergeError::Out { dir: out.to_path_buf(), why };
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if let Some(d) = inputs.iter().find(|d| same(d, out)) {
        return Err(bad(format!("is the input {}: write the merged report elsewhere", d.display())));
    }
    if out.is_dir() {
        let mut entries = std::fs::read_dir(out).map_err(|e| bad(e.to_string()))?;
        if entries.next().is_some() {
            return Err(bad("the directory is not empty: choose a new or empty directory".into()));
        }
    }
    std::fs::create_dir_all(out).map_err(|e| bad(e.to_string()))
}

/// Sum `b` into `a`, key by key.
fn add_counts(a: &mut BTreeMap<String, u64>, b: &BTreeMap<String, u64>) {
    for (k, v) in b {
        *a.entry(k.clone()).or_insert(0) += v;
    }
}

fn examples(lists: impl Iterator<Item = Vec<String>>) -> Vec<String> {
    lists.flatten().take(EXAMPLES).collect()
}

/// A merged latency summary: the histogram's, with the shards' clamped counts (values over an
/// hour are in the logs as an hour; only the shards knew which were more).
fn summary(h: Option<&Hist>, clamped: u64) -> LatencySummary {
    let mut s = h.map(Hist::summary).unwrap_or_default();
    s.clamped = clamped;
    s
}

/// The merged report of a checked campaign, from its shards' reports and merged latencies.
pub fn combine(c: &Campaign, lat: &Latencies) -> Result<Report, MergeError> {
    let parts = &c.parts;
    let reports: Vec<&Report> = parts.iter().map(|p| &p.report).collect();
    // A merged report starts from the lowest shard's.
    let Some(base) = reports.first() else { return Err(MergeError::NoInput) };
    let mut r: Report = (*base).clone();
    r.campaign = None;
    // The campaign's traffic is every shard's: the drivers add up; the shards' own estimates
    // priced a part of it (merge --pricing prices the whole).
    r.cost_drivers = cost_drivers(&reports);
    r.partitions = partitions(&reports);
    r.cost = Vec::new();
    r.merged = Some(MergeInfo {
        campaign: c.id.clone(),
        shards: c.shards,
        merged: parts.iter().map(|p| p.index).collect(),
        missing: c.missing.clone(),
        per_shard: parts
            .iter()
            .map(|p| ShardSummary {
                shard: p.index,
                status: p.report.status.to_string(),
                acked: p.report.produce.acked,
                harness_saturated: p.report.harness.saturated,
                cpu_pct_mean: f64::from(p.report.harness.cpu_pct_mean),
                clock_skew_ms: p.report.campaign.as_ref().and_then(|c| c.clock_skew_ms),
            })
            .collect(),
    });
    status(&mut r, parts);
    r.started_at = reports.iter().map(|x| x.started_at.clone()).min().unwrap_or_default();
    r.ended_at = reports.iter().map(|x| x.ended_at.clone()).max().unwrap_or_default();
    r.load_s = reports.iter().map(|x| x.load_s).fold(0.0, f64::max);
    r.measured_s = reports.iter().map(|x| x.measured_s).fold(0.0, f64::max);
    r.elapsed_s = reports.iter().map(|x| x.elapsed_s).fold(0.0, f64::max);
    r.clock = clock(c, base);
    r.errors = BTreeMap::new();
    for x in &reports {
        add_counts(&mut r.errors, &x.errors);
    }
    r.max_rate = max_rate(&reports);
    r.gates = Vec::new();
    r.timeline = match &c.folded {
        Some(f) => f.clone().finish(lat),
        None => {
            let mut f = Folded::default();
            for x in &reports {
                f.add(&x.timeline);
            }
            f.finish(lat)
        }
    };
    produce(&mut r, &reports, lat);
    consumers(&mut r, parts, lat);
    audit(&mut r, &reports);
    harness(&mut r, &reports);
    faults_and_shapes(&mut r, &reports);
    warnings(&mut r, c);
    Ok(r)
}

/// A counter measured on each shard, summed: absent when a shard that moved traffic (`busy`) has
/// none (its statistics were off), never a part taken for the whole; a shard that moved nothing
/// adds nothing.
fn sum_measured<T: Copy>(parts: impl IntoIterator<Item = (Option<T>, bool)>, add: impl Fn(&mut T, &T)) -> Option<T> {
    let mut sum: Option<T> = None;
    for (v, busy) in parts {
        match (v, &mut sum) {
            (None, _) if busy => return None,
            (None, _) => {}
            (Some(v), Some(s)) => add(s, &v),
            (Some(v), None) => sum = Some(v),
        }
    }
    sum
}

fn add_u64(a: &mut u64, b: &u64) {
    *a += b;
}

fn add_f64(a: &mut f64, b: &f64) {
    *a += b;
}

/// The campaign's partitions: each partition's acknowledged records added up over the shards (they
/// ran at the same time, so rates add too), shares and the hottest tenth recomputed from the
/// sums. Latencies are not: a shard's report keeps each partition's p50 and p99, not its
/// histogram, so the merged partitions have none (0 and absent), and a note says so. Absent when
/// no shard has partitions.
pub fn partitions(reports: &[&Report]) -> Option<Partitions> {
    let shards: Vec<&Partitions> = reports.iter().filter_map(|r| r.partitions.as_ref()).collect();
    let first = shards.first()?;
    let mut out = Partitions {
        tracked_limit: first.tracked_limit,
        untracked_partitions: shards.iter().map(|p| p.untracked_partitions).max().unwrap_or(0),
        untracked_acked: shards.iter().map(|p| p.untracked_acked).sum(),
        topics: BTreeMap::new(),
        note: Some(
            "Merged from the shards: acknowledged records and rates add up; per-partition latencies are each \
             shard's own (see its report.json) and are not merged."
                .into(),
        ),
    };
    let names: BTreeSet<&String> = shards.iter().flat_map(|p| p.topics.keys()).collect();
    for name in names {
        let of: Vec<&TopicPartitions> = shards.iter().filter_map(|p| p.topics.get(name)).collect();
        let mut lines: BTreeMap<i32, PartitionLine> = BTreeMap::new();
        for l in of.iter().flat_map(|t| &t.lines) {
            let e = lines
                .entry(l.partition)
                .or_insert_with(|| PartitionLine { partition: l.partition, ..Default::default() });
            e.acked += l.acked;
            e.per_s += l.per_s;
        }
        let acked: u64 = lines.values().map(|l| l.acked).sum();
        let share = |n: u64| if acked > 0 { ((n as f64 / acked as f64) * 1e4).round() / 1e4 } else { 0.0 };
        for l in lines.values_mut() {
            l.share = share(l.acked);
            l.per_s = (l.per_s * 10.0).round() / 10.0;
        }
        let count = of.iter().map(|t| t.partitions).max().unwrap_or(0);
        let mut hot: Vec<&PartitionLine> = lines.values().collect();
        hot.sort_by(|a, b| b.acked.cmp(&a.acked).then(a.partition.cmp(&b.partition)));
        hot.truncate(crate::recorder::partitions::hottest_count(count as usize));
        let t = TopicPartitions {
            partitions: count,
            all_tracked: of.iter().all(|t| t.all_tracked),
            acked,
            per_s: (of.iter().map(|t| t.per_s).sum::<f64>() * 10.0).round() / 10.0,
            even_share: of.first().map_or(0.0, |t| t.even_share),
            hottest: hot.iter().map(|l| l.partition).collect(),
            hottest_share: share(hot.iter().map(|l| l.acked).sum()),
            hottest_p99_us: None,
            rest_p99_us: None,
            lines: lines.into_values().collect(),
        };
        out.topics.insert(name.clone(), t);
    }
    Some(out)
}

/// The campaign's cost drivers: every shard's traffic added up. The shards ran at the same time,
/// so the basis (the load's seconds) is the longest shard's, and rates over it add. Absent if a
/// shard has none (it never reached its load): a part is never priced as the whole.
pub fn cost_drivers(reports: &[&Report]) -> Option<CostDrivers> {
    let shards: Vec<&CostDrivers> = reports.iter().map(|r| r.cost_drivers.as_ref()).collect::<Option<Vec<_>>>()?;
    let first = shards.first()?;
    let mut d = CostDrivers {
        basis_s: shards.iter().map(|x| x.basis_s).fold(0.0, f64::max),
        stats_interval_ms: first.stats_interval_ms,
        stats_callbacks: shards.iter().map(|x| x.stats_callbacks).sum(),
        stats_parse_ms: shards.iter().map(|x| x.stats_parse_ms).sum(),
        stats_unreadable: shards.iter().map(|x| x.stats_unreadable).sum(),
        ..CostDrivers::default()
    };
    let add_wire = |a: &mut WireCounts, b: &WireCounts| a.add(b);
    d.produce.value_bytes = shards.iter().map(|x| x.produce.value_bytes).sum();
    d.produce.wire = sum_measured(shards.iter().map(|x| (x.produce.wire, x.produce.value_bytes > 0)), add_wire);
    let classes: BTreeSet<&String> = shards.iter().flat_map(|x| x.produce.classes.keys()).collect();
    for name in classes {
        let of: Vec<_> = shards.iter().filter_map(|x| x.produce.classes.get(name)).collect();
        let Some(c0) = of.first() else { continue };
        let mut c = crate::report::schema::ClassDrivers { topic: c0.topic.clone(), ..Default::default() };
        c.records = of.iter().map(|x| x.records).sum();
        c.value_bytes = of.iter().map(|x| x.value_bytes).sum();
        c.wire_bytes = sum_measured(of.iter().map(|x| (x.wire_bytes, x.value_bytes > 0)), add_u64);
        c.requests = sum_measured(of.iter().map(|x| (x.requests, x.value_bytes > 0)), add_u64);
        d.produce.classes.insert(name.clone(), c);
    }
    let groups: BTreeSet<&String> = shards.iter().flat_map(|x| x.groups.keys()).collect();
    for name in groups {
        let of: Vec<_> = shards.iter().filter_map(|x| x.groups.get(name)).collect();
        // A shard that ran none of the group's members read nothing and measured nothing.
        let busy = |x: &crate::report::schema::GroupDrivers| {
            x.live_value_bytes + x.reread_value_bytes + x.foreign_value_bytes > 0
        };
        let g = crate::report::schema::GroupDrivers {
            live_value_bytes: of.iter().map(|x| x.live_value_bytes).sum(),
            reread_value_bytes: of.iter().map(|x| x.reread_value_bytes).sum(),
            foreign_value_bytes: of.iter().map(|x| x.foreign_value_bytes).sum(),
            wire: sum_measured(of.iter().map(|x| (x.wire, busy(x))), add_wire),
            live_wire_bytes: sum_measured(of.iter().map(|x| (x.live_wire_bytes, busy(x))), add_u64),
            reread_wire_bytes: sum_measured(of.iter().map(|x| (x.reread_wire_bytes, busy(x))), add_u64),
        };
        d.groups.insert(name.clone(), g);
    }
    // Every shard declares the same topics (one scenario): one entry each, the bytes summed.
    let topics: BTreeSet<&String> = shards.iter().flat_map(|x| x.topics.keys()).collect();
    for name in topics {
        let of: Vec<_> = shards.iter().filter_map(|x| x.topics.get(name)).collect();
        let Some(t0) = of.first() else { continue };
        let busy = |x: &&crate::report::schema::TopicDrivers| x.ingress_wire_bytes != Some(0);
        let t = crate::report::schema::TopicDrivers {
            replication: t0.replication,
            retention_s: t0.retention_s,
            ingress_wire_bytes: sum_measured(of.iter().map(|x| (x.ingress_wire_bytes, busy(x))), add_u64),
            replication_bytes: sum_measured(of.iter().map(|x| (x.replication_bytes, busy(x))), add_u64),
            // Each shard's steady state at its own ingress rate: the rates add, so do the bytes.
            retained_bytes: sum_measured(
                of.iter().map(|x| (x.retained_bytes, t0.retention_s.is_some() && busy(x))),
                add_f64,
            ),
        };
        d.topics.insert(name.clone(), t);
    }
    Some(d)
}

/// The worst shard's status: one failed shard fails the campaign, one aborted aborts it; the
/// reason names every shard that did not complete.
fn status(r: &mut Report, parts: &[Shard]) {
    let rank = |s: Status| match s {
        Status::Completed => 0,
        Status::Aborted => 1,
        Status::Failed => 2,
    };
    let Some(worst) = parts.iter().rev().max_by_key(|p| rank(p.report.status)) else { return };
    r.status = worst.report.status;
    r.stopped_by = worst.report.stopped_by;
    let reasons: Vec<String> = parts
        .iter()
        .filter(|p| p.report.status != Status::Completed)
        .map(|p| {
            let why = p.report.status_reason.as_deref().unwrap_or("no reason given");
            format!("shard {} {}: {why}", p.index, p.report.status)
        })
        .collect();
    r.status_reason = (!reasons.is_empty()).then(|| reasons.join("; "));
}

/// Which clocks the merged figures rest on, and the skew each shard observed.
fn clock(c: &Campaign, base: &Report) -> String {
    let start = std::time::UNIX_EPOCH + std::time::Duration::from_millis(c.start_unix_ms);
    let skews: Vec<String> = c
        .parts
        .iter()
        .filter_map(|p| p.report.campaign.as_ref().and_then(|x| x.clock_skew_ms).map(|s| (p.index, s)))
        .map(|(i, s)| format!("shard {i} {s:+.1} ms"))
        .collect();
    let skew = if skews.is_empty() {
        "no shard observed its skew (the target did not stamp records): they assume the machines' clocks are \
         synchronised (NTP)"
            .to_string()
    } else {
        format!("observed skew, shard clock minus the target's: {}", skews.join(", "))
    };
    format!(
        "each shard's own clock, second 0 at the campaign's agreed start ({}), timelines aligned on it \
         (per shard: {}). End-to-end latency and event age of records read on another machine than the one that \
         sent them include the two clocks' difference; {skew}",
        humantime::format_rfc3339_millis(start),
        base.clock
    )
}

fn max_rate(reports: &[&Report]) -> Option<MaxRate> {
    let rates: Vec<&MaxRate> = reports.iter().map(|x| x.max_rate.as_ref()).collect::<Option<Vec<_>>>()?;
    let acked: u64 = rates.iter().map(|m| m.acked).sum();
    let seconds = rates.iter().map(|m| m.seconds).fold(0.0, f64::max);
    Some(MaxRate {
        acked,
        seconds,
        msgs_per_s: if seconds > 0.0 { acked as f64 / seconds } else { 0.0 },
        mb_per_s: rates.iter().map(|m| m.mb_per_s).sum(),
    })
}

/// Second by second: counts and lag add, faults and waves are the union,
/// latencies come from the merged intervals; the harness's own use adds up over the machines
/// (the host's CPU is their mean).
#[derive(Clone, Debug, Default)]
pub struct Folded {
    points: Vec<TimelinePoint>,
    /// Shards with a harness sample, per second.
    hosts: Vec<u32>,
}

/// A timeline second beyond the longest run a scenario may declare (7 days) is not a second.
const MAX_SECOND: u32 = 7 * 24 * 3600 + 3600;

impl Folded {
    /// Fold one shard's timeline in.
    pub fn add(&mut self, timeline: &[TimelinePoint]) {
        for p in timeline.iter().filter(|p| p.t <= MAX_SECOND) {
            while self.points.len() <= p.t as usize {
                let t = self.points.len() as u32;
                self.points.push(TimelinePoint { t, ..Default::default() });
                self.hosts.push(0);
            }
            let m = &mut self.points[p.t as usize];
            m.produced += p.produced;
            m.acked += p.acked;
            m.failed += p.failed;
            m.acked_bytes += p.acked_bytes;
            m.backpressure += p.backpressure;
            m.audit_reads += p.audit_reads;
            add_counts(&mut m.errors, &p.errors);
            add_counts(&mut m.versions, &p.versions);
            for f in &p.faults {
                if !m.faults.contains(f) {
                    m.faults.push(f.clone());
                }
            }
            for w in &p.waves {
                if !m.waves.contains(w) {
                    m.waves.push(w.clone());
                }
            }
            if let Some(a) = &p.audit {
                let s = m.audit.get_or_insert_with(AuditPoint::default);
                s.acked += a.acked;
                s.lost += a.lost;
                s.unverified += a.unverified;
                s.duplicates += a.duplicates;
                s.reordered += a.reordered;
            }
            for (g, gp) in &p.consumers {
                let s = m.consumers.entry(g.clone()).or_default();
                s.consumed += gp.consumed;
                s.rereads += gp.rereads;
                s.lag += gp.lag;
            }
            if let Some(h) = p.harness {
                self.hosts[p.t as usize] += 1;
                m.harness = Some(match m.harness {
                    None => h,
                    Some(s) => HarnessPoint {
                        cpu_pct: s.cpu_pct + h.cpu_pct,
                        librdkafka_cpu_pct: s.librdkafka_cpu_pct.zip(h.librdkafka_cpu_pct).map(|(a, b)| a + b),
                        rss_mib: s.rss_mib + h.rss_mib,
                        host_cpu_pct: s.host_cpu_pct + h.host_cpu_pct,
                    },
                });
            }
        }
    }

    /// The merged timeline, with every second's latencies from the merged intervals.
    pub fn finish(self, lat: &Latencies) -> Vec<TimelinePoint> {
        let mut tl = self.points;
        for (m, n) in tl.iter_mut().zip(&self.hosts) {
            if let Some(h) = &mut m.harness
                && *n > 1
            {
                h.host_cpu_pct /= *n as f32;
            }
            let t = m.t;
            m.produce = lat.from_intended.seconds.get(&t).map(|s| s.all.clone()).unwrap_or_default();
            m.send_lag_p99_us = lat.send_lag.seconds.get(&t).map_or(0, |s| s.all.p99_us);
            for (g, gp) in &mut m.consumers {
                gp.e2e = lat.e2e.seconds.get(&t).and_then(|s| s.tags.get(g)).cloned().unwrap_or_default();
                gp.age_p99_us = lat.age.seconds.get(&t).and_then(|s| s.tags.get(g)).map_or(0, |w| w.p99_us);
            }
        }
        tl
    }
}

/// Produce counters and rates add (every device is in one shard); latencies are the merged
/// histograms'.
fn produce(r: &mut Report, reports: &[&Report], lat: &Latencies) {
    let sum = |f: &dyn Fn(&Report) -> u64| reports.iter().map(|x| f(x)).sum::<u64>();
    let sumf = |f: &dyn Fn(&Report) -> f64| reports.iter().map(|x| f(x)).sum::<f64>();
    let p = &mut r.produce;
    p.planned = sum(&|x| x.produce.planned);
    p.attempted = sum(&|x| x.produce.attempted);
    p.acked = sum(&|x| x.produce.acked);
    p.failed = sum(&|x| x.produce.failed);
    p.purged = sum(&|x| x.produce.purged);
    p.unsent_at_end = sum(&|x| x.produce.unsent_at_end);
    p.backpressure = sum(&|x| x.produce.backpressure);
    p.planned_rate = sumf(&|x| x.produce.planned_rate);
    p.nominal_rate = sumf(&|x| x.produce.nominal_rate);
    p.achieved_rate = sumf(&|x| x.produce.achieved_rate);
    p.msgs_per_s = sumf(&|x| x.produce.msgs_per_s);
    p.bytes_per_s = sumf(&|x| x.produce.bytes_per_s);
    p.latency_from_intended = summary(Some(&lat.from_intended.all), sum(&|x| x.produce.latency_from_intended.clamped));
    p.latency_from_send = summary(Some(&lat.from_send.all), sum(&|x| x.produce.latency_from_send.clamped));
    p.send_lag = summary(Some(&lat.send_lag.all), sum(&|x| x.produce.send_lag.clamped));

    let mut classes: BTreeMap<String, ClassReport> = BTreeMap::new();
    let mut clamped: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for x in reports {
        for (name, c) in &x.produce.classes {
            let m = classes
                .entry(name.clone())
                .or_insert_with(|| ClassReport { topic: c.topic.clone(), ..ClassReport::default() });
            m.devices += c.devices;
            m.planned_rate += c.planned_rate;
            m.attempted += c.attempted;
            m.acked += c.acked;
            m.failed += c.failed;
            m.acked_bytes += c.acked_bytes;
            m.msgs_per_s += c.msgs_per_s;
            m.bytes_per_s += c.bytes_per_s;
            let k = clamped.entry(name.clone()).or_default();
            k.0 += c.latency_from_intended.clamped;
            k.1 += c.latency_from_send.clamped;
        }
    }
    for (name, c) in &mut classes {
        let (a, b) = clamped.get(name).copied().unwrap_or_default();
        c.latency_from_intended = summary(lat.from_intended.tag(name), a);
        c.latency_from_send = summary(lat.from_send.tag(name), b);
    }
    p.classes = classes;

    let mut versions: BTreeMap<String, VersionReport> = BTreeMap::new();
    for x in reports {
        for (name, v) in &x.produce.versions {
            let m = versions.entry(name.clone()).or_default();
            m.attempted += v.attempted;
            m.acked += v.acked;
            m.acked_bytes += v.acked_bytes;
        }
    }
    let total: u64 = versions.values().map(|v| v.attempted).sum();
    for v in versions.values_mut() {
        v.share = if total > 0 { v.attempted as f64 / total as f64 } else { 0.0 };
    }
    p.versions = versions;

    r.spectra = BTreeMap::new();
    r.spectra.insert("produce.latency_from_intended".into(), lat.from_intended.all.spectrum());
    r.spectra.insert("produce.latency_from_send".into(), lat.from_send.all.spectrum());
}

/// Consumer groups: members are spread over the shards under one group id; counts and lag add,
/// each shard's members are numbered after the previous shards'.
fn consumers(r: &mut Report, parts: &[Shard], lat: &Latencies) {
    let mut groups: BTreeMap<String, GroupReport> = BTreeMap::new();
    let mut clamped: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for p in parts {
        for (name, g) in &p.report.consumers {
            let m = groups.entry(name.clone()).or_insert_with(|| GroupReport {
                group_id: g.group_id.clone(),
                topics: g.topics.clone(),
                dead_letter: g
                    .dead_letter
                    .as_ref()
                    .map(|d| crate::report::DeadLetterReport { topic: d.topic.clone(), ..Default::default() }),
                ..GroupReport::default()
            });
            let offset = m.members;
            m.members += g.members;
            m.consumed += g.consumed;
            m.foreign += g.foreign;
            m.rereads += g.rereads;
            m.missed += g.missed;
            m.missed_examples.extend(g.missed_examples.iter().cloned());
            m.msgs_per_s += g.msgs_per_s;
            m.max_lag = m.max_lag.max(g.max_lag);
            m.final_lag += g.final_lag;
            m.assignments += g.assignments;
            m.revocations += g.revocations;
            m.rebalances.extend(g.rebalances.iter().map(|e| RebalanceEvent { member: e.member + offset, ..e.clone() }));
            if let (Some(a), Some(b)) = (&mut m.dead_letter, &g.dead_letter) {
                a.routed += b.routed;
                a.acked += b.acked;
                a.failed += b.failed;
            }
            let k = clamped.entry(name.clone()).or_default();
            k.0 += g.e2e_latency.clamped;
            k.1 += g.event_age.clamped;
        }
    }
    for (name, g) in &mut groups {
        // The merged series is the sum of the shards' (each counts the partitions its own members
        // read); its peak is the group's, at least the largest shard's.
        let peak = r.timeline.iter().filter_map(|p| p.consumers.get(name)).map(|c| c.lag).max().unwrap_or(0);
        g.max_lag = g.max_lag.max(peak);
        g.missed_examples.truncate(EXAMPLES);
        g.rebalances.sort_by_key(|e| (e.t_us, e.member));
        g.rebalances.truncate(1000);
        let (a, b) = clamped.get(name).copied().unwrap_or_default();
        g.e2e_latency = summary(lat.e2e.tag(name), a);
        g.event_age = summary(lat.age.tag(name), b);
        r.spectra
            .insert(format!("consumers.{name}.e2e_latency"), lat.e2e.tag(name).map(Hist::spectrum).unwrap_or_default());
    }
    r.consumers = groups;
}

/// Each shard's audit reader judged its own devices' records: the verdicts add, examples are
/// concatenated, the audit is complete when every shard's was. A record foreign to the campaign
/// is foreign to every shard's reader: the largest count, not the sum.
fn audit(r: &mut Report, reports: &[&Report]) {
    let a = &mut r.audit;
    a.enabled = reports.iter().any(|x| x.audit.enabled);
    a.complete = reports.iter().all(|x| x.audit.complete);
    a.drain_s = reports.iter().map(|x| x.audit.drain_s).fold(0.0, f64::max);
    a.duplicates_cause = reports.iter().find_map(|x| x.audit.duplicates_cause);
    let n = &mut a.counts;
    let sum = |f: &dyn Fn(&crate::report::AuditCounts) -> u64| reports.iter().map(|x| f(&x.audit.counts)).sum::<u64>();
    n.acked = sum(&|c| c.acked);
    n.seen = sum(&|c| c.seen);
    n.lost = sum(&|c| c.lost);
    n.unverified = sum(&|c| c.unverified);
    n.duplicates = sum(&|c| c.duplicates);
    n.rereads = sum(&|c| c.rereads);
    n.reordered = sum(&|c| c.reordered);
    n.failed_but_seen = sum(&|c| c.failed_but_seen);
    n.unacked_seen = sum(&|c| c.unacked_seen);
    n.foreign = reports.iter().map(|x| x.audit.counts.foreign).max().unwrap_or(0);
    n.lost_examples = examples(reports.iter().map(|x| x.audit.counts.lost_examples.clone()));
    n.duplicate_examples = examples(reports.iter().map(|x| x.audit.counts.duplicate_examples.clone()));
}

/// The harness over all the machines: cores and CPU add up, saturated when any shard was (each
/// shard's own verdict is in `merged.per_shard`).
fn harness(r: &mut Report, reports: &[&Report]) {
    let n = reports.len().max(1) as f32;
    let h = &mut r.harness;
    *h = HarnessReport {
        cores: reports.iter().map(|x| x.harness.cores).sum(),
        producer_instances: reports.iter().map(|x| x.harness.producer_instances).sum(),
        producer_instances_why: None,
        cpu_pct_mean: reports.iter().map(|x| x.harness.cpu_pct_mean).sum(),
        cpu_pct_peak: r.timeline.iter().filter_map(|p| p.harness).map(|p| p.cpu_pct).fold(0.0, f32::max),
        librdkafka_cpu_pct_mean: reports
            .iter()
            .map(|x| x.harness.librdkafka_cpu_pct_mean)
            .collect::<Option<Vec<f32>>>()
            .map(|v| v.iter().sum()),
        rss_mib_peak: r.timeline.iter().filter_map(|p| p.harness).map(|p| p.rss_mib).fold(0.0, f32::max),
        host_cpu_pct_mean: reports.iter().map(|x| x.harness.host_cpu_pct_mean).sum::<f32>() / n,
        cpu_saturated_s: reports.iter().map(|x| x.harness.cpu_saturated_s).max().unwrap_or(0),
        lagging_s: reports.iter().map(|x| x.harness.lagging_s).max().unwrap_or(0),
        saturated: reports.iter().any(|x| x.harness.saturated),
    };
}

/// Faults come from the shard that injected them; what they did is measured again on the merged
/// timeline, as are the waves and the groups' replays, slowdowns and restarts.
fn faults_and_shapes(r: &mut Report, reports: &[&Report]) {
    let injected = reports.iter().find(|x| x.faults.iter().any(|f| f.started_s.is_some()));
    let mut fs: Vec<FaultReport> = injected.or(reports.first()).map(|x| x.faults.clone()).unwrap_or_default();
    let rebalances: BTreeMap<String, Vec<RebalanceEvent>> =
        r.consumers.iter().map(|(n, g)| (n.clone(), g.rebalances.clone())).collect();
    let fault_starts: Vec<f64> = fs.iter().filter_map(|f| f.started_s).collect();
    let cx = faults::Context {
        timeline: &r.timeline,
        partitions: &[],
        warmup_s: r.scenario.warmup_s,
        load_end_s: r.load_s,
        fault_starts_s: &fault_starts,
        rebalances: &rebalances,
    };
    for f in &mut fs {
        if let Some(s) = f.started_s {
            faults::measure(f, (s * 1e6).round() as u64, &cx);
        }
    }
    r.faults = fs;

    let group_names: Vec<String> = r.consumers.keys().cloned().collect();
    let waves = reports.iter().map(|x| x.waves.len()).max().unwrap_or(0);
    r.waves = (0..waves)
        .filter_map(|i| {
            let ws: Vec<&shapes::WaveReport> = reports.iter().filter_map(|x| x.waves.get(i)).collect();
            let w = ws.first()?;
            let sum = |f: &dyn Fn(&shapes::WaveReport) -> u64| ws.iter().map(|x| f(x)).sum::<u64>();
            let input = shapes::WaveInput {
                name: &w.name,
                occurrence: w.occurrence,
                start_s: w.start_s,
                offline_s: w.offline_until_s - w.start_s,
                jitter_s: w.reconnect_until_s - w.offline_until_s,
                streams: sum(&|x| x.streams),
                buffered: sum(&|x| x.buffered),
                dropped: sum(&|x| x.dropped),
                unsent: sum(&|x| x.unsent),
                flush_end_s: ws.iter().filter_map(|x| x.flush_end_s).reduce(f64::max),
            };
            Some(shapes::wave(&r.timeline, &input, &group_names))
        })
        .collect();

    let mut shaped = BTreeMap::new();
    for name in &group_names {
        let gs: Vec<&GroupReport> = reports.iter().filter_map(|x| x.consumers.get(name)).collect();
        let others: Vec<String> = group_names.iter().filter(|n| *n != name).cloned().collect();
        let events = r.consumers.get(name).map(|g| g.rebalances.clone()).unwrap_or_default();
        let count = |f: &dyn Fn(&GroupReport) -> usize| gs.iter().map(|g| f(g)).max().unwrap_or(0);
        let replays: Vec<shapes::ReplayReport> = (0..count(&|g| g.replays.len()))
            .filter_map(|j| {
                let rs: Vec<&shapes::ReplayReport> = gs.iter().filter_map(|g| g.replays.get(j)).collect();
                let x = rs.first()?;
                let caught_up = rs.iter().map(|y| y.caught_up_s).collect::<Option<Vec<f64>>>();
                let input = shapes::ReplayInput {
                    at_s: x.at_s,
                    to: x.to.clone(),
                    rate_cap: x.rate_cap_per_s,
                    records_back: rs.iter().map(|y| y.records_back).sum(),
                    caught_up_s: caught_up.and_then(|v| v.into_iter().reduce(f64::max)).map(|c| x.at_s + c),
                    errors: rs.iter().flat_map(|y| y.errors.iter().cloned()).collect(),
                };
                Some(shapes::replay(&r.timeline, name, &others, &input))
            })
            .collect();
        let slowdowns: Vec<shapes::SlowdownReport> = (0..count(&|g| g.slowdowns.len()))
            .filter_map(|j| {
                let x = gs.iter().find_map(|g| g.slowdowns.get(j))?;
                Some(shapes::slowdown(&r.timeline, name, x.at_s, x.for_s, x.kind.clone()))
            })
            .collect();
        let restarts: Vec<shapes::RestartReport> = (0..count(&|g| g.restarts.len()))
            .filter_map(|j| {
                let x = gs.iter().find_map(|g| g.restarts.get(j))?;
                Some(shapes::restart(&r.timeline, name, x.at_s, x.down_s, &events))
            })
            .collect();
        shaped.insert(name.clone(), (replays, slowdowns, restarts));
    }
    for (name, (replays, slowdowns, restarts)) in shaped {
        if let Some(g) = r.consumers.get_mut(&name) {
            g.replays = replays;
            g.slowdowns = slowdowns;
            g.restarts = restarts;
        }
    }
}

/// The merge's own warnings first (a partial campaign, saturated shards), then every shard's,
/// prefixed with its index.
fn warnings(r: &mut Report, c: &Campaign) {
    let mut w = Vec::new();
    if !c.missing.is_empty() {
        w.push(format!(
            "PARTIAL: shard(s) {} of {} missing; this report merges {} of {} shards (--allow-partial): its counts, rates \
             and audit cover only the devices of the shards merged",
            list(&c.missing),
            c.shards,
            c.parts.len(),
            c.shards
        ));
    }
    let saturated: Vec<u32> = c.parts.iter().filter(|p| p.report.harness.saturated).map(|p| p.index).collect();
    if !saturated.is_empty() {
        w.push(format!(
            "HARNESS SATURATED on shard(s) {}: those shards' load generators limited the run, so the results are not \
             valid for the target (see their own verdicts below and merged.per_shard)",
            list(&saturated)
        ));
    }
    // The same warning from several shards once, naming them all.
    let mut by_text: Vec<(&String, Vec<u32>)> = Vec::new();
    for p in &c.parts {
        for x in &p.report.warnings {
            match by_text.iter_mut().find(|(t, _)| *t == x) {
                Some((_, shards)) => shards.push(p.index),
                None => by_text.push((x, vec![p.index])),
            }
        }
    }
    for (text, shards) in by_text {
        w.push(format!("{}: {text}", shard_label(&shards)));
    }
    r.warnings = w;
}

/// `shard 3`, or `shards 0-2, 5` (indexes ascending).
fn shard_label(shards: &[u32]) -> String {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for &i in shards {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == i => *end = i,
            _ => runs.push((i, i)),
        }
    }
    let text: Vec<String> =
        runs.iter().map(|&(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") }).collect();
    format!("{} {}", if shards.len() == 1 { "shard" } else { "shards" }, text.join(", "))
}

// Last in the file: `layers.rs` reads the product code up to a file's test module.
#[cfg(test)]
mod tests;
