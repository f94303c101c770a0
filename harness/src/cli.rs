//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::units::Dur;
use crate::plan::Shard;

/// Workload-shaped load, faults and a delivery audit for Kafka-compatible backbones carrying
/// device-fleet telemetry.
#[derive(Debug, Parser)]
#[command(name = "fleetstorm", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// More log output on stderr (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only warnings and errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario against a target and write its report.
    Run(RunArgs),
    /// Show what a scenario will do and when (waves, rollouts, faults, replays...) and its
    /// planned rates, from the seeded schedule, without a target.
    Plan {
        /// The scenario file.
        scenario: PathBuf,
        /// Override the scenario's duration.
        #[arg(long, value_parser = parse_dur)]
        duration: Option<Dur>,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Show one shard of a campaign, `I/N` (as `run --shard I/N` would send it).
        #[arg(long, value_parser = parse_shard)]
        shard: Option<Shard>,
    },
    /// Compare runs of the same scenario: side by side (a bake-off), or a candidate against a
    /// baseline (exit 1 on regression).
    Compare {
        /// Run directories to compare; with --baseline, the one candidate.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// The baseline run: check the candidate against it.
        #[arg(long)]
        baseline: Option<PathBuf>,
        /// Tolerances overriding the defaults, e.g. `p99=15%,throughput=5%`.
        #[arg(long)]
        max_regression: Option<String>,
        /// Compare runs of different workloads anyway (with a loud warning).
        #[arg(long)]
        allow_different: bool,
        /// Where to write the comparison. Default: reports/compare-<time>.
        #[arg(short, long)]
        out: Option<PathBuf>,
    },
    /// Run an embedded cluster in this process (for other tools, e.g. benchmarks) until Ctrl-C.
    ServeEmbedded {
        #[arg(long, default_value_t = 3)]
        brokers: u32,
        /// A topic to create, NAME:PARTITIONS (repeatable).
        #[arg(long = "topic", value_parser = parse_topic)]
        topics: Vec<(String, u32)>,
        /// Also stop when stdin closes.
        #[arg(long)]
        until_stdin_closes: bool,
    },
    /// Benchmarks of fleetstorm itself (see scripts/bench.sh and BENCHMARKS.md).
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
    /// Regenerate summary.md, the charts, report.html and junit.xml from a run's report.json.
    Report {
        /// A run's output directory (or its report.json).
        dir: PathBuf,
    },
    /// Check scenario and profile files; list every problem with its file, line and field.
    Validate {
        /// Scenario or profile files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Merge the shards of a campaign (`run --shard I/N`) into one report: histograms merged
    /// exactly, counters summed, the audit combined, gates evaluated on the whole.
    Merge(MergeArgs),
    /// Check a target before a run: reach the bootstrap servers, TLS, authentication, broker and
    /// API versions and, given a scenario, its topics and this principal's permissions (exit 3
    /// naming the first cause); with --compat, what the target supports of what IoT pipelines
    /// rely on.
    Check(CheckArgs),
    /// Undo the faults a run with this profile left applied when it died (killed mid-fault: a
    /// paused or stopped broker, a network rule), from the profile's fault journal. A run does
    /// the same before it starts.
    Restore {
        /// The target's profile.
        #[arg(short, long)]
        profile: PathBuf,
    },
    /// Price a finished run per hour and per month, line by line (compute, storage, object
    /// requests, cross-zone and egress transfer), each line attributed to the workload behaviour
    /// that drives it; writes cost.json and cost.md.
    Cost(CostArgs),
}

