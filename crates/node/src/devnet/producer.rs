//! The devnet's block producer: every slot, the pool's best transactions into a block.
//!
//! This is the stand-in for the builder until the building engine exists: a greedy
//! priority-fee ordering with nonce order kept per sender.

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
use tokio::time::MissedTickBehavior;

use super::DevnetConfig;

/// Block production failed; the devnet stops.
#[derive(Debug, thiserror::Error)]
pub enum ProducerError {
    /// The chain failed to build or store a block.
    #[error("block production: {0}")]
    Chain(#[from] ChainError),
    /// The production task died.
    #[error("production task: {0}")]
    Join(String),
}

/// Produces one block per slot.
#[derive(Debug)]
pub struct Producer {
    chain: Chain,
    pool: TxPool,
    bundles: BundlePool,
    config: DevnetConfig,
}

impl Producer {
    /// A producer for `chain` taking bundles from `bundles` and transactions from `pool`.
    pub const fn new(
        chain: Chain,
        pool: TxPool,
        bundles: BundlePool,
        config: DevnetConfig,
    ) -> Self {
        Self {
            chain,
            pool,
            bundles,
            config,
        }
    }

    /// Produces a block at every slot tick until `shutdown` resolves.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<(), ProducerError> {
        let mut ticker = tokio::time::interval_at(
            tokio::time::Instant::now() + self.config.slot,
            self.config.slot,
        );
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => return Ok(()),
                _ = ticker.tick() => {
                    // Awaited to the end: shutdown waits for the block being sealed.
                    self.produce().await?;
                }
            }
        }
    }

    /// Builds, seals and commits one block now.
    pub async fn produce(&self) -> Result<ExecutedBlock, ProducerError> {
        let chain = self.chain.clone();
        let pool = self.pool.clone();
        let bundles = self.bundles.clone();
        let config = self.config.clone();
        tokio::task::spawn_blocking(move || produce_block(&chain, &pool, &bundles, &config))
            .await
            .map_err(|e| ProducerError::Join(e.to_string()))?
    }
}

fn produce_block(
    chain: &Chain,
    pool: &TxPool,
    bundles: &BundlePool,
    config: &DevnetConfig,
) -> Result<ExecutedBlock, ProducerError> {
    let started = Instant::now();
    let head = chain.head();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    // Devnet randomness and beacon root: derived from the parent so replays are deterministic.
    let seed = keccak256(head.hash());
    let attrs = BlockAttributes {
        timestamp: now.max(head.timestamp + 1),
        fee_recipient: config.fee_recipient,
        prev_randao: seed,
        gas_limit: next_gas_limit(head.gas_limit, config.gas_limit),
        withdrawals: Vec::new(),
        parent_beacon_block_root: keccak256(seed),
        extra_data: Bytes::from_static(b"cobuild devnet"),
    };
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
                    tx.effective_tip_per_gas(base_fee).unwrap_or_default()
                        * u128::from(tx.gas_limit())
                })
                .sum::<u128>(),
        )
    });
    for candidate in candidates {
        let b = &candidate.bundle;
        let outcome = builder
            .execute_bundle(
                &b.txs,
                |h| b.reverting.contains(h),
                |h| b.dropping.contains(h),
            )
            .map_err(ChainError::from)?;
        match outcome {
            Ok(included) => {
                tracing::info!(bundle = %b.hash, txs = included.included.len(), profit = %included.coinbase_profit, "devnet.bundle.included");
                bundles.remove(&b.hash);
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
    let (_, state) = chain.head_state()?;
    pool.on_block(&state);
    bundles.on_block(block.header().number);
    tracing::info!(
        number = block.header().number,
        hash = %block.block.hash,
        txs = block.block.block.body.transactions.len(),
        skipped,
        gas_used = block.header().gas_used,
        elapsed_us = started.elapsed().as_micros() as u64,
        "devnet.block"
    );
    Ok(block)
}
