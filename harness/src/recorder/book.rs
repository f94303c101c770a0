//! The offset book: shared, lock-free partition ends and reader positions (lag), and the
//! acknowledgement watches that time a fault's unavailability.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};

/// Shared, lock-free offsets: how far the log has grown (from acknowledgements) and how far each
/// reader has read, per partition. Lag = end - position, summed over a reader's partitions.
#[derive(Debug)]
pub struct OffsetBook {
    /// (topic index, partition) of each flattened partition index.
    pub partitions: Vec<(usize, i32)>,
    base: Vec<usize>,
    ends: Vec<AtomicI64>,
    acked_bytes: Vec<AtomicU64>,
    acked_count: Vec<AtomicU64>,
    readers: Vec<Reader>,
    watches: Vec<Watch>,
    /// Bit `i` set: watch slot `i` is armed.
    watch_mask: AtomicU32,
}

/// Number of faults whose acknowledgement recovery can be watched at the same time.
pub const WATCH_SLOTS: usize = 8;

/// Per partition, the first acknowledgement of a record *sent* after `since_us`: when a fault
/// starts, this says when each partition accepted writes again.
#[derive(Debug)]
struct Watch {
    since_us: AtomicU64,
    first_ack_us: Vec<AtomicU64>,
}

#[derive(Debug)]
struct Reader {
    partitions: Vec<usize>,
    positions: Vec<AtomicI64>,
    /// Per flattened partition: read by this process at least once.
    touched: Vec<AtomicBool>,
    /// Only the partitions this process read count (a group with members on other shards of a
    /// campaign: they read the rest, and their lag is theirs).
    local_only: bool,
}

/// What [`OffsetBook::acked_many`] adds to one partition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Acked {
    /// The highest offset acknowledged.
    pub last_offset: i64,
    pub bytes: u64,
    pub count: u64,
    /// When the latest-sent of these records was sent.
    pub latest_send_us: u64,
}

impl OffsetBook {
    /// `partitions[t]` is the partition count of topic `t`; `start_ends` the log end offsets at
    /// the start, flattened.
    pub fn new(partitions: &[u32], start_ends: &[i64]) -> Self {
        let mut base = Vec::with_capacity(partitions.len());
        let mut flat = Vec::new();
        for (t, &n) in partitions.iter().enumerate() {
            base.push(flat.len());
            for p in 0..n {
                flat.push((t, p as i32));
            }
        }
        let ends =
            flat.iter().enumerate().map(|(i, _)| AtomicI64::new(start_ends.get(i).copied().unwrap_or(0))).collect();
        OffsetBook {
            watches: (0..WATCH_SLOTS)
                .map(|_| Watch {
                    since_us: AtomicU64::new(u64::MAX),
                    first_ack_us: flat.iter().map(|_| AtomicU64::new(u64::MAX)).collect(),
                })
                .collect(),
            watch_mask: AtomicU32::new(0),
            acked_bytes: flat.iter().map(|_| AtomicU64::new(0)).collect(),
            acked_count: flat.iter().map(|_| AtomicU64::new(0)).collect(),
            partitions: flat,
            base,
            ends,
            readers: Vec::new(),
        }
    }

    /// Register a reader of `topics` starting at `start[i]` for flattened partition `i`.
    pub fn add_reader(&mut self, topics: &[usize], start: &[i64]) -> usize {
        let partitions: Vec<usize> =
            (0..self.partitions.len()).filter(|i| topics.contains(&self.partitions[*i].0)).collect();
        let positions =
            (0..self.partitions.len()).map(|i| AtomicI64::new(start.get(i).copied().unwrap_or(0))).collect();
        let touched = (0..self.partitions.len()).map(|_| AtomicBool::new(false)).collect();
        self.readers.push(Reader { partitions, positions, touched, local_only: false });
        self.readers.len() - 1
    }

    /// Count only the partitions this process reads for `reader` (see [`Reader::local_only`]).
    pub fn set_local_only(&mut self, reader: usize) {
        if let Some(r) = self.readers.get_mut(reader) {
            r.local_only = true;
        }
    }

    #[inline]
    pub fn index(&self, topic: usize, partition: i32) -> Option<usize> {
        let base = *self.base.get(topic)?;
        let i = base + usize::try_from(partition).ok()?;
        (self.partitions.get(i)?.0 == topic).then_some(i)
    }

    /// A record sent at `send_us` was acknowledged at `ack_us` at `offset` of partition `idx`.
    #[inline]
    pub fn acked(&self, idx: usize, offset: i64, bytes: u64, send_us: u64, ack_us: u64) {
        self.acked_many(idx, Acked { last_offset: offset, bytes, count: 1, latest_send_us: send_us }, ack_us);
    }

