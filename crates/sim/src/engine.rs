//! The simulator: every pending order on the head state, in parallel on its own thread pool,
//! with results kept until the head moves.
//!
//! Transactions of one sender run as a chain in nonce order on one scratch state, so a later
//! nonce sees its predecessors; chains and bundles are independent of each other and run in
//! parallel. Results are cached per parent: a chain is re-run only when its transactions
//! change, a bundle never (it is immutable; a replacement has another hash). A chain that only
//! grew (new nonces after the ones simulated) runs just the new transactions, on the scratch
//! state its earlier ones left, so a sender streaming transactions through a slot costs each
//! of them once, not once per round.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use alloy_consensus::Transaction as _;
use alloy_evm::EvmEnv;
use alloy_primitives::{Address, B256};
use cobuild_pool::{PooledBundle, PooledTx};
use rayon::prelude::*;
use revm::{
    DatabaseRef,
    database::{CacheDB, in_memory_db::Cache},
};

use crate::{Order, SimError, SimOutcome, simulate_order};

/// An order with what it did when simulated alone on the head state (after its sender's
/// earlier pending nonces, for a transaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatedOrder {
    /// The order.
    pub order: Order,
    /// What it did.
    pub outcome: SimOutcome,
}

/// What one simulation round produced.
#[derive(Debug, Default)]
pub struct SimRound {
    /// Orders that can run, in a deterministic order (by id).
    pub orders: Vec<Arc<SimulatedOrder>>,
    /// Orders (transactions and bundles) run in this round; the rest came from the cache.
    pub simulated: usize,
    /// Orders that cannot run on this head.
    pub rejected: usize,
}

enum Job {
    Chain {
        sender: Address,
        chain: Vec<Arc<PooledTx>>,
        /// The result for the first transactions of `chain`, simulated before: only the rest
        /// runs, on the state they left.
        prefix: Option<Box<ChainResult>>,
    },
    Bundle(Arc<PooledBundle>),
}

/// A sender's chain as simulated: its hashes in nonce order, the orders that can run, how many
/// cannot, and the scratch state after the last one that ran.
#[derive(Debug)]
struct ChainResult {
    hashes: Vec<B256>,
    orders: Vec<Arc<SimulatedOrder>>,
    rejected: usize,
    end: Cache,
}

impl ChainResult {
    /// Whether `hashes` only adds transactions after this chain's, all of which ran: then the
    /// new ones can run on `end`.
    fn extends_to(&self, hashes: &[B256]) -> bool {
        self.rejected == 0 && hashes.len() > self.hashes.len() && hashes.starts_with(&self.hashes)
    }
}

/// Simulates orders on a head state, remembering results for that head.
#[derive(Debug)]
pub struct Simulator {
    threads: Option<rayon::ThreadPool>,
    parent: B256,
    chains: HashMap<Address, ChainResult>,
    bundles: HashMap<B256, Option<Arc<SimulatedOrder>>>,
}

