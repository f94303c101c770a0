//! The binary's contract: exit codes, error messages, signals.

use crate::common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn validate_accepts_every_shipped_scenario_and_profile() {
    let root = root();
    let mut files: Vec<_> = Vec::new();
    for dir in ["scenarios", "profiles"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "yaml") {
                files.push(p);
            }
        }
    }
    assert!(files.len() >= 2);
    let o = bin().arg("validate").args(&files).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn validate_lists_every_problem_with_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "bad.yaml",
        "name: bad\nseed: 1\nduration: 30x\ntopics: [{name: t}]\nfleet:\n  devices: 10\n  classes:\n    - name: a\n      topic: nope\n      rate: 1/5s\n      colour: red\n",
    );
    let o = bin().arg("validate").arg(&f).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o);
    let file = f.display().to_string();
    assert!(err.contains(&format!("{file}:3:11: duration: invalid duration `30x`")), "{err}");
    assert!(err.contains(&format!("{file}:11:7: fleet.classes[0].colour: unknown field `colour`")), "{err}");
    assert!(err.contains("3 problems"), "{err}");
}

#[test]
fn semantic_errors_are_located_too() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "bad.yaml",
        "name: bad\nseed: 1\nduration: 10s\nwarmup: 20s\ntopics: [{name: t}]\nfleet:\n  devices: 10\n  classes:\n    - name: a\n      topic: nope\n      rate: 1/5s\n",
    );
    let o = bin().arg("validate").arg(&f).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o);
    assert!(err.contains(":4:9: warmup: warmup 20s must be shorter than duration 10s"), "{err}");
    assert!(err.contains(":10:14: fleet.classes[0].topic: unknown topic `nope`"), "{err}");
}

#[test]
fn an_invalid_scenario_exits_2_without_running() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "bad.yaml", "name: bad\n");
    let o = bin().args(["run"]).arg(&f).arg("--out").arg(dir.path().join("out")).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("missing field `seed`"));
    assert!(!dir.path().join("out").exists(), "nothing ran, nothing was written");
}

#[test]
fn more_replicas_than_the_embedded_cluster_has_brokers_is_located_and_exits_2() {
    // Valid on its own, impossible on the 3-broker embedded target: said with file, line, column
    // and field, before anything runs.
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "rf.yaml",
        "name: rf\nseed: 1\nduration: 2s\ntopics:\n  - name: rf.t\n    partitions: 2\n    replication: 5\nfleet:\n  devices: 5\n  classes: [{name: a, topic: rf.t, rate: 1/1s}]\n",
    );
    let o = bin().args(["run"]).arg(&f).arg("--out").arg(dir.path().join("out")).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let want =
        format!("{}:7:18: topics[0].replication: 5 is more than the 3 brokers of the embedded target", f.display());
    assert!(text(&o).contains(&want), "{}\nwanted: {want}", text(&o));
    assert!(!dir.path().join("out").exists(), "nothing ran, nothing was written");
}

#[test]
fn a_missing_file_exits_2_naming_it() {
    let o = bin().args(["run", "/nonexistent/scenario.yaml"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("/nonexistent/scenario.yaml"), "{}", text(&o));
}

#[test]
fn an_unreachable_target_exits_3_within_30s_naming_the_servers() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "s.yaml", &small_scenario("unreach", 10, "5s"));
    // Port 9 (discard) on loopback: nothing listens there.
    let profile = write(
        dir.path(),
        "p.yaml",
        "name: nowhere\nkind: kafka\nbootstrap_servers: [127.0.0.1:9, 127.0.0.1:19]\nconnect_timeout: 5s\nlibrdkafka:\n  sasl.password: hunter22-secret\n",
    );
    let out = dir.path().join("out");
    let started = Instant::now();
    let o = bin().arg("run").arg(&scenario).arg("--profile").arg(&profile).arg("--out").arg(&out).output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("127.0.0.1:9,127.0.0.1:19"), "{t}");
    assert!(!t.contains("hunter22-secret"), "secrets never reach output");
    let r = read_report(&out);
    assert_eq!(r.status, fleetstorm::report::Status::Failed);
    assert!(r.status_reason.unwrap().contains("unreachable"));
    let json = std::fs::read_to_string(out.join("report.json")).unwrap();
    assert!(!json.contains("hunter22-secret"), "secrets never reach reports");
    assert!(json.contains("[redacted]"));
}

