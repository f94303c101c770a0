//! Who the devices are: cohorts, firmware versions and rollouts, reconnect waves. All choices are
//! seeded functions of the device number; nothing is stored per device.

use super::rng::{Permutation, mix, unit};
use crate::config::scenario::{Cohort, Firmware, Overflow, WaveSpec};

const SALT_COHORT: u64 = 0x434f;
const SALT_FIRMWARE: u64 = 0x4657;
const SALT_ROLLOUT: u64 = 0x524f;
const SALT_ROLLOUT_AT: u64 = 0x5241;
const SALT_WAVE: u64 = 0x5741;
const SALT_JITTER: u64 = 0x4a49;

/// Disjoint named slices of the fleet.
#[derive(Clone, Debug)]
pub struct Cohorts {
    pub names: Vec<String>,
    /// Cumulative device counts: cohort `i` holds ranks `bounds[i]..bounds[i + 1]`.
    bounds: Vec<u64>,
    perm: Permutation,
}

impl Cohorts {
    pub fn new(cohorts: &[Cohort], devices: u64, seed: u64) -> Cohorts {
        let mut bounds = vec![0u64];
        let mut acc = 0.0;
        for c in cohorts {
            acc += c.share.0;
            bounds.push(((acc * devices as f64).round() as u64).min(devices));
        }
        Cohorts {
            names: cohorts.iter().map(|c| c.name.clone()).collect(),
            bounds,
            perm: Permutation::new(devices, mix(seed, &[SALT_COHORT])),
        }
    }

    pub fn contains(&self, cohort: usize, device: u64) -> bool {
        let r = self.perm.apply(device);
        self.bounds.get(cohort).is_some_and(|lo| r >= *lo) && self.bounds.get(cohort + 1).is_some_and(|hi| r < *hi)
    }

    pub fn size(&self, cohort: usize) -> u64 {
        self.bounds.get(cohort + 1).zip(self.bounds.get(cohort)).map_or(0, |(hi, lo)| hi - lo)
    }
}

/// Firmware versions at the start, and the rollouts that move devices between them.
#[derive(Clone, Debug)]
pub struct FirmwarePlan {
    pub names: Vec<String>,
    bounds: Vec<u64>,
    perm: Permutation,
    pub rollouts: Vec<RolloutPlan>,
    seed: u64,
}

#[derive(Clone, Debug)]
pub struct RolloutPlan {
    pub from: Option<u16>,
    pub to: u16,
    pub start_ns: u64,
    pub over_ns: u64,
    pub share: f64,
}

impl FirmwarePlan {
    pub fn new(f: &Firmware, devices: u64, seed: u64) -> FirmwarePlan {
        let names: Vec<String> = f.versions.iter().map(|v| v.name.clone()).collect();
        let index = |n: &str| names.iter().position(|v| v == n).unwrap_or(0) as u16;
        let mut bounds = vec![0u64];
        let mut acc = 0.0;
        for v in &f.versions {
            acc += v.share.0;
            bounds.push(((acc * devices as f64).round() as u64).min(devices));
        }
        if let Some(last) = bounds.last_mut() {
            // Rounding: the last version with a share takes whatever is left.
            *last = devices;
        }
        let mut rollouts: Vec<RolloutPlan> = f
            .rollouts
            .iter()
            .map(|r| RolloutPlan {
                from: r.from.as_deref().map(index),
                to: index(&r.to),
                start_ns: r.start.as_micros() * 1000,
                over_ns: r.over.as_micros() * 1000,
                share: r.share.0,
            })
            .collect();
        rollouts.sort_by_key(|r| r.start_ns);
        FirmwarePlan { names, bounds, perm: Permutation::new(devices, mix(seed, &[SALT_FIRMWARE])), rollouts, seed }
    }

