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

use alloy_primitives::{B256, Bytes, U256};
use alloy_rlp::{Decodable, Encodable, RlpDecodable, RlpEncodable};
use redb::{ReadableTable, TableDefinition};

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

/// The state after one block, read through the per-key index.
#[derive(Debug, Clone, Copy)]
pub struct PastState {
    after: u64,
}

impl PastState {
    pub(super) const fn after(number: u64) -> Self {
        Self { after: number }
    }

    /// The account at `hashed` in the past state, if a later block wrote it (else the head's
    /// value holds).
    pub(crate) fn account(
        &self,
        table: &impl ReadableTable<&'static [u8; 40], &'static [u8]>,
        hashed: &B256,
    ) -> Result<Option<Option<AccountRecord>>, StoreError> {
        let (lo, hi) = (
            account_key(hashed, self.after + 1),
            account_key(hashed, u64::MAX),
        );
        let Some(entry) = table.range::<&[u8; 40]>(&lo..=&hi)?.next() else {
            return Ok(None);
        };
        let (_, record) = entry?;
        let record = record.value();
        Ok(Some(if record.is_empty() {
            None
        } else {
            Some(AccountRecord::decode(record)?)
        }))
    }

    /// A storage value in the past state, if a later block wrote it.
    pub(crate) fn slot(
        &self,
        table: &impl ReadableTable<&'static [u8; 72], &'static [u8; 32]>,
        hashed_address: &B256,
        hashed_slot: &B256,
    ) -> Result<Option<U256>, StoreError> {
        let lo = slot_key(hashed_address, hashed_slot, self.after + 1);
        let hi = slot_key(hashed_address, hashed_slot, u64::MAX);
        let Some(entry) = table.range::<&[u8; 72]>(&lo..=&hi)?.next() else {
            return Ok(None);
        };
        let (_, value) = entry?;
        Ok(Some(U256::from_be_bytes(*value.value())))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use alloy_primitives::keccak256;
    use alloy_trie::EMPTY_ROOT_HASH;
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
    fn test_the_state_after_each_block_reads_through_the_index_and_an_old_store_is_indexed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("chain.redb");
        let account = keccak256(alloy_primitives::Address::repeat_byte(1));
        let slot = keccak256(B256::with_last_byte(1));
        let store = Store::open(&path).expect("opens");
        // Balances by block: 0 → 10, 1 → 11, 2 → gone, 3 → 13; slot 1 = the block number.
        let balances = [Some(10), Some(11), None, Some(13)];
        for (number, balance) in balances.iter().enumerate() {
            write(&store, number as u64, &account, *balance, number as u64);
        }
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
            }
        };
        check(&store);

        // A store written before the index: the index and its mark gone.
        let txn = store.db.begin_write().expect("write");
        txn.delete_table(ACCOUNT_HISTORY).expect("deleted");
        txn.delete_table(SLOT_HISTORY).expect("deleted");
        txn.open_table(META)
            .expect("meta")
            .remove(super::super::HISTORY_INDEXED_KEY)
            .expect("removed");
        txn.commit().expect("committed");
        drop(store);
        check(&Store::open(&path).expect("reopens"));
    }
}
