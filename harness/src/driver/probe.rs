//! Why a target refuses us, in one line a person can act on, and what this principal may do.
//!
//! librdkafka tells why a connection failed (TLS, SASL, protocol) only in its logs and error
//! events; [`Cause::of`] reads the ones a client kept ([`super::ClientEvents::early_errors`]) and
//! names the cause. What the principal may do on the scenario's topics and groups is asked of the
//! brokers themselves (KIP-430: DescribeTopics and DescribeConsumerGroups with the authorized
//! operations), so nothing is written to find out. `fleetstorm check` and `run` give the same
//! words.

use std::collections::BTreeMap;
use std::ffi::{CStr, CString, c_char};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use rdkafka::bindings as rd;

/// Why the target refused us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The brokers' certificate did not verify against our CA.
    TlsUnknownCa,
    /// The brokers' certificate does not name the host we connected to.
    TlsHostname,
    /// We sent no client certificate: none is configured, or ours is not signed by a CA the
    /// brokers list as trusted.
    TlsNoClientCertificate { configured: bool },
    /// The brokers rejected the client certificate we sent.
    TlsClientCertificateRefused,
    /// Another TLS handshake failure, with librdkafka's words.
    TlsHandshake(String),
    /// The connection closed during the first request: the listener speaks another protocol.
    ProtocolMismatch { protocol: String },
    /// SASL authentication failed.
    SaslFailed { mechanism: String, user: Option<String> },
    /// The brokers do not enable our SASL mechanism.
    SaslMechanism { mechanism: String },
    /// The principal may not do what the scenario needs.
    Denied(Denial),
    /// Another refusal, in the target's words.
    Refusal(String),
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cause::TlsUnknownCa => write!(
                f,
                "TLS: the brokers' certificate is signed by an unknown CA (ssl.ca.location does not hold the CA that signed it)"
            ),
            Cause::TlsHostname => write!(
                f,
                "TLS: the brokers' certificate does not name the host connected to (its subject alternative names)"
            ),
            Cause::TlsNoClientCertificate { configured: true } => write!(
                f,
                "TLS: the brokers do not trust the CA that signed our client certificate (ssl.certificate.location), so none was sent and they refused the connection"
            ),
            Cause::TlsNoClientCertificate { configured: false } => write!(
                f,
                "TLS: the brokers require a client certificate and none is configured (ssl.certificate.location, ssl.key.location)"
            ),
            Cause::TlsClientCertificateRefused => {
                write!(f, "TLS: the brokers refused our client certificate (ssl.certificate.location)")
            }
            Cause::TlsHandshake(d) => write!(f, "TLS: handshake failed: {d}"),
            Cause::ProtocolMismatch { protocol } => write!(
                f,
                "the brokers closed the connection during the first request: security.protocol {protocol} does not match the listener (TLS or SASL expected?)"
            ),
            Cause::SaslFailed { mechanism, user: Some(u) } => {
                write!(f, "SASL: authentication failed for user {u} ({mechanism})")
            }
            Cause::SaslFailed { mechanism, user: None } => write!(f, "SASL: authentication failed ({mechanism})"),
            Cause::SaslMechanism { mechanism } => {
                write!(f, "SASL: the brokers do not enable mechanism {mechanism} (sasl.mechanism)")
            }
            Cause::Denied(d) => d.fmt(f),
            Cause::Refusal(r) => f.write_str(r),
        }
    }
}

/// What a principal may not do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    pub principal: String,
    pub operation: Operation,
    pub resource: Resource,
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} may not {} {}", self.principal, self.operation.name(), self.resource)
    }
}

/// A resource ACLs protect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resource {
    Topic(String),
    Group(String),
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resource::Topic(t) => write!(f, "topic {t}"),
            Resource::Group(g) => write!(f, "group {g}"),
        }
    }
}

/// An ACL operation (Kafka's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    Read,
    Write,
    Create,
    Describe,
}

