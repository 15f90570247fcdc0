//! `eth_call` and `eth_estimateGas`: run a request on the head state without committing.

use alloy_consensus::{Header, Sealed};
use alloy_evm::{
    Evm, EvmEnv, EvmFactory, eth::EthEvmFactory, overrides::apply_state_overrides,
    rpc::TryIntoTxEnv,
};
use alloy_primitives::Bytes;
use alloy_rpc_types_eth::{TransactionRequest, state::StateOverride};
use cobuild_chain::StateSnapshot;
use cobuild_primitives::ChainSpec;
use revm::{
    context::TxEnv,
    context_interface::result::{ExecutionResult, HaltReason},
    database::CacheDB,
    primitives::eip7825::TX_GAS_LIMIT_CAP,
};

use crate::RpcError;

/// Simple transfers need exactly this much; no search is needed below it.
const TRANSFER_GAS: u64 = 21_000;

struct Prepared {
    env: EvmEnv,
    tx: TxEnv,
    db: CacheDB<StateSnapshot>,
    /// Fees were given, so the sender must be able to pay them.
    priced: bool,
}

fn prepare(
    spec: &ChainSpec,
    head: &Sealed<Header>,
    state: StateSnapshot,
    request: TransactionRequest,
    overrides: Option<StateOverride>,
    gas_cap: u64,
) -> Result<Prepared, RpcError> {
    let mut env = EvmEnv::for_eth_block(
        head.inner(),
        spec,
        spec.chain_id(),
        Some(spec.blob_params()),
    );
    // Calls are not transactions: like geth, skip the nonce and sender-code checks, and only
    // charge fees (and so require funds) when the request names a price.
    env.cfg_env.disable_nonce_check = true;
    env.cfg_env.disable_eip3607 = true;
    env.cfg_env.disable_block_gas_limit = true;
    env.cfg_env.tx_gas_limit_cap = Some(gas_cap);
    let priced = request.gas_price.is_some() || request.max_fee_per_gas.is_some();
    if !priced {
        env.cfg_env.disable_base_fee = true;
        env.cfg_env.disable_balance_check = true;
    }
    let mut request = request;
    if request.gas.is_none() {
        request.gas = Some(gas_cap.min(head.gas_limit));
    }
    let tx: TxEnv = request
        .try_into_tx_env(&env)
        .map_err(|e| RpcError::InvalidParams(e.to_string()))?;
    let mut db = CacheDB::new(state);
    if let Some(overrides) = overrides {
        apply_state_overrides(overrides, &mut db)
            .map_err(|e| RpcError::InvalidParams(format!("state override: {e}")))?;
    }
    Ok(Prepared {
        env,
        tx,
        db,
        priced,
    })
}

fn run(p: &Prepared, gas_limit: u64) -> Result<ExecutionResult<HaltReason>, RpcError> {
    let mut evm = EthEvmFactory::default().create_evm(p.db.clone(), p.env.clone());
    let tx = TxEnv {
        gas_limit,
        ..p.tx.clone()
    };
    match evm.transact(tx) {
        Ok(result) => Ok(result.result),
        Err(revm::context_interface::result::EVMError::Transaction(invalid)) => {
            Err(RpcError::Execution(invalid.to_string()))
        }
        Err(other) => Err(RpcError::internal(other)),
    }
}

fn into_output(result: ExecutionResult<HaltReason>) -> Result<Bytes, RpcError> {
    match result {
        ExecutionResult::Success { output, .. } => Ok(output.into_data()),
        ExecutionResult::Revert { output, .. } => Err(RpcError::Reverted {
            reason: alloy_sol_types::decode_revert_reason(&output),
            output,
        }),
        ExecutionResult::Halt { reason, .. } => Err(RpcError::Execution(halt_message(reason))),
    }
}

fn halt_message(reason: HaltReason) -> String {
    match reason {
        HaltReason::OutOfGas(_) => "out of gas".into(),
        other => format!("execution halted: {other:?}"),
    }
}

/// Runs `request` on the head state and returns its output; a revert is an error with the data.
pub(super) fn call(
    spec: &ChainSpec,
    head: &Sealed<Header>,
    state: StateSnapshot,
    request: TransactionRequest,
    overrides: Option<StateOverride>,
) -> Result<Bytes, RpcError> {
    // A call may use more gas than a transaction could (geth's RPC gas cap is 50M).
    let prepared = prepare(spec, head, state, request, overrides, 50_000_000)?;
    let gas = prepared.tx.gas_limit;
    into_output(run(&prepared, gas)?)
}

/// The least gas limit (within 1.5 %) at which `request` succeeds, by binary search like geth.
pub(super) fn estimate_gas(
    spec: &ChainSpec,
    head: &Sealed<Header>,
    state: StateSnapshot,
    request: TransactionRequest,
    overrides: Option<StateOverride>,
) -> Result<u64, RpcError> {
    let explicit = request.gas;
    let prepared = prepare(spec, head, state, request, overrides, TX_GAS_LIMIT_CAP)?;
    let mut hi = explicit
        .unwrap_or(prepared.tx.gas_limit)
        .min(TX_GAS_LIMIT_CAP)
        .min(head.gas_limit);
    if prepared.priced && prepared.tx.gas_price > 0 {
        let balance = revm::DatabaseRef::basic_ref(&prepared.db, prepared.tx.caller)
            .map_err(RpcError::internal)?
            .map(|a| a.balance)
            .unwrap_or_default();
        let allowance = balance.saturating_sub(prepared.tx.value)
            / alloy_primitives::U256::from(prepared.tx.gas_price);
        hi = hi.min(allowance.saturating_to());
    }
    let first = run(&prepared, hi)?;
    let used = match &first {
        ExecutionResult::Success { .. } => first.tx_gas_used(),
        ExecutionResult::Halt {
            reason: HaltReason::OutOfGas(_),
            ..
        } => {
            return Err(RpcError::Execution(format!(
                "gas required exceeds allowance ({hi})"
            )));
        }
        _ => return into_output(first).map(|_| hi),
    };
    if used == TRANSFER_GAS && prepared.tx.data.is_empty() {
        return Ok(TRANSFER_GAS);
    }
    let mut lo = used.saturating_sub(1);
    // Most transactions succeed with their used gas plus the 1/64 kept back by calls.
    let optimistic = (used + 2300) * 64 / 63;
    if optimistic < hi {
        if run(&prepared, optimistic)?.is_success() {
            hi = optimistic;
        } else {
            lo = optimistic;
        }
    }
    while hi - lo > 1 && (hi - lo) * 1000 / hi > 15 {
        let mid = lo + (hi - lo) / 2;
        if run(&prepared, mid)?.is_success() {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(hi)
}