impl Simulator {
    /// A simulator running on `threads` worker threads (0: on the caller's thread, which keeps
    /// tests deterministic and single-threaded).
    ///
    /// # Errors
    /// When the thread pool cannot be created.
    pub fn new(threads: usize) -> Result<Self, rayon::ThreadPoolBuildError> {
        let threads = if threads == 0 {
            None
        } else {
            Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|i| format!("cobuild-sim-{i}"))
                    .build()?,
            )
        };
        Ok(Self {
            threads,
            parent: B256::ZERO,
            chains: HashMap::new(),
            bundles: HashMap::new(),
        })
    }

    /// Simulates `txs` and `bundles` on `state`, the post-state of block `parent`, in `env` (the
    /// next block's, with the builder's coinbase). Orders simulated on the same parent before
    /// are not run again. CPU-bound: call it off the async runtime.
    pub fn simulate<DB>(
        &mut self,
        parent: B256,
        state: &DB,
        env: &EvmEnv,
        txs: &[Arc<PooledTx>],
        bundles: &[Arc<PooledBundle>],
    ) -> Result<SimRound, SimError>
    where
        DB: DatabaseRef + std::fmt::Debug + Sync,
        DB::Error: std::error::Error + Send + Sync + 'static,
    {
        if parent != self.parent {
            self.parent = parent;
            self.chains.clear();
            self.bundles.clear();
        }
        let mut by_sender: BTreeMap<Address, Vec<Arc<PooledTx>>> = BTreeMap::new();
        for tx in txs {
            by_sender.entry(tx.sender()).or_default().push(tx.clone());
        }
        let mut jobs = Vec::new();
        let mut live_chains = HashMap::with_capacity(by_sender.len());
        for (sender, mut chain) in by_sender {
            chain.sort_by_key(|tx| tx.tx.nonce());
            let hashes: Vec<B256> = chain.iter().map(|tx| tx.hash).collect();
            let cached = self.chains.get(&sender);
            if cached.is_some_and(|c| c.hashes == hashes) {
                live_chains.insert(sender, hashes);
                continue;
            }
            let prefix = match cached {
                Some(c) if c.extends_to(&hashes) => self.chains.remove(&sender).map(Box::new),
                _ => None,
            };
            live_chains.insert(sender, hashes);
            jobs.push(Job::Chain {
                sender,
                chain,
                prefix,
            });
        }
        let mut live_bundles = Vec::with_capacity(bundles.len());
        for bundle in bundles {
            live_bundles.push(bundle.id);
            if !self.bundles.contains_key(&bundle.id) {
                jobs.push(Job::Bundle(bundle.clone()));
            }
        }
        let simulated = jobs
            .iter()
            .map(|job| match job {
                Job::Chain { chain, prefix, .. } => {
                    chain.len() - prefix.as_ref().map_or(0, |p| p.orders.len())
                }
                Job::Bundle(_) => 1,
            })
            .sum();
        let run = |job: Job| run_job(state, env, job);
        let results: Vec<Result<JobResult, SimError>> = match &self.threads {
            Some(pool) => pool.install(|| jobs.into_par_iter().map(run).collect()),
            None => jobs.into_iter().map(run).collect(),
        };
        for result in results {
            match result? {
                JobResult::Chain(sender, chain) => {
                    self.chains.insert(sender, chain);
                }
                JobResult::Bundle(hash, order) => {
                    self.bundles.insert(hash, order);
                }
            }
        }
        // Forget what left the pools, so the cache never outgrows them.
        self.chains
            .retain(|sender, _| live_chains.contains_key(sender));
        let live: std::collections::HashSet<B256> = live_bundles.iter().copied().collect();
        self.bundles.retain(|hash, _| live.contains(hash));

        let mut round = SimRound {
            simulated,
            ..SimRound::default()
        };
        for chain in self.chains.values() {
            round.orders.extend(chain.orders.iter().cloned());
            round.rejected += chain.rejected;
        }
        for order in self.bundles.values() {
            match order {
                Some(order) => round.orders.push(order.clone()),
                None => round.rejected += 1,
            }
        }
        round.orders.sort_by_key(|o| o.order.id());
        tracing::debug!(
            orders = round.orders.len(),
            simulated = round.simulated,
            rejected = round.rejected,
            "sim.round"
        );
        Ok(round)
    }
}

enum JobResult {
    Chain(Address, ChainResult),
    Bundle(B256, Option<Arc<SimulatedOrder>>),
}

fn run_job<DB>(state: &DB, env: &EvmEnv, job: Job) -> Result<JobResult, SimError>
where
    DB: DatabaseRef + std::fmt::Debug,
    DB::Error: std::error::Error + Send + Sync + 'static,
{
    match job {
        Job::Chain {
            sender,
            chain,
            prefix,
        } => {
            let hashes = chain.iter().map(|tx| tx.hash).collect();
            let (mut orders, cache) = match prefix {
                Some(prefix) => (prefix.orders, prefix.end),
                None => (Vec::with_capacity(chain.len()), CacheDB::new(state).cache),
            };
            let mut db = CacheDB { cache, db: state };
            for tx in &chain[orders.len()..] {
                let order = Order::Tx(tx.clone());
                match simulate_order(&mut db, env, &order)? {
                    Ok(outcome) => orders.push(Arc::new(SimulatedOrder { order, outcome })),
                    Err(reason) => {
                        // Later nonces depend on this one: none of them can run either.
                        tracing::trace!(hash = %tx.hash, %reason, "sim.tx.rejected");
                        break;
                    }
                }
            }
            let rejected = chain.len() - orders.len();
            let chain = ChainResult {
                hashes,
                orders,
                rejected,
                end: db.cache,
            };
            Ok(JobResult::Chain(sender, chain))
        }
        Job::Bundle(bundle) => {
            let order = Order::Bundle(bundle.clone());
            let result = match simulate_order(&mut CacheDB::new(state), env, &order)? {
                Ok(outcome) => Some(Arc::new(SimulatedOrder { order, outcome })),
                Err(reason) => {
                    tracing::trace!(id = %bundle.id, hash = %bundle.bundle.hash, %reason, "sim.bundle.rejected");
                    None
                }
            };
            Ok(JobResult::Bundle(bundle.id, result))
        }
    }
}
