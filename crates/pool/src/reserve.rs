//! Admission in two steps, so an order reaches the builders only once it is acknowledged.
//!
//! A node that replicates orders answers a sender only after the order's envelope is durable.
//! If the order went into the pool first, a failed write would leave an order in the next bid
//! that the sender was told was refused; if it went in after, a concurrent order could take its
//! place (its nonce, its replacement slot, the last free place) between the check and the insert,
//! and an acknowledged order would be refused. So the pool first *reserves*: every check runs and
//! the order takes its place under the pool's locks, counted against the bound but offered to no
//! builder and shown to no sender. Once the envelope is durable the reservation is *published*;
//! if the write failed it is *withdrawn*, which also puts back what it replaced.
//!
//! Dropping a reservation withdraws it, so a caller that goes away never leaves a hidden order
//! behind. Publish from a task that cannot be cancelled once the write may have happened.
//!
//! A reserved order cannot be replaced until it is settled (a replacement gets
//! [`PoolError::PendingReplacement`](crate::PoolError::PendingReplacement)), so withdrawing only
//! ever puts back an order that was published. The very same order arriving again while
//! reserved (a resend, or its copy from another member) joins the reservation: it is shown as
//! soon as any of them is published, and removed only when all of them were withdrawn.

use std::{collections::HashMap, sync::Arc};

use alloy_primitives::{Address, B256};

use crate::{BundlePool, PooledBundle, PooledTx, TxPool};

/// The reserved orders of a pool and how many reservations wait on each.
#[derive(Debug, Default)]
pub(crate) struct Pending(HashMap<B256, u32>);

/// What releasing one reservation of an order left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Released {
    /// It was the last one: the order is withdrawn.
    Last,
    /// Others still wait on the order, or it was published meanwhile: leave it.
    Kept,
}

impl Pending {
    /// Whether `id` is reserved and not yet published.
    pub(crate) fn contains(&self, id: &B256) -> bool {
        self.0.contains_key(id)
    }

    /// A new reservation of `id` (the first, or one joining the ones already waiting).
    pub(crate) fn add(&mut self, id: B256) {
        *self.0.entry(id).or_default() += 1;
    }

    /// `id` is published: whether it was still reserved (and should now be shown).
    pub(crate) fn publish(&mut self, id: &B256) -> bool {
        self.0.remove(id).is_some()
    }

    /// One reservation of `id` is withdrawn.
    pub(crate) fn release(&mut self, id: &B256) -> Released {
        match self.0.get_mut(id) {
            Some(waiting) if *waiting > 1 => {
                *waiting -= 1;
                Released::Kept
            }
            Some(_) => {
                self.0.remove(id);
                Released::Last
            }
            None => Released::Kept,
        }
    }
}

/// What withdrawing a reserved bundle must put back.
#[derive(Debug)]
pub(crate) struct BundleUndo {
    pub(crate) id: B256,
    /// The published bundle it replaced.
    pub(crate) replaced: Option<Arc<PooledBundle>>,
    /// Its replacement slot before it took the place (none for a reservation that joined one
    /// already waiting, or for a bundle without a uuid).
    pub(crate) prior: Option<SlotUndo>,
}

/// A replacement key's slot for one target block, as it was before a reservation took it.
#[derive(Debug)]
pub(crate) struct SlotUndo {
    /// The `(sender, uuid)` key.
    pub(crate) key: (Address, String),
    /// The target block.
    pub(crate) block: u64,
    /// The live bundle (id and replacement nonce) that held the slot, if any.
    pub(crate) live: Option<(B256, Option<u64>)>,
}

#[derive(Debug)]
enum Held {
    /// The pool already held this very order: nothing to publish or withdraw.
    Already,
    Tx {
        pool: TxPool,
        hash: B256,
        replaced: Option<Arc<PooledTx>>,
    },
    Bundle {
        pool: BundlePool,
        undo: BundleUndo,
    },
}

/// An order that has its place in a pool but is not offered to builders yet.
#[must_use = "a reservation is withdrawn when dropped; publish it once the order is acknowledged"]
#[derive(Debug)]
pub struct Reservation {
    id: B256,
    held: Option<Held>,
}

impl Reservation {
    pub(crate) const fn held(id: B256) -> Self {
        Self {
            id,
            held: Some(Held::Already),
        }
    }

    pub(crate) const fn tx(pool: TxPool, hash: B256, replaced: Option<Arc<PooledTx>>) -> Self {
        Self {
            id: hash,
            held: Some(Held::Tx {
                pool,
                hash,
                replaced,
            }),
        }
    }

    pub(crate) fn bundle(pool: BundlePool, undo: BundleUndo) -> Self {
        Self {
            id: undo.id,
            held: Some(Held::Bundle { pool, undo }),
        }
    }

    /// The order's place: the transaction hash, or the bundle's pool id.
    pub const fn id(&self) -> B256 {
        self.id
    }

    /// Offers the order to builders (and, for a public transaction, shows it to everyone).
    pub fn publish(mut self) {
        match self.held.take() {
            Some(Held::Tx { pool, hash, .. }) => pool.publish(&hash),
            Some(Held::Bundle { pool, undo }) => {
                let shown = pool.state().lock().publish(&undo.id);
                if shown {
                    tracing::debug!(id = %undo.id, "pool.bundle.add");
                    pool.limit().changed();
                }
            }
            Some(Held::Already) | None => {}
        }
    }

    /// Takes the order out again and puts back what it replaced.
    pub fn withdraw(mut self) {
        self.undo();
    }

    fn undo(&mut self) {
        match self.held.take() {
            Some(Held::Tx {
                pool,
                hash,
                replaced,
            }) => pool.withdraw(&hash, replaced),
            Some(Held::Bundle { pool, undo }) => {
                tracing::debug!(id = %undo.id, "pool.bundle.withdrawn");
                pool.state().lock().withdraw(undo);
                pool.limit().changed();
            }
            Some(Held::Already) | None => {}
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.undo();
    }
}
