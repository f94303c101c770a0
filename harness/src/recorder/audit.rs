//! The delivery audit's bookkeeping: which messages were acknowledged, which failed, which were
//! read back, how often and in what order. Pure logic, fed by the drivers.
//!
//! A message is identified by its stream (payload class and device) and its sequence number in
//! that stream. Each side keeps one bit per message in sparse 64-bit words, so memory follows the
//! number of messages, not the size of the fleet.
//!
//! Definitions (per stream, i.e. per device and class, which is one partition):
//! - **lost**: acknowledged, never read back;
//! - **duplicate**: read back more than once (each extra copy counts);
//! - **reordered**: read back after a higher sequence number of the same stream had been read
//!   (first copies only: a duplicate is not also a reorder);
//! - **failed but seen**: the producer reported an error, yet the record arrived;
//! - **unacked seen**: read back but never resolved by the producer (should be zero).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::plan::intmap::IntMap;

/// A stream: one device's messages of one payload class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Stream {
    pub class: u16,
    pub device: u32,
}

impl Stream {
    fn key(self) -> u64 {
        (u64::from(self.class) << 32) | u64::from(self.device)
    }

    fn from_key(k: u64) -> Stream {
        Stream { class: (k >> 32) as u16, device: k as u32 }
    }
}

/// A sparse set of (stream, seq) pairs.
#[derive(Clone, Debug, Default)]
pub struct BitSet {
    words: IntMap<(u64, u64), u64>,
}

impl BitSet {
    /// Insert; returns false if it was already present.
    pub fn insert(&mut self, s: Stream, seq: u64) -> bool {
        let w = self.words.entry((s.key(), seq >> 6)).or_insert(0);
        let bit = 1u64 << (seq & 63);
        let fresh = *w & bit == 0;
        *w |= bit;
        fresh
    }

    pub fn contains(&self, s: Stream, seq: u64) -> bool {
        self.words.get(&(s.key(), seq >> 6)).is_some_and(|w| w & (1 << (seq & 63)) != 0)
    }

    pub fn len(&self) -> u64 {
        self.words.values().map(|w| u64::from(w.count_ones())).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.words.values().all(|w| *w == 0)
    }

    fn word(&self, key: &(u64, u64)) -> u64 {
        self.words.get(key).copied().unwrap_or(0)
    }

    pub fn merge(&mut self, other: &BitSet) {
        for (k, w) in &other.words {
            *self.words.entry(*k).or_insert(0) |= w;
        }
    }
}

/// What the producer side knows: acknowledged and failed messages.
#[derive(Clone, Debug, Default)]
pub struct AckLedger {
    pub acked: BitSet,
    pub failed: BitSet,
    /// Acknowledged records by intended send second.
    pub acked_by_second: Vec<u64>,
}

fn bump(v: &mut Vec<u64>, second: u32) {
    let i = second as usize;
    if v.len() <= i {
        v.resize(i + 1, 0);
    }
    v[i] += 1;
}

fn merge_counts(a: &mut Vec<u64>, b: &[u64]) {
    if a.len() < b.len() {
        a.resize(b.len(), 0);
    }
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

impl AckLedger {
    /// `second`: the record's intended send second.
    pub fn acked(&mut self, s: Stream, seq: u64, second: u32) {
        if self.acked.insert(s, seq) {
            bump(&mut self.acked_by_second, second);
        }
    }

    pub fn failed(&mut self, s: Stream, seq: u64) {
        self.failed.insert(s, seq);
    }

    pub fn merge(&mut self, other: &AckLedger) {
        self.acked.merge(&other.acked);
        self.failed.merge(&other.failed);
        merge_counts(&mut self.acked_by_second, &other.acked_by_second);
    }
}

/// What the audit reader saw.
#[derive(Clone, Debug, Default)]
pub struct SeenLedger {
    pub seen: BitSet,
    max_seq: IntMap<u64, u64>,
    pub reads: u64,
    pub duplicates: u64,
    pub reordered: u64,
    /// Records of other runs or not written by fleetstorm.
    pub foreign: u64,
    /// By intended send second: distinct records seen, extra copies, reordered.
    pub seen_by_second: Vec<u64>,
    pub duplicates_by_second: Vec<u64>,
    pub reordered_by_second: Vec<u64>,
}

impl SeenLedger {
    /// Record one read of (stream, seq), intended to be sent in `second`.
    pub fn saw(&mut self, s: Stream, seq: u64, second: u32) {
        if self.saw_once(s, seq, second) {
            self.check_order(s, seq, second);
        }
    }

    /// A record of an unkeyed class: its device's records are spread over partitions, so only
    /// loss and duplicates are judged, not order.
    pub fn saw_unkeyed(&mut self, s: Stream, seq: u64, second: u32) {
        self.saw_once(s, seq, second);
    }

    /// Counts the read; false for a duplicate.
    fn saw_once(&mut self, s: Stream, seq: u64, second: u32) -> bool {
        self.reads += 1;
        if !self.seen.insert(s, seq) {
            self.duplicates += 1;
            bump(&mut self.duplicates_by_second, second);
            return false;
        }
        bump(&mut self.seen_by_second, second);
        true
    }

    fn check_order(&mut self, s: Stream, seq: u64, second: u32) {
        let max = self.max_seq.entry(s.key()).or_insert(seq);
        if seq < *max {
            self.reordered += 1;
            bump(&mut self.reordered_by_second, second);
        } else {
            *max = seq;
        }
    }

    pub fn foreign(&mut self) {
        self.foreign += 1;
    }

    /// Distinct messages seen.
    pub fn distinct(&self) -> u64 {
        self.reads - self.duplicates
    }
}

/// The audit's verdict.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AuditCounts {
    /// Messages the target acknowledged.
    pub acked: u64,
    /// Distinct messages of this run read back.
    pub seen: u64,
    /// Acknowledged, never read back.
    pub lost: u64,
    /// Extra copies read back (a message read three times counts two).
    pub duplicates: u64,
    /// Read back after a later message of the same device and class.
    pub reordered: u64,
    /// The producer reported a failure, yet the record arrived.
    pub failed_but_seen: u64,
    /// Read back but neither acknowledged nor failed by the producer.
    pub unacked_seen: u64,
    /// Records in the audited topics from other runs or other writers (skipped).
    pub foreign: u64,
    /// Up to 10 lost messages, as `class/device#seq`, to start an investigation from.
    pub lost_examples: Vec<String>,
}

