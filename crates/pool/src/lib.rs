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
//! Private transactions (`eth_sendPrivateTransaction`) live in the same queues, marked with
//! their owner and last block ([`PrivateTx`]): only their owner sees or cancels them, and they
//! leave the pool once their last block is sealed. Bundles wait in the [`BundlePool`] for their
//! inclusion range. One [`OrderLimit`] bounds transactions plus bundles; when it is reached, a
//! more valuable order evicts the least valuable one (a sender's highest nonce, so no gap opens).
//!
//! Every rejection is a typed [`PoolError`] so the RPC layer answers with the message clients
//! expect (geth's wording).

mod best;
mod bundles;
mod error;
mod limit;
mod pool;
mod reserve;

pub use best::BestTransactions;
pub use bundles::{BundlePool, DEFAULT_BUNDLE_HORIZON, PooledBundle};
pub use error::PoolError;
pub use limit::{ChangeListener, OrderLimit, bundle_value, tx_value};
pub use pool::{PoolConfig, PooledTx, PrivateTx, TxPool};
pub use reserve::Reservation;
