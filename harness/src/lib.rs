//! fleetstorm: workload-shaped load, faults and a delivery audit for Kafka-compatible targets.
//!
//! Data flows one way: scenario + profile ([`config`]) -> plan ([`plan`]) -> drivers ([`driver`])
//! -> recorder ([`recorder`]) -> report ([`report`]); [`run`] wires the stages together. See
//! ARCHITECTURE.md for the codemap and the invariants.

pub mod backbone;
pub mod bench;
pub mod check;
pub mod cli;
pub mod clock;
pub mod compare;
pub mod config;
pub mod cost;
pub mod driver;
pub mod exit;
pub mod explain;
pub mod faults;
#[cfg(test)]
mod layers;
pub mod live;
pub mod merge;
pub mod plan;
pub mod recorder;
pub mod report;
pub mod run;
pub mod signals;
pub mod store;
pub mod wire;

use anyhow::Context as _;

use cli::{Cli, Command, RunArgs};
use config::{ConfigError, Profile};
use exit::Exit;
use report::{Status, StopCause};

/// Run a parsed command line; the exit code is decided here, from the outcome.
pub fn run(cli: Cli) -> Exit {
    init_logging(cli.verbose, cli.quiet);
    let progress = !cli.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let result = match cli.command {
        Command::Run(args) => run_scenario_with(&args, &signals::Interrupts::install(), progress),
        Command::Validate { files } => Ok(validate(&files)),
        Command::Report { dir } => regenerate(&dir),
        Command::ServeEmbedded { brokers, topics, until_stdin_closes } => {
            bench::serve_embedded(brokers, &topics, until_stdin_closes)
                .map(|()| Exit::Ok)
                .map_err(|e| Failure::CouldNotStart(anyhow::anyhow!(e)))
        }
        Command::Bench { what } => run_bench(what),
        Command::Compare { dirs, baseline, max_regression, allow_different, out } => {
            compare_runs(&dirs, baseline.as_deref(), max_regression.as_deref(), allow_different, out)
        }
        Command::Plan { scenario, duration, seed, json, shard } => {
            explain_plan(&scenario, duration, seed, json, shard.unwrap_or_default())
        }
        Command::Merge(args) => merge_shards(&args, !cli.quiet),
        Command::Check(args) => check::run(&args),
        Command::Cost(args) => price_run(&args),
        Command::Restore { profile } => restore_faults(&profile),
    };
    match result {
        Ok(exit) => exit,
        Err(Failure::Invalid(e)) => {
            eprintln!("error: {e:#}");
            Exit::InvalidInput
        }
        Err(Failure::CouldNotStart(e)) => {
            eprintln!("error: {e:#}");
            Exit::Target
        }
        Err(Failure::Output(e)) => {
            eprintln!("error: {e:#}");
            Exit::Output
        }
    }
}

/// Why a command failed before producing a result.
#[derive(Debug)]
pub enum Failure {
    Invalid(anyhow::Error),
    CouldNotStart(anyhow::Error),
    /// The run ended but its report could not be written (exit 4).
    Output(anyhow::Error),
}

fn config_failure(e: ConfigError) -> Failure {
    Failure::Invalid(anyhow::Error::new(e))
}

/// `fleetstorm run`: the exit code follows the report's status and gates.
pub fn run_scenario(args: &RunArgs, interrupts: &signals::Interrupts) -> Result<Exit, Failure> {
    run_scenario_with(args, interrupts, false)
}

/// `fleetstorm run`, with or without the live progress line on stderr.
pub fn run_scenario_with(args: &RunArgs, interrupts: &signals::Interrupts, progress: bool) -> Result<Exit, Failure> {
    let mut scenario = config::load_scenario(&args.scenario).map_err(config_failure)?;
    if let Some(path) = &args.gates {
        scenario.replace_gates(config::read_gates(path).map_err(config_failure)?).map_err(config_failure)?;
    }
    // Pricing files are read before anything runs: a bad one is exit 2 with file:line:col.
    let pricing = cost::load_pricing(&args.pricing).map_err(|e| Failure::Invalid(anyhow::Error::new(e)))?;
    let profile = match &args.profile {
        Some(p) => config::load_profile(p).map_err(config_failure)?,
        None => config::Loaded::builtin(Profile::embedded(), "(embedded default)"),
    };
    // `--out s3://...`: the run writes into a local staging directory, uploaded once written.
    let out = store::RunOut::resolve(args.out.as_deref()).map_err(|e| match e {
        store::StoreError::Io { .. } => Failure::CouldNotStart(e.into()),
        e => Failure::Invalid(e.into()),
    })?;
    let opts = run::RunOptions {
        progress,
        out: out.dir(),
        duration: args.duration,
        seed: args.seed,
        unpaced: None,
        summary_to_stderr: false,
        overwrite: args.overwrite,
        pricing,
        metrics_addr: args.metrics_addr.clone(),
        campaign: campaign(&args.campaign, |k| std::env::var(k).ok())
            .map_err(|e| Failure::Invalid(anyhow::anyhow!(e)))?,
    };
    let finished = run::run(scenario, profile, &opts, interrupts).map_err(|e| match e {
        run::RunError::Invalid(m) => Failure::Invalid(anyhow::anyhow!(m)),
        run::RunError::CouldNotStart(m) => {
            Failure::CouldNotStart(anyhow::anyhow!(m).context("the run could not start"))
        }
    })?;
    if let Some(e) = finished.write_error {
        return Err(Failure::Output(anyhow::anyhow!(e)));
    }
    out.publish(&finished.dir).map_err(|e| {
        let kept = format!("the report was not uploaded; the local copy is kept in {}", finished.dir.display());
        Failure::Output(anyhow::Error::new(e).context(kept))
    })?;
    Ok(outcome(&finished.report))
}

