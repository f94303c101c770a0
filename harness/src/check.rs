//! `fleetstorm check`: the first thing a user runs against a new target.
//!
//! In order, each step only when the one before passed: the bootstrap servers accept TCP
//! connections; the client connects (TLS verified, SASL authenticated) and reads the cluster's
//! metadata; the brokers' API versions; and, given a scenario, its topics (present, or creatable:
//! CreateTopics with `validate_only`) and this principal's permissions on them and on the groups
//! it joins (the brokers' own answer, KIP-430). Each failure is one line a person can act on,
//! the same words `run` uses ([`crate::driver::probe::Cause`]), and exit 3. With `--compat`, a
//! compatibility matrix of what IoT pipelines rely on ([`crate::driver::compat`]). Results go to
//! stdout (and `check.json` with `--out`); secrets never reach either.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::Failure;
use crate::cli::CheckArgs;
use crate::config::profile::{Redactor, TargetKind};
use crate::config::{self, Profile, Scenario};
use crate::driver::probe;
use crate::driver::target::{Connection, TargetError};
use crate::driver::{ClientEvents, launch};
use crate::exit::Exit;
use crate::report::schema::{Capability, Verdict};

/// How one step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail,
    /// Not run: an earlier step failed, or it does not apply to this target.
    Skipped,
}

/// The steps, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Reach,
    Connect,
    Brokers,
    ApiVersions,
    Topics,
    Access,
}

impl Step {
    fn label(self) -> &'static str {
        match self {
            Step::Reach => "reach",
            Step::Connect => "connect",
            Step::Brokers => "brokers",
            Step::ApiVersions => "api versions",
            Step::Topics => "topics",
            Step::Access => "access",
        }
    }
}

/// One step's result.
#[derive(Clone, Debug, Serialize)]
pub struct Item {
    pub step: Step,
    pub outcome: Outcome,
    /// One line; for a failure, the cause a person can act on.
    pub detail: String,
}

/// What `check` found (check.json).
#[derive(Debug, Serialize)]
pub struct Checked {
    pub profile: String,
    pub bootstrap: String,
    pub items: Vec<Item>,
}

impl Checked {
    fn push(&mut self, step: Step, outcome: Outcome, detail: impl Into<String>) {
        let detail = detail.into();
        let mark = match outcome {
            Outcome::Pass => "ok  ",
            Outcome::Fail => "FAIL",
            Outcome::Skipped => "skip",
        };
        println!("  {mark}  {:<13} {detail}", step.label());
        self.items.push(Item { step, outcome, detail });
    }

    fn failed(&self) -> bool {
        self.items.iter().any(|i| i.outcome == Outcome::Fail)
    }
}

/// `fleetstorm check --profile P [SCENARIO] [--compat] [--out DIR]`.
pub fn run(args: &CheckArgs) -> Result<Exit, Failure> {
    let required = required_capabilities(&args.require).map_err(Failure::Invalid)?;
    let profile = config::load_profile(&args.profile).map_err(|e| Failure::Invalid(e.into()))?;
    let scenario = match &args.scenario {
        Some(p) => Some(config::load_scenario(p).map_err(|e| Failure::Invalid(e.into()))?),
        None => None,
    };
    let redactor = Arc::new(match &scenario {
        Some(s) => Redactor::for_run(&profile.value, &s.value),
        None => Redactor::for_profile(&profile.value),
    });
    let checked = connection_checks(&profile.value, scenario.as_ref().map(|s| &s.value), &redactor);
    if let Some(out) = &args.out {
        write_json(
            out,
            "check.json",
            &redactor.scrub_all(serde_json::to_value(&checked).map_err(|e| Failure::Output(e.into()))?),
        )?;
    }
    if checked.failed() {
        return Ok(Exit::Target);
    }
    if args.compat {
        let options = crate::driver::compat::Options::default();
        let matrix = crate::driver::compat::matrix(&profile.value, redactor.clone(), &options)
            .map_err(|e| Failure::CouldNotStart(anyhow::anyhow!(redactor.scrub(&e.to_string()))))?;
        print!("{}", crate::report::compat::text(&matrix));
        if let Some(out) = &args.out {
            write_json(out, "compat.json", &matrix)?;
        }
        let missing: Vec<String> = required
            .iter()
            .filter_map(|&cap| match matrix.cell(cap) {
                Some(c) if c.outcome.verdict() == Verdict::Works => None,
                Some(c) => Some(format!("{} ({}: {})", capability_name(cap), c.outcome.verdict(), c.detail)),
                None => Some(format!("{} (not tried)", capability_name(cap))),
            })
            .collect();
        if !missing.is_empty() {
            eprintln!("check: FAIL required capabilities that do not work here:");
            for m in &missing {
                eprintln!("  {m}");
            }
            return Ok(Exit::GateFailed);
        }
        if !required.is_empty() {
            eprintln!("check: ok all {} required capabilities work", required.len());
        }
    }
    Ok(Exit::Ok)
}

