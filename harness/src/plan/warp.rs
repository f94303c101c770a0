//! Time-varying rates by time warping.
//!
//! A class's rate over time is its base rate times a factor `m(t)` (stages, ramps, a diurnal
//! curve). Events are generated at the base rate in *operational time* `u`, then mapped to real
//! time through the inverse of `Λ(t) = ∫₀ᵗ m(s) ds`. Fixed arrivals stay evenly spaced in
//! operational time (so they bunch up where the factor is high), Poisson arrivals become a
//! non-homogeneous Poisson process with intensity `rate · m(t)`: the standard time-rescaling
//! construction, exact up to the table's resolution.

use crate::config::scenario::{Diurnal, RateShape, Stage};

/// `Λ` tabulated on a regular grid, linearly interpolated.
#[derive(Clone, Debug)]
pub struct Warp {
    step_ns: f64,
    /// `Λ(i · step)` in nanoseconds of operational time.
    cum: Vec<f64>,
    /// The factor past the end of the table.
    last_factor: f64,
}

/// The rate factor of `shape` at `t_s` seconds.
pub fn factor_at(shape: &RateShape, t_s: f64) -> f64 {
    match shape {
        RateShape::Stages(stages) => stages_factor(stages, t_s),
        RateShape::Diurnal(d) => diurnal_factor(d, t_s),
    }
}

fn stages_factor(stages: &[Stage], t: f64) -> f64 {
    let mut sorted: Vec<&Stage> = stages.iter().collect();
    sorted.sort_by_key(|s| s.at);
    let mut f = 1.0;
    for st in sorted {
        let at = st.at.as_secs_f64();
        if t < at {
            return f;
        }
        if let Some(r) = st.ramp.map(|r| r.as_secs_f64()).filter(|r| *r > 0.0)
            && t < at + r
        {
            return f + (st.factor - f) * (t - at) / r;
        }
        f = st.factor;
    }
    f
}

fn diurnal_factor(d: &Diurnal, t: f64) -> f64 {
    let period = d.period.as_secs_f64().max(1e-9);
    let peak = d.peak_at.map_or(period / 2.0, |p| p.as_secs_f64());
    let phase = 2.0 * std::f64::consts::PI * (t - peak) / period;
    d.low + (d.high - d.low) * (1.0 + phase.cos()) / 2.0
}

impl Warp {
    /// Tabulate `Λ` over `duration_ns` (at least 10 ms resolution, at most 200,000 steps).
    pub fn new(shape: &RateShape, duration_ns: u64) -> Warp {
        let duration = duration_ns.max(1) as f64;
        let step_ns = (duration / 200_000.0).max(10_000_000.0);
        let n = (duration / step_ns).ceil() as usize + 1;
        // Midpoint rule: exact for steps that change on grid points and for linear ramps.
        let m = |x: f64| factor_at(shape, x * step_ns / 1e9).max(0.0);
        let mut cum = Vec::with_capacity(n + 1);
        let mut acc = 0.0;
        cum.push(acc);
        for i in 0..n {
            acc += step_ns * m(i as f64 + 0.5);
            cum.push(acc);
        }
        Warp { step_ns, cum, last_factor: m(n as f64) }
    }

    /// `Λ(t)`: operational time at real time `t_ns`.
    pub fn forward(&self, t_ns: f64) -> f64 {
        let last = self.cum.len() - 1;
        let x = t_ns / self.step_ns;
        let i = x.floor().max(0.0) as usize;
        if i >= last {
            return self.cum[last] + (t_ns - last as f64 * self.step_ns) * self.last_factor;
        }
        self.cum[i] + (x - i as f64) * (self.cum[i + 1] - self.cum[i])
    }

    /// `Λ⁻¹(u)`: the real time at which operational time reaches `u`. Silent stretches (factor 0)
    /// are skipped over.
    pub fn inverse(&self, u: f64) -> f64 {
        let last = self.cum.len() - 1;
        if u >= self.cum[last] {
            return if self.last_factor > 0.0 {
                last as f64 * self.step_ns + (u - self.cum[last]) / self.last_factor
            } else {
                f64::INFINITY
            };
        }
        // The last grid point at or below u.
        let i = self.cum.partition_point(|c| *c <= u).saturating_sub(1);
        let span = self.cum[i + 1] - self.cum[i];
        let frac = if span > 0.0 { (u - self.cum[i]) / span } else { 0.0 };
        (i as f64 + frac) * self.step_ns
    }

    /// Mean factor over `[0, duration_ns)`.
    pub fn mean_factor(&self, duration_ns: u64) -> f64 {
        self.forward(duration_ns as f64) / (duration_ns.max(1) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::units::Dur;

    fn stages(v: &[(u64, f64, Option<u64>)]) -> RateShape {
        RateShape::Stages(
            v.iter()
                .map(|(at, f, r)| Stage { at: Dur::from_secs(*at), factor: *f, ramp: r.map(Dur::from_secs) })
                .collect(),
        )
    }

    #[test]
    fn steps_and_ramps() {
        let s = stages(&[(10, 3.0, None), (20, 1.0, Some(10))]);
        assert_eq!(factor_at(&s, 5.0), 1.0);
        assert_eq!(factor_at(&s, 15.0), 3.0);
        assert!((factor_at(&s, 25.0) - 2.0).abs() < 1e-12);
        assert_eq!(factor_at(&s, 40.0), 1.0);
    }

    #[test]
    fn warp_round_trips_and_integrates() {
        let s = stages(&[(10, 3.0, None), (20, 0.0, None), (30, 2.0, Some(10))]);
        let w = Warp::new(&s, 60_000_000_000);
        // Λ(10s) = 10s, Λ(20s) = 10 + 30 = 40s, silent until 30s, then ramps to 2 over 10s.
        assert!((w.forward(10e9) - 10e9).abs() < 1e6);
        assert!((w.forward(20e9) - 40e9).abs() < 2e7);
        assert!((w.forward(30e9) - 40e9).abs() < 2e7);
        for t in [1e9, 12.5e9, 35e9, 55e9] {
            assert!((w.inverse(w.forward(t)) - t).abs() < 1e3, "{t}");
        }
        // Operational time just past the silence maps to just after 30s, never into it.
        assert!(w.inverse(w.forward(20e9) + 1.0) >= 29.9e9);
    }

    #[test]
    fn diurnal_peaks_where_asked() {
        let d = RateShape::Diurnal(Diurnal {
            period: Dur::from_secs(600),
            low: 0.2,
            high: 1.0,
            peak_at: Some(Dur::from_secs(150)),
        });
        assert!((factor_at(&d, 150.0) - 1.0).abs() < 1e-12);
        assert!((factor_at(&d, 450.0) - 0.2).abs() < 1e-12);
        let w = Warp::new(&d, 600_000_000_000);
        assert!((w.mean_factor(600_000_000_000) - 0.6).abs() < 1e-3);
    }
}
