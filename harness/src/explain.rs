//! `fleetstorm plan`: what a scenario will do and when, without a target. The rates come from
//! iterating the actual seeded schedule, so they are what a run will send.

use std::fmt::Write;

use serde::Serialize;

use crate::config::scenario::{BrokerSelector, ReplayTarget, Scenario};
use crate::plan::Plan;
use crate::report::fmt::count;

/// One timed happening.
#[derive(Clone, Debug, Serialize)]
pub struct Happening {
    pub at_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until_s: Option<f64>,
    pub what: String,
}

/// The explanation of a plan.
#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    pub name: String,
    pub seed: u64,
    pub devices: u64,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub classes: Vec<ClassLine>,
    pub timeline: Vec<Happening>,
    /// Planned records per bucket of `bucket_s` seconds, by intended send time.
    pub bucket_s: f64,
    pub planned: Vec<u64>,
    /// Planned records per bucket and class.
    pub planned_by_class: Vec<Vec<u64>>,
    pub total: u64,
    /// The sum of every planned event's digest (wrapping), hex: the shards of a campaign add up
    /// (wrapping) to the whole plan's hash.
    pub plan_hash: String,
    /// Set when the plan is one shard of a campaign (`--shard I/N`): the counts above are the
    /// shard's.
    pub shard: Option<ShardLine>,
    /// Events dropped by full wave buffers.
    pub dropped: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ShardLine {
    /// `I/N`.
    pub shard: String,
    /// Devices of this shard.
    pub devices: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ClassLine {
    pub name: String,
    pub topic: String,
    pub devices: u64,
    pub nominal_per_s: f64,
    /// How uneven the class's activity is (`classes[].skew`), in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skew: Option<String>,
}

pub fn explain(s: &Scenario, plan: &Plan) -> Explanation {
    let mut t: Vec<Happening> = Vec::new();
    let mut at = |at_s: f64, until_s: Option<f64>, what: String| t.push(Happening { at_s, until_s, what });
    at(0.0, None, "load starts".into());
    if !s.warmup.is_zero() {
        at(s.warmup.as_secs_f64(), None, "warm-up ends: latency and rates are measured from here".into());
    }
    for (i, w) in plan.waves.iter().enumerate() {
        let spec = &s.waves[i];
        let who = match &spec.cohort {
            Some(c) => format!("{} of cohort {c}", spec.share),
            None => format!("{} of the fleet", spec.share),
        };
        for k in 0..w.times {
            let start = w.start_ns(k) as f64 / 1e9;
            at(
                start,
                Some(start + (w.offline_ns + w.jitter_ns) as f64 / 1e9),
                format!(
                    "wave {}{}: {who} offline for {}, reconnecting over {}; buffers of {} ({}), flush {}",
                    w.label,
                    if w.times > 1 { format!(" #{}", k + 1) } else { String::new() },
                    spec.offline,
                    spec.reconnect_jitter,
                    spec.buffer.capacity,
                    match spec.buffer.overflow {
                        crate::config::scenario::Overflow::DropOldest => "drop oldest",
                        crate::config::scenario::Overflow::DropNewest => "drop newest",
                    },
                    spec.flush_rate.map_or_else(|| "all at once".to_string(), |r| format!("at {r} per device")),
                ),
            );
        }
    }
    if let Some(fw) = &s.fleet.firmware {
        let base: Vec<String> =
            fw.versions.iter().filter(|v| v.share.0 > 0.0).map(|v| format!("{} {}", v.name, v.share)).collect();
        at(0.0, None, format!("firmware: {}", base.join(", ")));
        for r in &fw.rollouts {
            at(
                r.start.as_secs_f64(),
                Some(r.start.as_secs_f64() + r.over.as_secs_f64()),
                format!(
                    "rollout to {} ({} of devices on {}) over {}",
                    r.to,
                    r.share,
                    r.from.as_deref().unwrap_or("other versions"),
                    r.over
                ),
            );
        }
    }
    for c in &s.fleet.classes {
        if let Some(crate::config::scenario::RateShape::Stages(stages)) = &c.shape {
            for st in stages {
                at(
                    st.at.as_secs_f64(),
                    st.ramp.map(|r| st.at.as_secs_f64() + r.as_secs_f64()),
                    format!(
                        "class {}: rate x{}{}",
                        c.name,
                        st.factor,
                        st.ramp.map(|r| format!(" (ramp over {r})")).unwrap_or_default()
                    ),
                );
            }
        }
        if let Some(crate::config::scenario::RateShape::Diurnal(d)) = &c.shape {
            at(0.0, None, format!("class {}: diurnal rate x{} to x{} every {}", c.name, d.low, d.high, d.period));
        }
    }
    for (i, f) in s.faults.iter().enumerate() {
        let target = match &f.broker {
            BrokerSelector::Random => "a seeded random broker".to_string(),
            other => other.to_string(),
        };
        at(
            f.at.as_secs_f64(),
            f.restore_after.map(|r| f.at.as_secs_f64() + r.as_secs_f64()),
            format!(
                "fault {}: {} on {target}{}, {}",
                f.label(i),
                f.kind.as_str(),
                f.latency.map(|l| format!(" (+{l})")).unwrap_or_default(),
                f.restore_after.map_or_else(|| "until the load ends".to_string(), |r| format!("restored after {r}"))
            ),
        );
    }
    for g in &s.consumers {
        for sl in &g.slowdowns {
            let what =
                if sl.stall { "stalls".to_string() } else { format!("slows down x{}", sl.factor.unwrap_or(1.0)) };
            at(
                sl.at.as_secs_f64(),
                Some(sl.at.as_secs_f64() + sl.lasts.as_secs_f64()),
                format!("consumer {}: {what} for {}", g.name, sl.lasts),
            );
        }
        for r in &g.replays {
            let to = match &r.to {
                ReplayTarget::Earliest => "the earliest offsets".to_string(),
                ReplayTarget::Ago(d) => format!("{d} ago"),
                ReplayTarget::Records(n) => format!("{n} records back per partition"),
            };
            at(
                r.at.as_secs_f64(),
                None,
                format!(
                    "consumer {}: replay from {to}{}",
                    g.name,
                    r.rate.map(|x| format!(", capped at {x}")).unwrap_or_default()
                ),
            );
        }
        for r in &g.restarts {
            at(r.at.as_secs_f64(), None, format!("consumer {}: members close and rejoin after {}", g.name, r.down));
        }
    }
    at(s.duration.as_secs_f64(), None, "load ends; faults undone; drain".into());
    t.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));

    // The schedule itself, bucketed.
    let duration_s = s.duration.as_secs_f64();
    let bucket_s = (duration_s / 20.0).max(1.0).ceil();
    let buckets = (duration_s / bucket_s).ceil() as usize;
    let mut planned = vec![0u64; buckets.max(1)];
    let mut by_class = vec![vec![0u64; buckets.max(1)]; plan.classes.len()];
    let mut schedule = plan.schedule(0, 1);
    let mut total = 0;
    let mut digest = 0u64;
    for e in schedule.by_ref() {
        digest = digest.wrapping_add(e.digest());
        let b = ((e.intended_us as f64 / 1e6 / bucket_s) as usize).min(planned.len() - 1);
        planned[b] += 1;
        by_class[usize::from(e.class)][b] += 1;
        total += 1;
    }
    Explanation {
        name: s.name.clone(),
        seed: s.seed,
        devices: s.fleet.devices,
        duration_s,
        warmup_s: s.warmup.as_secs_f64(),
        classes: plan
            .classes
            .iter()
            .map(|c| ClassLine {
                name: c.name.clone(),
                topic: plan.topics[c.topic].clone(),
                devices: c.participants,
                nominal_per_s: c.planned_rate(),
                skew: c.skew.as_ref().map(|skew| skew_line(skew, c.participants)),
            })
            .collect(),
        timeline: t,
        bucket_s,
        planned,
        planned_by_class: by_class,
        total,
        dropped: schedule.waves.iter().map(|w| w.dropped).sum(),
        plan_hash: format!("{digest:016x}"),
        shard: (!plan.shard.is_whole()).then(|| ShardLine {
            shard: plan.shard.to_string(),
            devices: (0..plan.devices).filter(|d| plan.owns(*d)).count() as u64,
        }),
    }
}

