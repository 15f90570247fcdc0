//! Conflict-aware building: orders that touch the same state are searched as a group for the
//! sequence worth the most, and the groups are merged best first.
//!
//! Two orders conflict when one writes state the other reads or writes (their simulated access
//! sets). Groups are independent of each other by construction, so each group's sequences are
//! evaluated alone on the parent state: every permutation for small groups; for larger ones,
//! orderings by profit, by profit per gas, and (up to a bound) a best-next search that re-runs
//! the remaining orders after each pick. Where greedy takes a cheap bundle that voids a richer
//! one on the same pool, this finds the richer one.

use std::{
    cmp::Reverse,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use alloy_consensus::Transaction as _;
use alloy_evm::EvmEnv;
use alloy_primitives::{
    Address, U256,
    map::{HashMap, HashSet},
};
use cobuild_chain::StateSnapshot;
use cobuild_sim::{SimRejected, SimulatedOrder, StateKey, simulate_order_without_access};
use revm::{context_interface::result::InvalidTransaction, database::CacheDB};

use crate::{
    Algorithm, BuildContext, BuildError, BuiltBlock, assembler::Assembler, expected_profit,
};

/// Searches each conflict group for its most valuable sequence, then merges the groups.
#[derive(Debug, Clone, Copy)]
pub struct ConflictSearch {
    /// Groups up to this size try every permutation.
    pub max_exhaustive: usize,
    /// Groups up to this size also get the best-next search (quadratic in the group size).
    pub max_best_next: usize,
}

impl Default for ConflictSearch {
    fn default() -> Self {
        Self {
            max_exhaustive: 5,
            max_best_next: 24,
        }
    }
}

/// Partitions orders into groups that conflict (transitively); returns indexes, each group in
/// ascending order, groups ordered by their first index.
pub fn conflict_groups(orders: &[Arc<SimulatedOrder>]) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..orders.len()).collect();
    fn find(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    // Per key: the first order touching it, and whether anyone writes it.
    let mut touched: HashMap<StateKey, (Vec<usize>, bool)> = HashMap::default();
    for (i, order) in orders.iter().enumerate() {
        for key in &order.outcome.access.reads {
            let entry = touched.entry(*key).or_default();
            entry.0.push(i);
            entry.1 |= order.outcome.access.writes.contains(key);
        }
    }
    for (users, written) in touched.values() {
        if !written {
            continue;
        }
        let first = users[0];
        for &other in &users[1..] {
            let (a, b) = (find(&mut parent, first), find(&mut parent, other));
            if a != b {
                parent[a.max(b)] = a.min(b);
            }
        }
    }
    let mut groups: HashMap<usize, Vec<usize>> = HashMap::default();
    for i in 0..orders.len() {
        let root = find(&mut parent, i);
        groups.entry(root).or_default().push(i);
    }
    let mut groups: Vec<Vec<usize>> = groups.into_values().collect();
    groups.sort_by_key(|g| g[0]);
    groups
}

/// The best sequence found for a group and what it is expected to pay.
#[derive(Default)]
struct Plan {
    sequence: Vec<usize>,
    profit: U256,
    gas: u64,
}

impl Algorithm for ConflictSearch {
    fn name(&self) -> &'static str {
        "conflict-search"
    }

    fn build(
        &self,
        ctx: &BuildContext,
        orders: &[Arc<SimulatedOrder>],
    ) -> Result<BuiltBlock, BuildError> {
        self.build_until(ctx, orders, &AtomicBool::new(false))
    }
}

/// Set when a search's result is no longer wanted.
#[derive(Clone, Copy)]
struct Stop<'a>(&'a AtomicBool);

impl Stop<'_> {
    /// Checked before each order a search runs, so it ends within one order's execution.
    fn check(self) -> Result<(), BuildError> {
        if self.0.load(Ordering::Relaxed) {
            Err(BuildError::Cancelled)
        } else {
            Ok(())
        }
    }
}

