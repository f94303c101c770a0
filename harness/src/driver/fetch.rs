//! Batched reads for the audit reader, made directly.
//!
//! rust-rdkafka's `BaseConsumer::poll` returns one record per call, and each call pops one
//! event from the consumer queue (a lock, an event set up, a reference-counted wrapper
//! allocated and freed, two clock reads), then names the record's topic as a UTF-8-checked
//! string. At a million records per second that per-record toll was most of the audit
//! reader's thread (see BENCHMARKS.md, "replay reads").
//!
//! [`Batches`] gives the reader's assigned partitions a queue of their own (each partition's
//! fetch queue forwarded to it, as librdkafka's legacy consumer keeps them apart from the
//! client's events), and drains it with `rd_kafka_consume_batch_queue`: everything that is
//! there, up to a batch, in one call; the reader reads its clock once per batch. A record's
//! topic is known by its topic handle, looked up once per handle, not by name per record.
//!
//! The consumer queue keeps the client's events (logs, errors, statistics, token refreshes),
//! which the reader still serves with rust-rdkafka's own `poll`, once per batch. Records that
//! reached the consumer queue before the forwarding come back from that `poll` and are read
//! the same way.
//!
//! Each `unsafe` block says why it is sound.

use std::ffi::{CStr, CString};
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::consumer::{BaseConsumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;

/// One record read: where it was, and its value.
#[derive(Clone, Copy, Debug)]
pub struct Read<'a> {
    /// The record's topic, as an index into the topics the reader was given (None: another
    /// topic).
    pub topic: Option<usize>,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
    /// The record's topic handle, to store its offset with.
    rkt: *mut rd::rd_kafka_topic_t,
}

impl Read<'_> {
    /// Store the record's offset for the next commit (at-least-once: once it is processed).
    pub fn store_offset(&self) -> Result<(), KafkaError> {
        if self.rkt.is_null() {
            return Ok(());
        }
        // SAFETY: the topic handle is live while the record is (the record is destroyed only
        // after the reader's callback returns).
        // librdkafka stores `offset + 1`: the next record to read.
        let err = unsafe { rd::rd_kafka_offset_store(self.rkt, self.partition, self.offset) };
        match err {
            rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR => Ok(()),
            e => Err(KafkaError::StoreOffset(RDKafkaErrorCode::from(e))),
        }
    }
}

/// A byte slice of a message field, if it has one.
///
/// # Safety
/// `ptr` must point to `len` bytes that live as long as `'a`, or be null.
unsafe fn bytes<'a>(ptr: *const std::ffi::c_void, len: usize) -> Option<&'a [u8]> {
    // SAFETY: as the caller promises.
    (!ptr.is_null()).then(|| unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) })
}

/// Records this many at most per call: enough that the per-call work (a clock read, serving
/// the client's events) is negligible per record, small enough that a batch is read in well
/// under a millisecond.
pub const BATCH: usize = 1024;

/// A consumer's partitions, read in batches from a queue of their own. It borrows the consumer,
/// so it is gone before the consumer closes.
pub struct Batches<'c, C: ConsumerContext> {
    consumer: &'c BaseConsumer<C>,
    rk: *mut rd::rd_kafka_t,
    queue: *mut rd::rd_kafka_queue_t,
    consumer_queue: *mut rd::rd_kafka_queue_t,
    /// Partitions forwarded to `queue` (to put back when done).
    forwarded: Vec<(CString, i32)>,
    topics: Vec<String>,
    /// Topic handles seen, and the topic index each stands for.
    handles: Vec<(*const rd::rd_kafka_topic_t, Option<usize>)>,
    buf: Vec<*mut rd::rd_kafka_message_t>,
}

