use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::mechanism::{Action, Mechanism, run_command};
use super::*;
use crate::clock::ManualClock;
use crate::config::profile::{CommandFaults, ProcessFaults};
use crate::config::units::Dur;

/// A target with 3 brokers whose embedded controls record every call.
#[derive(Default)]
struct Fake {
    calls: RefCell<Vec<String>>,
    leaders: Vec<PartitionLeader>,
}

impl Fake {
    fn new() -> Fake {
        let leaders = (0..6)
            .map(|p| PartitionLeader {
                topic: "t".into(),
                partition: p,
                leader: p % 3 + 1,
                replicas: vec![p % 3 + 1, (p + 1) % 3 + 1],
            })
            .collect();
        Fake { calls: RefCell::new(Vec::new()), leaders }
    }
}

impl Target for Fake {
    fn broker_ids(&self) -> Vec<i32> {
        vec![3, 1, 2]
    }
    fn leaders(&self, _topics: &[String]) -> Result<Vec<PartitionLeader>, FaultError> {
        Ok(self.leaders.clone())
    }
    fn embedded(&self) -> Option<&dyn EmbeddedControls> {
        Some(self)
    }
}

impl EmbeddedControls for Fake {
    fn broker_down(&self, b: i32) -> Result<(), FaultError> {
        self.calls.borrow_mut().push(format!("down {b}"));
        Ok(())
    }
    fn broker_up(&self, b: i32) -> Result<(), FaultError> {
        self.calls.borrow_mut().push(format!("up {b}"));
        Ok(())
    }
    fn set_rtt(&self, b: i32, rtt: Duration) -> Result<(), FaultError> {
        self.calls.borrow_mut().push(format!("rtt {b} {}ms", rtt.as_millis()));
        Ok(())
    }
    fn set_leader(&self, t: &str, p: i32, b: i32) -> Result<(), FaultError> {
        self.calls.borrow_mut().push(format!("leader {t}[{p}] -> {b}"));
        Ok(())
    }
}

fn spec(yaml: &str) -> FaultSpec {
    crate::config::yaml::from_node(&crate::config::yaml::parse(yaml).unwrap()).unwrap()
}

fn book() -> OffsetBook {
    OffsetBook::new(&[6], &[0; 6])
}

#[test]
fn an_embedded_kill_is_injected_on_time_fails_over_and_is_restored() {
    let target = Fake::new();
    let book = book();
    let clock = ManualClock::default();
    let f = spec("{at: 10s, kind: broker_kill, broker: {leader_of: {topic: t, partition: 1}}, restore_after: 20s}");
    let mut s = Scheduler::new(&[f], Some(&FaultMechanism::Embedded), ".".into(), 1, vec!["t".into()], clock.clone());
    clock.set(9_999_999);
    s.tick(&target, &book);
    assert!(target.calls.borrow().is_empty(), "not due yet");
    clock.set(10_000_000);
    s.tick(&target, &book);
    // Partition 1 is led by broker 2, like partition 4: both move to their other replica.
    assert_eq!(*target.calls.borrow(), vec!["down 2", "leader t[1] -> 3", "leader t[4] -> 3"]);
    assert_eq!(s.active(), vec!["broker_kill-1"]);
    clock.set(29_000_000);
    s.tick(&target, &book);
    assert_eq!(target.calls.borrow().len(), 3, "restore not due yet");
    clock.set(30_000_000);
    s.tick(&target, &book);
    assert_eq!(target.calls.borrow().last().unwrap(), "up 2");
    assert!(s.active().is_empty());
    let runs = s.finish(&book);
    let r = &runs[0];
    assert_eq!(r.broker, Some(2));
    assert_eq!(r.injected_at_us, Some(10_000_000));
    assert_eq!(r.restored_at_us, Some(30_000_000));
    assert_eq!(r.affected, vec![1, 4]);
    assert_eq!(r.actions.len(), 2);
    assert!(r.error.is_none());
}

