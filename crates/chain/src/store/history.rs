//! What each recent block overwrote, so the state before it can be read again.
//!
//! A block's reverts are the values its changes replaced: every account and storage slot it
//! wrote, as they were before it. The state after block `n` is the head state with, for each
//! key, the value recorded by the earliest block after `n` that wrote it. Every block keeps its
//! reverts unless the node is given a window (`--history-blocks`), which is never narrower than
//! [`HISTORY_BLOCKS`]: the ledger reads the state a block was built on while the block's record
//! is agreed, a few slots after it.
//!
//! Beside each block's reverts, an index per key (as reth's change sets are): for every account
//! and slot a block wrote, one entry keyed by the key and the block, holding the value it
//! replaced. The state after block `n` then reads a key with one range scan, from `n + 1` on:
//! the first entry is the value it had after `n`; no entry means no later block wrote it, and
//! the head's value holds. A query costs the same for the genesis as for the last block.
//!
//! The block's commit writes only its reverts; the index is written after it, by a thread of
//! its own (see [`super::indexer`]), so history never slows the commit. Until the index has
//! caught up, a past state reads the few blocks it does not cover from their reverts.

use std::collections::BTreeMap;

use alloy_primitives::{B256, Bytes, U256};
use alloy_rlp::{Decodable, Encodable, RlpDecodable, RlpEncodable};
use redb::{ReadableTable, TableDefinition};

use super::{AccountRecord, HEAD_KEY, META, REVERTS, StoreError, meta_u64};
use crate::state::{EntryIter, HashedState};

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

/// (hashed address, block) → the account record the block replaced (empty: none).
pub(super) const ACCOUNT_HISTORY: TableDefinition<'_, &[u8; 40], &[u8]> =
    TableDefinition::new("account_history");
/// (hashed address, hashed slot, block) → the slot value the block replaced.
pub(super) const SLOT_HISTORY: TableDefinition<'_, &[u8; 72], &[u8; 32]> =
    TableDefinition::new("slot_history");

fn account_key(hashed: &B256, block: u64) -> [u8; 40] {
    let mut key = [0u8; 40];
    key[..32].copy_from_slice(hashed.as_slice());
    key[32..].copy_from_slice(&block.to_be_bytes());
    key
}

fn slot_key(hashed_address: &B256, hashed_slot: &B256, block: u64) -> [u8; 72] {
    let mut key = [0u8; 72];
    key[..32].copy_from_slice(hashed_address.as_slice());
    key[32..64].copy_from_slice(hashed_slot.as_slice());
    key[64..].copy_from_slice(&block.to_be_bytes());
    key
}

/// The first block the per-key index does not cover yet.
pub(super) const HISTORY_NEXT_KEY: &str = "history_next";
/// Set by stores that indexed each block in its own commit: their index covers every block.
const LEGACY_INDEXED_KEY: &str = "history_indexed";

/// Indexes the kept blocks the index does not cover yet and drops the reverts (and their
/// index entries) of the blocks older than `window`. Returns how many blocks it indexed.
pub(super) fn index_pending(txn: &redb::WriteTransaction, window: u64) -> Result<u64, StoreError> {
    let mut meta = txn.open_table(META)?;
    let Some(head) = meta_u64(&meta, HEAD_KEY)? else {
        return Ok(0);
    };
    let next = match meta_u64(&meta, HISTORY_NEXT_KEY)? {
        Some(next) => next,
        None if meta.remove(LEGACY_INDEXED_KEY)?.is_some() => head + 1,
        None => 0,
    };
    let mut reverts = txn.open_table(REVERTS)?;
    let mut accounts = txn.open_table(ACCOUNT_HISTORY)?;
    let mut slots = txn.open_table(SLOT_HISTORY)?;
    let mut blocks = 0u64;
    for entry in reverts.range(next..)? {
        let (block, raw) = entry?;
        let block_reverts = BlockReverts::from_bytes(raw.value())?;
        index(
            &mut accounts,
            &mut slots,
            block.value(),
            &block_reverts,
            true,
        )?;
        blocks += 1;
    }
    if let Some(old) = head.checked_sub(window) {
        // Everything up to `old`: a window narrowed since the last start prunes at once.
        let pruned: Vec<(u64, BlockReverts)> = reverts
            .range(..=old)?
            .map(|entry| {
                let (block, raw) = entry?;
                Ok((block.value(), BlockReverts::from_bytes(raw.value())?))
            })
            .collect::<Result<_, StoreError>>()?;
        for (block, block_reverts) in &pruned {
            index(&mut accounts, &mut slots, *block, block_reverts, false)?;
        }
        reverts.retain_in(..=old, |_, _| false)?;
    }
    meta.insert(HISTORY_NEXT_KEY, (head + 1).to_be_bytes().as_slice())?;
    Ok(blocks)
}

