//! What the run's thread watches while the load goes on: a lost target (no acknowledgement for
//! the scenario's `target_timeout`), gates with `abort_on_fail`, and the progress line.

use std::sync::atomic::Ordering;

use crate::config::scenario::Scenario;
use crate::driver::ClientEvents;
use crate::driver::launch::Drivers;
use crate::plan::Plan;
use crate::report::gates::{Judge, Live};
use crate::report::{StopCause, fmt};

/// The watch's state between ticks.
pub struct Watch<'a> {
    scenario: &'a Scenario,
    live_gates: Vec<&'a Judge>,
    max_lag: Vec<u64>,
    next_gate_check: u64,
    last_acked: u64,
    last_change: u64,
    next_progress: u64,
}

impl<'a> Watch<'a> {
    pub fn new(scenario: &'a Scenario, gates: &'a [Judge]) -> Self {
        Watch {
            scenario,
            live_gates: gates.iter().filter(|g| g.spec.abort_on_fail).collect(),
            max_lag: vec![0; scenario.consumers.len()],
            next_gate_check: 1_000_000,
            last_acked: 0,
            last_change: 0,
            next_progress: 1_000_000,
        }
    }

    /// A reason to stop the load now, and until when to keep draining.
    pub fn tick(&mut self, now: u64, d: &Drivers, events: &ClientEvents) -> Option<(StopCause, String, u64)> {
        let book = &d.shared.book;
        let acked: u64 = book.acked_per_partition().iter().map(|(_, c)| c).sum();
        if acked != self.last_acked {
            self.last_acked = acked;
            self.last_change = now;
        } else if now.saturating_sub(self.last_change) > self.scenario.target_timeout.as_micros() {
            let reason = format!("target lost: no acknowledgement for {}", self.scenario.target_timeout);
            return Some((StopCause::TargetLost, reason, now));
        }
        if self.live_gates.is_empty() || now < self.next_gate_check {
            return None;
        }
        self.next_gate_check += 1_000_000;
        for (i, r) in d.group_readers.iter().enumerate() {
            self.max_lag[i] = self.max_lag[i].max(book.lag(*r));
        }
        let c = &d.live;
        let live = Live {
            max_lag: self.scenario.consumers.iter().map(|g| g.name.clone()).zip(self.max_lag.iter().copied()).collect(),
            failed: c.failed.load(Ordering::Relaxed),
            backpressure: c.backpressure.load(Ordering::Relaxed),
            errors: c
                .errors
                .lock()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), *v)).chain(events.errors()).collect())
                .unwrap_or_default(),
        };
        let failed = self.live_gates.iter().filter_map(|g| g.evaluate_live(&live)).find(|r| !r.passed)?;
        let reason = format!("gate `{}` failed during the run ({})", failed.gate, failed.value);
        Some((StopCause::Gate, reason, now + 5_000_000))
    }

    /// The progress line, once a second.
    pub fn progress(&mut self, now: u64, plan: &Plan, d: &Drivers, active: &[String]) -> Option<String> {
        if now < self.next_progress {
            return None;
        }
        self.next_progress = (now / 1_000_000 + 1) * 1_000_000;
        let lags: Vec<String> = self
            .scenario
            .consumers
            .iter()
            .zip(&d.group_readers)
            .map(|(g, r)| format!("{}={}", g.name, fmt::count(d.shared.book.lag(*r))))
            .collect();
        Some(format!(
            "[{:>4}s/{}s] {}  acked {}/s  p99 {}  lag {}{}",
            now / 1_000_000,
            self.scenario.duration.0.as_secs(),
            if now < plan.warmup_us { "warm-up" } else { "load" },
            fmt::count(d.live.last_acked.load(Ordering::Relaxed)),
            fmt::us(d.live.last_p99_us.load(Ordering::Relaxed)),
            if lags.is_empty() { "-".into() } else { lags.join(" ") },
            if active.is_empty() { String::new() } else { format!("  faults {}", active.join(",")) }
        ))
    }
}
