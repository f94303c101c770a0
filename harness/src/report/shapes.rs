//! Metrics of the workload's shapes: reconnect waves, replays, sink slowdowns, group restarts.
//! Pure functions of the timeline and of what the drivers recorded, like the fault metrics.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::schema::{RebalanceEvent, RebalanceKind, TimelinePoint};

/// One occurrence of a reconnect wave.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct WaveReport {
    pub name: String,
    /// 0 for the first occurrence of a repeated wave.
    pub occurrence: u32,
    /// Seconds since the load started: devices drop off at `start_s`, come back between
    /// `offline_until_s` and `reconnect_until_s`, and have all flushed their backlog at `flush_end_s`.
    pub start_s: f64,
    pub offline_until_s: f64,
    pub reconnect_until_s: f64,
    #[serde(default)]
    pub flush_end_s: Option<f64>,
    /// (device, class) streams that went offline.
    pub streams: u64,
    /// Events kept in the offline buffers and sent after reconnecting.
    pub buffered: u64,
    /// Events dropped because a buffer was full.
    pub dropped: u64,
    /// Buffered events still unsent when the load ended.
    pub unsent: u64,
    /// Records sent per second over the 10 seconds before the wave.
    pub baseline_sent_per_s: f64,
    /// The busiest second from reconnection to the end of the flush.
    pub peak_sent_per_s: u64,
    /// `peak_sent_per_s / baseline_sent_per_s`: how many times the rate before the wave the flush
    /// peaked at (absent without a baseline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_ratio: Option<f64>,
    /// Per consumer group, the worst per-second event-age p99 (creation to consumption) during
    /// the flush: how stale the backlog was when it arrived.
    pub peak_event_age_p99_us: std::collections::BTreeMap<String, u64>,
}

/// A replay of a consumer group.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct ReplayReport {
    pub at_s: f64,
    /// `earliest`, `ago 10m` or `records 100000`.
    pub to: String,
    #[serde(default)]
    pub rate_cap_per_s: Option<f64>,
    /// Records between the positions sought back to and the positions before, over all members.
    pub records_back: u64,
    /// Records re-read during the replay (read before by the group).
    pub rereads: u64,
    /// Read throughput of the group from the replay until it caught up.
    pub read_per_s_mean: f64,
    pub read_per_s_peak: u64,
    /// Seconds until every member had read back up to where it was.
    #[serde(default)]
    pub caught_up_s: Option<f64>,
    /// Seconds until the group's lag was back to the live groups' (or its own before the
    /// replay, if it is the only group), within 50% and 10 records, for 2 seconds.
    #[serde(default)]
    pub lag_recovered_s: Option<f64>,
    /// Producer acknowledgement p99 (from intended) before the replay (10 s) and during it.
    #[serde(default)]
    pub produce_p99_before_us: Option<u64>,
    #[serde(default)]
    pub produce_p99_during_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// A sink slowdown or stall.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct SlowdownReport {
    pub at_s: f64,
    pub for_s: f64,
    /// `x5` or `stall`.
    pub kind: String,
    pub lag_at_start: u64,
    pub lag_at_end: u64,
    /// `lag_at_end - lag_at_start` (negative: it kept up).
    pub lag_growth: i64,
    pub peak_lag: u64,
    /// Seconds from the end of the slowdown until the lag was back within 50% (and 10 records)
    /// of its level before, for 2 seconds.
    #[serde(default)]
    pub drain_s: Option<f64>,
}

/// A group restart.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct RestartReport {
    pub at_s: f64,
    pub down_s: f64,
    /// From the restart until the last member had its partitions again.
    #[serde(default)]
    pub rebalance_s: Option<f64>,
    /// End-to-end p99 over the 10 seconds before, and the worst second in the 10 after.
    #[serde(default)]
    pub e2e_p99_before_us: Option<u64>,
    #[serde(default)]
    pub e2e_p99_after_us: Option<u64>,
    /// Records the group read twice because of the restart (uncommitted at close).
    pub rereads: u64,
}

