//! Building on an execution client's state (real-chain mode) beside the embedded chain: the
//! baseline's anvil, once the workload's setup blocks are mined on it, read over JSON-RPC as a
//! [`StateSource`](cobuild_chain::StateSource).
//!
//! One pass per step, each timed with the client's round trips, because a slot fills caches
//! once (repeating a step would measure the caches): what the orders touch, each run alone by
//! the client (`eth_createAccessList` batches), then read ahead (batches of proofs and values,
//! and one of new code); every order simulated (on more threads than cores: the reads wait on
//! the client, not the CPU); the greedy block built and sealed from proofs; then the same block
//! sealed again on a fresh snapshot of the same block, where every proof is fetched (the first
//! candidate of a slot), its transactions re-executed untimed first.
//! Relay submission is not part of it (the bench has no relay).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use alloy_primitives::{Address, U256};
use cobuild_chain::StateSnapshot;
use cobuild_el::ElClient;
use cobuild_sim::Simulator;
use serde::Serialize;

use super::measure::{Algo, build_block, prepare_seal, seal_block};
use crate::{BenchError, Workload};

/// Simulation threads on the execution client's state: its reads wait on the network, not the
/// CPU, so more threads than cores overlap their round trips.
const EL_SIM_THREADS: usize = 8;

/// One step on the execution client's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ElStep {
    /// How long it took.
    #[serde(rename = "ms", serialize_with = "super::report::ms")]
    pub time: Duration,
    /// JSON-RPC round trips to the client (a batch counts once).
    pub round_trips: u64,
}

/// The slot's steps on the execution client's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ElFigure {
    /// Accounts read ahead: what the orders touch, each run alone by the client
    /// (`eth_createAccessList`), with their senders and recipients and the coinbase.
    pub accounts: usize,
    /// Storage slots read ahead, the same way.
    pub slots: usize,
    /// Listing what the orders touch: each run alone by the client.
    pub list: ElStep,
    /// Reading it ahead: a proof per account, a value per slot, the new code.
    pub fetch: ElStep,
    /// Simulating every order.
    pub sim: ElStep,
    /// On how many threads.
    pub sim_threads: usize,
    /// Orders simulation kept.
    pub valid: usize,
    /// Building and sealing the greedy block (proofs of what it changed fetched as it seals).
    pub build: ElStep,
    /// Sealing the same block on a fresh snapshot: every proof fetched.
    pub seal: ElStep,
    /// Transactions in the block.
    pub txs: usize,
    /// The block's bid.
    pub value: U256,
}

/// Times `run`, the step `name`, and counts its round trips; its error names it.
fn step<T>(
    name: &'static str,
    client: &ElClient,
    run: impl FnOnce() -> Result<T, BenchError>,
) -> Result<(T, ElStep), BenchError> {
    let trips = client.round_trips();
    let start = Instant::now();
    let out = run().map_err(|source| BenchError::ElStep {
        step: name,
        source: Box::new(source),
    })?;
    Ok((
        out,
        ElStep {
            time: start.elapsed(),
            round_trips: client.round_trips() - trips,
        },
    ))
}

fn el_error(e: cobuild_el::ElError) -> BenchError {
    BenchError::El(e.to_string())
}

/// Measures the steps on the client at `url`, whose head holds the workload's setup state.
/// Reads wait on the client's own runtime, so this runs on a thread outside any async runtime.
pub(crate) fn measure(url: &str, workload: &Workload) -> Result<ElFigure, BenchError> {
    let client = ElClient::connect(url).map_err(el_error)?;
    let head = client.head().map_err(el_error)?;
    let parent = Arc::new(client.header(head.hash).map_err(el_error)?);
    let source = Arc::new(client.state_at(head.hash, head.number));
    let mut ctx = workload.context()?;
    ctx.attrs.timestamp = parent.timestamp + 12;
    ctx.attrs.gas_limit = parent.gas_limit;
    ctx.parent = parent;
    ctx.state = StateSnapshot::from_source(source.clone(), head.number);

    // What the orders touch, each run alone by the client, then all of it read in one go.
    let txs = workload
        .txs
        .iter()
        .map(|tx| &tx.tx)
        .chain(workload.bundles.iter().flat_map(|b| &b.bundle.txs));
    // Two steps, as the client's costs differ: an access list executes its transaction, a read
    // (a proof, for an account) walks the client's trie.
    let (touched, list) = step("listing what the orders touch", &client, || {
        source.touched_by(txs).map_err(el_error)
    })?;
    let accounts: Vec<Address> = touched
        .accounts
        .into_iter()
        .chain([ctx.attrs.fee_recipient])
        .collect();
    let slots: Vec<(Address, U256)> = touched.slots.into_iter().collect();
    let ((), fetch) = step("reading ahead what the orders touch", &client, || {
        ctx.state
            .prefetch(&accounts, &slots)
            .map_err(|e| BenchError::El(e.to_string()))
    })?;
    let (accounts, slots) = (accounts.len(), slots.len());
    let mut simulator =
        Simulator::new(EL_SIM_THREADS).map_err(|e| BenchError::Threads(e.to_string()))?;
    let (round, sim) = step("simulating", &client, || {
        Ok(simulator.simulate(
            ctx.parent.hash(),
            &ctx.state,
            &ctx.evm_env(),
            &workload.txs,
            &workload.bundles,
        )?)
    })?;
    let (built, build) = step("building and sealing", &client, || {
        build_block(&ctx, &round.orders, Algo::Greedy)
    })?;

    // The same block on a fresh snapshot (nothing read or proved yet): re-executed untimed,
    // then sealed, fetching every proof.
    let fresh = ElClient::connect(url).map_err(el_error)?;
    let mut cold = ctx.clone();
    cold.state = StateSnapshot::from_source(
        Arc::new(fresh.state_at(head.hash, head.number)),
        head.number,
    );
    let prepared = prepare_seal(&cold, &built)?;
    let (sealed, seal) = step("sealing on a fresh snapshot", &fresh, || {
        Ok(seal_block(prepared)?.0)
    })?;
    if sealed.block.hash != built.block.block.hash {
        return Err(BenchError::Replay(format!(
            "the greedy block sealed again on a fresh snapshot gave {}, not {}",
            sealed.block.hash, built.block.block.hash
        )));
    }
    Ok(ElFigure {
        accounts,
        slots,
        list,
        fetch,
        sim,
        sim_threads: EL_SIM_THREADS,
        valid: round.orders.len(),
        build,
        seal,
        txs: built.block.block.block.body.transactions.len(),
        value: built.value,
    })
}
