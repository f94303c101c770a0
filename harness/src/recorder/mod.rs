//! The recorder: histograms, the per-second timeline, consumer lag and the audit ledgers.
//!
//! Drivers never share a histogram. Each driver thread fills its own one-second [`WindowData`] and
//! hands it to the [`Collector`] thread at every second boundary; the collector merges windows into
//! the timeline (with per-window percentiles) and, after warm-up, into the run's totals. Lag is
//! sampled once a second from the [`OffsetBook`], which drivers update with plain atomics.
//!
//! Histograms are HdrHistograms in microseconds with 3 significant digits, tracking 1 µs to 1 h.
//! A value above an hour is recorded as an hour and counted in `clamped`: never dropped silently.

pub mod audit;
mod book;
mod collector;
pub mod hlog;
pub mod monitor;
pub mod partitions;

pub use book::{Acked, OffsetBook, WATCH_SLOTS};
pub use collector::{
    ClassTotals, Collector, CollectorConfig, GroupTotals, LIVE_BUCKETS_US, LiveClass, LiveCounters, LiveGroup,
    LiveHist, Recording, Start,
};

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::clock::{Clock, MonotonicClock};
use crate::report::schema::{GroupPoint, HarnessPoint, LatencySummary, SpectrumPoint, TimelinePoint, WindowLatency};

/// Largest value a histogram tracks, in microseconds (one hour).
pub const HIST_MAX_US: u64 = 3_600_000_000;

/// A latency histogram in microseconds.
#[derive(Clone, Debug)]
pub struct Hist {
    pub h: Histogram<u64>,
    /// Values above [`HIST_MAX_US`], recorded as the maximum.
    pub clamped: u64,
}

impl Hist {
    /// The template every other histogram of a run is cloned from (so that creating one on the
    /// hot path cannot fail).
    pub fn template() -> Result<Hist, hdrhistogram::CreationError> {
        Ok(Hist { h: Histogram::new_with_bounds(1, HIST_MAX_US, 3)?, clamped: 0 })
    }

    /// An empty histogram with the same bounds.
    pub fn empty_like(&self) -> Hist {
        Hist { h: Histogram::new_from(&self.h), clamped: 0 }
    }

    #[inline]
    pub fn record(&mut self, us: u64) {
        if us > HIST_MAX_US {
            self.clamped += 1;
        }
        self.h.saturating_record(us);
    }

    /// Empty, keeping the allocation.
    pub fn reset(&mut self) {
        self.h.reset();
        self.clamped = 0;
    }

    pub fn add(&mut self, other: &Hist) {
        // Same bounds by construction; `add` only fails when the other cannot fit.
        if self.h.add(&other.h).is_err() {
            self.clamped += other.h.len();
        }
        self.clamped += other.clamped;
    }

    pub fn len(&self) -> u64 {
        self.h.len()
    }

    pub fn is_empty(&self) -> bool {
        self.h.is_empty()
    }

    pub fn summary(&self) -> LatencySummary {
        let h = &self.h;
        if h.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: h.len(),
            min_us: h.min(),
            mean_us: (h.mean() * 10.0).round() / 10.0,
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
            clamped: self.clamped,
        }
    }

    /// The percentile spectrum, HdrHistogram style: points at 50%, 75%, 87.5%... (5 per halving
    /// of the distance to 100%), up to the maximum.
    pub fn spectrum(&self) -> Vec<SpectrumPoint> {
        if self.h.is_empty() {
            return Vec::new();
        }
        let mut out: Vec<SpectrumPoint> = Vec::new();
        for v in self.h.iter_quantiles(5) {
            let p = v.quantile_iterated_to() * 100.0;
            let value = self.h.highest_equivalent(v.value_iterated_to());
            if out.last().is_none_or(|l| p > l.percentile) {
                out.push(SpectrumPoint { percentile: (p * 1e6).round() / 1e6, value_us: value });
            }
            if p >= 100.0 {
                break;
            }
        }
        out
    }

    pub fn window(&self) -> WindowLatency {
        let h = &self.h;
        if h.is_empty() {
            return WindowLatency::default();
        }
        WindowLatency {
            count: h.len(),
            p50_us: h.value_at_quantile(0.50),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        }
    }
}

/// One payload class's share of a producer window.
#[derive(Clone, Debug)]
pub struct ClassWindow {
    pub sent: u64,
    pub acked: u64,
    pub failed: u64,
    pub acked_bytes: u64,
    /// Acknowledgement latency from the intended send time.
    pub from_intended: Hist,
    /// Acknowledgement latency from the actual send time.
    pub from_send: Hist,
}

/// Records of one firmware version in a producer window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VersionWindow {
    pub sent: u64,
    pub acked: u64,
    pub acked_bytes: u64,
}

/// One second of one producer instance.
#[derive(Clone, Debug)]
pub struct ProducerWindow {
    pub classes: Vec<ClassWindow>,
    /// Per firmware version (one entry without firmware).
    pub versions: Vec<VersionWindow>,
    /// Actual send time minus intended send time.
    pub send_lag: Hist,
    /// Sends that found librdkafka's queue full and had to wait.
    pub backpressure: u64,
    pub errors: BTreeMap<String, u64>,
}

