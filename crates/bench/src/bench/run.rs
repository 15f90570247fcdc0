//! A run: per pool size, generate the workload, measure simulation, building and sealing, then
//! the anvil baseline on the same pending transactions; then intake, then replication.

use std::time::{Duration, Instant};

use cobuild_builder::{BuildContext, BuiltBlock};
use cobuild_sim::Simulator;

use super::{
    BenchConfig, Machine, anvil, bid_latency, intake,
    measure::{
        Algo, Latency, Prepared, Sampler, build_block, in_turn, prepare_full_seal,
        prepare_round_seal, prepare_seal, seal_block, sim_orders,
    },
    replication,
    report::{BuildFigure, PoolReport, Report, SealFigure, SealSize, SimFigure},
    submit,
};
use crate::{BenchError, Workload, WorkloadConfig};

fn runtime() -> Result<tokio::runtime::Runtime, BenchError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(BenchError::Runtime)
}

/// One building algorithm's part while the algorithms take turns.
struct Turns {
    algo: Algo,
    sampler: Sampler,
    /// The timed runs' durations.
    times: Vec<Duration>,
    /// The block its last run built.
    last: Option<BuiltBlock>,
}

impl AsMut<Sampler> for Turns {
    fn as_mut(&mut self) -> &mut Sampler {
        &mut self.sampler
    }
}

/// Runs every measurement `config` asks for and returns the figures.
///
/// Synchronous and long (minutes in release at the default sizes): call it from a plain
/// thread, not from inside an async runtime (it starts its own for anvil and the RPC server).
pub fn run(config: &BenchConfig) -> Result<Report, BenchError> {
    let machine = Machine::now();
    let mut pools = Vec::with_capacity(config.pools.len());
    for &orders in &config.pools {
        let mut workload_config = WorkloadConfig::new(orders, config.seed);
        workload_config.gas_limit = config.gas_limit;
        let started = Instant::now();
        let workload = Workload::generate(workload_config)?;
        tracing::info!(
            orders,
            setup_blocks = workload.setup_blocks.len(),
            ms = started.elapsed().as_millis() as u64,
            "bench.workload.generated"
        );
        pools.push(run_pool(&workload, config)?);
    }
    let intake = match &config.intake {
        Some(intake_config) => Some(intake::intake(intake_config)?),
        None => None,
    };
    let replication = match &config.replication {
        Some(replication_config) => Some(replication::replication(replication_config)?),
        None => None,
    };
    let bid_latency = match &config.bid_latency {
        Some(bid_config) => Some(bid_latency::bid_latency(bid_config)?),
        None => None,
    };
    Ok(Report {
        seed: config.seed,
        gas_limit: config.gas_limit,
        reps: config.reps,
        warmup: config.warmup,
        budget: config.budget,
        pools,
        intake,
        replication,
        bid_latency,
        machine,
    })
}

