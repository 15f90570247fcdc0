//! Persistent storage of the chain: blocks, receipts, indexes and the current state.
//!
//! # Design
//! One redb database. Each block is committed in one write transaction that holds the block,
//! its receipts and senders, its indexes, the state changes and the new head, so a crash
//! (`kill -9`) leaves either the whole block or none of it. Readers take a [`ReadView`], an MVCC
//! snapshot that never sees a half-written block, while the next block is written.
//!
//! State is kept only for the head, keyed as the state trie keys it (`keccak(address)`,
//! `keccak(address) ++ keccak(slot)`), so the state root is computed by streaming the tables
//! in order; each account record caches its storage root.

mod codec;
mod history;
mod indexer;
mod logs;

pub use codec::AccountRecord;
pub(crate) use codec::{storage_key, storage_range};
use history::{ACCOUNT_HISTORY, AccountRevert, BlockReverts, SLOT_HISTORY, SlotRevert};
pub use history::{HISTORY_BLOCKS, PastState};
use logs::LOG_INDEX;
pub use logs::LogField;

use std::path::Path;

use alloy_consensus::{Block, Header, ReceiptEnvelope, TxEnvelope};
use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_rlp::{Decodable, Encodable};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::state::HashedStateDiff;

const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
const CANONICAL: TableDefinition<'_, u64, &[u8; 32]> = TableDefinition::new("canonical");
const BLOCK_NUMBERS: TableDefinition<'_, &[u8; 32], u64> = TableDefinition::new("block_numbers");
const HEADERS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("headers");
const BLOCKS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("blocks");
const SENDERS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("senders");
const RECEIPTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("receipts");
const TX_LOCATIONS: TableDefinition<'_, &[u8; 32], &[u8; 12]> =
    TableDefinition::new("tx_locations");
const ACCOUNTS: TableDefinition<'_, &[u8; 32], &[u8]> = TableDefinition::new("accounts");
const STORAGE: TableDefinition<'_, &[u8; 64], &[u8; 32]> = TableDefinition::new("storage");
const CODE: TableDefinition<'_, &[u8; 32], &[u8]> = TableDefinition::new("code");
/// Per block, the fee recipient's balance before and after it (two 32-byte words): what the
/// block was worth to its builder, which the slot ledger records, without keeping history.
const BENEFICIARY: TableDefinition<'_, u64, &[u8; 64]> = TableDefinition::new("beneficiary");
/// Per block, what its state changes overwrote (see [`history`]): for every block, or the last
/// blocks of the window a node is given (never fewer than [`HISTORY_BLOCKS`]).
const REVERTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("reverts");

const HEAD_KEY: &str = "head";
/// The first block the log index does not cover yet (absent in stores written before it).
const LOGS_INDEXED_KEY: &str = "logs_indexed";

/// Errors of the chain store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed (I/O, corruption detected by redb, lock held by another process).
    #[error("database: {0}")]
    Db(#[from] redb::Error),
    /// A stored record did not decode.
    #[error("stored record does not decode: {0}")]
    Decode(#[from] alloy_rlp::Error),
    /// A stored record has an impossible shape.
    #[error("corrupt store: {0}")]
    Corrupt(&'static str),
    /// The thread that indexes history did not start.
    #[error("cannot start the history index thread: {0}")]
    Spawn(std::io::Error),
    /// A block was written on top of something other than the head.
    #[error("block {number} does not extend the head {head}")]
    NotOnHead {
        /// Number of the block being written.
        number: u64,
        /// Current head number.
        head: u64,
    },
}

macro_rules! db_err {
    ($($ty:ty),*) => {$(
        impl From<$ty> for StoreError {
            fn from(e: $ty) -> Self {
                Self::Db(e.into())
            }
        }
    )*};
}
db_err!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// A block as stored: the consensus block, its hash and the recovered senders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlock {
    /// Hash of the header.
    pub hash: B256,
    /// The block.
    pub block: Block<TxEnvelope>,
    /// Sender of each transaction, in order.
    pub senders: Vec<Address>,
}

/// Everything one block adds to the store.
#[derive(Debug)]
pub(crate) struct BlockWrite<'a> {
    /// The block with its hash and senders.
    pub(crate) block: &'a StoredBlock,
    /// Receipts, one per transaction.
    pub(crate) receipts: &'a [ReceiptEnvelope],
    /// State changes of the block, with new storage roots filled in.
    pub(crate) diff: &'a HashedStateDiff,
}

