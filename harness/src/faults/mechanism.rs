//! How faults reach brokers: the embedded cluster's controls, signals to local processes, or
//! shell commands. Each action returns an [`ActionRecord`] for the report, success or not.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{EmbeddedControls, FaultError, PartitionLeader};
use crate::clock::Clock;
use crate::config::profile::{CommandFaults, FaultMechanism, ProcessFaults};
use crate::config::scenario::{FaultKind, FaultSpec, Links, NetworkSpec};
use crate::report::schema::{ActionRecord, Movement};

/// One thing to do to a broker.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Action {
    Kill,
    Stop,
    Pause,
    LatencyAdd(Duration),
    NetworkApply(NetworkSpec),
    /// Stop, wipe, start empty, wait for every ISR.
    Replace,
    /// Add the broker and move partitions onto it; the throttle in bytes per second.
    ScaleOut(Option<u64>),
    /// Move partitions off the broker and stop it.
    ScaleIn(Option<u64>),
    Start,
    Resume,
    LatencyRemove,
    NetworkClear,
}

impl Action {
    /// What injects the fault `spec` describes.
    pub fn inject(spec: &FaultSpec) -> Action {
        match spec.kind {
            FaultKind::BrokerKill => Action::Kill,
            FaultKind::BrokerStop => Action::Stop,
            FaultKind::BrokerPause => Action::Pause,
            FaultKind::Latency => Action::LatencyAdd(spec.latency.map(|l| l.0).unwrap_or_default()),
            FaultKind::Network => Action::NetworkApply(spec.network.unwrap_or_default()),
            FaultKind::BrokerReplace => Action::Replace,
            FaultKind::ScaleOut => Action::ScaleOut(spec.throttle.map(|t| t.0)),
            FaultKind::ScaleIn => Action::ScaleIn(spec.throttle.map(|t| t.0)),
        }
    }

    /// What undoes it (the journal replays this for a run that died: no throttle then).
    pub fn restore(kind: FaultKind) -> Action {
        match kind {
            // A replacement that died halfway leaves the broker stopped (and empty): start it.
            FaultKind::BrokerKill | FaultKind::BrokerStop | FaultKind::BrokerReplace => Action::Start,
            FaultKind::ScaleOut => Action::ScaleIn(None),
            FaultKind::ScaleIn => Action::ScaleOut(None),
            FaultKind::BrokerPause => Action::Resume,
            FaultKind::Latency => Action::LatencyRemove,
            FaultKind::Network => Action::NetworkClear,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Action::Kill => "broker_kill",
            Action::Stop => "broker_stop",
            Action::Pause => "broker_pause",
            Action::LatencyAdd(_) => "latency_add",
            Action::NetworkApply(_) => "network_apply",
            Action::Replace => "broker_replace",
            Action::ScaleOut(_) => "scale_out",
            Action::ScaleIn(_) => "scale_in",
            Action::Start => "broker_start",
            Action::Resume => "broker_resume",
            Action::LatencyRemove => "latency_remove",
            Action::NetworkClear => "network_clear",
        }
    }
}

/// A profile's fault mechanism, with the directory its relative paths are resolved against.
#[derive(Clone, Debug)]
pub enum Mechanism {
    None,
    Embedded,
    /// `topics`: the scenario's topics, comma separated (`{topics}` in the templates).
    Process {
        spec: ProcessFaults,
        dir: PathBuf,
        topics: String,
    },
    Command {
        spec: CommandFaults,
        dir: PathBuf,
        topics: String,
    },
}

impl Mechanism {
    pub fn new(m: Option<&FaultMechanism>, dir: PathBuf) -> Mechanism {
        match m {
            None => Mechanism::None,
            Some(FaultMechanism::Embedded) => Mechanism::Embedded,
            Some(FaultMechanism::Process(spec)) => {
                Mechanism::Process { spec: spec.clone(), dir, topics: String::new() }
            }
            Some(FaultMechanism::Command(spec)) => {
                Mechanism::Command { spec: spec.clone(), dir, topics: String::new() }
            }
        }
    }

