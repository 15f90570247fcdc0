//! The ledger on disk: final records with their finalization certificates, and the candidate
//! records consensus may still build on.
//!
//! One redb database. A final record is appended only right after the last one (its `prev` is
//! the last record's digest), so the file always holds one unbroken chain from the genesis.
//! Candidates are kept on disk too: after a restart consensus may ask to build on, or verify a
//! child of, a record it notarized before the crash, and a candidate known to nobody would stall
//! it.

use std::path::Path;

use alloy_primitives::{B256, Bytes};
use alloy_rlp::{RlpDecodable, RlpEncodable};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::{
    Epoch, Membership,
    record::{SlotRecord, to_b256},
};

const RECORDS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("records");
const DIGESTS: TableDefinition<'_, &[u8; 32], u64> = TableDefinition::new("digests");
const CANDIDATES: TableDefinition<'_, &[u8; 32], &[u8]> = TableDefinition::new("candidates");
/// Epoch number → slot of the record that opened it (the one that closed the epoch before).
const EPOCHS: TableDefinition<'_, u64, u64> = TableDefinition::new("epochs");
/// The founding membership, under [`FOUNDERS`].
const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
const FOUNDERS: &str = "founders";

/// A final record and the proof that it is final.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct Entry {
    /// The record.
    pub record: SlotRecord,
    /// Its finalization certificate (commonware codec), or empty when the record is final
    /// because a later record that links to it has one.
    pub finalization: Bytes,
}

