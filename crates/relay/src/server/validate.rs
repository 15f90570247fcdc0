//! The checks a submission must pass, cheapest first, and the one error they fail with. Each
//! failure maps to a [`RejectReason`] and an HTTP status, so the handler answers every invalid
//! submission the same way.

use std::collections::HashSet;

use alloy_consensus::proofs::calculate_withdrawals_root;
use alloy_primitives::{Address, B256, U256};
use alloy_rpc_types_beacon::{
    BlsPublicKey,
    relay::{BidTrace, SignedBidSubmissionV5},
};
use cobuild_chain::ExecutedBlock;
use http::StatusCode;

use super::{config::Config, state::SlotContext};
use crate::{
    bid::{PayloadError, PaymentError, SignatureError, proposer_payment, verify_bid},
    reply::RejectReason,
};

/// Why the relay did not accept a submission.
#[derive(Debug, thiserror::Error)]
pub enum SubmissionError {
    /// The body is not a JSON Fulu submission; the parser's reason, bounded (it can quote
    /// the body).
    #[error("malformed submission: {0}")]
    Malformed(String),
    /// No slot is open for bids.
    #[error("no slot is open for bids")]
    NoOpenSlot,
    /// The bid is for another slot than the open one.
    #[error("bid is for slot {got}, the open slot is {expected}")]
    WrongSlot {
        /// The bid's slot.
        got: u64,
        /// The open slot.
        expected: u64,
    },
    /// The slot closed while the bid was checked.
    #[error("slot {0} closed before the bid was checked")]
    SlotClosed(u64),
    /// The bid does not build on the slot's parent.
    #[error("bid builds on {got}, the slot's parent is {expected}")]
    WrongParent {
        /// The bid's parent hash.
        got: B256,
        /// The slot's parent.
        expected: B256,
    },
    /// The bid names another proposer.
    #[error("bid is for proposer {0}, not this slot's proposer")]
    WrongProposer(BlsPublicKey),
    /// The bid pays another fee recipient than the proposer's.
    #[error("bid pays {got}, the proposer's fee recipient is {expected}")]
    WrongFeeRecipient {
        /// The bid's fee recipient.
        got: Address,
        /// The proposer's.
        expected: Address,
    },
    /// The builder key is not on the allow-list.
    #[error("builder {0} is not allowed")]
    UnknownBuilder(BlsPublicKey),
    /// The BLS signature does not verify.
    #[error("invalid signature: {0}")]
    BadSignature(#[from] SignatureError),
    /// The bid trace and the payload disagree.
    #[error("bid trace {field} is {trace}, the payload's is {payload}")]
    Inconsistent {
        /// The field.
        field: &'static str,
        /// Its value in the bid trace.
        trace: String,
        /// Its value in the payload.
        payload: String,
    },
    /// The payload's timestamp is not the slot's.
    #[error("payload timestamp {got}, the slot's is {expected}")]
    WrongTimestamp {
        /// The payload's timestamp.
        got: u64,
        /// The slot's.
        expected: u64,
    },
    /// The payload's `prev_randao` is not the slot's.
    #[error("payload prev_randao {got}, the slot's is {expected}")]
    WrongRandao {
        /// The payload's.
        got: B256,
        /// The slot's.
        expected: B256,
    },
    /// The payload's withdrawals are not the slot's.
    #[error("payload withdrawals root {got}, the slot's is {expected}")]
    WrongWithdrawals {
        /// The root of the payload's withdrawals.
        got: B256,
        /// The root of the slot's.
        expected: B256,
    },
    /// Strict mode's refusal, worded as mev-boost-relay words it.
    #[error("{0}")]
    Strict(String),
    /// The payload is not the block it claims to be.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// Re-executing the block failed or gave another header.
    #[error("invalid block: {0}")]
    InvalidBlock(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The block does not pay the proposer with its last transaction.
    #[error("no honest proposer payment: {0}")]
    Payment(#[from] PaymentError),
    /// The bid's value is not what the block pays.
    #[error("bid value {value} is not the proposer payment {payment}")]
    ValueMismatch {
        /// The bid's value.
        value: U256,
        /// What the last transaction pays.
        payment: U256,
    },
    /// The verifier failed on the relay's side.
    #[error("relay failed to verify the block: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl SubmissionError {
    /// The reason the reply carries.
    pub const fn reason(&self) -> RejectReason {
        match self {
            Self::Malformed(_) => RejectReason::Malformed,
            Self::NoOpenSlot | Self::WrongSlot { .. } | Self::SlotClosed(_) => {
                RejectReason::WrongSlot
            }
            Self::WrongParent { .. } => RejectReason::WrongParent,
            Self::WrongProposer(_) | Self::WrongFeeRecipient { .. } => RejectReason::WrongProposer,
            Self::UnknownBuilder(_) => RejectReason::UnknownBuilder,
            Self::BadSignature(_) => RejectReason::BadSignature,
            Self::Inconsistent { .. }
            | Self::WrongTimestamp { .. }
            | Self::WrongRandao { .. }
            | Self::WrongWithdrawals { .. }
            | Self::Payload(_) => RejectReason::InvalidPayload,
            Self::Strict(_) => RejectReason::Other,
            Self::InvalidBlock(_) => RejectReason::InvalidBlock,
            Self::Payment(_) | Self::ValueMismatch { .. } => RejectReason::ValueMismatch,
            Self::Internal(_) => RejectReason::Internal,
        }
    }

    /// The HTTP status of the reply: 500 for the relay's own failures, 400 for the rest.
    pub const fn status(&self) -> StatusCode {
        match self {
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// The checks that need no execution: slot, parent, proposer, builder, signature, and that the
/// trace describes the payload.
pub(crate) fn check_bid(
    config: &Config,
    builders: &HashSet<BlsPublicKey>,
    domain: B256,
    ctx: &SlotContext,
    submission: &SignedBidSubmissionV5,
) -> Result<(), SubmissionError> {
    let trace = &submission.message;
    if trace.slot != ctx.slot {
        return Err(SubmissionError::WrongSlot {
            got: trace.slot,
            expected: ctx.slot,
        });
    }
    if trace.parent_hash != ctx.parent_hash {
        return Err(SubmissionError::WrongParent {
            got: trace.parent_hash,
            expected: ctx.parent_hash,
        });
    }
    if trace.proposer_pubkey != config.proposer.public_key() {
        return Err(SubmissionError::WrongProposer(trace.proposer_pubkey));
    }
    if trace.proposer_fee_recipient != config.proposer_fee_recipient {
        return Err(SubmissionError::WrongFeeRecipient {
            got: trace.proposer_fee_recipient,
            expected: config.proposer_fee_recipient,
        });
    }
    if !builders.contains(&trace.builder_pubkey) {
        return Err(SubmissionError::UnknownBuilder(trace.builder_pubkey));
    }
    verify_bid(trace, &submission.signature, domain)?;

    let v1 = &submission.execution_payload.payload_inner.payload_inner;
    let pairs: [(&'static str, String, String); 4] = [
        (
            "block_hash",
            trace.block_hash.to_string(),
            v1.block_hash.to_string(),
        ),
        (
            "parent_hash",
            trace.parent_hash.to_string(),
            v1.parent_hash.to_string(),
        ),
        (
            "gas_limit",
            trace.gas_limit.to_string(),
            v1.gas_limit.to_string(),
        ),
        (
            "gas_used",
            trace.gas_used.to_string(),
            v1.gas_used.to_string(),
        ),
    ];
    for (field, trace, payload) in pairs {
        if trace != payload {
            return Err(SubmissionError::Inconsistent {
                field,
                trace,
                payload,
            });
        }
    }
    if v1.timestamp != ctx.timestamp {
        return Err(SubmissionError::WrongTimestamp {
            got: v1.timestamp,
            expected: ctx.timestamp,
        });
    }
    if v1.prev_randao != ctx.prev_randao {
        return Err(SubmissionError::WrongRandao {
            got: v1.prev_randao,
            expected: ctx.prev_randao,
        });
    }
    let withdrawals = withdrawals_root(submission);
    if withdrawals != ctx.withdrawals_root {
        return Err(SubmissionError::WrongWithdrawals {
            got: withdrawals,
            expected: ctx.withdrawals_root,
        });
    }
    Ok(())
}

fn withdrawals_root(submission: &SignedBidSubmissionV5) -> B256 {
    calculate_withdrawals_root(&submission.execution_payload.payload_inner.withdrawals)
}

/// What strict mode does with a submission that passed its checks before simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Screened {
    /// Simulate it, and keep it if it is valid.
    Simulate,
    /// Answer 200 and drop it, as mev-boost-relay does for a blacklisted builder and for a
    /// bid of zero value or without transactions.
    Ignore(&'static str),
}

/// mev-boost-relay's checks before simulation, in its order and with its messages
/// (`handleSubmitNewBlock`): past slot, timestamp, builder, proposer duty, fee recipient, zero
/// value, trace against payload, payload attributes, prev_randao, withdrawals, signature.
/// This relay's allow-list stands for its builder status: a builder off the list is treated
/// as blacklisted. A slot after the open one has no duty here (mev-boost-relay would check its
/// timestamp first, from a slot clock this relay does not keep).
pub(crate) fn screen_strict(
    config: &Config,
    builders: &HashSet<BlsPublicKey>,
    domain: B256,
    ctx: &SlotContext,
    submission: &SignedBidSubmissionV5,
) -> Result<Screened, SubmissionError> {
    let refuse = |message: String| Err(SubmissionError::Strict(message));
    let trace = &submission.message;
    let v1 = &submission.execution_payload.payload_inner.payload_inner;
    if trace.slot < ctx.slot {
        return refuse("submission for past slot".to_owned());
    }
    if trace.slot == ctx.slot && v1.timestamp != ctx.timestamp {
        return refuse(format!(
            "incorrect timestamp. got {}, expected {}",
            v1.timestamp, ctx.timestamp
        ));
    }
    if !builders.contains(&trace.builder_pubkey) {
        return Ok(Screened::Ignore("builder is not allowed"));
    }
    if trace.slot != ctx.slot {
        return refuse("could not find slot duty".to_owned());
    }
    if trace.proposer_fee_recipient != config.proposer_fee_recipient {
        return refuse("fee recipient does not match".to_owned());
    }
    if trace.value.is_zero() || v1.transactions.is_empty() {
        return Ok(Screened::Ignore("zero value or no transactions"));
    }
    if trace.block_hash != v1.block_hash {
        return refuse("blockHash mismatch".to_owned());
    }
    if trace.parent_hash != v1.parent_hash {
        return refuse("parentHash mismatch".to_owned());
    }
    if trace.parent_hash != ctx.parent_hash {
        return refuse("payload attributes not (yet) known".to_owned());
    }
    if v1.prev_randao != ctx.prev_randao {
        return refuse(format!(
            "incorrect prev_randao - got: {}, expected: {}",
            v1.prev_randao, ctx.prev_randao
        ));
    }
    let withdrawals = withdrawals_root(submission);
    if withdrawals != ctx.withdrawals_root {
        return refuse(format!(
            "incorrect withdrawals root - got: {withdrawals}, expected: {}",
            ctx.withdrawals_root
        ));
    }
    if verify_bid(trace, &submission.signature, domain).is_err() {
        return refuse("invalid signature".to_owned());
    }
    Ok(Screened::Simulate)
}

/// A failure found by executing the block, worded as mev-boost-relay reports its simulator's
/// answer; the relay's own failures stay what they are.
pub(crate) fn strict_simulation(error: SubmissionError) -> SubmissionError {
    match error {
        SubmissionError::Internal(_) | SubmissionError::Strict(_) => error,
        other => SubmissionError::Strict(format!("simulation failed: {other}")),
    }
}

/// Invariant "honest value": the verified block's last transaction pays the proposer exactly
/// the bid's value.
pub(crate) fn check_payment(
    executed: &ExecutedBlock,
    trace: &BidTrace,
) -> Result<(), SubmissionError> {
    // A zero bid promises nothing, so it is honest whatever its last transaction does.
    if trace.value.is_zero() {
        return Ok(());
    }
    let payment = proposer_payment(executed, trace.proposer_fee_recipient)?;
    if payment != trace.value {
        return Err(SubmissionError::ValueMismatch {
            value: trace.value,
            payment,
        });
    }
    Ok(())
}
