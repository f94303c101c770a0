//! The one librdkafka call on the producer's hot path, made directly.
//!
//! rust-rdkafka's `BaseProducer::send` names the topic on every record, so librdkafka looks the
//! topic up under a write lock of the whole client, after a `CString` allocation. At a million
//! records per second that lookup was a tenth of the producer thread (see BENCHMARKS.md).
//! Here the producer keeps one topic handle per topic and one native header set per payload
//! version, and passes them to `rd_kafka_produceva` itself (an array of only the fields that
//! differ from librdkafka's defaults: cheaper than `rd_kafka_producev`'s variadic pairs), the
//! way librdkafka's own `rdkafka_performance` calls `rd_kafka_produce`.
//!
//! Delivery reports are read here too ([`Events`]): rust-rdkafka's `poll` calls
//! `ProducerContext::delivery` once per record, so the producer's bookkeeping had to sit behind
//! a lock taken twice per record (once to park the record, once to settle it). Reading the
//! client's main queue directly hands over one produce response's reports as a slice, to state
//! the producer thread owns: no lock, one clock read per response. The queue's other events
//! (logs, statistics, errors, OAUTHBEARER token refreshes) go to the client's context exactly as
//! rust-rdkafka's own `poll` would send them.
//!
//! Each `unsafe` block says why it is sound (ARCHITECTURE.md lists where else the crate has
//! `unsafe`).

use std::ffi::{CStr, CString, c_void};
use std::marker::PhantomData;
use std::ptr;
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, Producer, ProducerContext};

/// A topic handle of one producer. It borrows the producer, so it cannot outlive it (librdkafka
/// requires topic handles to be destroyed before their client).
pub struct TopicHandle<'p>(*mut rd::rd_kafka_topic_t, PhantomData<&'p ()>);

impl<'p> TopicHandle<'p> {
    pub fn new<C: ProducerContext>(producer: &'p BaseProducer<C>, name: &str) -> Option<TopicHandle<'p>> {
        let name = CString::new(name).ok()?;
        // SAFETY: the client pointer is live for the producer's lifetime; the name is a valid C
        // string; a null configuration means the default topic configuration.
        let rkt = unsafe { rd::rd_kafka_topic_new(producer.client().native_ptr(), name.as_ptr(), ptr::null_mut()) };
        (!rkt.is_null()).then_some(TopicHandle(rkt, PhantomData))
    }
}

impl Drop for TopicHandle<'_> {
    fn drop(&mut self) {
        // SAFETY: created by rd_kafka_topic_new, destroyed exactly once.
        unsafe { rd::rd_kafka_topic_destroy(self.0) }
    }
}

/// A header set kept as a template; each record gets a copy, which librdkafka then owns.
pub struct HeaderTemplate(*mut rd::rd_kafka_headers_t);

impl HeaderTemplate {
    pub fn new<'a>(headers: impl ExactSizeIterator<Item = (&'a str, &'a str)>) -> HeaderTemplate {
        // SAFETY: rd_kafka_headers_new allocates (never returns null; it aborts on OOM); names and
        // values are passed with explicit lengths, and librdkafka copies them.
        unsafe {
            let h = rd::rd_kafka_headers_new(headers.len());
            for (k, v) in headers {
                rd::rd_kafka_header_add(
                    h,
                    k.as_ptr().cast(),
                    k.len() as isize,
                    v.as_ptr() as *const c_void,
                    v.len() as isize,
                );
            }
            HeaderTemplate(h)
        }
    }
}

impl Drop for HeaderTemplate {
    fn drop(&mut self) {
        // SAFETY: created by rd_kafka_headers_new, never handed to librdkafka (only copies are).
        unsafe { rd::rd_kafka_headers_destroy(self.0) }
    }
}

/// One record for [`produce`].
pub struct Record<'a> {
    pub topic: &'a TopicHandle<'a>,
    /// Empty: no key (a null key, so librdkafka's partitioner treats the record as unkeyed).
    pub key: &'a [u8],
    pub value: &'a [u8],
    /// CreateTime, milliseconds since the epoch.
    pub timestamp_ms: i64,
    pub headers: Option<&'a HeaderTemplate>,
    /// Comes back in the delivery report.
    pub opaque: usize,
}