/// The campaign a run's flags (and `JOB_COMPLETION_INDEX`, `FLEETSTORM_CAMPAIGN`) put it in.
pub fn campaign(a: &cli::CampaignArgs, env: impl Fn(&str) -> Option<String>) -> Result<Option<run::Campaign>, String> {
    let shard = match (a.shard, a.shards) {
        (Some(s), _) => Some(s),
        (None, Some(n)) => {
            let i = env("JOB_COMPLETION_INDEX").ok_or_else(|| {
                format!(
                    "--shards {n} takes the shard index from JOB_COMPLETION_INDEX, which is not set; use --shard I/{n}"
                )
            })?;
            Some(plan::Shard::parse(&format!("{}/{n}", i.trim())).map_err(|e| format!("--shards {n}: {e}"))?)
        }
        (None, None) => None,
    };
    let id = a.campaign.clone().or_else(|| env("FLEETSTORM_CAMPAIGN")).filter(|c| !c.trim().is_empty());
    let (shard, id) = match (shard, id) {
        (None, None) => {
            if a.start_at.is_some() {
                return Err("--start-at is for the shards of a campaign: give --shard I/N (or --shards N)".into());
            }
            return Ok(None);
        }
        (Some(s), None) => {
            return Err(format!(
                "--shard {s} needs a campaign id shared by every shard: --campaign ID or FLEETSTORM_CAMPAIGN"
            ));
        }
        (shard, Some(id)) => (shard.unwrap_or_default(), id),
    };
    if id.len() > 200 || id.chars().any(char::is_control) {
        return Err("--campaign: at most 200 printable characters".into());
    }
    let start_at = match &a.start_at {
        Some(t) => Some(
            humantime::parse_rfc3339_weak(t)
                .map_err(|e| format!("--start-at `{t}`: {e}; expected e.g. 2026-12-02T10:00:00Z"))?,
        ),
        None => None,
    };
    Ok(Some(run::Campaign {
        id,
        shard,
        start_at,
        start_timeout: a.start_timeout.map_or(std::time::Duration::from_secs(300), |d| d.0),
    }))
}

/// The exit code of a finished run: a lost target or interrupt first, then gates.
pub fn outcome(r: &report::Report) -> Exit {
    let gate_failed = r.gates.iter().any(|g| !g.passed);
    match (r.status, r.stopped_by) {
        (Status::Failed, _) => Exit::Target,
        (Status::Aborted, Some(StopCause::Interrupted)) => Exit::Interrupted,
        (Status::Aborted, _) if !gate_failed => Exit::Interrupted,
        _ if gate_failed => Exit::GateFailed,
        _ => Exit::Ok,
    }
}

fn bench_load(l: &cli::BenchLoad) -> bench::Load {
    bench::Load {
        bootstrap: l.bootstrap.clone(),
        topic: l.topic.clone(),
        partitions: l.partitions,
        size: l.size,
        acks: l.acks.clone(),
        linger_ms: l.linger_ms,
        devices: l.devices,
        instances: l.instances,
        keyed: l.key != "none",
        retention_ms: l.retention_ms,
        replication: l.replication,
        out: l.out.clone(),
    }
}

