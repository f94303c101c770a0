//! The gate grammar: `METRIC OP THRESHOLD` strings into typed [`Gate`]s, checked against the
//! scenario they judge.
//!
//! ```yaml
//! gates:
//!   - produce.latency.p99 < 250ms
//!   - audit.lost == 0
//!   - faults.*.unavailable < 30s
//!   - {gate: "consumers.warehouse.max_lag < 100000", abort_on_fail: true}
//! ```
//!
//! A gate names a metric from a closed catalogue; the names of groups, classes, faults and waves
//! must be declared in the scenario, and `*` means every one of them (all must pass). An unknown
//! metric, a malformed gate or a threshold in the wrong unit is a validation error, never silently
//! ignored.
//!
//! Each metric is a variant, **named once**, in the tables below (its names, its unit, whether it
//! is known while the load runs); the parser and [`catalogue`] read the tables. `report/gates.rs`
//! reads each metric from a report by an exhaustive `match`, so a metric added here without a
//! reader there does not compile.

use super::scenario::{GateSpec, Scenario};
use super::target_metric::TargetMetric;
use super::units::{Dur, Rate};

/// What a metric measures, which decides how its threshold is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// `250ms`, `30s`.
    Duration,
    /// `0`, `100000`, `10k`, `2M`.
    Count,
    /// `5%`.
    Percent,
    /// `500/s` or a number per second.
    Rate,
    /// An amount in the pricing file's currency: `12000`, `12k`.
    Money,
}

impl Unit {
    fn example(self) -> &'static str {
        match self {
            Unit::Duration => "a duration such as `250ms`",
            Unit::Count => "a number such as `0` or `100k`",
            Unit::Percent => "a percentage such as `5%`",
            Unit::Rate => "a rate such as `500/s`",
            Unit::Money => "an amount in the pricing file's currency such as `12000` or `12k`",
        }
    }

    /// A threshold in this unit: microseconds, a count, percent points or events per second.
    pub fn parse(self, t: &str) -> Result<f64, GateError> {
        let bad = || GateError::Threshold { threshold: t.to_string(), expected: self.example() };
        match self {
            Unit::Duration => t.parse::<Dur>().map(|d| d.as_micros() as f64).map_err(|_| bad()),
            Unit::Percent => t.trim_end_matches('%').trim().parse::<f64>().map_err(|_| bad()),
            Unit::Rate => t.parse::<Rate>().map(Rate::as_per_sec).or_else(|_| t.parse::<f64>()).map_err(|_| bad()),
            Unit::Count | Unit::Money => {
                let (num, mult) = match t.chars().last() {
                    Some('k' | 'K') => (&t[..t.len() - 1], 1e3),
                    Some('M') => (&t[..t.len() - 1], 1e6),
                    Some('G') => (&t[..t.len() - 1], 1e9),
                    _ => (t, 1.0),
                };
                num.trim().parse::<f64>().map(|v| v * mult).map_err(|_| bad())
            }
        }
    }
}

/// Declares one table of metric names: each variant with the names it is written as (the first is
/// its own, the others are accepted spellings), its unit, and `live` if it is known while the load
/// runs (so `abort_on_fail` may use it).
macro_rules! names {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = [$($text:literal),+] $unit:ident $($live:ident)?;)+ }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every variant, in the table's order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The names this is written as; the first is its own.
            pub fn names(self) -> &'static [&'static str] {
                match self {
                    $($name::$variant => &[$($text),+],)+
                }
            }

            pub fn name(self) -> &'static str {
                self.names()[0]
            }

            pub fn unit(self) -> Unit {
                match self {
                    $($name::$variant => Unit::$unit,)+
                }
            }

            /// Known while the load runs.
            pub fn is_live(self) -> bool {
                match self {
                    $($name::$variant => names!(@live $($live)?),)+
                }
            }

            fn from_name(text: &str) -> Option<$name> {
                Self::ALL.iter().copied().find(|v| v.names().contains(&text))
            }

            /// `{a,b,c}`: the own names, for the catalogue.
            fn braces() -> String {
                format!("{{{}}}", Self::ALL.iter().map(|v| v.name()).collect::<Vec<_>>().join(","))
            }
        }
    };
    (@live live) => { true };
    (@live) => { false };
}

