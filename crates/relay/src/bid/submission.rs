//! The relay submission of an executed block, and back: the chain runs Osaka, so a bid is a
//! Fulu `SignedBidSubmissionV5` (an `ExecutionPayloadV3`, a `BlobsBundleV2`, Electra execution
//! requests); the parent beacon block root travels outside the payload, as in the engine API.
//!
//! A bid's value is the proposer payment the block itself makes (invariant "honest value"):
//! [`proposer_payment`] is the one reading of that payment, used by the builder to set the value
//! and by the relay to check it.

use alloy_consensus::{Block, Transaction, TxEnvelope};
use alloy_eips::eip7685::{EMPTY_REQUESTS_HASH, Requests};
use alloy_primitives::{Address, B256, TxKind, U256};
use alloy_rpc_types_beacon::{
    BlsPublicKey,
    relay::{BidTrace, SignedBidSubmissionV5, SubmitBlockRequest},
    requests::ExecutionRequestsV4,
};
use alloy_rpc_types_engine::{
    BlobsBundleV2, CancunPayloadFields, ExecutionPayload, ExecutionPayloadSidecar,
    ExecutionPayloadV3, PraguePayloadFields,
};
use cobuild_chain::ExecutedBlock;

use super::signing::sign_bid;
use cobuild_primitives::BuilderKey;

/// What a bid needs besides the block: the slot's proposer duty and the signing domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BidParams {
    /// The slot the block is proposed in.
    pub slot: u64,
    /// The proposer's BLS public key (from the relay's validators endpoint).
    pub proposer_pubkey: BlsPublicKey,
    /// Where the proposer wants to be paid; the block's last transaction must pay it.
    pub proposer_fee_recipient: Address,
    /// The builder domain ([`builder_domain`](super::builder_domain) of the chain).
    pub domain: B256,
}

/// The block does not pay its proposer the way a bid requires: its last transaction must be a
/// successful plain value transfer from the block's fee recipient (coinbase) to the proposer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// The block has no transactions.
    #[error("block has no transactions, so no proposer payment")]
    NoTransactions,
    /// The last transaction is not sent by the coinbase.
    #[error("last transaction is sent by {sender}, not by the coinbase {coinbase}")]
    NotFromCoinbase {
        /// Its sender.
        sender: Address,
        /// The block's fee recipient.
        coinbase: Address,
    },
    /// The last transaction pays someone else, or creates a contract.
    #[error("last transaction goes to {got:?}, not to the proposer fee recipient {expected}")]
    WrongRecipient {
        /// Its recipient (`None` for a contract creation).
        got: Option<Address>,
        /// The proposer fee recipient.
        expected: Address,
    },
    /// The last transaction carries calldata, so it is not a plain transfer.
    #[error("last transaction carries calldata: not a plain value transfer")]
    NotPlainTransfer,
    /// The last transaction failed, so it paid nothing.
    #[error("last transaction failed")]
    Failed,
}

/// A block that cannot be bid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The block does not pay the proposer.
    #[error(transparent)]
    Payment(#[from] PaymentError),
    /// The block commits to execution requests, which an `ExecutedBlock` does not carry.
    #[error(
        "block has execution requests (requests hash {0}); only request-free blocks can be bid"
    )]
    ExecutionRequests(B256),
    /// The block has blob transactions, whose blobs an `ExecutedBlock` does not carry.
    #[error("block has {0} blob transactions; their blobs are not available to bid them")]
    BlobTransactions(usize),
}

/// A submission's payload is not the block it claims to be.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// The payload does not decode into a block (bad transaction encoding, extra data, ...).
    #[error("payload does not decode: {0}")]
    Decode(#[from] alloy_rpc_types_engine::PayloadError),
    /// The header built from the payload has another hash than the payload claims.
    #[error("payload claims block hash {claimed}, its header hashes to {computed}")]
    BlockHash {
        /// The payload's `block_hash`.
        claimed: B256,
        /// The hash of the header rebuilt from the payload.
        computed: B256,
    },
    /// The blobs bundle does not carry exactly the blobs the block's transactions commit to.
    #[error("blobs bundle has {bundle} commitments for {block} blob hashes in the block")]
    Blobs {
        /// Versioned hashes the bundle's commitments give.
        bundle: usize,
        /// Versioned hashes the block's transactions name.
        block: usize,
    },
}

