//! The EVM environment of the block after a parent: one definition for building, importing
//! and simulating, so a simulation sees exactly the rules the block will be built under.

use alloy_consensus::Header;
use alloy_evm::EvmEnv;
use alloy_primitives::{Address, B256, U256};
use cobuild_primitives::ChainSpec;
use revm::{
    context::{BlockEnv, CfgEnv},
    context_interface::block::BlobExcessGasAndPrice,
    primitives::eip7825::TX_GAS_LIMIT_CAP,
};

/// What a block on `parent` may choose; everything else follows from the parent and the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextBlock {
    /// Block number (normally `parent.number + 1`).
    pub number: u64,
    /// Timestamp.
    pub timestamp: u64,
    /// Coinbase.
    pub beneficiary: Address,
    /// Gas limit.
    pub gas_limit: u64,
    /// Base fee (normally the parent's EIP-1559 successor).
    pub base_fee: u64,
    /// Randomness.
    pub prev_randao: B256,
}

/// The EVM configuration and block environment for `next` on `parent`.
pub fn next_evm_env(spec: &ChainSpec, parent: &Header, next: NextBlock) -> EvmEnv {
    let blob_params = spec.blob_params();
    let excess_blob_gas = parent
        .next_block_excess_blob_gas(blob_params)
        .unwrap_or_default();
    let mut cfg = CfgEnv::new_with_spec(spec.spec_id()).with_chain_id(spec.chain_id());
    cfg.set_max_blobs_per_tx(blob_params.max_blobs_per_tx);
    cfg.tx_gas_limit_cap = Some(TX_GAS_LIMIT_CAP);
    let block = BlockEnv {
        number: U256::from(next.number),
        beneficiary: next.beneficiary,
        timestamp: U256::from(next.timestamp),
        gas_limit: next.gas_limit,
        basefee: next.base_fee,
        difficulty: U256::ZERO,
        prevrandao: Some(next.prev_randao),
        blob_excess_gas_and_price: Some(BlobExcessGasAndPrice {
            excess_blob_gas,
            blob_gasprice: blob_params.calc_blob_fee(excess_blob_gas),
        }),
        slot_num: 0,
    };
    EvmEnv::new(cfg, block)
}
