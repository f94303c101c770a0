//! One table model behind every table fleetstorm writes: `summary.md`, `report.html` and the
//! comparisons (`compare.md`, `compare.html`, `regression.md`).
//!
//! A table is declared once, column by column: each column is its header and how to get its
//! cell from a row. It is then rendered to Markdown or to HTML (escaped). The tables that
//! `summary.md` and `report.html` both show are declared here, below the model, so that the two
//! cannot drift apart again (they had: Markdown waves had an `unsent` column that HTML lacked,
//! HTML faults an `error` column that Markdown lacked); a test in `html.rs` pins that both
//! render the same headers for every table they share.

use std::fmt::Write;

use super::Report;
use super::fmt::{count, esc, money, secs, us};
use crate::report::schema::LatencySummary;

/// How a part of a cell reads in each format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Look {
    /// Text as it is.
    Plain,
    /// A name the reader may type (a gate, a metric, a group): `code` in Markdown, `<code>` in
    /// HTML.
    Code,
    /// A good verdict: green in HTML, plain in Markdown.
    Ok,
    /// A finding (something lost, missed, failed): red in HTML, plain in Markdown, where the
    /// number says it.
    Bad,
    /// A verdict the reader must not miss (`FAIL`, `REGRESSED`): red in HTML, bold in Markdown.
    Alarm,
}

/// A table cell: one or more parts of text, each with its look.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cell(Vec<(Look, String)>);

impl Cell {
    pub fn new(look: Look, text: impl Into<String>) -> Cell {
        Cell(vec![(look, text.into())])
    }

    pub fn plain(text: impl Into<String>) -> Cell {
        Cell::new(Look::Plain, text)
    }

    pub fn code(text: impl Into<String>) -> Cell {
        Cell::new(Look::Code, text)
    }

    pub fn ok(text: impl Into<String>) -> Cell {
        Cell::new(Look::Ok, text)
    }

    pub fn bad(text: impl Into<String>) -> Cell {
        Cell::new(Look::Bad, text)
    }

    pub fn alarm(text: impl Into<String>) -> Cell {
        Cell::new(Look::Alarm, text)
    }

    /// A count of findings: good when zero, bad otherwise.
    pub fn finding(n: u64) -> Cell {
        if n == 0 { Cell::ok(count(n)) } else { Cell::bad(count(n)) }
    }

    /// This cell followed by more text.
    pub fn and(mut self, look: Look, text: impl Into<String>) -> Cell {
        self.0.push((look, text.into()));
        self
    }

    /// The text alone, without any markup.
    pub fn text(&self) -> String {
        self.0.iter().map(|(_, t)| t.as_str()).collect()
    }

    fn markdown(&self) -> String {
        let mut o = String::new();
        for (look, text) in &self.0 {
            // A `|` would end the cell and a line break the row.
            let t = text.replace('|', "\\|").replace(['\r', '\n'], " ");
            match look {
                Look::Plain | Look::Ok | Look::Bad => o.push_str(&t),
                Look::Code if t.contains('`') => {
                    let _ = write!(o, "`` {t} ``");
                }
                Look::Code => {
                    let _ = write!(o, "`{t}`");
                }
                Look::Alarm => {
                    let _ = write!(o, "**{t}**");
                }
            }
        }
        o
    }

    fn html(&self) -> String {
        let mut o = String::new();
        for (look, text) in &self.0 {
            let t = esc(text);
            let _ = match look {
                Look::Plain => write!(o, "{t}"),
                Look::Code => write!(o, "<code>{t}</code>"),
                Look::Ok => write!(o, "<span class=ok>{t}</span>"),
                Look::Bad | Look::Alarm => write!(o, "<span class=bad>{t}</span>"),
            };
        }
        o
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Cell {
        Cell::plain(s)
    }
}

impl From<&str> for Cell {
    fn from(s: &str) -> Cell {
        Cell::plain(s)
    }
}

impl From<&String> for Cell {
    fn from(s: &String) -> Cell {
        Cell::plain(s.as_str())
    }
}

/// A table: its headers and its cells, row by row. Declared with [`Table::of`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    heads: Vec<String>,
    rows: Vec<Vec<Cell>>,
}

/// A table being declared over its rows, one column at a time.
pub struct Columns<T> {
    items: Vec<T>,
    table: Table,
}