/// Adds (`insert`) or removes block `number`'s reverts to or from the per-key index.
pub(super) fn index(
    accounts: &mut redb::Table<'_, &'static [u8; 40], &'static [u8]>,
    slots: &mut redb::Table<'_, &'static [u8; 72], &'static [u8; 32]>,
    number: u64,
    reverts: &BlockReverts,
    insert: bool,
) -> Result<(), StoreError> {
    for revert in &reverts.accounts {
        let key = account_key(&revert.hashed, number);
        if insert {
            accounts.insert(&key, revert.record.as_ref())?;
        } else {
            accounts.remove(&key)?;
        }
    }
    for revert in &reverts.slots {
        let key = slot_key(&revert.hashed_address, &revert.hashed_slot, number);
        if insert {
            slots.insert(&key, &revert.value.to_be_bytes::<32>())?;
        } else {
            slots.remove(&key)?;
        }
    }
    Ok(())
}

/// The state after one block, as it differs from the head's: read through the per-key index
/// for the blocks it covers, and from the reverts of the blocks after them.
#[derive(Debug, Clone)]
pub struct PastState {
    after: u64,
    /// The first block the index lookups leave out: it and the later ones are in the maps.
    indexed_to: u64,
    accounts: BTreeMap<B256, Option<AccountRecord>>,
    slots: BTreeMap<(B256, B256), U256>,
}

impl PastState {
    /// The state after block `after`, with the index covering the blocks before
    /// `indexed_to` and `reverts` holding those from `max(after + 1, indexed_to)` on, oldest
    /// first.
    pub(super) fn load(
        after: u64,
        indexed_to: u64,
        reverts: impl Iterator<Item = Result<BlockReverts, StoreError>>,
    ) -> Result<Self, StoreError> {
        let mut past = Self {
            after,
            indexed_to: indexed_to.max(after + 1),
            accounts: BTreeMap::new(),
            slots: BTreeMap::new(),
        };
        // The earliest block after `after` that wrote a key holds the key's value after it.
        for block in reverts {
            let block = block?;
            for revert in block.accounts {
                if let std::collections::btree_map::Entry::Vacant(entry) =
                    past.accounts.entry(revert.hashed)
                {
                    entry.insert(decode_record(&revert.record)?);
                }
            }
            for revert in block.slots {
                past.slots
                    .entry((revert.hashed_address, revert.hashed_slot))
                    .or_insert(revert.value);
            }
        }
        Ok(past)
    }

    /// Whether every key written after the block is in the maps (no index lookups), so the
    /// state can be walked in key order.
    const fn is_whole(&self) -> bool {
        self.indexed_to == self.after + 1
    }

    /// The account at `hashed` in the past state, if a later block wrote it (else the head's
    /// value holds).
    pub(crate) fn account(
        &self,
        table: &impl ReadableTable<&'static [u8; 40], &'static [u8]>,
        hashed: &B256,
    ) -> Result<Option<Option<AccountRecord>>, StoreError> {
        if !self.is_whole() {
            let lo = account_key(hashed, self.after + 1);
            let hi = account_key(hashed, self.indexed_to - 1);
            if let Some(entry) = table.range::<&[u8; 40]>(&lo..=&hi)?.next() {
                let (_, record) = entry?;
                return Ok(Some(decode_record(record.value())?));
            }
        }
        Ok(self.accounts.get(hashed).copied())
    }

