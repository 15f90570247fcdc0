//! Executing a bundle atomically: every transaction it keeps lands, in order, or none does.
//!
//! alloy-evm's executor commits each transaction into the block state as it goes, so a bundle
//! is first run on a scratch layer over the builder's current state. Only if its rules hold
//! ([`OrderRules::fate`]: no revert the bundle does not allow; invalid or reverting transactions
//! left out only where it allows) are the kept transactions' results committed to the block.
//! They are the results the block's own executor would reach (the same transactions, in the
//! same order, on the same state), so a bundle is executed once, not once to judge and again to
//! commit.

use alloy_consensus::{Transaction as _, TxEnvelope, transaction::Recovered};
use alloy_evm::{Evm, EvmEnv, FromRecoveredTx, eth::EthTxResult};
use alloy_primitives::{B256, U256};
use cobuild_primitives::{OrderRules, Ran, TxFate, eth_evm};
use revm::{
    DatabaseCommit, DatabaseRef,
    context::TxEnv,
    context_interface::result::{HaltReason, InvalidTransaction, ResultAndState},
    database::CacheDB,
};

use super::{BlockBuilder, BlockError};

/// Why a bundle was left out. The block is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleRejected {
    /// A transaction that may not be dropped is invalid on the current state.
    #[error("transaction {hash}: {reason}")]
    Invalid {
        /// The transaction.
        hash: B256,
        /// Why.
        reason: InvalidTransaction,
    },
    /// A transaction reverted that is neither allowed to revert nor to be dropped.
    #[error("transaction {hash} reverted")]
    Reverted {
        /// The transaction.
        hash: B256,
    },
    /// The kept transactions do not fit in the gas left.
    #[error("bundle needs {needed} gas, {available} left")]
    GasExhausted {
        /// Gas limit of the kept transactions.
        needed: u64,
        /// Gas left in the block.
        available: u64,
    },
    /// Every transaction was dropped.
    #[error("no transaction of the bundle can be included")]
    Empty,
    /// The kept transactions' blobs do not fit in the blob gas left.
    #[error("bundle blobs exceed the blob gas left in the block")]
    BlobGasExhausted,
    /// The caller's acceptance check refused what the bundle would pay.
    #[error("outcome refused")]
    Refused,
}

/// What an included bundle did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleOutcome {
    /// Hashes of the transactions included, in order (dropped ones are missing).
    pub included: Vec<B256>,
    /// Gas they used.
    pub gas_used: u64,
    /// What the coinbase gained from them (priority fees and direct payments).
    pub coinbase_profit: U256,
}

/// What a bundle would do if committed, shown to an acceptance check before the block changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BundleTrial {
    /// What the coinbase would gain: priority fees plus direct payments.
    pub coinbase_profit: U256,
    /// Gas the kept transactions would use.
    pub gas_used: u64,
}

/// What a dry run decided: the transactions to commit, each with its result on the block state
/// and the kept transactions before it, and what they would do together.
struct DryRun<'t> {
    kept: Vec<(&'t Recovered<TxEnvelope>, ResultAndState<HaltReason>)>,
    trial: BundleTrial,
}

impl BlockBuilder {
    /// Executes `txs` as one unit under `rules`: all kept transactions are committed, in
    /// order, or none.
    ///
    /// The outer error stops the block attempt; the inner one leaves the bundle out.
    pub fn execute_bundle(
        &mut self,
        txs: &[Recovered<TxEnvelope>],
        rules: &impl OrderRules,
    ) -> Result<Result<BundleOutcome, BundleRejected>, BlockError> {
        self.execute_bundle_if(txs, rules, |_| true)
    }

