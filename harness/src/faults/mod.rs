//! Faults: injecting broker kills, stops, pauses and latency during the load, and undoing them.
//!
//! The [`Scheduler`] lives on the run's main thread and is ticked every few tens of
//! milliseconds. It resolves which broker a fault hits when the fault is due (an id, a seeded
//! random choice, or the current leader of a partition), notes which partitions that broker led,
//! arms an acknowledgement watch in the offset book (to measure when writes resumed), performs the
//! action through the profile's mechanism, and restores it after `restore_after`, or when the
//! load ends, whichever comes first. Every fault is undone before the report is written.
//!
//! Mechanisms ([`mechanism`]): the embedded cluster's own controls, signals to local broker
//! processes, or shell command templates. Slow actions (restarting a JVM, a docker command) run on
//! a worker thread so the load keeps being watched meanwhile.
//!
//! **Invariant:** this module is the only one that signals processes or runs fault commands; it
//! reaches Kafka only through the [`Target`] trait, implemented by the driver.

pub mod journal;
pub mod mechanism;

use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::clock::Clock;
use crate::config::profile::{FaultMechanism, Redactor};
use crate::config::scenario::{BrokerSelector, FaultKind, FaultSpec};
use crate::plan::rng::mix;
use crate::recorder::OffsetBook;
use crate::report::schema::ActionRecord;
use mechanism::{Action, Mechanism};

/// A partition's leader and replicas, as the target reports them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionLeader {
    pub topic: String,
    pub partition: i32,
    pub leader: i32,
    pub replicas: Vec<i32>,
}

/// Why a fault action could not be performed. Its text goes into the fault's actions in the report.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// The target refused a control or metadata request (the driver's words, secrets scrubbed).
    #[error("{0}")]
    Target(String),
    #[error("broker {id} is not one of the target's brokers {brokers:?}")]
    UnknownBroker { id: i32, brokers: Vec<i32> },
    #[error("the target reported no brokers")]
    NoBrokers,
    #[error("{topic}[{partition}] has no leader now")]
    NoLeader { topic: String, partition: i32 },
    #[error("cannot start a fault worker: {0}")]
    Worker(std::io::Error),
    #[error("no mechanism for this action off the main thread")]
    NoMechanism,
    #[error("no `{0}` template")]
    NoTemplate(&'static str),
    #[error("the process mechanism cannot change latency")]
    NoLatency,
    #[error("kill({pid}, {signal}): {source}")]
    Signal { pid: i32, signal: i32, source: std::io::Error },
    #[error("cannot read pid file {path}: {source}")]
    PidFile { path: String, source: std::io::Error },
    #[error("{path} does not hold a pid")]
    NotAPid { path: String },
    #[error("{path} holds pid {pid}: refusing to signal it")]
    LowPid { path: String, pid: i32 },
    #[error("pid {pid} from {path} is not a JVM: refusing to signal it")]
    NotJvm { path: String, pid: i32 },
    #[error("broker {broker} (pid {pid} from {path}) is not running")]
    NotRunning { broker: i32, pid: i32, path: String },
    #[error("pid {pid} still running after {timeout:?}")]
    StillRunning { pid: i32, timeout: Duration },
    #[error("cannot run `{cmd}` in {dir}: {source}")]
    Spawn { cmd: String, dir: String, source: std::io::Error },
    #[error("`{cmd}` timed out after {timeout:?} and was killed")]
    Timeout { cmd: String, timeout: Duration },
    #[error("waiting for `{cmd}`: {source}")]
    Wait { cmd: String, source: std::io::Error },
    #[error("`{cmd}` exited with {status}")]
    Exited { cmd: String, status: std::process::ExitStatus },
}

/// What the fault module needs to know about the target (implemented by the driver).
pub trait Target {
    /// Broker ids of the target, as seen when the run connected.
    fn broker_ids(&self) -> Vec<i32>;
    /// Current leaders of the partitions of `topics`.
    fn leaders(&self, topics: &[String]) -> Result<Vec<PartitionLeader>, FaultError>;
    /// The embedded cluster's controls, if the target is the embedded cluster.
    fn embedded(&self) -> Option<&dyn EmbeddedControls>;
}

/// The embedded (mock) cluster's fault controls.
pub trait EmbeddedControls {
    fn broker_down(&self, broker: i32) -> Result<(), FaultError>;
    fn broker_up(&self, broker: i32) -> Result<(), FaultError>;
    fn set_rtt(&self, broker: i32, rtt: Duration) -> Result<(), FaultError>;
    fn set_leader(&self, topic: &str, partition: i32, broker: i32) -> Result<(), FaultError>;
}