    /// A storage value in the past state, if a later block wrote it.
    pub(crate) fn slot(
        &self,
        table: &impl ReadableTable<&'static [u8; 72], &'static [u8; 32]>,
        hashed_address: &B256,
        hashed_slot: &B256,
    ) -> Result<Option<U256>, StoreError> {
        if !self.is_whole() {
            let lo = slot_key(hashed_address, hashed_slot, self.after + 1);
            let hi = slot_key(hashed_address, hashed_slot, self.indexed_to - 1);
            if let Some(entry) = table.range::<&[u8; 72]>(&lo..=&hi)?.next() {
                let (_, value) = entry?;
                return Ok(Some(U256::from_be_bytes(*value.value())));
            }
        }
        Ok(self.slots.get(&(*hashed_address, *hashed_slot)).copied())
    }
}

fn decode_record(raw: &[u8]) -> Result<Option<AccountRecord>, StoreError> {
    if raw.is_empty() {
        return Ok(None);
    }
    Ok(Some(AccountRecord::decode(raw)?))
}

/// A past state laid over the head's tables, in key order: what its roots and proofs walk.
/// Holds every key written after the block in memory, so it is for recent blocks.
pub(crate) struct PastTrieState<'a> {
    pub(super) head: &'a super::ReadView,
    pub(super) past: PastState,
}

impl HashedState for PastTrieState<'_> {
    fn account(&self, hashed: &B256) -> Result<Option<AccountRecord>, StoreError> {
        match self.past.accounts.get(hashed) {
            Some(record) => Ok(*record),
            None => self.head.account(hashed),
        }
    }

    fn accounts(&self, lo: &B256, hi: &B256) -> Result<EntryIter<'_, AccountRecord>, StoreError> {
        let over = self.past.accounts.range(*lo..=*hi).map(|(k, v)| (*k, *v));
        Ok(overlay(Box::new(self.head.accounts(lo, hi)?), over))
    }

    fn storage_slots(
        &self,
        hashed: &B256,
        lo: &B256,
        hi: &B256,
    ) -> Result<EntryIter<'_, U256>, StoreError> {
        let over = self
            .past
            .slots
            .range((*hashed, *lo)..=(*hashed, *hi))
            .map(|((_, slot), value)| (*slot, (!value.is_zero()).then_some(*value)));
        Ok(overlay(
            Box::new(self.head.storage_slots(hashed, lo, hi)?),
            over,
        ))
    }
}

/// `base` with the entries of `over` put in place of its own (`None`: removed); both sorted.
fn overlay<'a, V: 'a>(
    base: EntryIter<'a, V>,
    over: impl Iterator<Item = (B256, Option<V>)> + 'a,
) -> EntryIter<'a, V> {
    let mut base = base.peekable();
    let mut over = over.peekable();
    Box::new(std::iter::from_fn(move || {
        loop {
            let next_over = over.peek().map(|(key, _)| *key);
            let next_base = match base.peek() {
                Some(Ok((key, _))) => Some(*key),
                Some(Err(_)) => return base.next(),
                None => None,
            };
            match (next_base, next_over) {
                (None, None) => return None,
                (Some(b), Some(o)) if b < o => return base.next(),
                (Some(_), None) => return base.next(),
                (b, Some(o)) => {
                    if b == Some(o) {
                        base.next();
                    }
                    if let Some((key, Some(value))) = over.next() {
                        return Some(Ok((key, value)));
                    }
                }
            }
        }
    }))
}

impl super::ReadView {
    /// The first block the per-key history index does not cover yet.
    fn history_indexed_to(&self) -> Result<u64, StoreError> {
        Ok(meta_u64(&self.meta, HISTORY_NEXT_KEY)?.unwrap_or(0))
    }

    /// Whether block `number`'s state can be read again: every block after it up to the
    /// head keeps its reverts (kept blocks are contiguous up to the head).
    fn keeps_after(&self, number: u64) -> Result<bool, StoreError> {
        let head = self.head_number()?.unwrap_or_default();
        if number > head {
            return Ok(false);
        }
        let oldest = self.reverts.first()?.map(|(block, _)| block.value());
        Ok(number == head || oldest.is_some_and(|oldest| oldest <= number + 1))
    }