names! {
    /// `produce.<metric>`.
    ProduceMetric {
        AchievedRate = ["achieved_rate"] Rate;
        PlannedRate = ["planned_rate"] Rate;
        /// Acknowledged records per second.
        Rate = ["rate"] Rate;
        /// `achieved_rate` as a percentage of `planned_rate`.
        AchievedRatio = ["achieved_ratio"] Percent;
        Acked = ["acked"] Count;
        Failed = ["failed"] Count live;
        Purged = ["purged"] Count;
        Backpressure = ["backpressure"] Count live;
    }
}

names! {
    /// `produce.<latency>.<quantile>`.
    ProduceLatency {
        FromIntended = ["latency", "latency_from_intended"] Duration;
        FromSend = ["latency_from_send"] Duration;
        SendLag = ["send_lag"] Duration;
    }
}

names! {
    /// `produce.classes.<class|*>.<latency>.<quantile>`.
    ClassLatency {
        FromIntended = ["latency", "latency_from_intended"] Duration;
        FromSend = ["latency_from_send"] Duration;
    }
}

names! {
    /// `consumers.<group|*>.<metric>`.
    GroupMetric {
        MaxLag = ["max_lag"] Count live;
        FinalLag = ["final_lag"] Count;
        Consumed = ["consumed"] Count;
        Rereads = ["rereads"] Count;
        Missed = ["missed"] Count;
        /// Records read per second.
        Rate = ["rate"] Rate;
    }
}

names! {
    /// `consumers.<group|*>.<latency>.<quantile>`.
    GroupLatency {
        E2e = ["e2e", "e2e_latency"] Duration;
        EventAge = ["event_age"] Duration;
    }
}

names! {
    /// `audit.<metric>`.
    AuditMetric {
        /// Acknowledged records the audit reader read past without seeing them.
        Lost = ["lost"] Count;
        /// Acknowledged records the audit reader never reached (neither lost nor seen).
        Unverified = ["unverified"] Count;
        Duplicates = ["duplicates"] Count;
        Reordered = ["reordered"] Count;
        FailedButSeen = ["failed_but_seen"] Count;
        UnackedSeen = ["unacked_seen"] Count;
        Acked = ["acked"] Count;
        Seen = ["seen"] Count;
    }
}

names! {
    /// `faults.<fault|*>.<metric>`.
    FaultMetric {
        Unavailable = ["unavailable"] Duration;
        UnavailableTopic = ["unavailable_topic"] Duration;
        Recovered = ["recovered"] Duration;
        Dip = ["dip"] Percent;
    }
}

names! {
    /// `waves.<wave|*>.<metric>`.
    WaveMetric {
        Dropped = ["dropped"] Count;
        Unsent = ["unsent"] Count;
        Flush = ["flush"] Duration;
    }
}

names! {
    /// `harness.<metric>`.
    HarnessMetric {
        Saturated = ["saturated"] Count;
        CpuSaturatedS = ["cpu_saturated_s"] Count;
        LaggingS = ["lagging_s"] Count;
        CpuPctMean = ["cpu_pct_mean"] Percent;
        CpuPctPeak = ["cpu_pct_peak"] Percent;
        HostCpuPctMean = ["host_cpu_pct_mean"] Percent;
        RssMibPeak = ["rss_mib_peak"] Count;
    }
}

names! {
    /// `cost.<period>`: a run priced with `run --pricing` (an estimate at the pricing file's
    /// prices, from the run's measured rates).
    CostPeriod {
        Monthly = ["monthly"] Money;
        Hourly = ["hourly"] Money;
    }
}

names! {
    /// `cost.<period>.<line>`: one cost line, or `transfer` (cross-zone and egress together).
    CostItem {
        Compute = ["compute"] Money;
        Storage = ["storage"] Money;
        ObjectRequests = ["object_requests"] Money;
        CrossZone = ["cross_zone"] Money;
        Egress = ["egress"] Money;
        Fixed = ["fixed"] Money;
        /// `cross_zone` + `egress`.
        Transfer = ["transfer"] Money;
    }
}