/// The audit's verdict on the records intended to be sent in one second.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AuditPoint {
    pub acked: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub reordered: u64,
}

/// Per intended send second: acknowledged, lost, duplicated and reordered records.
/// `second_of` gives a record's intended send second (from the plan); it is asked only about
/// the rare records seen without an acknowledgement.
pub fn by_second(
    acks: &AckLedger,
    seen: &SeenLedger,
    second_of: &dyn Fn(Stream, u64) -> Option<u32>,
) -> Vec<AuditPoint> {
    let n = acks
        .acked_by_second
        .len()
        .max(seen.seen_by_second.len())
        .max(seen.duplicates_by_second.len())
        .max(seen.reordered_by_second.len());
    let at = |v: &[u64], i: usize| v.get(i).copied().unwrap_or(0);
    // Seen records that were not acknowledged do not offset lost ones: count them per second.
    let mut seen_unacked = vec![0u64; n];
    for (key, &s) in &seen.seen.words {
        let extra = s & !acks.acked.word(key);
        if extra != 0 {
            for bit in 0..64 {
                if extra & (1 << bit) != 0
                    && let Some(sec) = second_of(Stream::from_key(key.0), (key.1 << 6) | bit)
                    && (sec as usize) < n
                {
                    seen_unacked[sec as usize] += 1;
                }
            }
        }
    }
    (0..n)
        .map(|i| {
            let acked = at(&acks.acked_by_second, i);
            let seen_acked = at(&seen.seen_by_second, i).saturating_sub(seen_unacked[i]);
            AuditPoint {
                acked,
                lost: acked.saturating_sub(seen_acked),
                duplicates: at(&seen.duplicates_by_second, i),
                reordered: at(&seen.reordered_by_second, i),
            }
        })
        .collect()
}

/// Acknowledged records of the given classes that `read` does not hold: the count and up to
/// 10 of them.
pub fn missed(acks: &AckLedger, read: &BitSet, classes: &[u16]) -> (u64, Vec<(Stream, u64)>) {
    let mut n = 0;
    let mut examples = Vec::new();
    for (key, &a) in &acks.acked.words {
        let stream = Stream::from_key(key.0);
        if !classes.contains(&stream.class) {
            continue;
        }
        let m = a & !read.word(key);
        n += u64::from(m.count_ones());
        for bit in (0..64).filter(|b| m & (1 << b) != 0) {
            if examples.len() < 10 {
                examples.push((stream, (key.1 << 6) | bit));
            }
        }
    }
    examples.sort();
    (n, examples)
}