impl Operation {
    pub fn name(self) -> &'static str {
        match self {
            Operation::Read => "READ",
            Operation::Write => "WRITE",
            Operation::Create => "CREATE",
            Operation::Describe => "DESCRIBE",
        }
    }

    fn code(self) -> i32 {
        match self {
            Operation::Read => 3,
            Operation::Write => 4,
            Operation::Create => 5,
            Operation::Describe => 8,
        }
    }
}

/// How the profile's principal is called in messages: `User:<sasl.username>` for PLAIN and SCRAM,
/// otherwise what the brokers map the certificate or token to, which the client cannot know.
pub fn principal(base: &BTreeMap<String, String>) -> String {
    let mech = mechanism(base);
    match base.get("sasl.username") {
        Some(u) if mech.starts_with("SCRAM") || mech == "PLAIN" => format!("principal User:{u}"),
        _ if protocol(base).contains("SSL") && base.contains_key("ssl.certificate.location") => {
            "the principal of our client certificate".into()
        }
        _ if mech == "OAUTHBEARER" => "the principal of our OAUTHBEARER token".into(),
        _ => "this client's principal".into(),
    }
}

fn protocol(base: &BTreeMap<String, String>) -> String {
    base.get("security.protocol").map_or("PLAINTEXT".into(), |p| p.to_ascii_uppercase())
}

fn mechanism(base: &BTreeMap<String, String>) -> String {
    base.get("sasl.mechanism")
        .or_else(|| base.get("sasl.mechanisms"))
        .map_or("GSSAPI".into(), |m| m.to_ascii_uppercase())
}

impl Cause {
    /// The cause the kept errors (kind, reason) point to, if they point to one. `base` is the
    /// profile's client properties (which mechanism, which user, whether a certificate is set).
    pub fn of(errors: &[(String, String)], base: &BTreeMap<String, String>) -> Option<Cause> {
        let texts: Vec<String> = errors.iter().map(|(_, r)| r.to_ascii_lowercase()).collect();
        let any = |needle: &str| texts.iter().any(|t| t.contains(needle));
        if any("authentication failed") || any("sasl authentication error") || any("invalid credentials") {
            let user = base.get("sasl.username").cloned();
            return Some(Cause::SaslFailed { mechanism: mechanism(base), user });
        }
        if any("unsupported sasl mechanism") || any("sasl mechanism") && any("not supported") {
            return Some(Cause::SaslMechanism { mechanism: mechanism(base) });
        }
        if any("no matching issuer found in server trusted certificate authorities") {
            return Some(Cause::TlsNoClientCertificate { configured: true });
        }
        if any("certificate verify failed") {
            if any("hostname mismatch") || any("ip address mismatch") {
                return Some(Cause::TlsHostname);
            }
            return Some(Cause::TlsUnknownCa);
        }
        if any("alert bad certificate") || any("alert certificate required") || any("alert unknown ca") {
            let configured = base.contains_key("ssl.certificate.location") || base.contains_key("ssl.certificate.pem");
            return Some(if configured {
                Cause::TlsClientCertificateRefused
            } else {
                Cause::TlsNoClientCertificate { configured: false }
            });
        }
        if let Some(t) = errors.iter().map(|(_, r)| r).find(|r| r.to_ascii_lowercase().contains("ssl handshake failed"))
        {
            let detail = t.split("SSL handshake failed: ").nth(1).unwrap_or(t);
            return Some(Cause::TlsHandshake(detail.split(" (after ").next().unwrap_or(detail).to_string()));
        }
        if any("incorrect security.protocol") || any("connecting to a ssl listener") || any("connecting to a sasl") {
            return Some(Cause::ProtocolMismatch { protocol: protocol(base) });
        }
        None
    }

    /// Whether waiting longer cannot help (a refusal, not a broker that is slow to answer).
    pub fn definitive(&self) -> bool {
        !matches!(self, Cause::ProtocolMismatch { .. })
    }
}

