//! Time, behind a trait so that pacing and recording logic are tested without sleeping.
//!
//! Every timestamp in a run is microseconds since the run's origin on one monotonic clock
//! (`Instant`). Records carry unix times computed as `origin_unix + offset` from that same clock,
//! never read from the wall clock at send time, so producer and consumer stamps are comparable
//! inside one process and immune to NTP steps.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::plan::Event;

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

/// What the sender should do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// This event is due (its intended time is now or past): send it.
    Send(Event),
    /// Nothing is due before this time (microseconds since the origin).
    WaitUntil(u64),
    /// The schedule is exhausted or its end time has been reached.
    Done,
}

/// Open-loop pacing: events are released at their intended times whatever happened to earlier
/// ones. The sender never waits for an acknowledgement before the next send; if it falls behind,
/// due events come out immediately and the delay is measured as send lag.
pub struct Pacer<I: Iterator<Item = Event>> {
    events: std::iter::Peekable<I>,
    /// Events intended at or after this time are not sent.
    end_us: u64,
}

impl<I: Iterator<Item = Event>> Pacer<I> {
    pub fn new(events: I, end_us: u64) -> Self {
        Pacer { events: events.peekable(), end_us }
    }

    /// Stop releasing events intended at or after `end_us` (an abort moves the end earlier).
    pub fn stop_at(&mut self, end_us: u64) {
        self.end_us = self.end_us.min(end_us);
    }

    pub fn step(&mut self, now_us: u64) -> Step {
        match self.events.peek() {
            None => Step::Done,
            Some(e) if e.intended_us >= self.end_us => Step::Done,
            Some(e) if e.intended_us <= now_us => match self.events.next() {
                Some(e) => Step::Send(e),
                None => Step::Done,
            },
            Some(e) => Step::WaitUntil(e.intended_us),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(t: u64) -> Event {
        Event { intended_us: t, created_us: t, device: 0, class: 0, seq: t, size: 1, firmware: 0 }
    }

    #[test]
    fn releases_events_at_their_intended_time() {
        let mut p = Pacer::new([ev(10), ev(20), ev(20), ev(35)].into_iter(), 1000);
        assert_eq!(p.step(0), Step::WaitUntil(10));
        assert_eq!(p.step(10), Step::Send(ev(10)));
        assert_eq!(p.step(12), Step::WaitUntil(20));
        assert_eq!(p.step(20), Step::Send(ev(20)));
        assert_eq!(p.step(20), Step::Send(ev(20)));
        assert_eq!(p.step(21), Step::WaitUntil(35));
        assert_eq!(p.step(99), Step::Send(ev(35)));
        assert_eq!(p.step(99), Step::Done);
    }

    #[test]
    fn a_late_sender_gets_every_due_event_at_once() {
        let mut p = Pacer::new((0..100).map(|i| ev(i * 10)), 10_000);
        let mut sent = 0;
        while let Step::Send(_) = p.step(500) {
            sent += 1;
        }
        assert_eq!(sent, 51, "events intended at 0..=500 are all due");
    }

    #[test]
    fn stop_cuts_the_schedule() {
        let mut p = Pacer::new((0..100).map(|i| ev(i * 10)), 10_000);
        p.stop_at(30);
        let mut sent = 0;
        while let Step::Send(_) = p.step(10_000) {
            sent += 1;
        }
        assert_eq!(sent, 3);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::default();
        assert_eq!(c.now_us(), 0);
        c.advance(5);
        c.set(100);
        assert_eq!(c.now_us(), 100);
    }
}
