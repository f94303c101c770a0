//! The compatibility matrix (`fleetstorm check --compat`): what IoT pipelines rely on, each
//! capability tried against the target with the actual requests on scratch topics
//! (`fleetstorm.compat.<random>`, deleted at the end), and judged on what came back.
//!
//! A probe's verdict ([`Outcome`]) is **works** when the result was checked, **refused** when the
//! target answered with an error code (named; `UnsupportedFeature` when it does not offer the API
//! at all), **wrong** when it answered but did something Kafka does not (what was expected and
//! what was seen), and **unverified** when our side could not tell (a timeout, a codec this build
//! of librdkafka lacks, a scratch topic that could not be made): never blamed on the target.
//!
//! The embedded cluster has no CreateTopics: its scratch topic is made through the mock's own API,
//! after the CreateTopics cell recorded the refusal. Every probe is bounded by one timeout; the
//! two group probes (a join takes seconds) run beside the others. `docs/compat.md` says what each
//! cell tries.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, Timestamp};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::target::{Connection, TargetError};
use super::{ClientEvents, Ctx, client_config};
use crate::config::profile::{Profile, Redactor};
use crate::report::schema::{Capability, CompatCell, CompatMatrix, Outcome};

/// The layout version of `compat.json`.
pub const SCHEMA_VERSION: u32 = 1;

/// Partitions of the main scratch topic: 0 for the produce probes, 1 for replay by time (its
/// records' timestamps must not follow others'), 2 for DeleteRecords (which moves the log start).
const PARTITIONS: i32 = 3;
const P_PRODUCE: i32 = 0;
const P_TIME: i32 = 1;
const P_DELETE: i32 = 2;

/// How the check runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// The longest one probe may take (a join, a transaction, a read back).
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options { timeout: Duration::from_secs(15) }
    }
}

/// Why there is no matrix at all (a target that cannot be reached; every other problem is a cell).
#[derive(Debug, thiserror::Error)]
pub enum CompatError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("could not start the probes: {0}")]
    Setup(String),
}

/// Try every [`Capability`] against the profile's target.
pub fn matrix(profile: &Profile, redactor: Arc<Redactor>, opts: &Options) -> Result<CompatMatrix, CompatError> {
    let started = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let t0 = Instant::now();
    let events = Arc::new(ClientEvents::default());
    let conn = Connection::open(profile, events.clone(), redactor.clone(), Arc::new(|| false))?;
    let probes = Probes::new(&conn, events, redactor.clone(), opts.timeout)?;
    let mut cells: BTreeMap<Capability, CompatCell> = BTreeMap::new();
    let mut warnings = Vec::new();
    let mut scratch = Vec::new();

    // CreateTopics first: every other probe needs the scratch topic.
    let t = Instant::now();
    let created = probes.create_topic(&probes.topic, PARTITIONS, &[]);
    let create_took = t.elapsed();
    let ready = match (&created, &conn.embedded) {
        (Ok(_), _) => {
            scratch.push(probes.topic.clone());
            Ok(())
        }
        (Err(_), Some(mock)) => {
            // The mock answers no CreateTopics: make the scratch topic through its own API.
            let made = mock
                .create_topic(&probes.topic, PARTITIONS, probes.replication)
                .map_err(|e| format!("the embedded cluster's create_topic: {e}"))
                .and_then(|()| probes.wait_for_leaders(&probes.topic, PARTITIONS));
            if made.is_ok() {
                scratch.push(probes.topic.clone());
            }
            made
        }
        (Err(_), None) => Err("CreateTopics did not make it".to_string()),
    };
    cells.insert(Capability::CreateTopics, cell(Capability::CreateTopics, create_took, created));

    match ready {
        Ok(()) => {
            let groups = [Capability::ClassicGroup, Capability::ConsumerGroupProtocol];
            let markers: Vec<_> = groups.iter().map(|&g| (g, probes.group_markers(g))).collect();
            std::thread::scope(|s| {
                let handles: Vec<_> = markers
                    .into_iter()
                    .map(|(g, m)| {
                        let probes = &probes;
                        s.spawn(move || {
                            let t = Instant::now();
                            let result = m.and_then(|m| probes.group(g, &m));
                            cell(g, t.elapsed(), result)
                        })
                    })
                    .collect();
                for (cap, t, result) in probes.sequential(&mut scratch) {
                    cells.insert(cap, cell(cap, t, result));
                }
                for (h, g) in handles.into_iter().zip(groups) {
                    let c = h.join().unwrap_or_else(|_| {
                        cell(g, Duration::ZERO, Err(Fail::Unverified("the probe's thread died".into())))
                    });
                    cells.insert(g, c);
                }
            });
        }
        Err(why) => {
            let why = format!("no scratch topic ({})", redactor.scrub(&why));
            let rest: Vec<Capability> = Capability::ALL.into_iter().filter(|c| !cells.contains_key(c)).collect();
            for cap in rest {
                cells.insert(cap, cell(cap, Duration::ZERO, Err(Fail::Unverified(why.clone()))));
            }
        }
    }

    if conn.embedded.is_none() {
        warnings.extend(probes.delete_topics(&scratch));
        warnings.extend(probes.delete_groups());
    }
    let matrix = CompatMatrix {
        schema_version: SCHEMA_VERSION,
        profile: profile.name.clone(),
        embedded: conn.is_embedded(),
        bootstrap: conn.bootstrap.clone(),
        brokers: conn.brokers.clone(),
        librdkafka: rdkafka::util::get_rdkafka_version().1,
        codecs_built: probes.codecs_built.clone(),
        started,
        elapsed_s: t0.elapsed().as_secs_f64(),
        probe_timeout_s: opts.timeout.as_secs_f64(),
        cells: Capability::ALL.iter().filter_map(|c| cells.remove(c)).collect(),
        scratch_topics: scratch,
        warnings,
    };
    Ok(redactor.scrub_all(matrix))
}

