//! The durable envelope log: this member's own orders, numbered and signed as they are accepted,
//! and every other member's as they arrive, with each origin's contiguous prefix.
//!
//! One redb database. An own append is one write transaction (next number, signed envelope,
//! prefix) committed durably before it returns, so an order acknowledged to its sender survives
//! `kill -9`. Received envelopes are checked for a different envelope at the same place
//! (equivocation) before they are stored.

use std::path::Path;

use crate::MemberId;
use commonware_cryptography::ed25519;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::{Envelope, EnvelopeBody, EnvelopeError};
use cobuild_primitives::AcceptedOrder;

/// Envelopes by (origin, seq).
const ENVELOPES: TableDefinition<'_, (u32, u64), &[u8]> = TableDefinition::new("envelopes");
/// Per origin: the highest seq with every seq from 1 to it present.
const CONTIGUOUS: TableDefinition<'_, u32, u64> = TableDefinition::new("contiguous");
/// Per origin: the highest seq stored.
const HIGH: TableDefinition<'_, u32, u64> = TableDefinition::new("high");

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
    /// The signed head of the highest stored envelope.
    pub high: Option<crate::SignedHead>,
}

/// This member's envelope log.
#[derive(Debug)]
pub struct Log {
    db: redb::Database,
    origin: MemberId,
    key: ed25519::PrivateKey,
}

impl Log {
    /// Opens (or creates) the log at `path` for member `origin`, which signs with `key`.
    pub fn open(path: &Path, origin: MemberId, key: ed25519::PrivateKey) -> Result<Self, LogError> {
        Self::with_db(redb::Database::create(path)?, origin, key)
    }

    /// A log kept in memory only: for simulations, where a "crash" stops the node's tasks but
    /// keeps what it committed, as the file would.
    pub fn in_memory(origin: MemberId, key: ed25519::PrivateKey) -> Result<Self, LogError> {
        let db =
            redb::Database::builder().create_with_backend(redb::backends::InMemoryBackend::new())?;
        Self::with_db(db, origin, key)
    }

    fn with_db(
        db: redb::Database,
        origin: MemberId,
        key: ed25519::PrivateKey,
    ) -> Result<Self, LogError> {
        let tx = db.begin_write()?;
        tx.open_table(ENVELOPES)?;
        tx.open_table(CONTIGUOUS)?;
        tx.open_table(HIGH)?;
        tx.commit()?;
        Ok(Self { db, origin, key })
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
        let tx = self.db.begin_write()?;
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
    /// Not made durable on its own (the next own append makes it so): a received envelope lost
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
        let tx = self.db.begin_read()?;
        let table = tx.open_table(ENVELOPES)?;
        envelopes
            .iter()
            .map(|e| {
                Ok(match table.get((e.body.origin, e.body.seq))? {
                    None => Held::Absent,
                    Some(stored) if stored.value() == e.encode().as_slice() => Held::Same,
                    Some(_) => Held::Other,
                })
            })
            .collect()
    }

    /// [`Log::insert`] for several envelopes in one (non-durable) write.
    pub fn insert_batch(&self, envelopes: &[Envelope]) -> Result<Vec<Insert>, LogError> {
        let mut tx = self.db.begin_write()?;
        tx.set_durability(redb::Durability::None)?;
        let mut results = Vec::with_capacity(envelopes.len());
        let mut changed = false;
        {
            let mut table = tx.open_table(ENVELOPES)?;
            let mut prefix = tx.open_table(CONTIGUOUS)?;
            let mut high = tx.open_table(HIGH)?;
            for envelope in envelopes {
                let (origin, seq) = (envelope.body.origin, envelope.body.seq);
                let existing = table
                    .get((origin, seq))?
                    .map(|v| decode(origin, seq, v.value()))
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
        } else {
            tx.abort()?;
        }
        Ok(results)
    }

    /// The envelope at (origin, seq), if stored.
    pub fn get(&self, origin: MemberId, seq: u64) -> Result<Option<Envelope>, LogError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(ENVELOPES)?;
        table
            .get((origin, seq))?
            .map(|v| decode(origin, seq, v.value()))
            .transpose()
    }

