//! Wires a cobuild node: chain, pool, block production and RPC, with its configuration.
//!
//! # Design
//! ```text
//!   RPC (eth_sendRawTransaction) ──▶ TxPool ──▶ Producer (each slot) ──▶ Chain::commit
//!        ▲                                         │ BlockBuilder off the async runtime
//!        └──────────── reads (blocks, state) ◀─────┘
//! ```
//! [`devnet::Devnet`] runs the embedded chain with its own block producer. The producer only
//! looks at shutdown between slots, so a block that is being sealed is always committed.

pub mod devnet;

pub use devnet::{Devnet, DevnetConfig, DevnetError};
