use super::*;

fn parse(text: &str) -> Scenario {
    match crate::config::parse_scenario("t.yaml", text) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

/// A valid scenario, with `extra` YAML appended (later keys of the same name are errors, so
/// tests add what the base leaves out, or replace a line with `edit`).
const BASE: &str = "name: s\nseed: 1\nduration: 10s\ntopics: [{name: t}, {name: u, partitions: 4}]\nfleet:\n  devices: 10\n  classes: [{name: a, topic: t, rate: 1/1s}]\n";

fn typed(text: &str) -> Scenario {
    match super::super::yaml::parse(text).map_err(|e| vec![e]).and_then(|root| super::super::yaml::from_node(&root)) {
        Ok(s) => s,
        Err(e) => panic!("{e:?}"),
    }
}

/// The typed rules' problems for `BASE` with `from` replaced by `to`, then `extra` appended.
fn problems(from: &str, to: &str, extra: &str) -> Vec<(String, String)> {
    assert!(BASE.contains(from), "{from}");
    scenario(&typed(&(BASE.replacen(from, to, 1) + extra)))
}

fn paths(p: &[(String, String)]) -> Vec<&str> {
    p.iter().map(|(path, _)| path.as_str()).collect()
}

fn references_of(text: &str) -> Vec<(String, String)> {
    references(&super::super::yaml::parse(text).unwrap())
}

#[test]
fn the_base_scenario_is_valid() {
    assert_eq!(problems("", "", ""), []);
    assert_eq!(references_of(BASE), []);
}

#[test]
fn names_must_be_usable_as_kafka_names() {
    // Names end up in topic names, group ids and report keys.
    let p = problems("name: s\n", "name: \"a b\"\n", "");
    assert_eq!(paths(&p), ["name"]);
    assert!(p[0].1.contains("is not a valid name"), "{p:?}");
    let p = problems("{name: t}", "{name: \"t/x\"}", "");
    assert!(paths(&p).contains(&"topics[0].name"), "{p:?}");
    let p = problems("{name: a,", "{name: \"\",", "consumers: [{name: \"g!\", topics: [t]}]\n");
    assert_eq!(paths(&p), ["fleet.classes[0].name", "consumers[0].name"]);
}

#[test]
fn cross_references_and_duplicates_are_checked_once_on_the_document() {
    // Regression (issue 9): the typed rules checked topics and duplicate names again, so each
    // such problem was reported twice. They live in `references` alone.
    let text = BASE.replace("topic: t,", "topic: nope,")
        + "consumers:\n  - {name: g, topics: [u, gone], dead_letter: {rate: 1%, topic: dlq}}\n  - {name: g, topics: [t]}\nwaves: [{at: 1s, offline: 1s, cohort: east}]\nfaults: [{at: 1s, kind: broker_kill, broker: {leader_of: {topic: x, partition: 0}}}]\n";
    let refs = references_of(&text);
    assert_eq!(
        paths(&refs),
        [
            "fleet.classes[0].topic",
            "consumers[0].topics[1]",
            "consumers[0].dead_letter.topic",
            "waves[0].cohort",
            "faults[0].broker.leader_of.topic",
            "consumers[1].name"
        ]
    );
    assert_eq!(refs[0].1, "unknown topic `nope`: declared topics are `t`, `u`");
    assert_eq!(refs[3].1, "unknown cohort `east`: declare it in `fleet.cohorts`");
    assert_eq!(refs[5].1, "consumer group `g` is declared twice");
    assert_eq!(scenario(&typed(&text)), [], "the typed rules say nothing of references");
    let dup = BASE
        .replace(
            "classes: [{name: a, topic: t, rate: 1/1s}]",
            "classes: [{name: a, topic: t, rate: 1/1s}, {name: a, topic: t, rate: 1/1s}]",
        )
        .replace("{name: u, partitions: 4}", "{name: t}");
    assert_eq!(paths(&references_of(&dup)), ["topics[1].name", "fleet.classes[1].name"]);
    assert_eq!(scenario(&typed(&dup)), []);
}

#[test]
fn rates_need_exactly_one_positive_rate_and_sane_shapes() {
    let p = problems("rate: 1/1s}", "rate: 1/1s, total_rate: 5/s}", "");
    assert_eq!(
        p,
        [("fleet.classes[0].total_rate".to_string(), "give `rate` (per device) or `total_rate`, not both".to_string())]
    );
    let p = problems(", rate: 1/1s}", "}", "");
    assert_eq!(paths(&p), ["fleet.classes[0].rate"]);
    assert!(p[0].1.starts_with("missing `rate`"), "{p:?}");
    let p = problems("rate: 1/1s}", "rate: 0/1s}", "");
    assert_eq!(p[0].1, "rate must be greater than zero");
    let p = problems("rate: 1/1s}", "rate: 1/1s, share: 1%}", "");
    assert_eq!(p[0], ("fleet.classes[0].share".to_string(), "share 1% of 10 devices selects no device".to_string()));
    let p = problems("rate: 1/1s}", "rate: 1/1s, shape: {diurnal: {period: 0s, low: 2, high: 1}}}", "");
    assert_eq!(paths(&p), ["fleet.classes[0].shape.diurnal.period", "fleet.classes[0].shape.diurnal"]);
    let p = problems("rate: 1/1s}", "rate: 1/1s, shape: {stages: [{at: 0s, factor: 2000}]}}", "");
    assert_eq!(
        p[0],
        ("fleet.classes[0].shape.stages[0].factor".to_string(), "factor must be between 0 and 1000".to_string())
    );
}

#[test]
fn skew_needs_an_exponent_in_range_a_share_that_selects_devices_and_a_factor_of_at_least_one() {
    assert_eq!(problems("rate: 1/1s}", "rate: 1/1s, skew: {zipf: {exponent: 1.1}}}", ""), []);
    assert_eq!(problems("rate: 1/1s}", "rate: 1/1s, skew: {hot: {share: 20%, factor: 20}}}", ""), []);
    let p = problems("rate: 1/1s}", "rate: 1/1s, skew: {zipf: {exponent: 0}}}", "");
    assert_eq!(
        p,
        [("fleet.classes[0].skew.zipf.exponent".to_string(), "exponent must be above 0 and at most 4".to_string())]
    );
    let p = problems("rate: 1/1s}", "rate: 1/1s, skew: {zipf: {exponent: 5}}}", "");
    assert_eq!(paths(&p), ["fleet.classes[0].skew.zipf.exponent"]);
    let p = problems("rate: 1/1s}", "rate: 1/1s, skew: {hot: {share: 0%, factor: 0.5}}}", "");
    assert_eq!(paths(&p), ["fleet.classes[0].skew.hot.share", "fleet.classes[0].skew.hot.factor"]);
    assert_eq!(p[0].1, "share must be above 0% and at most 100%");
    assert_eq!(p[1].1, "factor must be between 1 and 10000");
    // 1% of the 10 devices rounds to none.
    let p = problems("rate: 1/1s}", "rate: 1/1s, skew: {hot: {share: 1%, factor: 2}}}", "");
    assert_eq!(
        p[0],
        (
            "fleet.classes[0].skew.hot.share".to_string(),
            "share 1% of the class's 10 devices selects no device".to_string()
        )
    );
}

#[test]
fn a_class_sent_on_reconnect_has_no_rate_and_needs_waves() {
    let wave = "waves: [{at: 1s, offline: 2s}]\n";
    assert_eq!(problems(", rate: 1/1s}", ", trigger: reconnect}", wave), []);
    let p = problems(", rate: 1/1s}", ", trigger: reconnect, rate: 1/1s, skew: {zipf: {exponent: 1}}}", "");
    assert_eq!(paths(&p), ["fleet.classes[0].trigger"; 2]);
    assert!(p[0].1.starts_with("a class sent on reconnect has no `rate`"), "{p:?}");
    assert_eq!(p[1].1, "a class sent on reconnect has no `shape` or `skew`");
    // Waves are checked on the document: `--duration` may drop them from a short run.
    let refs = references_of(&BASE.replace(", rate: 1/1s}", ", trigger: reconnect}"));
    assert_eq!(paths(&refs), ["fleet.classes[0].trigger"]);
    assert!(refs[0].1.ends_with("declare `waves`"), "{refs:?}");
    assert_eq!(references_of(&(BASE.replace(", rate: 1/1s}", ", trigger: reconnect}") + wave)), []);
}

#[test]
fn values_must_fit_the_envelope_and_stay_under_64mib() {
    let p = problems("rate: 1/1s}", "rate: 1/1s, size: 20B}", "");
    assert_eq!(paths(&p), ["fleet.classes[0].size"]);
    assert!(p[0].1.contains("the json envelope needs") && p[0].1.contains("`format: binary`"), "{p:?}");
    assert_eq!(problems("rate: 1/1s}", "rate: 1/1s, size: 48B, format: binary}", ""), []);
    let p = problems("rate: 1/1s}", "rate: 1/1s, size: 65MiB}", "");
    assert_eq!(p[0].1, "values above 64MiB are not supported");
    let p = problems("devices: 10", "devices: 10\n  id_pattern: dev", "");
    assert_eq!(
        p[0],
        ("fleet.id_pattern".to_string(), "the pattern needs a `{n}` placeholder for the device number".to_string())
    );
}

#[test]
fn timed_events_must_start_before_the_end_of_the_load() {
    let p = problems(
        "",
        "",
        "waves: [{at: 10s, offline: 1s}]\nfaults: [{at: 11s, kind: broker_kill}]\nconsumers: [{name: g, topics: [t], replays: [{at: 12s, to: earliest}], restarts: [{at: 10s}]}]\n",
    );
    assert_eq!(paths(&p), ["waves[0].at", "faults[0].at", "consumers[0].replays[0].at", "consumers[0].restarts[0].at"]);
    assert_eq!(p[1].1, "at 11s is not before the end of the load (10s)");
}

#[test]
fn waves_need_an_absence_a_buffer_and_room_between_repeats() {
    let p = problems(
        "",
        "",
        "waves:\n  - {name: w, at: 1s, offline: 0s, buffer: {capacity: 0}, flush_rate: 0/s, repeat: {every: 0s, times: 0}}\n  - {name: w, at: 2s, offline: 1s}\n",
    );
    assert_eq!(
        paths(&p),
        [
            "waves[0].offline",
            "waves[0].buffer.capacity",
            "waves[0].flush_rate",
            "waves[0].repeat.times",
            "waves[0].repeat.every",
            "waves[1].name"
        ]
    );
    assert_eq!(p[5].1, "wave `w` is named twice");
}

#[test]
fn faults_need_the_settings_of_their_kind() {
    let p = problems(
        "",
        "",
        "faults:\n  - {name: f, at: 1s, kind: latency}\n  - {name: f, at: 2s, kind: broker_kill, latency: 5ms, restore_after: 0s}\n  - {at: 3s, kind: broker_pause, broker: {leader_of: {topic: u, partition: 4}}}\n  - {at: 4s, kind: broker_stop, broker: -1}\n",
    );
    assert_eq!(
        paths(&p),
        [
            "faults[0].latency",
            "faults[1].latency",
            "faults[1].restore_after",
            "faults[2].broker.leader_of.partition",
            "faults[3].broker",
            "faults[1].name"
        ]
    );
    assert_eq!(p[1].1, "`latency` applies only to `kind: latency`, not `broker_kill`");
    assert_eq!(p[3].1, "topic `u` has partitions 0 to 3");
}

#[test]
fn movements_say_which_broker_to_add_and_throttle_only_what_moves() {
    let p = problems(
        "",
        "",
        "faults:\n  - {at: 1s, kind: scale_out}\n  - {at: 2s, kind: scale_in, broker: 2, throttle: 10B}\n  - {at: 3s, kind: broker_replace, broker: 3, throttle: 1MiB}\n  - {at: 4s, kind: scale_out, broker: 4, throttle: 1MiB}\n",
    );
    assert_eq!(paths(&p), ["faults[0].broker", "faults[1].throttle", "faults[2].throttle"]);
    assert!(p[0].1.contains("`broker: <id>`"), "{}", p[0].1);
    assert_eq!(p[2].1, "`throttle` applies only to `kind: scale_out` and `scale_in`, not `broker_replace`");
}

#[test]
fn gates_are_checked_against_the_scenario_in_the_same_pass() {
    let (gates, p) = checked(&typed(
        &(BASE.to_string() + "gates: [audit.lost == 0, consumers.g.max_lag < 5, \"produce.latency.p99 < 5\"]\n"),
    ));
    assert_eq!(gates.len(), 1, "the valid gate is parsed once, here");
    assert_eq!(paths(&p), ["gates[1]", "gates[2]"]);
    assert_eq!(p[0].1, "unknown consumer group in `g.max_lag`: the scenario declares no consumer group");
    assert_eq!(p[1].1, "threshold `5` is not a duration such as `250ms`");
}

#[test]
fn groups_need_topics_members_and_one_kind_of_processing_time() {
    let p = problems(
        "",
        "",
        "consumers:\n  - {name: g, members: 0, topics: [], processing_time: 1ms, batch: {size: 0, time: 1ms}, slowdowns: [{at: 1s, for: 0s}], dead_letter: {rate: 1%, topic: t}}\n  - {name: h, topics: [t], dead_letter: {rate: 1%, topic: t}, slowdowns: [{at: 1s, for: 1s, factor: 2}], group_id: \" \"}\n",
    );
    assert_eq!(
        paths(&p),
        [
            "consumers[0].members",
            "consumers[0].topics",
            "consumers[0].batch",
            "consumers[0].batch.size",
            "consumers[0].slowdowns[0].factor",
            "consumers[0].slowdowns[0].for",
            "consumers[1].slowdowns[0].factor",
            "consumers[1].dead_letter.topic",
            "consumers[1].group_id"
        ]
    );
    assert_eq!(p[6].1, "a slowdown factor multiplies `processing_time` or `batch.time`: declare one");
}

#[test]
fn a_class_over_its_bound_is_reported_once_not_also_as_the_total() {
    let p = problems("rate: 1/1s}", "total_rate: 3000000/s}", "");
    assert_eq!(paths(&p), ["fleet.classes[0].total_rate"], "{p:?}");
    assert_eq!(problems("duration: 10s", "duration: 7d", ""), [], "a week is allowed");
}

fn profile_problems(text: &str) -> Vec<(String, String)> {
    profile(&super::super::yaml::from_node(&super::super::yaml::parse(text).unwrap()).unwrap())
}

#[test]
fn profiles_are_checked_for_their_kind_of_target() {
    assert_eq!(profile_problems("name: e\nkind: embedded\n"), []);
    let p = profile_problems("name: e\nkind: embedded\nbootstrap_servers: a:1\nbrokers: 17\nconnect_timeout: 0s\n");
    assert_eq!(paths(&p), ["bootstrap_servers", "brokers", "connect_timeout"]);
    let p = profile_problems("name: k\nkind: kafka\nbrokers: 3\nfaults: embedded\n");
    assert_eq!(paths(&p), ["brokers", "bootstrap_servers", "faults"]);
    assert_eq!(p[1].1, "missing field `bootstrap_servers` for `kind: kafka`");
    let p = profile_problems("name: k\nkind: kafka\nbootstrap_servers: host\nlibrdkafka: {bootstrap.servers: x}\n");
    assert_eq!(
        p,
        [
            ("bootstrap_servers".to_string(), "`host` has no port: write host:port".to_string()),
            ("librdkafka.bootstrap.servers".to_string(), "use the `bootstrap_servers` field instead".to_string())
        ]
    );
    let p = profile_problems(
        "name: k\nkind: kafka\nbootstrap_servers: h:1\nfaults: {process: {pid_file: /run/kafka.pid, restart: start.sh}}\n",
    );
    assert_eq!(paths(&p), ["faults.process.pid_file", "faults.process.restart"]);
    let p = profile_problems("name: k\nkind: kafka\nbootstrap_servers: h:1\nfaults: {command: {broker_kill: \" \"}}\n");
    assert_eq!(p, [("faults.command.broker_kill".to_string(), "the command is empty".to_string())]);
}

#[test]
fn the_embedded_cluster_limits_are_found_before_the_run() {
    let s = parse(
        "name: t\nseed: 1\nduration: 5s\ntopics:\n  - {name: a, partitions: 2, replication: 3, config: {retention.ms: \"1000\"}}\n  - {name: b, partitions: 2, replication: 1}\nfleet:\n  devices: 5\n  classes: [{name: c, topic: a, rate: 1/1s}]\nconsumers:\n  - {name: g, topics: [a], replays: [{at: 2s, to: earliest}, {at: 3s, to: {ago: 1m}}]}\n",
    );
    let three = on_embedded(&s, 3);
    assert!(three.errors.is_empty(), "{:?}", three.errors);
    let paths: Vec<&str> = three.warnings.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["topics[0].config", "consumers[0].replays[1].to"]);
    assert!(three.warnings[0].1.contains("ignores topic configs (retention.ms)"), "{:?}", three.warnings);
    assert!(three.warnings[1].1.starts_with("group `g`: the embedded cluster cannot find offsets by time"));
    let one = on_embedded(&s, 1);
    assert_eq!(
        one.errors,
        [("topics[0].replication".to_string(), "3 is more than the 1 brokers of the embedded target".to_string())]
    );
}