/// Whether each bootstrap server accepts a TCP connection within `timeout`.
pub fn reach(servers: &str, timeout: Duration) -> Vec<(String, Result<(), String>)> {
    servers
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let hostport = s.rsplit("://").next().unwrap_or(s).to_string();
            let answer = match hostport.to_socket_addrs() {
                Err(e) => Err(format!("cannot resolve: {e}")),
                Ok(addrs) => {
                    let addrs: Vec<_> = addrs.collect();
                    let mut last = Err("no address".to_string());
                    for a in addrs {
                        match TcpStream::connect_timeout(&a, timeout) {
                            Ok(_) => {
                                last = Ok(());
                                break;
                            }
                            Err(e) => last = Err(e.to_string()),
                        }
                    }
                    last
                }
            };
            (hostport, answer)
        })
        .collect()
}

/// One API's version range, from the brokers' ApiVersions answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiRange {
    pub name: String,
    pub key: i16,
    pub min: i16,
    pub max: i16,
}

/// The ranges librdkafka logs (debug `feature`) when a broker answers ApiVersions:
/// `  ApiKey Produce (0) Versions 0..12`.
pub fn api_ranges(lines: &[String]) -> Vec<ApiRange> {
    let mut out: Vec<ApiRange> = Vec::new();
    for l in lines {
        let Some(rest) = l.split("ApiKey ").nth(1) else { continue };
        let Some((name, rest)) = rest.split_once(" (") else { continue };
        let Some((key, rest)) = rest.split_once(") Versions ") else { continue };
        let Some((min, max)) = rest.trim().split_once("..") else { continue };
        let (Ok(key), Ok(min), Ok(max)) = (key.parse(), min.parse(), max.trim().parse()) else { continue };
        if !out.iter().any(|r| r.key == key) {
            out.push(ApiRange { name: name.to_string(), key, min, max });
        }
    }
    out.sort_by_key(|r| r.key);
    out
}

/// A client context that keeps librdkafka's `APIVERSION` debug lines.
struct Versions {
    lines: std::sync::Mutex<Vec<String>>,
}

impl rdkafka::ClientContext for Versions {
    fn log(&self, _level: rdkafka::config::RDKafkaLogLevel, fac: &str, msg: &str) {
        if fac == "APIVERSION"
            && let Ok(mut v) = self.lines.lock()
        {
            v.push(msg.to_string());
        }
    }
}

impl rdkafka::consumer::ConsumerContext for Versions {}

/// The API version ranges the brokers announce (ApiVersions), as librdkafka logs them with
/// `debug=feature`. The Kafka protocol carries no broker version: these ranges are what tells a
/// Kafka 4 from a 2.8, or a compatible platform's level.
pub fn api_versions(
    bootstrap: &str,
    base: &BTreeMap<String, String>,
    timeout: Duration,
) -> Result<Vec<ApiRange>, String> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let mut cfg = super::client_config(bootstrap, &[base]);
    cfg.set("debug", "feature");
    cfg.set_log_level(rdkafka::config::RDKafkaLogLevel::Debug);
    let ctx = Versions { lines: std::sync::Mutex::new(Vec::new()) };
    let c: BaseConsumer<Versions> = cfg.create_with_context(ctx).map_err(|e| e.to_string())?;
    c.fetch_metadata(None, timeout).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let idle = c.poll(Duration::from_millis(20)).is_none();
        let lines = c.context().lines.lock().map(|v| v.clone()).unwrap_or_default();
        let ranges = api_ranges(&lines);
        if (idle && !ranges.is_empty()) || Instant::now() > deadline {
            return Ok(ranges);
        }
    }
}

/// What the principal may do, asked of the brokers for each topic and group.
#[derive(Debug, Default)]
pub struct Access {
    /// Topics: the operations allowed, or the error the description returned (e.g.
    /// `UnknownTopicOrPartition` for a topic that does not exist, `TopicAuthorizationFailed`).
    pub topics: BTreeMap<String, Result<Vec<i32>, String>>,
    pub groups: BTreeMap<String, Result<Vec<i32>, String>>,
}

