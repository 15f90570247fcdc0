//! Lossless order replication among members: signed envelopes, a durable per-origin log, and
//! gap tracking for anti-entropy.
//!
//! # Design
//! ```text
//!  RPC accepts an order ──▶ Log::append_own (next seq, signed, durable) ──▶ answer the sender
//!                                 │
//!                                 └──▶ every member (transport) ──▶ verify origin signature
//!                                                                    │ and sender signature
//!                                       Log::insert: new / duplicate / equivocation
//!                                                                    │
//!                                       per-origin contiguous prefix; gaps fetched from any
//!                                       member that has them (anti-entropy)
//! ```
//! An acknowledged order is in its origin's log before the sender hears back, so it survives
//! the origin's crash; every receiver can tell from the contiguous prefix what it still misses.

mod archive;
mod commit;
pub mod engine;
mod envelope;
mod log;
mod transport;
pub mod wire;

/// A member's id, as the registry numbers members (the same as `cobuild_registry::MemberId`;
/// this crate does not read the registry yet).
pub type MemberId = u32;

pub use commit::{CommitError, GroupCommit, Queued};
pub use envelope::{
    Envelope, EnvelopeBody, EnvelopeError, Head, MAX_ENVELOPE_BYTES, NAMESPACE, SignedHead,
};
pub use log::{Archived, Held, Insert, Log, LogError, OriginSummary};
pub use transport::{
    Channel, Extension, NetMember, P2P_NAMESPACE, Replication, StartExtension, TransportConfig,
    TransportError,
};