/// The chain's database.
#[derive(Debug)]
pub(crate) struct Store {
    // Declared first so it is dropped first: its thread finishes before the database closes.
    indexer: Option<indexer::Indexer>,
    db: std::sync::Arc<redb::Database>,
    /// Blocks whose reverts are kept; `u64::MAX`: all of them.
    history: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// The store's page cache. redb's default (1 GiB) lets a node's memory grow with the chain
/// file for as long as it runs; the head state's hot pages fit well within this.
const CACHE_BYTES: usize = 256 << 20;

impl Store {
    /// Opens (or creates) the store at `path`. Fails if another process holds it.
    pub(crate) fn open(path: &Path) -> Result<Self, StoreError> {
        let db = redb::Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)?;
        let txn = db.begin_write()?;
        {
            txn.open_table(META)?;
            txn.open_table(CANONICAL)?;
            txn.open_table(BLOCK_NUMBERS)?;
            txn.open_table(HEADERS)?;
            txn.open_table(BLOCKS)?;
            txn.open_table(SENDERS)?;
            txn.open_table(RECEIPTS)?;
            txn.open_table(TX_LOCATIONS)?;
            txn.open_table(ACCOUNTS)?;
            txn.open_table(STORAGE)?;
            txn.open_table(CODE)?;
            txn.open_table(BENEFICIARY)?;
            txn.open_table(REVERTS)?;
            txn.open_table(LOG_INDEX)?;
            txn.open_table(ACCOUNT_HISTORY)?;
            txn.open_table(SLOT_HISTORY)?;
            index_missing_logs(&txn)?;
            let blocks = history::index_pending(&txn, u64::MAX)?;
            if blocks > 0 {
                tracing::info!(blocks, "chain.store.history_indexed");
            }
        }
        txn.commit()?;
        Ok(Self {
            indexer: None,
            db: std::sync::Arc::new(db),
            history: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX)),
        })
    }

    /// From now on, indexes each block's reverts by key on a thread of its own, after the
    /// block's commit (without it, only [`Self::index_history`] does).
    pub(crate) fn index_in_background(&mut self) -> Result<(), StoreError> {
        let indexer = indexer::Indexer::spawn(self.db.clone(), self.history.clone())
            .map_err(StoreError::Spawn)?;
        self.indexer = Some(indexer);
        Ok(())
    }

    /// Indexes the blocks committed since the last pass and prunes outside the history
    /// window, now; returns how many blocks it indexed.
    pub(crate) fn index_history(&self) -> Result<u64, StoreError> {
        indexer::index(
            &self.db,
            self.history.load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    /// Keeps the reverts of the last `blocks` blocks only (at least [`HISTORY_BLOCKS`]), or of
    /// every block (`None`, the default). Older ones go as the next block is written.
    pub(crate) fn keep_history(&self, blocks: Option<u64>) {
        let window = blocks.map_or(u64::MAX, |b| b.max(HISTORY_BLOCKS));
        self.history
            .store(window, std::sync::atomic::Ordering::Relaxed);
    }

    /// A consistent snapshot of everything committed so far.
    pub(crate) fn read(&self) -> Result<ReadView, StoreError> {
        let txn = self.db.begin_read()?;
        Ok(ReadView {
            meta: txn.open_table(META)?,
            canonical: txn.open_table(CANONICAL)?,
            block_numbers: txn.open_table(BLOCK_NUMBERS)?,
            headers: txn.open_table(HEADERS)?,
            blocks: txn.open_table(BLOCKS)?,
            senders: txn.open_table(SENDERS)?,
            receipts: txn.open_table(RECEIPTS)?,
            tx_locations: txn.open_table(TX_LOCATIONS)?,
            accounts: txn.open_table(ACCOUNTS)?,
            storage: txn.open_table(STORAGE)?,
            code: txn.open_table(CODE)?,
            beneficiary: txn.open_table(BENEFICIARY)?,
            reverts: txn.open_table(REVERTS)?,
            log_index: txn.open_table(LOG_INDEX)?,
            account_history: txn.open_table(ACCOUNT_HISTORY)?,
            slot_history: txn.open_table(SLOT_HISTORY)?,
        })
    }

    /// Writes a block, its receipts and its state changes atomically and makes it the head.
    ///
    /// The block must extend the current head (or be the genesis block of an empty store).
    pub(crate) fn write_block(&self, write: BlockWrite<'_>) -> Result<(), StoreError> {
        let number = write.block.block.header.number;
        let txn = self.db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let head = meta_u64(&meta, HEAD_KEY)?;
            match head {
                Some(head) if head + 1 != number => {
                    return Err(StoreError::NotOnHead { number, head });
                }
                None if number != 0 => return Err(StoreError::NotOnHead { number, head: 0 }),
                _ => {}
            }
            meta.insert(HEAD_KEY, number.to_be_bytes().as_slice())?;

            let hash = write.block.hash.0;
            txn.open_table(CANONICAL)?.insert(number, &hash)?;
            txn.open_table(BLOCK_NUMBERS)?.insert(&hash, number)?;
            let mut buf = Vec::with_capacity(1024);
            write.block.block.header.encode(&mut buf);
            txn.open_table(HEADERS)?.insert(number, buf.as_slice())?;
            let mut buf = Vec::with_capacity(write.block.block.length());
            write.block.block.encode(&mut buf);
            txn.open_table(BLOCKS)?.insert(number, buf.as_slice())?;
            let senders: Vec<u8> = write.block.senders.iter().flat_map(|a| a.0.0).collect();
            txn.open_table(SENDERS)?
                .insert(number, senders.as_slice())?;
            let mut buf = Vec::new();
            alloy_rlp::encode_list::<ReceiptEnvelope, _>(write.receipts, &mut buf);
            txn.open_table(RECEIPTS)?.insert(number, buf.as_slice())?;
            logs::index_block(&mut txn.open_table(LOG_INDEX)?, number, write.receipts)?;
            meta.insert(LOGS_INDEXED_KEY, (number + 1).to_be_bytes().as_slice())?;
            let mut locations = txn.open_table(TX_LOCATIONS)?;
            for (i, tx) in write.block.block.body.transactions.iter().enumerate() {
                let loc = codec::encode_tx_location(number, i as u32);
                locations.insert(&tx.tx_hash().0, &loc)?;
            }

            let mut accounts = txn.open_table(ACCOUNTS)?;
            let beneficiary = keccak256(write.block.block.header.beneficiary);
            let before = match accounts.get(&beneficiary.0)? {
                Some(bytes) => AccountRecord::decode(bytes.value())?.balance,
                None => U256::ZERO,
            };
            let after = match write.diff.accounts.get(&beneficiary) {
                Some(Some(record)) => record.balance,
                Some(None) => U256::ZERO,
                None => before,
            };
            let mut balances = [0u8; 64];
            balances[..32].copy_from_slice(&before.to_be_bytes::<32>());
            balances[32..].copy_from_slice(&after.to_be_bytes::<32>());
            txn.open_table(BENEFICIARY)?.insert(number, &balances)?;
            let mut storage = txn.open_table(STORAGE)?;
            let reverts = block_reverts(&accounts, &storage, write.diff)?;
            // Indexed by key later, off the commit (see `history`).
            txn.open_table(REVERTS)?
                .insert(number, reverts.to_bytes().as_slice())?;
            for (hashed, change) in &write.diff.storage {
                if change.wiped {
                    let (lo, hi) = storage_range(hashed);
                    storage.retain_in::<&[u8; 64], _>(&lo..=&hi, |_, _| false)?;
                }
                for (slot, value) in &change.slots {
                    let key = storage_key(hashed, slot);
                    if value.is_zero() {
                        storage.remove(&key)?;
                    } else {
                        storage.insert(&key, &value.to_be_bytes::<32>())?;
                    }
                }
            }
            for (hashed, record) in &write.diff.accounts {
                match record {
                    Some(record) => {
                        accounts.insert(&hashed.0, record.encode().as_slice())?;
                    }
                    None => {
                        accounts.remove(&hashed.0)?;
                    }
                }
            }
            let mut code = txn.open_table(CODE)?;
            for (hash, bytes) in &write.diff.contracts {
                code.insert(&hash.0, bytes.as_ref())?;
            }
        }
        txn.commit()?;
        if let Some(indexer) = &self.indexer {
            indexer.wake();
        }
        Ok(())
    }
}

