//! A member as every registry source describes it.

use alloy_primitives::{B256, Bytes};
use serde::{Deserialize, Serialize};

/// A member's id: its index in the registry, stable for its lifetime.
pub type MemberId = u32;

/// One builder node of the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Stable id.
    pub id: MemberId,
    /// Where its P2P transport listens (`host:port`).
    pub address: String,
    /// Its ed25519 node public key (32 bytes): authenticates the transport and signs envelopes.
    pub node_key: B256,
    /// Its BLS builder public key (48 bytes, compressed): signs its bids.
    pub bls_key: Bytes,
    /// Expected TEE measurement, when the member runs attested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<B256>,
}
