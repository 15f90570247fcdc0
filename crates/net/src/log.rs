//! The durable envelope log: this member's own orders, numbered and signed as they are accepted,
//! and every other member's as they arrive, with each origin's contiguous prefix.
//!
//! Two redb databases with the same tables. This member's own envelopes live in one: an own
//! append is one write transaction (next number, signed envelope, prefix) committed durably
//! before it returns, so an order acknowledged to its sender survives `kill -9`. Other origins'
//! envelopes live in the other (the *copies*), checked for a different envelope at the same
//! place (equivocation) before they are stored and made durable about once a second
//! ([`Log::sync_copies`]): a copy lost in a crash is fetched again. Two files rather than one
//! because redb has one writer at a time: in one file every received message waited behind the
//! disk flush of an own append, and replication latency was mostly that queue (at 5,000
//! orders/s over 4 members on loopback, p50 31–60 ms in one file, 7–9 ms in two).
//!
//! Envelopes the slot ledger has settled move to the [archive](crate::archive) beside the log
//! ([`Log::archive`]): lookups, ranges and equivocation checks see both, while a restart reads
//! back only what lies above each origin's archive floor.

use std::{
    collections::BTreeMap,
    ops::RangeInclusive,
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, Ordering},
};

use crate::{MemberId, archive::Archive};
use commonware_cryptography::ed25519;
use parking_lot::RwLock;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::{Envelope, EnvelopeBody, EnvelopeError};
use cobuild_primitives::AcceptedOrder;

/// Envelopes by (origin, seq).
const ENVELOPES: TableDefinition<'_, (u32, u64), &[u8]> = TableDefinition::new("envelopes");
/// Per origin: the highest seq with every seq from 1 to it present.
const CONTIGUOUS: TableDefinition<'_, u32, u64> = TableDefinition::new("contiguous");
/// Per origin: the highest seq stored.
const HIGH: TableDefinition<'_, u32, u64> = TableDefinition::new("high");

/// The page cache of each of the live log's two files (64 MiB for both, what the one file had).
/// Their rows are written once, read back on catch-up and moved to the archive after retention;
/// redb's default (1 GiB, grown with the file) would only hold memory.
const LOG_CACHE_BYTES: usize = 32 << 20;

/// The log failed; the envelope was not stored.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The database failed (I/O, corruption, lock held by another process).
    #[error("envelope log: {0}")]
    Db(#[from] redb::Error),
    /// A stored envelope does not decode.
    #[error("stored envelope ({origin}, {seq}): {source}")]
    Corrupt {
        /// Origin.
        origin: MemberId,
        /// Sequence number.
        seq: u64,
        /// Why.
        source: EnvelopeError,
    },
    /// The log records a prefix, but an envelope below it is not stored (a damaged file).
    #[error("origin {origin}'s envelope {seq} is missing below its recorded prefix {contiguous}")]
    Gap {
        /// Origin.
        origin: MemberId,
        /// The missing envelope.
        seq: u64,
        /// The prefix the log records.
        contiguous: u64,
    },
}

macro_rules! db_err {
    ($($ty:ty),*) => {$(
        impl From<$ty> for LogError {
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
    redb::CommitError,
    redb::SetDurabilityError
);

/// What inserting a received envelope did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Insert {
    /// Stored; `contiguous` is its origin's prefix now.
    New {
        /// The origin's contiguous prefix after the insert.
        contiguous: u64,
    },
    /// The same envelope was already stored.
    Duplicate,
    /// The origin signed a different envelope for the same place: proof it equivocated. The
    /// first one stays.
    Equivocation {
        /// The envelope stored first.
        existing: Box<Envelope>,
    },
}

/// What the log holds at an envelope's place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// Nothing yet.
    Absent,
    /// This very envelope.
    Same,
    /// Another envelope: if this one is validly signed, its origin equivocated.
    Other,
}

/// What a log holds of one origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginSummary {
    /// The origin.
    pub origin: MemberId,
    /// Every seq up to this one is stored.
    pub contiguous: u64,
    /// Every seq up to this one is in the archive rather than the live log.
    pub archived: u64,
    /// The signed head of the highest stored envelope.
    pub high: Option<crate::SignedHead>,
}

/// What one call of [`Log::archive`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Archived {
    /// Envelopes moved to the archive.
    pub moved: usize,
    /// Nothing is left below the floors asked for (within each origin's contiguous prefix).
    pub done: bool,
}

