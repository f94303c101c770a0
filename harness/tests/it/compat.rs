//! `fleetstorm check --compat` against the embedded cluster (issue 12 item 5): every capability
//! gets a verdict from an actual request, the mock's known gaps show as what they are (no replay
//! by time: ListOffsets by timestamp answers -1; aborted transactions visible to read_committed;
//! no CreateTopics, DescribeConfigs or DeleteRecords), and `compare` puts two matrices side by
//! side, with or without the runs' reports next to them.

use crate::common;

use std::path::Path;

use common::*;
use fleetstorm::report::schema::{Capability, CompatMatrix, Outcome, Verdict};

fn check_compat(out: &Path) -> CompatMatrix {
    let o = bin()
        .arg("check")
        .arg("--profile")
        .arg(root().join("profiles/embedded.yaml"))
        .arg("--compat")
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let m: CompatMatrix = serde_json::from_str(&std::fs::read_to_string(out.join("compat.json")).unwrap()).unwrap();
    // The terminal shows one row per capability, verdict and detail, as compat.json has them.
    let stdout = String::from_utf8_lossy(&o.stdout);
    for c in &m.cells {
        let row = stdout.lines().find(|l| l.trim_start().starts_with(c.capability.label())).unwrap_or_else(|| {
            panic!("no row for {} in:\n{stdout}", c.capability.label());
        });
        assert!(row.contains(&c.outcome.verdict().to_string()), "{row}");
        assert!(row.contains(&c.detail), "{row}");
    }
    m
}