    /// The version a device runs at the start.
    pub fn base(&self, device: u64) -> u16 {
        let r = self.perm.apply(device);
        // The first version whose slice holds the rank (versions with a 0% share hold none).
        (0..self.names.len()).find(|&i| r >= self.bounds[i] && r < self.bounds[i + 1]).unwrap_or(0) as u16
    }

    /// The version a device runs at `t_ns`.
    pub fn at(&self, device: u64, t_ns: u64) -> u16 {
        let mut v = self.base(device);
        for (i, r) in self.rollouts.iter().enumerate() {
            if t_ns < r.start_ns || r.from.is_some_and(|f| f != v) || r.to == v {
                continue;
            }
            if unit(mix(self.seed, &[SALT_ROLLOUT, i as u64, device])) >= r.share {
                continue;
            }
            let upgrade =
                r.start_ns + (unit(mix(self.seed, &[SALT_ROLLOUT_AT, i as u64, device])) * r.over_ns as f64) as u64;
            if t_ns >= upgrade {
                v = r.to;
            }
        }
        v
    }
}

/// A reconnect wave, planned.
#[derive(Clone, Debug)]
pub struct WavePlan {
    pub label: String,
    pub at_ns: u64,
    pub offline_ns: u64,
    pub jitter_ns: u64,
    /// Gap between two flushed events of one stream; 0 = all at once.
    pub flush_gap_ns: u64,
    pub capacity: u64,
    pub overflow: Overflow,
    pub cohort: Option<usize>,
    pub share: f64,
    pub times: u32,
    pub every_ns: u64,
    /// Index of this wave's first occurrence among all occurrences of all waves.
    pub first_instance: usize,
    index: u64,
}

impl WavePlan {
    pub fn new(w: &WaveSpec, index: usize, cohort_names: &[String], first_instance: usize) -> WavePlan {
        WavePlan {
            label: w.label(index),
            at_ns: w.at.as_micros() * 1000,
            offline_ns: w.offline.as_micros() * 1000,
            jitter_ns: w.reconnect_jitter.as_micros() * 1000,
            flush_gap_ns: w.flush_rate.map_or(0, |r| (1e9 / r.as_per_sec().max(1e-9)) as u64),
            capacity: u64::from(w.buffer.capacity),
            overflow: w.buffer.overflow,
            cohort: w.cohort.as_ref().and_then(|c| cohort_names.iter().position(|n| n == c)),
            share: w.share.0,
            times: w.repeat.as_ref().map_or(1, |r| r.times.max(1)),
            every_ns: w.repeat.as_ref().map_or(0, |r| r.every.as_micros() * 1000),
            first_instance,
            index: index as u64,
        }
    }

    /// Is the device part of this wave?
    pub fn includes(&self, device: u64, cohorts: &Cohorts, seed: u64) -> bool {
        self.cohort.is_none_or(|c| cohorts.contains(c, device))
            && unit(mix(seed, &[SALT_WAVE, self.index, device])) < self.share
    }

    /// When occurrence `i` starts.
    pub fn start_ns(&self, i: u32) -> u64 {
        self.at_ns + u64::from(i) * self.every_ns
    }

    /// When the device reconnects after occurrence `i`.
    pub fn reconnect_ns(&self, i: u32, device: u64, seed: u64) -> u64 {
        let jitter = (unit(mix(seed, &[SALT_JITTER, self.index, u64::from(i), device])) * self.jitter_ns as f64) as u64;
        self.start_ns(i) + self.offline_ns + jitter
    }

    /// If `t_ns` falls in one of this wave's offline windows for the device: (occurrence, reconnect).
    pub fn window(&self, device: u64, t_ns: u64, seed: u64) -> Option<(u32, u64)> {
        if t_ns < self.at_ns {
            return None;
        }
        let i = (t_ns - self.at_ns).checked_div(self.every_ns).unwrap_or(0) as u32;
        if i >= self.times {
            return None;
        }
        let reconnect = self.reconnect_ns(i, device, seed);
        (t_ns < reconnect).then_some((i, reconnect))
    }
}
