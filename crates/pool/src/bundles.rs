//! Bundles awaiting their target blocks, with replacement and cancellation by uuid.
//!
//! A bundle's place in the pool is its identity ([`Bundle::identity`]): its sender, its
//! transactions and every rule that says where and how it may land, the target block included.
//! So the same transactions sent for the next few blocks are that many orders, each considered
//! for its own block, while sending one again is idempotent.
//!
//! A replacement key is `(sender, uuid)`: the sender proven by `X-Flashbots-Signature`, so one
//! sender can never replace or cancel another's bundle. Within a key, a later bundle replaces the
//! one for the same target block (a `replacementNonce` orders replacements that arrive out of
//! order: the highest wins); a cancel removes every target's bundle of the key and leaves a
//! tombstone, so a cancel that arrives before its bundle still wins.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
};

use alloy_primitives::{Address, B256};
use alloy_rpc_types_mev::EthSendBundle;
use cobuild_primitives::{Bundle, BundleRequest, OrderError, Replacement};
use parking_lot::Mutex;

use crate::{
    OrderLimit, PoolError, Reservation,
    limit::bundle_value,
    reserve::{BundleUndo, Pending, Released, SlotUndo},
};

/// How many blocks a cancel is remembered for.
const TOMBSTONE_BLOCKS: u64 = 64;

/// How far past the head a bundle may reach unless the node says otherwise
/// ([`BundlePool::with_horizon`]): 256 blocks, 51 minutes of mainnet slots. A searcher aims at
/// the next few blocks; a bundle for a block hours away only holds a place in the pool.
pub const DEFAULT_BUNDLE_HORIZON: u64 = 256;

/// A bundle in the pool with the sender who signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PooledBundle {
    /// Its place in the pool: [`Bundle::identity`] for its sender.
    pub id: B256,
    /// Proven sender.
    pub sender: Address,
    /// The bundle.
    pub bundle: Bundle,
}

impl PooledBundle {
    /// `bundle` as `sender` sent it.
    pub fn new(sender: Address, bundle: Bundle) -> Self {
        Self {
            id: bundle.identity(sender),
            sender,
            bundle,
        }
    }

    /// The bundle `sender`'s `eth_sendBundle` request asks for, checked and decoded; `None` when
    /// the request is a cancel (no transactions, a uuid).
    pub fn from_request(
        sender: Address,
        request: EthSendBundle,
    ) -> Result<Option<Self>, OrderError> {
        Ok(match BundleRequest::from_rpc(request)? {
            BundleRequest::Send(bundle) => Some(Self::new(sender, bundle)),
            BundleRequest::Cancel(_) => None,
        })
    }
}

/// The live bundles of one replacement key, by target block, and its tombstone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeySlots {
    /// Per target block: the live bundle's id and its replacement nonce.
    pub(crate) live: BTreeMap<u64, (B256, Option<u64>)>,
    /// Set by a cancel: its nonce and the head it arrived at.
    pub(crate) cancelled: Option<(Option<u64>, u64)>,
}

#[derive(Debug)]
pub(crate) struct State {
    by_id: HashMap<B256, Arc<PooledBundle>>,
    /// The last block a bundle for "any block" (block 0) may land in: the head it arrived at
    /// plus the horizon.
    any_block_until: HashMap<B256, u64>,
    /// How many blocks past the head a bundle may target or, for any block, stay.
    horizon: u64,
    by_key: HashMap<(Address, String), KeySlots>,
    head: u64,
    /// Bundles by value at `values_base_fee`: the eviction candidates.
    by_value: BTreeSet<(u128, B256)>,
    values_base_fee: u64,
    /// Reserved bundles whose envelopes are not durable yet: held, but offered to no builder.
    hidden: Pending,
}

impl Default for State {
    fn default() -> Self {
        Self {
            by_id: HashMap::new(),
            any_block_until: HashMap::new(),
            horizon: DEFAULT_BUNDLE_HORIZON,
            by_key: HashMap::new(),
            head: 0,
            by_value: BTreeSet::new(),
            values_base_fee: 0,
            hidden: Pending::default(),
        }
    }
}

