//! The one librdkafka call on the producer's hot path, made directly.
//!
//! rust-rdkafka's `BaseProducer::send` names the topic on every record, so librdkafka looks the
//! topic up under a write lock of the whole client, after a `CString` allocation. At a million
//! records per second that lookup was a tenth of the producer thread (see BENCHMARKS.md).
//! Here the producer keeps one topic handle per topic and one native header set per payload
//! version, and passes them to `rd_kafka_producev` itself, the way librdkafka's own
//! `rdkafka_performance` does. Delivery reports still arrive through rust-rdkafka's
//! `ProducerContext::delivery`, with the `usize` opaque given here.
//!
//! This file holds the crate's only `unsafe` FFI besides `kill(2)` (faults) and `sysconf(3)`
//! (the self-monitor); each block says why it is sound.

use std::ffi::{CString, c_void};
use std::marker::PhantomData;
use std::ptr;

use rdkafka::bindings as rd;
use rdkafka::error::RDKafkaErrorCode;
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

/// Enqueue one record (librdkafka copies key and value). `Err` carries librdkafka's reason,
/// e.g. `QueueFull`; then nothing was enqueued and no delivery report will come.
pub fn produce<C: ProducerContext<DeliveryOpaque = usize>>(
    producer: &BaseProducer<C>,
    r: &Record<'_>,
) -> Result<(), RDKafkaErrorCode> {
    // SAFETY: a copy of the template, owned by us until librdkafka accepts the record.
    let headers = r.headers.map_or(ptr::null_mut(), |t| unsafe { rd::rd_kafka_headers_copy(t.0) });
    // SAFETY: every pointer is valid for the call: the client and topic handle live as long as
    // the producer, key and value are borrowed slices that librdkafka copies (F_COPY; a null key
    // with length 0 means no key), and the
    // argument list follows rd_kafka_producev's vtype/value pairs, ended by VTYPE_END. The opaque
    // is an integer, never dereferenced.
    let err = unsafe {
        rd::rd_kafka_producev(
            producer.client().native_ptr(),
            rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_RKT,
            r.topic.0,
            rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_PARTITION,
            -1i32,
            rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_MSGFLAGS,
            rd::RD_KAFKA_MSG_F_COPY,
            rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_VALUE,
            r.value.as_ptr() as *mut c_void,
            r.value.len(),
            rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_KEY,
            if r.key.is_empty() { ptr::null() } else { r.key.as_ptr() as *const c_void },
            r.key.len(),
            rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_OPAQUE,
            r.opaque as *mut c_void,
            rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_TIMESTAMP,
            r.timestamp_ms,
            rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_HEADERS,
            headers,
            rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_END,
        )
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
        let mock = MockCluster::new(1).unwrap();
        mock.create_topic("t", 1, 1).unwrap();
        let bootstrap = mock.bootstrap_servers();
        let producer: BaseProducer<Acks> = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("linger.ms", "0")
            .create_with_context(Acks::default())
            .unwrap();
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
        for _ in 0..100 {
            producer.poll(Duration::from_millis(50));
            if producer.context().0.lock().unwrap().len() == 3 {
                break;
            }
        }
        assert_eq!(*producer.context().0.lock().unwrap(), vec![(40, true), (41, true), (42, true)]);
        drop(topic);

        let consumer: BaseConsumer =
            ClientConfig::new().set("bootstrap.servers", &bootstrap).set("group.id", "g").create().unwrap();
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
                if got.len() == 3 {
                    break;
                }
            }
        }
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
        let mock = MockCluster::new(1).unwrap();
        mock.create_topic("t", 1, 1).unwrap();
        let producer: BaseProducer<Acks> = ClientConfig::new()
            .set("bootstrap.servers", mock.bootstrap_servers())
            .set("queue.buffering.max.messages", "1")
            .set("linger.ms", "1000")
            .create_with_context(Acks::default())
            .unwrap();
        let topic = TopicHandle::new(&producer, "t").unwrap();
        let headers = HeaderTemplate::new([("a", "b")].into_iter());
        let r = Record { topic: &topic, key: b"k", value: b"v", timestamp_ms: 0, headers: Some(&headers), opaque: 1 };
        assert_eq!(produce(&producer, &r), Ok(()));
        assert_eq!(produce(&producer, &r), Err(RDKafkaErrorCode::QueueFull));
        assert_eq!(producer.in_flight_count(), 1);
        producer.purge(rdkafka::producer::PurgeConfig::default().queue().inflight());
        producer.poll(Duration::from_millis(10));
    }
}