impl Access {
    /// Whether `op` is among the allowed operations (`ALL` counts for every one).
    pub fn allows(ops: &[i32], op: Operation) -> bool {
        ops.contains(&op.code()) || ops.contains(&2)
    }
}

/// Ask the brokers what this client's principal may do on `topics` and `groups` (KIP-430).
/// `rk` is any client's handle; the answer comes on a queue of its own within `timeout`.
pub fn access(
    client: &rdkafka::client::Client<impl rdkafka::ClientContext>,
    topics: &[String],
    groups: &[String],
    broker: Option<i32>,
    timeout: Duration,
) -> Result<Access, String> {
    let mut out = Access::default();
    let rk = client.native_ptr();
    if !topics.is_empty() {
        out.topics = describe_topics(rk, topics, broker, timeout)?;
    }
    if !groups.is_empty() {
        out.groups = describe_groups(rk, groups, timeout)?;
    }
    Ok(out)
}

/// Owned C strings and the pointer array librdkafka reads them from.
struct Names {
    _owned: Vec<CString>,
    ptrs: Vec<*const c_char>,
}

impl Names {
    fn new(names: &[String]) -> Result<Names, String> {
        let owned: Vec<CString> = names
            .iter()
            .map(|n| CString::new(n.as_str()).map_err(|_| format!("name `{n}` has a NUL byte")))
            .collect::<Result<_, _>>()?;
        let ptrs = owned.iter().map(|c| c.as_ptr()).collect();
        Ok(Names { _owned: owned, ptrs })
    }
}

/// An admin request's options with the authorized operations asked for, and its reply queue;
/// both freed on drop.
struct Request {
    options: *mut rd::rd_kafka_AdminOptions_t,
    queue: *mut rd::rd_kafka_queue_t,
}

impl Request {
    fn new(rk: *mut rd::rd_kafka_t, op: rd::rd_kafka_admin_op_t, timeout: Duration) -> Result<Request, String> {
        // SAFETY: `rk` is a live client handle (borrowed from a `Client` for this call); the
        // options and queue are owned by the returned value and destroyed exactly once in drop.
        unsafe {
            let options = rd::rd_kafka_AdminOptions_new(rk, op);
            let queue = rd::rd_kafka_queue_new(rk);
            let req = Request { options, queue };
            if options.is_null() || queue.is_null() {
                return Err("could not allocate an admin request".into());
            }
            let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
            let mut err = [0 as c_char; 256];
            rd::rd_kafka_AdminOptions_set_request_timeout(options, ms, err.as_mut_ptr(), err.len());
            let e = rd::rd_kafka_AdminOptions_set_include_authorized_operations(options, 1);
            if !e.is_null() {
                let msg = CStr::from_ptr(rd::rd_kafka_error_string(e)).to_string_lossy().into_owned();
                rd::rd_kafka_error_destroy(e);
                return Err(msg);
            }
            Ok(req)
        }
    }

    /// Wait for the reply event (destroyed by the caller through [`Event`]).
    fn wait(&self, timeout: Duration) -> Result<Event, String> {
        let deadline = Instant::now() + timeout + Duration::from_secs(1);
        loop {
            // SAFETY: the queue is live for as long as `self`.
            let ev = unsafe { rd::rd_kafka_queue_poll(self.queue, 100) };
            if !ev.is_null() {
                let ev = Event(ev);
                // SAFETY: `ev.0` is a live event.
                let code = unsafe { rd::rd_kafka_event_error(ev.0) };
                if code != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                    // SAFETY: the error string lives as long as the event.
                    let s = unsafe { CStr::from_ptr(rd::rd_kafka_event_error_string(ev.0)) };
                    return Err(s.to_string_lossy().into_owned());
                }
                return Ok(ev);
            }
            if Instant::now() > deadline {
                return Err("no answer in time".into());
            }
        }
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        // SAFETY: created in `Request::new`, destroyed once here.
        unsafe {
            if !self.options.is_null() {
                rd::rd_kafka_AdminOptions_destroy(self.options);
            }
            if !self.queue.is_null() {
                rd::rd_kafka_queue_destroy(self.queue);
            }
        }
    }
}

