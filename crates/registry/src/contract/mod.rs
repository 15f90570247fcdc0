//! The contract registry: members listed by the project's `Registry.sol` on any EL, read over
//! JSON-RPC, and the owner's transactions that change it.
//!
//! # Design
//! ```text
//!   owner key ──▶ RegistryWriter ──(signed tx)──▶ Registry.sol on an EL
//!                                                      │ eth_call members()
//!   net ◀── Registry::members() ◀── cache ◀── refresh thread (every interval / on demand)
//! ```
//! A contract lets operators who do not share a file agree on one membership, with a
//! governance rule enforced on chain and every change visible as an event. The rule lives in
//! `contracts/src/Registry.sol`: one owner, set at construction and transferable, adds,
//! removes and updates members; node keys are unique among current members and BLS keys are
//! 48 bytes. An M-of-N rule is the owner being a multisig.
//!
//! [`Registry::members`](crate::Registry::members) is synchronous, so [`ContractRegistry`]
//! answers from a cache that a dedicated thread refreshes; it never blocks on the network.
//! The JSON-RPC client is alloy's provider over plain HTTP (no TLS): the EL is expected on
//! loopback or a private network.

mod config;
mod error;
mod reader;
mod writer;

pub use config::ContractConfig;
pub use error::{ContractError, Refusal};
pub use reader::{ContractRegistry, RefreshStatus, read_members};
pub use writer::{MemberSpec, RegistryWriter};