/// This member's envelope log.
#[derive(Debug)]
pub struct Log {
    /// This member's own envelopes, every append durable.
    own: redb::Database,
    /// Every other origin's envelopes, made durable by [`Log::sync_copies`].
    copies: redb::Database,
    /// The copies hold commits that are not durable yet.
    copies_dirty: AtomicBool,
    archive: Archive,
    /// The archive's floors, read on every lookup below them; raised only after the archive
    /// holds the envelopes and before the live log drops them, so a reader always finds one.
    floors: RwLock<BTreeMap<MemberId, u64>>,
    origin: MemberId,
    key: ed25519::PrivateKey,
}

impl Log {
    /// Opens (or creates) the log at `path` for member `origin`, which signs with `key`: its own
    /// envelopes in `path`, other origins' in the file named by [`Log::copies_path`] and the
    /// archive in the one named by [`Log::archive_path`].
    pub fn open(path: &Path, origin: MemberId, key: ed25519::PrivateKey) -> Result<Self, LogError> {
        let archive = Archive::open(&Self::archive_path(path))?;
        let open = |path: &Path| {
            redb::Database::builder()
                .set_cache_size(LOG_CACHE_BYTES)
                .create(path)
        };
        let own = open(path)?;
        let copies = open(&Self::copies_path(path))?;
        Self::with_dbs(own, copies, archive, origin, key)
    }

    /// The archive file of the log at `path` (`orders.redb` → `orders.archive.redb`).
    pub fn archive_path(path: &Path) -> PathBuf {
        path.with_extension("archive.redb")
    }

    /// The file of other origins' envelopes of the log at `path` (`orders.redb` →
    /// `orders.copies.redb`).
    pub fn copies_path(path: &Path) -> PathBuf {
        path.with_extension("copies.redb")
    }

    /// A log kept in memory only: for simulations, where a "crash" stops the node's tasks but
    /// keeps what it committed, as the file would.
    pub fn in_memory(origin: MemberId, key: ed25519::PrivateKey) -> Result<Self, LogError> {
        let memory = || {
            redb::Database::builder().create_with_backend(redb::backends::InMemoryBackend::new())
        };
        Self::with_dbs(memory()?, memory()?, Archive::in_memory()?, origin, key)
    }

    fn with_dbs(
        own: redb::Database,
        copies: redb::Database,
        archive: Archive,
        origin: MemberId,
        key: ed25519::PrivateKey,
    ) -> Result<Self, LogError> {
        let floors = archive.floors()?;
        let (mine, theirs): (BTreeMap<_, _>, BTreeMap<_, _>) =
            floors.iter().partition(|(o, _)| **o == origin);
        resume(&own, &mine)?;
        move_copies(&own, &copies, origin)?;
        resume(&copies, &theirs)?;
        Ok(Self {
            own,
            copies,
            copies_dirty: AtomicBool::new(false),
            archive,
            floors: RwLock::new(floors),
            origin,
            key,
        })
    }

    /// The database holding `origin`'s envelopes.
    fn db(&self, origin: MemberId) -> &redb::Database {
        if origin == self.origin {
            &self.own
        } else {
            &self.copies
        }
    }

    /// The databases with the origins each holds, in origin order (other origins below this
    /// member, its own, the rest), for reads that go over every origin in order.
    fn by_origin(&self) -> Vec<(&redb::Database, RangeInclusive<MemberId>)> {
        let me = self.origin;
        let mut out = Vec::with_capacity(3);
        if let Some(below) = me.checked_sub(1) {
            out.push((&self.copies, 0..=below));
        }
        out.push((&self.own, me..=me));
        if let Some(above) = me.checked_add(1) {
            out.push((&self.copies, above..=MemberId::MAX));
        }
        out
    }

    /// Makes the copies' commits since the last call durable (one disk flush, only when there
    /// are some). The replication engine calls it about once a second, and dropping the log
    /// does.
    pub fn sync_copies(&self) -> Result<(), LogError> {
        if !self.copies_dirty.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let synced = self
            .copies
            .begin_write()
            .map_err(LogError::from)
            .and_then(|tx| tx.commit().map_err(LogError::from));
        if synced.is_err() {
            // Still not durable: the next call tries again.
            self.copies_dirty.store(true, Ordering::Release);
        }
        synced
    }

    /// Every origin's archive floor: each of its seqs up to it is in the archive.
    pub fn archive_floors(&self) -> BTreeMap<MemberId, u64> {
        self.floors.read().clone()
    }