struct Event(*mut rd::rd_kafka_event_t);

impl Drop for Event {
    fn drop(&mut self) {
        // SAFETY: a live event from `rd_kafka_queue_poll`, destroyed once.
        unsafe { rd::rd_kafka_event_destroy(self.0) }
    }
}

/// The authorized operations librdkafka hands back, as Kafka's codes.
///
/// SAFETY: `ops` points to `n` values of the C enum `rd_kafka_AclOperation_t` (an `int`), or is
/// null.
unsafe fn ops(ops: *const rd::rd_kafka_AclOperation_t, n: usize) -> Vec<i32> {
    if ops.is_null() {
        return Vec::new();
    }
    // SAFETY: read as the C `int`s they are, so that a code this build does not know is no UB.
    unsafe { std::slice::from_raw_parts(ops.cast::<i32>(), n).to_vec() }
}

/// SAFETY: `e` is null or a live `rd_kafka_error_t` owned by its result.
unsafe fn error_name(e: *const rd::rd_kafka_error_t) -> Option<String> {
    if e.is_null() {
        return None;
    }
    // SAFETY: see above.
    let code = unsafe { rd::rd_kafka_error_code(e) };
    if code == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        return None;
    }
    Some(format!("{:?}", rdkafka::types::RDKafkaErrorCode::from(code)))
}

fn describe_topics(
    rk: *mut rd::rd_kafka_t,
    topics: &[String],
    broker: Option<i32>,
    timeout: Duration,
) -> Result<BTreeMap<String, Result<Vec<i32>, String>>, String> {
    let mut names = Names::new(topics)?;
    let req = Request::new(rk, rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBETOPICS, timeout)?;
    // A metadata request any broker answers: sent to a known one, so that a target that names no
    // controller (librdkafka's mock served to other processes) does not make it wait for one.
    if let Some(id) = broker {
        let mut err = [0 as c_char; 256];
        // SAFETY: the options are live for as long as `req`; the error buffer outlives the call.
        unsafe { rd::rd_kafka_AdminOptions_set_broker(req.options, id, err.as_mut_ptr(), err.len()) };
    }
    let mut out = BTreeMap::new();
    // SAFETY: the collection copies the names; every pointer read below belongs to the result
    // event, which lives until `ev` drops at the end of this block.
    unsafe {
        let coll = rd::rd_kafka_TopicCollection_of_topic_names(names.ptrs.as_mut_ptr(), names.ptrs.len());
        rd::rd_kafka_DescribeTopics(rk, coll, req.options, req.queue);
        rd::rd_kafka_TopicCollection_destroy(coll);
        let ev = req.wait(timeout)?;
        let res = rd::rd_kafka_event_DescribeTopics_result(ev.0);
        if res.is_null() {
            return Err("the answer was not a DescribeTopics result".into());
        }
        let mut n = 0usize;
        let descs = rd::rd_kafka_DescribeTopics_result_topics(res, &mut n);
        for i in 0..n {
            let d = *descs.add(i);
            let name = CStr::from_ptr(rd::rd_kafka_TopicDescription_name(d)).to_string_lossy().into_owned();
            let answer = match error_name(rd::rd_kafka_TopicDescription_error(d)) {
                Some(e) => Err(e),
                None => {
                    let mut k = 0usize;
                    let p = rd::rd_kafka_TopicDescription_authorized_operations(d, &mut k);
                    Ok(ops(p, k))
                }
            };
            out.insert(name, answer);
        }
    }
    Ok(out)
}

