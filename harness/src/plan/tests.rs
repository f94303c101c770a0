use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use super::*;

use crate::config::parse_scenario;

pub(crate) fn scenario(seed: u64, extra: &str) -> Scenario {
    let src = format!(
        r#"
name: plan-test
seed: {seed}
duration: 60s
topics: [{{name: t}}]
fleet:
  devices: 2000
  classes:
    - name: telemetry
      topic: t
      rate: 1/5s
      size: {{uniform: {{min: 300B, max: 700B}}}}
    - name: heartbeat
      topic: t
      share: 25%
      rate: 1/2s
      arrival: poisson
      format: binary
      size: 64B
{extra}
"#
    );
    parse_scenario("test.yaml", &src).unwrap()
}

fn fingerprint(plan: &Plan) -> u64 {
    // FNV-1a over every event: stable across Rust versions, unlike DefaultHasher.
    struct Fnv(u64);
    impl Hasher for Fnv {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for b in bytes {
                self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
            }
        }
    }
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    for e in plan.schedule(0, 1) {
        e.hash(&mut h);
    }
    h.finish()
}

#[test]
fn same_seed_gives_the_same_schedule() {
    let a = Plan::from_scenario(&scenario(42, ""));
    let b = Plan::from_scenario(&scenario(42, ""));
    assert_eq!(fingerprint(&a), fingerprint(&b));
}

#[test]
fn different_seed_gives_a_different_schedule() {
    let a = Plan::from_scenario(&scenario(42, ""));
    let b = Plan::from_scenario(&scenario(43, ""));
    assert_ne!(fingerprint(&a), fingerprint(&b));
}

#[test]
fn events_come_in_intended_time_order() {
    let plan = Plan::from_scenario(&scenario(1, ""));
    let mut last = 0;
    let mut n = 0;
    for e in plan.schedule(0, 1) {
        assert!(e.intended_us >= last);
        assert!(e.intended_us < plan.duration_us);
        last = e.intended_us;
        n += 1;
    }
    assert!(n > 0);
}

#[test]
fn shards_partition_the_fleet_exactly() {
    let plan = Plan::from_scenario(&scenario(7, ""));
    let whole: Vec<Event> = plan.schedule(0, 1).collect();
    let mut parts: Vec<Event> = (0..3).flat_map(|s| plan.schedule(s, 3).collect::<Vec<_>>()).collect();
    parts.sort_by_key(|e| (e.intended_us, e.device, e.class));
    let mut whole_sorted = whole.clone();
    whole_sorted.sort_by_key(|e| (e.intended_us, e.device, e.class));
    assert_eq!(parts, whole_sorted);
}

#[test]
fn shares_select_the_exact_number_of_devices() {
    let plan = Plan::from_scenario(&scenario(3, ""));
    assert_eq!(plan.classes[0].participants, 2000);
    assert_eq!(plan.classes[1].participants, 500);
    let mut devices: HashMap<u16, HashSet<u32>> = HashMap::new();
    for e in plan.schedule(0, 1) {
        devices.entry(e.class).or_default().insert(e.device);
    }
    assert_eq!(devices[&0].len(), 2000);
    // A poisson device may, rarely, send nothing in 60 s at 1/2s; all 500 should appear here.
    assert_eq!(devices[&1].len(), 500);
}

#[test]
fn achieved_counts_match_planned_rates() {
    let plan = Plan::from_scenario(&scenario(11, ""));
    let secs = plan.duration_us as f64 / 1e6;
    let mut per_class = [0u64; 2];
    for e in plan.schedule(0, 1) {
        per_class[usize::from(e.class)] += 1;
    }
    for (i, c) in plan.classes.iter().enumerate() {
        let planned = c.planned_rate() * secs;
        let err = (per_class[i] as f64 - planned).abs() / planned;
        let tolerance = if c.arrival == Arrival::Fixed { 0.01 } else { 0.03 };
        assert!(err < tolerance, "class {} got {} planned {planned:.0} ({:.2}%)", c.name, per_class[i], err * 100.0);
    }
}

#[test]
fn sequence_numbers_count_up_per_device_and_class() {
    let plan = Plan::from_scenario(&scenario(5, ""));
    let mut next: HashMap<(u32, u16), u64> = HashMap::new();
    for e in plan.schedule(0, 1) {
        let n = next.entry((e.device, e.class)).or_insert(0);
        assert_eq!(e.seq, *n);
        *n += 1;
    }
}