/// `fleetstorm check`.
#[derive(Args, Debug, Clone)]
pub struct CheckArgs {
    /// The target's profile.
    #[arg(short, long)]
    pub profile: PathBuf,
    /// A scenario: also check its topics and whether this principal may describe, write, read
    /// and join the groups it needs.
    pub scenario: Option<PathBuf>,
    /// Also try, on a scratch topic, what IoT pipelines rely on (idempotence, transactions,
    /// replay by time, compaction, headers, codecs, admin requests, both group protocols) and
    /// report each as works / refused / wrong.
    #[arg(long)]
    pub compat: bool,
    /// With --compat, a readiness gate: exit 1 unless each of these capabilities works (names as
    /// in compat.json, comma separated, e.g. `idempotent_produce,transaction_commit`, or `all`). A
    /// capability the check could not verify fails the gate too, as unverified.
    #[arg(long, value_delimiter = ',', requires = "compat", value_name = "CAPS")]
    pub require: Vec<String>,
    /// Write check.json (and compat.json with --compat) into this directory.
    #[arg(short, long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Max-rate produce throughput: COUNT records, unpaced, as fast as the target takes them.
    Produce {
        #[command(flatten)]
        load: BenchLoad,
        #[arg(long, default_value_t = 1_000_000)]
        count: u64,
    },
    /// Rate accuracy: an open-loop run at RATE; achieved rate and send lag.
    Rate {
        #[command(flatten)]
        load: BenchLoad,
        /// e.g. 10000/s
        #[arg(long, value_parser = parse_rate)]
        rate: crate::config::units::Rate,
        #[arg(long, value_parser = parse_dur, default_value = "10s")]
        duration: Dur,
    },
    /// Replay reads: with --fill, write COUNT records to the topic through a max-rate run and
    /// print its run id; otherwise read the whole topic from its start with fleetstorm's group
    /// member or audit reader, as readers of that run (every record recorded as in a run).
    Consume {
        #[command(flatten)]
        load: BenchLoad,
        /// Fill the topic (COUNT records of SIZE bytes) instead of reading it.
        #[arg(long)]
        fill: bool,
        #[arg(long, default_value_t = 1_000_000)]
        count: u64,
        /// The reader to measure.
        #[arg(long, default_value = "group", value_parser = ["group", "audit"])]
        reader: String,
        /// The run id (hex) the fill printed: the records' run, which the reader takes as its own.
        #[arg(long, required_unless_present = "fill")]
        run_id: Option<String>,
    },
    /// Whole run: an open-loop run at RATE with the audit and one consumer group; CPU
    /// nanoseconds of the fleetstorm process per record, and their split by thread kind.
    Whole {
        #[command(flatten)]
        load: BenchLoad,
        #[arg(long, value_parser = parse_rate, default_value = "50000/s")]
        rate: crate::config::units::Rate,
        #[arg(long, value_parser = parse_dur, default_value = "10s")]
        duration: Dur,
    },
    /// Fleet scale: time and memory to plan a fleet of idle devices.
    Fleet {
        #[arg(long, default_value_t = 1_000_000)]
        devices: u64,
        #[arg(long, default_value_t = 1)]
        classes: usize,
    },
    /// Ledger memory: what the audit's and the groups' ledgers hold once every record of a
    /// scenario's plan was acknowledged and read back.
    Ledger {
        scenario: PathBuf,
        #[arg(long, value_parser = parse_dur)]
        duration: Option<Dur>,
    },
}

#[derive(Debug, Args)]
pub struct BenchLoad {
    #[arg(long)]
    pub bootstrap: String,
    #[arg(long, default_value = "bench")]
    pub topic: String,
    #[arg(long, default_value_t = 12)]
    pub partitions: u32,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    pub size: u64,
    /// `all` or `1`.
    #[arg(long, default_value = "all")]
    pub acks: String,
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u32,
    #[arg(long, default_value_t = 10_000)]
    pub devices: u64,
    /// Producer instances, each its own librdkafka client on its own thread.
    #[arg(long, default_value_t = 1)]
    pub instances: u32,
    /// Record key: `device_id` (as fleets send by default) or `none` (unkeyed, as
    /// `rdkafka_performance` sends).
    #[arg(long, default_value = "device_id", value_parser = ["device_id", "none"])]
    pub key: String,
    /// Topic retention in ms, set when the topic is created and checked after (for real clusters,
    /// so repeated benchmarks do not fill the disk).
    #[arg(long)]
    pub retention_ms: Option<u64>,
    /// Replication factor, if the topic has to be created.
    #[arg(long, default_value_t = 3)]
    pub replication: u16,
    #[arg(short, long, default_value = "reports/bench-run")]
    pub out: PathBuf,
}