    /// The topics whose partitions scale-out and scale-in move (`{topics}`).
    pub fn moving(mut self, names: &[String]) -> Mechanism {
        if let Mechanism::Process { topics, .. } | Mechanism::Command { topics, .. } = &mut self {
            *topics = names.join(",");
        }
        self
    }

    pub fn name(&self) -> &'static str {
        match self {
            Mechanism::None => "none",
            Mechanism::Embedded => "embedded",
            Mechanism::Process { .. } => "process",
            Mechanism::Command { .. } => "command",
        }
    }

    pub fn is_embedded(&self) -> bool {
        matches!(self, Mechanism::Embedded)
    }

    /// Everything the faults need that this mechanism cannot do, as (fault index, problem).
    pub fn check(&self, faults: &[FaultSpec]) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        for (i, f) in faults.iter().enumerate() {
            let actions = [Action::inject(f), Action::restore(f.kind)];
            match self {
                Mechanism::None => out.push((
                    i,
                    "the profile declares no fault mechanism (`faults: {process: ...}` or `{command: ...}`)".into(),
                )),
                Mechanism::Embedded if f.kind.moves_data() => out.push((
                    i,
                    format!(
                        "the embedded cluster cannot do `{}`: librdkafka's mock cluster has no log directories to wipe and no partition reassignment; use a real cluster (profiles/local-kafka.yaml)",
                        f.kind.as_str()
                    ),
                )),
                Mechanism::Embedded => {
                    if let Some(n) = f.network.filter(|_| f.kind == FaultKind::Network)
                        && (n.loss.is_some()
                            || n.bandwidth.is_some()
                            || n.partition
                            || n.jitter.is_some()
                            || n.links != Links::Clients)
                    {
                        out.push((i, "the embedded cluster can only delay its clients' requests (`network: {delay: ...}`): loss, jitter, bandwidth, partitions and peer links need a real cluster".into()));
                    }
                }
                Mechanism::Process { spec, .. } => {
                    if f.kind == FaultKind::Latency {
                        out.push((i, "the `process` mechanism cannot add latency: use a `command` mechanism (e.g. tc netem) or the embedded cluster".into()));
                    }
                    if f.kind == FaultKind::Network && (spec.network_apply.is_none() || spec.network_clear.is_none()) {
                        out.push((i, "the `process` mechanism needs `network_apply` and `network_clear` commands for a network fault (scripts/kafka-cluster.sh net, in profiles/local-kafka.yaml)".into()));
                    }
                    for a in actions {
                        if process_template(spec, a).is_none()
                            && matches!(a, Action::Replace | Action::ScaleOut(_) | Action::ScaleIn(_))
                        {
                            out.push((i, format!("the `process` mechanism needs a `{}` command for `kind: {}` (scripts/kafka-cluster.sh, in profiles/local-kafka.yaml)", process_key(a), f.kind.as_str())));
                        }
                    }
                }
                Mechanism::Command { spec, .. } => {
                    for a in actions {
                        if template(spec, a).is_none() {
                            out.push((i, format!("the profile's command mechanism has no `{}` template", a.name())));
                        }
                    }
                }
            }
        }
        out
    }

    /// Perform `action` on `broker` on a worker thread.
    pub fn spawn<C: Clock + 'static>(
        &self,
        action: Action,
        broker: i32,
        clock: C,
    ) -> Result<JoinHandle<ActionRecord>, FaultError> {
        let me = self.clone();
        std::thread::Builder::new()
            .name(format!("fault-{}", action.name()))
            .spawn(move || me.perform(action, broker, &clock))
            .map_err(FaultError::Worker)
    }

    /// Perform `action` on `broker` on this thread.
    pub fn perform(&self, action: Action, broker: i32, clock: &dyn Clock) -> ActionRecord {
        let started = clock.now_us();
        let mut record = ActionRecord {
            action: action.name().into(),
            broker,
            at_s: started as f64 / 1e6,
            ..ActionRecord::default()
        };
        let result: Result<(), FaultError> = match self {
            Mechanism::None | Mechanism::Embedded => Err(FaultError::NoMechanism),
            Mechanism::Process { spec, dir, topics } => process_action(spec, dir, topics, action, broker, &mut record),
            Mechanism::Command { spec, dir, topics } => match template(spec, action) {
                Some(t) => {
                    let cmd = expand_moving(t, broker, action, topics);
                    let out = run_command(&cmd, dir, spec.timeout.0);
                    record.command = Some(cmd);
                    record.exit_code = out.exit_code;
                    record.output = out.output;
                    out.result
                }
                None => Err(FaultError::NoTemplate(action.name())),
            },
        };
        record.duration_s = clock.now_us().saturating_sub(started) as f64 / 1e6;
        if matches!(action, Action::Replace | Action::ScaleOut(_) | Action::ScaleIn(_)) {
            record.movement = Movement::parse(&record.output);
        }
        match result {
            Ok(()) => record.ok = true,
            Err(e) => {
                if record.output.is_empty() {
                    record.output = e.to_string();
                } else {
                    record.output = format!("{e}\n{}", record.output);
                }
            }
        }
        record
    }
}

