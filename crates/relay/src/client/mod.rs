//! The builder's side of the relay API: submit signed bids to `POST /relay/v1/builder/blocks`
//! and read proposer duties from `GET /relay/v1/builder/validators`, over plain HTTP.
//!
//! # Design
//! A bid leaves only if it is worth strictly more than the last one sent for the same
//! `(slot, parent hash)` and the per-second cap has room; otherwise [`RelayClient::submit`]
//! answers with a [`SubmitOutcome`] saying why it stayed home, without touching the network.
//! Both rules are checked and recorded in one step, so concurrent callers cannot overshoot.
//! A request that fails gives its value back (a later bid of the same value may go), but keeps
//! its place in the per-second window: the relay saw a request either way.
//!
//! Every reply that is not a success becomes a [`RelayError`] in one function,
//! [`RelayError::from_reply`]; every success status (an empty 200, `{}`, 202 for a bid below
//! the relay's floor) is a bid received.
//!
//! Every submission carries a sequence number ([`SEQUENCE_HEADER`]), increasing in the order
//! the bids were admitted, so a relay that honours it keeps the builder's newest block even
//! when an older request arrives after it.
//!
//! Each relay has its own client, with its own headers, encoding (JSON or SSZ, optionally
//! gzip-compressed), cap and maximum bid ([`Config`]); a builder bidding to many relays runs
//! one bidder per client.

mod config;
mod error;
mod gate;
mod relay;

pub use config::{Config, Encoding};
pub use error::RelayError;
pub use relay::{
    BLOCKS_PATH, ProposerDuty, RECEIVED_PATH, RelayClient, SEQUENCE_HEADER, SubmitOutcome,
    VALIDATORS_PATH,
};