impl State {
    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    fn put(&mut self, bundle: Arc<PooledBundle>) {
        self.by_value.insert((
            bundle_value(&bundle.bundle, self.values_base_fee),
            bundle.id,
        ));
        if bundle.bundle.block_number == 0 {
            self.any_block_until
                .insert(bundle.id, self.head + self.horizon);
        }
        self.by_id.insert(bundle.id, bundle);
    }

    /// Removes a bundle (its replacement slot is cleaned up on the next block).
    pub(crate) fn take(&mut self, id: &B256) -> Option<Arc<PooledBundle>> {
        let bundle = self.by_id.remove(id)?;
        self.any_block_until.remove(id);
        self.by_value
            .remove(&(bundle_value(&bundle.bundle, self.values_base_fee), *id));
        Some(bundle)
    }

    /// Removes every bundle that carries transaction `tx`; returns how many.
    pub(crate) fn take_carrying(&mut self, tx: &B256) -> usize {
        let carrying: Vec<B256> = self
            .by_id
            .values()
            .filter(|b| b.bundle.txs.iter().any(|t| t.tx_hash() == tx))
            .map(|b| b.id)
            .collect();
        for id in &carrying {
            self.take(id);
        }
        carrying.len()
    }

    /// The least valuable published bundle at `base_fee`.
    pub(crate) fn worst(&mut self, base_fee: u64) -> Option<(u128, B256)> {
        if base_fee != self.values_base_fee {
            self.values_base_fee = base_fee;
            self.by_value = self
                .by_id
                .values()
                .map(|b| (bundle_value(&b.bundle, base_fee), b.id))
                .collect();
        }
        self.by_value
            .iter()
            .find(|(_, id)| !self.hidden.contains(id))
            .copied()
    }

    /// Whether `bundle` may be added, and the live bundle it replaces (`Ok(None)` for a bundle
    /// that needs a new place; `Err(Ok(()))` when it is already held).
    fn check(&self, bundle: &PooledBundle) -> Result<Option<B256>, Result<(), PoolError>> {
        let inner = &bundle.bundle;
        if inner.block_number != 0 && inner.last_block() <= self.head {
            return Err(Err(PoolError::BundleExpired {
                block: inner.last_block(),
                head: self.head,
            }));
        }
        if inner.last_block() > self.head + self.horizon {
            return Err(Err(PoolError::BundleTooFar {
                block: inner.last_block(),
                head: self.head,
                horizon: self.horizon,
            }));
        }
        if self.by_id.contains_key(&bundle.id) {
            return Err(Ok(()));
        }
        let Some(replacement) = &inner.replacement else {
            return Ok(None);
        };
        let Some(slots) = self.by_key.get(&(bundle.sender, replacement.uuid.clone())) else {
            return Ok(None);
        };
        if let Some((cancelled, _)) = slots.cancelled
            && !(replacement.nonce.is_some() && newer(replacement.nonce, cancelled))
        {
            return Err(Err(PoolError::BundleCancelled));
        }
        match slots.live.get(&inner.block_number) {
            Some((old, old_nonce)) => {
                if !newer(replacement.nonce, *old_nonce) {
                    return Err(Err(PoolError::ReplacementStale));
                }
                if self.hidden.contains(old) {
                    return Err(Err(PoolError::PendingReplacement));
                }
                Ok(Some(*old).filter(|old| self.by_id.contains_key(old)))
            }
            None => Ok(None),
        }
    }

    /// Puts `bundle` in its place (replacing `replaced`), hidden until published; returns what
    /// undoes it.
    fn insert(&mut self, bundle: PooledBundle, replaced: Option<B256>) -> BundleUndo {
        let replaced = replaced.and_then(|old| self.take(&old));
        let id = bundle.id;
        let block = bundle.bundle.block_number;
        let prior = bundle.bundle.replacement.as_ref().map(|r| {
            let key = (bundle.sender, r.uuid.clone());
            // A tombstone stays: it keeps refusing sends older than the cancel, for every block.
            let live = self
                .by_key
                .entry(key.clone())
                .or_default()
                .live
                .insert(block, (id, r.nonce));
            SlotUndo { key, block, live }
        });
        self.hidden.add(id);
        self.put(Arc::new(bundle));
        BundleUndo {
            id,
            replaced,
            prior,
        }
    }

