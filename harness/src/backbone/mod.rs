//! The target's own metrics during a run: what the brokers say about themselves, on the run's
//! timeline, beside what the clients saw.
//!
//! Two kinds of source, each on its own thread so that a slow one never delays the other:
//! - Prometheus / OpenMetrics endpoints (the profile's `metrics.prometheus`), scraped every
//!   `metrics.interval` (all endpoints at once, each bounded by the interval), their names mapped
//!   to one vocabulary by [`vocab`];
//! - the Kafka protocol, through an [`AdminProbe`] the driver provides (leaders and in-sync
//!   replicas from metadata, every `metrics.admin_interval`): no agent needed.
//!
//! A source that fails or answers garbage is counted and its last error kept (the report warns);
//! the run never fails for it. Points are stamped in seconds since the load started (taken from
//! the run's clock once the load starts; samples before that only prime the counters' rates).

pub mod vocab;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::config::profile::{Metrics, PromSource};
use crate::recorder::Start;
use crate::report::schema::{Backbone, BackboneSeries, BackboneSource, Settle, SourceKind, TargetMetric};

use vocab::{Raw, Take};

/// A value of the cluster's state read through the Kafka protocol.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdminSample {
    pub metric: TargetMetric,
    pub broker: Option<i32>,
    pub value: f64,
}

/// What the driver offers: one sample of the cluster's metadata. Errors are words for the report.
pub trait AdminProbe: Send {
    fn sample(&mut self) -> Result<Vec<AdminSample>, String>;
}

/// The sampling threads of one run.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Part>>,
    health: Arc<Health>,
    settle: Option<Settle>,
    /// The endpoints' scrape interval, if any are scraped.
    scrape: Option<Duration>,
}

/// What the latest metadata sample said, for the wait after the run (`metrics.settle`).
#[derive(Default)]
struct Health {
    /// Successful metadata samples so far.
    samples: AtomicU64,
    /// Under-replicated plus offline partitions at the latest successful sample.
    unhealthy: AtomicU64,
    /// Set while waiting: the metadata is sampled every second then.
    hurry: AtomicBool,
}

impl Health {
    fn saw(&self, samples: &[AdminSample]) {
        let bad = samples
            .iter()
            .filter(|s| {
                s.broker.is_none()
                    && matches!(s.metric, TargetMetric::UnderReplicatedPartitions | TargetMetric::OfflinePartitions)
            })
            .map(|s| s.value.max(0.0) as u64)
            .sum();
        self.unhealthy.store(bad, Ordering::SeqCst);
        self.samples.fetch_add(1, Ordering::SeqCst);
    }
}

/// What one thread gathered.
#[derive(Default)]
struct Part {
    sources: Vec<BackboneSource>,
    series: HashMap<(usize, TargetMetric, Option<i32>), BackboneSeries>,
}

impl Part {
    fn push(&mut self, source: usize, kind: SourceKind, metric: TargetMetric, broker: Option<i32>, t: f64, v: f64) {
        self.series
            .entry((source, metric, broker))
            .or_insert_with(|| BackboneSeries { metric, broker, kind, points: Vec::new() })
            .points
            .push([t, v]);
    }

    fn record(&mut self, i: usize, took: Duration, outcome: Result<(), String>) {
        let s = &mut self.sources[i];
        let n = s.samples + s.failures;
        s.mean_ms = (s.mean_ms * n as f64 + took.as_secs_f64() * 1000.0) / (n + 1) as f64;
        match outcome {
            Ok(()) => s.samples += 1,
            Err(e) => {
                s.failures += 1;
                s.last_error = Some(e);
            }
        }
    }
}

/// Seconds since the load started, once it has.
fn since_load(start: &Start) -> Option<f64> {
    start.get().map(|c| c.now_us() as f64 / 1e6)
}

/// Sleep until `next` unless told to stop; `false` when stopping.
fn wait(stop: &AtomicBool, next: Instant) -> bool {
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= next {
            return true;
        }
        std::thread::sleep((next - now).min(Duration::from_millis(100)));
    }
}

