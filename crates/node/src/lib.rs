//! Wires a cobuild node: chain, pool, block production and RPC, with its configuration.
//!
//! # Design
//! ```text
//!  senders ──HTTP──▶ orderflow::Orderflow (RPC ──▶ TxPool / BundlePool)
//!                                 │
//!           chain ──head──▶ builder::Builder (each slot: Simulator rounds, Greedy +
//!                                 │             ConflictSearch, best block on a watch)
//!                                 ▼
//!                          builder::Bidder ──builder API──▶ relay (devnet: local relay)
//!                                                               │ verifies, keeps the best
//!  devnet::Producer (proposer, slot clock) ◀── take_best ───────┘
//!        └─▶ Chain::commit (the winner, or a local block when no bid came)
//! ```
//! [`devnet::Devnet`] runs the embedded chain with the builder, the local relay and the proposer
//! in one process. Building stops a little before each slot ends; the proposer commits between
//! slots, so a block being committed is always committed.
//!
//! As a hub ([`devnet::Devnet::start_hub`]) the devnet builds nothing: [`member::MemberNode`]s in
//! other processes follow its chain (`debug_getRawBlock` + import), build for each slot it
//! announces on the relay's `payload_attributes` stream, and bid to its relay. Both kinds of
//! node get their pools and RPC from [`orderflow::Orderflow`] and their builder and bidder from
//! [`bidding::start_bidding`].

pub mod bidding;
pub mod builder;
pub mod chain;
pub mod devnet;
pub mod el;
pub mod ledger;
pub mod member;
pub mod orderflow;
pub mod refunds;
pub mod replication;

pub use cobuild_rpc::{DEFAULT_PROOF_WINDOW, LogLimits, OrderflowLimits};
pub use devnet::{Devnet, DevnetConfig, DevnetError};
pub use orderflow::{Orderflow, OrderflowConfig, Pools};
