//! Events planned so far: a copy of the shard's schedule, walked up to the clock once a second.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::clock::Clock;
use crate::plan::Plan;
use crate::recorder::Start;

/// The thread walking the schedule; stops when dropped.
pub struct Walker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Walker {
    /// Count into `planned` the events of `plan` whose intended time has come, once a second
    /// from the moment `start` is set, until the schedule ends or the walker is dropped.
    pub fn start(plan: Arc<Plan>, start: Start, planned: Arc<AtomicU64>) -> std::io::Result<Walker> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new().name("live-planned".into()).spawn(move || {
            walk(&plan, &start, &planned, &stopped);
        })?;
        Ok(Walker { stop, thread: Some(thread) })
    }
}

impl Drop for Walker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn walk(plan: &Plan, start: &Start, planned: &AtomicU64, stop: &AtomicBool) {
    let mut schedule = plan.schedule(0, 1);
    let mut count = 0u64;
    let mut next_us = 0u64;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        let Some(clock) = start.get() else { continue };
        let now = clock.now_us();
        if now < next_us {
            continue;
        }
        next_us = now + 1_000_000;
        // The pacer sends events intended before the load's end, each once its time has come.
        let until = now.min(plan.duration_us.saturating_sub(1));
        while schedule.peek_time().is_some_and(|t| t <= until) {
            if schedule.next().is_none() {
                break;
            }
            count += 1;
            // Stay responsive to the end of the run on a long backlog.
            if count % 65_536 == 0 && stop.load(Ordering::Relaxed) {
                return;
            }
        }
        planned.store(count, Ordering::Relaxed);
        if schedule.peek_time().is_none() || now >= plan.duration_us {
            return;
        }
    }
}
