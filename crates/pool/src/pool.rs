//! The pool itself: admission, per-sender queues and removal on new blocks.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
};

use alloy_consensus::{Transaction, TxEnvelope, transaction::Recovered};
use alloy_eips::Encodable2718;
use alloy_evm::FromRecoveredTx;
use alloy_primitives::{Address, B256, U256};
use cobuild_chain::{HeadSource, StateSnapshot};
use parking_lot::Mutex;
use revm::{
    context::TxEnv, context_interface::cfg::gas::calculate_initial_tx_gas_for_tx,
    database_interface::DatabaseRef, primitives::eip7825::TX_GAS_LIMIT_CAP,
};

use crate::{
    BestTransactions, OrderLimit, PoolError, Reservation,
    limit::tx_value,
    reserve::{Pending, Released},
};

/// Limits of the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Most transactions held at once by a pool made with [`TxPool::new`]; a pool made with
    /// [`TxPool::with_limit`] is bounded by its shared [`OrderLimit`] instead.
    pub max_transactions: usize,
    /// Most transactions held for one sender.
    pub max_per_sender: usize,
    /// Largest encoded transaction accepted, in bytes (geth: 128 KiB).
    pub max_tx_size: usize,
    /// Fee bump, in percent, a replacement must pay over the transaction it replaces.
    pub price_bump_percent: u128,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_transactions: 20_000,
            max_per_sender: 256,
            max_tx_size: 128 * 1024,
            price_bump_percent: 10,
        }
    }
}

/// A transaction in the pool, with what ordering needs precomputed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PooledTx {
    /// Hash of the transaction.
    pub hash: B256,
    /// The signed transaction with its recovered sender.
    pub tx: Recovered<TxEnvelope>,
    /// Set when it came through `eth_sendPrivateTransaction`: never shown to other senders.
    pub private: Option<PrivateTx>,
}

/// What makes a pooled transaction private.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrivateTx {
    /// The sender proven by `X-Flashbots-Signature` who submitted it (the only one who may
    /// cancel it or see it).
    pub owner: Address,
    /// The last block it may land in; it leaves the pool once that block is sealed.
    pub max_block: u64,
    /// The owner's privacy hints share its hash, so other senders' MEV-Share bundles may
    /// reference it by hash.
    pub hash_shared: bool,
}

impl PooledTx {
    /// A public transaction (any path but `eth_sendPrivateTransaction`), keyed by its hash.
    pub fn public(tx: Recovered<TxEnvelope>) -> Self {
        Self {
            hash: *tx.tx_hash(),
            tx,
            private: None,
        }
    }

    /// The sender.
    pub fn sender(&self) -> Address {
        self.tx.signer()
    }

    /// The nonce.
    pub fn nonce(&self) -> u64 {
        self.tx.nonce()
    }
}

/// The pending transaction pool. Cheap to clone; clones share the pool.
#[derive(Debug, Clone)]
pub struct TxPool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    chain: Arc<dyn HeadSource>,
    config: PoolConfig,
    limit: OrderLimit,
    state: Mutex<PoolState>,
    /// Hashes of public transactions as they become visible (see [`TxPool::public_hashes`]).
    public: tokio::sync::broadcast::Sender<B256>,
}

/// How many announced hashes a listener may fall behind by before it misses some.
const PUBLIC_BACKLOG: usize = 4_096;

#[derive(Debug, Default)]
struct PoolState {
    by_hash: HashMap<B256, Arc<PooledTx>>,
    by_sender: HashMap<Address, BTreeMap<u64, Arc<PooledTx>>>,
    /// Every sender's highest nonce by value at `tails_base_fee`: the eviction candidates.
    tails: BTreeSet<(u128, B256, Address)>,
    tails_base_fee: u64,
    /// Reserved transactions whose envelopes are not durable yet: they hold their nonce, but
    /// no builder, lookup or pending nonce sees them.
    hidden: Pending,
}

impl PoolState {
    fn tail_key(&self, sender: Address) -> Option<(u128, B256, Address)> {
        let (_, tx) = self.by_sender.get(&sender)?.last_key_value()?;
        Some((tx_value(&tx.tx, self.tails_base_fee), tx.hash, sender))
    }

    /// Runs `f` on `sender`'s queue, keeping the tail index and the empty-queue rule.
    fn with_sender<R>(&mut self, sender: Address, f: impl FnOnce(&mut Self) -> R) -> R {
        if let Some(key) = self.tail_key(sender) {
            self.tails.remove(&key);
        }
        let out = f(self);
        if self.by_sender.get(&sender).is_some_and(BTreeMap::is_empty) {
            self.by_sender.remove(&sender);
        }
        if let Some(key) = self.tail_key(sender) {
            self.tails.insert(key);
        }
        out
    }