    /// The archive floor of `origin`: every seq up to it is archived (0: none).
    fn floor(&self, origin: MemberId) -> u64 {
        self.floors.read().get(&origin).copied().unwrap_or(0)
    }

    /// The encoded envelope at (origin, seq) in the archive, when it lies below the floor.
    fn archived(&self, origin: MemberId, seq: u64) -> Result<Option<Vec<u8>>, LogError> {
        if seq > self.floor(origin) {
            return Ok(None);
        }
        self.archive.get(origin, seq)
    }

    /// Moves up to `max` envelopes to the archive: for each `(origin, seq)` in `floors`, the
    /// origin's envelopes up to `seq` (or up to its contiguous prefix, if lower). Call it again
    /// until [`Archived::done`]; each call is one durable archive commit and one live-log
    /// commit, so it can run beside replication without holding it up for long.
    pub fn archive(&self, floors: &[(MemberId, u64)], max: usize) -> Result<Archived, LogError> {
        let mut moved = Vec::new();
        let mut raised = BTreeMap::new();
        let mut done = true;
        {
            let own = self.own.begin_read()?;
            let copies = self.copies.begin_read()?;
            for &(origin, wanted) in floors {
                let tx = if origin == self.origin { &own } else { &copies };
                let table = tx.open_table(ENVELOPES)?;
                let prefix = tx.open_table(CONTIGUOUS)?;
                let floor = self.floor(origin);
                let contiguous = prefix.get(origin)?.map_or(0, |v| v.value());
                let target = wanted.min(contiguous);
                if target <= floor {
                    continue;
                }
                let room = max.saturating_sub(moved.len());
                let gap = |last: u64| LogError::Gap {
                    origin,
                    seq: last + 1,
                    contiguous,
                };
                let mut last = floor;
                for entry in table
                    .range((origin, floor + 1)..=(origin, target))?
                    .take(room)
                {
                    let (key, value) = entry?;
                    let seq = key.value().1;
                    if seq != last + 1 {
                        return Err(gap(last));
                    }
                    moved.push(((origin, seq), value.value().to_vec()));
                    last = seq;
                }
                if last > floor {
                    raised.insert(origin, last);
                }
                if last < target {
                    if moved.len() < max {
                        // The live log ends below the prefix it records.
                        return Err(gap(last));
                    }
                    done = false;
                    break;
                }
            }
        }
        if raised.is_empty() {
            return Ok(Archived { moved: 0, done });
        }
        self.archive.put(&moved, &raised)?;
        {
            let mut floors = self.floors.write();
            for (&origin, &seq) in &raised {
                let floor = floors.entry(origin).or_default();
                *floor = (*floor).max(seq);
            }
        }
        for db in [&self.own, &self.copies] {
            let mut tx = db.begin_write()?;
            // Losing this commit in a crash only leaves copies the next open drops.
            tx.set_durability(redb::Durability::None)?;
            let mut any = false;
            {
                let mut table = tx.open_table(ENVELOPES)?;
                for (&origin, &floor) in &raised {
                    if std::ptr::eq(db, self.db(origin)) {
                        table.retain_in((origin, 1)..=(origin, floor), |_, _| false)?;
                        any = true;
                    }
                }
            }
            if any {
                tx.commit()?;
                if std::ptr::eq(db, &self.copies) {
                    self.copies_dirty.store(true, Ordering::Release);
                }
            } else {
                tx.abort()?;
            }
        }
        Ok(Archived {
            moved: moved.len(),
            done,
        })
    }

    /// This member's id.
    pub const fn origin(&self) -> MemberId {
        self.origin
    }

    /// Numbers, signs and durably stores an order this member accepted; only then may the
    /// sender be told it was accepted.
    pub fn append_own(
        &self,
        order: AcceptedOrder,
        received_at_ms: u64,
    ) -> Result<Envelope, LogError> {
        let mut out = self.append_own_batch(vec![(order, received_at_ms)])?;
        out.pop()
            .ok_or_else(|| LogError::Db(redb::Error::Corrupted("empty batch".into())))
    }

