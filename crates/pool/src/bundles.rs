//! Bundles awaiting their target block, with replacement and cancellation by uuid.
//!
//! A replacement key is `(sender, uuid)`: the sender proven by `X-Flashbots-Signature`, so one
//! sender can never replace or cancel another's bundle. A cancel leaves a tombstone, so a cancel
//! that arrives before its bundle still wins; a `replacementNonce` orders replacements and
//! cancels that arrive out of order (the highest wins).

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
};

use alloy_primitives::{Address, B256};
use alloy_rpc_types_mev::EthSendBundle;
use cobuild_primitives::{Bundle, BundleRequest, OrderError, Replacement};
use parking_lot::Mutex;

use crate::{OrderLimit, PoolError, limit::bundle_value};

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

impl PooledBundle {
    /// The bundle `sender`'s `eth_sendBundle` request asks for, checked and decoded; `None` when
    /// the request is a cancel (no transactions, a uuid).
    pub fn from_request(
        sender: Address,
        request: EthSendBundle,
    ) -> Result<Option<Self>, OrderError> {
        Ok(match BundleRequest::from_rpc(request)? {
            BundleRequest::Send(bundle) => Some(Self { sender, bundle }),
            BundleRequest::Cancel(_) => None,
        })
    }
}

#[derive(Debug, Clone, Copy)]
enum Slot {
    Live { hash: B256, nonce: Option<u64> },
    Cancelled { nonce: Option<u64>, at_block: u64 },
}

#[derive(Debug, Default)]
pub(crate) struct State {
    by_hash: HashMap<B256, Arc<PooledBundle>>,
    by_key: HashMap<(Address, String), Slot>,
    head: u64,
    /// Bundles by value at `values_base_fee`: the eviction candidates.
    by_value: BTreeSet<(u128, B256)>,
    values_base_fee: u64,
}

impl State {
    pub(crate) fn len(&self) -> usize {
        self.by_hash.len()
    }

    fn put(&mut self, bundle: Arc<PooledBundle>) {
        self.by_value.insert((
            bundle_value(&bundle.bundle, self.values_base_fee),
            bundle.bundle.hash,
        ));
        self.by_hash.insert(bundle.bundle.hash, bundle);
    }

    /// Removes a bundle (its replacement slot is cleaned up on the next block).
    pub(crate) fn take(&mut self, hash: &B256) -> Option<Arc<PooledBundle>> {
        let bundle = self.by_hash.remove(hash)?;
        self.by_value
            .remove(&(bundle_value(&bundle.bundle, self.values_base_fee), *hash));
        Some(bundle)
    }

    /// Removes every bundle that carries transaction `tx`; returns how many.
    pub(crate) fn take_carrying(&mut self, tx: &B256) -> usize {
        let carrying: Vec<B256> = self
            .by_hash
            .values()
            .filter(|b| b.bundle.txs.iter().any(|t| t.tx_hash() == tx))
            .map(|b| b.bundle.hash)
            .collect();
        for hash in &carrying {
            self.take(hash);
        }
        carrying.len()
    }

    /// The least valuable bundle at `base_fee`.
    pub(crate) fn worst(&mut self, base_fee: u64) -> Option<(u128, B256)> {
        if base_fee != self.values_base_fee {
            self.values_base_fee = base_fee;
            self.by_value = self
                .by_hash
                .values()
                .map(|b| (bundle_value(&b.bundle, base_fee), b.bundle.hash))
                .collect();
        }
        self.by_value.first().copied()
    }

    /// Whether `sender` may add `bundle`, and the live bundle it replaces (`Ok(None)` for a
    /// bundle that needs a new place; `Err(Ok(()))` when it is already held).
    fn check(
        &self,
        sender: Address,
        bundle: &Bundle,
    ) -> Result<Option<B256>, Result<(), PoolError>> {
        if bundle.block_number != 0 && bundle.last_block() <= self.head {
            return Err(Err(PoolError::BundleExpired {
                block: bundle.last_block(),
                head: self.head,
            }));
        }
        if self.by_hash.contains_key(&bundle.hash) {
            return Err(Ok(()));
        }
        let Some(replacement) = &bundle.replacement else {
            return Ok(None);
        };
        let key = (sender, replacement.uuid.clone());
        match self.by_key.get(&key) {
            Some(Slot::Cancelled {
                nonce: cancelled, ..
            }) if !(replacement.nonce.is_some() && newer(replacement.nonce, *cancelled)) => {
                Err(Err(PoolError::BundleCancelled))
            }
            Some(Slot::Live {
                hash: old,
                nonce: old_nonce,
            }) => {
                if !newer(replacement.nonce, *old_nonce) {
                    return Err(Err(PoolError::ReplacementStale));
                }
                Ok(Some(*old).filter(|old| self.by_hash.contains_key(old)))
            }
            _ => Ok(None),
        }
    }
}

