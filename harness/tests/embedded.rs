//! End to end on the embedded cluster (librdkafka's mock): the fast tier. These prove the harness's
//! own bookkeeping; behaviour claimed against Kafka is proven in `kafka.rs` on a real cluster.

mod common;

use common::*;
use fleetstorm::cli::RunArgs;
use fleetstorm::exit::Exit;
use fleetstorm::report::Status;
use fleetstorm::signals::Interrupts;

#[test]
fn a_short_run_delivers_everything_exactly_once() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "s.yaml", &small_scenario("e2e", 2000, "6s"));
    let out = dir.path().join("out");
    let args = RunArgs { scenario, profile: None, out: Some(out.clone()), duration: None, seed: None };
    let exit = fleetstorm::run_scenario(&args, &Interrupts::default()).unwrap();
    assert_eq!(exit, Exit::Ok);
    let r = read_report(&out);
    assert_eq!(r.status, Status::Completed);
    let p = &r.produce;
    assert!(p.acked > 5000, "acked {}", p.acked);
    assert_eq!(p.failed, 0);
    assert_eq!(p.attempted, p.planned);
    // Audit: every acknowledged record read back exactly once, in order.
    let a = &r.audit.counts;
    assert!(r.audit.complete);
    assert_eq!(a.acked, p.acked);
    assert_eq!(a.seen, a.acked);
    assert_eq!((a.lost, a.duplicates, a.reordered, a.failed_but_seen, a.unacked_seen), (0, 0, 0, 0, 0));
    // Latency was measured, from the intended time, and is never below the latency from send.
    assert!(p.latency_from_intended.p50_us > 0);
    assert!(p.latency_from_intended.p50_us >= p.latency_from_send.p50_us);
    let g = &r.consumers["sink"];
    assert_eq!(g.consumed, p.acked);
    assert!(g.e2e_latency.p50_us > 0);
    // The timeline adds up to the totals.
    let sum = |f: &dyn Fn(&fleetstorm::recorder::TimelinePoint) -> u64| r.timeline.iter().map(f).sum::<u64>();
    assert_eq!(sum(&|t| t.produced), p.attempted);
    assert_eq!(sum(&|t| t.acked), p.acked);
    assert_eq!(sum(&|t| t.consumers["sink"].consumed), g.consumed);
    // Open loop: the achieved rate is the planned rate when the target keeps up.
    let err = (p.achieved_rate - p.planned_rate).abs() / p.planned_rate;
    assert!(err < 0.01, "achieved {} planned {}", p.achieved_rate, p.planned_rate);
    // The human summary is next to the JSON.
    assert!(out.join("summary.md").is_file());
}

#[test]
fn an_interrupted_run_writes_its_report_marked_aborted() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "s.yaml", &small_scenario("intr", 500, "60s"));
    let out = dir.path().join("out");
    let interrupts = Interrupts::default();
    let trigger = interrupts.clone();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(12));
        trigger.raise();
    });
    let args = RunArgs { scenario, profile: None, out: Some(out.clone()), duration: None, seed: None };
    let started = std::time::Instant::now();
    let exit = fleetstorm::run_scenario(&args, &interrupts).unwrap();
    assert_eq!(exit, Exit::Interrupted);
    assert!(started.elapsed().as_secs() < 30, "an interrupt must not wait for the full minute");
    let r = read_report(&out);
    assert_eq!(r.status, Status::Aborted);
    assert!(r.produce.acked > 0, "what was measured before the interrupt is kept");
    assert!(r.load_s < 30.0);
    assert_eq!(r.audit.counts.lost, 0, "records acknowledged before the interrupt were still audited");
}

#[test]
fn overrides_change_duration_and_seed() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "s.yaml", &small_scenario("ovr", 200, "60s"));
    let out = dir.path().join("out");
    let args = RunArgs {
        scenario,
        profile: None,
        out: Some(out.clone()),
        duration: Some("3s".parse().unwrap()),
        seed: Some(99),
    };
    assert_eq!(fleetstorm::run_scenario(&args, &Interrupts::default()).unwrap(), Exit::Ok);
    let r = read_report(&out);
    assert_eq!(r.scenario.seed, 99);
    assert_eq!(r.scenario.duration_s, 3.0);
    assert!(r.load_s <= 3.5, "{}", r.load_s);
}