    /// Inserts `pooled`, replacing the transaction with its sender and nonce, if any (which it
    /// returns).
    fn insert(&mut self, pooled: Arc<PooledTx>) -> Option<Arc<PooledTx>> {
        let sender = pooled.sender();
        self.with_sender(sender, |s| {
            let old = s
                .by_sender
                .entry(sender)
                .or_default()
                .insert(pooled.nonce(), pooled.clone());
            if let Some(old) = &old {
                s.by_hash.remove(&old.hash);
            }
            s.by_hash.insert(pooled.hash, pooled);
            old
        })
    }

    /// A transaction offered to builders and senders (not a reservation still pending).
    fn shown(&self, hash: &B256) -> Option<&Arc<PooledTx>> {
        self.by_hash
            .get(hash)
            .filter(|_| !self.hidden.contains(hash))
    }

    /// Removes one transaction (its later nonces stay).
    fn remove(&mut self, hash: &B256) -> Option<Arc<PooledTx>> {
        let tx = self.by_hash.get(hash)?.clone();
        self.with_sender(tx.sender(), |s| {
            s.by_hash.remove(hash);
            if let Some(queue) = s.by_sender.get_mut(&tx.sender()) {
                queue.remove(&tx.nonce());
            }
        });
        Some(tx)
    }

    /// The least valuable highest nonce at `base_fee`, other than `sender`'s.
    fn worst(&mut self, base_fee: u64, sender: Option<Address>) -> Option<(u128, B256)> {
        if base_fee != self.tails_base_fee {
            self.tails_base_fee = base_fee;
            let senders: Vec<Address> = self.by_sender.keys().copied().collect();
            self.tails = senders
                .into_iter()
                .filter_map(|s| self.tail_key(s))
                .collect();
        }
        self.tails
            .iter()
            .find(|(_, hash, s)| Some(*s) != sender && !self.hidden.contains(hash))
            .map(|(value, hash, _)| (*value, *hash))
    }
}

impl Inner {
    /// The next block's base fee.
    pub(crate) fn next_base_fee(&self) -> u64 {
        self.chain
            .head()
            .next_block_base_fee(self.chain.spec().base_fee_params())
            .unwrap_or_default()
    }

    pub(crate) fn len(&self) -> usize {
        self.state.lock().by_hash.len()
    }

    pub(crate) fn worst(&self, base_fee: u64, sender: Option<Address>) -> Option<(u128, B256)> {
        self.state.lock().worst(base_fee, sender)
    }

    /// Evicts `hash` if it is still its sender's highest nonce (so no gap opens).
    pub(crate) fn evict(&self, hash: &B256) -> bool {
        let mut state = self.state.lock();
        let is_tail = state.by_hash.get(hash).is_some_and(|tx| {
            state
                .by_sender
                .get(&tx.sender())
                .and_then(|q| q.last_key_value())
                .is_some_and(|(_, last)| last.hash == *hash)
        });
        is_tail && state.remove(hash).is_some()
    }
}

impl TxPool {
    /// An empty pool validating against `chain`'s head, holding at most
    /// `config.max_transactions`.
    pub fn new(chain: impl HeadSource, config: PoolConfig) -> Self {
        Self::with_limit(chain, config, &OrderLimit::new(config.max_transactions))
    }

    /// An empty pool validating against `chain`'s head, bounded together with the other pool
    /// that shares `limit` (`config.max_transactions` is not used).
    pub fn with_limit(chain: impl HeadSource, config: PoolConfig, limit: &OrderLimit) -> Self {
        let inner = Arc::new(Inner {
            chain: Arc::new(chain),
            config,
            limit: limit.clone(),
            state: Mutex::new(PoolState::default()),
            public: tokio::sync::broadcast::channel(PUBLIC_BACKLOG).0,
        });
        limit.register_txs(&inner);
        Self { inner }
    }

    /// Validates `tx` against the head state and adds it at once. Returns its hash.
    ///
    /// Reads the state before taking the pool lock, so a slow read never blocks other senders.
    pub fn add(&self, tx: Recovered<TxEnvelope>) -> Result<B256, PoolError> {
        let reservation = self.reserve(tx, None)?;
        let hash = reservation.id();
        reservation.publish();
        Ok(hash)
    }

