//! Workload shapes end to end on the embedded cluster: a reconnect wave, a firmware rollout, a
//! replay, a sink slowdown and a group restart, each checked against what the plan says.

use crate::common;

use common::*;
use fleetstorm::exit::Exit;
use fleetstorm::plan::Plan;
use fleetstorm::report::Report;
use fleetstorm::signals::Interrupts;

fn run(name: &str, text: &str) -> Report {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), &format!("{name}.yaml"), text);
    let out = dir.path().join("out");
    let args = run_args(scenario, out.clone());
    assert_eq!(fleetstorm::run_scenario(&args, &Interrupts::default()).unwrap(), Exit::Ok);
    read_report(&out)
}

const FLEET: &str = r#"
name: NAME
seed: 31
duration: 20s
warmup: 1s
drain: 30s
topics: [{name: NAME.t, partitions: 6, replication: 3}]
fleet:
  devices: 1000
  firmware:
    versions: [{name: v1, share: 100%}, {name: v2}]
    rollouts: [{to: v2, start: 2s, over: 10s}]
  classes:
    - name: m
      topic: NAME.t
      rate: 1/1s
      size: 200B
      versions: {v2: {size: 300B, headers: {schema: v2}}}
consumers:
  - {name: sink, members: 2, topics: [NAME.t]}
"#;

#[test]
fn a_reconnect_wave_flushes_its_backlog_and_a_rollout_follows_its_window() {
    let _g = serial();
    let wave =
        "waves:\n  - {name: storm, at: 5s, offline: 8s, share: 50%, buffer: {capacity: 6, overflow: drop_oldest}}\n";
    let text = FLEET.replace("NAME", "wave") + wave;
    let r = run("wave", &text);
    // Drops, computed independently from the plan without the wave: events created while offline,
    // less the 6 each buffer keeps.
    let mut s = fleetstorm::config::parse_scenario("wave.yaml", &text).unwrap();
    let with = Plan::from_scenario(&s);
    let offline: std::collections::HashSet<u32> =
        (0..1000u32).filter(|d| with.waves[0].includes(u64::from(*d), &with.cohorts, with.seed)).collect();
    s.waves.clear();
    let without = Plan::from_scenario(&s);
    let mut n = std::collections::HashMap::<u32, u64>::new();
    let mut planned_without = 0u64;
    for e in without.schedule(0, 1) {
        planned_without += 1;
        if offline.contains(&e.device) && (5_000_000..13_000_000).contains(&e.created_us) {
            *n.entry(e.device).or_default() += 1;
        }
    }
    let expected_dropped: u64 = n.values().map(|k| k.saturating_sub(6)).sum();
    let w = &r.waves[0];
    assert_eq!(w.dropped, expected_dropped, "{w:?}");
    assert_eq!(w.buffered, 6 * offline.len() as u64);
    assert_eq!(w.unsent, 0);
    // Every buffered event was delivered: what was planned, less what full buffers dropped.
    assert_eq!(r.produce.acked, planned_without - expected_dropped);
    let a = &r.audit.counts;
    assert_eq!((a.acked, a.seen, a.lost, a.duplicates, a.reordered), (r.produce.acked, r.produce.acked, 0, 0, 0));
    // The flush second carries at least three times the pre-wave rate.
    let pre: f64 = r.timeline[2..5].iter().map(|p| p.produced as f64).sum::<f64>() / 3.0;
    let flush = r.timeline[13].produced as f64;
    assert!(flush >= 3.0 * pre, "flush {flush} vs pre-wave {pre}");
    assert!(w.peak_sent_per_s as f64 >= 3.0 * w.baseline_sent_per_s);
    assert!(r.timeline[6].waves.contains(&"storm".to_string()));
    // Buffered events arrive old: event age is well above transport latency.
    let g = &r.consumers["sink"];
    assert!(g.event_age.p99_us > 5_000_000, "age p99 {}", g.event_age.p99_us);
    assert!(g.e2e_latency.p99_us < 2_000_000, "e2e p99 {}", g.e2e_latency.p99_us);
    // The rollout: v2's share of each second follows the 2s..12s ramp.
    for p in &r.timeline[..20] {
        let total: u64 = p.versions.values().sum();
        // The wave's seconds carry old (buffered) events, versioned when they were created.
        if total < 300 || p.t >= 5 && p.t <= 13 {
            continue;
        }
        let share = p.versions.get("v2").copied().unwrap_or(0) as f64 / total as f64;
        let planned = ((f64::from(p.t) + 0.5 - 2.0) / 10.0).clamp(0.0, 1.0);
        assert!((share - planned).abs() < 0.12, "second {}: v2 share {share:.2}, planned {planned:.2}", p.t);
    }
    assert!(r.produce.versions["v2"].attempted > 0 && r.produce.versions["v1"].attempted > 0);
}

