//! `run --metrics-addr HOST:PORT`: the run's own metrics, live, as OpenMetrics text on `/metrics`
//! while it runs, for Prometheus and the dashboard in `deploy/grafana/`.
//!
//! Nothing here is on the hot path. The numbers are the recorder's [`LiveCounters`], which the
//! collector thread updates as it merges each second's windows (histograms fed from the windows'
//! HdrHistograms into fixed buckets); a scrape only reads atomics. The one figure the recorder
//! does not have, the events the schedule planned so far, comes from [`planned::Walker`], a copy
//! of the shard's schedule walked up to the clock once a second on a thread of its own (the
//! schedule's cost per event, about 100 ns, a third of the harness's own work per record; only
//! with `--metrics-addr`).
//!
//! The registry and the encoding are `prometheus-client`'s; the server is hyper's HTTP/1 on a
//! current-thread tokio runtime of its own thread ([`server`]). Labels carry the run's identity
//! (run id, scenario, the profile's name and kind, the shard), never a profile value: the
//! profile may hold SASL passwords.
//!
//! Audit verdicts (lost, duplicated, reordered) are computed once, after the drain, from the
//! whole ledgers: live there is only the audit reader's progress (`fleetstorm_audit_reads`).

mod metrics;
mod planned;
mod server;

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;

pub use metrics::registry;
pub use server::Server;

/// Who the run is, as the metrics' labels say it. No secret: names only.
#[derive(Clone, Debug, Default)]
pub struct Identity {
    /// The run id as the report writes it (16 hex digits).
    pub run_id: String,
    pub scenario: String,
    /// The profile's name and kind (`embedded`, `kafka`).
    pub profile: String,
    pub target_kind: String,
    /// `I/N` for a shard of a campaign.
    pub shard: Option<String>,
}

/// Why the metrics endpoint could not be served.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// Not `HOST:PORT`, or a host that does not resolve: invalid input.
    #[error("--metrics-addr `{addr}`: {why}; expected HOST:PORT, e.g. 127.0.0.1:9464 (port 0: any free port)")]
    BadAddress { addr: String, why: String },
    /// A valid address this process cannot listen on (in use, not local, not permitted).
    #[error("--metrics-addr {addr}: cannot listen there: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("--metrics-addr: the metrics server could not start: {0}")]
    Start(std::io::Error),
}

/// Resolve `HOST:PORT` and listen on it (the first address that binds). Done before the run
/// starts, so that a bad address or a port in use stops it at once.
pub fn bind(addr: &str) -> Result<TcpListener, LiveError> {
    let bad = |why: String| LiveError::BadAddress { addr: addr.to_string(), why };
    let (host, port) = addr.rsplit_once(':').ok_or_else(|| bad("no port".into()))?;
    if host.is_empty() {
        return Err(bad("no host".into()));
    }
    port.parse::<u16>().map_err(|_| bad(format!("`{port}` is not a port number")))?;
    let candidates: Vec<SocketAddr> = addr.to_socket_addrs().map_err(|e| bad(e.to_string()))?.collect();
    let mut last = None;
    for a in &candidates {
        match TcpListener::bind(a) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(source) => LiveError::Bind { addr: addr.to_string(), source },
        None => bad("resolves to no address".into()),
    })
}

/// What the endpoint reads.
pub struct Sources {
    pub live: Arc<crate::recorder::LiveCounters>,
    /// Class and group names, in the order of `live`'s vectors.
    pub classes: Vec<String>,
    pub groups: Vec<String>,
    /// The run's (shard's) plan and clock, for the planned count.
    pub plan: Arc<crate::plan::Plan>,
    pub start: crate::recorder::Start,
}

#[cfg(test)]
mod tests;
