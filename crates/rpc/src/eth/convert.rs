//! Stored blocks, transactions and receipts in their JSON-RPC shapes.

use alloy_consensus::{
    Sealed, Transaction as _, TxEnvelope,
    transaction::{Recovered, TransactionInfo},
};
use alloy_eips::Encodable2718;
use alloy_primitives::{B256, TxKind, U256};
use alloy_rlp::Encodable;
use alloy_rpc_types_eth::{Block, BlockTransactions, Header, Log, Transaction, TransactionReceipt};
use cobuild_chain::StoredBlock;

/// A block, with full transactions or their hashes.
pub(super) fn block(stored: StoredBlock, full: bool) -> Block {
    let size = U256::from(stored.block.length());
    let transactions = if full {
        BlockTransactions::Full(block_transactions(&stored))
    } else {
        BlockTransactions::Hashes(
            stored
                .block
                .body
                .transactions
                .iter()
                .map(|t| t.trie_hash())
                .collect(),
        )
    };
    let withdrawals = stored.block.body.withdrawals.clone();
    let header = Header::from_consensus(
        Sealed::new_unchecked(stored.block.header, stored.hash),
        None,
        Some(size),
    );
    Block {
        header,
        uncles: Vec::new(),
        transactions,
        withdrawals,
    }
}

/// A block's transactions with their inclusion info.
pub(super) fn block_transactions(stored: &StoredBlock) -> Vec<Transaction> {
    let header = &stored.block.header;
    stored
        .block
        .body
        .transactions
        .iter()
        .zip(&stored.senders)
        .enumerate()
        .map(|(index, (tx, sender))| {
            let info = TransactionInfo {
                hash: Some(tx.trie_hash()),
                index: Some(index as u64),
                block_hash: Some(stored.hash),
                block_number: Some(header.number),
                base_fee: header.base_fee_per_gas,
                block_timestamp: Some(header.timestamp),
            };
            Transaction::from_transaction(Recovered::new_unchecked(tx.clone(), *sender), info)
        })
        .collect()
}

/// A transaction still in the pool.
pub(super) fn pending_transaction(tx: Recovered<TxEnvelope>) -> Transaction {
    let info = TransactionInfo {
        hash: Some(*tx.tx_hash()),
        ..Default::default()
    };
    Transaction::from_transaction(tx, info)
}

/// The receipts of a block with their inclusion info, log indexes and per-transaction gas.
pub(super) fn receipts(
    stored: &StoredBlock,
    receipts: Vec<alloy_consensus::ReceiptEnvelope>,
) -> Vec<TransactionReceipt> {
    let header = &stored.block.header;
    let mut log_index = 0u64;
    let mut last_cumulative = 0u64;
    receipts
        .into_iter()
        .zip(stored.block.body.transactions.iter().zip(&stored.senders))
        .enumerate()
        .map(|(index, (receipt, (tx, sender)))| {
            let hash = tx.trie_hash();
            let cumulative = receipt.cumulative_gas_used();
            let gas_used = cumulative - last_cumulative;
            last_cumulative = cumulative;
            let inner = receipt.map_logs(|log| {
                let log = included_log(stored, index, hash, log_index, log);
                log_index += 1;
                log
            });
            let contract_address = match tx.kind() {
                TxKind::Create => Some(sender.create(tx.nonce())),
                TxKind::Call(_) => None,
            };
            TransactionReceipt {
                inner,
                transaction_hash: hash,
                transaction_index: Some(index as u64),
                block_hash: Some(stored.hash),
                block_number: Some(header.number),
                gas_used,
                effective_gas_price: tx.effective_gas_price(header.base_fee_per_gas),
                blob_gas_used: None,
                blob_gas_price: None,
                from: *sender,
                to: tx.to(),
                contract_address,
            }
        })
        .collect()
}

/// A log with where it was included: the block, the transaction, and its index in the block.
fn included_log(
    stored: &StoredBlock,
    transaction_index: usize,
    transaction_hash: B256,
    log_index: u64,
    inner: alloy_primitives::Log,
) -> Log {
    let header = &stored.block.header;
    Log {
        inner,
        block_hash: Some(stored.hash),
        block_number: Some(header.number),
        block_timestamp: Some(header.timestamp),
        transaction_hash: Some(transaction_hash),
        transaction_index: Some(transaction_index as u64),
        log_index: Some(log_index),
        removed: false,
    }
}

/// Every log of a block, in order, with where it was included.
pub(super) fn block_logs<'a>(
    stored: &'a StoredBlock,
    receipts: &'a [alloy_consensus::ReceiptEnvelope],
) -> impl Iterator<Item = Log> + 'a {
    receipts
        .iter()
        .zip(&stored.block.body.transactions)
        .enumerate()
        .flat_map(|(index, (receipt, tx))| {
            let hash = tx.trie_hash();
            receipt.logs().iter().map(move |log| (index, hash, log))
        })
        .enumerate()
        .map(|(log_index, (index, hash, log))| {
            included_log(stored, index, hash, log_index as u64, log.clone())
        })
}