/// `--require` turns the matrix into a readiness gate: exit 1 naming each required capability
/// that does not work (the mock's replay by time is wrong), not those that do; an unknown name is
/// invalid input before anything is tried.
#[test]
fn require_fails_the_check_on_a_capability_that_does_not_work() {
    let _g = serial();
    let o = bin()
        .arg("check")
        .arg("--profile")
        .arg(root().join("profiles/embedded.yaml"))
        .args(["--compat", "--require", "headers,replay_by_time,idempotent_produce"])
        .output()
        .unwrap();
    let said = text(&o);
    assert_eq!(o.status.code(), Some(1), "{said}");
    let failed: Vec<&str> = said.lines().skip_while(|l| !l.contains("FAIL required capabilities")).skip(1).collect();
    assert_eq!(failed.len(), 1, "{said}");
    assert!(failed[0].trim_start().starts_with("replay_by_time (wrong: "), "{said}");
    let bad = bin()
        .arg("check")
        .arg("--profile")
        .arg(root().join("profiles/embedded.yaml"))
        .args(["--compat", "--require", "headers,replay_by_tme"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(text(&bad).contains("unknown capability `replay_by_tme`; one of: all, create_topics"), "{}", text(&bad));
}

fn outcome(m: &CompatMatrix, cap: Capability) -> &Outcome {
    &m.cell(cap).unwrap_or_else(|| panic!("no cell for {cap}")).outcome
}

#[test]
fn the_embedded_matrix_is_complete_and_shows_the_mocks_gaps() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let t = std::time::Instant::now();
    let m = check_compat(dir.path());
    assert!(t.elapsed() < std::time::Duration::from_secs(30), "{:?}", t.elapsed());
    assert!(m.embedded);
    assert_eq!(
        m.cells.iter().map(|c| c.capability).collect::<Vec<_>>(),
        Capability::ALL,
        "one cell per capability, in order"
    );
    assert!(m.cells.iter().all(|c| !c.detail.is_empty()), "{:#?}", m.cells);

    // Replay by time: the mock answers ListOffsets by timestamp with -1 and no error (a FIXME in
    // rdkafka_mock_handlers.c), so the verdict is wrong, with what was seen.
    match outcome(&m, Capability::ReplayByTime) {
        Outcome::Wrong { expected, seen } => {
            assert!(expected.starts_with("offset "), "{expected}");
            assert!(seen.starts_with("-1"), "{seen}");
        }
        other => panic!("replay by time on the mock: {other:?}"),
    }
    // The mock writes no transaction markers and lists no aborted transactions.
    match outcome(&m, Capability::TransactionAbort) {
        Outcome::Wrong { expected, seen } => {
            assert_eq!((expected.as_str(), seen.as_str()), ("none visible", "5 of 5 visible"))
        }
        other => panic!("transaction abort on the mock: {other:?}"),
    }
    // It does not offer these APIs at all: refused, named.
    for cap in [
        Capability::CreateTopics,
        Capability::DescribeConfigs,
        Capability::CompactedTopic,
        Capability::LogAppendTime,
        Capability::DeleteRecords,
    ] {
        assert_eq!(outcome(&m, cap), &Outcome::Refused { code: "UnsupportedFeature".into() }, "{cap}");
    }
    // And what it does, it does (each read back and checked).
    for cap in [
        Capability::IdempotentProduce,
        Capability::TransactionCommit,
        Capability::Headers,
        Capability::CompressionNone,
        Capability::CompressionGzip,
        Capability::CompressionSnappy,
        Capability::CompressionLz4,
        Capability::CompressionZstd,
        Capability::LargeRecord,
        Capability::ClassicGroup,
        Capability::ConsumerGroupProtocol,
    ] {
        assert_eq!(
            outcome(&m, cap),
            &Outcome::Works,
            "{cap}: {}",
            m.cell(cap).map(|c| c.detail.as_str()).unwrap_or("")
        );
    }
    assert_eq!(m.codecs_built, ["gzip", "snappy", "lz4", "zstd"], "this build's librdkafka has every codec");
}

/// A second matrix as another target would give it: replay by time and the abort work there.
fn other_target(m: &CompatMatrix) -> CompatMatrix {
    let mut other = m.clone();
    other.profile = "other-kafka".into();
    other.embedded = false;
    for c in &mut other.cells {
        if matches!(c.capability, Capability::ReplayByTime | Capability::TransactionAbort) {
            c.outcome = Outcome::Works;
            c.detail = "crafted for the test".into();
        }
    }
    other
}

#[test]
fn compare_shows_two_matrices_side_by_side_with_or_without_reports() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("embedded"), dir.path().join("other"));
    let m = check_compat(&a);
    std::fs::create_dir_all(&b).unwrap();
    write(&b, "compat.json", &serde_json::to_string_pretty(&other_target(&m)).unwrap());

    // Directories holding only compat.json: the matrices alone.
    let c = fleetstorm::compare::load_dirs(&[a.clone(), b.clone()], false).unwrap();
    assert!(c.runs.is_empty());
    assert_eq!(c.matrices.len(), 2);
    let out = dir.path().join("cmp");
    let md = fleetstorm::compare::bake_off_dirs(&c, &out).unwrap();
    assert_eq!(md, std::fs::read_to_string(out.join("compare.md")).unwrap());
    assert!(md.contains("| capability | embedded (embedded) | other-kafka (other) | same |"), "{md}");
    assert!(md.contains("| replay by time (ListOffsets) | **WRONG** | works | DIFFERS |"), "{md}");
    assert!(md.contains("| record headers | works | works | yes |"), "{md}");
    assert!(md.contains("| transaction abort | **WRONG** | works | DIFFERS |"), "{md}");
    assert!(md.contains("- **replay by time (ListOffsets)**\n  - embedded (embedded): wrong: records stamped"), "{md}");
    let html = std::fs::read_to_string(out.join("compare.html")).unwrap();
    assert!(html.contains("<h2>Compatibility</h2>") && html.ends_with("</body></html>"), "{html}");

    // A directory with neither file is refused, naming both.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let e = fleetstorm::compare::load_dirs(&[a.clone(), empty], false).unwrap_err().to_string();
    assert!(e.contains("neither a run's report.json nor a check's compat.json"), "{e}");

    // Directories holding a run's report and a matrix: both, the runs first.
    let scenario =
        write(dir.path(), "s.yaml", &small_scenario("compatcmp", 20, "2s").replace("drain: 20s", "drain: 3s"));
    let run = bin().arg("run").arg(&scenario).arg("--out").arg(dir.path().join("run")).output().unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    for d in [&a, &b] {
        std::fs::copy(dir.path().join("run/report.json"), d.join("report.json")).unwrap();
    }
    let c = fleetstorm::compare::load_dirs(&[a, b], false).unwrap();
    assert_eq!((c.runs.len(), c.matrices.len()), (2, 2));
    let md = fleetstorm::compare::bake_off_dirs(&c, &dir.path().join("both")).unwrap();
    let (runs_at, compat_at) = (md.find("## Throughput").unwrap(), md.find("## Compatibility").unwrap());
    assert!(runs_at < compat_at, "{md}");
    let verdicts = |m: &CompatMatrix| m.cells.iter().map(|c| c.outcome.verdict()).collect::<Vec<Verdict>>();
    assert_ne!(verdicts(&c.matrices[0].1), verdicts(&c.matrices[1].1));
}
