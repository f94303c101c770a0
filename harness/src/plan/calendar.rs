//! The schedule's priority queue: a calendar queue (R. Brown, "Calendar queues", CACM 1988).
//!
//! Every event the harness sends takes the earliest stream off this queue and puts it back with
//! its next time, so this is the hottest data structure of a max-rate run. A heap pays a
//! memory-bound walk of its whole depth per event (~100 ns for 10,000 streams on the benchmark
//! machine, 12 % of a max-rate producer thread: BENCHMARKS.md). Here time is cut into buckets
//! of a fixed width (a power of two of nanoseconds, chosen from how densely the first events
//! are spread), held in a ring that covers about twice the streams' typical period:
//!
//! - the bucket being served is a small sorted vector (`current`), read from the front;
//! - every other bucket of the ring is an unsorted vector, so putting a stream back is O(1): a
//!   push on its bucket's vector (a vector, not a linked list: the served bucket's entries are
//!   then read from one cache line or two, not from scattered nodes);
//! - times beyond the ring's horizon wait in a [`QuadHeap`] (`far`) and move into the ring as
//!   the horizon passes them.
//!
//! When the served bucket runs out, the next non-empty bucket is swapped in and sorted (a few
//! entries). Order is the entries' full key (time, then stream), exactly as the heap's: the
//! schedule it produces is the same, event for event (checked in the tests below against
//! `std::collections::BinaryHeap`).
//!
//! Memory: the entries themselves, with their vectors' spare capacity, and 24 bytes per bucket
//! (one bucket per four streams): under 50 bytes per idle device (BENCHMARKS.md, fleet scale).

use super::heap::{HeapKey, QuadHeap};

/// At most this many buckets.
const MAX_BUCKETS: usize = 1 << 22;

#[derive(Clone, Debug)]
pub struct Calendar<T> {
    /// Bucket width: `1 << shift` nanoseconds.
    shift: u32,
    /// The ring of buckets; its length is a power of two.
    ring: Vec<Vec<T>>,
    /// Entries in the ring (not counting `current` or `far`).
    in_ring: usize,
    /// Absolute number (time >> shift) of the bucket being served.
    cursor: u64,
    /// The served bucket, sorted by key, smallest first; `current[head]` is the next entry.
    /// (Ascending, because streams are put back in the order they are served, so a bucket
    /// fills in nearly sorted order and sorting it is one pass.)
    current: Vec<T>,
    head: usize,
    /// Entries at or beyond the ring's horizon (`cursor + ring.len()`).
    far: QuadHeap<T>,
}

fn time_of<T: HeapKey>(x: &T) -> u64 {
    (x.key() >> 64) as u64
}

impl<T: HeapKey> Calendar<T> {
    pub fn from_vec(v: Vec<T>) -> Self {
        let n = v.len();
        let (lo, hi) = v.iter().map(time_of).fold((u64::MAX, 0u64), |(lo, hi), t| (lo.min(t), hi.max(t)));
        // About eight entries per bucket while the first events are spread out (each stream's
        // next event is about one spread later, so the ring covers two); ~1 ms when they are
        // all at one instant (or there are none).
        let spacing = if n > 1 && hi > lo { (hi - lo) / n as u64 } else { 1 << 17 };
        let width = spacing.saturating_mul(8).max(1);
        let shift = 63 - width.leading_zeros();
        let buckets = (n / 4).next_power_of_two().clamp(64, MAX_BUCKETS);
        let mut c = Calendar {
            shift,
            ring: vec![Vec::new(); buckets],
            in_ring: 0,
            cursor: if n == 0 { 0 } else { lo >> shift },
            current: Vec::new(),
            head: 0,
            far: QuadHeap::from_vec(Vec::new()),
        };
        let mut far = Vec::new();
        for x in v {
            if (time_of(&x) >> c.shift) - c.cursor >= c.ring.len() as u64 {
                far.push(x);
            } else {
                c.link(x);
            }
        }
        c.far = QuadHeap::from_vec(far);
        c.collect_current();
        if c.served_out() {
            c.advance();
        }
        c
    }

    /// Every entry of the served bucket has been taken.
    fn served_out(&self) -> bool {
        self.head >= self.current.len()
    }

    fn take_head(&mut self) -> Option<T> {
        let x = self.current.get(self.head).copied()?;
        self.head += 1;
        Some(x)
    }

