//! The slot's growing greedy blocks: one by profit per gas and one by profit, extended side by
//! side each round (one core each), the more valuable one offered.
//!
//! Each block grows through the slot ([`GreedyBlock`]): a round adds only the orders that are
//! new since the last one and seals a copy. A block is built again from every order when one
//! of its orders left the pools (cancelled or replaced), and when the orders added since its
//! last rebuild outnumber those it was rebuilt from, which keeps its ordering close to a fresh
//! greedy block's for a constant factor of work.
//!
//! Two priorities because neither wins everywhere: where arbitrage bundles compete for the same
//! pools, taking the richest first is worth far more (the benchmark's pool: 57 %) than packing
//! profit per gas, which wins on many small independent orders. A block holds an EVM, which
//! cannot move between threads, so the profit block lives on a companion thread of its own.

use std::sync::{Arc, mpsc};

use cobuild_builder::{BuildContext, BuildError, BuiltBlock, GreedyBlock, Priority};
use cobuild_sim::SimulatedOrder;

use super::engine::{BuilderError, OrderSet};

/// Orders added since the last rebuild may outnumber those it was built from by this much
/// before the block is built again; small pools are rebuilt rarely, as their rounds are cheap.
const REBUILD_FLOOR: usize = 64;

/// One greedy block, growing round by round.
struct Growing {
    block: GreedyBlock,
    /// Orders offered to it when it was last built from scratch.
    rebuilt_from: Option<usize>,
}

impl Growing {
    /// Whether the next round may add to this block rather than build it again: every order in
    /// it is still runnable, and it has not doubled since it was built from scratch.
    fn extends_to(&self, set: &OrderSet) -> bool {
        let base = self.rebuilt_from.unwrap_or_default().max(REBUILD_FLOOR);
        self.block.seen() <= 2 * base && self.block.orders().iter().all(|id| set.contains(id))
    }

    /// Adds the new orders of `orders` to the block in `slot` (or to a new one, see
    /// [`Self::extends_to`]) and seals a copy; returns it with how many orders were new. A
    /// failed round leaves `slot` empty, so the next one builds afresh.
    fn advance(
        slot: &mut Option<Self>,
        ctx: &BuildContext,
        priority: Priority,
        orders: &[Arc<SimulatedOrder>],
        set: &OrderSet,
    ) -> Result<(BuiltBlock, usize), BuildError> {
        let mut block = match slot.take() {
            Some(block) if block.extends_to(set) => block,
            _ => Self {
                block: GreedyBlock::with_priority(ctx, priority)?,
                rebuilt_from: None,
            },
        };
        // Put back only after a whole round: a failed extension may leave the block short of
        // orders it was offered.
        let added = block.block.extend(orders)?;
        block.rebuilt_from.get_or_insert(block.block.seen());
        let built = block.block.seal()?;
        *slot = Some(block);
        Ok((built, added))
    }
}

/// The orders of a round, for the companion.
type Request = (Arc<[Arc<SimulatedOrder>]>, OrderSet);

/// The by-profit block's thread.
struct Companion {
    requests: mpsc::SyncSender<Request>,
    answers: mpsc::Receiver<Result<BuiltBlock, BuildError>>,
}

impl Companion {
    fn start(ctx: BuildContext) -> Result<Self, BuilderError> {
        // One round at a time: each request is answered before the next is sent.
        let (requests, incoming) = mpsc::sync_channel::<Request>(1);
        let (reply, answers) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("builder-profit".into())
            .spawn(move || {
                let mut growing = None;
                while let Ok((orders, set)) = incoming.recv() {
                    let built =
                        Growing::advance(&mut growing, &ctx, Priority::Profit, &orders, &set)
                            .map(|(built, _)| built);
                    if reply.send(built).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| BuilderError::Threads(e.to_string()))?;
        Ok(Self { requests, answers })
    }
}

/// The slot's two growing blocks. Dropping it ends the companion thread.
#[derive(Default)]
pub(super) struct SlotBlocks {
    per_gas: Option<Growing>,
    by_profit: Option<Companion>,
}

impl SlotBlocks {
    /// Adds the new orders of `orders` (whose ids are `set`) to both blocks at once and seals
    /// them; returns the more valuable one (by profit per gas on a tie) with how many orders
    /// were new. Fails only if both blocks failed; a failed block is built afresh next round.
    pub(super) fn build(
        &mut self,
        ctx: &BuildContext,
        orders: &Arc<[Arc<SimulatedOrder>]>,
        set: &OrderSet,
    ) -> Result<(BuiltBlock, usize), BuilderError> {
        if self.by_profit.is_none() {
            self.by_profit = Some(Companion::start(ctx.clone())?);
        }
        let companion = self.by_profit.as_ref().ok_or_else(gone)?;
        let asked = companion
            .requests
            .send((orders.clone(), set.clone()))
            .is_ok();
        let per_gas = Growing::advance(&mut self.per_gas, ctx, Priority::ProfitPerGas, orders, set);
        let by_profit = if asked {
            companion.answers.recv().map_err(|_| gone())
        } else {
            Err(gone())
        };
        let by_profit = match by_profit {
            Ok(built) => built.map_err(BuilderError::from),
            Err(e) => {
                // A dead companion is started again next round.
                self.by_profit = None;
                Err(e)
            }
        };
        match (per_gas, by_profit) {
            (Ok((per_gas, added)), Ok(by_profit)) if by_profit.value > per_gas.value => {
                Ok((by_profit, added))
            }
            (Ok(per_gas), other) => {
                if let Err(e) = other {
                    tracing::error!(error = %e, "builder.profit_block_failed");
                }
                Ok(per_gas)
            }
            (Err(e), Ok(by_profit)) => {
                tracing::error!(error = %e, "builder.per_gas_block_failed");
                // Every order was offered to the by-profit block's rebuild or extension.
                Ok((by_profit, orders.len()))
            }
            (Err(e), Err(_)) => Err(e.into()),
        }
    }
}

fn gone() -> BuilderError {
    BuilderError::Join("the profit block's thread stopped".into())
}