#[test]
fn check_of_an_unreachable_target_exits_3_naming_each_server_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let profile = write(
        dir.path(),
        "p.yaml",
        "name: nowhere\nkind: kafka\nbootstrap_servers: [127.0.0.1:9, 127.0.0.1:19]\nconnect_timeout: 5s\nlibrdkafka:\n  sasl.password: hunter22-secret\n",
    );
    let out = dir.path().join("out");
    let o = bin().arg("check").arg("--profile").arg(&profile).arg("--out").arg(&out).output().unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(3), "{t}");
    assert!(t.contains("FAIL  reach         no bootstrap server accepts a TCP connection (127.0.0.1:9: "), "{t}");
    assert!(t.contains("127.0.0.1:19: "), "{t}");
    assert!(!t.contains("hunter22-secret"), "{t}");
    let json = std::fs::read_to_string(out.join("check.json")).unwrap();
    assert!(json.contains("\"outcome\": \"fail\"") && !json.contains("hunter22-secret"), "{json}");
}

#[test]
fn check_on_the_embedded_cluster_passes_and_skips_what_does_not_apply() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "s.yaml", &small_scenario("chk", 10, "5s"));
    let o =
        bin().args(["check", "--profile"]).arg(root().join("profiles/embedded.yaml")).arg(&scenario).output().unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    for line in [
        "ok    connect       PLAINTEXT, metadata read",
        "ok    brokers       3 answering: ids [1, 2, 3]",
        "ok    topics        to create: chk.tel, chk.hb",
        "skip  access        the embedded cluster has no ACLs",
    ] {
        assert!(t.contains(line), "missing `{line}` in {t}");
    }
    // The ranges come from the mock's ApiVersions answer, as librdkafka logged it.
    assert!(t.contains("ok    api versions") && t.contains("Produce 0.."), "{t}");
}

#[test]
fn sigint_stops_the_run_writes_an_aborted_report_and_exits_130() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "s.yaml", &small_scenario("sigint", 300, "2m"));
    let out = dir.path().join("out");
    let mut child = bin().arg("run").arg(&scenario).arg("--out").arg(&out).spawn().unwrap();
    // The first interval log appears once the load has run a second.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !out.join("produce-latency.hlog").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(3));
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let started = Instant::now();
    let status = child.wait().unwrap();
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(status.code(), Some(130));
    let r = read_report(&out);
    assert_eq!(r.status, fleetstorm::report::Status::Aborted);
    assert!(r.produce.acked > 0);
}

#[test]
fn a_profile_with_an_unset_variable_is_invalid_input() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "s.yaml", &small_scenario("envp", 10, "5s"));
    let profile = write(
        dir.path(),
        "p.yaml",
        "name: cloud\nkind: kafka\nbootstrap_servers: b:9092\nlibrdkafka:\n  sasl.password: ${FLEETSTORM_TEST_UNSET_VAR}\n",
    );
    let o = bin().arg("run").arg(&scenario).arg("--profile").arg(&profile).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o)
            .contains(":5:18: librdkafka.sasl.password: environment variable `FLEETSTORM_TEST_UNSET_VAR` is not set"),
        "{}",
        text(&o)
    );
}

#[test]
fn validate_reports_an_unknown_topic_once() {
    // Regression (issue 9): the raw-document reference check and the typed checks both reported
    // `fleet.classes[0].topic: unknown topic ...`, so `validate` printed the same line twice.
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "topic.yaml",
        "name: t\nseed: 1\nduration: 10s\ntopics: [{name: t}]\nfleet:\n  devices: 10\n  classes:\n    - {name: a, topic: nope, rate: 1/5s}\n",
    );
    let o = bin().arg("validate").arg(&f).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o);
    assert_eq!(err.matches("fleet.classes[0].topic: unknown topic `nope`").count(), 1, "{err}");
    assert!(err.contains("1 problem\n"), "{err}");
}

