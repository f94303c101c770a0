//! docker-compose.yml cannot run here (no Docker engine): check its shape, and that the compose
//! profiles point at what it defines.

use crate::common;

use fleetstorm::config::yaml::{self, Kind, Node};

fn compose() -> Node {
    let text = std::fs::read_to_string(common::root().join("docker-compose.yml")).unwrap();
    yaml::parse(&text).unwrap()
}

fn entries(n: &Node) -> Vec<(String, &Node)> {
    match &n.kind {
        Kind::Map(e) => e.iter().map(|(k, v)| (k.as_str().unwrap().to_string(), v)).collect(),
        _ => panic!("expected a mapping at {:?}", n.pos),
    }
}

fn strings(n: &Node) -> Vec<String> {
    match &n.kind {
        Kind::Seq(items) => items.iter().map(|i| i.as_str().unwrap().to_string()).collect(),
        Kind::Scalar { text, .. } => vec![text.clone()],
        Kind::Map(_) => panic!("expected a list"),
    }
}

#[test]
fn every_service_has_a_pinned_image_and_a_profile() {
    let root = compose();
    let services = entries(root.get("services").unwrap());
    assert!(services.len() >= 11);
    for (name, s) in services {
        let image = s.get("image").and_then(Node::as_str).unwrap_or_else(|| panic!("{name}: no image"));
        let tag =
            image.rsplit_once(':').map(|(_, t)| t).unwrap_or_else(|| panic!("{name}: image {image} is not pinned"));
        assert!(tag != "latest" && !tag.is_empty(), "{name}: {image} is not pinned");
        assert_eq!(strings(s.get("profiles").unwrap()).len(), 1, "{name}");
    }
}

#[test]
fn compose_profiles_match_the_published_ports_and_container_names() {
    let root = compose();
    let services = entries(root.get("services").unwrap());
    for stack in ["kafka", "redpanda", "automq"] {
        let profile_path = common::root().join(format!("profiles/compose-{stack}.yaml"));
        let profile = fleetstorm::config::load_profile(&profile_path).unwrap().value;
        let servers = profile.bootstrap_servers.unwrap().joined();
        let brokers: Vec<&(String, &Node)> = services
            .iter()
            .filter(|(_, s)| strings(s.get("profiles").unwrap()) == [stack] && s.get("ports").is_some())
            .collect();
        assert_eq!(brokers.len(), 3, "{stack}");
        for (id, (name, s)) in (1..=3).zip(brokers) {
            let ports = strings(s.get("ports").unwrap());
            let host = ports[0].rsplit_once(':').unwrap().0.to_string();
            assert!(servers.contains(&host), "{stack}: {host} of {name} is not in {servers}");
            let container = s.get("container_name").and_then(Node::as_str).unwrap();
            assert_eq!(container, format!("fleetstorm-{stack}-{id}"), "fault commands address brokers by id");
        }
        let Some(fleetstorm::config::profile::FaultMechanism::Command(c)) = profile.faults else {
            panic!("{stack}: expected command faults")
        };
        assert!(c.broker_kill.unwrap().contains(&format!("fleetstorm-{stack}-{{broker}}")));
    }
}

#[test]
fn the_ci_examples_are_valid_yaml_and_their_gates_fit_the_readiness_scenario() {
    for f in ["docs/ci/github-actions-nightly.yml", "docs/ci/gitlab-ci-nightly.yml"] {
        let text = std::fs::read_to_string(common::root().join(f)).unwrap();
        yaml::parse(&text).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    let gates = fleetstorm::config::load_gates(&common::root().join("docs/ci/gates.yaml")).unwrap();
    let mut s = fleetstorm::config::load_scenario(&common::root().join("scenarios/readiness.yaml")).unwrap().value;
    s.gates = gates;
    assert_eq!(fleetstorm::config::validate::scenario(&s), Vec::<(String, String)>::new());
}

/// The nightly examples' bench step: the baseline they name is committed, and the check fails a
/// ratio that fell by more than the tolerance, and only such a ratio.
#[test]
fn the_nightly_bench_check_fails_a_regressed_ratio_and_passes_a_steady_one() {
    let root = common::root();
    let base: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("docs/benchmarks/ratio-baseline.json")).unwrap())
            .unwrap();
    assert!(base["ratios"].as_object().is_some_and(|r| !r.is_empty()));
    let dir = tempfile::tempdir().unwrap();
    let line = |tool: &str, rep: u32, rate: f64| {
        format!(
            "{{\"part\":\"produce\",\"target\":\"embedded\",\"tool\":\"{tool}\",\"size\":100,\"acks\":\"1\",\"rep\":{rep},\"msgs_per_s\":{rate}}}\n"
        )
    };
    let results = |fs_rate: f64| {
        let p = dir.path().join(format!("r{fs_rate}.jsonl"));
        let text: String =
            (1..=3).map(|i| line("fleetstorm-unkeyed", i, fs_rate) + &line("rdkafka_performance", i, 1000.0)).collect();
        std::fs::write(&p, text).unwrap();
        p
    };
    let check = |args: &[&std::ffi::OsStr]| {
        std::process::Command::new("python3").arg(root.join("scripts/bench_check.py")).args(args).output().unwrap()
    };
    let baseline = dir.path().join("b.json");
    let o = check(&[
        results(900.0).as_os_str(),
        "--write-baseline".as_ref(),
        baseline.as_os_str(),
        "--tolerance".as_ref(),
        "0.1".as_ref(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = check(&[results(850.0).as_os_str(), "--baseline".as_ref(), baseline.as_os_str()]);
    assert_eq!(o.status.code(), Some(0), "0.85 is within 0.10 of 0.90: {}", String::from_utf8_lossy(&o.stdout));
    let o = check(&[results(750.0).as_os_str(), "--baseline".as_ref(), baseline.as_os_str()]);
    assert_eq!(o.status.code(), Some(1), "0.75 regressed: {}", String::from_utf8_lossy(&o.stdout));
    assert!(String::from_utf8_lossy(&o.stdout).contains("embedded/produce/100/1/produce unkeyed"));
}
