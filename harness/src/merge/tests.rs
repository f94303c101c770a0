//! The merge's properties. The invariant of the exact merge: samples spread in any way over any
//! number of shards' interval logs merge into the percentiles of one histogram of all of them,
//! for the totals and for every second.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use hdrhistogram::serialization::V2DeflateSerializer;
use proptest::prelude::*;

use super::*;
use crate::recorder::HIST_MAX_US;
use crate::recorder::hlog::{begin_log, interval_line};
use crate::report::schema::GroupPoint;
use crate::report::{CampaignInfo, fixture};

const TAGS: [&str; 3] = ["telemetry", "alarm", ""];

/// One sample: its value, second, tag and shard.
type Sample = (u64, u32, usize, usize);

/// Write each shard's log of the samples, as the recorder would: one interval per second and tag.
fn write_logs(dir: &Path, samples: &[Sample], shards: usize) -> Vec<PathBuf> {
    let template = Hist::template().unwrap();
    let mut paths = Vec::new();
    for shard in 0..shards {
        let mut by: BTreeMap<(u32, usize), Hist> = BTreeMap::new();
        for &(v, s, t, k) in samples {
            if k == shard {
                by.entry((s, t)).or_insert_with(|| template.empty_like()).record(v);
            }
        }
        let path = dir.join(format!("shard-{shard}.hlog"));
        let mut f = std::fs::File::create(&path).unwrap();
        let mut ser = V2DeflateSerializer::new();
        begin_log(&mut f, "produce-latency.hlog", 1_700_000_000_000_000, &mut ser).unwrap();
        for ((s, t), h) in &by {
            let tag = (!TAGS[*t].is_empty()).then_some(TAGS[*t]);
            f.write_all(&interval_line(&mut ser, *s, h, tag).unwrap()).unwrap();
        }
        paths.push(path);
    }
    paths
}

fn same(a: &Hist, b: &Hist) -> Result<(), TestCaseError> {
    prop_assert_eq!(a.len(), b.len());
    if a.is_empty() {
        return Ok(());
    }
    prop_assert_eq!(a.h.min(), b.h.min());
    prop_assert_eq!(a.h.max(), b.h.max());
    for q in [0.0, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0] {
        prop_assert_eq!(a.h.value_at_quantile(q), b.h.value_at_quantile(q), "quantile {}", q);
    }
    prop_assert_eq!(a.summary(), b.summary());
    prop_assert_eq!(a.spectrum(), b.spectrum());
    Ok(())
}

fn sample() -> impl Strategy<Value = Sample> {
    // Values over the whole range the recorder tracks, log-uniformly, and a few at its ends.
    let value = prop_oneof![
        8 => (0.0f64..(HIST_MAX_US as f64).log2()).prop_map(|e| 2f64.powf(e).round().max(1.0) as u64),
        1 => Just(1u64),
        1 => Just(HIST_MAX_US),
    ];
    (value, 0u32..12, 0usize..TAGS.len(), 0usize..8)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Merged percentiles equal those of one histogram of all samples: totals (after warm-up),
    /// per tag and together, and every second's window; the merged log holds the same intervals.
    #[test]
    fn merged_interval_logs_equal_one_histogram_of_all_samples(
        samples in prop::collection::vec(sample(), 1..400),
        shards in 1usize..=8,
        warmup_s in 0u32..4,
    ) {
        let samples: Vec<Sample> = samples.into_iter().map(|(v, s, t, k)| (v, s, t, k % shards)).collect();
        let dir = tempfile::tempdir().unwrap();
        let inputs = write_logs(dir.path(), &samples, shards);
        let template = Hist::template().unwrap();
        let out = dir.path().join("merged.hlog");
        let output = hlogs::Output { path: &out, origin_unix_us: 1_700_000_000_000_000 };
        let warmup_us = u64::from(warmup_s) * 1_000_000;
        let f = hlogs::merge_family("produce-latency.hlog", &inputs, &template, warmup_us, Some(&output)).unwrap();

        let mut all = template.empty_like();
        let mut tags: BTreeMap<String, Hist> = BTreeMap::new();
        let mut seconds: BTreeMap<u32, Hist> = BTreeMap::new();
        for &(v, s, t, _) in &samples {
            seconds.entry(s).or_insert_with(|| template.empty_like()).record(v);
            if s >= warmup_s {
                all.record(v);
                tags.entry(TAGS[t].to_string()).or_insert_with(|| template.empty_like()).record(v);
            }
        }
        same(&f.all, &all)?;
        prop_assert_eq!(f.totals.keys().collect::<Vec<_>>(), tags.keys().collect::<Vec<_>>());
        for (tag, h) in &tags {
            same(&f.totals[tag], h)?;
        }
        prop_assert_eq!(f.seconds.keys().collect::<Vec<_>>(), seconds.keys().collect::<Vec<_>>());
        for (s, h) in &seconds {
            prop_assert_eq!(&f.seconds[s].all, &h.window(), "second {}", s);
        }

        // The merged log, merged again alone, gives the same: it holds the merged intervals.
        let again = hlogs::merge_family("produce-latency.hlog", &[out], &template, warmup_us, None).unwrap();
        same(&again.all, &all)?;
        prop_assert_eq!(again.intervals_in, seconds.keys().map(|s| {
            samples.iter().filter(|x| x.1 == *s).map(|x| x.2).collect::<std::collections::BTreeSet<_>>().len() as u64
        }).sum::<u64>());
    }
}