    pub fn len(&self) -> usize {
        self.current.len() - self.head + self.in_ring + self.far.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn peek(&self) -> Option<&T> {
        self.current.get(self.head)
    }

    /// Replace the smallest element by `x` (no-op when empty).
    pub fn replace_top(&mut self, x: T) {
        if self.take_head().is_some() {
            self.insert(x);
            if self.served_out() {
                self.advance();
            }
        }
    }

    pub fn pop(&mut self) -> Option<T> {
        let top = self.take_head()?;
        if self.served_out() {
            self.advance();
        }
        Some(top)
    }

    fn insert(&mut self, x: T) {
        let b = time_of(&x) >> self.shift;
        if b <= self.cursor {
            // The bucket being served (or, for a time earlier than it, ahead of everything
            // else in the queue): keep `current` sorted.
            let k = x.key();
            let at = self.head + self.current[self.head..].partition_point(|y| y.key() < k);
            self.current.insert(at, x);
        } else if b - self.cursor < self.ring.len() as u64 {
            self.link(x);
        } else {
            self.far.push(x);
        }
    }

    /// Put `x` in its ring bucket.
    fn link(&mut self, x: T) {
        let slot = ((time_of(&x) >> self.shift) as usize) & (self.ring.len() - 1);
        self.ring[slot].push(x);
        self.in_ring += 1;
    }

    /// Make the cursor's bucket the served one, sorted. `current` is served out here: it is
    /// emptied and the two swap, so the bucket keeps an allocation for its next turn.
    fn collect_current(&mut self) {
        self.current.clear();
        self.head = 0;
        let slot = (self.cursor as usize) & (self.ring.len() - 1);
        std::mem::swap(&mut self.current, &mut self.ring[slot]);
        self.in_ring -= self.current.len();
        // Insertion sort (stable, one pass over nearly sorted input); keys are unique.
        self.current.sort_by_key(|y| y.key());
    }

    /// `current` ran out: serve the next non-empty bucket.
    fn advance(&mut self) {
        while self.served_out() {
            if self.in_ring == 0 {
                // Nothing near: jump straight to the earliest far entry.
                let Some(t) = self.far.peek().map(time_of) else { return };
                self.cursor = t >> self.shift;
            } else {
                self.cursor += 1;
            }
            // The horizon moved: bring in the far entries it now covers.
            let horizon = self.cursor + self.ring.len() as u64;
            while let Some(t) = self.far.peek().map(time_of) {
                if (t >> self.shift) >= horizon {
                    break;
                }
                if let Some(x) = self.far.pop() {
                    self.link(x);
                }
            }
            self.collect_current();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    use proptest::prelude::*;

    use super::*;
    use crate::plan::rng::SplitMix;

    /// (time, id) as the schedule's entries: time first, then a unique stream id.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    struct E(u64, u32);
    impl HeapKey for E {
        fn key(&self) -> u128 {
            (u128::from(self.0) << 64) | u128::from(self.1)
        }
    }

    /// Drive both queues through a schedule's life: replace the top with a time `gap()` later,
    /// sometimes retire a stream, sometimes (`earlier`) put one back before the current time.
    fn same_as_binary_heap(
        items: Vec<E>,
        steps: usize,
        mut gap: impl FnMut() -> u64,
        mut earlier: impl FnMut() -> bool,
    ) {
        let mut ours = Calendar::from_vec(items.clone());
        let mut std: BinaryHeap<Reverse<E>> = items.into_iter().map(Reverse).collect();
        for step in 0..steps {
            assert_eq!(ours.peek().copied(), std.peek().map(|r| r.0), "step {step}");
            assert_eq!(ours.len(), std.len());
            let Some(&E(t, id)) = ours.peek() else { break };
            if step % 11 == 5 {
                assert_eq!(ours.pop(), std.pop().map(|r| r.0));
            } else {
                let next = if earlier() { E(t.saturating_sub(gap()), id) } else { E(t + gap(), id) };
                ours.replace_top(next);
                if let Some(mut top) = std.peek_mut() {
                    top.0 = next;
                }
            }
        }
    }

    #[test]
    fn yields_the_same_sequence_as_the_standard_binary_heap() {
        let mut rng = SplitMix::new(7);
        for n in [0usize, 1, 2, 3, 5, 17, 1000, 10_000] {
            // Periodic streams, first events spread over one period: the common case.
            let period = 1_000_000u64;
            let items: Vec<E> = (0..n).map(|i| E(rng.step() % period, i as u32)).collect();
            let mut r = SplitMix::new(n as u64);
            same_as_binary_heap(items, 5 * n + 10, || period / 2 + r.step() % period, || false);
        }
    }

    #[test]
    fn mixed_periods_far_entries_ties_and_bursts_keep_the_order() {
        let mut rng = SplitMix::new(11);
        let n = 3000;
        // Everyone at one instant (a reconnect storm), then gaps from 1 ns to an hour.
        let items: Vec<E> = (0..n).map(|i| E(5_000, i)).collect();
        let mut r = SplitMix::new(3);
        same_as_binary_heap(
            items,
            60_000,
            || match r.step() % 4 {
                0 => r.step() % 10,
                1 => r.step() % 1_000_000,
                2 => 3_600_000_000_000,
                _ => 0,
            },
            || false,
        );
        // Spread out, with entries sometimes put back before the current time.
        let items: Vec<E> = (0..n).map(|i| E(rng.step() % 1_000_000_000, i)).collect();
        let mut r = SplitMix::new(4);
        let mut e = SplitMix::new(5);
        same_as_binary_heap(items, 60_000, || r.step() % 2_000_000_000, || e.step() % 13 == 0);
    }

    proptest! {
        #[test]
        fn any_times_any_gaps(times in proptest::collection::vec(0u64..1u64 << 40, 0..300),
                              gaps in proptest::collection::vec(0u64..1u64 << 36, 1..50),
                              seed in any::<u64>()) {
            let items: Vec<E> = times.iter().enumerate().map(|(i, &t)| E(t, i as u32)).collect();
            let mut i = 0usize;
            let mut back = SplitMix::new(seed);
            same_as_binary_heap(items, 2000, || { i += 1; gaps[i % gaps.len()] }, || back.step() % 17 == 0);
        }
    }
}
