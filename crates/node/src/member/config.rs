//! Member node settings.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use cobuild_registry::MemberId;

use crate::orderflow::OrderflowConfig;

/// Settings of a member node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberConfig {
    /// The node's own directory: its chain replica lives here.
    pub data_dir: PathBuf,
    /// The node's key file (node, BLS builder and coinbase keys).
    pub key_file: PathBuf,
    /// Where the members are listed.
    pub registry: RegistrySource,
    /// This node's member id; `None`: the member whose node key is the key file's.
    pub member_id: Option<MemberId>,
    /// Where the P2P transport listens; `None`: the address the registry lists for the member.
    pub p2p_addr: Option<SocketAddr>,
    /// JSON-RPC URL of the hub whose chain the node follows (`http://host:port`).
    pub hub_rpc: String,
    /// Base URL of the hub's relay: the builder API and the `payload_attributes` stream.
    pub relay_url: String,
    /// The node's order intake (RPC address, budgets, pool bound).
    pub orderflow: OrderflowConfig,
    /// Share of a block's profit bid to the proposer, in percent (1..=100).
    pub bid_percent: u8,
    /// Most bids submitted per second (to the hub's relay).
    pub max_bids_per_second: u32,
    /// More relays the node bids to, beside the hub's.
    pub extra_relays: Vec<cobuild_relay::client::Config>,
    /// How often the node asks the hub for its head besides the slot announcements.
    pub poll_interval: Duration,
    /// How long starting waits for the hub to answer, and each later hub request may take.
    pub hub_timeout: Duration,
    /// Where the admin API listens (port 0: any free port); its bearer token is written to
    /// `admin.token` in the data directory.
    pub admin_addr: SocketAddr,
    /// How long starting waits to hear from every other member (to learn where this member's
    /// own order numbering stands) before it settles for a quorum, or fails without one.
    pub recovery_timeout: Duration,
    /// Open a chain replica that was rolled back since its last commit (logged as an error)
    /// instead of refusing to start.
    pub accept_chain_rollback: bool,
    /// Slots an order stays in the live order log after a final ledger record covers it; then
    /// it moves to the archive, and a restart no longer reads it back into the pools.
    pub log_retention_slots: u64,
    /// The refunds this member owes are paid whenever its refund book has processed a multiple
    /// of this many slots.
    pub refund_batch_slots: u64,
    /// The members who founded the network's ledger, for a node whose ledger is new while the
    /// network's has moved past its first epoch (`None`: the registry's members found it).
    pub ledger_founders: Option<cobuild_consensus::Membership>,
}

/// Where a node reads the member list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrySource {
    /// A TOML registry file (re-read when it changes).
    File(PathBuf),
    /// The registry contract at `address`, read over `rpc_url` (re-read every few seconds).
    Contract {
        /// JSON-RPC URL of a node of the chain the contract is on.
        rpc_url: String,
        /// The contract.
        address: alloy_primitives::Address,
    },
}

impl std::fmt::Display for RegistrySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Contract { rpc_url, address } => write!(f, "contract {address} on {rpc_url}"),
        }
    }
}