/// Indexes the logs of the blocks the index does not cover yet: none for a store that has
/// always had it, every block for one written before it.
fn index_missing_logs(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    let mut meta = txn.open_table(META)?;
    let Some(head) = meta_u64(&meta, HEAD_KEY)? else {
        return Ok(());
    };
    let next = meta_u64(&meta, LOGS_INDEXED_KEY)?.unwrap_or(0);
    if next > head {
        return Ok(());
    }
    let receipts = txn.open_table(RECEIPTS)?;
    let mut index = txn.open_table(LOG_INDEX)?;
    for number in next..=head {
        let raw = receipts
            .get(number)?
            .ok_or(StoreError::Corrupt("a block without receipts"))?;
        let block_receipts = Vec::<ReceiptEnvelope>::decode(&mut raw.value())?;
        logs::index_block(&mut index, number, &block_receipts)?;
    }
    meta.insert(LOGS_INDEXED_KEY, (head + 1).to_be_bytes().as_slice())?;
    tracing::info!(blocks = head + 1 - next, "chain.store.logs_indexed");
    Ok(())
}

/// What `diff` is about to overwrite in `accounts` and `storage`.
fn block_reverts(
    accounts: &impl ReadableTable<&'static [u8; 32], &'static [u8]>,
    storage: &impl ReadableTable<&'static [u8; 64], &'static [u8; 32]>,
    diff: &HashedStateDiff,
) -> Result<BlockReverts, StoreError> {
    let mut reverts = BlockReverts::default();
    for hashed in diff.accounts.keys() {
        let record = accounts
            .get(&hashed.0)?
            .map(|v| Bytes::copy_from_slice(v.value()))
            .unwrap_or_default();
        reverts.accounts.push(AccountRevert {
            hashed: *hashed,
            record,
        });
    }
    for (hashed, change) in &diff.storage {
        let mut seen = std::collections::HashSet::new();
        if change.wiped {
            let (lo, hi) = storage_range(hashed);
            for entry in storage.range::<&[u8; 64]>(&lo..=&hi)? {
                let (key, value) = entry?;
                let slot = B256::from_slice(&key.value()[32..]);
                seen.insert(slot);
                reverts.slots.push(SlotRevert {
                    hashed_address: *hashed,
                    hashed_slot: slot,
                    value: U256::from_be_bytes(*value.value()),
                });
            }
        }
        for slot in change.slots.keys().filter(|slot| !seen.contains(*slot)) {
            let value = storage
                .get(&storage_key(hashed, slot))?
                .map(|v| U256::from_be_bytes(*v.value()))
                .unwrap_or_default();
            reverts.slots.push(SlotRevert {
                hashed_address: *hashed,
                hashed_slot: *slot,
                value,
            });
        }
    }
    Ok(reverts)
}

