//! The head state as the EVM reads it, and how a block's changes become a new state root.
//!
//! ```text
//!  ReadView ──▶ StateSnapshot (revm DatabaseRef) ──▶ EVM ──▶ StateChangeset
//!      │                                                          │
//!      └──────────────▶ HashedStateDiff::new (storage roots, state root) ◀┘
//! ```

mod diff;
mod root;
mod snapshot;

pub use diff::{HashedStateDiff, StorageDiff};
pub use snapshot::{StateError, StateSnapshot};

use alloy_primitives::{B256, U256};

use crate::store::{AccountRecord, ReadView, StoreError};

/// A stored state in trie-key order: what root computation reads underneath a diff.
pub trait HashedState {
    /// The account at `keccak(address) == hashed`.
    fn account(&self, hashed: &B256) -> Result<Option<AccountRecord>, StoreError>;
    /// Every account, in hashed-key order.
    fn accounts(&self) -> Result<EntryIter<'_, AccountRecord>, StoreError>;
    /// One account's storage, in hashed-slot order.
    fn storage_slots(&self, hashed: &B256) -> Result<EntryIter<'_, U256>, StoreError>;
}

/// A sorted stream of stored trie entries.
pub type EntryIter<'a, V> = Box<dyn Iterator<Item = Result<(B256, V), StoreError>> + 'a>;

impl HashedState for ReadView {
    fn account(&self, hashed: &B256) -> Result<Option<AccountRecord>, StoreError> {
        ReadView::account(self, hashed)
    }
    fn accounts(&self) -> Result<EntryIter<'_, AccountRecord>, StoreError> {
        Ok(Box::new(ReadView::accounts(self)?))
    }
    fn storage_slots(&self, hashed: &B256) -> Result<EntryIter<'_, U256>, StoreError> {
        Ok(Box::new(ReadView::storage_slots(self, hashed)?))
    }
}

/// The state before genesis.
#[derive(Debug, Clone, Copy, Default)]
pub struct EmptyState;

impl HashedState for EmptyState {
    fn account(&self, _: &B256) -> Result<Option<AccountRecord>, StoreError> {
        Ok(None)
    }
    fn accounts(&self) -> Result<EntryIter<'_, AccountRecord>, StoreError> {
        Ok(Box::new(std::iter::empty()))
    }
    fn storage_slots(&self, _: &B256) -> Result<EntryIter<'_, U256>, StoreError> {
        Ok(Box::new(std::iter::empty()))
    }
}
