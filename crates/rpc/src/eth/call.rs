//! `eth_call`, `eth_estimateGas` and `eth_createAccessList`: run a request on a block's state
//! without committing.

use alloy_consensus::{Header, Sealed};
use alloy_eips::eip2930::{AccessList, AccessListItem, AccessListResult};
use alloy_evm::{Evm, EvmEnv, overrides::apply_state_overrides, rpc::TryIntoTxEnv};
use alloy_primitives::{Address, U256};
use alloy_primitives::{B256, Bytes};
use alloy_rpc_types_eth::{TransactionRequest, state::StateOverride};
use cobuild_chain::StateSnapshot;
use cobuild_primitives::{ChainSpec, eth_evm};
use revm::{
    context::TxEnv,
    context_interface::result::{ExecutionResult, HaltReason, ResultAndState},
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
    let tx = TxEnv {
        gas_limit,
        ..p.tx.clone()
    };
    Ok(run_tx(p, tx)?.result)
}

fn run_tx(p: &Prepared, tx: TxEnv) -> Result<ResultAndState<HaltReason>, RpcError> {
    let mut evm = eth_evm(p.db.clone(), p.env.clone());
    match evm.transact(tx) {
        Ok(result) => Ok(result),
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

/// The access list `request` would use, and the gas it then uses, as geth answers
/// `eth_createAccessList`: every account and slot the execution loaded, but the sender, the
/// recipient, the fee recipient (all warm already) and precompiles. Run again with the list
/// until it stops growing, since an access list can change the path execution takes.
pub(super) fn create_access_list(
    spec: &ChainSpec,
    head: &Sealed<Header>,
    state: StateSnapshot,
    request: TransactionRequest,
    overrides: Option<StateOverride>,
) -> Result<AccessListResult, RpcError> {
    let prepared = prepare(spec, head, state, request, overrides, TX_GAS_LIMIT_CAP)?;
    let warm: [Address; 2] = [prepared.tx.caller, prepared.env.block_env.beneficiary];
    let precompiles = revm::precompile::Precompiles::new(
        revm::precompile::PrecompileSpecId::from_spec_id(prepared.env.cfg_env.spec),
    );
    let to = prepared.tx.kind.to().copied();
    let mut list = prepared.tx.access_list.clone();
    // An access list only ever adds what execution reaches: a few rounds settle it.
    for _ in 0..8 {
        let tx = TxEnv {
            access_list: list.clone(),
            // An access list needs a typed transaction (EIP-2930 keeps a legacy one's fees).
            tx_type: prepared.tx.tx_type.max(1),
            ..prepared.tx.clone()
        };
        let outcome = run_tx(&prepared, tx)?;
        let mut items: Vec<AccessListItem> = outcome
            .state
            .iter()
            .filter(|(address, _)| {
                !warm.contains(address) && Some(**address) != to && !precompiles.contains(address)
            })
            .map(|(address, account)| {
                let mut storage_keys: Vec<_> = account
                    .storage
                    .keys()
                    .map(|slot| B256::from(*slot))
                    .collect();
                storage_keys.sort_unstable();
                AccessListItem {
                    address: *address,
                    storage_keys,
                }
            })
            .collect();
        items.sort_unstable_by_key(|item| item.address);
        let found = AccessList(items);
        if found == list {
            let error = match &outcome.result {
                ExecutionResult::Success { .. } => None,
                ExecutionResult::Revert { output, .. } => {
                    Some(alloy_sol_types::decode_revert_reason(output).map_or_else(
                        || "execution reverted".into(),
                        |r| format!("execution reverted: {r}"),
                    ))
                }
                ExecutionResult::Halt { reason, .. } => Some(halt_message(reason.clone())),
            };
            return Ok(AccessListResult {
                access_list: found,
                gas_used: U256::from(outcome.result.tx_gas_used()),
                error,
            });
        }
        list = found;
    }
    Err(RpcError::Execution(
        "the access list did not settle: execution reaches other state with every list".into(),
    ))
}
