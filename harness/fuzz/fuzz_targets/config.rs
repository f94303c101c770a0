//! Scenario and profile parsing and validation under arbitrary bytes (issue 16, "fuzzing kept").
//!
//! Every input goes through what a user's file goes through:
//! - the bytes, written to a file, to `config::validate_file` (`fleetstorm validate`: any kind of
//!   file, non-UTF-8 included, a profile's unset variables lenient);
//! - the text (lossy UTF-8) to `config::scenario_from_text`; a scenario that validates is planned
//!   (`plan::Plan::from_scenario`) and [`EVENTS`] events are pulled from its schedule, then the
//!   same again after `--duration 3s` (`Loaded::prepare`), as `plan` and `run` do;
//! - the text to `config::profile_from_text`, strictly, with every variable set to one fixed value
//!   (as `run --profile`; `validate_file` above is the lenient path, no variable set).
//!
//! The properties are libFuzzer's: no panic (debug assertions on, so an arithmetic overflow is one
//! too), and, with `scripts/fuzz.sh`'s `-rss_limit_mb=1024 -timeout=5`, no input over 1 GiB or 5 s.
//! Planning is inside those bounds on purpose: `plan` and `run` must stay fast for anything that
//! validates.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use fleetstorm::config::units::Dur;
use fleetstorm::config::{self, Overrides, Scenario};
use fleetstorm::plan::Plan;
use libfuzzer_sys::fuzz_target;

/// Events pulled from a valid scenario's schedule.
const EVENTS: usize = 10_000;

/// Every variable a profile names, when set.
const ENV_VALUE: &str = "127.0.0.1:9092";

/// One file per fuzzing process for the file entry point (`-jobs`/`-fork` run several).
fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| std::env::temp_dir().join(format!("fleetstorm-fuzz-{}.yaml", std::process::id())))
}

fn plan(scenario: &Scenario) {
    let plan = Plan::from_scenario(scenario);
    let pulled = plan.schedule(0, 1).take(EVENTS).count();
    std::hint::black_box((plan.planned_rate(), pulled));
}

fuzz_target!(|data: &[u8]| {
    // The file entry point; it reads the bytes as they are (non-UTF-8 included). A file that
    // cannot be written here is the machine's problem, not the input's: skip that part.
    if std::fs::write(scratch(), data).is_ok() {
        let _ = config::validate_file(scratch());
    }

    let text = String::from_utf8_lossy(data);

    if let Ok(loaded) = config::scenario_from_text("fuzz.yaml", text.to_string()) {
        plan(&loaded.value);
        let shortened = Overrides { duration: Some(Dur(Duration::from_secs(3))), seed: None };
        if let Ok((scenario, _gates)) = loaded.prepare(shortened).finish() {
            plan(&scenario);
        }
    }

    let set = |_: &str| Some(ENV_VALUE.to_string());
    let _ = config::profile_from_text("fuzz.yaml", text.into_owned(), &set, false);
});