/// Everything that happened to one fault: the raw material of its report entry.
#[derive(Clone, Debug, Default)]
pub struct FaultRun {
    pub label: String,
    pub kind: Option<FaultKind>,
    pub selector: String,
    pub mechanism: String,
    pub broker: Option<i32>,
    pub latency_us: Option<u64>,
    pub network: Option<crate::config::scenario::NetworkSpec>,
    pub planned_at_us: u64,
    pub planned_restore_us: Option<u64>,
    /// When the fault took effect (the injecting action finished).
    pub injected_at_us: Option<u64>,
    /// When it was undone (the restoring action finished).
    pub restored_at_us: Option<u64>,
    /// Flattened partition indexes the broker led when the fault started.
    pub affected: Vec<usize>,
    /// Per flattened partition: first acknowledgement of a record sent after the injection.
    pub first_acks: Vec<Option<u64>>,
    pub actions: Vec<ActionRecord>,
    pub error: Option<String>,
}

enum Phase {
    Pending,
    Injecting(JoinHandle<ActionRecord>),
    Active,
    Restoring(JoinHandle<ActionRecord>),
    Done,
}

struct Slot {
    index: usize,
    spec: FaultSpec,
    run: FaultRun,
    phase: Phase,
    watch: Option<usize>,
}

/// Drives the scenario's faults through their lives.
pub struct Scheduler<C: Clock + Clone + 'static> {
    slots: Vec<Slot>,
    mechanism: Mechanism,
    seed: u64,
    topics: Vec<String>,
    clock: C,
    /// Scrubs what actions report (a command template may hold a secret from the environment).
    redactor: std::sync::Arc<Redactor>,
    /// Where applied faults are written down until undone, with this run's id.
    journal: Option<(journal::Journal, String)>,
}

