//! What re-executing a bid leaves for the next one: a builder bids again and again in a slot,
//! each block its last one with the round's new orders after it and a new payment to the
//! proposer at the end. A relay that kept the last block executed up to its payment executes
//! only what follows and seals from what the last seal kept, instead of the whole block again.
//!
//! ```text
//!  bid 1:  tx tx tx … tx  pay₁                   executed whole; kept up to pay₁
//!  bid 2:  tx tx tx … tx  tx tx  pay₂            kept part taken, then tx tx pay₂
//! ```
//!
//! A kept block is used only by a block with the same parent and the same attributes (fee
//! recipient, timestamp, randao, gas limit, withdrawals …) whose transactions begin with the
//! kept ones, so what it executes is what the whole re-execution would have executed; the
//! block is then checked against its header as any other.

use std::{
    collections::VecDeque,
    sync::atomic::{AtomicU64, Ordering},
};

use alloy_primitives::B256;
use parking_lot::Mutex;

use super::{BlockAttributes, SealCache, builder::Detached};

/// Blocks kept at most: one for each builder bidding on the head, and a few over.
const KEPT: usize = 8;

/// A block executed up to (not with) its last transaction, and what the seal of the whole
/// block kept.
pub(crate) struct Prefix {
    pub(crate) parent: B256,
    pub(crate) attrs: BlockAttributes,
    /// The transactions `builder` has executed.
    pub(crate) hashes: Vec<B256>,
    pub(crate) block: Detached,
    pub(crate) seal: SealCache,
}

/// The [`Prefix`]es of the blocks re-executed last on the head.
#[derive(Default)]
pub(crate) struct Prefixes {
    kept: Mutex<VecDeque<Prefix>>,
    /// Blocks that went on from a kept one.
    resumed: AtomicU64,
}

impl std::fmt::Debug for Prefixes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prefixes")
            .field("kept", &self.kept.lock().len())
            .finish()
    }
}

impl Prefixes {
    /// Takes out the longest kept block that a block on `parent` with `attrs` and the
    /// transactions `hashes` begins with and goes on past. Taken, not copied: the block
    /// executed from it is kept in its place.
    pub(crate) fn take(
        &self,
        parent: B256,
        attrs: &BlockAttributes,
        hashes: &[B256],
    ) -> Option<Prefix> {
        let mut kept = self.kept.lock();
        let (at, _) = kept
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                p.parent == parent
                    && p.hashes.len() < hashes.len()
                    && hashes.starts_with(&p.hashes)
                    && p.attrs == *attrs
            })
            .max_by_key(|(_, p)| p.hashes.len())?;
        self.resumed.fetch_add(1, Ordering::Relaxed);
        kept.remove(at)
    }

    /// Keeps `prefix`, forgetting those on another parent (a head that has passed) and, over
    /// the bound, the oldest.
    pub(crate) fn keep(&self, prefix: Prefix) {
        let mut kept = self.kept.lock();
        kept.retain(|p| p.parent == prefix.parent);
        while kept.len() >= KEPT {
            kept.pop_front();
        }
        kept.push_back(prefix);
    }

    /// How many blocks went on from a kept one.
    pub(crate) fn resumed(&self) -> u64 {
        self.resumed.load(Ordering::Relaxed)
    }
}
