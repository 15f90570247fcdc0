//! Greedy by a priority (profit per gas, or profit), with the real profit checked at commit
//! time and nonce-aware retries.
//!
//! Orders come off a max-heap keyed by their expected priority. When an order is committed, its
//! real profit is measured on the block so far; if an earlier commit made it worth less than the
//! next candidate, it goes back into the heap with its real score instead (once). A transaction
//! whose sender still misses an earlier nonce waits, and is put back when that nonce lands.
//!
//! The two priorities fill a block differently where orders compete. Per gas packs the most
//! profit into a full block of independent orders; by profit takes the richest of competing
//! bundles (backruns of the same swap, arbitrages of the same pool) before a cheaper one voids
//! it. Neither wins everywhere: the benchmark's pool, where 650 arbitrage bundles compete for a
//! few pools, is worth 57 % more by profit, and a block of many small independent orders more
//! per gas; a builder runs both (one per core) and bids the better block.
//!
//! [`GreedyBlock`] keeps the unsealed block between calls, so a builder whose pool grows during
//! a slot adds only the new orders to the block it already has (greedily among themselves, after
//! the earlier ones) instead of executing every order again; [`Greedy`] is one such call on an
//! empty block.

use std::{
    cmp::{Ordering, Reverse},
    collections::BinaryHeap,
    sync::Arc,
};

use alloy_consensus::Transaction as _;
// foldhash, not SipHash: order ids are hashes already, and every candidate of a round is
// looked up.
use alloy_primitives::{
    Address, B256, U256,
    map::{HashMap, HashSet},
};
use cobuild_chain::SealCache;
use cobuild_sim::{Order, SimulatedOrder};

use crate::{
    Algorithm, BuildContext, BuildError, BuiltBlock, assembler::Assembler, assembler::Skip,
    expected_profit,
};

/// Greedy ordering by effective priority fee plus coinbase payment per gas.
#[derive(Debug, Clone, Copy, Default)]
pub struct Greedy;

/// Greedy ordering by the coinbase payment an order brings, whatever gas it takes.
#[derive(Debug, Clone, Copy, Default)]
pub struct GreedyByProfit;

/// What a greedy block takes first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Priority {
    /// The most profit per unit of gas.
    #[default]
    ProfitPerGas,
    /// The most profit.
    Profit,
}

impl Priority {
    /// The algorithm's name, for logs and benchmarks.
    pub const fn name(self) -> &'static str {
        match self {
            Self::ProfitPerGas => "greedy",
            Self::Profit => "greedy-profit",
        }
    }

    fn key(self, profit: U256, gas: u64) -> U256 {
        match self {
            Self::ProfitPerGas => profit / U256::from(gas.max(1)),
            Self::Profit => profit,
        }
    }

    fn score(self, order: &SimulatedOrder) -> U256 {
        self.key(expected_profit(order), order.outcome.gas_used)
    }

    /// The real profit an order using `gas` must reach to still beat a candidate keyed `next`.
    fn floor(self, next: U256, gas: u64) -> U256 {
        match self {
            Self::ProfitPerGas => next * U256::from(gas),
            Self::Profit => next,
        }
    }
}

fn build_greedy(
    priority: Priority,
    ctx: &BuildContext,
    orders: &[Arc<SimulatedOrder>],
) -> Result<BuiltBlock, BuildError> {
    let mut block = GreedyBlock::with_priority(ctx, priority)?;
    block.extend(orders)?;
    block.block.seal(priority.name())
}

impl Algorithm for Greedy {
    fn name(&self) -> &'static str {
        Priority::ProfitPerGas.name()
    }

    fn build(
        &self,
        ctx: &BuildContext,
        orders: &[Arc<SimulatedOrder>],
    ) -> Result<BuiltBlock, BuildError> {
        build_greedy(Priority::ProfitPerGas, ctx, orders)
    }
}

impl Algorithm for GreedyByProfit {
    fn name(&self) -> &'static str {
        Priority::Profit.name()
    }

    fn build(
        &self,
        ctx: &BuildContext,
        orders: &[Arc<SimulatedOrder>],
    ) -> Result<BuiltBlock, BuildError> {
        build_greedy(Priority::Profit, ctx, orders)
    }
}

/// A greedy block that grows: each [`extend`](Self::extend) adds the orders it has not seen to
/// the block so far, and [`seal`](Self::seal) seals a copy, so the block goes on growing.
pub struct GreedyBlock {
    priority: Priority,
    block: Assembler,
    /// Every order offered so far, committed or not: an order is tried once per block.
    seen: HashSet<B256>,
    /// Transactions whose sender misses an earlier nonce, by that nonce: they run when it lands,
    /// even in a later call.
    waiting: HashMap<(Address, u64), Vec<Arc<SimulatedOrder>>>,
    /// What the seal of the last copy kept for the next.
    last_sealed: Option<SealCache>,
}

