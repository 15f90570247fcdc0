//! The measured operations, shared by the `cobuild-bench` binary and the criterion harness:
//! [`sim_orders`], [`build_block`], [`prepare_seal`] (or [`prepare_round_seal`]) + [`seal_block`],
//! and the latency summary.
//!
//! Sealing is not separable through the builder's public API ([`Algorithm::build`] always
//! seals), so it is measured on its own by replaying the built block's transactions into a fresh
//! [`BlockBuilder`] (untimed) and timing [`BlockBuilder::finish`]: post-block system calls,
//! state root, receipts and transactions roots, header hash.

use std::{
    ops::Range,
    sync::Arc,
    time::{Duration, Instant},
};

use alloy_consensus::transaction::Recovered;
use cobuild_builder::{
    Algorithm, BuildContext, BuiltBlock, ConflictSearch, Greedy, GreedyByProfit, build_best,
};
use cobuild_chain::{BlockBuilder, BlockError, ExecutedBlock, SealCache};
use cobuild_node::builder::{OrderSet, SlotBlocks};
use cobuild_sim::{SimError, SimRound, SimulatedOrder, Simulator};

use crate::{BenchError, Workload};

/// A building algorithm to time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algo {
    /// [`Greedy`] (by profit per gas) alone, on the caller's thread.
    Greedy,
    /// [`GreedyByProfit`] alone, on the caller's thread.
    GreedyByProfit,
    /// [`ConflictSearch`] (default bounds) alone, on the caller's thread.
    ConflictSearch,
    /// A slot's first round in a node: both greedy blocks at once, one thread each, only the
    /// richer sealed ([`SlotBlocks`]).
    Round,
    /// [`build_best`] over all three algorithms, one scoped thread each.
    Best,
}

impl Algo {
    /// Every variant, in table order.
    pub const ALL: [Self; 5] = [
        Self::Greedy,
        Self::GreedyByProfit,
        Self::ConflictSearch,
        Self::Round,
        Self::Best,
    ];

    /// The name in tables and benchmark ids.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Greedy => "greedy",
            Self::GreedyByProfit => "greedy-profit",
            Self::ConflictSearch => "conflict-search",
            Self::Round => "node round",
            Self::Best => "build_best",
        }
    }
}

/// Simulates the whole pool of `workload` on `ctx`'s parent with `sim`. Give it a fresh
/// [`Simulator`] for every measurement: a simulator remembers results per parent.
pub fn sim_orders(
    workload: &Workload,
    ctx: &BuildContext,
    sim: &mut Simulator,
) -> Result<SimRound, SimError> {
    sim.simulate(
        ctx.parent.hash(),
        &ctx.state,
        &ctx.evm_env(),
        &workload.txs,
        &workload.bundles,
    )
}

/// Builds and seals one block from simulated `orders` with `algo`.
pub fn build_block(
    ctx: &BuildContext,
    orders: &[Arc<SimulatedOrder>],
    algo: Algo,
) -> Result<BuiltBlock, BenchError> {
    Ok(match algo {
        Algo::Greedy => Greedy.build(ctx, orders)?,
        Algo::GreedyByProfit => GreedyByProfit.build(ctx, orders)?,
        Algo::ConflictSearch => ConflictSearch::default().build(ctx, orders)?,
        Algo::Round => {
            let orders: Arc<[Arc<SimulatedOrder>]> = orders.into();
            SlotBlocks::default()
                .build(ctx, &orders, &OrderSet::of(&orders))?
                .block
        }
        Algo::Best => build_best(
            ctx,
            orders,
            &[&Greedy, &GreedyByProfit, &ConflictSearch::default()],
        )?,
    })
}

/// Transactions a builder round adds to its growing block before sealing it again: about what
/// 20 ms of orderflow at 1,000 orders a second brings.
pub const ROUND_TXS: usize = 20;

/// A filled block ready for [`seal_block`], with the diff of an earlier seal on the same parent
/// when the seal is to start from it.
pub struct Prepared {
    builder: BlockBuilder,
    earlier: Option<SealCache>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("after_earlier_seal", &self.earlier.is_some())
            .finish_non_exhaustive()
    }
}

/// Opens a block on `ctx` and executes every transaction of `built` into it, ready for
/// [`seal_block`]. Every transaction must execute as it did when `built` was made.
pub fn prepare_seal(ctx: &BuildContext, built: &BuiltBlock) -> Result<Prepared, BenchError> {
    let txs = built.block.block.block.body.transactions.len();
    Ok(Prepared {
        builder: replay_on(ctx, ctx.state.clone(), built, 0..txs, None)?,
        earlier: None,
    })
}

