//! Human summaries of a report: a few lines for the terminal, and `summary.md`.

use std::fmt::Write;

use super::fmt::{count, secs, us};
use super::schema::LatencySummary;
use super::table::{self, Cell, Table};
use super::{Report, Status};

fn rate(v: f64) -> String {
    if v >= 100.0 { format!("{v:.0}/s") } else { format!("{v:.1}/s") }
}

fn lat(l: &LatencySummary) -> String {
    if l.count == 0 {
        return "no samples".into();
    }
    format!("p50 {} p99 {} p99.9 {} max {}", us(l.p50_us), us(l.p99_us), us(l.p999_us), us(l.max_us))
}

/// The terminal summary.
pub fn text(r: &Report, report_path: &str) -> String {
    let mut o = String::new();
    let p = &r.produce;
    let pct = if p.planned_rate > 0.0 { p.achieved_rate / p.planned_rate * 100.0 } else { 0.0 };
    let _ = writeln!(
        o,
        "fleetstorm {} on {} ({}): {} in {:.1}s{}",
        r.scenario.name,
        r.target.profile,
        r.target.kind,
        r.status,
        r.elapsed_s,
        r.status_reason.as_ref().map(|s| format!(" ({s})")).unwrap_or_default()
    );
    let _ = writeln!(
        o,
        "  produce    planned {}  achieved {} ({pct:.2}%)  acked {}  failed {}  backpressure {}{}",
        rate(p.planned_rate),
        rate(p.achieved_rate),
        count(p.acked),
        count(p.failed),
        count(p.backpressure),
        if p.unsent_at_end > 0 { format!("  unsent at end {}", count(p.unsent_at_end)) } else { String::new() }
    );
    if let Some(t) = &r.target.oauthbearer {
        let _ = writeln!(o, "  auth       {t}");
    }
    let _ = writeln!(o, "  ack lat.   from intended {}", lat(&p.latency_from_intended));
    let _ = writeln!(o, "             from send     {}", lat(&p.latency_from_send));
    let _ = writeln!(o, "  send lag   {}", lat(&p.send_lag));
    for (name, g) in &r.consumers {
        let _ = writeln!(
            o,
            "  {name:<10} consumed {}  e2e {}  max lag {}{}{}",
            count(g.consumed),
            lat(&g.e2e_latency),
            count(g.max_lag),
            if g.rereads > 0 { format!("  re-read {}", count(g.rereads)) } else { String::new() },
            if g.missed > 0 { format!("  MISSED {}", count(g.missed)) } else { String::new() }
        );
        if g.event_age.count > 0 && g.event_age.p99_us > g.e2e_latency.p99_us.saturating_mul(2) {
            let _ = writeln!(o, "             event age {}", lat(&g.event_age));
        }
        for rp in &g.replays {
            let _ = writeln!(
                o,
                "             replay at {:.0}s to {}: {} back, read {:.0}/s, caught up {}, lag back {}, ingest p99 {} -> {}",
                rp.at_s,
                rp.to,
                count(rp.records_back),
                rp.read_per_s_mean,
                secs(rp.caught_up_s),
                secs(rp.lag_recovered_s),
                rp.produce_p99_before_us.map_or_else(|| "n/a".into(), us),
                rp.produce_p99_during_us.map_or_else(|| "n/a".into(), us)
            );
        }
        for sl in &g.slowdowns {
            let _ = writeln!(
                o,
                "             {} at {:.0}s for {:.0}s: lag {} -> {} (peak {}), drained in {}",
                sl.kind,
                sl.at_s,
                sl.for_s,
                count(sl.lag_at_start),
                count(sl.lag_at_end),
                count(sl.peak_lag),
                secs(sl.drain_s)
            );
        }
        for rs in &g.restarts {
            let _ = writeln!(
                o,
                "             restart at {:.0}s: rebalanced in {}, e2e p99 {} -> {}, re-read {}",
                rs.at_s,
                secs(rs.rebalance_s),
                rs.e2e_p99_before_us.map_or_else(|| "n/a".into(), us),
                rs.e2e_p99_after_us.map_or_else(|| "n/a".into(), us),
                count(rs.rereads)
            );
        }
        if let Some(dl) = &g.dead_letter {
            let _ = writeln!(
                o,
                "             dead-lettered {} to {} ({} acked)",
                count(dl.routed),
                dl.topic,
                count(dl.acked)
            );
        }
    }
    for w in &r.waves {
        let _ = writeln!(
            o,
            "  wave       {}#{}: {} streams offline at {:.0}s, back by {:.0}s, buffered {} dropped {}{}, flushed {}, peak {}/s (before {:.0}/s{})",
            w.name,
            w.occurrence + 1,
            count(w.streams),
            w.start_s,
            w.reconnect_until_s,
            count(w.buffered),
            count(w.dropped),
            if w.unsent > 0 { format!(" unsent {}", count(w.unsent)) } else { String::new() },
            w.flush_end_s.map_or_else(|| "n/a".to_string(), |f| format!("by {f:.1}s")),
            count(w.peak_sent_per_s),
            w.baseline_sent_per_s,
            w.peak_ratio.map_or_else(String::new, |x| format!(", {x:.1}x"))
        );
    }
    for (t, x) in r.partitions.iter().flat_map(|p| p.topics.iter()) {
        if x.partitions < 2 || x.acked == 0 {
            continue;
        }
        let _ = writeln!(
            o,
            "  partitions {t}: hottest tenth ({}) carried {:.1}% of {} acked ({:.1}% if even), p99 {} vs {} for the rest",
            x.hottest.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", "),
            x.hottest_share * 100.0,
            count(x.acked),
            x.even_share * 100.0 * x.hottest.len() as f64,
            x.hottest_p99_us.map_or_else(|| "n/a".into(), us),
            x.rest_p99_us.map_or_else(|| "n/a".into(), us),
        );
    }
    let a = &r.audit;
    if a.enabled {
        let c = &a.counts;
        let _ = writeln!(
            o,
            "  audit      acked {} seen {} lost {} duplicates {}{} reordered {} failed-but-seen {}{}{}",
            count(c.acked),
            count(c.seen),
            count(c.lost),
            count(c.duplicates),
            a.duplicates_cause.map_or(String::new(), |d| format!(" ({})", d.short())),
            count(c.reordered),
            count(c.failed_but_seen),
            match (a.complete, c.unverified) {
                (true, _) => String::new(),
                (false, 0) => "  (INCOMPLETE: reader did not catch up)".to_string(),
                (false, n) =>
                    format!("  (INCOMPLETE: {} acknowledged records the reader never reached: unverified)", count(n)),
            },
            if c.rereads > 0 {
                format!("  (reader re-read {} offsets: not duplicates)", count(c.rereads))
            } else {
                String::new()
            }
        );
    }
    for f in &r.faults {
        let _ = writeln!(o, "  fault      {}", fault_line(f));
    }
    for e in &r.cost {
        let mut lines: Vec<_> = e.lines.iter().collect();
        lines.sort_by(|a, b| b.monthly.total_cmp(&a.monthly).then_with(|| a.line.cmp(&b.line)));
        let top: Vec<String> = lines
            .iter()
            .take(table::COST_TOP_LINES)
            .map(|l| {
                let share = if e.monthly > 0.0 { l.monthly / e.monthly * 100.0 } else { 0.0 };
                let by =
                    l.drivers.first().map(|d| format!(", {} {:.0} %", d.driver, d.share * 100.0)).unwrap_or_default();
                format!("{} {share:.0} %{by}", l.line.name())
            })
            .collect();
        let _ = writeln!(
            o,
            "  cost       {}: {} per month, estimate ({})",
            e.pricing,
            super::fmt::money(e.monthly, &e.currency),
            top.join("; ")
        );
    }
    if !r.gates.is_empty() {
        let failed: Vec<_> = r.gates.iter().filter(|g| !g.passed).collect();
        let _ = writeln!(o, "  gates      {} passed, {} failed", r.gates.len() - failed.len(), failed.len());
        for g in failed {
            let _ = writeln!(o, "    FAILED   {}  ({})", g.gate, g.detail);
        }
    }
    if let Some(m) = &r.merged {
        let saturated: Vec<String> =
            m.per_shard.iter().filter(|s| s.harness_saturated).map(|s| s.shard.to_string()).collect();
        let _ = writeln!(
            o,
            "  shards     {} of {} merged (campaign {}){}{}",
            m.merged.len(),
            m.shards,
            m.campaign,
            if m.missing.is_empty() {
                String::new()
            } else {
                format!(", MISSING {}", m.missing.iter().map(u32::to_string).collect::<Vec<_>>().join(", "))
            },
            if saturated.is_empty() {
                String::new()
            } else {
                format!(", harness saturated on {}", saturated.join(", "))
            }
        );
    }
    if let Some(b) = &r.backbone
        && !b.series.is_empty()
    {
        for line in crate::report::backbone::summary_lines(b) {
            let _ = writeln!(o, "  {line}");
        }
    }
    for w in &r.warnings {
        let _ = writeln!(o, "  warning    {w}");
    }
    let h = &r.harness;
    if h.cores > 0 && h.cpu_pct_peak > 0.0 {
        let _ = writeln!(
            o,
            "  harness    cpu mean {:.0}%{} peak {:.0}% of {} core(s), rss peak {:.0} MiB, host cpu mean {:.0}%",
            h.cpu_pct_mean,
            h.librdkafka_cpu_pct_mean.map_or(String::new(), |x| format!(" (librdkafka threads {x:.0}%)")),
            h.cpu_pct_peak,
            h.cores,
            h.rss_mib_peak,
            h.host_cpu_pct_mean
        );
    }
    if h.producer_instances > 0 {
        let _ = writeln!(
            o,
            "  producers  {} instance(s){}",
            h.producer_instances,
            h.producer_instances_why.as_deref().map_or(String::new(), |w| format!(" ({w})"))
        );
    }
    let _ = writeln!(o, "  report     {report_path}");
    o
}

