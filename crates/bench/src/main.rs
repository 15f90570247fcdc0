//! `cobuild-bench`: generates the workloads, runs every benchmark and prints the figures with
//! the anvil baseline side by side. Progress goes to stderr (`RUST_LOG`), the table to stdout.

use std::{path::PathBuf, time::Duration};

use clap::Parser;
use cobuild_bench::{AnvilConfig, BenchConfig, IntakeConfig, run};
use eyre::WrapErr;

/// Simulation, build and seal benchmarks against anvil, and order intake.
#[derive(Debug, Parser)]
#[command(name = "cobuild-bench", version, about, long_about = None)]
struct Args {
    /// Seed of the workloads.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Pool sizes to measure, in orders.
    #[arg(long, value_delimiter = ',', default_values_t = [1_000usize, 5_000])]
    orders: Vec<usize>,
    /// Timed repetitions of each simulation, build and seal measurement.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    reps: u64,
    /// Untimed runs before each measurement.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Seconds after which a measurement stops repeating (keeping at least one timed run).
    #[arg(long, default_value_t = 30)]
    budget_secs: u64,
    /// Simulator thread counts to measure.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 2])]
    sim_threads: Vec<usize>,
    /// Block gas limit.
    #[arg(long, default_value_t = cobuild_primitives::DEFAULT_GAS_LIMIT)]
    gas_limit: u64,
    /// The anvil binary [default: tools/node_modules/.bin/anvil of the repository].
    #[arg(long)]
    anvil: Option<PathBuf>,
    /// Timed `evm_mine` repetitions per pool.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1_000))]
    anvil_reps: u64,
    /// Skip the anvil baseline.
    #[arg(long)]
    no_anvil: bool,
    /// Signed `eth_sendBundle` requests for the intake benchmark (the node holds 10,000).
    #[arg(long, default_value_t = 8_000)]
    intake_requests: usize,
    /// Concurrent connections of the intake benchmark.
    #[arg(long, default_value_t = 8)]
    intake_connections: usize,
    /// Deadline of the intake benchmark, in seconds.
    #[arg(long, default_value_t = 60)]
    intake_timeout_secs: u64,
    /// Skip the intake benchmark.
    #[arg(long)]
    no_intake: bool,
}

fn main() -> eyre::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,cobuild_bench=info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = BenchConfig {
        seed: args.seed,
        pools: args.orders,
        gas_limit: args.gas_limit,
        reps: args.reps as usize,
        warmup: args.warmup,
        budget: Duration::from_secs(args.budget_secs),
        sim_threads: args.sim_threads,
        anvil: (!args.no_anvil).then(|| AnvilConfig {
            path: args.anvil.unwrap_or_else(AnvilConfig::default_path),
            reps: args.anvil_reps as usize,
        }),
        intake: (!args.no_intake).then(|| IntakeConfig {
            requests: args.intake_requests,
            connections: args.intake_connections,
            timeout: Duration::from_secs(args.intake_timeout_secs),
            ..IntakeConfig::default()
        }),
    };
    let report = run(&config).wrap_err("benchmark run failed")?;
    print!("{report}");
    Ok(())
}