#[test]
fn a_missing_log_is_a_shard_without_samples_and_a_corrupt_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let template = Hist::template().unwrap();
    let absent = dir.path().join("absent.hlog");
    let f = hlogs::merge_family("e2e-latency.hlog", &[absent], &template, 0, None).unwrap();
    assert!(f.all.is_empty() && f.seconds.is_empty());

    let bad = dir.path().join("bad.hlog");
    std::fs::write(&bad, "#[StartTime: 1.000 (seconds since epoch)]\nTag=a,0.000,1.000,1.0,not-base64!\n").unwrap();
    let e = hlogs::merge_family("e2e-latency.hlog", &[bad], &template, 0, None).unwrap_err().to_string();
    assert!(e.contains("bad.hlog: not a valid interval log: line 2: histogram is not base64"), "{e}");
}

fn shard(index: u32, shards: u32) -> Shard {
    let mut report = fixture::report("embedded");
    report.campaign =
        Some(CampaignInfo { id: "c1".into(), shard: index, shards, start_unix_ms: 1_000, clock_skew_ms: None });
    // A minute of steady load, each shard its own lag; a dip after the fault at 10 s.
    report.timeline = (0..60u32)
        .map(|t| {
            let acked = if (10..13).contains(&t) { 100 } else { 1_000 + u64::from(index) };
            let group = GroupPoint { consumed: acked, lag: u64::from(t * (index + 1)), ..GroupPoint::default() };
            TimelinePoint {
                t,
                acked,
                produced: acked,
                consumers: BTreeMap::from([("sink".to_string(), group)]),
                faults: if (10..20).contains(&t) && index == 0 { vec!["kill".into()] } else { Vec::new() },
                ..TimelinePoint::default()
            }
        })
        .collect();
    Shard { dir: PathBuf::from(format!("s{index}")), index, report }
}

#[test]
fn shards_that_do_not_belong_together_are_refused_with_the_reason() {
    let err = |parts: Vec<Shard>, partial: bool| check(parts, partial).unwrap_err().to_string();
    assert_eq!(
        err(vec![shard(0, 3), shard(2, 3)], false),
        "campaign `c1`: shard(s) 1 of 3 missing (merged would be 2 of 3); give every shard's directory, or pass \
         --allow-partial to merge the others into a report marked partial"
    );
    let mut other = shard(1, 2);
    other.report.campaign.as_mut().unwrap().id = "c2".into();
    assert_eq!(
        err(vec![shard(0, 2), other], false),
        "s1: the campaign is `c2`, but s0 has `c1`: these shards are not of one campaign"
    );
    let mut other = shard(1, 2);
    other.report.scenario.fingerprint = "ffff".into();
    assert!(err(vec![shard(0, 2), other], false).contains("s1: the scenario fingerprint is `ffff`"));
    assert!(err(vec![shard(0, 2), shard(1, 3)], false).contains("s1: the shard count is 3, but s0 has 2"));
    let mut dup = shard(0, 2);
    dup.dir = PathBuf::from("again");
    assert_eq!(err(vec![shard(0, 2), dup], true), "shard 0 is given twice: s0 and again");
    assert!(err(vec![shard(0, 2), shard(2, 2)], true).contains("shard 2 of 2 does not exist"));
    let mut single = shard(0, 2);
    single.report.campaign = None;
    assert!(err(vec![single], true).contains("s0: not a shard of a campaign"));

    let c = check(vec![shard(2, 3), shard(0, 3)], true).unwrap();
    assert_eq!((c.parts.iter().map(|p| p.index).collect::<Vec<_>>(), c.missing), (vec![0, 2], vec![1]));
}