fn fault_line(f: &super::faults::FaultReport) -> String {
    let broker = f.broker.map_or_else(|| "?".to_string(), |b| b.to_string());
    match f.started_s {
        None => format!("{}: {} not performed: {}", f.name, f.kind, f.error.as_deref().unwrap_or("unknown reason")),
        Some(start) => format!(
            "{}: {} on broker {broker} ({}) {start:.1}s-{}  unavailable {}  recovered {}  dip {:.0}%  peak p99 {}  audit lost {}{}{}",
            f.name,
            f.what(),
            f.mechanism,
            f.ended_s.map_or_else(|| "end".to_string(), |e| format!("{e:.1}s")),
            secs(f.unavailable.affected_partitions_s),
            f.recovered_text(),
            f.throughput.dip_pct,
            f.recovery.peak_p99_us.map_or_else(|| "-".to_string(), |p| format!("{:.1}ms", p as f64 / 1e3)),
            f.audit.lost,
            f.moved().map(|m| format!("  moved {m}")).unwrap_or_default(),
            f.error.as_ref().map(|e| format!("  ({e})")).unwrap_or_default()
        ),
    }
}

/// `summary.md`.
pub fn markdown(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# fleetstorm: {}\n", r.scenario.name);
    if r.status != Status::Completed {
        let _ = writeln!(
            o,
            "> **Run {}**{}\n",
            r.status,
            r.status_reason.as_ref().map(|s| format!(": {s}")).unwrap_or_default()
        );
    }
    for w in &r.warnings {
        let _ = writeln!(o, "> Warning: {w}\n");
    }
    if !r.gates.is_empty() {
        let _ = writeln!(o, "## Gates\n\n{}", table::gates(r).markdown());
    }
    o.push_str(&run_info(r).markdown());
    let _ = writeln!(o, "\n## Produce\n\n{}", table::produce(r).markdown());
    o.push_str(&table::latency(r).markdown());
    if !r.consumers.is_empty() {
        let _ = write!(o, "\n## Consumers\n\n{}", table::consumers(r).markdown());
    }
    if !r.cost.is_empty() {
        let _ = write!(o, "\n## Cost (estimate)\n\n{}\n{}\n", table::cost(r).markdown(), table::COST_NOTE);
    }
    let a = &r.audit;
    if a.enabled {
        let _ = write!(o, "\n## Delivery audit\n\n{}", table::audit(r).markdown());
        if !a.counts.lost_examples.is_empty() {
            let _ = writeln!(o, "\nFirst lost records: {}", a.counts.lost_examples.join(", "));
        }
    }
    if !r.produce.versions.is_empty() {
        let _ = write!(o, "\n## Firmware\n\n{}", table::firmware(r).markdown());
    }
    if !r.waves.is_empty() {
        let _ = write!(o, "\n## Reconnect waves\n\n{}", table::waves(r).markdown());
    }
    if r.partitions.as_ref().is_some_and(|p| !p.topics.is_empty()) {
        let _ = write!(
            o,
            "\n## Partitions\n\n{}\nThe busiest {} partitions of each topic (report.html and report.json have them all):\n\n{}",
            table::partitions(r).markdown(),
            table::SUMMARY_PARTITIONS,
            table::partition_lines(r, Some(table::SUMMARY_PARTITIONS)).markdown()
        );
        if let Some(note) = table::partitions_note(r) {
            let _ = writeln!(o, "\n{note}");
        }
    }
    if r.merged.is_some() {
        let _ = write!(o, "\n## Shards\n\n{}", table::shards(r).markdown());
    }
    if !r.faults.is_empty() {
        let _ = write!(o, "\n## Faults\n\n{}", table::faults(r).markdown());
    }
    if !r.errors.is_empty() {
        let _ = write!(o, "\n## Errors\n\n{}", table::errors(r).markdown());
    }
    o
}

