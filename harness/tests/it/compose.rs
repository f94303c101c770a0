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
