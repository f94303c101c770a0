//! The plan: a scenario turned into a seeded, deterministic schedule of device events.
//!
//! Planning is pure: no clock, no I/O, no target. [`Plan::from_scenario`] fixes who sends what;
//! [`Schedule`] yields every event in order of its *intended send* time. The producer driver
//! sends each event when its time comes and measures latency from that intended time, so a
//! stalled target cannot hide behind a stalled sender (no coordinated omission).
//!
//! What shapes the schedule:
//! - each class's rate, optionally varying over time ([`warp`]: stages, ramps, a diurnal curve);
//! - fixed (evenly phased) or Poisson arrivals;
//! - firmware versions and rollouts, which choose each event's payload ([`fleet`]);
//! - skewed activity ([`skew`]): a Zipf law or a hot cohort over a class's devices, as per-device
//!   rate multipliers with mean 1 (the class's total rate is unchanged);
//! - reconnect waves ([`fleet::WavePlan`]): a device offline keeps creating events into a bounded
//!   buffer; on reconnect it sends them in creation order at its flush rate. Such an event's
//!   intended send time is later than its creation time; both travel in the record. A class with
//!   `trigger: reconnect` sends one event per device at each of its reconnections (the
//!   connection surge), its `k`-th event at the device's `k`-th reconnection.
//!
//! Memory is one heap entry (24 bytes) per (device, class) stream, plus a small drain state for
//! the streams of devices that are flushing a wave's backlog.

pub mod calendar;
pub mod fleet;
pub mod heap;
pub mod intmap;
pub mod rng;
pub mod skew;
pub mod warp;

use crate::config::dist::Dist;
use crate::config::ids::IdPattern;
use crate::config::scenario::{Arrival, Overflow, Scenario, Skew, Trigger, ValueFormat};
use crate::config::units::ByteSize;
use calendar::Calendar;
use fleet::{Cohorts, FirmwarePlan, WavePlan};
use intmap::IntMap;
use rng::{Permutation, SplitMix, mix, unit};
use warp::Warp;

/// Salts that keep independent random choices independent.
const SALT_SHARE: u64 = 0x5348;
const SALT_PHASE: u64 = 0x5048;
const SALT_GAP: u64 = 0x4741;
const SALT_SIZE: u64 = 0x5349;
const SALT_CAMPAIGN: u64 = 0x4341;

/// One part of a campaign's fleet (`run --shard I/N`): every device belongs to exactly one
/// shard, chosen from the seed, so cohorts, waves, firmware rollouts and classes stay spread
/// evenly over the shards. The default is the whole fleet (`0/1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

impl Shard {
    /// `I/N` with `I < N` and `1 <= N <= 4096`.
    pub fn parse(s: &str) -> Result<Shard, String> {
        let (i, n) = s.split_once('/').ok_or_else(|| format!("`{s}` is not a shard: expected I/N, e.g. 0/3"))?;
        let index: u32 = i.trim().parse().map_err(|_| format!("`{s}`: shard index `{i}` is not a number"))?;
        let count: u32 = n.trim().parse().map_err(|_| format!("`{s}`: shard count `{n}` is not a number"))?;
        if !(1..=4096).contains(&count) {
            return Err(format!("`{s}`: the shard count must be 1 to 4096"));
        }
        if index >= count {
            return Err(format!("`{s}`: the shard index must be below the count (0 to {})", count - 1));
        }
        Ok(Shard { index, count })
    }

    pub fn is_whole(self) -> bool {
        self.count <= 1
    }

    /// The shard `device` belongs to, given the plan's seed.
    pub fn of(seed: u64, count: u32, device: u64) -> u32 {
        if count <= 1 { 0 } else { (mix(seed, &[SALT_CAMPAIGN, device]) % u64::from(count)) as u32 }
    }

