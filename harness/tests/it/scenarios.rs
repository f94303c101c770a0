//! Every shipped scenario validates and runs: a short run of each on the embedded cluster. The
//! shapes themselves are proven in `shapes.rs`; this catches a scenario that no longer runs.

use crate::common;

use common::*;

fn shipped() -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(root().join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_shipped_scenario_starts_with_a_comment_saying_what_it_exercises() {
    for p in shipped() {
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with("# "), "{} must start with a comment", p.display());
        assert!(
            text.contains("What to look at") || text.contains("What to look at in"),
            "{}: say what to look at",
            p.display()
        );
    }
}

#[test]
fn every_shipped_scenario_runs_briefly_on_the_embedded_cluster() {
    let _g = serial();
    let scenarios = shipped();
    assert!(scenarios.len() >= 9, "{} scenarios", scenarios.len());
    for p in scenarios {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let o = bin().arg("run").arg(&p).arg("--duration").arg("8s").arg("--out").arg(&out).arg("-q").output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}: {}", p.display(), text(&o));
        let r = read_report(&out);
        assert!(r.produce.acked > 0, "{}", p.display());
        let a = &r.audit.counts;
        assert_eq!((a.lost, a.duplicates), (0, 0), "{}: {a:?}", p.display());
        for (name, g) in &r.consumers {
            assert_eq!(g.missed, 0, "{}: group {name} skipped records", p.display());
        }
    }
}