/// The run at a glance, under the gates (Markdown only: the HTML says it in its heading).
fn run_info(r: &Report) -> Table {
    let t = &r.target;
    Table::of([
        ("target", Cell::plain(format!("{} ({}, {})", t.profile, t.kind, t.bootstrap_servers))),
        ("seed", Cell::plain(r.scenario.seed.to_string())),
        ("started", Cell::plain(&r.started_at)),
        ("load / measured", Cell::plain(format!("{:.1}s / {:.1}s", r.load_s, r.measured_s))),
        ("run id", Cell::code(&r.run_id)),
    ])
    .col("", |(k, _)| *k)
    .col("", |(_, v)| v.clone())
    .done()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn markdown_tables_follow_their_headings() {
        let md = markdown(&fixture::report("embedded"));
        for (heading, head) in [
            ("## Gates", "| gate | value | verdict | detail |"),
            ("## Produce", "| planned/s | achieved/s | acked | failed | backpressure | MB/s | measured |"),
            ("## Consumers", "| group | consumed | msgs/s | re-read | missed | max lag | final lag | assign/revoke |"),
            (
                "## Delivery audit",
                "| acked | seen | lost | unverified | duplicates | reordered | failed but seen | complete |",
            ),
            ("## Firmware", "| firmware | sent | share | acked |"),
            ("## Errors", "| kind | count |"),
        ] {
            assert!(md.contains(&format!("{heading}\n\n{head}\n|---|")), "{heading}:\n{md}");
        }
    }

    #[test]
    fn markdown_keeps_its_run_table_and_marks_failures() {
        let md = markdown(&fixture::report("embedded"));
        assert!(md.contains("| | |\n|---|---|\n| target | embedded (embedded, 127.0.0.1:9092) |\n"), "{md}");
        assert!(md.contains("| run id | `run-1` |"), "{md}");
        assert!(md.contains("| `produce.latency.p99 < 1us` | 4.0ms | **FAIL** | failed: 4.0ms is not < 1us |"), "{md}");
        assert!(md.contains("| `audit.lost == 0` | 0 | pass | |"), "{md}");
        assert!(md.contains("| storm#1 | 30s | 45s | 600 | 6,000 | 10 | 5 | 48.50s | 4,200 | 1500 |"), "{md}");
        assert!(md.contains(
            "| pause | broker_pause | - | n/a | n/a | n/a | n/a | 0% | - | - | 0 | no pid file for broker 3 |"
        ));
    }

    #[test]
    fn terminal_summary_lists_failed_gates_and_unsent_wave_records() {
        let t = text(&fixture::report("embedded"), "out/report.json");
        assert!(
            t.contains("  gates      1 passed, 1 failed\n    FAILED   produce.latency.p99 < 1us  (failed: "),
            "{t}"
        );
        assert!(t.contains("dropped 10 unsent 5, flushed by 48.5s"), "{t}");
        assert!(t.ends_with("  report     out/report.json\n"), "{t}");
    }
}