#[test]
fn faults_still_active_when_the_load_ends_are_restored() {
    let target = Fake::new();
    let book = book();
    let clock = ManualClock::default();
    let faults = [spec("{at: 1s, kind: broker_pause, broker: 3}"), spec("{at: 50s, kind: broker_kill, broker: 1}")];
    let mut s =
        Scheduler::new(&faults, Some(&FaultMechanism::Embedded), ".".into(), 1, vec!["t".into()], clock.clone());
    clock.set(2_000_000);
    s.tick(&target, &book);
    s.restore_all(&target, &book);
    assert_eq!(*target.calls.borrow(), vec!["rtt 3 3600000ms", "rtt 3 0ms"]);
    let runs = s.finish(&book);
    assert!(runs[0].restored_at_us.is_some());
    assert_eq!(runs[1].error.as_deref(), Some("not injected: the load ended first"));
}

#[test]
fn random_broker_choice_follows_the_seed() {
    let pick = |seed: u64| {
        let target = Fake::new();
        let clock = ManualClock::default();
        let mut s = Scheduler::new(
            &[spec("{at: 0s, kind: latency, latency: 100ms}")],
            Some(&FaultMechanism::Embedded),
            ".".into(),
            seed,
            vec!["t".into()],
            clock,
        );
        s.tick(&target, &book());
        target.calls.into_inner()
    };
    assert_eq!(pick(7), pick(7));
    let seen: std::collections::HashSet<Vec<String>> = (0..20).map(pick).collect();
    assert!(seen.len() > 1, "different seeds pick different brokers");
    assert!(pick(7)[0].ends_with(" 100ms"));
}

#[test]
fn an_unknown_broker_is_a_fault_error_not_a_crash() {
    let target = Fake::new();
    let clock = ManualClock::default();
    let mut s = Scheduler::new(
        &[spec("{at: 0s, kind: broker_kill, broker: 9}")],
        Some(&FaultMechanism::Embedded),
        ".".into(),
        1,
        vec![],
        clock,
    );
    s.tick(&target, &book());
    let runs = s.finish(&book());
    assert!(runs[0].error.as_ref().unwrap().contains("broker 9 is not one of the target's brokers [1, 2, 3]"));
    assert!(target.calls.borrow().is_empty());
}

#[test]
fn mechanisms_say_what_they_cannot_do() {
    let process = Mechanism::new(
        Some(&FaultMechanism::Process(ProcessFaults {
            pid_file: "x/{broker}".into(),
            restart: "true {broker}".into(),
            stop_timeout: Dur::from_secs(1),
            timeout: Dur::from_secs(1),
            network_apply: None,
            network_clear: None,
            replace: None,
            scale_out: None,
            scale_in: None,
        })),
        ".".into(),
    );
    let faults = [spec("{at: 1s, kind: latency, latency: 5ms}"), spec("{at: 1s, kind: broker_kill}")];
    let problems = process.check(&faults);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].0, 0);
    let command = Mechanism::new(
        Some(&FaultMechanism::Command(CommandFaults {
            broker_kill: Some("kill {broker}".into()),
            ..CommandFaults::default()
        })),
        ".".into(),
    );
    let problems = command.check(&faults[1..]);
    assert_eq!(problems, vec![(0, "the profile's command mechanism has no `broker_start` template".to_string())]);
    assert_eq!(Mechanism::new(None, ".".into()).check(&faults[1..]).len(), 1);
}

#[test]
fn commands_report_output_and_exit_status() {
    let ok = run_command("echo hello; echo oops >&2", Path::new("/tmp"), Duration::from_secs(5));
    assert!(ok.result.is_ok());
    assert_eq!(ok.exit_code, Some(0));
    assert!(ok.output.contains("hello") && ok.output.contains("oops"));
    let bad = run_command("exit 3", Path::new("/tmp"), Duration::from_secs(5));
    assert_eq!(bad.exit_code, Some(3));
    assert!(bad.result.is_err());
}

#[test]
fn a_command_that_hangs_is_killed_at_its_timeout() {
    let started = Instant::now();
    let out = run_command("sleep 30 & sleep 30", Path::new("/tmp"), Duration::from_millis(300));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(out.result, Err(FaultError::Timeout { .. })), "{:?}", out.result);
}

#[test]
fn command_templates_get_the_broker_and_latency() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let m = Mechanism::new(
        Some(&FaultMechanism::Command(CommandFaults {
            latency_add: Some(format!("echo add {{broker}} {{latency_ms}} >> {}", log.display())),
            ..CommandFaults::default()
        })),
        dir.path().to_path_buf(),
    );
    let record =
        m.spawn(Action::LatencyAdd(Duration::from_millis(250)), 2, ManualClock::default()).unwrap().join().unwrap();
    assert!(record.ok, "{record:?}");
    assert_eq!(std::fs::read_to_string(&log).unwrap().trim(), "add 2 250");
    assert_eq!(record.command.unwrap(), format!("echo add 2 250 >> {}", log.display()));
}

