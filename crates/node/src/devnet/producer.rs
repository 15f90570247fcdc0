//! The devnet's proposer: a slot clock that opens each slot on the local relay and announces
//! it on the relay's `payload_attributes` stream, lets the builders build (the devnet's own, or
//! member nodes in other processes; bidders submit over the builder API), and at the slot's end
//! commits the relay's best verified bid, or builds its own block from the pools when no bid
//! came (as a proposer falls back to its local execution client when MEV-Boost has no bid).
//!
//! ```text
//!  slot start ──▶ relay.open_slot + relay.announce ──▶ members (SSE)
//!             ──▶ own Builder::run_slot (rounds until the cut-off), if the devnet builds
//!                     └─▶ Bidder ──POST /relay/v1/builder/blocks──▶ relay
//!  slot end   ──▶ relay.take_best: commit the winner, or a local block ──▶ pools follow
//! ```

use std::{
    future::Future,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use alloy_consensus::Transaction as _;
use alloy_primitives::{Bytes, keccak256};
use cobuild_chain::{
    BlockAttributes, Chain, ChainError, ExecutedBlock, TxRejected, next_gas_limit,
};
use cobuild_pool::{BundlePool, TxPool};
use cobuild_relay::{RelayServer, events::payload_event, server::SlotContext};

use super::DevnetConfig;
use crate::{
    builder::{Bid, Builder, BuilderError, SlotJob},
    orderflow::Orderflow,
};

/// Block production failed; the devnet stops.
#[derive(Debug, thiserror::Error)]
pub enum ProducerError {
    /// The chain failed to build or store a block.
    #[error("block production: {0}")]
    Chain(#[from] ChainError),
    /// The builder failed.
    #[error(transparent)]
    Builder(#[from] BuilderError),
    /// The production task died.
    #[error("production task: {0}")]
    Join(String),
}

/// Commits one block per slot: the builder's best bid, or a local block.
#[derive(Debug)]
pub struct Producer {
    chain: Chain,
    orderflow: Orderflow,
    builder: Option<Builder>,
    relay: RelayServer<Chain>,
    config: DevnetConfig,
}

impl Producer {
    /// A proposer for `chain`, taking the relay's best bid (from `builder`, the devnet's own,
    /// and whoever else the relay accepts) and, for local blocks, orders from `orderflow`.
    pub const fn new(
        chain: Chain,
        orderflow: Orderflow,
        builder: Option<Builder>,
        relay: RelayServer<Chain>,
        config: DevnetConfig,
    ) -> Self {
        Self {
            chain,
            orderflow,
            builder,
            relay,
            config,
        }
    }

    /// Runs slots until `shutdown` resolves. Shutdown is seen while building and between slots;
    /// a block being committed is always committed.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<(), ProducerError> {
        tokio::pin!(shutdown);
        loop {
            let slot_end = Instant::now() + self.config.slot;
            let job = self.slot_job(slot_end)?;
            // Building stops just before the slot ends, so a round never delays the block; a
            // cancel acknowledged up to then is still withdrawn from the bid.
            let cutoff = slot_end - (self.config.slot / 20).min(Duration::from_millis(50));
            let best = match &self.builder {
                Some(builder) => tokio::select! {
                    biased;
                    () = &mut shutdown => return Ok(()),
                    run = builder.run_slot(job.clone(), cutoff) => run?.best,
                },
                None => None,
            };
            tokio::select! {
                biased;
                () = &mut shutdown => return Ok(()),
                () = tokio::time::sleep_until(slot_end.into()) => {}
            }
            self.propose(job, best).await?;
        }
    }

    /// What the builder builds for the slot ending at `slot_end`.
    fn slot_job(&self, slot_end: Instant) -> Result<SlotJob, ProducerError> {
        let (head, state) = self.chain.head_state()?;
        let end_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            + slot_end.saturating_duration_since(Instant::now());
        let attrs = attributes(&self.chain, &self.config, end_unix.as_secs());
        let slot = head.number + 1;
        self.relay.open_slot(SlotContext {
            slot,
            parent_hash: head.hash(),
            timestamp: attrs.timestamp,
            parent_beacon_block_root: attrs.parent_beacon_block_root,
            prev_randao: attrs.prev_randao,
            withdrawals_root: alloy_consensus::proofs::calculate_withdrawals_root(
                &attrs.withdrawals,
            ),
        });
        self.relay.announce(
            payload_event(
                slot,
                head.number,
                head.hash(),
                &attrs,
                self.config.gas_limit,
            ),
            slot_end,
        );
        Ok(SlotJob {
            slot: head.number + 1,
            parent: head,
            state,
            attrs,
            proposer_fee_recipient: self.config.fee_recipient,
        })
    }

    /// Commits the relay's best verified bid if it builds on the head, else a local block; then
    /// the pools follow the new head.
    async fn propose(
        &self,
        job: SlotJob,
        ours: Option<Bid>,
    ) -> Result<ExecutedBlock, ProducerError> {
        let chain = self.chain.clone();
        let orderflow = self.orderflow.clone();
        // A bid that reached the relay before the slot ended counts even if its check ends
        // later; the block waits for that at most a tenth of a slot.
        let winner = self
            .relay
            .close_and_take_best(job.slot, self.config.slot / 10)
            .await;
        let result = tokio::task::spawn_blocking(move || {
            let mut landed: &[alloy_primitives::B256] = &[];
            let block = match winner {
                Some(winner) if winner.executed.header().parent_hash == chain.head().hash() => {
                    chain.commit(&winner.executed)?;
                    // Our bundles in it cannot run again; other builders' are left to expire.
                    if let Some(ours) = ours
                        .as_ref()
                        .filter(|b| b.block.block.block.hash == winner.trace.block_hash)
                    {
                        landed = &ours.block.orders;
                    }
                    tracing::info!(
                        slot = job.slot,
                        number = winner.executed.header().number,
                        value = %winner.trace.value,
                        builder = %winner.trace.builder_pubkey,
                        txs = winner.executed.block.block.body.transactions.len(),
                        "devnet.proposer.bid_won"
                    );
                    winner.executed
                }
                _ => produce_block(&chain, &orderflow.pool, &orderflow.bundles, job.attrs)?,
            };
            let (_, state) = chain.head_state()?;
            orderflow.on_head(&state, block.header().number, landed);
            Ok::<_, ProducerError>(block)
        })
        .await
        .map_err(|e| ProducerError::Join(e.to_string()))?;
        if let Some(builder) = &self.builder {
            builder.end_slot();
        }
        result
    }
}

/// The next block's attributes: devnet randomness and beacon root derived from the parent, so
/// replays are deterministic; the proposer's fee recipient (the builder replaces it with its
/// coinbase).
fn attributes(chain: &Chain, config: &DevnetConfig, timestamp: u64) -> BlockAttributes {
    let head = chain.head();
    let seed = keccak256(head.hash());
    BlockAttributes {
        timestamp: timestamp.max(head.timestamp + 1),
        fee_recipient: config.fee_recipient,
        prev_randao: seed,
        gas_limit: next_gas_limit(head.gas_limit, config.gas_limit),
        withdrawals: Vec::new(),
        parent_beacon_block_root: keccak256(seed),
        extra_data: Bytes::from_static(b"cobuild devnet"),
    }
}

/// The proposer's own block: bundles first (each all-or-nothing, best priority-fee bid first),
/// then pool transactions by effective tip.
fn produce_block(
    chain: &Chain,
    pool: &TxPool,
    bundles: &BundlePool,
    attrs: BlockAttributes,
) -> Result<ExecutedBlock, ProducerError> {
    let started = Instant::now();
    let timestamp = attrs.timestamp;
    let mut builder = chain.builder(attrs)?;
    let number = builder.number();
    // Bundles first, each all-or-nothing, the best paying (by priority fee bid) first.
    let mut candidates = bundles.for_block(number, timestamp);
    let base_fee = builder.base_fee();
    candidates.sort_by_cached_key(|b| {
        std::cmp::Reverse(
            b.bundle
                .txs
                .iter()
                .map(|tx| {
                    tx.effective_tip_per_gas(base_fee)
                        .unwrap_or_default()
                        .saturating_mul(u128::from(tx.gas_limit()))
                })
                .fold(0u128, u128::saturating_add),
        )
    });
    for candidate in candidates {
        let b = &candidate.bundle;
        let outcome = builder
            .execute_bundle(&b.txs, b)
            .map_err(ChainError::from)?;
        match outcome {
            Ok(included) => {
                tracing::info!(bundle = %b.hash, txs = included.included.len(), profit = %included.coinbase_profit, "devnet.bundle.included");
                bundles.remove(&candidate.id);
            }
            Err(reason) => tracing::debug!(bundle = %b.hash, %reason, "devnet.bundle.skipped"),
        }
    }
    let mut best = pool.best(builder.base_fee());
    let mut skipped = 0usize;
    while let Some(pooled) = best.next() {
        if builder.gas_left() < 21_000 {
            break;
        }
        match builder
            .execute(pooled.tx.clone())
            .map_err(ChainError::from)?
        {
            Ok(_) => {}
            Err(TxRejected::BlockGasExhausted { .. } | TxRejected::BlobGasExhausted) => {
                // May fit a later block; its later nonces cannot go in this one.
                best.skip_last_sender();
            }
            Err(reason) => {
                tracing::debug!(hash = %pooled.hash, %reason, "devnet.producer.drop");
                skipped += 1;
                best.skip_last_sender();
                if let TxRejected::Invalid(invalid) = &reason
                    && !matches!(
                        invalid,
                        revm::context_interface::result::InvalidTransaction::NonceTooHigh { .. }
                    )
                {
                    pool.remove_invalid(&pooled);
                }
            }
        }
    }
    let block = builder.finish().map_err(ChainError::from)?;
    chain.commit(&block)?;
    tracing::info!(
        number = block.header().number,
        hash = %block.block.hash,
        txs = block.block.block.body.transactions.len(),
        skipped,
        gas_used = block.header().gas_used,
        elapsed_us = started.elapsed().as_micros() as u64,
        "devnet.proposer.local_block"
    );
    Ok(block)
}
