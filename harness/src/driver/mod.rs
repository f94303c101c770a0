//! Drivers: the only code that talks to Kafka (through rdkafka / librdkafka).
//!
//! - [`target`]: connecting to the target (or starting the embedded cluster), creating and
//!   checking topics, reading watermarks, committing start offsets;
//! - [`producer`]: one thread per producer instance, sending the plan open-loop;
//! - [`produce`]: the producer's per-record librdkafka call, made directly (topic handles);
//! - [`consumer`]: one thread per consumer-group member;
//! - [`audit`]: the delivery-audit reader;
//! - [`auth`]: OAUTHBEARER tokens (MSK IAM, unsecured JWT) every client context offers.
//!
//! **Invariant:** nothing outside this module imports `rdkafka`. Drivers report through the
//! recorder's [`Source`](crate::recorder::Source) windows and [`OffsetBook`](crate::recorder::OffsetBook).

pub mod audit;
pub mod auth;
pub mod barrier;
pub mod compat;
pub mod consumer;
pub mod fetch;
pub mod group;
pub mod launch;
pub mod pacer;
pub mod probe;
pub mod produce;
pub mod producer;
pub mod stats;
pub mod target;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rdkafka::client::{ClientContext, OAuthToken};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::KafkaError;

use crate::clock::Clock;
use crate::config::profile::Redactor;
use crate::recorder::{Hist, OffsetBook, Start};

/// How the run tells its drivers to stop.
#[derive(Debug)]
pub struct Control {
    /// Producers: stop sending new records (abort, or target lost).
    pub stop_sending: AtomicBool,
    /// Producers: the latest time (µs since load start) to keep waiting for acknowledgements.
    pub drain_until_us: AtomicU64,
    /// Consumer-group members: stop reading.
    pub stop_reading: AtomicBool,
    /// The audit reader: stop reading (it may read on after the groups stopped).
    pub stop_audit: AtomicBool,
    /// Everyone: stop now, skip draining (second Ctrl-C).
    pub hard_stop: AtomicBool,
}

impl Default for Control {
    fn default() -> Self {
        Control {
            stop_sending: AtomicBool::new(false),
            drain_until_us: AtomicU64::new(u64::MAX),
            stop_reading: AtomicBool::new(false),
            stop_audit: AtomicBool::new(false),
            hard_stop: AtomicBool::new(false),
        }
    }
}

impl Control {
    pub fn hard(&self) -> bool {
        self.hard_stop.load(Ordering::Relaxed)
    }
}

/// Client-level events from librdkafka, shared by every client of a run.
#[derive(Debug, Default)]
pub struct ClientEvents {
    /// Errors by second of the load (0 before it started) and kind.
    errors: Mutex<BTreeMap<u32, BTreeMap<String, u64>>>,
    /// librdkafka said all brokers are down at least once.
    pub all_brokers_down: AtomicBool,
    /// The first distinct error reasons before the load started (secrets scrubbed): what
    /// `probe::Cause::of` reads when connecting fails.
    early: Mutex<Vec<(String, String)>>,
    start: Start,
}

impl ClientEvents {
    pub fn new(start: Start) -> Self {
        ClientEvents { start, ..ClientEvents::default() }
    }

    pub fn count(&self, kind: &str) {
        let second = self.start.get().map_or(0, |c| u32::try_from(c.now_us() / 1_000_000).unwrap_or(u32::MAX));
        if let Ok(mut m) = self.errors.lock() {
            *m.entry(second).or_default().entry(kind.to_string()).or_insert(0) += 1;
        }
    }

    /// Keep an error's kind and reason while the load has not started (the first 32 distinct).
    pub fn remember(&self, kind: &str, reason: String) {
        if self.start.get().is_some() {
            return;
        }
        if let Ok(mut v) = self.early.lock()
            && v.len() < 32
            && !v.iter().any(|(k, r)| k == kind && *r == reason)
        {
            v.push((kind.to_string(), reason));
        }
    }

