//! The HTTP side: hyper's HTTP/1 server on a current-thread tokio runtime, on a thread of its own.
//! `GET /metrics` encodes the registry; anything else is 404 (or 405 for another method).

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::thread::JoinHandle;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::registry::Registry;
use tokio::sync::oneshot;

use super::planned::Walker;
use super::{Identity, LiveError, Sources};

/// The content type of OpenMetrics text.
pub const CONTENT_TYPE_OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The running endpoint. Serves until dropped (the run keeps it until its report is written, so
/// a scrape after the load can read the final totals).
pub struct Server {
    /// Where it listens (port 0 resolved).
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    _walker: Walker,
}

impl Server {
    /// Serve `sources` on `listener` (from [`super::bind`]).
    pub fn start(listener: TcpListener, id: &Identity, sources: Sources) -> Result<Server, LiveError> {
        let addr = listener.local_addr().map_err(LiveError::Start)?;
        listener.set_nonblocking(true).map_err(LiveError::Start)?;
        let planned = Arc::new(AtomicU64::new(0));
        let walker =
            Walker::start(sources.plan.clone(), sources.start.clone(), planned.clone()).map_err(LiveError::Start)?;
        let registry = Arc::new(super::registry(id, sources.live, sources.classes, sources.groups, planned));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(LiveError::Start)?;
        let (tx, rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("live-metrics".into())
            .spawn(move || runtime.block_on(serve(listener, registry, rx)))
            .map_err(LiveError::Start)?;
        Ok(Server { addr, shutdown: Some(tx), thread: Some(thread), _walker: walker })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(listener: TcpListener, registry: Arc<Registry>, mut shutdown: oneshot::Receiver<()>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("live metrics: not served: {e}");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let registry = registry.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |req| {
                            let response = respond(&req, &registry);
                            async move { Ok::<_, Infallible>(response) }
                        });
                        let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                    });
                }
                // Out of descriptors, say: try again shortly rather than spin.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            },
        }
    }
}

fn respond(req: &Request<Incoming>, registry: &Registry) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        r
    };
    if req.uri().path() != "/metrics" {
        return reply(StatusCode::NOT_FOUND, "fleetstorm serves its live metrics on /metrics\n".into());
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = reply(StatusCode::METHOD_NOT_ALLOWED, String::new());
        r.headers_mut().insert(ALLOW, hyper::header::HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, registry) {
        Ok(()) => {
            let mut r = reply(StatusCode::OK, text);
            r.headers_mut().insert(CONTENT_TYPE, hyper::header::HeaderValue::from_static(CONTENT_TYPE_OPENMETRICS));
            r
        }
        Err(_) => reply(StatusCode::INTERNAL_SERVER_ERROR, "the metrics could not be encoded\n".into()),
    }
}