#[test]
fn sizes_follow_the_declared_distribution() {
    let plan = Plan::from_scenario(&scenario(9, ""));
    let (mut sum, mut n) = (0u64, 0u64);
    for e in plan.schedule(0, 1) {
        if e.class == 0 {
            assert!((300..=700).contains(&e.size));
            sum += u64::from(e.size);
            n += 1;
        } else {
            assert_eq!(e.size, 64);
        }
    }
    let mean = sum as f64 / n as f64;
    assert!((mean - 500.0).abs() < 5.0, "mean {mean}");
}

#[test]
fn total_rate_is_spread_over_the_class() {
    let s = parse_scenario(
        "t.yaml",
        "name: x\nseed: 1\nduration: 10s\ntopics: [{name: t}]\nfleet:\n  devices: 100\n  classes:\n    - {name: a, topic: t, total_rate: 500/s}\n",
    )
    .unwrap();
    let plan = Plan::from_scenario(&s);
    assert!((plan.planned_rate() - 500.0).abs() < 1e-9);
    assert_eq!(plan.schedule(0, 1).count(), 5000);
}

#[test]
fn id_patterns_render_and_reject() {
    let p = IdPattern::parse("dev-{n:06}").unwrap();
    assert_eq!(p.render(42), "dev-000042");
    assert_eq!(p.render(1_234_567), "dev-1234567");
    assert_eq!(IdPattern::parse("gw{n}-x").unwrap().render(5), "gw5-x");
    assert!(IdPattern::parse("device").is_err());
    assert!(IdPattern::parse("d-{id}").is_err());
    assert!(IdPattern::parse("d-{n}-{n}").is_err());
    assert_eq!(p.max_len(10_000_000), 11);
}

#[test]
fn creation_times_can_be_recomputed_for_any_event() {
    let plan = Plan::from_scenario(&scenario(13, ""));
    for e in plan.schedule(0, 1).step_by(97) {
        assert_eq!(plan.created_us(usize::from(e.class), u64::from(e.device), e.seq), Some(e.created_us), "{e:?}");
    }
}

#[test]
fn a_skewed_class_keeps_its_total_and_moves_it_to_the_busy_devices() {
    for (skew, top_min) in [("{zipf: {exponent: 1.1}}", 0.45), ("{hot: {share: 5%, factor: 20}}", 0.48)] {
        let extra = format!("      skew: {skew}\n");
        let skewed = Plan::from_scenario(&shaped("", &extra, ""));
        let even = Plan::from_scenario(&shaped("", "", ""));
        let mut per_device = vec![0u64; 1000];
        let mut n = 0u64;
        for e in skewed.schedule(0, 1) {
            per_device[e.device as usize] += 1;
            n += 1;
        }
        // The total stays (40 s x 1000 devices at 1/s), within the rounding of periods and phases.
        let planned = even.schedule(0, 1).count() as f64;
        assert!((n as f64 - planned).abs() / planned < 0.02, "{skew}: {n} vs {planned}");
        assert!((skewed.planned_rate() - even.planned_rate()).abs() < 1e-9);
        // The busiest 5% of the devices carry at least `top_min` of the records.
        per_device.sort_unstable_by(|a, b| b.cmp(a));
        let top: u64 = per_device[..50].iter().sum();
        assert!(top as f64 / n as f64 >= top_min, "{skew}: top 5% carry {top} of {n}");
        // Every device still sends, and creation times are still recomputable from the seed.
        assert!(per_device.iter().all(|c| *c > 0), "{skew}");
        for e in skewed.schedule(0, 1).step_by(101) {
            assert_eq!(skewed.created_us(0, u64::from(e.device), e.seq), Some(e.created_us), "{e:?}");
        }
    }
}

fn shaped(extra_fleet: &str, class_extra: &str, top: &str) -> Scenario {
    let src = format!(
        r#"
name: shapes
seed: 99
duration: 40s
topics: [{{name: t}}]
fleet:
  devices: 1000
  classes:
    - name: m
      topic: t
      rate: 1/1s
      format: binary
      size: 64B
{class_extra}
{extra_fleet}
{top}
"#
    );
    parse_scenario("shapes.yaml", &src).unwrap()
}

fn per_second(plan: &Plan) -> Vec<u64> {
    let mut v = vec![0u64; (plan.duration_us / 1_000_000) as usize + 1];
    for e in plan.schedule(0, 1) {
        v[(e.intended_us / 1_000_000) as usize] += 1;
    }
    v
}

