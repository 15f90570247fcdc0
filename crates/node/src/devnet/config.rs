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
    /// Per-sender and per-IP budgets of the orderflow methods.
    pub limits: OrderflowLimits,
    /// Most orders (transactions plus bundles) the pools hold; when full, a more valuable order
    /// evicts the least valuable one.
    pub max_orders: usize,
    /// How many blocks past the head a bundle may reach (and a bundle for any block stay).
    pub bundle_horizon: u64,
    /// Bounds on one `eth_getLogs` query.
    pub log_limits: cobuild_rpc::LogLimits,
    /// Blocks whose state queries at past blocks can read (`None`: every block).
    pub history_blocks: Option<u64>,
    /// How many blocks behind the head `eth_getProof` answers.
    pub proof_window: u64,
    /// Open a chain store that was rolled back since its last commit (logged as an error)
    /// instead of refusing to start.
    pub accept_chain_rollback: bool,
    /// Secret key of the builder's coinbase (it pays refunds and the proposer).
    pub builder_key: B256,
    /// Share of a block's profit the builder bids, in percent (1..=100).
    pub bid_percent: u8,
    /// Port of the local relay's builder API on the RPC address (0: any free port).
    pub relay_port: u16,
    /// Most bids the builder submits per second.
    pub max_bids_per_second: u32,
    /// More relays the builder bids to, beside the local one.
    pub extra_relays: Vec<cobuild_relay::client::Config>,
    /// Run the local relay in strict mode (mev-boost-relay's checks, order and messages).
    pub strict_relay: bool,
}

impl DevnetConfig {
    /// The settings of the devnet's order intake.
    pub const fn orderflow(&self) -> OrderflowConfig {
        OrderflowConfig {
            http_addr: self.http_addr,
            limits: self.limits,
            max_orders: self.max_orders,
            bundle_horizon: self.bundle_horizon,
            log_limits: self.log_limits,
            history_blocks: self.history_blocks,
            proof_window: self.proof_window,
        }
    }
}

/// The devnet builder's default coinbase key: fixed, so restarts keep the same coinbase.
pub fn default_builder_key() -> B256 {
    keccak256(b"cobuild devnet builder coinbase")
}
