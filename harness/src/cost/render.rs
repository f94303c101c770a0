//! The cost tables, through the one table model (`report/table.rs`): a run's lines under each
//! pricing file (`cost.md`, the terminal). `compare` draws its own side-by-side section.

use std::fmt::Write;

use super::CostFile;
use super::model::{LineCost, Priced};
use crate::report::table::{Cell, Table};

pub use crate::report::fmt::money;

fn pct(v: f64) -> String {
    format!("{:.0} %", v * 100.0)
}

/// What drives a line: its parts with their shares, largest first.
pub fn drivers(l: &LineCost) -> String {
    l.parts.iter().map(|p| format!("{}: {}", p.driver, pct(p.share))).collect::<Vec<_>>().join("; ")
}

/// One pricing's lines.
pub fn lines(p: &Priced) -> Table {
    let rows: Vec<&LineCost> = p.lines.iter().collect();
    Table::of(rows)
        .col("line", |l| Cell::code(l.line.name()))
        .col("per hour", |l| money(l.hourly, &p.currency))
        .col("per month", |l| money(l.monthly, &p.currency))
        .col("of total", |l| pct(if p.monthly > 0.0 { l.monthly / p.monthly } else { 0.0 }))
        .col("driven by", |l| drivers(l))
        .done()
}

/// `cost.md`.
pub fn markdown(c: &CostFile) -> String {
    let mut o = format!("# Cost of `{}` on {} (run {})\n", c.scenario, c.target, c.run_id);
    for p in &c.priced {
        let _ = writeln!(
            o,
            "\n## {} (`{}`, {} × {}, {}, prices as of {})\n\n**{} per month, {} per hour** at the run's measured rates.\n",
            p.pricing,
            p.model.name(),
            p.brokers,
            p.instance,
            p.region,
            p.as_of,
            money(p.monthly, &p.currency),
            money(p.hourly, &p.currency),
        );
        o.push_str(&lines(p).markdown());
        o.push_str("\nAssumptions (an estimate from measured rates, not a bill):\n\n");
        for a in &p.assumptions {
            let _ = writeln!(o, "- {a}");
        }
    }
    o
}
