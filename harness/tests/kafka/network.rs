//! Network faults on the real cluster (issue 15): the cluster runs with `start --network`
//! (Toxiproxy in front of every broker's clients and peers, iptables for loss and partitions),
//! and faults a dead run left applied are undone by the next run or `fleetstorm restore`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{read_report, text, unique, write};
use crate::common;

fn script() -> PathBuf {
    common::root().join("scripts/kafka-cluster.sh")
}

fn local_profile() -> PathBuf {
    common::root().join("profiles/local-kafka.yaml")
}

/// The iptables rules of node `n`'s network fault, if any.
fn chain_rules(n: i32) -> Option<String> {
    let base = std::env::var("FLEETSTORM_KAFKA_BASE_PORT").unwrap_or_else(|_| "19092".into());
    let o = Command::new("iptables").args(["-S", &format!("FLEETSTORM-{base}-{n}")]).output().ok()?;
    o.status.success().then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

/// The toxics on proxy `name` (`client-2`), as Toxiproxy's API lists them.
fn toxics(name: &str) -> String {
    let base: u16 = std::env::var("FLEETSTORM_KAFKA_BASE_PORT").ok().and_then(|b| b.parse().ok()).unwrap_or(19092);
    let o = Command::new("curl")
        .args(["-sS", "-m", "5", &format!("http://127.0.0.1:{}/proxies/{name}/toxics", base + 90)])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Broker `n`'s JVM state letter from /proc (`T` when stopped by SIGSTOP).
fn broker_state(n: i32) -> char {
    let pid = std::fs::read_to_string(common::root().join(format!(".kafka/cluster/node-{n}/kafka.pid"))).unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap();
    stat.rsplit_once(')').unwrap().1.trim_start().chars().next().unwrap()
}

fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < timeout, "{what} did not happen within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn faulty_scenario(dir: &Path, name: &str, fault: &str) -> PathBuf {
    write(
        dir,
        "s.yaml",
        &format!(
            "name: {name}\nseed: 7\nduration: 40s\nwarmup: 1s\ndrain: 10s\ntopics:\n  - {{name: {name}.t, partitions: 6, replication: 3}}\nfleet:\n  devices: 200\n  classes:\n    - {{name: c, topic: {name}.t, rate: 1/s, size: 200B}}\nproducer: {{acks: all}}\nfaults:\n  - {{name: left, at: 2s, broker: 2, restore_after: 30s, {fault}}}\n"
        ),
    )
}

/// Every network effect under load, acks=all, one after the other (scenarios/network-faults.yaml):
/// each applied and undone by the mechanism, a clean audit overall and per fault, the recovery
/// metrics in report.json and the summary, and nothing left on the links afterwards.
#[test]
fn network_faults_under_load_lose_nothing_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = common::bin()
        .env("FLEETSTORM_STATE_DIR", dir.path().join("state"))
        .arg("run")
        .arg(common::root().join("scenarios/network-faults.yaml"))
        .arg("--profile")
        .arg(local_profile())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = read_report(&out);
    let a = &r.audit.counts;
    assert!(r.audit.complete, "{a:?}");
    assert_eq!((a.lost, a.duplicates), (0, 0), "{a:?}");
    let names: Vec<&str> = r.faults.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["slow-link", "lossy-link", "thin-link", "peer-cut"]);
    let expect = ["--delay-ms 150 --jitter-ms 50", "--loss-pct 5", "--rate-kbps 256", "--links peers --partition"];
    for (f, arg) in r.faults.iter().zip(expect) {
        assert_eq!((f.kind.as_str(), f.mechanism.as_str()), ("network", "process"), "{}", f.name);
        assert!(f.error.is_none(), "{}: {:?}", f.name, f.error);
        assert!(f.started_s.is_some() && f.ended_s.is_some(), "{}", f.name);
        let applied = f.actions.iter().find(|x| x.action == "network_apply").expect("an apply");
        assert!(applied.ok && applied.command.as_deref().unwrap_or_default().contains(arg), "{}: {applied:?}", f.name);
        assert!(f.actions.iter().any(|x| x.action == "network_clear" && x.ok), "{}: {:?}", f.name, f.actions);
        assert_eq!(f.audit.lost, 0, "{}", f.name);
        assert!(f.recovery.baseline_p99_us.is_some(), "{}: {:?}", f.name, f.recovery);
        eprintln!(
            "{}: unavailable {:?} s, p99 {:?} -> peak {:?} us, recovered {:?} s, dip {:.0}%",
            f.name,
            f.unavailable.affected_partitions_s,
            f.recovery.baseline_p99_us,
            f.recovery.peak_p99_us,
            f.recovery.recovered_s,
            f.throughput.dip_pct
        );
    }
    // The delay was real: some acknowledgement during it waited at least the added round trip.
    assert!(r.faults[0].recovery.peak_p99_us.unwrap_or(0) >= 150_000, "{:?}", r.faults[0].recovery);
    // A partition from the peers stalls acks=all on the partitions the broker leads.
    assert!(r.faults[3].unavailable.affected_partitions_s.unwrap_or(0.0) > 1.0, "{:?}", r.faults[3].unavailable);
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("network (clients: delay 150ms ±50ms)"), "{summary}");
    assert!(summary.contains("network (peers: partitioned)"), "{summary}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("network (clients: loss 5%)"));
    for n in 1..=3 {
        assert_eq!(chain_rules(n), None, "node {n}'s rules left in place");
        assert_eq!(toxics(&format!("client-{n}")).trim(), "[]", "node {n}'s toxics left in place");
    }
}