/// The opaque bit that marks a record whose value is lent by a [`Lender`].
const LENT: usize = 1 << (usize::BITS - 1);

/// Enqueue one record (librdkafka copies key and value). `Err` carries librdkafka's reason,
/// e.g. `QueueFull`; then nothing was enqueued and no delivery report will come.
pub fn produce<C: ProducerContext<DeliveryOpaque = usize>>(
    producer: &BaseProducer<C>,
    r: &Record<'_>,
) -> Result<(), RDKafkaErrorCode> {
    if r.opaque & LENT != 0 {
        return Err(RDKafkaErrorCode::InvalidArgument);
    }
    // SAFETY: key and value are borrowed slices that librdkafka copies (F_COPY) during the call.
    unsafe { enqueue(producer, r, r.value, rd::RD_KAFKA_MSG_F_COPY, r.opaque) }
}

/// Value buffers lent to librdkafka instead of copied into it: one per slot, written by the
/// producer, read by librdkafka's broker threads until the record's delivery report. This
/// saves a copy and a larger allocation per record (the value is the record's bulk), as
/// `rdkafka_performance` does by sending one buffer it never copies.
///
/// A slot's buffer cannot be written while it is lent: [`Lender::buffer`] refuses it until the
/// delivery report that returns it has come from this producer's queue ([`Lender::returned`]).
/// A lender dropped with buffers still lent leaks them rather than free memory librdkafka may
/// still read (a run's end, after a purge).
#[derive(Default)]
pub struct Lender {
    bufs: Vec<Vec<u8>>,
    lent: Vec<bool>,
    /// The client the buffers are lent to (0: none yet).
    client: usize,
}

impl Lender {
    /// The buffer of `slot`, to write a value into; `None` while it is lent.
    pub fn buffer(&mut self, slot: usize) -> Option<&mut Vec<u8>> {
        if slot >= self.bufs.len() {
            self.bufs.resize_with(slot + 1, Vec::new);
            self.lent.resize(slot + 1, false);
        }
        if self.lent[slot] {
            return None;
        }
        self.bufs.get_mut(slot)
    }

    /// A delivery report came: its slot's buffer, if lent, is ours again.
    pub fn returned(&mut self, d: &Delivered) {
        if d.lent && d.client == self.client {
            if let Some(l) = self.lent.get_mut(d.opaque) {
                *l = false;
            }
        }
    }
}

impl Drop for Lender {
    fn drop(&mut self) {
        for (buf, lent) in self.bufs.iter_mut().zip(&self.lent) {
            if *lent {
                std::mem::forget(std::mem::take(buf));
            }
        }
    }
}

/// Enqueue one record whose value is `lender`'s buffer of `slot` (`r.value` is ignored), not
/// copied; the delivery report carries `slot` as its opaque. `r.opaque` must be `slot`.
pub fn produce_lent<C: ProducerContext<DeliveryOpaque = usize>>(
    producer: &BaseProducer<C>,
    r: &Record<'_>,
    lender: &mut Lender,
    slot: usize,
) -> Result<(), RDKafkaErrorCode> {
    let client = producer.client().native_ptr() as usize;
    if slot & LENT != 0 || r.opaque != slot || (lender.client != 0 && lender.client != client) {
        return Err(RDKafkaErrorCode::InvalidArgument);
    }
    if lender.buffer(slot).is_none() {
        return Err(RDKafkaErrorCode::InvalidArgument);
    }
    lender.client = client;
    let value = lender.bufs[slot].as_slice();
    // SAFETY: no flag, so librdkafka references the value until the record's delivery report.
    // The buffer stays valid and unchanged until then: it is marked lent below, `buffer`
    // refuses it while lent, only that report (LENT bit, this client) returns it, and a lender
    // dropped early leaks lent buffers instead of freeing them.
    let res = unsafe { enqueue(producer, r, value, 0, slot | LENT) };
    if res.is_ok() {
        lender.lent[slot] = true;
    }
    res
}

/// librdkafka's name of a client instance (`rd_kafka_name`), as its statistics name it.
pub fn instance_name<C: rdkafka::ClientContext>(client: &rdkafka::client::Client<C>) -> String {
    // SAFETY: the client is alive for the call; librdkafka returns a NUL-terminated string it
    // owns for the client's lifetime, copied out here.
    unsafe { std::ffi::CStr::from_ptr(rd::rd_kafka_name(client.native_ptr())) }.to_string_lossy().into_owned()
}

