//! A block's changes keyed as the trie keys them, with the roots they lead to.
//!
//! A builder seals many candidate blocks on one parent in a slot, each the last one plus a few
//! orders. [`HashedStateDiff::after`] seals a candidate on top of the previous one: it hashes
//! only what differs between the two, reading the parent's state through the previous
//! candidate's changes ([`Stacked`]) and walking the parent's trie nodes as the previous
//! candidate left them. The result is the same diff, relative to the parent, that
//! [`HashedStateDiff::new`] computes from the parent alone. A builder that knows which keys a
//! round of orders touched hands over just those ([`HashedStateDiff::after_round`]), so a
//! round costs what it changed, not what the block holds.

use std::{
    borrow::Cow,
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::LazyLock,
};

use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_rlp::Encodable;
use alloy_trie::EMPTY_ROOT_HASH;
use parking_lot::{Mutex, MutexGuard};
use rayon::prelude::*;
use revm::database::{BundleState, states::StateChangeset};

use super::{
    EntryIter, HashedState, TrieNodes, TrieUpdates,
    nodes::StorageUpdates,
    root::{BranchNodes, NO_NODES, NodeUpdates, TrieInput, merge, trie_root_split},
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

/// The values changed slots held before a block, as its execution read them. A seal that
/// knows them does not read those slots from the store again; a value here that is not the
/// stored one costs that read, never a wrong root (`root` checks it against the trie).
#[derive(Debug, Clone, Default)]
pub struct SlotsBefore(HashMap<Address, HashMap<U256, U256>>);

impl SlotsBefore {
    /// The values before `bundle` of its changed, non-zero slots, for accounts whose storage
    /// it did not wipe.
    pub fn of(bundle: &BundleState) -> Self {
        let accounts = bundle
            .state
            .iter()
            .filter(|(_, account)| !account.was_destroyed())
            .map(|(address, account)| {
                let slots = account
                    .storage
                    .iter()
                    .filter(|(_, slot)| {
                        slot.is_changed() && !slot.previous_or_original_value.is_zero()
                    })
                    .map(|(key, slot)| (*key, slot.previous_or_original_value))
                    .collect::<HashMap<_, _>>();
                (*address, slots)
            })
            .filter(|(_, slots)| !slots.is_empty())
            .collect();
        Self(accounts)
    }
}

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
    /// Values before the changes of some changed slots ([`SlotsBefore`]), keyed as `storage`.
    slots_before: HashMap<B256, HashMap<B256, U256>>,
}

/// `keccak` of the addresses and slots met lately, shared by every diff in the process: a
/// builder seals block after block over the same accounts and slots, all slot long and slot
/// after slot, and a relay judges blocks over them too. Each is hashed once while it stays
/// in use.
#[derive(Debug, Default)]
struct KeyHashes {
    addresses: HashMap<Address, B256>,
    slots: HashMap<U256, B256>,
}

/// Keys [`KeyHashes`] holds at most (about 80 bytes each); past it, it starts again empty, and
/// the keys in use come back at the next seal.
const KEY_HASHES: usize = 1 << 17;

static SHARED_KEYS: LazyLock<Mutex<KeyHashes>> = LazyLock::new(Mutex::default);

impl KeyHashes {
    /// The process's key hashes, locked: held for hashing one set of changes, never across
    /// the roots' computation.
    fn shared() -> MutexGuard<'static, Self> {
        let mut keys = SHARED_KEYS.lock();
        if keys.addresses.len() + keys.slots.len() > KEY_HASHES {
            keys.addresses.clear();
            keys.slots.clear();
        }
        keys
    }

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

/// What one seal leaves for the next on the same base state: the base's trie nodes as the last
/// diff left them, so the next diff walks them without applying the last one's updates to the
/// base's nodes again.
#[derive(Debug, Clone, Default)]
pub struct DiffMemo {
    /// The base's nodes with the last diff's updates applied, by that diff's state root.
    nodes: Option<(B256, TrieNodes)>,
}

