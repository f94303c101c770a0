//! Per-partition acknowledgements: how the traffic spread over the partitions, and how fast each
//! partition acknowledged (hot partitions).
//!
//! Each producer instance keeps one [`PartitionTally`] for the whole run, fed from its delivery
//! path (a counter and one histogram record per acknowledgement, no allocation after a partition's
//! first acknowledgement), and hands it over when it ends; the tallies are merged and summarised
//! into the report's `partitions` section. Only records intended after warm-up count, like the
//! run's rates and percentiles. At most [`TRACKED_PARTITIONS`] partitions (over all topics, in
//! the offset book's order) are tracked; acknowledgements on the others are counted, and the
//! report says how many.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::HIST_MAX_US;
use crate::report::schema::{PartitionLine, Partitions, TopicPartitions};

/// Partitions tracked, over all topics.
pub const TRACKED_PARTITIONS: usize = 256;

/// One partition's acknowledgements.
#[derive(Clone, Debug)]
pub struct PartitionCell {
    pub acked: u64,
    pub bytes: u64,
    /// Acknowledgement latency from the intended send time, µs, 2 significant digits (34 KiB).
    pub latency: Histogram<u64>,
}

/// One producer's (or the merged) per-partition acknowledgements, by offset-book index.
#[derive(Clone, Debug, Default)]
pub struct PartitionTally {
    cells: Vec<Option<PartitionCell>>,
    /// Acknowledgements on partitions past [`TRACKED_PARTITIONS`].
    pub untracked: u64,
    template: Option<Histogram<u64>>,
}

impl PartitionTally {
    /// A tally for `partitions` partitions (those past the limit are only counted).
    pub fn new(partitions: usize) -> Result<PartitionTally, hdrhistogram::CreationError> {
        Ok(PartitionTally {
            cells: vec![None; partitions.min(TRACKED_PARTITIONS)],
            untracked: 0,
            template: Some(Histogram::new_with_bounds(1, HIST_MAX_US, 2)?),
        })
    }

    /// One acknowledgement on the partition of offset-book index `index`.
    #[inline]
    pub fn acked(&mut self, index: usize, bytes: u64, from_intended_us: u64) {
        let Some(slot) = self.cells.get_mut(index) else {
            self.untracked += 1;
            return;
        };
        let cell = match slot {
            Some(c) => c,
            None => {
                let Some(t) = &self.template else {
                    self.untracked += 1;
                    return;
                };
                slot.insert(PartitionCell { acked: 0, bytes: 0, latency: Histogram::new_from(t) })
            }
        };
        cell.acked += 1;
        cell.bytes += bytes;
        cell.latency.saturating_record(from_intended_us.min(HIST_MAX_US));
    }

    pub fn merge(&mut self, other: &PartitionTally) {
        if self.cells.len() < other.cells.len() {
            self.cells.resize(other.cells.len(), None);
        }
        if self.template.is_none() {
            self.template.clone_from(&other.template);
        }
        for (a, b) in self.cells.iter_mut().zip(&other.cells) {
            let Some(b) = b else { continue };
            match a {
                Some(a) => {
                    a.acked += b.acked;
                    a.bytes += b.bytes;
                    // Same bounds by construction.
                    let _ = a.latency.add(&b.latency);
                }
                None => *a = Some(b.clone()),
            }
        }
        self.untracked += other.untracked;
    }

    /// The report's `partitions`: `names[t]` is topic `t`'s name, `book[i]` the (topic index,
    /// partition) of offset-book index `i`; rates over `measured_s` seconds.
    pub fn summarise(&self, names: &[String], book: &[(usize, i32)], measured_s: f64) -> Partitions {
        let mut topics: BTreeMap<String, TopicPartitions> = BTreeMap::new();
        let mut by_topic: BTreeMap<usize, Vec<(i32, &PartitionCell)>> = BTreeMap::new();
        for (i, &(t, p)) in book.iter().enumerate().take(self.cells.len()) {
            let entry = by_topic.entry(t).or_default();
            if let Some(Some(c)) = self.cells.get(i) {
                entry.push((p, c));
            }
        }
        for (t, cells) in by_topic {
            let Some(name) = names.get(t) else { continue };
            let counted = book.iter().take(self.cells.len()).filter(|(bt, _)| *bt == t).count();
            let total: u64 = cells.iter().map(|(_, c)| c.acked).sum();
            let tracked = book.iter().filter(|(bt, _)| *bt == t).count() == counted;
            topics.insert(name.clone(), topic_summary(&cells, counted, total, measured_s, tracked));
        }
        Partitions {
            tracked_limit: TRACKED_PARTITIONS as u32,
            untracked_acked: self.untracked,
            untracked_partitions: book.len().saturating_sub(self.cells.len()) as u64,
            topics,
            note: None,
        }
    }
}

/// The busiest tenth of a topic's partitions (at least one).
pub fn hottest_count(partitions: usize) -> usize {
    partitions.div_ceil(10).max(1)
}