names! {
    /// `target.<metric>.<stat>`: a statistic of the target's own series over the run (the
    /// cluster's value per second: brokers combined, see `TargetMetric::combine`).
    TargetStat {
        Max = ["max"] Count;
        Min = ["min"] Count;
        Mean = ["mean"] Count;
        /// The last second sampled: where the series ended up (e.g. back to 0).
        Last = ["last"] Count;
    }
}

names! {
    /// The quantile of a latency metric.
    Quantile {
        P50 = ["p50"] Duration;
        P90 = ["p90"] Duration;
        P99 = ["p99"] Duration;
        P999 = ["p999", "p99.9"] Duration;
        Max = ["max"] Duration;
        Min = ["min"] Duration;
        Mean = ["mean"] Duration;
    }
}

/// Which of the scenario's groups, classes, faults, waves or error kinds a metric reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sel {
    /// `*`: every one (all must pass).
    All,
    Named(String),
}

impl Sel {
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Sel::All => true,
            Sel::Named(n) => n == name,
        }
    }
}

/// A metric of a finished run (or a running one, for the live ones).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Metric {
    Produce(ProduceMetric),
    ProduceLatency(ProduceLatency, Quantile),
    ClassLatency(Sel, ClassLatency, Quantile),
    Group(Sel, GroupMetric),
    GroupLatency(Sel, GroupLatency, Quantile),
    Audit(AuditMetric),
    Fault(Sel, FaultMetric),
    Wave(Sel, WaveMetric),
    /// `errors.<kind>`; `errors.*` and `errors.total` add up every kind.
    Errors(Sel),
    Harness(HarnessMetric),
    /// `cost.<period>[.<item>]` over every pricing the run was priced under (all must pass), or
    /// `cost[<pricing>].…` under the one of that name; the whole bill without an item.
    Cost(Sel, CostPeriod, Option<CostItem>),
    /// `target.<metric>.<stat>`: the brokers' own series (the profile's `metrics`).
    Target(TargetMetric, TargetStat),
}

impl Metric {
    pub fn unit(&self) -> Unit {
        match self {
            Metric::Produce(m) => m.unit(),
            Metric::ProduceLatency(m, _) => m.unit(),
            Metric::ClassLatency(_, m, _) => m.unit(),
            Metric::Group(_, m) => m.unit(),
            Metric::GroupLatency(_, m, _) => m.unit(),
            Metric::Audit(m) => m.unit(),
            Metric::Fault(_, m) => m.unit(),
            Metric::Wave(_, m) => m.unit(),
            Metric::Errors(_) => Unit::Count,
            Metric::Harness(m) => m.unit(),
            Metric::Cost(..) => Unit::Money,
            Metric::Target(m, _) => m.gate_unit(),
        }
    }

    /// Known while the load runs (`abort_on_fail` needs it).
    pub fn is_live(&self) -> bool {
        match self {
            Metric::Produce(m) => m.is_live(),
            Metric::Group(_, m) => m.is_live(),
            Metric::Errors(_) => true,
            Metric::ProduceLatency(..)
            | Metric::ClassLatency(..)
            | Metric::GroupLatency(..)
            | Metric::Audit(_)
            | Metric::Fault(..)
            | Metric::Wave(..)
            | Metric::Harness(_)
            | Metric::Cost(..)
            | Metric::Target(..) => false,
        }
    }
}

/// The metric catalogue, for error messages and the docs: one line per family, drawn from the
/// tables.
pub fn catalogue() -> Vec<String> {
    let q = Quantile::braces();
    vec![
        format!("produce.{}", ProduceMetric::braces()),
        format!("produce.{}.{q}", ProduceLatency::braces()),
        format!("produce.classes.<class|*>.{}.{q}", ClassLatency::braces()),
        format!("consumers.<group|*>.{}", GroupMetric::braces()),
        format!("consumers.<group|*>.{}.{q}", GroupLatency::braces()),
        format!("audit.{}", AuditMetric::braces()),
        format!("faults.<fault|*>.{}", FaultMetric::braces()),
        format!("waves.<wave|*>.{}", WaveMetric::braces()),
        "errors.<kind|*|total>".to_string(),
        format!("harness.{}", HarnessMetric::braces()),
        format!("cost[<pricing>]?.{}[.{}]", CostPeriod::braces(), CostItem::braces()),
        format!(
            "target.{{{}}}.{}",
            TargetMetric::ALL.iter().map(|m| m.name()).collect::<Vec<_>>().join(","),
            TargetStat::braces()
        ),
    ]
}