/// A stand-in broker: a process whose command line says `java`, like the real JVMs.
fn fake_broker(dir: &Path) -> (std::process::Child, PathBuf) {
    let child = std::process::Command::new("bash").arg("-c").arg("exec -a java-fake-broker sleep 60").spawn().unwrap();
    let pid_file = dir.join("broker-1.pid");
    std::fs::write(&pid_file, child.id().to_string()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    (child, pid_file)
}

fn process_mechanism(dir: &Path) -> Mechanism {
    Mechanism::new(
        Some(&FaultMechanism::Process(ProcessFaults {
            pid_file: "broker-{broker}.pid".into(),
            restart: "echo restarted {broker} > restarted".into(),
            stop_timeout: Dur::from_secs(5),
            timeout: Dur::from_secs(5),
            network_apply: Some("echo apply {broker} {network} >> network".into()),
            network_clear: Some("echo clear {broker} >> network".into()),
            replace: Some(
                "echo replace {broker}; echo fleetstorm: completed_s=1.5 bytes_moved=2048 bytes_source=log-dirs".into(),
            ),
            scale_out: Some("echo scale-out {broker} {move_args} >> moves".into()),
            scale_in: Some("echo scale-in {broker} {move_args} >> moves".into()),
        })),
        dir.to_path_buf(),
    )
}

#[test]
fn the_process_mechanism_kills_pauses_and_restarts_by_pid_file() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, _) = fake_broker(dir.path());
    let m = process_mechanism(dir.path());
    let run = |a| m.spawn(a, 1, ManualClock::default()).unwrap().join().unwrap();
    let paused = run(Action::Pause);
    assert!(paused.ok, "{paused:?}");
    // A signal is delivered asynchronously: on a loaded machine the process may still show as
    // running just after kill(2) returned (regression: CI 2026-11-28, state R read at once).
    let stat = || std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap();
    let stopped = |s: &str| s.rsplit(')').next().unwrap().trim_start().starts_with('T');
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !stopped(&stat()) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let state = stat();
    assert!(stopped(&state), "{state}");
    assert!(run(Action::Resume).ok);
    let killed = run(Action::Kill);
    assert!(killed.ok, "{killed:?}");
    assert!(child.wait().unwrap().code().is_none(), "ended by a signal");
    let restarted = run(Action::Start);
    assert!(restarted.ok);
    assert_eq!(std::fs::read_to_string(dir.path().join("restarted")).unwrap().trim(), "restarted 1");
}

#[test]
fn the_process_mechanism_refuses_a_pid_that_is_not_a_broker() {
    let dir = tempfile::tempdir().unwrap();
    let mut other = std::process::Command::new("sleep").arg("60").spawn().unwrap();
    std::fs::write(dir.path().join("broker-1.pid"), other.id().to_string()).unwrap();
    let record = process_mechanism(dir.path()).spawn(Action::Kill, 1, ManualClock::default()).unwrap().join().unwrap();
    assert!(!record.ok);
    assert!(record.output.contains("is not a JVM"), "{}", record.output);
    assert!(other.try_wait().unwrap().is_none(), "the unrelated process is untouched");
    other.kill().unwrap();
    let _ = other.wait();
}

#[test]
fn movements_are_commands_whose_measurements_reach_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let m = process_mechanism(dir.path()).moving(&["a".to_string(), "b".to_string()]);
    let run = |a| m.spawn(a, 4, ManualClock::default()).unwrap().join().unwrap();
    let replaced = run(Action::Replace);
    assert!(replaced.ok, "{replaced:?}");
    assert_eq!(replaced.action, "broker_replace");
    let moved = replaced.movement.expect("a movement");
    assert_eq!((moved.completed_s, moved.bytes_moved), (1.5, Some(2048)));
    assert_eq!(moved.bytes_source, crate::report::schema::BytesSource::LogDirs);
    let out = run(Action::ScaleOut(Some(1_048_576)));
    assert!(out.ok && out.movement.is_none(), "no measurement printed: none invented ({out:?})");
    assert!(run(Action::ScaleIn(None)).ok);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("moves")).unwrap(),
        "scale-out 4 --topics a,b --throttle 1048576\nscale-in 4 --topics a,b\n"
    );
    // What undoes each: a replacement that died halfway is started; scale-out and -in undo each other.
    assert_eq!(Action::restore(FaultKind::BrokerReplace), Action::Start);
    assert_eq!(Action::restore(FaultKind::ScaleOut), Action::ScaleIn(None));
    assert_eq!(Action::restore(FaultKind::ScaleIn), Action::ScaleOut(None));
}

