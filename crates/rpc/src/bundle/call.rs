//! `eth_callBundle`: run a bundle's transactions in order on the head state, report each one.

use alloy_consensus::{Header, Sealed, Transaction as _, TxEnvelope, transaction::Recovered};
use alloy_eips::BlockNumberOrTag;
use alloy_evm::{Evm, FromRecoveredTx};
use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_rpc_types_mev::EthCallBundle;
use cobuild_chain::{NextBlock, StateSnapshot, next_evm_env};
use cobuild_primitives::{
    ChainSpec, OrderRules, Ran, TxFate, bundle_hash, decode_transactions, eth_evm,
};
use revm::{
    DatabaseCommit, DatabaseRef, context::TxEnv, context_interface::result::ExecutionResult,
    database::CacheDB,
};
use serde::Serialize;

use super::budget::check_gas;
use crate::RpcError;

/// One transaction's outcome, in the Flashbots shape (wei amounts as decimal strings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallBundleTxResult {
    /// Transaction hash.
    pub tx_hash: B256,
    /// Gas used.
    pub gas_used: u64,
    /// Priority fee per gas paid to the coinbase.
    #[serde(serialize_with = "decimal")]
    pub gas_price: U256,
    /// `gas_used * gas_price`.
    #[serde(serialize_with = "decimal")]
    pub gas_fees: U256,
    /// Sender.
    pub from_address: Address,
    /// Recipient (none for contract creation).
    pub to_address: Option<Address>,
    /// Change of the coinbase balance.
    #[serde(serialize_with = "decimal")]
    pub coinbase_diff: U256,
    /// Coinbase gain beyond gas fees (direct payments).
    #[serde(serialize_with = "decimal")]
    pub eth_sent_to_coinbase: U256,
    /// Return data, when it succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Bytes>,
    /// Why it failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Revert data, when it reverted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revert: Option<Bytes>,
}

/// The whole bundle's outcome, in the Flashbots shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallBundleResponse {
    /// `keccak256` of the concatenated transaction hashes.
    pub bundle_hash: B256,
    /// `coinbase_diff / total_gas_used`.
    #[serde(serialize_with = "decimal")]
    pub bundle_gas_price: U256,
    /// Total change of the coinbase balance.
    #[serde(serialize_with = "decimal")]
    pub coinbase_diff: U256,
    /// Total direct payments to the coinbase.
    #[serde(serialize_with = "decimal")]
    pub eth_sent_to_coinbase: U256,
    /// Total priority fees.
    #[serde(serialize_with = "decimal")]
    pub gas_fees: U256,
    /// Per-transaction outcomes, in order.
    pub results: Vec<CallBundleTxResult>,
    /// The block whose state the bundle ran on.
    pub state_block_number: u64,
    /// Total gas used.
    pub total_gas_used: u64,
}

fn decimal<S: serde::Serializer>(value: &U256, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&value.to_string())
}

/// One transaction of a bundle run: what it did to the coinbase and its EVM result.
pub(super) struct CallRun {
    /// The transaction's hash.
    pub(super) hash: B256,
    /// Sender.
    pub(super) from: Address,
    /// Recipient.
    pub(super) to: Option<Address>,
    /// Priority fee per gas paid to the coinbase.
    pub(super) tip: U256,
    /// Change of the coinbase balance.
    pub(super) coinbase_diff: U256,
    /// The EVM outcome (logs, output, revert data, gas used).
    pub(super) result: ExecutionResult,
}

/// How a bundle run ended early, if it did.
pub(super) enum Stop {
    /// The EVM refused a transaction (nonce, funds, fees ...): nothing after it ran.
    Refused(String),
    /// A transaction reverted that the bundle's rules do not allow (it is the last run).
    Reverted(B256),
}