    /// Does this shard own `device`?
    pub fn owns(self, seed: u64, device: u64) -> bool {
        self.is_whole() || Shard::of(seed, self.count, device) == self.index
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// A scenario, planned.
#[derive(Clone, Debug)]
pub struct Plan {
    pub seed: u64,
    pub duration_us: u64,
    pub warmup_us: u64,
    pub devices: u64,
    pub ids: IdPattern,
    pub topics: Vec<String>,
    pub classes: Vec<ClassPlan>,
    pub cohorts: Cohorts,
    pub firmware: Option<FirmwarePlan>,
    pub waves: Vec<WavePlan>,
    /// The part of the fleet this process sends for (the whole fleet unless sharded).
    pub shard: Shard,
}

/// One payload class, planned.
#[derive(Clone, Debug)]
pub struct ClassPlan {
    pub name: String,
    /// Index into [`Plan::topics`].
    pub topic: usize,
    /// Exact number of devices sending this class.
    pub participants: u64,
    /// Mean gap between two sends of one device at factor 1, in microseconds.
    pub period_us: f64,
    pub arrival: Arrival,
    /// Records carry the device id as their key (and per-device order is audited).
    pub keyed: bool,
    /// The payload per firmware version (index 0 also serves fleets without firmware).
    pub payloads: Vec<Payload>,
    /// The rate's time warp, if the class has a shape.
    warp: Option<Warp>,
    /// Mean rate factor over the run (1 without a shape).
    pub mean_factor: f64,
    /// `Reconnect`: one event per device at each reconnection, nothing else (`period_us` is
    /// infinite).
    pub trigger: Trigger,
    /// A `Reconnect` class's planned events per second, averaged over the run.
    reconnect_rate: f64,
    /// Per-device rate multipliers, if the class is skewed (mean 1 over its devices).
    activity: Option<skew::Activity>,
    /// The skew the multipliers come from.
    pub skew: Option<Skew>,
    members: Permutation,
}

/// What a class sends under one firmware version.
#[derive(Clone, Debug)]
pub struct Payload {
    pub size: Dist<ByteSize>,
    pub format: ValueFormat,
    pub headers: Vec<(String, String)>,
}

impl ClassPlan {
    /// Planned events per second across the class, averaged over the run.
    pub fn planned_rate(&self) -> f64 {
        if self.trigger == Trigger::Reconnect {
            self.reconnect_rate
        } else if self.period_us > 0.0 {
            self.participants as f64 * 1e6 / self.period_us * self.mean_factor
        } else {
            0.0
        }
    }

    /// The device's rank among this class's senders, if it is one.
    pub fn rank(&self, device: u64) -> Option<u64> {
        let r = self.members.apply(device);
        (r < self.participants).then_some(r)
    }

    pub fn payload(&self, firmware: u16) -> &Payload {
        self.payloads.get(usize::from(firmware)).unwrap_or(&self.payloads[0])
    }

    /// Mean gap between two sends of `device` at factor 1, in nanoseconds: the class's period
    /// divided by the device's activity multiplier.
    #[inline]
    fn device_period_ns(&self, device: u64) -> f64 {
        let m = self.activity.as_ref().map_or(1.0, |a| a.of(device));
        if m > 0.0 { self.period_us * 1e3 / m } else { self.period_us * 1e3 }
    }
}

/// One device event: a record to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Event {
    /// When the record should be sent, microseconds from the start of the run.
    pub intended_us: u64,
    /// When the device created the event (earlier than `intended_us` if it was buffered).
    pub created_us: u64,
    pub device: u32,
    pub class: u16,
    /// Per-device sequence number within the class, from 0 (dropped events use theirs too).
    pub seq: u64,
    /// Value size in bytes.
    pub size: u32,
    /// Firmware version index (0 without firmware).
    pub firmware: u16,
}

impl Event {
    /// A digest of everything the event is: summed over a schedule (order does not matter), it
    /// fingerprints a plan, and the sums of a campaign's shards add up to the whole plan's.
    pub fn digest(&self) -> u64 {
        mix(
            0x504c_414e,
            &[
                self.intended_us,
                self.created_us,
                u64::from(self.device),
                u64::from(self.class),
                self.seq,
                u64::from(self.size),
                u64::from(self.firmware),
            ],
        )
    }
}

impl Plan {
    /// Plan a validated scenario.
    pub fn from_scenario(s: &Scenario) -> Plan {
        let topics: Vec<String> = s.topics.iter().map(|t| t.name.clone()).collect();
        let devices = s.fleet.devices;
        let duration_ns = s.duration.as_micros() * 1000;
        let firmware = s.fleet.firmware.as_ref().map(|f| FirmwarePlan::new(f, devices, s.seed));
        let versions: Vec<String> = firmware.as_ref().map(|f| f.names.clone()).unwrap_or_default();
        let cohorts = Cohorts::new(&s.fleet.cohorts, devices, s.seed);
        let mut first_instance = 0;
        let waves: Vec<WavePlan> = s
            .waves
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let plan = WavePlan::new(w, i, &cohorts.names, first_instance);
                first_instance += plan.times as usize;
                plan
            })
            .collect();
        // Reconnections per device over the run, on average (waves whose devices are back before
        // the end of the load).
        let duration_s = s.duration.as_secs_f64();
        let reconnections: f64 = waves
            .iter()
            .map(|w| {
                let pool = w.cohort.map_or(devices, |c| cohorts.size(c)) as f64 / devices.max(1) as f64;
                let back = (0..w.times).filter(|i| w.start_ns(*i) + w.offline_ns < duration_ns).count() as f64;
                pool * w.share * back
            })
            .sum();
        let classes = s
            .fleet
            .classes
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let participants = (c.share.0 * devices as f64).round() as u64;
                let per_device = match (c.rate, c.total_rate) {
                    (Some(r), _) => r.as_per_sec(),
                    (None, Some(total)) if participants > 0 => total.as_per_sec() / participants as f64,
                    _ => 0.0,
                };
                let base = Payload {
                    size: c.size.clone(),
                    format: c.format,
                    headers: c.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                };
                let mut payloads = vec![base; versions.len().max(1)];
                for (vi, name) in versions.iter().enumerate() {
                    if let Some(o) = c.versions.get(name) {
                        let p = &mut payloads[vi];
                        if let Some(size) = &o.size {
                            p.size = size.clone();
                        }
                        if let Some(f) = o.format {
                            p.format = f;
                        }
                        for (k, v) in &o.headers {
                            match p.headers.iter_mut().find(|(hk, _)| hk == k) {
                                Some(h) => h.1 = v.clone(),
                                None => p.headers.push((k.clone(), v.clone())),
                            }
                        }
                    }
                }
                let warp = c.shape.as_ref().map(|shape| Warp::new(shape, duration_ns));
                let members = Permutation::new(devices, mix(s.seed, &[SALT_SHARE, i as u64]));
                let activity = c.skew.as_ref().map(|skew| {
                    skew::Activity::new(skew, devices, participants, |d| {
                        let r = members.apply(d);
                        (r < participants).then_some(r)
                    })
                });
                ClassPlan {
                    name: c.name.clone(),
                    topic: topics.iter().position(|t| *t == c.topic).unwrap_or(0),
                    participants,
                    period_us: if per_device > 0.0 { 1e6 / per_device } else { f64::INFINITY },
                    arrival: c.arrival,
                    keyed: c.key.keyed(),
                    payloads,
                    mean_factor: warp.as_ref().map_or(1.0, |w| w.mean_factor(duration_ns)),
                    warp,
                    trigger: c.trigger,
                    reconnect_rate: if duration_s > 0.0 {
                        participants as f64 * reconnections / duration_s
                    } else {
                        0.0
                    },
                    activity,
                    skew: c.skew.clone(),
                    members,
                }
            })
            .collect();
        Plan {
            seed: s.seed,
            duration_us: s.duration.as_micros(),
            warmup_us: s.warmup.as_micros().min(s.duration.as_micros()),
            devices,
            ids: IdPattern::parse(&s.fleet.id_pattern).unwrap_or_default(),
            topics,
            classes,
            cohorts,
            firmware,
            waves,
            shard: Shard::default(),
        }
    }

    /// The same plan, restricted to one shard of the fleet.
    pub fn sharded(mut self, shard: Shard) -> Plan {
        self.shard = shard;
        self
    }

    /// Does this plan's shard send for `device`?
    pub fn owns(&self, device: u64) -> bool {
        self.shard.owns(self.seed, device)
    }

    /// Planned events per second across all classes, averaged over the run.
    pub fn planned_rate(&self) -> f64 {
        self.classes.iter().map(ClassPlan::planned_rate).sum()
    }

    /// Occurrences of all waves, in wave order: (wave index, occurrence).
    pub fn wave_instances(&self) -> Vec<(usize, u32)> {
        self.waves.iter().enumerate().flat_map(|(w, p)| (0..p.times).map(move |i| (w, i))).collect()
    }

    /// Firmware version names (empty without firmware).
    pub fn firmware_names(&self) -> &[String] {
        self.firmware.as_ref().map_or(&[], |f| &f.names)
    }

    pub fn firmware_at(&self, device: u64, t_ns: u64) -> u16 {
        self.firmware.as_ref().map_or(0, |f| f.at(device, t_ns))
    }

    /// The schedule of the plan's shard's devices assigned to producer instance `shard` of
    /// `shards` (device number modulo instances).
    pub fn schedule(&self, shard: u32, shards: u32) -> Schedule<'_> {
        Schedule::new(self, shard, shards.max(1))
    }

    /// Operational time of a stream's first event (ns).
    fn first_op_ns(&self, class: usize, device: u64, rank: u64) -> f64 {
        let c = &self.classes[class];
        match c.arrival {
            Arrival::Fixed => {
                // Phases spread evenly over one period, in seeded order, jittered within their slot.
                let u = unit(mix(self.seed, &[SALT_PHASE, class as u64, device]));
                (rank as f64 + u) / c.participants.max(1) as f64 * c.device_period_ns(device)
            }
            Arrival::Poisson => self.gap_ns(class, device, 0),
        }
    }

    /// Creation time (ns) of a stream's first event.
    fn first_created(&self, class: usize, device: u64, rank: u64) -> u64 {
        if self.classes[class].trigger == Trigger::Reconnect {
            return self.reconnection(device, 0);
        }
        let u = self.first_op_ns(class, device, rank);
        self.to_real(class, u)
    }

    fn to_real(&self, class: usize, u: f64) -> u64 {
        let t = match &self.classes[class].warp {
            None => u,
            Some(w) => w.inverse(u),
        };
        if t.is_finite() { t.round() as u64 } else { u64::MAX }
    }

    /// Gap in operational time between event `k - 1` and event `k` of a stream, in nanoseconds.
    /// Times are kept in nanoseconds so that summing fixed gaps drifts by well under a
    /// microsecond per million events.
    fn gap_ns(&self, class: usize, device: u64, k: u64) -> f64 {
        let c = &self.classes[class];
        match c.arrival {
            Arrival::Fixed => c.device_period_ns(device),
            Arrival::Poisson => {
                let u = unit(mix(self.seed, &[SALT_GAP, class as u64, device, k]));
                -(1.0 - u).ln() * c.device_period_ns(device)
            }
        }
    }

    /// Creation time (ns) of event `k`, given event `k - 1` was created at `prev_ns`.
    fn next_created(&self, class: usize, device: u64, k: u64, prev_ns: u64) -> u64 {
        if self.classes[class].trigger == Trigger::Reconnect {
            return self.reconnection(device, k);
        }
        let gap = self.gap_ns(class, device, k);
        match &self.classes[class].warp {
            None => prev_ns.saturating_add(gap.round() as u64),
            Some(w) => {
                let t = w.inverse(w.forward(prev_ns as f64) + gap);
                if t.is_finite() { (t.round() as u64).max(prev_ns) } else { u64::MAX }
            }
        }
    }

    /// Creation time (µs) of event `seq` of a device's class stream, recomputed from the seed:
    /// O(seq). `None` if the device does not send the class.
    pub fn created_us(&self, class: usize, device: u64, seq: u64) -> Option<u64> {
        let c = self.classes.get(class)?;
        let rank = c.rank(device)?;
        let first = self.first_created(class, device, rank);
        let t = if c.warp.is_none() && c.arrival == Arrival::Fixed && c.trigger == Trigger::Rate {
            first.saturating_add(seq.saturating_mul(self.gap_ns(class, device, 1).round() as u64))
        } else {
            (1..=seq.min(50_000_000)).fold(first, |t, k| self.next_created(class, device, k, t))
        };
        Some(t / 1000)
    }

    fn size_of(&self, class: usize, device: u64, k: u64, firmware: u16) -> u32 {
        let size = &self.classes[class].payload(firmware).size;
        if let crate::config::dist::Dist::Fixed(b) = size {
            // No draw to make (this runs once per event sent).
            return u32::try_from(b.0).unwrap_or(u32::MAX);
        }
        let mut rng = SplitMix::new(mix(self.seed, &[SALT_SIZE, class as u64, device, k]));
        let bytes = size.sample(&mut rng).0;
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }

    /// The first wave occurrence whose offline window holds `t_ns` for this device:
    /// (occurrence index among all, reconnect time).
    fn offline_window(&self, device: u64, t_ns: u64) -> Option<(usize, u64)> {
        self.waves.iter().find_map(|w| {
            if !w.includes(device, &self.cohorts, self.seed) {
                return None;
            }
            w.window(device, t_ns, self.seed).map(|(i, reconnect)| (w.first_instance + i as usize, reconnect))
        })
    }

    /// When the device reconnects for the `k`-th time (from 0) over all waves' occurrences, in
    /// time order (ns); `u64::MAX` when it reconnects fewer times. O(wave occurrences).
    fn reconnection(&self, device: u64, k: u64) -> u64 {
        let mut times: Vec<u64> = self
            .waves
            .iter()
            .filter(|w| w.includes(device, &self.cohorts, self.seed))
            .flat_map(|w| (0..w.times).map(move |i| w.reconnect_ns(i, device, self.seed)))
            .collect();
        times.sort_unstable();
        usize::try_from(k).ok().and_then(|k| times.get(k).copied()).unwrap_or(u64::MAX)
    }

    fn wave_of_instance(&self, instance: usize) -> Option<&WavePlan> {
        self.waves.iter().rev().find(|w| w.first_instance <= instance)
    }
}

