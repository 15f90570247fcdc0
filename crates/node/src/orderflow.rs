//! A node's order intake: the pools (transactions and bundles under one order bound) and the
//! JSON-RPC server that fills them, built in one place for every kind of node.
//!
//! ```text
//!  senders ──HTTP──▶ RPC (Eth: eth_sendRawTransaction, Bundles: eth_sendBundle, mev_*, ...)
//!                      │ accepted
//!                      ▼
//!               TxPool + BundlePool (OrderLimit: one bound, one change listener)
//!                      ▲
//!  new head ── Orderflow::on_head (drop what landed or expired)
//! ```
//! Both the single-process devnet and a member node get their pools here, so a hook that must
//! see every accepted order (replication to the other members) has one place to go.

use std::{net::SocketAddr, sync::Arc};

use alloy_primitives::B256;
use cobuild_chain::{Chain, HeadSource, StateSnapshot};
use cobuild_pool::{BundlePool, OrderLimit, PoolConfig, TxPool};
use cobuild_rpc::{Bundles, Eth, Intake, LogLimits, OrderflowLimits, Replicate, RpcConfig};

/// Settings of a node's order intake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderflowConfig {
    /// Address of the JSON-RPC server (port 0: any free port).
    pub http_addr: SocketAddr,
    /// Per-sender and per-IP budgets of the orderflow methods.
    pub limits: OrderflowLimits,
    /// Most orders (transactions plus bundles) the pools hold; when full, a more valuable order
    /// evicts the least valuable one.
    pub max_orders: usize,
    /// How many blocks past the head a bundle may reach (and a bundle for any block stay).
    pub bundle_horizon: u64,
    /// Bounds on one `eth_getLogs` query.
    pub log_limits: LogLimits,
    /// Blocks whose state queries at past blocks can read (`None`: every block).
    pub history_blocks: Option<u64>,
    /// How many blocks behind the head `eth_getProof` answers.
    pub proof_window: u64,
}

/// The RPC server could not start.
#[derive(Debug, thiserror::Error)]
#[error("rpc server on {addr}: {source}")]
pub struct RpcStartError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// Why it failed.
    #[source]
    pub source: std::io::Error,
}

/// A node's pools: transactions and bundles under one order bound. Cheap to clone; clones
/// share them.
#[derive(Debug, Clone)]
pub struct Pools {
    /// The bound both pools share; its change listener wakes the builder.
    pub limit: OrderLimit,
    /// Pending transactions (public and private).
    pub pool: TxPool,
    /// Pending bundles.
    pub bundles: BundlePool,
}

impl Pools {
    /// Empty pools over `chain`'s head, holding at most `max_orders` orders together and
    /// bundles up to `bundle_horizon` blocks past the head.
    pub fn new(chain: &(impl HeadSource + Clone), max_orders: usize, bundle_horizon: u64) -> Self {
        let limit = OrderLimit::new(max_orders);
        Self {
            pool: TxPool::with_limit(chain.clone(), PoolConfig::default(), &limit),
            bundles: BundlePool::with_limit(&limit).with_horizon(bundle_horizon),
            limit,
        }
    }

    /// The replicated-order intake into these pools (orders other members accepted, and this
    /// node's own log on restart).
    pub fn intake(&self, chain: &Chain) -> Intake {
        Intake::new(chain.clone(), self.pool.clone(), self.bundles.clone())
    }
}

/// A node's pools and the RPC server over them. Cheap to clone; clones share both.
#[derive(Debug, Clone)]
pub struct Orderflow {
    /// The bound both pools share; its change listener wakes the builder.
    pub limit: OrderLimit,
    /// Pending transactions (public and private).
    pub pool: TxPool,
    /// Pending bundles.
    pub bundles: BundlePool,
    /// Where the JSON-RPC server listens (the real port when 0 was asked for).
    pub rpc_addr: SocketAddr,
    rpc: jsonrpsee::server::ServerHandle,
}