    /// [`Log::append_own`] for several orders in one durable commit (group commit: one disk
    /// flush for every order that arrived while the previous one was being written). Seqs are
    /// given in the batch's order.
    pub fn append_own_batch(
        &self,
        orders: Vec<(AcceptedOrder, u64)>,
    ) -> Result<Vec<Envelope>, LogError> {
        let tx = self.own.begin_write()?;
        let mut out = Vec::with_capacity(orders.len());
        {
            let mut prefix = tx.open_table(CONTIGUOUS)?;
            let mut envelopes = tx.open_table(ENVELOPES)?;
            let mut seq = prefix.get(self.origin)?.map_or(0, |v| v.value());
            for (order, received_at_ms) in orders {
                seq += 1;
                let envelope = Envelope::sign(
                    EnvelopeBody {
                        origin: self.origin,
                        seq,
                        received_at_ms,
                        kind: order.kind as u8,
                        payload: order.payload,
                        auth: order.auth,
                        call: order.call,
                    },
                    &self.key,
                );
                envelopes.insert((self.origin, seq), envelope.encode().as_slice())?;
                out.push(envelope);
            }
            prefix.insert(self.origin, seq)?;
            tx.open_table(HIGH)?.insert(self.origin, seq)?;
        }
        tx.commit()?;
        Ok(out)
    }

    /// Stores an envelope received from another member. The caller has verified its origin's
    /// signature; the log checks it is not a second envelope for the same place.
    ///
    /// Not made durable on its own (the next [`Log::sync_copies`] makes it so; its own
    /// envelopes coming back after a lost log, the next own append): a received envelope lost
    /// in a crash is fetched again, and the log stays consistent either way.
    pub fn insert(&self, envelope: &Envelope) -> Result<Insert, LogError> {
        let mut results = self.insert_batch(std::slice::from_ref(envelope))?;
        results
            .pop()
            .ok_or_else(|| LogError::Db(redb::Error::Corrupted("empty batch".into())))
    }

    /// For each envelope, what the log holds at its place: the same envelope, another one, or
    /// nothing. One read for a whole message, so copies already held (most of what members
    /// forward) are recognised without checking their signatures again.
    pub fn held(&self, envelopes: &[Envelope]) -> Result<Vec<Held>, LogError> {
        let copies = self.copies.begin_read()?.open_table(ENVELOPES)?;
        let mut own = None;
        envelopes
            .iter()
            .map(|e| {
                let table = if e.body.origin == self.origin {
                    match &mut own {
                        Some(table) => &*table,
                        None => own.insert(self.own.begin_read()?.open_table(ENVELOPES)?),
                    }
                } else {
                    &copies
                };
                let stored = match table.get((e.body.origin, e.body.seq))? {
                    Some(stored) => Some(stored.value().to_vec()),
                    None => self.archived(e.body.origin, e.body.seq)?,
                };
                Ok(match stored {
                    None => Held::Absent,
                    Some(stored) if stored == e.encode() => Held::Same,
                    Some(_) => Held::Other,
                })
            })
            .collect()
    }

    /// [`Log::insert`] for several envelopes in one (non-durable) write per database.
    pub fn insert_batch(&self, envelopes: &[Envelope]) -> Result<Vec<Insert>, LogError> {
        let mine = |e: &&Envelope| e.body.origin == self.origin;
        let (own, theirs): (Vec<&Envelope>, Vec<&Envelope>) = envelopes.iter().partition(mine);
        let insert = |db, part: Vec<&Envelope>| {
            if part.is_empty() {
                Ok(Vec::new().into_iter())
            } else {
                self.insert_into(db, part.into_iter()).map(Vec::into_iter)
            }
        };
        let (mut own, mut theirs) = (insert(&self.own, own)?, insert(&self.copies, theirs)?);
        // Each side answered its envelopes in order: merged back into the caller's order.
        Ok(envelopes
            .iter()
            .filter_map(|e| if mine(&e) { own.next() } else { theirs.next() })
            .collect())
    }

