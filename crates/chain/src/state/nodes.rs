//! The head state's trie nodes, kept in memory so a block's roots hash only what it changed.
//!
//! Every block built in a slot starts from the same head, so its branch nodes are worth keeping:
//! [`TrieNodes`] holds them for the account trie and for each storage trie, tagged with the block
//! whose post-state they describe. A block's roots walk them (see `root`) and record, in
//! [`TrieUpdates`], how they change; committing the block applies those updates to make the new
//! head's nodes. They are built from the store when the chain opens, which also checks the
//! stored state against the head's state root.
//!
//! Kept in memory rather than in the store: the devnet's state is small, building the nodes
//! takes one pass over it, and the store's format stays as it was. A node set that does not
//! match the state it is used with (a commit that did not start from the head's nodes) is
//! dropped, and the next block reads every leaf again: slower, never wrong.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use alloy_primitives::B256;
use alloy_trie::EMPTY_ROOT_HASH;

use super::{
    HashedState,
    root::{BranchNodes, NO_NODES, NodeUpdates},
};
use crate::store::StoreError;

/// The stored branch nodes of every trie of one block's post-state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrieNodes {
    block: B256,
    accounts: Arc<BranchNodes>,
    storage: HashMap<B256, Arc<BranchNodes>>,
}

/// How a block's root computation changed the nodes of the state it was built on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrieUpdates {
    /// The block whose nodes the computation started from; `None` if it started from none.
    pub base: Option<B256>,
    /// The account trie's updates.
    pub accounts: NodeUpdates,
    /// Per account whose storage changed: its storage trie's updates.
    pub storage: BTreeMap<B256, StorageUpdates>,
}

/// How one storage trie's nodes changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageUpdates {
    /// The old nodes are all gone (storage wiped, account deleted).
    pub wiped: bool,
    /// Updates to the nodes left (after a wipe, the new trie's nodes).
    pub nodes: NodeUpdates,
}

impl TrieNodes {
    /// No nodes, for block `block`: every root reads all leaves.
    pub(crate) fn empty(block: B256) -> Self {
        Self {
            block,
            ..Self::default()
        }
    }

    /// Builds the nodes of `state`, the post-state of `block`, and checks them against the
    /// block's state root: every account's storage root, then the account trie's.
    pub(crate) fn build(
        state: &(impl HashedState + Sync + ?Sized),
        block: B256,
        state_root: B256,
    ) -> Result<Self, StoreError> {
        let mut nodes = Self::empty(block);
        let mut with_storage = Vec::new();
        for entry in state.accounts(&B256::ZERO, &B256::repeat_byte(0xff))? {
            let (hashed, record) = entry?;
            if record.storage_root != EMPTY_ROOT_HASH {
                with_storage.push((hashed, record));
            }
        }
        for (hashed, record) in with_storage {
            let (root, updates) = super::diff::storage_root(state, &NO_NODES, &hashed, None, None)?;
            if root != record.storage_root {
                return Err(StoreError::Corrupt(
                    "an account's storage does not hash to its root",
                ));
            }
            if !updates.updated.is_empty() {
                nodes.storage.insert(hashed, Arc::new(updates.updated));
            }
        }
        let (root, updates) =
            super::diff::account_root(state, &NO_NODES, &BTreeMap::new(), &HashMap::new())?;
        if root != state_root {
            return Err(StoreError::Corrupt(
                "the state does not hash to the head's root",
            ));
        }
        nodes.accounts = Arc::new(updates.updated);
        Ok(nodes)
    }

    /// The block whose post-state these nodes describe.
    pub const fn block(&self) -> B256 {
        self.block
    }

    /// The account trie's nodes.
    pub(crate) fn accounts(&self) -> &BranchNodes {
        &self.accounts
    }

    /// The storage trie's nodes of the account at `keccak(address) == hashed` (none if unknown:
    /// its root then reads every slot).
    pub(crate) fn storage(&self, hashed: &B256) -> &BranchNodes {
        self.storage.get(hashed).map_or(&NO_NODES, |n| n)
    }

    /// The nodes of `block`, whose roots were computed with `updates` from these nodes; `None`
    /// if they were computed from other nodes.
    pub(crate) fn apply(&self, updates: &TrieUpdates, block: B256) -> Option<Self> {
        if updates.base != Some(self.block) {
            return None;
        }
        let mut next = self.clone();
        next.block = block;
        next.update(&updates.accounts, &updates.storage);
        Some(next)
    }

    /// Applies updates computed from these nodes, in place: nodes no other set shares are
    /// changed without a copy.
    pub(crate) fn update(
        &mut self,
        accounts: &NodeUpdates,
        storage: &BTreeMap<B256, StorageUpdates>,
    ) {
        accounts.apply_to(Arc::make_mut(&mut self.accounts));
        for (hashed, updates) in storage {
            if updates.wiped {
                self.storage.remove(hashed);
            }
            let nodes = self.storage.entry(*hashed).or_default();
            updates.nodes.apply_to(Arc::make_mut(nodes));
            if nodes.is_empty() {
                self.storage.remove(hashed);
            }
        }
    }
}