/// An event's index within its stream, as the schedule keeps it. `validate` bounds a run's
/// planned events at 1e9, below `u32::MAX`, so it fits; saturating all the same, never wrapping.
fn stream_index(k: u64) -> u32 {
    u32::try_from(k).unwrap_or(u32::MAX)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    /// Intended send time in nanoseconds from the start of the run.
    t: u64,
    device: u32,
    class: u16,
    k: u32,
}

impl heap::HeapKey for Entry {
    /// Time first, then the stream (unique in the heap), as the derived `Ord`.
    #[inline]
    fn key(&self) -> u128 {
        (u128::from(self.t) << 64) | (u128::from(self.device) << 16) | u128::from(self.class)
    }
}

/// A stream flushing a wave's backlog.
#[derive(Clone, Debug)]
struct Drain {
    /// Creation time of the stream's pending event.
    created: u64,
    /// The earliest send time of the next event (the flush rate's clock).
    next_send: u64,
    reconnect: u64,
    /// Events `drop_lo..drop_hi` were dropped by the full buffer.
    drop_lo: u64,
    drop_hi: u64,
    /// First event created after the offline window.
    window_hi: u64,
    kept_remaining: u64,
    gap: u64,
    instance: usize,
    last_send: u64,
}

/// What happened in one wave occurrence, for the devices of one schedule.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WaveCounts {
    /// (device, class) streams that went offline.
    pub streams: u64,
    /// Events kept in the buffers, sent after reconnecting.
    pub buffered: u64,
    /// Events dropped because a buffer was full.
    pub dropped: u64,
    /// Buffered events still unsent when the load ended.
    pub unsent: u64,
    /// When the last stream had flushed its backlog and caught up (µs).
    pub flush_end_us: u64,
}

