//! The faults applied right now, on disk, so that a run that dies mid-fault (SIGKILL, a lost
//! machine) does not leave a broker paused, stopped or behind a network rule: the next run with
//! the same profile undoes what it finds first, and `fleetstorm restore` does it on demand.
//!
//! One file per profile name, `<state dir>/faults-<profile>.json`: the state dir is
//! `$FLEETSTORM_STATE_DIR`, else `$XDG_STATE_HOME/fleetstorm`, else `~/.local/state/fleetstorm`.
//! An entry is written *before* the injection starts (a kill between the two must not lose it)
//! and removed once the fault is undone (or its injection failed). Each entry names the process
//! that applied it (pid and start time): an entry whose process still runs belongs to a live run
//! and is left alone.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::mechanism::{Action, Mechanism};
use crate::clock::Clock;
use crate::config::scenario::{FaultKind, FaultSpec};
use crate::report::schema::ActionRecord;

/// A fault applied and not yet undone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub run_id: String,
    /// The fault's label in its scenario.
    pub fault: String,
    pub kind: FaultKind,
    pub broker: i32,
    /// UTC, RFC 3339.
    pub applied_at: String,
    pub owner: Owner,
}

/// The process that applied a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub pid: u32,
    /// Clock ticks after boot when it started (`/proc/<pid>/stat`, field 22): a pid reused by
    /// another process does not pass for the owner.
    pub start_ticks: u64,
}

impl Owner {
    pub fn me() -> Owner {
        let pid = std::process::id();
        Owner { pid, start_ticks: start_ticks(pid).unwrap_or(0) }
    }

    /// Whether the process that applied the fault still runs.
    pub fn alive(self) -> bool {
        start_ticks(self.pid).is_some_and(|t| t == self.start_ticks)
    }
}

fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name in parentheses (which may hold spaces): state is field 3, start
    // time field 22.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first().is_some_and(|s| *s == "Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("the fault journal {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("the fault journal {path} is not what fleetstorm writes: {source}")]
    Corrupt { path: String, source: serde_json::Error },
}

/// The journal of one profile.
#[derive(Clone, Debug)]
pub struct Journal {
    path: PathBuf,
}

impl Journal {
    /// The journal of the profile named `profile`, in the state dir.
    pub fn for_profile(profile: &str) -> Journal {
        Journal::at(state_dir().join(format!("faults-{}.json", file_safe(profile))))
    }

    pub fn at(path: PathBuf) -> Journal {
        Journal { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn entries(&self) -> Result<Vec<Entry>, JournalError> {
        match std::fs::read(&self.path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(Vec::new()),
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| JournalError::Corrupt { path: self.path.display().to_string(), source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(source) => Err(JournalError::Io { path: self.path.display().to_string(), source }),
        }
    }

    pub fn add(&self, entry: Entry) -> Result<(), JournalError> {
        let mut all = self.entries()?;
        all.retain(|e| !(e.run_id == entry.run_id && e.fault == entry.fault));
        all.push(entry);
        self.write(&all)
    }

    pub fn remove(&self, run_id: &str, fault: &str) -> Result<(), JournalError> {
        let mut all = self.entries()?;
        let before = all.len();
        all.retain(|e| !(e.run_id == run_id && e.fault == fault));
        if all.len() == before { Ok(()) } else { self.write(&all) }
    }

    /// Written whole to a temporary file, then renamed over the journal.
    fn write(&self, all: &[Entry]) -> Result<(), JournalError> {
        let io = |source| JournalError::Io { path: self.path.display().to_string(), source };
        if all.is_empty() {
            return match std::fs::remove_file(&self.path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(e)),
                _ => Ok(()),
            };
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = self.path.with_extension(format!("json.{}", std::process::id()));
        let text = serde_json::to_vec_pretty(all).map_err(|e| io(std::io::Error::other(e)))?;
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)
    }
}

fn state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("FLEETSTORM_STATE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("fleetstorm");
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(h) => PathBuf::from(h).join(".local/state/fleetstorm"),
        None => std::env::temp_dir().join("fleetstorm-state"),
    }
}

fn file_safe(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

/// What undoing the faults a dead run left behind did.
#[derive(Debug, Default)]
pub struct Restored {
    /// Each entry undone (or tried), with the mechanism's record.
    pub undone: Vec<(Entry, ActionRecord)>,
    /// Entries of runs still alive, left alone.
    pub live: Vec<Entry>,
}

impl Restored {
    pub fn failed(&self) -> usize {
        self.undone.iter().filter(|(_, r)| !r.ok).count()
    }

    /// One line per entry, for stderr and the report's warnings.
    pub fn lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .undone
            .iter()
            .map(|(e, r)| {
                format!(
                    "{} {} of run {} (applied {}, its process gone): {} on broker {} {}{}",
                    if r.ok { "undid" } else { "could not undo" },
                    e.fault,
                    e.run_id,
                    e.applied_at,
                    r.action,
                    e.broker,
                    if r.ok { "ok" } else { "failed" },
                    if r.ok || r.output.is_empty() { String::new() } else { format!(": {}", r.output) },
                )
            })
            .collect();
        out.extend(self.live.iter().map(|e| {
            format!(
                "left {} of run {} on broker {} alone: its process {} still runs",
                e.fault, e.run_id, e.broker, e.owner.pid
            )
        }));
        out
    }
}

/// Undo, through `mechanism`, every fault in the journal whose run is gone; entries undone are
/// removed, failures kept for the next try.
pub fn restore_left(journal: &Journal, mechanism: &Mechanism, clock: &dyn Clock) -> Result<Restored, JournalError> {
    let mut out = Restored::default();
    for e in journal.entries()? {
        if e.owner.alive() && e.owner.pid != std::process::id() {
            out.live.push(e);
            continue;
        }
        let record = mechanism.perform(Action::restore(e.kind), e.broker, clock);
        if record.ok {
            journal.remove(&e.run_id, &e.fault)?;
        }
        out.undone.push((e, record));
    }
    Ok(out)
}

/// The entry for a fault about to be injected.
pub fn entry(run_id: &str, label: &str, spec: &FaultSpec, broker: i32) -> Entry {
    Entry {
        run_id: run_id.to_string(),
        fault: label.to_string(),
        kind: spec.kind,
        broker,
        applied_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        owner: Owner::me(),
    }
}
