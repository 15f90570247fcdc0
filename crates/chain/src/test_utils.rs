//! Helpers for the tests of crates built on the chain (feature `test-utils`): a devnet chain in
//! a folder, signed transactions from the development accounts, next-block attributes.

use std::{path::Path, sync::Arc};

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope, transaction::Recovered};
use alloy_primitives::{Address, B256, Bytes, TxKind, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use cobuild_primitives::{ChainSpec, DEFAULT_GAS_LIMIT, DEVNET_CHAIN_ID, INITIAL_BASE_FEE};

use crate::{BlockAttributes, Chain, Genesis};

/// One ether in wei.
pub const ETHER: u128 = 1_000_000_000_000_000_000;
/// One gwei in wei.
pub const GWEI: u128 = 1_000_000_000;

/// Opens (or creates) the standard devnet chain in `dir`.
///
/// # Panics
/// If the chain cannot be opened.
pub fn devnet_chain(dir: &Path) -> Chain {
    Chain::open(
        &dir.join("chain.redb"),
        Arc::new(ChainSpec::devnet(DEVNET_CHAIN_ID)),
        &Genesis::devnet(DEFAULT_GAS_LIMIT, INITIAL_BASE_FEE),
    )
    .expect("devnet chain opens")
}

/// An EIP-1559 transaction on the devnet: `value` wei to `to` with `data`, a 100 gwei fee cap
/// and `tip` wei of priority fee per gas.
pub fn tx(
    nonce: u64,
    to: TxKind,
    value: U256,
    data: Bytes,
    gas_limit: u64,
    tip: u128,
) -> TxEip1559 {
    TxEip1559 {
        chain_id: DEVNET_CHAIN_ID,
        nonce,
        gas_limit,
        max_fee_per_gas: 100 * GWEI,
        max_priority_fee_per_gas: tip,
        to,
        value,
        access_list: Default::default(),
        input: data,
    }
}

/// A plain transfer of `value` wei to `to` with a priority fee of `tip` wei per gas.
pub fn transfer(nonce: u64, to: Address, value: u128, tip: u128) -> TxEip1559 {
    tx(
        nonce,
        TxKind::Call(to),
        U256::from(value),
        Bytes::new(),
        21_000,
        tip,
    )
}

/// Signs `tx` with `signer`.
///
/// # Panics
/// If signing fails (it cannot with a local key).
pub fn sign(signer: &PrivateKeySigner, tx: TxEip1559) -> Recovered<TxEnvelope> {
    let signature = signer
        .sign_hash_sync(&tx.signature_hash())
        .expect("local keys sign");
    Recovered::new_unchecked(tx.into_signed(signature).into(), signer.address())
}

/// `who`'s balance in the head state (zero for an account that does not exist).
///
/// # Panics
/// If the state cannot be read.
pub fn balance(chain: &Chain, who: Address) -> U256 {
    use revm::database_interface::DatabaseRef as _;
    let (_, state) = chain.head_state().expect("head state");
    state
        .basic_ref(who)
        .expect("state reads")
        .map(|a| a.balance)
        .unwrap_or_default()
}

/// Attributes of the block after the head, paying `fee_recipient`.
pub fn next_attrs(chain: &Chain, fee_recipient: Address) -> BlockAttributes {
    let head = chain.head();
    BlockAttributes {
        timestamp: head.timestamp + 2,
        fee_recipient,
        prev_randao: B256::repeat_byte(0x42),
        gas_limit: head.gas_limit,
        withdrawals: Vec::new(),
        parent_beacon_block_root: B256::repeat_byte(0x01),
        extra_data: Bytes::from_static(b"cobuild test"),
    }
}