fn mean(v: impl Iterator<Item = f64>) -> Option<f64> {
    let (s, n) = v.fold((0.0, 0u32), |(s, n), x| (s + x, n + 1));
    (n > 0).then(|| s / f64::from(n))
}

fn window(tl: &[TimelinePoint], from_s: f64, to_s: f64) -> impl Iterator<Item = &TimelinePoint> {
    tl.iter().filter(move |p| f64::from(p.t) + 1.0 > from_s && f64::from(p.t) < to_s)
}

fn before(tl: &[TimelinePoint], at_s: f64, secs: f64) -> impl Iterator<Item = &TimelinePoint> {
    tl.iter().filter(move |p| f64::from(p.t) + 1.0 <= at_s && f64::from(p.t) + secs >= at_s)
}

fn lag(p: &TimelinePoint, group: &str) -> u64 {
    p.consumers.get(group).map_or(0, |g| g.lag)
}

/// The first second at or after `from_s` that starts 2 consecutive seconds where `ok` holds.
fn settles(tl: &[TimelinePoint], from_s: f64, ok: &dyn Fn(&TimelinePoint) -> bool) -> Option<f64> {
    let after: Vec<&TimelinePoint> = tl.iter().filter(|p| f64::from(p.t) + 1.0 > from_s).collect();
    (0..after.len())
        .find(|&i| after.len() >= i + 2 && ok(after[i]) && ok(after[i + 1]))
        .map(|i| (f64::from(after[i].t) - from_s).max(0.0))
}

pub struct WaveInput<'a> {
    pub name: &'a str,
    pub occurrence: u32,
    pub start_s: f64,
    pub offline_s: f64,
    pub jitter_s: f64,
    pub streams: u64,
    pub buffered: u64,
    pub dropped: u64,
    pub unsent: u64,
    pub flush_end_s: Option<f64>,
}

pub fn wave(tl: &[TimelinePoint], w: &WaveInput<'_>, groups: &[String]) -> WaveReport {
    let offline_until = w.start_s + w.offline_s;
    let reconnect_until = offline_until + w.jitter_s;
    let flush_end = w.flush_end_s.unwrap_or(reconnect_until).max(reconnect_until);
    let flush: Vec<&TimelinePoint> = window(tl, offline_until, flush_end + 1.0).collect();
    let baseline = mean(before(tl, w.start_s, 10.0).map(|p| p.produced as f64)).unwrap_or(0.0);
    let peak = flush.iter().map(|p| p.produced).max().unwrap_or(0);
    WaveReport {
        name: w.name.to_string(),
        occurrence: w.occurrence,
        start_s: w.start_s,
        offline_until_s: offline_until,
        reconnect_until_s: reconnect_until,
        flush_end_s: w.flush_end_s,
        streams: w.streams,
        buffered: w.buffered,
        dropped: w.dropped,
        unsent: w.unsent,
        baseline_sent_per_s: baseline,
        peak_sent_per_s: peak,
        peak_ratio: (baseline > 0.0).then(|| (peak as f64 / baseline * 100.0).round() / 100.0),
        peak_event_age_p99_us: groups
            .iter()
            .map(|g| {
                let peak = flush.iter().filter_map(|p| p.consumers.get(g)).map(|gp| gp.age_p99_us).max().unwrap_or(0);
                (g.clone(), peak)
            })
            .collect(),
    }
}

pub struct ReplayInput {
    pub at_s: f64,
    pub to: String,
    pub rate_cap: Option<f64>,
    pub records_back: u64,
    /// When the last member caught up (None if one never did).
    pub caught_up_s: Option<f64>,
    pub errors: Vec<String>,
}