    /// Adds a private transaction (`eth_sendPrivateTransaction`) at once: validated like
    /// [`Self::add`], kept until `private.max_block` is sealed, and never shown to anyone but its
    /// owner.
    pub fn add_private(
        &self,
        tx: Recovered<TxEnvelope>,
        private: PrivateTx,
    ) -> Result<B256, PoolError> {
        let reservation = self.reserve(tx, Some(private))?;
        let hash = reservation.id();
        reservation.publish();
        Ok(hash)
    }

    /// Validates `tx` (private when `private` is set) and gives it its place, hidden from
    /// builders, lookups and the pending nonce until the returned [`Reservation`] is published.
    /// Dropping the reservation withdraws it.
    pub fn reserve(
        &self,
        tx: Recovered<TxEnvelope>,
        private: Option<PrivateTx>,
    ) -> Result<Reservation, PoolError> {
        let hash = *tx.tx_hash();
        if let Some(joined) = self.join(&hash)? {
            return Ok(joined);
        }
        let (head, state) = self
            .inner
            .chain
            .head_state()
            .map_err(|e| PoolError::State(e.to_string()))?;
        let spec = self.inner.chain.spec();
        let base_fee = head
            .next_block_base_fee(spec.base_fee_params())
            .unwrap_or_default();
        self.validate(&tx, &state, base_fee, head.gas_limit)?;

        let pooled = Arc::new(PooledTx { hash, tx, private });
        let sender = pooled.sender();
        let _admission = self.inner.limit.admission();
        // Only removals can happen between the check and the insert (admissions wait for the
        // lock above), so a place found or made here is still there below.
        let needs_room = self.check(&self.inner.state.lock(), &pooled)?;
        if needs_room {
            self.inner
                .limit
                .make_room(tx_value(&pooled.tx, base_fee), Some(sender))?;
        }
        let mut pool = self.inner.state.lock();
        self.check(&pool, &pooled)?;
        let nonce = pooled.nonce();
        pool.hidden.add(hash);
        let replaced = pool.insert(pooled);
        drop(pool);
        drop(_admission);
        tracing::debug!(%hash, %sender, nonce, private = private.is_some(), "pool.reserve");
        Ok(Reservation::tx(self.clone(), hash, replaced))
    }

    /// A reservation of a transaction the pool holds already: it joins the one waiting on it,
    /// if there is one (`None`: the pool does not hold it); one already shown is known.
    fn join(&self, hash: &B256) -> Result<Option<Reservation>, PoolError> {
        let mut pool = self.inner.state.lock();
        if !pool.by_hash.contains_key(hash) {
            return Ok(None);
        }
        if !pool.hidden.contains(hash) {
            return Err(PoolError::AlreadyKnown);
        }
        pool.hidden.add(*hash);
        drop(pool);
        Ok(Some(Reservation::tx(self.clone(), *hash, None)))
    }

    /// Shows a reserved transaction (see [`Reservation::publish`]).
    pub(crate) fn publish(&self, hash: &B256) {
        let mut pool = self.inner.state.lock();
        let shown = pool
            .hidden
            .publish(hash)
            .then(|| pool.by_hash.get(hash).map(|tx| tx.private.is_none()))
            .flatten();
        drop(pool);
        if let Some(public) = shown {
            tracing::debug!(%hash, "pool.add");
            self.inner.limit.changed();
            if public {
                // No listener is not an error: the hash is simply not announced.
                let _ = self.inner.public.send(*hash);
            }
        }
    }

    /// The hashes of public transactions as they become visible in the pool, from now on. A
    /// private transaction is never announced. A listener that falls more than 4,096 hashes
    /// behind misses the oldest ones (its next receive says how many).
    pub fn public_hashes(&self) -> tokio::sync::broadcast::Receiver<B256> {
        self.inner.public.subscribe()
    }

    /// Takes a reserved transaction out and puts back the one it replaced, if its place is
    /// still free (see [`Reservation::withdraw`]).
    pub(crate) fn withdraw(&self, hash: &B256, replaced: Option<Arc<PooledTx>>) {
        let mut pool = self.inner.state.lock();
        if pool.hidden.release(hash) == Released::Kept || pool.remove(hash).is_none() {
            return;
        }
        if let Some(old) = replaced {
            let free = pool
                .by_sender
                .get(&old.sender())
                .is_none_or(|q| !q.contains_key(&old.nonce()));
            if free && !pool.by_hash.contains_key(&old.hash) {
                pool.insert(old);
            }
        }
        drop(pool);
        tracing::debug!(%hash, "pool.withdrawn");
        self.inner.limit.changed();
    }