/// The number stored under `key` in the meta table, if any.
fn meta_u64(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<u64>, StoreError> {
    meta.get(key)?.map(|v| decode_u64(v.value())).transpose()
}

fn decode_u64(bytes: &[u8]) -> Result<u64, StoreError> {
    let arr: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("u64 length"))?;
    Ok(u64::from_be_bytes(arr))
}

/// A read-only, consistent snapshot of the store.
///
/// Cheap to create; holds the snapshot open (and so keeps pages from being reused) while alive,
/// so hold one per request or per block attempt, not forever.
pub struct ReadView {
    meta: redb::ReadOnlyTable<&'static str, &'static [u8]>,
    canonical: redb::ReadOnlyTable<u64, &'static [u8; 32]>,
    block_numbers: redb::ReadOnlyTable<&'static [u8; 32], u64>,
    headers: redb::ReadOnlyTable<u64, &'static [u8]>,
    blocks: redb::ReadOnlyTable<u64, &'static [u8]>,
    senders: redb::ReadOnlyTable<u64, &'static [u8]>,
    receipts: redb::ReadOnlyTable<u64, &'static [u8]>,
    tx_locations: redb::ReadOnlyTable<&'static [u8; 32], &'static [u8; 12]>,
    accounts: redb::ReadOnlyTable<&'static [u8; 32], &'static [u8]>,
    storage: redb::ReadOnlyTable<&'static [u8; 64], &'static [u8; 32]>,
    code: redb::ReadOnlyTable<&'static [u8; 32], &'static [u8]>,
    beneficiary: redb::ReadOnlyTable<u64, &'static [u8; 64]>,
    reverts: redb::ReadOnlyTable<u64, &'static [u8]>,
    log_index: redb::ReadOnlyTable<&'static [u8; 41], ()>,
    account_history: redb::ReadOnlyTable<&'static [u8; 40], &'static [u8]>,
    slot_history: redb::ReadOnlyTable<&'static [u8; 72], &'static [u8; 32]>,
}

