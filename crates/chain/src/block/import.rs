//! Importing a block produced elsewhere: re-execute it and accept it only if every committed
//! field matches.

use std::sync::Arc;

use alloy_consensus::{Block, Header, Sealed, TxEnvelope};
use alloy_primitives::B256;
use cobuild_primitives::{ChainSpec, SenderCache};

use super::{
    BlockAttributes, BlockBuilder, BlockError, ExecutedBlock, TxRejected,
    prefix::{Prefix, Prefixes},
};
use crate::state::StateSnapshot;

/// Why a block was not imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The block does not extend the current head.
    #[error("parent {got} is not the head {expected}")]
    UnknownParent {
        /// The block's parent hash.
        got: B256,
        /// The head's hash.
        expected: B256,
    },
    /// A transaction signature does not recover.
    #[error("transaction {index}: bad signature")]
    BadSignature {
        /// Position in the block.
        index: usize,
    },
    /// A transaction could not be included.
    #[error("transaction {index}: {reason}")]
    InvalidTransaction {
        /// Position in the block.
        index: usize,
        /// Why it was rejected.
        reason: TxRejected,
    },
    /// The header commits to something re-execution did not produce.
    #[error("{field} mismatch: block has {got}, execution gives {expected}")]
    Mismatch {
        /// The header field.
        field: &'static str,
        /// Value in the imported block.
        got: String,
        /// Value re-execution computed.
        expected: String,
    },
    /// The block has uncles, which no post-merge block may have.
    #[error("block has ommers")]
    Ommers,
    /// Execution itself failed.
    #[error(transparent)]
    Block(#[from] BlockError),
}

/// Re-executes `block` on `parent`, whose post-state is `state`, and returns it if it is valid
/// (every header field matches): how a relay or a test checks a block built on an execution
/// client's state, where no chain store keeps the parent. Signers seen before come from the
/// process's [`SenderCache`].
pub fn reexecute_on(
    spec: Arc<ChainSpec>,
    parent: Arc<Sealed<Header>>,
    state: StateSnapshot,
    block: Block<TxEnvelope>,
) -> Result<ExecutedBlock, ImportError> {
    reexecute(spec, parent, state, SenderCache::global(), block, None)
}

/// Re-executes `block` on `parent` and returns it ready to store if it is valid; signers come
/// from `senders` where known. With `prefixes`, it goes on from the longest kept block it
/// begins with, and keeps itself up to its last transaction for the next.
pub(crate) fn reexecute(
    spec: Arc<ChainSpec>,
    parent: Arc<Sealed<Header>>,
    snapshot: StateSnapshot,
    senders: &SenderCache,
    block: Block<TxEnvelope>,
    prefixes: Option<&Prefixes>,
) -> Result<ExecutedBlock, ImportError> {
    let Block { header, body } = block;
    if header.parent_hash != parent.hash() {
        return Err(ImportError::UnknownParent {
            got: header.parent_hash,
            expected: parent.hash(),
        });
    }
    if !body.ommers.is_empty() {
        return Err(ImportError::Ommers);
    }
    let attrs = BlockAttributes {
        timestamp: header.timestamp,
        fee_recipient: header.beneficiary,
        prev_randao: header.mix_hash,
        gas_limit: header.gas_limit,
        withdrawals: body.withdrawals.map(|w| w.into_inner()).unwrap_or_default(),
        parent_beacon_block_root: header.parent_beacon_block_root.unwrap_or_default(),
        extra_data: header.extra_data.clone(),
    };
    let recovered = senders
        .recover_all(body.transactions)
        .map_err(|bad| ImportError::BadSignature { index: bad.0 })?;
    let hashes: Vec<B256> = recovered.iter().map(|tx| *tx.tx_hash()).collect();
    let parent_hash = parent.hash();
    let kept = prefixes.and_then(|p| p.take(parent_hash, &attrs, &hashes));
    let (mut builder, start, earlier) = match kept {
        Some(kept) => (kept.block.resume(), kept.hashes.len(), Some(kept.seal)),
        None => (
            BlockBuilder::new(spec, parent, snapshot, attrs.clone())?,
            0,
            None,
        ),
    };
    // With kept blocks to add to, the block is kept up to (not with) its last transaction:
    // a builder's next bid is this one with more orders and a new payment after them.
    let last = hashes.len().saturating_sub(1);
    let keep_at = prefixes.is_some().then_some(last);
    let mut before_last = None;
    for (index, recovered) in recovered.into_iter().enumerate().skip(start) {
        if Some(index) == keep_at {
            before_last = Some(builder.detach());
        }
        builder
            .execute(recovered)?
            .map_err(|reason| ImportError::InvalidTransaction { index, reason })?;
    }
    let Some(prefixes) = prefixes else {
        return check(&header, builder.finish()?);
    };
    let (executed, seal) = builder.finish_cached(earlier)?;
    // Kept before the header is checked: what the transactions left does not depend on what
    // the header claims, and a refused bid's corrected one begins with the same transactions.
    if let Some(block) = before_last {
        prefixes.keep(Prefix {
            parent: parent_hash,
            attrs,
            hashes: hashes[..last].to_vec(),
            block,
            seal,
        });
    }
    check(&header, executed)
}

/// `executed` if the header `header` commits to what it holds, field by field.
fn check(header: &Header, executed: ExecutedBlock) -> Result<ExecutedBlock, ImportError> {
    let ours = executed.header();
    let checks: [(&'static str, String, String); 12] = [
        (
            "state root",
            header.state_root.to_string(),
            ours.state_root.to_string(),
        ),
        (
            "receipts root",
            header.receipts_root.to_string(),
            ours.receipts_root.to_string(),
        ),
        (
            "transactions root",
            header.transactions_root.to_string(),
            ours.transactions_root.to_string(),
        ),
        (
            "withdrawals root",
            format!("{:?}", header.withdrawals_root),
            format!("{:?}", ours.withdrawals_root),
        ),
        (
            "gas used",
            header.gas_used.to_string(),
            ours.gas_used.to_string(),
        ),
        (
            "logs bloom",
            header.logs_bloom.to_string(),
            ours.logs_bloom.to_string(),
        ),
        (
            "base fee",
            format!("{:?}", header.base_fee_per_gas),
            format!("{:?}", ours.base_fee_per_gas),
        ),
        (
            "blob gas used",
            format!("{:?}", header.blob_gas_used),
            format!("{:?}", ours.blob_gas_used),
        ),
        (
            "excess blob gas",
            format!("{:?}", header.excess_blob_gas),
            format!("{:?}", ours.excess_blob_gas),
        ),
        (
            "requests hash",
            format!("{:?}", header.requests_hash),
            format!("{:?}", ours.requests_hash),
        ),
        (
            "ommers hash",
            header.ommers_hash.to_string(),
            ours.ommers_hash.to_string(),
        ),
        (
            "difficulty",
            header.difficulty.to_string(),
            ours.difficulty.to_string(),
        ),
    ];
    for (field, got, expected) in checks {
        if got != expected {
            return Err(ImportError::Mismatch {
                field,
                got,
                expected,
            });
        }
    }
    if executed.block.hash != header.hash_slow() {
        return Err(ImportError::Mismatch {
            field: "header",
            got: format!("{:?}", header),
            expected: format!("{:?}", ours),
        });
    }
    Ok(executed)
}
