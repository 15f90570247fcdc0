//! Devnet settings.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use alloy_primitives::Address;

/// Settings of a devnet node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevnetConfig {
    /// Where the chain database lives.
    pub data_dir: PathBuf,
    /// Address of the JSON-RPC server.
    pub http_addr: SocketAddr,
    /// Chain id.
    pub chain_id: u64,
    /// Time between blocks.
    pub slot: Duration,
    /// Gas limit of the genesis block, and the target of later blocks.
    pub gas_limit: u64,
    /// Beneficiary of the produced blocks.
    pub fee_recipient: Address,
    /// Deploy the demo tokens and pool in block 1 of a new chain.
    pub demo_contracts: bool,
    /// Bundle-method calls per second allowed to one sender, on average.
    pub bundle_rate: u32,
    /// Bundle-method calls one sender may make in a burst.
    pub bundle_burst: u32,
}
