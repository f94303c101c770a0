//! A consumer group as the run sees it: its id, its members' properties, the start offsets
//! committed before it joins, the ledger of what it read, and starting its members (one thread
//! each, `consumer.rs`).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use super::consumer::{DeadLetterArgs, MemberArgs, MemberOutcome, spawn};
use super::{Shared, props};
use crate::config::scenario::{ConsumerGroupSpec, StartOffset};
use crate::recorder::Source;
use crate::recorder::audit::{BitSet, Stream};

/// Which records of this run a group has read, shared by its members (sharded locks).
#[derive(Debug)]
pub struct GroupLedger {
    shards: Vec<Mutex<BitSet>>,
}

impl Default for GroupLedger {
    fn default() -> Self {
        GroupLedger { shards: (0..16).map(|_| Mutex::new(BitSet::default())).collect() }
    }
}

impl GroupLedger {
    /// Everything the group read, merged.
    pub fn merged(&self) -> BitSet {
        let mut all = BitSet::default();
        for s in &self.shards {
            all.merge(&s.lock().unwrap_or_else(|p| p.into_inner()));
        }
        all
    }

    /// True the first time the group reads (stream, seq).
    pub fn first_read(&self, s: Stream, seq: u64) -> bool {
        let shard = (s.device as usize ^ usize::from(s.class)) % self.shards.len();
        self.shards[shard].lock().unwrap_or_else(|p| p.into_inner()).insert(s, seq)
    }
}

/// The group id a group runs under: the scenario's, or one that includes the run id, so runs never
/// share offsets.
pub fn group_id(spec: &ConsumerGroupSpec, scenario: &str, run_id: u64) -> String {
    spec.group_id.clone().unwrap_or_else(|| format!("fleetstorm.{scenario}.{}.{:08x}", spec.name, run_id >> 32))
}

/// librdkafka's `fetch.queue.backoff.ms` for fleetstorm's readers. When the high-level
/// consumer's queue is full (`queued.max.messages.kbytes`, all partitions together, which a
/// replay from the start fills at once), librdkafka postpones the next fetch by this long: by
/// default 1000 ms, which made replays read in bursts with one-second gaps (BENCHMARKS.md,
/// replay reads: `rdkafka_performance -G` went from 0.36-0.56M to 1.07-1.33M records/s with
/// 10 ms). A slow replay must be the target's, not a client default's; a group's own
/// `librdkafka` map can set it back.
pub const FETCH_QUEUE_BACKOFF_MS: &str = "10";

/// A member's librdkafka properties (the group's own `librdkafka` map is layered on top).
pub fn member_properties(spec: &ConsumerGroupSpec, group_id: &str, member: u32) -> BTreeMap<String, String> {
    props([
        ("group.id", group_id.to_string()),
        ("client.id", format!("fleetstorm-{}-{member}", spec.name)),
        ("enable.auto.commit", "true".into()),
        // Offsets are stored after each record is processed, not when it is handed out:
        // rust-rdkafka's BaseConsumer drop polls (and discards) records while it closes, and with
        // the automatic store their offsets were committed unread, so a restarted group silently
        // skipped records (the group ledger's `missed` exists to catch exactly that).
        ("enable.auto.offset.store", "false".into()),
        ("auto.commit.interval.ms", "1000".into()),
        // Groups that start at `latest`/`earliest` have their start offsets committed before they
        // join (see `start_offsets`); `committed` groups with no offsets yet begin at the end.
        ("auto.offset.reset", if spec.start == StartOffset::Committed { "latest" } else { "earliest" }.into()),
        ("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS.into()),
        // Statistics give the bytes fetched on the wire (the report's cost drivers).
        super::stats::property(),
    ])
}

/// The offsets to commit under the group's id before its members join, so that they begin
/// exactly at the partition ends (`latest`) or log starts (`earliest`) read before the load,
/// without racing their own join; `None` for `committed` groups. `partitions` are the run's
/// (topic index, partition) pairs, `lows`/`highs` their watermarks, in the same order.
pub fn start_offsets(
    spec: &ConsumerGroupSpec,
    topics: &[String],
    partitions: &[(usize, i32)],
    lows: &[i64],
    highs: &[i64],
) -> Option<Vec<(String, i32, i64)>> {
    let start = match spec.start {
        StartOffset::Latest => highs,
        StartOffset::Earliest => lows,
        StartOffset::Committed => return None,
    };
    let wanted: Vec<usize> = spec.topics.iter().filter_map(|t| topics.iter().position(|x| x == t)).collect();
    Some(
        wanted
            .iter()
            .flat_map(|ti| {
                partitions
                    .iter()
                    .enumerate()
                    .filter(move |(_, (pt, _))| pt == ti)
                    .map(|(i, (_, p))| (topics[*ti].clone(), *p, start[i]))
            })
            .collect(),
    )
}

/// A started group: its members' threads and the ledger of what it read.
pub struct Started {
    pub members: Vec<std::thread::JoinHandle<MemberOutcome>>,
    pub ledger: Arc<GroupLedger>,
}

/// Where a group stands in the run: its place in the scenario, its id, its offset-book reader.
pub struct Placement<'a> {
    pub index: usize,
    pub group_id: &'a str,
    pub reader: usize,
    /// In a campaign, member `m` runs on shard `m % N`: one group, members on several machines.
    pub shard: crate::plan::Shard,
}

/// Start one consumer group's members, each on its own thread.
pub fn start(
    spec: &ConsumerGroupSpec,
    at: &Placement<'_>,
    plan_topics: &[String],
    seed: u64,
    shared: &Shared,
    source: &mut dyn FnMut() -> Source,
) -> std::io::Result<Started> {
    let ledger = Arc::new(GroupLedger::default());
    // Dead letters go out through a small producer of the member's own, batched briefly.
    let dead_letter = spec.dead_letter.as_ref().map(|dl| DeadLetterArgs {
        topic: dl.topic.clone(),
        rate: dl.rate.0,
        config: shared.writer_config(&[&props([
            ("client.id", format!("fleetstorm-{}-dlq", spec.name)),
            ("linger.ms", "5".into()),
        ])]),
    });
    let mut members = Vec::new();
    for m in (0..spec.members).filter(|m| m % at.shard.count == at.shard.index) {
        shared.ready_expected.fetch_add(1, Ordering::SeqCst);
        let own = member_properties(spec, at.group_id, m);
        members.push(spawn(MemberArgs {
            group: at.index,
            member: m,
            config: shared.reader_config(&[&own, &spec.librdkafka]),
            topics: spec.topics.clone(),
            plan_topics: plan_topics.to_vec(),
            ctx: shared.ctx(format!("consumer {}#{m}", spec.name)),
            start: shared.start.clone(),
            control: shared.control.clone(),
            source: source(),
            template: shared.template.clone(),
            book: shared.book.clone(),
            reader: at.reader,
            run_id: shared.run_id,
            processing: spec.processing_time.clone(),
            batch: spec.batch.clone(),
            slowdowns: spec.slowdowns.clone(),
            replays: spec.replays.clone(),
            restarts: spec.restarts.clone(),
            dead_letter: dead_letter.clone(),
            ledger: ledger.clone(),
            seed,
            ready: shared.ready.clone(),
            stats: shared.stats.group(at.index),
        })?);
    }
    Ok(Started { members, ledger })
}
