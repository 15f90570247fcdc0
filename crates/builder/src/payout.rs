//! Transactions the builder itself signs from its coinbase: in-block refunds to orderflow
//! senders and the final payment to the proposer, whose value is the bid.

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope, transaction::Recovered};
use alloy_primitives::{Address, Bytes, TxKind, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;

use crate::BuildError;

/// Gas of a plain value transfer to an account without code.
pub const TRANSFER_GAS: u64 = 21_000;
/// Gas allowed for a payment to an account with code (a smart-contract fee recipient).
pub const CONTRACT_PAYMENT_GAS: u64 = 100_000;

/// Signs a value transfer from the coinbase that pays exactly the base fee (no tip, since the tip
/// would only return to the coinbase).
pub(crate) fn transfer(
    signer: &PrivateKeySigner,
    chain_id: u64,
    nonce: u64,
    base_fee: u64,
    gas_limit: u64,
    to: Address,
    value: U256,
) -> Result<Recovered<TxEnvelope>, BuildError> {
    let tx = TxEip1559 {
        chain_id,
        nonce,
        gas_limit,
        max_fee_per_gas: u128::from(base_fee),
        max_priority_fee_per_gas: 0,
        to: TxKind::Call(to),
        value,
        access_list: Default::default(),
        input: Bytes::new(),
    };
    let signature = signer
        .sign_hash_sync(&tx.signature_hash())
        .map_err(|e| BuildError::Payout(format!("signing: {e}")))?;
    Ok(Recovered::new_unchecked(
        tx.into_signed(signature).into(),
        signer.address(),
    ))
}
