//! The slot ledger: once a slot, the members agree by BFT consensus (commonware's simplex,
//! ed25519 votes) on a record of what the network held and which block won.
//!
//! # Design
//! ```text
//!  chain imports block s ──▶ each member signs its cut of s (per origin, the contiguous
//!                            prefix of envelopes it holds) ──▶ every member
//!  leader of a view ──▶ record s+1 = block facts + ≥ 2f+1 cuts + agreed cut + prev digest
//!                   ──▶ every member checks it against its own chain and the cuts ──▶ votes
//!  finalization ──▶ store (record + certificate), the records between filled in by prev link
//!  a member behind ──▶ fetches final records, checks certificates and links, appends
//! ```
//! The agreed cut takes, per origin, the (f+1)-th highest prefix among the record's cuts, so at
//! least one honest member holds every envelope it covers. Consensus runs beside the bid path:
//! nothing in building or bidding waits for it.

mod application;
mod config;
pub mod engine;
mod epoch;
mod record;
mod store;
mod verify;
pub mod wire;

pub use application::{Local, Mailbox};
pub use config::{Config, VOTE_NAMESPACE};
pub use engine::{Channels, Ledger, StartError, start};
pub use epoch::{Epoch, MemberKey, Membership, MembershipError};
pub use record::{
    BlockRef, CUT_NAMESPACE, Cut, MemberId, Prefix, REFUND_LAG, RecordError, RefundCommitment,
    SignedCut, SlotFacts, SlotRecord, Winner, agreed_cut, bridge_digest, check_structure,
    genesis_digest, max_faults, quorum, refunds_slot, to_b256,
};
pub use store::{Entry, Store, StoreError};
pub use verify::{VerifyError, certificate, member_keys, verifier, verify_run};

/// The vote and certificate scheme: ed25519, so every vote is attributable.
pub type Scheme = commonware_consensus::simplex::scheme::ed25519::Scheme;
/// Record digests.
pub type Digest = commonware_cryptography::sha256::Digest;
/// A record's finalization certificate.
pub type Finalization = commonware_consensus::simplex::types::Finalization<Scheme, Digest>;