/// Compare what was acknowledged with what was read.
pub fn reconcile(acks: &AckLedger, seen: &SeenLedger, describe: &dyn Fn(Stream, u64) -> String) -> AuditCounts {
    let mut c = AuditCounts {
        acked: acks.acked.len(),
        seen: seen.distinct(),
        duplicates: seen.duplicates,
        reordered: seen.reordered,
        foreign: seen.foreign,
        ..AuditCounts::default()
    };
    let mut lost: Vec<(Stream, u64)> = Vec::new();
    for (key, &a) in &acks.acked.words {
        let missing = a & !seen.seen.word(key);
        c.lost += u64::from(missing.count_ones());
        if missing != 0 && lost.len() < 1000 {
            for bit in 0..64 {
                if missing & (1 << bit) != 0 {
                    lost.push((Stream::from_key(key.0), (key.1 << 6) | bit));
                }
            }
        }
    }
    for (key, &f) in &acks.failed.words {
        c.failed_but_seen += u64::from((f & seen.seen.word(key)).count_ones());
    }
    for (key, &s) in &seen.seen.words {
        let resolved = acks.acked.word(key) | acks.failed.word(key);
        c.unacked_seen += u64::from((s & !resolved).count_ones());
    }
    lost.sort();
    c.lost_examples = lost.iter().take(10).map(|(s, q)| describe(*s, *q)).collect();
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(device: u32) -> Stream {
        Stream { class: 0, device }
    }

    fn describe(s: Stream, seq: u64) -> String {
        format!("{}/{}#{seq}", s.class, s.device)
    }

    #[test]
    fn clean_delivery_has_no_findings() {
        let mut a = AckLedger::default();
        let mut s = SeenLedger::default();
        for d in 0..50 {
            for q in 0..200 {
                a.acked(st(d), q, 0);
                s.saw(st(d), q, 0);
            }
        }
        let c = reconcile(&a, &s, &describe);
        assert_eq!((c.acked, c.seen, c.lost, c.duplicates, c.reordered), (10_000, 10_000, 0, 0, 0));
    }

    #[test]
    fn lost_messages_are_counted_and_named() {
        let mut a = AckLedger::default();
        let mut s = SeenLedger::default();
        for q in 0..100 {
            a.acked(st(1), q, (q / 10) as u32);
            if q != 7 && q != 70 {
                s.saw(st(1), q, (q / 10) as u32);
            }
        }
        let c = reconcile(&a, &s, &describe);
        assert_eq!(c.lost, 2);
        assert_eq!(c.lost_examples, vec!["0/1#7", "0/1#70"]);
        let per_second = by_second(&a, &s, &|_, q| Some((q / 10) as u32));
        let lost: Vec<u64> = per_second.iter().map(|p| p.lost).collect();
        assert_eq!(lost, vec![1, 0, 0, 0, 0, 0, 0, 1, 0, 0]);
    }

    #[test]
    fn duplicates_count_every_extra_copy() {
        let mut a = AckLedger::default();
        let mut s = SeenLedger::default();
        for q in 0..10 {
            a.acked(st(2), q, 0);
            s.saw(st(2), q, 0);
        }
        s.saw(st(2), 3, 0);
        s.saw(st(2), 3, 0);
        s.saw(st(2), 9, 1);
        let c = reconcile(&a, &s, &describe);
        assert_eq!(c.duplicates, 3);
        assert_eq!(c.seen, 10);
        assert_eq!(c.reordered, 0, "a re-read is a duplicate, not a reorder");
    }

    #[test]
    fn reordering_is_per_stream() {
        let mut a = AckLedger::default();
        let mut s = SeenLedger::default();
        for q in 0..5 {
            a.acked(st(1), q, 0);
            a.acked(st(2), q, 0);
        }
        // Stream 1 arrives 0,1,3,2,4: one message (2) came after a later one.
        for q in [0, 1, 3, 2, 4] {
            s.saw(st(1), q, 0);
        }
        // Stream 2 interleaves with stream 1 but is in order itself.
        for q in 0..5 {
            s.saw(st(2), q, 0);
        }
        let c = reconcile(&a, &s, &describe);
        assert_eq!(c.reordered, 1);
        assert_eq!(c.lost, 0);
    }

    #[test]
    fn unkeyed_records_are_judged_for_loss_and_duplicates_but_not_order() {
        let mut a = AckLedger::default();
        let mut s = SeenLedger::default();
        for q in 0..5 {
            a.acked(st(1), q, 0);
        }
        // Spread over partitions: 3 before 2 is expected, 4 arrives twice, 1 never.
        for q in [0, 3, 2, 4, 4] {
            s.saw_unkeyed(st(1), q, 0);
        }
        let c = reconcile(&a, &s, &describe);
        assert_eq!((c.lost, c.duplicates, c.reordered), (1, 1, 0));
    }

    #[test]
    fn failed_but_seen_and_unacked_seen() {
        let mut a = AckLedger::default();
        let mut s = SeenLedger::default();
        a.acked(st(1), 0, 0);
        a.acked(st(1), 3, 0);
        a.failed(st(1), 1);
        a.failed(st(1), 2);
        s.saw(st(1), 0, 0);
        s.saw(st(1), 1, 0);
        s.saw(st(1), 5, 0);
        let c = reconcile(&a, &s, &describe);
        assert_eq!(c.failed_but_seen, 1);
        assert_eq!(c.unacked_seen, 1);
        assert_eq!(c.lost, 1);
        // Per second, seq 3 is lost even though two unacknowledged records were seen that second.
        let p = by_second(&a, &s, &|_, _| Some(0));
        assert_eq!(p[0], AuditPoint { acked: 2, lost: 1, duplicates: 0, reordered: 0 });
    }

    #[test]
    fn ledgers_from_several_producers_merge() {
        let mut a = AckLedger::default();
        let mut b = AckLedger::default();
        a.acked(st(1), 0, 0);
        b.acked(st(1), 1, 0);
        b.acked(st(2), 64, 2);
        a.merge(&b);
        assert_eq!(a.acked.len(), 3);
        assert_eq!(a.acked_by_second, vec![2, 0, 1]);
        assert!(a.acked.contains(st(2), 64));
    }
}
