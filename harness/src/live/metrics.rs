//! The registry: the run's identity as an info metric, and one collector that reads the live
//! counters at each scrape.

use std::borrow::Cow;
use std::fmt::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use super::Identity;
use crate::recorder::{LIVE_BUCKETS_US, LiveCounters, LiveHist};

/// The registry a run serves: every metric named `fleetstorm_*`, labelled `shard="I/N"` on a
/// shard of a campaign.
pub fn registry(
    id: &Identity,
    live: Arc<LiveCounters>,
    classes: Vec<String>,
    groups: Vec<String>,
    planned: Arc<AtomicU64>,
) -> Registry {
    let labels = id.shard.iter().map(|s| (Cow::Borrowed("shard"), Cow::Owned(s.clone())));
    let mut r = Registry::with_prefix_and_labels("fleetstorm", labels);
    r.register(
        "run",
        "The run: its id (as in report.json), scenario, target profile (name and kind)",
        Info::new(vec![
            ("run_id", id.run_id.clone()),
            ("scenario", id.scenario.clone()),
            ("profile", id.profile.clone()),
            ("target_kind", id.target_kind.clone()),
        ]),
    );
    r.register_collector(Box::new(LiveMetrics { live, classes, groups, planned }));
    r
}

#[derive(Debug)]
struct LiveMetrics {
    live: Arc<LiveCounters>,
    classes: Vec<String>,
    groups: Vec<String>,
    planned: Arc<AtomicU64>,
}

fn get(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

fn counter(enc: &mut DescriptorEncoder, name: &str, help: &str, unit: Option<&Unit>, v: u64) -> Result<(), Error> {
    enc.encode_descriptor(name, help, unit, MetricType::Counter)?.encode_counter::<NoLabelSet, _, u64>(&v, None)
}

fn gauge<V: prometheus_client::encoding::EncodeGaugeValue>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    v: V,
) -> Result<(), Error> {
    enc.encode_descriptor(name, help, unit, MetricType::Gauge)?.encode_gauge(&v)
}

/// One metric family with a sample per name (`label="name"`), read by `value`.
fn per_name<T>(
    enc: &mut DescriptorEncoder,
    (name, help, unit, kind): (&str, &str, Option<&Unit>, MetricType),
    label: &str,
    items: impl Iterator<Item = (String, T)>,
    mut sample: impl FnMut(&mut MetricEncoder, T) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut m = enc.encode_descriptor(name, help, unit, kind)?;
    for (n, item) in items {
        let labels = [(label, n.as_str())];
        sample(&mut m.encode_family(&labels)?, item)?;
    }
    Ok(())
}

fn histogram(m: &mut MetricEncoder, h: &LiveHist) -> Result<(), Error> {
    let (counts, sum_us) = h.snapshot();
    let buckets: Vec<(f64, u64)> =
        LIVE_BUCKETS_US.iter().map(|b| *b as f64 / 1e6).chain(std::iter::once(f64::INFINITY)).zip(counts).collect();
    // The count is the buckets' sum, so that it always equals the +Inf bucket.
    let count = counts.iter().sum();
    m.encode_histogram::<NoLabelSet>(sum_us as f64 / 1e6, count, &buckets, None)
}

impl Collector for LiveMetrics {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), Error> {
        let l = &self.live;
        let classes = || self.classes.iter().cloned().zip(&l.classes);
        let groups = || self.groups.iter().cloned().zip(&l.groups);
        counter(
            &mut enc,
            "events_planned",
            "Events of the schedule whose intended send time has come (this shard's)",
            None,
            get(&self.planned),
        )?;
        let c = MetricType::Counter;
        per_name(
            &mut enc,
            ("records_sent", "Records handed to the client library", None, c),
            "class",
            classes(),
            |m, x| m.encode_counter::<NoLabelSet, _, u64>(&get(&x.sent), None),
        )?;
        per_name(
            &mut enc,
            ("records_acked", "Records acknowledged by the target", None, c),
            "class",
            classes(),
            |m, x| m.encode_counter::<NoLabelSet, _, u64>(&get(&x.acked), None),
        )?;
        per_name(
            &mut enc,
            ("records_failed", "Records the target refused or that timed out", None, c),
            "class",
            classes(),
            |m, x| m.encode_counter::<NoLabelSet, _, u64>(&get(&x.failed), None),
        )?;
        per_name(
            &mut enc,
            ("acked", "Value bytes acknowledged", Some(&Unit::Bytes), c),
            "class",
            classes(),
            |m, x| m.encode_counter::<NoLabelSet, _, u64>(&get(&x.acked_bytes), None),
        )?;
        counter(
            &mut enc,
            "backpressure",
            "Sends that found the client's queue full and had to wait",
            None,
            get(&l.backpressure),
        )?;
        per_name(
            &mut enc,
            (
                "ack_latency",
                "Acknowledgement latency from the intended send time",
                Some(&Unit::Seconds),
                MetricType::Histogram,
            ),
            "class",
            classes(),
            |m, x| histogram(m, &x.ack_latency),
        )?;
        per_name(&mut enc, ("consumer_records", "Records a group read", None, c), "group", groups(), |m, x| {
            m.encode_counter::<NoLabelSet, _, u64>(&get(&x.consumed), None)
        })?;
        per_name(
            &mut enc,
            ("consumer_rereads", "Records a group read again (replays, restarts, redelivery)", None, c),
            "group",
            groups(),
            |m, x| m.encode_counter::<NoLabelSet, _, u64>(&get(&x.rereads), None),
        )?;
        per_name(
            &mut enc,
            (
                "consumer_lag_records",
                "Acknowledged records a group has not read yet (sampled each second)",
                None,
                MetricType::Gauge,
            ),
            "group",
            groups(),
            |m, x| m.encode_gauge(&(get(&x.lag) as i64)),
        )?;
        per_name(
            &mut enc,
            (
                "consumer_e2e_latency",
                "End-to-end latency from the intended send time to a group's first read",
                Some(&Unit::Seconds),
                MetricType::Histogram,
            ),
            "group",
            groups(),
            |m, x| histogram(m, &x.e2e),
        )?;
        counter(
            &mut enc,
            "audit_reads",
            "Records the audit reader has read (its verdict comes after the drain)",
            None,
            get(&l.audit_reads),
        )?;
        gauge(
            &mut enc,
            "harness_cpu_percent",
            "fleetstorm's own CPU, percent of one core (last sample)",
            None,
            f64::from(f32::from_bits(l.harness_cpu_pct.load(Ordering::Relaxed))),
        )?;
        gauge(
            &mut enc,
            "harness_rss",
            "fleetstorm's resident memory (last sample)",
            Some(&Unit::Bytes),
            (f64::from(f32::from_bits(l.harness_rss_mib.load(Ordering::Relaxed))) * 1048576.0).round() as i64,
        )?;
        gauge(
            &mut enc,
            "load_seconds_closed",
            "Seconds of the run's timeline closed so far",
            None,
            get(&l.seconds_closed) as i64,
        )?;
        Ok(())
    }
}
