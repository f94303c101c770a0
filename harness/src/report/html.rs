//! `report.html`: one self-contained file (charts inline as SVG, no external CSS or script),
//! drawn from the report alone.

use std::fmt::Write;

use super::charts::Chart;
use super::fmt::{STYLE, esc};
use super::table::{self, Cell, Table};
use super::{Report, Status};

/// `report.html`.
pub fn render(r: &Report, charts: &[Chart]) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!doctype html><html><head><meta charset=utf-8><title>fleetstorm: {}</title><style>{STYLE}</style></head><body>",
        esc(&r.scenario.name)
    );
    let status_class = if r.status == Status::Completed { "ok" } else { "bad" };
    let _ = write!(
        o,
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
    for w in &r.warnings {
        let _ = write!(o, "<div class=warn>{}</div>", esc(w));
    }
    if !r.gates.is_empty() {
        let _ = write!(o, "<h2>Gates</h2>{}", table::gates(r).html());
    }
    let _ = write!(o, "<h2>Produce</h2>{}{}", table::produce(r).html(), table::latency(r).html());
    if !r.produce.versions.is_empty() {
        o.push_str(&table::firmware(r).html());
    }
    for c in charts {
        let _ = write!(o, "<h2>{}</h2><div class=chart id=\"{}\">{}</div>", esc(&c.title), c.name, c.svg);
    }
    if !r.consumers.is_empty() {
        let _ = write!(o, "<h2>Consumer groups</h2>{}", table::consumers(r).html());
    }
    let a = &r.audit;
    if a.enabled {
        let _ = write!(o, "<h2>Delivery audit</h2>{}", table::audit(r).html());
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
        let _ = write!(
            o,
            "<h2>Cost (estimate)</h2>{}<p><small>{}</small></p>",
            table::cost(r).html(),
            esc(table::COST_NOTE)
        );
    }
    if r.merged.is_some() {
        let _ = write!(o, "<h2>Shards</h2>{}", table::shards(r).html());
    }
    if !r.faults.is_empty() {
        let _ = write!(o, "<h2>Faults</h2>{}", table::faults(r).html());
    }
    if !r.waves.is_empty() {
        let _ = write!(o, "<h2>Reconnect waves</h2>{}", table::waves(r).html());
    }
    if !r.errors.is_empty() {
        let _ = write!(o, "<h2>Errors</h2>{}", table::errors(r).html());
    }
    if let Some(b) = &r.backbone
        && !b.series.is_empty()
    {
        o.push_str(&backbone(b));
    }
    let h = &r.harness;
    if h.cores > 0 && h.cpu_pct_peak > 0.0 {
        let _ = write!(o, "<h2>Harness</h2>{}", harness(r).html());
    }
    let _ = write!(
        o,
        "<h2>Target</h2><p>{} &middot; brokers {:?} &middot; <code>{}</code></p>",
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
    let _ = write!(
        o,
        "<h2>Scenario</h2><p>{} &middot; seed {} &middot; fingerprint <code>{}</code></p><details><summary>definition (as run)</summary><pre>{}</pre></details>",
        esc(&r.scenario.file),
        r.scenario.seed,
        esc(&r.scenario.fingerprint),
        esc(&serde_json::to_string_pretty(&r.scenario.definition).unwrap_or_default())
    );
    let _ =
        write!(o, "<p><small>{}. fleetstorm {}.</small></p></body></html>", esc(&r.clock), esc(&r.fleetstorm_version));
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
    let mut o = format!("<h2>Backbone</h2>{}", t.done().html());
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
            ["acked", "fault", "firmware", "gate", "group", "kind", "latency", "planned/s", "pricing", "wave"],
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
        assert!(!summary::markdown(&r).contains("## Cost") && !render(&r, &[]).contains("<h2>Cost"));
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
            html.contains("<h2>Cost (estimate)</h2>") && html.contains("<td><code>cross_zone</code></td>"),
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
        assert!(!html.contains("<script>") && !html.contains("<b>target</b>") && !html.contains("<g>"), "{html}");
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