/// `zipf 1.1: the busiest 1% of devices send 62% of the class's records`.
fn skew_line(skew: &crate::config::scenario::Skew, devices: u64) -> String {
    use crate::config::scenario::Skew;
    let top = (devices / 100).max(1);
    let share = crate::plan::skew::top_share(skew, devices, top) * 100.0;
    let what = match skew {
        Skew::Zipf(z) => format!("zipf {}", z.exponent),
        Skew::Hot(h) => format!("{} hot at {}x", h.share, h.factor),
    };
    format!("{what}: the busiest {} devices (1%) send {share:.0}% of the class's records", count(top))
}

pub fn render(x: &Explanation) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{}: {} devices, seed {}, {}s of load ({}s warm-up)\n",
        x.name,
        count(x.devices),
        x.seed,
        x.duration_s,
        x.warmup_s
    );
    if let Some(sh) = &x.shard {
        let _ = writeln!(
            o,
            "shard {}: {} of the {} devices (chosen from the seed); the planned records below are this shard's\n",
            sh.shard,
            count(sh.devices),
            count(x.devices)
        );
    }
    let _ = writeln!(o, "classes");
    for c in &x.classes {
        let _ = writeln!(
            o,
            "  {:<14} {:>9} devices  {:>10.1}/s  -> {}",
            c.name,
            count(c.devices),
            c.nominal_per_s,
            c.topic
        );
        if let Some(skew) = &c.skew {
            let _ = writeln!(o, "  {:<14} skew {skew}", "");
        }
    }
    let _ = writeln!(o, "\ntimeline");
    for h in &x.timeline {
        let until = h.until_s.map(|u| format!("-{u:.1}s")).unwrap_or_default();
        let _ = writeln!(o, "  {:>8}{:<9} {}", format!("{:.1}s", h.at_s), until, h.what);
    }
    let _ = writeln!(o, "\nplanned records per second, by intended send time ({}s buckets)", x.bucket_s);
    let peak = x.planned.iter().copied().max().unwrap_or(0).max(1);
    for (i, n) in x.planned.iter().enumerate() {
        let rate = *n as f64 / x.bucket_s;
        let bar = "#".repeat(((*n as f64 / peak as f64) * 40.0).round() as usize);
        let _ = writeln!(o, "  {:>7}  {:>11.1}/s  {bar}", format!("{}s", i as f64 * x.bucket_s), rate);
    }
    let _ = writeln!(
        o,
        "\n{} records planned{} (plan hash {})",
        count(x.total),
        if x.dropped > 0 { format!(", {} dropped by full wave buffers", count(x.dropped)) } else { String::new() },
        x.plan_hash
    );
    o
}