/// The metrics `abort_on_fail` accepts, as users write them.
fn live_metrics() -> String {
    let groups = GroupMetric::ALL.iter().filter(|m| m.is_live()).map(|m| format!("consumers.<group>.{}", m.name()));
    let produce = ProduceMetric::ALL.iter().filter(|m| m.is_live()).map(|m| format!("produce.{}", m.name()));
    format!("{} or errors.*", groups.chain(produce).collect::<Vec<_>>().join(", "))
}

/// Why a gate cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GateError {
    #[error("`{0}` is not a gate: write METRIC OP THRESHOLD, e.g. `audit.lost == 0`")]
    NotAGate(String),
    #[error("unknown metric `{metric}`; metrics are: {}", catalogue().join(", "))]
    UnknownMetric { metric: String },
    #[error("`*` matches no {what}: the scenario declares none")]
    NoneDeclared { what: &'static str },
    #[error("unknown {what} in `{text}`: {}", declared_list(.what, .declared))]
    UnknownName { what: &'static str, text: String, declared: Vec<String> },
    #[error("threshold `{threshold}` is not {expected}")]
    Threshold { threshold: String, expected: &'static str },
    #[error("`{metric}` is known only at the end of the run: abort_on_fail needs {}", live_metrics())]
    NotLive { metric: String },
    #[error(
        "`{metric}` is a cost gate but the run is priced under no pricing file: give `--pricing FILE` (e.g. \
         pricing/managed-kafka-msk.yaml), or remove the gate"
    )]
    Unpriced { metric: String },
    #[error("`{metric}` selects pricing `{name}`, which no --pricing file is named: {}", declared_list("pricing", .priced))]
    UnknownPricing { metric: String, name: String, priced: Vec<String> },
}