#[test]
fn a_movement_line_is_parsed_and_never_invented() {
    use crate::report::schema::{BytesSource, Movement};
    let m = Movement::parse("noise\nfleetstorm: completed_s=3.88 bytes_moved=28383140 bytes_source=metrics\n").unwrap();
    assert_eq!((m.completed_s, m.bytes_moved, m.bytes_source), (3.88, Some(28_383_140), BytesSource::Metrics));
    assert_eq!(m.to_string(), "3.9 s, 28.4 MB (metrics)");
    let unmeasured = Movement::parse("fleetstorm: completed_s=2 bytes_moved=5").unwrap();
    assert_eq!((unmeasured.bytes_moved, unmeasured.bytes_source), (None, BytesSource::Unverified));
    assert_eq!(Movement::parse("fleetstorm: bytes_moved=5 bytes_source=metrics"), None);
    assert_eq!(Movement::parse("nothing here"), None);
}

#[test]
fn the_embedded_cluster_and_a_bare_process_mechanism_refuse_movements() {
    let faults = [
        spec("{at: 1s, kind: broker_replace, broker: 1}"),
        spec("{at: 1s, kind: scale_out, broker: 4, throttle: 1MiB}"),
        spec("{at: 1s, kind: scale_in, broker: 3}"),
    ];
    let embedded = Mechanism::new(Some(&FaultMechanism::Embedded), ".".into()).check(&faults);
    assert_eq!(embedded.iter().map(|p| p.0).collect::<Vec<_>>(), [0, 1, 2]);
    assert!(embedded[0].1.contains("cannot do `broker_replace`"), "{embedded:?}");
    let bare = Mechanism::new(
        Some(&FaultMechanism::Process(ProcessFaults {
            pid_file: "x/{broker}".into(),
            restart: "true {broker}".into(),
            stop_timeout: Dur::from_secs(1),
            timeout: Dur::from_secs(1),
            network_apply: None,
            network_clear: None,
            replace: None,
            scale_out: None,
            scale_in: None,
        })),
        ".".into(),
    );
    let problems = bare.check(&faults);
    // scale_out and scale_in each need both commands (one undoes the other).
    assert_eq!(problems.len(), 5, "{problems:?}");
    assert!(problems[0].1.contains("needs a `replace` command"), "{problems:?}");
    assert_eq!(process_mechanism(Path::new(".")).check(&faults), vec![]);
}

#[test]
fn a_scale_out_adds_a_broker_the_target_does_not_have_yet() {
    let dir = tempfile::tempdir().unwrap();
    let target = Fake::new();
    let book = book();
    let clock = ManualClock::default();
    let f = spec("{at: 1s, kind: scale_out, broker: 4}");
    let mech = FaultMechanism::Command(CommandFaults {
        scale_out: Some("echo fleetstorm: completed_s=2.5 bytes_moved=10 bytes_source=metrics".into()),
        scale_in: Some("true".into()),
        ..CommandFaults::default()
    });
    let mut s = Scheduler::new(&[f], Some(&mech), dir.path().to_path_buf(), 1, vec!["t".into()], clock.clone());
    clock.set(1_000_000);
    s.tick(&target, &book);
    s.restore_all(&target, &book);
    let runs = s.finish(&book);
    assert_eq!(runs[0].broker, Some(4), "{:?}", runs[0].error);
    assert!(runs[0].error.is_none(), "{:?}", runs[0].error);
    // It counts from the start of the movement, not its end.
    assert_eq!(runs[0].injected_at_us, Some(1_000_000));
    let actions: Vec<&str> = runs[0].actions.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(actions, ["scale_out", "scale_in"]);
    assert_eq!(runs[0].actions[0].movement.map(|m| m.completed_s), Some(2.5));
}
