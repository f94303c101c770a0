use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use super::*;
use crate::clock::{Clock, ManualClock, Pacer, Step};
use crate::config::parse_scenario;

fn scenario(seed: u64, extra: &str) -> Scenario {
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

/// The producer loop's pacing, driven by a manual clock: the achieved per-second rate equals the
/// planned rate when the sender keeps up, and no event is sent before its intended time.
#[test]
fn paced_sending_matches_the_plan_without_sleeping() {
    let plan = Plan::from_scenario(&scenario(21, ""));
    let clock = ManualClock::default();
    let mut pacer = Pacer::new(plan.schedule(0, 1), plan.duration_us);
    let mut per_second = vec![0u64; 60];
    loop {
        match pacer.step(clock.now_us()) {
            Step::Send(e) => {
                assert!(e.intended_us <= clock.now_us());
                assert!(clock.now_us() - e.intended_us < 1000, "sent more than 1ms late");
                per_second[(clock.now_us() / 1_000_000) as usize] += 1;
            }
            // The real driver sleeps here; the test jumps, in steps of at most 1 ms.
            Step::WaitUntil(t) => clock.set(t.min(clock.now_us() + 1000)),
            Step::Done => break,
        }
    }
    let planned = plan.planned_rate();
    // Skip the first period of each class (phases ramp up); compare the steady state.
    for (s, n) in per_second.iter().enumerate().skip(5) {
        let err = (*n as f64 - planned).abs() / planned;
        // The poisson class adds sqrt(rate) of noise per second; 4 sigma of it plus 1%.
        let tolerance = 0.01 + 4.0 * plan.classes[1].planned_rate().sqrt() / planned;
        assert!(err < tolerance, "second {s}: {n} vs {planned:.0}");
    }
    let steady: u64 = per_second[5..].iter().sum();
    let err = (steady as f64 / 55.0 - planned).abs() / planned;
    assert!(err < 0.01, "steady-state rate off by {:.2}%", err * 100.0);
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
fn intended_times_can_be_recomputed_for_any_event() {
    let plan = Plan::from_scenario(&scenario(13, ""));
    for e in plan.schedule(0, 1).step_by(97) {
        assert_eq!(plan.intended_us(usize::from(e.class), u64::from(e.device), e.seq), Some(e.intended_us), "{e:?}");
    }
}
