//! The harness watching itself: its own CPU and memory, and the host's CPU, once a second. A load
//! generator that runs out of CPU produces results that blame the target for its own limits, so
//! every report says whether that happened.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// One second of the harness's own resource use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HarnessPoint {
    /// fleetstorm's CPU use, in percent of one core (200 = two cores busy). With the embedded
    /// cluster this includes the cluster, which runs in the same process.
    pub cpu_pct: f32,
    /// fleetstorm's resident memory, MiB.
    pub rss_mib: f32,
    /// The whole machine's CPU use, percent of all cores.
    pub host_cpu_pct: f32,
}

pub struct Monitor {
    sys: System,
    pid: Pid,
}

impl Monitor {
    pub fn new() -> Option<Monitor> {
        let sys = System::new().ok()?;
        let mut m = Monitor { sys, pid: Pid::from_u32(std::process::id()) };
        // CPU use is a difference between two samples: take the first now.
        m.sample();
        Some(m)
    }

    pub fn sample(&mut self) -> HarnessPoint {
        self.sys.refresh_cpu_usage();
        self.sys.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[self.pid]),
            false,
            ProcessRefreshKind::nothing().with_cpu().with_memory(),
        );
        let (cpu, rss) = self.sys.process(self.pid).map_or((0.0, 0), |p| (p.cpu_usage(), p.memory()));
        HarnessPoint { cpu_pct: cpu, rss_mib: rss as f32 / 1048576.0, host_cpu_pct: self.sys.global_cpu_usage() }
    }
}

/// Cores this process may run on (respects CPU affinity, e.g. `taskset`).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}
