//! Semantic checks that types alone cannot express. Each check returns `(field path, message)`;
//! the caller attaches file, line and column. Every check runs: nothing stops at the first problem.
//!
//! Each rule lives in one place, so a problem is reported once: cross-references and duplicate
//! names in [`references`], on the document itself (so they are reported together with type
//! errors); everything else in [`scenario`], on the typed scenario, which a command-line override
//! can change (and which is checked again then).

use std::collections::{BTreeSet, HashSet};

use super::envelope::min_value_size;
use super::gates::Gate;
use super::ids::IdPattern;
use super::profile::{FaultMechanism, Profile, TargetKind};
use super::scenario::{BrokerSelector, FaultKind, RateShape, ReplayTarget, Scenario, Skew, Trigger};
use super::units::Dur;
use super::yaml::{Kind, Node};

/// Largest value a record may have (librdkafka's default `message.max.bytes` is 1,000,000).
const MAX_VALUE: f64 = 64.0 * 1024.0 * 1024.0;

/// Upper bounds, far above any real fleet, that keep `plan` and `run` fast and their memory
/// bounded for anything that validates (README, "Limits"). `plan` visits every planned event and
/// the schedule holds one 24-byte entry per device and class.
pub mod limits {
    use super::Dur;

    /// Devices in the fleet.
    pub const DEVICES: u64 = 10_000_000;
    /// Device streams: devices sending a class, summed over the classes.
    pub const STREAMS: u64 = 20_000_000;
    /// Events per second of one class at its peak (rate × devices × the shape's highest factor).
    pub const CLASS_RATE: f64 = 2_000_000.0;
    /// Events per second of all classes together at their peaks.
    pub const TOTAL_RATE: f64 = 5_000_000.0;
    /// Events planned for the whole run (at the classes' peak rates, an upper bound).
    pub const EVENTS: f64 = 1_000_000_000.0;
    /// The load's duration: a week.
    pub const DURATION: Dur = Dur(std::time::Duration::from_secs(7 * 24 * 3600));
    /// The shortest diurnal period: the rate table's resolution is 10 ms.
    pub const DIURNAL_PERIOD: Dur = Dur(std::time::Duration::from_secs(1));
}