#[test]
fn plan_locates_problems_with_file_line_and_column_like_validate() {
    // Regression (issue 9): `plan` printed `file: path: message`. A problem that appears only with
    // the command-line overrides (the shortened run drops the fault a gate names) is located too.
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "plan.yaml",
        "name: p\nseed: 1\nduration: 30s\ntopics: [{name: t}]\nfleet:\n  devices: 10\n  classes: [{name: a, topic: t, rate: 1/5s}]\nfaults: [{name: kill, at: 20s, kind: broker_kill}]\ngates:\n  - audit.lost == 0\n  - faults.kill.recovered < 30s\n",
    );
    let o = bin().arg("plan").arg(&f).arg("--duration").arg("10s").output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let want = format!("{}:11:5: gates[1]: unknown fault in `kill.recovered`", f.display());
    assert!(text(&o).contains(&want), "{}\nwanted: {want}", text(&o));
    // Without the override the same scenario plans.
    let o = bin().arg("plan").arg(&f).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn a_gates_file_problem_points_into_the_gates_file() {
    // Regression (issue 9): `run --gates G` with `faults.*` gates on a scenario without faults said
    // `scenarios/quickstart.yaml:9:1: gates[6]`, a position in the scenario instead of in G.
    let dir = tempfile::tempdir().unwrap();
    let gates = write(dir.path(), "g.yaml", "gates:\n  - audit.lost == 0\n  - faults.*.unavailable < 30s\n");
    let scenario = root().join("scenarios/quickstart.yaml");
    let out = dir.path().join("out");
    let o = bin().arg("run").arg(&scenario).arg("--gates").arg(&gates).arg("--out").arg(&out).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let want = format!("{}:3:5: gates[1]: `*` matches no fault: the scenario declares none", gates.display());
    assert!(text(&o).contains(&want), "{}\nwanted: {want}", text(&o));
    assert!(!text(&o).contains("quickstart.yaml:"), "{}", text(&o));
    assert!(!out.exists(), "nothing ran, nothing was written");
}

/// `validate` on a one-class scenario (`duration`, `devices`, the class's settings): exit code and
/// output, which must come at once.
fn validate_bounded(dir: &std::path::Path, duration: &str, devices: &str, class: &str) -> (Option<i32>, String) {
    let f = write(
        dir,
        "bound.yaml",
        &format!(
            "name: b\nseed: 1\nduration: {duration}\ntopics: [{{name: t}}]\nfleet:\n  devices: {devices}\n  classes: [{{name: a, topic: t, {class}}}]\n"
        ),
    );
    let started = Instant::now();
    let o = bin().arg("validate").arg(&f).output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "{}", text(&o));
    (o.status.code(), text(&o))
}

#[test]
fn a_billion_devices_are_refused_with_the_bound() {
    // Regression (issue 16): `devices: 1000000000` validated, then plan and run aborted on a
    // 3 GiB allocation.
    let dir = tempfile::tempdir().unwrap();
    let (code, t) = validate_bounded(dir.path(), "20s", "1000000000", "rate: 1/1h");
    assert_eq!(code, Some(2), "{t}");
    assert!(t.contains(":6:12: fleet.devices: devices must be between 1 and 10,000,000"), "{t}");
}

#[test]
fn a_per_device_rate_of_ten_million_a_second_is_refused_with_the_bound() {
    // Regression (issue 16): `rate: 1/0.0000001s` validated and plan ran for minutes.
    let dir = tempfile::tempdir().unwrap();
    let (code, t) = validate_bounded(dir.path(), "20s", "10", "rate: 1/0.0000001s");
    assert_eq!(code, Some(2), "{t}");
    assert!(t.contains(":7:39: fleet.classes[0].rate: class `a` peaks at 100,000,000/s (over 10 devices); at most 2,000,000/s per class is supported"), "{t}");
}

