//! The order archive: envelopes the slot ledger has settled, moved out of the live log.
//!
//! The live log ([`crate::Log`]) is what a restarting node reads back into its pools and what
//! replication works on; the archive keeps what final records covered, in a database of its own
//! so the live one stops growing. Per origin, the archive holds every envelope up to its floor:
//! an envelope is moved only once it lies within the origin's contiguous prefix, so the live
//! log's prefix and gap tracking never look below the floor.

use std::{collections::BTreeMap, path::Path};

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::{MemberId, log::LogError};

/// Archived envelopes by (origin, seq).
const ARCHIVED: TableDefinition<'_, (u32, u64), &[u8]> = TableDefinition::new("archived");
/// Per origin: every seq up to it is archived.
const FLOOR: TableDefinition<'_, u32, u64> = TableDefinition::new("floor");

/// The archive's database.
#[derive(Debug)]
pub(crate) struct Archive {
    db: redb::Database,
}

/// The archive's page cache: it is written in batches and read rarely, so redb's default
/// (1 GiB, grown with the file) would only hold memory.
const ARCHIVE_CACHE_BYTES: usize = 16 << 20;

impl Archive {
    pub(crate) fn open(path: &Path) -> Result<Self, LogError> {
        Self::with_db(
            redb::Database::builder()
                .set_cache_size(ARCHIVE_CACHE_BYTES)
                .create(path)?,
        )
    }

    pub(crate) fn in_memory() -> Result<Self, LogError> {
        let db =
            redb::Database::builder().create_with_backend(redb::backends::InMemoryBackend::new())?;
        Self::with_db(db)
    }

    fn with_db(db: redb::Database) -> Result<Self, LogError> {
        let tx = db.begin_write()?;
        tx.open_table(ARCHIVED)?;
        tx.open_table(FLOOR)?;
        tx.commit()?;
        Ok(Self { db })
    }

    /// Every origin's floor.
    pub(crate) fn floors(&self) -> Result<BTreeMap<MemberId, u64>, LogError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(FLOOR)?;
        let mut out = BTreeMap::new();
        for entry in table.iter()? {
            let (origin, floor) = entry?;
            out.insert(origin.value(), floor.value());
        }
        Ok(out)
    }

    /// Stores `envelopes` (encoded, by origin and seq) and raises the floors to `floors`, in one
    /// durable commit: the live log may drop them only once this returns.
    pub(crate) fn put(
        &self,
        envelopes: &[((MemberId, u64), Vec<u8>)],
        floors: &BTreeMap<MemberId, u64>,
    ) -> Result<(), LogError> {
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(ARCHIVED)?;
            for (key, bytes) in envelopes {
                table.insert(*key, bytes.as_slice())?;
            }
            let mut floor = tx.open_table(FLOOR)?;
            for (origin, seq) in floors {
                floor.insert(*origin, *seq)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The encoded envelope at (origin, seq), if archived.
    pub(crate) fn get(&self, origin: MemberId, seq: u64) -> Result<Option<Vec<u8>>, LogError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(ARCHIVED)?;
        Ok(table.get((origin, seq))?.map(|v| v.value().to_vec()))
    }

    /// Up to `max` encoded envelopes of `origin` with seqs in `from..=to`, in order.
    pub(crate) fn range(
        &self,
        origin: MemberId,
        from: u64,
        to: u64,
        max: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, LogError> {
        if from > to {
            return Ok(Vec::new());
        }
        let tx = self.db.begin_read()?;
        let table = tx.open_table(ARCHIVED)?;
        let mut out = Vec::new();
        for entry in table.range((origin, from)..=(origin, to))?.take(max) {
            let (key, value) = entry?;
            out.push((key.value().1, value.value().to_vec()));
        }
        Ok(out)
    }

    /// Calls `f` with every archived envelope, by origin and seq.
    pub(crate) fn for_each<E: From<LogError>>(
        &self,
        mut f: impl FnMut(MemberId, u64, &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let tx = self.db.begin_read().map_err(LogError::from)?;
        let table = tx.open_table(ARCHIVED).map_err(LogError::from)?;
        for entry in table.iter().map_err(LogError::from)? {
            let (key, value) = entry.map_err(LogError::from)?;
            let (origin, seq) = key.value();
            f(origin, seq, value.value())?;
        }
        Ok(())
    }
}