/// The value `executed` pays to `fee_recipient` in its last transaction, checked to be a
/// successful plain transfer from the block's coinbase.
pub fn proposer_payment(
    executed: &ExecutedBlock,
    fee_recipient: Address,
) -> Result<U256, PaymentError> {
    let block = &executed.block;
    let (Some(tx), Some(sender), Some(receipt)) = (
        block.block.body.transactions.last(),
        block.senders.last(),
        executed.receipts.last(),
    ) else {
        return Err(PaymentError::NoTransactions);
    };
    let coinbase = block.block.header.beneficiary;
    if *sender != coinbase {
        return Err(PaymentError::NotFromCoinbase {
            sender: *sender,
            coinbase,
        });
    }
    match tx.kind() {
        TxKind::Call(to) if to == fee_recipient => {}
        kind => {
            return Err(PaymentError::WrongRecipient {
                got: kind.to().copied(),
                expected: fee_recipient,
            });
        }
    }
    if !tx.input().is_empty() {
        return Err(PaymentError::NotPlainTransfer);
    }
    if !receipt.status() {
        return Err(PaymentError::Failed);
    }
    Ok(tx.value())
}

/// Builds the signed Fulu submission of `executed`, worth what its last transaction pays
/// `params.proposer_fee_recipient`; a block whose last transaction is no such payment pays
/// nothing and is a zero bid (a builder withdrawing a richer bid whose orders were cancelled
/// may have nothing better to offer), which is honest whatever the block holds.
pub fn build_submission(
    executed: &ExecutedBlock,
    params: &BidParams,
    key: &BuilderKey,
) -> Result<SubmitBlockRequest, BuildError> {
    let value = proposer_payment(executed, params.proposer_fee_recipient).unwrap_or(U256::ZERO);
    let block = &executed.block.block;
    let header = &block.header;
    let requests_hash = header.requests_hash.unwrap_or(EMPTY_REQUESTS_HASH);
    if requests_hash != EMPTY_REQUESTS_HASH {
        return Err(BuildError::ExecutionRequests(requests_hash));
    }
    let blob_txs = block
        .body
        .transactions
        .iter()
        .filter(|tx| Transaction::blob_versioned_hashes(*tx).is_some_and(|h| !h.is_empty()))
        .count();
    if blob_txs > 0 {
        return Err(BuildError::BlobTransactions(blob_txs));
    }
    let message = BidTrace {
        slot: params.slot,
        parent_hash: header.parent_hash,
        block_hash: executed.block.hash,
        builder_pubkey: key.public_key(),
        proposer_pubkey: params.proposer_pubkey,
        proposer_fee_recipient: params.proposer_fee_recipient,
        gas_limit: header.gas_limit,
        gas_used: header.gas_used,
        value,
    };
    let signature = sign_bid(key, &message, params.domain);
    Ok(SubmitBlockRequest::Fulu(SignedBidSubmissionV5 {
        message,
        execution_payload: ExecutionPayloadV3::from_block_unchecked(executed.block.hash, block),
        blobs_bundle: BlobsBundleV2::empty(),
        execution_requests: ExecutionRequestsV4::default(),
        signature,
    }))
}

/// The block a submission carries, with `parent_beacon_block_root` (the slot's, known to the
/// relay) and the requests hash of its execution requests filled in; checked to hash to the
/// payload's `block_hash` and to come with exactly its blobs.
pub fn submission_block(
    submission: &SignedBidSubmissionV5,
    parent_beacon_block_root: B256,
) -> Result<Block<TxEnvelope>, PayloadError> {
    let bundle_hashes = submission.blobs_bundle.versioned_hashes();
    let requests: Requests = submission.execution_requests.to_requests();
    let sidecar = ExecutionPayloadSidecar::v4(
        CancunPayloadFields::new(parent_beacon_block_root, bundle_hashes.clone()),
        PraguePayloadFields::new(requests),
    );
    let payload = ExecutionPayload::V3(submission.execution_payload.clone());
    let block: Block<TxEnvelope> = payload.try_into_block_with_sidecar(&sidecar)?;
    let claimed = submission
        .execution_payload
        .payload_inner
        .payload_inner
        .block_hash;
    let computed = block.header.hash_slow();
    if computed != claimed {
        return Err(PayloadError::BlockHash { claimed, computed });
    }
    let block_hashes: Vec<B256> = block
        .body
        .transactions
        .iter()
        .filter_map(|tx| Transaction::blob_versioned_hashes(tx))
        .flatten()
        .copied()
        .collect();
    if block_hashes != bundle_hashes {
        return Err(PayloadError::Blobs {
            bundle: bundle_hashes.len(),
            block: block_hashes.len(),
        });
    }
    Ok(block)
}