fn no_latencies() -> Latencies {
    let t = Hist::template().unwrap();
    let family =
        || hlogs::Family { totals: BTreeMap::new(), all: t.empty_like(), seconds: BTreeMap::new(), intervals_in: 0 };
    Latencies { from_intended: family(), from_send: family(), send_lag: family(), e2e: family(), age: family() }
}

#[test]
fn counters_and_lag_add_and_each_shard_keeps_its_verdict() {
    let (a, mut b) = (shard(0, 2), shard(1, 2));
    b.report.harness.saturated = true;
    b.report.warnings = vec!["HARNESS SATURATED: results not valid for the target (x)".into()];
    b.report.audit.counts.lost_examples = (0..8).map(|i| format!("b#{i}")).collect();
    let c = check(vec![a.clone(), b.clone()], false).unwrap();
    let r = combine(&c, &no_latencies()).unwrap();
    let (ra, rb) = (&a.report, &b.report);
    assert_eq!(r.produce.acked, ra.produce.acked + rb.produce.acked);
    assert_eq!(r.produce.planned, ra.produce.planned + rb.produce.planned);
    assert_eq!(r.audit.counts.lost, ra.audit.counts.lost + rb.audit.counts.lost);
    assert_eq!(r.audit.counts.lost_examples.len(), EXAMPLES.min(ra.audit.counts.lost_examples.len() + 8));
    for (name, g) in &r.consumers {
        assert_eq!(g.consumed, ra.consumers[name].consumed + rb.consumers[name].consumed);
        assert_eq!(g.members, ra.consumers[name].members * 2);
    }
    let t = 3;
    for (g, p) in &r.timeline[t].consumers {
        assert_eq!(p.lag, ra.timeline[t].consumers[g].lag + rb.timeline[t].consumers[g].lag);
    }
    assert_eq!(r.timeline[t].acked, ra.timeline[t].acked + rb.timeline[t].acked);
    let m = r.merged.as_ref().unwrap();
    assert_eq!((m.merged.clone(), m.missing.clone()), (vec![0, 1], vec![]));
    assert_eq!(m.per_shard.iter().map(|s| s.harness_saturated).collect::<Vec<_>>(), vec![false, true]);
    assert!(r.harness.saturated);
    assert!(r.warnings[0].starts_with("HARNESS SATURATED on shard(s) 1:"), "{:?}", r.warnings);
    assert!(r.warnings.iter().any(|w| w.starts_with("shard 1: HARNESS SATURATED")));
    assert!(r.campaign.is_none());
}

#[test]
fn partitions_add_up_over_the_shards_and_the_hottest_tenth_is_recomputed_without_latencies() {
    let (a, mut b) = (shard(0, 2), shard(1, 2));
    // Shard 1's traffic lands on partition 3 instead of 7: together, 7 and 3 are the hottest.
    if let Some(p) = b.report.partitions.as_mut().and_then(|p| p.topics.get_mut("t")) {
        for l in &mut p.lines {
            l.acked = if l.partition == 3 { 30_000 } else { 5_000 };
        }
    }
    let c = check(vec![a.clone(), b], false).unwrap();
    let r = combine(&c, &no_latencies()).unwrap();
    let p = r.partitions.as_ref().unwrap();
    let t = &p.topics["t"];
    assert_eq!((t.partitions, t.acked, t.lines.len()), (12, 170_000, 12));
    assert_eq!(t.hottest, [3, 7], "{t:?}");
    assert!((t.hottest_share - 70_000.0 / 170_000.0).abs() < 1e-4, "{t:?}");
    assert_eq!(t.lines[7].acked, 35_000);
    assert!((t.per_s - 2.0 * a.report.partitions.as_ref().unwrap().topics["t"].per_s).abs() < 0.2);
    assert_eq!((t.hottest_p99_us, t.rest_p99_us), (None, None));
    assert!(p.note.as_deref().is_some_and(|n| n.contains("not merged")));
    let md = crate::report::summary::markdown(&r);
    assert!(md.contains("| `t[3]` | 35,000 |") && md.contains("not merged"), "{md}");
}

