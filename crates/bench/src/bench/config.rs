//! What a benchmark run measures, and how often.

use std::time::Duration;

use cobuild_primitives::DEFAULT_GAS_LIMIT;

use super::{anvil::AnvilConfig, bid_latency::BidLatencyConfig, replication::ReplicationConfig};

/// Settings of the intake benchmark (signed `eth_sendBundle` over HTTP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntakeConfig {
    /// Requests to send (each a distinct bundle); the node's bundle pool holds 10,000.
    pub requests: usize,
    /// Concurrent keep-alive connections.
    pub connections: usize,
    /// Distinct signing keys (searchers) the requests rotate through.
    pub signers: usize,
    /// The sending stops at this deadline even if requests are left.
    pub timeout: Duration,
    /// A second run sends each transaction in bundles for this many blocks (as searchers target
    /// the next few); below 2 skips it.
    pub resend_blocks: usize,
}

impl Default for IntakeConfig {
    fn default() -> Self {
        Self {
            requests: 8_000,
            connections: 8,
            signers: 64,
            timeout: Duration::from_secs(60),
            resend_blocks: 3,
        }
    }
}

/// Settings of a whole run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchConfig {
    /// Seed of the workloads.
    pub seed: u64,
    /// Pool sizes to measure, in orders.
    pub pools: Vec<usize>,
    /// Gas limit of the chain and the built blocks.
    pub gas_limit: u64,
    /// Timed repetitions of each simulation, build and seal measurement.
    pub reps: usize,
    /// Untimed runs before each measurement.
    pub warmup: usize,
    /// Time after which a measurement stops repeating (it keeps at least one timed run), so a
    /// slow algorithm cannot hold the run for `reps` times its latency.
    pub budget: Duration,
    /// Simulator thread counts to measure.
    pub sim_threads: Vec<usize>,
    /// The anvil baseline; `None` skips it.
    pub anvil: Option<AnvilConfig>,
    /// The intake benchmark; `None` skips it.
    pub intake: Option<IntakeConfig>,
    /// The replication benchmark; `None` skips it.
    pub replication: Option<ReplicationConfig>,
    /// The accepted -> bid benchmark; `None` skips it.
    pub bid_latency: Option<BidLatencyConfig>,
}

impl Default for BenchConfig {
    /// Pools of 1,000 and 5,000 orders at 60M gas, 20 repetitions (30 s at most per
    /// measurement), 1 and 2 simulation threads, anvil (10 repetitions), intake, replication
    /// and accepted -> bid included.
    fn default() -> Self {
        Self {
            seed: 1,
            pools: vec![1_000, 5_000],
            gas_limit: DEFAULT_GAS_LIMIT,
            reps: 20,
            warmup: 1,
            budget: Duration::from_secs(30),
            sim_threads: vec![1, 2],
            anvil: Some(AnvilConfig {
                path: AnvilConfig::default_path(),
                reps: 10,
            }),
            intake: Some(IntakeConfig::default()),
            replication: Some(ReplicationConfig::default()),
            bid_latency: Some(BidLatencyConfig::default()),
        }
    }
}
