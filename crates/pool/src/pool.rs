//! The pool itself: admission, per-sender queues and removal on new blocks.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use alloy_consensus::{Transaction, TxEnvelope, transaction::Recovered};
use alloy_eips::Encodable2718;
use alloy_evm::FromRecoveredTx;
use alloy_primitives::{Address, B256, U256};
use cobuild_chain::{Chain, StateSnapshot};
use parking_lot::Mutex;
use revm::{
    context::TxEnv, context_interface::cfg::gas::calculate_initial_tx_gas_for_tx,
    database_interface::DatabaseRef, primitives::eip7825::TX_GAS_LIMIT_CAP,
};

use crate::{BestTransactions, PoolError};

/// Limits of the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Most transactions held at once.
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
}

impl PooledTx {
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
struct Inner {
    chain: Chain,
    config: PoolConfig,
    state: Mutex<PoolState>,
}

#[derive(Debug, Default)]
struct PoolState {
    by_hash: HashMap<B256, Arc<PooledTx>>,
    by_sender: HashMap<Address, BTreeMap<u64, Arc<PooledTx>>>,
}

impl TxPool {
    /// An empty pool validating against `chain`'s head.
    pub fn new(chain: Chain, config: PoolConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                chain,
                config,
                state: Mutex::new(PoolState::default()),
            }),
        }
    }

    /// Validates `tx` against the head state and adds it. Returns its hash.
    ///
    /// Reads the state before taking the pool lock, so a slow read never blocks other senders.
    pub fn add(&self, tx: Recovered<TxEnvelope>) -> Result<B256, PoolError> {
        let hash = *tx.tx_hash();
        if self.inner.state.lock().by_hash.contains_key(&hash) {
            return Err(PoolError::AlreadyKnown);
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

        let pooled = Arc::new(PooledTx { hash, tx });
        let mut pool = self.inner.state.lock();
        if pool.by_hash.contains_key(&hash) {
            return Err(PoolError::AlreadyKnown);
        }
        let sender = pooled.sender();
        let nonce = pooled.nonce();
        let queue_len = pool.by_sender.get(&sender).map_or(0, BTreeMap::len);
        let replaced = pool
            .by_sender
            .get(&sender)
            .and_then(|q| q.get(&nonce))
            .cloned();
        match &replaced {
            Some(old) => {
                let bump = 100 + self.inner.config.price_bump_percent;
                let old_fee = old.tx.max_fee_per_gas();
                let old_tip = old.tx.max_priority_fee_per_gas().unwrap_or(old_fee);
                let new_fee = pooled.tx.max_fee_per_gas();
                let new_tip = pooled.tx.max_priority_fee_per_gas().unwrap_or(new_fee);
                if new_fee * 100 < old_fee * bump || new_tip * 100 < old_tip * bump {
                    return Err(PoolError::ReplacementUnderpriced);
                }
            }
            None => {
                if pool.by_hash.len() >= self.inner.config.max_transactions
                    || queue_len >= self.inner.config.max_per_sender
                {
                    return Err(PoolError::Full);
                }
            }
        }
        if let Some(old) = replaced {
            pool.by_hash.remove(&old.hash);
        }
        pool.by_hash.insert(hash, pooled.clone());
        pool.by_sender
            .entry(sender)
            .or_default()
            .insert(nonce, pooled);
        tracing::debug!(%hash, %sender, nonce, "pool.add");
        Ok(hash)
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

    /// A pending transaction by hash.
    pub fn get(&self, hash: &B256) -> Option<Arc<PooledTx>> {
        self.inner.state.lock().by_hash.get(hash).cloned()
    }

    /// Number of transactions held.
    pub fn len(&self) -> usize {
        self.inner.state.lock().by_hash.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The nonce `sender`'s next transaction should use, counting pending ones that follow the
    /// account nonce without a gap.
    pub fn pending_nonce(&self, sender: Address, account_nonce: u64) -> u64 {
        let pool = self.inner.state.lock();
        let mut next = account_nonce;
        if let Some(queue) = pool.by_sender.get(&sender) {
            while queue.contains_key(&next) {
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
        let queues = pool
            .by_sender
            .values()
            .map(|q| q.values().cloned().collect())
            .collect();
        BestTransactions::new(queues, base_fee)
    }

    /// Drops what a new head makes stale: included transactions and nonces now used.
    pub fn on_block(&self, state: &StateSnapshot) {
        let mut pool = self.inner.state.lock();
        let PoolState { by_hash, by_sender } = &mut *pool;
        by_sender.retain(|sender, queue| {
            let nonce = state
                .basic_ref(*sender)
                .ok()
                .flatten()
                .map_or(0, |a| a.nonce);
            while let Some(entry) = queue.first_entry() {
                if *entry.key() >= nonce {
                    break;
                }
                by_hash.remove(&entry.remove().hash);
            }
            !queue.is_empty()
        });
    }

    /// Removes a transaction that can never be included (and every later nonce of its sender,
    /// which now has a gap).
    pub fn remove_invalid(&self, tx: &PooledTx) {
        let mut pool = self.inner.state.lock();
        let PoolState { by_hash, by_sender } = &mut *pool;
        if let Some(queue) = by_sender.get_mut(&tx.sender()) {
            for (_, removed) in queue.split_off(&tx.nonce()) {
                by_hash.remove(&removed.hash);
            }
            if queue.is_empty() {
                by_sender.remove(&tx.sender());
            }
        }
    }
}
