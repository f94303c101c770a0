//! `report.html`: one self-contained file (charts inline as SVG, no external CSS or script),
//! drawn from the report alone.

use std::fmt::Write;

use super::charts::Chart;
// `gates.rs` still calls `html::esc`; the helper lives in `fmt`.
pub use super::fmt::esc;
use super::fmt::{STYLE, count, secs, us};
use super::{Report, Status};
use crate::recorder::LatencySummary;

pub fn table(o: &mut String, head: &[&str], rows: &[Vec<String>]) {
    o.push_str("<table><tr>");
    for h in head {
        let _ = write!(o, "<th>{}</th>", esc(h));
    }
    o.push_str("</tr>");
    for r in rows {
        o.push_str("<tr>");
        for c in r {
            let _ = write!(o, "<td>{c}</td>");
        }
        o.push_str("</tr>");
    }
    o.push_str("</table>");
}

fn lat_row(name: &str, l: &LatencySummary) -> Vec<String> {
    vec![esc(name), count(l.count), us(l.p50_us), us(l.p90_us), us(l.p99_us), us(l.p999_us), us(l.max_us)]
}

fn verdict(n: u64) -> String {
    if n == 0 { format!("<span class=ok>{n}</span>") } else { format!("<span class=bad>{}</span>", count(n)) }
}

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
        o.push_str("<h2>Gates</h2>");
        let rows: Vec<Vec<String>> = r
            .gates
            .iter()
            .map(|g| {
                vec![
                    format!("<code>{}</code>", esc(&g.gate)),
                    esc(&g.value),
                    if g.passed { "<span class=ok>pass</span>".into() } else { "<span class=bad>FAIL</span>".into() },
                    esc(&g.detail),
                ]
            })
            .collect();
        table(&mut o, &["gate", "value", "verdict", "detail"], &rows);
    }
    let p = &r.produce;
    o.push_str("<h2>Produce</h2>");
    table(
        &mut o,
        &["planned/s", "achieved/s", "acked", "failed", "backpressure", "MB/s", "measured"],
        &[vec![
            format!("{:.1}", p.planned_rate),
            format!("{:.1}", p.achieved_rate),
            count(p.acked),
            verdict(p.failed),
            count(p.backpressure),
            format!("{:.2}", p.bytes_per_s / 1e6),
            format!("{:.1}s", r.measured_s),
        ]],
    );
    let mut rows = vec![
        lat_row("ack, from intended send", &p.latency_from_intended),
        lat_row("ack, from actual send", &p.latency_from_send),
        lat_row("send lag", &p.send_lag),
    ];
    for (name, c) in &p.classes {
        rows.push(lat_row(&format!("class {name} (from intended)"), &c.latency_from_intended));
    }
    for (name, g) in &r.consumers {
        rows.push(lat_row(&format!("group {name} end-to-end"), &g.e2e_latency));
        if g.event_age.count > 0 && g.event_age.p99_us > g.e2e_latency.p99_us {
            rows.push(lat_row(&format!("group {name} event age"), &g.event_age));
        }
    }
    table(&mut o, &["latency", "samples", "p50", "p90", "p99", "p99.9", "max"], &rows);
    if !p.versions.is_empty() {
        let rows: Vec<Vec<String>> = p
            .versions
            .iter()
            .map(|(v, x)| vec![esc(v), count(x.attempted), format!("{:.1}%", x.share * 100.0), count(x.acked)])
            .collect();
        table(&mut o, &["firmware", "sent", "share", "acked"], &rows);
    }
    for c in charts {
        let _ = write!(o, "<h2>{}</h2><div class=chart id=\"{}\">{}</div>", esc(&c.title), c.name, c.svg);
    }
    if !r.consumers.is_empty() {
        o.push_str("<h2>Consumer groups</h2>");
        let rows: Vec<Vec<String>> = r
            .consumers
            .iter()
            .map(|(n, g)| {
                vec![
                    esc(n),
                    count(g.consumed),
                    format!("{:.1}", g.msgs_per_s),
                    count(g.rereads),
                    verdict(g.missed),
                    count(g.max_lag),
                    count(g.final_lag),
                    format!("{}/{}", g.assignments, g.revocations),
                ]
            })
            .collect();
        table(
            &mut o,
            &["group", "consumed", "msgs/s", "re-read", "missed", "max lag", "final lag", "assign/revoke"],
            &rows,
        );
    }
    let a = &r.audit;
    if a.enabled {
        let c = &a.counts;
        o.push_str("<h2>Delivery audit</h2>");
        table(
            &mut o,
            &["acked", "seen", "lost", "duplicates", "reordered", "failed but seen", "complete"],
            &[vec![
                count(c.acked),
                count(c.seen),
                verdict(c.lost),
                verdict(c.duplicates),
                verdict(c.reordered),
                count(c.failed_but_seen),
                if a.complete { "yes".into() } else { "<span class=bad>no</span>".into() },
            ]],
        );
        if !c.lost_examples.is_empty() {
            let _ = write!(o, "<p>First lost records: {}</p>", esc(&c.lost_examples.join(", ")));
        }
    }
    if !r.faults.is_empty() {
        o.push_str("<h2>Faults</h2>");
        let rows: Vec<Vec<String>> = r
            .faults
            .iter()
            .map(|f| {
                vec![
                    esc(&f.name),
                    esc(&f.kind),
                    f.broker.map_or_else(|| "-".into(), |b| b.to_string()),
                    secs(f.started_s),
                    secs(f.ended_s),
                    secs(f.unavailable.affected_partitions_s),
                    secs(f.recovery.recovered_s),
                    format!("{:.0}%", f.throughput.dip_pct),
                    verdict(f.audit.lost),
                    esc(f.error.as_deref().unwrap_or("")),
                ]
            })
            .collect();
        table(
            &mut o,
            &["fault", "kind", "broker", "from", "to", "unavailable", "p99 recovered", "dip", "lost", "error"],
            &rows,
        );
    }
    if !r.waves.is_empty() {
        o.push_str("<h2>Reconnect waves</h2>");
        let rows: Vec<Vec<String>> = r
            .waves
            .iter()
            .map(|w| {
                vec![
                    format!("{}#{}", esc(&w.name), w.occurrence + 1),
                    format!("{:.0}s", w.start_s),
                    format!("{:.0}s", w.reconnect_until_s),
                    count(w.streams),
                    count(w.buffered),
                    count(w.dropped),
                    secs(w.flush_end_s),
                    count(w.peak_sent_per_s),
                    format!("{:.0}", w.baseline_sent_per_s),
                ]
            })
            .collect();
        table(
            &mut o,
            &["wave", "offline", "back by", "streams", "buffered", "dropped", "flushed by", "peak/s", "before/s"],
            &rows,
        );
    }
    if !r.errors.is_empty() {
        o.push_str("<h2>Errors</h2>");
        let rows: Vec<Vec<String>> = r.errors.iter().map(|(k, v)| vec![esc(k), count(*v)]).collect();
        table(&mut o, &["kind", "count"], &rows);
    }
    let h = &r.harness;
    if h.cores > 0 && h.cpu_pct_peak > 0.0 {
        o.push_str("<h2>Harness</h2>");
        let pct = |x: f32| format!("{x:.0}%");
        table(
            &mut o,
            &["cores", "cpu mean", "of it librdkafka", "cpu peak", "rss peak", "host cpu mean", "verdict"],
            &[vec![
                h.cores.to_string(),
                pct(h.cpu_pct_mean),
                h.librdkafka_cpu_pct_mean.map_or("-".into(), pct),
                pct(h.cpu_pct_peak),
                format!("{:.0} MiB", h.rss_mib_peak),
                pct(h.host_cpu_pct_mean),
                if h.saturated { "<b class=bad>saturated</b>".into() } else { "kept up".into() },
            ]],
        );
    }
    let _ = write!(
        o,
        "<h2>Target</h2><p>{} &middot; brokers {:?} &middot; <code>{}</code></p>",
        esc(&r.target.kind),
        r.target.brokers,
        esc(&r.target.bootstrap_servers)
    );
    if !r.target.librdkafka.is_empty() {
        let rows: Vec<Vec<String>> = r.target.librdkafka.iter().map(|(k, v)| vec![esc(k), esc(v)]).collect();
        table(&mut o, &["librdkafka property", "value"], &rows);
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