/// # Safety
/// `value` must stay valid and unchanged until librdkafka is done with it: for the call if
/// `flags` holds `RD_KAFKA_MSG_F_COPY`, until the record's delivery report otherwise.
unsafe fn enqueue<C: ProducerContext<DeliveryOpaque = usize>>(
    producer: &BaseProducer<C>,
    r: &Record<'_>,
    value: &[u8],
    flags: i32,
    opaque: usize,
) -> Result<(), RDKafkaErrorCode> {
    // SAFETY: a copy of the template, owned by us until librdkafka accepts the record.
    let headers = r.headers.map_or(ptr::null_mut(), |t| unsafe { rd::rd_kafka_headers_copy(t.0) });
    // `rd_kafka_produceva` with only the fields that differ from librdkafka's defaults (no
    // partition: the partitioner's; no key or headers when there are none): `rd_kafka_producev`
    // walked nine variadic pairs per record (callgrind: ~290 instructions of its own per record
    // against 76 for `rd_kafka_produce`, which cannot set the CreateTime).
    let vu = |vtype, u| rd::rd_kafka_vu_t { vtype, u };
    let mem = |ptr: *const u8, size: usize| rd::rd_kafka_vu_s__bindgen_ty_1 {
        mem: rd::rd_kafka_vu_s__bindgen_ty_1__bindgen_ty_1 { ptr: ptr as *mut c_void, size },
    };
    use rd::rd_kafka_vtype_t as V;
    let mut vus = [
        vu(V::RD_KAFKA_VTYPE_RKT, rd::rd_kafka_vu_s__bindgen_ty_1 { rkt: r.topic.0 }),
        vu(V::RD_KAFKA_VTYPE_MSGFLAGS, rd::rd_kafka_vu_s__bindgen_ty_1 { i: flags }),
        vu(V::RD_KAFKA_VTYPE_VALUE, mem(value.as_ptr(), value.len())),
        vu(V::RD_KAFKA_VTYPE_OPAQUE, rd::rd_kafka_vu_s__bindgen_ty_1 { ptr: opaque as *mut c_void }),
        vu(V::RD_KAFKA_VTYPE_TIMESTAMP, rd::rd_kafka_vu_s__bindgen_ty_1 { i64_: r.timestamp_ms }),
        vu(V::RD_KAFKA_VTYPE_KEY, mem(r.key.as_ptr(), r.key.len())),
        vu(V::RD_KAFKA_VTYPE_HEADERS, rd::rd_kafka_vu_s__bindgen_ty_1 { headers }),
    ];
    let mut n = 5;
    if !r.key.is_empty() {
        n += 1;
    }
    if !headers.is_null() {
        vus.swap(n, 6);
        n += 1;
    }
    // SAFETY: every pointer is valid for the call: the client and topic handle live as long as
    // the producer, the key is a borrowed slice that librdkafka copies, the value as the caller
    // guarantees; `vus[..n]` is an initialised array of `n` type/value pairs, each union read as
    // its type says. The opaque is an integer, never dereferenced. The returned error, if any, is
    // ours: read, then destroyed exactly once.
    let err = unsafe {
        let e = rd::rd_kafka_produceva(producer.client().native_ptr(), vus.as_ptr(), n);
        if e.is_null() {
            rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
        } else {
            let code = rd::rd_kafka_error_code(e);
            rd::rd_kafka_error_destroy(e);
            code
        }
    };
    if err == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        // librdkafka now owns the header copy.
        Ok(())
    } else {
        if !headers.is_null() {
            // SAFETY: not accepted, so still ours; destroyed exactly once.
            unsafe { rd::rd_kafka_headers_destroy(headers) };
        }
        Err(RDKafkaErrorCode::from(err))
    }
}

/// One delivery report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivered {
    /// The opaque given to [`produce`] (the slot, for [`produce_lent`]).
    pub opaque: usize,
    pub partition: i32,
    pub offset: i64,
    /// `None`: acknowledged.
    pub error: Option<RDKafkaErrorCode>,
    /// Its value was lent ([`Lender::returned`]), by this client.
    lent: bool,
    client: usize,
}

