//! A node's builder and the bidder that sends its best blocks to a relay: the part of a node
//! that competes for blocks, set up the same way in the single-process devnet and in a member
//! node.

use std::{num::NonZeroU32, sync::Arc, time::Duration};

use alloy_primitives::B256;
use alloy_signer_local::PrivateKeySigner;
use cobuild_primitives::ChainSpec;
use cobuild_relay::{
    BuilderKey, RelayClient,
    client::{Config as RelayConfig, RelayError},
};

use crate::{
    builder::{BidCheck, Bidder, Builder, BuilderConfig, BuilderError},
    orderflow::Orderflow,
};

/// Who builds and where its bids go.
#[derive(Debug, Clone)]
pub struct BiddingConfig {
    /// Key of the coinbase of built blocks (pays refunds and the proposer).
    pub coinbase: PrivateKeySigner,
    /// The BLS key bids are signed with.
    pub bls: BuilderKey,
    /// Base URL of the relay's builder API.
    pub relay_url: String,
    /// The builder signing domain of the relay's chain.
    pub domain: B256,
    /// Share of a block's profit bid to the proposer, in percent (1..=100).
    pub bid_percent: u8,
    /// Most bids submitted per second to that relay.
    pub max_bids_per_second: u32,
    /// More relays the same bids go to, each with its own settings (headers, encoding, cap,
    /// maximum bid).
    pub extra_relays: Vec<RelayConfig>,
    /// Least time between the starts of two build rounds of a slot.
    pub round_interval: Duration,
}

/// The builder or its relay client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BiddingError {
    /// The builder could not start.
    #[error(transparent)]
    Builder(#[from] BuilderError),
    /// The relay client could not be set up.
    #[error("relay client: {0}")]
    RelayClient(#[from] RelayError),
}

/// Starts a builder for a chain under `spec` over `orderflow`'s pools, and a bidder task per relay
/// submitting its best block of each slot (checked by `check` first for optimistic relays).
/// Slots are run by the caller ([`Builder::run_slot`]).
pub fn start_bidding(
    spec: Arc<ChainSpec>,
    orderflow: &Orderflow,
    config: BiddingConfig,
    check: Arc<dyn BidCheck>,
) -> Result<Builder, BiddingError> {
    let builder = Builder::new(
        spec,
        orderflow.pool.clone(),
        orderflow.bundles.clone(),
        &orderflow.limit,
        BuilderConfig {
            coinbase: config.coinbase,
            bid_percent: config.bid_percent,
            sim_threads: 2,
            round_interval: config.round_interval,
        },
    )?;
    let main = RelayConfig {
        max_submissions_per_second: NonZeroU32::new(config.max_bids_per_second)
            .unwrap_or(NonZeroU32::MIN),
        ..RelayConfig::new(config.relay_url)
    };
    let clients = std::iter::once(main)
        .chain(config.extra_relays)
        .map(RelayClient::new)
        .collect::<Result<Vec<_>, _>>()?;
    spawn_bidders(&builder, clients, &config.bls, config.domain, &check);
    Ok(builder)
}

/// Starts a bidder task per relay client, each submitting `builder`'s best block of each slot
/// signed with `bls` over `domain`, and checked by `check` first where the relay is optimistic.
/// One bidder per relay: each has its own gate, proposer duties and pace, so a slow or refusing
/// relay holds up no other.
pub(crate) fn spawn_bidders(
    builder: &Builder,
    clients: Vec<RelayClient>,
    bls: &BuilderKey,
    domain: B256,
    check: &Arc<dyn BidCheck>,
) {
    for client in clients {
        let bidder = Bidder::new(client, bls.clone(), domain, check.clone());
        tokio::spawn(bidder.run(builder.subscribe()));
    }
}
