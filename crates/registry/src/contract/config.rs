//! Where the registry contract is and how often it is read.

use std::time::Duration;

use alloy_primitives::Address;

/// How a [`ContractRegistry`](super::ContractRegistry) follows the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractConfig {
    /// JSON-RPC endpoint of any EL that has the contract (`http://host:port`; plain HTTP only).
    pub rpc_url: String,
    /// Address of the deployed `Registry.sol`.
    pub address: Address,
    /// Time between two reads of `members()`.
    pub refresh_interval: Duration,
    /// Longest a single JSON-RPC request may take before it counts as failed.
    pub request_timeout: Duration,
}

impl ContractConfig {
    /// Default time between reads: a third of a mainnet slot, so a change is seen within about
    /// one block of being mined.
    pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(4);
    /// Default request timeout.
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

    /// Follows the contract at `address` through `rpc_url` with the default intervals.
    pub fn new(rpc_url: impl Into<String>, address: Address) -> Self {
        Self {
            rpc_url: rpc_url.into(),
            address,
            refresh_interval: Self::DEFAULT_REFRESH_INTERVAL,
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
        }
    }
}