impl std::fmt::Debug for ReadView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadView").finish_non_exhaustive()
    }
}

impl ReadView {
    /// Number of the head block, or `None` for an empty store.
    pub fn head_number(&self) -> Result<Option<u64>, StoreError> {
        meta_u64(&self.meta, HEAD_KEY)
    }

    /// Hash of the canonical block at `number`.
    pub fn canonical_hash(&self, number: u64) -> Result<Option<B256>, StoreError> {
        Ok(self.canonical.get(number)?.map(|v| B256::from(*v.value())))
    }

    /// Number of the block with `hash`.
    pub fn block_number(&self, hash: &B256) -> Result<Option<u64>, StoreError> {
        Ok(self.block_numbers.get(&hash.0)?.map(|v| v.value()))
    }

    /// The header at `number`.
    pub fn header(&self, number: u64) -> Result<Option<Header>, StoreError> {
        let Some(raw) = self.headers.get(number)? else {
            return Ok(None);
        };
        Ok(Some(Header::decode(&mut raw.value())?))
    }

    /// The block at `number`, with hash and senders.
    pub fn block(&self, number: u64) -> Result<Option<StoredBlock>, StoreError> {
        let Some(raw) = self.blocks.get(number)? else {
            return Ok(None);
        };
        let block = Block::<TxEnvelope>::decode(&mut raw.value())?;
        let hash = self
            .canonical_hash(number)?
            .ok_or(StoreError::Corrupt("block without hash"))?;
        let raw_senders = self
            .senders
            .get(number)?
            .ok_or(StoreError::Corrupt("no senders"))?;
        let senders: Vec<Address> = raw_senders
            .value()
            .chunks_exact(20)
            .map(Address::from_slice)
            .collect();
        if senders.len() != block.body.transactions.len() {
            return Err(StoreError::Corrupt("sender count"));
        }
        Ok(Some(StoredBlock {
            hash,
            block,
            senders,
        }))
    }

    /// The blocks in `from..=to` that hold a log with `value` at `field` (an address as
    /// [`Address::into_word`]), in order, from the log index.
    pub fn blocks_with_log(
        &self,
        field: LogField,
        value: &B256,
        from: u64,
        to: u64,
    ) -> Result<Vec<u64>, StoreError> {
        logs::blocks_with(&self.log_index, field, value, from, to)
    }

