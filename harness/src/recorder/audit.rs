//! The delivery audit's bookkeeping: which messages were acknowledged, which failed, which were
//! read back, how often and in what order. Pure logic, fed by the drivers.
//!
//! A message is identified by its stream (payload class and device) and its sequence number in
//! that stream. Each side keeps one bit per message in sparse 64-bit words, so memory follows the
//! number of messages, not the size of the fleet.
//!
//! Definitions (per stream, i.e. per device and class, which is one partition):
//! - **lost**: acknowledged, never read back;
//! - **duplicate**: read back more than once at distinct offsets, i.e. the target holds more than
//!   one copy (each extra copy counts). The reader reading an offset again (its fetch position
//!   went back, e.g. after a leader change) is a **re-read**, counted apart: it says nothing about
//!   the log;
//! - **reordered**: read back after a higher sequence number of the same stream had been read
//!   (first copies only: a duplicate is not also a reorder);
//! - **failed but seen**: the producer reported an error, yet the record arrived;
//! - **unacked seen**: read back but never resolved by the producer (should be zero).

use crate::plan::Plan;
use crate::report::schema::{AuditCounts, AuditPoint};

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

    /// Bytes of heap the set holds: its table's capacity (a word and its key per slot, plus
    /// hashbrown's control byte), not counting the allocator's own overhead.
    pub fn heap_bytes(&self) -> u64 {
        map_bytes(&self.words)
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

fn map_bytes<K, V>(m: &IntMap<K, V>) -> u64 {
    (m.capacity() * (std::mem::size_of::<(K, V)>() + 1)) as u64
}

/// What the producer side knows: acknowledged and failed messages.
#[derive(Clone, Debug, Default)]
pub struct AckLedger {
    pub acked: BitSet,
    pub failed: BitSet,
    /// Acknowledged records by intended send second.
    pub acked_by_second: Vec<u64>,
    /// Per stream, the (flattened) partition its records were acknowledged in, or [`SEVERAL`]:
    /// what lets the audit tell a record it read past (lost) from one it never reached
    /// (unverified).
    partition: IntMap<u64, u32>,
}

/// A stream whose records went to more than one partition (an unkeyed class).
pub const SEVERAL: u32 = u32::MAX;

/// The last second a by-second count is kept for: 31 days into a run, four times the longest
/// load validation allows (a week) plus its drain. A record that claims a
/// later intended second (a corrupt or foreign stamp that passed the run check) still counts in
/// the totals, not on the timeline, so a bad value cannot make a vector of billions of seconds.
pub const LAST_TIMELINE_SECOND: u32 = 31 * 24 * 3600;

fn bump(v: &mut Vec<u64>, second: u32) {
    if second > LAST_TIMELINE_SECOND {
        return;
    }
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
    /// `second`: the record's intended send second; `partition`: the flattened partition index
    /// it was acknowledged in.
    pub fn acked(&mut self, s: Stream, seq: u64, second: u32, partition: usize) {
        if self.acked.insert(s, seq) {
            bump(&mut self.acked_by_second, second);
        }
        let p = u32::try_from(partition).unwrap_or(SEVERAL);
        let known = self.partition.entry(s.key()).or_insert(p);
        if *known != p {
            *known = SEVERAL;
        }
    }

    /// Bytes of heap the ledger holds (see [`BitSet::heap_bytes`]).
    pub fn heap_bytes(&self) -> u64 {
        self.acked.heap_bytes()
            + self.failed.heap_bytes()
            + map_bytes(&self.partition)
            + 8 * self.acked_by_second.capacity() as u64
    }

    /// The partition a stream's records were acknowledged in, if one.
    pub fn partition_of(&self, s: Stream) -> Option<usize> {
        self.partition.get(&s.key()).filter(|p| **p != SEVERAL).map(|p| *p as usize)
    }

    pub fn failed(&mut self, s: Stream, seq: u64) {
        self.failed.insert(s, seq);
    }

    pub fn merge(&mut self, other: &AckLedger) {
        self.acked.merge(&other.acked);
        self.failed.merge(&other.failed);
        merge_counts(&mut self.acked_by_second, &other.acked_by_second);
        for (k, p) in &other.partition {
            let known = self.partition.entry(*k).or_insert(*p);
            if known != p {
                *known = SEVERAL;
            }
        }
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
    /// Reads of an offset the reader had already read (not counted in `reads`).
    pub rereads: u64,
    /// The first few duplicates: the record and where its extra copy was read (`topic[p]@offset`).
    pub duplicate_at: Vec<(Stream, u64, String)>,
    /// Records of other runs or not written by fleetstorm.
    pub foreign: u64,
    /// Records of this campaign sent by other shards (each shard audits its own devices').
    pub other_shards: u64,
    /// By intended send second: distinct records seen, extra copies, reordered.
    pub seen_by_second: Vec<u64>,
    pub duplicates_by_second: Vec<u64>,
    pub reordered_by_second: Vec<u64>,
}

impl SeenLedger {
    /// Record one read of (stream, seq), intended to be sent in `second`; false for a duplicate.
    pub fn saw(&mut self, s: Stream, seq: u64, second: u32) -> bool {
        let fresh = self.saw_once(s, seq, second);
        if fresh {
            self.check_order(s, seq, second);
        }
        fresh
    }

    /// A record of an unkeyed class: its device's records are spread over partitions, so only
    /// loss and duplicates are judged, not order. False for a duplicate.
    pub fn saw_unkeyed(&mut self, s: Stream, seq: u64, second: u32) -> bool {
        self.saw_once(s, seq, second)
    }

    /// The reader read an offset it had read before: not a copy in the log.
    pub fn reread(&mut self) {
        self.rereads += 1;
    }

    /// Where a duplicate's extra copy was read (`where_` lazily formatted: only the first 10 are
    /// kept).
    pub fn duplicate_at(&mut self, s: Stream, seq: u64, where_: impl FnOnce() -> String) {
        if self.duplicate_at.len() < 10 {
            self.duplicate_at.push((s, seq, where_()));
        }
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

    pub fn other_shard(&mut self) {
        self.other_shards += 1;
    }

    /// Bytes of heap the ledger holds (see [`BitSet::heap_bytes`]).
    pub fn heap_bytes(&self) -> u64 {
        let seconds =
            self.seen_by_second.capacity() + self.duplicates_by_second.capacity() + self.reordered_by_second.capacity();
        self.seen.heap_bytes() + map_bytes(&self.max_seq) + 8 * seconds as u64
    }

    /// The highest sequence number read of a keyed stream.
    pub fn max_seq(&self, s: Stream) -> Option<u64> {
        self.max_seq.get(&s.key()).copied()
    }

    /// Distinct messages seen.
    pub fn distinct(&self) -> u64 {
        self.reads - self.duplicates
    }
}

/// How far the audit reader got: per flattened partition, whether it read everything that was
/// acknowledged there. A record acknowledged but never seen is **lost** only when the reader read
/// past it; otherwise it is **unverified** (the reader never reached it), never blamed on the
/// target.
#[derive(Clone, Debug, Default)]
pub struct Reach {
    /// Per flattened partition: read up to its acknowledged end. Empty: the reader read everything.
    pub fully_read: Vec<bool>,
    /// Acknowledgements come in sequence order within a keyed stream's partition (the idempotent
    /// producer guarantees it): a stream's record below the highest sequence read of that stream
    /// lies before the reader's position, even in a partition not read to its end.
    pub ordered: bool,
}

impl Reach {
    pub fn complete(&self) -> bool {
        self.fully_read.iter().all(|r| *r)
    }

    /// Did the reader read past (stream, seq), which it did not see?
    fn read_past(&self, acks: &AckLedger, seen: &SeenLedger, s: Stream, seq: u64) -> bool {
        if self.complete() {
            return true;
        }
        match acks.partition_of(s) {
            Some(p) if self.fully_read.get(p).copied().unwrap_or(false) => true,
            Some(_) if self.ordered => seen.max_seq(s).is_some_and(|m| m > seq),
            _ => false,
        }
    }
}

/// Records named by stream and sequence number.
type Records = Vec<(Stream, u64)>;

/// Acknowledged records never seen, in (stream, seq) order: those the reader read past (lost) and
/// those it never reached (unverified).
fn missing(acks: &AckLedger, seen: &SeenLedger, reach: &Reach) -> (Records, Records) {
    let (mut lost, mut unverified) = (Vec::new(), Vec::new());
    for (key, &a) in &acks.acked.words {
        let m = a & !seen.seen.word(key);
        for bit in (0..64).filter(|b| m & (1 << b) != 0) {
            let (s, seq) = (Stream::from_key(key.0), (key.1 << 6) | bit);
            if reach.read_past(acks, seen, s, seq) { lost.push((s, seq)) } else { unverified.push((s, seq)) }
        }
    }
    lost.sort_unstable();
    unverified.sort_unstable();
    (lost, unverified)
}

/// Per intended send second: acknowledged, lost, unverified, duplicated and reordered records.
/// `second_of` gives a record's intended send second (from the plan); it is asked only about
/// the rare records seen without an acknowledgement, and about unverified ones.
pub fn by_second(
    acks: &AckLedger,
    seen: &SeenLedger,
    reach: &Reach,
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
    // With an incomplete audit, lost and unverified records are placed by the second the plan
    // gives them (their creation second: for records buffered by a wave, earlier than intended),
    // so that every second's figures add up to the run's.
    let (mut lost, mut unverified) = (vec![0u64; n], vec![0u64; n]);
    if !reach.complete() && n > 0 {
        let (l, u) = missing(acks, seen, reach);
        let place = |v: &mut Vec<u64>, (s, seq): (Stream, u64)| {
            let sec = second_of(s, seq).map_or(n - 1, |x| (x as usize).min(n - 1));
            v[sec] += 1;
        };
        l.into_iter().for_each(|r| place(&mut lost, r));
        u.into_iter().for_each(|r| place(&mut unverified, r));
    }
    (0..n)
        .map(|i| {
            let acked = at(&acks.acked_by_second, i);
            let seen_acked = at(&seen.seen_by_second, i).saturating_sub(seen_unacked[i]);
            AuditPoint {
                acked,
                lost: if reach.complete() { acked.saturating_sub(seen_acked) } else { lost[i] },
                unverified: unverified[i],
                duplicates: at(&seen.duplicates_by_second, i),
                reordered: at(&seen.reordered_by_second, i),
            }
        })
        .collect()
}

/// The audit's verdict on a run: the counts, and per intended send second.
#[derive(Clone, Debug)]
pub struct Verdict {
    pub counts: AuditCounts,
    pub by_second: Vec<AuditPoint>,
}

impl Verdict {
    /// Reconcile what the producers acknowledged with what the audit reader saw; records are named
    /// `class/device#seq` from the plan.
    pub fn of(plan: &Plan, acks: &AckLedger, seen: &SeenLedger, reach: &Reach) -> Verdict {
        let by_second = by_second(acks, seen, reach, &|st, seq| {
            // Only asked about records seen without an acknowledgement (rare) and unverified ones.
            // Their creation second stands in for the intended send second, which differs only
            // for records buffered by a wave.
            plan.created_us(usize::from(st.class), u64::from(st.device), seq).map(|us| (us / 1_000_000) as u32)
        });
        Verdict { counts: reconcile(acks, seen, reach, &|st, seq| describe(plan, st, seq)), by_second }
    }
}

/// A record as people read it: `class/device#seq`.
fn describe(plan: &Plan, st: Stream, seq: u64) -> String {
    let class = plan.classes.get(usize::from(st.class)).map_or("?", |c| c.name.as_str());
    format!("{class}/{}#{seq}", plan.ids.render(u64::from(st.device)))
}

/// What a consumer group reading `topics` missed: acknowledged records of the classes written to
/// those topics that the group never read, with up to 10 named.
pub fn group_missed(plan: &Plan, acks: &AckLedger, topics: &[String], read: &BitSet) -> (u64, Vec<String>) {
    let classes: Vec<u16> = plan
        .classes
        .iter()
        .enumerate()
        .filter(|(_, c)| topics.contains(&plan.topics[c.topic]))
        .map(|(i, _)| i as u16)
        .collect();
    let (n, examples) = missed(acks, read, &classes);
    (n, examples.into_iter().map(|(st, seq)| describe(plan, st, seq)).collect())
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
pub fn reconcile(
    acks: &AckLedger,
    seen: &SeenLedger,
    reach: &Reach,
    describe: &dyn Fn(Stream, u64) -> String,
) -> AuditCounts {
    let mut c = AuditCounts {
        acked: acks.acked.len(),
        seen: seen.distinct(),
        duplicates: seen.duplicates,
        reordered: seen.reordered,
        rereads: seen.rereads,
        foreign: seen.foreign,
        other_shards: seen.other_shards,
        duplicate_examples: seen
            .duplicate_at
            .iter()
            .map(|(s, q, at)| format!("{} at {at}", describe(*s, *q)))
            .collect(),
        ..AuditCounts::default()
    };
    let (lost, unverified) = missing(acks, seen, reach);
    c.lost = lost.len() as u64;
    c.unverified = unverified.len() as u64;
    c.lost_examples = lost.iter().take(10).map(|(s, q)| describe(*s, *q)).collect();
    for (key, &f) in &acks.failed.words {
        c.failed_but_seen += u64::from((f & seen.seen.word(key)).count_ones());
    }
    for (key, &s) in &seen.seen.words {
        let resolved = acks.acked.word(key) | acks.failed.word(key);
        c.unacked_seen += u64::from((s & !resolved).count_ones());
    }
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
                a.acked(st(d), q, 0, 0);
                s.saw(st(d), q, 0);
            }
        }
        let c = reconcile(&a, &s, &Reach::default(), &describe);
        assert_eq!((c.acked, c.seen, c.lost, c.duplicates, c.reordered), (10_000, 10_000, 0, 0, 0));
    }

    #[test]
    fn lost_messages_are_counted_and_named() {
        let mut a = AckLedger::default();
        let mut s = SeenLedger::default();
        for q in 0..100 {
            a.acked(st(1), q, (q / 10) as u32, 0);
            if q != 7 && q != 70 {
                s.saw(st(1), q, (q / 10) as u32);
            }
        }
        let c = reconcile(&a, &s, &Reach::default(), &describe);
        assert_eq!(c.lost, 2);
        assert_eq!(c.lost_examples, vec!["0/1#7", "0/1#70"]);
        let per_second = by_second(&a, &s, &Reach::default(), &|_, q| Some((q / 10) as u32));
        let lost: Vec<u64> = per_second.iter().map(|p| p.lost).collect();
        assert_eq!(lost, vec![1, 0, 0, 0, 0, 0, 0, 1, 0, 0]);
    }

    #[test]
    fn ledgers_cost_a_few_bytes_per_record_not_per_event_object() {
        let (mut a, mut s) = (AckLedger::default(), SeenLedger::default());
        for d in 0..1_000u32 {
            for q in 0..200u64 {
                a.acked(st(d), q, 0, (d % 24) as usize);
                s.saw(st(d), q, 0);
            }
        }
        let per_record = (a.heap_bytes() + s.heap_bytes()) as f64 / 200_000.0;
        assert!(per_record > 0.1 && per_record < 4.0, "{per_record} bytes per record for both ledgers");
    }

    #[test]
    fn duplicates_are_located_and_described() {
        let mut s = SeenLedger::default();
        assert!(s.saw(st(4), 7, 0));
        assert!(!s.saw(st(4), 7, 0));
        s.duplicate_at(st(4), 7, || "t[1]@99".into());
        s.reread();
        let mut a = AckLedger::default();
        a.acked(st(4), 7, 0, 0);
        let c = reconcile(&a, &s, &Reach::default(), &|s, q| format!("c/{}#{q}", s.device));
        assert_eq!((c.duplicates, c.rereads), (1, 1));
        assert_eq!(c.duplicate_examples, vec!["c/4#7 at t[1]@99".to_string()]);
        for i in 0..20 {
            s.duplicate_at(st(4), i, || format!("t[0]@{i}"));
        }
        assert_eq!(s.duplicate_at.len(), 10, "only the first ten are kept");
    }

    #[test]
    fn duplicates_count_every_extra_copy() {
        let mut a = AckLedger::default();
        let mut s = SeenLedger::default();
        for q in 0..10 {
            a.acked(st(2), q, 0, 0);
            s.saw(st(2), q, 0);
        }
        s.saw(st(2), 3, 0);
        s.saw(st(2), 3, 0);
        s.saw(st(2), 9, 1);
        let c = reconcile(&a, &s, &Reach::default(), &describe);
        assert_eq!(c.duplicates, 3);
        assert_eq!(c.seen, 10);
        assert_eq!(c.reordered, 0, "a re-read is a duplicate, not a reorder");
    }

    #[test]
    fn reordering_is_per_stream() {
        let mut a = AckLedger::default();
        let mut s = SeenLedger::default();
        for q in 0..5 {
            a.acked(st(1), q, 0, 0);
            a.acked(st(2), q, 0, 0);
        }
        // Stream 1 arrives 0,1,3,2,4: one message (2) came after a later one.
        for q in [0, 1, 3, 2, 4] {
            s.saw(st(1), q, 0);
        }
        // Stream 2 interleaves with stream 1 but is in order itself.
        for q in 0..5 {
            s.saw(st(2), q, 0);
        }
        let c = reconcile(&a, &s, &Reach::default(), &describe);
        assert_eq!(c.reordered, 1);
        assert_eq!(c.lost, 0);
    }

    #[test]
    fn unkeyed_records_are_judged_for_loss_and_duplicates_but_not_order() {
        let mut a = AckLedger::default();
        let mut s = SeenLedger::default();
        for q in 0..5 {
            a.acked(st(1), q, 0, 0);
        }
        // Spread over partitions: 3 before 2 is expected, 4 arrives twice, 1 never.
        for q in [0, 3, 2, 4, 4] {
            s.saw_unkeyed(st(1), q, 0);
        }
        let c = reconcile(&a, &s, &Reach::default(), &describe);
        assert_eq!((c.lost, c.duplicates, c.reordered), (1, 1, 0));
    }

    #[test]
    fn failed_but_seen_and_unacked_seen() {
        let mut a = AckLedger::default();
        let mut s = SeenLedger::default();
        a.acked(st(1), 0, 0, 0);
        a.acked(st(1), 3, 0, 0);
        a.failed(st(1), 1);
        a.failed(st(1), 2);
        s.saw(st(1), 0, 0);
        s.saw(st(1), 1, 0);
        s.saw(st(1), 5, 0);
        let c = reconcile(&a, &s, &Reach::default(), &describe);
        assert_eq!(c.failed_but_seen, 1);
        assert_eq!(c.unacked_seen, 1);
        assert_eq!(c.lost, 1);
        // Per second, seq 3 is lost even though two unacknowledged records were seen that second.
        let p = by_second(&a, &s, &Reach::default(), &|_, _| Some(0));
        assert_eq!(p[0], AuditPoint { acked: 2, lost: 1, unverified: 0, duplicates: 0, reordered: 0 });
    }

    #[test]
    fn ledgers_from_several_producers_merge() {
        let mut a = AckLedger::default();
        let mut b = AckLedger::default();
        a.acked(st(1), 0, 0, 0);
        b.acked(st(1), 1, 0, 0);
        b.acked(st(2), 64, 2, 0);
        a.merge(&b);
        assert_eq!(a.acked.len(), 3);
        assert_eq!(a.acked_by_second, vec![2, 0, 1]);
        assert!(a.acked.contains(st(2), 64));
    }

    /// Device 1 on partition 0 (read to its end), device 2 on partition 1 (not): both streams
    /// acknowledged 0..10, the reader saw 0..5 of device 1 and 0..5 of device 2 but seq 3.
    fn half_read(ordered: bool) -> (AckLedger, SeenLedger, Reach) {
        let (mut a, mut s) = (AckLedger::default(), SeenLedger::default());
        for q in 0..10 {
            a.acked(st(1), q, 0, 0);
            a.acked(st(2), q, 0, 1);
        }
        for q in 0..5 {
            s.saw(st(1), q, 0);
            if q != 3 {
                s.saw(st(2), q, 0);
            }
        }
        (a, s, Reach { fully_read: vec![true, false], ordered })
    }

    #[test]
    fn a_record_the_reader_read_past_is_lost_and_one_it_never_reached_is_unverified() {
        let describe = |s: Stream, q: u64| format!("{}#{q}", s.device);
        let (a, s, reach) = half_read(true);
        let c = reconcile(&a, &s, &reach, &describe);
        // Device 1: partition 0 was read to its end, so 5..10 are lost. Device 2: seq 3 lies below
        // the highest sequence read (4), so the reader passed it; 5..10 were never reached.
        assert_eq!((c.lost, c.unverified), (6, 5));
        assert_eq!(c.lost_examples, vec!["1#5", "1#6", "1#7", "1#8", "1#9", "2#3"]);
        // Without ordered acknowledgements the gap in device 2 proves nothing either.
        let (a, s, reach) = half_read(false);
        let c = reconcile(&a, &s, &reach, &describe);
        assert_eq!((c.lost, c.unverified), (5, 6));
        // A reader that read everything makes every missing record lost (the old behaviour).
        let (a, s, _) = half_read(true);
        let c = reconcile(&a, &s, &Reach { fully_read: vec![true, true], ordered: true }, &describe);
        assert_eq!((c.lost, c.unverified), (11, 0));
    }

    #[test]
    fn a_stream_spread_over_partitions_is_unverified_until_every_partition_was_read() {
        let (mut a, s) = (AckLedger::default(), SeenLedger::default());
        a.acked(st(7), 0, 0, 0);
        a.acked(st(7), 1, 0, 1);
        assert_eq!(a.partition_of(st(7)), None, "several partitions");
        let describe = |_: Stream, q: u64| q.to_string();
        let part = Reach { fully_read: vec![true, false], ordered: true };
        assert_eq!(reconcile(&a, &s, &part, &describe).unverified, 2);
        let all = Reach { fully_read: vec![true, true], ordered: true };
        assert_eq!(reconcile(&a, &s, &all, &describe).lost, 2);
    }

    #[test]
    fn seconds_split_lost_from_unverified() {
        let (a, s, reach) = half_read(true);
        let p = by_second(&a, &s, &reach, &|_, _| Some(0));
        assert_eq!((p[0].acked, p[0].lost, p[0].unverified), (20, 6, 5));
        // A second beyond the acknowledged ones is clamped to the last: nothing is dropped.
        let p = by_second(&a, &s, &reach, &|_, _| Some(9));
        assert_eq!((p.len(), p[0].lost, p[0].unverified), (1, 6, 5));
    }

    #[test]
    fn an_absurd_intended_second_counts_in_the_totals_but_grows_no_timeline() {
        let (mut a, mut s) = (AckLedger::default(), SeenLedger::default());
        a.acked(st(1), 0, u32::MAX, 0);
        assert!(s.saw(st(1), 0, u32::MAX));
        assert!(!s.saw(st(1), 0, LAST_TIMELINE_SECOND + 1));
        assert!(s.saw(st(1), 1, LAST_TIMELINE_SECOND));
        assert_eq!((a.acked.len(), s.reads, s.duplicates), (1, 3, 1));
        assert!(a.acked_by_second.is_empty() && s.duplicates_by_second.is_empty());
        assert_eq!(s.seen_by_second.len(), LAST_TIMELINE_SECOND as usize + 1);
        assert!(a.heap_bytes() + s.heap_bytes() < 64 << 20);
    }
}
