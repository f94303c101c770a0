//! Each vendor's metric names, mapped to fleetstorm's one vocabulary (`TargetMetric`).
//!
//! A rule picks samples by metric name and labels; several samples matching one rule in one
//! scrape (per shard, per listener) are added up. Counters become per-second rates between two
//! scrapes; histograms become the 99th percentile of the observations between two scrapes (the
//! upper bound of the bucket it falls in).
//!
//! - `kafka_jmx`: Apache Kafka with the Prometheus JMX exporter and the rules in
//!   `scripts/kafka-jmx-exporter.yaml` (the names Strimzi's and Confluent's configurations use).
//!   Checked against the local cluster's brokers in the real-Kafka test tier.
//! - `redpanda`: Redpanda's `/public_metrics`, from its documentation; unit-tested on a sample,
//!   not against a running Redpanda (none can run here).

use std::collections::BTreeMap;

use prometheus_parse::{Sample, Scrape, Value};

use crate::config::profile::Vocabulary;
use crate::report::schema::TargetMetric;

/// What to make of the matching samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Take {
    /// The value as it is, times a factor.
    Gauge(f64),
    /// A counter: its rate per second, times a factor.
    Rate(f64),
    /// A histogram in seconds: the p99 of the interval, in ms.
    HistP99Ms,
}

/// One mapping rule.
pub struct Rule {
    pub name: &'static str,
    /// Labels that must have this value (`Some`) or be absent (`None`).
    pub labels: &'static [(&'static str, Option<&'static str>)],
    pub metric: TargetMetric,
    pub take: Take,
}

const fn rule(
    name: &'static str,
    labels: &'static [(&'static str, Option<&'static str>)],
    metric: TargetMetric,
    take: Take,
) -> Rule {
    Rule { name, labels, metric, take }
}

use TargetMetric as M;

const KAFKA_JMX: &[Rule] = &[
    rule("kafka_server_brokertopicmetrics_bytesin_total", &[("topic", None)], M::BytesIn, Take::Rate(1.0)),
    rule("kafka_server_brokertopicmetrics_bytesout_total", &[("topic", None)], M::BytesOut, Take::Rate(1.0)),
    rule("kafka_server_brokertopicmetrics_messagesin_total", &[("topic", None)], M::MessagesIn, Take::Rate(1.0)),
    rule(
        "kafka_network_requestmetrics_totaltimems",
        &[("request", Some("Produce")), ("quantile", Some("0.99"))],
        M::ProduceLatencyP99,
        Take::Gauge(1.0),
    ),
    rule(
        "kafka_network_requestmetrics_totaltimems",
        &[("request", Some("FetchConsumer")), ("quantile", Some("0.99"))],
        M::FetchLatencyP99,
        Take::Gauge(1.0),
    ),
    rule(
        "kafka_network_requestmetrics_requestqueuetimems",
        &[("request", Some("Produce")), ("quantile", Some("0.99"))],
        M::ProduceQueueP99,
        Take::Gauge(1.0),
    ),
    rule("kafka_server_replicamanager_underreplicatedpartitions", &[], M::UnderReplicatedPartitions, Take::Gauge(1.0)),
    rule("kafka_controller_kafkacontroller_offlinepartitionscount", &[], M::OfflinePartitions, Take::Gauge(1.0)),
    rule("kafka_server_replicamanager_isrshrinks_total", &[], M::IsrShrinks, Take::Rate(1.0)),
    rule("kafka_controller_kafkacontroller_activecontrollercount", &[], M::ActiveController, Take::Gauge(1.0)),
    rule("kafka_server_replicamanager_leadercount", &[], M::Leaders, Take::Gauge(1.0)),
    rule("kafka_log_log_size", &[], M::LogSize, Take::Gauge(1.0)),
    rule("kafka_network_socketserver_networkprocessoravgidle_percent", &[], M::NetworkIdle, Take::Gauge(100.0)),
    rule(
        "kafka_server_kafkarequesthandlerpool_requesthandleravgidle_percent",
        &[],
        M::RequestHandlerIdle,
        Take::Gauge(100.0),
    ),
    rule("process_cpu_seconds_total", &[], M::Cpu, Take::Rate(100.0)),
];

