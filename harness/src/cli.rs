//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::units::Dur;

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
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The scenario file.
    pub scenario: PathBuf,
    /// The target's profile. Default: the embedded cluster (librdkafka's mock, 3 brokers, in process).
    #[arg(short, long)]
    pub profile: Option<PathBuf>,
    /// Directory for the report. Default: reports/<scenario>-<time>.
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
}

fn parse_dur(s: &str) -> Result<Dur, String> {
    s.parse::<Dur>().map_err(|e| e.to_string())
}