#[test]
fn a_total_rate_of_1e12_a_second_is_refused_with_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let (code, t) = validate_bounded(dir.path(), "20s", "10", "total_rate: 1e12/s");
    assert_eq!(code, Some(2), "{t}");
    assert!(t.contains("fleet.classes[0].total_rate: class `a` peaks at 1,000,000,000,000/s"), "{t}");
}

#[test]
fn the_classes_together_are_bounded_too() {
    let dir = tempfile::tempdir().unwrap();
    let (code, t) = validate_bounded(
        dir.path(),
        "20s",
        "1000",
        "total_rate: 2000000/s}, {name: b, topic: t, total_rate: 2000000/s}, {name: c, topic: t, total_rate: 2000000/s",
    );
    assert_eq!(code, Some(2), "{t}");
    assert!(
        t.contains("fleet.classes: the classes peak at 6,000,000/s together; at most 5,000,000/s is supported"),
        "{t}"
    );
}

#[test]
fn a_diurnal_period_of_1us_is_refused_with_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let (code, t) =
        validate_bounded(dir.path(), "20s", "10", "rate: 1/1s, shape: {diurnal: {period: 1us, low: 0.5, high: 1}}");
    assert_eq!(code, Some(2), "{t}");
    assert!(t.contains("fleet.classes[0].shape.diurnal.period: period must be at least 1s"), "{t}");
}

#[test]
fn a_100_day_duration_is_refused_with_the_bound() {
    // Regression (issue 16): `duration: 100d` made plan hang.
    let dir = tempfile::tempdir().unwrap();
    let (code, t) = validate_bounded(dir.path(), "100d", "10", "rate: 1/1s");
    assert_eq!(code, Some(2), "{t}");
    assert!(t.contains(":3:11: duration: duration must be at most 168h (a week)"), "{t}");
}

#[test]
fn more_device_streams_than_the_bound_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (code, t) = validate_bounded(
        dir.path(),
        "20s",
        "10000000",
        "rate: 1/1h}, {name: b, topic: t, rate: 1/1h}, {name: c, topic: t, rate: 1/1h",
    );
    assert_eq!(code, Some(2), "{t}");
    assert!(t.contains("fleet.classes: 30,000,000 device streams"), "{t}");
}

#[test]
fn more_planned_events_than_the_bound_are_refused_by_validate_and_plan() {
    // A million events a second for an hour no longer validates: `plan` visits every event, and
    // said nothing for minutes.
    let dir = tempfile::tempdir().unwrap();
    let (code, t) = validate_bounded(dir.path(), "1h", "1000", "total_rate: 1000000/s, size: 64B, format: binary");
    assert_eq!(code, Some(2), "{t}");
    let want = ":3:11: duration: up to 3,600,000,000 events over 1h at the classes' peak rates; at most 1,000,000,000 are supported";
    assert!(t.contains(want), "{t}");
    let started = Instant::now();
    let o = bin().arg("plan").arg(dir.path().join("bound.yaml")).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains(want), "{}", text(&o));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn an_alias_bomb_is_refused_by_validate_at_once() {
    // Regression (issue 16): eight nested alias levels (a 380-byte file) aborted at a 4 GB limit.
    let dir = tempfile::tempdir().unwrap();
    let mut bomb = String::from("x0: &a0 [x,x,x,x,x,x,x,x,x,x]\n");
    for i in 1..8 {
        bomb.push_str(&format!("x{i}: &a{i} [{}]\n", vec![format!("*a{}", i - 1); 10].join(",")));
    }
    let f = write(dir.path(), "bomb.yaml", &bomb);
    let started = Instant::now();
    let o = bin().arg("validate").arg(&f).output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains(":6:10: the document expands through its aliases to more than"), "{}", text(&o));
}