#[test]
fn a_wave_buffers_drops_exactly_and_flushes_in_a_burst() {
    let wave =
        "waves:\n  - {name: storm, at: 10s, offline: 10s, share: 50%, buffer: {capacity: 8, overflow: drop_oldest}}\n";
    let with = Plan::from_scenario(&shaped("", "", wave));
    let without = Plan::from_scenario(&shaped("", "", ""));
    let offline: Vec<u64> = (0..1000).filter(|d| with.waves[0].includes(*d, &with.cohorts, with.seed)).collect();
    assert!((400..600).contains(&offline.len()), "{}", offline.len());
    // The independent expectation: each offline device's events created in [10s, 20s), less 8 kept.
    let mut created_in_window = std::collections::HashMap::<u32, u64>::new();
    for e in without.schedule(0, 1) {
        if (10_000_000..20_000_000).contains(&e.created_us) && offline.contains(&u64::from(e.device)) {
            *created_in_window.entry(e.device).or_default() += 1;
        }
    }
    let expected_dropped: u64 = created_in_window.values().map(|n| n.saturating_sub(8)).sum();
    let mut schedule = with.schedule(0, 1);
    let events: Vec<Event> = schedule.by_ref().collect();
    let counts = &schedule.waves[0];
    assert_eq!(counts.dropped, expected_dropped);
    assert!(expected_dropped >= offline.len() as u64, "the buffers overflowed");
    assert_eq!(counts.buffered, 8 * offline.len() as u64);
    assert_eq!(counts.streams, offline.len() as u64);
    assert_eq!(counts.unsent, 0);
    // Offline devices send nothing while offline; their kept events are the 8 newest, sent at 20s
    // with their creation times intact.
    for e in &events {
        if offline.contains(&u64::from(e.device)) {
            assert!(!(10_000_000..20_000_000).contains(&e.intended_us), "{e:?}");
            if e.intended_us != e.created_us {
                assert!((12_000_000..20_000_000).contains(&e.created_us), "{e:?}");
                assert_eq!(e.intended_us, 20_000_000);
            }
        }
    }
    assert_eq!(events.len() as u64 + expected_dropped, without.schedule(0, 1).count() as u64);
    // The flush second carries well over three times the usual rate.
    let rates = per_second(&with);
    assert!(rates[20] >= 3 * rates[5], "{} vs {}", rates[20], rates[5]);
}

#[test]
fn a_reconnect_class_sends_once_per_device_at_each_reconnection() {
    let hello = "    - {name: hello, topic: t, trigger: reconnect, format: binary, size: 64B}\n";
    let wave = "waves:\n  - {at: 5s, offline: 5s, reconnect_jitter: 2s, share: 50%, repeat: {every: 15s, times: 3}}\n";
    let plan = Plan::from_scenario(&shaped("", hello, wave));
    let offline: Vec<u64> = (0..1000).filter(|d| plan.waves[0].includes(*d, &plan.cohorts, plan.seed)).collect();
    let hellos: Vec<Event> = plan.schedule(0, 1).filter(|e| e.class == 1).collect();
    // Two reconnections before the end of the load (at 10-12 s and 25-27 s; the third is at 40 s,
    // the end): one hello per offline device each time, at its reconnection, numbered from 0.
    assert_eq!(hellos.len(), 2 * offline.len());
    for e in &hellos {
        assert!(offline.contains(&u64::from(e.device)), "{e:?}");
        assert_eq!(e.intended_us, e.created_us);
        let i = u32::try_from(e.seq).unwrap();
        let at = plan.waves[0].reconnect_ns(i, u64::from(e.device), plan.seed) / 1000;
        assert_eq!(e.intended_us, at, "{e:?}");
        assert_eq!(plan.created_us(1, u64::from(e.device), e.seq), Some(e.created_us));
    }
    // The planned rate counts them: 500 devices x 2 reconnections over 40 s.
    assert!((plan.classes[1].planned_rate() - offline.len() as f64 * 2.0 / 40.0).abs() < 2.0);
    // Nothing else changes: the rate class's events are the same as without the hello class.
    let without = Plan::from_scenario(&shaped("", "", wave));
    let a: Vec<Event> = plan.schedule(0, 1).filter(|e| e.class == 0).collect();
    assert_eq!(a, without.schedule(0, 1).collect::<Vec<_>>());
}

