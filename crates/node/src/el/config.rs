//! Settings of a node beside an execution client.

use std::time::Duration;

use alloy_primitives::Bytes;
use alloy_signer_local::PrivateKeySigner;
use cobuild_relay::{BuilderKey, client::Config as RelayConfig};

use crate::orderflow::OrderflowConfig;

/// Settings of a node that builds on an execution client's chain.
#[derive(Debug, Clone)]
pub struct ElNodeConfig {
    /// JSON-RPC URL of the execution client (`http(s)://`, `ws(s)://`, or an IPC socket's path).
    pub el_rpc: String,
    /// Base URLs of the Beacon APIs whose `payload_attributes` events announce the slots
    /// (consensus clients, or relays that serve the stream); merged, the first to announce a
    /// slot wins.
    pub beacons: Vec<String>,
    /// The relays bids go to; a slot is built for only when one of them lists a proposer
    /// registration for it.
    pub relays: Vec<RelayConfig>,
    /// Key of the coinbase of built blocks (pays the proposer).
    pub coinbase: PrivateKeySigner,
    /// The BLS key bids are signed with.
    pub bls: BuilderKey,
    /// The chain's genesis fork version, which makes the builder signing domain (`None`: the
    /// one the consensus client gives).
    pub genesis_fork_version: Option<[u8; 4]>,
    /// The node's order intake (RPC address, budgets, pool bound).
    pub orderflow: OrderflowConfig,
    /// Share of a block's profit bid to the proposer, in percent (1..=100).
    pub bid_percent: u8,
    /// Header extra data of the node's blocks.
    pub extra_data: Bytes,
    /// Least time between the starts of two build rounds of a slot.
    pub round_interval: Duration,
    /// How often the execution client's head is asked for between slot announcements, so the
    /// pools drop what a new block made stale without waiting for the next slot.
    pub head_poll: Duration,
}