/// `fleetstorm bench ...`: one JSON line on stdout.
pub fn run_bench(what: cli::BenchCommand) -> Result<Exit, Failure> {
    fn line<T: serde::Serialize>(r: Result<T, bench::BenchError>) -> anyhow::Result<String> {
        Ok(serde_json::to_string(&r?)?)
    }
    let json = match what {
        cli::BenchCommand::Produce { load, count } => line(bench::produce(&bench_load(&load), count)),
        cli::BenchCommand::Rate { load, rate, duration } => {
            line(bench::rate(&bench_load(&load), rate.as_per_sec(), duration.as_secs_f64()))
        }
        cli::BenchCommand::Consume { load, fill: true, count, .. } => {
            line(bench::read::fill(&bench_load(&load), count))
        }
        cli::BenchCommand::Consume { load, reader, run_id, .. } => {
            let reader = if reader == "audit" { bench::read::Reader::Audit } else { bench::read::Reader::Group };
            match u64::from_str_radix(run_id.as_deref().unwrap_or_default(), 16) {
                Ok(id) => line(bench::read::consume(&bench_load(&load), reader, id)),
                Err(e) => Err(anyhow::anyhow!("--run-id: {e}")),
            }
        }
        cli::BenchCommand::Whole { load, rate, duration } => {
            line(bench::read::whole(&bench_load(&load), rate.as_per_sec(), duration.as_secs_f64()))
        }
        cli::BenchCommand::Fleet { devices, classes } => line(bench::fleet(devices, classes)),
        cli::BenchCommand::Ledger { scenario, duration } => line(bench::ledger(&scenario, duration)),
    };
    match json {
        Ok(l) => {
            println!("{l}");
            Ok(Exit::Ok)
        }
        Err(e) => Err(Failure::CouldNotStart(anyhow::anyhow!(e))),
    }
}

/// `fleetstorm compare`.
pub fn compare_runs(
    dirs: &[std::path::PathBuf],
    baseline: Option<&std::path::Path>,
    max_regression: Option<&str>,
    allow_different: bool,
    out: Option<std::path::PathBuf>,
) -> Result<Exit, Failure> {
    let invalid = |e: compare::CompareError| match e {
        compare::CompareError::Input(m) => Failure::Invalid(anyhow::anyhow!(m)),
        compare::CompareError::Output(m) => Failure::CouldNotStart(anyhow::anyhow!(m)),
    };
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace([':', '-'], "")
        .replace('T', "-")
        .replace('Z', "");
    match baseline {
        Some(base) => {
            if dirs.len() != 1 {
                return Err(Failure::Invalid(anyhow::anyhow!(
                    "with --baseline, give exactly one candidate run directory"
                )));
            }
            let overrides = compare::parse_tolerances(max_regression.unwrap_or("")).map_err(invalid)?;
            let (runs, warnings) =
                compare::load(&[base.to_path_buf(), dirs[0].clone()], allow_different).map_err(invalid)?;
            let checks = compare::baseline(&runs[0].1, &runs[1].1, &overrides);
            let out = out.unwrap_or_else(|| std::path::PathBuf::from("reports").join(format!("baseline-{stamp}")));
            let md = compare::write_baseline(&runs[0], &runs[1], &checks, &warnings, &out).map_err(invalid)?;
            print!("{md}");
            println!(
                "
written to {}",
                out.display()
            );
            Ok(if checks.iter().any(|c| c.regressed) { Exit::GateFailed } else { Exit::Ok })
        }
        None => {
            if max_regression.is_some() {
                return Err(Failure::Invalid(anyhow::anyhow!("--max-regression needs --baseline")));
            }
            if dirs.len() < 2 {
                return Err(Failure::Invalid(anyhow::anyhow!(
                    "give at least two run directories to compare (or --baseline)"
                )));
            }
            let compared = compare::load_dirs(dirs, allow_different).map_err(invalid)?;
            for w in &compared.warnings {
                eprintln!("WARNING: {w}");
            }
            let out = out.unwrap_or_else(|| std::path::PathBuf::from("reports").join(format!("compare-{stamp}")));
            let md = compare::bake_off_dirs(&compared, &out).map_err(invalid)?;
            print!("{md}");
            print!("{}", compare::append_cost(dirs, &compared.runs, &out).map_err(invalid)?);
            println!(
                "
written to {}",
                out.display()
            );
            Ok(Exit::Ok)
        }
    }
}

/// `fleetstorm report DIR`: everything derived, from report.json alone.
pub fn regenerate(dir: &std::path::Path) -> Result<Exit, Failure> {
    let r = report::Report::read(dir).map_err(|e| Failure::Invalid(anyhow::anyhow!(e)))?;
    let out = if dir.is_dir() {
        dir.to_path_buf()
    } else {
        dir.parent().map(std::path::Path::to_path_buf).unwrap_or_default()
    };
    let files = r.write_derived(&out).map_err(|e| Failure::CouldNotStart(anyhow::anyhow!(e)))?;
    for f in files {
        println!("{}", f.display());
    }
    Ok(Exit::Ok)
}