impl ConflictSearch {
    /// [`Algorithm::build`], giving up with [`BuildError::Cancelled`] within one order's
    /// execution once `cancel` is set: a search runs for up to a block's execution per ordering
    /// it tries, and one whose slot ended would hold a core into the next slot.
    pub fn build_until(
        &self,
        ctx: &BuildContext,
        orders: &[Arc<SimulatedOrder>],
        cancel: &AtomicBool,
    ) -> Result<BuiltBlock, BuildError> {
        let stop = Stop(cancel);
        let env = ctx.evm_env();
        let mut plans = Vec::new();
        for group in conflict_groups(orders) {
            stop.check()?;
            plans.push(if group.len() == 1 {
                let o = &orders[group[0]];
                Plan {
                    profit: expected_profit(o),
                    gas: o.outcome.gas_used,
                    sequence: group,
                }
            } else {
                self.search(&ctx.state, &env, orders, &group, stop)?
            });
        }
        // Merge: the richest groups per gas first.
        plans.sort_by_key(|p| {
            (
                Reverse(p.profit / U256::from(p.gas.max(1))),
                Reverse(p.profit),
                p.sequence.first().copied(),
            )
        });
        let mut block = Assembler::new(ctx)?;
        for plan in plans {
            for i in plan.sequence {
                stop.check()?;
                let order = &orders[i];
                if block.nonce_order(&order.order)? != std::cmp::Ordering::Equal {
                    continue;
                }
                // The real effect is measured and kept whatever it is; the search already chose.
                let _ = block.commit(order, |_| true)?;
            }
        }
        block.seal(self.name())
    }

    fn search(
        &self,
        state: &StateSnapshot,
        env: &EvmEnv,
        orders: &[Arc<SimulatedOrder>],
        group: &[usize],
        stop: Stop<'_>,
    ) -> Result<Plan, BuildError> {
        let mut candidates: Vec<Vec<usize>> = Vec::new();
        let mut by_profit = group.to_vec();
        by_profit.sort_by_key(|&i| (Reverse(expected_profit(&orders[i])), i));
        let mut by_score = group.to_vec();
        by_score.sort_by_key(|&i| {
            let o = &orders[i];
            (
                Reverse(expected_profit(o) / U256::from(o.outcome.gas_used.max(1))),
                i,
            )
        });
        candidates.push(by_profit);
        candidates.push(by_score);
        // Orderings only matter where bundles compete: a group of plain transactions (often one
        // sender's nonce chain) is served by the two orderings above, which keeps a round's cost
        // linear in the pool.
        let has_bundle = group.iter().any(|&i| orders[i].order.is_bundle());
        if has_bundle && group.len() <= self.max_exhaustive {
            permutations(group, &mut candidates);
        }
        let mut best: Option<Plan> = None;
        let mut consider = |plan: Plan| {
            let better = best.as_ref().is_none_or(|b| {
                plan.profit > b.profit || (plan.profit == b.profit && plan.gas < b.gas)
            });
            if better {
                best = Some(plan);
            }
        };
        // Where profit and profit per gas rank alike (plain transfers: same gas each), the two
        // orderings are one, and a large group's evaluation is a block's worth of execution.
        for candidate in distinct(candidates) {
            consider(evaluate(state, env, orders, &candidate, stop)?);
        }
        if has_bundle && group.len() <= self.max_best_next {
            consider(best_next(state, env, orders, group, stop)?);
        }
        Ok(best.unwrap_or_default())
    }
}

/// Runs `sequence` on a scratch copy of the parent state, leaving out orders that fail; an
/// order whose nonce came too early waits for the transaction that precedes it and runs right
/// after it.
fn evaluate(
    state: &StateSnapshot,
    env: &EvmEnv,
    orders: &[Arc<SimulatedOrder>],
    sequence: &[usize],
    stop: Stop<'_>,
) -> Result<Plan, BuildError> {
    let mut db = CacheDB::new(state);
    let mut plan = Plan {
        sequence: Vec::with_capacity(sequence.len()),
        profit: U256::ZERO,
        gas: 0,
    };
    let mut early = Early::default();
    for &i in sequence {
        stop.check()?;
        run(&mut db, env, orders, i, &mut plan, &mut early)?;
    }
    Ok(plan)
}

/// Orders waiting for a nonce: keyed by the (sender, nonce) their too-early transaction needs
/// to run first, so a success wakes exactly the orders it unblocks.
#[derive(Default)]
struct Early(HashMap<(Address, u64), Vec<usize>>);