impl Sampler {
    /// Start sampling: the profile's endpoints, and the probe if there is one.
    pub fn start(cfg: &Metrics, admin: Option<Box<dyn AdminProbe>>, start: Start) -> std::io::Result<Sampler> {
        let stop = Arc::new(AtomicBool::new(false));
        let health = Arc::new(Health::default());
        let mut threads = Vec::new();
        if !cfg.prometheus.is_empty() {
            let (sources, interval, stop, start) =
                (cfg.prometheus.clone(), cfg.interval.0, stop.clone(), start.clone());
            threads.push(
                std::thread::Builder::new()
                    .name("backbone-prom".into())
                    .spawn(move || scrape_loop(&sources, interval, &stop, &start))?,
            );
        }
        if let Some(probe) = admin
            && !cfg.admin_interval.0.is_zero()
        {
            let (interval, stop, health) = (cfg.admin_interval.0, stop.clone(), health.clone());
            threads.push(
                std::thread::Builder::new()
                    .name("backbone-admin".into())
                    .spawn(move || admin_loop(probe, interval, &stop, &start, &health))?,
            );
        }
        let scrape = (!cfg.prometheus.is_empty()).then_some(cfg.interval.0);
        Ok(Sampler { stop, threads, health, settle: None, scrape })
    }