impl Table {
    /// Start a table over these rows; add its columns with [`Columns::col`].
    pub fn of<T>(rows: impl IntoIterator<Item = T>) -> Columns<T> {
        let items: Vec<T> = rows.into_iter().collect();
        let rows = items.iter().map(|_| Vec::new()).collect();
        Columns { items, table: Table { heads: Vec::new(), rows } }
    }

    pub fn heads(&self) -> &[String] {
        &self.heads
    }

    /// The cells, row by row.
    pub fn rows(&self) -> &[Vec<Cell>] {
        &self.rows
    }

    /// A GitHub-flavoured Markdown table, one line per row, each line ending in a newline.
    pub fn markdown(&self) -> String {
        let line = |cells: &mut dyn Iterator<Item = String>| {
            let mut l = String::from("|");
            for c in cells {
                if c.is_empty() {
                    l.push_str(" |");
                } else {
                    let _ = write!(l, " {c} |");
                }
            }
            l.push('\n');
            l
        };
        let mut o = line(&mut self.heads.iter().map(|h| Cell::plain(h.as_str()).markdown()));
        let _ = writeln!(o, "|{}", "---|".repeat(self.heads.len()));
        for r in &self.rows {
            o.push_str(&line(&mut r.iter().map(Cell::markdown)));
        }
        o
    }

    /// An HTML `<table>`, every text escaped.
    pub fn html(&self) -> String {
        let mut o = String::from("<table><tr>");
        for h in &self.heads {
            let _ = write!(o, "<th>{}</th>", esc(h));
        }
        o.push_str("</tr>");
        for r in &self.rows {
            o.push_str("<tr>");
            for c in r {
                let _ = write!(o, "<td>{}</td>", c.html());
            }
            o.push_str("</tr>");
        }
        o.push_str("</table>");
        o
    }
}

impl<T> Columns<T> {
    /// A column: its header, and how to get its cell from a row.
    pub fn col<C: Into<Cell>>(mut self, head: impl Into<String>, cell: impl Fn(&T) -> C) -> Self {
        self.table.heads.push(head.into());
        for (row, item) in self.table.rows.iter_mut().zip(&self.items) {
            row.push(cell(item).into());
        }
        self
    }

    /// The table, its columns declared.
    pub fn done(self) -> Table {
        self.table
    }
}

// The tables `summary.md` and `report.html` share. Each format puts its own heading around
// them and decides when to show them (the HTML, for one, shows firmware under the latencies).

pub fn gates(r: &Report) -> Table {
    Table::of(&r.gates)
        .col("gate", |g| Cell::code(&g.gate))
        .col("value", |g| &g.value)
        .col("verdict", |g| if g.passed { Cell::ok("pass") } else { Cell::alarm("FAIL") })
        .col("detail", |g| &g.detail)
        .done()
}

pub fn produce(r: &Report) -> Table {
    Table::of([&r.produce])
        .col("planned/s", |p| format!("{:.1}", p.planned_rate))
        .col("achieved/s", |p| format!("{:.1}", p.achieved_rate))
        .col("acked", |p| count(p.acked))
        .col("failed", |p| Cell::finding(p.failed))
        .col("backpressure", |p| count(p.backpressure))
        .col("MB/s", |p| format!("{:.2}", p.bytes_per_s / 1e6))
        .col("measured", |_| format!("{:.1}s", r.measured_s))
        .done()
}

/// Acknowledgement latencies, per class, and per group end to end (and event age, when
/// offline buffering made it worse than end-to-end).
pub fn latency(r: &Report) -> Table {
    let p = &r.produce;
    let mut rows: Vec<(Cell, &LatencySummary)> = vec![
        (Cell::plain("ack, from intended send"), &p.latency_from_intended),
        (Cell::plain("ack, from actual send"), &p.latency_from_send),
        (Cell::plain("send lag"), &p.send_lag),
    ];
    for (name, c) in &p.classes {
        rows.push((
            Cell::plain("class ").and(Look::Code, name).and(Look::Plain, ", from intended send"),
            &c.latency_from_intended,
        ));
    }
    for (name, g) in &r.consumers {
        rows.push((Cell::plain("group ").and(Look::Code, name).and(Look::Plain, " end-to-end"), &g.e2e_latency));
        if g.event_age.count > 0 && g.event_age.p99_us > g.e2e_latency.p99_us {
            rows.push((Cell::plain("group ").and(Look::Code, name).and(Look::Plain, " event age"), &g.event_age));
        }
    }
    Table::of(rows)
        .col("latency", |(name, _)| name.clone())
        .col("samples", |(_, l)| count(l.count))
        .col("p50", |(_, l)| us(l.p50_us))
        .col("p90", |(_, l)| us(l.p90_us))
        .col("p99", |(_, l)| us(l.p99_us))
        .col("p99.9", |(_, l)| us(l.p999_us))
        .col("max", |(_, l)| us(l.max_us))
        .done()
}

