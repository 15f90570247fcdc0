//! The bidder: follows the builder's best block and submits it to a relay over the builder API,
//! BLS-signed, whenever it improved (the relay client enforces the improvement rule and the
//! per-second cap).
//!
//! It watches a `watch` channel, so when submissions are slower than building it skips straight
//! to the latest best instead of queueing stale blocks. Up to [`MAX_IN_FLIGHT`] submissions go
//! at once, so a new best does not wait for the relay to finish checking the one before (the
//! relay keeps a builder's last-received bid, whatever order the checks end in).
//!
//! A relay that offers bids before simulating them (optimistic relaying) makes the builder
//! pay for a bad block out of its collateral, so a bidder to such a relay first re-executes
//! each block from its parent's state ([`BidCheck`]) and sends only what matches; bidders to
//! other relays send at once and leave the check to the relay.

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use alloy_primitives::{Address, B256, U256};
use cobuild_chain::ExecutedBlock;
use cobuild_relay::{
    BlockVerifier, BlsPublicKey, BuilderKey, RelayClient,
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
/// How long after a slot's bidding closed its summary waits for bids still in flight.
const SLOT_SUMMARY_GRACE: Duration = Duration::from_secs(1);

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
    /// The block failed the check made before an optimistic relay gets it: not sent.
    #[error("block {hash} failed its check before an optimistic relay: {reason}")]
    Check {
        /// The block's hash.
        hash: B256,
        /// What the re-execution found.
        reason: String,
    },
}

/// The check a block passes before it goes to an optimistic relay: re-executed on its parent's
/// state, it must give the same block. Called on a blocking thread.
pub trait BidCheck: Send + Sync + 'static {
    /// `Err` says why `block` must not be sent.
    fn check(&self, block: &ExecutedBlock) -> Result<(), String>;
}

/// A relay's own verifier checks bids the way that relay would.
impl<V: BlockVerifier> BidCheck for V {
    fn check(&self, block: &ExecutedBlock) -> Result<(), String> {
        let again = self
            .verify(block.block.block.clone())
            .map_err(|e| e.to_string())?;
        if again.block.hash == block.block.hash {
            Ok(())
        } else {
            Err(format!("re-executed, it hashes to {}", again.block.hash))
        }
    }
}

/// A bid the relay took.
#[derive(Debug, Clone, Copy)]
struct SentBid {
    value: U256,
    /// The block's timestamp: its slot starts then, and bidding for it is over.
    closes: SystemTime,
    /// From the start of the round that built the block to the relay's answer.
    latency: Duration,
    /// Checking and signing.
    prepare: Duration,
    /// The request to the relay.
    submit: Duration,
}

/// The bids one slot sent to a relay, logged once (`bidder.slot`): shortly after the slot's
/// bidding closes, when bids for a later slot start first, or when the bidder stops.
#[derive(Debug, Clone, Copy)]
struct SlotBids {
    slot: u64,
    bids: u32,
    best: U256,
    first: SentBid,
    last: SentBid,
    slowest_submit: Duration,
}

impl SlotBids {
    /// Counts `sent` for `slot`; returns the summary before it if that was another slot's, to
    /// log.
    fn add(summary: &mut Option<Self>, slot: u64, sent: &SentBid) -> Option<Self> {
        match summary {
            Some(current) if current.slot == slot => {
                current.bids += 1;
                current.best = current.best.max(sent.value);
                current.last = *sent;
                current.slowest_submit = current.slowest_submit.max(sent.submit);
                None
            }
            _ => summary.replace(Self {
                slot,
                bids: 1,
                best: sent.value,
                first: *sent,
                last: *sent,
                slowest_submit: sent.submit,
            }),
        }
    }

    /// How long after `now` the summary is due: the slot's bidding closed, and a bid still on
    /// its way to the relay had [`SLOT_SUMMARY_GRACE`] to come back.
    fn due_in(&self, now: SystemTime) -> Duration {
        (self.first.closes + SLOT_SUMMARY_GRACE)
            .duration_since(now)
            .unwrap_or_default()
    }

    fn log(&self) {
        let us = |d: Duration| d.as_micros() as u64;
        tracing::info!(
            slot = self.slot,
            bids = self.bids,
            best = %self.best,
            first_latency_us = us(self.first.latency),
            last_latency_us = us(self.last.latency),
            last_prepare_us = us(self.last.prepare),
            last_submit_us = us(self.last.submit),
            max_submit_us = us(self.slowest_submit),
            "bidder.slot"
        );
    }
}

