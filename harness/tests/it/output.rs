//! Where a run writes, and what happens when it cannot: a run writes into its own fresh
//! directory, a report that could not be written is never an exit 0, and a signal during set-up
//! is an interrupt, not an unreachable target (issue 16, "hard endings").

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use fleetstorm::report::{Status, StopCause};

fn quick(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    write(dir, "s.yaml", &small_scenario(name, 20, "2s").replace("drain: 20s", "drain: 3s"))
}

/// Regression: `--out` into an existing directory overwrote report.json but left the previous run's
/// files, so a failing junit.xml from a gated run stayed next to a new passing report.
#[test]
fn a_non_empty_out_is_refused_and_overwrite_leaves_no_stale_file() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let scenario = quick(dir.path(), "outdir");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    write(&out, "junit.xml", "<testsuite failures=\"1\"/>");
    // A priced run's (or `fleetstorm cost`'s) files are a run's outputs too: a stale cost.json
    // would price another run in `compare`.
    write(&out, "cost.json", "{}");
    write(&out, "cost.md", "# stale");
    let o = bin().arg("run").arg(&scenario).arg("--out").arg(&out).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--overwrite"), "{}", text(&o));
    assert!(!out.join("report.json").exists(), "nothing was run");

    let o = bin().arg("run").arg(&scenario).arg("--out").arg(&out).arg("--overwrite").output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(out.join("report.json").is_file());
    assert!(!out.join("junit.xml").exists(), "the previous run's junit.xml was removed (this run has no gates)");
    assert!(
        !out.join("cost.json").exists() && !out.join("cost.md").exists(),
        "and its cost files (this run is not priced)"
    );

    // A directory holding anything fleetstorm did not write is never emptied.
    write(&out, "notes.txt", "mine");
    let o = bin().arg("run").arg(&scenario).arg("--out").arg(&out).arg("--overwrite").output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("notes.txt"), "{}", text(&o));
    assert!(out.join("notes.txt").is_file() && out.join("report.json").is_file());
}

/// Makes a directory unwritable for this process (root ignores permissions, so root uses the
/// immutable attribute) and undoes it when dropped.
struct Unwritable(std::path::PathBuf);

impl Unwritable {
    fn new(p: &std::path::Path) -> Unwritable {
        std::fs::create_dir_all(p).unwrap();
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let ok = if root {
            Command::new("chattr").arg("+i").arg(p).status().is_ok_and(|s| s.success())
        } else {
            Command::new("chmod").arg("555").arg(p).status().is_ok_and(|s| s.success())
        };
        assert!(ok, "could not make {} unwritable (chattr is in e2fsprogs)", p.display());
        Unwritable(p.to_path_buf())
    }
}

impl Drop for Unwritable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
        let _ = Command::new("chmod").arg("755").arg(&self.0).status();
    }
}

/// Regression: an existing but unwritable `--out` logged an error, printed the report path anyway
/// and exited 0 with no report.
#[test]
fn a_report_that_cannot_be_written_exits_4_and_does_not_claim_a_path() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let scenario = quick(dir.path(), "rofs");
    let out = dir.path().join("out");
    let _lock = Unwritable::new(&out);
    let o = bin().arg("run").arg(&scenario).arg("--out").arg(&out).output().unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(4), "{t}");
    assert!(t.contains("could not write"), "{t}");
    assert!(t.contains("(not written)"), "{t}");
    assert!(!out.join("report.json").exists());
}

/// Regression: a signal during the connect phase waited out the whole connect timeout (28 s of
/// 30) and the report then said "target unreachable".
#[test]
fn sigint_while_connecting_stops_at_once_and_says_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = quick(dir.path(), "sigconnect");
    // Nothing listens on port 9 of loopback.
    let profile = write(
        dir.path(),
        "p.yaml",
        "name: nowhere\nkind: kafka\nbootstrap_servers: [127.0.0.1:9]\nconnect_timeout: 60s\n",
    );
    let out = dir.path().join("out");
    let mut child =
        bin().arg("run").arg(&scenario).arg("--profile").arg(&profile).arg("--out").arg(&out).spawn().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let signalled = Instant::now();
    let status = child.wait().unwrap();
    assert!(signalled.elapsed() < Duration::from_secs(10), "took {:?} after the signal", signalled.elapsed());
    assert_eq!(status.code(), Some(130));
    let r = read_report(&out);
    assert_eq!((r.status, r.stopped_by), (Status::Aborted, Some(StopCause::Interrupted)));
    assert!(r.status_reason.as_deref().unwrap_or("").contains("interrupted"), "{:?}", r.status_reason);
}
