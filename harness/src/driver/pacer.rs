//! Open-loop pacing: events are released at their intended times whatever happened to earlier
//! ones. The producer never waits for an acknowledgement before the next send; if it falls behind,
//! due events come out immediately and the delay is measured as send lag. Time comes in as an
//! argument (microseconds since the load started), so this is tested without a clock.

use crate::plan::Event;

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

/// Releases a schedule's events as their intended times come.
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
    use crate::clock::{Clock, ManualClock};
    use crate::plan::Plan;

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

    /// The producer loop's pacing, driven by a manual clock: the achieved per-second rate equals the
    /// planned rate when the sender keeps up, and no event is sent before its intended time.
    #[test]
    fn paced_sending_matches_the_plan_without_sleeping() {
        let plan = Plan::from_scenario(&crate::plan::tests::scenario(21, ""));
        let clock = ManualClock::default();
        let mut pacer = Pacer::new(plan.schedule(0, 1), plan.duration_us);
        let mut per_second = vec![0u64; 60];
        loop {
            match pacer.step(clock.now_us()) {
                Step::Send(e) => {
                    assert!(e.intended_us <= clock.now_us());
                    assert!(clock.now_us() - e.intended_us < 1000, "sent more than 1ms late");
                    per_second[(clock.now_us() / 1_000_000) as usize] += 1;
                }
                // The real driver sleeps here; the test jumps, in steps of at most 1 ms.
                Step::WaitUntil(t) => clock.set(t.min(clock.now_us() + 1000)),
                Step::Done => break,
            }
        }
        let planned = plan.planned_rate();
        // Skip the first period of each class (phases ramp up); compare the steady state.
        for (s, n) in per_second.iter().enumerate().skip(5) {
            let err = (*n as f64 - planned).abs() / planned;
            // The poisson class adds sqrt(rate) of noise per second; 4 sigma of it plus 1%.
            let tolerance = 0.01 + 4.0 * plan.classes[1].planned_rate().sqrt() / planned;
            assert!(err < tolerance, "second {s}: {n} vs {planned:.0}");
        }
        let steady: u64 = per_second[5..].iter().sum();
        let err = (steady as f64 / 55.0 - planned).abs() / planned;
        assert!(err < 0.01, "steady-state rate off by {:.2}%", err * 100.0);
    }
}
