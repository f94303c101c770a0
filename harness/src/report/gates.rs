//! Gates: readable assertions over report fields, evaluated at the end of a run (some also live).
//!
//! ```yaml
//! gates:
//!   - produce.latency.p99 < 250ms
//!   - audit.lost == 0
//!   - faults.*.unavailable < 30s
//!   - {gate: "consumers.warehouse.max_lag < 100000", abort_on_fail: true}
//! ```
//!
//! A gate names a metric from a closed catalogue (see [`CATALOGUE`]); the names of groups,
//! classes, faults and waves must be declared in the scenario, and `*` means every one of them
//! (all must pass). An unknown metric, a malformed gate or a threshold in the wrong unit is a
//! validation error, never silently ignored.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Report;
use super::schema::LatencySummary;
use crate::config::scenario::{GateSpec, Scenario};
use crate::config::units::{Dur, Rate};

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
}

impl Unit {
    fn example(self) -> &'static str {
        match self {
            Unit::Duration => "a duration such as `250ms`",
            Unit::Count => "a number such as `0` or `100k`",
            Unit::Percent => "a percentage such as `5%`",
            Unit::Rate => "a rate such as `500/s`",
        }
    }

    fn parse(self, t: &str) -> Result<f64, String> {
        let bad = || format!("threshold `{t}` is not {}", self.example());
        match self {
            Unit::Duration => t.parse::<Dur>().map(|d| d.as_micros() as f64).map_err(|_| bad()),
            Unit::Percent => t.trim_end_matches('%').trim().parse::<f64>().map_err(|_| bad()),
            Unit::Rate => t.parse::<Rate>().map(Rate::as_per_sec).or_else(|_| t.parse::<f64>()).map_err(|_| bad()),
            Unit::Count => {
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

    fn show(self, v: f64) -> String {
        match self {
            Unit::Duration => super::summary::us(v.max(0.0) as u64),
            Unit::Percent => format!("{v:.2}%"),
            Unit::Rate => format!("{v:.1}/s"),
            Unit::Count => {
                if v.fract() == 0.0 {
                    super::summary::count(v as u64)
                } else {
                    format!("{v:.3}")
                }
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    fn holds(self, v: f64, t: f64) -> bool {
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

/// A latency quantile name.
fn quantile(q: &str) -> Option<fn(&LatencySummary) -> f64> {
    Some(match q {
        "p50" => |l: &LatencySummary| l.p50_us as f64,
        "p90" => |l: &LatencySummary| l.p90_us as f64,
        "p99" => |l: &LatencySummary| l.p99_us as f64,
        "p999" | "p99.9" => |l: &LatencySummary| l.p999_us as f64,
        "max" => |l: &LatencySummary| l.max_us as f64,
        "min" => |l: &LatencySummary| l.min_us as f64,
        "mean" => |l: &LatencySummary| l.mean_us,
        _ => return None,
    })
}

/// The metric catalogue, for error messages and the docs.
pub const CATALOGUE: &[&str] = &[
    "produce.{achieved_rate,planned_rate,rate,achieved_ratio,acked,failed,purged,backpressure}",
    "produce.{latency,latency_from_send,send_lag}.{p50,p90,p99,p999,max,mean}",
    "produce.classes.<class|*>.{latency,latency_from_send}.{p50,p90,p99,p999,max,mean}",
    "consumers.<group|*>.{max_lag,final_lag,consumed,rereads,missed,rate}",
    "consumers.<group|*>.{e2e,event_age}.{p50,p90,p99,p999,max,mean}",
    "audit.{lost,duplicates,reordered,failed_but_seen,unacked_seen,acked,seen}",
    "faults.<fault|*>.{unavailable,unavailable_topic,recovered,dip}",
    "waves.<wave|*>.{dropped,unsent,flush}",
    "errors.<kind|*|total>",
    "harness.{saturated,cpu_saturated_s,lagging_s,cpu_pct_mean,cpu_pct_peak,host_cpu_pct_mean,rss_mib_peak}",
];

/// A parsed, validated gate.
#[derive(Clone, Debug)]
pub struct Gate {
    pub spec: GateSpec,
    metric: Metric,
    op: Op,
    threshold: f64,
    threshold_text: String,
}

#[derive(Clone, Debug)]
enum Metric {
    Produce(String),
    ProduceLatency(String, String),
    ClassLatency(Sel, String, String),
    Group(Sel, String),
    GroupLatency(Sel, String, String),
    Audit(String),
    Fault(Sel, String),
    Wave(Sel, String),
    Errors(Sel),
    Harness(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Sel {
    All,
    Named(String),
}

impl Sel {
    fn matches(&self, name: &str) -> bool {
        match self {
            Sel::All => true,
            Sel::Named(n) => n == name,
        }
    }
}

/// `rest` starts with one of `names` (or `*`) followed by a dot: (selector, remainder).
fn take_name<'a>(rest: &'a str, names: &[String], what: &str) -> Result<(Sel, &'a str), String> {
    if let Some(r) = rest.strip_prefix("*.") {
        if names.is_empty() {
            return Err(format!("`*` matches no {what}: the scenario declares none"));
        }
        return Ok((Sel::All, r));
    }
    let best = names.iter().filter(|n| rest.starts_with(&format!("{n}."))).max_by_key(|n| n.len());
    match best {
        Some(n) => Ok((Sel::Named(n.clone()), &rest[n.len() + 1..])),
        None => {
            let list = names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
            Err(format!(
                "unknown {what} in `{rest}`: {}",
                if list.is_empty() { format!("the scenario declares no {what}") } else { format!("declared: {list}") }
            ))
        }
    }
}

fn unknown(metric: &str) -> String {
    format!("unknown metric `{metric}`; metrics are: {}", CATALOGUE.join(", "))
}

fn parse_metric(m: &str, s: &Scenario) -> Result<(Metric, Unit), String> {
    let groups: Vec<String> = s.consumers.iter().map(|g| g.name.clone()).collect();
    let classes: Vec<String> = s.fleet.classes.iter().map(|c| c.name.clone()).collect();
    let faults: Vec<String> = s.faults.iter().enumerate().map(|(i, f)| f.label(i)).collect();
    let waves: Vec<String> = s.waves.iter().enumerate().map(|(i, w)| w.label(i)).collect();
    let lat = |l: &str| ["latency", "latency_from_intended", "latency_from_send", "send_lag"].contains(&l);
    if let Some(rest) = m.strip_prefix("produce.classes.") {
        let (sel, rest) = take_name(rest, &classes, "class")?;
        return match rest.split_once('.') {
            Some((l, q)) if lat(l) && quantile(q).is_some() => {
                Ok((Metric::ClassLatency(sel, l.into(), q.into()), Unit::Duration))
            }
            _ => Err(unknown(m)),
        };
    }
    if let Some(rest) = m.strip_prefix("produce.") {
        return match rest.split_once('.') {
            Some((l, q)) if lat(l) && quantile(q).is_some() => {
                Ok((Metric::ProduceLatency(l.into(), q.into()), Unit::Duration))
            }
            None => match rest {
                "achieved_rate" | "planned_rate" | "rate" => Ok((Metric::Produce(rest.into()), Unit::Rate)),
                "achieved_ratio" => Ok((Metric::Produce(rest.into()), Unit::Percent)),
                "acked" | "failed" | "purged" | "backpressure" => Ok((Metric::Produce(rest.into()), Unit::Count)),
                _ => Err(unknown(m)),
            },
            _ => Err(unknown(m)),
        };
    }
    if let Some(rest) = m.strip_prefix("consumers.") {
        let (sel, rest) = take_name(rest, &groups, "consumer group")?;
        return match rest.split_once('.') {
            Some((l, q)) if ["e2e", "e2e_latency", "event_age"].contains(&l) && quantile(q).is_some() => {
                Ok((Metric::GroupLatency(sel, l.into(), q.into()), Unit::Duration))
            }
            None if ["max_lag", "final_lag", "consumed", "rereads", "missed"].contains(&rest) => {
                Ok((Metric::Group(sel, rest.into()), Unit::Count))
            }
            None if rest == "rate" => Ok((Metric::Group(sel, rest.into()), Unit::Rate)),
            _ => Err(unknown(m)),
        };
    }
    if let Some(rest) = m.strip_prefix("audit.") {
        return match rest {
            "lost" | "duplicates" | "reordered" | "failed_but_seen" | "unacked_seen" | "acked" | "seen" => {
                Ok((Metric::Audit(rest.into()), Unit::Count))
            }
            _ => Err(unknown(m)),
        };
    }
    if let Some(rest) = m.strip_prefix("harness.") {
        return match rest {
            "saturated" | "cpu_saturated_s" | "lagging_s" | "rss_mib_peak" => {
                Ok((Metric::Harness(rest.into()), Unit::Count))
            }
            "cpu_pct_mean" | "cpu_pct_peak" | "host_cpu_pct_mean" => Ok((Metric::Harness(rest.into()), Unit::Percent)),
            _ => Err(unknown(m)),
        };
    }
    if let Some(rest) = m.strip_prefix("faults.") {
        let (sel, rest) = take_name(rest, &faults, "fault")?;
        return match rest {
            "unavailable" | "unavailable_topic" | "recovered" => Ok((Metric::Fault(sel, rest.into()), Unit::Duration)),
            "dip" => Ok((Metric::Fault(sel, rest.into()), Unit::Percent)),
            _ => Err(unknown(m)),
        };
    }
    if let Some(rest) = m.strip_prefix("waves.") {
        let (sel, rest) = take_name(rest, &waves, "wave")?;
        return match rest {
            "dropped" | "unsent" => Ok((Metric::Wave(sel, rest.into()), Unit::Count)),
            "flush" => Ok((Metric::Wave(sel, rest.into()), Unit::Duration)),
            _ => Err(unknown(m)),
        };
    }
    if let Some(rest) = m.strip_prefix("errors.") {
        return Ok(match rest {
            "*" | "total" => (Metric::Errors(Sel::All), Unit::Count),
            kind => (Metric::Errors(Sel::Named(kind.into())), Unit::Count),
        });
    }
    Err(unknown(m))
}

impl Gate {
    /// Parse and validate a gate against the scenario it belongs to.
    pub fn parse(spec: &GateSpec, s: &Scenario) -> Result<Gate, String> {
        let text = spec.gate.trim();
        let ops = [("<=", Op::Le), (">=", Op::Ge), ("==", Op::Eq), ("!=", Op::Ne), ("<", Op::Lt), (">", Op::Gt)];
        let (i, op_text, op) = ops
            .iter()
            .filter_map(|(t, o)| text.find(t).map(|i| (i, *t, *o)))
            .min_by_key(|(i, t, _)| (*i, std::cmp::Reverse(t.len())))
            .ok_or_else(|| format!("`{text}` is not a gate: write METRIC OP THRESHOLD, e.g. `audit.lost == 0`"))?;
        let metric_text = text[..i].trim();
        let threshold_text = text[i + op_text.len()..].trim();
        if metric_text.is_empty() || threshold_text.is_empty() {
            return Err(format!("`{text}` is not a gate: write METRIC OP THRESHOLD, e.g. `audit.lost == 0`"));
        }
        let (metric, unit) = parse_metric(metric_text, s)?;
        let threshold = unit.parse(threshold_text)?;
        let gate = Gate { spec: spec.clone(), metric, op, threshold, threshold_text: threshold_text.to_string() };
        if spec.abort_on_fail && !gate.is_live() {
            return Err(format!(
                "`{metric_text}` is known only at the end of the run: abort_on_fail needs consumers.<group>.max_lag, produce.failed, produce.backpressure or errors.*"
            ));
        }
        Ok(gate)
    }

    pub fn is_live(&self) -> bool {
        matches!(&self.metric, Metric::Group(_, f) if f == "max_lag")
            || matches!(&self.metric, Metric::Produce(f) if f == "failed" || f == "backpressure")
            || matches!(&self.metric, Metric::Errors(_))
    }

    fn unit(&self) -> Unit {
        match &self.metric {
            Metric::ProduceLatency(..) | Metric::ClassLatency(..) | Metric::GroupLatency(..) => Unit::Duration,
            Metric::Produce(f) if f.ends_with("rate") => Unit::Rate,
            Metric::Produce(f) if f == "achieved_ratio" => Unit::Percent,
            Metric::Group(_, f) if f == "rate" => Unit::Rate,
            Metric::Fault(_, f) if f == "dip" => Unit::Percent,
            Metric::Fault(..) => Unit::Duration,
            Metric::Wave(_, f) if f == "flush" => Unit::Duration,
            _ => Unit::Count,
        }
    }

    /// The metric's values in a report, labelled; `None` where it has no value (e.g. a fault
    /// after which writes never resumed).
    fn values(&self, r: &Report) -> Vec<(String, Option<f64>)> {
        let latency = |l: &str, p: &super::ProduceReport| -> LatencySummary {
            match l {
                "latency_from_send" => p.latency_from_send.clone(),
                "send_lag" => p.send_lag.clone(),
                _ => p.latency_from_intended.clone(),
            }
        };
        let some = |v: f64| Some(v);
        match &self.metric {
            Metric::Produce(f) => {
                let p = &r.produce;
                let v = match f.as_str() {
                    "achieved_rate" => p.achieved_rate,
                    "planned_rate" => p.planned_rate,
                    "rate" => p.msgs_per_s,
                    "achieved_ratio" => {
                        if p.planned_rate > 0.0 {
                            100.0 * p.achieved_rate / p.planned_rate
                        } else {
                            0.0
                        }
                    }
                    "acked" => p.acked as f64,
                    "failed" => p.failed as f64,
                    "purged" => p.purged as f64,
                    _ => p.backpressure as f64,
                };
                vec![(String::new(), some(v))]
            }
            Metric::ProduceLatency(l, q) => {
                let s = latency(l, &r.produce);
                vec![(String::new(), (s.count > 0).then(|| quantile(q).map_or(0.0, |f| f(&s))))]
            }
            Metric::ClassLatency(sel, l, q) => r
                .produce
                .classes
                .iter()
                .filter(|(n, _)| sel.matches(n))
                .map(|(n, c)| {
                    let s = if l == "latency_from_send" { &c.latency_from_send } else { &c.latency_from_intended };
                    (n.clone(), (s.count > 0).then(|| quantile(q).map_or(0.0, |f| f(s))))
                })
                .collect(),
            Metric::Group(sel, f) => r
                .consumers
                .iter()
                .filter(|(n, _)| sel.matches(n))
                .map(|(n, g)| {
                    let v = match f.as_str() {
                        "max_lag" => g.max_lag as f64,
                        "final_lag" => g.final_lag as f64,
                        "consumed" => g.consumed as f64,
                        "rereads" => g.rereads as f64,
                        "missed" => g.missed as f64,
                        _ => g.msgs_per_s,
                    };
                    (n.clone(), some(v))
                })
                .collect(),
            Metric::GroupLatency(sel, l, q) => r
                .consumers
                .iter()
                .filter(|(n, _)| sel.matches(n))
                .map(|(n, g)| {
                    let s = if l == "event_age" { &g.event_age } else { &g.e2e_latency };
                    (n.clone(), (s.count > 0).then(|| quantile(q).map_or(0.0, |f| f(s))))
                })
                .collect(),
            Metric::Audit(f) => {
                let c = &r.audit.counts;
                let v = match f.as_str() {
                    "lost" => c.lost,
                    "duplicates" => c.duplicates,
                    "reordered" => c.reordered,
                    "failed_but_seen" => c.failed_but_seen,
                    "unacked_seen" => c.unacked_seen,
                    "acked" => c.acked,
                    _ => c.seen,
                };
                vec![(String::new(), r.audit.enabled.then_some(v as f64))]
            }
            Metric::Harness(f) => {
                let h = &r.harness;
                let v = match f.as_str() {
                    "saturated" => f64::from(u8::from(h.saturated)),
                    "cpu_saturated_s" => f64::from(h.cpu_saturated_s),
                    "lagging_s" => f64::from(h.lagging_s),
                    "rss_mib_peak" => f64::from(h.rss_mib_peak),
                    "cpu_pct_mean" => f64::from(h.cpu_pct_mean),
                    "cpu_pct_peak" => f64::from(h.cpu_pct_peak),
                    _ => f64::from(h.host_cpu_pct_mean),
                };
                // Without samples (self-monitoring unavailable) there is nothing to judge.
                vec![(String::new(), (h.cores > 0).then_some(v))]
            }
            Metric::Fault(sel, f) => r
                .faults
                .iter()
                .filter(|x| sel.matches(&x.name))
                .map(|x| {
                    let v = match f.as_str() {
                        "unavailable" => x.unavailable.affected_partitions_s.map(|s| s * 1e6),
                        "unavailable_topic" => {
                            x.unavailable.topics.values().try_fold(0.0f64, |m, v| v.map(|v| m.max(v))).map(|s| s * 1e6)
                        }
                        "recovered" => x.recovery.recovered_s.map(|s| s * 1e6),
                        _ => x.started_s.map(|_| x.throughput.dip_pct),
                    };
                    (x.name.clone(), v)
                })
                .collect(),
            Metric::Wave(sel, f) => r
                .waves
                .iter()
                .filter(|w| sel.matches(&w.name))
                .map(|w| {
                    let label = format!("{}#{}", w.name, w.occurrence + 1);
                    let v = match f.as_str() {
                        "dropped" => Some(w.dropped as f64),
                        "unsent" => Some(w.unsent as f64),
                        _ => w.flush_end_s.map(|e| (e - w.start_s) * 1e6),
                    };
                    (label, v)
                })
                .collect(),
            Metric::Errors(sel) => {
                let total: u64 = r.errors.iter().filter(|(k, _)| sel.matches(k)).map(|(_, v)| *v).sum();
                vec![(String::new(), some(total as f64))]
            }
        }
    }

    /// Evaluate on a finished report.
    pub fn evaluate(&self, r: &Report) -> GateResult {
        self.judge(self.values(r))
    }

    fn judge(&self, values: Vec<(String, Option<f64>)>) -> GateResult {
        let unit = self.unit();
        let mut failures = Vec::new();
        let mut shown = Vec::new();
        if values.is_empty() {
            failures.push("no value to check".to_string());
        }
        for (label, v) in &values {
            let prefix = if label.is_empty() { String::new() } else { format!("{label}: ") };
            match v {
                None => {
                    failures.push(format!("{prefix}no value"));
                    shown.push(format!("{prefix}n/a"));
                }
                Some(v) => {
                    shown.push(format!("{prefix}{}", unit.show(*v)));
                    if !self.op.holds(*v, self.threshold) {
                        failures.push(format!("{prefix}{}", unit.show(*v)));
                    }
                }
            }
        }
        GateResult {
            name: self.spec.name.clone().unwrap_or_else(|| self.spec.gate.clone()),
            gate: self.spec.gate.clone(),
            threshold: self.threshold_text.clone(),
            value: shown.join(", "),
            passed: failures.is_empty(),
            detail: if failures.is_empty() { String::new() } else { format!("failed: {}", failures.join(", ")) },
            abort_on_fail: self.spec.abort_on_fail,
        }
    }

    /// Evaluate a live gate on what is known while running; `None` if it cannot be judged live.
    pub fn evaluate_live(&self, live: &Live) -> Option<GateResult> {
        let values = match &self.metric {
            Metric::Group(sel, f) if f == "max_lag" => {
                live.max_lag.iter().filter(|(n, _)| sel.matches(n)).map(|(n, v)| (n.clone(), Some(*v as f64))).collect()
            }
            Metric::Produce(f) if f == "failed" => vec![(String::new(), Some(live.failed as f64))],
            Metric::Produce(f) if f == "backpressure" => vec![(String::new(), Some(live.backpressure as f64))],
            Metric::Errors(sel) => {
                vec![(
                    String::new(),
                    Some(live.errors.iter().filter(|(k, _)| sel.matches(k)).map(|(_, v)| *v).sum::<u64>() as f64),
                )]
            }
            _ => return None,
        };
        Some(self.judge(values))
    }
}

/// What live gates can see while the load runs.
#[derive(Clone, Debug, Default)]
pub struct Live {
    pub max_lag: Vec<(String, u64)>,
    pub failed: u64,
    pub backpressure: u64,
    pub errors: Vec<(String, u64)>,
}

/// A gate's verdict.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GateResult {
    pub name: String,
    pub gate: String,
    pub threshold: String,
    /// The value(s) observed, with units.
    pub value: String,
    pub passed: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub abort_on_fail: bool,
}

/// Parse every gate, collecting every problem as (index, message).
pub fn parse_all(specs: &[GateSpec], s: &Scenario) -> (Vec<Gate>, Vec<(usize, String)>) {
    let mut gates = Vec::new();
    let mut problems = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        match Gate::parse(spec, s) {
            Ok(g) => gates.push(g),
            Err(e) => problems.push((i, e)),
        }
    }
    (gates, problems)
}

/// A gates file for `--gates`: `gates: [...]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatesFile {
    pub gates: Vec<GateSpec>,
}

/// JUnit XML: one test case per gate.
pub fn junit(suite: &str, results: &[GateResult], time_s: f64) -> String {
    let esc = super::html::esc;
    let failures = results.iter().filter(|g| !g.passed).count();
    let mut o = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"fleetstorm\" tests=\"{}\" failures=\"{failures}\" time=\"{time_s:.3}\">\n  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{time_s:.3}\">\n",
        results.len(),
        esc(suite),
        results.len()
    );
    for g in results {
        o.push_str(&format!("    <testcase classname=\"{}.gates\" name=\"{}\">\n", esc(suite), esc(&g.name)));
        o.push_str(&format!(
            "      <system-out>gate: {}\nvalue: {}\nthreshold: {}</system-out>\n",
            esc(&g.gate),
            esc(&g.value),
            esc(&g.threshold)
        ));
        if !g.passed {
            o.push_str(&format!("      <failure message=\"{}\">{}</failure>\n", esc(&g.detail), esc(&g.gate)));
        }
        o.push_str("    </testcase>\n");
    }
    o.push_str("  </testsuite>\n</testsuites>\n");
    o
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

    fn gate(text: &str) -> Result<Gate, String> {
        Gate::parse(&GateSpec { gate: text.into(), name: None, abort_on_fail: false }, &scenario())
    }

    #[test]
    fn harness_gates_parse_and_unknown_harness_fields_are_rejected() {
        assert!(gate("harness.saturated == 0").is_ok());
        assert!(gate("harness.cpu_pct_mean < 150%").is_ok());
        assert!(gate("harness.bogus == 0").unwrap_err().contains("harness.bogus"));
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
        let e = gate("produce.latnecy.p99 < 1s").unwrap_err();
        assert!(e.contains("unknown metric `produce.latnecy.p99`"), "{e}");
        let e = gate("consumers.nope.max_lag < 5").unwrap_err();
        assert!(e.contains("unknown consumer group") && e.contains("`warehouse`"), "{e}");
        assert!(gate("waves.*.dropped == 0").unwrap_err().contains("matches no wave"));
        assert!(gate("audit.lost").unwrap_err().contains("is not a gate"));
        assert!(gate("produce.latency.p99 < 250").unwrap_err().contains("not a duration"));
    }

    #[test]
    fn abort_on_fail_needs_a_live_metric() {
        let spec = |g: &str| GateSpec { gate: g.into(), name: None, abort_on_fail: true };
        assert!(Gate::parse(&spec("consumers.warehouse.max_lag < 10"), &scenario()).is_ok());
        assert!(Gate::parse(&spec("audit.lost == 0"), &scenario()).unwrap_err().contains("known only at the end"));
    }

    #[test]
    fn junit_has_one_case_per_gate_and_failures() {
        let results = vec![
            GateResult { name: "a".into(), gate: "audit.lost == 0".into(), passed: true, ..GateResult::default() },
            GateResult {
                name: "b<".into(),
                gate: "x < 1".into(),
                passed: false,
                detail: "failed: 3".into(),
                ..GateResult::default()
            },
        ];
        let x = junit("quick", &results, 1.5);
        assert!(x.contains("tests=\"2\" failures=\"1\""));
        assert_eq!(x.matches("<testcase").count(), 2);
        assert!(x.contains("<failure message=\"failed: 3\">"));
        assert!(x.contains("name=\"b&lt;\""));
    }
}