impl std::fmt::Debug for GreedyBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GreedyBlock")
            .field("priority", &self.priority)
            .field("orders", &self.block.orders().len())
            .field("seen", &self.seen.len())
            .finish_non_exhaustive()
    }
}

impl GreedyBlock {
    /// An empty block on `ctx`'s parent, by profit per gas.
    pub fn new(ctx: &BuildContext) -> Result<Self, BuildError> {
        Self::with_priority(ctx, Priority::ProfitPerGas)
    }

    /// An empty block on `ctx`'s parent that takes orders by `priority`.
    pub fn with_priority(ctx: &BuildContext, priority: Priority) -> Result<Self, BuildError> {
        Ok(Self {
            priority,
            block: Assembler::new(ctx)?,
            seen: HashSet::default(),
            waiting: HashMap::default(),
            last_sealed: None,
        })
    }

    /// Ids of the orders in the block, in block order.
    pub fn orders(&self) -> &[B256] {
        self.block.orders()
    }

    /// How many orders were offered to the block, in or not.
    pub fn seen(&self) -> usize {
        self.seen.len()
    }

    /// Adds the orders of `orders` not offered before, greedily among themselves; returns how
    /// many were new. Orders are taken in priority order after those already in the block,
    /// so the block may be worth less than a greedy block of all of them built at once.
    ///
    /// `orders` are all the orders runnable now: a transaction still waiting for an earlier
    /// nonce that is not among them (replaced, or gone from the pool) is forgotten.
    pub fn extend(&mut self, orders: &[Arc<SimulatedOrder>]) -> Result<usize, BuildError> {
        if !self.waiting.is_empty() {
            let current: HashSet<B256> = orders.iter().map(|o| o.order.id()).collect();
            self.waiting.retain(|_, ready| {
                ready.retain(|o| current.contains(&o.order.id()));
                !ready.is_empty()
            });
        }
        // Sized up front: a first call offers the whole pool, and growing both by doubling
        // showed in the profile of a greedy build (rehashes and fresh pages).
        self.seen.reserve(orders.len());
        let mut candidates: Vec<Arc<SimulatedOrder>> = Vec::with_capacity(orders.len());
        candidates.extend(
            orders
                .iter()
                .filter(|o| self.seen.insert(o.order.id()))
                .cloned(),
        );
        let new = candidates.len();
        // (score, Reverse(index)): ties go to the lower index, which is deterministic.
        let priority = self.priority;
        let mut heap: BinaryHeap<(U256, Reverse<usize>)> = candidates
            .iter()
            .enumerate()
            .map(|(i, o)| (priority.score(o), Reverse(i)))
            .collect();
        let mut rescored = vec![false; candidates.len()];
        while let Some((_, Reverse(i))) = heap.pop() {
            let order = candidates[i].clone();
            if order.outcome.gas_used > self.block.gas_left() {
                continue;
            }
            match self.block.nonce_order(&order.order)? {
                Ordering::Less => continue,
                Ordering::Greater => {
                    if let Order::Tx(tx) = &order.order {
                        self.waiting
                            .entry((tx.sender(), tx.nonce()))
                            .or_default()
                            .push(order.clone());
                    }
                    continue;
                }
                Ordering::Equal => {}
            }
            // The order must still beat the next candidate, unless it was already re-scored.
            let floor = match heap.peek() {
                Some((next, _)) if !rescored[i] => priority.floor(*next, order.outcome.gas_used),
                _ => U256::ZERO,
            };
            match self.block.commit(&order, |profit| profit >= floor)? {
                Ok(_) => {
                    for tx in order.order.txs() {
                        let Some(next) = tx.nonce().checked_add(1) else {
                            continue;
                        };
                        for ready in self
                            .waiting
                            .remove(&(tx.signer(), next))
                            .unwrap_or_default()
                        {
                            heap.push((priority.score(&ready), Reverse(candidates.len())));
                            candidates.push(ready);
                            rescored.push(false);
                        }
                    }
                }
                Err(Skip::Refused { profit }) => {
                    rescored[i] = true;
                    heap.push((priority.key(profit, order.outcome.gas_used), Reverse(i)));
                }
                Err(Skip::NoGas | Skip::Invalid) => {}
            }
        }
        Ok(new)
    }

    /// What the block's coinbase has gained so far: its bid grows with this, so two blocks on
    /// the same parent and payout rank by it before either is sealed.
    pub fn profit(&self) -> Result<U256, BuildError> {
        self.block.profit()
    }

    /// Seals a copy of the block as it is now; this one can go on growing. The seal starts from
    /// what the last one kept, so it costs what changed since.
    pub fn seal(&mut self) -> Result<BuiltBlock, BuildError> {
        let (built, cache) = self
            .block
            .fork()
            .seal_cached(self.priority.name(), self.last_sealed.take())?;
        self.last_sealed = Some(cache);
        Ok(built)
    }
}
