//! The rule "no upward imports" (ARCHITECTURE.md, Invariants), checked on the source text.
//!
//! Data flows config → plan → drivers → recorder → report. A module may use what comes before it,
//! never what comes after: config is read by everyone and reads nobody, the plan is pure and knows
//! nothing of how it is sent, measured or reported. Inside `report/`, the files do not use each
//! other in a circle. This test reads every `crate::<module>` and `super::<file>` path in the
//! product code (test modules are left out: a test may build its fixtures from anywhere) and fails
//! on any path the rules forbid, naming the file and line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each stage's directory under `src/`, and the top-level modules it may use. `report_schema`
/// stands for `crate::report::schema`, the leaf types of report.json that the stages before the
/// report fill (it imports nothing of the crate); the rest of `report/` is out of their reach.
/// `clock` and `wire` are leaves every stage may use; the drivers implement the fault module's
/// `Target` trait, so `driver` may use `faults`, and the backbone sampler's `AdminProbe` trait, so
/// `driver` may use `backbone` (a measuring stage beside the recorder: it samples the target's
/// own metrics into report types).
const ALLOWED: &[(&str, &[&str])] = &[
    ("config", &["config"]),
    ("plan", &["config", "plan", "clock"]),
    ("recorder", &["config", "plan", "clock", "recorder", "report_schema"]),
    ("faults", &["config", "plan", "clock", "recorder", "faults", "report_schema"]),
    ("backbone", &["config", "clock", "recorder", "backbone", "report_schema"]),
    ("driver", &["config", "plan", "clock", "wire", "recorder", "faults", "backbone", "driver", "report_schema"]),
    // `run --metrics-addr`: serves the recorder's live counters, and walks a copy of the plan's
    // schedule for the planned count. Reads nothing of the drivers, the report or the config.
    ("live", &["plan", "clock", "recorder", "live"]),
    // After the report: reads finished reports, never the plan, the drivers, the faults' runtime
    // or the run; prices the merged report through `cost` (`merge --pricing`).
    ("merge", &["config", "clock", "recorder", "report", "report_schema", "merge", "cost"]),
    // After the report: prices finished reports.
    ("cost", &["config", "report", "report_schema", "cost"]),
];

/// Edges between files of `report/` that close a circle today, each to be removed by the refactor
/// that breaks it (none now: the display helpers moved to `report/fmt.rs`). The test fails when a
/// listed edge no longer exists, so this list cannot go stale.
const KNOWN_REPORT_CYCLE_EDGES: &[(&str, &str)] = &[];

/// This crate's sources, or another checkout's with `FLEETSTORM_LAYERS_SRC=/path/to/harness/src`.
fn src() -> PathBuf {
    std::env::var_os("FLEETSTORM_LAYERS_SRC")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The product code of a file, as (line number, text): without `tests.rs` files, without the
/// `#[cfg(test)] mod ...` block that ends a file, without comments.
fn product_lines(path: &Path) -> Vec<(usize, String)> {
    if path.file_name().is_some_and(|n| n == "tests.rs") {
        return Vec::new();
    }
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let end = lines
        .windows(2)
        .position(|w| w[0].trim() == "#[cfg(test)]" && w[1].trim_start().starts_with("mod "))
        .unwrap_or(lines.len());
    lines[..end]
        .iter()
        .enumerate()
        .map(|(i, l)| (i + 1, l.split("//").next().unwrap_or_default().to_string()))
        .filter(|(_, l)| !l.trim().is_empty())
        .collect()
}

/// The identifiers that follow each occurrence of `prefix` in `line` (`crate::plan::Event` gives
/// `plan` for `crate::`), including each name of a `crate::{a, b::c}` group.
fn paths_after(line: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().last();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            for item in inner.split(',') {
                let name: String = item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
            continue;
        }
        let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if !name.is_empty() {
            out.push(name);
        }
    }
    out
}