/// Runs one order of a sequence, then (if it was kept) the orders waiting on its nonces;
/// true if it was kept.
fn run(
    db: &mut CacheDB<&StateSnapshot>,
    env: &EvmEnv,
    orders: &[Arc<SimulatedOrder>],
    i: usize,
    plan: &mut Plan,
    early: &mut Early,
) -> Result<bool, BuildError> {
    let mut ready = vec![i];
    let mut first = true;
    let mut kept_first = false;
    while let Some(i) = ready.pop() {
        let order = &orders[i];
        let kept = match simulate_order_without_access(db, env, &order.order)? {
            Ok(outcome) => {
                let kept = SimulatedOrder {
                    order: order.order.clone(),
                    outcome,
                };
                plan.profit += expected_profit(&kept);
                plan.gas += kept.outcome.gas_used;
                plan.sequence.push(i);
                for tx in order.order.txs() {
                    if let Some(next) = tx.nonce().checked_add(1)
                        && let Some(waiting) = early.0.remove(&(tx.signer(), next))
                    {
                        ready.extend(waiting);
                    }
                }
                true
            }
            Err(SimRejected::Invalid {
                hash,
                reason: InvalidTransaction::NonceTooHigh { tx: nonce, .. },
            }) => {
                // Park it until the sender's nonce reaches the too-early transaction's.
                if let Some(tx) = order.order.txs().iter().find(|tx| *tx.tx_hash() == hash) {
                    early.0.entry((tx.signer(), nonce)).or_default().push(i);
                }
                false
            }
            Err(_) => false,
        };
        if first {
            kept_first = kept;
            first = false;
        }
    }
    Ok(kept_first)
}

/// Builds a sequence by repeatedly running every remaining order on the state so far and taking
/// the one that pays most.
fn best_next(
    state: &StateSnapshot,
    env: &EvmEnv,
    orders: &[Arc<SimulatedOrder>],
    group: &[usize],
    stop: Stop<'_>,
) -> Result<Plan, BuildError> {
    let mut db = CacheDB::new(state);
    let mut plan = Plan::default();
    let mut remaining: HashSet<usize> = group.iter().copied().collect();
    loop {
        let mut pick: Option<(U256, usize)> = None;
        let mut sorted: Vec<usize> = remaining.iter().copied().collect();
        sorted.sort_unstable();
        for i in sorted {
            stop.check()?;
            let mut trial = CacheDB::new(&db);
            if let Ok(outcome) = simulate_order_without_access(&mut trial, env, &orders[i].order)? {
                let value = expected_profit(&SimulatedOrder {
                    order: orders[i].order.clone(),
                    outcome,
                });
                if pick.is_none_or(|(best, _)| value > best) {
                    pick = Some((value, i));
                }
            }
        }
        let Some((_, i)) = pick else { break };
        remaining.remove(&i);
        run(&mut db, env, orders, i, &mut plan, &mut Early::default())?;
    }
    Ok(plan)
}

/// `candidates` without repeats, first sight kept: the permutations repeat the two sorted
/// orderings, and those two are often the same.
fn distinct(candidates: Vec<Vec<usize>>) -> Vec<Vec<usize>> {
    let mut unique: Vec<Vec<usize>> = Vec::with_capacity(candidates.len());
    for candidate in candidates {
        if !unique.contains(&candidate) {
            unique.push(candidate);
        }
    }
    unique
}

/// Appends every permutation of `items` (Heap's algorithm).
fn permutations(items: &[usize], out: &mut Vec<Vec<usize>>) {
    let mut a = items.to_vec();
    let n = a.len();
    let mut c = vec![0; n];
    out.push(a.clone());
    let mut i = 0;
    while i < n {
        if c[i] < i {
            if i % 2 == 0 {
                a.swap(0, i);
            } else {
                a.swap(c[i], i);
            }
            out.push(a.clone());
            c[i] += 1;
            i = 0;
        } else {
            c[i] = 0;
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_permutations_are_all_distinct() {
        let mut out = Vec::new();
        permutations(&[1, 2, 3, 4], &mut out);
        let distinct: HashSet<Vec<usize>> = out.iter().cloned().collect();
        assert_eq!(out.len(), 24);
        assert_eq!(distinct.len(), 24);
    }

    #[test]
    fn test_a_group_ranked_alike_by_profit_and_by_score_is_evaluated_once_per_ordering() {
        // A search's candidates: by profit, by profit per gas, then every permutation.
        let mut candidates = vec![vec![3, 1, 2], vec![3, 1, 2]];
        assert_eq!(distinct(candidates.clone()), vec![vec![3, 1, 2]]);
        permutations(&[1, 2, 3], &mut candidates);
        let unique = distinct(candidates);
        assert_eq!(unique.len(), 6);
        assert_eq!(unique[0], vec![3, 1, 2]);
        assert_eq!(unique.iter().collect::<HashSet<_>>().len(), 6);
    }
}