#[test]
fn a_fault_is_taken_from_the_shard_that_injected_it_and_measured_on_the_merged_timeline() {
    let (mut a, mut b) = (shard(0, 2), shard(1, 2));
    assert!(a.report.faults.iter().any(|f| f.started_s.is_some()), "the fixture has an injected fault");
    // Shard 1 injected nothing: its fault entries carry no start.
    for f in &mut b.report.faults {
        f.started_s = None;
        f.ended_s = None;
    }
    a.report.faults[0].recovery.recovered_s = Some(999.0);
    let c = check(vec![b, a.clone()], false).unwrap();
    let r = combine(&c, &no_latencies()).unwrap();
    assert_eq!(r.faults.len(), a.report.faults.len());
    assert_eq!(r.faults[0].started_s, a.report.faults[0].started_s);
    assert_ne!(r.faults[0].recovery.recovered_s, Some(999.0), "recomputed on the merged timeline");
    assert_eq!(r.faults[0].unavailable.affected_partitions_s, a.report.faults[0].unavailable.affected_partitions_s);
}

#[test]
fn a_merged_report_names_its_shards_in_the_summary_markdown_and_html() {
    let (a, mut b) = (shard(0, 3), shard(2, 3));
    b.report.harness.saturated = true;
    let c = check(vec![a, b], true).unwrap();
    let r = combine(&c, &no_latencies()).unwrap();
    let text = crate::report::summary::text(&r, "out/report.json");
    assert!(text.contains("  shards     2 of 3 merged (campaign c1), MISSING 1, harness saturated on 2\n"), "{text}");
    let md = crate::report::summary::markdown(&r);
    assert!(md.contains("## Shards"), "{md}");
    assert!(md.contains("| 1 | **MISSING** |"), "{md}");
    let html = crate::report::html::render(&r, &[]);
    assert!(html.contains("<h2 id=\"shards\">Shards</h2>") && html.contains("SATURATED"), "{html}");
    assert!(r.warnings[0].starts_with("PARTIAL: shard(s) 1 of 3 missing"), "{:?}", r.warnings);
}

#[test]
fn a_warning_every_shard_gives_is_said_once_naming_the_shards() {
    let parts: Vec<Shard> = (0..5).map(|i| shard(i, 5)).collect();
    let c = check(parts, false).unwrap();
    let r = combine(&c, &no_latencies()).unwrap();
    assert_eq!(r.warnings, ["shards 0-4: the embedded cluster may have dropped records"]);
    assert_eq!(shard_label(&[0, 1, 2, 5, 7, 8]), "shards 0-2, 5, 7-8");
    assert_eq!(shard_label(&[3]), "shard 3");
}

/// A shard's cost drivers, crafted: `k` scales its traffic; `analytics` read only on shard 0 (its
/// one member ran there), so shard 1 has the group with nothing read and no wire counters.
fn drivers(k: u64, analytics: bool) -> crate::report::schema::CostDrivers {
    use crate::report::schema::{ClassDrivers, CostDrivers, GroupDrivers, ProduceDrivers, TopicDrivers};
    let wire = |tx: u64, rx: u64| WireCounts {
        tx_bytes: tx,
        rx_bytes: rx,
        tx_requests: tx / 100,
        rx_responses: rx / 100,
        tx_record_bytes: tx * 2,
        rx_record_bytes: rx * 2,
    };
    let class = |topic: &str, value: u64, wire: u64| ClassDrivers {
        topic: topic.into(),
        records: value / 10,
        value_bytes: value,
        wire_bytes: Some(wire),
        requests: Some(wire / 100),
    };
    let topic = |rf: u16, retention_s: Option<f64>, ingress: u64, basis: f64| TopicDrivers {
        replication: rf,
        retention_s,
        ingress_wire_bytes: Some(ingress),
        replication_bytes: Some(ingress * u64::from(rf - 1)),
        retained_bytes: retention_s.map(|r| ingress as f64 / basis * f64::from(rf) * r),
    };
    let basis = 10.0 + k as f64;
    let mut groups = BTreeMap::from([(
        "sink".to_string(),
        GroupDrivers {
            live_value_bytes: 1_000 * k,
            reread_value_bytes: 0,
            foreign_value_bytes: 0,
            wire: Some(wire(50 * k, 1_500 * k)),
            live_wire_bytes: Some(1_500 * k),
            reread_wire_bytes: Some(0),
        },
    )]);
    groups.insert(
        "analytics".to_string(),
        if analytics {
            GroupDrivers {
                live_value_bytes: 600,
                reread_value_bytes: 300,
                foreign_value_bytes: 0,
                wire: Some(wire(40, 1_200)),
                live_wire_bytes: Some(800),
                reread_wire_bytes: Some(400),
            }
        } else {
            GroupDrivers::default()
        },
    );
    CostDrivers {
        basis_s: basis,
        stats_interval_ms: 1_000,
        stats_callbacks: 10 * k,
        stats_parse_ms: 1.5 * k as f64,
        stats_unreadable: 0,
        produce: ProduceDrivers {
            wire: Some(wire(1_200 * k, 80 * k)),
            value_bytes: 1_000 * k,
            classes: BTreeMap::from([
                ("telemetry".to_string(), class("t.tel", 800 * k, 960 * k)),
                ("heartbeat".to_string(), class("t.hb", 200 * k, 240 * k)),
            ]),
        },
        groups,
        topics: BTreeMap::from([
            ("t.tel".to_string(), topic(3, Some(86_400.0), 960 * k, basis)),
            ("t.hb".to_string(), topic(2, None, 240 * k, basis)),
        ]),
    }
}

