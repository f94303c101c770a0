//! The delivery-audit reader: reads back everything the run produced, live, from the partition
//! ends recorded before the load started. Reading live matters: the embedded cluster drops the
//! oldest data beyond 5 MiB per partition, so an audit after the fact could miss records.
//!
//! Metrics recorded: records read per one-second window; the seen-ledger (distinct, duplicated,
//! reordered, foreign records); its position per partition (so the run knows when it caught up).
//! A record at an offset the reader has already passed is a re-read (its fetch position went
//! back), counted apart, so `duplicates` counts only copies that are really in the log.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::consumer::Reading;
use super::{Control, Ctx, Shared, fetch, props};
use crate::recorder::audit::{SeenLedger, Stream};
use crate::recorder::{OffsetBook, Source, Start, WindowClock, WindowData};
use crate::wire;

/// The records this shard audits: its own devices' (every shard of a campaign reads the same
/// topics; each judges what it sent, so the campaign's audit is the sum of the shards').
#[derive(Clone, Copy, Debug, Default)]
pub struct Mine {
    pub shard: crate::plan::Shard,
    pub seed: u64,
}

pub struct AuditArgs {
    pub mine: Mine,
    pub config: ClientConfig,
    /// (topic, partition, start offset) of every partition to read.
    pub assignment: Vec<(String, i32, i64)>,
    pub plan_topics: Vec<String>,
    /// Per class: keyed by device (order checked) or not.
    pub keyed: Vec<bool>,
    pub ctx: Ctx,
    pub start: Start,
    pub control: Arc<Control>,
    pub source: Source,
    pub book: Arc<OffsetBook>,
    pub reader: usize,
    pub run_id: u64,
    pub ready: Arc<AtomicU32>,
}

#[derive(Debug, Default)]
pub struct AuditOutcome {
    pub ledger: SeenLedger,
    pub error: Option<String>,
}

pub fn spawn(args: AuditArgs) -> std::io::Result<std::thread::JoinHandle<AuditOutcome>> {
    std::thread::Builder::new().name("audit".into()).spawn(move || run(args))
}

/// The audit reader's properties. It is assigned its partitions (no group membership, so no
/// rebalance can move it), commits nothing, and its group id only names it in the target's logs.
pub fn properties(run_id: u64) -> BTreeMap<String, String> {
    props([
        ("group.id", format!("fleetstorm.audit.{run_id:016x}")),
        ("client.id", "fleetstorm-audit".to_string()),
        ("enable.auto.commit", "false".into()),
        ("enable.auto.offset.store", "false".into()),
        ("auto.offset.reset", "earliest".into()),
        // See `group::member_properties`: a full consumer queue must not stall the read for 1 s.
        ("fetch.queue.backoff.ms", super::group::FETCH_QUEUE_BACKOFF_MS.into()),
    ])
}

/// Start the audit reader on its own thread: it reads `assignment` ((topic, partition, start
/// offset)) and counts every record of this run in its seen-ledger; `keyed` says per payload
/// class whether per-device order is checked.
pub fn start(
    assignment: Vec<(String, i32, i64)>,
    plan_topics: &[String],
    keyed: Vec<bool>,
    mine: Mine,
    reader: usize,
    shared: &Shared,
    source: Source,
) -> std::io::Result<std::thread::JoinHandle<AuditOutcome>> {
    shared.ready_expected.fetch_add(1, Ordering::SeqCst);
    spawn(AuditArgs {
        mine,
        config: shared.reader_config(&[&properties(shared.run_id)]),
        assignment,
        plan_topics: plan_topics.to_vec(),
        keyed,
        ctx: shared.ctx("audit".into()),
        start: shared.start.clone(),
        control: shared.control.clone(),
        source,
        book: shared.book.clone(),
        reader,
        run_id: shared.run_id,
        ready: shared.ready.clone(),
    })
}

