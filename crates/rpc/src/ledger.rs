//! The slot ledger's public methods: a slot's final record with its certificate, or a range of
//! them, so anyone can check the ledger from any member (`cobuild ledger verify`).

use std::sync::Arc;

use alloy_primitives::{B256, Bytes, U64};
use cobuild_consensus::{Entry, Membership, SlotRecord, Store, to_b256};
use jsonrpsee::{core::RpcResult, proc_macros::rpc, types::ErrorObjectOwned};
use serde::{Deserialize, Serialize};

use crate::error::{INTERNAL_ERROR, INVALID_PARAMS, LIMIT_EXCEEDED};

/// Most records one `cobuild_getSlotRecords` call returns.
pub const MAX_RECORDS_PER_CALL: u64 = 64;

/// A final record as the RPC serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEntry {
    /// The slot.
    pub slot: U64,
    /// The record's digest (what the next record links to and consensus signed).
    pub digest: B256,
    /// `"certificate"` when the record carries its own finalization certificate,
    /// `"descendant"` when a later record that links to it carries one.
    pub final_by: String,
    /// The record, readable.
    pub record: SlotRecord,
    /// The stored entry (record and certificate) as RLP: what a verifier checks.
    pub entry: Bytes,
}

impl From<Entry> for LedgerEntry {
    fn from(entry: Entry) -> Self {
        Self {
            slot: U64::from(entry.record.slot),
            digest: to_b256(&entry.record.digest()),
            final_by: if entry.finalization.is_empty() {
                "descendant".into()
            } else {
                "certificate".into()
            },
            entry: Bytes::from(alloy_rlp::encode(&entry)),
            record: entry.record,
        }
    }
}

/// The ledger namespace.
#[rpc(server, namespace = "cobuild")]
pub trait LedgerApi {
    /// The final record of `slot`, or the last one when `slot` is null; null when there is none.
    #[method(name = "getSlotRecord")]
    fn slot_record(&self, slot: Option<U64>) -> RpcResult<Option<LedgerEntry>>;

    /// The final records of slots `from..=to` that this member holds, in order, at most
    /// [`MAX_RECORDS_PER_CALL`].
    #[method(name = "getSlotRecords")]
    fn slot_records(&self, from: U64, to: U64) -> RpcResult<Vec<LedgerEntry>>;

    /// The ledger's founding members (epoch 0), which its genesis digest commits to; null
    /// before the ledger has started. Later epochs' members are named by the records that
    /// opened them.
    #[method(name = "getLedgerFounders")]
    fn founders(&self) -> RpcResult<Option<Membership>>;
}

/// Serves the ledger from a member's store.
#[derive(Debug, Clone)]
pub struct Ledger {
    store: Arc<Store>,
}

impl Ledger {
    /// Serves `store`.
    pub fn new(store: Arc<Store>) -> Self {
        Self { store }
    }
}

fn internal(e: cobuild_consensus::StoreError) -> ErrorObjectOwned {
    tracing::error!(error = %e, "rpc.ledger.read_failed");
    ErrorObjectOwned::owned(INTERNAL_ERROR, "ledger unreadable", None::<()>)
}

impl LedgerApiServer for Ledger {
    fn slot_record(&self, slot: Option<U64>) -> RpcResult<Option<LedgerEntry>> {
        let entry = match slot {
            Some(slot) => self.store.get(slot.to()),
            None => self.store.last(),
        }
        .map_err(internal)?;
        Ok(entry.map(LedgerEntry::from))
    }

    fn slot_records(&self, from: U64, to: U64) -> RpcResult<Vec<LedgerEntry>> {
        let (from, to): (u64, u64) = (from.to(), to.to());
        if from > to {
            return Err(ErrorObjectOwned::owned(
                INVALID_PARAMS,
                format!("from {from} is after to {to}"),
                None::<()>,
            ));
        }
        if to - from >= MAX_RECORDS_PER_CALL {
            return Err(ErrorObjectOwned::owned(
                LIMIT_EXCEEDED,
                format!("at most {MAX_RECORDS_PER_CALL} records per call"),
                None::<()>,
            ));
        }
        let entries = self
            .store
            .range(from, to, MAX_RECORDS_PER_CALL as usize)
            .map_err(internal)?;
        Ok(entries.into_iter().map(LedgerEntry::from).collect())
    }

    fn founders(&self) -> RpcResult<Option<Membership>> {
        self.store.founders().map_err(internal)
    }
}