fn describe_groups(
    rk: *mut rd::rd_kafka_t,
    groups: &[String],
    timeout: Duration,
) -> Result<BTreeMap<String, Result<Vec<i32>, String>>, String> {
    let mut names = Names::new(groups)?;
    let req = Request::new(rk, rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS, timeout)?;
    let mut out = BTreeMap::new();
    // SAFETY: as in `describe_topics`.
    unsafe {
        rd::rd_kafka_DescribeConsumerGroups(rk, names.ptrs.as_mut_ptr(), names.ptrs.len(), req.options, req.queue);
        let ev = req.wait(timeout)?;
        let res = rd::rd_kafka_event_DescribeConsumerGroups_result(ev.0);
        if res.is_null() {
            return Err("the answer was not a DescribeConsumerGroups result".into());
        }
        let mut n = 0usize;
        let descs = rd::rd_kafka_DescribeConsumerGroups_result_groups(res, &mut n);
        for i in 0..n {
            let d = *descs.add(i);
            let name = CStr::from_ptr(rd::rd_kafka_ConsumerGroupDescription_group_id(d)).to_string_lossy().into_owned();
            let answer = match error_name(rd::rd_kafka_ConsumerGroupDescription_error(d)) {
                Some(e) => Err(e),
                None => {
                    let mut k = 0usize;
                    let p = rd::rd_kafka_ConsumerGroupDescription_authorized_operations(d, &mut k);
                    Ok(ops(p, k))
                }
            };
            out.insert(name, answer);
        }
    }
    Ok(out)
}

/// What a scenario needs of the target: per topic the operations, and the groups it joins.
#[derive(Clone, Debug, Default)]
pub struct Needs {
    pub topics: BTreeMap<String, Vec<Operation>>,
    pub groups: Vec<String>,
}