/// The shipped storm, its time compressed tenfold and its fleet shrunk tenfold: each device still
/// creates as many events while offline and flushes them as fast, and the region still comes back
/// within a twelfth of its outage, so the flush peaks at the same multiple of the base rate.
#[test]
fn the_shipped_reconnect_storm_scaled_down_flushes_at_over_three_times_its_base_rate() {
    let _g = serial();
    let shipped = std::fs::read_to_string(root().join("scenarios/reconnect-storm.yaml")).unwrap();
    let mut text = shipped.clone();
    for (from, to) in [
        // The flush and the next wave's 10 s baseline do not scale: the repeat leaves room for both.
        ("duration: 6m\n", "duration: 48s\n"),
        ("warmup: 10s\n", "warmup: 1s\n"),
        ("drain: 60s\n", "drain: 30s\n"),
        ("devices: 60000\n", "devices: 6000\n"),
        ("rate: 1/60s\n", "rate: 1/6s\n"),
        ("at: 40s\n", "at: 4s\n"),
        ("offline: 2m\n", "offline: 12s\n"),
        ("reconnect_jitter: 10s\n", "reconnect_jitter: 1s\n"),
        ("every: 170s,", "every: 28s,"),
    ] {
        assert!(text.contains(from), "the shipped storm no longer has `{}`: update this test", from.trim());
        text = text.replacen(from, to, 1);
    }
    let r = run("reconnect-storm", &text);
    assert_eq!(r.waves.len(), 2, "{:?}", r.waves);
    for w in &r.waves {
        // The whole region (45% of the fleet) went offline and lost nothing to full buffers.
        assert!(w.streams >= 2_600 && w.streams <= 2_800, "{w:?}");
        assert_eq!((w.dropped, w.unsent), (0, 0), "{w:?}");
        assert!(w.buffered >= 2 * w.streams - 100, "about two events a device: {w:?}");
        let ratio = w.peak_ratio.unwrap();
        assert!(ratio >= 3.0, "the flush peaked at only {ratio}x the rate before: {w:?}");
        assert!((ratio - w.peak_sent_per_s as f64 / w.baseline_sent_per_s).abs() < 0.01);
        eprintln!(
            "storm {}#{}: peak {}/s, before {:.0}/s: {ratio}x",
            w.name,
            w.occurrence + 1,
            w.peak_sent_per_s,
            w.baseline_sent_per_s
        );
    }
    let a = &r.audit.counts;
    assert_eq!((a.lost, a.duplicates), (0, 0), "{a:?}");
    assert_eq!(a.acked, r.produce.acked);
    assert_eq!(r.consumers["automation"].missed, 0);
}

#[test]
fn a_replay_rereads_history_a_slow_sink_drains_and_a_restart_rebalances() {
    let _g = serial();
    let groups = r#"
  - name: backfill
    members: 1
    topics: [NAME.t]
    replays: [{at: 8s, to: earliest}]
  - name: slow
    members: 1
    topics: [NAME.t]
    processing_time: 1ms
    slowdowns: [{at: 6s, for: 4s, factor: 5}]
  - name: restarted
    members: 2
    topics: [NAME.t]
    restarts: [{at: 7s, down: 1s}]
"#;
    let text = FLEET.replace("NAME", "groups").replace("rate: 1/1s", "rate: 1/2s") + &groups.replace("NAME", "groups");
    let r = run("groups", &text);
    // Replay: every record produced before it was read again.
    let before: u64 = r.timeline.iter().filter(|p| p.t < 8).filter_map(|p| p.audit.as_ref()).map(|a| a.acked).sum();
    let b = &r.consumers["backfill"];
    let replay = &b.replays[0];
    assert!(replay.errors.is_empty(), "{:?}", replay.errors);
    assert!(replay.records_back + 50 >= before, "sought back {} for {before} produced before", replay.records_back);
    assert!(b.rereads + 50 >= before, "re-read {} of {before}", b.rereads);
    assert!(replay.caught_up_s.is_some() && replay.lag_recovered_s.is_some(), "{replay:?}");
    // The re-reads are not duplicate deliveries.
    assert_eq!(r.audit.counts.duplicates, 0);
    assert_eq!(r.audit.counts.lost, 0);
    // Slowdown: 500 records/s against 200/s capacity for 4 s, then 1000/s capacity.
    let sl = &r.consumers["slow"].slowdowns[0];
    assert!(sl.lag_growth > 500, "{sl:?}");
    assert!(sl.peak_lag >= sl.lag_at_end);
    let drained = sl.drain_s.expect("the lag drains after the slowdown");
    assert!(drained < 8.0, "{sl:?}");
    // Restart: the members left and came back.
    let rs = &r.consumers["restarted"].restarts[0];
    let rebalance = rs.rebalance_s.expect("rebalance measured");
    assert!((1.0..20.0).contains(&rebalance), "{rs:?}");
    assert!(r.consumers["restarted"].revocations >= 2);
    for g in ["backfill", "slow", "restarted"] {
        assert_eq!(r.consumers[g].missed, 0, "{g} skipped records");
    }
}