    /// The receipts of the block at `number`.
    pub fn receipts(&self, number: u64) -> Result<Option<Vec<ReceiptEnvelope>>, StoreError> {
        let Some(raw) = self.receipts.get(number)? else {
            return Ok(None);
        };
        Ok(Some(Vec::<ReceiptEnvelope>::decode(&mut raw.value())?))
    }

    /// The fee recipient's balance before and after block `number` (`None` for the genesis,
    /// and for blocks stored before the store kept it).
    pub fn beneficiary_balances(&self, number: u64) -> Result<Option<(U256, U256)>, StoreError> {
        Ok(self.beneficiary.get(number)?.map(|v| {
            let bytes = v.value();
            (
                U256::from_be_slice(&bytes[..32]),
                U256::from_be_slice(&bytes[32..]),
            )
        }))
    }

    /// Where the transaction with `hash` was included.
    pub fn tx_location(&self, hash: &B256) -> Result<Option<(u64, u32)>, StoreError> {
        Ok(self
            .tx_locations
            .get(&hash.0)?
            .map(|v| codec::decode_tx_location(*v.value())))
    }

    /// The account at `keccak(address) == hashed`.
    pub fn account(&self, hashed: &B256) -> Result<Option<AccountRecord>, StoreError> {
        self.accounts
            .get(&hashed.0)?
            .map(|v| AccountRecord::decode(v.value()))
            .transpose()
    }

    /// A storage value (zero when unset).
    pub fn storage(&self, hashed_address: &B256, hashed_slot: &B256) -> Result<U256, StoreError> {
        let key = storage_key(hashed_address, hashed_slot);
        Ok(self
            .storage
            .get(&key)?
            .map(|v| U256::from_be_bytes(*v.value()))
            .unwrap_or_default())
    }

    /// Contract code by its hash.
    pub fn code(&self, hash: &B256) -> Result<Option<Bytes>, StoreError> {
        Ok(self
            .code
            .get(&hash.0)?
            .map(|v| Bytes::copy_from_slice(v.value())))
    }

    /// The accounts with hashed keys in `[lo, hi]`, in trie (hashed-key) order.
    pub fn accounts(
        &self,
        lo: &B256,
        hi: &B256,
    ) -> Result<impl Iterator<Item = Result<(B256, AccountRecord), StoreError>> + '_, StoreError>
    {
        Ok(self
            .accounts
            .range::<&[u8; 32]>(&lo.0..=&hi.0)?
            .map(|entry| {
                let (k, v) = entry?;
                Ok((B256::from(*k.value()), AccountRecord::decode(v.value())?))
            }))
    }

    /// One account's slots with hashed keys in `[lo, hi]`, in trie (hashed-slot) order.
    pub fn storage_slots(
        &self,
        hashed_address: &B256,
        lo: &B256,
        hi: &B256,
    ) -> Result<impl Iterator<Item = Result<(B256, U256), StoreError>> + '_, StoreError> {
        let (lo, hi) = (
            storage_key(hashed_address, lo),
            storage_key(hashed_address, hi),
        );
        Ok(self.storage.range::<&[u8; 64]>(&lo..=&hi)?.map(|entry| {
            let (k, v) = entry?;
            Ok((
                B256::from_slice(&k.value()[32..]),
                U256::from_be_bytes(*v.value()),
            ))
        }))
    }
}

/// Writes an otherwise empty block `number` with `receipts` and `diff`, for the store's tests.
#[cfg(test)]
pub(super) fn write_test_block(
    store: &Store,
    number: u64,
    receipts: &[ReceiptEnvelope],
    diff: &HashedStateDiff,
) {
    let block = StoredBlock {
        hash: B256::from(U256::from(number + 1)),
        block: Block {
            header: Header {
                number,
                ..Default::default()
            },
            body: Default::default(),
        },
        senders: Vec::new(),
    };
    store
        .write_block(BlockWrite {
            block: &block,
            receipts,
            diff,
        })
        .expect("written");
}