/// Submits the builder's best blocks to one relay.
#[derive(Debug)]
pub struct Bidder {
    client: RelayClient,
    key: BuilderKey,
    domain: B256,
    duties: Vec<ProposerDuty>,
    check: Arc<dyn BidCheck>,
}

impl std::fmt::Debug for dyn BidCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BidCheck")
    }
}

impl Bidder {
    /// A bidder signing with `key` over `domain`; each bid names the proposer and the fee
    /// recipient the relay's validators endpoint lists for its slot. If the relay is optimistic,
    /// each block passes `check` before it is sent.
    pub fn new(
        client: RelayClient,
        key: BuilderKey,
        domain: B256,
        check: Arc<dyn BidCheck>,
    ) -> Self {
        Self {
            client,
            key,
            domain,
            duties: Vec::new(),
            check,
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
        let mut slot_bids: Option<SlotBids> = None;
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
                        Ok((SubmitOutcome::Sent, sent)) => {
                            if let (Some(slot), Some(sent)) = (slot, sent)
                                && let Some(done) = SlotBids::add(&mut slot_bids, slot, &sent)
                            {
                                done.log();
                            }
                        }
                        Ok((
                            SubmitOutcome::NotImproved { .. } | SubmitOutcome::OverMaxBid { .. },
                            _,
                        )) => {}
                        Ok((SubmitOutcome::RateLimited { retry_in }, _)) => {
                            unsent = true;
                            retry_at.get_or_insert(tokio::time::Instant::now() + retry_in);
                        }
                        // The same block would fail again: the next best gets its turn.
                        Err(e @ BidError::Check { .. }) => {
                            tracing::warn!(?slot, error = %e, "bidder.check_failed");
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
                () = async {
                    match &slot_bids {
                        Some(summary) => {
                            tokio::time::sleep(summary.due_in(SystemTime::now())).await;
                        }
                        None => std::future::pending().await,
                    }
                } => {
                    if let Some(done) = slot_bids.take() {
                        done.log();
                    }
                }
            }
        }
        if let Some(last) = slot_bids {
            last.log();
        }
    }