/// Runs `txs` in order on `state` in the block environment `next`, each on the state the one
/// before left. With `rules` (a bundle's), each transaction's run is judged by them: a dropped
/// one leaves no trace, a voiding one ends the run. Without, every transaction counts and the
/// run ends only where the EVM refuses one.
///
/// The transactions' declared gas must fit one block no larger than the chain's, and is
/// `charge`d (to the sender's budget) before anything runs.
pub(super) fn run_bundle(
    spec: &ChainSpec,
    head: &Sealed<Header>,
    state: StateSnapshot,
    txs: &[Recovered<TxEnvelope>],
    next: NextBlock,
    rules: Option<&dyn OrderRules>,
    charge: &dyn Fn(u64) -> Result<(), RpcError>,
) -> Result<(Vec<CallRun>, Option<Stop>), RpcError> {
    let declared = txs
        .iter()
        .fold(0u64, |sum, tx| sum.saturating_add(tx.gas_limit()));
    check_gas(declared, next.gas_limit, head.gas_limit)?;
    charge(declared)?;
    let (coinbase, base_fee) = (next.beneficiary, next.base_fee);
    let env = next_evm_env(spec, head.inner(), next);
    let mut evm = eth_evm(CacheDB::new(state), env);
    let coinbase_balance =
        |evm: &alloy_evm::eth::EthEvm<CacheDB<StateSnapshot>, _, _>| -> Result<U256, RpcError> {
            Ok(evm
                .db()
                .basic_ref(coinbase)
                .map_err(RpcError::internal)?
                .map(|a| a.balance)
                .unwrap_or_default())
        };
    let mut runs = Vec::with_capacity(txs.len());
    for tx in txs {
        let hash = *tx.tx_hash();
        let before = coinbase_balance(&evm)?;
        let outcome = evm.transact(TxEnv::from_recovered_tx(tx.inner(), tx.signer()));
        let Ran {
            run,
            result,
            invalid,
        } = Ran::from_outcome(outcome).map_err(RpcError::internal)?;
        let fate = rules.map_or(TxFate::Keep, |rules| rules.fate(&hash, run));
        let Some(result) = result else {
            if fate == TxFate::Drop {
                continue;
            }
            let reason = invalid.map(|r| r.to_string()).unwrap_or_default();
            return Ok((
                runs,
                Some(Stop::Refused(format!("transaction {hash}: {reason}"))),
            ));
        };
        if fate == TxFate::Drop {
            continue;
        }
        evm.db_mut().commit(result.state);
        let after = coinbase_balance(&evm)?;
        runs.push(CallRun {
            hash,
            from: tx.signer(),
            to: tx.to(),
            tip: U256::from(tx.effective_tip_per_gas(base_fee).unwrap_or_default()),
            coinbase_diff: after.saturating_sub(before),
            result: result.result,
        });
        if fate == TxFate::Void {
            return Ok((runs, Some(Stop::Reverted(hash))));
        }
    }
    Ok((runs, None))
}

/// Runs the bundle on `state` (the head's) in the environment of the block it targets.
pub(super) fn call_bundle(
    spec: &ChainSpec,
    head: &Sealed<Header>,
    state: StateSnapshot,
    request: EthCallBundle,
    charge: &dyn Fn(u64) -> Result<(), RpcError>,
) -> Result<CallBundleResponse, RpcError> {
    // Only the head state is kept: a past state block runs on the head, and the response's
    // `stateBlockNumber` says which state was used. A future one does not exist yet.
    if let BlockNumberOrTag::Number(n) = request.state_block_number
        && n > head.number
    {
        return Err(RpcError::UnknownBlock);
    }
    let txs =
        decode_transactions(&request.txs).map_err(|e| RpcError::InvalidParams(e.to_string()))?;
    if txs.is_empty() {
        return Err(RpcError::InvalidParams("bundle has no transactions".into()));
    }
    let base_fee = match request.base_fee {
        Some(fee) => {
            u64::try_from(fee).map_err(|_| RpcError::InvalidParams("baseFee too large".into()))?
        }
        None => head
            .next_block_base_fee(spec.base_fee_params())
            .unwrap_or_default(),
    };
    let next = NextBlock {
        number: request.block_number,
        timestamp: request.timestamp.unwrap_or(head.timestamp + 12),
        beneficiary: request.coinbase.unwrap_or(head.beneficiary),
        gas_limit: request.gas_limit.unwrap_or(head.gas_limit),
        base_fee,
        prev_randao: head.mix_hash,
    };
    // eth_callBundle names no revert or drop rules: every transaction is reported.
    let (runs, stop) = run_bundle(spec, head, state, &txs, next, None, charge)?;
    if let Some(Stop::Refused(reason)) = stop {
        return Err(RpcError::Execution(reason));
    }
    let results: Vec<CallBundleTxResult> = runs
        .into_iter()
        .map(|run| {
            let gas_used = run.result.tx_gas_used();
            let gas_fees = run.tip * U256::from(gas_used);
            let (value, error, revert) = match run.result {
                ExecutionResult::Success { output, .. } => (Some(output.into_data()), None, None),
                ExecutionResult::Revert { output, .. } => {
                    (None, Some("execution reverted".to_string()), Some(output))
                }
                ExecutionResult::Halt { reason, .. } => (None, Some(format!("{reason:?}")), None),
            };
            CallBundleTxResult {
                tx_hash: run.hash,
                gas_used,
                gas_price: run.tip,
                gas_fees,
                from_address: run.from,
                to_address: run.to,
                coinbase_diff: run.coinbase_diff,
                eth_sent_to_coinbase: run.coinbase_diff.saturating_sub(gas_fees),
                value,
                error,
                revert,
            }
        })
        .collect();
    let total_gas_used: u64 = results.iter().map(|r| r.gas_used).sum();
    let sum =
        |f: fn(&CallBundleTxResult) -> U256| results.iter().map(f).fold(U256::ZERO, |a, b| a + b);
    let coinbase_diff = sum(|r| r.coinbase_diff);
    Ok(CallBundleResponse {
        bundle_hash: bundle_hash(&txs),
        bundle_gas_price: if total_gas_used == 0 {
            U256::ZERO
        } else {
            coinbase_diff / U256::from(total_gas_used)
        },
        coinbase_diff,
        eth_sent_to_coinbase: sum(|r| r.eth_sent_to_coinbase),
        gas_fees: sum(|r| r.gas_fees),
        results,
        state_block_number: head.number,
        total_gas_used,
    })
}
