//! The node's block builder: simulation and building rounds through each slot, publishing the
//! best block for the bidder.

mod announced;
mod bidder;
mod blocks;
mod config;
mod cutoff;
mod engine;
mod read_ahead;

pub(crate) use announced::{BuildSlot, build_announced};
pub use bidder::{BidCheck, BidError, Bidder};
pub use blocks::SlotBlocks;
pub use config::BuilderConfig;
pub use cutoff::cutoff;
pub use engine::{Bid, Builder, BuilderError, OrderSet, SlotJob};
pub use read_ahead::{MAX_READ_AHEAD, ReadAhead};