/// [`prepare_seal`] on the parent state without its trie nodes, so sealing hashes every leaf
/// (the full rebuild the incremental roots are measured against).
pub fn prepare_full_seal(ctx: &BuildContext, built: &BuiltBlock) -> Result<Prepared, BenchError> {
    let txs = built.block.block.block.body.transactions.len();
    Ok(Prepared {
        builder: replay_on(ctx, ctx.state.without_trie(), built, 0..txs, None)?,
        earlier: None,
    })
}

/// [`prepare_seal`] as a builder round meets the block: all but the last [`ROUND_TXS`]
/// transactions executed and a copy of that sealed (untimed), then the rest executed, so the
/// seal starts from what the copy's seal kept; [`seal_block`] then seals a copy of this block,
/// as a round does.
pub fn prepare_round_seal(ctx: &BuildContext, built: &BuiltBlock) -> Result<Prepared, BenchError> {
    let txs = built.block.block.block.body.transactions.len();
    let split = txs.saturating_sub(ROUND_TXS);
    let earlier = replay_on(ctx, ctx.state.clone(), built, 0..split, None)?;
    let (_, cache) = earlier.fork().finish_cached(None)?;
    Ok(Prepared {
        builder: replay_on(ctx, ctx.state.clone(), built, split..txs, Some(earlier))?,
        earlier: Some(cache),
    })
}

/// Executes the transactions `range` of `built` into `builder` (a new one on `state` if none).
fn replay_on(
    ctx: &BuildContext,
    state: cobuild_chain::StateSnapshot,
    built: &BuiltBlock,
    range: Range<usize>,
    builder: Option<BlockBuilder>,
) -> Result<BlockBuilder, BenchError> {
    let mut builder = match builder {
        Some(builder) => builder,
        None => BlockBuilder::new(
            ctx.spec.clone(),
            ctx.parent.clone(),
            state,
            ctx.attrs.clone(),
        )?,
    };
    let block = &built.block.block;
    let txs = block.block.body.transactions.iter().zip(&block.senders);
    for (tx, signer) in txs.skip(range.start).take(range.len()) {
        if let Err(reason) = builder.execute(Recovered::new_unchecked(tx.clone(), *signer))? {
            return Err(BenchError::Replay(format!(
                "transaction {} of the {} block: {reason}",
                tx.tx_hash(),
                built.algorithm
            )));
        }
    }
    Ok(builder)
}

/// Seals a filled block: the part of building a block that [`seal_block`] isolates.
///
/// A block prepared as a round meets it is sealed as a round seals its growing block: a copy
/// ([`BlockBuilder::fork`]) is sealed and the block goes on. The copy is part of the round's
/// cost, so it is timed; the block is handed back, so that dropping it is not.
pub fn seal_block(prepared: Prepared) -> Result<(ExecutedBlock, Option<BlockBuilder>), BlockError> {
    match prepared.earlier {
        Some(earlier) => {
            let (sealed, _) = prepared.builder.fork().finish_cached(Some(earlier))?;
            Ok((sealed, Some(prepared.builder)))
        }
        None => Ok((prepared.builder.finish()?, None)),
    }
}

/// Latency percentiles of a set of samples (nearest rank).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Latency {
    /// Number of samples.
    pub samples: usize,
    /// Median.
    #[serde(rename = "p50_ms", serialize_with = "crate::bench::report::ms")]
    pub p50: Duration,
    /// 99th percentile (the maximum below 100 samples).
    #[serde(rename = "p99_ms", serialize_with = "crate::bench::report::ms")]
    pub p99: Duration,
    /// Fastest.
    #[serde(rename = "min_ms", serialize_with = "crate::bench::report::ms")]
    pub min: Duration,
    /// Slowest.
    #[serde(rename = "max_ms", serialize_with = "crate::bench::report::ms")]
    pub max: Duration,
}

impl Latency {
    /// Summarises `samples` (all zero when empty).
    pub fn from_samples(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        let rank = |p: usize| {
            let n = samples.len();
            if n == 0 {
                return Duration::ZERO;
            }
            samples[(p * n).div_ceil(100).clamp(1, n) - 1]
        };
        Self {
            samples: samples.len(),
            p50: rank(50),
            p99: rank(99),
            min: samples.first().copied().unwrap_or_default(),
            max: samples.last().copied().unwrap_or_default(),
        }
    }
}

/// How many repetitions a measurement runs: `warmup` untimed, then `reps` timed, or fewer once
/// `budget` (counted from the first warm-up, over this measurement's own runs) is spent; always
/// at least one timed.
#[derive(Debug)]
pub(crate) struct Sampler {
    warmup: usize,
    reps: usize,
    budget: Duration,
    /// Time this measurement's runs took so far.
    spent: Duration,
    /// When the run under way started, while its time counts.
    since: Option<Instant>,
    runs: usize,
}

