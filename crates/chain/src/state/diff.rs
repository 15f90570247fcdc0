//! A block's state changes keyed as the trie keys them, with the roots they lead to.

use std::collections::BTreeMap;

use alloy_primitives::{B256, Bytes, U256, keccak256};
use alloy_trie::EMPTY_ROOT_HASH;
use revm::database::states::StateChangeset;

use super::{HashedState, root};
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
}

impl HashedStateDiff {
    /// Hashes `changes` against the state in `base` and computes every root they lead to.
    pub fn new(
        base: &(impl HashedState + ?Sized),
        changes: &StateChangeset,
    ) -> Result<Self, StoreError> {
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

        let mut accounts = BTreeMap::new();
        let touched: std::collections::BTreeSet<B256> =
            infos.keys().chain(storage.keys()).copied().collect();
        for hashed in touched {
            let old = base.account(&hashed)?;
            let info = match infos.get(&hashed) {
                Some(Some(info)) => Some((info.nonce, info.balance, info.code_hash)),
                Some(None) => None,
                None => old.map(|o| (o.nonce, o.balance, o.code_hash)),
            };
            let Some((nonce, balance, code_hash)) = info else {
                accounts.insert(hashed, None);
                // A deleted account's storage goes with it.
                storage.entry(hashed).or_default().wiped = true;
                continue;
            };
            let storage_root = match storage.get(&hashed) {
                Some(diff) => root::storage_root(base, &hashed, diff)?,
                None => old.map_or(EMPTY_ROOT_HASH, |o| o.storage_root),
            };
            accounts.insert(
                hashed,
                Some(AccountRecord {
                    nonce,
                    balance,
                    code_hash,
                    storage_root,
                }),
            );
        }

        let state_root = root::state_root(base, &accounts)?;
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
        })
    }
}
