//! The run's output directory: its own and fresh, never mixing two runs' files.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{RunError, RunOptions};

/// What a run writes into its directory, by file name ending; `--overwrite` removes these and
/// nothing else.
/// `cost.json` and `cost.md` are `run --pricing`'s (and `fleetstorm cost`'s, in the run directory).
const RUN_OUTPUTS: &[&str] =
    &["report.json", "summary.md", "report.html", "junit.xml", ".png", ".svg", ".hlog", "cost.json", "cost.md"];

/// The run's own, fresh directory. A directory that already holds files is refused (a stale
/// `junit.xml` next to a new report would lie) unless `--overwrite` is given, which first removes
/// a previous run's files; a directory holding anything else is never emptied. The default
/// directory gets a suffix when a run of the same second already took its name.
pub fn dir(opts: &RunOptions, name: &str, started: SystemTime) -> Result<PathBuf, RunError> {
    let dir = match &opts.out {
        Some(d) => d.clone(),
        None => {
            let base = default_dir(name, started);
            let mut dir = base.clone();
            for n in 2.. {
                if !dir.exists() {
                    break;
                }
                dir = PathBuf::from(format!("{}-{n}", base.display()));
            }
            dir
        }
    };
    let cannot =
        |e: std::io::Error| RunError::CouldNotStart(format!("cannot use {} for the report: {e}", dir.display()));
    if dir.is_dir() {
        let entries: Vec<PathBuf> =
            std::fs::read_dir(&dir).map_err(cannot)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
        if !entries.is_empty() {
            let ours = |p: &Path| {
                p.is_file()
                    && p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| RUN_OUTPUTS.iter().any(|o| n.ends_with(o)))
            };
            if let Some(foreign) = entries.iter().find(|p| !ours(p)) {
                return Err(RunError::Invalid(format!(
                    "--out {}: the directory holds {}, which is not a fleetstorm output: choose an empty or new directory",
                    dir.display(),
                    foreign.display()
                )));
            }
            if !opts.overwrite {
                return Err(RunError::Invalid(format!(
                    "--out {}: the directory holds an earlier run's report ({} files): choose a new directory, or pass \
                     --overwrite to remove them first",
                    dir.display(),
                    entries.len()
                )));
            }
            for p in &entries {
                std::fs::remove_file(p).map_err(cannot)?;
            }
        }
    }
    std::fs::create_dir_all(&dir).map_err(cannot)?;
    Ok(dir)
}

fn default_dir(name: &str, at: SystemTime) -> PathBuf {
    let stamp =
        humantime::format_rfc3339_seconds(at).to_string().replace([':', '-'], "").replace('T', "-").replace('Z', "");
    PathBuf::from("reports").join(format!("{name}-{stamp}"))
}
