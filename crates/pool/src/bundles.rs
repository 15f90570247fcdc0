//! Bundles awaiting their target block, with replacement and cancellation by uuid.
//!
//! A replacement key is `(sender, uuid)`: the sender proven by `X-Flashbots-Signature`, so one
//! sender can never replace or cancel another's bundle. A cancel leaves a tombstone, so a cancel
//! that arrives before its bundle still wins; a `replacementNonce` orders replacements and
//! cancels that arrive out of order (the highest wins).

use std::{collections::HashMap, sync::Arc};

use alloy_primitives::{Address, B256};
use cobuild_primitives::{Bundle, Replacement};
use parking_lot::Mutex;

use crate::PoolError;

/// How many blocks a cancel is remembered for.
const TOMBSTONE_BLOCKS: u64 = 64;

/// A bundle in the pool with the sender who signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PooledBundle {
    /// Proven sender.
    pub sender: Address,
    /// The bundle.
    pub bundle: Bundle,
}

#[derive(Debug, Clone, Copy)]
enum Slot {
    Live { hash: B256, nonce: Option<u64> },
    Cancelled { nonce: Option<u64>, at_block: u64 },
}

#[derive(Debug, Default)]
struct State {
    by_hash: HashMap<B256, Arc<PooledBundle>>,
    by_key: HashMap<(Address, String), Slot>,
    head: u64,
}

/// The bundle pool. Cheap to clone; clones share the pool.
#[derive(Debug, Clone)]
pub struct BundlePool {
    state: Arc<Mutex<State>>,
    max_bundles: usize,
}

/// Whether `new` may take over a slot last written with `old` (no nonces: the later wins).
fn newer(new: Option<u64>, old: Option<u64>) -> bool {
    match (new, old) {
        (Some(new), Some(old)) => new > old,
        _ => true,
    }
}

impl BundlePool {
    /// An empty pool holding at most `max_bundles`.
    pub fn new(max_bundles: usize) -> Self {
        Self {
            state: Arc::default(),
            max_bundles,
        }
    }

    /// Adds (or replaces) a bundle from `sender`. Returns its hash.
    pub fn add(&self, sender: Address, bundle: Bundle) -> Result<B256, PoolError> {
        let hash = bundle.hash;
        let mut state = self.state.lock();
        if bundle.block_number != 0 && bundle.block_number <= state.head {
            return Err(PoolError::BundleExpired {
                block: bundle.block_number,
                head: state.head,
            });
        }
        if state.by_hash.contains_key(&hash) {
            return Ok(hash);
        }
        let key = bundle
            .replacement
            .as_ref()
            .map(|r| (sender, r.uuid.clone()));
        let nonce = bundle.replacement.as_ref().and_then(|r| r.nonce);
        let mut replaced = None;
        if let Some(key) = &key {
            match state.by_key.get(key) {
                Some(Slot::Cancelled {
                    nonce: cancelled, ..
                }) if !(nonce.is_some() && newer(nonce, *cancelled)) => {
                    return Err(PoolError::BundleCancelled);
                }
                Some(Slot::Live {
                    hash: old,
                    nonce: old_nonce,
                }) => {
                    if !newer(nonce, *old_nonce) {
                        return Err(PoolError::ReplacementStale);
                    }
                    replaced = Some(*old);
                }
                _ => {}
            }
        }
        if replaced.is_none() && state.by_hash.len() >= self.max_bundles {
            return Err(PoolError::Full);
        }
        if let Some(old) = replaced {
            state.by_hash.remove(&old);
        }
        if let Some(key) = key {
            state.by_key.insert(key, Slot::Live { hash, nonce });
        }
        state
            .by_hash
            .insert(hash, Arc::new(PooledBundle { sender, bundle }));
        tracing::debug!(%hash, %sender, "pool.bundle.add");
        Ok(hash)
    }

    /// Cancels `sender`'s bundle with this uuid, now or when it arrives later.
    pub fn cancel(&self, sender: Address, replacement: Replacement) {
        let mut state = self.state.lock();
        let key = (sender, replacement.uuid);
        let at_block = state.head;
        match state.by_key.get(&key).copied() {
            Some(Slot::Live { hash, nonce }) if newer(replacement.nonce, nonce) => {
                state.by_hash.remove(&hash);
            }
            Some(Slot::Live { .. }) => return, // an older cancel than the live replacement
            Some(Slot::Cancelled { nonce, .. }) if !newer(replacement.nonce, nonce) => return,
            _ => {}
        }
        state.by_key.insert(
            key,
            Slot::Cancelled {
                nonce: replacement.nonce,
                at_block,
            },
        );
    }

    /// The bundles a block `number` at `timestamp` may include.
    pub fn for_block(&self, number: u64, timestamp: u64) -> Vec<Arc<PooledBundle>> {
        let state = self.state.lock();
        let mut out: Vec<_> = state
            .by_hash
            .values()
            .filter(|b| {
                let b = &b.bundle;
                (b.block_number == 0 || b.block_number == number)
                    && b.min_timestamp.is_none_or(|t| timestamp >= t)
                    && b.max_timestamp.is_none_or(|t| timestamp <= t)
            })
            .cloned()
            .collect();
        // Deterministic order for callers that do not sort by value themselves.
        out.sort_by_key(|b| b.bundle.hash);
        out
    }

    /// Removes a bundle (it was included, so it cannot run again).
    pub fn remove(&self, hash: &B256) {
        self.state.lock().by_hash.remove(hash);
    }

    /// Whether a bundle is in the pool.
    pub fn contains(&self, hash: &B256) -> bool {
        self.state.lock().by_hash.contains_key(hash)
    }

    /// Number of bundles held.
    pub fn len(&self) -> usize {
        self.state.lock().by_hash.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops bundles whose target block has passed and old tombstones.
    pub fn on_block(&self, number: u64) {
        let mut state = self.state.lock();
        state.head = number;
        let State {
            by_hash, by_key, ..
        } = &mut *state;
        by_hash.retain(|_, b| b.bundle.block_number == 0 || b.bundle.block_number > number);
        by_key.retain(|_, slot| match slot {
            Slot::Live { hash, .. } => by_hash.contains_key(hash),
            Slot::Cancelled { at_block, .. } => *at_block + TOMBSTONE_BLOCKS > number,
        });
    }
}