#[test]
fn a_flush_rate_spreads_the_backlog_and_the_device_catches_up() {
    let wave = "waves:\n  - {at: 10s, offline: 10s, reconnect_jitter: 2s, flush_rate: 4/s, buffer: {capacity: 100, overflow: drop_newest}}\n";
    let plan = Plan::from_scenario(&shaped("", "", wave));
    let mut schedule = plan.schedule(0, 1);
    let mut last: std::collections::HashMap<(u32, u16), (u64, u64)> = std::collections::HashMap::new();
    for e in schedule.by_ref() {
        if let Some((t, seq)) = last.insert((e.device, e.class), (e.intended_us, e.seq)) {
            assert!(e.intended_us >= t && e.seq > seq, "per-device order: {e:?}");
            // While flushing, events of a device are at least 250 ms apart.
            if e.intended_us != e.created_us && t >= 20_000_000 {
                assert!(e.intended_us - t >= 249_999, "{e:?} after {t}");
            }
        }
    }
    let c = &schedule.waves[0];
    assert_eq!(c.dropped, 0);
    assert!(c.buffered >= 10_000);
    // 10-12 buffered per device at 4/s, while new ones keep arriving at 1/s: caught up by ~27s.
    assert!((21_000_000..30_000_000).contains(&c.flush_end_us), "{}", c.flush_end_us);
}

#[test]
fn a_repeated_wave_on_a_cohort_hits_only_that_cohort() {
    let fleet = "  cohorts: [{name: eu, share: 20%}, {name: us, share: 30%}]\n";
    let wave = "waves:\n  - {at: 5s, offline: 3s, cohort: eu, repeat: {every: 10s, times: 3}}\n";
    let plan = Plan::from_scenario(&shaped(fleet, "", wave));
    assert_eq!(plan.wave_instances().len(), 3);
    let mut schedule = plan.schedule(0, 1);
    for e in schedule.by_ref() {
        let in_eu = plan.cohorts.contains(0, u64::from(e.device));
        let offline =
            [5_000_000u64, 15_000_000, 25_000_000].iter().any(|s| (*s..*s + 3_000_000).contains(&e.intended_us));
        assert!(!(in_eu && offline), "{e:?}");
    }
    assert_eq!(plan.cohorts.size(0), 200);
    for c in &schedule.waves {
        assert_eq!(c.streams, 200);
    }
}

#[test]
fn a_rollout_moves_the_fleet_to_the_new_version_across_its_window() {
    let fleet = "  firmware:\n    versions: [{name: '1.0', share: 100%}, {name: '2.0'}]\n    rollouts: [{to: '2.0', start: 10s, over: 20s}]\n";
    let class = "      versions:\n        '2.0': {size: 200B, headers: {schema: v2}}\n";
    let plan = Plan::from_scenario(&shaped(fleet, class, ""));
    let mut v2 = [0u64; 40];
    let mut all = [0u64; 40];
    for e in plan.schedule(0, 1) {
        let s = (e.intended_us / 1_000_000) as usize;
        all[s] += 1;
        if e.firmware == 1 {
            v2[s] += 1;
            assert_eq!(e.size, 200);
        } else {
            assert_eq!(e.size, 64);
        }
    }
    for s in 0..40 {
        let share = v2[s] as f64 / all[s] as f64;
        let planned = ((s as f64 + 0.5 - 10.0) / 20.0).clamp(0.0, 1.0);
        assert!((share - planned).abs() < 0.08, "second {s}: {share:.2} vs {planned:.2}");
    }
    assert_eq!(plan.classes[0].payload(1).headers, vec![("schema".to_string(), "v2".to_string())]);
}

#[test]
fn stages_and_ramps_shape_the_rate() {
    let class = "      shape: {stages: [{at: 10s, factor: 3}, {at: 20s, factor: 0}, {at: 30s, factor: 1, ramp: 5s}]}\n";
    let plan = Plan::from_scenario(&shaped("", class, ""));
    let r = per_second(&plan);
    for (s, n) in r.iter().enumerate().take(9).skip(2) {
        assert!((*n as f64 - 1000.0).abs() < 30.0, "{s}: {n}");
    }
    for (s, n) in r.iter().enumerate().take(19).skip(11) {
        assert!((*n as f64 - 3000.0).abs() < 60.0, "{s}: {n}");
    }
    for (s, n) in r.iter().enumerate().take(29).skip(21) {
        assert_eq!(*n, 0, "{s}: silenced");
    }
    assert!(r[31] < r[34] && r[34] < r[37], "ramping: {:?}", &r[30..38]);
    let planned = plan.planned_rate() * 40.0;
    let total: u64 = r.iter().sum();
    assert!((total as f64 - planned).abs() / planned < 0.01, "{total} vs {planned}");
}