/// `fleetstorm run`. Build one in code with [`RunArgs::new`] and struct update syntax
/// (`RunArgs { seed: Some(1), ..RunArgs::new(path) }`), so that a new flag breaks no caller.
#[derive(Debug, Args, Default)]
pub struct RunArgs {
    /// The scenario file.
    pub scenario: PathBuf,
    /// The target's profile. Default: the embedded cluster (librdkafka's mock, 3 brokers, in process).
    #[arg(short, long)]
    pub profile: Option<PathBuf>,
    /// Directory for the report, or s3://BUCKET/PREFIX (written to a temporary directory, then
    /// uploaded; see docs/object-storage.md). Default: reports/<scenario>-<time>.
    #[arg(short, long)]
    pub out: Option<PathBuf>,
    /// Override the scenario's duration, e.g. 10s.
    #[arg(long, value_parser = parse_dur)]
    pub duration: Option<Dur>,
    /// Override the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Replace the scenario's gates with those of this file (`gates: [...]`).
    #[arg(long)]
    pub gates: Option<PathBuf>,
    /// Reuse a non-empty --out directory: remove the previous run's files first (never others).
    #[arg(long)]
    pub overwrite: bool,
    /// Price the run under these pricing files (pricing/*.yaml) once its report is written, as
    /// `fleetstorm cost` does: cost.json and cost.md beside it, the monthly totals on stderr, a
    /// cost table in the summary, and `cost.*` gates judged. Checked before the run starts.
    #[arg(long, num_args = 1..)]
    pub pricing: Vec<PathBuf>,
    /// Serve the run's live metrics (OpenMetrics text on /metrics) at HOST:PORT while it runs,
    /// e.g. 127.0.0.1:9464 or 0.0.0.0:9464; port 0 takes any free port (the address is logged).
    /// See deploy/grafana/ for a dashboard.
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_addr: Option<String>,
    #[command(flatten)]
    pub campaign: CampaignArgs,
}

impl RunArgs {
    /// `fleetstorm run SCENARIO` with every flag at its default.
    pub fn new(scenario: PathBuf) -> RunArgs {
        RunArgs { scenario, ..RunArgs::default() }
    }
}

/// Running one shard of a campaign (see docs/scale-out.md).
#[derive(Args, Debug, Clone, Default)]
pub struct CampaignArgs {
    /// Send one shard of the fleet, `I/N`: every device belongs to exactly one shard, chosen from
    /// the seed; faults are injected by shard 0 only. The shards agree on their start through
    /// the target (a control topic) unless --start-at is given.
    #[arg(long, value_parser = parse_shard, conflicts_with = "shards")]
    pub shard: Option<Shard>,
    /// Run as one of N shards, the index taken from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job).
    #[arg(long)]
    pub shards: Option<u32>,
    /// The campaign the shard belongs to, the same on every shard. Default: FLEETSTORM_CAMPAIGN.
    #[arg(long)]
    pub campaign: Option<String>,
    /// Start the load at this instant (RFC 3339, e.g. 2026-12-02T10:00:00Z) instead of agreeing
    /// on it through the target.
    #[arg(long)]
    pub start_at: Option<String>,
    /// How long a shard waits for the others to announce themselves. Default 5m.
    #[arg(long, value_parser = parse_dur)]
    pub start_timeout: Option<Dur>,
}

fn parse_shard(s: &str) -> Result<Shard, String> {
    Shard::parse(s)
}

fn parse_dur(s: &str) -> Result<Dur, String> {
    s.parse::<Dur>().map_err(|e| e.to_string())
}

fn parse_rate(s: &str) -> Result<crate::config::units::Rate, String> {
    s.parse::<crate::config::units::Rate>().map_err(|e| e.to_string())
}

fn parse_topic(s: &str) -> Result<(String, u32), String> {
    let (name, p) = s.split_once(':').ok_or_else(|| format!("`{s}`: write NAME:PARTITIONS"))?;
    Ok((name.to_string(), p.parse().map_err(|_| format!("`{p}` is not a partition count"))?))
}

#[derive(Debug, Args)]
pub struct CostArgs {
    /// The run directory (holding report.json).
    pub report: PathBuf,
    /// Pricing files (pricing/*.yaml): one table each.
    #[arg(long, required = true, num_args = 1..)]
    pub pricing: Vec<PathBuf>,
    /// Where to write cost.json and cost.md. Default: the run directory.
    #[arg(short, long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shards' results: directories (each with its report.json and .hlog files), a directory
    /// holding them as subdirectories, or the same as s3://BUCKET/PREFIX URLs.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Directory for the merged report: new or empty.
    #[arg(short, long)]
    pub out: PathBuf,
    /// Merge the shards given even if some are missing; the report says which (`merged.missing`).
    #[arg(long)]
    pub allow_partial: bool,
    /// Evaluate these gates (`gates: [...]`) instead of the scenario's own.
    #[arg(long)]
    pub gates: Option<PathBuf>,
    /// Price the merged report under these pricing files (as `run --pricing` does): cost.json,
    /// cost.md, a cost table in the summary, `cost.*` gates judged on the whole campaign.
    #[arg(long, num_args = 1..)]
    pub pricing: Vec<PathBuf>,
}
