//! `report.html`: one self-contained file, drawn from the report alone. It opens with the
//! verdict (gates, the harness, the audit, the worst stress window), then a table of contents;
//! its charts are interactive (`interactive.rs`: uPlot and the data embedded in the page, no
//! network request), the static SVGs kept inside `<noscript>`.

use std::fmt::Write;

use super::charts::Chart;
use super::fmt::{STYLE, esc};
use super::interactive::{self, Place, Plot};
use super::table::{self, Cell, Table};
use super::{Report, Status};

/// What `report.html` adds to the shared stylesheet: the verdict box, the contents, the charts.
const PAGE_STYLE: &str = ".verdict{border:1px solid #ccc;border-radius:6px;background:#fafafa;padding:.4em 1.2em;margin:1em 0}\
.verdict h2{border:0;margin:.4em 0}.verdict ul{list-style:none;padding:0;margin:.4em 0}\
.verdict li{margin:.35em 0;font-size:1.05em}.verdict li b{display:inline-block;min-width:11em}\
nav.toc ol{columns:2;margin:.4em 0}nav.toc li{margin:.15em 0}\
.plot{margin:.4em 0 1.4em}.u-title{font-size:16px;font-weight:600}.u-legend{font-size:14px}\
h3{margin-top:1.4em}";

/// Sections as they are written, for the table of contents: (level, id, title).
struct Toc(Vec<(u8, String, String)>);

impl Toc {
    fn h(&mut self, o: &mut String, level: u8, id: &str, title: &str) {
        let _ = write!(o, "<h{level} id=\"{}\">{}</h{level}>", esc(id), esc(title));
        self.0.push((level, id.to_string(), title.to_string()));
    }

    fn html(&self) -> String {
        let mut o = String::from("<nav class=toc><h2>Contents</h2><ol>");
        let mut open = false;
        for (level, id, title) in &self.0 {
            if *level == 2 {
                if open {
                    o.push_str("</ol></li>");
                    open = false;
                } else if o.ends_with("</a>") {
                    o.push_str("</li>");
                }
                let _ = write!(o, "<li><a href=\"#{}\">{}</a>", esc(id), esc(title));
            } else {
                if !open {
                    o.push_str("<ol>");
                    open = true;
                }
                let _ = write!(o, "<li><a href=\"#{}\">{}</a></li>", esc(id), esc(title));
            }
        }
        if open {
            o.push_str("</ol>");
        }
        if !self.0.is_empty() {
            o.push_str("</li>");
        }
        o.push_str("</ol></nav>");
        o
    }
}