pub fn replay(tl: &[TimelinePoint], group: &str, others: &[String], r: &ReplayInput) -> ReplayReport {
    let end = r.caught_up_s.unwrap_or(f64::from(tl.last().map_or(0, |p| p.t + 1)));
    let during: Vec<&TimelinePoint> = window(tl, r.at_s, end.max(r.at_s + 1.0)).collect();
    let reads: Vec<u64> = during.iter().filter_map(|p| p.consumers.get(group)).map(|g| g.consumed).collect();
    let own_before = mean(before(tl, r.at_s, 5.0).map(|p| lag(p, group) as f64)).unwrap_or(0.0);
    let threshold = |p: &TimelinePoint| {
        let live = others.iter().map(|o| lag(p, o)).max().map_or(own_before, |l| l as f64);
        (live * 1.5).max(own_before * 1.5) + 10.0
    };
    // Lag must first rise (the replay took effect) before it can recover.
    let rose = tl
        .iter()
        .find(|p| f64::from(p.t) + 1.0 > r.at_s && lag(p, group) as f64 > threshold(p))
        .map(|p| f64::from(p.t));
    ReplayReport {
        at_s: r.at_s,
        to: r.to.clone(),
        rate_cap_per_s: r.rate_cap,
        records_back: r.records_back,
        rereads: during.iter().filter_map(|p| p.consumers.get(group)).map(|g| g.rereads).sum(),
        read_per_s_mean: mean(reads.iter().map(|v| *v as f64)).unwrap_or(0.0),
        read_per_s_peak: reads.iter().copied().max().unwrap_or(0),
        caught_up_s: r.caught_up_s.map(|c| c - r.at_s),
        lag_recovered_s: match rose {
            None => Some(0.0),
            Some(from) => settles(tl, from, &|p| (lag(p, group) as f64) <= threshold(p)).map(|s| s + from - r.at_s),
        },
        produce_p99_before_us: mean(before(tl, r.at_s, 10.0).filter(|p| p.acked > 0).map(|p| p.produce.p99_us as f64))
            .map(|v| v.round() as u64),
        produce_p99_during_us: during.iter().filter(|p| p.acked > 0).map(|p| p.produce.p99_us).max(),
        errors: r.errors.clone(),
    }
}

pub fn slowdown(tl: &[TimelinePoint], group: &str, at_s: f64, for_s: f64, kind: String) -> SlowdownReport {
    let end = at_s + for_s;
    // The lag of second `s` is sampled at its end: the sample closest to time `t` is second t - 1.
    let at_point = |t: f64| {
        let s = (t.floor() as u32).saturating_sub(1);
        tl.iter().find(|p| p.t >= s).map_or(0, |p| lag(p, group))
    };
    let (start_lag, end_lag) = (at_point(at_s), at_point(end));
    let base = mean(before(tl, at_s, 5.0).map(|p| lag(p, group) as f64)).unwrap_or(start_lag as f64);
    let drain = settles(tl, end, &|p| (lag(p, group) as f64) <= base * 1.5 + 10.0);
    let horizon = drain.map_or(f64::INFINITY, |d| end + d + 1.0);
    SlowdownReport {
        at_s,
        for_s,
        kind,
        lag_at_start: start_lag,
        lag_at_end: end_lag,
        lag_growth: end_lag as i64 - start_lag as i64,
        peak_lag: window(tl, at_s, horizon).map(|p| lag(p, group)).max().unwrap_or(0),
        drain_s: drain,
    }
}