/// `1234567` as `1,234,567`.
fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The stated upper bounds ([`limits`]), each problem at the field that exceeds it.
fn bounds(s: &Scenario, err: &mut dyn FnMut(String, String)) {
    if s.duration > limits::DURATION {
        err("duration".into(), format!("duration must be at most {} (a week)", limits::DURATION));
    }
    let f = &s.fleet;
    let devices = f.devices as f64;
    let mut streams = 0.0;
    let mut total = 0.0;
    let mut a_class_exceeds = false;
    for (i, c) in f.classes.iter().enumerate() {
        let p = format!("fleet.classes[{i}]");
        let senders = (c.share.0 * devices).round().max(0.0);
        streams += senders;
        let (field, base) = match (c.rate, c.total_rate) {
            (Some(r), None) => ("rate", r.as_per_sec() * senders),
            (None, Some(r)) => ("total_rate", r.as_per_sec()),
            _ => continue,
        };
        let peak_factor = match &c.shape {
            None => 1.0,
            Some(RateShape::Stages(stages)) => stages.iter().map(|st| st.factor).fold(1.0, f64::max),
            Some(RateShape::Diurnal(d)) => d.high,
        };
        let peak = base * peak_factor;
        if peak.is_nan() || peak > limits::CLASS_RATE {
            a_class_exceeds = true;
            err(
                format!("{p}.{field}"),
                format!(
                    "class `{}` peaks at {}/s (over {} devices); at most {}/s per class is supported",
                    c.name,
                    thousands(peak),
                    thousands(senders),
                    thousands(limits::CLASS_RATE)
                ),
            );
        }
        total += peak;
    }
    if f.devices <= limits::DEVICES && streams > limits::STREAMS as f64 {
        err(
            "fleet.classes".into(),
            format!(
                "{} device streams (devices sending each class, summed); at most {} are supported",
                thousands(streams),
                thousands(limits::STREAMS as f64)
            ),
        );
    }
    // A class over its own bound says enough about the total.
    if !a_class_exceeds && (total.is_nan() || total > limits::TOTAL_RATE) {
        err(
            "fleet.classes".into(),
            format!(
                "the classes peak at {}/s together; at most {}/s is supported",
                thousands(total),
                thousands(limits::TOTAL_RATE)
            ),
        );
    }
    let events = total * s.duration.as_secs_f64();
    if !a_class_exceeds && total <= limits::TOTAL_RATE && s.duration <= limits::DURATION && events > limits::EVENTS {
        err(
            "duration".into(),
            format!(
                "up to {} events over {} at the classes' peak rates; at most {} are supported: shorten the run or lower the rates",
                thousands(events),
                s.duration,
                thousands(limits::EVENTS)
            ),
        );
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 200 && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn quoted(items: &[&str]) -> String {
    items.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
}

fn duplicates<'a>(names: impl Iterator<Item = &'a str>) -> Vec<(usize, &'a str)> {
    let mut seen = HashSet::new();
    names.enumerate().filter(|(_, n)| !seen.insert(*n)).collect()
}

/// Cross-references and duplicate names, checked on the document itself so that they are
/// reported together with type errors (which stop typed validation).
pub fn references(root: &Node) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let list = |node: Option<&Node>| -> Vec<Node> {
        match node.map(|n| &n.kind) {
            Some(Kind::Seq(items)) => items.clone(),
            _ => Vec::new(),
        }
    };
    let names = |items: &[Node]| -> Vec<String> {
        items.iter().map(|i| i.get("name").and_then(Node::as_str).unwrap_or_default().to_string()).collect()
    };
    let topics = list(root.get("topics"));
    let topic_names = names(&topics);
    let declared: BTreeSet<&str> = topic_names.iter().map(String::as_str).filter(|n| !n.is_empty()).collect();
    let declared_list = declared.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ");
    let check = |out: &mut Vec<(String, String)>, path: String, name: &str| {
        if !declared.contains(name) {
            out.push((path, format!("unknown topic `{name}`: declared topics are {declared_list}")));
        }
    };
    let classes = list(root.get("fleet").and_then(|f| f.get("classes")));
    for (i, c) in classes.iter().enumerate() {
        if let Some(t) = c.get("topic").and_then(Node::as_str) {
            check(&mut out, format!("fleet.classes[{i}].topic"), t);
        }
    }
    let groups = list(root.get("consumers"));
    for (i, g) in groups.iter().enumerate() {
        for (j, t) in list(g.get("topics")).iter().enumerate() {
            if let Some(t) = t.as_str() {
                check(&mut out, format!("consumers[{i}].topics[{j}]"), t);
            }
        }
    }
    for (i, g) in groups.iter().enumerate() {
        if let Some(t) = g.get("dead_letter").and_then(|d| d.get("topic")).and_then(Node::as_str) {
            check(&mut out, format!("consumers[{i}].dead_letter.topic"), t);
        }
    }
    // On the document, not the typed scenario: `--duration` drops the waves after the new end,
    // and a short run of a storm is still a valid run.
    let waves = list(root.get("waves"));
    for (i, c) in classes.iter().enumerate() {
        if waves.is_empty() && c.get("trigger").and_then(Node::as_str) == Some("reconnect") {
            out.push((
                format!("fleet.classes[{i}].trigger"),
                "a class sent on reconnect sends only when a wave's devices reconnect: declare `waves`".into(),
            ));
        }
    }
    let cohorts = list(root.get("fleet").and_then(|f| f.get("cohorts")));
    let cohort_names = names(&cohorts);
    for (i, w) in waves.iter().enumerate() {
        if let Some(c) = w.get("cohort").and_then(Node::as_str)
            && !cohort_names.iter().any(|n| n == c)
        {
            let known = cohort_names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
            out.push((
                format!("waves[{i}].cohort"),
                if known.is_empty() {
                    format!("unknown cohort `{c}`: declare it in `fleet.cohorts`")
                } else {
                    format!("unknown cohort `{c}`: declared cohorts are {known}")
                },
            ));
        }
    }
    let faults = list(root.get("faults"));
    for (i, f) in faults.iter().enumerate() {
        if let Some(t) =
            f.get("broker").and_then(|b| b.get("leader_of")).and_then(|l| l.get("topic")).and_then(Node::as_str)
        {
            check(&mut out, format!("faults[{i}].broker.leader_of.topic"), t);
        }
    }
    for (what, path, items) in
        [("topic", "topics", &topics), ("class", "fleet.classes", &classes), ("consumer group", "consumers", &groups)]
    {
        let n = names(items);
        for (i, name) in duplicates(n.iter().map(String::as_str).filter(|n| !n.is_empty())) {
            out.push((format!("{path}[{i}].name"), format!("{what} `{name}` is declared twice")));
        }
    }
    out
}