/// `report.html`.
pub fn render(r: &Report, charts: &[Chart]) -> String {
    let plots = interactive::plots(r);
    let mut toc = Toc(Vec::new());
    let mut o = String::new();
    if !r.warnings.is_empty() {
        toc.h(&mut o, 2, "warnings", "Warnings");
        for w in &r.warnings {
            let _ = write!(o, "<div class=warn>{}</div>", esc(w));
        }
    }
    if !r.gates.is_empty() {
        toc.h(&mut o, 2, "gates", "Gates");
        o.push_str(&table::gates(r).html());
    }
    toc.h(&mut o, 2, "produce", "Produce");
    let _ = write!(o, "{}{}", table::produce(r).html(), table::latency(r).html());
    if !r.produce.versions.is_empty() {
        o.push_str(&table::firmware(r).html());
    }
    let main: Vec<&Plot> = plots.iter().filter(|p| p.place == Place::Charts).collect();
    if !main.is_empty() || !charts.is_empty() {
        toc.h(&mut o, 2, "charts", "Charts");
        o.push_str(
            "<p><small>Hover for values; drag across a time chart to zoom every time chart to that range, double-click \
             to zoom out. Shaded: faults (red), reconnect waves, replays, slowdowns and restarts (blue); dashed: the end \
             of the load. Only whole seconds are drawn.</small></p>",
        );
        for p in &main {
            toc.h(&mut o, 3, &format!("chart-{}", p.id), &p.heading);
            let fallback = charts.iter().find(|c| c.name == p.id).map_or_else(
                || "<p>This chart needs JavaScript.</p>".to_string(),
                |c| format!("<div class=chart id=\"{}\">{}</div>", c.name, c.svg),
            );
            let _ = write!(o, "<div class=plot id=\"plot-{}\"></div><noscript>{fallback}</noscript>", esc(&p.id));
        }
        // A static chart with nothing to draw interactively (no data) is left out of both.
    }
    if !r.consumers.is_empty() {
        toc.h(&mut o, 2, "consumers", "Consumer groups");
        o.push_str(&table::consumers(r).html());
    }
    let a = &r.audit;
    if a.enabled {
        toc.h(&mut o, 2, "audit", "Delivery audit");
        o.push_str(&table::audit(r).html());
        if !a.counts.lost_examples.is_empty() {
            let _ = write!(o, "<p>First lost records: {}</p>", esc(&a.counts.lost_examples.join(", ")));
        }
        if let Some(cause) = a.duplicates_cause {
            let _ = write!(
                o,
                "<p>Duplicates: {}. First extra copies: {}</p>",
                esc(cause.explain()),
                esc(&a.counts.duplicate_examples.join(", "))
            );
        }
        if a.counts.rereads > 0 {
            let _ = write!(
                o,
                "<p>The audit reader read {} offsets a second time (its position went back): not copies in the log, \
                 not counted as duplicates.</p>",
                a.counts.rereads
            );
        }
    }
    if !r.cost.is_empty() {
        toc.h(&mut o, 2, "cost", "Cost (estimate)");
        let _ = write!(o, "{}<p><small>{}</small></p>", table::cost(r).html(), esc(table::COST_NOTE));
    }
    if r.merged.is_some() {
        toc.h(&mut o, 2, "shards", "Shards");
        o.push_str(&table::shards(r).html());
    }
    if !r.faults.is_empty() {
        toc.h(&mut o, 2, "faults", "Faults");
        o.push_str(&table::faults(r).html());
    }
    if !r.waves.is_empty() {
        toc.h(&mut o, 2, "waves", "Reconnect waves");
        o.push_str(&table::waves(r).html());
    }
    if r.partitions.as_ref().is_some_and(|p| !p.topics.is_empty()) {
        toc.h(&mut o, 2, "partitions", "Partitions");
        o.push_str(&table::partitions(r).html());
        if let Some(note) = table::partitions_note(r) {
            let _ = write!(o, "<p><small>{}</small></p>", esc(&note));
        }
        o.push_str("<p>Every partition that acknowledged a record, busiest first:</p>");
        o.push_str(&table::partition_lines(r, None).html());
    }
    if !r.errors.is_empty() {
        toc.h(&mut o, 2, "errors", "Errors");
        o.push_str(&table::errors(r).html());
    }
    if let Some(b) = &r.backbone
        && !b.series.is_empty()
    {
        toc.h(&mut o, 2, "backbone", "Backbone");
        o.push_str(&backbone(b));
        for p in plots.iter().filter(|p| p.place == Place::Backbone) {
            toc.h(&mut o, 3, &format!("chart-{}", p.id), &p.heading);
            let _ = write!(
                o,
                "<div class=plot id=\"plot-{}\"></div><noscript><p>This chart needs JavaScript; the table above has \
                 its figures.</p></noscript>",
                esc(&p.id)
            );
        }
    }
    let h = &r.harness;
    if h.cores > 0 && h.cpu_pct_peak > 0.0 {
        toc.h(&mut o, 2, "harness", "Harness");
        o.push_str(&harness(r).html());
        for p in plots.iter().filter(|p| p.place == Place::Harness) {
            let _ = write!(
                o,
                "<div class=plot id=\"plot-{}\"></div><noscript><p>This chart needs JavaScript.</p></noscript>",
                esc(&p.id)
            );
        }
    }
    toc.h(&mut o, 2, "target", "Target");
    let _ = write!(
        o,
        "<p>{} &middot; brokers {:?} &middot; <code>{}</code></p>",
        esc(&r.target.kind),
        r.target.brokers,
        esc(&r.target.bootstrap_servers)
    );
    if let Some(t) = &r.target.oauthbearer {
        let _ = write!(o, "<p>{}</p>", esc(&t.to_string()));
    }
    if !r.target.librdkafka.is_empty() {
        let t = Table::of(&r.target.librdkafka).col("librdkafka property", |(k, _)| *k).col("value", |(_, v)| *v);
        o.push_str(&t.done().html());
    }
    toc.h(&mut o, 2, "scenario", "Scenario");
    let _ = write!(
        o,
        "<p>{} &middot; seed {} &middot; fingerprint <code>{}</code></p><details><summary>definition (as run)</summary><pre>{}</pre></details>",
        esc(&r.scenario.file),
        r.scenario.seed,
        esc(&r.scenario.fingerprint),
        esc(&serde_json::to_string_pretty(&r.scenario.definition).unwrap_or_default())
    );
    let _ = write!(o, "<p><small>{}. fleetstorm {}.</small></p>", esc(&r.clock), esc(&r.fleetstorm_version));

    let mut page = String::new();
    let _ = write!(
        page,
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>fleetstorm: {}</title><style>{STYLE}{PAGE_STYLE}</style>{}</head><body>",
        esc(&r.scenario.name),
        interactive::head()
    );
    let status_class = if r.status == Status::Completed { "ok" } else { "bad" };
    let _ = write!(
        page,
        "<h1>{}</h1><p>{} &middot; target <b>{}</b> ({}) &middot; <span class={status_class}>{}</span>{} &middot; started {} &middot; run <code>{}</code></p>",
        esc(&r.scenario.name),
        esc(r.scenario.description.as_deref().unwrap_or("")),
        esc(&r.target.profile),
        esc(&r.target.kind),
        r.status,
        r.status_reason.as_ref().map(|s| format!(": {}", esc(s))).unwrap_or_default(),
        esc(&r.started_at),
        esc(&r.run_id)
    );
    page.push_str("<div id=fs-errors class=warn hidden></div>");
    page.push_str(&verdict(r));
    page.push_str(&toc.html());
    page.push_str(&o);
    if !plots.is_empty() {
        page.push_str(&interactive::scripts(r, &plots));
    }
    page.push_str("</body></html>");
    page
}