    /// Inserts `envelopes`, all of origins `db` holds, in one non-durable write.
    fn insert_into<'e>(
        &self,
        db: &redb::Database,
        envelopes: impl ExactSizeIterator<Item = &'e Envelope>,
    ) -> Result<Vec<Insert>, LogError> {
        let mut tx = db.begin_write()?;
        tx.set_durability(redb::Durability::None)?;
        let mut results = Vec::with_capacity(envelopes.len());
        let mut changed = false;
        {
            let mut table = tx.open_table(ENVELOPES)?;
            let mut prefix = tx.open_table(CONTIGUOUS)?;
            let mut high = tx.open_table(HIGH)?;
            for envelope in envelopes {
                let (origin, seq) = (envelope.body.origin, envelope.body.seq);
                let stored = match table.get((origin, seq))? {
                    Some(stored) => Some(stored.value().to_vec()),
                    None => self.archived(origin, seq)?,
                };
                let existing = stored
                    .map(|bytes| decode(origin, seq, &bytes))
                    .transpose()?;
                results.push(match existing {
                    Some(existing) if existing == *envelope => Insert::Duplicate,
                    Some(existing) => Insert::Equivocation {
                        existing: Box::new(existing),
                    },
                    None => {
                        table.insert((origin, seq), envelope.encode().as_slice())?;
                        let mut contiguous = prefix.get(origin)?.map_or(0, |v| v.value());
                        while table.get((origin, contiguous + 1))?.is_some() {
                            contiguous += 1;
                        }
                        prefix.insert(origin, contiguous)?;
                        let top = high.get(origin)?.map_or(0, |v| v.value()).max(seq);
                        high.insert(origin, top)?;
                        changed = true;
                        Insert::New { contiguous }
                    }
                });
            }
        }
        if changed {
            tx.commit()?;
            if std::ptr::eq(db, &self.copies) {
                self.copies_dirty.store(true, Ordering::Release);
            }
        } else {
            tx.abort()?;
        }
        Ok(results)
    }

    /// The envelope at (origin, seq), if stored (in the live log or the archive).
    pub fn get(&self, origin: MemberId, seq: u64) -> Result<Option<Envelope>, LogError> {
        let stored = {
            let tx = self.db(origin).begin_read()?;
            let table = tx.open_table(ENVELOPES)?;
            table.get((origin, seq))?.map(|v| v.value().to_vec())
        };
        match stored {
            Some(bytes) => Some(bytes),
            None => self.archived(origin, seq)?,
        }
        .map(|bytes| decode(origin, seq, &bytes))
        .transpose()
    }

    /// Up to `max` stored envelopes of `origin` from `from` on, in order, from the archive
    /// and then the live log (what a member that misses them is sent, however old).
    pub fn range(
        &self,
        origin: MemberId,
        from: u64,
        max: usize,
    ) -> Result<Vec<Envelope>, LogError> {
        // The live snapshot first: whatever the floor is by the time it is read, the live
        // snapshot still holds everything above it, and the archive everything below.
        let tx = self.db(origin).begin_read()?;
        let table = tx.open_table(ENVELOPES)?;
        let floor = self.floor(origin);
        let mut out = Vec::new();
        let mut next = from;
        if from <= floor {
            for (seq, bytes) in self.archive.range(origin, from, floor, max)? {
                out.push(decode(origin, seq, &bytes)?);
                next = seq + 1;
            }
            next = next.max(floor + 1);
        }
        if out.len() == max {
            return Ok(out);
        }
        for entry in table
            .range((origin, next)..=(origin, u64::MAX))?
            .take(max - out.len())
        {
            let (key, value) = entry?;
            let (_, seq) = key.value();
            out.push(decode(origin, seq, value.value())?);
        }
        Ok(out)
    }

    /// The highest seq of `origin` with every earlier one stored (0: none).
    pub fn contiguous(&self, origin: MemberId) -> Result<u64, LogError> {
        let tx = self.db(origin).begin_read()?;
        let table = tx.open_table(CONTIGUOUS)?;
        Ok(table.get(origin)?.map_or(0, |v| v.value()))
    }

    /// Every origin with something stored: its contiguous prefix and the signed head of its
    /// highest stored envelope (what this member announces in its status).
    pub fn summary(&self) -> Result<Vec<OriginSummary>, LogError> {
        let mut out = Vec::new();
        for (db, origins) in self.by_origin() {
            let tx = db.begin_read()?;
            let high = tx.open_table(HIGH)?;
            let prefix = tx.open_table(CONTIGUOUS)?;
            let envelopes = tx.open_table(ENVELOPES)?;
            for entry in high.range(origins)? {
                let (origin, top) = entry?;
                let (origin, top) = (origin.value(), top.value());
                let contiguous = prefix.get(origin)?.map_or(0, |v| v.value());
                let stored = match envelopes.get((origin, top))? {
                    Some(stored) => Some(stored.value().to_vec()),
                    None => self.archived(origin, top)?,
                };
                let head = stored
                    .map(|bytes| decode(origin, top, &bytes))
                    .transpose()?
                    .map(|e| e.signed_head());
                out.push(OriginSummary {
                    origin,
                    contiguous,
                    archived: self.floor(origin),
                    high: head,
                });
            }
        }
        Ok(out)
    }

    /// Calls `f` with every stored envelope: the archive's, then the live log's, each by origin
    /// and seq (one being archived meanwhile can be seen in both). Stops at the first error `f`
    /// returns.
    pub fn for_each<E: From<LogError>>(
        &self,
        mut f: impl FnMut(Envelope) -> Result<(), E>,
    ) -> Result<(), E> {
        // The live snapshots before the archive's, so an envelope moved meanwhile is seen twice
        // rather than not at all.
        let live = self
            .by_origin()
            .into_iter()
            .map(|(db, origins)| {
                let table = db.begin_read()?.open_table(ENVELOPES)?;
                Ok((table, origins))
            })
            .collect::<Result<Vec<_>, LogError>>()?;
        self.archive
            .for_each(|origin, seq, bytes| f(decode(origin, seq, bytes)?))?;
        for (table, origins) in live {
            let keys = (*origins.start(), 0)..=(*origins.end(), u64::MAX);
            for entry in table.range(keys).map_err(LogError::from)? {
                let (key, value) = entry.map_err(LogError::from)?;
                let (origin, seq) = key.value();
                f(decode(origin, seq, value.value())?)?;
            }
        }
        Ok(())
    }

    /// Calls `f` with every envelope of each origin's contiguous prefix above its archive
    /// floor, by origin and seq: what a restarting node refills its pools with before the
    /// replication engine, which hands over the rest as the prefixes grow, starts. Stops at the
    /// first error.
    pub fn for_each_contiguous<E: From<LogError>>(
        &self,
        mut f: impl FnMut(Envelope) -> Result<(), E>,
    ) -> Result<(), E> {
        for (db, origins) in self.by_origin() {
            let tx = db.begin_read().map_err(LogError::from)?;
            let prefixes = tx.open_table(CONTIGUOUS).map_err(LogError::from)?;
            let table = tx.open_table(ENVELOPES).map_err(LogError::from)?;
            for prefix in prefixes.range(origins).map_err(LogError::from)? {
                let (origin, contiguous) = prefix.map_err(LogError::from)?;
                let (origin, contiguous) = (origin.value(), contiguous.value());
                let from = self.floor(origin) + 1;
                for entry in table
                    .range((origin, from)..=(origin, contiguous))
                    .map_err(LogError::from)?
                {
                    let (key, value) = entry.map_err(LogError::from)?;
                    f(decode(origin, key.value().1, value.value())?)?;
                }
            }
        }
        Ok(())
    }

    /// Up to `max` seqs of `origin` after its contiguous prefix and up to `known_high` (the
    /// highest seq some member is known to have) that are not stored: what to fetch.
    pub fn missing(
        &self,
        origin: MemberId,
        known_high: u64,
        max: usize,
    ) -> Result<Vec<u64>, LogError> {
        let from = self.contiguous(origin)? + 1;
        if from > known_high {
            return Ok(Vec::new());
        }
        let tx = self.db(origin).begin_read()?;
        let table = tx.open_table(ENVELOPES)?;
        let mut present = table
            .range((origin, from)..=(origin, known_high))?
            .map(|entry| entry.map(|(key, _)| key.value().1))
            .peekable();
        let mut out = Vec::new();
        for seq in from..=known_high {
            if out.len() == max {
                break;
            }
            match present.peek() {
                Some(Ok(next)) if *next == seq => {
                    present.next();
                }
                Some(Err(_)) => {
                    if let Some(Err(e)) = present.next() {
                        return Err(e.into());
                    }
                }
                _ => out.push(seq),
            }
        }
        Ok(out)
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        // A clean stop keeps the copies; a crash loses at most the last second of them, which
        // are fetched again.
        if let Err(e) = self.sync_copies() {
            tracing::warn!(error = %e, "log.copies.sync_failed");
        }
    }
}

