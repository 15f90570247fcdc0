//! Criterion harness over the same functions the `cobuild-bench` binary times, on a pool of
//! 1,000 orders (seed 1, 60M gas): simulation with 1 and 2 threads, each building algorithm
//! (seal included), and sealing alone (incremental roots, the full rebuild, and again after a round's transactions). Kept short: 10 samples, 3 s of measurement each.
//!
//! The anvil baseline and intake need processes and sockets; they run in the binary only.

use std::time::Duration;

use cobuild_bench::{
    Workload, WorkloadConfig,
    bench::{
        Algo, build_block, prepare_full_seal, prepare_round_seal, prepare_seal, seal_block,
        sim_orders,
    },
};
use cobuild_sim::Simulator;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

const ORDERS: usize = 1_000;

fn bench(c: &mut Criterion) {
    let workload = Workload::generate(WorkloadConfig::new(ORDERS, 1)).expect("workload");
    let ctx = workload.context().expect("context");
    let round =
        sim_orders(&workload, &ctx, &mut Simulator::new(0).expect("simulator")).expect("simulates");

    let mut group = c.benchmark_group("bench::sim_orders");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for threads in [1, 2] {
        group.bench_function(format!("orders={ORDERS} threads={threads}"), |b| {
            // A fresh simulator per iteration: it caches results per parent.
            b.iter_batched(
                || Simulator::new(threads).expect("simulator"),
                |mut sim| sim_orders(&workload, &ctx, &mut sim).expect("simulates"),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();

    let mut group = c.benchmark_group("bench::build_block");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for algo in Algo::ALL {
        group.bench_function(format!("orders={ORDERS} algorithm={}", algo.name()), |b| {
            b.iter(|| build_block(&ctx, &round.orders, algo).expect("builds"))
        });
    }
    group.finish();

    let best = build_block(&ctx, &round.orders, Algo::Best).expect("builds");
    let mut group = c.benchmark_group("bench::seal_block");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let txs = best.block.block.block.body.transactions.len();
    // Incremental roots, and the full rebuild of the same block as their baseline.
    for (roots, prepare) in [
        ("incremental", prepare_seal as fn(&_, &_) -> _),
        ("full", prepare_full_seal),
        ("after-round", prepare_round_seal),
    ] {
        group.bench_function(format!("orders={ORDERS} txs={txs} roots={roots}"), |b| {
            b.iter_batched(
                || prepare(&ctx, &best).expect("replays"),
                |builder| seal_block(builder).expect("seals"),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
