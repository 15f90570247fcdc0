//! Devnet settings.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use alloy_primitives::{Address, B256, keccak256};
use cobuild_rpc::OrderflowLimits;

use crate::orderflow::OrderflowConfig;

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
    /// Orderflow-method calls per second allowed to one peer IP, on average.
    pub ip_rate: u32,
    /// Orderflow-method calls one peer IP may make in a burst.
    pub ip_burst: u32,
    /// Most orders (transactions plus bundles) the pools hold; when full, a more valuable order
    /// evicts the least valuable one.
    pub max_orders: usize,
    /// Secret key of the builder's coinbase (it pays refunds and the proposer).
    pub builder_key: B256,
    /// Share of a block's profit the builder bids, in percent (1..=100).
    pub bid_percent: u8,
    /// Port of the local relay's builder API on the RPC address (0: any free port).
    pub relay_port: u16,
    /// Most bids the builder submits per second.
    pub max_bids_per_second: u32,
}

impl DevnetConfig {
    /// The settings of the devnet's order intake.
    pub const fn orderflow(&self) -> OrderflowConfig {
        OrderflowConfig {
            http_addr: self.http_addr,
            limits: OrderflowLimits {
                sender_rate: self.bundle_rate,
                sender_burst: self.bundle_burst,
                ip_rate: self.ip_rate,
                ip_burst: self.ip_burst,
            },
            max_orders: self.max_orders,
        }
    }
}

/// The devnet builder's default coinbase key: fixed, so restarts keep the same coinbase.
pub fn default_builder_key() -> B256 {
    keccak256(b"cobuild devnet builder coinbase")
}
