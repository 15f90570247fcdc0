//! Bids over the MEV-Boost builder API: BLS-signed block submissions, a rate-limited relay client, and the devnet's local relay and proposer.
//!
//! # Design
//! ```text
//!  builder side                                   devnet side (one process per devnet)
//!  ────────────                                   ────────────────────────────────────
//!  ExecutedBlock (last tx pays the proposer)      server::RelayServer::open_slot(SlotContext)
//!      │ bid::build_submission                        │
//!      ▼                                              ▼
//!  SubmitBlockRequest (Fulu: payload V3, ──POST──▶ /relay/v1/builder/blocks
//!   empty blobs, requests, BLS signature)             │ signature, allow-list, slot, parent,
//!      │ client::RelayClient::submit                  │ payload ─▶ block ─▶ BlockVerifier (blocking)
//!      │  (only if the value improved on the          │ honest value: last tx pays exactly `value`
//!      │   last bid for (slot, parent), and           ▼
//!      │   under the per-second cap)              best bid per slot ──take_best(slot)──▶ Chain::commit
//!  client::RelayClient::proposer_duties ◀──GET── /relay/v1/builder/validators
//!  events::subscribe ◀──SSE── /eth/v1/events      ◀── RelayServer::announce (each slot)
//! ```
//! The BLS signature is over the SSZ `hash_tree_root` of the [`BidTrace`] with the builder domain
//! (`DOMAIN_APPLICATION_BUILDER`, the genesis fork version and a zero validators root), exactly
//! as the builder specs define it, so a submission built here is one a real relay accepts.
//!
//! Relay replies that are not a success become a [`client::RelayError`] in one boundary
//! function; the devnet relay answers every invalid submission with `400 {code, message}`.
//!
//! # Example
//! ```
//! use cobuild_relay::bid::{BuilderKey, DEVNET_GENESIS_FORK_VERSION, builder_domain, sign_bid, verify_bid};
//! use cobuild_relay::BidTrace;
//!
//! let key = BuilderKey::from_seed(b"cobuild devnet builder 0");
//! let domain = builder_domain(DEVNET_GENESIS_FORK_VERSION);
//! let bid = BidTrace { slot: 1, builder_pubkey: key.public_key(), ..Default::default() };
//! let signature = sign_bid(&key, &bid, domain);
//! assert!(verify_bid(&bid, &signature, domain).is_ok());
//! ```

pub mod bid;
pub mod client;
pub mod events;
mod reply;
pub mod server;

use std::time::Instant;

use alloy_consensus::{Block, TxEnvelope};
use cobuild_chain::{BlockError, Chain, ChainError, ExecutedBlock, ImportError};

pub use alloy_rpc_types_beacon::{
    BlsPublicKey, BlsSignature,
    relay::{BidTrace, SignedBidSubmissionV5, SubmitBlockRequest, Validator},
};
pub use bid::BuilderKey;
pub use client::RelayClient;
pub use reply::{ErrorReply, RejectReason};
pub use server::RelayServer;

/// Re-executes a submitted block on the relay's view of the chain.
///
/// The relay calls [`BlockVerifier::verify`] on a blocking thread, never on the async runtime,
/// and only after the signature and slot checks passed.
pub trait BlockVerifier: Send + Sync + 'static {
    /// Why a block was not verified.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Re-executes `block` on the current head without storing it. `Ok` promises that the
    /// block is valid on that head and that the returned block can be committed while the head
    /// has not moved.
    fn verify(&self, block: Block<TxEnvelope>) -> Result<ExecutedBlock, Self::Error>;

    /// Whether `error` is the block's fault (the relay answers 400) rather than the verifier's
    /// own (a failed disk read: the relay answers 500). Defaults to the block's fault.
    fn is_invalid_block(error: &Self::Error) -> bool {
        let _ = error;
        true
    }
}

impl BlockVerifier for Chain {
    type Error = ChainError;

    fn verify(&self, block: Block<TxEnvelope>) -> Result<ExecutedBlock, ChainError> {
        self.reexecute_bid(block)
    }

    fn is_invalid_block(error: &ChainError) -> bool {
        !matches!(
            error,
            ChainError::Store(_)
                | ChainError::Block(BlockError::Store(_) | BlockError::State(_))
                | ChainError::Import(ImportError::Block(
                    BlockError::Store(_) | BlockError::State(_)
                ))
        )
    }
}

/// The time source of the client's per-second cap; tests inject a clock they move by hand.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// The current instant. Must never go backwards.
    fn now(&self) -> Instant;
}

/// The real monotonic clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A wei amount as a tracing field: a number (saturated at `u128::MAX`, far above any real
/// bid) instead of a string.
pub(crate) fn wei(value: alloy_primitives::U256) -> u128 {
    u128::try_from(value).unwrap_or(u128::MAX)
}
