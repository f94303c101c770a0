//! How the shards of a campaign agree on one start, through the target itself (no server of
//! ours): each shard writes an announcement to a one-partition control topic and reads the topic
//! until it has seen every shard's announcement for the same phase of the same campaign. Every
//! shard reads the same records, so every shard computes the same answer from them.
//!
//! The control topic is created with `message.timestamp.type=LogAppendTime` where the target
//! honours topic configs: the broker then stamps each announcement, and the shard compares that
//! stamp with its own clock around the write (the clock skew the report states, with its
//! uncertainty). The embedded cluster ignores topic configs, so there the skew is not measured.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rdkafka::client::OAuthToken;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::{Message, Timestamp};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use super::auth::Auth;
use super::client_config;
use super::target::Connection;
use crate::config::scenario::TopicSpec;

/// The control topic every campaign on a target shares (records of a day are kept).
pub const CONTROL_TOPIC: &str = "fleetstorm.control";

#[derive(Debug, thiserror::Error)]
pub enum BarrierError {
    #[error("control topic {CONTROL_TOPIC}: {0}")]
    Target(String),
    #[error(
        "campaign {campaign}: {seen} of {shards} shards announced `{phase}` within {timeout:?} (missing shards: {missing}); \
         check that every shard runs with the same --campaign and shard count against the same target"
    )]
    Timeout { campaign: String, phase: &'static str, seen: usize, shards: u32, timeout: Duration, missing: String },
    #[error("campaign {campaign}: shard {shard} {why}")]
    Mismatch { campaign: String, shard: u32, why: String },
    #[error("interrupted while waiting for the other shards")]
    Interrupted,
}

/// What a shard announces.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Announcement {
    pub campaign: String,
    pub shard: u32,
    pub shards: u32,
    pub phase: String,
    /// The scenario's fingerprint: every shard must run the same one.
    pub fingerprint: String,
    /// The shard's clock when it wrote the announcement, Unix ms.
    pub unix_ms: u64,
}

/// What a shard learns when every shard has announced a phase.
#[derive(Clone, Debug)]
pub struct Agreed {
    /// Every shard's announcement, by shard index.
    pub announcements: Vec<Announcement>,
    /// This shard's clock minus the broker's, in ms, and its uncertainty (half the time the write
    /// took), when the broker stamped the record itself.
    pub skew_ms: Option<(f64, f64)>,
}

/// The barrier's clients' context: the broker's stamp of the last announcement written, and
/// the target's OAUTHBEARER tokens.
#[derive(Clone, Default)]
struct Stamp(Arc<Mutex<Option<(Timestamp, SystemTime)>>>, Auth);

impl ClientContext for Stamp {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(&self, config: Option<&str>) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        self.1.generate(config)
    }
}

impl ConsumerContext for Stamp {}

impl ProducerContext for Stamp {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Ok(m) = result
            && let Ok(mut g) = self.0.lock()
        {
            *g = Some((m.timestamp(), SystemTime::now()));
        }
    }
}