/// Which keys [`HashedChanges::since`] compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Both sides hold a whole block's changes: a key either side holds may differ, and a key
    /// one side lacks has its base value there.
    Whole,
    /// The new side holds the present value of every key that may differ from the earlier
    /// diff (and perhaps more); what it lacks is as the earlier diff left it.
    Touched,
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
        Self {
            accounts,
            storage,
            slots_before: HashMap::new(),
        }
    }

    /// These changes, with the values `before` knows of their slots.
    fn knowing(mut self, before: &SlotsBefore, keys: &mut KeyHashes) -> Self {
        for (address, slots) in &before.0 {
            let hashed = keys.address(*address);
            let known = slots
                .iter()
                .map(|(slot, value)| (keys.slot(*slot), *value))
                .collect();
            self.slots_before.insert(hashed, known);
        }
        self
    }

    /// Whether an account is deleted or its storage wiped: [`HashedStateDiff::after`] leaves
    /// those to the full computation.
    fn deletes(&self) -> bool {
        self.accounts.values().any(Option::is_none) || self.storage.values().any(|s| s.wiped)
    }

    /// What changes from the state after `previous` (a diff on `base`) to the state these
    /// changes (also on `base`) lead to, comparing the keys `scope` names; `None` when an
    /// account `previous` has is gone.
    fn since(
        &self,
        previous: &HashedStateDiff,
        base: &(impl HashedState + ?Sized),
        scope: Scope,
    ) -> Result<Option<Self>, StoreError> {
        let whole = scope == Scope::Whole;
        let earlier = whole.then_some(previous);
        let touched: BTreeSet<&B256> = self
            .accounts
            .keys()
            .chain(self.storage.keys())
            .chain(earlier.into_iter().flat_map(|p| p.accounts.keys()))
            .chain(earlier.into_iter().flat_map(|p| p.storage.keys()))
            .collect();
        let mut step = Self::default();
        for hashed in touched {
            let then = match previous.accounts.get(hashed) {
                Some(record) => record.as_ref().map(fields),
                None => base.account(hashed)?.as_ref().map(fields),
            };
            let now = match self.accounts.get(hashed) {
                Some(fields) => *fields,
                None if whole => base.account(hashed)?.as_ref().map(fields),
                None => then,
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
                .chain(theirs.iter().filter(|_| whole))
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
        Self::new_knowing(base, nodes, changes, &SlotsBefore::default())
    }

    /// [`new`](Self::new), told what some changed slots held before (as execution read them).
    pub fn new_knowing(
        base: &(impl HashedState + Sync + ?Sized),
        nodes: Option<&TrieNodes>,
        changes: &StateChangeset,
        before: &SlotsBefore,
    ) -> Result<Self, StoreError> {
        let hashed_changes = {
            let mut keys = KeyHashes::shared();
            HashedChanges::of(changes, &mut keys).knowing(before, &mut keys)
        };
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
    /// hashed. `memo` carries what one call keeps for the next; `before` is as in
    /// [`new_knowing`](Self::new_knowing).
    ///
    /// Starts from `base` alone when `previous` was computed from other nodes, and when either
    /// deletes an account or wipes a storage (rare, and their tries would have to be rebuilt
    /// from nothing anyway).
    pub fn after(
        previous: Option<&Self>,
        base: &(impl HashedState + Sync + ?Sized),
        nodes: &TrieNodes,
        changes: &StateChangeset,
        before: &SlotsBefore,
        memo: &mut DiffMemo,
    ) -> Result<Self, StoreError> {
        let current = HashedChanges::of(changes, &mut KeyHashes::shared());
        if let Some(previous) = previous.filter(|_| !current.deletes()) {
            let (previous, contracts) = (Cow::Borrowed(previous), contracts(changes));
            let stepped = Self::step(
                previous,
                base,
                nodes,
                &current,
                Scope::Whole,
                contracts,
                memo,
            )?;
            if let Ok(diff) = stepped {
                return Ok(diff);
            }
        }
        // Values before the block hold on `base`, not on `previous`: only here are they of use.
        let current = current.knowing(before, &mut KeyHashes::shared());
        let diff = Self::from_changes(base, Some(nodes), current, changes)?;
        // The next diff starts from this one: the nodes it leaves are made once, here.
        memo.nodes = nodes
            .apply(&diff.trie, nodes.block())
            .map(|applied| (diff.state_root, applied));
        Ok(diff)
    }

    /// The diff [`after`](Self::after) computes for a block whose changes are `previous`'s
    /// plus `round`: `round` holds the present value of every account and slot that may
    /// differ from what `previous` left (an account's fields wherever one of its slots is
    /// there), and code first deployed since. Costs what `round` holds, not the block:
    /// `previous` is built on, not copied.
    ///
    /// Gives `previous` back (`Ok(Err(_))`) where `after` would start from `base`: the caller
    /// hands `after` the whole block.
    pub fn after_round(
        previous: Self,
        base: &(impl HashedState + Sync + ?Sized),
        nodes: &TrieNodes,
        round: &StateChangeset,
        memo: &mut DiffMemo,
    ) -> Result<Result<Self, Self>, StoreError> {
        let current = HashedChanges::of(round, &mut KeyHashes::shared());
        if current.deletes() {
            return Ok(Err(previous));
        }
        let stepped = Self::step(
            Cow::Owned(previous),
            base,
            nodes,
            &current,
            Scope::Touched,
            contracts(round),
            memo,
        )?;
        Ok(stepped.map_err(Cow::into_owned))
    }

    /// `previous` moved on to `current` (compared over `scope`, with the `contracts` it
    /// deployed): the step between them hashed on the state and nodes `previous` leads to.
    /// Gives `previous` back when it deletes, or was not computed from `nodes`.
    fn step<'p>(
        previous: Cow<'p, Self>,
        base: &(impl HashedState + Sync + ?Sized),
        nodes: &TrieNodes,
        current: &HashedChanges,
        scope: Scope,
        contracts: Vec<(B256, Bytes)>,
        memo: &mut DiffMemo,
    ) -> Result<Result<Self, Cow<'p, Self>>, StoreError> {
        let deletes = previous.accounts.values().any(Option::is_none)
            || previous.storage.values().any(|s| s.wiped);
        if deletes || previous.trie.base != Some(nodes.block()) {
            return Ok(Err(previous));
        }
        let kept = memo
            .nodes
            .take()
            .filter(|(root, kept)| *root == previous.state_root && kept.block() == nodes.block());
        let Some(mut previous_nodes) = kept
            .map(|(_, kept)| kept)
            .or_else(|| nodes.apply(&previous.trie, nodes.block()))
        else {
            return Ok(Err(previous));
        };
        let Some(step) = current.since(&previous, base, scope)? else {
            return Ok(Err(previous));
        };
        let stacked = Stacked {
            base,
            top: &previous,
        };
        let hashed = hash(&stacked, &previous_nodes, step)?;
        previous_nodes.update(&hashed.accounts_trie, &hashed.storage_tries);
        memo.nodes = Some((hashed.state_root, previous_nodes));

        let mut diff = previous.into_owned();
        diff.accounts.extend(hashed.accounts);
        for (address, change) in hashed.storage {
            let slots = &mut diff.storage.entry(address).or_default().slots;
            slots.extend(change.slots);
        }
        for (address, updates) in hashed.storage_tries {
            let entry = diff.trie.storage.entry(address).or_default();
            entry.nodes = std::mem::take(&mut entry.nodes).then(&updates.nodes);
        }
        diff.trie.accounts = std::mem::take(&mut diff.trie.accounts).then(&hashed.accounts_trie);
        diff.state_root = hashed.state_root;
        match scope {
            Scope::Whole => diff.contracts = contracts,
            // The round's code joins what the block deployed before it.
            Scope::Touched => {
                for (hash, code) in contracts {
                    if !diff.contracts.iter().any(|(known, _)| *known == hash) {
                        diff.contracts.push((hash, code));
                    }
                }
            }
        }
        Ok(Ok(diff))
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
        slots_before,
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
                return Ok((*hashed, None, None, old));
            };
            let (storage_root, updates) = match storage.get(hashed) {
                Some(diff) => {
                    let (root, nodes) = storage_root(
                        base,
                        trie_nodes.storage(hashed),
                        hashed,
                        Some(diff),
                        slots_before.get(hashed),
                    )?;
                    let updates = StorageUpdates {
                        wiped: diff.wiped,
                        nodes,
                    };
                    (root, Some(updates))
                }
                None => (
                    old.as_ref().map_or(EMPTY_ROOT_HASH, |o| o.storage_root),
                    None,
                ),
            };
            let record = AccountRecord {
                nonce,
                balance,
                code_hash,
                storage_root,
            };
            Ok((*hashed, Some(record), updates, old))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;

    let mut accounts = BTreeMap::new();
    let mut storage_tries = BTreeMap::new();
    // The records read above spare the account trie's walk reading them again.
    let mut before = HashMap::with_capacity(records.len());
    for (hashed, record, updates, old) in records {
        if let Some(old) = old {
            before.insert(hashed, old);
        }
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

    let (state_root, accounts_trie) =
        account_root(base, trie_nodes.accounts(), &accounts, &before)?;
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

/// The storage root of one account after `diff` (none: as stored), walking `nodes`; `before`
/// holds values of changed slots as `base` has them, where the caller knows them.
pub(super) fn storage_root(
    base: &(impl HashedState + Sync + ?Sized),
    nodes: &BranchNodes,
    hashed_address: &B256,
    diff: Option<&StorageDiff>,
    before: Option<&HashMap<B256, U256>>,
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
    trie_root_split(&TrieInput {
        // After a wipe the old nodes describe nothing.
        nodes: if wiped { &NO_NODES } else { nodes },
        changes: diff.map_or(&no_changes, |d| &d.slots),
        keep: |v: &U256| (!v.is_zero()).then_some(*v),
        stored: &stored,
        encode: |v: &U256, out: &mut Vec<u8>| v.encode(out),
        before: &|key: &B256| before.and_then(|slots| slots.get(key)).copied(),
    })
}

/// The state root after replacing `accounts` (`None` deletes), walking `nodes`; `before`
/// holds records of changed accounts as `base` has them, where the caller read them already.
pub(super) fn account_root(
    base: &(impl HashedState + Sync + ?Sized),
    nodes: &BranchNodes,
    accounts: &BTreeMap<B256, Option<AccountRecord>>,
    before: &HashMap<B256, AccountRecord>,
) -> Result<(B256, NodeUpdates), StoreError> {
    let stored = |lo: &B256, hi: &B256| base.accounts(lo, hi);
    trie_root_split(&TrieInput {
        nodes,
        changes: accounts,
        keep: |r: &Option<AccountRecord>| *r,
        stored: &stored,
        encode: |r: &AccountRecord, out: &mut Vec<u8>| r.trie_account().encode(out),
        before: &|hashed: &B256| before.get(hashed).copied(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use cobuild_test_utils::Rng;
    use revm::{
        bytecode::Bytecode, database::states::PlainStorageChangeset, primitives::KECCAK_EMPTY,
        state::AccountInfo,
    };

    use super::*;

    /// A state in memory, as the store would hold it.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub(crate) struct Memory {
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
        pub(crate) fn commit(&mut self, diff: &HashedStateDiff) {
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

    /// A parent state: a few blocks of random changes over the accounts `0..space` committed
    /// from nothing, with its root.
    pub(crate) fn parent_state(rng: &mut Rng, space: u64) -> (Memory, B256) {
        let mut parent = Memory::default();
        for _ in 0..3 {
            let diff = HashedStateDiff::new(&parent, None, &changes(rng, space, false))
                .expect("memory reads");
            parent.commit(&diff);
        }
        let root = HashedStateDiff::new(&parent, None, &StateChangeset::default())
            .expect("memory reads")
            .state_root;
        (parent, root)
    }

    /// Addresses and slots from small spaces, so blocks touch the same keys again.
    fn address(rng: &mut Rng, space: u64) -> Address {
        Address::with_last_byte((rng.next_u64() % space) as u8)
    }

    /// A random block's changes over the accounts `0..space`; `deletes` lets it delete an
    /// account or wipe a storage.
    pub(crate) fn changes(rng: &mut Rng, space: u64, deletes: bool) -> StateChangeset {
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

    /// What a builder hands [`HashedStateDiff::after_round`] when `current` extends `earlier`:
    /// the present value (on `parent`) of every key whose value differs between the two, and
    /// of some that do not; `None` when `current` deletes, which the builder never hands over.
    fn present(
        rng: &mut Rng,
        parent: &Memory,
        earlier: &StateChangeset,
        current: &StateChangeset,
    ) -> Option<StateChangeset> {
        let deletes = current.accounts.iter().any(|(_, info)| info.is_none())
            || current.storage.iter().any(|s| s.wipe_storage);
        if deletes {
            return None;
        }
        let values = |changes: &StateChangeset| {
            let accounts: BTreeMap<Address, Option<AccountInfo>> =
                changes.accounts.iter().cloned().collect();
            let mut slots: BTreeMap<(Address, U256), U256> = BTreeMap::new();
            for change in &changes.storage {
                slots.extend(
                    change
                        .storage
                        .iter()
                        .map(|(k, v)| ((change.address, *k), *v)),
                );
            }
            (accounts, slots)
        };
        let ((then_accounts, then_slots), (now_accounts, now_slots)) =
            (values(earlier), values(current));
        let stored = |address: &Address| {
            parent.accounts.get(&keccak256(address)).map(|record| {
                AccountInfo::new(
                    record.balance,
                    record.nonce,
                    record.code_hash,
                    Bytecode::default(),
                )
            })
        };
        let stored_slot = |address: &Address, slot: &U256| {
            parent
                .storage
                .get(&keccak256(address))
                .and_then(|slots| slots.get(&keccak256(B256::from(*slot))))
                .copied()
                .unwrap_or_default()
        };
        let mut round = StateChangeset::default();
        let addresses: BTreeSet<Address> = then_accounts
            .keys()
            .chain(now_accounts.keys())
            .chain(then_slots.keys().map(|(a, _)| a))
            .chain(now_slots.keys().map(|(a, _)| a))
            .copied()
            .collect();
        for address in addresses {
            let fields = |accounts: &BTreeMap<_, Option<AccountInfo>>| match accounts.get(&address)
            {
                Some(info) => info.clone(),
                None => stored(&address),
            };
            let now = fields(&now_accounts);
            let slots: BTreeSet<U256> = then_slots
                .keys()
                .chain(now_slots.keys())
                .filter(|(a, _)| *a == address)
                .map(|(_, slot)| *slot)
                .collect();
            let value = |values: &BTreeMap<(Address, U256), U256>, slot: &U256| {
                values
                    .get(&(address, *slot))
                    .copied()
                    .unwrap_or_else(|| stored_slot(&address, slot))
            };
            // Only what differs, and a third of what does not.
            let storage: Vec<(U256, U256)> = slots
                .iter()
                .filter(|s| {
                    value(&now_slots, s) != value(&then_slots, s)
                        || rng.next_u64().is_multiple_of(3)
                })
                .map(|s| (*s, value(&now_slots, s)))
                .collect();
            let changed = now != fields(&then_accounts) || !storage.is_empty();
            if !changed && !rng.next_u64().is_multiple_of(3) {
                continue;
            }
            // An account that does not exist now and did before: only a deletion does that.
            round.accounts.push((address, Some(now?)));
            if !storage.is_empty() {
                round.storage.push(PlainStorageChangeset {
                    address,
                    wipe_storage: false,
                    storage,
                });
            }
        }
        Some(round)
    }

    /// What the changed slots held in `parent`, as execution would have read them.
    fn slots_before(parent: &Memory, changes: &StateChangeset) -> SlotsBefore {
        let mut before = SlotsBefore::default();
        for change in changes.storage.iter().filter(|c| !c.wipe_storage) {
            let Some(stored) = parent.storage.get(&keccak256(change.address)) else {
                continue;
            };
            let slots: HashMap<U256, U256> = change
                .storage
                .iter()
                .filter_map(|(slot, _)| {
                    let value = stored.get(&keccak256(B256::from(*slot)))?;
                    Some((*slot, *value))
                })
                .collect();
            before.0.insert(change.address, slots);
        }
        before
    }

    #[test]
    fn test_key_hashes_are_kept_for_every_later_diff_and_bounded() {
        // Keys no other test uses: the cache is the process's.
        let address = Address::repeat_byte(0xa7);
        let slot = U256::MAX - U256::from(7);
        let changes = StateChangeset {
            accounts: vec![(address, Some(AccountInfo::default()))],
            storage: vec![PlainStorageChangeset {
                address,
                wipe_storage: false,
                storage: vec![(slot, U256::from(1))],
            }],
            contracts: Vec::new(),
        };
        HashedStateDiff::new(&Memory::default(), None, &changes).expect("hashes");
        {
            let keys = KeyHashes::shared();
            assert_eq!(keys.addresses.get(&address), Some(&keccak256(address)));
            assert_eq!(keys.slots.get(&slot), Some(&keccak256(B256::from(slot))));
        }
        // Past the bound the next user starts from nothing (another test's diff may have
        // come between and added its few keys).
        let first = U256::MAX - U256::from(1_000);
        {
            let mut keys = KeyHashes::shared();
            let held = keys.addresses.len() + keys.slots.len();
            for i in 0..=KEY_HASHES - held {
                keys.slot(first - U256::from(i));
            }
        }
        let keys = KeyHashes::shared();
        assert!(!keys.slots.contains_key(&first));
        assert!(keys.addresses.len() + keys.slots.len() < KEY_HASHES / 2);
    }

    #[test]
    fn test_a_seal_after_an_earlier_one_equals_the_seal_from_the_parent() {
        let tag = B256::repeat_byte(0xb1);
        let mut from_rounds = 0;
        for seed in 0..60u64 {
            let mut rng = Rng::new(seed);
            let space = [4u64, 30, 200][(seed % 3) as usize];
            let deletes = seed % 4 == 3;
            // Half the seeds hand over only the keys a round touched, as a builder does.
            let rounds_only = seed % 2 == 0;
            let (parent, root) = parent_state(&mut rng, space);
            let nodes = TrieNodes::build(&parent, tag, root).expect("nodes match the state");

            // Candidates sealed one after the other, each from the one before.
            let mut candidate = changes(&mut rng, space, deletes);
            let mut memo = DiffMemo::default();
            let before = slots_before(&parent, &candidate);
            let mut previous =
                HashedStateDiff::after(None, &parent, &nodes, &candidate, &before, &mut memo)
                    .expect("memory reads");
            let plain =
                HashedStateDiff::new(&parent, Some(&nodes), &candidate).expect("memory reads");
            assert_eq!(previous, plain, "seed {seed}: from the parent alone");
            // Knowing what the changed slots held changes what is read, not the diff.
            assert_eq!(
                HashedStateDiff::new_knowing(&parent, Some(&nodes), &candidate, &before)
                    .expect("memory reads"),
                plain,
                "seed {seed}: knowing the slots before"
            );
            for round in 0..6 {
                let earlier = candidate;
                candidate = grow(&mut rng, &earlier, space, deletes);
                let fresh =
                    HashedStateDiff::new(&parent, Some(&nodes), &candidate).expect("memory reads");
                let touched =
                    present(&mut rng, &parent, &earlier, &candidate).filter(|_| rounds_only);
                // As a builder does: the round alone where it can, else the whole block.
                let mut earlier_diff = Some(previous);
                let mut stepped = None;
                if let Some(round) = touched {
                    let diff = earlier_diff.take().expect("kept");
                    match HashedStateDiff::after_round(diff, &parent, &nodes, &round, &mut memo)
                        .expect("memory reads")
                    {
                        Ok(diff) => {
                            from_rounds += 1;
                            stepped = Some(diff);
                        }
                        Err(diff) => earlier_diff = Some(diff),
                    }
                }
                let stepped = match stepped {
                    Some(diff) => diff,
                    None => HashedStateDiff::after(
                        earlier_diff.as_ref(),
                        &parent,
                        &nodes,
                        &candidate,
                        &slots_before(&parent, &candidate),
                        &mut memo,
                    )
                    .expect("memory reads"),
                };
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
        // The seeds are fixed: most rounds that hand over only their keys take that path.
        assert!(
            from_rounds > 100,
            "{from_rounds} rounds from their keys alone"
        );
    }
}