    /// As [`Self::execute_bundle`], but commits only if `accept` approves what the bundle
    /// would do (gas, coinbase gain); otherwise the block is left exactly as it was.
    pub fn execute_bundle_if(
        &mut self,
        txs: &[Recovered<TxEnvelope>],
        rules: &impl OrderRules,
        accept: impl FnOnce(&BundleTrial) -> bool,
    ) -> Result<Result<BundleOutcome, BundleRejected>, BlockError> {
        let DryRun { kept, trial } = match self.dry_run(txs, rules)? {
            Ok(dry) => dry,
            Err(rejected) => return Ok(Err(rejected)),
        };
        let coinbase_profit = trial.coinbase_profit;
        if !accept(&trial) {
            return Ok(Err(BundleRejected::Refused));
        }
        let mut included = Vec::with_capacity(kept.len());
        let mut gas_used = 0;
        for (tx, result) in kept {
            let output = EthTxResult {
                result,
                blob_gas_used: tx.inner().blob_gas_used().unwrap_or_default(),
                tx_type: tx.inner().tx_type(),
            };
            included.push(*tx.tx_hash());
            gas_used += self.commit_output(tx.clone(), output);
        }
        Ok(Ok(BundleOutcome {
            included,
            gas_used,
            coinbase_profit,
        }))
    }

    /// Runs the bundle on a scratch layer; returns the transactions to keep and the coinbase gain.
    fn dry_run<'t>(
        &self,
        txs: &'t [Recovered<TxEnvelope>],
        rules: &impl OrderRules,
    ) -> Result<Result<DryRun<'t>, BundleRejected>, BlockError> {
        let evm = self.executor_evm();
        let env = EvmEnv::new(evm.cfg_env().clone(), evm.block().clone());
        let coinbase = env.block_env.beneficiary;
        let mut scratch = eth_evm(CacheDB::new(evm.db()), env);
        let balance = |db: &CacheDB<_>| -> Result<U256, BlockError> {
            let info = DatabaseRef::basic_ref(db, coinbase).map_err(|e| {
                BlockError::Execution(alloy_evm::block::BlockExecutionError::msg(e))
            })?;
            Ok(info.map(|a| a.balance).unwrap_or_default())
        };
        let before = balance(scratch.db())?;
        let mut kept = Vec::with_capacity(txs.len());
        let mut gas_limit = 0u64;
        let mut gas_used = 0u64;
        let mut blob_gas = 0u64;
        for (index, tx) in txs.iter().enumerate() {
            let hash = *tx.tx_hash();
            let outcome = scratch.transact(TxEnv::from_recovered_tx(tx.inner(), tx.signer()));
            let Ran {
                run,
                result,
                invalid,
            } = Ran::from_outcome(outcome).map_err(|e| {
                BlockError::Execution(alloy_evm::block::BlockExecutionError::msg(e))
            })?;
            match (rules.fate(&hash, run), result) {
                (TxFate::Keep, Some(result)) => {
                    // The last transaction's changes are read from its result: no one runs
                    // after it on the scratch layer.
                    if index + 1 < txs.len() {
                        scratch.db_mut().commit(result.state.clone());
                    }
                    gas_limit += tx.inner().gas_limit();
                    gas_used += result.result.tx_gas_used();
                    blob_gas += tx.inner().blob_gas_used().unwrap_or_default();
                    kept.push((tx, result));
                }
                (TxFate::Drop, _) => {}
                // Void (a transaction that could not run is never kept).
                _ => {
                    return Ok(Err(match invalid {
                        Some(reason) => BundleRejected::Invalid { hash, reason },
                        None => BundleRejected::Reverted { hash },
                    }));
                }
            }
        }
        if !rules.stands(kept.len()) {
            return Ok(Err(BundleRejected::Empty));
        }
        let available = self.gas_left();
        if gas_limit > available {
            return Ok(Err(BundleRejected::GasExhausted {
                needed: gas_limit,
                available,
            }));
        }
        // The real pass checks blob gas per transaction; refusing here keeps it from diverging.
        if blob_gas > self.blob_gas_left() {
            return Ok(Err(BundleRejected::BlobGasExhausted));
        }
        let after = match kept.last() {
            Some((last, result)) if std::ptr::eq(*last, &txs[txs.len() - 1]) => {
                match result.state.get(&coinbase) {
                    Some(account) => account.info.balance,
                    None => balance(scratch.db())?,
                }
            }
            _ => balance(scratch.db())?,
        };
        Ok(Ok(DryRun {
            kept,
            trial: BundleTrial {
                coinbase_profit: after.saturating_sub(before),
                gas_used,
            },
        }))
    }
}
