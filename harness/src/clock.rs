//! Time, behind a trait so that pacing and recording logic are tested without sleeping.
//!
//! Every timestamp in a run is microseconds since the run's origin on one monotonic clock
//! (`Instant`). Records carry unix times computed as `origin_unix + offset` from that same clock,
//! never read from the wall clock at send time, so producer and consumer stamps are comparable
//! inside one process and immune to NTP steps.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of "now" in microseconds since the run's origin.
pub trait Clock: Send + Sync {
    fn now_us(&self) -> u64;
}

/// The real clock: monotonic, anchored to the wall clock once at the origin.
#[derive(Clone, Copy, Debug)]
pub struct MonotonicClock {
    origin: Instant,
    origin_unix_us: u64,
}

impl MonotonicClock {
    pub fn start() -> Self {
        let origin_unix_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(0))
            .unwrap_or(0);
        MonotonicClock { origin: Instant::now(), origin_unix_us }
    }

    pub fn origin(&self) -> Instant {
        self.origin
    }

    /// Unix microseconds at the origin.
    pub fn origin_unix_us(&self) -> u64 {
        self.origin_unix_us
    }

    /// The instant `us` microseconds after the origin.
    pub fn instant_at(&self, us: u64) -> Instant {
        self.origin + Duration::from_micros(us)
    }
}

impl Clock for MonotonicClock {
    fn now_us(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

/// A clock that moves only when told to (tests).
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
}

impl ManualClock {
    pub fn set(&self, us: u64) {
        self.now.store(us, Ordering::SeqCst);
    }

    pub fn advance(&self, us: u64) {
        self.now.fetch_add(us, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_us(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::default();
        assert_eq!(c.now_us(), 0);
        c.advance(5);
        c.set(100);
        assert_eq!(c.now_us(), 100);
    }
}
