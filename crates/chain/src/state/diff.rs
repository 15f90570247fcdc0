//! A block's state changes keyed as the trie keys them, with the roots they lead to.

use std::collections::BTreeMap;

use alloy_primitives::{B256, Bytes, U256, keccak256};
use alloy_rlp::Encodable;
use alloy_trie::EMPTY_ROOT_HASH;
use rayon::prelude::*;
use revm::database::states::StateChangeset;

use super::{
    EntryIter, HashedState, TrieNodes, TrieUpdates,
    nodes::StorageUpdates,
    root::{BranchNodes, NO_NODES, NodeUpdates, TrieInput, trie_root},
};
use crate::store::{AccountRecord, StoreError};

/// Changes to one account's storage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageDiff {
    /// The account's earlier storage is gone (self-destructed or re-created).
    pub wiped: bool,
    /// New slot values by `keccak(slot)`; zero deletes the slot.
    pub slots: BTreeMap<B256, U256>,
}

/// The changes of a block (or a part of one) in trie-key order, ready to hash and to store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HashedStateDiff {
    /// New account records by `keccak(address)`, storage roots filled in; `None` deletes.
    pub accounts: BTreeMap<B256, Option<AccountRecord>>,
    /// Storage changes by `keccak(address)`.
    pub storage: BTreeMap<B256, StorageDiff>,
    /// New contract code by code hash.
    pub contracts: Vec<(B256, Bytes)>,
    /// The state root after the changes.
    pub state_root: B256,
    /// How the changes alter the base state's trie nodes.
    pub trie: TrieUpdates,
}

impl HashedStateDiff {
    /// Hashes `changes` against the state in `base` and computes every root they lead to,
    /// walking `nodes` (the base's trie nodes) where given, else reading every leaf.
    pub fn new(
        base: &(impl HashedState + Sync + ?Sized),
        nodes: Option<&TrieNodes>,
        changes: &StateChangeset,
    ) -> Result<Self, StoreError> {
        let empty = TrieNodes::default();
        let trie_nodes = nodes.unwrap_or(&empty);
        let mut infos = BTreeMap::new();
        for (address, info) in &changes.accounts {
            infos.insert(keccak256(address), info.clone());
        }
        let mut storage: BTreeMap<B256, StorageDiff> = BTreeMap::new();
        for change in &changes.storage {
            let entry = storage.entry(keccak256(change.address)).or_default();
            entry.wiped |= change.wipe_storage;
            for (slot, value) in &change.storage {
                entry.slots.insert(keccak256(B256::from(*slot)), *value);
            }
        }

        // Storage tries are independent: their roots are computed in parallel, and the
        // account trie, which holds them, after.
        let touched: Vec<B256> = infos
            .keys()
            .chain(storage.keys())
            .copied()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let records = touched
            .par_iter()
            .map(|hashed| {
                let old = base.account(hashed)?;
                let info = match infos.get(hashed) {
                    Some(Some(info)) => Some((info.nonce, info.balance, info.code_hash)),
                    Some(None) => None,
                    None => old.map(|o| (o.nonce, o.balance, o.code_hash)),
                };
                let Some((nonce, balance, code_hash)) = info else {
                    return Ok((*hashed, None, None));
                };
                let (storage_root, updates) = match storage.get(hashed) {
                    Some(diff) => {
                        let (root, nodes) =
                            storage_root(base, trie_nodes.storage(hashed), hashed, Some(diff))?;
                        let updates = StorageUpdates {
                            wiped: diff.wiped,
                            nodes,
                        };
                        (root, Some(updates))
                    }
                    None => (old.map_or(EMPTY_ROOT_HASH, |o| o.storage_root), None),
                };
                let record = AccountRecord {
                    nonce,
                    balance,
                    code_hash,
                    storage_root,
                };
                Ok((*hashed, Some(record), updates))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;

        let mut accounts = BTreeMap::new();
        let mut storage_updates = BTreeMap::new();
        for (hashed, record, updates) in records {
            if record.is_none() {
                // A deleted account's storage goes with it.
                storage.entry(hashed).or_default().wiped = true;
                storage_updates.insert(
                    hashed,
                    StorageUpdates {
                        wiped: true,
                        nodes: NodeUpdates::default(),
                    },
                );
            } else if let Some(updates) = updates {
                storage_updates.insert(hashed, updates);
            }
            accounts.insert(hashed, record);
        }

        let (state_root, account_updates) = account_root(base, trie_nodes.accounts(), &accounts)?;

        let contracts = changes
            .contracts
            .iter()
            .map(|(hash, code)| (*hash, code.original_bytes()))
            .collect();
        Ok(Self {
            accounts,
            storage,
            contracts,
            state_root,
            trie: TrieUpdates {
                base: nodes.map(TrieNodes::block),
                accounts: account_updates,
                storage: storage_updates,
            },
        })
    }
}

/// The storage root of one account after `diff` (none: as stored), walking `nodes`.
pub(super) fn storage_root(
    base: &(impl HashedState + ?Sized),
    nodes: &BranchNodes,
    hashed_address: &B256,
    diff: Option<&StorageDiff>,
) -> Result<(B256, NodeUpdates), StoreError> {
    let no_changes = BTreeMap::new();
    let wiped = diff.is_some_and(|d| d.wiped);
    let stored = |lo: &B256, hi: &B256| -> Result<EntryIter<'_, U256>, StoreError> {
        if wiped {
            Ok(Box::new(std::iter::empty()))
        } else {
            base.storage_slots(hashed_address, lo, hi)
        }
    };
    trie_root(&TrieInput {
        // After a wipe the old nodes describe nothing.
        nodes: if wiped { &NO_NODES } else { nodes },
        changes: diff.map_or(&no_changes, |d| &d.slots),
        keep: |v: &U256| (!v.is_zero()).then_some(*v),
        stored: &stored,
        encode: |v: &U256, out: &mut Vec<u8>| v.encode(out),
    })
}

/// The state root after replacing `accounts` (`None` deletes), walking `nodes`.
pub(super) fn account_root(
    base: &(impl HashedState + ?Sized),
    nodes: &BranchNodes,
    accounts: &BTreeMap<B256, Option<AccountRecord>>,
) -> Result<(B256, NodeUpdates), StoreError> {
    let stored = |lo: &B256, hi: &B256| base.accounts(lo, hi);
    trie_root(&TrieInput {
        nodes,
        changes: accounts,
        keep: |r: &Option<AccountRecord>| *r,
        stored: &stored,
        encode: |r: &AccountRecord, out: &mut Vec<u8>| r.trie_account().encode(out),
    })
}