/// SIGKILL fleetstorm while a broker is paused: it stays paused (nothing in the dead process can
/// resume it); `fleetstorm restore` finds it in the journal and resumes it.
#[test]
fn a_broker_paused_by_a_killed_run_is_resumed_by_restore() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let scenario = faulty_scenario(dir.path(), &unique("killpause"), "kind: broker_pause");
    let mut child = common::bin()
        .env("FLEETSTORM_STATE_DIR", &state)
        .args(["-q", "run"])
        .arg(&scenario)
        .arg("--profile")
        .arg(local_profile())
        .arg("--out")
        .arg(dir.path().join("out"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("broker 2 paused", Duration::from_secs(60), || broker_state(2) == 'T');
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(broker_state(2), 'T', "the killed run's pause is still in place");
    let o = common::bin()
        .env("FLEETSTORM_STATE_DIR", &state)
        .arg("restore")
        .arg("--profile")
        .arg(local_profile())
        .output()
        .unwrap();
    let said = text(&o);
    assert_eq!(o.status.code(), Some(0), "{said}");
    assert!(said.contains("undid left of run") && said.contains("broker_resume on broker 2 ok"), "{said}");
    assert_ne!(broker_state(2), 'T');
    // Nothing left: a second restore has nothing to do.
    let again = common::bin()
        .env("FLEETSTORM_STATE_DIR", &state)
        .arg("restore")
        .arg("--profile")
        .arg(local_profile())
        .output()
        .unwrap();
    assert!(text(&again).contains("nothing to undo"), "{}", text(&again));
    let w = Command::new(script()).args(["wait", "2"]).output().unwrap();
    assert!(w.status.success(), "{}", text(&w));
}

/// SIGKILL fleetstorm while a broker is partitioned from its clients: the rules stay; the next
/// run with the same profile undoes them before it starts, and says so in its report.
#[test]
fn a_partition_left_by_a_killed_run_is_undone_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let scenario = faulty_scenario(dir.path(), &unique("killnet"), "kind: network, network: {partition: true}");
    let mut child = common::bin()
        .env("FLEETSTORM_STATE_DIR", &state)
        .args(["-q", "run"])
        .arg(&scenario)
        .arg("--profile")
        .arg(local_profile())
        .arg("--out")
        .arg(dir.path().join("out"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("broker 2 partitioned", Duration::from_secs(60), || chain_rules(2).is_some_and(|r| r.contains("DROP")));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(chain_rules(2).is_some(), "the killed run's partition is still in place");
    let next = write(dir.path(), "next.yaml", &common::small_scenario(&unique("afterkill"), 50, "3s"));
    let out = dir.path().join("next");
    let o = common::bin()
        .env("FLEETSTORM_STATE_DIR", &state)
        .arg("run")
        .arg(&next)
        .arg("--profile")
        .arg(local_profile())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(chain_rules(2), None, "the next run did not undo the partition");
    let r = read_report(&out);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("faults left by an earlier run: undid left")
                && w.contains("network_clear on broker 2 ok")),
        "{:?}",
        r.warnings
    );
    assert_eq!(r.audit.counts.lost, 0);
}