fn declared_list(what: &str, declared: &[String]) -> String {
    if declared.is_empty() {
        format!("the scenario declares no {what}")
    } else {
        format!("declared: {}", declared.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "))
    }
}

/// A comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    /// Written as, longest first where one is a prefix of another.
    const TEXT: [(&'static str, Op); 6] =
        [("<=", Op::Le), (">=", Op::Ge), ("==", Op::Eq), ("!=", Op::Ne), ("<", Op::Lt), (">", Op::Gt)];

    pub fn holds(self, v: f64, t: f64) -> bool {
        match self {
            Op::Lt => v < t,
            Op::Le => v <= t,
            Op::Gt => v > t,
            Op::Ge => v >= t,
            Op::Eq => (v - t).abs() < 1e-9,
            Op::Ne => (v - t).abs() >= 1e-9,
        }
    }
}

/// A parsed gate, valid for the scenario it was parsed against.
#[derive(Clone, Debug, PartialEq)]
pub struct Gate {
    pub spec: GateSpec,
    pub metric: Metric,
    pub op: Op,
    /// In the metric's unit: microseconds, a count, percent points or events per second.
    pub threshold: f64,
    /// The threshold as written.
    pub threshold_text: String,
}

/// The names a gate may select, as the scenario declares them.
struct Names {
    groups: Vec<String>,
    classes: Vec<String>,
    faults: Vec<String>,
    waves: Vec<String>,
}

impl Names {
    fn of(s: &Scenario) -> Names {
        Names {
            groups: s.consumers.iter().map(|g| g.name.clone()).collect(),
            classes: s.fleet.classes.iter().map(|c| c.name.clone()).collect(),
            faults: s.faults.iter().enumerate().map(|(i, f)| f.label(i)).collect(),
            waves: s.waves.iter().enumerate().map(|(i, w)| w.label(i)).collect(),
        }
    }
}

/// `rest` starts with one of `names` (or `*`) followed by a dot: (selector, remainder). The longest
/// declared name wins (`ware` is a prefix of `warehouse`).
fn take_name<'a>(rest: &'a str, names: &[String], what: &'static str) -> Result<(Sel, &'a str), GateError> {
    if let Some(r) = rest.strip_prefix("*.") {
        if names.is_empty() {
            return Err(GateError::NoneDeclared { what });
        }
        return Ok((Sel::All, r));
    }
    let best = names.iter().filter(|n| rest.starts_with(&format!("{n}."))).max_by_key(|n| n.len());
    match best {
        Some(n) => Ok((Sel::Named(n.clone()), &rest[n.len() + 1..])),
        None => Err(GateError::UnknownName { what, text: rest.to_string(), declared: names.to_vec() }),
    }
}

/// `<latency>.<quantile>` of one latency table.
fn latency<L>(rest: &str, from_name: fn(&str) -> Option<L>) -> Option<(L, Quantile)> {
    let (l, q) = rest.split_once('.')?;
    Some((from_name(l)?, Quantile::from_name(q)?))
}

fn parse_metric(m: &str, names: &Names) -> Result<Metric, GateError> {
    let unknown = || GateError::UnknownMetric { metric: m.to_string() };
    if let Some(rest) = m.strip_prefix("produce.classes.") {
        let (sel, rest) = take_name(rest, &names.classes, "class")?;
        let (l, q) = latency(rest, ClassLatency::from_name).ok_or_else(unknown)?;
        return Ok(Metric::ClassLatency(sel, l, q));
    }
    if let Some(rest) = m.strip_prefix("produce.") {
        if let Some(p) = ProduceMetric::from_name(rest) {
            return Ok(Metric::Produce(p));
        }
        let (l, q) = latency(rest, ProduceLatency::from_name).ok_or_else(unknown)?;
        return Ok(Metric::ProduceLatency(l, q));
    }
    if let Some(rest) = m.strip_prefix("consumers.") {
        let (sel, rest) = take_name(rest, &names.groups, "consumer group")?;
        if let Some(g) = GroupMetric::from_name(rest) {
            return Ok(Metric::Group(sel, g));
        }
        let (l, q) = latency(rest, GroupLatency::from_name).ok_or_else(unknown)?;
        return Ok(Metric::GroupLatency(sel, l, q));
    }
    if let Some(rest) = m.strip_prefix("audit.") {
        return AuditMetric::from_name(rest).map(Metric::Audit).ok_or_else(unknown);
    }
    if let Some(rest) = m.strip_prefix("harness.") {
        return HarnessMetric::from_name(rest).map(Metric::Harness).ok_or_else(unknown);
    }
    if let Some(rest) = m.strip_prefix("faults.") {
        let (sel, rest) = take_name(rest, &names.faults, "fault")?;
        return FaultMetric::from_name(rest).map(|f| Metric::Fault(sel, f)).ok_or_else(unknown);
    }
    if let Some(rest) = m.strip_prefix("waves.") {
        let (sel, rest) = take_name(rest, &names.waves, "wave")?;
        return WaveMetric::from_name(rest).map(|w| Metric::Wave(sel, w)).ok_or_else(unknown);
    }
    if let Some(rest) = m.strip_prefix("cost") {
        // `cost.monthly`, `cost[name].monthly.transfer`.
        let (sel, rest) = if let Some(r) = rest.strip_prefix('[') {
            let (name, r) = r.split_once("].").ok_or_else(unknown)?;
            if name.trim().is_empty() {
                return Err(unknown());
            }
            (Sel::Named(name.trim().to_string()), r)
        } else {
            (Sel::All, rest.strip_prefix('.').ok_or_else(unknown)?)
        };
        let (period, item) = match rest.split_once('.') {
            Some((p, i)) => (p, Some(CostItem::from_name(i).ok_or_else(unknown)?)),
            None => (rest, None),
        };
        return CostPeriod::from_name(period).map(|p| Metric::Cost(sel, p, item)).ok_or_else(unknown);
    }
    if let Some(rest) = m.strip_prefix("target.") {
        let (metric, stat) = rest.rsplit_once('.').ok_or_else(unknown)?;
        let metric = TargetMetric::from_name(metric).ok_or_else(unknown)?;
        return TargetStat::from_name(stat).map(|s| Metric::Target(metric, s)).ok_or_else(unknown);
    }
    if let Some(rest) = m.strip_prefix("errors.") {
        return Ok(Metric::Errors(match rest {
            "*" | "total" => Sel::All,
            kind => Sel::Named(kind.into()),
        }));
    }
    Err(unknown())
}

fn parse_with(spec: &GateSpec, names: &Names) -> Result<Gate, GateError> {
    let text = spec.gate.trim();
    let not_a_gate = || GateError::NotAGate(text.to_string());
    let (i, op_text, op) = Op::TEXT
        .iter()
        .filter_map(|(t, o)| text.find(t).map(|i| (i, *t, *o)))
        .min_by_key(|(i, t, _)| (*i, std::cmp::Reverse(t.len())))
        .ok_or_else(not_a_gate)?;
    let metric_text = text[..i].trim();
    let threshold_text = text[i + op_text.len()..].trim();
    if metric_text.is_empty() || threshold_text.is_empty() {
        return Err(not_a_gate());
    }
    let metric = parse_metric(metric_text, names)?;
    let threshold = metric.unit().parse(threshold_text)?;
    if spec.abort_on_fail && !metric.is_live() {
        return Err(GateError::NotLive { metric: metric_text.to_string() });
    }
    Ok(Gate { spec: spec.clone(), metric, op, threshold, threshold_text: threshold_text.to_string() })
}

impl Gate {
    /// Parse and check a gate against the scenario it belongs to.
    pub fn parse(spec: &GateSpec, s: &Scenario) -> Result<Gate, GateError> {
        parse_with(spec, &Names::of(s))
    }
}

/// Cost gates against the names of the pricing files a run (or a merge) is priced under: a cost
/// gate needs at least one, and `cost[NAME]` one of that name. As `(field path, message)`, the
/// path `gates[i]` of the gate's spec in `specs`, to be located like every other problem.
pub fn check_pricing(gates: &[Gate], specs: &[GateSpec], priced: &[String]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for g in gates {
        let Metric::Cost(sel, ..) = &g.metric else { continue };
        let metric = g.spec.gate.split(|c| "<>=!".contains(c)).next().unwrap_or_default().trim().to_string();
        let problem = match sel {
            _ if priced.is_empty() => GateError::Unpriced { metric },
            Sel::Named(name) if !priced.contains(name) => {
                GateError::UnknownPricing { metric, name: name.clone(), priced: priced.to_vec() }
            }
            Sel::Named(_) | Sel::All => continue,
        };
        let at = specs.iter().position(|s| s == &g.spec).map_or_else(|| "gates".to_string(), |i| format!("gates[{i}]"));
        out.push((at, problem.to_string()));
    }
    out
}

/// A gates file for `--gates`: `gates: [...]`.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct GatesFile {
    pub gates: Vec<GateSpec>,
}

