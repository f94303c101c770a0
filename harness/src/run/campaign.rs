//! One shard of a campaign: which part of the fleet it sends, the run id every shard shares, and
//! how the shards agree on one start (through the target: `driver::barrier`; or `--start-at`).

use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use crate::driver::barrier::{self, Barrier, BarrierError};
use crate::driver::target::Connection;
use crate::plan::Shard;
use crate::report::CampaignInfo;

/// Time between the last shard's readiness and the start of the load: every shard must see
/// the last announcement and sleep until the instant.
const START_MARGIN: Duration = Duration::from_secs(3);

/// One shard of a campaign, as the command line gave it.
#[derive(Clone, Debug)]
pub struct Campaign {
    /// Shared by every shard.
    pub id: String,
    pub shard: Shard,
    /// Start at this instant instead of agreeing on it through the target.
    pub start_at: Option<SystemTime>,
    /// How long to wait for the other shards at each agreement.
    pub start_timeout: Duration,
}

impl Campaign {
    /// The run id every shard of the campaign writes into its records (so that each shard's
    /// audit and groups recognise the campaign's records, whoever sent them).
    pub fn run_id(&self) -> u64 {
        let h = Sha256::digest(self.id.as_bytes());
        let mut b = [0u8; 8];
        b.copy_from_slice(&h[..8]);
        u64::from_le_bytes(b)
    }
}

/// A shard's way through the agreement: laid out, then ready, then the start.
pub struct Agreement {
    campaign: Campaign,
    barrier: Option<Barrier>,
    /// This shard's clock minus the broker's, ms, and the uncertainty.
    pub skew_ms: Option<(f64, f64)>,
}

impl Agreement {
    pub fn open(conn: &Connection, campaign: &Campaign, fingerprint: &str) -> Result<Agreement, BarrierError> {
        let barrier = match campaign.start_at {
            Some(_) => None,
            None => Some(Barrier::open(conn, &campaign.id, campaign.shard.index, campaign.shard.count, fingerprint)?),
        };
        Ok(Agreement { campaign: campaign.clone(), barrier, skew_ms: None })
    }

    /// Every shard has laid the target out (shard 0 has committed the groups' start offsets), so
    /// members may join.
    pub fn laid_out(&mut self, cancelled: &dyn Fn() -> bool) -> Result<(), BarrierError> {
        if let Some(b) = &mut self.barrier {
            tracing::info!("campaign {}: waiting for every shard to lay the target out", self.campaign.id);
            let agreed = b.agree("laid-out", self.campaign.start_timeout, cancelled)?;
            self.skew_ms = agreed.skew_ms;
        }
        Ok(())
    }

    /// Every shard is connected and its members joined: the start, Unix ms.
    pub fn ready(&mut self, cancelled: &dyn Fn() -> bool) -> Result<u64, BarrierError> {
        match (&mut self.barrier, self.campaign.start_at) {
            (_, Some(at)) => Ok(at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)),
            (Some(b), None) => {
                tracing::info!("campaign {}: waiting for every shard to be ready", self.campaign.id);
                let agreed = b.agree("ready", self.campaign.start_timeout, cancelled)?;
                if agreed.skew_ms.is_some() {
                    self.skew_ms = agreed.skew_ms;
                }
                Ok(barrier::start_after(&agreed, START_MARGIN))
            }
            (None, None) => Ok(unix_ms_now()),
        }
    }

    pub fn info(&self, start_unix_ms: u64) -> CampaignInfo {
        CampaignInfo {
            id: self.campaign.id.clone(),
            shard: self.campaign.shard.index,
            shards: self.campaign.shard.count,
            start_unix_ms,
            clock_skew_ms: self.skew_ms.map(|(s, _)| s),
        }
    }
}

/// What a shard's end-to-end figures assume about clocks, with the skew it could observe.
pub fn clock_note(skew_ms: Option<(f64, f64)>) -> String {
    let observed = match skew_ms {
        Some((skew, within)) => format!(
            "this shard's clock was {skew:+.1} ms off the broker's (within {within:.1} ms) when it announced itself"
        ),
        None => "the target did not stamp the control topic itself (LogAppendTime), so no skew was observed".into(),
    };
    format!(
        "campaign shard: end-to-end latency and event age of records sent by other shards are measured across \
         machines' clocks and assume they agree; {observed}"
    )
}

fn unix_ms_now() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Sleep until `unix_ms` on this machine's clock, waking to check `cancelled`; false if cancelled.
pub fn sleep_until(unix_ms: u64, cancelled: &dyn Fn() -> bool) -> bool {
    loop {
        if cancelled() {
            return false;
        }
        let now = unix_ms_now();
        if now >= unix_ms {
            return true;
        }
        std::thread::sleep(Duration::from_millis((unix_ms - now).min(100)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_note_states_the_skew_or_that_none_was_observed() {
        assert!(clock_note(Some((-3.25, 1.5))).contains("-3.2 ms off the broker's (within 1.5 ms)"));
        assert!(clock_note(None).contains("no skew was observed"));
    }

    #[test]
    fn every_shard_of_a_campaign_writes_the_same_run_id() {
        let c = |i| Campaign {
            id: "job-7f3a".into(),
            shard: Shard { index: i, count: 3 },
            start_at: None,
            start_timeout: Duration::from_secs(1),
        };
        assert_eq!(c(0).run_id(), c(2).run_id());
        let other = Campaign { id: "job-7f3b".into(), ..c(0) };
        assert_ne!(c(0).run_id(), other.run_id());
    }
}