/// Measures one workload: simulation per thread count, every algorithm, sealing, and (when
/// configured) the anvil baseline. The chain is left untouched: every built block is checked
/// with `Chain::reexecute`, none is committed.
pub fn run_pool(workload: &Workload, config: &BenchConfig) -> Result<PoolReport, BenchError> {
    let ctx = workload.context()?;
    let reps = config.reps.max(1);
    let orders = workload.orders();

    // Simulation: a fresh simulator and a fresh state snapshot each time (both remember what
    // they read or ran); only `simulate` is timed.
    let mut sim = Vec::new();
    for &threads in &config.sim_threads {
        let mut samples = Vec::with_capacity(reps);
        let mut sampler = Sampler::new(config.warmup, reps, config.budget);
        while let Some(timed) = sampler.next_run() {
            let fresh = workload.context()?;
            let mut simulator =
                Simulator::new(threads).map_err(|e| BenchError::Threads(e.to_string()))?;
            let start = Instant::now();
            sim_orders(workload, &fresh, &mut simulator)?;
            let elapsed = start.elapsed();
            if timed {
                samples.push(elapsed);
            }
        }
        let latency = Latency::from_samples(samples);
        tracing::info!(
            orders,
            threads,
            p50_us = latency.p50.as_micros() as u64,
            "bench.sim"
        );
        sim.push(SimFigure {
            threads,
            latency,
            orders_per_sec: orders as f64 / latency.p50.as_secs_f64().max(f64::MIN_POSITIVE),
        });
    }
    // The blocks are built on the snapshot this simulation read, as a node's round builds on
    // the snapshot its simulation has just read.
    let round = sim_orders(
        workload,
        &ctx,
        &mut Simulator::new(0).map_err(|e| BenchError::Threads(e.to_string()))?,
    )?;

    // Building, seal included. The algorithms take turns, one run each, so that the machine's
    // speed drifting during the measurement (seen up to 2x within minutes here) falls on all of
    // them alike and their ratios hold.
    let mut builds = Vec::new();
    let mut blocks = Vec::new();
    let mut turns: Vec<Turns> = Algo::ALL
        .into_iter()
        .map(|algo| Turns {
            algo,
            sampler: Sampler::new(config.warmup, reps, config.budget),
            times: Vec::with_capacity(reps),
            last: None,
        })
        .collect();
    in_turn(&mut turns, |_, turn, timed| {
        let start = Instant::now();
        let built = build_block(&ctx, &round.orders, turn.algo)?;
        if timed {
            turn.times.push(start.elapsed());
        }
        turn.last = Some(built);
        Ok::<_, BenchError>(())
    })?;
    for turn in turns {
        let algo = turn.algo;
        let latency = Latency::from_samples(turn.times);
        let built = turn.last.expect("the sampler runs at least once");
        let reexecutes = workload
            .chain
            .reexecute(built.block.block.block.clone())
            .is_ok_and(|executed| executed.block.hash == built.block.block.hash);
        tracing::info!(
            orders,
            algorithm = algo.name(),
            p50_us = latency.p50.as_micros() as u64,
            "bench.build"
        );
        builds.push(BuildFigure {
            algorithm: algo.name(),
            latency,
            value: built.value,
            profit: built.profit,
            txs: built.block.block.block.body.transactions.len(),
            orders: built.orders.len(),
            gas_used: built.block.header().gas_used,
            reexecutes,
        });
        blocks.push(built);
    }

    // Sealing alone, on the block build_best chose.
    let best = blocks
        .last()
        .expect("Algo::ALL is not empty and ends with build_best");
    // Against two baselines in the same run: the same block sealed with every leaf read and
    // hashed, and, as a builder round meets it, sealed again after its last few transactions.
    // The three take turns, as the algorithms do.
    let [alone, full_rebuild, after_round] = time_seals(
        &ctx,
        best,
        config,
        [prepare_seal, prepare_full_seal, prepare_round_seal],
    )?;
    let seal = SealFigure {
        algorithm: best.algorithm,
        latency: Latency::from_samples(alone.seal),
        full_rebuild: Latency::from_samples(full_rebuild.seal),
        round: Latency::from_samples(after_round.seal),
        execute: Latency::from_samples(alone.execute),
        txs: best.block.block.block.body.transactions.len(),
        size: alone.size,
    };

    let submit = submit::measure(&best.block, config.reps)?;

    let base_fee = ctx.evm_env().block_env.basefee;
    let anvil = match &config.anvil {
        Some(anvil_config) => {
            let figure = runtime()?.block_on(anvil::baseline(
                workload,
                base_fee,
                ctx.attrs.fee_recipient,
                anvil_config,
            ))?;
            tracing::info!(
                orders,
                p50_us = figure.latency.p50.as_micros() as u64,
                "bench.anvil"
            );
            Some(figure)
        }
        None => None,
    };

    Ok(PoolReport {
        orders,
        txs: workload.txs.len(),
        bundles: workload.bundles.len(),
        raw_txs: workload.canonical.len(),
        mix: workload.mix.clone(),
        fingerprint: workload.fingerprint(),
        setup_blocks: workload.setup_blocks.len(),
        base_fee,
        valid: round.orders.len(),
        rejected: round.rejected,
        sim,
        builds,
        seal,
        submit,
        anvil,
        blocks,
    })
}

/// How a block is made ready to seal: replayed into a builder, as one of the seal figures
/// needs it.
type Prepare = fn(&BuildContext, &BuiltBlock) -> Result<Prepared, BenchError>;

/// One way of sealing `best` while the ways take turns: its timed runs and what it hashed.
struct SealRuns {
    prepare: Prepare,
    sampler: Sampler,
    /// The seals' durations.
    seal: Vec<Duration>,
    /// How long each replay before the seal took (not part of the seal's time).
    execute: Vec<Duration>,
    size: SealSize,
}

impl AsMut<Sampler> for SealRuns {
    fn as_mut(&mut self) -> &mut Sampler {
        &mut self.sampler
    }
}

/// Seals `best` in each of the `N` ways, one run of each in turn, each run replaying it
/// (untimed for the seal) into a builder from that way's `prepare`; every seal must give the
/// same block.
fn time_seals<const N: usize>(
    ctx: &BuildContext,
    best: &BuiltBlock,
    config: &BenchConfig,
    ways: [Prepare; N],
) -> Result<[SealRuns; N], BenchError> {
    let mut runs = ways.map(|prepare| SealRuns {
        prepare,
        sampler: Sampler::new(config.warmup, config.reps, config.budget),
        seal: Vec::with_capacity(config.reps),
        execute: Vec::with_capacity(config.reps),
        size: SealSize::default(),
    });
    in_turn(&mut runs, |_, way, timed| {
        let start = Instant::now();
        let builder = (way.prepare)(ctx, best)?;
        let executed_in = start.elapsed();
        let start = Instant::now();
        let (sealed, growing) = seal_block(builder)?;
        let sealed_in = start.elapsed();
        drop(growing);
        if sealed.block.hash != best.block.block.hash {
            return Err(BenchError::Replay(format!(
                "resealing the {} block gave {}, not {}",
                best.algorithm, sealed.block.hash, best.block.block.hash
            )));
        }
        way.size = SealSize::of(&sealed.diff);
        if timed {
            way.seal.push(sealed_in);
            way.execute.push(executed_in);
        }
        Ok(())
    })?;
    Ok(runs)
}