    /// Wait, at most `limit`, for a metadata sample taken after this call that shows no
    /// under-replicated and no offline partition; sampling every second meanwhile. `now_s` is
    /// the run's timeline; `cancel` is asked every 100 ms. What it saw goes into the report.
    pub fn settle(&mut self, limit: Duration, now_s: f64, cancel: &mut dyn FnMut() -> bool) {
        let before = self.health.samples.load(Ordering::SeqCst);
        self.health.hurry.store(true, Ordering::SeqCst);
        let t0 = Instant::now();
        let mut after_s = None;
        while t0.elapsed() < limit && !cancel() {
            if self.health.samples.load(Ordering::SeqCst) > before && self.health.unhealthy.load(Ordering::SeqCst) == 0
            {
                after_s = Some(t0.elapsed().as_secs_f64());
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if after_s.is_some()
            && let Some(scrape) = self.scrape
        {
            // One more scrape of the endpoints, so that their last values are as late as this.
            std::thread::sleep(scrape + Duration::from_millis(100));
        }
        let sampled = self.health.samples.load(Ordering::SeqCst) > before;
        self.settle = Some(Settle {
            limit_s: limit.as_secs_f64(),
            after_s,
            from_s: now_s,
            unhealthy: sampled.then(|| self.health.unhealthy.load(Ordering::SeqCst)),
        });
    }

    /// Stop sampling and gather what was sampled.
    pub fn finish(mut self) -> Backbone {
        self.stop.store(true, Ordering::SeqCst);
        let mut b = Backbone { settle: self.settle.take(), ..Backbone::default() };
        for t in self.threads.drain(..) {
            match t.join() {
                Ok(part) => {
                    b.sources.extend(part.sources);
                    let mut series: Vec<BackboneSeries> = part.series.into_values().collect();
                    series.sort_by_key(|s| (s.metric, s.broker));
                    b.series.extend(series);
                }
                Err(_) => b.sources.push(BackboneSource {
                    name: "a sampling thread".into(),
                    kind: SourceKind::Prometheus,
                    broker: None,
                    samples: 0,
                    failures: 1,
                    mean_ms: 0.0,
                    last_error: Some("the sampling thread panicked; its samples are lost".into()),
                }),
            }
        }
        b
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn admin_loop(
    mut probe: Box<dyn AdminProbe>,
    interval: Duration,
    stop: &AtomicBool,
    start: &Start,
    health: &Health,
) -> Part {
    let mut part = Part {
        sources: vec![BackboneSource {
            name: "kafka protocol (metadata)".into(),
            kind: SourceKind::Admin,
            broker: None,
            samples: 0,
            failures: 0,
            mean_ms: 0.0,
            last_error: None,
        }],
        series: HashMap::new(),
    };
    let mut last: Option<Instant> = None;
    loop {
        // Until the next sample is due: an interval after the last one began, a second while
        // the run waits for the cluster to settle. A probe slower than that: the next one right
        // away, never a backlog.
        loop {
            if stop.load(Ordering::Relaxed) {
                return part;
            }
            let every =
                if health.hurry.load(Ordering::Relaxed) { interval.min(Duration::from_secs(1)) } else { interval };
            let now = Instant::now();
            match last.map(|l| l + every) {
                Some(due) if now < due => std::thread::sleep((due - now).min(Duration::from_millis(100))),
                _ => break,
            }
        }
        let t0 = Instant::now();
        last = Some(t0);
        let got = probe.sample();
        let took = t0.elapsed();
        let outcome = match got {
            Ok(samples) => {
                health.saw(&samples);
                // Stamped at the middle of the request.
                if let Some(t) = since_load(start).map(|t| t - took.as_secs_f64() / 2.0) {
                    for s in samples {
                        part.push(0, SourceKind::Admin, s.metric, s.broker, t, s.value);
                    }
                }
                Ok(())
            }
            Err(e) => Err(e),
        };
        part.record(0, took, outcome);
    }
}

/// What a counter or a histogram was at the previous scrape of one source.
#[derive(Default)]
struct Previous {
    counters: HashMap<TargetMetric, (f64, Instant)>,
    buckets: HashMap<TargetMetric, Vec<(f64, f64)>>,
}

fn scrape_loop(sources: &[PromSource], interval: Duration, stop: &AtomicBool, start: &Start) -> Part {
    let mut part = Part {
        sources: sources
            .iter()
            .map(|s| BackboneSource {
                name: s.url.clone(),
                kind: SourceKind::Prometheus,
                broker: s.broker,
                samples: 0,
                failures: 0,
                mean_ms: 0.0,
                last_error: None,
            })
            .collect(),
        series: HashMap::new(),
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            for i in 0..sources.len() {
                part.record(i, Duration::ZERO, Err(format!("could not start the scraper: {e}")));
            }
            return part;
        }
    };
    let client = match reqwest::Client::builder().timeout(interval.min(Duration::from_secs(5))).build() {
        Ok(c) => c,
        Err(e) => {
            for i in 0..sources.len() {
                part.record(i, Duration::ZERO, Err(format!("could not make an HTTP client: {e}")));
            }
            return part;
        }
    };
    let mut previous: Vec<Previous> = sources.iter().map(|_| Previous::default()).collect();
    let mut next = Instant::now();
    while wait(stop, next) {
        next += interval;
        let sent = Instant::now();
        let scrapes = rt.block_on(futures::future::join_all(sources.iter().map(|s| fetch(&client, &s.url))));
        let (t_now, now) = (since_load(start), Instant::now());
        for (i, (s, (took, result))) in sources.iter().zip(scrapes).enumerate() {
            let outcome = result.map(|text| {
                let Ok(scrape) = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))) else {
                    return Err("the answer is not in the Prometheus text format".to_string());
                };
                let found = vocab::extract(&scrape, s.vocabulary);
                if found.is_empty() {
                    return Err(format!("none of the {:?} vocabulary's metrics were in the answer", s.vocabulary));
                }
                // The broker read its values at some moment of the request: its middle, as
                // near as we can tell; rates use that moment on both ends.
                let at = sent + took / 2;
                let t = t_now.map(|t| t - now.duration_since(at).as_secs_f64());
                for (metric, take, raw) in found {
                    let value = match (take, raw) {
                        (Take::Gauge(f), Raw::Value(v)) => Some(v * f),
                        (Take::Rate(f), Raw::Value(v)) => {
                            let before = previous[i].counters.insert(metric, (v, at));
                            before.and_then(|(pv, pt)| {
                                let dt = at.duration_since(pt).as_secs_f64();
                                // A counter that went back: the broker restarted; no rate this
                                // time. Two reads closer than half an interval (a slow scrape
                                // then a fast one): too little time for an honest rate.
                                (dt >= interval.as_secs_f64() / 2.0 && v >= pv).then(|| (v - pv) / dt * f)
                            })
                        }
                        (Take::HistP99Ms, Raw::Buckets(b)) => {
                            let before = previous[i].buckets.insert(metric, b.clone());
                            before.and_then(|p| vocab::p99_ms(&p, &b))
                        }
                        _ => None,
                    };
                    if let (Some(t), Some(v)) = (t, value) {
                        part.push(i, SourceKind::Prometheus, metric, s.broker, t, v);
                    }
                }
                Ok(())
            });
            part.record(i, took, outcome.and_then(|r| r));
        }
        next = next.max(Instant::now());
    }
    part
}

