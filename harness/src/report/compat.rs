//! The compatibility matrix for people: the terminal table of `check --compat`, its Markdown, and
//! matrices side by side for `compare`. Reads `compat.json` ([`CompatMatrix`], defined in
//! `schema.rs` so the drivers can fill it); imports nothing of the drivers.

use std::fmt::Write;
use std::path::Path;

use super::schema::{Capability, CompatCell, CompatMatrix, Verdict};
use super::table::{Cell, Table};

/// The file a check writes its matrix to.
pub const FILE: &str = "compat.json";

/// Why a `compat.json` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CompatReadError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path} is not a compatibility matrix: {source}")]
    Parse { path: String, source: serde_json::Error },
}

/// The matrix in `dir`'s `compat.json`, if there is one.
pub fn read(dir: &Path) -> Result<Option<CompatMatrix>, CompatReadError> {
    let path = dir.join(FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let show = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|source| CompatReadError::Io { path: show.clone(), source })?;
    serde_json::from_str(&text).map(Some).map_err(|source| CompatReadError::Parse { path: show, source })
}

fn verdict_cell(v: Verdict) -> Cell {
    match v {
        Verdict::Works => Cell::ok("works"),
        Verdict::Refused => Cell::bad("REFUSED"),
        Verdict::Wrong => Cell::alarm("WRONG"),
        Verdict::Unverified => Cell::plain("unverified"),
    }
}

/// `works 12, refused 4, wrong 2, unverified 0`.
pub fn tally(m: &CompatMatrix) -> String {
    let n = |v: Verdict| m.cells.iter().filter(|c| c.outcome.verdict() == v).count();
    format!(
        "works {}, refused {}, wrong {}, unverified {}",
        n(Verdict::Works),
        n(Verdict::Refused),
        n(Verdict::Wrong),
        n(Verdict::Unverified)
    )
}

fn heading(m: &CompatMatrix) -> String {
    let target = if m.embedded { "the embedded cluster".to_string() } else { m.bootstrap.clone() };
    format!(
        "compatibility of {} ({target}, {} broker(s)), librdkafka {}: {} in {:.1}s",
        m.profile,
        m.brokers.len(),
        m.librdkafka,
        tally(m),
        m.elapsed_s
    )
}

/// The terminal table: one row per capability, its verdict and the one-line detail.
pub fn text(m: &CompatMatrix) -> String {
    let mut out = heading(m);
    out.push('\n');
    let width = m.cells.iter().map(|c| c.capability.label().len()).max().unwrap_or(0);
    for c in &m.cells {
        let _ = writeln!(
            out,
            "  {:width$}  {:10}  {}",
            c.capability.label(),
            c.outcome.verdict().to_string(),
            one_line(c),
            width = width
        );
    }
    for w in &m.warnings {
        let _ = writeln!(out, "  warning  {w}");
    }
    out
}

fn one_line(c: &CompatCell) -> String {
    match &c.outcome {
        super::schema::Outcome::Refused { code } if !c.detail.contains(code.as_str()) => {
            format!("{code}: {}", c.detail)
        }
        _ => c.detail.clone(),
    }
}

/// The matrix as Markdown (`## Compatibility` and a table).
pub fn markdown(m: &CompatMatrix) -> String {
    let table = Table::of(&m.cells)
        .col("capability", |c| c.capability.label())
        .col("verdict", |c| verdict_cell(c.outcome.verdict()))
        .col("detail", |c| one_line(c))
        .done();
    let mut out = format!("{}\n\n{}", heading(m), table.markdown());
    for w in &m.warnings {
        let _ = writeln!(out, "\n> {w}");
    }
    out
}

/// Matrices side by side: one row per capability, one column per target, verdicts only; then
/// each target's details for the rows where the targets differ.
pub fn side_by_side(matrices: &[(String, CompatMatrix)]) -> Table {
    let mut rows: Vec<Capability> = Capability::ALL.to_vec();
    // A capability a newer matrix has and this build does not know is not dropped silently: it
    // cannot be, serde refuses an unknown variant when reading.
    rows.retain(|cap| matrices.iter().any(|(_, m)| m.cell(*cap).is_some()));
    let mut t = Table::of(rows).col("capability", |cap| cap.label());
    for (label, m) in matrices {
        t = t.col(label.as_str(), |cap| {
            m.cell(*cap).map_or_else(|| Cell::plain("-"), |c| verdict_cell(c.outcome.verdict()))
        });
    }
    t.col("same", |cap| {
        let verdicts: Vec<Option<Verdict>> =
            matrices.iter().map(|(_, m)| m.cell(*cap).map(|c| c.outcome.verdict())).collect();
        if verdicts.windows(2).all(|w| w[0] == w[1]) { Cell::plain("yes") } else { Cell::bad("DIFFERS") }
    })
    .done()
}