impl<C: Clock + Clone + 'static> Scheduler<C> {
    /// Scrub every action's command and output (and their log lines) with `redactor`.
    pub fn scrubbing(mut self, redactor: std::sync::Arc<Redactor>) -> Self {
        self.redactor = redactor;
        self
    }

    /// Write every fault down in `journal` before it is injected, until it is undone (not on
    /// the embedded cluster, which lives and dies with the run).
    pub fn journaling(mut self, journal: journal::Journal, run_id: &str) -> Self {
        if !self.mechanism.is_embedded() {
            self.journal = Some((journal, run_id.to_string()));
        }
        self
    }

    fn journal_add(&self, i: usize, broker: i32) {
        if let Some((j, run_id)) = &self.journal {
            let s = &self.slots[i];
            if let Err(e) = j.add(journal::entry(run_id, &s.run.label, &s.spec, broker)) {
                tracing::error!("fault {}: not written down ({e}); if this run dies now, undo it by hand", s.run.label);
            }
        }
    }

    fn journal_remove(&self, i: usize) {
        if let Some((j, run_id)) = &self.journal
            && let Err(e) = j.remove(run_id, &self.slots[i].run.label)
        {
            tracing::error!("fault {}: still in the journal ({e})", self.slots[i].run.label);
        }
    }

    /// An action's record as it may be shown: secrets scrubbed, a failure logged.
    fn shown(&self, mut record: ActionRecord) -> ActionRecord {
        record.command = record.command.map(|c| self.redactor.scrub(&c));
        record.output = self.redactor.scrub(&record.output);
        if !record.ok {
            tracing::error!("fault action {} on broker {} failed: {}", record.action, record.broker, record.output);
        }
        record
    }

    /// `base_dir`: where relative paths and commands of the profile are resolved (the profile
    /// file's directory).
    pub fn new(
        specs: &[FaultSpec],
        mech: Option<&FaultMechanism>,
        base_dir: PathBuf,
        seed: u64,
        topics: Vec<String>,
        clock: C,
    ) -> Scheduler<C> {
        let mechanism = Mechanism::new(mech, base_dir).moving(&topics);
        let slots = specs
            .iter()
            .enumerate()
            .map(|(i, spec)| Slot {
                index: i,
                spec: spec.clone(),
                run: FaultRun {
                    label: spec.label(i),
                    kind: Some(spec.kind),
                    selector: spec.broker.to_string(),
                    mechanism: mechanism.name().to_string(),
                    latency_us: spec.latency.map(|l| l.as_micros()),
                    network: spec.network,
                    planned_at_us: spec.at.as_micros(),
                    planned_restore_us: spec.restore_after.map(|r| spec.at.as_micros() + r.as_micros()),
                    ..FaultRun::default()
                },
                phase: Phase::Pending,
                watch: None,
            })
            .collect();
        Scheduler { slots, mechanism, seed, topics, clock, redactor: Default::default(), journal: None }
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Labels of the faults in effect now.
    pub fn active(&self) -> Vec<String> {
        self.slots
            .iter()
            .filter(|s| matches!(s.phase, Phase::Active | Phase::Restoring(_)))
            .map(|s| s.run.label.clone())
            .collect()
    }

    /// Advance every fault: inject what is due, restore what has run its course, collect the
    /// results of finished actions. Never blocks on a slow action.
    pub fn tick(&mut self, target: &dyn Target, book: &OffsetBook) {
        let now = self.clock.now_us();
        for i in 0..self.slots.len() {
            self.step(i, now, target, book, false);
        }
    }

    /// The load is over (or aborted): undo every fault in effect, waiting for the actions, and
    /// mark the ones that never started.
    pub fn restore_all(&mut self, target: &dyn Target, book: &OffsetBook) {
        for i in 0..self.slots.len() {
            if matches!(self.slots[i].phase, Phase::Pending) {
                let s = &mut self.slots[i];
                s.run.error = Some("not injected: the load ended first".into());
                s.phase = Phase::Done;
            }
        }
        // Injecting -> Active -> Restoring -> Done, waiting for each worker.
        for _ in 0..4 {
            for i in 0..self.slots.len() {
                let now = self.clock.now_us();
                self.step(i, now, target, book, true);
            }
        }
    }

    /// Collect the runs; releases the acknowledgement watches.
    pub fn finish(mut self, book: &OffsetBook) -> Vec<FaultRun> {
        for s in &mut self.slots {
            if let Some(slot) = s.watch.take() {
                s.run.first_acks = book.watch_result(slot);
                book.release_watch(slot);
            }
        }
        self.slots.into_iter().map(|s| s.run).collect()
    }

    fn choose_broker(&self, index: usize, sel: &BrokerSelector, target: &dyn Target) -> Result<i32, FaultError> {
        let mut brokers = target.broker_ids();
        brokers.sort_unstable();
        match sel {
            // Scale-out adds the broker it names: it need not be one of the target's yet.
            BrokerSelector::Id(id) if self.slots[index].spec.kind == FaultKind::ScaleOut => Ok(*id),
            BrokerSelector::Id(id) if brokers.contains(id) => Ok(*id),
            BrokerSelector::Id(id) => Err(FaultError::UnknownBroker { id: *id, brokers }),
            BrokerSelector::Random if brokers.is_empty() => Err(FaultError::NoBrokers),
            BrokerSelector::Random => {
                Ok(brokers[(mix(self.seed, &[0x4641, index as u64]) % brokers.len() as u64) as usize])
            }
            BrokerSelector::LeaderOf { topic, partition } => target
                .leaders(std::slice::from_ref(topic))?
                .into_iter()
                .find(|l| l.partition == *partition && l.leader >= 0)
                .map(|l| l.leader)
                .ok_or_else(|| FaultError::NoLeader { topic: topic.clone(), partition: *partition }),
        }
    }

    fn step(&mut self, i: usize, now: u64, target: &dyn Target, book: &OffsetBook, ending: bool) {
        let phase = std::mem::replace(&mut self.slots[i].phase, Phase::Done);
        let next = match phase {
            Phase::Pending if now >= self.slots[i].run.planned_at_us => self.inject(i, target, book),
            Phase::Injecting(h) if h.is_finished() || ending => {
                let record = h.join().unwrap_or_else(|_| failed_record("inject", "the fault worker panicked"));
                self.injected(i, record, book)
            }
            Phase::Active if ending || self.slots[i].run.planned_restore_us.is_some_and(|t| now >= t) => {
                self.restore(i, target)
            }
            Phase::Restoring(h) if h.is_finished() || ending => {
                let record = h.join().unwrap_or_else(|_| failed_record("restore", "the fault worker panicked"));
                self.restored(i, record)
            }
            other => other,
        };
        self.slots[i].phase = next;
        self.settle_watch(i, book);
    }

    fn inject(&mut self, i: usize, target: &dyn Target, book: &OffsetBook) -> Phase {
        let (index, spec) = (self.slots[i].index, self.slots[i].spec.clone());
        let broker = match self.choose_broker(index, &spec.broker, target) {
            Ok(b) => b,
            Err(e) => {
                self.slots[i].run.error = Some(format!("could not choose the broker: {e}"));
                return Phase::Done;
            }
        };
        self.slots[i].run.broker = Some(broker);
        let leaders = target.leaders(&self.topics).unwrap_or_default();
        self.slots[i].run.affected = leaders
            .iter()
            .filter(|l| l.leader == broker)
            .filter_map(|l| {
                let t = self.topics.iter().position(|t| *t == l.topic)?;
                book.index(t, l.partition)
            })
            .collect();
        tracing::warn!("fault {}: {} on broker {broker}", self.slots[i].run.label, spec.kind.as_str());
        let action = Action::inject(&spec);
        self.journal_add(i, broker);
        match target.embedded() {
            Some(controls) if self.mechanism.is_embedded() => {
                let record = mechanism::embedded(controls, &action, broker, &leaders, &self.clock);
                self.injected(i, record, book)
            }
            _ => match self.mechanism.spawn(action, broker, self.clock.clone()) {
                Ok(h) => Phase::Injecting(h),
                Err(e) => {
                    self.slots[i].run.error = Some(e.to_string());
                    Phase::Done
                }
            },
        }
    }

    fn injected(&mut self, i: usize, record: ActionRecord, book: &OffsetBook) -> Phase {
        let record = self.shown(record);
        let ok = record.ok;
        let end_us = ((record.at_s + record.duration_s) * 1e6) as u64;
        let s = &mut self.slots[i];
        // A movement's effect (the data it moves, the load it slows) begins with the action.
        let start_us = if s.spec.kind.moves_data() { (record.at_s * 1e6) as u64 } else { end_us };
        s.run.actions.push(record);
        if !ok {
            s.run.error = Some(format!("injecting {} failed", s.spec.kind.as_str()));
            self.journal_remove(i);
            return Phase::Done;
        }
        s.run.injected_at_us = Some(start_us);
        // A replacement is over once the broker is back in every ISR (the action waited for it):
        // undone (a start that finds it running) now, unless the scenario says when.
        if s.spec.kind == FaultKind::BrokerReplace && s.run.planned_restore_us.is_none() {
            s.run.planned_restore_us = Some(end_us);
        }
        s.watch = book.arm_watch(start_us);
        if s.watch.is_none() {
            tracing::warn!("fault {}: too many concurrent faults to measure its unavailability", s.run.label);
        }
        Phase::Active
    }

    fn restore(&mut self, i: usize, target: &dyn Target) -> Phase {
        let s = &self.slots[i];
        let Some(broker) = s.run.broker else { return Phase::Done };
        let action = Action::restore(s.spec.kind);
        tracing::warn!("fault {}: restoring broker {broker}", s.run.label);
        match target.embedded() {
            Some(controls) if self.mechanism.is_embedded() => {
                let record = mechanism::embedded(controls, &action, broker, &[], &self.clock);
                self.restored(i, record)
            }
            _ => match self.mechanism.spawn(action, broker, self.clock.clone()) {
                Ok(h) => Phase::Restoring(h),
                Err(e) => {
                    self.slots[i].run.error = Some(e.to_string());
                    Phase::Done
                }
            },
        }
    }

    fn restored(&mut self, i: usize, record: ActionRecord) -> Phase {
        let record = self.shown(record);
        if record.ok {
            self.journal_remove(i);
        }
        let s = &mut self.slots[i];
        if record.ok {
            s.run.restored_at_us = Some(((record.at_s + record.duration_s) * 1e6) as u64);
        } else {
            s.run.error =
                Some(format!("restoring after {} failed: the broker may still be down", s.spec.kind.as_str()));
        }
        s.run.actions.push(record);
        Phase::Done
    }

    /// Release a watch once every partition has been acknowledged again (so slots are reused).
    fn settle_watch(&mut self, i: usize, book: &OffsetBook) {
        let s = &mut self.slots[i];
        if let Some(slot) = s.watch {
            let result = book.watch_result(slot);
            if !result.is_empty() && result.iter().all(Option::is_some) && matches!(s.phase, Phase::Done) {
                s.run.first_acks = result;
                book.release_watch(slot);
                s.watch = None;
            }
        }
    }
}

fn failed_record(action: &str, why: &str) -> ActionRecord {
    ActionRecord { action: action.into(), ok: false, output: why.into(), ..ActionRecord::default() }
}

#[cfg(test)]
mod tests;
