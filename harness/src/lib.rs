//! fleetstorm: workload-shaped load, faults and a delivery audit for Kafka-compatible targets.
//!
//! Data flows one way: scenario + profile ([`config`]) -> plan ([`plan`]) -> drivers ([`driver`])
//! -> recorder ([`recorder`]) -> report ([`report`]); [`run`] wires the stages together. See
//! ARCHITECTURE.md for the codemap and the invariants.

pub mod cli;
pub mod clock;
pub mod config;
pub mod driver;
pub mod exit;
pub mod explain;
pub mod faults;
pub mod plan;
pub mod recorder;
pub mod report;
pub mod run;
pub mod signals;
pub mod wire;

use anyhow::Context as _;

use cli::{Cli, Command, RunArgs};
use config::{ConfigError, Profile};
use exit::Exit;
use report::Status;

/// Run a parsed command line; the exit code is decided here, from the outcome.
pub fn run(cli: Cli) -> Exit {
    init_logging(cli.verbose, cli.quiet);
    let result = match cli.command {
        Command::Run(args) => run_scenario(&args, &signals::Interrupts::install()),
        Command::Validate { files } => Ok(validate(&files)),
        Command::Plan { scenario, duration, seed, json } => explain_plan(&scenario, duration, seed, json),
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
    }
}

/// Why a command failed before producing a result.
#[derive(Debug)]
pub enum Failure {
    Invalid(anyhow::Error),
    CouldNotStart(anyhow::Error),
}

fn config_failure(e: ConfigError) -> Failure {
    Failure::Invalid(anyhow::Error::new(e))
}

/// `fleetstorm run`: the exit code follows the report's status.
pub fn run_scenario(args: &RunArgs, interrupts: &signals::Interrupts) -> Result<Exit, Failure> {
    let scenario = config::load_scenario(&args.scenario).map_err(config_failure)?;
    let profile = match &args.profile {
        Some(p) => config::load_profile(p).map_err(config_failure)?,
        None => config::Loaded { value: Profile::embedded(), file: "(embedded default)".into(), source: String::new() },
    };
    let opts = run::RunOptions { out: args.out.clone(), duration: args.duration, seed: args.seed };
    let finished = run::run(scenario, profile, &opts, interrupts).map_err(|e| match e {
        run::RunError::Invalid(m) => Failure::Invalid(anyhow::anyhow!(m)),
        run::RunError::CouldNotStart(m) => {
            Failure::CouldNotStart(anyhow::anyhow!(m).context("the run could not start"))
        }
    })?;
    Ok(match finished.report.status {
        Status::Completed => Exit::Ok,
        Status::Aborted => Exit::Interrupted,
        Status::Failed => Exit::Target,
    })
}

/// `fleetstorm plan`: the timeline and planned rates of a scenario, without a target.
pub fn explain_plan(
    path: &std::path::Path,
    duration: Option<config::units::Dur>,
    seed: Option<u64>,
    json: bool,
) -> Result<Exit, Failure> {
    let mut s = config::load_scenario(path).map_err(config_failure)?.value;
    if let Some(d) = duration {
        for note in s.shorten(d) {
            eprintln!("note: {note}");
        }
    }
    if let Some(seed) = seed {
        s.seed = seed;
    }
    let problems = config::validate::scenario(&s);
    if !problems.is_empty() {
        let list: Vec<String> = problems.iter().map(|(p, m)| format!("{}: {p}: {m}", path.display())).collect();
        return Err(Failure::Invalid(anyhow::anyhow!(list.join("\n"))));
    }
    let plan = plan::Plan::from_scenario(&s);
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