pub fn consumers(r: &Report) -> Table {
    Table::of(&r.consumers)
        .col("group", |(name, _)| name.as_str())
        .col("consumed", |(_, g)| count(g.consumed))
        .col("msgs/s", |(_, g)| format!("{:.1}", g.msgs_per_s))
        .col("re-read", |(_, g)| count(g.rereads))
        .col("missed", |(_, g)| Cell::finding(g.missed))
        .col("max lag", |(_, g)| count(g.max_lag))
        .col("final lag", |(_, g)| count(g.final_lag))
        .col("assign/revoke", |(_, g)| format!("{}/{}", g.assignments, g.revocations))
        .done()
}

pub fn audit(r: &Report) -> Table {
    Table::of([&r.audit])
        .col("acked", |a| count(a.counts.acked))
        .col("seen", |a| count(a.counts.seen))
        .col("lost", |a| Cell::finding(a.counts.lost))
        .col("unverified", |a| Cell::finding(a.counts.unverified))
        .col("duplicates", |a| Cell::finding(a.counts.duplicates))
        .col("reordered", |a| Cell::finding(a.counts.reordered))
        .col("failed but seen", |a| count(a.counts.failed_but_seen))
        .col("complete", |a| if a.complete { Cell::plain("yes") } else { Cell::alarm("no") })
        .done()
}

pub fn firmware(r: &Report) -> Table {
    Table::of(&r.produce.versions)
        .col("firmware", |(v, _)| v.as_str())
        .col("sent", |(_, x)| count(x.attempted))
        .col("share", |(_, x)| format!("{:.1}%", x.share * 100.0))
        .col("acked", |(_, x)| count(x.acked))
        .done()
}

pub fn faults(r: &Report) -> Table {
    Table::of(&r.faults)
        .col("fault", |f| &f.name)
        .col("kind", |f| f.what())
        .col("broker", |f| f.broker.map_or_else(|| "-".to_string(), |b| b.to_string()))
        .col("from", |f| secs(f.started_s))
        .col("to", |f| secs(f.ended_s))
        .col("unavailable (affected)", |f| secs(f.unavailable.affected_partitions_s))
        .col("p99 recovered", |f| f.recovered_text())
        .col("throughput dip", |f| format!("{:.0}%", f.throughput.dip_pct))
        .col("peak p99", |f| {
            f.recovery.peak_p99_us.map_or_else(|| "-".to_string(), |p| format!("{:.1} ms", p as f64 / 1e3))
        })
        .col("moved (time, bytes)", |f| f.moved().unwrap_or_else(|| "-".to_string()))
        .col("lost", |f| Cell::finding(f.audit.lost))
        .col("error", |f| f.error.as_deref().unwrap_or(""))
        .done()
}

pub fn waves(r: &Report) -> Table {
    Table::of(&r.waves)
        .col("wave", |w| format!("{}#{}", w.name, w.occurrence + 1))
        .col("offline", |w| format!("{:.0}s", w.start_s))
        .col("back by", |w| format!("{:.0}s", w.reconnect_until_s))
        .col("streams", |w| count(w.streams))
        .col("buffered", |w| count(w.buffered))
        .col("dropped", |w| count(w.dropped))
        .col("unsent", |w| count(w.unsent))
        .col("flushed by", |w| secs(w.flush_end_s))
        .col("peak/s", |w| count(w.peak_sent_per_s))
        .col("before/s", |w| format!("{:.0}", w.baseline_sent_per_s))
        .col("peak ÷ before", |w| w.peak_ratio.map_or_else(|| "-".to_string(), |x| format!("{x:.1}x")))
        .done()
}

/// Per topic: how even the load was over the partitions, and how the hottest fared.
pub fn partitions(r: &Report) -> Table {
    let topics: Vec<(&String, &super::schema::TopicPartitions)> =
        r.partitions.iter().flat_map(|p| p.topics.iter()).collect();
    let opt_us = |v: Option<u64>| v.map_or_else(|| "-".to_string(), us);
    Table::of(topics)
        .col("topic", |(t, _)| Cell::code(t.as_str()))
        .col("partitions", |(_, x)| count(u64::from(x.partitions)))
        .col("acked/s", |(_, x)| format!("{:.1}", x.per_s))
        .col("hottest tenth", |(_, x)| x.hottest.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", "))
        .col("its share", |(_, x)| format!("{:.1}%", x.hottest_share * 100.0))
        .col("if even", |(_, x)| format!("{:.1}%", x.even_share * 100.0 * x.hottest.len() as f64))
        .col("hottest p99", |(_, x)| opt_us(x.hottest_p99_us))
        .col("rest p99", |(_, x)| opt_us(x.rest_p99_us))
        .done()
}