impl Sampler {
    pub(crate) fn new(warmup: usize, reps: usize, budget: Duration) -> Self {
        Self {
            warmup,
            reps: reps.max(1),
            budget,
            spent: Duration::ZERO,
            since: None,
            runs: 0,
        }
    }

    /// `Some(timed)` for another repetition, `None` when done. The time since the last call
    /// is this measurement's, unless [`rest`](Self::rest) was called in between.
    pub(crate) fn next_run(&mut self) -> Option<bool> {
        self.rest();
        let run = self.runs;
        self.runs += 1;
        if run < self.warmup {
            self.since = Some(Instant::now());
            return Some(false);
        }
        let timed = run - self.warmup;
        if timed >= self.reps || (timed >= 1 && self.spent > self.budget) {
            return None;
        }
        self.since = Some(Instant::now());
        Some(true)
    }

    /// Stops counting time until the next run: what runs meanwhile is another measurement's.
    pub(crate) fn rest(&mut self) {
        if let Some(since) = self.since.take() {
            self.spent += since.elapsed();
        }
    }
}

impl AsMut<Sampler> for Sampler {
    fn as_mut(&mut self) -> &mut Sampler {
        self
    }
}

/// Runs `run(i, measurement, timed)` for every measurement whose sampler still wants runs, one
/// run each in turn, until all are done: measurements taken in turn share whatever drift the
/// machine's speed has.
pub(crate) fn in_turn<M: AsMut<Sampler>, E>(
    measurements: &mut [M],
    mut run: impl FnMut(usize, &mut M, bool) -> Result<(), E>,
) -> Result<(), E> {
    loop {
        let mut ran = false;
        for (i, measurement) in measurements.iter_mut().enumerate() {
            if let Some(timed) = measurement.as_mut().next_run() {
                ran = true;
                let done = run(i, measurement, timed);
                // Each measurement's budget counts its own runs, not the others' between them.
                measurement.as_mut().rest();
                done?;
            }
        }
        if !ran {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_measurements_in_turn_alternate_run_by_run() {
        let hour = Duration::from_secs(3600);
        let mut samplers = vec![Sampler::new(1, 2, hour), Sampler::new(1, 1, hour)];
        let mut runs = Vec::new();
        in_turn(&mut samplers, |i, _, timed| {
            runs.push((i, timed));
            Ok::<_, ()>(())
        })
        .expect("no run fails");
        assert_eq!(
            runs,
            vec![(0, false), (1, false), (0, true), (1, true), (0, true)]
        );
        let failed = in_turn(&mut [Sampler::new(0, 3, hour)], |_, _, _| Err("stop"));
        assert_eq!(failed, Err("stop"));
    }

    #[test]
    fn test_a_budget_in_turn_counts_only_its_own_runs() {
        // The first measurement's runs take no time; the second's take 20 ms each, which would
        // spend the first's 30 ms budget after two of its runs if they counted against it.
        let budget = Duration::from_millis(30);
        let mut samplers = vec![Sampler::new(0, 3, budget), Sampler::new(0, 3, budget * 100)];
        let mut runs = [0, 0];
        in_turn(&mut samplers, |i, _, _| {
            runs[i] += 1;
            if i == 1 {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok::<_, ()>(())
        })
        .expect("no run fails");
        assert_eq!(runs, [3, 3]);
    }

    #[test]
    fn test_sampler_warms_up_then_stops_at_reps_or_budget() {
        let mut s = Sampler::new(1, 3, Duration::from_secs(3600));
        let runs: Vec<_> = std::iter::from_fn(|| s.next_run()).collect();
        assert_eq!(runs, vec![false, true, true, true]);
        let mut s = Sampler::new(0, 100, Duration::ZERO);
        let runs: Vec<_> = std::iter::from_fn(|| s.next_run()).collect();
        assert_eq!(runs, vec![true], "a spent budget still gives one sample");
    }

    #[test]
    fn test_nearest_rank_percentiles() {
        let ms = |v: u64| Duration::from_millis(v);
        let l = Latency::from_samples((1..=100).rev().map(ms).collect());
        assert_eq!(
            (l.p50, l.p99, l.min, l.max),
            (ms(50), ms(99), ms(1), ms(100))
        );
        let l = Latency::from_samples(vec![ms(3), ms(1), ms(2)]);
        assert_eq!((l.p50, l.p99), (ms(2), ms(3)));
        assert_eq!(Latency::from_samples(Vec::new()).p50, Duration::ZERO);
    }
}
