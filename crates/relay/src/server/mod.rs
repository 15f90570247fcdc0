//! The devnet's relay and proposer: an HTTP server speaking the builder API, which keeps the
//! best valid bid of the open slot and hands it to the devnet at the slot's end.
//!
//! # Design
//! ```text
//!  devnet clock ── open_slot(SlotContext) ──▶ BidBoard (one open slot, its best bid)
//!                                                ▲ offer (only if still open, same parent)
//!  POST /relay/v1/builder/blocks ─▶ handlers ─▶ RelayServer::submit
//!      parse ─▶ slot, parent, proposer, allow-list, BLS signature, trace == payload
//!            ─▶ payload ─▶ block ─▶ BlockVerifier::verify (blocking pool, bounded)
//!            ─▶ honest value: last tx pays the proposer exactly `value`
//!  devnet clock ── take_best(slot) ──▶ WinningBid ──▶ Chain::commit(&bid.executed)
//! ```
//! Every check runs on every submission, so `200` always means "valid", and a bid the relay
//! answered `400` can never be returned by [`RelayServer::take_best`].
//!
//! The proposer also announces each slot it opens ([`RelayServer::announce`]) on the Beacon
//! API `payload_attributes` stream the relay serves, so builders in other processes know what
//! to build (see [`crate::events`]).
//!
//! Files: `config.rs` (settings), `state.rs` (the bid board), `validate.rs` (the checks and
//! their error), `handlers.rs` (HTTP), `events.rs` (the event stream), `service.rs` (the
//! handle that ties them together).

mod config;
mod events;
mod handlers;
mod service;
mod state;
mod validate;

pub use config::{Config, DEVNET_PROPOSER_SEED};
pub use service::{AcceptedBid, ReceivedBid, RelayServer, Stats, WinningBid};
pub use state::SlotContext;
pub use validate::SubmissionError;
