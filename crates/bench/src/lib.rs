//! Workload generator and benchmarks: mainnet-like orderflow on the demo contracts, and
//! simulation, build and seal figures against anvil in the same run.
//!
//! # Design
//! ```text
//!  workload ── seeded Rng ─▶ chain (genesis + setup blocks: demo tokens, pool, approvals)
//!                         └▶ pending pool: Vec<Arc<PooledTx>>, Vec<Arc<PooledBundle>>,
//!                            canonical raw txs (bundles flattened) for baselines
//!  bench ──── sim_orders / build_block / prepare_seal + seal_block (criterion and the binary)
//!             anvil baseline (same txs, evm_mine), intake (signed eth_sendBundle over HTTP)
//!             replication (members on loopback: latency, throughput, intake on vs off)
//!             ─▶ Report (Display prints the table)
//! ```
//!
//! # Example
//! ```no_run
//! use cobuild_bench::{BenchConfig, run};
//!
//! let report = run(&BenchConfig::default())?;
//! println!("{report}");
//! # Ok::<(), cobuild_bench::BenchError>(())
//! ```

pub mod bench;
mod cli;
mod error;
pub mod workload;

pub use bench::{
    AnvilConfig, BenchConfig, BidLatencyConfig, IntakeConfig, PoolReport, ReplicationConfig,
    ReplicationFigure, Report, replication, run, run_pool,
};
pub use cli::BenchArgs;
pub use cobuild_test_utils::Rng;
pub use error::BenchError;
pub use workload::{Mix, MixShares, OrderKind, Workload, WorkloadConfig, WorkloadError};