fn template(spec: &CommandFaults, action: Action) -> Option<&String> {
    match action {
        Action::Kill => spec.broker_kill.as_ref(),
        Action::Stop => spec.broker_stop.as_ref(),
        Action::Pause => spec.broker_pause.as_ref(),
        Action::LatencyAdd(_) => spec.latency_add.as_ref(),
        Action::NetworkApply(_) => spec.network_apply.as_ref(),
        Action::Replace => spec.broker_replace.as_ref(),
        Action::ScaleOut(_) => spec.scale_out.as_ref(),
        Action::ScaleIn(_) => spec.scale_in.as_ref(),
        Action::Start => spec.broker_start.as_ref(),
        Action::Resume => spec.broker_resume.as_ref(),
        Action::LatencyRemove => spec.latency_remove.as_ref(),
        Action::NetworkClear => spec.network_clear.as_ref(),
    }
}

/// The process mechanism's command for the actions that are commands there too.
fn process_template(spec: &ProcessFaults, action: Action) -> Option<&String> {
    match action {
        Action::NetworkApply(_) => spec.network_apply.as_ref(),
        Action::NetworkClear => spec.network_clear.as_ref(),
        Action::Replace => spec.replace.as_ref(),
        Action::ScaleOut(_) => spec.scale_out.as_ref(),
        Action::ScaleIn(_) => spec.scale_in.as_ref(),
        _ => None,
    }
}

/// The process mechanism's key for such a command.
fn process_key(action: Action) -> &'static str {
    match action {
        Action::Replace => "replace",
        other => other.name(),
    }
}

/// [`expand`], and the movement's placeholders: `{topics}` (comma separated), `{throttle}`
/// (bytes per second, 0 for none) and `{move_args}` (`--topics T,... --throttle B`, each only
/// when set: the shape `scripts/kafka-cluster.sh scale-out N` takes).
pub fn expand_moving(t: &str, broker: i32, action: Action, topics: &str) -> String {
    let throttle = match action {
        Action::ScaleOut(t) | Action::ScaleIn(t) => t,
        _ => None,
    };
    let mut args = Vec::new();
    if !topics.is_empty() {
        args.push(format!("--topics {topics}"));
    }
    if let Some(b) = throttle {
        args.push(format!("--throttle {b}"));
    }
    expand(t, broker, action)
        .replace("{topics}", topics)
        .replace("{throttle}", &throttle.unwrap_or(0).to_string())
        .replace("{move_args}", &args.join(" "))
}

/// A template with the action's placeholders filled in.
pub fn expand(t: &str, broker: i32, action: Action) -> String {
    let latency_ms = match action {
        Action::LatencyAdd(d) => d.as_millis().to_string(),
        _ => "0".into(),
    };
    let n = match action {
        Action::NetworkApply(n) => n,
        _ => NetworkSpec::default(),
    };
    let ms = |d: Option<crate::config::units::Dur>| d.map_or(0, |d| d.0.as_millis()).to_string();
    t.replace("{broker}", &broker.to_string())
        .replace("{latency_ms}", &latency_ms)
        .replace("{network}", &n.args())
        .replace("{links}", n.links.as_str())
        .replace("{delay_ms}", &ms(n.delay))
        .replace("{jitter_ms}", &ms(n.jitter))
        .replace(
            "{loss_pct}",
            &n.loss.map_or_else(|| "0".to_string(), |l| format!("{}", (l.0 * 1000.0).round() / 10.0)),
        )
        .replace("{rate_kbps}", &n.bandwidth.map_or(0, |b| (b.0 / 1024).max(1)).to_string())
        .replace("{partition}", if n.partition { "true" } else { "false" })
}

