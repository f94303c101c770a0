//! librdkafka's statistics: what the clients put on the wire, for the cost drivers.
//!
//! Producers and group members run with `statistics.interval.ms` ([`INTERVAL_MS`]); librdkafka
//! then hands their context a JSON document once per interval, served by the client's own poll.
//! Each document holds the client instance's counters since it was created, so a [`Meter`] keeps
//! the latest counters of each instance (by librdkafka's instance `name`: a restarted group
//! member is a new instance) and their sum is the role's total.
//!
//! Metrics recorded (per role: the producers together, each consumer group's members together):
//! - `tx_bytes`, `rx_bytes`: bytes written to and read from the brokers' sockets (every request
//!   and response: produce and fetch, metadata, heartbeats, commits; after compression);
//! - `tx_requests`, `rx_responses`: requests sent and responses received;
//! - `tx_record_bytes`, `rx_record_bytes`: keys plus values of the records produced or fetched
//!   (librdkafka's `txmsg_bytes`/`rxmsg_bytes`, before compression);
//! - the callbacks served, the time spent parsing them, and documents that could not be read.
//!
//! Bytes a client moved after its last statistics callback are not counted: the producer waits
//! for one more callback after its drain ([`settle`]); a group member closing (restart, end of
//! run) can leave up to one interval of its traffic uncounted, which the report says.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::report::schema::WireCounts;

/// How often librdkafka emits statistics, ms.
pub const INTERVAL_MS: u64 = 1000;

/// The property that turns statistics on, for a driver's properties.
pub fn property() -> (&'static str, String) {
    ("statistics.interval.ms", INTERVAL_MS.to_string())
}

/// The top-level counters of a statistics document (librdkafka's STATISTICS.md).
#[derive(Deserialize)]
struct Doc {
    name: String,
    #[serde(default)]
    tx: u64,
    #[serde(default)]
    tx_bytes: u64,
    #[serde(default)]
    rx: u64,
    #[serde(default)]
    rx_bytes: u64,
    #[serde(default)]
    txmsg_bytes: u64,
    #[serde(default)]
    rxmsg_bytes: u64,
    /// The idempotent producer's state (`eos.idemp_state`), absent in consumers' documents.
    #[serde(default)]
    eos: Option<Eos>,
}

#[derive(Deserialize)]
struct Eos {
    #[serde(default)]
    idemp_state: String,
}

/// What the latest documents of one client instance said.
#[derive(Debug, Default)]
struct Client {
    counts: WireCounts,
    /// Its idempotent producer holds a producer id (`idemp_state` `Assigned`).
    pid_assigned: bool,
    /// Documents read from it.
    documents: u64,
}

#[derive(Debug, Default)]
struct Inner {
    clients: BTreeMap<String, Client>,
    callbacks: u64,
    parse: Duration,
    unreadable: u64,
}

/// The statistics of one role's clients.
#[derive(Debug, Default)]
pub struct Meter {
    inner: Mutex<Inner>,
}

/// What a meter measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Measured {
    pub counts: WireCounts,
    pub callbacks: u64,
    pub parse: Duration,
    pub unreadable: u64,
}