/// The busiest partitions of each topic, busiest first: `limit` per topic (all with `None`).
pub fn partition_lines(r: &Report, limit: Option<usize>) -> Table {
    let mut rows: Vec<(&String, &super::schema::PartitionLine)> = Vec::new();
    for (t, x) in r.partitions.iter().flat_map(|p| p.topics.iter()) {
        let mut lines: Vec<&super::schema::PartitionLine> = x.lines.iter().collect();
        lines.sort_by(|a, b| b.acked.cmp(&a.acked).then(a.partition.cmp(&b.partition)));
        lines.truncate(limit.unwrap_or(usize::MAX));
        rows.extend(lines.into_iter().map(|l| (t, l)));
    }
    let merged = r.merged.is_some();
    let lat = move |v: u64| if merged { "-".to_string() } else { us(v) };
    Table::of(rows)
        .col("partition", |(t, l)| Cell::code(format!("{t}[{}]", l.partition)))
        .col("acked", |(_, l)| count(l.acked))
        .col("acked/s", |(_, l)| format!("{:.1}", l.per_s))
        .col("share", |(_, l)| format!("{:.1}%", l.share * 100.0))
        .col("p50", move |(_, l)| lat(l.p50_us))
        .col("p99", move |(_, l)| lat(l.p99_us))
        .done()
}

/// What the partition tables leave out: partitions past the tracking limit, a merged report's
/// latencies.
pub fn partitions_note(r: &Report) -> Option<String> {
    let p = r.partitions.as_ref()?;
    let mut notes = Vec::new();
    if p.untracked_partitions > 0 {
        notes.push(format!(
            "{} partitions past the first {} were not tracked ({} records acknowledged there).",
            count(p.untracked_partitions),
            p.tracked_limit,
            count(p.untracked_acked)
        ));
    }
    if let Some(n) = &p.note {
        notes.push(n.clone());
    }
    (!notes.is_empty()).then(|| notes.join(" "))
}

/// How many partitions per topic `summary.md` lists (report.html and report.json have them all).
pub const SUMMARY_PARTITIONS: usize = 10;

pub fn errors(r: &Report) -> Table {
    Table::of(&r.errors).col("kind", |(k, _)| k.as_str()).col("count", |(_, v)| count(**v)).done()
}

/// How many of a pricing's lines the summary shows, largest first (cost.md has them all).
pub const COST_TOP_LINES: usize = 3;