/// A producer's main queue, read directly (see the module's documentation). It borrows the
/// producer, so it cannot outlive it.
pub struct Events<'p, C: ProducerContext> {
    producer: &'p BaseProducer<C>,
    queue: *mut rd::rd_kafka_queue_t,
    messages: Vec<*const rd::rd_kafka_message_t>,
    batch: Vec<Delivered>,
}

impl<C: ProducerContext> Drop for Events<'_, C> {
    fn drop(&mut self) {
        // SAFETY: the reference taken by rd_kafka_queue_get_main, released exactly once.
        unsafe { rd::rd_kafka_queue_destroy(self.queue) }
    }
}

/// At most this many events are served by one [`Events::serve`] call once it has waited (so a
/// sender is not held up by a long backlog of reports).
const EVENTS_PER_SERVE: usize = 64;

impl<'p, C: ProducerContext> Events<'p, C> {
    pub fn new(producer: &'p BaseProducer<C>) -> Events<'p, C> {
        // SAFETY: the client pointer is live for the producer's lifetime, which bounds `Events`;
        // the call returns a new reference to the main queue (never null), released in `drop`.
        let queue = unsafe { rd::rd_kafka_queue_get_main(producer.client().native_ptr()) };
        Events { producer, queue, messages: Vec::new(), batch: Vec::new() }
    }

    /// Wait up to `timeout` for an event, then serve it and those already waiting (at most
    /// [`EVENTS_PER_SERVE`]); each delivery-report event's records go to `on_delivery` as one
    /// slice: one produce response's worth, acknowledged at one moment. Returns the number of
    /// events served.
    pub fn serve(&mut self, timeout: Duration, on_delivery: &mut dyn FnMut(&[Delivered])) -> usize {
        let mut wait_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        let mut served = 0;
        while served < EVENTS_PER_SERVE {
            // SAFETY: the queue reference is live (released only in drop).
            let ev = unsafe { rd::rd_kafka_queue_poll(self.queue, wait_ms) };
            if ev.is_null() {
                break;
            }
            wait_ms = 0;
            served += 1;
            self.dispatch(ev, on_delivery);
            // SAFETY: the event was returned by rd_kafka_queue_poll and is destroyed exactly
            // once, after its last use (`dispatch` keeps no pointer into it).
            unsafe { rd::rd_kafka_event_destroy(ev) };
        }
        served
    }

    fn dispatch(&mut self, ev: *mut rd::rd_kafka_event_t, on_delivery: &mut dyn FnMut(&[Delivered])) {
        let ctx = self.producer.context();
        // SAFETY (every call below on `ev`): `ev` is a live event owned by `serve` until it
        // destroys it after this function returns; strings librdkafka returns for it are
        // NUL-terminated and live as long as the event, and are copied before it ends.
        match unsafe { rd::rd_kafka_event_type(ev) } {
            rd::RD_KAFKA_EVENT_DR => {
                let n = unsafe { rd::rd_kafka_event_message_count(ev) };
                self.messages.clear();
                self.messages.resize(n, ptr::null());
                let got = unsafe { rd::rd_kafka_event_message_array(ev, self.messages.as_mut_ptr(), n) };
                self.batch.clear();
                let client = self.producer.client().native_ptr() as usize;
                for &m in self.messages.iter().take(got) {
                    if m.is_null() {
                        continue;
                    }
                    // SAFETY: a message of the live event, read-only.
                    let m = unsafe { &*m };
                    let opaque = m._private as usize;
                    self.batch.push(Delivered {
                        opaque: opaque & !LENT,
                        lent: opaque & LENT != 0,
                        client,
                        partition: m.partition,
                        offset: m.offset,
                        error: (m.err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR)
                            .then(|| RDKafkaErrorCode::from(m.err)),
                    });
                }
                on_delivery(&self.batch);
            }
            rd::RD_KAFKA_EVENT_LOG => {
                let (mut fac, mut text, mut level) = (ptr::null(), ptr::null(), 0);
                if unsafe { rd::rd_kafka_event_log(ev, &mut fac, &mut text, &mut level) } == 0
                    && !fac.is_null()
                    && !text.is_null()
                {
                    let fac = unsafe { CStr::from_ptr(fac) }.to_string_lossy();
                    let text = unsafe { CStr::from_ptr(text) }.to_string_lossy();
                    ctx.log(log_level(level), fac.trim(), text.trim());
                }
            }
            rd::RD_KAFKA_EVENT_STATS => {
                let json = unsafe { rd::rd_kafka_event_stats(ev) };
                if !json.is_null() {
                    ctx.stats_raw(unsafe { CStr::from_ptr(json) }.to_bytes());
                }
            }
            rd::RD_KAFKA_EVENT_ERROR => {
                let code = unsafe { rd::rd_kafka_event_error(ev) };
                let reason = unsafe { rd::rd_kafka_event_error_string(ev) };
                let reason = if reason.is_null() {
                    String::new()
                } else {
                    unsafe { CStr::from_ptr(reason) }.to_string_lossy().into_owned()
                };
                ctx.error(KafkaError::Global(code.into()), reason.trim());
            }
            rd::RD_KAFKA_EVENT_OAUTHBEARER_TOKEN_REFRESH => {
                let config = unsafe { rd::rd_kafka_event_config_string(ev) };
                let config =
                    (!config.is_null()).then(|| unsafe { CStr::from_ptr(config) }.to_string_lossy().into_owned());
                self.refresh_token(config.as_deref());
            }
            _ => {}
        }
    }

    /// What rust-rdkafka does with a token refresh event: ask the context for a token and give
    /// it to librdkafka, or tell librdkafka why there is none.
    fn refresh_token(&self, config: Option<&str>) {
        let rk = self.producer.client().native_ptr();
        let failure = |why: String| {
            let why = CString::new(why.replace('\0', " ")).unwrap_or_default();
            // SAFETY: `rk` is the live client; `why` is NUL-terminated and outlives the call.
            unsafe { rd::rd_kafka_oauthbearer_set_token_failure(rk, why.as_ptr()) };
        };
        let token = match self.producer.context().generate_oauth_token(config) {
            Ok(t) => t,
            Err(e) => return failure(e.to_string()),
        };
        let (Ok(value), Ok(principal)) = (CString::new(token.token), CString::new(token.principal_name)) else {
            return failure("the token or its principal holds a NUL byte".into());
        };
        let mut errstr = [0 as std::ffi::c_char; 512];
        // SAFETY: `rk` is the live client; `value` and `principal` are NUL-terminated and outlive
        // the call; no extensions (null, 0); `errstr` is writable and its size is passed.
        let code = unsafe {
            rd::rd_kafka_oauthbearer_set_token(
                rk,
                value.as_ptr(),
                token.lifetime_ms,
                principal.as_ptr(),
                ptr::null_mut(),
                0,
                errstr.as_mut_ptr(),
                errstr.len(),
            )
        };
        if code != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            let bytes: Vec<u8> = errstr.iter().take_while(|c| **c != 0).map(|c| *c as u8).collect();
            failure(String::from_utf8_lossy(&bytes).into_owned());
        }
    }
}