/// Why a probe did not work: the cell's verdict with its evidence.
#[derive(Clone, Debug)]
enum Fail {
    Refused { code: String, detail: String },
    Wrong { expected: String, seen: String, detail: String },
    Unverified(String),
}

fn cell(capability: Capability, elapsed: Duration, result: Result<String, Fail>) -> CompatCell {
    let (outcome, detail) = match result {
        Ok(detail) => (Outcome::Works, detail),
        Err(Fail::Refused { code, detail }) => (Outcome::Refused { code }, detail),
        Err(Fail::Wrong { expected, seen, detail }) => {
            let line = format!("{detail}: expected {expected}, saw {seen}");
            (Outcome::Wrong { expected, seen }, line)
        }
        Err(Fail::Unverified(detail)) => (Outcome::Unverified, detail),
    };
    let elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    CompatCell { capability, outcome, detail, elapsed_ms }
}

fn wrong(detail: impl Into<String>, expected: impl Into<String>, seen: impl Into<String>) -> Fail {
    Fail::Wrong { expected: expected.into(), seen: seen.into(), detail: detail.into() }
}

/// Error codes the target sent (broker error codes are positive), or librdkafka's word that the
/// target does not offer the API (`UnsupportedFeature`, from its ApiVersions): the target said
/// no. Every other (local) code, a timeout or a lost connection, says nothing about the target.
fn said_by_target(code: RDKafkaErrorCode) -> bool {
    code == RDKafkaErrorCode::UnsupportedFeature || (code as i32) > 0
}

/// An error's code. rust-rdkafka gives none for a failed admin operation (`AdminOp`), though
/// it carries one.
fn code_of(e: &KafkaError) -> Option<RDKafkaErrorCode> {
    match e {
        KafkaError::AdminOp(code) => Some(*code),
        other => other.rdkafka_error_code(),
    }
}

/// Answers that mean "ask again shortly" while a group forms or a topic is new.
fn transient(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::NotCoordinator
            | RDKafkaErrorCode::CoordinatorNotAvailable
            | RDKafkaErrorCode::CoordinatorLoadInProgress
            | RDKafkaErrorCode::WaitingForCoordinator
            | RDKafkaErrorCode::NotLeaderForPartition
            | RDKafkaErrorCode::LeaderNotAvailable
            | RDKafkaErrorCode::UnknownTopicOrPartition
            | RDKafkaErrorCode::UnknownTopic
            | RDKafkaErrorCode::UnknownPartition
            | RDKafkaErrorCode::RebalanceInProgress
            | RDKafkaErrorCode::PartitionEOF
    )
}

/// A producer's context: its acknowledgements by record index (the delivery opaque), logs and
/// errors through the check's context (secrets scrubbed).
struct Acks {
    ctx: Ctx,
    acks: Mutex<BTreeMap<usize, Result<i64, KafkaError>>>,
}

impl ClientContext for Acks {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.ctx.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.ctx.error(error, reason);
    }
}

impl ProducerContext for Acks {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, index: usize) {
        let answer = match result {
            Ok(m) => Ok(m.offset()),
            Err((e, _)) => Err(e.clone()),
        };
        if let Ok(mut acks) = self.acks.lock() {
            acks.insert(index, answer);
        }
    }
}

/// A record as read back.
#[derive(Clone, Debug, PartialEq)]
struct Got {
    offset: i64,
    key: String,
    payload: Vec<u8>,
    headers: Vec<(String, Option<Vec<u8>>)>,
    timestamp: Timestamp,
}

/// A record to send.
#[derive(Clone, Debug, Default)]
struct Rec {
    partition: i32,
    key: String,
    payload: Vec<u8>,
    headers: Vec<(String, Option<Vec<u8>>)>,
    timestamp: Option<i64>,
}

impl Rec {
    fn new(partition: i32, key: String, payload: impl Into<Vec<u8>>) -> Rec {
        Rec { partition, key, payload: payload.into(), ..Rec::default() }
    }
}

type Timed = (Capability, Duration, Result<String, Fail>);

/// Everything the probes share.
struct Probes {
    bootstrap: String,
    base: BTreeMap<String, String>,
    reader_defaults: BTreeMap<String, String>,
    ctx: Ctx,
    redactor: Arc<Redactor>,
    timeout: Duration,
    rt: tokio::runtime::Runtime,
    /// The random part of every scratch name.
    id: String,
    topic: String,
    replication: i32,
    codecs_built: Vec<String>,
    /// The broker admin requests go to, when the target names no controller.
    admin_broker: Option<i32>,
}

