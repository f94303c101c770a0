//! Faults a dead run left applied (issue 15): the journal and `fleetstorm restore`, with a
//! command mechanism whose templates leave a trace on disk; and what network faults the
//! embedded cluster refuses.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::*;

fn profile(dir: &Path) -> std::path::PathBuf {
    write(
        dir,
        "p.yaml",
        "name: traced\nkind: embedded\nfaults:\n  command:\n    network_apply: echo '{network}' > applied-{broker}\n    network_clear: rm -f applied-{broker}\n    timeout: 10s\n",
    )
}

fn scenario(dir: &Path, network: &str) -> std::path::PathBuf {
    write(
        dir,
        "s.yaml",
        &format!(
            "name: traced\nseed: 3\nduration: 30s\nwarmup: 0s\ndrain: 5s\ntopics:\n  - {{name: t, partitions: 3, replication: 3}}\nfleet:\n  devices: 20\n  classes:\n    - {{name: c, topic: t, rate: 1/s, size: 200B}}\nfaults:\n  - name: cut\n    at: 1s\n    kind: network\n    broker: 2\n    restore_after: 25s\n    network: {network}\n"
        ),
    )
}

#[test]
fn restore_undoes_what_a_killed_run_left_and_only_that() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (p, s) = (profile(dir.path()), scenario(dir.path(), "{links: all, delay: 80ms, jitter: 5ms, loss: 2%}"));
    let mut child = bin()
        .env("FLEETSTORM_STATE_DIR", &state)
        .args(["-q", "run"])
        .arg(&s)
        .arg("--profile")
        .arg(&p)
        .arg("--out")
        .arg(dir.path().join("out"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let applied = dir.path().join("applied-2");
    let t0 = Instant::now();
    while !applied.exists() {
        assert!(t0.elapsed() < Duration::from_secs(30), "the fault was never applied");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The template saw the effect's arguments.
    std::thread::sleep(Duration::from_millis(200));
    let args = std::fs::read_to_string(&applied).unwrap();
    assert_eq!(args.trim(), "--links all --delay-ms 80 --jitter-ms 5 --loss-pct 2");
    // While the run lives, its entry is its own: restore leaves it alone.
    let o = bin().env("FLEETSTORM_STATE_DIR", &state).arg("restore").arg("--profile").arg(&p).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("left cut of run") && text(&o).contains("still runs"), "{}", text(&o));
    assert!(applied.exists());
    child.kill().unwrap();
    child.wait().unwrap();
    let journal = state.join("faults-traced.json");
    let entries = std::fs::read_to_string(&journal).unwrap();
    assert!(entries.contains("\"kind\": \"network\"") && entries.contains("\"broker\": 2"), "{entries}");
    assert!(applied.exists(), "nothing undid the fault of the killed run");
    let o = bin().env("FLEETSTORM_STATE_DIR", &state).arg("restore").arg("--profile").arg(&p).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("undid cut of run") && text(&o).contains("network_clear on broker 2 ok"), "{}", text(&o));
    assert!(!applied.exists());
    assert!(!journal.exists(), "the journal still lists the undone fault");
    let o = bin().env("FLEETSTORM_STATE_DIR", &state).arg("restore").arg("--profile").arg(&p).output().unwrap();
    assert!(text(&o).contains("nothing to undo"), "{}", text(&o));
}

#[test]
fn a_failed_undo_is_kept_for_the_next_try_and_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    // An entry of a process that is gone (pid 1's start time never matches 1).
    std::fs::write(
        state.join("faults-failing.json"),
        r#"[{"run_id":"00ff","fault":"f","kind":"network","broker":1,"applied_at":"2026-12-02T00:00:00Z","owner":{"pid":999999999,"start_ticks":1}}]"#,
    )
    .unwrap();
    let p = write(
        dir.path(),
        "p.yaml",
        "name: failing\nkind: embedded\nfaults:\n  command:\n    network_apply: 'true'\n    network_clear: exit 7\n",
    );
    let o = bin().env("FLEETSTORM_STATE_DIR", &state).arg("restore").arg("--profile").arg(&p).output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("could not undo f of run 00ff"), "{}", text(&o));
    assert!(state.join("faults-failing.json").exists());
}

#[test]
fn network_faults_the_target_cannot_do_are_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    // The embedded cluster can only delay.
    let s = scenario(dir.path(), "{loss: 5%}");
    let o = bin().arg("run").arg(&s).arg("--out").arg(dir.path().join("o")).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("faults[0].kind") && text(&o).contains("can only delay"), "{}", text(&o));
    // Jitter without a delay, and an empty effect, named by file, line and field.
    let s = scenario(dir.path(), "{jitter: 5ms}");
    let o = bin().arg("validate").arg(&s).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("s.yaml:") && text(&o).contains("faults[0].network.jitter"), "{}", text(&o));
    let s = scenario(dir.path(), "{links: peers}");
    let o = bin().arg("validate").arg(&s).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("say what happens"), "{}", text(&o));
}

#[test]
fn a_delay_on_the_embedded_cluster_is_a_network_fault_too() {
    let dir = tempfile::tempdir().unwrap();
    let s = scenario(dir.path(), "{delay: 200ms}").to_string_lossy().into_owned();
    let text_ = std::fs::read_to_string(&s)
        .unwrap()
        .replace("duration: 30s", "duration: 6s")
        .replace("restore_after: 25s", "restore_after: 3s");
    let s = write(dir.path(), "short.yaml", &text_);
    let out = dir.path().join("out");
    let o = bin().arg("run").arg(&s).arg("--out").arg(&out).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = read_report(&out);
    let f = &r.faults[0];
    assert_eq!((f.kind.as_str(), f.mechanism.as_str()), ("network", "embedded"));
    assert!(f.error.is_none(), "{:?}", f.error);
    assert_eq!(f.what(), "network (clients: delay 200ms)");
    assert!(f.recovery.peak_p99_us.unwrap_or(0) >= 200_000, "{:?}", f.recovery);
}