    /// Everything one bid needs from this bidder (the proposer, fetched when its slot is new),
    /// then the signing and sending as a future of its own. Every bid goes as a builder-specs
    /// cancellation: the builder only publishes improvements, or a lower block that withdraws
    /// one holding a cancelled order, so its latest bid is always the one the relay should keep.
    async fn prepare(
        &mut self,
        bid: &Bid,
    ) -> Result<
        impl std::future::Future<Output = Result<(SubmitOutcome, Option<SentBid>), BidError>> + use<>,
        BidError,
    > {
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
        // Numbered now, in the order the bests came: bids sign side by side and may reach the
        // relay client out of that order.
        let sequence = client.next_sequence();
        let check = client.is_optimistic().then(|| self.check.clone());
        Ok(async move {
            let prepared_from = Instant::now();
            let block = bid.block.clone();
            // The check (a re-execution), payload conversion and the BLS signature are CPU work.
            let request = tokio::task::spawn_blocking(move || {
                if let Some(check) = check {
                    check
                        .check(&block.block)
                        .map_err(|reason| BidError::Check {
                            hash: block.block.block.hash,
                            reason,
                        })?;
                }
                Ok::<_, BidError>(build_submission(&block.block, &params, &key)?)
            })
            .await
            .map_err(|e| BidError::Join(e.to_string()))??;
            let posting = Instant::now();
            let outcome = client.submit_replacing_as(&request, sequence).await?;
            let sent = (outcome == SubmitOutcome::Sent).then(|| SentBid {
                value: bid.block.value,
                closes: UNIX_EPOCH + Duration::from_secs(bid.block.block.header().timestamp),
                latency: bid.round_started.elapsed(),
                prepare: posting - prepared_from,
                submit: posting.elapsed(),
            });
            if let Some(sent) = &sent {
                // Debug: one line per bid was most of a member's log; the slot's summary
                // (`bidder.slot`) is at info.
                tracing::debug!(
                    slot = bid.slot,
                    value = %sent.value,
                    latency_us = sent.latency.as_micros() as u64,
                    prepare_us = sent.prepare.as_micros() as u64,
                    submit_us = sent.submit.as_micros() as u64,
                    withdraws = bid.withdraws,
                    "bidder.sent"
                );
            }
            Ok((outcome, sent))
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

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use alloy_primitives::Address;
    use cobuild_builder::BuiltBlock;
    use cobuild_chain::{
        Chain,
        test_utils::{devnet_chain, next_attrs},
    };
    use cobuild_relay::{BlsSignature, client::Config};

    use super::*;

    /// A bidder to a relay that is not listening, knowing the proposer of slot 1: a bid that
    /// gets past the check fails on the connection.
    fn bidder(chain: &Chain, optimistic: bool) -> Bidder {
        let client = RelayClient::new(Config {
            optimistic,
            ..Config::new("http://127.0.0.1:1")
        })
        .expect("relay client");
        let mut bidder = Bidder::new(
            client,
            BuilderKey::from_seed(b"bidder test"),
            B256::ZERO,
            Arc::new(chain.clone()),
        );
        bidder.duties = vec![ProposerDuty {
            slot: 1,
            validator_index: 0,
            pubkey: BlsPublicKey::ZERO,
            fee_recipient: Address::repeat_byte(0xfe),
            gas_limit: 30_000_000,
            signature: BlsSignature::ZERO,
            timestamp: 0,
        }];
        bidder
    }

    async fn send(chain: &Chain, optimistic: bool, block: &ExecutedBlock) -> Result<(), BidError> {
        let bid = Bid {
            slot: 1,
            block: Arc::new(BuiltBlock {
                block: block.clone(),
                value: alloy_primitives::U256::ZERO,
                profit: alloy_primitives::U256::ZERO,
                orders: Vec::new(),
                algorithm: "test",
            }),
            round_started: Instant::now(),
            withdraws: false,
        };
        let sending = bidder(chain, optimistic).prepare(&bid).await?;
        sending.await.map(|_| ())
    }

    #[test]
    fn test_a_slots_bids_are_summed_up_once_the_next_slot_bids() {
        let ms = Duration::from_millis;
        let sent = |value: u64, submit: u64| SentBid {
            value: alloy_primitives::U256::from(value),
            closes: UNIX_EPOCH,
            latency: ms(10 * value),
            prepare: ms(1),
            submit: ms(submit),
        };
        let mut summary = None;
        assert!(SlotBids::add(&mut summary, 7, &sent(1, 3)).is_none());
        assert!(SlotBids::add(&mut summary, 7, &sent(3, 9)).is_none());
        assert!(SlotBids::add(&mut summary, 7, &sent(2, 4)).is_none());
        let done = SlotBids::add(&mut summary, 8, &sent(5, 1)).expect("slot 7 is over");
        assert_eq!((done.slot, done.bids), (7, 3));
        assert_eq!(done.best, alloy_primitives::U256::from(3));
        assert_eq!((done.first.latency, done.last.latency), (ms(10), ms(20)));
        assert_eq!(done.slowest_submit, ms(9));
        let next = summary.expect("slot 8 is counting");
        assert_eq!((next.slot, next.bids), (8, 1));
    }

    #[test]
    fn test_a_slots_summary_is_due_once_its_bidding_closed() {
        let closes = UNIX_EPOCH + Duration::from_secs(1_000);
        let sent = SentBid {
            value: alloy_primitives::U256::from(1),
            closes,
            latency: Duration::ZERO,
            prepare: Duration::ZERO,
            submit: Duration::ZERO,
        };
        let mut summary = None;
        SlotBids::add(&mut summary, 7, &sent);
        let summary = summary.expect("counting");
        let before = closes - Duration::from_secs(3);
        assert_eq!(
            summary.due_in(before),
            Duration::from_secs(3) + SLOT_SUMMARY_GRACE
        );
        assert_eq!(summary.due_in(closes + SLOT_SUMMARY_GRACE), Duration::ZERO);
        assert_eq!(
            summary.due_in(closes + Duration::from_secs(60)),
            Duration::ZERO
        );
    }

    #[tokio::test]
    async fn test_an_optimistic_relay_gets_only_blocks_that_execute_again_to_themselves() {
        let dir = tempfile::tempdir().expect("temp dir");
        let chain = devnet_chain(dir.path());
        let good = chain
            .builder(next_attrs(&chain, Address::repeat_byte(7)))
            .expect("builder")
            .finish()
            .expect("sealed");
        let mut bad = good.clone();
        bad.block.block.header.state_root = B256::repeat_byte(0xba);

        let outcome = send(&chain, true, &bad).await;
        assert!(
            matches!(outcome, Err(BidError::Check { hash, .. }) if hash == bad.block.hash),
            "{outcome:?}"
        );
        // Past the check, the bid goes to the relay (which is not there).
        let outcome = send(&chain, true, &good).await;
        assert!(matches!(outcome, Err(BidError::Relay(_))), "{outcome:?}");
        // A relay that simulates bids itself gets them unchecked.
        let outcome = send(&chain, false, &bad).await;
        assert!(matches!(outcome, Err(BidError::Relay(_))), "{outcome:?}");
    }
}
