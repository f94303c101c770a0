//! The harness watching itself: its own CPU and memory, and the host's CPU, once a second. A load
//! generator that runs out of CPU produces results that blame the target for its own limits, so
//! every report says whether that happened, and whose threads used the CPU: fleetstorm's own
//! (schedule, encoding, recording) or librdkafka's (the Kafka client's I/O threads, and the
//! embedded cluster when it runs in-process).

use std::time::Instant;

use crate::report::schema::HarnessPoint;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

pub struct Monitor {
    sys: System,
    pid: Pid,
    threads: Option<ThreadTicks>,
}

impl Monitor {
    pub fn new() -> Option<Monitor> {
        let sys = System::new().ok()?;
        let mut m = Monitor { sys, pid: Pid::from_u32(std::process::id()), threads: ThreadTicks::new() };
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
        HarnessPoint {
            cpu_pct: cpu,
            librdkafka_cpu_pct: self.threads.as_mut().and_then(ThreadTicks::sample),
            rss_mib: rss as f32 / 1048576.0,
            host_cpu_pct: self.sys.global_cpu_usage(),
        }
    }
}

/// CPU ticks of librdkafka's threads, from `/proc/self/task/*/stat`, as a difference between
/// samples. Threads that ended between two samples take their last ticks with them, so the
/// figure errs low, never high.
struct ThreadTicks {
    per_sec: f64,
    last: Option<(Instant, u64)>,
}

impl ThreadTicks {
    fn new() -> Option<ThreadTicks> {
        // SAFETY: sysconf has no preconditions; it only reads a system constant.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if hz <= 0 || std::fs::metadata("/proc/self/task").is_err() {
            return None;
        }
        let mut t = ThreadTicks { per_sec: hz as f64, last: None };
        t.sample();
        Some(t)
    }

    fn sample(&mut self) -> Option<f32> {
        let now = Instant::now();
        let ticks = rdk_ticks()?;
        let pct = self.last.map(|(at, before)| {
            let secs = now.duration_since(at).as_secs_f64().max(1e-3);
            (ticks.saturating_sub(before) as f64 / self.per_sec / secs * 100.0) as f32
        });
        self.last = Some((now, ticks));
        pct
    }
}

/// User plus system ticks of this process's threads whose name starts with `rdk:`.
fn rdk_ticks() -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        if let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) {
            total += rdk_thread_ticks(&stat).unwrap_or(0);
        }
    }
    Some(total)
}

/// Ticks of one thread from its `stat` line when it is a librdkafka thread. The name sits in
/// parentheses and may itself hold spaces or parentheses, so fields are counted after the last `)`.
fn rdk_thread_ticks(stat: &str) -> Option<u64> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    if !stat.get(open + 1..close)?.starts_with("rdk:") {
        return None;
    }
    // After the name: state(3) ppid(4) ... utime(14) stime(15), i.e. the 12th and 13th fields.
    let mut fields = stat.get(close + 1..)?.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Cores this process may run on (respects CPU affinity, e.g. `taskset`).
/// The machine's one-minute load average (`/proc/loadavg`); NaN when it cannot be read.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_librdkafka_thread_stat_line_gives_its_ticks() {
        let line = "4242 (rdk:broker1) S 1 4240 4240 0 -1 4194368 120 0 0 0 37 5 0 0 20 0 30 0 900 1 2";
        assert_eq!(rdk_thread_ticks(line), Some(42));
    }

    #[test]
    fn other_threads_and_odd_names_are_not_counted_as_librdkafka() {
        let ours = "4243 (producer-0) R 1 4240 4240 0 -1 4194368 120 0 0 0 900 100 0 0 20 0 30 0 900 1 2";
        assert_eq!(rdk_thread_ticks(ours), None);
        let odd = "4244 (rdk:a) b) S 1 4240 4240 0 -1 4194368 120 0 0 0 7 1 0 0 20 0 30 0 900 1 2";
        assert_eq!(rdk_thread_ticks(odd), Some(8));
    }

    #[test]
    fn this_process_has_readable_thread_ticks_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(rdk_ticks().is_some());
        }
    }
}
