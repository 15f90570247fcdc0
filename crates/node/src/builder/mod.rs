//! The node's block builder: simulation and building rounds through each slot, publishing the
//! best block for the bidder.

mod announced;
mod bidder;
mod blocks;
mod config;
mod cutoff;
mod engine;
mod figures;
mod read_ahead;

pub(crate) use announced::{BuildSlot, build_announced};
pub use bidder::{BidCheck, BidError, Bidder};
pub use blocks::{RoundBlock, SlotBlocks};
pub use config::BuilderConfig;
pub use cutoff::cutoff;
pub use engine::{Bid, Builder, BuilderError, OrderSet, SlotJob, SlotRun};
pub use figures::{RoundTimes, SlotFigures};
pub use read_ahead::{MAX_READ_AHEAD, ReadAhead};

/// A bundle of `txs` for block 1, made the way `eth_sendBundle` makes one.
#[cfg(test)]
pub(crate) fn test_bundle(
    txs: &[alloy_consensus::transaction::Recovered<alloy_consensus::TxEnvelope>],
) -> cobuild_primitives::Bundle {
    use alloy_eips::Encodable2718;
    let request = alloy_rpc_types_mev::EthSendBundle {
        txs: txs
            .iter()
            .map(|t| alloy_primitives::Bytes::from(t.inner().encoded_2718()))
            .collect(),
        block_number: 1,
        ..Default::default()
    };
    match cobuild_primitives::BundleRequest::from_rpc(request).expect("valid bundle") {
        cobuild_primitives::BundleRequest::Send(bundle) => bundle,
        cobuild_primitives::BundleRequest::Cancel(_) => unreachable!("the bundle has transactions"),
    }
}