/// librdkafka's syslog-style level, as rust-rdkafka maps it.
fn log_level(level: i32) -> RDKafkaLogLevel {
    match level {
        0 => RDKafkaLogLevel::Emerg,
        1 => RDKafkaLogLevel::Alert,
        2 => RDKafkaLogLevel::Critical,
        3 => RDKafkaLogLevel::Error,
        4 => RDKafkaLogLevel::Warning,
        5 => RDKafkaLogLevel::Notice,
        6 => RDKafkaLogLevel::Info,
        _ => RDKafkaLogLevel::Debug,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rdkafka::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::{Headers, Message};
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::{BaseProducer, DeliveryResult, ProducerContext};
    use rdkafka::{ClientContext, TopicPartitionList};
    use std::sync::Mutex;

    use super::*;

    /// A one-broker mock cluster with topic `t`, and a producer on it with `props`.
    fn producer_on_mock<C: ProducerContext + Default>(
        props: &[(&str, &str)],
    ) -> (MockCluster<'static, rdkafka::producer::DefaultProducerContext>, BaseProducer<C>) {
        let mock = MockCluster::new(1).unwrap();
        mock.create_topic("t", 1, 1).unwrap();
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", mock.bootstrap_servers());
        for (k, v) in props {
            config.set(*k, *v);
        }
        let producer = config.create_with_context(C::default()).unwrap();
        (mock, producer)
    }

    /// Serve `producer`'s queue until `done` says so (at most 5 s): the delivery reports.
    fn reports<C: ProducerContext>(producer: &BaseProducer<C>, done: impl Fn(&[Delivered]) -> bool) -> Vec<Delivered> {
        let mut got: Vec<Delivered> = Vec::new();
        let mut events = Events::new(producer);
        for _ in 0..100 {
            events.serve(Duration::from_millis(50), &mut |batch| got.extend_from_slice(batch));
            if done(&got) {
                break;
            }
        }
        got
    }

    /// The first `n` records of partition 0 of `t`: key, value, timestamp, headers.
    #[allow(clippy::type_complexity)]
    fn read_back(
        bootstrap: &str,
        n: usize,
    ) -> Vec<(Option<Vec<u8>>, Option<Vec<u8>>, Option<i64>, Vec<(String, String)>)> {
        let consumer: BaseConsumer =
            ClientConfig::new().set("bootstrap.servers", bootstrap).set("group.id", "g").create().unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("t", 0, rdkafka::Offset::Beginning).unwrap();
        consumer.assign(&tpl).unwrap();
        let mut got = Vec::new();
        for _ in 0..100 {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                let hs: Vec<(String, String)> = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|x| (x.key.to_string(), String::from_utf8_lossy(x.value.unwrap_or_default()).into()))
                            .collect()
                    })
                    .unwrap_or_default();
                got.push((m.key().map(|k| k.to_vec()), m.payload().map(|p| p.to_vec()), m.timestamp().to_millis(), hs));
                if got.len() == n {
                    break;
                }
            }
        }
        got
    }

    #[derive(Default)]
    struct Acks(Mutex<Vec<(usize, bool)>>);
    impl ClientContext for Acks {}
    impl ProducerContext for Acks {
        type DeliveryOpaque = usize;
        fn delivery(&self, r: &DeliveryResult<'_>, opaque: usize) {
            if let Ok(mut v) = self.0.lock() {
                v.push((opaque, r.is_ok()));
            }
        }
    }

    #[test]
    fn records_arrive_with_key_value_timestamp_headers_and_their_opaque_comes_back_and_an_empty_key_is_none() {
        let (mock, producer) = producer_on_mock::<Acks>(&[("linger.ms", "0")]);
        let topic = TopicHandle::new(&producer, "t").unwrap();
        let headers = HeaderTemplate::new([("schema", "v2"), ("fw", "4.0")].into_iter());
        for (i, h) in [None, Some(&headers), None].into_iter().enumerate() {
            let key = if i < 2 { format!("device-{i}") } else { String::new() };
            let r = Record {
                topic: &topic,
                key: key.as_bytes(),
                value: b"payload",
                timestamp_ms: 1_700_000_000_000 + i as i64,
                headers: h,
                opaque: 40 + i,
            };
            produce(&producer, &r).unwrap();
        }
        // Delivery reports come through `Events`, not the context's `delivery`.
        let got = reports(&producer, |g| g.len() == 3);
        let opaques: Vec<(usize, i32, i64, bool)> =
            got.iter().map(|d| (d.opaque, d.partition, d.offset, d.error.is_none())).collect();
        assert_eq!(opaques, vec![(40, 0, 0, true), (41, 0, 1, true), (42, 0, 2, true)]);
        assert!(producer.context().0.lock().unwrap().is_empty(), "the context's delivery was not called");
        drop(topic);

        let got = read_back(&mock.bootstrap_servers(), 3);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].0.as_deref(), Some(&b"device-0"[..]));
        assert_eq!(got[0].1.as_deref(), Some(&b"payload"[..]));
        assert_eq!(got[0].2, Some(1_700_000_000_000));
        assert!(got[0].3.is_empty());
        assert_eq!(got[1].2, Some(1_700_000_000_001));
        assert_eq!(got[1].3, vec![("schema".into(), "v2".into()), ("fw".into(), "4.0".into())]);
        assert_eq!(got[2].0, None, "an empty key is sent as no key at all");
    }

    #[test]
    fn a_full_queue_is_reported_and_the_record_not_enqueued() {
        let (_mock, producer) =
            producer_on_mock::<Acks>(&[("queue.buffering.max.messages", "1"), ("linger.ms", "1000")]);
        let topic = TopicHandle::new(&producer, "t").unwrap();
        let headers = HeaderTemplate::new([("a", "b")].into_iter());
        let r = Record { topic: &topic, key: b"k", value: b"v", timestamp_ms: 0, headers: Some(&headers), opaque: 1 };
        assert_eq!(produce(&producer, &r), Ok(()));
        assert_eq!(produce(&producer, &r), Err(RDKafkaErrorCode::QueueFull));
        assert_eq!(producer.in_flight_count(), 1);
        producer.purge(rdkafka::producer::PurgeConfig::default().queue().inflight());
        producer.poll(Duration::from_millis(10));
    }

    /// A context that remembers the statistics and errors `Events` hands it.
    #[derive(Default)]
    struct Seen {
        stats: Mutex<u32>,
        errors: Mutex<Vec<String>>,
    }
    impl ClientContext for Seen {
        fn stats_raw(&self, statistics: &[u8]) {
            if statistics.starts_with(b"{") {
                *self.stats.lock().unwrap() += 1;
            }
        }
        fn error(&self, error: KafkaError, reason: &str) {
            self.errors.lock().unwrap().push(format!("{error}: {reason}"));
        }
    }
    impl ProducerContext for Seen {
        type DeliveryOpaque = usize;
        fn delivery(&self, _: &DeliveryResult<'_>, _: usize) {}
    }

    #[test]
    fn events_hand_failed_reports_with_their_error_and_other_events_to_the_context() {
        let (mock, producer) = producer_on_mock::<Seen>(&[
            ("statistics.interval.ms", "100"),
            ("message.timeout.ms", "300"),
            ("linger.ms", "0"),
        ]);
        let topic = TopicHandle::new(&producer, "t").unwrap();
        // The only broker goes away: the record times out and its report carries the error.
        mock.broker_down(1).unwrap();
        let r = Record { topic: &topic, key: b"k", value: b"v", timestamp_ms: 0, headers: None, opaque: 7 };
        produce(&producer, &r).unwrap();
        let stats = || *producer.context().stats.lock().unwrap();
        let got = reports(&producer, |g| !g.is_empty() && stats() > 0);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].opaque, 7);
        assert_eq!(got[0].error, Some(RDKafkaErrorCode::MessageTimedOut));
        assert!(stats() > 0, "statistics reached the context");
    }

    #[test]
    fn lent_values_arrive_intact_and_a_buffer_is_refused_until_its_report_returns_it() {
        let (mock, producer) = producer_on_mock::<Seen>(&[("linger.ms", "20")]);
        let topic = TopicHandle::new(&producer, "t").unwrap();
        let mut lender = Lender::default();
        for slot in 0..3usize {
            let b = lender.buffer(slot).unwrap();
            b.clear();
            b.extend_from_slice(format!("value-{slot}").as_bytes());
            let r = Record { topic: &topic, key: b"k", value: &[], timestamp_ms: 0, headers: None, opaque: slot };
            produce_lent(&producer, &r, &mut lender, slot).unwrap();
            assert!(lender.buffer(slot).is_none(), "a lent buffer cannot be written");
        }
        // A record whose opaque claims to be lent is refused; so is a slot that is lent.
        let r = Record { topic: &topic, key: b"k", value: b"v", timestamp_ms: 0, headers: None, opaque: LENT | 1 };
        assert_eq!(produce(&producer, &r), Err(RDKafkaErrorCode::InvalidArgument));
        let r = Record { topic: &topic, key: b"k", value: &[], timestamp_ms: 0, headers: None, opaque: 1 };
        assert_eq!(produce_lent(&producer, &r, &mut lender, 1), Err(RDKafkaErrorCode::InvalidArgument));
        let got = reports(&producer, |g| g.len() == 3);
        assert_eq!(got.iter().map(|d| d.opaque).collect::<Vec<_>>(), vec![0, 1, 2]);
        for d in &got {
            lender.returned(d);
        }
        assert!(lender.buffer(1).is_some(), "its report gave the buffer back");
        let values: Vec<Option<Vec<u8>>> = read_back(&mock.bootstrap_servers(), 3).into_iter().map(|r| r.1).collect();
        assert_eq!(values, ["value-0", "value-1", "value-2"].map(|v| Some(v.as_bytes().to_vec())));
    }
}