impl ProducerWindow {
    pub fn new(classes: usize, versions: usize, template: &Hist) -> Self {
        ProducerWindow {
            versions: vec![VersionWindow::default(); versions.max(1)],
            classes: (0..classes)
                .map(|_| ClassWindow {
                    sent: 0,
                    acked: 0,
                    failed: 0,
                    acked_bytes: 0,
                    from_intended: template.empty_like(),
                    from_send: template.empty_like(),
                })
                .collect(),
            send_lag: template.empty_like(),
            backpressure: 0,
            errors: BTreeMap::new(),
        }
    }
    /// One record handed to the client library, `send_lag_us` after its intended time.
    #[inline]
    pub fn sent(&mut self, class: usize, version: usize, send_lag_us: u64) {
        if let Some(v) = self.versions.get_mut(version) {
            v.sent += 1;
        }
        if let Some(w) = self.classes.get_mut(class) {
            w.sent += 1;
        }
        self.send_lag.record(send_lag_us);
    }

    /// Move the send side (sent counts, send lag, backpressure) of `sends` into this window,
    /// leaving `sends` empty. The producer counts sends in a window of its own, without a lock,
    /// and merges it when the second closes.
    pub fn absorb_sends(&mut self, sends: &mut ProducerWindow) {
        for (a, b) in self.versions.iter_mut().zip(sends.versions.iter_mut()) {
            a.sent += std::mem::take(&mut b.sent);
        }
        for (a, b) in self.classes.iter_mut().zip(sends.classes.iter_mut()) {
            a.sent += std::mem::take(&mut b.sent);
        }
        self.send_lag.add(&sends.send_lag);
        sends.send_lag.reset();
        self.backpressure += std::mem::take(&mut sends.backpressure);
    }

    /// One acknowledgement: the record's size, and its latency from the intended and from the
    /// actual send time. This is the producer side's per-sample recording cost
    /// (`benches/recorder.rs` measures it).
    #[inline]
    pub fn acked(&mut self, class: usize, version: usize, bytes: u64, from_intended_us: u64, from_send_us: u64) {
        if let Some(v) = self.versions.get_mut(version) {
            v.acked += 1;
            v.acked_bytes += bytes;
        }
        if let Some(w) = self.classes.get_mut(class) {
            w.acked += 1;
            w.acked_bytes += bytes;
            w.from_intended.record(from_intended_us);
            w.from_send.record(from_send_us);
        }
    }
}

/// One second of one consumer group member.
#[derive(Clone, Debug)]
pub struct ConsumerWindow {
    pub consumed: u64,
    pub bytes: u64,
    /// Records not written by this run (other runs, other writers).
    pub foreign: u64,
    /// Records of this run the group had already read (replays, restarts, redelivery).
    pub rereads: u64,
    /// Value bytes of `rereads` and of `foreign` records (`bytes` counts every record).
    pub reread_bytes: u64,
    pub foreign_bytes: u64,
    /// Records routed to the dead-letter topic.
    pub dead_lettered: u64,
    /// End-to-end latency: consumption time minus the record's intended send time (first reads).
    pub e2e: Hist,
    /// Event age: consumption time minus the record's creation time (first reads). Differs from
    /// `e2e` for records a device buffered while offline.
    pub age: Hist,
    pub errors: BTreeMap<String, u64>,
}

impl ConsumerWindow {
    pub fn new(template: &Hist) -> Self {
        ConsumerWindow {
            consumed: 0,
            bytes: 0,
            foreign: 0,
            rereads: 0,
            reread_bytes: 0,
            foreign_bytes: 0,
            dead_lettered: 0,
            e2e: template.empty_like(),
            age: template.empty_like(),
            errors: BTreeMap::new(),
        }
    }
}

/// What a source hands the collector for one second.
#[derive(Debug)]
pub enum WindowData {
    Producer(Box<ProducerWindow>),
    Consumer { group: usize, window: Box<ConsumerWindow> },
    Audit { reads: u64 },
}

/// A message to the collector.
#[derive(Debug)]
pub enum Msg {
    /// Data of second `second` (since the load started) from source `source`.
    Window { source: usize, second: u32, data: WindowData },
    /// The source will send nothing more.
    Done { source: usize },
}

/// A driver's handle on the collector.
#[derive(Clone, Debug)]
pub struct Source {
    pub id: usize,
    tx: Sender<Msg>,
}

impl Source {
    pub fn send(&self, second: u32, data: WindowData) {
        // The collector outlives every source; if it is gone the run is ending anyway.
        let _ = self.tx.send(Msg::Window { source: self.id, second, data });
    }

    pub fn done(&self) {
        let _ = self.tx.send(Msg::Done { source: self.id });
    }
}

/// Tracks which one-second window a driver is filling.
#[derive(Clone, Copy, Debug, Default)]
pub struct WindowClock {
    second: u32,
}

impl WindowClock {
    /// If `now_us` is past the current window, returns the window to flush and moves on.
    #[inline]
    pub fn roll(&mut self, now_us: u64) -> Option<u32> {
        let s = u32::try_from(now_us / 1_000_000).unwrap_or(u32::MAX);
        if s > self.second {
            let done = self.second;
            self.second = s;
            Some(done)
        } else {
            None
        }
    }

    pub fn current(&self) -> u32 {
        self.second
    }
}

#[cfg(test)]
mod tests;