/// `fleetstorm plan`: the timeline and planned rates of a scenario, without a target.
pub fn explain_plan(
    path: &std::path::Path,
    duration: Option<config::units::Dur>,
    seed: Option<u64>,
    json: bool,
    shard: plan::Shard,
) -> Result<Exit, Failure> {
    let prepared = config::load_scenario(path).map_err(config_failure)?.prepare(config::Overrides { duration, seed });
    for note in &prepared.notes {
        eprintln!("note: {note}");
    }
    let (s, _) = prepared.finish().map_err(config_failure)?;
    let plan = plan::Plan::from_scenario(&s).sharded(shard);
    let x = explain::explain(&s, &plan);
    if json {
        println!("{}", serde_json::to_string_pretty(&x).unwrap_or_default());
    } else {
        print!("{}", explain::render(&x));
    }
    Ok(Exit::Ok)
}

/// `fleetstorm validate`: every problem in every file, then exit 2 if there was any.
pub fn validate(files: &[std::path::PathBuf]) -> Exit {
    let mut bad = 0;
    for f in files {
        match config::validate_file(f).with_context(|| format!("{}", f.display())) {
            Ok(kind) => println!("ok: {} ({kind})", f.display()),
            Err(e) => {
                bad += 1;
                match e.downcast_ref::<ConfigError>() {
                    Some(ce @ ConfigError::Invalid { .. }) => eprintln!("{ce}"),
                    _ => eprintln!("error: {e:#}"),
                }
            }
        }
    }
    if bad == 0 { Exit::Ok } else { Exit::InvalidInput }
}

fn init_logging(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let default = match (quiet, verbose) {
        (true, _) => "warn,librdkafka=error",
        (false, 0) => "info,librdkafka=warn",
        (false, 1) => "debug,librdkafka=info",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("FLEETSTORM_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .compact()
        .try_init();
}

/// `fleetstorm cost`: price a finished run; bad pricing or a report without cost drivers is
/// invalid input (exit 2).
pub fn price_run(args: &cli::CostArgs) -> Result<Exit, Failure> {
    match cost::run(&args.report, &args.pricing, args.out.as_deref()) {
        Ok(md) => {
            print!("{md}");
            Ok(Exit::Ok)
        }
        Err(e) if e.is_input() => Err(Failure::Invalid(anyhow::Error::new(e))),
        Err(e) => Err(Failure::Output(anyhow::Error::new(e))),
    }
}

/// `fleetstorm restore`: undo what dead runs with this profile left applied.
pub fn restore_faults(path: &std::path::Path) -> Result<Exit, Failure> {
    let profile = config::load_profile(path).map_err(|e| Failure::Invalid(e.into()))?;
    let p = &profile.value;
    let base = path.parent().map(std::path::Path::to_path_buf).filter(|d| !d.as_os_str().is_empty());
    let mechanism = faults::mechanism::Mechanism::new(p.fault_mechanism().as_ref(), base.unwrap_or_else(|| ".".into()));
    let journal = faults::journal::Journal::for_profile(&p.name);
    let redactor = config::profile::Redactor::for_profile(p);
    let restored = faults::journal::restore_left(&journal, &mechanism, &clock::MonotonicClock::start())
        .map_err(|e| Failure::Output(e.into()))?;
    if restored.undone.is_empty() && restored.live.is_empty() {
        println!("nothing to undo: no fault of profile {} is left applied ({})", p.name, journal.path().display());
    }
    for line in restored.lines() {
        println!("{}", redactor.scrub(&line));
    }
    Ok(if restored.failed() > 0 { Exit::Target } else { Exit::Ok })
}

/// `fleetstorm merge`: one report from a campaign's shards; the exit code follows the merged
/// report's status and gates, as `run`'s does.
pub fn merge_shards(args: &cli::MergeArgs, progress: bool) -> Result<Exit, Failure> {
    // Local directories, s3:// URLs, or prefixes holding shard directories, as local directories.
    let inputs: Vec<String> = args.dirs.iter().map(|d| d.to_string_lossy().into_owned()).collect();
    let (dirs, _downloaded) = store::fetch_inputs(&inputs).map_err(|e| match e {
        store::StoreError::Scheme { .. } | store::StoreError::Url { .. } | store::StoreError::NoResults { .. } => {
            Failure::Invalid(anyhow::Error::new(e))
        }
        _ => Failure::CouldNotStart(anyhow::Error::new(e).context("could not read the shards' results")),
    })?;
    let pricing = cost::load_pricing(&args.pricing).map_err(|e| Failure::Invalid(anyhow::Error::new(e)))?;
    let opts = merge::MergeOptions {
        pricing,
        dirs,
        out: args.out.clone(),
        allow_partial: args.allow_partial,
        gates: args.gates.clone(),
        progress,
    };
    let report = merge::merge(&opts).map_err(|e| {
        if e.is_input() { Failure::Invalid(anyhow::Error::new(e)) } else { Failure::Output(anyhow::Error::new(e)) }
    })?;
    print!("{}", report::summary::text(&report, &args.out.join("report.json").display().to_string()));
    Ok(outcome(&report))
}
