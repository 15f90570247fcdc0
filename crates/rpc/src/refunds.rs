//! The Flashbots refund query methods, served from this member's refund book (the refunds it
//! computed from final slot records). Every refund names the slot and the record digest it
//! comes from, so a sender can check it against the ledger.
//!
//! A refund is `"received"` once the payout that settles it is on chain, `"pending"` until
//! then; `cobuild_getRefundDebts` shows what each member still owes.

use std::sync::Arc;

use alloy_primitives::{Address, B256, U64, U256};
use cobuild_refunds::{Book, BookError, SlotRefunds};
use jsonrpsee::{core::RpcResult, proc_macros::rpc, types::ErrorObjectOwned};
use serde::{Deserialize, Serialize};

use crate::error::INTERNAL_ERROR;

/// Slots read per page of `flashbots_getFeeRefundsByRecipient`.
const SLOTS_PER_PAGE: usize = 256;

/// `flashbots_getFeeRefundTotalsByRecipient`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundTotals {
    /// Earned, not yet paid (wei).
    pub pending: U256,
    /// Paid (wei).
    pub received: U256,
    /// The highest block whose refunds are computed.
    pub max_block_number: U64,
}

/// One order's refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeeRefund {
    /// The bundle hash or the transaction hash.
    pub hash: B256,
    /// Wei.
    pub amount: U256,
    /// The block the order landed in.
    pub block_number: U64,
    /// `"pending"` or `"received"`.
    pub status: String,
    /// Who is credited.
    pub recipient: Address,
    /// The identity that earned it.
    pub identity: Address,
    /// The slot whose record the refund comes from.
    pub slot: U64,
    /// That record's digest.
    pub record: B256,
}

/// A page of refunds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeRefunds {
    /// The refunds.
    pub refunds: Vec<FeeRefund>,
    /// Where the next page starts; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<U64>,
}

/// `flashbots_getFeeRefundsByRecipient`'s parameter.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ByRecipient {
    /// The recipient.
    pub recipient: Address,
    /// Where to continue.
    #[serde(default)]
    pub cursor: Option<U64>,
}

/// `flashbots_getFeeRefundsByBundle`'s parameter.
#[derive(Debug, Clone, Deserialize)]
pub struct ByBundle {
    /// The bundle (or transaction) hash.
    #[serde(alias = "bundleHash")]
    pub bundle_hash: B256,
}

/// `flashbots_getFeeRefundsByBlock`'s parameter.
#[derive(Debug, Clone, Deserialize)]
pub struct ByBlock {
    /// The block.
    #[serde(alias = "blockNumber")]
    pub block_number: U64,
}

/// The refund query methods.
#[rpc(server, namespace = "flashbots")]
pub trait RefundsApi {
    /// What `recipient` has earned: pending and received.
    #[method(name = "getFeeRefundTotalsByRecipient")]
    fn totals_by_recipient(&self, recipient: Address) -> RpcResult<RefundTotals>;

    /// `recipient`'s refunds per order, oldest first, paginated.
    #[method(name = "getFeeRefundsByRecipient")]
    fn refunds_by_recipient(&self, query: ByRecipient) -> RpcResult<FeeRefunds>;

    /// The refunds of one bundle (or private transaction).
    #[method(name = "getFeeRefundsByBundle")]
    fn refunds_by_bundle(&self, query: ByBundle) -> RpcResult<FeeRefunds>;

    /// The refunds of one block.
    #[method(name = "getFeeRefundsByBlock")]
    fn refunds_by_block(&self, query: ByBlock) -> RpcResult<FeeRefunds>;
}

/// What one member owes for the slots it won.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberDebt {
    /// The member.
    pub member: u32,
    /// Refunds of its slots, in all.
    pub owed: U256,
    /// What its payouts on chain settled.
    pub paid: U256,
    /// `owed − paid`.
    pub outstanding: U256,
}

/// The ledger's view of refunds.
#[rpc(server, namespace = "cobuild")]
pub trait RefundDebtsApi {
    /// Per member that won a slot with refunds: owed, paid and still outstanding.
    #[method(name = "getRefundDebts")]
    fn refund_debts(&self) -> RpcResult<Vec<MemberDebt>>;
}