/// A priced run (`run --pricing`): per pricing file its monthly total and its largest lines,
/// each with the behaviours that drive it. An estimate at the pricing file's prices.
pub fn cost(r: &Report) -> Table {
    use super::schema::{CostEstimate, CostLineEstimate};
    let mut rows: Vec<(&CostEstimate, Option<&CostLineEstimate>, bool)> = Vec::new();
    for e in &r.cost {
        let mut lines: Vec<&CostLineEstimate> = e.lines.iter().collect();
        lines.sort_by(|a, b| b.monthly.total_cmp(&a.monthly).then_with(|| a.line.cmp(&b.line)));
        lines.truncate(COST_TOP_LINES);
        if lines.is_empty() {
            rows.push((e, None, true));
        }
        rows.extend(lines.into_iter().enumerate().map(|(i, l)| (e, Some(l), i == 0)));
    }
    let pct = |v: f64| format!("{:.0} %", v * 100.0);
    Table::of(rows)
        .col("pricing", |(e, _, first)| if *first { Cell::code(&e.pricing) } else { Cell::plain("") })
        .col("per month", |(e, _, first)| if *first { money(e.monthly, &e.currency) } else { String::new() })
        .col("line", |(_, l, _)| l.map_or(Cell::plain(""), |l| Cell::code(l.line.name())))
        .col("line per month", |(e, l, _)| l.map_or_else(String::new, |l| money(l.monthly, &e.currency)))
        .col("of total", |(e, l, _)| {
            l.map_or_else(String::new, |l| pct(if e.monthly > 0.0 { l.monthly / e.monthly } else { 0.0 }))
        })
        .col("driven by", |(_, l, _)| {
            l.map_or_else(String::new, |l| {
                l.drivers
                    .iter()
                    .take(3)
                    .map(|d| format!("{}: {}", d.driver, pct(d.share)))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
        })
        .done()
}

/// Under the cost table, in both formats.
pub const COST_NOTE: &str = "An estimate, not a bill: the run's measured traffic (cost_drivers) at the pricing files' \
                             prices, scaled from the run's rates to 730 hours a month; cost.md beside the report has \
                             every part and the assumptions.";

/// A merged report's shards (`fleetstorm merge`): each one's own verdict, and the missing ones.
pub fn shards(r: &Report) -> Table {
    let Some(m) = &r.merged else { return Table::of(Vec::<u32>::new()).done() };
    let rows: Vec<(u32, Option<&super::ShardSummary>)> = (0..m.shards)
        .filter_map(|i| match m.per_shard.iter().find(|s| s.shard == i) {
            Some(s) => Some((i, Some(s))),
            None => m.missing.contains(&i).then_some((i, None)),
        })
        .collect();
    Table::of(rows)
        .col("shard", |(i, _)| i.to_string())
        .col("status", |(_, s)| s.map_or(Cell::alarm("MISSING"), |s| Cell::plain(&s.status)))
        .col("acked", |(_, s)| s.map_or_else(String::new, |s| count(s.acked)))
        .col("harness cpu mean", |(_, s)| s.map_or_else(String::new, |s| format!("{:.0}%", s.cpu_pct_mean)))
        .col("harness", |(_, s)| match s {
            Some(s) if s.harness_saturated => Cell::alarm("SATURATED"),
            Some(_) => Cell::ok("ok"),
            None => Cell::plain(""),
        })
        .col("clock skew", |(_, s)| {
            s.and_then(|s| s.clock_skew_ms).map_or_else(|| "-".to_string(), |k| format!("{k:+.1} ms"))
        })
        .done()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs() -> Table {
        Table::of([("a|b", 1u64), ("line\nbreak", 1_234)])
            .col("name", |(n, _)| *n)
            .col("count", |(_, c)| count(*c))
            .col("verdict", |(_, c)| if *c > 1 { Cell::alarm("FAIL") } else { Cell::ok("pass") })
            .done()
    }

    #[test]
    fn each_column_is_a_header_and_a_cell_per_row() {
        let t = pairs();
        assert_eq!(t.heads(), ["name", "count", "verdict"]);
        assert_eq!(t.rows().len(), 2);
        assert_eq!(t.rows()[1].iter().map(Cell::text).collect::<Vec<_>>(), ["line\nbreak", "1,234", "FAIL"]);
    }

    #[test]
    fn markdown_escapes_pipes_and_line_breaks_and_bolds_alarms_only() {
        assert_eq!(
            pairs().markdown(),
            "| name | count | verdict |\n|---|---|---|\n| a\\|b | 1 | pass |\n| line break | 1,234 | **FAIL** |\n"
        );
    }

    #[test]
    fn markdown_code_survives_backticks_and_empty_cells_stay_empty() {
        let t = Table::of(["x`y", "z"]).col("", |s| Cell::code(*s)).col("", |_| "").done();
        assert_eq!(t.markdown(), "| | |\n|---|---|\n| `` x`y `` | |\n| `z` | |\n");
    }

    #[test]
    fn html_escapes_headers_and_every_part_of_a_cell() {
        let t = Table::of([r#"<i>"&"#])
            .col("a<b", |s| Cell::plain("group ").and(Look::Code, *s).and(Look::Plain, " & more"))
            .col("lost", |_| Cell::finding(3))
            .col("missed", |_| Cell::finding(0))
            .done();
        assert_eq!(
            t.html(),
            "<table><tr><th>a&lt;b</th><th>lost</th><th>missed</th></tr><tr><td>group <code>&lt;i&gt;&quot;&amp;</code> \
             &amp; more</td><td><span class=bad>3</span></td><td><span class=ok>0</span></td></tr></table>"
        );
    }

    #[test]
    fn a_table_without_rows_keeps_its_header() {
        let t = Table::of(Vec::<u64>::new()).col("kind", |_| "").col("count", |v| count(*v)).done();
        assert_eq!(t.markdown(), "| kind | count |\n|---|---|\n");
        assert_eq!(t.html(), "<table><tr><th>kind</th><th>count</th></tr></table>");
    }
}