impl<'c, C: ConsumerContext> Batches<'c, C> {
    /// A queue for `consumer`'s records. `partitions` are moved to it now (an assigning reader
    /// names them before it assigns them, so that none of their records reach the consumer
    /// queue); a group member's partitions are moved as their first records arrive (see
    /// [`Batches::read`]). `topics` names the topics a [`Read`] indexes.
    pub fn new(consumer: &'c BaseConsumer<C>, partitions: &[(String, i32)], topics: &[String]) -> Self {
        let rk = rdkafka::consumer::Consumer::client(consumer).native_ptr();
        // SAFETY: the client is live for the consumer's lifetime, which outlives `self`; both
        // queue handles are released in `drop`.
        let (queue, consumer_queue) = unsafe { (rd::rd_kafka_queue_new(rk), rd::rd_kafka_queue_get_consumer(rk)) };
        let mut me = Batches {
            consumer,
            rk,
            queue,
            consumer_queue,
            forwarded: Vec::new(),
            topics: topics.to_vec(),
            handles: Vec::new(),
            buf: Vec::with_capacity(BATCH),
        };
        for (t, p) in partitions {
            if let Ok(t) = CString::new(t.as_str()) {
                me.adopt(t, *p);
            }
        }
        me
    }

    /// Forward partition `p` of `topic`'s fetch queue to this queue (librdkafka keeps an
    /// application's forwarding when it starts fetching, until the partition is unassigned).
    fn adopt(&mut self, topic: CString, p: i32) {
        if forward(self.rk, &topic, p, self.queue) && !self.forwarded.iter().any(|(t, q)| *q == p && *t == topic) {
            self.forwarded.push((topic, p));
        }
    }