/// The ledger store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("ledger database: {0}")]
    Db(#[from] redb::Error),
    /// A stored entry does not decode (the file is damaged).
    #[error("ledger entry {0} does not decode")]
    Corrupt(u64),
    /// The stored founders, or an epoch's membership, is missing or unusable.
    #[error("ledger membership of epoch {0} is missing or damaged")]
    Membership(u64),
    /// The entry does not extend the ledger.
    #[error("record {slot} does not extend the ledger (last {last:?})")]
    NotNext {
        /// Its slot.
        slot: u64,
        /// The last slot held.
        last: Option<u64>,
    },
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                Self::Db(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// The ledger's database.
#[derive(Debug)]
pub struct Store {
    db: redb::Database,
}

impl Store {
    /// Opens (or creates) the ledger at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        // A record a slot, read back rarely: redb's default cache (1 GiB, grown with the file)
        // would only hold memory.
        let db = redb::Database::builder()
            .set_cache_size(16 << 20)
            .create(path)?;
        Self::init(db)
    }

    /// A ledger in memory (tests and simulations).
    pub fn in_memory() -> Result<Self, StoreError> {
        let db =
            redb::Database::builder().create_with_backend(redb::backends::InMemoryBackend::new())?;
        Self::init(db)
    }

    fn init(db: redb::Database) -> Result<Self, StoreError> {
        let tx = db.begin_write()?;
        tx.open_table(RECORDS)?;
        tx.open_table(DIGESTS)?;
        tx.open_table(CANDIDATES)?;
        tx.open_table(EPOCHS)?;
        tx.open_table(META)?;
        tx.commit()?;
        Ok(Self { db })
    }

    /// The ledger's founding membership: the stored one, or `founders` stored now if the
    /// ledger has none yet (its first start). Once founded, a ledger keeps its founders
    /// whatever the registry says later.
    pub fn found(&self, founders: &Membership) -> Result<Membership, StoreError> {
        if let Some(stored) = self.founders()? {
            return Ok(stored);
        }
        // An empty or broken list would be stored for good and stop every later start.
        founders.keys().map_err(|_| StoreError::Membership(0))?;
        let tx = self.db.begin_write()?;
        tx.open_table(META)?
            .insert(FOUNDERS, alloy_rlp::encode(founders).as_slice())?;
        tx.commit()?;
        Ok(founders.clone())
    }

    /// The founding membership, once the ledger has started.
    pub fn founders(&self) -> Result<Option<Membership>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(META)?;
        let Some(bytes) = table.get(FOUNDERS)? else {
            return Ok(None);
        };
        alloy_rlp::decode_exact(bytes.value())
            .map(Some)
            .map_err(|_| StoreError::Membership(0))
    }

    /// The members of epoch `number`: the founders for 0, else the membership named by the
    /// record that opened it (`None` while the ledger has not reached it).
    pub fn membership(&self, number: u64) -> Result<Option<Epoch>, StoreError> {
        let damaged = || StoreError::Membership(number);
        let membership = if number == 0 {
            match self.founders()? {
                Some(founders) => founders,
                None => return Ok(None),
            }
        } else {
            let Some(slot) = self.opened(number)? else {
                return Ok(None);
            };
            self.get(slot)?.ok_or_else(damaged)?.record.next
        };
        let members = membership.keys().map_err(|_| damaged())?;
        Ok(Some(Epoch::new(number, members)))
    }

    /// The slot of the record that opened epoch `number` (none for the founders' epoch, or
    /// one not reached).
    pub fn opened(&self, number: u64) -> Result<Option<u64>, StoreError> {
        let tx = self.db.begin_read()?;
        Ok(tx.open_table(EPOCHS)?.get(number)?.map(|slot| slot.value()))
    }

    /// The epoch the next record belongs to: the last record's, or the one it opens.
    pub fn next_epoch(&self) -> Result<Option<Epoch>, StoreError> {
        let Some(last) = self.last()? else {
            return self.membership(0);
        };
        let epoch = self
            .membership(last.record.epoch)?
            .ok_or(StoreError::Membership(last.record.epoch))?;
        Ok(Some(epoch.after(&last.record)))
    }

    /// The last final record.
    pub fn last(&self) -> Result<Option<Entry>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(RECORDS)?;
        let Some((slot, bytes)) = table.last()? else {
            return Ok(None);
        };
        decode(slot.value(), bytes.value()).map(Some)
    }

    /// The slot of the last final record, without reading the record.
    pub fn last_slot(&self) -> Result<Option<u64>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(RECORDS)?;
        Ok(table.last()?.map(|(slot, _)| slot.value()))
    }

    /// The final record of `slot`.
    pub fn get(&self, slot: u64) -> Result<Option<Entry>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(RECORDS)?;
        table
            .get(slot)?
            .map(|bytes| decode(slot, bytes.value()))
            .transpose()
    }

    /// Final records of slots `from..=to`, at most `limit`.
    pub fn range(&self, from: u64, to: u64, limit: usize) -> Result<Vec<Entry>, StoreError> {
        if from > to {
            return Ok(Vec::new());
        }
        let tx = self.db.begin_read()?;
        let table = tx.open_table(RECORDS)?;
        let mut out = Vec::new();
        for item in table.range(from..=to)?.take(limit) {
            let (slot, bytes) = item?;
            out.push(decode(slot.value(), bytes.value())?);
        }
        Ok(out)
    }

    /// The slot of the final record with `digest`.
    pub fn slot_of(&self, digest: &B256) -> Result<Option<u64>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(DIGESTS)?;
        Ok(table.get(&digest.0)?.map(|v| v.value()))
    }

    /// Appends final entries, each extending the one before; candidates at or below the last
    /// appended slot are dropped. All or nothing, durable on return.
    pub fn append(&self, entries: &[Entry]) -> Result<(), StoreError> {
        let Some(last_new) = entries.last() else {
            return Ok(());
        };
        let tx = self.db.begin_write()?;
        {
            let mut records = tx.open_table(RECORDS)?;
            let mut digests = tx.open_table(DIGESTS)?;
            let mut epochs = tx.open_table(EPOCHS)?;
            let mut tip = match records.last()? {
                Some((slot, bytes)) => {
                    let entry = decode(slot.value(), bytes.value())?;
                    Some((entry.record.slot, to_b256(&entry.record.digest())))
                }
                None => None,
            };
            for entry in entries {
                let record = &entry.record;
                if let Some((slot, digest)) = tip
                    && (Some(record.slot) != slot.checked_add(1) || record.prev != digest)
                {
                    return Err(StoreError::NotNext {
                        slot: record.slot,
                        last: Some(slot),
                    });
                }
                let digest = to_b256(&record.digest());
                records.insert(record.slot, alloy_rlp::encode(entry).as_slice())?;
                digests.insert(&digest.0, record.slot)?;
                // As `Epoch::after`: an unusable list (which no honest member votes for)
                // changes nothing.
                if !record.next.is_empty() && record.next.keys().is_ok() {
                    epochs.insert(record.epoch + 1, record.slot)?;
                }
                tip = Some((record.slot, digest));
            }
            let mut candidates = tx.open_table(CANDIDATES)?;
            let mut stale = Vec::new();
            for item in candidates.iter()? {
                let (digest, bytes) = item?;
                match SlotRecord::from_bytes(bytes.value()) {
                    Ok(candidate) if candidate.slot > last_new.record.slot => {}
                    _ => stale.push(*digest.value()),
                }
            }
            for digest in stale {
                candidates.remove(&digest)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Keeps a candidate record.
    pub fn put_candidate(&self, record: &SlotRecord) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        {
            let mut candidates = tx.open_table(CANDIDATES)?;
            candidates.insert(&to_b256(&record.digest()).0, record.to_bytes().as_slice())?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Every candidate kept.
    pub fn candidates(&self) -> Result<Vec<SlotRecord>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(CANDIDATES)?;
        let mut out = Vec::new();
        for item in table.iter()? {
            let (_, bytes) = item?;
            if let Ok(record) = SlotRecord::from_bytes(bytes.value()) {
                out.push(record);
            }
        }
        Ok(out)
    }
}

fn decode(slot: u64, bytes: &[u8]) -> Result<Entry, StoreError> {
    let mut rest = bytes;
    <Entry as alloy_rlp::Decodable>::decode(&mut rest).map_err(|_| StoreError::Corrupt(slot))
}

#[cfg(test)]
mod tests {
    use alloy_primitives::U256;

    use super::*;
    use crate::record::{BlockRef, SlotFacts, Winner};

    fn record(slot: u64, prev: B256) -> SlotRecord {
        SlotRecord {
            epoch: 0,
            slot,
            facts: SlotFacts {
                block: BlockRef {
                    number: slot,
                    hash: B256::with_last_byte(slot as u8),
                    parent: B256::ZERO,
                },
                winner: Winner(None),
                payment: U256::ZERO,
                value: U256::ZERO,
            },
            cuts: Vec::new(),
            agreed: Vec::new(),
            prev,
            next: Membership::default(),
            refunds: Default::default(),
        }
    }

    #[test]
    fn test_the_ledger_only_grows_by_linked_records_and_survives_reopening() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("ledger.redb");
        let first = record(1, B256::repeat_byte(9));
        let second = record(2, to_b256(&first.digest()));
        let entry = |record: &SlotRecord| Entry {
            record: record.clone(),
            finalization: Bytes::from_static(b"cert"),
        };
        {
            let store = Store::open(&path).expect("open");
            store.put_candidate(&second).expect("candidate");
            store.append(&[entry(&first)]).expect("first");
            assert_eq!(
                store.candidates().expect("candidates"),
                vec![second.clone()]
            );
            // Not linked to the last record: refused, nothing written.
            let stray = record(2, B256::ZERO);
            assert!(matches!(
                store.append(&[entry(&stray)]),
                Err(StoreError::NotNext { slot: 2, .. })
            ));
            store.append(&[entry(&second)]).expect("second");
            assert!(store.candidates().expect("candidates").is_empty());
        }
        let store = Store::open(&path).expect("reopen");
        assert_eq!(
            store.last().expect("last").map(|e| e.record),
            Some(second.clone())
        );
        assert_eq!(store.range(1, 9, 10).expect("range").len(), 2);
        assert_eq!(store.last_slot().expect("last slot"), Some(2));
        assert_eq!(
            store.slot_of(&to_b256(&second.digest())).expect("slot"),
            Some(2)
        );
        assert_eq!(store.get(1).expect("get").map(|e| e.record), Some(first));
    }

    #[test]
    fn test_founders_stay_and_each_epoch_s_members_come_from_the_record_that_opened_it() {
        use commonware_cryptography::Signer as _;
        let keys = |ids: &[u32]| -> std::collections::BTreeMap<u32, _> {
            ids.iter()
                .map(|&id| {
                    let key = commonware_cryptography::ed25519::PrivateKey::from_seed(id.into());
                    (id, key.public_key())
                })
                .collect()
        };
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("ledger.redb");
        let founders = Membership::from_keys(&keys(&[0, 1, 2, 3]));
        let first = record(1, B256::repeat_byte(9));
        let mut closing = record(2, to_b256(&first.digest()));
        closing.next = Membership::from_keys(&keys(&[1, 2, 3, 4]));
        let third = SlotRecord {
            epoch: 1,
            ..record(3, to_b256(&closing.digest()))
        };
        let entry = |record: &SlotRecord| Entry {
            record: record.clone(),
            finalization: Bytes::new(),
        };
        {
            let store = Store::open(&path).expect("open");
            assert_eq!(store.next_epoch().expect("epoch"), None, "not founded yet");
            assert_eq!(store.found(&founders).expect("found"), founders);
            store.append(&[entry(&first)]).expect("first");
            let epoch = store.next_epoch().expect("epoch").expect("founded");
            assert_eq!((epoch.number, epoch.members), (0, keys(&[0, 1, 2, 3])));
            store.append(&[entry(&closing)]).expect("closing");
            let epoch = store.next_epoch().expect("epoch").expect("founded");
            assert_eq!((epoch.number, epoch.members), (1, keys(&[1, 2, 3, 4])));
            store.append(&[entry(&third)]).expect("third");
        }
        let store = Store::open(&path).expect("reopen");
        // A registry read later does not refound the ledger.
        let other = Membership::from_keys(&keys(&[7]));
        assert_eq!(store.found(&other).expect("found"), founders);
        assert_eq!(store.opened(1).expect("opened"), Some(2));
        let epoch = store.next_epoch().expect("epoch").expect("founded");
        assert_eq!((epoch.number, epoch.members), (1, keys(&[1, 2, 3, 4])));
        assert_eq!(
            store.membership(0).expect("membership").map(|e| e.members),
            Some(keys(&[0, 1, 2, 3]))
        );
    }
}