    /// Whether `pooled` may be added, and whether it needs a new place (it replaces nothing).
    fn check(&self, pool: &PoolState, pooled: &PooledTx) -> Result<bool, PoolError> {
        if pool.by_hash.contains_key(&pooled.hash) {
            return Err(PoolError::AlreadyKnown);
        }
        let queue = pool.by_sender.get(&pooled.sender());
        match queue.and_then(|q| q.get(&pooled.nonce())) {
            // Its acceptance is still being recorded: replacing it now could leave neither.
            Some(old) if pool.hidden.contains(&old.hash) => Err(PoolError::PendingReplacement),
            Some(old) => {
                let bump = 100 + self.inner.config.price_bump_percent;
                let old_fee = old.tx.max_fee_per_gas();
                let old_tip = old.tx.max_priority_fee_per_gas().unwrap_or(old_fee);
                let new_fee = pooled.tx.max_fee_per_gas();
                let new_tip = pooled.tx.max_priority_fee_per_gas().unwrap_or(new_fee);
                if new_fee * 100 < old_fee * bump || new_tip * 100 < old_tip * bump {
                    return Err(PoolError::ReplacementUnderpriced);
                }
                Ok(false)
            }
            None if queue.map_or(0, BTreeMap::len) >= self.inner.config.max_per_sender => {
                Err(PoolError::Full)
            }
            None => Ok(true),
        }
    }

    fn validate(
        &self,
        tx: &Recovered<TxEnvelope>,
        state: &StateSnapshot,
        base_fee: u64,
        block_gas_limit: u64,
    ) -> Result<(), PoolError> {
        let spec = self.inner.chain.spec();
        let size = tx.inner().encode_2718_len();
        if size > self.inner.config.max_tx_size {
            return Err(PoolError::Oversized {
                size,
                limit: self.inner.config.max_tx_size,
            });
        }
        if tx.is_eip4844() {
            return Err(PoolError::BlobsUnsupported);
        }
        match tx.chain_id() {
            Some(id) if id != spec.chain_id() => {
                return Err(PoolError::WrongChainId {
                    got: id,
                    expected: spec.chain_id(),
                });
            }
            None => return Err(PoolError::Unprotected),
            Some(_) => {}
        }
        if tx.gas_limit() > block_gas_limit {
            return Err(PoolError::GasLimitExceedsBlock);
        }
        if tx.gas_limit() > TX_GAS_LIMIT_CAP {
            return Err(PoolError::GasLimitExceedsCap {
                got: tx.gas_limit(),
                cap: TX_GAS_LIMIT_CAP,
            });
        }
        if let Some(tip) = tx.max_priority_fee_per_gas()
            && tip > tx.max_fee_per_gas()
        {
            return Err(PoolError::TipAboveFeeCap);
        }
        if tx.max_fee_per_gas() < u128::from(base_fee) {
            return Err(PoolError::FeeBelowBaseFee {
                max_fee: tx.max_fee_per_gas(),
                base_fee,
            });
        }
        let env = TxEnv::from_recovered_tx(tx.inner(), tx.signer());
        let intrinsic = calculate_initial_tx_gas_for_tx(&env, spec.spec_id(), None);
        let want =
            (intrinsic.initial_regular_gas + intrinsic.initial_state_gas).max(intrinsic.floor_gas);
        if tx.gas_limit() < want {
            return Err(PoolError::IntrinsicGasTooLow {
                got: tx.gas_limit(),
                want,
            });
        }
        let account = state
            .basic_ref(tx.signer())
            .map_err(|e| PoolError::State(e.to_string()))?;
        let (nonce, balance) = account.map_or((0, U256::ZERO), |a| (a.nonce, a.balance));
        if tx.nonce() < nonce {
            return Err(PoolError::NonceTooLow {
                got: tx.nonce(),
                expected: nonce,
            });
        }
        let cost = U256::from(tx.gas_limit()) * U256::from(tx.max_fee_per_gas()) + tx.value();
        if balance < cost {
            return Err(PoolError::InsufficientFunds { balance, cost });
        }
        Ok(())
    }

    /// A pending transaction by hash, private ones included (for the node's own use; answer
    /// senders through [`Self::visible`]).
    pub fn get(&self, hash: &B256) -> Option<Arc<PooledTx>> {
        self.inner.state.lock().shown(hash).cloned()
    }