impl Orderflow {
    /// Creates the pools over `chain` and starts the RPC server on them.
    pub async fn start(chain: &Chain, config: &OrderflowConfig) -> Result<Self, RpcStartError> {
        Self::serve(
            Pools::new(chain, config.max_orders, config.bundle_horizon),
            chain,
            config,
            None,
            None,
        )
        .await
    }

    /// Starts the RPC server on `pools`, with every accepted order made durable and sent to
    /// the members through `replication` before it reaches the pools and its sender an answer.
    pub async fn serve(
        pools: Pools,
        chain: &Chain,
        config: &OrderflowConfig,
        replication: Option<Arc<dyn Replicate>>,
        ledger: Option<(Arc<cobuild_consensus::Store>, Arc<cobuild_refunds::Book>)>,
    ) -> Result<Self, RpcStartError> {
        chain.keep_history(config.history_blocks);
        let eth = Eth::new(chain.clone(), pools.pool.clone())
            .with_log_limits(config.log_limits)
            .with_proof_window(config.proof_window);
        Self::serve_on(pools, chain.clone(), Some(eth), config, replication, ledger).await
    }

    /// Starts the RPC server's orderflow methods on `pools`, validating against `head` (an
    /// execution client's, which serves the eth namespace itself).
    pub async fn serve_orders(
        pools: Pools,
        head: impl HeadSource,
        config: &OrderflowConfig,
    ) -> Result<Self, RpcStartError> {
        Self::serve_on(pools, head, None, config, None, None).await
    }

    async fn serve_on(
        pools: Pools,
        head: impl HeadSource,
        mut eth: Option<Eth>,
        config: &OrderflowConfig,
        replication: Option<Arc<dyn Replicate>>,
        ledger: Option<(Arc<cobuild_consensus::Store>, Arc<cobuild_refunds::Book>)>,
    ) -> Result<Self, RpcStartError> {
        let Pools {
            limit,
            pool,
            bundles,
        } = pools;
        let mut api = Bundles::new(head, pool.clone(), bundles.clone(), config.limits);
        if let Some(hook) = replication {
            eth = eth.map(|eth| eth.with_replication(hook.clone()));
            api = api.with_replication(hook);
        }
        let mut extra = jsonrpsee::Methods::new();
        if let Some((store, book)) = ledger {
            let merge = |extra: &mut jsonrpsee::Methods, methods: jsonrpsee::Methods| {
                extra.merge(methods).map_err(|e| RpcStartError {
                    addr: config.http_addr,
                    source: std::io::Error::other(e),
                })
            };
            merge(
                &mut extra,
                cobuild_rpc::LedgerApiServer::into_rpc(cobuild_rpc::Ledger::new(store)).into(),
            )?;
            let refunds = cobuild_rpc::Refunds::new(book);
            merge(
                &mut extra,
                cobuild_rpc::RefundsApiServer::into_rpc(refunds.clone()).into(),
            )?;
            merge(
                &mut extra,
                cobuild_rpc::RefundDebtsApiServer::into_rpc(refunds).into(),
            )?;
        }
        let server = cobuild_rpc::start_with(RpcConfig::new(config.http_addr), eth, api, extra)
            .await
            .map_err(|source| RpcStartError {
                addr: config.http_addr,
                source,
            })?;
        Ok(Self {
            limit,
            pool,
            bundles,
            rpc_addr: server.local_addr,
            rpc: server.handle,
        })
    }

    /// The pools follow a new head `number` with post-state `state`: transactions that landed
    /// or became invalid leave, bundles for past blocks expire, and `landed` (this node's
    /// bundles the block carries, by pool id, when its bid won) go at once, since they cannot
    /// run again.
    pub fn on_head(&self, state: &StateSnapshot, number: u64, landed: &[B256]) {
        for id in landed {
            self.bundles.remove(id);
        }
        self.pool.on_block(state);
        self.bundles.on_block(number);
    }

    /// Stops the RPC server and waits until it stopped.
    pub async fn stop(&self) {
        let _ = self.rpc.stop();
        self.rpc.clone().stopped().await;
    }
}