const REDPANDA: &[Rule] = &[
    rule("redpanda_kafka_request_bytes_total", &[("redpanda_request", Some("produce"))], M::BytesIn, Take::Rate(1.0)),
    rule("redpanda_kafka_request_bytes_total", &[("redpanda_request", Some("consume"))], M::BytesOut, Take::Rate(1.0)),
    rule("redpanda_kafka_records_produced_total", &[], M::MessagesIn, Take::Rate(1.0)),
    rule(
        "redpanda_kafka_request_latency_seconds",
        &[("redpanda_request", Some("produce"))],
        M::ProduceLatencyP99,
        Take::HistP99Ms,
    ),
    rule(
        "redpanda_kafka_request_latency_seconds",
        &[("redpanda_request", Some("consume"))],
        M::FetchLatencyP99,
        Take::HistP99Ms,
    ),
    rule("redpanda_kafka_under_replicated_replicas", &[], M::UnderReplicatedPartitions, Take::Gauge(1.0)),
    rule("redpanda_cluster_unavailable_partitions", &[], M::OfflinePartitions, Take::Gauge(1.0)),
    rule("redpanda_cpu_busy_seconds_total", &[], M::Cpu, Take::Rate(100.0)),
];

pub fn rules(v: Vocabulary) -> &'static [Rule] {
    match v {
        Vocabulary::KafkaJmx => KAFKA_JMX,
        Vocabulary::Redpanda => REDPANDA,
    }
}

/// What one rule found in one scrape, before rates: a summed value, or summed buckets.
#[derive(Clone, Debug, PartialEq)]
pub enum Raw {
    Value(f64),
    /// `(upper bound in seconds, cumulative count)`, ascending.
    Buckets(Vec<(f64, f64)>),
}

fn matches(rule: &Rule, s: &Sample) -> bool {
    // prometheus-parse strips `_total` from counter names when the TYPE line names the family
    // without it; accept either spelling.
    let name_ok = s.metric == rule.name || rule.name.strip_suffix("_total").is_some_and(|n| s.metric == n);
    name_ok
        && rule.labels.iter().all(|(k, want)| match want {
            Some(v) => s.labels.get(k) == Some(*v),
            None => s.labels.get(k).is_none(),
        })
}

/// The scalar a sample holds, for a rule that wants one (`quantile` is a label in the rule for
/// summaries).
fn scalar(s: &Sample, rule: &Rule) -> Option<f64> {
    match &s.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(*v),
        Value::Summary(qs) => {
            let q: f64 = rule.labels.iter().find(|(k, _)| *k == "quantile")?.1?.parse().ok()?;
            qs.iter().find(|c| (c.quantile - q).abs() < 1e-9).map(|c| c.count)
        }
        Value::Histogram(_) => None,
    }
}

/// Every rule's raw value in this scrape (rules with no matching sample are left out).
pub fn extract(scrape: &Scrape, v: Vocabulary) -> Vec<(TargetMetric, Take, Raw)> {
    let mut out = Vec::new();
    for r in rules(v) {
        // A summary carries its quantiles inside the value, not as labels of the sample.
        let samples = scrape.samples.iter().filter(|s| {
            matches(r, s)
                || (matches!(s.value, Value::Summary(_))
                    && s.metric == r.name
                    && r.labels.iter().filter(|(k, _)| *k != "quantile").all(|(k, want)| match want {
                        Some(v) => s.labels.get(k) == Some(*v),
                        None => s.labels.get(k).is_none(),
                    }))
        });
        match r.take {
            Take::HistP99Ms => {
                let mut sum: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
                let mut any = false;
                for s in samples {
                    if let Value::Histogram(hs) = &s.value {
                        any = true;
                        for h in hs {
                            let e = sum.entry(h.less_than.to_bits()).or_insert((h.less_than, 0.0));
                            e.1 += h.count;
                        }
                    }
                }
                if any {
                    let mut b: Vec<(f64, f64)> = sum.into_values().collect();
                    b.sort_by(|x, y| x.0.total_cmp(&y.0));
                    out.push((r.metric, r.take, Raw::Buckets(b)));
                }
            }
            Take::Gauge(_) | Take::Rate(_) => {
                let vals: Vec<f64> = samples.filter_map(|s| scalar(s, r)).filter(|v| v.is_finite()).collect();
                if !vals.is_empty() {
                    out.push((r.metric, r.take, Raw::Value(vals.iter().sum())));
                }
            }
        }
    }
    out
}