    /// Read what is there (at most `max` records, at most [`BATCH`]), or wait up to `timeout`
    /// for one, calling `each` for every record, and for every error reading (a partition's
    /// fetch error, an event's). Returns how many records were read.
    ///
    /// The consumer queue is served first, until it is empty: its events, and the records of
    /// partitions assigned since the last read, each of which is then moved here. Emptying it
    /// before reading this queue keeps a moved partition's records in order.
    pub fn read(
        &mut self,
        timeout: Duration,
        max: usize,
        mut each: impl FnMut(Result<&Read<'_>, KafkaError>),
    ) -> usize {
        let max = max.clamp(1, BATCH);
        let mut read = 0;
        let mut drained = false;
        // Partitions moved during this call (their later records already come here).
        let mut moved: Vec<(*const rd::rd_kafka_topic_t, i32)> = Vec::new();
        if self.consumer_queue.is_null() {
            // A client without a consumer queue (no group id) has its events on the main queue,
            // which `poll` serves: once per read.
            read += self.poll_one(&mut moved, &mut each);
            drained = true;
        } else {
            for _ in 0..max {
                // SAFETY: the consumer queue handle is live (released in drop).
                if unsafe { rd::rd_kafka_queue_length(self.consumer_queue) } == 0 {
                    drained = true;
                    break;
                }
                read += self.poll_one(&mut moved, &mut each);
            }
        }
        if !drained || read >= max {
            return read;
        }
        let mut n = self.fill(0, max - read);
        if n == 0 && read == 0 {
            n = self.fill(i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX), 1);
        }
        for i in 0..n {
            let m = self.buf[i];
            // SAFETY: librdkafka returned `n` valid messages; each is read here and destroyed
            // once, below, after the last borrow of its fields.
            let msg = unsafe { &*m };
            if msg.err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                each(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::from(msg.err))));
            } else {
                each(Ok(&self.view(msg)));
                read += 1;
            }
            // SAFETY: see above; the message is not used after this.
            unsafe { rd::rd_kafka_message_destroy(m) };
        }
        self.buf.clear();
        read
    }

    /// Serve one event of the consumer queue with rust-rdkafka's `poll`; a record that comes
    /// back is read, and its partition moved here (once per read: `moved`). Returns 1 for a
    /// record.
    fn poll_one(
        &mut self,
        moved: &mut Vec<(*const rd::rd_kafka_topic_t, i32)>,
        each: &mut impl FnMut(Result<&Read<'_>, KafkaError>),
    ) -> usize {
        match self.consumer.poll(Duration::ZERO) {
            Some(Ok(m)) => {
                // SAFETY: the message lives until `m` is dropped, after this block.
                let r = self.view(unsafe { &*m.ptr() });
                each(Ok(&r));
                let here = (m.topic_ptr() as *const rd::rd_kafka_topic_t, m.partition());
                if !moved.contains(&here) {
                    moved.push(here);
                    if let Ok(t) = CString::new(m.topic()) {
                        self.adopt(t, m.partition());
                    }
                }
                1
            }
            Some(Err(e)) => {
                each(Err(e));
                0
            }
            None => 0,
        }
    }

    /// Take up to `max` messages from the queue into `buf`, waiting up to `timeout_ms` (0: not
    /// at all).
    fn fill(&mut self, timeout_ms: i32, max: usize) -> usize {
        self.buf.clear();
        // SAFETY: the queue is live (owned by self); `buf` has room for `max` ≤ BATCH pointers,
        // and librdkafka writes at most `max` of them, returning how many (or -1).
        let n = unsafe { rd::rd_kafka_consume_batch_queue(self.queue, timeout_ms, self.buf.as_mut_ptr(), max) };
        let n = usize::try_from(n).unwrap_or(0).min(max);
        // SAFETY: librdkafka initialised the first `n` elements.
        unsafe { self.buf.set_len(n) };
        n
    }

    /// A record's fields, borrowed from its message.
    fn view<'m>(&mut self, msg: &'m rd::rd_kafka_message_t) -> Read<'m> {
        let topic = self.topic(msg.rkt);
        // SAFETY: payload and key point to len and key_len bytes owned by the message, which
        // outlives the view.
        let (key, payload) = unsafe { (bytes(msg.key, msg.key_len), bytes(msg.payload, msg.len)) };
        Read { topic, partition: msg.partition, offset: msg.offset, key, payload, rkt: msg.rkt }
    }

    /// The topic index a topic handle stands for, looked up by name once per handle.
    fn topic(&mut self, rkt: *mut rd::rd_kafka_topic_t) -> Option<usize> {
        let key = rkt as *const rd::rd_kafka_topic_t;
        if let Some((_, t)) = self.handles.iter().find(|(h, _)| *h == key) {
            return *t;
        }
        if rkt.is_null() {
            return None;
        }
        // SAFETY: a message's topic handle is live while the message is, and its name is a
        // valid C string.
        let name = unsafe { CStr::from_ptr(rd::rd_kafka_topic_name(rkt)) };
        let t = name.to_str().ok().and_then(|n| self.topics.iter().position(|t| t == n));
        self.handles.push((key, t));
        t
    }
}

/// Forward partition `p` of `topic`'s fetch queue to `to` (null: to none); false if the client
/// has no such partition.
fn forward(rk: *mut rd::rd_kafka_t, topic: &CStr, p: i32, to: *mut rd::rd_kafka_queue_t) -> bool {
    // SAFETY: the client is live (callers hold its consumer); the topic is a valid C string. A
    // partition the client cannot make gives null. The partition's queue handle is released
    // after forwarding: the forwarding belongs to the partition's queue itself.
    unsafe {
        let q = rd::rd_kafka_queue_get_partition(rk, topic.as_ptr(), p);
        if q.is_null() {
            return false;
        }
        rd::rd_kafka_queue_forward(q, to);
        rd::rd_kafka_queue_destroy(q);
    }
    true
}

impl<C: ConsumerContext> Drop for Batches<'_, C> {
    fn drop(&mut self) {
        // Records still here are not read; put the partitions back on the consumer queue, where
        // closing the consumer expects them, then let go of both queue handles.
        for (t, p) in &self.forwarded {
            forward(self.rk, t, *p, self.consumer_queue);
        }
        // SAFETY: both handles are live and not used after this.
        unsafe {
            rd::rd_kafka_queue_destroy(self.queue);
            if !self.consumer_queue.is_null() {
                rd::rd_kafka_queue_destroy(self.consumer_queue);
            }
        }
    }
}