/// Moves other origins' envelopes out of the own file into the copies, durably: a log written
/// before they had a file of their own holds them there, and they may be the only copies left
/// of some origin's orders. Reads only the key ranges of other origins, so an own file without
/// any costs two empty range reads.
fn move_copies(
    own: &redb::Database,
    copies: &redb::Database,
    me: MemberId,
) -> Result<(), LogError> {
    let mut rows = Vec::new();
    let mut prefixes = BTreeMap::new();
    {
        let tx = own.begin_read()?;
        let table = tx.open_table(ENVELOPES)?;
        let prefix = tx.open_table(CONTIGUOUS)?;
        let below = table.range(..(me, 0))?;
        let above = match me.checked_add(1) {
            Some(next) => Some(table.range((next, 0)..)?),
            None => None,
        };
        for entry in below.chain(above.into_iter().flatten()) {
            let (key, value) = entry?;
            rows.push((key.value(), value.value().to_vec()));
        }
        for entry in prefix.iter()? {
            let (origin, contiguous) = entry?;
            if origin.value() != me {
                prefixes.insert(origin.value(), contiguous.value());
            }
        }
    }
    if rows.is_empty() && prefixes.is_empty() {
        return Ok(());
    }
    let tx = copies.begin_write()?;
    {
        let mut table = tx.open_table(ENVELOPES)?;
        let mut prefix = tx.open_table(CONTIGUOUS)?;
        let mut high = tx.open_table(HIGH)?;
        for ((origin, seq), bytes) in &rows {
            if table.get((*origin, *seq))?.is_none() {
                table.insert((*origin, *seq), bytes.as_slice())?;
            }
        }
        let origins: BTreeMap<MemberId, u64> = rows.iter().fold(prefixes, |mut all, row| {
            all.entry(row.0.0).or_default();
            all
        });
        for (origin, moved) in origins {
            let mut contiguous = prefix.get(origin)?.map_or(0, |v| v.value()).max(moved);
            while table.get((origin, contiguous + 1))?.is_some() {
                contiguous += 1;
            }
            prefix.insert(origin, contiguous)?;
            let top = table
                .range((origin, 0)..=(origin, u64::MAX))?
                .next_back()
                .transpose()?
                .map_or(0, |(key, _)| key.value().1);
            let top = high
                .get(origin)?
                .map_or(0, |v| v.value())
                .max(top)
                .max(contiguous);
            high.insert(origin, top)?;
        }
    }
    // Durable before the own file lets go of them.
    tx.commit()?;
    let tx = own.begin_write()?;
    {
        let mut table = tx.open_table(ENVELOPES)?;
        let mut prefix = tx.open_table(CONTIGUOUS)?;
        let mut high = tx.open_table(HIGH)?;
        for (key, _) in &rows {
            table.remove(*key)?;
        }
        // Only this member's own rows stay.
        let own_only = |origin: u32, _: u64| origin == me;
        prefix.retain(own_only)?;
        high.retain(own_only)?;
    }
    tx.commit()?;
    Ok(())
}