/// `--require`'s names (compat.json's, or `all`) as capabilities.
fn required_capabilities(names: &[String]) -> anyhow::Result<Vec<Capability>> {
    let mut out = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        if name == "all" {
            out.extend(Capability::ALL);
            continue;
        }
        let cap: Capability = serde_json::from_value(serde_json::Value::String(name.to_string())).map_err(|_| {
            let known: Vec<String> = Capability::ALL.iter().map(|&c| capability_name(c)).collect();
            anyhow::anyhow!("--require: unknown capability `{name}`; one of: all, {}", known.join(", "))
        })?;
        out.push(cap);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// A capability's name in compat.json (`transaction_commit`).
fn capability_name(cap: Capability) -> String {
    serde_json::to_value(cap).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_else(|| cap.to_string())
}

/// Every step but the compatibility matrix, printed as it goes.
pub fn connection_checks(profile: &Profile, scenario: Option<&Scenario>, redactor: &Arc<Redactor>) -> Checked {
    let bootstrap = match profile.kind {
        TargetKind::Embedded => "(embedded cluster)".to_string(),
        TargetKind::Kafka => profile.bootstrap_servers.as_ref().map(|s| s.joined()).unwrap_or_default(),
    };
    let kind = match profile.kind {
        TargetKind::Embedded => "embedded",
        TargetKind::Kafka => "kafka",
    };
    println!("check  {} ({kind})  {bootstrap}", profile.name);
    let mut c = Checked { profile: profile.name.clone(), bootstrap: bootstrap.clone(), items: Vec::new() };
    let timeout = profile.connect_timeout.0;

    // 1. TCP.
    if profile.kind == TargetKind::Kafka {
        let reached = probe::reach(&bootstrap, timeout.min(Duration::from_secs(5)));
        let up = reached.iter().filter(|(_, r)| r.is_ok()).count();
        if up == 0 {
            let why: Vec<String> =
                reached.iter().map(|(s, r)| format!("{s}: {}", r.as_ref().err().map_or("", |e| e.as_str()))).collect();
            c.push(
                Step::Reach,
                Outcome::Fail,
                format!("no bootstrap server accepts a TCP connection ({})", why.join("; ")),
            );
            return c;
        }
        let down: Vec<&str> = reached.iter().filter(|(_, r)| r.is_err()).map(|(s, _)| s.as_str()).collect();
        let detail = if down.is_empty() {
            format!("{up} of {} bootstrap servers accept TCP connections", reached.len())
        } else {
            format!("{up} of {} bootstrap servers accept TCP connections (not: {})", reached.len(), down.join(", "))
        };
        c.push(Step::Reach, Outcome::Pass, detail);
    } else {
        c.push(Step::Reach, Outcome::Skipped, "the embedded cluster runs in this process");
    }

    // 2. TLS, SASL, metadata.
    let events = Arc::new(ClientEvents::default());
    let conn = match Connection::open(profile, events, redactor.clone(), Arc::new(|| false)) {
        Ok(conn) => conn,
        Err(e) => {
            c.push(Step::Connect, Outcome::Fail, redactor.scrub(&e.to_string()));
            return c;
        }
    };
    c.push(Step::Connect, Outcome::Pass, connected(&conn.base));
    c.push(Step::Brokers, Outcome::Pass, format!("{} answering: ids {:?}", conn.brokers.len(), conn.brokers));

    // 3. API versions.
    match probe::api_versions(&conn.bootstrap, &conn.base, timeout) {
        Ok(r) if !r.is_empty() => c.push(Step::ApiVersions, Outcome::Pass, versions(&r)),
        Ok(_) => c.push(Step::ApiVersions, Outcome::Skipped, "unverified: librdkafka logged no ApiVersions answer"),
        Err(e) => c.push(Step::ApiVersions, Outcome::Skipped, format!("unverified: {}", redactor.scrub(&e))),
    }

    // 4. The scenario's topics and permissions.
    let Some(s) = scenario else {
        c.push(Step::Topics, Outcome::Skipped, "no scenario given");
        return c;
    };
    let names: Vec<String> = s.topics.iter().map(|t| t.name.clone()).collect();
    let counts = match conn.partition_counts(&names) {
        Ok(m) => m,
        Err(e) => {
            c.push(Step::Topics, Outcome::Fail, redactor.scrub(&e.to_string()));
            return c;
        }
    };
    let missing: Vec<&config::scenario::TopicSpec> =
        s.topics.iter().filter(|t| counts.get(&t.name).is_some_and(Option::is_none)).collect();
    let present: Vec<String> = counts.iter().filter_map(|(n, p)| p.map(|p| format!("{n} ({p} partitions)"))).collect();
    match conn.would_create(&missing) {
        Ok(answers) => {
            let refused: Vec<String> =
                answers.iter().filter_map(|(_, r)| r.as_ref().err().map(ToString::to_string)).collect();
            let mut parts = Vec::new();
            if !present.is_empty() {
                parts.push(format!("exist: {}", present.join(", ")));
            }
            if !missing.is_empty() {
                let names: Vec<&str> = missing.iter().map(|t| t.name.as_str()).collect();
                parts.push(format!("to create: {}", names.join(", ")));
            }
            if let Some(first) = refused.first() {
                c.push(Step::Topics, Outcome::Fail, first.clone());
            } else {
                let how = if conn.is_embedded() || missing.is_empty() {
                    ""
                } else {
                    " (the brokers would create them: CreateTopics validate_only)"
                };
                c.push(Step::Topics, Outcome::Pass, format!("{}{how}", parts.join("; ")));
            }
        }
        Err(e) => c.push(Step::Topics, Outcome::Fail, redactor.scrub(&e.to_string())),
    }
    if conn.is_embedded() {
        c.push(Step::Access, Outcome::Skipped, "the embedded cluster has no ACLs");
        return c;
    }
    let needs = launch::needs(s, 0);
    match conn.denials(&needs) {
        Ok(d) if d.is_empty() => {
            let topics = present.len();
            let groups = needs.groups.len();
            c.push(
                Step::Access,
                Outcome::Pass,
                format!(
                    "{} may do what the scenario needs on {topics} existing topic(s) and {groups} group(s)",
                    probe::principal(&conn.base)
                ),
            );
        }
        Ok(d) => {
            for x in d {
                c.push(Step::Access, Outcome::Fail, x.to_string());
            }
        }
        Err(TargetError::Refused(cause)) => c.push(Step::Access, Outcome::Fail, cause.to_string()),
        Err(e) => c.push(Step::Access, Outcome::Skipped, format!("unverified: {}", redactor.scrub(&e.to_string()))),
    }
    c
}

/// How the client got in, from its properties (the connection itself succeeded).
fn connected(base: &std::collections::BTreeMap<String, String>) -> String {
    let protocol = base.get("security.protocol").map_or("PLAINTEXT".to_string(), |p| p.to_ascii_uppercase());
    let tls = protocol.ends_with("SSL");
    let mut parts = vec![protocol.clone()];
    if tls {
        parts.push(if base.contains_key("ssl.certificate.location") || base.contains_key("ssl.certificate.pem") {
            "TLS verified, client certificate accepted".into()
        } else {
            "TLS verified".into()
        });
    }
    if protocol.starts_with("SASL") {
        let mech = base.get("sasl.mechanism").or_else(|| base.get("sasl.mechanisms")).cloned().unwrap_or_default();
        match base.get("sasl.username") {
            Some(u) => parts.push(format!("authenticated as {u} ({mech})")),
            None => parts.push(format!("authenticated ({mech})")),
        }
    }
    parts.push("metadata read".into());
    parts.join(", ")
}

/// The ranges of the APIs a run uses, and whether KIP-848 consumer groups are offered.
fn versions(r: &[probe::ApiRange]) -> String {
    const SHOWN: &[&str] = &[
        "Produce",
        "Fetch",
        "ListOffsets",
        "Metadata",
        "OffsetCommit",
        "JoinGroup",
        "InitProducerId",
        "CreateTopics",
        "DeleteRecords",
    ];
    let mut parts: Vec<String> = r
        .iter()
        .filter(|a| SHOWN.contains(&a.name.as_str()))
        .map(|a| format!("{} {}..{}", a.name, a.min, a.max))
        .collect();
    let kip848 = r.iter().find(|a| a.name == "ConsumerGroupHeartbeat");
    parts.push(match kip848 {
        Some(a) => format!("KIP-848 consumer groups offered (ConsumerGroupHeartbeat {}..{})", a.min, a.max),
        None => "no KIP-848 consumer groups".into(),
    });
    format!("{} APIs; {}", r.len(), parts.join(", "))
}

fn write_json<T: serde::Serialize>(dir: &Path, name: &str, value: &T) -> Result<(), Failure> {
    std::fs::create_dir_all(dir).map_err(|e| Failure::Output(e.into()))?;
    let text = serde_json::to_string_pretty(value).map_err(|e| Failure::Output(e.into()))?;
    std::fs::write(dir.join(name), text + "\n").map_err(|e| Failure::Output(e.into()))
}
