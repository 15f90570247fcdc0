//! The bidder: follows the builder's best block and submits it to a relay over the builder API,
//! BLS-signed, whenever it improved (the relay client enforces the improvement rule and the
//! per-second cap).
//!
//! It watches a `watch` channel, so when submissions are slower than building it skips straight
//! to the latest best instead of queueing stale blocks.

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
/// Pause before sending again after the cap held a bid back or a send failed.
const RETRY_AFTER: Duration = Duration::from_millis(50);

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
        while best.changed().await.is_ok() {
            let mut failures = 0;
            loop {
                let Some(bid) = best.borrow_and_update().clone() else {
                    break;
                };
                match self.submit(&bid).await {
                    Ok(SubmitOutcome::Sent | SubmitOutcome::NotImproved { .. }) => break,
                    Ok(SubmitOutcome::RateLimited) => {}
                    Err(e) => {
                        tracing::warn!(slot = bid.slot, error = %e, "bidder.submit_failed");
                        failures += 1;
                        if failures == MAX_RETRIES {
                            break;
                        }
                    }
                }
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    }

    /// Signs and sends one bid. Every bid goes as a builder-specs cancellation: the builder
    /// only publishes improvements, or a lower block that withdraws one holding a cancelled
    /// order, so its latest bid is always the one the relay should keep.
    async fn submit(&mut self, bid: &Bid) -> Result<SubmitOutcome, BidError> {
        let (proposer_pubkey, proposer_fee_recipient) = self.proposer(bid.slot).await?;
        let params = BidParams {
            slot: bid.slot,
            proposer_pubkey,
            proposer_fee_recipient,
            domain: self.domain,
        };
        let block = bid.block.clone();
        let key = self.key.clone();
        // Payload conversion and the BLS signature are CPU work.
        let request =
            tokio::task::spawn_blocking(move || build_submission(&block.block, &params, &key))
                .await
                .map_err(|e| BidError::Join(e.to_string()))??;
        let outcome = self.client.submit_replacing(&request).await?;
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