/// Readies one of the log's databases on opening: its tables exist, and each origin of `floors`
/// it holds resumes at its archive floor.
fn resume(db: &redb::Database, floors: &BTreeMap<MemberId, u64>) -> Result<(), LogError> {
    let tx = db.begin_write()?;
    {
        // A crash between the archive's commit and the live log's can leave copies below a
        // floor; they are dropped here, or nothing would ever drop them.
        let mut table = tx.open_table(ENVELOPES)?;
        let mut prefix = tx.open_table(CONTIGUOUS)?;
        let mut high = tx.open_table(HIGH)?;
        for (&origin, &floor) in floors {
            table.retain_in((origin, 1)..=(origin, floor), |_, _| false)?;
            // The archive is durable, received envelopes are not: after a crash (or with a
            // lost or restored log) the live prefix can be below the floor, and nothing below
            // the floor is ever stored live again. The archive holds all of it, so the prefix
            // starts at the floor and extends over what the log holds above.
            let mut contiguous = prefix.get(origin)?.map_or(0, |v| v.value()).max(floor);
            while table.get((origin, contiguous + 1))?.is_some() {
                contiguous += 1;
            }
            prefix.insert(origin, contiguous)?;
            let top = high.get(origin)?.map_or(0, |v| v.value()).max(contiguous);
            high.insert(origin, top)?;
        }
    }
    tx.commit()?;
    Ok(())
}