pub fn restart(tl: &[TimelinePoint], group: &str, at_s: f64, down_s: f64, events: &[RebalanceEvent]) -> RestartReport {
    let at_us = (at_s * 1e6) as u64;
    let rebalance = events.iter().filter(|e| e.kind == RebalanceKind::Assign && e.t_us >= at_us).map(|e| e.t_us).max();
    let rejoin = rebalance.map_or(at_s + down_s, |t| t as f64 / 1e6);
    let e2e = |p: &TimelinePoint| p.consumers.get(group).filter(|g| g.e2e.count > 0).map(|g| g.e2e.p99_us);
    RestartReport {
        at_s,
        down_s,
        rebalance_s: rebalance.map(|t| (t - at_us) as f64 / 1e6),
        e2e_p99_before_us: mean(before(tl, at_s, 10.0).filter_map(e2e).map(|v| v as f64)).map(|v| v.round() as u64),
        e2e_p99_after_us: window(tl, at_s, rejoin + 10.0).filter_map(e2e).max(),
        rereads: window(tl, at_s, rejoin + 10.0).filter_map(|p| p.consumers.get(group)).map(|g| g.rereads).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::schema::GroupPoint;

    fn tl(lags: &[u64]) -> Vec<TimelinePoint> {
        lags.iter()
            .enumerate()
            .map(|(t, l)| {
                let mut p = TimelinePoint { t: t as u32, produced: 100, acked: 100, ..TimelinePoint::default() };
                p.consumers.insert("g".into(), GroupPoint { lag: *l, consumed: 100, ..GroupPoint::default() });
                p
            })
            .collect()
    }

    #[test]
    fn a_slowdown_grows_lag_then_drains() {
        let t = tl(&[5, 5, 5, 5, 5, 50, 150, 300, 420, 300, 150, 40, 8, 6, 5, 5]);
        let r = slowdown(&t, "g", 5.0, 4.0, "x5".into());
        assert_eq!((r.lag_at_start, r.lag_at_end, r.peak_lag), (5, 420, 420));
        assert_eq!(r.lag_growth, 415);
        // Back within 1.5 * 5 + 10 = 17.5 at second 12 and 13: 3 s after the end at 9 s.
        assert_eq!(r.drain_s, Some(3.0));
    }

    #[test]
    fn a_slowdown_that_never_drains_says_so() {
        let t = tl(&[5, 5, 5, 5, 5, 50, 150, 300, 420, 500, 600]);
        assert_eq!(slowdown(&t, "g", 5.0, 4.0, "stall".into()).drain_s, None);
    }

    #[test]
    fn a_replay_recovers_when_lag_is_back() {
        let mut t = tl(&[2, 2, 2, 2, 2, 2000, 1500, 900, 300, 5, 3, 2, 2]);
        for p in t.iter_mut().skip(5).take(4) {
            p.consumers.get_mut("g").unwrap().rereads = 500;
        }
        let r = replay(
            &t,
            "g",
            &[],
            &ReplayInput {
                at_s: 5.0,
                to: "earliest".into(),
                rate_cap: None,
                records_back: 2000,
                caught_up_s: Some(9.0),
                errors: vec![],
            },
        );
        assert_eq!(r.rereads, 2000);
        assert_eq!(r.caught_up_s, Some(4.0));
        assert_eq!(r.lag_recovered_s, Some(4.0));
    }

    #[test]
    fn a_wave_report_finds_the_flush_peak() {
        let mut t = tl(&[0; 30]);
        t[20].produced = 900;
        t[21].produced = 400;
        let w = wave(
            &t,
            &WaveInput {
                name: "w",
                occurrence: 0,
                start_s: 10.0,
                offline_s: 10.0,
                jitter_s: 1.0,
                streams: 50,
                buffered: 500,
                dropped: 3,
                unsent: 0,
                flush_end_s: Some(21.5),
            },
            &["g".to_string()],
        );
        assert_eq!(w.peak_sent_per_s, 900);
        assert_eq!(w.baseline_sent_per_s, 100.0);
        assert_eq!(w.peak_ratio, Some(9.0));
        assert_eq!(w.reconnect_until_s, 21.0);
    }

    #[test]
    fn a_restart_measures_the_rebalance() {
        let t = tl(&[0; 20]);
        let events = vec![
            RebalanceEvent { t_us: 0, member: 0, kind: RebalanceKind::Assign, partitions: 3 },
            RebalanceEvent { t_us: 10_000_000, member: 0, kind: RebalanceKind::Revoke, partitions: 3 },
            RebalanceEvent { t_us: 13_500_000, member: 0, kind: RebalanceKind::Assign, partitions: 3 },
        ];
        let r = restart(&t, "g", 10.0, 2.0, &events);
        assert_eq!(r.rebalance_s, Some(3.5));
    }
}