impl WaveCounts {
    pub fn merge(&mut self, o: &WaveCounts) {
        self.streams += o.streams;
        self.buffered += o.buffered;
        self.dropped += o.dropped;
        self.unsent += o.unsent;
        self.flush_end_us = self.flush_end_us.max(o.flush_end_us);
    }
}

/// The events of one shard of the fleet, in intended-send-time order (ties broken by device,
/// class).
pub struct Schedule<'p> {
    plan: &'p Plan,
    heap: Calendar<Entry>,
    end_ns: u64,
    drains: IntMap<u64, Drain>,
    /// Per wave occurrence (see [`Plan::wave_instances`]).
    pub waves: Vec<WaveCounts>,
}

fn stream_key(device: u32, class: u16) -> u64 {
    (u64::from(class) << 32) | u64::from(device)
}

impl<'p> Schedule<'p> {
    fn new(plan: &'p Plan, shard: u32, shards: u32) -> Self {
        let end_ns = plan.duration_us.saturating_mul(1000);
        let mut s = Schedule {
            plan,
            heap: Calendar::from_vec(Vec::new()),
            end_ns,
            drains: IntMap::default(),
            waves: vec![WaveCounts::default(); plan.wave_instances().len()],
        };
        let mut entries = Vec::new();
        for (ci, class) in plan.classes.iter().enumerate() {
            if class.participants == 0 || (!class.period_us.is_finite() && class.trigger == Trigger::Rate) {
                continue;
            }
            let mut device = u64::from(shard);
            while device < plan.devices {
                if !plan.owns(device) {
                    device += u64::from(shards);
                    continue;
                }
                if let Some(rank) = class.rank(device) {
                    let c = plan.first_created(ci, device, rank);
                    if let Some(e) = s.advance(device as u32, ci as u16, 0, c) {
                        entries.push(e);
                    }
                }
                device += u64::from(shards);
            }
        }
        s.heap = Calendar::from_vec(entries);
        s
    }

