//! An Ethereum execution client as the state cobuild simulates and builds on.
//!
//! Any execution client (reth, geth, Nethermind, anvil) answers the standard JSON-RPC reads, over
//! HTTP(S), WS(S) or IPC; an [`ElClient`] is one connection to one, and [`ElClient::state_at`]
//! gives the state after one block, pinned by the block's hash (EIP-1898), as a
//! [`StateSource`](cobuild_chain::StateSource) a [`StateSnapshot`](cobuild_chain::StateSnapshot)
//! executes on; [`ElChain`] follows the client's blocks as the head a node builds on. What that snapshot reads it
//! remembers, so each key costs one read per parent; code is remembered by hash for good (it
//! never changes); and [`StateSnapshot::prefetch`](cobuild_chain::StateSnapshot::prefetch) reads
//! the keys orders are known to touch in one batch.
//!
//! ```text
//!  EVM (sim / builder threads) ─▶ StateSnapshot ─▶ ReadCache ─miss─▶ RpcSource::account/storage
//!                                                                     │ eth_getProof (nonce,
//!                                                                     │ balance, code hash)
//!                                       code by hash (for good) ◀─────┤ eth_getCode if new
//!                                                                     │ eth_getStorageAt
//!                                       one JSON-RPC batch ◀── prefetch(accounts, slots)
//!  keys to read ahead for orders ◀── touched_by(txs): one eth_createAccessList batch
//!  seal ─▶ StateSnapshot::root_from_proofs ─▶ RpcSource::proofs (one eth_getProof batch of the
//!          changed keys not proved yet) and state_root (the parent's header, once)
//! ```
//! The client's public mempool comes as a [`PendingStream`] over WS or IPC (a subscription) or
//! whole from `txpool_content` over HTTP.
//!
//! Reads are synchronous (revm's `DatabaseRef`) and run on the simulation and building threads:
//! the client drives its HTTP connection on a small runtime of its own and the reading thread
//! waits for the answer (from inside another runtime's context, on a scoped thread).

mod chain;
mod client;
mod error;
mod pending;
mod source;

pub use chain::{ElChain, Followed};
pub use client::{ElClient, ElHead, READ_TIMEOUT};
pub use error::ElError;
pub use pending::{PendingBatch, PendingStream};
pub use source::{MAX_BATCH, RpcSource, Touched};
