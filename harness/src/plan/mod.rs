//! The plan: a scenario turned into a seeded, deterministic schedule of device events.
//!
//! Planning is pure: no clock, no I/O, no target. [`Plan::from_scenario`] fixes who sends what;
//! [`Schedule`] yields every event in order of its *intended* send time. The producer driver sends
//! each event when its time comes and measures latency from that intended time, so a stalled
//! target cannot hide behind a stalled sender (no coordinated omission).
//!
//! Memory is one heap entry (24 bytes) per (device, class) stream; nothing else is kept per device.

pub mod rng;

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::config::dist::Dist;
use crate::config::scenario::{Arrival, Scenario, ValueFormat};
use crate::config::units::ByteSize;
use rng::{Permutation, SplitMix, mix, unit};

/// Salts that keep independent random choices independent.
const SALT_SHARE: u64 = 0x5348;
const SALT_PHASE: u64 = 0x5048;
const SALT_GAP: u64 = 0x4741;
const SALT_SIZE: u64 = 0x5349;

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
}

/// One payload class, planned.
#[derive(Clone, Debug)]
pub struct ClassPlan {
    pub name: String,
    /// Index into [`Plan::topics`].
    pub topic: usize,
    /// Exact number of devices sending this class.
    pub participants: u64,
    /// Mean gap between two sends of one device, in microseconds.
    pub period_us: f64,
    pub arrival: Arrival,
    pub size: Dist<ByteSize>,
    pub format: ValueFormat,
    pub headers: Vec<(String, String)>,
    members: Permutation,
}

impl ClassPlan {
    /// Planned events per second across the class.
    pub fn planned_rate(&self) -> f64 {
        if self.period_us > 0.0 { self.participants as f64 * 1e6 / self.period_us } else { 0.0 }
    }

    /// The device's rank among this class's senders, if it is one.
    pub fn rank(&self, device: u64) -> Option<u64> {
        let r = self.members.apply(device);
        (r < self.participants).then_some(r)
    }
}

/// One device event: a record to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Event {
    /// When the record should be sent, microseconds from the start of the run.
    pub intended_us: u64,
    /// When the device created the event (equal to `intended_us` unless it was buffered).
    pub created_us: u64,
    pub device: u32,
    pub class: u16,
    /// Per-device sequence number within the class, from 0.
    pub seq: u64,
    /// Value size in bytes.
    pub size: u32,
}

impl Plan {
    /// Plan a validated scenario.
    pub fn from_scenario(s: &Scenario) -> Plan {
        let topics: Vec<String> = s.topics.iter().map(|t| t.name.clone()).collect();
        let devices = s.fleet.devices;
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
                ClassPlan {
                    name: c.name.clone(),
                    topic: topics.iter().position(|t| *t == c.topic).unwrap_or(0),
                    participants,
                    period_us: if per_device > 0.0 { 1e6 / per_device } else { f64::INFINITY },
                    arrival: c.arrival,
                    size: c.size.clone(),
                    format: c.format,
                    headers: c.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                    members: Permutation::new(devices, mix(s.seed, &[SALT_SHARE, i as u64])),
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
        }
    }

    /// Planned events per second across all classes.
    pub fn planned_rate(&self) -> f64 {
        self.classes.iter().map(ClassPlan::planned_rate).sum()
    }

    /// The schedule of the devices assigned to `shard` of `shards` (device number modulo shards).
    pub fn schedule(&self, shard: u32, shards: u32) -> Schedule<'_> {
        Schedule::new(self, shard, shards.max(1))
    }

    /// Time of a stream's first event, in nanoseconds from the start of the run.
    fn first_ns(&self, class: usize, device: u64, rank: u64) -> u64 {
        let c = &self.classes[class];
        let ns = match c.arrival {
            Arrival::Fixed => {
                // Phases spread evenly over one period, in seeded order, jittered within their slot.
                let u = unit(mix(self.seed, &[SALT_PHASE, class as u64, device]));
                (rank as f64 + u) / c.participants.max(1) as f64 * c.period_us * 1e3
            }
            Arrival::Poisson => self.gap_ns(class, device, 0),
        };
        ns.round() as u64
    }

    /// Gap between event `k - 1` and event `k` of a stream, in nanoseconds. Times are kept in
    /// nanoseconds so that summing fixed gaps drifts by well under a microsecond per million events.
    fn gap_ns(&self, class: usize, device: u64, k: u64) -> f64 {
        let c = &self.classes[class];
        match c.arrival {
            Arrival::Fixed => c.period_us * 1e3,
            Arrival::Poisson => {
                let u = unit(mix(self.seed, &[SALT_GAP, class as u64, device, k]));
                -(1.0 - u).ln() * c.period_us * 1e3
            }
        }
    }

    /// Intended send time (µs) of event `seq` of a device's class stream, recomputed from the
    /// seed. O(1) for fixed arrivals, O(seq) for poisson; `None` if the device does not send the
    /// class.
    pub fn intended_us(&self, class: usize, device: u64, seq: u64) -> Option<u64> {
        let c = self.classes.get(class)?;
        let rank = c.rank(device)?;
        let first = self.first_ns(class, device, rank);
        let t = match c.arrival {
            Arrival::Fixed => first.saturating_add(seq.saturating_mul(self.gap_ns(class, device, 1).round() as u64)),
            Arrival::Poisson => (1..=seq.min(50_000_000))
                .fold(first, |t, k| t.saturating_add(self.gap_ns(class, device, k).round() as u64)),
        };
        Some(t / 1000)
    }

    fn size_of(&self, class: usize, device: u64, k: u64) -> u32 {
        let mut rng = SplitMix::new(mix(self.seed, &[SALT_SIZE, class as u64, device, k]));
        let bytes = self.classes[class].size.sample(&mut rng).0;
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    /// Intended time in nanoseconds from the start of the run.
    t: u64,
    device: u32,
    class: u16,
    k: u32,
}

