//! The payload attributes stream: the devnet proposer announces every slot it opens as a Beacon
//! API `payload_attributes` event, and builders in other processes build exactly the block the
//! relay will accept.
//!
//! # Design
//! ```text
//!  proposer ── RelayServer::announce(event, bids_until) ──▶ watch (latest slot only)
//!                                                             │
//!  GET /eth/v1/events?topics=payload_attributes ◀── SSE ──────┘ (the current slot first,
//!      │                                                          then each new one)
//!      ▼
//!  subscribe(): hyper stream ─▶ sse::Parser ─▶ SlotEvent ─▶ watch ─▶ the builder's slot loop
//!               (reconnects with backoff; a silent stream is dropped after a timeout)
//! ```
//! The event is the standard one (`alloy_rpc_types_beacon::events::PayloadAttributesEvent`,
//! the proposer's gas limit target in `target_gas_limit`), plus one field real beacon nodes do
//! not send: `bid_window_ms`, how long from this message the relay still takes bids for the
//! slot. The devnet's slots are shorter than a second and its timestamps do not follow the
//! wall clock, so the block timestamp cannot tell a builder when to stop; without the field
//! (a real beacon node) a builder stops at the block's timestamp, when mainnet proposers ask
//! for bids. A relative time needs no clock agreement between machines.
//!
//! Only the newest slot matters to a builder, so both ends keep a `watch`: a slow reader skips
//! to the current slot instead of working through stale ones. A builder beside several sources
//! (beacon nodes, relays) merges their streams ([`subscribe_all`]): each slot is passed on the
//! first time any source announces it. A beacon node also gives the chain's slot clock
//! ([`fetch_slot_clock`]), which says when a slot starts and what timestamp its block carries.

mod beacon;
mod clock;
mod event;
mod merge;
mod sse;
mod subscribe;

pub use beacon::{
    BeaconError, BeaconGenesis, GENESIS_PATH, SPEC_PATH, fetch_genesis, fetch_slot_clock,
};
pub use clock::SlotClock;
pub use event::{EVENTS_PATH, FORK_VERSION, PAYLOAD_ATTRIBUTES_TOPIC, SlotEvent, payload_event};
pub use merge::subscribe_all;
pub use subscribe::{ReceivedSlot, SubscribeConfig, SubscribeError, subscribe};