    /// A reservation of a bundle already reserved joins it.
    fn join(&mut self, id: B256) -> BundleUndo {
        self.hidden.add(id);
        BundleUndo {
            id,
            replaced: None,
            prior: None,
        }
    }

    /// Shows a reserved bundle to builders; `false` if it was shown or left the pool meanwhile.
    pub(crate) fn publish(&mut self, id: &B256) -> bool {
        self.hidden.publish(id) && self.by_id.contains_key(id)
    }

    /// Takes a reserved bundle out again, once its last reservation is withdrawn, and puts back
    /// the bundle it replaced in its block's slot, as far as nothing else took that slot.
    pub(crate) fn withdraw(&mut self, undo: BundleUndo) {
        let BundleUndo {
            id,
            replaced,
            prior,
        } = undo;
        if self.hidden.release(&id) == Released::Kept {
            return;
        }
        if self.take(&id).is_none() {
            return;
        }
        let Some(SlotUndo {
            key,
            block,
            live: prior_live,
        }) = prior
        else {
            return;
        };
        let Some(slots) = self.by_key.get_mut(&key) else {
            return;
        };
        if slots.live.get(&block).is_none_or(|(live, _)| *live != id) {
            return;
        }
        match prior_live {
            Some(live) => {
                slots.live.insert(block, live);
            }
            None => {
                slots.live.remove(&block);
            }
        }
        if let Some(old) = replaced
            && !self.by_id.contains_key(&old.id)
        {
            self.put(old);
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

    /// The same pool, refusing bundles that target more than `blocks` blocks past the head and
    /// dropping bundles for any block `blocks` blocks after they arrived.
    #[must_use]
    pub fn with_horizon(self, blocks: u64) -> Self {
        self.state.lock().horizon = blocks.max(1);
        self
    }

    pub(crate) fn state(&self) -> &Mutex<State> {
        &self.state
    }

    pub(crate) const fn limit(&self) -> &OrderLimit {
        &self.limit
    }

    /// Adds (or replaces) a bundle from `sender` at once. Returns its pool id.
    ///
    /// A bundle already held is not added again (its id is returned). When the pools are full,
    /// it evicts a less valuable order or is refused with [`PoolError::Full`].
    pub fn add(&self, sender: Address, bundle: Bundle) -> Result<B256, PoolError> {
        let reservation = self.reserve(sender, bundle)?;
        let id = reservation.id();
        reservation.publish();
        Ok(id)
    }

    /// Checks a bundle from `sender` and gives it its place, counted against the bound but
    /// offered to no builder until the returned [`Reservation`] is published (its envelope is
    /// durable). Dropping the reservation withdraws it. A bundle already held gets a
    /// reservation that does nothing.
    pub fn reserve(&self, sender: Address, bundle: Bundle) -> Result<Reservation, PoolError> {
        let bundle = PooledBundle::new(sender, bundle);
        let id = bundle.id;
        let _admission = self.limit.admission();
        // Only removals can happen between this check and the insert below.
        // The lock is released before `held`, which takes it again.
        let checked = self.state.lock().check(&bundle);
        let replaced = match checked {
            Ok(replaced) => replaced,
            Err(known) => return known.map(|()| self.held(id)),
        };
        if replaced.is_none() {
            let value = bundle_value(&bundle.bundle, self.limit.base_fee());
            self.limit.make_room(value, None)?;
        }
        let mut state = self.state.lock();
        let replaced = match state.check(&bundle) {
            Ok(replaced) => replaced,
            Err(known) => {
                drop(state);
                return known.map(|()| self.held(id));
            }
        };
        tracing::debug!(%id, %sender, hash = %bundle.bundle.hash, "pool.bundle.reserve");
        let undo = state.insert(bundle, replaced);
        Ok(Reservation::bundle(self.clone(), undo))
    }

    /// The reservation of a bundle the pool holds already: it joins the reservation waiting on
    /// it, if there is one, and does nothing otherwise.
    fn held(&self, id: B256) -> Reservation {
        let mut state = self.state.lock();
        if state.hidden.contains(&id) {
            let undo = state.join(id);
            drop(state);
            return Reservation::bundle(self.clone(), undo);
        }
        Reservation::held(id)
    }

    /// Cancels `sender`'s bundles with this uuid (every target block), now or when they
    /// arrive later: a later send is refused unless its `replacementNonce` is above the
    /// cancel's. A cancel older than a live replacement (lower `replacementNonce`) leaves that
    /// one in place.
    pub fn cancel(&self, sender: Address, replacement: Replacement) {
        let mut state = self.state.lock();
        let key = (sender, replacement.uuid);
        let at_block = state.head;
        let mut slots = state.by_key.remove(&key).unwrap_or_default();
        let cancelled: Vec<B256> = slots
            .live
            .iter()
            .filter(|(_, (_, nonce))| newer(replacement.nonce, *nonce))
            .map(|(_, (id, _))| *id)
            .collect();
        slots.live.retain(|_, (id, _)| !cancelled.contains(id));
        for id in &cancelled {
            state.take(id);
        }
        // The tombstone refuses every later send older than the newest cancel, for any block.
        if slots
            .cancelled
            .is_none_or(|(nonce, _)| newer(replacement.nonce, nonce))
        {
            slots.cancelled = Some((replacement.nonce, at_block));
        }
        state.by_key.insert(key, slots);
        drop(state);
        self.limit.changed();
    }

    /// The bundles a block `number` at `timestamp` may include: those whose inclusion range
    /// (`block_number..=max_block`) holds `number`, within their timestamp bounds.
    pub fn for_block(&self, number: u64, timestamp: u64) -> Vec<Arc<PooledBundle>> {
        let state = self.state.lock();
        let mut out: Vec<_> = state
            .by_id
            .values()
            .filter(|b| {
                let inner = &b.bundle;
                !state.hidden.contains(&b.id)
                    && inner.targets(number)
                    && inner.min_timestamp.is_none_or(|t| timestamp >= t)
                    && inner.max_timestamp.is_none_or(|t| timestamp <= t)
            })
            .cloned()
            .collect();
        // Deterministic order for callers that do not sort by value themselves.
        out.sort_by_key(|b| b.id);
        out
    }

    /// Removes a bundle by its pool id (it was included, so it cannot run again).
    pub fn remove(&self, id: &B256) {
        self.state.lock().take(id);
    }

    /// Whether the pool offers the bundle with this pool id to builders.
    pub fn contains(&self, id: &B256) -> bool {
        let state = self.state.lock();
        state.by_id.contains_key(id) && !state.hidden.contains(id)
    }

    /// How many bundles with this Flashbots `bundleHash` (the same transactions, for any
    /// target block or sender) the pool offers to builders.
    pub fn count_hash(&self, hash: &B256) -> usize {
        let state = self.state.lock();
        state
            .by_id
            .values()
            .filter(|b| b.bundle.hash == *hash && !state.hidden.contains(&b.id))
            .count()
    }

    /// Number of bundles held (reserved ones included: they count against the bound).
    pub fn len(&self) -> usize {
        self.state.lock().by_id.len()
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
            .by_id
            .values()
            .filter(|b| {
                if b.bundle.block_number == 0 {
                    state
                        .any_block_until
                        .get(&b.id)
                        .is_some_and(|until| *until <= number)
                } else {
                    b.bundle.last_block() <= number
                }
            })
            .map(|b| b.id)
            .collect();
        for id in expired {
            state.take(&id);
        }
        let State { by_id, by_key, .. } = &mut *state;
        by_key.retain(|_, slots| {
            slots.live.retain(|_, (id, _)| by_id.contains_key(id));
            if slots
                .cancelled
                .is_some_and(|(_, at_block)| at_block + TOMBSTONE_BLOCKS <= number)
            {
                slots.cancelled = None;
            }
            !slots.live.is_empty() || slots.cancelled.is_some()
        });
    }
}
