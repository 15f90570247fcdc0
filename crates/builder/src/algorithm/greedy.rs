//! Greedy by profit per gas, with the real profit checked at commit time and nonce-aware
//! retries.
//!
//! Orders come off a max-heap keyed by expected profit per gas. When an order is committed, its
//! real profit is measured on the block so far; if an earlier commit made it worth less than the
//! next candidate, it goes back into the heap with its real score instead (once). A transaction
//! whose sender still misses an earlier nonce waits, and is put back when that nonce lands.

use std::{
    cmp::{Ordering, Reverse},
    collections::{BinaryHeap, HashMap},
    sync::Arc,
};

use alloy_consensus::Transaction as _;
use alloy_primitives::{Address, U256};
use cobuild_sim::{Order, SimulatedOrder};

use crate::{
    Algorithm, BuildContext, BuildError, BuiltBlock, assembler::Assembler, assembler::Skip,
    expected_profit,
};

/// Greedy ordering by effective priority fee plus coinbase payment per gas.
#[derive(Debug, Clone, Copy, Default)]
pub struct Greedy;

fn per_gas(profit: U256, gas: u64) -> U256 {
    profit / U256::from(gas.max(1))
}

impl Algorithm for Greedy {
    fn name(&self) -> &'static str {
        "greedy"
    }

    fn build(
        &self,
        ctx: &BuildContext,
        orders: &[Arc<SimulatedOrder>],
    ) -> Result<BuiltBlock, BuildError> {
        let mut block = Assembler::new(ctx)?;
        // (score, Reverse(index)): ties go to the lower index, which is deterministic.
        let mut heap: BinaryHeap<(U256, Reverse<usize>)> = orders
            .iter()
            .enumerate()
            .map(|(i, o)| (per_gas(expected_profit(o), o.outcome.gas_used), Reverse(i)))
            .collect();
        let mut rescored = vec![false; orders.len()];
        let mut waiting: HashMap<(Address, u64), Vec<usize>> = HashMap::new();
        while let Some((_, Reverse(i))) = heap.pop() {
            let order = &orders[i];
            if order.outcome.gas_used > block.gas_left() {
                continue;
            }
            match block.nonce_order(&order.order)? {
                Ordering::Less => continue,
                Ordering::Greater => {
                    if let Order::Tx(tx) = &order.order {
                        waiting
                            .entry((tx.sender(), tx.nonce()))
                            .or_default()
                            .push(i);
                    }
                    continue;
                }
                Ordering::Equal => {}
            }
            // The order must still beat the next candidate, unless it was already re-scored.
            let floor = match heap.peek() {
                Some((next, _)) if !rescored[i] => *next * U256::from(order.outcome.gas_used),
                _ => U256::ZERO,
            };
            match block.commit(order, |profit| profit >= floor)? {
                Ok(_) => {
                    for tx in order.order.txs() {
                        let Some(next) = tx.nonce().checked_add(1) else {
                            continue;
                        };
                        if let Some(ready) = waiting.remove(&(tx.signer(), next)) {
                            for j in ready {
                                let o = &orders[j];
                                heap.push((
                                    per_gas(expected_profit(o), o.outcome.gas_used),
                                    Reverse(j),
                                ));
                            }
                        }
                    }
                }
                Err(Skip::Refused { profit }) => {
                    rescored[i] = true;
                    heap.push((per_gas(profit, order.outcome.gas_used), Reverse(i)));
                }
                Err(Skip::NoGas | Skip::Invalid) => {}
            }
        }
        block.seal(self.name())
    }
}
