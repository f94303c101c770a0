//! Why a report could not be read or its derived files written.
//!
//! Each message carries its cause (callers print them with `{e}` as well as `{e:#}`), so the
//! cause is a plain field, not also a `source()` that `{e:#}` would print a second time.

use std::path::PathBuf;

use super::charts::ChartError;

/// Why `report.json` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {}: {cause}", path.display())]
    Io { path: PathBuf, cause: std::io::Error },
    #[error("{}: not JSON: {cause}", path.display())]
    NotJson { path: PathBuf, cause: serde_json::Error },
    #[error("{}: schema version {found}, this fleetstorm reads {reads}", path.display())]
    SchemaVersion { path: PathBuf, found: u64, reads: u32 },
    #[error("{}: not a fleetstorm report (no schema_version)", path.display())]
    NotAReport { path: PathBuf },
    #[error("{}: {cause}", path.display())]
    Invalid { path: PathBuf, cause: serde_json::Error },
}

/// Why the files drawn from a report (summary, charts, HTML, JUnit) could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot write {}: {cause}", path.display())]
    Io { path: PathBuf, cause: std::io::Error },
    #[error(transparent)]
    Chart(#[from] ChartError),
}

#[cfg(test)]
mod tests {
    use crate::report::{Report, SCHEMA_VERSION, fixture};

    fn read_error(json: Option<&str>) -> String {
        let dir = tempfile::tempdir().unwrap();
        if let Some(json) = json {
            std::fs::write(dir.path().join("report.json"), json).unwrap();
        }
        let e = Report::read(dir.path()).unwrap_err().to_string();
        e.replace(&dir.path().display().to_string(), "DIR")
    }

    #[test]
    fn read_errors_say_which_file_and_what_is_wrong_with_it() {
        assert!(read_error(None).starts_with("cannot read DIR/report.json: "), "{}", read_error(None));
        assert!(read_error(Some("{")).starts_with("DIR/report.json: not JSON: "));
        assert_eq!(read_error(Some("{}")), "DIR/report.json: not a fleetstorm report (no schema_version)");
        assert_eq!(
            read_error(Some(r#"{"schema_version": 99}"#)),
            format!("DIR/report.json: schema version 99, this fleetstorm reads {SCHEMA_VERSION}")
        );
        let invalid = read_error(Some(&format!(r#"{{"schema_version": {SCHEMA_VERSION}}}"#)));
        assert!(invalid.starts_with("DIR/report.json: missing field"), "{invalid}");
    }

    #[test]
    fn a_written_report_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let r = fixture::report("embedded");
        r.write(dir.path()).unwrap();
        let back = Report::read(dir.path()).unwrap();
        assert_eq!(serde_json::to_value(back).unwrap(), serde_json::to_value(r).unwrap());
    }

    #[test]
    fn derived_files_that_cannot_be_written_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let e = fixture::report("embedded").write_derived(&missing).unwrap_err();
        assert!(e.to_string().starts_with(&format!("cannot write {}: ", missing.join("summary.md").display())), "{e}");
    }
}