/// A shard's side of the agreement.
pub struct Barrier {
    producer: BaseProducer<Stamp>,
    consumer: BaseConsumer<Stamp>,
    stamp: Stamp,
    campaign: String,
    shard: u32,
    shards: u32,
    fingerprint: String,
    /// Announcements read so far (the topic is read once, forward).
    seen: Vec<Announcement>,
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Barrier {
    /// Create the control topic if needed and open the clients.
    pub fn open(
        conn: &Connection,
        campaign: &str,
        shard: u32,
        shards: u32,
        fingerprint: &str,
    ) -> Result<Barrier, BarrierError> {
        let replication = conn.brokers.len().clamp(1, 3) as u16;
        let spec = TopicSpec {
            name: CONTROL_TOPIC.into(),
            partitions: 1,
            replication,
            config: [
                ("message.timestamp.type".to_string(), "LogAppendTime".to_string()),
                ("retention.ms".to_string(), "86400000".to_string()),
            ]
            .into(),
        };
        conn.ensure_topics_checking(&[spec], false).map_err(|e| BarrierError::Target(e.to_string()))?;
        let stamp = Stamp(Arc::default(), conn.auth.clone());
        let producer: BaseProducer<Stamp> = client_config(&conn.bootstrap, &[&conn.base])
            .set("acks", "all")
            .set("linger.ms", "0")
            .create_with_context(stamp.clone())
            .map_err(|e| BarrierError::Target(e.to_string()))?;
        let consumer: BaseConsumer<Stamp> = client_config(&conn.bootstrap, &[&conn.base])
            .set("group.id", format!("fleetstorm.control.{campaign}.{shard}"))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .create_with_context(stamp.clone())
            .map_err(|e| BarrierError::Target(e.to_string()))?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(CONTROL_TOPIC, 0, Offset::Beginning)
            .map_err(|e| BarrierError::Target(e.to_string()))?;
        consumer.assign(&tpl).map_err(|e| BarrierError::Target(e.to_string()))?;
        Ok(Barrier {
            producer,
            consumer,
            stamp,
            campaign: campaign.into(),
            shard,
            shards,
            fingerprint: fingerprint.into(),
            seen: Vec::new(),
        })
    }

    /// Announce `phase` and wait until every shard has: all announcements of the phase, by shard.
    pub fn agree(
        &mut self,
        phase: &'static str,
        timeout: Duration,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Agreed, BarrierError> {
        let me = Announcement {
            campaign: self.campaign.clone(),
            shard: self.shard,
            shards: self.shards,
            phase: phase.into(),
            fingerprint: self.fingerprint.clone(),
            unix_ms: unix_ms(SystemTime::now()),
        };
        let body = serde_json::to_vec(&me).map_err(|e| BarrierError::Target(e.to_string()))?;
        if let Ok(mut g) = self.stamp.0.lock() {
            *g = None;
        }
        let sent = SystemTime::now();
        self.producer
            .send(BaseRecord::<str, [u8]>::to(CONTROL_TOPIC).key(self.campaign.as_str()).payload(&body))
            .map_err(|(e, _)| BarrierError::Target(e.to_string()))?;
        self.producer.flush(Duration::from_secs(30)).map_err(|e| BarrierError::Target(e.to_string()))?;
        let skew_ms = match self.stamp.0.lock().ok().and_then(|g| *g) {
            Some((Timestamp::LogAppendTime(broker), acked)) => {
                let (a, b) = (unix_ms(sent) as f64, unix_ms(acked) as f64);
                Some(((a + b) / 2.0 - broker as f64, (b - a) / 2.0))
            }
            _ => None,
        };
        let deadline = Instant::now() + timeout;
        loop {
            let mut of_phase: Vec<&Announcement> =
                self.seen.iter().filter(|a| a.campaign == self.campaign && a.phase == phase).collect();
            of_phase.sort_by_key(|a| a.shard);
            of_phase.dedup_by_key(|a| a.shard);
            for a in &of_phase {
                if a.shards != self.shards {
                    return Err(
                        self.mismatch(a.shard, format!("runs with {} shards, this one with {}", a.shards, self.shards))
                    );
                }
                if a.fingerprint != self.fingerprint {
                    return Err(self.mismatch(a.shard, "runs a different scenario (fingerprints differ)".into()));
                }
            }
            if of_phase.len() as u32 >= self.shards {
                return Ok(Agreed { announcements: of_phase.into_iter().cloned().collect(), skew_ms });
            }
            if cancelled() {
                return Err(BarrierError::Interrupted);
            }
            if Instant::now() > deadline {
                let have: Vec<u32> = of_phase.iter().map(|a| a.shard).collect();
                let missing: Vec<String> =
                    (0..self.shards).filter(|i| !have.contains(i)).map(|i| i.to_string()).collect();
                return Err(BarrierError::Timeout {
                    campaign: self.campaign.clone(),
                    phase,
                    seen: have.len(),
                    shards: self.shards,
                    timeout,
                    missing: missing.join(", "),
                });
            }
            match self.consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => {
                    if let Some(a) = m.payload().and_then(|p| serde_json::from_slice::<Announcement>(p).ok()) {
                        self.seen.push(a);
                    }
                }
                Some(Err(e)) => tracing::debug!("control topic: {e}"),
                None => {}
            }
        }
    }

    fn mismatch(&self, shard: u32, why: String) -> BarrierError {
        BarrierError::Mismatch { campaign: self.campaign.clone(), shard, why }
    }
}

/// The agreed start: the latest announcement of the phase plus `margin`, identical on every shard.
pub fn start_after(agreed: &Agreed, margin: Duration) -> u64 {
    agreed.announcements.iter().map(|a| a.unix_ms).max().unwrap_or(0) + margin.as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(shard: u32, unix_ms: u64) -> Announcement {
        Announcement { campaign: "c".into(), shard, shards: 3, phase: "ready".into(), fingerprint: "f".into(), unix_ms }
    }

    #[test]
    fn every_shard_computes_the_same_start_from_the_same_announcements() {
        let agreed = Agreed { announcements: vec![a(0, 1000), a(2, 1500), a(1, 1200)], skew_ms: None };
        assert_eq!(start_after(&agreed, Duration::from_secs(2)), 3500);
    }
}
