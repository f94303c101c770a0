//! `fleetstorm cost`: what a finished run's workload costs under an operating model, line by line.
//!
//! A stage after the report: report → cost. It reads `report.json`'s measured cost drivers
//! (wire bytes from librdkafka's statistics, value bytes per class and group, replication and
//! retention per topic) and one or more pricing files (`pricing/*.yaml`: the user's prices, each
//! with its public source), and writes `cost.json` and `cost.md` next to the report. Every line
//! is split by the workload behaviour that drives it ("replay by analytics: 38 % of cross_zone").
//!
//! - [`pricing`]: the pricing files, read with the config's YAML machinery (file:line:col);
//! - [`model`]: the pure model, drivers × prices;
//! - [`render`]: the tables (through `report/table.rs`).

pub mod model;
pub mod pricing;
pub mod render;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use model::{Line, Priced};

/// `cost.json`: a run priced under each pricing file given.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CostFile {
    pub run_id: String,
    pub scenario: String,
    pub target: String,
    pub priced: Vec<Priced>,
}

pub const FILE: &str = "cost.json";

/// Why a run could not be priced.
#[derive(Debug, thiserror::Error)]
pub enum CostError {
    #[error(transparent)]
    Pricing(#[from] crate::config::ConfigError),
    #[error("{dir}: {source}")]
    Model {
        dir: String,
        #[source]
        source: model::ModelError,
    },
    #[error("{0}")]
    Report(String),
    #[error("cannot write {file}: {source}")]
    Write {
        file: String,
        #[source]
        source: std::io::Error,
    },
}

impl CostError {
    /// Bad input (exit 2) rather than an output failure.
    pub fn is_input(&self) -> bool {
        !matches!(self, CostError::Write { .. })
    }
}

/// Read every pricing file, reporting the first that has problems (all of its problems).
pub fn load_pricing(paths: &[std::path::PathBuf]) -> Result<Vec<pricing::PricingFile>, CostError> {
    paths.iter().map(|p| pricing::load(p).map_err(CostError::from)).collect()
}

/// What the model would refuse once the run is over, checked before it starts (`run --pricing`):
/// each `topology.egress_groups` entry must be one of the scenario's consumer groups.
pub fn check_groups(files: &[pricing::PricingFile], groups: &[String]) -> Result<(), CostError> {
    for f in files {
        if let Some(g) = f.pricing.topology.egress_groups.iter().find(|g| !groups.contains(g)) {
            let source = model::ModelError::UnknownEgressGroup { file: f.file.clone(), group: g.clone() };
            return Err(CostError::Model { dir: "the scenario".into(), source });
        }
    }
    Ok(())
}

/// Price a report under each pricing file.
pub fn price_all(
    dir: &str,
    report: &crate::report::Report,
    files: &[pricing::PricingFile],
) -> Result<CostFile, CostError> {
    let priced = files
        .iter()
        .map(|f| model::price(report, f).map_err(|source| CostError::Model { dir: dir.to_string(), source }))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CostFile {
        run_id: report.run_id.clone(),
        scenario: report.scenario.name.clone(),
        target: report.target.profile.clone(),
        priced,
    })
}

/// What a report carries of one pricing (`report.cost`): the totals and each line with the
/// shares of what drives it; `cost.json` keeps the parts' quantities and the assumptions.
pub fn estimate(p: &Priced) -> crate::report::schema::CostEstimate {
    use crate::report::schema::{CostEstimate, CostLineEstimate, CostShare};
    CostEstimate {
        pricing: p.pricing.clone(),
        file: p.file.clone(),
        currency: p.currency.clone(),
        hourly: p.hourly,
        monthly: p.monthly,
        lines: p
            .lines
            .iter()
            .map(|l| CostLineEstimate {
                line: l.line,
                hourly: l.hourly,
                monthly: l.monthly,
                drivers: l.parts.iter().map(|x| CostShare { driver: x.driver.clone(), share: x.share }).collect(),
            })
            .collect(),
    }
}

/// Price a finished report under each pricing file and keep the estimates in it
/// (`report.cost`, which gates and the summary read): `run --pricing` and `merge --pricing`,
/// before their gates are evaluated. `dir` names the run in errors.
pub fn attach(
    dir: &str,
    report: &mut crate::report::Report,
    files: &[pricing::PricingFile],
) -> Result<CostFile, CostError> {
    let cost = price_all(dir, report, files)?;
    report.cost = cost.priced.iter().map(estimate).collect();
    Ok(cost)
}

/// One line per pricing for stderr: `cost: NAME: 1,234.56 USD per month, 1.69 USD per hour (estimate)`.
pub fn totals(cost: &CostFile) -> Vec<String> {
    cost.priced
        .iter()
        .map(|p| {
            format!(
                "cost: {}: {} per month, {} per hour (an estimate at the pricing file's prices, from the run's \
                 measured rates)",
                p.pricing,
                render::money(p.monthly, &p.currency),
                render::money(p.hourly, &p.currency)
            )
        })
        .collect()
}

/// Write `cost.json` and `cost.md` into `dir`; returns the Markdown.
pub fn write(cost: &CostFile, dir: &Path) -> Result<String, CostError> {
    let md = render::markdown(cost);
    let io = |file: &Path| {
        let file = file.display().to_string();
        move |source| CostError::Write { file, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let json = serde_json::to_string_pretty(cost).map_err(|e| CostError::Report(e.to_string()))?;
    std::fs::write(dir.join(FILE), json).map_err(io(&dir.join(FILE)))?;
    std::fs::write(dir.join("cost.md"), &md).map_err(io(&dir.join("cost.md")))?;
    Ok(md)
}

/// A run directory's `cost.json`, if it has one.
pub fn read(dir: &Path) -> Result<Option<CostFile>, CostError> {
    let path = dir.join(FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| CostError::Report(format!("{}: not a cost file: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CostError::Report(format!("cannot read {}: {e}", path.display()))),
    }
}

/// `fleetstorm cost REPORT --pricing FILE... [--out DIR]`: price a finished run, write `cost.json`
/// and `cost.md` into `out` (default: the run directory), return the Markdown.
pub fn run(report_dir: &Path, pricing: &[std::path::PathBuf], out: Option<&Path>) -> Result<String, CostError> {
    let files = load_pricing(pricing)?;
    let report = crate::report::Report::read(report_dir).map_err(|e| CostError::Report(e.to_string()))?;
    let cost = price_all(&report_dir.display().to_string(), &report, &files)?;
    write(&cost, out.unwrap_or(report_dir))
}
