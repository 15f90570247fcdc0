//! The devnet relay's settings.

use alloy_primitives::Address;
use alloy_rpc_types_beacon::BlsPublicKey;
use cobuild_http::ServeConfig;

use crate::bid::{BuilderKey, DEVNET_GENESIS_FORK_VERSION};

/// Seed of the devnet proposer's BLS key ([`BuilderKey::from_seed`]).
pub const DEVNET_PROPOSER_SEED: &[u8] = b"cobuild devnet proposer";

/// What the devnet relay accepts and who it proposes for.
#[derive(Debug, Clone)]
pub struct Config {
    /// Genesis fork version of the chain; with a zero validators root it makes the builder
    /// signing domain.
    pub genesis_fork_version: [u8; 4],
    /// Builder public keys whose bids are accepted; every other key is refused.
    pub builders: Vec<BlsPublicKey>,
    /// The proposer's key: its public key is every slot's `proposer_pubkey`, and it signs the
    /// registrations the validators endpoint serves.
    pub proposer: BuilderKey,
    /// Where the proposer is paid; a bid's last transaction must pay exactly its value here.
    pub proposer_fee_recipient: Address,
    /// The gas limit the proposer registers (advice to builders; not enforced on bids).
    pub gas_limit: u64,
    /// Timestamp of the proposer's registration.
    pub registration_timestamp: u64,
    /// Largest submission body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Most blocks re-executed at once; further submissions wait for a turn.
    pub max_concurrent_validations: usize,
    /// Most `payload_attributes` streams open at once; one more is answered 503.
    pub max_subscribers: usize,
    /// Connections in all and per client IP, and the header and body deadlines.
    pub serve: ServeConfig,
    /// Check submissions as mev-boost-relay does, in its order and with its messages, and
    /// answer refusals as it does (`{code, message}`, no reason); off by default, when the
    /// relay checks in its own order and says why in a `reason` too.
    pub strict: bool,
}

impl Config {
    /// Devnet settings: the devnet fork version and proposer key, 32 MiB bodies, two
    /// re-executions at a time, 128 event subscribers (twice the most nodes a devnet runs), [`ServeConfig::default`].
    pub fn devnet(
        builders: Vec<BlsPublicKey>,
        proposer_fee_recipient: Address,
        gas_limit: u64,
    ) -> Self {
        Self {
            genesis_fork_version: DEVNET_GENESIS_FORK_VERSION,
            builders,
            proposer: BuilderKey::from_seed(DEVNET_PROPOSER_SEED),
            proposer_fee_recipient,
            gas_limit,
            registration_timestamp: 0,
            max_body_bytes: 32 << 20,
            max_concurrent_validations: 2,
            max_subscribers: 128,
            serve: ServeConfig::default(),
            strict: false,
        }
    }
}
