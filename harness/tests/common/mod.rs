//! Helpers shared by the integration tests: run the real binary or the library entry point in a
//! temporary directory, and read back what it wrote.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

use fleetstorm::cli::RunArgs;
use fleetstorm::report::Report;

/// Load tests share two cores: run them one at a time so that timing assertions measure the
/// harness and the target, not the other tests.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fleetstorm"));
    c.env("FLEETSTORM_LOG", "warn");
    c
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// `fleetstorm run SCENARIO --out OUT` for the library entry point; other flags by struct update:
/// `RunArgs { seed: Some(9), ..run_args(s, out) }`.
pub fn run_args(scenario: impl Into<PathBuf>, out: impl Into<PathBuf>) -> RunArgs {
    RunArgs { out: Some(out.into()), ..RunArgs::new(scenario.into()) }
}

pub fn read_report(dir: &Path) -> Report {
    Report::read(dir).unwrap()
}

pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A small scenario: `devices` devices, one JSON class and one binary class, one group.
pub fn small_scenario(name: &str, devices: u64, duration: &str) -> String {
    format!(
        r#"
name: {name}
seed: 7
duration: {duration}
warmup: 1s
drain: 20s
topics:
  - {{name: {name}.tel, partitions: 6, replication: 3}}
  - {{name: {name}.hb, partitions: 3, replication: 1}}
fleet:
  devices: {devices}
  classes:
    - name: telemetry
      topic: {name}.tel
      rate: 1/2s
      size: {{uniform: {{min: 300B, max: 900B}}}}
      headers: {{schema: t.v1}}
    - name: heartbeat
      topic: {name}.hb
      share: 50%
      rate: 1/1s
      arrival: poisson
      format: binary
      size: 64B
consumers:
  - name: sink
    members: 2
    topics: [{name}.tel, {name}.hb]
"#
    )
}