/// Every rule of the typed scenario (the cross-references are in [`references`]).
pub fn scenario(s: &Scenario) -> Vec<(String, String)> {
    checked(s).1
}

/// [`scenario`], and the gates parsed in the same pass.
pub fn checked(s: &Scenario) -> (Vec<Gate>, Vec<(String, String)>) {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut err = |path: String, msg: String| out.push((path, msg));

    if !valid_name(&s.name) {
        err("name".into(), format!("`{}` is not a valid name: use letters, digits, `.`, `_` and `-`", s.name));
    }
    if s.duration.is_zero() {
        err("duration".into(), "duration must be greater than zero".into());
    }
    if s.warmup >= s.duration && !s.duration.is_zero() {
        err("warmup".into(), format!("warmup {} must be shorter than duration {}", s.warmup, s.duration));
    }
    if s.target_timeout.0.as_secs() < 5 {
        err("target_timeout".into(), "target_timeout must be at least 5s".into());
    }

    // Topics.
    if s.topics.is_empty() {
        err("topics".into(), "at least one topic is required".into());
    }
    for (i, t) in s.topics.iter().enumerate() {
        if !valid_name(&t.name) || t.name.len() > 249 {
            err(format!("topics[{i}].name"), format!("`{}` is not a valid Kafka topic name", t.name));
        }
        if t.partitions == 0 || t.partitions > 10_000 {
            err(format!("topics[{i}].partitions"), "partitions must be between 1 and 10000".into());
        }
        if t.replication == 0 {
            err(format!("topics[{i}].replication"), "replication must be at least 1".into());
        }
    }

    // Fleet.
    let f = &s.fleet;
    if f.devices == 0 || f.devices > limits::DEVICES {
        err("fleet.devices".into(), format!("devices must be between 1 and {}", thousands(limits::DEVICES as f64)));
    }
    let id_len = match IdPattern::parse(&f.id_pattern) {
        Ok(p) => p.max_len(f.devices),
        Err(e) => {
            err("fleet.id_pattern".into(), e.to_string());
            0
        }
    };
    if f.classes.is_empty() {
        err("fleet.classes".into(), "at least one payload class is required".into());
    }
    if f.classes.len() > usize::from(u16::MAX) {
        err("fleet.classes".into(), "too many payload classes".into());
    }
    for (i, c) in f.classes.iter().enumerate() {
        let p = format!("fleet.classes[{i}]");
        if !valid_name(&c.name) {
            err(format!("{p}.name"), format!("`{}` is not a valid name", c.name));
        }
        if c.trigger == Trigger::Reconnect {
            if c.rate.is_some() || c.total_rate.is_some() {
                err(
                    format!("{p}.trigger"),
                    "a class sent on reconnect has no `rate` or `total_rate`: each device sends once per reconnection"
                        .into(),
                );
            }
            if c.shape.is_some() || c.skew.is_some() {
                err(format!("{p}.trigger"), "a class sent on reconnect has no `shape` or `skew`".into());
            }
        } else {
            match (c.rate, c.total_rate) {
                (Some(_), Some(_)) => {
                    err(format!("{p}.total_rate"), "give `rate` (per device) or `total_rate`, not both".into())
                }
                (None, None) => err(
                    format!("{p}.rate"),
                    "missing `rate` (per device, e.g. `1/30s`) or `total_rate` (e.g. `500/s`)".into(),
                ),
                (Some(r), None) if r.as_per_sec() <= 0.0 => {
                    err(format!("{p}.rate"), "rate must be greater than zero".into())
                }
                (None, Some(r)) if r.as_per_sec() <= 0.0 => {
                    err(format!("{p}.total_rate"), "total_rate must be greater than zero".into())
                }
                _ => {}
            }
        }
        if c.share.0 * (f.devices as f64) < 0.5 {
            err(format!("{p}.share"), format!("share {} of {} devices selects no device", c.share, f.devices));
        }
        for (field, msg) in c.size.problems() {
            err(format!("{p}.size.{field}"), msg);
        }
        let min = min_value_size(c.format, id_len) as f64;
        if c.size.lower_bound() < min && id_len > 0 {
            let fmt = match c.format {
                super::scenario::ValueFormat::Json => "json",
                super::scenario::ValueFormat::Binary => "binary",
            };
            err(
                format!("{p}.size"),
                format!(
                    "values can be as small as {}B but the {fmt} envelope needs {min}B for this fleet's device ids; raise the size{}",
                    c.size.lower_bound(),
                    if fmt == "json" { " or use `format: binary` (48B minimum)" } else { "" }
                ),
            );
        }
        if c.size.upper_bound().unwrap_or(c.size.mean()) > MAX_VALUE {
            err(format!("{p}.size"), "values above 64MiB are not supported".into());
        }
        for k in c.headers.keys() {
            if k.is_empty() {
                err(format!("{p}.headers"), "header names must not be empty".into());
            }
        }
    }

    // Cohorts and firmware.
    let shares: f64 = f.cohorts.iter().map(|c| c.share.0).sum();
    if shares > 1.0 + 1e-9 {
        err("fleet.cohorts".into(), format!("cohort shares add up to {:.1}%, more than 100%", shares * 100.0));
    }
    let versions: Vec<&str> =
        f.firmware.as_ref().map(|fw| fw.versions.iter().map(|v| v.name.as_str()).collect()).unwrap_or_default();
    if let Some(fw) = &f.firmware {
        if fw.versions.is_empty() {
            err("fleet.firmware.versions".into(), "declare at least one version".into());
        }
        let total: f64 = fw.versions.iter().map(|v| v.share.0).sum();
        if (total - 1.0).abs() > 1e-6 {
            err("fleet.firmware.versions".into(), format!("version shares add up to {:.1}%, not 100%", total * 100.0));
        }
        for (i, name) in duplicates(fw.versions.iter().map(|v| v.name.as_str())) {
            err(format!("fleet.firmware.versions[{i}].name"), format!("version `{name}` is declared twice"));
        }
        for (i, r) in fw.rollouts.iter().enumerate() {
            let p = format!("fleet.firmware.rollouts[{i}]");
            if !versions.contains(&r.to.as_str()) {
                err(
                    format!("{p}.to"),
                    format!("unknown version `{}`: declared versions are {}", r.to, quoted(&versions)),
                );
            }
            if let Some(from) = &r.from {
                if !versions.contains(&from.as_str()) {
                    err(
                        format!("{p}.from"),
                        format!("unknown version `{from}`: declared versions are {}", quoted(&versions)),
                    );
                }
                if *from == r.to {
                    err(format!("{p}.to"), "a rollout must move to another version".into());
                }
            }
            if r.start >= s.duration {
                err(
                    format!("{p}.start"),
                    format!("start {} is not before the end of the load ({})", r.start, s.duration),
                );
            }
        }
    }
    for (i, c) in f.classes.iter().enumerate() {
        for (v, o) in &c.versions {
            let p = format!("fleet.classes[{i}].versions.{v}");
            if f.firmware.is_none() {
                err(p, "per-version payloads need `fleet.firmware`".into());
            } else if !versions.contains(&v.as_str()) {
                err(p, format!("unknown version `{v}`: declared versions are {}", quoted(&versions)));
            } else if let Some(size) = &o.size {
                for (field, msg) in size.problems() {
                    err(format!("{p}.size.{field}"), msg);
                }
            }
        }
        if let Some(shape) = &c.shape {
            let p = format!("fleet.classes[{i}].shape");
            match shape {
                RateShape::Stages(stages) => {
                    if stages.is_empty() {
                        err(format!("{p}.stages"), "declare at least one stage".into());
                    }
                    for (j, st) in stages.iter().enumerate() {
                        if !(st.factor.is_finite() && st.factor >= 0.0 && st.factor <= 1000.0) {
                            err(format!("{p}.stages[{j}].factor"), "factor must be between 0 and 1000".into());
                        }
                    }
                }
                RateShape::Diurnal(d) => {
                    if d.period < limits::DIURNAL_PERIOD {
                        err(
                            format!("{p}.diurnal.period"),
                            format!(
                                "period must be at least {} (the rate table's resolution is 10ms)",
                                limits::DIURNAL_PERIOD
                            ),
                        );
                    }
                    if !(d.low >= 0.0 && d.high >= d.low && d.high.is_finite()) {
                        err(format!("{p}.diurnal"), "need 0 <= low <= high".into());
                    }
                }
            }
        }
    }

    for (i, c) in f.classes.iter().enumerate() {
        let p = format!("fleet.classes[{i}].skew");
        match &c.skew {
            Some(Skew::Zipf(z)) if !(z.exponent.is_finite() && z.exponent > 0.0 && z.exponent <= 4.0) => {
                err(format!("{p}.zipf.exponent"), "exponent must be above 0 and at most 4".into());
            }
            None | Some(Skew::Zipf(_)) => {}
            Some(Skew::Hot(h)) => {
                let senders = (c.share.0 * f.devices as f64).round();
                if !(h.share.0 > 0.0 && h.share.0 <= 1.0) {
                    err(format!("{p}.hot.share"), "share must be above 0% and at most 100%".into());
                } else if senders >= 1.0 && (h.share.0 * senders).round() < 1.0 {
                    err(
                        format!("{p}.hot.share"),
                        format!("share {} of the class's {senders} devices selects no device", h.share),
                    );
                }
                if !(h.factor.is_finite() && (1.0..=10_000.0).contains(&h.factor)) {
                    err(format!("{p}.hot.factor"), "factor must be between 1 and 10000".into());
                }
            }
        }
    }

    // Waves.
    for (i, w) in s.waves.iter().enumerate() {
        let p = format!("waves[{i}]");
        if w.at >= s.duration {
            err(format!("{p}.at"), format!("at {} is not before the end of the load ({})", w.at, s.duration));
        }
        if w.offline.is_zero() {
            err(format!("{p}.offline"), "offline must be greater than zero".into());
        }
        if w.buffer.capacity == 0 {
            err(
                format!("{p}.buffer.capacity"),
                "capacity must be at least 1 (a device that buffers nothing is not offline, it is lost)".into(),
            );
        }
        if w.flush_rate.is_some_and(|r| r.as_per_sec() <= 0.0) {
            err(
                format!("{p}.flush_rate"),
                "flush_rate must be greater than zero (or left out: as fast as possible)".into(),
            );
        }
        if let Some(r) = &w.repeat {
            if r.times == 0 {
                err(format!("{p}.repeat.times"), "times must be at least 1".into());
            }
            if r.every.0 <= w.offline.0 + w.reconnect_jitter.0 {
                err(
                    format!("{p}.repeat.every"),
                    "occurrences would overlap: `every` must be longer than `offline` plus `reconnect_jitter`".into(),
                );
            }
        }
    }
    let wave_labels: Vec<String> = s.waves.iter().enumerate().map(|(i, w)| w.label(i)).collect();
    for (i, name) in duplicates(wave_labels.iter().map(String::as_str)) {
        err(format!("waves[{i}].name"), format!("wave `{name}` is named twice"));
    }

    // Producer.
    let pr = &s.producer;
    if matches!(pr.instances, super::scenario::Instances::Count(n) if n == 0 || n > 64) {
        err("producer.instances".into(), "instances must be between 1 and 64".into());
    }
    if pr.max_in_flight == 0 || pr.max_in_flight > 2_147_483_647 {
        err("producer.max_in_flight".into(), "max_in_flight must be between 1 and 2147483647".into());
    }
    if pr.message_timeout.is_zero() {
        err("producer.message_timeout".into(), "message_timeout must be greater than zero".into());
    }
    for key in pr.librdkafka.keys() {
        if key == "bootstrap.servers" {
            err(format!("producer.librdkafka.{key}"), "bootstrap servers belong in the profile".into());
        }
    }

    bounds(s, &mut err);

    // Gates.
    let (gates, problems) = super::gates::parse_all(&s.gates, s);
    for (i, problem) in problems {
        err(format!("gates[{i}]"), problem.to_string());
    }

    // Consumers.
    for (i, fault) in s.faults.iter().enumerate() {
        let p = format!("faults[{i}]");
        if fault.at >= s.duration {
            err(format!("{p}.at"), format!("at {} is not before the end of the load ({})", fault.at, s.duration));
        }
        match (fault.kind, fault.latency) {
            (FaultKind::Latency, None) => {
                err(format!("{p}.latency"), "a `latency` fault needs `latency`, e.g. `200ms`".into())
            }
            (FaultKind::Latency, Some(l)) if l.is_zero() => {
                err(format!("{p}.latency"), "latency must be greater than zero".into())
            }
            (FaultKind::Latency, Some(_)) => {}
            (kind, Some(_)) => err(
                format!("{p}.latency"),
                format!("`latency` applies only to `kind: latency`, not `{}`", kind.as_str()),
            ),
            (_, None) => {}
        }
        match (fault.kind, fault.throttle) {
            (FaultKind::ScaleOut | FaultKind::ScaleIn, Some(t)) if t.0 < 1024 => {
                err(format!("{p}.throttle"), "throttle must be at least 1KiB (per second)".into())
            }
            (FaultKind::ScaleOut | FaultKind::ScaleIn, _) | (_, None) => {}
            (kind, Some(_)) => err(
                format!("{p}.throttle"),
                format!("`throttle` applies only to `kind: scale_out` and `scale_in`, not `{}`", kind.as_str()),
            ),
        }
        if fault.kind == FaultKind::ScaleOut && !matches!(fault.broker, crate::config::scenario::BrokerSelector::Id(_))
        {
            err(
                format!("{p}.broker"),
                "a `scale_out` fault adds the broker it names: `broker: <id>`, e.g. `4` on the local cluster".into(),
            );
        }
        match (fault.kind, &fault.network) {
            (FaultKind::Network, None) => err(
                format!("{p}.network"),
                "a `network` fault needs `network`, e.g. `{delay: 100ms, jitter: 20ms}` or `{partition: true}`".into(),
            ),
            (FaultKind::Network, Some(n)) => {
                if n.is_empty() {
                    err(
                        format!("{p}.network"),
                        "say what happens: `delay`, `loss`, `bandwidth` or `partition: true`".into(),
                    );
                }
                if n.jitter.is_some() && n.delay.is_none() {
                    err(format!("{p}.network.jitter"), "jitter varies a delay: set `delay` too".into());
                }
                if let (Some(j), Some(d)) = (n.jitter, n.delay)
                    && j > d
                {
                    err(format!("{p}.network.jitter"), format!("jitter {j} is larger than the delay {d}"));
                }
                if n.delay.is_some_and(|d| d.is_zero() || d.0 > std::time::Duration::from_secs(60)) {
                    err(format!("{p}.network.delay"), "delay must be between 1ms and 60s".into());
                }
                if n.loss.is_some_and(|l| l.0 <= 0.0 || l.0 >= 1.0) {
                    err(
                        format!("{p}.network.loss"),
                        "loss must be above 0% and below 100% (for 100%, `partition: true`)".into(),
                    );
                }
                if n.bandwidth.is_some_and(|b| b.0 < 1024) {
                    err(format!("{p}.network.bandwidth"), "bandwidth must be at least 1KiB (per second)".into());
                }
            }
            (kind, Some(_)) => err(
                format!("{p}.network"),
                format!("`network` applies only to `kind: network`, not `{}`", kind.as_str()),
            ),
            (_, None) => {}
        }
        if fault.restore_after.is_some_and(Dur::is_zero) {
            err(format!("{p}.restore_after"), "restore_after must be greater than zero (or left out)".into());
        }
        match &fault.broker {
            BrokerSelector::Id(id) if *id < 0 => err(format!("{p}.broker"), "broker ids are not negative".into()),
            BrokerSelector::LeaderOf { topic, partition } => {
                if let Some(t) = s.topics.iter().find(|t| &t.name == topic)
                    && (*partition < 0 || *partition as u32 >= t.partitions)
                {
                    err(
                        format!("{p}.broker.leader_of.partition"),
                        format!("topic `{topic}` has partitions 0 to {}", t.partitions.saturating_sub(1)),
                    );
                }
            }
            _ => {}
        }
    }
    let labels: Vec<String> = s.faults.iter().enumerate().map(|(i, f)| f.label(i)).collect();
    for (i, name) in duplicates(labels.iter().map(String::as_str)) {
        err(format!("faults[{i}].name"), format!("fault `{name}` is named twice"));
    }

    for (i, g) in s.consumers.iter().enumerate() {
        let p = format!("consumers[{i}]");
        if !valid_name(&g.name) {
            err(format!("{p}.name"), format!("`{}` is not a valid name", g.name));
        }
        if g.members == 0 || g.members > 256 {
            err(format!("{p}.members"), "members must be between 1 and 256".into());
        }
        if g.topics.is_empty() {
            err(format!("{p}.topics"), "a consumer group needs at least one topic".into());
        }
        if let Some(d) = &g.processing_time {
            for (field, msg) in d.problems() {
                err(format!("{p}.processing_time.{field}"), msg);
            }
        }
        if let Some(b) = &g.batch {
            if g.processing_time.is_some() {
                err(
                    format!("{p}.batch"),
                    "give `processing_time` (per record) or `batch` (per batch), not both".into(),
                );
            }
            if b.size == 0 {
                err(format!("{p}.batch.size"), "size must be at least 1".into());
            }
            for (field, msg) in b.time.problems() {
                err(format!("{p}.batch.time.{field}"), msg);
            }
        }
        for (j, sl) in g.slowdowns.iter().enumerate() {
            let q = format!("{p}.slowdowns[{j}]");
            match (sl.factor, sl.stall) {
                (Some(_), true) => err(format!("{q}.stall"), "give `factor` or `stall: true`, not both".into()),
                (None, false) => err(format!("{q}.factor"), "give `factor` (e.g. `5`) or `stall: true`".into()),
                (Some(f), false) if !(f.is_finite() && f > 0.0 && f <= 10_000.0) => {
                    err(format!("{q}.factor"), "factor must be between 0 and 10000".into())
                }
                _ => {}
            }
            if sl.factor.is_some() && g.processing_time.is_none() && g.batch.is_none() {
                err(
                    format!("{q}.factor"),
                    "a slowdown factor multiplies `processing_time` or `batch.time`: declare one".into(),
                );
            }
            if sl.lasts.is_zero() {
                err(format!("{q}.for"), "`for` must be greater than zero".into());
            }
            if sl.at >= s.duration {
                err(format!("{q}.at"), format!("at {} is not before the end of the load ({})", sl.at, s.duration));
            }
        }
        if let Some(dl) = &g.dead_letter
            && g.topics.contains(&dl.topic)
        {
            err(format!("{p}.dead_letter.topic"), "the dead-letter topic must not be one the group reads".into());
        }
        for (j, r) in g.replays.iter().enumerate() {
            let q = format!("{p}.replays[{j}]");
            if r.at >= s.duration {
                err(format!("{q}.at"), format!("at {} is not before the end of the load ({})", r.at, s.duration));
            }
            if r.to == ReplayTarget::Records(0) {
                err(format!("{q}.to.records"), "records must be at least 1".into());
            }
            if r.rate.is_some_and(|x| x.as_per_sec() <= 0.0) {
                err(format!("{q}.rate"), "rate must be greater than zero".into());
            }
        }
        for (j, r) in g.restarts.iter().enumerate() {
            if r.at >= s.duration {
                err(
                    format!("{p}.restarts[{j}].at"),
                    format!("at {} is not before the end of the load ({})", r.at, s.duration),
                );
            }
        }
        if let Some(id) = &g.group_id
            && id.trim().is_empty()
        {
            err(format!("{p}.group_id"), "group_id must not be empty".into());
        }
    }
    (gates, out)
}