/// How one line of the verdict reads: good, bad, or neither (nothing to judge).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mood {
    Ok,
    Bad,
    Neutral,
}

/// The verdict's lines: (what, mood, text).
fn verdict_lines(r: &Report) -> Vec<(&'static str, Mood, String)> {
    let mut v = Vec::new();
    if r.status != Status::Completed {
        v.push((
            "Run",
            Mood::Bad,
            format!("{}{}", r.status, r.status_reason.as_ref().map(|s| format!(": {s}")).unwrap_or_default()),
        ));
    }
    let failed: Vec<&str> = r.gates.iter().filter(|g| !g.passed).map(|g| g.name.as_str()).collect();
    v.push(match (r.gates.len(), failed.len()) {
        (0, _) => ("Gates", Mood::Neutral, "none set".to_string()),
        (n, 0) => ("Gates", Mood::Ok, format!("all {n} passed")),
        (n, k) => ("Gates", Mood::Bad, format!("{k} of {n} failed: {}", failed.join(", "))),
    });
    let h = &r.harness;
    v.push(if h.cores == 0 {
        ("Harness", Mood::Neutral, "not sampled".to_string())
    } else if h.saturated {
        (
            "Harness",
            Mood::Bad,
            format!(
                "saturated: fleetstorm could not keep its schedule for {} s (its cpu peak {:.0}% of {} core(s), the \
                 host's mean {:.0}%); the numbers measure the load machine too, see the warnings for why",
                h.lagging_s.max(h.cpu_saturated_s),
                h.cpu_pct_peak,
                h.cores,
                h.host_cpu_pct_mean
            ),
        )
    } else {
        ("Harness", Mood::Ok, format!("kept up (cpu peak {:.0}% of {} core(s))", h.cpu_pct_peak, h.cores))
    });
    let a = &r.audit;
    let c = &a.counts;
    v.push(if !a.enabled {
        ("Audit", Mood::Neutral, "off".to_string())
    } else if c.lost == 0 && c.duplicates == 0 && c.unverified == 0 && a.complete {
        (
            "Audit",
            Mood::Ok,
            format!("clean: all {} acknowledged records read back exactly once", super::fmt::count(c.acked)),
        )
    } else {
        (
            "Audit",
            Mood::Bad,
            format!(
                "{} lost, {} duplicates, {} unverified of {} acknowledged{}",
                super::fmt::count(c.lost),
                super::fmt::count(c.duplicates),
                super::fmt::count(c.unverified),
                super::fmt::count(c.acked),
                if a.complete { "" } else { " (the reader did not catch up)" }
            ),
        )
    });
    v.push(match worst_window(r) {
        Some(text) => ("Worst stress window", Mood::Neutral, text),
        None => ("Worst stress window", Mood::Neutral, "no stress window in this run".to_string()),
    });
    if !r.warnings.is_empty() {
        v.push(("Warnings", Mood::Bad, format!("{} (see below)", r.warnings.len())));
    }
    v
}