    /// The reverts of the blocks from `from` on, oldest first.
    fn reverts_from(
        &self,
        from: u64,
    ) -> Result<impl Iterator<Item = Result<BlockReverts, StoreError>> + '_, StoreError> {
        Ok(self.reverts.range(from..)?.map(|entry| {
            let (_, raw) = entry?;
            BlockReverts::from_bytes(raw.value())
        }))
    }

    /// The state after block `number` as it differs from the head's: `None` when a block
    /// after it no longer keeps what it overwrote (older than the history window, or stored
    /// before the store kept history) or `number` is past the head.
    pub fn past_state(&self, number: u64) -> Result<Option<PastState>, StoreError> {
        if !self.keeps_after(number)? {
            return Ok(None);
        }
        let indexed_to = self.history_indexed_to()?;
        let from = indexed_to.max(number + 1);
        Ok(Some(PastState::load(
            number,
            indexed_to,
            self.reverts_from(from)?,
        )?))
    }

    /// The state after block `number` in key order, for its roots and proofs: every key
    /// written since, read into memory (so the cost grows with the blocks since). `None` as
    /// for [`Self::past_state`].
    pub(crate) fn past_trie_state(
        &self,
        number: u64,
    ) -> Result<Option<PastTrieState<'_>>, StoreError> {
        if !self.keeps_after(number)? {
            return Ok(None);
        }
        let past = PastState::load(number, number + 1, self.reverts_from(number + 1)?)?;
        Ok(Some(PastTrieState { head: self, past }))
    }

    /// The account at `hashed` after block `past`, if a later block wrote it.
    pub(crate) fn past_account(
        &self,
        past: &PastState,
        hashed: &B256,
    ) -> Result<Option<Option<AccountRecord>>, StoreError> {
        past.account(&self.account_history, hashed)
    }

    /// A storage value after block `past`, if a later block wrote it.
    pub(crate) fn past_slot(
        &self,
        past: &PastState,
        hashed_address: &B256,
        hashed_slot: &B256,
    ) -> Result<Option<U256>, StoreError> {
        past.slot(&self.slot_history, hashed_address, hashed_slot)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use alloy_primitives::keccak256;
    use alloy_trie::EMPTY_ROOT_HASH;
    use redb::ReadableTableMetadata;
    use revm::primitives::KECCAK_EMPTY;

    use super::*;
    use crate::{
        state::{HashedStateDiff, StorageDiff},
        store::{META, Store, write_test_block},
    };

    fn record(balance: u64) -> AccountRecord {
        AccountRecord {
            nonce: 0,
            balance: U256::from(balance),
            code_hash: KECCAK_EMPTY,
            storage_root: EMPTY_ROOT_HASH,
        }
    }

    /// Block `number` setting the account's balance (`None`: deleting it) and slot 1.
    fn write(store: &Store, number: u64, account: &B256, balance: Option<u64>, slot: u64) {
        let diff = HashedStateDiff {
            accounts: BTreeMap::from([(*account, balance.map(record))]),
            storage: BTreeMap::from([(
                *account,
                StorageDiff {
                    wiped: false,
                    slots: BTreeMap::from([(keccak256(B256::with_last_byte(1)), U256::from(slot))]),
                },
            )]),
            ..Default::default()
        };
        write_test_block(store, number, &[], &diff);
    }

    #[test]
    fn test_the_state_after_each_block_reads_the_same_indexed_or_not_and_an_old_store_is_indexed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("chain.redb");
        let account = keccak256(alloy_primitives::Address::repeat_byte(1));
        let slot = keccak256(B256::with_last_byte(1));
        let store = Store::open(&path).expect("opens");
        // Balances by block: 0 → 10, 1 → 11, 2 → gone, 3 → 13; slot 1 = the block number.
        let balances = [Some(10), Some(11), None, Some(13)];
        let check = |store: &Store| {
            let view = store.read().expect("view");
            for (number, balance) in balances.iter().enumerate() {
                let past = view
                    .past_state(number as u64)
                    .expect("reads")
                    .expect("kept");
                let got = match view.past_account(&past, &account).expect("reads") {
                    Some(record) => record,
                    None => view.account(&account).expect("reads"),
                };
                assert_eq!(got, balance.map(record), "after block {number}");
                let value = match view.past_slot(&past, &account, &slot).expect("reads") {
                    Some(value) => value,
                    None => view.storage(&account, &slot).expect("reads"),
                };
                assert_eq!(value, U256::from(number), "slot after block {number}");

                // The same state walked in key order, as proofs walk it.
                let whole = view
                    .past_trie_state(number as u64)
                    .expect("reads")
                    .expect("kept");
                let accounts: Vec<_> = whole
                    .accounts(&B256::ZERO, &B256::repeat_byte(0xff))
                    .expect("reads")
                    .collect::<Result<_, _>>()
                    .expect("reads");
                let expected: Vec<_> = balance.map(|b| (account, record(b))).into_iter().collect();
                assert_eq!(accounts, expected, "accounts after block {number}");
                let slots: Vec<_> = whole
                    .storage_slots(&account, &B256::ZERO, &B256::repeat_byte(0xff))
                    .expect("reads")
                    .collect::<Result<_, _>>()
                    .expect("reads");
                let expected: Vec<_> = (number > 0)
                    .then_some((slot, U256::from(number)))
                    .into_iter()
                    .collect();
                assert_eq!(slots, expected, "slots after block {number}");
            }
        };
        // Blocks 0 and 1 indexed, 2 and 3 not yet: reads take the index, then the reverts.
        for (number, balance) in balances.iter().enumerate() {
            write(&store, number as u64, &account, *balance, number as u64);
            if number == 1 {
                assert_eq!(store.index_history().expect("indexes"), 2);
            }
        }
        check(&store);
        // All indexed: reads take the index only.
        assert_eq!(store.index_history().expect("indexes"), 2);
        assert_eq!(store.index_history().expect("indexes"), 0, "nothing left");
        check(&store);

        // A store written before the index: the index and its mark gone.
        let txn = store.db.begin_write().expect("write");
        txn.delete_table(ACCOUNT_HISTORY).expect("deleted");
        txn.delete_table(SLOT_HISTORY).expect("deleted");
        txn.open_table(META)
            .expect("meta")
            .remove(HISTORY_NEXT_KEY)
            .expect("removed");
        txn.commit().expect("committed");
        drop(store);
        let store = Store::open(&path).expect("reopens");
        assert_eq!(
            store.index_history().expect("indexes"),
            0,
            "indexed at open"
        );
        check(&store);
    }

    #[test]
    fn test_a_window_drops_old_reverts_with_their_index_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("chain.redb")).expect("opens");
        let account = keccak256(alloy_primitives::Address::repeat_byte(1));
        let blocks = HISTORY_BLOCKS + 4;
        for number in 0..blocks {
            write(&store, number, &account, Some(number), number);
        }
        store.keep_history(Some(1));
        store.index_history().expect("indexes");
        let view = store.read().expect("view");
        let head = blocks - 1;
        // The window is the narrowest one: the last HISTORY_BLOCKS blocks stay readable.
        let oldest = head - HISTORY_BLOCKS;
        assert!(view.past_state(oldest - 1).expect("reads").is_none());
        let past = view.past_state(oldest).expect("reads").expect("kept");
        assert_eq!(
            view.past_account(&past, &account).expect("reads"),
            Some(Some(record(oldest)))
        );
        let entries = view.account_history.len().expect("counts");
        assert_eq!(entries, HISTORY_BLOCKS, "one entry per kept block");
    }

    #[test]
    fn test_an_overlay_replaces_adds_and_removes_entries_in_key_order() {
        let key = |b: u8| B256::with_last_byte(b);
        let base: EntryIter<'_, u64> = Box::new(
            [1u8, 3, 5, 7]
                .into_iter()
                .map(move |b| Ok((key(b), u64::from(b)))),
        );
        let over = [
            (0u8, Some(100)),
            (3, Some(300)),
            (5, None),
            (6, None),
            (9, Some(900)),
        ]
        .into_iter()
        .map(move |(b, v)| (key(b), v));
        let merged: Vec<(B256, u64)> = overlay(base, over)
            .collect::<Result<_, _>>()
            .expect("no error");
        let expected =
            [(0u8, 100u64), (1, 1), (3, 300), (7, 7), (9, 900)].map(|(b, v)| (key(b), v));
        assert_eq!(merged, expected);
    }
}
