//! The head state as the EVM reads it, and how a block's changes become a new state root.
//!
//! ```text
//!  ReadView ──▶ StateSnapshot (revm DatabaseRef) ──▶ EVM ──▶ StateChangeset
//!      │                                                          │
//!      └──────────────▶ HashedStateDiff::new (storage roots, state root) ◀┘
//! ```

mod cache;
mod diff;
mod feed;
mod nodes;
mod proof;
mod proved;
mod root;
mod snapshot;
mod source;

pub use diff::{DiffMemo, HashedStateDiff, SlotsBefore, StorageDiff};
pub use nodes::{StorageUpdates, TrieNodes, TrieUpdates};
pub use proof::AccountProof;
pub(crate) use proof::prove;
pub use proved::{
    MAX_SEARCH_NIBBLES, MissingNode, ProofError, ProofRequest, ProvedState, key_under,
};
pub use root::{BranchNodes, NodeUpdates};
pub use snapshot::{StateError, StateSnapshot};
pub use source::{Prefetched, StateSource, StoreSource};

use alloy_primitives::{B256, U256};

use crate::store::{AccountRecord, ReadView, StoreError};

/// A stored state in trie-key order: what root computation reads underneath a diff.
pub trait HashedState {
    /// The account at `keccak(address) == hashed`.
    fn account(&self, hashed: &B256) -> Result<Option<AccountRecord>, StoreError>;
    /// The accounts with hashed keys in `[lo, hi]`, in order.
    fn accounts(&self, lo: &B256, hi: &B256) -> Result<EntryIter<'_, AccountRecord>, StoreError>;
    /// One account's slots with hashed keys in `[lo, hi]`, in order.
    fn storage_slots(
        &self,
        hashed: &B256,
        lo: &B256,
        hi: &B256,
    ) -> Result<EntryIter<'_, U256>, StoreError>;
}

/// A sorted stream of stored trie entries.
pub type EntryIter<'a, V> = Box<dyn Iterator<Item = Result<(B256, V), StoreError>> + 'a>;

impl HashedState for ReadView {
    fn account(&self, hashed: &B256) -> Result<Option<AccountRecord>, StoreError> {
        ReadView::account(self, hashed)
    }
    fn accounts(&self, lo: &B256, hi: &B256) -> Result<EntryIter<'_, AccountRecord>, StoreError> {
        Ok(Box::new(ReadView::accounts(self, lo, hi)?))
    }
    fn storage_slots(
        &self,
        hashed: &B256,
        lo: &B256,
        hi: &B256,
    ) -> Result<EntryIter<'_, U256>, StoreError> {
        Ok(Box::new(ReadView::storage_slots(self, hashed, lo, hi)?))
    }
}

/// The state before genesis.
#[derive(Debug, Clone, Copy, Default)]
pub struct EmptyState;

impl HashedState for EmptyState {
    fn account(&self, _: &B256) -> Result<Option<AccountRecord>, StoreError> {
        Ok(None)
    }
    fn accounts(&self, _: &B256, _: &B256) -> Result<EntryIter<'_, AccountRecord>, StoreError> {
        Ok(Box::new(std::iter::empty()))
    }
    fn storage_slots(
        &self,
        _: &B256,
        _: &B256,
        _: &B256,
    ) -> Result<EntryIter<'_, U256>, StoreError> {
        Ok(Box::new(std::iter::empty()))
    }
}
