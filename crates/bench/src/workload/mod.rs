//! The deterministic workload: a chain with the demo contracts and many funded senders, and a
//! mainnet-like pending pool on it, all drawn from one seed.
//!
//! # Design
//! ```text
//!  seed ──▶ Rng ──▶ Plan (kinds in pool order, users, one searcher per bundle)
//!                     │ grants: ETH at genesis, tokens + pool approvals in setup blocks
//!                     ▼
//!            Chain: genesis ─▶ setup block 1 (deploy demo) ─▶ … ─▶ head
//!                     │ pool reserves
//!                     ▼
//!  same Rng ──▶ signed orders: ETH and ERC-20 transfers, swaps (some reverting),
//!               arbitrage bundles on the same pool paying the coinbase (some reverting)
//!                     │
//!                     ▼
//!     Workload { txs: Vec<Arc<PooledTx>>, bundles: Vec<Arc<PooledBundle>>, canonical raw txs }
//! ```
//! No wall clock and no OS entropy: the same configuration gives the same transaction hashes.
//! The setup blocks are kept so a baseline (anvil) can replay the same history.

mod config;
mod error;
mod generate;
mod orders;
mod setup;

pub use config::{Mix, MixShares, OrderKind, WorkloadConfig};
pub use error::WorkloadError;
pub use generate::{PROPOSER, Workload};
pub use setup::coinbase_key;
pub(crate) use setup::{account_key, sign};
