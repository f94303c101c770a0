//! report.json keeps its shape across refactors: a short embedded run of a scenario that touches
//! every section (firmware, a wave, a broker kill, dead letters, a slowdown, a replay, a restart,
//! gates) must produce exactly the field paths in `fixtures/report-structure.txt`, captured from
//! the code before the run-loop redesign (issue 9). A field added, renamed or lost fails here; if
//! the change is intended, regenerate the file with `FLEETSTORM_BLESS=1` and say so in the
//! report changelog (README, "Report schema changes").

use crate::common;

use std::collections::BTreeSet;

use serde_json::Value;

/// Maps whose keys are data that varies from run to run (error kinds, the partitions a killed
/// broker happened to lead): their keys are not part of the shape.
fn data_keyed(path: &str) -> bool {
    path.ends_with("errors") || path.ends_with(".partitions") || path.ends_with(".topics")
}

fn paths(v: &Value, path: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) if !data_keyed(path) => {
            for (k, x) in m {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                out.insert(p.clone());
                paths(x, &p, out);
            }
        }
        Value::Array(items) => {
            for x in items {
                paths(x, &format!("{path}[]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn report_structure_is_unchanged_by_the_run_loop_redesign() {
    let _serial = common::serial();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let scenario = common::root().join("harness/tests/fixtures/structure.yaml");
    let o = common::bin().args(["run", "--quiet"]).arg(&scenario).arg("--out").arg(&out).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", common::text(&o));
    let json: Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let mut have = BTreeSet::new();
    paths(&json, "", &mut have);
    let fixture = common::root().join("harness/tests/fixtures/report-structure.txt");
    if std::env::var_os("FLEETSTORM_BLESS").is_some() {
        std::fs::write(&fixture, have.iter().map(|p| format!("{p}\n")).collect::<String>()).unwrap();
        return;
    }
    let want: BTreeSet<String> = std::fs::read_to_string(&fixture).unwrap().lines().map(str::to_string).collect();
    let lost: Vec<&String> = want.difference(&have).collect();
    let added: Vec<&String> = have.difference(&want).collect();
    assert!(lost.is_empty() && added.is_empty(), "report.json changed shape: lost {lost:?}, added {added:?}");
}