fn run(args: AuditArgs) -> AuditOutcome {
    let mut out = AuditOutcome::default();
    let fail = |out: &mut AuditOutcome, msg: String| {
        out.error = Some(msg);
        args.ready.fetch_add(1, Ordering::SeqCst);
        args.source.done();
    };
    let consumer: BaseConsumer<Ctx> = match args.config.create_with_context(args.ctx.clone()) {
        Ok(c) => c,
        Err(e) => {
            fail(&mut out, format!("could not create the audit reader: {}", args.ctx.redactor.scrub(&e.to_string())));
            return out;
        }
    };
    // Before assigning: none of the records may reach the consumer queue.
    let partitions: Vec<(String, i32)> = args.assignment.iter().map(|(t, p, _)| (t.clone(), *p)).collect();
    let mut batches = fetch::Batches::new(&consumer, &partitions, &args.plan_topics);
    let mut tpl = TopicPartitionList::new();
    for (t, p, o) in &args.assignment {
        if let Err(e) = tpl.add_partition_offset(t, *p, Offset::Offset(*o)) {
            fail(&mut out, format!("audit assignment: {e}"));
            return out;
        }
    }
    if let Err(e) = consumer.assign(&tpl) {
        fail(&mut out, format!("audit assignment: {e}"));
        return out;
    }
    args.ready.fetch_add(1, Ordering::SeqCst);
    let reading = Reading { book: args.book.clone(), reader: args.reader };
    let mut windows = WindowClock::default();
    let mut reads = 0u64;
    // Per flattened partition, the next offset not read yet: a record below it is a re-read.
    let mut next: Vec<i64> = Vec::new();
    while !args.control.stop_audit.load(Ordering::Relaxed) && !args.control.hard() {
        reads += batches.read(Duration::from_millis(100), fetch::BATCH, |r| match r {
            Ok(r) => {
                let position = r.topic.and_then(|t| reading.at(t, r.partition, r.offset));
                if position.is_some_and(|i| !advance(&mut next, i, r.offset)) {
                    out.ledger.reread();
                } else {
                    record(&mut out.ledger, r, &args);
                }
            }
            Err(e) => tracing::debug!("audit reader: {e}"),
        }) as u64;
        if let Some(c) = args.start.get()
            && let Some(second) = windows.roll(crate::clock::Clock::now_us(c))
        {
            args.source.send(second, WindowData::Audit { reads: std::mem::take(&mut reads) });
        }
    }
    drop(batches);
    args.source.send(windows.current(), WindowData::Audit { reads });
    args.source.done();
    out
}

/// Move partition `i`'s read position past `offset`; false if the reader had read it already.
fn advance(next: &mut Vec<i64>, i: usize, offset: i64) -> bool {
    if next.len() <= i {
        next.resize(i + 1, i64::MIN);
    }
    if offset < next[i] {
        return false;
    }
    next[i] = offset + 1;
    true
}

/// Count one record read back in the seen-ledger (or as foreign).
fn record(ledger: &mut SeenLedger, r: &fetch::Read<'_>, args: &AuditArgs) {
    match r.payload.and_then(wire::decode) {
        Some(s) if s.run == args.run_id && !args.mine.shard.owns(args.mine.seed, u64::from(s.device)) => {
            ledger.other_shard();
        }
        Some(s) if s.run == args.run_id => {
            // The clock's origin, read per record: it is set when the load starts, which may be
            // while a batch is being read.
            let origin = args.start.get().map_or(0, |c| c.origin_unix_us());
            let second = u32::try_from(s.intended_us.saturating_sub(origin) / 1_000_000).unwrap_or(u32::MAX);
            let stream = Stream { class: s.class, device: s.device };
            let fresh = if args.keyed.get(usize::from(s.class)).copied().unwrap_or(true) {
                ledger.saw(stream, s.seq, second)
            } else {
                ledger.saw_unkeyed(stream, s.seq, second)
            };
            if !fresh {
                ledger.duplicate_at(stream, s.seq, || {
                    let topic = r.topic.and_then(|t| args.plan_topics.get(t)).map_or("?", String::as_str);
                    format!("{topic}[{}]@{}", r.partition, r.offset)
                });
            }
        }
        _ => ledger.foreign(),
    }
}

#[cfg(test)]
mod tests {
    use super::advance;

    #[test]
    fn an_offset_read_again_is_a_reread_not_a_new_record() {
        let mut next = Vec::new();
        assert!(advance(&mut next, 2, 10));
        assert!(advance(&mut next, 2, 11));
        assert!(!advance(&mut next, 2, 10), "the reader went back: a re-read");
        assert!(!advance(&mut next, 2, 11));
        assert!(advance(&mut next, 2, 15), "a gap (compaction, transaction markers) is fine");
        assert!(advance(&mut next, 0, 0), "partitions are apart");
    }
}
