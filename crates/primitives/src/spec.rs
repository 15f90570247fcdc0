//! The devnet's chain specification.

use alloy_eips::{eip1559::BaseFeeParams, eip7840::BlobParams};
use alloy_evm::eth::spec::EthExecutorSpec;
use alloy_hardforks::{EthereumChainHardforks, EthereumHardfork, EthereumHardforks, ForkCondition};
use alloy_primitives::{Address, U256};
use revm::primitives::hardfork::SpecId;

/// Chain id of the devnet, the same as anvil's default so signed transactions are valid on both.
pub const DEVNET_CHAIN_ID: u64 = 31337;

/// Default block gas limit (mainnet's since 2025).
pub const DEFAULT_GAS_LIMIT: u64 = 60_000_000;

/// Base fee of the genesis block (EIP-1559's initial base fee, anvil's default).
pub const INITIAL_BASE_FEE: u64 = 1_000_000_000;

/// Which rules a chain runs under.
///
/// Every fork up to and including Osaka is active from genesis. Osaka is the newest fork revm
/// ships as stable (`SpecId::default()`); Amsterdam is still under development there, has no
/// builder-API payload type and cannot be cross-checked against anvil.
#[derive(Debug, Clone)]
pub struct ChainSpec {
    chain_id: u64,
    hardforks: EthereumChainHardforks,
}

impl ChainSpec {
    /// The devnet rules for `chain_id`: all forks through Osaka active at genesis.
    pub fn devnet(chain_id: u64) -> Self {
        let paris = ForkCondition::TTD {
            activation_block_number: 0,
            fork_block: Some(0),
            total_difficulty: U256::ZERO,
        };
        let forks = [
            (EthereumHardfork::Frontier, ForkCondition::ZERO_BLOCK),
            (EthereumHardfork::Homestead, ForkCondition::ZERO_BLOCK),
            (EthereumHardfork::Tangerine, ForkCondition::ZERO_BLOCK),
            (EthereumHardfork::SpuriousDragon, ForkCondition::ZERO_BLOCK),
            (EthereumHardfork::Byzantium, ForkCondition::ZERO_BLOCK),
            (EthereumHardfork::Constantinople, ForkCondition::ZERO_BLOCK),
            (EthereumHardfork::Petersburg, ForkCondition::ZERO_BLOCK),
            (EthereumHardfork::Istanbul, ForkCondition::ZERO_BLOCK),
            (EthereumHardfork::MuirGlacier, ForkCondition::ZERO_BLOCK),
            (EthereumHardfork::Berlin, ForkCondition::ZERO_BLOCK),
            (EthereumHardfork::London, ForkCondition::ZERO_BLOCK),
            (EthereumHardfork::Paris, paris),
            (EthereumHardfork::Shanghai, ForkCondition::ZERO_TIMESTAMP),
            (EthereumHardfork::Cancun, ForkCondition::ZERO_TIMESTAMP),
            (EthereumHardfork::Prague, ForkCondition::ZERO_TIMESTAMP),
            (EthereumHardfork::Osaka, ForkCondition::ZERO_TIMESTAMP),
        ];
        Self {
            chain_id,
            hardforks: EthereumChainHardforks::new(forks),
        }
    }

    /// The chain id transactions must be signed for.
    pub const fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The EVM rule set blocks execute under.
    pub const fn spec_id(&self) -> SpecId {
        SpecId::OSAKA
    }

    /// Blob limits and fee parameters.
    pub const fn blob_params(&self) -> BlobParams {
        BlobParams::osaka()
    }

    /// EIP-1559 base fee update parameters.
    pub const fn base_fee_params(&self) -> BaseFeeParams {
        BaseFeeParams::ethereum()
    }
}

impl EthereumHardforks for ChainSpec {
    fn ethereum_fork_activation(&self, fork: EthereumHardfork) -> ForkCondition {
        self.hardforks.ethereum_fork_activation(fork)
    }
}

impl EthExecutorSpec for ChainSpec {
    fn deposit_contract_address(&self) -> Option<Address> {
        // The devnet has no beacon deposit contract, so there are no EIP-6110 deposit requests.
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_devnet_runs_osaka_from_genesis() {
        let spec = ChainSpec::devnet(DEVNET_CHAIN_ID);
        assert!(spec.is_osaka_active_at_timestamp(0));
        assert!(spec.is_paris_active_at_block(0));
        assert!(!spec.is_amsterdam_active_at_timestamp(u64::MAX));
        assert_eq!(
            alloy_evm::spec_by_timestamp_and_block_number(&spec, 1, 1),
            spec.spec_id()
        );
    }
}
