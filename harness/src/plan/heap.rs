//! The schedule's priority queue: a 4-ary min-heap.
//!
//! Every event the harness sends takes the earliest stream off this queue and puts it back with
//! its next time, so this is the hottest data structure of a max-rate run. Compared with
//! `std::collections::BinaryHeap` (binary, two comparisons per level on the way down), four
//! children per node halve the depth and share cache lines, and `replace_top` walks the
//! smallest children to a leaf first, then sifts the new element up: a stream's next time is
//! usually later than most others, so it settles near the bottom after one comparison per level
//! pair. Same ordering as `BinaryHeap<Reverse<T>>`: the smallest element comes first; equal
//! elements are indistinguishable (the schedule's entries are unique).

const D: usize = 4;

/// The heap's order: smallest key first. A `u128` compares without branches, so choosing the
/// smallest of four children costs no mispredictions (random times make every comparison a coin
/// flip for the branch predictor).
pub trait HeapKey: Copy {
    fn key(&self) -> u128;
}

#[derive(Clone, Debug)]
pub struct QuadHeap<T> {
    v: Vec<T>,
}

impl<T: HeapKey> QuadHeap<T> {
    pub fn from_vec(v: Vec<T>) -> Self {
        let mut h = QuadHeap { v };
        let n = h.v.len();
        if n > 1 {
            for i in (0..=(n - 2) / D).rev() {
                h.sift_down(i);
            }
        }
        h
    }

    pub fn len(&self) -> usize {
        self.v.len()
    }

    pub fn is_empty(&self) -> bool {
        self.v.is_empty()
    }

    pub fn peek(&self) -> Option<&T> {
        self.v.first()
    }

    /// Replace the smallest element by `x` (no-op on an empty heap).
    pub fn replace_top(&mut self, x: T) {
        let n = self.v.len();
        if n == 0 {
            return;
        }
        // Move the hole from the root to a leaf along the smallest children...
        let mut hole = 0;
        loop {
            let first = hole * D + 1;
            if first >= n {
                break;
            }
            let best = self.smallest_child(first, n);
            self.v[hole] = self.v[best];
            hole = best;
        }
        // ...then let `x` rise to its place.
        self.sift_up(hole, x);
    }

    pub fn push(&mut self, x: T) {
        self.v.push(x);
        self.sift_up(self.v.len() - 1, x);
    }

    /// Put `x` in the hole at `hole` or, while it is smaller than the parent, higher up.
    fn sift_up(&mut self, mut hole: usize, x: T) {
        while hole > 0 {
            let parent = (hole - 1) / D;
            if x.key() < self.v[parent].key() {
                self.v[hole] = self.v[parent];
                hole = parent;
            } else {
                break;
            }
        }
        self.v[hole] = x;
    }

    pub fn pop(&mut self) -> Option<T> {
        let last = self.v.pop()?;
        match self.v.first().copied() {
            Some(top) => {
                self.replace_top(last);
                Some(top)
            }
            None => Some(last),
        }
    }

    #[inline]
    fn smallest_child(&self, first: usize, n: usize) -> usize {
        let end = (first + D).min(n);
        let mut best = first;
        let mut best_key = self.v[first].key();
        for c in first + 1..end {
            let k = self.v[c].key();
            let less = k < best_key;
            best = if less { c } else { best };
            best_key = if less { k } else { best_key };
        }
        best
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.v.len();
        let x = self.v[i];
        loop {
            let first = i * D + 1;
            if first >= n {
                break;
            }
            let best = self.smallest_child(first, n);
            if self.v[best].key() < x.key() {
                self.v[i] = self.v[best];
                i = best;
            } else {
                break;
            }
        }
        self.v[i] = x;
    }
}

#[cfg(test)]
mod tests {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    use super::*;
    use crate::plan::rng::SplitMix;

    impl HeapKey for (u64, u32) {
        fn key(&self) -> u128 {
            (u128::from(self.0) << 64) | u128::from(self.1)
        }
    }

    #[test]
    fn yields_the_same_sequence_as_the_standard_binary_heap() {
        let mut rng = SplitMix::new(7);
        for n in [0usize, 1, 2, 3, 4, 5, 17, 1000] {
            let items: Vec<(u64, u32)> = (0..n).map(|i| (rng.step() % 500, i as u32)).collect();
            let mut ours = QuadHeap::from_vec(items.clone());
            let mut std: BinaryHeap<Reverse<(u64, u32)>> = items.into_iter().map(Reverse).collect();
            // A schedule's life: replace the top with a later time, sometimes retire a stream.
            for step in 0..5 * n + 10 {
                assert_eq!(ours.peek().copied(), std.peek().map(|r| r.0), "n={n} step={step}");
                let Some(&(t, id)) = ours.peek() else { break };
                if step % 13 == 6 {
                    let extra = (t + rng.step() % 300, 1_000_000 + step as u32);
                    ours.push(extra);
                    std.push(Reverse(extra));
                } else if step % 7 == 3 {
                    assert_eq!(ours.pop(), std.pop().map(|r| r.0));
                } else {
                    let next = (t + 1 + rng.step() % 300, id);
                    ours.replace_top(next);
                    if let Some(mut top) = std.peek_mut() {
                        top.0 = next;
                    }
                }
                assert_eq!(ours.len(), std.len());
            }
        }
    }
}