/// The needs `access` does not meet, as denials of `principal`. A topic that does not exist
/// needs CREATE, which the description cannot tell: it is left to the creation itself.
pub fn denials(needs: &Needs, access: &Access, principal: &str) -> Vec<Denial> {
    let mut out = Vec::new();
    for (topic, wanted) in &needs.topics {
        match access.topics.get(topic) {
            Some(Ok(ops)) if !ops.is_empty() => {
                for op in wanted {
                    if !Access::allows(ops, *op) {
                        out.push(Denial {
                            principal: principal.into(),
                            operation: *op,
                            resource: Resource::Topic(topic.clone()),
                        });
                    }
                }
            }
            Some(Err(e)) if e.contains("Authorization") => out.push(Denial {
                principal: principal.into(),
                operation: Operation::Describe,
                resource: Resource::Topic(topic.clone()),
            }),
            _ => {}
        }
    }
    for g in &needs.groups {
        match access.groups.get(g) {
            Some(Ok(ops)) if !ops.is_empty() && !Access::allows(ops, Operation::Read) => out.push(Denial {
                principal: principal.into(),
                operation: Operation::Read,
                resource: Resource::Group(g.clone()),
            }),
            Some(Err(e)) if e.contains("Authorization") => out.push(Denial {
                principal: principal.into(),
                operation: Operation::Describe,
                resource: Resource::Group(g.clone()),
            }),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn fail(reason: &str) -> Vec<(String, String)> {
        vec![("FAIL".into(), reason.into())]
    }

    // The reasons below are librdkafka 2.12's words, as logged against scripts/kafka-cluster.sh
    // --security all (wrong password, a CA that did not sign the brokers' certificate, a client
    // certificate from a CA the brokers do not trust, none at all).
    #[test]
    fn causes_are_named_from_librdkafka_words() {
        let scram = props(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "fleet"),
        ]);
        let c = Cause::of(
            &fail(
                "sasl_ssl://127.0.0.1:19102/bootstrap: SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512 (after 376ms in state AUTH_REQ)",
            ),
            &scram,
        );
        assert_eq!(
            c.as_ref().map(ToString::to_string).as_deref(),
            Some("SASL: authentication failed for user fleet (SCRAM-SHA-512)")
        );
        let c = Cause::of(
            &fail(
                "sasl_ssl://127.0.0.1:19103/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: broker certificate could not be verified, verify that ssl.ca.location is correctly configured or root CA certificates are installed (install ca-certificates package) (after 5ms in state SSL_HANDSHAKE)",
            ),
            &scram,
        );
        assert_eq!(c, Some(Cause::TlsUnknownCa));
        assert!(c.unwrap().to_string().starts_with("TLS: the brokers' certificate is signed by an unknown CA"));
        let mtls = props(&[("security.protocol", "SSL"), ("ssl.certificate.location", "/x/client.crt")]);
        let rogue = vec![
            ("SSL".into(), "No matching issuer found in server trusted certificate authorities, not sending any client certificates".into()),
            ("FAIL".into(), "ssl://127.0.0.1:19112/bootstrap: Receive failed: error:0A000412:SSL routines::sslv3 alert bad certificate: SSL alert number 42 (after 1ms in state APIVERSION_QUERY)".into()),
        ];
        assert_eq!(Cause::of(&rogue, &mtls), Some(Cause::TlsNoClientCertificate { configured: true }));
        let none = props(&[("security.protocol", "SSL")]);
        assert_eq!(Cause::of(&rogue[1..], &none), Some(Cause::TlsNoClientCertificate { configured: false }));
        assert_eq!(Cause::of(&rogue[1..], &mtls), Some(Cause::TlsClientCertificateRefused));
        assert_eq!(Cause::of(&fail("3/3 brokers are down"), &scram), None);
        assert_eq!(Cause::of(&[], &scram), None);
    }

    #[test]
    fn the_principal_is_named_only_when_the_client_knows_it() {
        assert_eq!(
            principal(&props(&[("sasl.mechanism", "SCRAM-SHA-512"), ("sasl.username", "fleet")])),
            "principal User:fleet"
        );
        assert_eq!(
            principal(&props(&[("security.protocol", "SSL"), ("ssl.certificate.location", "c")])),
            "the principal of our client certificate"
        );
        assert_eq!(principal(&props(&[])), "this client's principal");
    }

    #[test]
    fn api_ranges_are_read_from_the_feature_log() {
        let lines = vec![
            "[thrd:x]: x: Broker API support:".to_string(),
            "[thrd:x]: x:   ApiKey Produce (0) Versions 3..12".to_string(),
            "[thrd:x]: x:   ApiKey Fetch (1) Versions 4..17".to_string(),
            "[thrd:y]: y:   ApiKey Produce (0) Versions 3..12".to_string(),
        ];
        let r = api_ranges(&lines);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0], ApiRange { name: "Produce".into(), key: 0, min: 3, max: 12 });
        assert_eq!(r[1].max, 17);
    }

    #[test]
    fn denials_name_the_missing_operation() {
        let mut needs = Needs::default();
        needs.topics.insert("home.events".into(), vec![Operation::Describe, Operation::Write, Operation::Read]);
        needs.topics.insert("absent".into(), vec![Operation::Write]);
        needs.groups.push("g".into());
        let mut access = Access::default();
        access.topics.insert("home.events".into(), Ok(vec![3, 8, 10]));
        access.topics.insert("absent".into(), Err("UnknownTopicOrPartition".into()));
        access.groups.insert("g".into(), Ok(vec![3, 8]));
        let d = denials(&needs, &access, "principal User:limited");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].to_string(), "principal User:limited may not WRITE topic home.events");
        access.groups.insert("g".into(), Ok(vec![8]));
        access.topics.insert("home.events".into(), Ok(vec![2]));
        let d = denials(&needs, &access, "p");
        assert_eq!(d.iter().map(ToString::to_string).collect::<Vec<_>>(), ["p may not READ group g"]);
    }
}
