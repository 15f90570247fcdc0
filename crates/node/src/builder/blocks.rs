//! The slot's growing greedy blocks: one by profit per gas and one by profit, extended side by
//! side each round (one core each); only the more valuable one is sealed and offered.
//!
//! Each block grows through the slot ([`GreedyBlock`]): a round adds only the orders that are
//! new since the last one and seals a copy. A block is built again from every order when one
//! of its orders left the pools (cancelled or replaced), and when the orders added since its
//! last rebuild outnumber those it was rebuilt from, which keeps its ordering close to a fresh
//! greedy block's for a constant factor of work.
//!
//! Two priorities because neither wins everywhere: where arbitrage bundles compete for the same
//! pools, taking the richest first is worth far more (the benchmark's pool: 57 %) than packing
//! profit per gas, which wins on many small independent orders. Both blocks pay the same
//! proposer the same share of their profit, so they rank by profit before either is sealed,
//! and a round seals one block, not two. A block holds an EVM, which cannot move between
//! threads, so the profit block lives on a companion thread of its own.

use std::{
    sync::{Arc, mpsc},
    time::{Duration, Instant},
};

use alloy_primitives::U256;
use cobuild_builder::{BuildContext, BuiltBlock, GreedyBlock, Priority};
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
    /// [`Self::extends_to`]); returns how many orders were new and the block's profit. A failed
    /// round leaves `slot` empty, so the next one builds afresh.
    fn extend(
        slot: &mut Option<Self>,
        ctx: &BuildContext,
        priority: Priority,
        orders: &[Arc<SimulatedOrder>],
        set: &OrderSet,
    ) -> Result<(usize, U256), BuilderError> {
        let mut block = match slot.take() {
            Some(block) if block.extends_to(set) => block,
            _ => Self {
                block: GreedyBlock::with_priority(ctx, priority)?,
                rebuilt_from: None,
            },
        };
        // Put back only after a whole extension: a failed one may leave the block short of
        // orders it was offered.
        let added = block.block.extend(orders)?;
        block.rebuilt_from.get_or_insert(block.block.seen());
        let profit = block.block.profit()?;
        *slot = Some(block);
        Ok((added, profit))
    }

    /// Seals a copy of the block in `slot`; a block whose seal failed is dropped.
    fn seal(slot: &mut Option<Self>) -> Result<BuiltBlock, BuilderError> {
        let block = slot.as_mut().ok_or_else(|| gone("no block to seal"))?;
        let sealed = block.block.seal();
        if sealed.is_err() {
            *slot = None;
        }
        Ok(sealed?)
    }
}

/// What the round thread asks of the companion.
enum Request {
    /// Add a round's orders (with their ids) and answer the block's profit.
    Extend(Arc<[Arc<SimulatedOrder>]>, OrderSet),
    /// Seal the block and answer it.
    Seal,
}

/// The companion's answers, one per request.
enum Answer {
    Extended(Result<(usize, U256), BuilderError>),
    // Boxed: a sealed block is large, and goes through the channel once a round at most.
    Sealed(Result<Box<BuiltBlock>, BuilderError>),
}

/// The by-profit block's thread.
struct Companion {
    requests: mpsc::SyncSender<Request>,
    answers: mpsc::Receiver<Answer>,
}