fn topic_summary(
    cells: &[(i32, &PartitionCell)],
    partitions: usize,
    total: u64,
    measured_s: f64,
    all_tracked: bool,
) -> TopicPartitions {
    let share = |n: u64| if total > 0 { n as f64 / total as f64 } else { 0.0 };
    let rate = |n: u64| if measured_s > 0.0 { n as f64 / measured_s } else { 0.0 };
    let mut lines: Vec<PartitionLine> = cells
        .iter()
        .map(|(p, c)| PartitionLine {
            partition: *p,
            acked: c.acked,
            per_s: (rate(c.acked) * 10.0).round() / 10.0,
            share: (share(c.acked) * 1e4).round() / 1e4,
            p50_us: c.latency.value_at_quantile(0.5),
            p99_us: c.latency.value_at_quantile(0.99),
        })
        .collect();
    lines.sort_by_key(|l| l.partition);
    // Hottest first, ties by partition number.
    let mut order: Vec<usize> = (0..cells.len()).collect();
    order.sort_by(|&a, &b| cells[b].1.acked.cmp(&cells[a].1.acked).then(cells[a].0.cmp(&cells[b].0)));
    let hot_n = hottest_count(partitions).min(order.len());
    let merged = |idx: &[usize]| {
        let mut it = idx.iter().map(|&i| &cells[i].1.latency);
        let first = it.next()?;
        let mut h = first.clone();
        for o in it {
            let _ = h.add(o);
        }
        (!h.is_empty()).then(|| h.value_at_quantile(0.99))
    };
    let (hot, rest) = order.split_at(hot_n);
    let hot_acked: u64 = hot.iter().map(|&i| cells[i].1.acked).sum();
    TopicPartitions {
        partitions: partitions as u32,
        all_tracked,
        acked: total,
        per_s: (rate(total) * 10.0).round() / 10.0,
        even_share: if partitions > 0 { ((1.0 / partitions as f64) * 1e4).round() / 1e4 } else { 0.0 },
        hottest: hot.iter().map(|&i| cells[i].0).collect(),
        hottest_share: (share(hot_acked) * 1e4).round() / 1e4,
        hottest_p99_us: merged(hot),
        rest_p99_us: merged(rest),
        lines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_are_counted_per_partition_merged_and_summarised_per_topic() {
        // Topic 0 with 10 partitions, topic 1 with 2: 12 in the book.
        let book: Vec<(usize, i32)> = (0..10).map(|p| (0, p)).chain([(1, 0), (1, 1)]).collect();
        let names = ["a".to_string(), "b".to_string()];
        let mut x = PartitionTally::new(book.len()).unwrap();
        let mut y = PartitionTally::new(book.len()).unwrap();
        // Partition 3 is hot and slow: 600 acks at 50 ms; 1..=9 (not 3) 50 acks each at 2 ms.
        for _ in 0..300 {
            x.acked(3, 100, 50_000);
            y.acked(3, 100, 50_000);
        }
        for p in (1..10).filter(|p| *p != 3) {
            for _ in 0..50 {
                x.acked(p, 100, 2_000);
            }
        }
        y.acked(11, 10, 1_000);
        y.acked(400, 10, 1_000);
        x.merge(&y);
        let s = x.summarise(&names, &book, 10.0);
        assert_eq!((s.untracked_acked, s.untracked_partitions), (1, 0));
        let a = &s.topics["a"];
        assert_eq!((a.partitions, a.acked, a.lines.len()), (10, 1000, 9), "partition 0 had no ack");
        assert_eq!(a.hottest, [3]);
        assert!((a.hottest_share - 0.6).abs() < 1e-9);
        assert!((a.per_s - 100.0).abs() < 1e-9);
        let hot = a.lines.iter().find(|l| l.partition == 3).unwrap();
        assert_eq!((hot.acked, hot.per_s), (600, 60.0));
        assert!(hot.p99_us >= 49_000 && hot.p99_us <= 51_000, "{hot:?}");
        assert!(a.hottest_p99_us.unwrap() >= 49_000);
        assert!(a.rest_p99_us.unwrap() <= 2_100);
        let b = &s.topics["b"];
        assert_eq!((b.acked, b.hottest.as_slice(), b.hottest_share), (1, &[1][..], 1.0));
        assert_eq!(b.rest_p99_us, None);
    }

    #[test]
    fn partitions_past_the_limit_are_counted_not_tracked() {
        let book: Vec<(usize, i32)> = (0..300).map(|p| (0, p)).collect();
        let mut x = PartitionTally::new(book.len()).unwrap();
        x.acked(299, 1, 1);
        x.acked(0, 1, 1);
        let s = x.summarise(&["t".to_string()], &book, 1.0);
        assert_eq!((s.untracked_acked, s.untracked_partitions), (1, 44));
        assert!(!s.topics["t"].all_tracked);
        assert_eq!(s.topics["t"].partitions, 256);
    }
}