/// The 99th percentile (ms) of the observations between two cumulative bucket sets: the upper
/// bound of the bucket it falls in (the largest finite bound if it falls in `+Inf`). `None`
/// when nothing was observed in between.
pub fn p99_ms(prev: &[(f64, f64)], now: &[(f64, f64)]) -> Option<f64> {
    let delta: Vec<(f64, f64)> = now
        .iter()
        .map(|(le, c)| {
            let before = prev.iter().find(|(p, _)| p.to_bits() == le.to_bits()).map_or(0.0, |(_, c)| *c);
            (*le, (c - before).max(0.0))
        })
        .collect();
    let total = delta.last().map(|(_, c)| *c)?;
    if total <= 0.0 {
        return None;
    }
    let target = total * 0.99;
    let finite_max = delta.iter().filter(|(le, _)| le.is_finite()).map(|(le, _)| *le).fold(0.0, f64::max);
    let (le, _) = delta.iter().find(|(_, c)| *c >= target)?;
    Some(if le.is_finite() { *le } else { finite_max } * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Scrape {
        Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap()
    }

    #[test]
    fn kafka_jmx_names_map_to_the_vocabulary_all_topics_bean_only() {
        let s = parse(
            "# TYPE kafka_server_brokertopicmetrics_bytesin_total counter\n\
             kafka_server_brokertopicmetrics_bytesin_total 1000.0\n\
             kafka_server_brokertopicmetrics_bytesin_total{topic=\"a\"} 600.0\n\
             # TYPE kafka_server_replicamanager_underreplicatedpartitions gauge\n\
             kafka_server_replicamanager_underreplicatedpartitions 4.0\n\
             # TYPE kafka_network_requestmetrics_totaltimems gauge\n\
             kafka_network_requestmetrics_totaltimems{request=\"Produce\",quantile=\"0.99\"} 12.5\n\
             kafka_network_requestmetrics_totaltimems{request=\"Produce\",quantile=\"0.5\"} 2.0\n\
             kafka_network_requestmetrics_totaltimems{request=\"FetchConsumer\",quantile=\"0.99\"} 501.0\n\
             # TYPE kafka_network_socketserver_networkprocessoravgidle_percent gauge\n\
             kafka_network_socketserver_networkprocessoravgidle_percent 0.93\n",
        );
        let got = extract(&s, Vocabulary::KafkaJmx);
        let find = |m: TargetMetric| got.iter().find(|(x, _, _)| *x == m).map(|(_, t, r)| (*t, r.clone()));
        assert_eq!(find(M::BytesIn), Some((Take::Rate(1.0), Raw::Value(1000.0))));
        assert_eq!(find(M::UnderReplicatedPartitions), Some((Take::Gauge(1.0), Raw::Value(4.0))));
        assert_eq!(find(M::ProduceLatencyP99), Some((Take::Gauge(1.0), Raw::Value(12.5))));
        assert_eq!(find(M::FetchLatencyP99), Some((Take::Gauge(1.0), Raw::Value(501.0))));
        assert_eq!(find(M::NetworkIdle), Some((Take::Gauge(100.0), Raw::Value(0.93))));
        assert_eq!(find(M::Cpu), None);
    }

    #[test]
    fn redpanda_sums_shards_and_reads_histograms() {
        let s = parse(
            "# TYPE redpanda_kafka_under_replicated_replicas gauge\n\
             redpanda_kafka_under_replicated_replicas{redpanda_namespace=\"kafka\",redpanda_topic=\"a\"} 2\n\
             redpanda_kafka_under_replicated_replicas{redpanda_namespace=\"kafka\",redpanda_topic=\"b\"} 1\n\
             # TYPE redpanda_kafka_request_latency_seconds histogram\n\
             redpanda_kafka_request_latency_seconds_bucket{redpanda_request=\"produce\",le=\"0.001\"} 10\n\
             redpanda_kafka_request_latency_seconds_bucket{redpanda_request=\"produce\",le=\"0.01\"} 90\n\
             redpanda_kafka_request_latency_seconds_bucket{redpanda_request=\"produce\",le=\"+Inf\"} 100\n\
             redpanda_kafka_request_latency_seconds_sum{redpanda_request=\"produce\"} 0.5\n\
             redpanda_kafka_request_latency_seconds_count{redpanda_request=\"produce\"} 100\n",
        );
        let got = extract(&s, Vocabulary::Redpanda);
        let urp = got.iter().find(|(m, _, _)| *m == M::UnderReplicatedPartitions).unwrap();
        assert_eq!(urp.2, Raw::Value(3.0));
        let hist = got.iter().find(|(m, _, _)| *m == M::ProduceLatencyP99).unwrap();
        let Raw::Buckets(b) = &hist.2 else { panic!("{hist:?}") };
        assert_eq!(b.len(), 3);
    }

    #[test]
    fn the_p99_is_of_the_interval_between_two_scrapes() {
        let prev = [(0.001, 10.0), (0.01, 90.0), (f64::INFINITY, 100.0)];
        // 100 more observations: 98 under 1 ms, 1 under 10 ms, 1 above: the 99th is under 10 ms.
        let now = [(0.001, 108.0), (0.01, 189.0), (f64::INFINITY, 200.0)];
        assert_eq!(p99_ms(&prev, &now), Some(10.0));
        // All of them above the last finite bound: that bound, the best the data can say.
        let later = [(0.001, 108.0), (0.01, 189.0), (f64::INFINITY, 300.0)];
        assert_eq!(p99_ms(&now, &later), Some(10.0));
        assert_eq!(p99_ms(&now, &now), None);
    }
}
