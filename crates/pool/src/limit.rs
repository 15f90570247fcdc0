//! One bound on the orders the pools hold together: transactions plus bundles.
//!
//! When the pools are full, a new order that is worth more than the least valuable held order
//! evicts it; otherwise it is refused with [`PoolError::Full`]. Value is per gas, at the next
//! block's base fee:
//! - a transaction: its effective tip per gas. Only each sender's highest nonce may be evicted,
//!   so eviction never leaves a nonce gap;
//! - a bundle: the sum over its transactions of effective tip × gas limit, divided by their
//!   total gas limit.
//!
//! Admissions that may need room take one admission lock (then a pool's lock, never the other
//! way round), so two orders can never both take the last free place; removals only shrink the
//! pools and take no admission lock.

use std::sync::{Arc, Weak};

use alloy_consensus::{Transaction, TxEnvelope, transaction::Recovered};
use alloy_primitives::{Address, B256};
use cobuild_primitives::Bundle;
use parking_lot::{Mutex, MutexGuard};

use crate::{PoolError, bundles, pool};

/// A transaction's value per gas at `base_fee`: its effective tip (0 below the base fee).
pub fn tx_value(tx: &Recovered<TxEnvelope>, base_fee: u64) -> u128 {
    tx.effective_tip_per_gas(base_fee).unwrap_or_default()
}

/// A bundle's value per gas at `base_fee`: effective tips weighted by gas limit.
pub fn bundle_value(bundle: &Bundle, base_fee: u64) -> u128 {
    let gas: u128 = bundle.txs.iter().map(|tx| u128::from(tx.gas_limit())).sum();
    if gas == 0 {
        return 0;
    }
    let paid: u128 = bundle
        .txs
        .iter()
        .map(|tx| tx_value(tx, base_fee).saturating_mul(u128::from(tx.gas_limit())))
        .fold(0, u128::saturating_add);
    paid / gas
}

/// The bound shared by a [`TxPool`](crate::TxPool) and a [`BundlePool`](crate::BundlePool).
/// Cheap to clone; clones share the bound.
///
/// Give the same limit to [`TxPool::with_limit`](crate::TxPool::with_limit) and
/// [`BundlePool::with_limit`](crate::BundlePool::with_limit). One pool of each kind takes part;
/// registering another replaces the earlier one.
#[derive(Debug, Clone)]
pub struct OrderLimit {
    shared: Arc<Shared>,
}

/// Told that the orders changed (one was added, replaced or cancelled); must be quick and must
/// not call back into the pools (it runs on the caller's thread, with no pool lock held).
pub type ChangeListener = Arc<dyn Fn() + Send + Sync>;

#[derive(Debug)]
struct Shared {
    max: usize,
    admission: Mutex<()>,
    txs: Mutex<Weak<pool::Inner>>,
    bundles: Mutex<Weak<Mutex<bundles::State>>>,
    listener: Mutex<Option<Listener>>,
}

struct Listener(ChangeListener);

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChangeListener")
    }
}

/// The least valuable order held, the eviction candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Victim {
    Tx(B256),
    Bundle(B256),
}

impl OrderLimit {
    /// A bound of `max` orders.
    pub fn new(max: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                max,
                admission: Mutex::new(()),
                txs: Mutex::new(Weak::new()),
                bundles: Mutex::new(Weak::new()),
                listener: Mutex::new(None),
            }),
        }
    }

    /// Calls `listener` after every change of the orders either pool holds through its senders
    /// (add, replacement, cancellation), so a builder can react at once instead of polling.
    /// Replaces an earlier listener.
    pub fn on_change(&self, listener: ChangeListener) {
        *self.shared.listener.lock() = Some(Listener(listener));
    }

    /// Removes the bundles that carry transaction `tx` (a cancelled private transaction a
    /// MEV-Share bundle took in by hash must not land through the bundle). Call with no pool
    /// lock held.
    pub(crate) fn drop_bundles_carrying(&self, tx: &B256) -> usize {
        self.bundles().map_or(0, |b| b.lock().take_carrying(tx))
    }

    /// Tells the listener that the orders changed. Call with no pool lock held.
    pub(crate) fn changed(&self) {
        let listener = self.shared.listener.lock().as_ref().map(|l| l.0.clone());
        if let Some(listener) = listener {
            listener();
        }
    }

    /// Most orders held at once.
    pub fn max(&self) -> usize {
        self.shared.max
    }

    /// Orders held now, transactions plus bundles.
    pub fn held(&self) -> usize {
        self.txs().map_or(0, |t| t.len()) + self.bundles().map_or(0, |b| b.lock().len())
    }

    pub(crate) fn register_txs(&self, txs: &Arc<pool::Inner>) {
        *self.shared.txs.lock() = Arc::downgrade(txs);
    }

    pub(crate) fn register_bundles(&self, bundles: &Arc<Mutex<bundles::State>>) {
        *self.shared.bundles.lock() = Arc::downgrade(bundles);
    }

    fn txs(&self) -> Option<Arc<pool::Inner>> {
        self.shared.txs.lock().upgrade()
    }

    fn bundles(&self) -> Option<Arc<Mutex<bundles::State>>> {
        self.shared.bundles.lock().upgrade()
    }

    /// Serialises admissions; hold it from the room check to the insert.
    pub(crate) fn admission(&self) -> MutexGuard<'_, ()> {
        self.shared.admission.lock()
    }

    /// The next block's base fee as the transaction pool's chain sees it (0 without one).
    pub(crate) fn base_fee(&self) -> u64 {
        self.txs().map_or(0, |t| t.next_base_fee())
    }

    /// Makes room for one more order worth `value` per gas, evicting less valuable orders.
    /// `sender`'s own transactions are never evicted for it (that would open a nonce gap before
    /// the new one). Call with the admission lock held and no pool lock.
    pub(crate) fn make_room(&self, value: u128, sender: Option<Address>) -> Result<(), PoolError> {
        let txs = self.txs();
        let bundles = self.bundles();
        let held =
            || txs.as_ref().map_or(0, |t| t.len()) + bundles.as_ref().map_or(0, |b| b.lock().len());
        let base_fee = txs.as_ref().map_or(0, |t| t.next_base_fee());
        // Each eviction removes one order; concurrent removals only help.
        let mut attempts = held().saturating_sub(self.shared.max) + 2;
        while held() >= self.shared.max {
            if attempts == 0 {
                return Err(PoolError::Full);
            }
            attempts -= 1;
            let worst_tx = txs.as_ref().and_then(|t| t.worst(base_fee, sender));
            let worst_bundle = bundles.as_ref().and_then(|b| b.lock().worst(base_fee));
            let (worst, victim) = match (worst_tx, worst_bundle) {
                (Some((tv, th)), Some((bv, _))) if tv <= bv => (tv, Victim::Tx(th)),
                (_, Some((bv, bh))) => (bv, Victim::Bundle(bh)),
                (Some((tv, th)), None) => (tv, Victim::Tx(th)),
                (None, None) => return Err(PoolError::Full),
            };
            if worst >= value {
                return Err(PoolError::Full);
            }
            match victim {
                Victim::Tx(hash) => {
                    if let Some(t) = &txs {
                        t.evict(&hash);
                    }
                }
                Victim::Bundle(hash) => {
                    if let Some(b) = &bundles {
                        b.lock().take(&hash);
                    }
                }
            }
            tracing::debug!(?victim, worst, value, "pool.evict");
        }
        Ok(())
    }
}