/// The bundle pool. Cheap to clone; clones share the pool.
#[derive(Debug, Clone)]
pub struct BundlePool {
    state: Arc<Mutex<State>>,
    limit: OrderLimit,
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
        Self::with_limit(&OrderLimit::new(max_bundles))
    }

    /// An empty pool bounded together with the transaction pool that shares `limit`.
    pub fn with_limit(limit: &OrderLimit) -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        limit.register_bundles(&state);
        Self {
            state,
            limit: limit.clone(),
        }
    }

    /// Adds (or replaces) a bundle from `sender`. Returns its hash.
    ///
    /// A bundle already held is not added again (its hash is returned). When the pools are
    /// full, it evicts a less valuable order or is refused with [`PoolError::Full`].
    pub fn add(&self, sender: Address, bundle: Bundle) -> Result<B256, PoolError> {
        let hash = bundle.hash;
        let _admission = self.limit.admission();
        // Only removals can happen between this check and the insert below.
        let replaced = match self.state.lock().check(sender, &bundle) {
            Ok(replaced) => replaced,
            Err(known) => return known.map(|()| hash),
        };
        if replaced.is_none() {
            let value = bundle_value(&bundle, self.limit.base_fee());
            self.limit.make_room(value, None)?;
        }
        let mut state = self.state.lock();
        let replaced = match state.check(sender, &bundle) {
            Ok(replaced) => replaced,
            Err(known) => return known.map(|()| hash),
        };
        if let Some(old) = replaced {
            state.take(&old);
        }
        if let Some(replacement) = &bundle.replacement {
            state.by_key.insert(
                (sender, replacement.uuid.clone()),
                Slot::Live {
                    hash,
                    nonce: replacement.nonce,
                },
            );
        }
        state.put(Arc::new(PooledBundle { sender, bundle }));
        drop(state);
        tracing::debug!(%hash, %sender, "pool.bundle.add");
        self.limit.changed();
        Ok(hash)
    }

    /// Cancels `sender`'s bundle with this uuid, now or when it arrives later.
    pub fn cancel(&self, sender: Address, replacement: Replacement) {
        let mut state = self.state.lock();
        let key = (sender, replacement.uuid);
        let at_block = state.head;
        match state.by_key.get(&key).copied() {
            Some(Slot::Live { hash, nonce }) if newer(replacement.nonce, nonce) => {
                state.take(&hash);
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
        drop(state);
        self.limit.changed();
    }

    /// The bundles a block `number` at `timestamp` may include: those whose inclusion range
    /// (`block_number..=max_block`) holds `number`, within their timestamp bounds.
    pub fn for_block(&self, number: u64, timestamp: u64) -> Vec<Arc<PooledBundle>> {
        let state = self.state.lock();
        let mut out: Vec<_> = state
            .by_hash
            .values()
            .filter(|b| {
                let b = &b.bundle;
                b.targets(number)
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
        self.state.lock().take(hash);
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

    /// Drops bundles whose last block has passed and old tombstones.
    pub fn on_block(&self, number: u64) {
        let mut state = self.state.lock();
        state.head = number;
        let expired: Vec<B256> = state
            .by_hash
            .values()
            .filter(|b| b.bundle.block_number != 0 && b.bundle.last_block() <= number)
            .map(|b| b.bundle.hash)
            .collect();
        for hash in expired {
            state.take(&hash);
        }
        let State {
            by_hash, by_key, ..
        } = &mut *state;
        by_key.retain(|_, slot| match slot {
            Slot::Live { hash, .. } => by_hash.contains_key(hash),
            Slot::Cancelled { at_block, .. } => *at_block + TOMBSTONE_BLOCKS > number,
        });
    }
}