    /// The errors kept by [`ClientEvents::remember`], oldest first: (kind, reason).
    pub fn early_errors(&self) -> Vec<(String, String)> {
        self.early.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Errors by kind over the run, prefixed `client.`.
    pub fn errors(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for (k, v) in self.errors_by_second().into_values().flatten() {
            *out.entry(k).or_insert(0) += v;
        }
        out
    }

    /// Errors by second and kind, prefixed `client.`.
    pub fn errors_by_second(&self) -> BTreeMap<u32, BTreeMap<String, u64>> {
        self.errors
            .lock()
            .map(|m| {
                m.iter()
                    .map(|(s, kinds)| (*s, kinds.iter().map(|(k, v)| (format!("client.{k}"), *v)).collect()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The name of an error's kind, e.g. `MessageTimedOut`, for "errors by kind" tables.
pub fn error_kind(e: &KafkaError) -> String {
    match e.rdkafka_error_code() {
        Some(code) => format!("{code:?}"),
        None => {
            let s = format!("{e:?}");
            s.split(['(', ' ', '{']).next().unwrap_or("Unknown").to_string()
        }
    }
}

/// The context of every client: logs go to `tracing` with secrets scrubbed, errors are counted,
/// OAUTHBEARER tokens come from the profile's provider (see [`auth`]).
#[derive(Clone)]
pub struct Ctx {
    pub role: Arc<str>,
    pub events: Arc<ClientEvents>,
    pub redactor: Arc<Redactor>,
    pub auth: auth::Auth,
}

impl ClientContext for Ctx {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(&self, config: Option<&str>) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        self.auth.generate(config)
    }

    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        let msg = self.redactor.scrub(&self.auth.scrub(log_message));
        // Why a connection failed (TLS, SASL, protocol) is told only here, not as an error event
        // of a client that is not being polled (a metadata request while connecting).
        if fac == "FAIL" || (level as i32) <= (RDKafkaLogLevel::Warning as i32) {
            self.events.remember(fac, msg.clone());
        }
        // librdkafka's errors and warnings repeat every reconnect backoff while a broker is down,
        // which a fault makes routine (they are counted as client errors): logged at debug
        // (`-vv`), except what says the client itself is broken.
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical => {
                tracing::error!(target: "librdkafka", role = %self.role, "{fac}: {msg}")
            }
            _ => tracing::debug!(target: "librdkafka", role = %self.role, "{fac}: {msg}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let kind = error_kind(&error);
        if kind == "AllBrokersDown" {
            self.events.all_brokers_down.store(true, Ordering::Relaxed);
        }
        self.events.count(&kind);
        self.events.remember(&kind, self.redactor.scrub(&self.auth.scrub(reason)));
        // Transport errors repeat every reconnect backoff while a broker is down: keep them quiet.
        tracing::debug!(target: "librdkafka", role = %self.role, "{kind}: {}", self.redactor.scrub(&self.auth.scrub(reason)));
    }
}

/// Properties for a client: the target's, then the role's, then the user's overrides.
pub fn client_config(bootstrap: &str, layers: &[&BTreeMap<String, String>]) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    // librdkafka's own log level follows the `log` crate's, which tracing leaves off: without
    // warnings, why a connection fails (TLS, SASL) would never reach `Ctx::log`.
    cfg.set_log_level(RDKafkaLogLevel::Warning);
    cfg.set("bootstrap.servers", bootstrap);
    for layer in layers {
        for (k, v) in *layer {
            cfg.set(k, v);
        }
    }
    cfg
}

/// What every driver of a run shares. Each driver builds its own client properties from its own
/// spec (the reason for each setting sits next to it, in the driver's module) on top of the
/// target's (`base`) and, for readers, the target's reader defaults.
pub struct Shared {
    pub bootstrap: String,
    /// The target's client properties (the profile's `librdkafka`, security included).
    pub base: BTreeMap<String, String>,
    /// What readers need on this target (see `target::Connection::reader_defaults`).
    pub reader_defaults: BTreeMap<String, String>,
    pub events: Arc<ClientEvents>,
    pub redactor: Arc<Redactor>,
    /// The target's OAUTHBEARER token source, for every client context.
    pub auth: auth::Auth,
    pub start: Start,
    pub control: Arc<Control>,
    pub template: Hist,
    pub book: Arc<OffsetBook>,
    /// Incremented by each client once it is connected (and, for group members, assigned).
    pub ready: Arc<AtomicU32>,
    /// How many clients the drivers started: the run waits until `ready` reaches it.
    pub ready_expected: AtomicU32,
    pub run_id: u64,
    /// librdkafka's statistics of the producers and of each group's members.
    pub stats: Arc<stats::Registry>,
}

impl Shared {
    /// What the drivers of a run on `conn` share; the offset book is laid out by `launch::start`.
    pub fn new(
        conn: &target::Connection,
        events: Arc<ClientEvents>,
        redactor: Arc<Redactor>,
        start: Start,
        template: Hist,
        run_id: u64,
    ) -> Shared {
        Shared {
            bootstrap: conn.bootstrap.clone(),
            base: conn.base.clone(),
            reader_defaults: conn.reader_defaults(),
            events,
            redactor,
            auth: conn.auth.clone(),
            start,
            control: Arc::new(Control::default()),
            template,
            book: Arc::new(OffsetBook::new(&[], &[])),
            ready: Arc::new(AtomicU32::new(0)),
            ready_expected: AtomicU32::new(0),
            run_id,
            stats: Arc::new(stats::Registry::default()),
        }
    }

    /// A client context for a role (`producer 0`, `consumer warehouse#1`, `audit`).
    pub fn ctx(&self, role: String) -> Ctx {
        Ctx { role: role.into(), events: self.events.clone(), redactor: self.redactor.clone(), auth: self.auth.clone() }
    }

    /// A writer's properties: the target's, then `layers` in order.
    pub fn writer_config(&self, layers: &[&BTreeMap<String, String>]) -> ClientConfig {
        let mut all: Vec<&BTreeMap<String, String>> = vec![&self.base];
        all.extend_from_slice(layers);
        client_config(&self.bootstrap, &all)
    }

    /// A reader's properties: the target's, its reader defaults, then `layers` in order.
    pub fn reader_config(&self, layers: &[&BTreeMap<String, String>]) -> ClientConfig {
        let mut all: Vec<&BTreeMap<String, String>> = vec![&self.base, &self.reader_defaults];
        all.extend_from_slice(layers);
        client_config(&self.bootstrap, &all)
    }
}

/// Make a map from `(key, value)` pairs.
pub fn props<const N: usize>(pairs: [(&str, String); N]) -> BTreeMap<String, String> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

impl rdkafka::consumer::ConsumerContext for Ctx {}
