//! The benchmark's flags, parsed by clap in `cobuild bench` and in the `cobuild-bench` binary.

use std::{path::PathBuf, time::Duration};

use crate::{AnvilConfig, BenchConfig, BidLatencyConfig, IntakeConfig, ReplicationConfig};

/// The benchmark's command-line flags, shared by `cobuild bench` and `cobuild-bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Seed of the workloads.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Pool sizes to measure, in orders.
    #[arg(long, value_delimiter = ',', default_values_t = [1_000usize, 5_000])]
    pub orders: Vec<usize>,
    /// Timed repetitions of each simulation, build and seal measurement.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub reps: u64,
    /// Untimed runs before each measurement.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Seconds after which a measurement stops repeating (keeping at least one timed run).
    #[arg(long, default_value_t = 30)]
    pub budget_secs: u64,
    /// Simulator thread counts to measure.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 2])]
    pub sim_threads: Vec<usize>,
    /// Block gas limit.
    #[arg(long, default_value_t = cobuild_primitives::DEFAULT_GAS_LIMIT)]
    pub gas_limit: u64,
    /// The anvil binary [default: tools/node_modules/.bin/anvil of the repository].
    #[arg(long)]
    pub anvil: Option<PathBuf>,
    /// Timed `evm_mine` repetitions per pool.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1_000))]
    pub anvil_reps: u64,
    /// Skip the anvil baseline.
    #[arg(long)]
    pub no_anvil: bool,
    /// Signed `eth_sendBundle` requests for the intake benchmark (the node holds 10,000).
    #[arg(long, default_value_t = 8_000)]
    pub intake_requests: usize,
    /// Concurrent connections of the intake benchmark.
    #[arg(long, default_value_t = 8)]
    pub intake_connections: usize,
    /// Deadline of the intake benchmark, in seconds.
    #[arg(long, default_value_t = 60)]
    pub intake_timeout_secs: u64,
    /// A second intake run sends each transaction in bundles for this many blocks, as
    /// searchers target the next few; below 2 skips it.
    #[arg(long, default_value_t = 3)]
    pub intake_resend_blocks: usize,
    /// Skip the intake benchmark.
    #[arg(long)]
    pub no_intake: bool,
    /// Run only the replication benchmark: members on loopback, latency at a fixed rate,
    /// sustained throughput, and intake with replication on vs off (about 25 s).
    #[arg(long, conflicts_with = "no_replication")]
    pub replication: bool,
    /// Skip the replication benchmark.
    #[arg(long)]
    pub no_replication: bool,
    /// Members of the replication benchmark.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(2..=64))]
    pub replication_members: u64,
    /// Orders per second offered to the members (spread evenly) in the fixed-rate phase.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub replication_rate: u32,
    /// Seconds of the fixed-rate phase.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub replication_secs: u64,
    /// Seconds of the as-fast-as-possible phase.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub replication_flood_secs: u64,
    /// Seconds of each intake run with replication off and on (same requests and connections
    /// as --intake-requests and --intake-connections); 0 skips them.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(0..=600))]
    pub replication_intake_secs: u64,
    /// Run only the accepted -> bid benchmark: a devnet node under load, each order timed
    /// from its answer to the first accepted bid holding it (about 25 s).
    #[arg(long, conflicts_with_all = ["no_bid_latency", "replication"])]
    pub bid_latency: bool,
    /// Skip the accepted -> bid benchmark.
    #[arg(long)]
    pub no_bid_latency: bool,
    /// Orders per second of the accepted -> bid load (half raw transactions, half bundles).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(2..))]
    pub bid_latency_rate: u32,
    /// Seconds of the accepted -> bid load (a soak: hours, to see the footprint level off).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub bid_latency_secs: u64,
    /// Slot of the accepted -> bid devnet, in milliseconds.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub bid_latency_slot_ms: u64,
    /// Bundles of the accepted -> bid idle baseline.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=1_000))]
    pub bid_latency_probes: u64,
    /// Also write every figure, with the machine's cores and load, to this JSON file
    /// (durations in milliseconds).
    #[arg(long)]
    pub json: Option<PathBuf>,
}

impl BenchArgs {
    /// The run these flags ask for.
    pub fn into_config(self) -> BenchConfig {
        let replication = (!self.no_replication).then(|| ReplicationConfig {
            members: self.replication_members as usize,
            rate: self.replication_rate,
            duration: Duration::from_secs(self.replication_secs),
            flood_duration: Duration::from_secs(self.replication_flood_secs),
            seed: self.seed,
            intake: (self.replication_intake_secs > 0).then(|| IntakeConfig {
                requests: self.intake_requests,
                connections: self.intake_connections,
                timeout: Duration::from_secs(self.replication_intake_secs),
                ..IntakeConfig::default()
            }),
            ..ReplicationConfig::default()
        });
        let bid_latency = (!self.no_bid_latency).then(|| BidLatencyConfig {
            rate: self.bid_latency_rate,
            duration: Duration::from_secs(self.bid_latency_secs),
            slot: Duration::from_millis(self.bid_latency_slot_ms),
            probes: self.bid_latency_probes as usize,
            ..BidLatencyConfig::default()
        });
        if self.replication || self.bid_latency {
            // Only the replication or the accepted -> bid benchmark.
            return BenchConfig {
                seed: self.seed,
                pools: Vec::new(),
                anvil: None,
                intake: None,
                replication: replication.filter(|_| self.replication),
                bid_latency: bid_latency.filter(|_| self.bid_latency),
                ..BenchConfig::default()
            };
        }
        BenchConfig {
            seed: self.seed,
            pools: self.orders,
            gas_limit: self.gas_limit,
            reps: self.reps as usize,
            warmup: self.warmup,
            budget: Duration::from_secs(self.budget_secs),
            sim_threads: self.sim_threads,
            anvil: (!self.no_anvil).then(|| AnvilConfig {
                path: self.anvil.unwrap_or_else(AnvilConfig::default_path),
                reps: self.anvil_reps as usize,
            }),
            intake: (!self.no_intake).then(|| IntakeConfig {
                requests: self.intake_requests,
                connections: self.intake_connections,
                timeout: Duration::from_secs(self.intake_timeout_secs),
                resend_blocks: self.intake_resend_blocks,
                ..IntakeConfig::default()
            }),
            replication,
            bid_latency,
        }
    }
}
