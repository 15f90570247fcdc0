//! Running one order on a scratch state: the rules (revert, drop, atomicity), its profit for the
//! coinbase, the gas it used and the state it touched.
//!
//! A bundle runs on a layer of its own over the caller's state; only if its rules hold are its
//! per-transaction changes committed to the caller's state, so a rejected bundle leaves no trace.

use alloy_consensus::{TxEnvelope, transaction::Recovered};
use alloy_evm::{Evm, EvmEnv, FromRecoveredTx};
use alloy_primitives::{Address, B256, U256};
use revm::{
    DatabaseCommit, DatabaseRef, context::TxEnv, context_interface::result::InvalidTransaction,
    database::CacheDB, state::EvmState,
};

use cobuild_primitives::{OrderRules, Ran, TxFate, eth_evm};

use crate::{AccessSet, Order, StateKey};

/// A state read failed: the simulation round cannot go on.
#[derive(Debug, thiserror::Error)]
#[error("state read failed during simulation: {0}")]
pub struct SimError(pub String);

/// Why an order cannot run on this state. Its state is left untouched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimRejected {
    /// A transaction that may not be dropped is invalid (nonce, funds, fee ...).
    #[error("transaction {hash}: {reason}")]
    Invalid {
        /// The transaction.
        hash: B256,
        /// Why.
        reason: InvalidTransaction,
    },
    /// A bundle transaction reverted that may neither revert nor be dropped.
    #[error("transaction {hash} reverted")]
    Reverted {
        /// The transaction.
        hash: B256,
    },
    /// Every transaction of the bundle was dropped.
    #[error("no transaction can be included")]
    Empty,
}

/// What an order did on the state it ran on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimOutcome {
    /// Gas used by the transactions kept.
    pub gas_used: u64,
    /// The coinbase's gain: priority fees plus direct payments.
    pub coinbase_profit: U256,
    /// Hashes of the transactions kept, in order.
    pub kept: Vec<B256>,
    /// What it read and wrote (the coinbase excluded).
    pub access: AccessSet,
}

impl SimOutcome {
    /// Coinbase profit per unit of gas: the effective gas price the builder earns.
    pub fn profit_per_gas(&self) -> U256 {
        self.coinbase_profit / U256::from(self.gas_used.max(1))
    }
}

/// Runs `order` on `db` in `env` (whose beneficiary is the builder's coinbase) and, if its rules
/// hold, commits its changes to `db`.
///
/// The outer error stops the round (the state could not be read); the inner one rejects only
/// this order.
pub fn simulate_order<DB>(
    db: &mut CacheDB<DB>,
    env: &EvmEnv,
    order: &Order,
) -> Result<Result<SimOutcome, SimRejected>, SimError>
where
    DB: DatabaseRef + std::fmt::Debug,
    DB::Error: std::error::Error + Send + Sync + 'static,
{
    run_order(db, env, order, true)
}

/// [`simulate_order`] for a caller that needs only what the order pays and uses: its outcome's
/// `access` is left empty. Recording what each transaction touched was about 7 % of the
/// conflict search's runs, and a search that runs orders many times in many sequences does not
/// read it.
pub fn simulate_order_without_access<DB>(
    db: &mut CacheDB<DB>,
    env: &EvmEnv,
    order: &Order,
) -> Result<Result<SimOutcome, SimRejected>, SimError>
where
    DB: DatabaseRef + std::fmt::Debug,
    DB::Error: std::error::Error + Send + Sync + 'static,
{
    run_order(db, env, order, false)
}

fn run_order<DB>(
    db: &mut CacheDB<DB>,
    env: &EvmEnv,
    order: &Order,
    record: bool,
) -> Result<Result<SimOutcome, SimRejected>, SimError>
where
    DB: DatabaseRef + std::fmt::Debug,
    DB::Error: std::error::Error + Send + Sync + 'static,
{
    let coinbase = env.block_env.beneficiary;
    let (changes, outcome) = {
        // One EVM for the order's transactions, each committed to the layer for the next.
        let mut evm = eth_evm(CacheDB::new(&*db), env.clone());
        let before = balance(evm.db(), coinbase)?;
        let mut changes: Vec<EvmState> = Vec::with_capacity(order.txs().len());
        let mut access = AccessSet::default();
        let mut kept = Vec::with_capacity(order.txs().len());
        let mut gas_used = 0;
        for tx in order.txs() {
            let hash = *tx.tx_hash();
            let Ran {
                run,
                result,
                invalid,
            } = Ran::from_outcome(evm.transact(tx_env(tx))).map_err(|e| SimError(e.to_string()))?;
            match (order.fate(&hash, run), result) {
                (TxFate::Keep, Some(result)) => {
                    if record {
                        record_access(evm.db(), &result.state, coinbase, &mut access)?;
                    }
                    gas_used += result.result.tx_gas_used();
                    evm.db_mut().commit(result.state.clone());
                    changes.push(result.state);
                    kept.push(hash);
                }
                (TxFate::Drop, _) => {}
                // Void (a transaction that could not run is never kept).
                _ => {
                    return Ok(Err(match invalid {
                        Some(reason) => SimRejected::Invalid { hash, reason },
                        None => SimRejected::Reverted { hash },
                    }));
                }
            }
        }
        if !order.stands(kept.len()) {
            return Ok(Err(SimRejected::Empty));
        }
        let after = balance(evm.db(), coinbase)?;
        let outcome = SimOutcome {
            gas_used,
            coinbase_profit: after.saturating_sub(before),
            kept,
            access,
        };
        (changes, outcome)
    };
    for change in changes {
        db.commit(change);
    }
    Ok(Ok(outcome))
}

fn tx_env(tx: &Recovered<TxEnvelope>) -> TxEnv {
    TxEnv::from_recovered_tx(tx.inner(), tx.signer())
}

fn balance<DB>(db: &DB, address: Address) -> Result<U256, SimError>
where
    DB: DatabaseRef,
    DB::Error: std::fmt::Display,
{
    Ok(db
        .basic_ref(address)
        .map_err(|e| SimError(e.to_string()))?
        .map(|a| a.balance)
        .unwrap_or_default())
}

/// Adds what one transaction's state changes read and wrote, judged against `pre` (the state
/// before the transaction).
fn record_access<DB>(
    pre: &DB,
    state: &EvmState,
    coinbase: Address,
    access: &mut AccessSet,
) -> Result<(), SimError>
where
    DB: DatabaseRef,
    DB::Error: std::fmt::Display,
{
    for (address, account) in state {
        if *address == coinbase {
            continue;
        }
        let key = StateKey::Account(*address);
        access.reads.insert(key);
        let old = pre
            .basic_ref(*address)
            .map_err(|e| SimError(e.to_string()))?
            .unwrap_or_default();
        if old.balance != account.info.balance
            || old.nonce != account.info.nonce
            || old.code_hash != account.info.code_hash
            || account.is_selfdestructed()
        {
            access.writes.insert(key);
        }
        for (slot, value) in &account.storage {
            let key = StateKey::Slot(*address, *slot);
            access.reads.insert(key);
            if value.is_changed() {
                access.writes.insert(key);
            }
        }
    }
    Ok(())
}