/// What a scenario asks of the embedded cluster (librdkafka's mock) that it cannot do: `errors`
/// stop the run, `warnings` go into the report. One place for the mock's limits that can be known
/// before the run; the retention it exceeds is measured during the run.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct EmbeddedLimits {
    pub errors: Vec<(String, String)>,
    pub warnings: Vec<(String, String)>,
}

pub fn on_embedded(s: &Scenario, brokers: u32) -> EmbeddedLimits {
    let mut out = EmbeddedLimits::default();
    for (i, t) in s.topics.iter().enumerate() {
        if u32::from(t.replication) > brokers {
            out.errors.push((
                format!("topics[{i}].replication"),
                format!("{} is more than the {brokers} brokers of the embedded target", t.replication),
            ));
        }
        if !t.config.is_empty() {
            out.warnings.push((
                format!("topics[{i}].config"),
                format!(
                    "the embedded cluster ignores topic configs ({}): it answers no CreateTopics or DescribeConfigs",
                    t.config.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    for (gi, g) in s.consumers.iter().enumerate() {
        for (i, rp) in g.replays.iter().enumerate() {
            if matches!(rp.to, ReplayTarget::Ago(_)) {
                out.warnings.push((
                    format!("consumers[{gi}].replays[{i}].to"),
                    format!(
                        "group `{}`: the embedded cluster cannot find offsets by time (librdkafka's mock cluster \
                         does not implement ListOffsets by timestamp), so `to: {{ago: ...}}` reads nothing back \
                         there; use `earliest` or `{{records: N}}`, or a real target",
                        g.name
                    ),
                ));
            }
        }
    }
    out
}

pub fn profile(p: &Profile) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if !valid_name(&p.name) {
        out.push(("name".into(), format!("`{}` is not a valid name", p.name)));
    }
    match p.kind {
        TargetKind::Embedded => {
            if p.bootstrap_servers.is_some() {
                out.push(("bootstrap_servers".into(), "an embedded target has no bootstrap servers".into()));
            }
            if let Some(b) = p.brokers
                && !(1..=16).contains(&b)
            {
                out.push(("brokers".into(), "brokers must be between 1 and 16".into()));
            }
        }
        TargetKind::Kafka => {
            if p.brokers.is_some() {
                out.push(("brokers".into(), "`brokers` is only for `kind: embedded`".into()));
            }
            if p.round_trip_time.is_some() {
                out.push(("round_trip_time".into(), "`round_trip_time` is only for `kind: embedded`".into()));
            }
            match &p.bootstrap_servers {
                None => {
                    out.push(("bootstrap_servers".into(), "missing field `bootstrap_servers` for `kind: kafka`".into()))
                }
                Some(s) if s.joined().split(',').any(|h| h.trim().is_empty()) => {
                    out.push(("bootstrap_servers".into(), "bootstrap_servers must not be empty".into()))
                }
                Some(s) => {
                    for server in s.joined().split(',') {
                        if !server.contains(':') {
                            out.push(("bootstrap_servers".into(), format!("`{server}` has no port: write host:port")));
                        }
                    }
                }
            }
        }
    }
    match (&p.faults, p.kind) {
        (Some(FaultMechanism::Embedded), TargetKind::Kafka) => {
            out.push(("faults".into(), "`embedded` faults need `kind: embedded`".into()));
        }
        (Some(FaultMechanism::Process(pf)), _) => {
            if !pf.pid_file.contains("{broker}") {
                out.push(("faults.process.pid_file".into(), "the pid file path needs a `{broker}` placeholder".into()));
            }
            if !pf.restart.contains("{broker}") {
                out.push((
                    "faults.process.restart".into(),
                    "the restart command needs a `{broker}` placeholder".into(),
                ));
            }
        }
        (Some(FaultMechanism::Command(c)), _) => {
            let templates = [
                ("broker_kill", &c.broker_kill),
                ("broker_stop", &c.broker_stop),
                ("broker_start", &c.broker_start),
                ("broker_pause", &c.broker_pause),
                ("broker_resume", &c.broker_resume),
                ("latency_add", &c.latency_add),
                ("latency_remove", &c.latency_remove),
                ("network_apply", &c.network_apply),
                ("network_clear", &c.network_clear),
                ("broker_replace", &c.broker_replace),
                ("scale_out", &c.scale_out),
                ("scale_in", &c.scale_in),
            ];
            if templates.iter().all(|(_, t)| t.is_none()) {
                out.push(("faults.command".into(), "declare at least one command template".into()));
            }
            for (name, t) in templates {
                if let Some(t) = t
                    && t.trim().is_empty()
                {
                    out.push((format!("faults.command.{name}"), "the command is empty".into()));
                }
            }
        }
        _ => {}
    }
    if p.librdkafka.contains_key("bootstrap.servers") {
        out.push(("librdkafka.bootstrap.servers".into(), "use the `bootstrap_servers` field instead".into()));
    }
    if p.connect_timeout.0.as_secs() == 0 || p.connect_timeout.0.as_secs() > 300 {
        out.push(("connect_timeout".into(), "connect_timeout must be between 1s and 5m".into()));
    }
    out.extend(p.oauthbearer.iter().flat_map(|o| o.problems(p.kind, &p.librdkafka)));
    out.extend(p.metrics.problems());
    out
}

#[cfg(test)]
mod tests;
