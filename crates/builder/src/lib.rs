//! Block building: algorithms that order simulated orders into the most valuable valid block,
//! sealed with refunds and the proposer payment.
//!
//! # Design
//! ```text
//!  SimRound.orders ──┬─▶ Greedy          ─┐  each fills its own BlockBuilder through the
//!                    ├─▶ GreedyByProfit  ─┤  Assembler: real (not simulated) profit per order,
//!                    └─▶ ConflictSearch  ─┤  bundle rules, in-block refunds
//!                      build_best ◀───────┘  highest bid value wins
//!                          │
//!                     BuiltBlock { sealed block, value = proposer payment (last tx), profit }
//! ```
//! Algorithms are CPU-bound and synchronous; [`build_best`] runs them on scoped threads. A block
//! always ends with the coinbase paying the proposer its share of the profit, so the bid value is
//! exactly a payment the relay can check.

mod algorithm;
mod assembler;
mod payout;

pub use algorithm::{
    ConflictSearch, Greedy, GreedyBlock, GreedyByProfit, Priority, conflict_groups,
};
pub use payout::{CONTRACT_PAYMENT_GAS, TRANSFER_GAS};

use std::sync::Arc;

use alloy_consensus::{Header, Sealed};
use alloy_evm::EvmEnv;
use alloy_primitives::{Address, B256, U256};
use alloy_signer_local::PrivateKeySigner;
use cobuild_chain::{
    BlockAttributes, BlockError, ExecutedBlock, NextBlock, StateSnapshot, next_evm_env,
};
use cobuild_primitives::ChainSpec;
use cobuild_sim::{SimError, SimulatedOrder};

/// A block attempt failed (not a single order: those are just left out).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The block could not be executed or sealed.
    #[error(transparent)]
    Block(#[from] BlockError),
    /// Simulating a candidate sequence failed to read state.
    #[error(transparent)]
    Sim(#[from] SimError),
    /// A refund or the proposer payment could not be made.
    #[error("payout: {0}")]
    Payout(String),
    /// [`build_best`] was given no algorithm.
    #[error("no building algorithm configured")]
    NoAlgorithm,
    /// An algorithm's thread panicked.
    #[error("algorithm {0} panicked")]
    Panicked(&'static str),
    /// The attempt was called off before it ended (its slot is over).
    #[error("cancelled")]
    Cancelled,
}

/// Who the block pays, and how much of its profit it bids.
#[derive(Debug, Clone)]
pub struct Payout {
    /// Key of the coinbase (the block's fee recipient), which signs refunds and the payment.
    pub coinbase: PrivateKeySigner,
    /// The proposer's fee recipient, paid by the block's last transaction.
    pub proposer_fee_recipient: Address,
    /// Share of the block's profit bid to the proposer, in percent (1..=100).
    pub bid_percent: u8,
}

/// Everything a block attempt needs: the parent and its state, the next block's attributes
/// (whose fee recipient is the coinbase) and the payout.
#[derive(Debug, Clone)]
pub struct BuildContext {
    /// The chain rules.
    pub spec: Arc<ChainSpec>,
    /// The parent header.
    pub parent: Arc<Sealed<Header>>,
    /// The parent's post-state.
    pub state: StateSnapshot,
    /// Attributes of the block to build; `fee_recipient` must be the payout coinbase.
    pub attrs: BlockAttributes,
    /// Refunds and proposer payment.
    pub payout: Payout,
}

impl BuildContext {
    /// The EVM environment of the block being built, for simulating orders exactly as the block
    /// will run them (same number, timestamp, coinbase, base fee and randomness).
    pub fn evm_env(&self) -> EvmEnv {
        let base_fee = self
            .parent
            .next_block_base_fee(self.spec.base_fee_params())
            .unwrap_or_default();
        next_evm_env(
            &self.spec,
            &self.parent,
            NextBlock {
                number: self.parent.number + 1,
                timestamp: self.attrs.timestamp,
                beneficiary: self.attrs.fee_recipient,
                gas_limit: self.attrs.gas_limit,
                base_fee,
                prev_randao: self.attrs.prev_randao,
            },
        )
    }
}

/// A sealed block and what it is worth.
#[derive(Debug, Clone)]
pub struct BuiltBlock {
    /// The sealed block.
    pub block: ExecutedBlock,
    /// The bid: what the last transaction pays the proposer (zero when the profit does not
    /// cover the payment's gas; then the block has no payment).
    pub value: U256,
    /// What the coinbase gained from the orders, after refunds, before the payment.
    pub profit: U256,
    /// Ids of the orders included, in block order.
    pub orders: Vec<B256>,
    /// Which algorithm built it.
    pub algorithm: &'static str,
}

/// A way of ordering simulated orders into a block.
pub trait Algorithm: Send + Sync {
    /// A short name for logs and benchmarks.
    fn name(&self) -> &'static str;

    /// Builds and seals one block from `orders` (simulated on `ctx.parent`'s state).
    ///
    /// Orders that fail in the block are left out; an error means the attempt as a whole failed.
    fn build(
        &self,
        ctx: &BuildContext,
        orders: &[Arc<SimulatedOrder>],
    ) -> Result<BuiltBlock, BuildError>;
}

/// The profit a builder can expect to keep from an order, net of the refund it asks for.
pub fn expected_profit(order: &SimulatedOrder) -> U256 {
    let profit = order.outcome.coinbase_profit;
    profit - share(profit, order.order.refund().map_or(0, |r| r.percent))
}

/// `percent` of `amount`, rounded down: refunds and the proposer's share.
pub(crate) fn share(amount: U256, percent: u8) -> U256 {
    // Most orders ask for no refund: scoring the pool need not pay a 256-bit division for each.
    if percent == 0 {
        return U256::ZERO;
    }
    amount * U256::from(percent) / U256::from(100)
}

/// Runs every algorithm (in parallel, one scoped thread each) and returns the block with the
/// highest bid value, ties going to the earlier algorithm; fails only if every algorithm did.
pub fn build_best(
    ctx: &BuildContext,
    orders: &[Arc<SimulatedOrder>],
    algorithms: &[&dyn Algorithm],
) -> Result<BuiltBlock, BuildError> {
    let results: Vec<Result<BuiltBlock, BuildError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = algorithms
            .iter()
            .map(|algorithm| {
                (
                    algorithm.name(),
                    scope.spawn(|| algorithm.build(ctx, orders)),
                )
            })
            .collect();
        handles
            .into_iter()
            .map(|(name, handle)| handle.join().unwrap_or(Err(BuildError::Panicked(name))))
            .collect()
    });
    let mut best: Option<BuiltBlock> = None;
    let mut failure = None;
    for result in results {
        // One algorithm failing (a bug, or an order it handles badly) must not cost the block.
        let built = match result {
            Ok(built) => built,
            Err(e) => {
                tracing::error!(error = %e, "build.algorithm_failed");
                failure.get_or_insert(e);
                continue;
            }
        };
        tracing::debug!(
            algorithm = built.algorithm,
            value = %built.value,
            orders = built.orders.len(),
            "build.attempt"
        );
        if best.as_ref().is_none_or(|b| built.value > b.value) {
            best = Some(built);
        }
    }
    match (best, failure) {
        (Some(best), _) => Ok(best),
        (None, Some(e)) => Err(e),
        (None, None) => Err(BuildError::NoAlgorithm),
    }
}