/// Act on the embedded cluster. A kill or stop also moves the leadership of the partitions the
/// broker led to another replica, as the controller of a real cluster would; a pause is a
/// round-trip time of an hour (requests hang, connections stay open).
pub fn embedded(
    controls: &dyn EmbeddedControls,
    action: &Action,
    broker: i32,
    leaders: &[PartitionLeader],
    clock: &dyn Clock,
) -> ActionRecord {
    let started = clock.now_us();
    let result = match action {
        Action::Kill | Action::Stop => controls.broker_down(broker).and_then(|()| {
            let mut moved = 0;
            for l in leaders.iter().filter(|l| l.leader == broker) {
                if let Some(to) = l.replicas.iter().copied().find(|r| *r != broker) {
                    controls.set_leader(&l.topic, l.partition, to)?;
                    moved += 1;
                }
            }
            tracing::debug!("embedded: broker {broker} down, {moved} partition leaders moved");
            Ok(())
        }),
        Action::Start => controls.broker_up(broker),
        Action::Pause => controls.set_rtt(broker, Duration::from_secs(3600)),
        Action::LatencyAdd(d) => controls.set_rtt(broker, *d),
        Action::NetworkApply(n) => controls.set_rtt(broker, n.delay.map(|d| d.0).unwrap_or_default()),
        Action::Resume | Action::LatencyRemove | Action::NetworkClear => controls.set_rtt(broker, Duration::ZERO),
        // Refused before the run (Mechanism::check); here for a profile that skipped it.
        Action::Replace | Action::ScaleOut(_) | Action::ScaleIn(_) => Err(FaultError::NoMechanism),
    };
    ActionRecord {
        action: action.name().into(),
        broker,
        at_s: started as f64 / 1e6,
        duration_s: clock.now_us().saturating_sub(started) as f64 / 1e6,
        ok: result.is_ok(),
        output: result.err().map(|e| e.to_string()).unwrap_or_default(),
        ..ActionRecord::default()
    }
}

fn process_action(
    spec: &ProcessFaults,
    dir: &Path,
    topics: &str,
    action: Action,
    broker: i32,
    record: &mut ActionRecord,
) -> Result<(), FaultError> {
    let signal = |sig: i32| -> Result<i32, FaultError> {
        let pid = broker_pid(spec, dir, broker)?;
        // SAFETY: kill(2) with a pid read from the broker's pid file and checked to be a live
        // broker JVM; no memory is touched.
        if unsafe { libc::kill(pid, sig) } != 0 {
            return Err(FaultError::Signal { pid, signal: sig, source: std::io::Error::last_os_error() });
        }
        Ok(pid)
    };
    match action {
        Action::Kill => {
            let pid = signal(libc::SIGKILL)?;
            record.output = format!("SIGKILL sent to pid {pid}");
            wait_gone(pid, Duration::from_secs(10))
        }
        Action::Stop => {
            let pid = signal(libc::SIGTERM)?;
            record.output = format!("SIGTERM sent to pid {pid}");
            if wait_gone(pid, spec.stop_timeout.0).is_err() {
                // SAFETY: as above, same pid, still a live process.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                record.output.push_str(&format!("; still running after {}: SIGKILL", spec.stop_timeout));
                wait_gone(pid, Duration::from_secs(10))?;
            }
            Ok(())
        }
        Action::Pause => signal(libc::SIGSTOP).map(|pid| record.output = format!("SIGSTOP sent to pid {pid}")),
        Action::Resume => signal(libc::SIGCONT).map(|pid| record.output = format!("SIGCONT sent to pid {pid}")),
        Action::Start => {
            if let Ok(pid) = broker_pid(spec, dir, broker) {
                // Undoing a kill twice (a journal entry of a run that died after its restore
                // began) must not restart a broker that runs.
                record.output = format!("already running (pid {pid}): not restarted");
                return Ok(());
            }
            let cmd = expand(&spec.restart, broker, action);
            let out = run_command(&cmd, dir, spec.timeout.0);
            record.command = Some(cmd);
            record.exit_code = out.exit_code;
            record.output = out.output;
            out.result
        }
        Action::NetworkApply(_) | Action::NetworkClear | Action::Replace | Action::ScaleOut(_) | Action::ScaleIn(_) => {
            let Some(t) = process_template(spec, action) else {
                return Err(FaultError::NoTemplate(process_key(action)));
            };
            let cmd = expand_moving(t, broker, action, topics);
            let out = run_command(&cmd, dir, spec.timeout.0);
            record.command = Some(cmd);
            record.exit_code = out.exit_code;
            record.output = out.output;
            out.result
        }
        Action::LatencyAdd(_) | Action::LatencyRemove => Err(FaultError::NoLatency),
    }
}