#[test]
fn four_thousand_bad_rates_are_all_reported_at_once_and_quickly() {
    // Regression (issue 16): each problem deserialized the whole document again: 4,000 classes
    // with `rate: x` took 12.6 s.
    let dir = tempfile::tempdir().unwrap();
    let mut s =
        String::from("name: q\nseed: 1\nduration: 10s\ntopics: [{name: t}]\nfleet:\n  devices: 10\n  classes:\n");
    for i in 0..4000 {
        s.push_str(&format!("    - {{name: c{i}, topic: t, rate: x}}\n"));
    }
    let f = write(dir.path(), "many.yaml", &s);
    let started = Instant::now();
    let o = bin().arg("validate").arg(&f).output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(o.status.code(), Some(2));
    let t = text(&o);
    assert!(t.contains("4000 problems"), "{}", &t[..t.len().min(500)]);
    assert!(
        t.contains(":4007:37: fleet.classes[3999].rate: invalid rate `x`"),
        "{}",
        &t[t.len().saturating_sub(500)..]
    );
}

/// Regression (issue 16): non-UTF-8 input printed its cause twice and no position.
#[test]
fn a_file_that_is_not_utf8_is_named_once_with_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("latin1.yaml");
    std::fs::write(&f, b"name: x\nseed: 1\nfleet: caf\xe9\n").unwrap();
    let o = bin().arg("validate").arg(&f).output().unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains(&format!("{}:3:11: not UTF-8 text (byte 0xe9)", f.display())), "{t}");
    assert_eq!(t.matches("UTF-8").count(), 2, "said once (the message names UTF-8 twice): {t}");
}

#[test]
fn a_shard_without_a_campaign_or_an_index_is_refused_with_the_way_out() {
    let q = root().join("scenarios/quickstart.yaml");
    let o = bin().arg("run").arg(&q).args(["--shard", "0/3"]).env_remove("FLEETSTORM_CAMPAIGN").output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--shard 0/3 needs a campaign id shared by every shard"), "{}", text(&o));
    let o = bin()
        .arg("run")
        .arg(&q)
        .args(["--shards", "3", "--campaign", "c"])
        .env_remove("JOB_COMPLETION_INDEX")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("JOB_COMPLETION_INDEX, which is not set"), "{}", text(&o));
    let o = bin().arg("run").arg(&q).args(["--shard", "3/3", "--campaign", "c"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("the shard index must be below the count"), "{}", text(&o));
    // The embedded cluster lives in one process: shards could not share it.
    let o = bin()
        .arg("run")
        .arg(&q)
        .args(["--shards", "3"])
        .env("JOB_COMPLETION_INDEX", "1")
        .env("FLEETSTORM_CAMPAIGN", "c")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("fleetstorm serve-embedded"), "{}", text(&o));
}

#[test]
fn plan_shows_one_shard_and_the_shards_hashes_add_up_to_the_whole_plan() {
    let q = root().join("scenarios/readiness.yaml");
    let hash = |shard: Option<&str>| -> (u64, u64, String) {
        let mut c = bin();
        c.arg("plan").arg(&q).args(["--duration", "60s", "--json"]);
        if let Some(s) = shard {
            c.args(["--shard", s]);
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let h = u64::from_str_radix(v["plan_hash"].as_str().unwrap(), 16).unwrap();
        (v["total"].as_u64().unwrap(), h, v["shard"].to_string())
    };
    let whole = hash(None);
    assert_eq!(whole.2, "null");
    let parts: Vec<_> = ["0/3", "1/3", "2/3"].iter().map(|s| hash(Some(s))).collect();
    assert_eq!(parts.iter().map(|p| p.0).sum::<u64>(), whole.0);
    assert_eq!(parts.iter().fold(0u64, |h, p| h.wrapping_add(p.1)), whole.1);
    assert!(parts[1].2.contains("\"shard\":\"1/3\""), "{}", parts[1].2);
    let o = bin().arg("plan").arg(&q).args(["--duration", "60s", "--shard", "1/3"]).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("shard 1/3: "), "{}", text(&o));
}
