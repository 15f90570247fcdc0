//! A block's changes keyed as the trie keys them, with the roots they lead to.
//!
//! A builder seals many candidate blocks on one parent in a slot, each the last one plus a few
//! orders. [`HashedStateDiff::after`] seals a candidate on top of the previous one: it hashes
//! only what differs between the two, reading the parent's state through the previous
//! candidate's changes ([`Stacked`]) and walking the parent's trie nodes as the previous
//! candidate left them. The result is the same diff, relative to the parent, that
//! [`HashedStateDiff::new`] computes from the parent alone.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_rlp::Encodable;
use alloy_trie::EMPTY_ROOT_HASH;
use rayon::prelude::*;
use revm::database::states::StateChangeset;

use super::{
    EntryIter, HashedState, TrieNodes, TrieUpdates,
    nodes::StorageUpdates,
    root::{BranchNodes, NO_NODES, NodeUpdates, TrieInput, merge, trie_root},
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

/// An account's fields other than its storage root: what execution sets.
type Fields = (u64, U256, B256);

fn fields(record: &AccountRecord) -> Fields {
    (record.nonce, record.balance, record.code_hash)
}

/// Execution's changes keyed as the trie keys them, before any root is computed.
#[derive(Debug, Default)]
struct HashedChanges {
    /// New fields by `keccak(address)`; `None` deletes the account.
    accounts: BTreeMap<B256, Option<Fields>>,
    /// Storage changes by `keccak(address)`.
    storage: BTreeMap<B256, StorageDiff>,
}

/// `keccak` of the addresses and slots seen so far. A builder that seals one growing block
/// again and again meets the same keys every time; it hashes each once.
#[derive(Debug, Clone, Default)]
pub struct KeyHashes {
    addresses: HashMap<Address, B256>,
    slots: HashMap<U256, B256>,
}

impl KeyHashes {
    fn address(&mut self, address: Address) -> B256 {
        *self
            .addresses
            .entry(address)
            .or_insert_with(|| keccak256(address))
    }

    fn slot(&mut self, slot: U256) -> B256 {
        *self
            .slots
            .entry(slot)
            .or_insert_with(|| keccak256(B256::from(slot)))
    }
}

impl HashedChanges {
    fn of(changes: &StateChangeset, keys: &mut KeyHashes) -> Self {
        let accounts = changes
            .accounts
            .iter()
            .map(|(address, info)| {
                let fields = info.as_ref().map(|i| (i.nonce, i.balance, i.code_hash));
                (keys.address(*address), fields)
            })
            .collect();
        let mut storage: BTreeMap<B256, StorageDiff> = BTreeMap::new();
        for change in &changes.storage {
            let entry = storage.entry(keys.address(change.address)).or_default();
            entry.wiped |= change.wipe_storage;
            for (slot, value) in &change.storage {
                entry.slots.insert(keys.slot(*slot), *value);
            }
        }
        Self { accounts, storage }
    }

    /// Whether an account is deleted or its storage wiped: [`HashedStateDiff::after`] leaves
    /// those to the full computation.
    fn deletes(&self) -> bool {
        self.accounts.values().any(Option::is_none) || self.storage.values().any(|s| s.wiped)
    }

    /// What changes from the state after `previous` (a diff on `base`) to the state these
    /// changes (also on `base`) lead to; `None` when an account `previous` has is gone.
    fn since(
        &self,
        previous: &HashedStateDiff,
        base: &(impl HashedState + ?Sized),
    ) -> Result<Option<Self>, StoreError> {
        let touched: BTreeSet<&B256> = self
            .accounts
            .keys()
            .chain(self.storage.keys())
            .chain(previous.accounts.keys())
            .chain(previous.storage.keys())
            .collect();
        let mut step = Self::default();
        for hashed in touched {
            let now = match self.accounts.get(hashed) {
                Some(fields) => *fields,
                None => base.account(hashed)?.as_ref().map(fields),
            };
            let then = match previous.accounts.get(hashed) {
                Some(record) => record.as_ref().map(fields),
                None => base.account(hashed)?.as_ref().map(fields),
            };
            let Some(now) = now else {
                return Ok(None);
            };
            if then != Some(now) {
                step.accounts.insert(*hashed, Some(now));
            }
            let (ours, theirs) = (self.storage.get(hashed), previous.storage.get(hashed));
            let keys: BTreeSet<&B256> = ours
                .iter()
                .chain(theirs.iter())
                .flat_map(|s| s.slots.keys())
                .collect();
            let mut slots = BTreeMap::new();
            for key in keys {
                let value = |diff: Option<&StorageDiff>| match diff.and_then(|d| d.slots.get(key)) {
                    Some(value) => Ok(*value),
                    None => stored_slot(base, hashed, key),
                };
                let now = value(ours)?;
                if now != value(theirs)? {
                    slots.insert(*key, now);
                }
            }
            if !slots.is_empty() {
                step.storage.insert(
                    *hashed,
                    StorageDiff {
                        wiped: false,
                        slots,
                    },
                );
            }
        }
        Ok(Some(step))
    }
}

fn stored_slot(
    base: &(impl HashedState + ?Sized),
    hashed: &B256,
    slot: &B256,
) -> Result<U256, StoreError> {
    Ok(base
        .storage_slots(hashed, slot, slot)?
        .next()
        .transpose()?
        .map_or(U256::ZERO, |(_, value)| value))
}

/// Roots and records of hashed changes: what [`HashedStateDiff`] holds but its code.
struct Hashed {
    accounts: BTreeMap<B256, Option<AccountRecord>>,
    storage: BTreeMap<B256, StorageDiff>,
    state_root: B256,
    accounts_trie: NodeUpdates,
    storage_tries: BTreeMap<B256, StorageUpdates>,
}

impl HashedStateDiff {
    /// Hashes `changes` against the state in `base` and computes every root they lead to,
    /// walking `nodes` (the base's trie nodes) where given, else reading every leaf.
    pub fn new(
        base: &(impl HashedState + Sync + ?Sized),
        nodes: Option<&TrieNodes>,
        changes: &StateChangeset,
    ) -> Result<Self, StoreError> {
        let hashed_changes = HashedChanges::of(changes, &mut KeyHashes::default());
        Self::from_changes(base, nodes, hashed_changes, changes)
    }

    /// The diff of `hashed_changes` (the hashed form of `changes`) on `base`, walking `nodes`
    /// where given.
    fn from_changes(
        base: &(impl HashedState + Sync + ?Sized),
        nodes: Option<&TrieNodes>,
        hashed_changes: HashedChanges,
        changes: &StateChangeset,
    ) -> Result<Self, StoreError> {
        let empty = TrieNodes::default();
        let hashed = hash(base, nodes.unwrap_or(&empty), hashed_changes)?;
        Ok(Self {
            accounts: hashed.accounts,
            storage: hashed.storage,
            contracts: contracts(changes),
            state_root: hashed.state_root,
            trie: TrieUpdates {
                base: nodes.map(TrieNodes::block),
                accounts: hashed.accounts_trie,
                storage: hashed.storage_tries,
            },
        })
    }

    /// The same diff as [`new`](Self::new) with `nodes`, computed from `previous` where given,
    /// an earlier diff on the same `base` and `nodes`: only what differs between the two is
    /// hashed. Keys are hashed through `keys`, which remembers them for the next call.
    ///
    /// Starts from `base` alone when `previous` was computed from other nodes, and when either
    /// deletes an account or wipes a storage (rare, and their tries would have to be rebuilt
    /// from nothing anyway).
    pub fn after(
        previous: Option<&Self>,
        base: &(impl HashedState + Sync + ?Sized),
        nodes: &TrieNodes,
        changes: &StateChangeset,
        keys: &mut KeyHashes,
    ) -> Result<Self, StoreError> {
        let current = HashedChanges::of(changes, keys);
        let Some(previous) = previous else {
            return Self::from_changes(base, Some(nodes), current, changes);
        };
        let previous_deletes = previous.accounts.values().any(Option::is_none)
            || previous.storage.values().any(|s| s.wiped);
        let previous_nodes = (previous.trie.base == Some(nodes.block()))
            .then(|| nodes.apply(&previous.trie, nodes.block()))
            .flatten();
        let Some(previous_nodes) = previous_nodes.filter(|_| !previous_deletes) else {
            return Self::from_changes(base, Some(nodes), current, changes);
        };
        if current.deletes() {
            return Self::from_changes(base, Some(nodes), current, changes);
        }
        let Some(step) = current.since(previous, base)? else {
            return Self::from_changes(base, Some(nodes), current, changes);
        };
        let stacked = Stacked {
            base,
            top: previous,
        };
        let hashed = hash(&stacked, &previous_nodes, step)?;

        let mut accounts = previous.accounts.clone();
        accounts.extend(hashed.accounts);
        let mut storage = previous.storage.clone();
        for (address, diff) in hashed.storage {
            storage.entry(address).or_default().slots.extend(diff.slots);
        }
        let mut storage_tries = previous.trie.storage.clone();
        for (address, updates) in hashed.storage_tries {
            let entry = storage_tries.entry(address).or_default();
            entry.nodes = entry.nodes.then(&updates.nodes);
        }
        Ok(Self {
            accounts,
            storage,
            contracts: contracts(changes),
            state_root: hashed.state_root,
            trie: TrieUpdates {
                base: previous.trie.base,
                accounts: previous.trie.accounts.then(&hashed.accounts_trie),
                storage: storage_tries,
            },
        })
    }
}

fn contracts(changes: &StateChangeset) -> Vec<(B256, Bytes)> {
    changes
        .contracts
        .iter()
        .map(|(hash, code)| (*hash, code.original_bytes()))
        .collect()
}

/// Computes every root `changes` lead to on `base`, walking `trie_nodes`.
fn hash(
    base: &(impl HashedState + Sync + ?Sized),
    trie_nodes: &TrieNodes,
    changes: HashedChanges,
) -> Result<Hashed, StoreError> {
    let HashedChanges {
        accounts: infos,
        mut storage,
    } = changes;
    // Storage tries are independent: their roots are computed in parallel, and the
    // account trie, which holds them, after.
    let touched: Vec<B256> = infos
        .keys()
        .chain(storage.keys())
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let records = touched
        .par_iter()
        .map(|hashed| {
            let old = base.account(hashed)?;
            let info = match infos.get(hashed) {
                Some(info) => *info,
                None => old.as_ref().map(fields),
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
    let mut storage_tries = BTreeMap::new();
    for (hashed, record, updates) in records {
        if record.is_none() {
            // A deleted account's storage goes with it.
            storage.entry(hashed).or_default().wiped = true;
            storage_tries.insert(
                hashed,
                StorageUpdates {
                    wiped: true,
                    nodes: NodeUpdates::default(),
                },
            );
        } else if let Some(updates) = updates {
            storage_tries.insert(hashed, updates);
        }
        accounts.insert(hashed, record);
    }

    let (state_root, accounts_trie) = account_root(base, trie_nodes.accounts(), &accounts)?;
    Ok(Hashed {
        accounts,
        storage,
        state_root,
        accounts_trie,
        storage_tries,
    })
}

/// The state after an earlier diff on a base state: the diff's records and slots over the
/// base's.
struct Stacked<'a, S: ?Sized> {
    base: &'a S,
    top: &'a HashedStateDiff,
}

impl<S: HashedState + ?Sized> HashedState for Stacked<'_, S> {
    fn account(&self, hashed: &B256) -> Result<Option<AccountRecord>, StoreError> {
        match self.top.accounts.get(hashed) {
            Some(record) => Ok(*record),
            None => self.base.account(hashed),
        }
    }

    fn accounts(&self, lo: &B256, hi: &B256) -> Result<EntryIter<'_, AccountRecord>, StoreError> {
        let mut out = Vec::new();
        merge(
            self.base.accounts(lo, hi)?,
            self.top.accounts.range(*lo..=*hi),
            |record: &Option<AccountRecord>| *record,
            |key, record| out.push(Ok((*key, *record))),
        )?;
        Ok(Box::new(out.into_iter()))
    }

    fn storage_slots(
        &self,
        hashed: &B256,
        lo: &B256,
        hi: &B256,
    ) -> Result<EntryIter<'_, U256>, StoreError> {
        let Some(diff) = self.top.storage.get(hashed) else {
            return self.base.storage_slots(hashed, lo, hi);
        };
        let below: EntryIter<'_, U256> = if diff.wiped {
            Box::new(std::iter::empty())
        } else {
            self.base.storage_slots(hashed, lo, hi)?
        };
        let mut out = Vec::new();
        merge(
            below,
            diff.slots.range(*lo..=*hi),
            |value: &U256| (!value.is_zero()).then_some(*value),
            |key, value| out.push(Ok((*key, *value))),
        )?;
        Ok(Box::new(out.into_iter()))
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

#[cfg(test)]
mod tests {
    use cobuild_test_utils::Rng;
    use revm::{
        bytecode::Bytecode, database::states::PlainStorageChangeset, primitives::KECCAK_EMPTY,
        state::AccountInfo,
    };

    use super::*;

    /// A state in memory, as the store would hold it.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    struct Memory {
        accounts: BTreeMap<B256, AccountRecord>,
        storage: BTreeMap<B256, BTreeMap<B256, U256>>,
    }

    impl HashedState for Memory {
        fn account(&self, hashed: &B256) -> Result<Option<AccountRecord>, StoreError> {
            Ok(self.accounts.get(hashed).copied())
        }
        fn accounts(
            &self,
            lo: &B256,
            hi: &B256,
        ) -> Result<EntryIter<'_, AccountRecord>, StoreError> {
            Ok(Box::new(
                self.accounts.range(*lo..=*hi).map(|(k, v)| Ok((*k, *v))),
            ))
        }
        fn storage_slots(
            &self,
            hashed: &B256,
            lo: &B256,
            hi: &B256,
        ) -> Result<EntryIter<'_, U256>, StoreError> {
            let (lo, hi) = (*lo, *hi);
            let slots = self.storage.get(hashed).into_iter();
            Ok(Box::new(slots.flat_map(move |s| {
                s.range(lo..=hi).map(|(k, v)| Ok((*k, *v)))
            })))
        }
    }

    impl Memory {
        fn commit(&mut self, diff: &HashedStateDiff) {
            for (hashed, change) in &diff.storage {
                let slots = self.storage.entry(*hashed).or_default();
                if change.wiped {
                    slots.clear();
                }
                for (slot, value) in &change.slots {
                    if value.is_zero() {
                        slots.remove(slot);
                    } else {
                        slots.insert(*slot, *value);
                    }
                }
            }
            self.storage.retain(|_, slots| !slots.is_empty());
            for (hashed, record) in &diff.accounts {
                match record {
                    Some(record) => self.accounts.insert(*hashed, *record),
                    None => self.accounts.remove(hashed),
                };
            }
        }
    }

    /// Addresses and slots from small spaces, so blocks touch the same keys again.
    fn address(rng: &mut Rng, space: u64) -> Address {
        Address::with_last_byte((rng.next_u64() % space) as u8)
    }

    /// A random block's changes over the accounts `0..space`; `deletes` lets it delete an
    /// account or wipe a storage.
    fn changes(rng: &mut Rng, space: u64, deletes: bool) -> StateChangeset {
        let mut accounts = BTreeMap::new();
        let mut storage: BTreeMap<Address, PlainStorageChangeset> = BTreeMap::new();
        for _ in 0..1 + rng.next_u64() % 40 {
            let address = address(rng, space);
            let info = if deletes && rng.next_u64().is_multiple_of(25) {
                None
            } else {
                let balance = U256::from(rng.next_u64() % 5 + 1);
                let nonce = rng.next_u64() % 3;
                Some(AccountInfo::new(
                    balance,
                    nonce,
                    KECCAK_EMPTY,
                    Bytecode::default(),
                ))
            };
            accounts.insert(address, info.clone());
            if info.is_some() && rng.next_u64().is_multiple_of(2) {
                let entry = storage
                    .entry(address)
                    .or_insert_with(|| PlainStorageChangeset {
                        address,
                        wipe_storage: deletes && rng.next_u64().is_multiple_of(30),
                        storage: Vec::new(),
                    });
                for _ in 0..1 + rng.next_u64() % 20 {
                    // A third of the writes clear the slot.
                    let value = match rng.next_u64() % 3 {
                        0 => U256::ZERO,
                        _ => U256::from(rng.next_u64() % 4 + 1),
                    };
                    entry.storage.push((U256::from(rng.next_u64() % 60), value));
                }
            }
        }
        storage.retain(|address, _| matches!(accounts.get(address), Some(Some(_))));
        StateChangeset {
            accounts: accounts.into_iter().collect(),
            storage: storage.into_values().collect(),
            contracts: Vec::new(),
        }
    }

    /// A later candidate on the same parent: `earlier` with some of its changes undone, some
    /// values changed, and more changes (a growing block sealed again, or another ordering).
    fn grow(rng: &mut Rng, earlier: &StateChangeset, space: u64, deletes: bool) -> StateChangeset {
        let mut accounts: BTreeMap<Address, Option<AccountInfo>> = earlier
            .accounts
            .iter()
            .filter(|_| !rng.next_u64().is_multiple_of(8))
            .cloned()
            .collect();
        let mut storage: BTreeMap<Address, PlainStorageChangeset> = earlier
            .storage
            .iter()
            .filter(|change| accounts.contains_key(&change.address))
            .map(|change| (change.address, change.clone()))
            .collect();
        for change in changes(rng, space, deletes).storage {
            storage
                .entry(change.address)
                .and_modify(|c| c.storage.extend(change.storage.iter().copied()))
                .or_insert(change);
        }
        for (address, info) in changes(rng, space, deletes).accounts {
            accounts.insert(address, info);
        }
        // Storage belongs to accounts that exist in the block.
        storage.retain(|address, _| matches!(accounts.get(address), Some(Some(_))));
        StateChangeset {
            accounts: accounts.into_iter().collect(),
            storage: storage.into_values().collect(),
            contracts: Vec::new(),
        }
    }

    #[test]
    fn test_a_seal_after_an_earlier_one_equals_the_seal_from_the_parent() {
        let tag = B256::repeat_byte(0xb1);
        for seed in 0..60u64 {
            let mut rng = Rng::new(seed);
            let space = [4u64, 30, 200][(seed % 3) as usize];
            let deletes = seed % 4 == 3;
            // The parent: a few blocks of changes committed from nothing.
            let mut parent = Memory::default();
            for _ in 0..3 {
                let diff = HashedStateDiff::new(&parent, None, &changes(&mut rng, space, false))
                    .expect("memory reads");
                parent.commit(&diff);
            }
            let root = HashedStateDiff::new(&parent, None, &StateChangeset::default())
                .expect("memory reads")
                .state_root;
            let nodes = TrieNodes::build(&parent, tag, root).expect("nodes match the state");

            // Candidates sealed one after the other, each from the one before.
            let mut candidate = changes(&mut rng, space, deletes);
            let mut keys = KeyHashes::default();
            let mut previous = HashedStateDiff::after(None, &parent, &nodes, &candidate, &mut keys)
                .expect("memory reads");
            assert_eq!(
                previous,
                HashedStateDiff::new(&parent, Some(&nodes), &candidate).expect("memory reads"),
                "seed {seed}: from the parent alone"
            );
            for round in 0..6 {
                candidate = grow(&mut rng, &candidate, space, deletes);
                let fresh =
                    HashedStateDiff::new(&parent, Some(&nodes), &candidate).expect("memory reads");
                let stepped =
                    HashedStateDiff::after(Some(&previous), &parent, &nodes, &candidate, &mut keys)
                        .expect("memory reads");
                let at = format!("seed {seed} round {round}");
                assert_eq!(stepped.state_root, fresh.state_root, "{at}");
                // Committed, both leave the same state and the same trie nodes.
                let (mut a, mut b) = (parent.clone(), parent.clone());
                a.commit(&stepped);
                b.commit(&fresh);
                assert_eq!(a, b, "{at}");
                assert_eq!(
                    nodes.apply(&stepped.trie, B256::ZERO),
                    nodes.apply(&fresh.trie, B256::ZERO),
                    "{at}"
                );
                // And those nodes are the ones a full rebuild of the new state stores.
                let rebuilt = TrieNodes::build(&a, B256::ZERO, fresh.state_root)
                    .expect("the stepped state hashes to its root");
                assert_eq!(
                    nodes.apply(&stepped.trie, B256::ZERO),
                    Some(rebuilt),
                    "{at}"
                );
                previous = stepped;
            }
        }
    }
}
