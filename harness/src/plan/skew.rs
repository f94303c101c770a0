//! Skewed activity: some devices of a class send far more often than others (`classes[].skew`),
//! so the partitions their keys hash to run hot.
//!
//! A skew is a per-device rate multiplier with mean 1 over the class's devices: `rate` stays the
//! per-device mean, the class's total is unchanged, and only who sends it moves. Multipliers are
//! computed once, when the plan is made, into a table indexed by device number (4 bytes a device,
//! for skewed classes only), so the schedule pays one array read per event. Which devices are busy
//! follows the class's seeded member ranks: rank 0 is the busiest.

use std::sync::Arc;

use crate::config::scenario::Skew;

/// Per-device rate multipliers of one class (mean 1 over its members).
#[derive(Clone, Debug)]
pub struct Activity {
    /// By device number; 0 for devices that do not send the class.
    by_device: Arc<[f32]>,
}

/// The multiplier of the member of rank `r` among `n`, for each rank (mean 1).
pub fn by_rank(skew: &Skew, n: u64) -> impl Fn(u64) -> f64 + use<> {
    let n_f = n.max(1) as f64;
    // Closed over as plain numbers, so the result is `'static` and cheap to call.
    let (kind, a, b, c) = match skew {
        Skew::Zipf(z) => {
            let s = z.exponent;
            // Sum of 1/r^s for r = 1..=n, computed once (O(n), n <= the fleet's 10M devices).
            let sum: f64 = (1..=n.max(1)).map(|r| (r as f64).powf(-s)).sum();
            (0u8, s, n_f / sum, 0.0)
        }
        Skew::Hot(h) => {
            let hot = (h.share.0 * n_f).round().clamp(1.0, n_f);
            let factor = h.factor.max(1.0);
            // hot·f·x + (n − hot)·x = n: the cold rate x keeps the mean at 1.
            let cold = n_f / (hot * factor + (n_f - hot));
            (1u8, hot, cold * factor, cold)
        }
    };
    move |r: u64| {
        if kind == 0 {
            b * ((r + 1) as f64).powf(-a)
        } else if (r as f64) < a {
            b
        } else {
            c
        }
    }
}

impl Activity {
    /// The multipliers of a class's members: `rank(device)` is the member's rank, `None` for a
    /// device that does not send the class.
    pub fn new(skew: &Skew, devices: u64, members: u64, rank: impl Fn(u64) -> Option<u64>) -> Activity {
        let of = by_rank(skew, members);
        let by_device: Vec<f32> = (0..devices).map(|d| rank(d).map_or(0.0, |r| of(r) as f32)).collect();
        Activity { by_device: by_device.into() }
    }

    /// How many times the class's mean rate `device` sends at (1 for unknown devices).
    #[inline]
    pub fn of(&self, device: u64) -> f64 {
        usize::try_from(device).ok().and_then(|d| self.by_device.get(d)).map_or(1.0, |m| f64::from(*m))
    }
}

/// The share of a class's traffic that its busiest `top` members send, of `n` members.
pub fn top_share(skew: &Skew, n: u64, top: u64) -> f64 {
    let of = by_rank(skew, n);
    let top = top.min(n);
    (0..top).map(&of).sum::<f64>() / n.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::scenario::{HotSkew, ZipfSkew};
    use crate::config::units::Ratio;

    fn zipf(s: f64) -> Skew {
        Skew::Zipf(ZipfSkew { exponent: s })
    }

    fn hot(share: f64, factor: f64) -> Skew {
        Skew::Hot(HotSkew { share: Ratio(share), factor })
    }

    #[test]
    fn multipliers_average_to_one_so_the_class_total_is_unchanged() {
        for skew in [zipf(0.5), zipf(1.1), zipf(3.0), hot(0.05, 20.0), hot(1.0, 7.0), hot(0.001, 10_000.0)] {
            for n in [1u64, 7, 1000, 60_000] {
                let of = by_rank(&skew, n);
                let mean = (0..n).map(&of).sum::<f64>() / n as f64;
                assert!((mean - 1.0).abs() < 1e-9, "{skew:?} n={n}: mean {mean}");
                assert!((0..n).all(|r| of(r) > 0.0), "{skew:?}: every member still sends");
            }
        }
    }

    #[test]
    fn zipf_follows_the_power_law_and_hot_devices_send_factor_times_as_often() {
        let of = by_rank(&zipf(1.0), 100);
        assert!((of(0) / of(9) - 10.0).abs() < 1e-9);
        assert!((of(1) / of(3) - 2.0).abs() < 1e-9);
        // 5% of 1000 devices at 20x: 50·20 + 950 = 1950 units for 1000 devices.
        let of = by_rank(&hot(0.05, 20.0), 1000);
        assert!((of(49) / of(50) - 20.0).abs() < 1e-9);
        assert!((of(0) - 20.0 * 1000.0 / 1950.0).abs() < 1e-9);
        assert!((top_share(&hot(0.05, 20.0), 1000, 50) - 1000.0 / 1950.0).abs() < 1e-9);
        // Zipf 1.1 over 60,000 devices: the top 1% send most of the class's records.
        let share = top_share(&zipf(1.1), 60_000, 600);
        assert!(share > 0.6 && share < 0.8, "{share}");
    }

    #[test]
    fn the_table_is_indexed_by_device_and_follows_the_ranks() {
        // Devices 0..10, members are the even ones, ranked in reverse.
        let rank = |d: u64| (d % 2 == 0).then(|| 4 - d / 2);
        let a = Activity::new(&hot(0.2, 9.0), 10, 5, rank);
        // One hot member (rank 0 = device 8) at 9 / (9 + 4) · 5.
        assert!((a.of(8) - 45.0 / 13.0).abs() < 1e-6);
        assert!((a.of(0) - 5.0 / 13.0).abs() < 1e-6);
        assert_eq!(a.of(1), 0.0);
        assert_eq!(a.of(99), 1.0);
    }
}
