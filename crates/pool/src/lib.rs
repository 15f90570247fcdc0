//! Pending transactions awaiting inclusion, validated against the head state and ordered by fee.
//!
//! # Design
//! ```text
//!  eth_sendRawTransaction ──▶ TxPool::add ── validate (chain id, nonce, funds, fees, gas)
//!                                  │
//!                    by sender, nonce-ordered queues
//!                                  │
//!  block producer ◀── TxPool::best(base_fee): highest effective tip first, nonces in order
//!                                  │
//!  new head ──▶ TxPool::on_block: drop included and now-stale transactions
//! ```
//! Every rejection is a typed [`PoolError`] so the RPC layer answers with the message clients
//! expect (geth's wording).

mod best;
mod bundles;
mod error;
mod pool;

pub use best::BestTransactions;
pub use bundles::{BundlePool, PooledBundle};
pub use error::PoolError;
pub use pool::{PoolConfig, PooledTx, TxPool};