impl Companion {
    fn start(ctx: BuildContext) -> Result<Self, BuilderError> {
        // One request at a time: each is answered before the next is sent.
        let (requests, incoming) = mpsc::sync_channel::<Request>(1);
        let (reply, answers) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("builder-profit".into())
            .spawn(move || {
                let mut growing = None;
                while let Ok(request) = incoming.recv() {
                    let answer = match request {
                        Request::Extend(orders, set) => Answer::Extended(Growing::extend(
                            &mut growing,
                            &ctx,
                            Priority::Profit,
                            &orders,
                            &set,
                        )),
                        Request::Seal => Answer::Sealed(Growing::seal(&mut growing).map(Box::new)),
                    };
                    if reply.send(answer).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| BuilderError::Threads(e.to_string()))?;
        Ok(Self { requests, answers })
    }

    fn ask(&self, request: Request) -> Result<Answer, BuilderError> {
        self.requests
            .send(request)
            .map_err(|_| gone("the profit block's thread stopped"))?;
        self.answers
            .recv()
            .map_err(|_| gone("the profit block's thread stopped"))
    }

    fn extended(answer: Answer) -> Result<(usize, U256), BuilderError> {
        match answer {
            Answer::Extended(extended) => extended,
            Answer::Sealed(_) => Err(gone("the profit block answered out of turn")),
        }
    }

    fn sealed(answer: Answer) -> Result<BuiltBlock, BuilderError> {
        match answer {
            Answer::Sealed(sealed) => sealed.map(|built| *built),
            Answer::Extended(_) => Err(gone("the profit block answered out of turn")),
        }
    }
}

/// The slot's two growing blocks (one per priority), as a node's rounds build them. Dropping
/// it ends the companion thread.
#[derive(Default)]
pub struct SlotBlocks {
    per_gas: Option<Growing>,
    by_profit: Option<Companion>,
}

impl std::fmt::Debug for SlotBlocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotBlocks").finish_non_exhaustive()
    }
}

/// A round's sealed block, with how many orders were new and how long filling and sealing
/// took.
#[derive(Debug)]
pub struct RoundBlock {
    /// The sealed block.
    pub block: BuiltBlock,
    /// Orders not offered to the blocks before this round.
    pub added: usize,
    /// Adding the new orders to both blocks (side by side).
    pub fill: Duration,
    /// Sealing the richer one.
    pub seal: Duration,
}

impl SlotBlocks {
    /// Adds the orders of `orders` (whose ids are `set`) not seen before to both blocks at
    /// once, then seals the one with more profit (per gas on a tie) and returns it with how
    /// many orders were new. Fails only if both blocks failed; a failed block is built afresh
    /// next round.
    pub fn build(
        &mut self,
        ctx: &BuildContext,
        orders: &Arc<[Arc<SimulatedOrder>]>,
        set: &OrderSet,
    ) -> Result<RoundBlock, BuilderError> {
        let began = Instant::now();
        let companion = match &mut self.by_profit {
            Some(companion) => &*companion,
            slot @ None => &*slot.insert(Companion::start(ctx.clone())?),
        };
        let asked = companion
            .requests
            .send(Request::Extend(orders.clone(), set.clone()))
            .map_err(|_| gone("the profit block's thread stopped"));
        let per_gas = Growing::extend(&mut self.per_gas, ctx, Priority::ProfitPerGas, orders, set);
        let by_profit = asked
            .and_then(|()| {
                companion
                    .answers
                    .recv()
                    .map_err(|_| gone("the profit block's thread stopped"))
            })
            .and_then(Companion::extended);
        let filled = Instant::now();
        let round = |block, added| RoundBlock {
            block,
            added,
            fill: filled - began,
            seal: filled.elapsed(),
        };
        let profit_wins = match (&per_gas, &by_profit) {
            (Ok((_, mine)), Ok((_, theirs))) => theirs > mine,
            (Err(_), Ok(_)) => true,
            _ => false,
        };
        if profit_wins {
            if let Err(e) = &per_gas {
                tracing::error!(error = %e, "builder.per_gas_block_failed");
            }
            let added = by_profit.map_or(orders.len(), |(added, _)| added);
            match companion.ask(Request::Seal).and_then(Companion::sealed) {
                Ok(built) => return Ok(round(built, added)),
                Err(e) if per_gas.is_ok() => {
                    tracing::error!(error = %e, "builder.profit_block_failed");
                    if matches!(e, BuilderError::Join(_)) {
                        self.by_profit = None;
                    }
                }
                Err(e) => {
                    self.by_profit = None;
                    return Err(e);
                }
            }
        } else if let Err(e) = &by_profit {
            tracing::error!(error = %e, "builder.profit_block_failed");
            if matches!(e, BuilderError::Join(_)) {
                // A dead companion is started again next round.
                self.by_profit = None;
            }
        }
        let (added, _) = per_gas?;
        let built = Growing::seal(&mut self.per_gas)?;
        Ok(round(built, added))
    }
}

fn gone(why: &str) -> BuilderError {
    BuilderError::Join(why.into())
}