/// The events of one shard of the fleet, in intended-time order (ties broken by device, class).
pub struct Schedule<'p> {
    plan: &'p Plan,
    heap: BinaryHeap<Reverse<Entry>>,
    end_ns: u64,
}

impl<'p> Schedule<'p> {
    fn new(plan: &'p Plan, shard: u32, shards: u32) -> Self {
        let end_ns = plan.duration_us.saturating_mul(1000);
        let mut entries = Vec::new();
        for (ci, class) in plan.classes.iter().enumerate() {
            if class.participants == 0 || !class.period_us.is_finite() {
                continue;
            }
            let mut device = u64::from(shard);
            while device < plan.devices {
                if let Some(rank) = class.rank(device) {
                    let t = plan.first_ns(ci, device, rank);
                    if t < end_ns {
                        entries.push(Reverse(Entry { t, device: device as u32, class: ci as u16, k: 0 }));
                    }
                }
                device += u64::from(shards);
            }
        }
        Schedule { plan, heap: BinaryHeap::from(entries), end_ns }
    }

    /// Intended time of the next event in microseconds, if any.
    pub fn peek_time(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse(e)| e.t / 1000)
    }

    /// Number of (device, class) streams still scheduled.
    pub fn live_streams(&self) -> usize {
        self.heap.len()
    }
}

impl Iterator for Schedule<'_> {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        let plan = self.plan;
        let mut top = self.heap.peek_mut()?;
        let e = top.0;
        let class = usize::from(e.class);
        let device = u64::from(e.device);
        let event = Event {
            intended_us: e.t / 1000,
            created_us: e.t / 1000,
            device: e.device,
            class: e.class,
            seq: u64::from(e.k),
            size: plan.size_of(class, device, u64::from(e.k)),
        };
        let k = e.k.saturating_add(1);
        let next_t = e.t.saturating_add(plan.gap_ns(class, device, u64::from(k)).round() as u64);
        if next_t < self.end_ns && k != u32::MAX {
            top.0 = Entry { t: next_t, k, ..e };
        } else {
            std::collections::binary_heap::PeekMut::pop(top);
        }
        Some(event)
    }
}

/// A device id pattern such as `device-{n:06}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdPattern {
    prefix: String,
    width: usize,
    suffix: String,
}

impl Default for IdPattern {
    fn default() -> Self {
        IdPattern { prefix: "device-".into(), width: 6, suffix: String::new() }
    }
}

impl IdPattern {
    /// Parse a pattern with exactly one `{n}` or `{n:0W}` placeholder.
    pub fn parse(s: &str) -> Result<IdPattern, String> {
        let open = s.find('{').ok_or("the pattern needs a `{n}` placeholder for the device number")?;
        let close = s[open..].find('}').map(|i| open + i).ok_or("unclosed `{` in the pattern")?;
        let inner = &s[open + 1..close];
        let width = match inner {
            "n" => 0,
            _ => {
                let spec = inner
                    .strip_prefix("n:")
                    .ok_or_else(|| format!("unknown placeholder `{{{inner}}}`: use `{{n}}` or `{{n:06}}`"))?;
                spec.trim_start_matches('0')
                    .parse::<usize>()
                    .ok()
                    .filter(|w| *w <= 20)
                    .ok_or_else(|| format!("bad width in `{{{inner}}}`: use e.g. `{{n:06}}`"))?
            }
        };
        let suffix = &s[close + 1..];
        if suffix.contains('{') || s[..open].contains('}') {
            return Err("the pattern may contain only one `{n}` placeholder".into());
        }
        Ok(IdPattern { prefix: s[..open].to_string(), width, suffix: suffix.to_string() })
    }

    /// Write the id of device `n` into `out` (cleared first).
    pub fn write(&self, n: u64, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(self.prefix.as_bytes());
        let mut buf = [0u8; 20];
        let mut i = buf.len();
        let mut v = n;
        loop {
            i -= 1;
            buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        let digits = buf.len() - i;
        for _ in digits..self.width {
            out.push(b'0');
        }
        out.extend_from_slice(&buf[i..]);
        out.extend_from_slice(self.suffix.as_bytes());
    }

    pub fn render(&self, n: u64) -> String {
        let mut v = Vec::new();
        self.write(n, &mut v);
        String::from_utf8_lossy(&v).into_owned()
    }

    /// The longest id this pattern produces for `devices` devices.
    pub fn max_len(&self, devices: u64) -> usize {
        self.render(devices.saturating_sub(1)).len()
    }
}

#[cfg(test)]
mod tests;