/// The capabilities whose verdicts differ between the matrices.
pub fn differences(matrices: &[(String, CompatMatrix)]) -> Vec<Capability> {
    Capability::ALL
        .into_iter()
        .filter(|cap| {
            let v: Vec<Option<Verdict>> =
                matrices.iter().map(|(_, m)| m.cell(*cap).map(|c| c.outcome.verdict())).collect();
            v.windows(2).any(|w| w[0] != w[1])
        })
        .collect()
}

/// The comparison's Markdown section: the side-by-side table, then what each target said on the
/// rows that differ.
pub fn comparison_markdown(matrices: &[(String, CompatMatrix)]) -> String {
    let mut md = String::from("## Compatibility\n\n");
    for (label, m) in matrices {
        let _ = writeln!(md, "- **{label}**: {}", heading(m));
    }
    let _ = writeln!(md, "\n{}", side_by_side(matrices).markdown());
    let diffs = differences(matrices);
    if !diffs.is_empty() {
        md.push_str("### Where they differ\n\n");
        for cap in diffs {
            let _ = writeln!(md, "- **{}**", cap.label());
            for (label, m) in matrices {
                let line = m
                    .cell(cap)
                    .map_or_else(|| "no cell".to_string(), |c| format!("{}: {}", c.outcome.verdict(), one_line(c)));
                let _ = writeln!(md, "  - {label}: {line}");
            }
        }
        md.push('\n');
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::schema::Outcome;

    fn matrix(name: &str, embedded: bool, replay: Outcome) -> CompatMatrix {
        CompatMatrix {
            schema_version: 1,
            profile: name.into(),
            embedded,
            bootstrap: "127.0.0.1:9092".into(),
            brokers: vec![1, 2, 3],
            librdkafka: "2.12.1".into(),
            codecs_built: vec!["gzip".into()],
            started: "2026-12-02T12:00:00Z".into(),
            elapsed_s: 2.5,
            probe_timeout_s: 15.0,
            cells: Capability::ALL
                .into_iter()
                .map(|capability| CompatCell {
                    capability,
                    outcome: if capability == Capability::ReplayByTime { replay.clone() } else { Outcome::Works },
                    detail: format!("{capability} detail"),
                    elapsed_ms: 3,
                })
                .collect(),
            scratch_topics: vec![],
            warnings: vec![],
        }
    }

    #[test]
    fn the_text_has_one_row_per_capability_with_its_verdict_and_detail() {
        let m = matrix("a", false, Outcome::Refused { code: "UnsupportedVersion".into() });
        let t = text(&m);
        assert_eq!(t.lines().count(), 1 + Capability::ALL.len(), "{t}");
        assert!(t.starts_with("compatibility of a (127.0.0.1:9092, 3 broker(s)), librdkafka 2.12.1: works 17, refused 1, wrong 0, unverified 0"), "{t}");
        assert!(t.contains("\n  replay by time (ListOffsets)       refused     UnsupportedVersion: replay by time (ListOffsets) detail\n"), "{t}");
    }

    #[test]
    fn side_by_side_marks_the_rows_that_differ_and_the_json_round_trips() {
        let a = matrix("kafka", false, Outcome::Works);
        let b = matrix("mock", true, Outcome::Wrong { expected: "offset 1".into(), seen: "-1".into() });
        let json = serde_json::to_string(&b).unwrap();
        assert!(json.contains(r#""verdict":"wrong","expected":"offset 1","seen":"-1""#), "{json}");
        assert_eq!(serde_json::from_str::<CompatMatrix>(&json).unwrap(), b);
        let both = vec![("kafka".to_string(), a), ("mock".to_string(), b)];
        let t = side_by_side(&both);
        assert_eq!(t.heads(), ["capability", "kafka", "mock", "same"]);
        let row = |label: &str| -> Vec<String> {
            t.rows().iter().find(|r| r[0].text() == label).unwrap().iter().map(Cell::text).collect()
        };
        assert_eq!(row("replay by time (ListOffsets)"), ["replay by time (ListOffsets)", "works", "WRONG", "DIFFERS"]);
        assert_eq!(row("record headers"), ["record headers", "works", "works", "yes"]);
        assert_eq!(differences(&both), [Capability::ReplayByTime]);
        let md = comparison_markdown(&both);
        assert!(md.contains("- mock: wrong: replay by time (ListOffsets) detail"), "{md}");
    }
}
