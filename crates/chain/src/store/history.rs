//! What each recent block overwrote, so the state before it can be read again.
//!
//! A block's reverts are the values its changes replaced: every account and storage slot it
//! wrote, as they were before it. The state after block `n` is the head state with, for each
//! key, the value recorded by the earliest block after `n` that wrote it. Every block keeps its
//! reverts unless the node is given a window (`--history-blocks`), which is never narrower than
//! [`HISTORY_BLOCKS`]: the ledger reads the state a block was built on while the block's record
//! is agreed, a few slots after it.

use std::collections::HashMap;

use alloy_primitives::{B256, Bytes, U256};
use alloy_rlp::{Decodable, Encodable, RlpDecodable, RlpEncodable};

use super::{AccountRecord, StoreError};

/// The narrowest history window: the blocks whose reverts are always kept.
pub const HISTORY_BLOCKS: u64 = 256;

/// An account as it was before a block (an empty record: it did not exist).
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub(crate) struct AccountRevert {
    pub(crate) hashed: B256,
    pub(crate) record: Bytes,
}

/// A storage slot as it was before a block (zero: unset).
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub(crate) struct SlotRevert {
    pub(crate) hashed_address: B256,
    pub(crate) hashed_slot: B256,
    pub(crate) value: U256,
}

/// Everything one block overwrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub(crate) struct BlockReverts {
    pub(crate) accounts: Vec<AccountRevert>,
    pub(crate) slots: Vec<SlotRevert>,
}

impl BlockReverts {
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.length());
        self.encode(&mut out);
        out
    }

    pub(crate) fn from_bytes(mut bytes: &[u8]) -> Result<Self, StoreError> {
        Ok(Self::decode(&mut bytes)?)
    }
}

/// The keys whose values differ between a past state and the head, with their past values.
#[derive(Debug, Clone, Default)]
pub struct PastState {
    accounts: HashMap<B256, Option<AccountRecord>>,
    slots: HashMap<(B256, B256), U256>,
}

impl PastState {
    /// Folds in the reverts of one block; blocks must come newest first, so the value kept for
    /// a key is the one the earliest later block replaced.
    pub(crate) fn apply(&mut self, reverts: BlockReverts) -> Result<(), StoreError> {
        for revert in reverts.accounts {
            let record = if revert.record.is_empty() {
                None
            } else {
                Some(AccountRecord::decode(&revert.record)?)
            };
            self.accounts.insert(revert.hashed, record);
        }
        for revert in reverts.slots {
            self.slots
                .insert((revert.hashed_address, revert.hashed_slot), revert.value);
        }
        Ok(())
    }

    /// The account at `hashed` in the past state, if it differs from the head's.
    pub(crate) fn account(&self, hashed: &B256) -> Option<Option<AccountRecord>> {
        self.accounts.get(hashed).copied()
    }

    /// A storage value in the past state, if it differs from the head's.
    pub(crate) fn slot(&self, hashed_address: &B256, hashed_slot: &B256) -> Option<U256> {
        self.slots.get(&(*hashed_address, *hashed_slot)).copied()
    }
}