#[test]
fn cost_drivers_add_up_over_the_shards_topics_once_with_their_bytes_summed() {
    let (mut a, mut b) = (shard(0, 2), shard(1, 2));
    a.report.cost_drivers = Some(drivers(1, true));
    b.report.cost_drivers = Some(drivers(2, false));
    let c = check(vec![a.clone(), b.clone()], false).unwrap();
    let r = combine(&c, &no_latencies()).unwrap();
    let d = r.cost_drivers.as_ref().expect("every shard has drivers: the campaign has their sum");
    // Sums by hand: shard 0 is k = 1, shard 1 is k = 2.
    assert_eq!(d.basis_s, 12.0, "the longest shard's load: the shards ran at once");
    assert_eq!((d.stats_callbacks, d.stats_parse_ms), (30, 4.5));
    let w = d.produce.wire.unwrap();
    assert_eq!((w.tx_bytes, w.rx_bytes, w.tx_requests, w.tx_record_bytes), (3_600, 240, 36, 7_200));
    assert_eq!(d.produce.value_bytes, 3_000);
    let tel = &d.produce.classes["telemetry"];
    assert_eq!((tel.records, tel.value_bytes, tel.wire_bytes, tel.requests), (240, 2_400, Some(2_880), Some(28)));
    assert_eq!(tel.topic, "t.tel");
    assert_eq!(d.produce.classes["heartbeat"].wire_bytes, Some(720));
    let sink = &d.groups["sink"];
    assert_eq!((sink.live_value_bytes, sink.live_wire_bytes), (3_000, Some(4_500)));
    assert_eq!(sink.wire.map(|w| (w.tx_bytes, w.rx_bytes)), Some((150, 4_500)));
    // A shard that ran none of a group's members measured nothing and adds nothing: the group
    // keeps shard 0's counters, not "absent".
    let an = &d.groups["analytics"];
    assert_eq!((an.live_value_bytes, an.reread_value_bytes), (600, 300));
    assert_eq!(
        (an.wire.map(|w| w.rx_bytes), an.live_wire_bytes, an.reread_wire_bytes),
        (Some(1_200), Some(800), Some(400))
    );
    // Topics once each, their bytes summed: ingress 960 + 1,920; replication × 2 (RF 3).
    assert_eq!(d.topics.len(), 2);
    let t = &d.topics["t.tel"];
    assert_eq!((t.replication, t.retention_s), (3, Some(86_400.0)));
    assert_eq!((t.ingress_wire_bytes, t.replication_bytes), (Some(2_880), Some(5_760)));
    // Each shard's steady state at its own rate: 960/11 × 3 × 86,400 + 1,920/12 × 3 × 86,400.
    let retained = 960.0 / 11.0 * 3.0 * 86_400.0 + 1_920.0 / 12.0 * 3.0 * 86_400.0;
    assert!((t.retained_bytes.unwrap() - retained).abs() < 1e-6, "{:?} against {retained}", t.retained_bytes);
    let hb = &d.topics["t.hb"];
    assert_eq!((hb.ingress_wire_bytes, hb.replication_bytes, hb.retained_bytes), (Some(720), Some(720), None));

    // A shard that produced with its statistics off makes the sum absent, never a part.
    let mut off = b.clone();
    let od = off.report.cost_drivers.as_mut().unwrap();
    od.produce.wire = None;
    let r = combine(&check(vec![a.clone(), off], false).unwrap(), &no_latencies()).unwrap();
    assert_eq!(r.cost_drivers.as_ref().unwrap().produce.wire, None);
    // A shard without drivers (it never reached its load): none for the campaign.
    let mut none = b;
    none.report.cost_drivers = None;
    let r = combine(&check(vec![a, none], false).unwrap(), &no_latencies()).unwrap();
    assert!(r.cost_drivers.is_none());
}