/// The worst stress window, in words: from the backbone's findings when a broker metric moved
/// (the window where the most metrics left their baseline band, ties by the largest move
/// relative to its baseline), else the fault whose partitions were unavailable longest (one
/// that never came back first), else the wave that took longest to flush.
fn worst_window(r: &Report) -> Option<String> {
    if let Some(b) = &r.backbone {
        let size = |f: &super::schema::Finding| {
            f.moves.iter().map(|m| (m.peak - m.baseline).abs() / m.baseline.abs().max(1.0)).fold(0.0, f64::max)
        };
        let worst = b
            .findings
            .iter()
            .filter(|f| !f.moves.is_empty())
            .max_by(|x, y| x.moves.len().cmp(&y.moves.len()).then(size(x).total_cmp(&size(y))));
        if let Some(f) = worst {
            return Some(format!("{} (most broker metrics out of their baseline band)", f.text));
        }
    }
    let fault = r
        .faults
        .iter()
        .filter(|f| f.started_s.is_some() && !f.affected_partitions.is_empty())
        .map(|f| (f, f.unavailable.affected_partitions_s.unwrap_or(f64::INFINITY)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((f, s)) = fault {
        let at = f.started_s.unwrap_or_default();
        return Some(if s.is_finite() {
            format!("fault {} ({} at {at:.0} s): partitions unavailable for {s:.2} s, the longest", f.name, f.kind)
        } else {
            format!("fault {} ({} at {at:.0} s): some partitions never acknowledged again", f.name, f.kind)
        });
    }
    let wave = r
        .waves
        .iter()
        .map(|w| (w, w.flush_end_s.map_or(f64::INFINITY, |e| e - w.start_s)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((w, s)) = wave {
        return Some(if s.is_finite() {
            format!("wave {}#{} at {:.0} s: flushed in {s:.1} s, the longest", w.name, w.occurrence, w.start_s)
        } else {
            format!(
                "wave {}#{} at {:.0} s: its buffers were not flushed by the end of the run",
                w.name, w.occurrence, w.start_s
            )
        });
    }
    r.faults.iter().find_map(|f| f.started_s.map(|at| format!("fault {} ({} at {at:.0} s)", f.name, f.kind)))
}

fn verdict(r: &Report) -> String {
    let mut o = String::from("<section class=verdict id=verdict><h2>Verdict</h2><ul>");
    for (what, mood, text) in verdict_lines(r) {
        let (class, mark) = match mood {
            Mood::Ok => (" class=ok", "&#10004; "),
            Mood::Bad => (" class=bad", "&#10008; "),
            Mood::Neutral => ("", ""),
        };
        let text = if what == "Warnings" { format!("<a href=\"#warnings\">{}</a>", esc(&text)) } else { esc(&text) };
        let _ = write!(o, "<li><b>{what}</b> <span{class}>{mark}{text}</span></li>");
    }
    o.push_str("</ul></section>");
    o
}

/// fleetstorm's own resource use (HTML only: the terminal and Markdown say it in a line or a
/// warning).
fn harness(r: &Report) -> Table {
    let pct = |x: f32| format!("{x:.0}%");
    Table::of([&r.harness])
        .col("cores", |h| h.cores.to_string())
        .col("cpu mean", |h| pct(h.cpu_pct_mean))
        .col("of it librdkafka", |h| h.librdkafka_cpu_pct_mean.map_or("-".into(), pct))
        .col("cpu peak", |h| pct(h.cpu_pct_peak))
        .col("rss peak", |h| format!("{:.0} MiB", h.rss_mib_peak))
        .col("host cpu mean", |h| pct(h.host_cpu_pct_mean))
        .col("verdict", |h| if h.saturated { Cell::alarm("saturated") } else { Cell::plain("kept up") })
        .done()
}

/// The target's own series: per metric, the cluster's min / mean / max, then the findings and
/// the rule behind them.
fn backbone(b: &crate::report::schema::Backbone) -> String {
    use crate::report::backbone::{num, stats};
    use crate::report::schema::TargetMetric;
    let rows: Vec<(TargetMetric, (f64, f64, f64))> =
        TargetMetric::ALL.into_iter().filter_map(|m| stats(b, m).map(|s| (m, s))).collect();
    let t = Table::of(&rows)
        .col("metric (cluster)", |(m, _)| m.name().to_string())
        .col("unit", |(m, _)| m.unit().to_string())
        .col("min", |(_, s)| num(s.0))
        .col("mean", |(_, s)| num(s.1))
        .col("max", |(_, s)| num(s.2));
    let mut o = t.done().html();
    if !b.findings.is_empty() {
        o.push_str("<h3>What moved first, per stress window</h3><ul>");
        for f in &b.findings {
            let _ = write!(o, "<li>{}</li>", esc(&f.text));
        }
        let _ = write!(
            o,
            "</ul><p>Rule: the baseline is {}; a metric moves at the first second it leaves mean &plusmn;              max(3&sigma;, 25&nbsp;%, a floor per metric) of the baseline, from the window's start to 10 s after its end.</p>",
            b.baseline.map_or_else(|| "not set".to_string(), |[f, t]| format!("{f:.0}-{t:.0} s"))
        );
    }
    let sources: Vec<String> = b
        .sources
        .iter()
        .map(|s| format!("{} ({} samples, {} failed, {:.0} ms each)", esc(&s.name), s.samples, s.failures, s.mean_ms))
        .collect();
    if let Some(s) = &b.settle {
        let _ = write!(o, "<p>After the run: {}.</p>", esc(&crate::report::backbone::settle_text(s)));
    }
    let _ = write!(o, "<p>Sources: {}</p>", sources.join("; "));
    o
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::report::{fixture, summary};

    /// Every table's headers, by its first header.
    fn md_tables(md: &str) -> BTreeMap<String, Vec<String>> {
        let lines: Vec<&str> = md.lines().collect();
        lines
            .windows(2)
            .filter(|w| w[0].starts_with('|') && w[1].starts_with("|---"))
            .map(|w| {
                let heads: Vec<String> =
                    w[0].trim_matches('|').split(" | ").map(|h| h.trim().to_string()).collect::<Vec<_>>();
                (heads[0].clone(), heads)
            })
            .collect()
    }

    fn html_tables(html: &str) -> BTreeMap<String, Vec<String>> {
        html.split("<table><tr>")
            .skip(1)
            .map(|t| {
                let row = &t[..t.find("</tr>").unwrap_or(t.len())];
                let heads: Vec<String> =
                    row.split("<th>").skip(1).map(|h| h.trim_end_matches("</th>").replace("&amp;", "&")).collect();
                (heads[0].clone(), heads)
            })
            .collect()
    }

    #[test]
    fn markdown_and_html_render_the_same_headers_for_every_shared_table() {
        let mut r = fixture::report("embedded");
        r.harness.saturated = true;
        r.cost = fixture::priced();
        let md = md_tables(&summary::markdown(&r));
        let html = html_tables(&render(&r, &[]));
        let shared: Vec<&String> = md.keys().filter(|k| html.contains_key(*k)).collect();
        assert_eq!(
            shared,
            [
                "acked",
                "fault",
                "firmware",
                "gate",
                "group",
                "kind",
                "latency",
                "partition",
                "planned/s",
                "pricing",
                "topic",
                "wave"
            ],
            "the tables both formats show"
        );
        for k in shared {
            assert_eq!(md[k], html[k], "the `{k}` table differs between summary.md and report.html");
        }
        let md_only: Vec<&String> = md.keys().filter(|k| !html.contains_key(*k)).collect();
        let html_only: Vec<&String> = html.keys().filter(|k| !md.contains_key(*k)).collect();
        assert_eq!(md_only, [""], "summary.md alone has the run table");
        assert_eq!(html_only, ["cores", "librdkafka property"], "report.html alone has harness and target tables");
    }

    #[test]
    fn a_priced_run_shows_each_pricings_total_and_largest_lines_with_their_drivers() {
        let mut r = fixture::report("embedded");
        assert!(!summary::markdown(&r).contains("## Cost") && !render(&r, &[]).contains(">Cost (estimate)</h2>"));
        r.cost = fixture::priced();
        let md = summary::markdown(&r);
        // ec2: 1,660.51 a month; its three largest lines, largest first; the fourth (storage) left
        // to cost.md.
        for row in [
            "| `ec2` | 1,660.51 USD | `cross_zone` | 1,200.00 USD | 72 % | replay by analytics: 38 %; replication of \
             telemetry: 34 %; live reads by sink: 28 % |",
            "| | | `compute` | 357.41 USD | 22 % | cluster size: 100 % |",
            "| | | `fixed` | 91.10 USD | 5 % | fixed: KRaft controllers: 100 % |",
            "| `msk` | 600.00 USD | `compute` | 600.00 USD | 100 % | cluster size: 100 % |",
        ] {
            assert!(md.contains(row), "`{row}` missing from:\n{md}");
        }
        assert!(!md.contains("`storage`") && md.contains("An estimate, not a bill"), "{md}");
        let html = render(&r, &[]);
        assert!(
            html.contains("<h2 id=\"cost\">Cost (estimate)</h2>") && html.contains("<td><code>cross_zone</code></td>"),
            "{html}"
        );
        let text = summary::text(&r, "out/report.json");
        assert!(
            text.contains(
                "  cost       ec2: 1,660.51 USD per month, estimate (cross_zone 72 %, replay by analytics 38 %; compute \
                 22 %, cluster size 100 %; fixed 5 %, fixed: KRaft controllers 100 %)\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn waves_show_unsent_and_faults_show_their_error_in_html() {
        let html = render(&fixture::report("embedded"), &[]);
        assert!(html.contains("<th>dropped</th><th>unsent</th><th>flushed by</th>"), "{html}");
        assert!(html.contains("<td>10</td><td>5</td><td>48.50s</td>"), "{html}");
        assert!(html.contains("<th>lost</th><th>error</th></tr>"), "{html}");
        assert!(html.contains("<td>no pid file for broker 3</td></tr>"), "{html}");
    }

    #[test]
    fn html_escapes_every_text_from_the_report() {
        let mut r = fixture::report("<b>target</b>");
        r.scenario.name = "a <script>alert(1)</script>".into();
        r.gates[1].value = "<1ms & \"fast\"".into();
        r.faults[1].error = Some("exit <2>".into());
        r.consumers = BTreeMap::from([("<g>".to_string(), r.consumers["sink"].clone())]);
        let html = render(&r, &[]);
        assert!(!html.contains("<script>alert") && !html.contains("<b>target</b>") && !html.contains("<g>"), "{html}");
        assert!(html.contains("a &lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
        assert!(html.contains("<td>&lt;1ms &amp; &quot;fast&quot;</td>"), "{html}");
        assert!(html.contains("<td>exit &lt;2&gt;</td>"), "{html}");
        assert!(html.contains("<td>group <code>&lt;g&gt;</code> end-to-end</td>"), "{html}");
    }

    #[test]
    fn findings_and_verdicts_are_coloured() {
        let mut r = fixture::report("embedded");
        r.harness.saturated = true;
        let html = render(&r, &[]);
        assert!(html.contains("<td><span class=ok>pass</span></td>"), "{html}");
        assert!(html.contains("<td><span class=bad>FAIL</span></td>"), "{html}");
        assert!(html.contains("<td><span class=bad>2</span></td>"), "lost records are red: {html}");
        assert!(html.contains("<td><span class=ok>0</span></td>"), "nothing missed is green: {html}");
        assert!(html.contains("<td><span class=bad>saturated</span></td>"), "{html}");
    }
}