/// Every forbidden `crate::` path in the stages that have rules: "file:line: uses crate::x".
fn upward_imports(src: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for (stage, allowed) in ALLOWED {
        // A stage is its directory, and its `stage.rs` when it has one beside the directory.
        let mut files = rust_files(&src.join(stage));
        files.extend(Some(src.join(format!("{stage}.rs"))).filter(|f| f.is_file()));
        for file in files {
            for (n, line) in product_lines(&file) {
                let line = line.replace("crate::report::schema", "crate::report_schema");
                for module in paths_after(&line, "crate::") {
                    if !allowed.contains(&module.as_str()) {
                        let rel = file.strip_prefix(src).unwrap_or(&file).display().to_string();
                        out.push(format!("{rel}:{n}: {stage} uses crate::{module}"));
                    }
                }
            }
        }
    }
    out
}

/// Edges between the files of `report/` (mod.rs, the parent, is not a sibling).
fn report_edges(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let dir = src.join("report");
    let files: Vec<String> = rust_files(&dir)
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .filter(|s| s != "mod")
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for from in &files {
        for (_, line) in product_lines(&dir.join(format!("{from}.rs"))) {
            let mut to: Vec<String> = paths_after(&line, "super::");
            to.extend(paths_after(&line, "crate::report::"));
            for t in to {
                if files.contains(&t) && &t != from {
                    edges.entry(from.clone()).or_default().insert(t);
                }
            }
        }
    }
    edges
}

/// Edges that lie on a circle.
fn cycle_edges(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<(String, String)> {
    let reaches = |from: &str, to: &str| -> bool {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_string()];
        while let Some(n) = stack.pop() {
            if n == to {
                return true;
            }
            if seen.insert(n.clone()) {
                stack.extend(edges.get(&n).into_iter().flatten().cloned());
            }
        }
        false
    };
    let mut out = Vec::new();
    for (from, tos) in edges {
        for to in tos {
            if reaches(to, from) {
                out.push((from.clone(), to.clone()));
            }
        }
    }
    out
}

#[test]
fn no_stage_imports_a_later_stage() {
    let found = upward_imports(&src());
    assert!(found.is_empty(), "upward imports (see ARCHITECTURE.md, Invariants):\n{}", found.join("\n"));
}

#[test]
fn report_files_do_not_use_each_other_in_a_circle() {
    let edges = report_edges(&src());
    let known = |from: &str, to: &str| KNOWN_REPORT_CYCLE_EDGES.contains(&(from, to));
    // A circle is broken when one of its edges is known (to be removed); any other circle fails.
    let unknown: BTreeMap<String, BTreeSet<String>> =
        edges.iter().map(|(f, ts)| (f.clone(), ts.iter().filter(|t| !known(f, t)).cloned().collect())).collect();
    let circles = cycle_edges(&unknown);
    assert!(circles.is_empty(), "report/ files use each other in a circle through: {circles:?}");
    for (from, to) in KNOWN_REPORT_CYCLE_EDGES {
        assert!(
            edges.get(*from).is_some_and(|t| t.contains(*to)),
            "report/{from}.rs no longer uses report/{to}.rs: remove it from KNOWN_REPORT_CYCLE_EDGES"
        );
    }
}

#[test]
fn the_checker_sees_paths_in_use_lines_groups_and_expressions() {
    assert_eq!(paths_after("use crate::plan::IdPattern;", "crate::"), ["plan"]);
    assert_eq!(paths_after("use crate::{plan::Event, report};", "crate::"), ["plan", "report"]);
    assert_eq!(paths_after("for p in crate::report::gates::parse_all(&g, s).1 {", "crate::"), ["report"]);
    assert_eq!(paths_after("let x = mycrate::plan::f();", "crate::"), Vec::<String>::new());
    assert_eq!(paths_after("Unit::Duration => super::summary::us(v),", "super::"), ["summary"]);
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_string(), BTreeSet::from(["b".to_string()])),
        ("b".to_string(), BTreeSet::from(["c".to_string()])),
        ("c".to_string(), BTreeSet::from(["a".to_string()])),
        ("d".to_string(), BTreeSet::from(["a".to_string()])),
    ]
    .into();
    assert_eq!(cycle_edges(&edges).len(), 3, "the d -> a edge is not on the circle");
}