#[test]
fn poisson_arrivals_follow_a_diurnal_curve() {
    let class = "      arrival: poisson\n      shape: {diurnal: {period: 40s, low: 0.2, high: 1.8, peak_at: 20s}}\n";
    let plan = Plan::from_scenario(&shaped("", class, ""));
    let r = per_second(&plan);
    let early: u64 = r[0..5].iter().sum();
    let peak: u64 = r[18..23].iter().sum();
    assert!(peak > 5 * early, "peak {peak} early {early}");
}

#[test]
fn every_feature_together_is_still_deterministic() {
    let fleet = "  cohorts: [{name: eu, share: 50%}]\n  firmware:\n    versions: [{name: a, share: 60%}, {name: b, share: 40%}]\n    rollouts: [{from: a, to: b, start: 5s, over: 10s, share: 50%}]\n";
    let class = "      arrival: poisson\n      shape: {stages: [{at: 10s, factor: 2, ramp: 5s}]}\n";
    let wave = "waves:\n  - {at: 8s, offline: 6s, cohort: eu, share: 50%, reconnect_jitter: 3s, flush_rate: 5/s, buffer: {capacity: 3}}\n";
    let hash = |seed: u64| {
        let mut s = shaped(fleet, class, wave);
        s.seed = seed;
        fingerprint(&Plan::from_scenario(&s))
    };
    assert_eq!(hash(5), hash(5));
    assert_ne!(hash(5), hash(6));
}

/// (events, wrapping sum of digests, dropped by wave buffers) of one shard's whole schedule.
fn shard_sum(s: &Scenario, shard: Shard) -> (u64, u64, u64) {
    let plan = Plan::from_scenario(s).sharded(shard);
    let mut sched = plan.schedule(0, 1);
    let (mut n, mut h) = (0u64, 0u64);
    for e in sched.by_ref() {
        assert!(plan.owns(u64::from(e.device)), "shard {shard} sent for device {}", e.device);
        n += 1;
        h = h.wrapping_add(e.digest());
    }
    (n, h, sched.waves.iter().map(|w| w.dropped).sum())
}

#[test]
fn the_shards_of_a_campaign_add_up_to_exactly_the_unsharded_plan() {
    let extra = r#"  cohorts: [{name: a, share: 30%}, {name: b, share: 70%}]
  firmware:
    versions: [{name: "1", share: 100%}, {name: "2"}]
    rollouts: [{to: "2", start: 10s, over: 20s, share: 50%}]
waves:
  - {name: w, at: 15s, offline: 10s, cohort: b, share: 50%, reconnect_jitter: 2s, flush_rate: 5/s, buffer: {capacity: 4}}"#;
    let s = scenario(99, extra);
    let whole = shard_sum(&s, Shard::default());
    assert!(whole.0 > 10_000 && whole.2 > 0, "{whole:?}");
    for n in [1u32, 2, 3, 7] {
        let parts: Vec<_> = (0..n).map(|i| shard_sum(&s, Shard { index: i, count: n })).collect();
        let events: u64 = parts.iter().map(|p| p.0).sum();
        let hash = parts.iter().fold(0u64, |h, p| h.wrapping_add(p.1));
        let dropped: u64 = parts.iter().map(|p| p.2).sum();
        assert_eq!((events, hash, dropped), whole, "{n} shards");
        // Spread evenly, as a seeded hash spreads 2,000 devices: within 4 standard deviations of
        // a binomial share (7 shards: 286 +- 18 devices, so +-25 %).
        for p in &parts {
            let share = p.0 as f64 / (whole.0 as f64 / f64::from(n));
            let sd = ((1.0 - 1.0 / f64::from(n)) / (2000.0 / f64::from(n))).sqrt();
            assert!((share - 1.0).abs() <= 4.0 * sd + 1e-9, "{n} shards: one has {share:.2} of its share (sd {sd:.2})");
        }
    }
}

#[test]
fn every_device_belongs_to_exactly_one_shard() {
    for d in 0..10_000u64 {
        let owners: Vec<u32> = (0..5).filter(|i| Shard { index: *i, count: 5 }.owns(42, d)).collect();
        assert_eq!(owners.len(), 1, "device {d}: {owners:?}");
    }
    assert!(Shard::default().owns(42, 123));
}

#[test]
fn shards_parse_with_located_reasons() {
    assert_eq!(Shard::parse("2/3"), Ok(Shard { index: 2, count: 3 }));
    for bad in ["3/3", "x/3", "1", "0/0", "0/5000", "-1/2"] {
        assert!(Shard::parse(bad).is_err(), "{bad}");
    }
    assert!(Shard::parse("3/3").unwrap_err().contains("below the count"));
}