impl Meter {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Take one statistics document (the context's `stats_raw`).
    pub fn record(&self, json: &[u8]) {
        let t = Instant::now();
        let doc = serde_json::from_slice::<Doc>(json);
        let mut inner = self.lock();
        match doc {
            Ok(d) => {
                let c = inner.clients.entry(d.name).or_default();
                c.documents += 1;
                c.pid_assigned = d.eos.is_some_and(|e| e.idemp_state == "Assigned");
                c.counts = WireCounts {
                    tx_bytes: d.tx_bytes,
                    rx_bytes: d.rx_bytes,
                    tx_requests: d.tx,
                    rx_responses: d.rx,
                    tx_record_bytes: d.txmsg_bytes,
                    rx_record_bytes: d.rxmsg_bytes,
                };
            }
            Err(_) => inner.unreadable += 1,
        }
        inner.callbacks += 1;
        inner.parse += t.elapsed();
    }

    /// Whether the latest document of client instance `name` (librdkafka's `rd_kafka_name`)
    /// said its idempotent producer holds a producer id.
    pub fn producer_id_assigned(&self, name: &str) -> bool {
        self.lock().clients.get(name).is_some_and(|c| c.pid_assigned)
    }

    /// Callbacks served so far.
    pub fn callbacks(&self) -> u64 {
        self.lock().callbacks
    }

    /// Documents read so far from client instance `name`.
    pub fn callbacks_of(&self, name: &str) -> u64 {
        self.lock().clients.get(name).map_or(0, |c| c.documents)
    }

    /// The sum over the role's client instances of their latest counters.
    pub fn measured(&self) -> Measured {
        let inner = self.lock();
        let mut counts = WireCounts::default();
        for c in inner.clients.values() {
            counts.add(&c.counts);
        }
        Measured { counts, callbacks: inner.callbacks, parse: inner.parse, unreadable: inner.unreadable }
    }
}

/// Serve client instance `name` (`poll`) until a statistics callback of its own that started
/// after this call arrives, or two intervals and a half pass: its counters then include
/// everything it sent before the call. (Counting every instance's callbacks, as this once did,
/// let one producer of several stop waiting on the others' documents.)
pub fn settle(meter: &Meter, name: &str, mut poll: impl FnMut()) {
    let before = meter.callbacks_of(name);
    let until = Instant::now() + Duration::from_millis(INTERVAL_MS * 5 / 2);
    // The first callback may have been emitted before this call and queued: wait for two.
    while meter.callbacks_of(name) < before + 2 && Instant::now() < until {
        poll();
    }
}

/// Every role's meter, for a run.
#[derive(Debug, Default)]
pub struct Registry {
    pub producers: std::sync::Arc<Meter>,
    groups: Mutex<BTreeMap<usize, std::sync::Arc<Meter>>>,
}

impl Registry {
    /// The meter of consumer group `g` (by its index in the scenario).
    pub fn group(&self, g: usize) -> std::sync::Arc<Meter> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner()).entry(g).or_default().clone()
    }

    /// The producers' and each group's measurements (groups by index; absent: none started).
    pub fn measured(&self, groups: usize) -> (Measured, Vec<Measured>) {
        let map = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        let per_group = (0..groups).map(|g| map.get(&g).map(|m| m.measured()).unwrap_or_default()).collect();
        (self.producers.measured(), per_group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(name: &str, tx: u64, tx_bytes: u64, txmsg: u64) -> String {
        format!(
            r#"{{"name":"{name}","type":"producer","ts":1,"tx":{tx},"tx_bytes":{tx_bytes},"rx":{tx},"rx_bytes":7,"txmsg_bytes":{txmsg},"rxmsg_bytes":0,"brokers":{{}},"topics":{{}}}}"#
        )
    }

    #[test]
    fn a_meter_keeps_each_instances_latest_counters_and_sums_the_instances() {
        let m = Meter::default();
        m.record(doc("p#producer-1", 3, 300, 200).as_bytes());
        m.record(doc("p#producer-1", 5, 900, 600).as_bytes()); // cumulative: replaces
        m.record(doc("c#consumer-2", 2, 50, 0).as_bytes()); // another instance: adds
        let got = m.measured();
        assert_eq!(got.counts.tx_bytes, 950);
        assert_eq!(got.counts.tx_requests, 7);
        assert_eq!(got.counts.rx_responses, 7);
        assert_eq!(got.counts.rx_bytes, 14);
        assert_eq!(got.counts.tx_record_bytes, 600);
        assert_eq!(got.callbacks, 3);
        assert_eq!(got.unreadable, 0);
    }

    #[test]
    fn a_meter_knows_which_producers_hold_a_producer_id() {
        let m = Meter::default();
        let eos = |name: &str, state: &str| {
            format!(r#"{{"name":"{name}","tx":1,"eos":{{"idemp_state":"{state}","producer_id":-1}}}}"#)
        };
        m.record(eos("p#producer-1", "WaitPID").as_bytes());
        m.record(doc("p#producer-2", 1, 1, 1).as_bytes());
        assert!(!m.producer_id_assigned("p#producer-1"));
        m.record(eos("p#producer-1", "Assigned").as_bytes());
        assert!(m.producer_id_assigned("p#producer-1"));
        assert!(!m.producer_id_assigned("p#producer-2"));
        // An epoch bump drops it again until the new id is assigned.
        m.record(eos("p#producer-1", "DrainBump").as_bytes());
        assert!(!m.producer_id_assigned("p#producer-1"));
    }

    #[test]
    fn an_unreadable_document_is_counted_not_taken_as_zero() {
        let m = Meter::default();
        m.record(doc("p#producer-1", 1, 100, 10).as_bytes());
        m.record(b"{not json");
        let got = m.measured();
        assert_eq!(got.counts.tx_bytes, 100);
        assert_eq!(got.unreadable, 1);
    }

    #[test]
    fn settle_returns_after_two_fresh_callbacks_of_its_own_instance() {
        let m = Meter::default();
        let mut polls = 0;
        settle(&m, "p#producer-1", || {
            polls += 1;
            m.record(doc("p#producer-1", polls, polls, 0).as_bytes());
        });
        assert_eq!(polls, 2);
        // Another instance's documents do not count.
        let mut polls = 0;
        settle(&m, "p#producer-1", || {
            polls += 1;
            m.record(doc("p#producer-2", polls, polls, 0).as_bytes());
            if polls >= 4 {
                m.record(doc("p#producer-1", 9, 9, 0).as_bytes());
            }
        });
        assert_eq!(polls, 5);
    }
}