    /// Up to `max` stored envelopes of `origin` from `from` on, in order (what a member that
    /// misses them is sent).
    pub fn range(
        &self,
        origin: MemberId,
        from: u64,
        max: usize,
    ) -> Result<Vec<Envelope>, LogError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(ENVELOPES)?;
        let mut out = Vec::new();
        for entry in table.range((origin, from)..=(origin, u64::MAX))?.take(max) {
            let (key, value) = entry?;
            let (_, seq) = key.value();
            out.push(decode(origin, seq, value.value())?);
        }
        Ok(out)
    }

    /// The highest seq of `origin` with every earlier one stored (0: none).
    pub fn contiguous(&self, origin: MemberId) -> Result<u64, LogError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(CONTIGUOUS)?;
        Ok(table.get(origin)?.map_or(0, |v| v.value()))
    }

    /// Every origin with something stored: its contiguous prefix and the signed head of its
    /// highest stored envelope (what this member announces in its status).
    pub fn summary(&self) -> Result<Vec<OriginSummary>, LogError> {
        let tx = self.db.begin_read()?;
        let high = tx.open_table(HIGH)?;
        let prefix = tx.open_table(CONTIGUOUS)?;
        let envelopes = tx.open_table(ENVELOPES)?;
        let mut out = Vec::new();
        for entry in high.iter()? {
            let (origin, top) = entry?;
            let (origin, top) = (origin.value(), top.value());
            let contiguous = prefix.get(origin)?.map_or(0, |v| v.value());
            let head = envelopes
                .get((origin, top))?
                .map(|v| decode(origin, top, v.value()))
                .transpose()?
                .map(|e| e.signed_head());
            out.push(OriginSummary {
                origin,
                contiguous,
                high: head,
            });
        }
        Ok(out)
    }

    /// Calls `f` with every stored envelope, by origin and seq (to refill the pools after a
    /// restart). Stops at the first error `f` returns.
    pub fn for_each<E: From<LogError>>(
        &self,
        mut f: impl FnMut(Envelope) -> Result<(), E>,
    ) -> Result<(), E> {
        let tx = self.db.begin_read().map_err(LogError::from)?;
        let table = tx.open_table(ENVELOPES).map_err(LogError::from)?;
        for entry in table.iter().map_err(LogError::from)? {
            let (key, value) = entry.map_err(LogError::from)?;
            let (origin, seq) = key.value();
            f(decode(origin, seq, value.value())?)?;
        }
        Ok(())
    }

    /// Calls `f` with every envelope of each origin's contiguous prefix, by origin and seq: what
    /// a restarting node refills its pools with before the replication engine, which hands over
    /// the rest as the prefixes grow, starts. Stops at the first error.
    pub fn for_each_contiguous<E: From<LogError>>(
        &self,
        mut f: impl FnMut(Envelope) -> Result<(), E>,
    ) -> Result<(), E> {
        let tx = self.db.begin_read().map_err(LogError::from)?;
        let prefixes = tx.open_table(CONTIGUOUS).map_err(LogError::from)?;
        let table = tx.open_table(ENVELOPES).map_err(LogError::from)?;
        for prefix in prefixes.iter().map_err(LogError::from)? {
            let (origin, contiguous) = prefix.map_err(LogError::from)?;
            let (origin, contiguous) = (origin.value(), contiguous.value());
            for entry in table
                .range((origin, 1)..=(origin, contiguous))
                .map_err(LogError::from)?
            {
                let (key, value) = entry.map_err(LogError::from)?;
                f(decode(origin, key.value().1, value.value())?)?;
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
        let tx = self.db.begin_read()?;
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

fn decode(origin: MemberId, seq: u64, bytes: &[u8]) -> Result<Envelope, LogError> {
    Envelope::decode(bytes).map_err(|source| LogError::Corrupt {
        origin,
        seq,
        source,
    })
}