impl RefundDebtsApiServer for Refunds {
    fn refund_debts(&self) -> RpcResult<Vec<MemberDebt>> {
        let mut debts: std::collections::BTreeMap<u32, (U256, U256)> = Default::default();
        for slot in self.book.slots(0, usize::MAX).map_err(internal)? {
            let entry = debts.entry(slot.winner).or_default();
            for owed in &slot.owed {
                entry.0 = entry.0.saturating_add(owed.amount);
                if self
                    .book
                    .paid(slot.slot, owed.recipient)
                    .map_err(internal)?
                    .is_some()
                {
                    entry.1 = entry.1.saturating_add(owed.amount);
                }
            }
        }
        Ok(debts
            .into_iter()
            .map(|(member, (owed, paid))| MemberDebt {
                member,
                owed,
                paid,
                outstanding: owed.saturating_sub(paid),
            })
            .collect())
    }
}

/// The methods over a refund book.
#[derive(Debug, Clone)]
pub struct Refunds {
    book: Arc<Book>,
}

impl Refunds {
    /// Serves `book`.
    pub fn new(book: Arc<Book>) -> Self {
        Self { book }
    }

    /// Every order refund of slots from `from`, oldest first, that `keep` keeps; at most
    /// `slots` slots read, with the slot to continue from.
    fn scan(
        &self,
        from: u64,
        slots: usize,
        keep: impl Fn(&FeeRefund) -> bool,
    ) -> Result<FeeRefunds, BookError> {
        let read = self.book.slots(from, slots.saturating_add(1))?;
        let cursor = read.get(slots).map(|s| U64::from(s.slot));
        let refunds = read
            .iter()
            .take(slots)
            .flat_map(order_refunds)
            .filter(|r| keep(r))
            .map(|mut r| {
                if self.book.paid(r.slot.to(), r.recipient)?.is_some() {
                    r.status = "received".into();
                }
                Ok(r)
            })
            .collect::<Result<_, BookError>>()?;
        Ok(FeeRefunds { refunds, cursor })
    }
}

fn order_refunds(slot: &SlotRefunds) -> Vec<FeeRefund> {
    slot.owed
        .iter()
        .flat_map(|owed| {
            owed.orders.iter().map(|order| FeeRefund {
                hash: order.hash,
                amount: order.amount,
                block_number: U64::from(slot.block),
                status: "pending".into(),
                recipient: owed.recipient,
                identity: owed.identity,
                slot: U64::from(slot.slot),
                record: slot.record,
            })
        })
        .collect()
}

fn internal(e: BookError) -> ErrorObjectOwned {
    tracing::error!(error = %e, "rpc.refunds.unreadable");
    ErrorObjectOwned::owned(INTERNAL_ERROR, "refund book unreadable", None::<()>)
}

impl RefundsApiServer for Refunds {
    fn totals_by_recipient(&self, recipient: Address) -> RpcResult<RefundTotals> {
        let slots = self.book.slots(0, usize::MAX).map_err(internal)?;
        let (mut pending, mut received) = (U256::ZERO, U256::ZERO);
        for slot in &slots {
            let owed = slot.owed_to(recipient);
            if owed.is_zero() {
                continue;
            }
            match self.book.paid(slot.slot, recipient).map_err(internal)? {
                Some(_) => received = received.saturating_add(owed),
                None => pending = pending.saturating_add(owed),
            }
        }
        Ok(RefundTotals {
            pending,
            received,
            max_block_number: U64::from(slots.last().map_or(0, |s| s.block)),
        })
    }

    fn refunds_by_recipient(&self, query: ByRecipient) -> RpcResult<FeeRefunds> {
        let from = query.cursor.map_or(0, |c| c.to::<u64>());
        self.scan(from, SLOTS_PER_PAGE, |r| r.recipient == query.recipient)
            .map_err(internal)
    }

    fn refunds_by_bundle(&self, query: ByBundle) -> RpcResult<FeeRefunds> {
        let mut all = self
            .scan(0, usize::MAX, |r| r.hash == query.bundle_hash)
            .map_err(internal)?;
        all.cursor = None;
        Ok(all)
    }

    fn refunds_by_block(&self, query: ByBlock) -> RpcResult<FeeRefunds> {
        let block = query.block_number.to::<u64>();
        let mut all = self
            .scan(0, usize::MAX, |r| r.block_number.to::<u64>() == block)
            .map_err(internal)?;
        all.cursor = None;
        Ok(all)
    }
}