impl Probes {
    fn new(
        conn: &Connection,
        events: Arc<ClientEvents>,
        redactor: Arc<Redactor>,
        timeout: Duration,
    ) -> Result<Probes, CompatError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| CompatError::Setup(e.to_string()))?;
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let id = format!("{:012x}{:04x}", nanos & 0xffff_ffff_ffff, std::process::id() & 0xffff);
        let features = ClientConfig::new()
            .create_native_config()
            .and_then(|c| c.get("builtin.features"))
            .map_err(|e| CompatError::Setup(e.to_string()))?;
        let codecs_built = features
            .split(',')
            .map(str::trim)
            .filter(|f| ["gzip", "snappy", "lz4", "zstd"].contains(f))
            .map(str::to_string)
            .collect();
        Ok(Probes {
            bootstrap: conn.bootstrap.clone(),
            base: conn.base.clone(),
            reader_defaults: conn.reader_defaults(),
            ctx: Ctx { role: "compat".into(), events, redactor: redactor.clone(), auth: conn.auth.clone() },
            redactor,
            timeout,
            rt,
            topic: format!("fleetstorm.compat.{id}"),
            id,
            replication: i32::try_from(conn.brokers.len().clamp(1, 3)).unwrap_or(1),
            codecs_built,
            admin_broker: if conn.is_embedded() { conn.brokers.first().copied() } else { None },
        })
    }

    /// The probes after the scratch topic exists, in matrix order (the group probes run apart).
    fn sequential(&self, scratch: &mut Vec<String>) -> Vec<Timed> {
        let mut out: Vec<Timed> = Vec::new();
        let mut run = |cap: Capability, f: &dyn Fn() -> Result<String, Fail>| {
            let t = Instant::now();
            let result = f();
            out.push((cap, t.elapsed(), result));
        };
        run(Capability::DescribeConfigs, &|| self.describe_configs());
        let compact = format!("{}.compact", self.topic);
        let appendtime = format!("{}.logappend", self.topic);
        run(Capability::CompactedTopic, &|| self.compacted(&compact));
        run(Capability::LogAppendTime, &|| self.log_append_time(&appendtime));
        run(Capability::IdempotentProduce, &|| self.idempotent());
        run(Capability::TransactionCommit, &|| self.transaction(true));
        run(Capability::TransactionAbort, &|| self.transaction(false));
        run(Capability::ReplayByTime, &|| self.replay_by_time());
        run(Capability::Headers, &|| self.headers());
        for (cap, codec) in [
            (Capability::CompressionNone, "none"),
            (Capability::CompressionGzip, "gzip"),
            (Capability::CompressionSnappy, "snappy"),
            (Capability::CompressionLz4, "lz4"),
            (Capability::CompressionZstd, "zstd"),
        ] {
            run(cap, &|| self.compression(codec));
        }
        run(Capability::LargeRecord, &|| self.large_record());
        run(Capability::DeleteRecords, &|| self.delete_records());
        // The extra topics exist if their CreateTopics worked (the cell says so).
        for (cap, name) in [(Capability::CompactedTopic, compact), (Capability::LogAppendTime, appendtime)] {
            if out.iter().any(|(c, _, r)| *c == cap && !matches!(r, Err(Fail::Refused { .. }))) {
                scratch.push(name);
            }
        }
        out
    }

    // ------------------------------------------------------------------ clients and helpers

    fn scrub(&self, e: impl std::fmt::Display) -> String {
        self.redactor.scrub(&e.to_string())
    }

    /// The verdict an error earns: refused when the target said no, unverified otherwise.
    fn judge(&self, what: &str, e: &KafkaError) -> Fail {
        match code_of(e) {
            Some(code) => self.judge_code(what, code, &self.scrub(e)),
            None => Fail::Unverified(format!("{what}: {}", self.scrub(e))),
        }
    }

    fn judge_code(&self, what: &str, code: RDKafkaErrorCode, text: &str) -> Fail {
        if said_by_target(code) {
            Fail::Refused { code: format!("{code:?}"), detail: format!("{what}: {text}") }
        } else {
            Fail::Unverified(format!("{what}: {text}"))
        }
    }

    fn config(&self, layers: &[&BTreeMap<String, String>]) -> ClientConfig {
        let mut all = vec![&self.base];
        all.extend_from_slice(layers);
        client_config(&self.bootstrap, &all)
    }

    fn admin(&self) -> Result<AdminClient<Ctx>, Fail> {
        let admin: AdminClient<Ctx> = self
            .config(&[])
            .create_with_context(self.ctx.clone())
            .map_err(|e| Fail::Unverified(format!("could not create an admin client: {}", self.scrub(e))))?;
        self.prime(admin.inner())?;
        Ok(admin)
    }

    /// A client of ours needs its first OAUTHBEARER token before its first blocking request.
    fn prime<C: rdkafka::ClientContext>(&self, client: &rdkafka::client::Client<C>) -> Result<(), Fail> {
        self.ctx.auth.prime(client).map_err(|e| Fail::Unverified(format!("no OAUTHBEARER token: {}", self.scrub(e))))
    }

    fn admin_options(&self) -> AdminOptions {
        let opts = AdminOptions::new().request_timeout(Some(self.timeout)).operation_timeout(Some(self.timeout));
        // librdkafka sends admin requests to the controller, and the embedded cluster names none
        // in its metadata: they would wait out the timeout unsent. Sent to a broker instead, they
        // get that broker's answer (which is what the cell is about). A real cluster's are left
        // to librdkafka (brokers before Kafka 2.8 answer NotController to anyone else).
        match self.admin_broker {
            Some(b) => opts.broker_id(b),
            None => opts,
        }
    }

    /// Runs an admin future, bounded by the probe timeout.
    fn block<T>(&self, f: impl std::future::Future<Output = T>) -> Option<T> {
        self.rt.block_on(async { tokio::time::timeout(self.timeout, f).await.ok() })
    }

    fn producer(&self, props: &[(&str, &str)]) -> Result<BaseProducer<Acks>, KafkaError> {
        let mut extra: BTreeMap<String, String> = props.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        extra.entry("message.timeout.ms".into()).or_insert_with(|| self.timeout.as_millis().to_string());
        extra.entry("client.id".into()).or_insert_with(|| "fleetstorm-compat".into());
        self.config(&[&extra]).create_with_context(Acks { ctx: self.ctx.clone(), acks: Mutex::default() })
    }

    fn producer_or_fail(&self, what: &str, props: &[(&str, &str)]) -> Result<BaseProducer<Acks>, Fail> {
        let producer = self
            .producer(props)
            .map_err(|e| Fail::Unverified(format!("could not create the {what} producer: {}", self.scrub(e))))?;
        self.prime(producer.client())?;
        Ok(producer)
    }

    /// Send `recs` to `topic` and wait for every acknowledgement: their offsets, in order.
    fn send(&self, producer: &BaseProducer<Acks>, topic: &str, recs: &[Rec]) -> Result<Vec<i64>, Fail> {
        if let Ok(mut acks) = producer.context().acks.lock() {
            acks.clear();
        }
        let deadline = Instant::now() + self.timeout;
        for (i, r) in recs.iter().enumerate() {
            let mut record = BaseRecord::with_opaque_to(topic, i)
                .partition(r.partition)
                .key(r.key.as_bytes())
                .payload(&r.payload[..]);
            if !r.headers.is_empty() {
                let mut h = OwnedHeaders::new();
                for (key, value) in &r.headers {
                    h = h.insert(Header { key: key.as_str(), value: value.as_deref() });
                }
                record = record.headers(h);
            }
            if let Some(ts) = r.timestamp {
                record = record.timestamp(ts);
            }
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((e, back)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                        if Instant::now() > deadline {
                            return Err(Fail::Unverified("the producer's queue stayed full".into()));
                        }
                        producer.poll(Duration::from_millis(10));
                        record = back;
                    }
                    Err((e, _)) => return Err(self.judge("enqueueing a record", &e)),
                }
            }
        }
        loop {
            producer.poll(Duration::from_millis(20));
            let acks = producer.context().acks.lock().map(|a| a.clone()).unwrap_or_default();
            if acks.len() >= recs.len() {
                let mut offsets = Vec::with_capacity(recs.len());
                for i in 0..recs.len() {
                    match acks.get(&i) {
                        Some(Ok(o)) => offsets.push(*o),
                        Some(Err(e)) => return Err(self.judge("producing", e)),
                        None => return Err(Fail::Unverified(format!("no acknowledgement of record {i}"))),
                    }
                }
                return Ok(offsets);
            }
            if Instant::now() > deadline {
                return Err(Fail::Unverified(format!(
                    "{} of {} records acknowledged within {:?}",
                    acks.len(),
                    recs.len(),
                    self.timeout
                )));
            }
        }
    }

    fn reader(&self, isolation: &str) -> Result<BaseConsumer<Ctx>, Fail> {
        let extra: BTreeMap<String, String> = [
            ("group.id", format!("fleetstorm.compat.{}.reader", self.id)),
            ("client.id", "fleetstorm-compat".into()),
            ("enable.auto.commit", "false".into()),
            ("enable.auto.offset.store", "false".into()),
            ("isolation.level", isolation.into()),
            ("auto.offset.reset", "earliest".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let reader: BaseConsumer<Ctx> = self
            .config(&[&self.reader_defaults, &extra])
            .create_with_context(self.ctx.clone())
            .map_err(|e| Fail::Unverified(format!("could not create a reader: {}", self.scrub(e))))?;
        self.prime(reader.client())?;
        Ok(reader)
    }

    /// Read `topic[partition]` from `from` until `done` says so or the timeout: what was read,
    /// and whether `done` was reached.
    fn read(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        isolation: &str,
        done: &dyn Fn(&[Got]) -> bool,
    ) -> Result<(Vec<Got>, bool), Fail> {
        let consumer = self.reader(isolation)?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(from))
            .and_then(|()| consumer.assign(&tpl))
            .map_err(|e| Fail::Unverified(format!("could not assign {topic}[{partition}]: {}", self.scrub(e))))?;
        let deadline = Instant::now() + self.timeout;
        let mut got = Vec::new();
        while Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    let headers = m
                        .headers()
                        .map(|h| h.iter().map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec))).collect())
                        .unwrap_or_default();
                    got.push(Got {
                        offset: m.offset(),
                        key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                        payload: m.payload().unwrap_or_default().to_vec(),
                        headers,
                        timestamp: m.timestamp(),
                    });
                    if done(&got) {
                        return Ok((got, true));
                    }
                }
                Some(Err(e)) if e.rdkafka_error_code().is_some_and(transient) => {}
                Some(Err(e)) => return Err(self.judge("reading back", &e)),
                None => {}
            }
        }
        Ok((got, false))
    }

    /// Read until the record at `last` (inclusive) has been read.
    fn read_through(&self, topic: &str, partition: i32, from: i64, last: i64) -> Result<Vec<Got>, Fail> {
        let (got, done) =
            self.read(topic, partition, from, "read_uncommitted", &|g| g.iter().any(|r| r.offset >= last))?;
        if done {
            Ok(got)
        } else {
            Err(Fail::Unverified(format!(
                "read {} record(s) back from {topic}[{partition}], not reaching offset {last} within {:?}",
                got.len(),
                self.timeout
            )))
        }
    }

    fn create_topic(&self, name: &str, partitions: i32, config: &[(&str, &str)]) -> Result<String, Fail> {
        let admin = self.admin()?;
        let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(self.replication));
        for (k, v) in config {
            topic = topic.set(k, v);
        }
        let what = if config.is_empty() {
            "CreateTopics".to_string()
        } else {
            let c: Vec<String> = config.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("CreateTopics with {}", c.join(", "))
        };
        let answer = self
            .block(admin.create_topics([&topic], &self.admin_options()))
            .ok_or_else(|| Fail::Unverified(format!("{what}: no answer within {:?}", self.timeout)))?;
        let results = answer.map_err(|e| self.judge(&what, &e))?;
        for r in results {
            if let Err((_, code)) = r {
                return Err(self.judge_code(&what, code, &format!("{code:?}")));
            }
        }
        self.wait_for_leaders(name, partitions).map_err(Fail::Unverified)?;
        Ok(format!(
            "created `{name}` ({partitions} partition(s), replication {}), every partition led in metadata",
            self.replication
        ))
    }

    fn wait_for_leaders(&self, name: &str, partitions: i32) -> Result<(), String> {
        let probe = self.reader("read_uncommitted").map_err(|_| "could not create a metadata client".to_string())?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let led =
                probe.fetch_metadata(Some(name), self.timeout.min(Duration::from_secs(5))).ok().is_some_and(|md| {
                    md.topics().first().is_some_and(|t| {
                        t.error().is_none()
                            && t.partitions().len() == usize::try_from(partitions).unwrap_or(0)
                            && t.partitions().iter().all(|p| p.leader() >= 0 && p.error().is_none())
                    })
                });
            if led {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("`{name}` had no leader for every partition within {:?}", self.timeout));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `key=value` of `topic`'s configs, or the verdict of a failed DescribeConfigs.
    fn topic_configs(&self, topic: &str) -> Result<BTreeMap<String, Option<String>>, Fail> {
        let admin = self.admin()?;
        let what = "DescribeConfigs";
        let spec = ResourceSpecifier::Topic(topic);
        let answer = self
            .block(admin.describe_configs([&spec], &self.admin_options()))
            .ok_or_else(|| Fail::Unverified(format!("{what}: no answer within {:?}", self.timeout)))?;
        let results = answer.map_err(|e| self.judge(what, &e))?;
        match results.into_iter().next() {
            Some(Ok(resource)) => Ok(resource.entries.into_iter().map(|e| (e.name, e.value)).collect()),
            Some(Err(code)) => Err(self.judge_code(what, code, &format!("{code:?}"))),
            None => Err(wrong(what, format!("one resource for topic `{topic}`"), "an empty answer")),
        }
    }

    // ------------------------------------------------------------------ the probes

    fn describe_configs(&self) -> Result<String, Fail> {
        let configs = self.topic_configs(&self.topic)?;
        match configs.get("cleanup.policy") {
            Some(Some(v)) => Ok(format!("{} config entries for the scratch topic, cleanup.policy={v}", configs.len())),
            other => Err(wrong(
                "DescribeConfigs of the scratch topic",
                "its cleanup.policy",
                format!("{} entries, cleanup.policy {other:?}", configs.len()),
            )),
        }
    }

    fn compacted(&self, name: &str) -> Result<String, Fail> {
        self.create_topic(name, 1, &[("cleanup.policy", "compact")])?;
        let configs = self.topic_configs(name)?;
        match configs.get("cleanup.policy").cloned().flatten() {
            Some(v) if v == "compact" => {}
            other => {
                return Err(wrong(
                    "a topic created with cleanup.policy=compact",
                    "DescribeConfigs to show cleanup.policy=compact",
                    format!("{other:?}"),
                ));
            }
        }
        let producer = self.producer_or_fail("compacted-topic", &[])?;
        self.send(&producer, name, &[Rec::new(0, "device-1".into(), "state")])?;
        Ok("accepted: created with cleanup.policy=compact, DescribeConfigs shows it, a keyed record \
            acknowledged (compaction itself takes too long to observe)"
            .into())
    }

    fn log_append_time(&self, name: &str) -> Result<String, Fail> {
        self.create_topic(name, 1, &[("message.timestamp.type", "LogAppendTime")])?;
        let producer = self.producer_or_fail("LogAppendTime", &[])?;
        let stamped = now_ms() - 600_000;
        let rec = Rec { timestamp: Some(stamped), ..Rec::new(0, "lat".into(), "x") };
        let offsets = self.send(&producer, name, &[rec])?;
        let at = offsets.first().copied().unwrap_or(0);
        let got = self.read_through(name, 0, at, at)?;
        let now = now_ms();
        match got.iter().find(|g| g.offset == at).map(|g| g.timestamp) {
            Some(Timestamp::LogAppendTime(t)) if (t - now).abs() < 120_000 => Ok(format!(
                "a record sent stamped 10 minutes ago read back with the broker's LogAppendTime ({}s ago)",
                (now - t) / 1000
            )),
            seen => Err(wrong(
                "a record sent stamped 10 minutes ago",
                "a LogAppendTime timestamp within 2 minutes of now",
                format!("{seen:?}"),
            )),
        }
    }

    fn idempotent(&self) -> Result<String, Fail> {
        let producer = self.producer_or_fail("idempotent", &[("enable.idempotence", "true"), ("acks", "all")])?;
        let n = 20;
        let recs: Vec<Rec> =
            (0..n).map(|i| Rec::new(P_PRODUCE, format!("idem-{i}"), format!("idempotent {i}"))).collect();
        let offsets = self.send(&producer, &self.topic, &recs)?;
        let (first, last) = (offsets.iter().copied().min().unwrap_or(0), offsets.iter().copied().max().unwrap_or(0));
        let got = self.read_through(&self.topic, P_PRODUCE, first, last)?;
        let seen: Vec<&str> = got.iter().filter(|g| g.key.starts_with("idem-")).map(|g| g.key.as_str()).collect();
        let expected: Vec<String> = (0..n).map(|i| format!("idem-{i}")).collect();
        if seen == expected {
            Ok(format!("{n} records acknowledged (enable.idempotence, acks=all) and read back once each, in order"))
        } else {
            Err(wrong(
                "idempotent produce read back",
                format!("idem-0..idem-{} once each in order", n - 1),
                summarize(&seen),
            ))
        }
    }

    /// One transaction, committed or aborted, then what `read_committed` (and, for an abort,
    /// `read_uncommitted`) readers see of it, up to a plain record sent after it.
    fn transaction(&self, commit: bool) -> Result<String, Fail> {
        let word = if commit { "commit" } else { "abort" };
        let txn_id = format!("fleetstorm.compat.{}.{word}", self.id);
        let producer = self.producer_or_fail("transactional", &[("transactional.id", txn_id.as_str())])?;
        producer.init_transactions(self.timeout).map_err(|e| self.judge("InitProducerId (init_transactions)", &e))?;
        producer.begin_transaction().map_err(|e| self.judge("begin_transaction", &e))?;
        let n = 5;
        let prefix = format!("txn-{word}-");
        let recs: Vec<Rec> = (0..n).map(|i| Rec::new(P_PRODUCE, format!("{prefix}{i}"), format!("txn {i}"))).collect();
        // Acknowledged before the end: an abort purges what is still queued, which would prove nothing.
        let offsets = self.send(&producer, &self.topic, &recs)?;
        let first = offsets.iter().copied().min().unwrap_or(0);
        if commit {
            producer.commit_transaction(self.timeout).map_err(|e| self.judge("EndTxn (commit)", &e))?;
        } else {
            producer.abort_transaction(self.timeout).map_err(|e| self.judge("EndTxn (abort)", &e))?;
        }
        let plain = self.producer_or_fail("plain", &[])?;
        let end_key = format!("after-txn-{word}");
        let end = self.send(&plain, &self.topic, &[Rec::new(P_PRODUCE, end_key.clone(), "after the transaction")])?;
        let end = end.first().copied().unwrap_or(0);
        let visible = |isolation: &str| -> Result<usize, Fail> {
            let (got, done) =
                self.read(&self.topic, P_PRODUCE, first, isolation, &|g| g.iter().any(|r| r.key == end_key))?;
            if !done {
                return Err(Fail::Unverified(format!(
                    "a {isolation} reader did not reach the record after the transaction (offset {end}) within {:?}",
                    self.timeout
                )));
            }
            Ok(got.iter().filter(|g| g.key.starts_with(&prefix)).count())
        };
        let committed = visible("read_committed")?;
        if commit {
            return if committed == n {
                Ok(format!("{n} records in a committed transaction, all {n} visible to read_committed"))
            } else {
                Err(wrong(
                    "a committed transaction's records read by read_committed",
                    format!("all {n} visible"),
                    format!("{committed} visible"),
                ))
            };
        }
        if committed != 0 {
            return Err(wrong(
                "an aborted transaction's records read by read_committed",
                "none visible",
                format!("{committed} of {n} visible"),
            ));
        }
        let uncommitted = visible("read_uncommitted")?;
        if uncommitted == n {
            Ok(format!(
                "{n} records in an aborted transaction: none visible to read_committed, all {n} to read_uncommitted"
            ))
        } else {
            Err(wrong(
                "an aborted transaction's records read by read_uncommitted",
                format!("all {n} visible"),
                format!("{uncommitted} visible"),
            ))
        }
    }

    fn replay_by_time(&self) -> Result<String, Fail> {
        let producer = self.producer_or_fail("timestamped", &[])?;
        // In the past (brokers refuse timestamps too far in the future), one second apart.
        let t0 = now_ms() - 300_000;
        let recs: Vec<Rec> = (0..3_i64)
            .map(|i| Rec { timestamp: Some(t0 + i * 1000), ..Rec::new(P_TIME, format!("time-{i}"), "timestamped") })
            .collect();
        let offsets = self.send(&producer, &self.topic, &recs)?;
        let expected = offsets.get(1).copied().unwrap_or(0);
        let reader = self.reader("read_uncommitted")?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.topic, P_TIME, Offset::Offset(t0 + 500))
            .map_err(|e| Fail::Unverified(self.scrub(e)))?;
        let what = "ListOffsets by timestamp (offsets_for_times)";
        let answer = reader.offsets_for_times(tpl, self.timeout).map_err(|e| self.judge(what, &e))?;
        let elem = answer
            .find_partition(&self.topic, P_TIME)
            .ok_or_else(|| wrong(what, "an answer for the partition asked", "none"))?;
        elem.error().map_err(|e| self.judge(what, &e))?;
        let detail =
            format!("records stamped t, t+1s, t+2s at offsets {offsets:?}; asked for the first at or after t+0.5s");
        match elem.offset() {
            Offset::Offset(o) if o == expected => Ok(format!("{detail}: offset {o}")),
            Offset::Offset(o) => Err(wrong(detail, format!("offset {expected}"), format!("offset {o}"))),
            Offset::End => Err(wrong(detail, format!("offset {expected}"), "-1 (end: no record at or after it)")),
            other => Err(wrong(detail, format!("offset {expected}"), format!("{other:?}"))),
        }
    }

    fn headers(&self) -> Result<String, Fail> {
        let headers: Vec<(String, Option<Vec<u8>>)> = vec![
            ("content-type".into(), Some(b"application/json".to_vec())),
            ("firmware".into(), Some(vec![0x00, 0xff, 0x10, 0x80])),
            ("trace".into(), Some(b"first".to_vec())),
            ("trace".into(), Some(b"second".to_vec())),
            ("empty".into(), Some(Vec::new())),
            ("null".into(), None),
        ];
        let producer = self.producer_or_fail("headers", &[])?;
        let rec = Rec { headers: headers.clone(), ..Rec::new(P_PRODUCE, "headers".into(), "with headers") };
        let at = self.send(&producer, &self.topic, &[rec])?.first().copied().unwrap_or(0);
        let got = self.read_through(&self.topic, P_PRODUCE, at, at)?;
        let seen = got.iter().find(|g| g.offset == at).map(|g| g.headers.clone()).unwrap_or_default();
        if seen == headers {
            Ok(format!(
                "{} headers (a binary value, a repeated key, an empty and a null value) read back identical, in order",
                headers.len()
            ))
        } else {
            Err(wrong("record headers read back", format!("{headers:?}"), format!("{seen:?}")))
        }
    }

    fn compression(&self, codec: &str) -> Result<String, Fail> {
        if codec != "none" && !self.codecs_built.iter().any(|c| c == codec) {
            return Err(Fail::Unverified(format!(
                "this build of librdkafka lacks {codec} (builtin codecs: {})",
                self.codecs_built.join(", ")
            )));
        }
        let producer = self.producer_or_fail(codec, &[("compression.type", codec), ("linger.ms", "20")])?;
        let n = 20;
        let recs: Vec<Rec> = (0..n)
            .map(|i| Rec::new(P_PRODUCE, format!("codec-{codec}-{i}"), format!("{{\"t\":{i},\"v\":21.5}}").repeat(64)))
            .collect();
        let offsets = self.send(&producer, &self.topic, &recs)?;
        let (first, last) = (offsets.iter().copied().min().unwrap_or(0), offsets.iter().copied().max().unwrap_or(0));
        let got = self.read_through(&self.topic, P_PRODUCE, first, last)?;
        let prefix = format!("codec-{codec}-");
        let seen: Vec<&Got> = got.iter().filter(|g| g.key.starts_with(&prefix)).collect();
        let same =
            seen.len() == recs.len() && seen.iter().zip(&recs).all(|(g, r)| g.key == r.key && g.payload == r.payload);
        if same {
            Ok(format!(
                "{n} records of {} bytes sent {codec}, acknowledged and read back identical",
                recs.first().map_or(0, |r| r.payload.len())
            ))
        } else {
            Err(wrong(
                format!("{codec} records read back"),
                format!("{n} identical records"),
                format!(
                    "{} records, {} identical",
                    seen.len(),
                    seen.iter().zip(&recs).filter(|(g, r)| g.payload == r.payload).count()
                ),
            ))
        }
    }

    fn large_record(&self) -> Result<String, Fail> {
        let size = 900 * 1024;
        let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let producer = self.producer_or_fail("large-record", &[])?;
        let at = self
            .send(&producer, &self.topic, &[Rec::new(P_PRODUCE, "large".into(), payload.clone())])?
            .first()
            .copied()
            .unwrap_or(0);
        let got = self.read_through(&self.topic, P_PRODUCE, at, at)?;
        match got.iter().find(|g| g.offset == at) {
            Some(g) if g.payload == payload => Ok(format!("a {size}-byte record acknowledged and read back identical")),
            Some(g) => Err(wrong(
                "a 900 KiB record read back",
                format!("{size} identical bytes"),
                format!("{} bytes", g.payload.len()),
            )),
            None => Err(wrong("a 900 KiB record read back", format!("the record at offset {at}"), "another offset")),
        }
    }

    fn delete_records(&self) -> Result<String, Fail> {
        let producer = self.producer_or_fail("plain", &[])?;
        let recs: Vec<Rec> = (0..5).map(|i| Rec::new(P_DELETE, format!("del-{i}"), "to delete")).collect();
        let offsets = self.send(&producer, &self.topic, &recs)?;
        let before = offsets.get(3).copied().unwrap_or(0);
        let admin = self.admin()?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.topic, P_DELETE, Offset::Offset(before))
            .map_err(|e| Fail::Unverified(self.scrub(e)))?;
        let what = "DeleteRecords";
        let answer = self
            .block(admin.delete_records(&tpl, &self.admin_options()))
            .ok_or_else(|| Fail::Unverified(format!("{what}: no answer within {:?}", self.timeout)))?;
        let result = answer.map_err(|e| self.judge(what, &e))?;
        if let Some(elem) = result.find_partition(&self.topic, P_DELETE) {
            elem.error().map_err(|e| self.judge(what, &e))?;
        }
        let reader = self.reader("read_uncommitted")?;
        let (low, _) = reader
            .fetch_watermarks(&self.topic, P_DELETE, self.timeout)
            .map_err(|e| self.judge("ListOffsets (earliest) after DeleteRecords", &e))?;
        if low == before {
            Ok(format!("records {offsets:?} sent, deleted before offset {before}: the earliest offset is now {low}"))
        } else {
            Err(wrong(
                format!("DeleteRecords before offset {before} of records {offsets:?}"),
                format!("earliest offset {before}"),
                format!("earliest offset {low}"),
            ))
        }
    }

    /// The records a group probe must read: sent before it joins (it starts from the earliest).
    fn group_markers(&self, group: Capability) -> Result<Vec<(i32, i64)>, Fail> {
        let producer = self.producer_or_fail("plain", &[])?;
        let recs: Vec<Rec> =
            (0..3).map(|i| Rec::new(P_PRODUCE, format!("{}-{i}", group_key(group)), "marker")).collect();
        let offsets = self.send(&producer, &self.topic, &recs)?;
        Ok(offsets.into_iter().map(|o| (P_PRODUCE, o)).collect())
    }

    /// Join a group with `protocol`, be assigned, read the markers, commit after the last one and
    /// read the committed offset back.
    fn group(&self, group: Capability, markers: &[(i32, i64)]) -> Result<String, Fail> {
        let protocol = if group == Capability::ClassicGroup { "classic" } else { "consumer" };
        let mut defaults = self.reader_defaults.clone();
        if protocol == "consumer" {
            // Under KIP-848 the broker owns these: librdkafka refuses them client-side.
            defaults.remove("session.timeout.ms");
            defaults.remove("heartbeat.interval.ms");
        }
        let group_id = group_id(&self.id, protocol);
        let extra: BTreeMap<String, String> = [
            ("group.id", group_id.clone()),
            ("group.protocol", protocol.into()),
            ("client.id", "fleetstorm-compat".into()),
            ("enable.auto.commit", "false".into()),
            ("auto.offset.reset", "earliest".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let consumer: BaseConsumer<Ctx> = self
            .config(&[&defaults, &extra])
            .create_with_context(self.ctx.clone())
            .map_err(|e| self.judge(&format!("creating a group.protocol={protocol} member"), &e))?;
        self.prime(consumer.client())?;
        consumer
            .subscribe(&[self.topic.as_str()])
            .map_err(|e| Fail::Unverified(format!("subscribe: {}", self.scrub(e))))?;
        let key = group_key(group);
        let t = Instant::now();
        let deadline = t + self.timeout;
        let mut assigned_after = None;
        let mut seen = 0;
        let mut last_error = None;
        while Instant::now() < deadline && seen < markers.len() {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) if m.key().is_some_and(|k| k.starts_with(key.as_bytes())) => seen += 1,
                Some(Ok(_)) => {}
                Some(Err(e)) if e.rdkafka_error_code().is_some_and(transient) => last_error = Some(self.scrub(&e)),
                Some(Err(e)) => return Err(self.judge(&format!("group.protocol={protocol}: joining and reading"), &e)),
                None => {}
            }
            if assigned_after.is_none() && consumer.assignment().is_ok_and(|a| a.count() > 0) {
                assigned_after = Some(t.elapsed());
            }
        }
        let Some(assigned_after) = assigned_after else {
            return Err(Fail::Unverified(format!(
                "group.protocol={protocol}: no assignment within {:?}{}",
                self.timeout,
                last_error.map(|e| format!(" (last: {e})")).unwrap_or_default()
            )));
        };
        if seen < markers.len() {
            return Err(Fail::Unverified(format!(
                "group.protocol={protocol}: assigned after {assigned_after:?} but read {seen} of {} records within {:?}",
                markers.len(),
                self.timeout
            )));
        }
        let (partition, last) = markers.iter().copied().max_by_key(|m| m.1).unwrap_or((P_PRODUCE, 0));
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.topic, partition, Offset::Offset(last + 1))
            .map_err(|e| Fail::Unverified(self.scrub(e)))?;
        consumer
            .commit(&tpl, CommitMode::Sync)
            .map_err(|e| self.judge(&format!("group.protocol={protocol}: OffsetCommit"), &e))?;
        let mut ask = TopicPartitionList::new();
        ask.add_partition(&self.topic, partition);
        let committed = consumer
            .committed_offsets(ask, self.timeout)
            .map_err(|e| self.judge(&format!("group.protocol={protocol}: OffsetFetch"), &e))?;
        let back = committed.find_partition(&self.topic, partition).map(|e| e.offset());
        if back != Some(Offset::Offset(last + 1)) {
            return Err(wrong(
                format!("group.protocol={protocol}: committed offset read back"),
                format!("{}", last + 1),
                format!("{back:?}"),
            ));
        }
        Ok(format!(
            "joined `{group_id}`, assigned after {} ms, read its {} records, committed offset {} and read it back",
            assigned_after.as_millis(),
            markers.len(),
            last + 1
        ))
    }

    /// Delete the group probes' groups (their members have left); what could not be deleted, as
    /// warnings. A group that never came to be (its probe did not work) is not one.
    fn delete_groups(&self) -> Vec<String> {
        let ids = [group_id(&self.id, "classic"), group_id(&self.id, "consumer")];
        let names: Vec<&str> = ids.iter().map(String::as_str).collect();
        let fail = |why: String| vec![format!("scratch groups {} not deleted: {why}", names.join(", "))];
        let admin = match self.admin() {
            Ok(a) => a,
            Err(_) => return fail("no admin client".into()),
        };
        match self.block(admin.delete_groups(&names, &self.admin_options())) {
            None => fail(format!("no answer within {:?}", self.timeout)),
            Some(Err(e)) => fail(self.scrub(e)),
            Some(Ok(results)) => results
                .into_iter()
                .filter_map(|r| r.err())
                .filter(|(_, code)| *code != RDKafkaErrorCode::GroupIdNotFound)
                .map(|(group, code)| format!("scratch group {group} not deleted: {code:?}"))
                .collect(),
        }
    }

    /// Delete the scratch topics; what could not be deleted, as warnings.
    fn delete_topics(&self, topics: &[String]) -> Vec<String> {
        if topics.is_empty() {
            return Vec::new();
        }
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        let fail = |why: String| vec![format!("scratch topics {} not deleted: {why}", names.join(", "))];
        let admin = match self.admin() {
            Ok(a) => a,
            Err(_) => return fail("no admin client".into()),
        };
        match self.block(admin.delete_topics(&names, &self.admin_options())) {
            None => fail(format!("no answer within {:?}", self.timeout)),
            Some(Err(e)) => fail(self.scrub(e)),
            Some(Ok(results)) => results
                .into_iter()
                .filter_map(|r| r.err())
                .map(|(topic, code)| format!("scratch topic {topic} not deleted: {code:?}"))
                .collect(),
        }
    }
}

fn group_id(id: &str, protocol: &str) -> String {
    format!("fleetstorm.compat.{id}.{protocol}")
}

fn group_key(group: Capability) -> String {
    format!("group-{group:?}").to_lowercase()
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A list of keys in one short line.
fn summarize(keys: &[&str]) -> String {
    if keys.len() <= 8 {
        format!("[{}]", keys.join(", "))
    } else {
        format!("{} records: [{}, ..., {}]", keys.len(), keys[..4].join(", "), keys[keys.len() - 2..].join(", "))
    }
}
