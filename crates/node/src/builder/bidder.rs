//! The bidder: follows the builder's best block and submits it to a relay over the builder API,
//! BLS-signed, whenever it improved (the relay client enforces the improvement rule and the
//! per-second cap).
//!
//! It watches a `watch` channel, so when submissions are slower than building it skips straight
//! to the latest best instead of queueing stale blocks. Up to [`MAX_IN_FLIGHT`] submissions go
//! at once, so a new best does not wait for the relay to finish checking the one before (the
//! relay keeps a builder's last-received bid, whatever order the checks end in).

use std::time::Duration;

use alloy_primitives::{Address, B256};
use cobuild_relay::{
    BlsPublicKey, BuilderKey, RelayClient,
    bid::{BidParams, BuildError as SubmissionBuildError, build_submission},
    client::{ProposerDuty, RelayError, SubmitOutcome},
};
use tokio::sync::watch;

use super::Bid;

/// Sends of one best that may fail before the bidder waits for the next best.
const MAX_RETRIES: u32 = 3;
/// Pause before sending again after a send failed (the cap says itself how long to wait).
const RETRY_AFTER: Duration = Duration::from_millis(50);
/// Submissions sent and not answered yet, at most.
const MAX_IN_FLIGHT: usize = 2;

/// A bid could not be submitted (the builder goes on; the next best is tried).
#[derive(Debug, thiserror::Error)]
pub enum BidError {
    /// The relay refused the bid or could not be reached.
    #[error(transparent)]
    Relay(#[from] RelayError),
    /// The block could not be turned into a submission.
    #[error(transparent)]
    Submission(#[from] SubmissionBuildError),
    /// The relay lists no proposer for the slot.
    #[error("the relay lists no proposer for slot {0}")]
    NoDuty(u64),
    /// The signing task died.
    #[error("signing task: {0}")]
    Join(String),
}

/// Submits the builder's best blocks to one relay.
#[derive(Debug)]
pub struct Bidder {
    client: RelayClient,
    key: BuilderKey,
    domain: B256,
    duties: Vec<ProposerDuty>,
}

impl Bidder {
    /// A bidder signing with `key` over `domain`; each bid names the proposer and the fee
    /// recipient the relay's validators endpoint lists for its slot.
    pub const fn new(client: RelayClient, key: BuilderKey, domain: B256) -> Self {
        Self {
            client,
            key,
            domain,
            duties: Vec::new(),
        }
    }

    /// Submits every new best until the channel closes. A bid the cap held back, or that failed
    /// to reach the relay, is retried with whatever is the best by then.
    pub async fn run(mut self, mut best: watch::Receiver<Option<Bid>>) {
        let mut in_flight = tokio::task::JoinSet::new();
        // A best came that was not sent yet.
        let mut unsent = false;
        let mut retry_at: Option<tokio::time::Instant> = None;
        let mut failures = 0;
        loop {
            if unsent && retry_at.is_none() && in_flight.len() < MAX_IN_FLIGHT {
                unsent = false;
                let latest = best.borrow_and_update().clone();
                if let Some(bid) = latest {
                    match self.prepare(&bid).await {
                        Ok(send) => {
                            in_flight.spawn(async move { (bid.slot, send.await) });
                        }
                        Err(e) => {
                            tracing::warn!(slot = bid.slot, error = %e, "bidder.submit_failed");
                            failures += 1;
                            if failures < MAX_RETRIES {
                                unsent = true;
                                retry_at = Some(tokio::time::Instant::now() + RETRY_AFTER);
                            } else {
                                failures = 0;
                            }
                        }
                    }
                }
            }
            tokio::select! {
                changed = best.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    unsent = true;
                    failures = 0;
                }
                Some(done) = in_flight.join_next() => {
                    // A send task that died has no slot to report.
                    let (slot, outcome) = match done {
                        Ok((slot, outcome)) => (Some(slot), outcome),
                        Err(e) => (None, Err(BidError::Join(e.to_string()))),
                    };
                    match outcome {
                        Ok(
                            SubmitOutcome::Sent
                            | SubmitOutcome::NotImproved { .. }
                            | SubmitOutcome::OverMaxBid { .. },
                        ) => {}
                        Ok(SubmitOutcome::RateLimited { retry_in }) => {
                            unsent = true;
                            retry_at.get_or_insert(tokio::time::Instant::now() + retry_in);
                        }
                        Err(e) => {
                            tracing::warn!(?slot, error = %e, "bidder.submit_failed");
                            failures += 1;
                            if failures < MAX_RETRIES {
                                unsent = true;
                                retry_at.get_or_insert(tokio::time::Instant::now() + RETRY_AFTER);
                            }
                        }
                    }
                }
                () = async {
                    match retry_at {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => {
                    retry_at = None;
                }
            }
        }
    }

    /// Everything one bid needs from this bidder (the proposer, fetched when its slot is new),
    /// then the signing and sending as a future of its own. Every bid goes as a builder-specs
    /// cancellation: the builder only publishes improvements, or a lower block that withdraws
    /// one holding a cancelled order, so its latest bid is always the one the relay should keep.
    async fn prepare(
        &mut self,
        bid: &Bid,
    ) -> Result<impl std::future::Future<Output = Result<SubmitOutcome, BidError>> + use<>, BidError>
    {
        let (proposer_pubkey, proposer_fee_recipient) = self.proposer(bid.slot).await?;
        let params = BidParams {
            slot: bid.slot,
            proposer_pubkey,
            proposer_fee_recipient,
            domain: self.domain,
        };
        let bid = bid.clone();
        let key = self.key.clone();
        let client = self.client.clone();
        Ok(async move {
            let block = bid.block.clone();
            // Payload conversion and the BLS signature are CPU work.
            let request =
                tokio::task::spawn_blocking(move || build_submission(&block.block, &params, &key))
                    .await
                    .map_err(|e| BidError::Join(e.to_string()))??;
            let outcome = client.submit_replacing(&request).await?;
            if outcome == SubmitOutcome::Sent {
                tracing::info!(
                    slot = bid.slot,
                    value = %bid.block.value,
                    latency_us = bid.round_started.elapsed().as_micros() as u64,
                    withdraws = bid.withdraws,
                    "bidder.sent"
                );
            }
            Ok(outcome)
        })
    }

    /// The proposer of `slot` and its fee recipient, from the relay's validators endpoint
    /// (fetched again when the slot is not among the duties known).
    async fn proposer(&mut self, slot: u64) -> Result<(BlsPublicKey, Address), BidError> {
        let known = |duties: &[ProposerDuty]| {
            duties
                .iter()
                .find(|d| d.slot == slot)
                .map(|d| (d.pubkey, d.fee_recipient))
        };
        if let Some(duty) = known(&self.duties) {
            return Ok(duty);
        }
        self.duties = self.client.proposer_duties().await?;
        known(&self.duties).ok_or(BidError::NoDuty(slot))
    }
}