/// Parse every gate, collecting every problem as (index, error).
pub fn parse_all(specs: &[GateSpec], s: &Scenario) -> (Vec<Gate>, Vec<(usize, GateError)>) {
    let names = Names::of(s);
    let mut gates = Vec::new();
    let mut problems = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        match parse_with(spec, &names) {
            Ok(g) => gates.push(g),
            Err(e) => problems.push((i, e)),
        }
    }
    (gates, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario() -> Scenario {
        crate::config::parse_scenario(
            "s.yaml",
            "name: s\nseed: 1\nduration: 10s\ntopics: [{name: t}]\nfleet:\n  devices: 10\n  classes: [{name: tel, topic: t, rate: 1/1s}]\nconsumers: [{name: warehouse, topics: [t]}, {name: ware, topics: [t]}]\nfaults: [{name: kill, at: 2s, kind: broker_kill}]\n",
        )
        .unwrap()
    }

    fn gate(text: &str) -> Result<Gate, GateError> {
        Gate::parse(&GateSpec { gate: text.into(), name: None, abort_on_fail: false }, &scenario())
    }

    fn err(text: &str) -> String {
        gate(text).unwrap_err().to_string()
    }

    #[test]
    fn harness_gates_parse_and_unknown_harness_fields_are_rejected() {
        assert!(gate("harness.saturated == 0").is_ok());
        assert!(gate("harness.cpu_pct_mean < 150%").is_ok());
        assert!(err("harness.bogus == 0").contains("harness.bogus"));
    }

    #[test]
    fn gates_parse_with_units() {
        let g = gate("produce.latency.p99 < 250ms").unwrap();
        assert_eq!((g.op, g.threshold), (Op::Lt, 250_000.0));
        assert_eq!(gate("audit.lost == 0").unwrap().threshold, 0.0);
        assert_eq!(gate("consumers.warehouse.max_lag <= 100k").unwrap().threshold, 100_000.0);
        assert_eq!(gate("faults.*.unavailable < 30s").unwrap().threshold, 30e6);
        assert_eq!(gate("faults.kill.dip < 50%").unwrap().threshold, 50.0);
        assert_eq!(gate("produce.achieved_rate >= 500/s").unwrap().threshold, 500.0);
        // The longest declared name wins: `ware` is a prefix of `warehouse`.
        assert!(
            matches!(gate("consumers.warehouse.missed == 0").unwrap().metric, Metric::Group(Sel::Named(ref n), _) if n == "warehouse")
        );
    }

    #[test]
    fn unknown_metrics_and_names_are_errors() {
        let e = err("produce.latnecy.p99 < 1s");
        assert!(e.contains("unknown metric `produce.latnecy.p99`"), "{e}");
        let e = err("consumers.nope.max_lag < 5");
        assert!(e.contains("unknown consumer group") && e.contains("`warehouse`"), "{e}");
        assert!(err("waves.*.dropped == 0").contains("matches no wave"));
        assert!(err("audit.lost").contains("is not a gate"));
        assert!(err("produce.latency.p99 < 250").contains("not a duration"));
    }

    #[test]
    fn abort_on_fail_needs_a_live_metric() {
        let spec = |g: &str| GateSpec { gate: g.into(), name: None, abort_on_fail: true };
        assert!(Gate::parse(&spec("consumers.warehouse.max_lag < 10"), &scenario()).is_ok());
        let e = Gate::parse(&spec("audit.lost == 0"), &scenario()).unwrap_err().to_string();
        assert_eq!(
            e,
            "`audit.lost` is known only at the end of the run: abort_on_fail needs consumers.<group>.max_lag, produce.failed, produce.backpressure or errors.*"
        );
    }

    #[test]
    fn every_name_in_the_tables_parses_to_its_own_metric_with_its_unit() {
        // One table per family is the only place a metric is named: every name in it must parse,
        // to that variant, and carry the table's unit.
        for m in ProduceMetric::ALL {
            for n in m.names() {
                assert_eq!(gate(&format!("produce.{n} >= 0")).unwrap().metric, Metric::Produce(*m));
            }
        }
        for l in ProduceLatency::ALL {
            for q in Quantile::ALL {
                let g = gate(&format!("produce.{}.{} < 1s", l.name(), q.name())).unwrap();
                assert_eq!(g.metric, Metric::ProduceLatency(*l, *q));
                assert_eq!(g.metric.unit(), Unit::Duration);
            }
        }
        for l in ClassLatency::ALL {
            let g = gate(&format!("produce.classes.*.{}.p99 < 1s", l.name())).unwrap();
            assert_eq!(g.metric, Metric::ClassLatency(Sel::All, *l, Quantile::P99));
        }
        for m in GroupMetric::ALL {
            let g = gate(&format!("consumers.ware.{} >= 0", m.name())).unwrap();
            assert_eq!(g.metric, Metric::Group(Sel::Named("ware".into()), *m));
        }
        for l in GroupLatency::ALL {
            for n in l.names() {
                let g = gate(&format!("consumers.*.{n}.p99.9 < 1s")).unwrap();
                assert_eq!(g.metric, Metric::GroupLatency(Sel::All, *l, Quantile::P999));
            }
        }
        for m in AuditMetric::ALL {
            assert_eq!(gate(&format!("audit.{} == 0", m.name())).unwrap().metric, Metric::Audit(*m));
        }
        for m in FaultMetric::ALL {
            let g = gate(&format!("faults.kill.{} >= 0", m.name())).unwrap();
            assert_eq!((g.metric.unit(), g.metric), (m.unit(), Metric::Fault(Sel::Named("kill".into()), *m)));
        }
        for m in HarnessMetric::ALL {
            assert_eq!(gate(&format!("harness.{} >= 0", m.name())).unwrap().metric, Metric::Harness(*m));
        }
        assert_eq!(gate("errors.total == 0").unwrap().metric, Metric::Errors(Sel::All));
        assert_eq!(
            gate("errors.MessageTimedOut == 0").unwrap().metric,
            Metric::Errors(Sel::Named("MessageTimedOut".into()))
        );
    }

    #[test]
    fn cost_gates_parse_per_bill_per_line_and_per_pricing() {
        let g = gate("cost.monthly < 12000").unwrap();
        assert_eq!((g.metric.clone(), g.threshold), (Metric::Cost(Sel::All, CostPeriod::Monthly, None), 12000.0));
        assert_eq!(g.metric.unit(), Unit::Money);
        assert_eq!(gate("cost.hourly <= 12.5").unwrap().threshold, 12.5);
        assert_eq!(gate("cost.monthly < 12k").unwrap().threshold, 12000.0);
        for i in CostItem::ALL {
            let g = gate(&format!("cost.monthly.{} < 1", i.name())).unwrap();
            assert_eq!(g.metric, Metric::Cost(Sel::All, CostPeriod::Monthly, Some(*i)));
        }
        let g = gate("cost[managed-kafka-msk].monthly.transfer < 500").unwrap();
        assert_eq!(
            g.metric,
            Metric::Cost(Sel::Named("managed-kafka-msk".into()), CostPeriod::Monthly, Some(CostItem::Transfer))
        );
        for bad in [
            "cost.yearly < 1",
            "cost.monthly.bandwidth < 1",
            "cost[].monthly < 1",
            "cost[x.monthly < 1",
            "costs.monthly < 1",
        ] {
            assert!(err(bad).contains("unknown metric"), "{bad}: {}", err(bad));
        }
        assert!(err("cost.monthly < twelve").contains("an amount"));
        let spec = GateSpec { gate: "cost.monthly < 1".into(), name: None, abort_on_fail: true };
        assert!(Gate::parse(&spec, &scenario()).unwrap_err().to_string().contains("known only at the end"));
    }

    #[test]
    fn a_cost_gate_needs_pricing_and_a_named_pricing_must_be_given() {
        let specs: Vec<GateSpec> = ["audit.lost == 0", "cost.monthly < 12000", "cost[msk].monthly < 1"]
            .iter()
            .map(|g| GateSpec { gate: (*g).into(), name: None, abort_on_fail: false })
            .collect();
        let (gates, problems) = parse_all(&specs, &scenario());
        assert!(problems.is_empty(), "{problems:?}");
        let none = check_pricing(&gates, &specs, &[]);
        assert_eq!(none.len(), 2, "{none:?}");
        assert_eq!(none[0].0, "gates[1]");
        assert!(
            none[0].1.contains("`cost.monthly` is a cost gate but the run is priced under no pricing file"),
            "{}",
            none[0].1
        );
        let other = check_pricing(&gates, &specs, &["ec2".to_string()]);
        assert_eq!(other.len(), 1, "{other:?}");
        assert_eq!(other[0].0, "gates[2]");
        assert!(other[0].1.contains("pricing `msk`") && other[0].1.contains("`ec2`"), "{}", other[0].1);
        assert!(check_pricing(&gates, &specs, &["ec2".to_string(), "msk".to_string()]).is_empty());
        assert!(
            gates.iter().all(|g| !matches!(g.metric, Metric::Audit(_))
                || check_pricing(std::slice::from_ref(g), &specs, &[]).is_empty())
        );
    }

    #[test]
    fn a_class_has_no_send_lag_metric() {
        // It used to parse and then read the class's latency from the intended time instead.
        assert!(err("produce.classes.tel.send_lag.p99 < 1s").contains("unknown metric"));
    }

    #[test]
    fn the_readme_lists_the_catalogue_as_the_tables_declare_it() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        let block = catalogue().join("\n");
        assert!(
            readme.contains(&block),
            "README.md's gate catalogue differs from config/gates.rs; it should read:\n{block}"
        );
    }

    #[test]
    fn the_catalogue_is_drawn_from_the_tables() {
        let c = catalogue();
        assert_eq!(c[0], "produce.{achieved_rate,planned_rate,rate,achieved_ratio,acked,failed,purged,backpressure}");
        assert_eq!(c[1], "produce.{latency,latency_from_send,send_lag}.{p50,p90,p99,p999,max,min,mean}");
        assert_eq!(
            c[9],
            "harness.{saturated,cpu_saturated_s,lagging_s,cpu_pct_mean,cpu_pct_peak,host_cpu_pct_mean,rss_mib_peak}"
        );
    }
}