/// One GET: how long it took, and the body or why there is none.
async fn fetch(client: &reqwest::Client, url: &str) -> (Duration, Result<String, String>) {
    let t0 = Instant::now();
    let result = async {
        let resp = client.get(url).send().await.map_err(|e| describe(&e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("HTTP {status}"));
        }
        resp.text().await.map_err(|e| describe(&e))
    }
    .await;
    (t0.elapsed(), result)
}

fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() { what.to_string() } else { format!("{what}: {cause}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::MonotonicClock;
    use crate::config::units::Dur;

    /// Under-replicated partitions from a list, then the last value for ever.
    struct Scripted(Vec<f64>);

    impl AdminProbe for Scripted {
        fn sample(&mut self) -> Result<Vec<AdminSample>, String> {
            let v = if self.0.len() > 1 { self.0.remove(0) } else { self.0[0] };
            Ok(vec![AdminSample { metric: TargetMetric::UnderReplicatedPartitions, broker: None, value: v }])
        }
    }

    fn sampler(urp: Vec<f64>) -> Sampler {
        let cfg = Metrics { admin_interval: Dur::from_secs(60), ..Metrics::default() };
        let start: Start = Arc::new(std::sync::OnceLock::new());
        let _ = start.set(MonotonicClock::start());
        match Sampler::start(&cfg, Some(Box::new(Scripted(urp))), start) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn settling_waits_for_a_sample_without_under_replicated_partitions_taken_after_it_began() {
        // A 60 s interval: only the wait's own once-a-second sampling can see the 0.
        let mut s = sampler(vec![4.0, 2.0, 0.0]);
        std::thread::sleep(Duration::from_millis(200));
        s.settle(Duration::from_secs(10), 30.0, &mut || false);
        let b = s.finish();
        let settle = b.settle.unwrap_or_default();
        let after = settle.after_s.unwrap_or(f64::NAN);
        assert!((1.5..5.0).contains(&after), "settled after {after} s (two samples a second apart)");
        assert_eq!((settle.from_s, settle.unhealthy, settle.limit_s), (30.0, Some(0), 10.0));
        let points = b.series.iter().map(|s| s.points.len()).sum::<usize>();
        assert_eq!(points, 3, "{:?}", b.series);
    }

    #[test]
    fn a_cluster_that_stays_under_replicated_is_reported_as_not_settled() {
        let mut s = sampler(vec![7.0]);
        s.settle(Duration::from_millis(1500), 0.0, &mut || false);
        let settle = s.finish().settle.unwrap_or_default();
        assert_eq!((settle.after_s, settle.unhealthy), (None, Some(7)));
        let text = crate::report::backbone::settle_text(&settle);
        assert!(text.contains("not settled within 2 s: 7 partition(s)"), "{text}");
    }

    #[test]
    fn an_interrupt_ends_the_wait_at_once() {
        let mut s = sampler(vec![7.0]);
        let t0 = Instant::now();
        s.settle(Duration::from_secs(30), 0.0, &mut || true);
        assert!(t0.elapsed() < Duration::from_secs(2));
        assert_eq!(s.finish().settle.map(|x| x.after_s), Some(None));
    }
}