    /// A pending transaction as `viewer` may see it: public ones to anyone; private ones only
    /// to their owner, or to any proven sender when the owner's hints share the hash. An
    /// anonymous viewer (`None`) sees public transactions only.
    pub fn visible(&self, hash: &B256, viewer: Option<Address>) -> Option<Arc<PooledTx>> {
        self.get(hash).filter(|tx| match (&tx.private, viewer) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(p), Some(viewer)) => p.owner == viewer || p.hash_shared,
        })
    }

    /// Removes `owner`'s private transaction `hash`. Returns whether it did: `false` when there
    /// is none, it is public, or another sender submitted it. Its sender's later nonces stay.
    pub fn cancel_private(&self, owner: Address, hash: &B256) -> bool {
        let mut pool = self.inner.state.lock();
        let owned = pool
            .shown(hash)
            .and_then(|tx| tx.private)
            .is_some_and(|p| p.owner == owner);
        let removed = owned && pool.remove(hash).is_some();
        drop(pool);
        if removed {
            let bundles = self.inner.limit.drop_bundles_carrying(hash);
            tracing::debug!(%hash, bundles, "pool.private.cancelled");
            self.inner.limit.changed();
        }
        removed
    }

    /// Number of transactions held.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The nonce `sender`'s next transaction should use, counting pending public transactions
    /// that follow the account nonce without a gap (a private one is never revealed, even here).
    pub fn pending_nonce(&self, sender: Address, account_nonce: u64) -> u64 {
        let pool = self.inner.state.lock();
        let mut next = account_nonce;
        if let Some(queue) = pool.by_sender.get(&sender) {
            while queue
                .get(&next)
                .is_some_and(|tx| tx.private.is_none() && !pool.hidden.contains(&tx.hash))
            {
                next += 1;
            }
        }
        next
    }

    /// The transactions a block at `base_fee` can take, best first, nonce order kept per sender.
    ///
    /// A snapshot: transactions added later are not seen.
    pub fn best(&self, base_fee: u64) -> BestTransactions {
        let pool = self.inner.state.lock();
        // A sender's queue ends at its first reserved transaction: the later nonces cannot run
        // before it does.
        let queues = pool
            .by_sender
            .values()
            .map(|q| {
                q.values()
                    .take_while(|tx| !pool.hidden.contains(&tx.hash))
                    .cloned()
                    .collect()
            })
            .collect();
        BestTransactions::new(queues, base_fee)
    }

    /// Drops what a new head makes stale: included transactions, nonces now used, and private
    /// transactions whose last block is sealed (the head is read from the pool's chain).
    pub fn on_block(&self, state: &StateSnapshot) {
        let head = self.inner.chain.head().number;
        // The nonces are read before the pool is locked: on an execution client's state each
        // read is a round trip, and one batch brings them all. A sender who arrives meanwhile
        // was checked against a head no older than this one.
        let senders: Vec<Address> = self.inner.state.lock().by_sender.keys().copied().collect();
        if let Err(error) = state.prefetch(&senders, &[]) {
            tracing::debug!(%error, "pool.on_block.prefetch_failed");
        }
        let nonces: Vec<(Address, u64)> = senders
            .into_iter()
            .map(|sender| {
                let nonce = state
                    .basic_ref(sender)
                    .ok()
                    .flatten()
                    .map_or(0, |a| a.nonce);
                (sender, nonce)
            })
            .collect();
        let mut pool = self.inner.state.lock();
        for (sender, nonce) in nonces {
            pool.with_sender(sender, |s| {
                let PoolState {
                    by_hash, by_sender, ..
                } = s;
                if let Some(queue) = by_sender.get_mut(&sender) {
                    while let Some(entry) = queue.first_entry() {
                        if *entry.key() >= nonce {
                            break;
                        }
                        by_hash.remove(&entry.remove().hash);
                    }
                }
            });
        }
        let expired: Vec<B256> = pool
            .by_hash
            .values()
            .filter(|tx| tx.private.is_some_and(|p| p.max_block <= head))
            .map(|tx| tx.hash)
            .collect();
        for hash in expired {
            pool.remove(&hash);
            tracing::debug!(%hash, head, "pool.private.expired");
        }
    }

    /// Removes a transaction that can never be included (and every later nonce of its sender,
    /// which now has a gap).
    pub fn remove_invalid(&self, tx: &PooledTx) {
        let mut pool = self.inner.state.lock();
        let sender = tx.sender();
        pool.with_sender(sender, |s| {
            let PoolState {
                by_hash, by_sender, ..
            } = s;
            if let Some(queue) = by_sender.get_mut(&sender) {
                for (_, removed) in queue.split_off(&tx.nonce()) {
                    by_hash.remove(&removed.hash);
                }
            }
        });
    }
}
