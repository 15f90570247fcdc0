//! [`Workload::generate`]: the plan, the setup chain and the signed pool, in that order.

use std::{collections::HashMap, sync::Arc};

use alloy_consensus::{TxEnvelope, transaction::Recovered};
use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use cobuild_builder::{BuildContext, Payout};
use cobuild_chain::Chain;
use cobuild_contracts::DemoDeployment;
use cobuild_pool::{PooledBundle, PooledTx};

use super::{
    Mix, OrderKind, WorkloadConfig, WorkloadError,
    orders::{self, Market, Plan},
    setup::{self, coinbase_key},
};
use crate::Rng;

/// The proposer's fee recipient in every workload: the built blocks' last transaction pays it.
pub const PROPOSER: Address = Address::repeat_byte(0xfe);

/// A chain after its setup blocks and a pending pool on its head.
#[derive(Debug)]
pub struct Workload {
    /// What was asked for.
    pub config: WorkloadConfig,
    /// The chain, its head the last setup block.
    pub chain: Chain,
    /// The demo tokens and pool.
    pub demo: DemoDeployment,
    /// Accounts funded at genesis besides the development accounts, with their balances (a
    /// baseline sets these before replaying the setup blocks).
    pub funded: Vec<(Address, U256)>,
    /// The setup blocks' transactions, block by block.
    pub setup_blocks: Vec<Vec<Recovered<TxEnvelope>>>,
    /// Pending transactions.
    pub txs: Vec<Arc<PooledTx>>,
    /// Pending bundles.
    pub bundles: Vec<Arc<PooledBundle>>,
    /// Every pending transaction in one canonical order (pool order, bundles flattened in
    /// place), EIP-2718 encoded: what a baseline without bundles receives.
    pub canonical: Vec<Bytes>,
    /// How many orders of each kind.
    pub mix: Mix,
    kinds: Vec<(B256, OrderKind)>,
    by_id: HashMap<B256, OrderKind>,
    _dir: tempfile::TempDir,
}

impl Workload {
    /// Builds the chain and the pool for `config`. Deterministic: the same configuration gives
    /// the same transactions, bundles and setup blocks.
    pub fn generate(config: WorkloadConfig) -> Result<Self, WorkloadError> {
        let mut rng = Rng::new(config.seed);
        let plan = Plan::draw(&config, &mut rng);
        let dir = tempfile::Builder::new().prefix("cobuild-bench").tempdir()?;
        let setup = setup::setup(dir.path(), config.gas_limit, &plan.grants())?;
        let market = Market {
            token_a: setup.demo.token_a,
            token_b: setup.demo.token_b,
            pool: setup.demo.pool,
            reserves: setup.reserves,
            block_number: setup.chain.head().number + 1,
        };
        let orders = orders::generate(&plan, &market, &mut rng)?;
        let by_id = orders.kinds.iter().copied().collect();
        Ok(Self {
            config,
            chain: setup.chain,
            demo: setup.demo,
            funded: setup.funded,
            setup_blocks: setup.blocks,
            txs: orders.txs,
            bundles: orders.bundles,
            canonical: orders.canonical,
            mix: plan.mix,
            kinds: orders.kinds,
            by_id,
            _dir: dir,
        })
    }

    /// The context of the block after the head: the workload's coinbase (which the bundles
    /// pay), the [`PROPOSER`] paid 100 % of the profit.
    pub fn context(&self) -> Result<BuildContext, WorkloadError> {
        let coinbase = coinbase_key();
        let (parent, state) = self.chain.head_state()?;
        Ok(BuildContext {
            spec: self.chain.spec().clone(),
            parent,
            state,
            attrs: setup::next_attrs(&self.chain, coinbase.address()),
            payout: Payout {
                coinbase,
                proposer_fee_recipient: PROPOSER,
                bid_percent: 100,
            },
        })
    }

    /// Orders in the pool (a bundle counts once).
    pub fn orders(&self) -> usize {
        self.kinds.len()
    }

    /// Every order's id (transaction hash or bundle pool id) with its kind, in pool order.
    pub fn order_kinds(&self) -> &[(B256, OrderKind)] {
        &self.kinds
    }

    /// The kind of the order with this id.
    pub fn kind(&self, id: &B256) -> Option<OrderKind> {
        self.by_id.get(id).copied()
    }

    /// A digest of the whole pool (every order id in pool order), to compare runs.
    pub fn fingerprint(&self) -> B256 {
        let mut bytes = Vec::with_capacity(self.kinds.len() * 32);
        for (id, _) in &self.kinds {
            bytes.extend_from_slice(id.as_slice());
        }
        keccak256(bytes)
    }
}
