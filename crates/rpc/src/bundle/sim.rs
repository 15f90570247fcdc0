//! `mev_simBundle`: a checked MEV-Share bundle run on the head state by the `eth_callBundle`
//! machinery ([`run_bundle`]), answered in the MEV-Share `SimBundleResponse` shape.

use alloy_consensus::{Header, Sealed};
use alloy_eips::{BlockId, BlockNumberOrTag};
use alloy_primitives::{B256, U256};
use alloy_rpc_types_eth::Log;
use alloy_rpc_types_mev::{SimBundleLogs, SimBundleOverrides, SimBundleResponse};
use cobuild_chain::{NextBlock, StateSnapshot};
use cobuild_primitives::{Bundle, ChainSpec};
use revm::context_interface::result::ExecutionResult;

use super::call::{Stop, run_bundle};
use crate::RpcError;

/// Simulates `bundle` on `state` (the head's) as the next block (or the block `overrides`
/// describe) would run it.
///
/// `profit` is the coinbase's gain, `mevGasPrice` that gain per gas used, and
/// `refundableValue` the gain made by the bundle's own transactions, leaving out the pending
/// transactions its `{hash}` items named (`referenced`): what a refund could be paid from.
/// The bundle is judged by its own rules ([`OrderRules`](cobuild_primitives::OrderRules)): it fails (`success: false`, with the
/// reason) at a transaction the EVM refuses or one that reverts without `canRevert`, and the
/// figures then cover the transactions up to it.
pub(super) fn sim_bundle(
    spec: &ChainSpec,
    head: &Sealed<Header>,
    state: StateSnapshot,
    bundle: &Bundle,
    referenced: &[B256],
    overrides: SimBundleOverrides,
    charge: &dyn Fn(u64) -> Result<(), RpcError>,
) -> Result<SimBundleResponse, RpcError> {
    // Only the head state is kept: an older parent runs on the head, and `stateBlock` says so.
    match overrides.parent_block {
        Some(BlockId::Number(BlockNumberOrTag::Number(n))) if n > head.number => {
            return Err(RpcError::UnknownBlock);
        }
        Some(BlockId::Hash(hash)) if hash.block_hash != head.hash() => {
            return Err(RpcError::HistoricalState(format!(
                "block {}: mev_simBundle runs on the head state only",
                hash.block_hash
            )));
        }
        _ => {}
    }
    let block = overrides.block_overrides;
    let unsupported = [
        ("difficulty", block.difficulty.is_some()),
        ("blobBaseFee", block.blob_base_fee.is_some()),
        ("blockHash", block.block_hash.is_some()),
    ];
    if let Some((field, _)) = unsupported.iter().find(|(_, set)| *set) {
        return Err(RpcError::InvalidParams(format!(
            "override {field} is not supported"
        )));
    }
    let quantity = |field: &str, value: U256| {
        u64::try_from(value).map_err(|_| RpcError::InvalidParams(format!("{field} too large")))
    };
    let next = NextBlock {
        number: block
            .number
            .map(|n| quantity("number", n))
            .transpose()?
            .unwrap_or(head.number + 1),
        timestamp: block.time.unwrap_or(head.timestamp + 12),
        beneficiary: block.coinbase.unwrap_or(head.beneficiary),
        gas_limit: block.gas_limit.unwrap_or(head.gas_limit),
        base_fee: match block.base_fee {
            Some(fee) => quantity("baseFee", fee)?,
            None => head
                .next_block_base_fee(spec.base_fee_params())
                .unwrap_or_default(),
        },
        prev_randao: block.random.unwrap_or(head.mix_hash),
    };
    let (runs, stop) = run_bundle(spec, head, state, &bundle.txs, next, Some(bundle), charge)?;
    let (error, revert) = match stop {
        None => (None, None),
        Some(Stop::Refused(reason)) => (Some(reason), None),
        Some(Stop::Reverted(hash)) => {
            let last = runs.last().map(|r| &r.result);
            let error = match last {
                Some(ExecutionResult::Halt { reason, .. }) => {
                    format!("transaction {hash} halted: {reason:?}")
                }
                _ => format!("transaction {hash} reverted"),
            };
            let revert = match last {
                Some(ExecutionResult::Revert { output, .. }) => Some(output.clone()),
                _ => None,
            };
            (Some(error), revert)
        }
    };
    let mut logs = Vec::with_capacity(runs.len());
    let mut log_index = 0u64;
    for (index, run) in runs.iter().enumerate() {
        let tx_logs = match &run.result {
            ExecutionResult::Success { logs: emitted, .. } => emitted
                .iter()
                .map(|log| {
                    log_index += 1;
                    Log {
                        inner: log.clone(),
                        transaction_hash: Some(run.hash),
                        transaction_index: Some(index as u64),
                        log_index: Some(log_index - 1),
                        ..Log::default()
                    }
                })
                .collect(),
            ExecutionResult::Revert { .. } | ExecutionResult::Halt { .. } => Vec::new(),
        };
        logs.push(SimBundleLogs {
            tx_logs: Some(tx_logs),
            bundle_logs: None,
        });
    }
    let gas_used: u64 = runs.iter().map(|r| r.result.tx_gas_used()).sum();
    let profit = runs.iter().fold(U256::ZERO, |sum, r| sum + r.coinbase_diff);
    let refundable_value = runs
        .iter()
        .filter(|r| !referenced.contains(&r.hash))
        .fold(U256::ZERO, |sum, r| sum + r.coinbase_diff);
    Ok(SimBundleResponse {
        success: error.is_none(),
        error,
        state_block: head.number,
        mev_gas_price: if gas_used == 0 {
            U256::ZERO
        } else {
            profit / U256::from(gas_used)
        },
        profit,
        refundable_value,
        gas_used,
        logs: Some(logs),
        exec_error: None,
        revert,
    })
}

