//! The builder's slot loop: while a slot is open, simulate what arrived, build with every
//! algorithm, and publish each block that beats the slot's best so far.
//!
//! Rounds run on tokio's blocking pool (simulation and building are CPU-bound); the loop itself
//! only waits. The best block is published on a `watch` channel, so a slow bidder always sees the
//! latest best and never holds up building.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use alloy_consensus::{Header, Sealed};
use alloy_primitives::{Address, U256};
use cobuild_build::{
    Algorithm, BuildContext, BuildError, BuiltBlock, ConflictSearch, Greedy, Payout, build_best,
};
use cobuild_chain::{BlockAttributes, Chain, ChainError, StateSnapshot};
use cobuild_pool::{BundlePool, TxPool};
use cobuild_sim::{SimError, Simulator};
use parking_lot::Mutex;
use tokio::sync::watch;

use super::BuilderConfig;

/// The builder cannot go on with this slot.
#[derive(Debug, thiserror::Error)]
pub enum BuilderError {
    /// The head state could not be read.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// Simulation failed to read state.
    #[error(transparent)]
    Sim(#[from] SimError),
    /// A block attempt failed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// A round's task died.
    #[error("build round task: {0}")]
    Join(String),
    /// The simulation thread pool could not start.
    #[error("simulation threads: {0}")]
    Threads(String),
}

/// One slot to build for: the parent and the attributes of the block on it.
#[derive(Debug, Clone)]
pub struct SlotJob {
    /// The slot number.
    pub slot: u64,
    /// The parent block.
    pub parent: Arc<Sealed<Header>>,
    /// Its post-state.
    pub state: StateSnapshot,
    /// Attributes of the next block (the builder sets the fee recipient to its coinbase).
    pub attrs: BlockAttributes,
    /// Who the proposer wants paid.
    pub proposer_fee_recipient: Address,
}

/// The best block of a slot so far, as the bidder sees it.
#[derive(Debug, Clone)]
pub struct Bid {
    /// The slot.
    pub slot: u64,
    /// The block and its value.
    pub block: Arc<BuiltBlock>,
    /// When the round that built it started: orders that arrived before are in it (if valid).
    pub round_started: Instant,
}

/// A node's block builder. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Builder {
    chain: Chain,
    pool: TxPool,
    bundles: BundlePool,
    config: BuilderConfig,
    sim: Arc<Mutex<Simulator>>,
    best: Arc<watch::Sender<Option<Bid>>>,
}

impl Builder {
    /// A builder over the node's chain and pools.
    pub fn new(
        chain: Chain,
        pool: TxPool,
        bundles: BundlePool,
        config: BuilderConfig,
    ) -> Result<Self, BuilderError> {
        let sim =
            Simulator::new(config.sim_threads).map_err(|e| BuilderError::Threads(e.to_string()))?;
        Ok(Self {
            chain,
            pool,
            bundles,
            config,
            sim: Arc::new(Mutex::new(sim)),
            best: Arc::new(watch::channel(None).0),
        })
    }

    /// The coinbase of the blocks this builder builds.
    pub fn coinbase(&self) -> Address {
        self.config.coinbase.address()
    }

    /// Follows the best block of the current slot.
    pub fn subscribe(&self) -> watch::Receiver<Option<Bid>> {
        self.best.subscribe()
    }

    /// Builds rounds for `job` until `deadline`, publishing every improvement; returns the
    /// slot's best block (none when no block paid anything).
    pub async fn run_slot(
        &self,
        mut job: SlotJob,
        deadline: Instant,
    ) -> Result<Option<Bid>, BuilderError> {
        job.attrs.fee_recipient = self.coinbase();
        let ctx = Arc::new(BuildContext {
            spec: self.chain.spec().clone(),
            parent: job.parent.clone(),
            state: job.state.clone(),
            attrs: job.attrs.clone(),
            payout: Payout {
                coinbase: self.config.coinbase.clone(),
                proposer_fee_recipient: job.proposer_fee_recipient,
                bid_percent: self.config.bid_percent,
            },
        });
        let mut best: Option<Bid> = None;
        let mut first = true;
        while Instant::now() < deadline {
            let started = Instant::now();
            let this = self.clone();
            let round_ctx = ctx.clone();
            let built = tokio::task::spawn_blocking(move || this.round(&round_ctx, first))
                .await
                .map_err(|e| BuilderError::Join(e.to_string()))??;
            first = false;
            if let Some(block) = built
                && block.value > best.as_ref().map_or(U256::ZERO, |b| b.block.value)
            {
                tracing::info!(
                    slot = job.slot,
                    number = block.block.header().number,
                    value = %block.value,
                    orders = block.orders.len(),
                    algorithm = block.algorithm,
                    elapsed_us = started.elapsed().as_micros() as u64,
                    "builder.best"
                );
                let bid = Bid {
                    slot: job.slot,
                    block: Arc::new(block),
                    round_started: started,
                };
                self.best.send_replace(Some(bid.clone()));
                best = Some(bid);
            }
            let next = (started + self.config.round_interval).min(deadline);
            tokio::time::sleep_until(next.into()).await;
        }
        Ok(best)
    }

    /// One round: simulate what is new, and build if anything is (or if this is the first
    /// round of the slot).
    fn round(&self, ctx: &BuildContext, first: bool) -> Result<Option<BuiltBlock>, BuilderError> {
        let base_fee = ctx
            .parent
            .next_block_base_fee(ctx.spec.base_fee_params())
            .unwrap_or_default();
        let txs: Vec<_> = self.pool.best(base_fee).collect();
        let bundles = self
            .bundles
            .for_block(ctx.parent.number + 1, ctx.attrs.timestamp);
        let round = self.sim.lock().simulate(
            ctx.parent.hash(),
            &ctx.state,
            &ctx.evm_env(),
            &txs,
            &bundles,
        )?;
        if round.simulated == 0 && !first {
            return Ok(None);
        }
        let algorithms: [&dyn Algorithm; 2] = [&Greedy, &ConflictSearch::default()];
        Ok(Some(build_best(ctx, &round.orders, &algorithms)?))
    }

    /// Forgets the published best (the slot is over).
    pub fn end_slot(&self) {
        self.best.send_replace(None);
    }

    /// How long a round may take at most before the deadline: the interval.
    pub const fn round_interval(&self) -> Duration {
        self.config.round_interval
    }
}