    /// Records of partition `idx` acknowledged together at `ack_us` (one produce response):
    /// three atomic operations for all of them, not three per record.
    #[inline]
    pub fn acked_many(&self, idx: usize, a: Acked, ack_us: u64) {
        if let Some(e) = self.ends.get(idx) {
            e.fetch_max(a.last_offset + 1, Ordering::Relaxed);
            self.acked_bytes[idx].fetch_add(a.bytes, Ordering::Relaxed);
            self.acked_count[idx].fetch_add(a.count, Ordering::Relaxed);
            let mask = self.watch_mask.load(Ordering::Relaxed);
            if mask != 0 {
                for (slot, w) in self.watches.iter().enumerate() {
                    // Some record of the batch was sent after the watch began.
                    if mask & (1 << slot) != 0 && a.latest_send_us >= w.since_us.load(Ordering::Relaxed) {
                        w.first_ack_us[idx].fetch_min(ack_us, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    /// Start watching for the first acknowledgement, per partition, of records sent from
    /// `since_us` on. `None` when every slot is in use.
    pub fn arm_watch(&self, since_us: u64) -> Option<usize> {
        for (slot, w) in self.watches.iter().enumerate() {
            if w.since_us.compare_exchange(u64::MAX, since_us, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                for a in &w.first_ack_us {
                    a.store(u64::MAX, Ordering::SeqCst);
                }
                self.watch_mask.fetch_or(1 << slot, Ordering::SeqCst);
                return Some(slot);
            }
        }
        None
    }

    /// First acknowledgement time per flattened partition (`None`: none yet).
    pub fn watch_result(&self, slot: usize) -> Vec<Option<u64>> {
        self.watches.get(slot).map_or_else(Vec::new, |w| {
            w.first_ack_us.iter().map(|a| Some(a.load(Ordering::Relaxed)).filter(|v| *v != u64::MAX)).collect()
        })
    }

    pub fn release_watch(&self, slot: usize) {
        if let Some(w) = self.watches.get(slot) {
            self.watch_mask.fetch_and(!(1 << slot), Ordering::SeqCst);
            w.since_us.store(u64::MAX, Ordering::SeqCst);
        }
    }

    /// Flattened partition indexes of `topic` (by index).
    pub fn partitions_of(&self, topic: usize) -> Vec<usize> {
        (0..self.partitions.len()).filter(|i| self.partitions[*i].0 == topic).collect()
    }

    #[inline]
    pub fn consumed(&self, reader: usize, idx: usize, offset: i64) {
        if let Some(r) = self.readers.get(reader)
            && let Some(p) = r.positions.get(idx)
        {
            p.store(offset + 1, Ordering::Relaxed);
            if r.local_only {
                r.touched[idx].store(true, Ordering::Relaxed);
            }
        }
    }

    /// A reader reached the end of a partition (`offset` is the next to read).
    pub fn caught_up(&self, reader: usize, idx: usize, offset: i64) {
        if let Some(p) = self.readers.get(reader).and_then(|r| r.positions.get(idx)) {
            p.fetch_max(offset, Ordering::Relaxed);
        }
    }

    pub fn lag(&self, reader: usize) -> u64 {
        let Some(r) = self.readers.get(reader) else { return 0 };
        r.partitions
            .iter()
            .filter(|&&i| !r.local_only || r.touched[i].load(Ordering::Relaxed))
            .map(|&i| {
                let end = self.ends[i].load(Ordering::Relaxed);
                let pos = r.positions[i].load(Ordering::Relaxed);
                u64::try_from(end - pos).unwrap_or(0)
            })
            .sum()
    }

    /// Per flattened partition: whether `reader` has read up to the acknowledged end (partitions it
    /// does not read count as read).
    pub fn fully_read(&self, reader: usize) -> Vec<bool> {
        let mut out = vec![true; self.ends.len()];
        if let Some(r) = self.readers.get(reader) {
            for &i in &r.partitions {
                out[i] = r.positions[i].load(Ordering::Relaxed) >= self.ends[i].load(Ordering::Relaxed);
            }
        }
        out
    }

    /// Acknowledged bytes and records per flattened partition.
    pub fn acked_per_partition(&self) -> Vec<(u64, u64)> {
        self.acked_bytes
            .iter()
            .zip(&self.acked_count)
            .map(|(b, c)| (b.load(Ordering::Relaxed), c.load(Ordering::Relaxed)))
            .collect()
    }
}