#[cfg(test)]
mod tests {
    use alloy_primitives::Address;
    use cobuild_chain::{dev_signers, test_utils};

    use super::*;

    /// A bundle of `txs` (signed transfers) for block 1 with the given lists.
    fn bundle(
        txs: Vec<alloy_consensus::transaction::Recovered<alloy_consensus::TxEnvelope>>,
        dropping: Vec<B256>,
    ) -> Bundle {
        Bundle {
            hash: cobuild_primitives::bundle_hash(&txs),
            txs,
            block_number: 1,
            max_block: None,
            min_timestamp: None,
            max_timestamp: None,
            reverting: Vec::new(),
            dropping,
            replacement: None,
            refund: None,
        }
    }

    #[test]
    fn test_sim_bundle_follows_the_bundle_rules_dropping_included() {
        let dir = tempfile::tempdir().expect("tempdir");
        let chain = test_utils::devnet_chain(dir.path());
        let signers = dev_signers();
        let to = Address::repeat_byte(0xaa);
        // Nonce 5 of a fresh account cannot run; the transfer after it can.
        let stale = test_utils::sign(&signers[1], test_utils::transfer(5, to, 1, 1_000_000_000));
        let good = test_utils::sign(&signers[2], test_utils::transfer(0, to, 1, 1_000_000_000));
        let run = |b: &Bundle| {
            let (head, state) = chain.head_state().expect("state");
            sim_bundle(
                chain.spec(),
                &head,
                state,
                b,
                &[],
                SimBundleOverrides::default(),
                &|_| Ok(()),
            )
            .expect("simulates")
        };
        let strict = run(&bundle(vec![stale.clone(), good.clone()], Vec::new()));
        assert!(
            !strict.success,
            "a transaction that cannot run voids a strict bundle"
        );
        let droppable = run(&bundle(vec![stale.clone(), good], vec![*stale.tx_hash()]));
        assert!(droppable.success, "{:?}", droppable.error);
        assert_eq!(droppable.gas_used, 21_000, "only the kept transfer ran");
        assert_eq!(droppable.logs.map(|l| l.len()), Some(1));
    }
}