fn decode(origin: MemberId, seq: u64, bytes: &[u8]) -> Result<Envelope, LogError> {
    Envelope::decode(bytes).map_err(|source| LogError::Corrupt {
        origin,
        seq,
        source,
    })
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{Arc, mpsc},
        time::Duration,
    };

    use alloy_primitives::Bytes;
    use cobuild_primitives::{AcceptedOrder, OrderKind};
    use commonware_cryptography::Signer;

    use super::*;

    fn envelope(key: &ed25519::PrivateKey, origin: MemberId, seq: u64) -> Envelope {
        Envelope::sign(
            EnvelopeBody {
                origin,
                seq,
                received_at_ms: seq,
                kind: OrderKind::RawTransaction as u8,
                payload: Bytes::from(vec![0x02, seq as u8]),
                auth: Bytes::new(),
                call: 0,
            },
            key,
        )
    }

    #[test]
    fn test_a_log_from_before_the_copies_file_keeps_every_envelope() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("orders.redb");
        let me = ed25519::PrivateKey::from_seed(1);
        let (below, above) = (
            ed25519::PrivateKey::from_seed(2),
            ed25519::PrivateKey::from_seed(3),
        );
        // One file as the log wrote it before: member 1's own envelopes 1..=2, origin 0's
        // 1..=3 and origin 2's 1, 2 and 4.
        let mut rows = vec![envelope(&me, 1, 1), envelope(&me, 1, 2)];
        rows.extend((1..=3).map(|seq| envelope(&below, 0, seq)));
        rows.extend([1, 2, 4].map(|seq| envelope(&above, 2, seq)));
        {
            let db = redb::Database::create(&path).expect("db");
            let tx = db.begin_write().expect("write");
            {
                let mut table = tx.open_table(ENVELOPES).expect("table");
                for e in &rows {
                    table
                        .insert((e.body.origin, e.body.seq), e.encode().as_slice())
                        .expect("insert");
                }
                let mut prefix = tx.open_table(CONTIGUOUS).expect("table");
                let mut high = tx.open_table(HIGH).expect("table");
                for (origin, contiguous, top) in [(0, 3, 3), (1, 2, 2), (2, 2, 4)] {
                    prefix.insert(origin, contiguous).expect("insert");
                    high.insert(origin, top).expect("insert");
                }
            }
            tx.commit().expect("commit");
        }
        for opened in 0..2 {
            let log = Log::open(&path, 1, me.clone()).expect("opens");
            for e in &rows {
                assert_eq!(
                    log.get(e.body.origin, e.body.seq).expect("reads").as_ref(),
                    Some(e)
                );
            }
            let prefixes: Vec<(MemberId, u64, u64)> = log
                .summary()
                .expect("summary")
                .iter()
                .map(|s| {
                    (
                        s.origin,
                        s.contiguous,
                        s.high.as_ref().map_or(0, |h| h.head.seq),
                    )
                })
                .collect();
            let own = 2 + opened;
            assert_eq!(prefixes, vec![(0, 3, 3), (1, own, own), (2, 2, 4)]);
            assert_eq!(log.missing(2, 4, 10).expect("missing"), vec![3]);
            let next = log
                .append_own(
                    AcceptedOrder::raw_transaction(Bytes::from_static(b"\x02")),
                    9,
                )
                .expect("append");
            assert_eq!(next.body.seq, own + 1, "own numbering goes on");
            // The copies live in their own file now.
            let own = log.own.begin_read().expect("read");
            let table = own.open_table(ENVELOPES).expect("table");
            assert_eq!(table.iter().expect("iter").count() as u64, next.body.seq);
        }
    }

    #[test]
    fn test_a_message_mixing_own_and_other_envelopes_is_answered_in_its_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let me = ed25519::PrivateKey::from_seed(1);
        let peer = ed25519::PrivateKey::from_seed(2);
        let log = Log::open(&dir.path().join("orders.redb"), 0, me.clone()).expect("opens");
        log.insert(&envelope(&peer, 1, 1)).expect("insert");
        // Own envelope 1 coming back after a lost log, between two of the peer's.
        let message = [
            envelope(&peer, 1, 1),
            envelope(&me, 0, 1),
            envelope(&peer, 1, 2),
        ];
        assert_eq!(
            log.insert_batch(&message).expect("inserts"),
            vec![
                Insert::Duplicate,
                Insert::New { contiguous: 1 },
                Insert::New { contiguous: 2 }
            ]
        );
        assert_eq!(log.get(0, 1).expect("reads").as_ref(), Some(&message[1]));
    }

    #[test]
    fn test_taking_in_a_copy_does_not_wait_for_an_own_append() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("orders.redb");
        let log = Arc::new(Log::open(&path, 0, ed25519::PrivateKey::from_seed(1)).expect("opens"));
        let copy = envelope(&ed25519::PrivateKey::from_seed(2), 1, 1);
        // An own append in progress: its transaction holds the own file's writer until its
        // flush ends.
        let own = log.own.begin_write().expect("write");
        let (done, inserted) = mpsc::channel();
        let taker = log.clone();
        std::thread::spawn(move || {
            let _ = done.send(taker.insert(&copy));
        });
        let insert = inserted
            .recv_timeout(Duration::from_secs(30))
            .expect("the copy is taken in while the own append is still open");
        assert_eq!(insert.expect("insert"), Insert::New { contiguous: 1 });
        own.abort().expect("abort");
    }
}