    /// Intended time of the next event in microseconds, if any.
    pub fn peek_time(&self) -> Option<u64> {
        self.heap.peek().map(|e| e.t / 1000)
    }

    /// Number of (device, class) streams still scheduled.
    pub fn live_streams(&self) -> usize {
        self.heap.len()
    }

    /// The entry for the stream's next event to send, starting with event `k` created at `c`:
    /// skips events dropped by a full buffer, enters and leaves wave drains. `None` when the
    /// stream sends nothing more before the end of the load.
    fn advance(&mut self, device: u32, class: u16, mut k: u64, mut c: u64) -> Option<Entry> {
        let plan = self.plan;
        let key = stream_key(device, class);
        let (d64, ci) = (u64::from(device), usize::from(class));
        loop {
            if c >= self.end_ns || k >= u64::from(u32::MAX) {
                if let Some(d) = self.drains.remove(&key) {
                    self.waves[d.instance].unsent += d.kept_remaining;
                }
                return None;
            }
            if let Some(d) = if self.drains.is_empty() { None } else { self.drains.get_mut(&key) } {
                if (d.drop_lo..d.drop_hi).contains(&k) {
                    k += 1;
                    c = plan.next_created(ci, d64, k, c);
                    continue;
                }
                let send = c.max(d.next_send);
                if send == c && c >= d.reconnect {
                    // Caught up: the backlog is flushed, the device is back to normal.
                    let w = &mut self.waves[d.instance];
                    w.flush_end_us = w.flush_end_us.max(d.last_send / 1000);
                    self.drains.remove(&key);
                } else if send >= self.end_ns {
                    let left = d.kept_remaining;
                    self.waves[d.instance].unsent += left;
                    self.drains.remove(&key);
                    return None;
                } else {
                    d.next_send = send.saturating_add(d.gap);
                    d.created = c;
                    d.last_send = send;
                    if k < d.window_hi {
                        d.kept_remaining = d.kept_remaining.saturating_sub(1);
                    }
                    return Some(Entry { t: send, device, class, k: stream_index(k) });
                }
            }
            if let Some((instance, reconnect)) = plan.offline_window(d64, c) {
                // Offline: count what the device creates until it reconnects.
                let until = reconnect.min(self.end_ns);
                let (mut n, mut j, mut cj) = (0u64, k, c);
                while cj < until {
                    n += 1;
                    j += 1;
                    cj = plan.next_created(ci, d64, j, cj);
                }
                let wave = plan.wave_of_instance(instance)?;
                let kept = n.min(wave.capacity);
                let dropped = n - kept;
                let (drop_lo, drop_hi) = match wave.overflow {
                    Overflow::DropNewest => (k + kept, k + n),
                    Overflow::DropOldest => (k, k + dropped),
                };
                let counts = &mut self.waves[instance];
                counts.streams += 1;
                counts.buffered += kept;
                counts.dropped += dropped;
                self.drains.insert(
                    key,
                    Drain {
                        created: c,
                        next_send: reconnect,
                        reconnect,
                        drop_lo,
                        drop_hi,
                        window_hi: k + n,
                        kept_remaining: kept,
                        gap: wave.flush_gap_ns,
                        instance,
                        last_send: reconnect,
                    },
                );
                continue;
            }
            return Some(Entry { t: c, device, class, k: stream_index(k) });
        }
    }
}

impl Iterator for Schedule<'_> {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        let plan = self.plan;
        let e = *self.heap.peek()?;
        let class = usize::from(e.class);
        let device = u64::from(e.device);
        let key = stream_key(e.device, e.class);
        // No lookup while no stream is draining a wave's backlog (the common case).
        let created = if self.drains.is_empty() { e.t } else { self.drains.get(&key).map_or(e.t, |d| d.created) };
        let firmware = plan.firmware_at(device, created);
        let event = Event {
            intended_us: e.t / 1000,
            created_us: created / 1000,
            device: e.device,
            class: e.class,
            seq: u64::from(e.k),
            size: plan.size_of(class, device, u64::from(e.k), firmware),
            firmware,
        };
        let k = u64::from(e.k) + 1;
        let next_created = plan.next_created(class, device, k, created);
        match self.advance(e.device, e.class, k, next_created) {
            Some(next) => {
                self.heap.replace_top(next);
            }
            None => {
                self.heap.pop();
            }
        }
        Some(event)
    }
}

#[cfg(test)]
pub(crate) mod tests;