/// The pid in the broker's pid file, if it names a live JVM.
fn broker_pid(spec: &ProcessFaults, dir: &Path, broker: i32) -> Result<i32, FaultError> {
    let file = dir.join(spec.pid_file.replace("{broker}", &broker.to_string()));
    let path = file.display().to_string();
    let text = std::fs::read_to_string(&file).map_err(|source| FaultError::PidFile { path: path.clone(), source })?;
    let pid: i32 = text.trim().parse().map_err(|_| FaultError::NotAPid { path: path.clone() })?;
    if pid <= 1 {
        return Err(FaultError::LowPid { path, pid });
    }
    if !alive(pid) {
        return Err(FaultError::NotRunning { broker, pid, path });
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if Path::new("/proc/self").exists() && !String::from_utf8_lossy(&cmdline).contains("java") {
        return Err(FaultError::NotJvm { path, pid });
    }
    Ok(pid)
}

/// Is `pid` a live (not zombie) process?
fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    if unsafe { libc::kill(pid, 0) } != 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit(')').next().map(str::trim_start).is_none_or(|s| !s.starts_with('Z')),
        Err(_) => !Path::new("/proc/self").exists(),
    }
}

fn wait_gone(pid: i32, timeout: Duration) -> Result<(), FaultError> {
    let deadline = Instant::now() + timeout;
    while alive(pid) {
        if Instant::now() > deadline {
            return Err(FaultError::StillRunning { pid, timeout });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// The outcome of a shell command.
#[derive(Debug)]
pub struct CommandOutput {
    pub result: Result<(), FaultError>,
    pub exit_code: Option<i32>,
    /// The end of stdout then stderr, at most 4000 characters.
    pub output: String,
}

/// Run `cmd` with `sh -c` in `dir`, in its own process group, killed (group and all) after
/// `timeout`.
pub fn run_command(cmd: &str, dir: &Path, timeout: Duration) -> CommandOutput {
    let spawned = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            return CommandOutput {
                result: Err(FaultError::Spawn { cmd: cmd.to_string(), dir: dir.display().to_string(), source: e }),
                exit_code: None,
                output: String::new(),
            };
        }
    };
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = reader(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = reader(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if Instant::now() > deadline => {
                // SAFETY: kill the command's own process group (it was started with pgid = pid).
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                let _ = child.wait();
                break Err(FaultError::Timeout { cmd: cmd.to_string(), timeout });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(source) => break Err(FaultError::Wait { cmd: cmd.to_string(), source }),
        }
    };
    let mut text = String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned();
    text.push_str(&String::from_utf8_lossy(&err.join().unwrap_or_default()));
    let output = tail(text.trim(), 4000);
    match status {
        Ok(s) if s.success() => CommandOutput { result: Ok(()), exit_code: s.code(), output },
        Ok(status) => CommandOutput {
            result: Err(FaultError::Exited { cmd: cmd.to_string(), status }),
            exit_code: status.code(),
            output,
        },
        Err(e) => CommandOutput { result: Err(e), exit_code: None, output },
    }
}

fn tail(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max { s.to_string() } else { s.chars().skip(n - max).collect() }
}
