//! The delivery-audit reader: reads back everything the run produced, live, from the partition
//! ends recorded before the load started. Reading live matters: the embedded cluster drops the
//! oldest data beyond 5 MiB per partition, so an audit after the fact could miss records.
//!
//! Metrics recorded: records read per one-second window; the seen-ledger (distinct, duplicated,
//! reordered, foreign records); its position per partition (so the run knows when it caught up).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::consumer::Reading;
use super::{Control, Ctx};
use crate::recorder::audit::{SeenLedger, Stream};
use crate::recorder::{OffsetBook, Source, Start, WindowClock, WindowData};
use crate::wire;

pub struct AuditArgs {
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
    let reading = Reading { plan_topics: args.plan_topics.clone(), book: args.book.clone(), reader: args.reader };
    let mut windows = WindowClock::default();
    let mut reads = 0u64;
    while !args.control.stop_reading.load(Ordering::Relaxed) && !args.control.hard() {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                reading.position(&m);
                reads += 1;
                match m.payload().and_then(wire::decode) {
                    Some(s) if s.run == args.run_id => {
                        let origin = args.start.get().map_or(0, |c| c.origin_unix_us());
                        let second =
                            u32::try_from(s.intended_us.saturating_sub(origin) / 1_000_000).unwrap_or(u32::MAX);
                        let stream = Stream { class: s.class, device: s.device };
                        if args.keyed.get(usize::from(s.class)).copied().unwrap_or(true) {
                            out.ledger.saw(stream, s.seq, second);
                        } else {
                            out.ledger.saw_unkeyed(stream, s.seq, second);
                        }
                    }
                    _ => out.ledger.foreign(),
                }
            }
            Some(Err(e)) => tracing::debug!("audit reader: {e}"),
            None => {}
        }
        if let Some(c) = args.start.get()
            && let Some(second) = windows.roll(crate::clock::Clock::now_us(c))
        {
            args.source.send(second, WindowData::Audit { reads: std::mem::take(&mut reads) });
        }
    }
    args.source.send(windows.current(), WindowData::Audit { reads });
    args.source.done();
    out
}
