//! The orderflow methods: Flashbots bundles and private transactions (`eth_` namespace) and
//! MEV-Share bundles (`mev_` namespace). They need a sender proven by `X-Flashbots-Signature`,
//! and every call spends from its peer IP's and its sender's request budgets.
//!
//! An order is checked and reserved in its pool, made durable through the replication hook,
//! and only then offered to the builders and acknowledged (see [`crate::replicate`]); a cancel
//! is made durable first and applied after. Each call of a batch is acknowledged, and
//! replicated, on its own; their writes overlap (see [`crate::middleware::batch`]).

mod budget;
mod call;
mod limit;
mod refund_recipient;
mod sim;

pub use call::{CallBundleResponse, CallBundleTxResult};
pub use limit::{IpLimiter, RateLimiter, SenderLimiter};
pub use refund_recipient::{FeeRefundRecipient, RefundRecipientApiServer, delegation};

use budget::SimBudget;

use std::sync::Arc;

use alloy_primitives::{Address, B256};
use alloy_rpc_types_mev::{
    EthBundleHash, EthCallBundle, EthCancelBundle, EthCancelPrivateTransaction, EthSendBundle,
    SimBundleOverrides, SimBundleResponse,
};
use cobuild_chain::HeadSource;
use cobuild_pool::{BundlePool, PrivateTx, Reservation, TxPool};
use cobuild_primitives::{
    Bundle, BundleRequest, OrderError, OrderKind, Replacement, parse_mev_bundle,
    parse_private_transaction, referenced_transactions,
};
use jsonrpsee::{Extensions, core::RpcResult, proc_macros::rpc};

use crate::{
    RpcError,
    auth::AuthError,
    eth::decode_raw_transaction,
    middleware::{PeerAddr, Signed, batch::Admission},
    replicate::{Hook, Replicate, acknowledge, durable_then, signed_order},
};

/// Transactions a bundle may hold to be checked on the async worker that received it (one
/// signature recovery each, ~30 µs).
const INLINE_BUNDLE_TXS: usize = 1;

/// How many blocks a private transaction without `maxBlockNumber` is kept for (Flashbots' 25).
pub const DEFAULT_PRIVATE_TX_BLOCKS: u64 = 25;

/// Bundle and private-transaction methods of the Flashbots API, beside the eth namespace on the
/// same URL.
#[rpc(server, namespace = "eth")]
pub trait BundleApi {
    /// Submits a bundle (or, with no transactions and a uuid, cancels one).
    #[method(name = "sendBundle", with_extensions)]
    async fn send_bundle(&self, request: EthSendBundle) -> RpcResult<Option<EthBundleHash>>;

    /// Cancels the sender's bundle with this replacement uuid, now or when it arrives.
    #[method(name = "cancelBundle", with_extensions)]
    async fn cancel_bundle(&self, request: EthCancelBundle) -> RpcResult<Option<()>>;

    /// Simulates a bundle on the head state as the next block would run it.
    #[method(name = "callBundle", with_extensions)]
    async fn call_bundle(&self, request: EthCallBundle) -> RpcResult<CallBundleResponse>;

    /// Submits a transaction that only the members' builders see, until `maxBlockNumber`
    /// (default: the head + 25). Returns its hash. Takes every MEV-Share privacy hint.
    #[method(name = "sendPrivateTransaction", with_extensions)]
    async fn send_private_transaction(&self, request: serde_json::Value) -> RpcResult<B256>;

    /// Removes the sender's own pending private transaction. `true` if it did.
    #[method(name = "cancelPrivateTransaction", with_extensions)]
    async fn cancel_private_transaction(
        &self,
        request: EthCancelPrivateTransaction,
    ) -> RpcResult<bool>;
}

/// The MEV-Share bundle methods (v0.1).
#[rpc(server, namespace = "mev")]
pub trait MevApi {
    /// Submits a MEV-Share bundle (`{version, inclusion, body, validity?, privacy?}`).
    #[method(name = "sendBundle", with_extensions)]
    async fn send_mev_bundle(&self, request: serde_json::Value) -> RpcResult<EthBundleHash>;

    /// Simulates a MEV-Share bundle on the head state.
    #[method(name = "simBundle", with_extensions)]
    async fn sim_mev_bundle(
        &self,
        request: serde_json::Value,
        overrides: Option<SimBundleOverrides>,
    ) -> RpcResult<SimBundleResponse>;
}

/// Request budgets of the orderflow methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderflowLimits {
    /// Calls per second one signing sender may make on average.
    pub sender_rate: u32,
    /// Calls one signing sender may make in a burst.
    pub sender_burst: u32,
    /// Calls per second one peer IP may make on average, whoever signs them.
    pub ip_rate: u32,
    /// Calls one peer IP may make in a burst.
    pub ip_burst: u32,
    /// Gas per second one sender may have simulated (`eth_callBundle`, `mev_simBundle`) on
    /// average; each call is charged the gas its transactions declare.
    pub sim_gas_rate: u32,
    /// Gas one sender may have simulated in a burst (at least a block's worth).
    pub sim_gas_burst: u32,
}

impl Default for OrderflowLimits {
    fn default() -> Self {
        Self {
            sender_rate: 1_000,
            sender_burst: 2_000,
            ip_rate: 5_000,
            ip_burst: 10_000,
            // Ten full 30M-gas blocks a second, twenty in a burst: far more than a searcher
            // simulating its own bundles needs, a bounded share of a core each.
            sim_gas_rate: 300_000_000,
            sim_gas_burst: 600_000_000,
        }
    }
}

/// The orderflow API over a chain and its pools. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Bundles {
    chain: Arc<dyn HeadSource>,
    txs: TxPool,
    pool: BundlePool,
    senders: Arc<SenderLimiter>,
    ips: Arc<IpLimiter>,
    sim: Arc<SimBudget>,
    replication: Hook,
}

impl Bundles {
    /// Serves the orderflow methods against `chain`, keeping private transactions in `txs` and
    /// bundles in `pool`, within `limits`.
    pub fn new(
        chain: impl HeadSource,
        txs: TxPool,
        pool: BundlePool,
        limits: OrderflowLimits,
    ) -> Self {
        Self {
            chain: Arc::new(chain),
            txs,
            pool,
            senders: Arc::new(RateLimiter::new(limits.sender_rate, limits.sender_burst)),
            ips: Arc::new(RateLimiter::new(limits.ip_rate, limits.ip_burst)),
            sim: Arc::new(SimBudget::new(
                limits.sim_gas_rate,
                limits.sim_gas_burst,
                std::thread::available_parallelism().map_or(2, usize::from),
            )),
            replication: None,
        }
    }

    /// Makes every accepted order (and cancellation) durable through `hook` before it takes
    /// effect and the sender hears back.
    #[must_use]
    pub fn with_replication(mut self, hook: Arc<dyn Replicate>) -> Self {
        self.replication = Some(hook);
        self
    }

    /// What an `eth_sendBundle` call asks for. Decoding and signature recovery are CPU work:
    /// a bundle of one transaction costs one recovery, as the request's own signature check
    /// does, and is checked where it is (handing it to the blocking pool and back costs more
    /// than the recovery); larger ones go off the async workers.
    pub(crate) async fn parse_bundle(request: EthSendBundle) -> Result<BundleRequest, RpcError> {
        if request.txs.len() <= INLINE_BUNDLE_TXS {
            return BundleRequest::from_rpc(request).map_err(invalid);
        }
        tokio::task::spawn_blocking(move || BundleRequest::from_rpc(request))
            .await
            .map_err(RpcError::internal)?
            .map_err(invalid)
    }

    /// Reserves `from`'s bundle in the pool; its Flashbots hash is the answer.
    pub(crate) fn reserve_bundle(
        &self,
        from: Address,
        bundle: Bundle,
    ) -> Result<(B256, Reservation), RpcError> {
        let hash = bundle.hash;
        let reservation = self.pool.reserve(from, bundle).map_err(RpcError::from)?;
        tracing::debug!(%from, %hash, id = %reservation.id(), "rpc.bundle.send");
        Ok((hash, reservation))
    }

    /// Cancels `from`'s bundles with this replacement key.
    pub(crate) fn cancel_bundle_as(&self, from: Address, replacement: Replacement) {
        tracing::debug!(%from, uuid = %replacement.uuid, "rpc.bundle.cancel");
        self.pool.cancel(from, replacement);
    }

    /// Checks `owner`'s private transaction off the async workers and reserves it in the pool.
    pub(crate) async fn reserve_private(
        &self,
        owner: Address,
        request: serde_json::Value,
    ) -> Result<(B256, Reservation), RpcError> {
        let (chain, txs) = (self.chain.clone(), self.txs.clone());
        // Decoding, signature recovery and the state read are blocking work.
        tokio::task::spawn_blocking(move || {
            let (request, hints) = parse_private_transaction(request).map_err(invalid)?;
            let tx = decode_raw_transaction(&request.tx)?;
            let head = chain.head().number;
            let max_block = request
                .max_block_number
                .unwrap_or(head + DEFAULT_PRIVATE_TX_BLOCKS);
            if max_block <= head {
                return Err(RpcError::InvalidParams(format!(
                    "maxBlockNumber {max_block} is not after the head {head}"
                )));
            }
            let private = PrivateTx {
                owner,
                max_block,
                hash_shared: hints.has_hash(),
            };
            let reservation = txs.reserve(tx, Some(private))?;
            tracing::debug!(%owner, hash = %reservation.id(), max_block, "rpc.private.send");
            Ok((reservation.id(), reservation))
        })
        .await
        .map_err(RpcError::internal)?
    }

    /// Removes `owner`'s own pending private transaction; whether it did.
    pub(crate) fn cancel_private_as(&self, owner: Address, hash: &B256) -> bool {
        let cancelled = self.txs.cancel_private(owner, hash);
        tracing::debug!(%owner, %hash, cancelled, "rpc.private.cancel");
        cancelled
    }

    /// Checks `from`'s MEV-Share bundle and reserves it in the pool; its hash is the answer.
    pub(crate) async fn reserve_mev_bundle(
        &self,
        from: Address,
        request: serde_json::Value,
    ) -> Result<(B256, Reservation), RpcError> {
        let (_, bundle) = self.mev_bundle(from, request).await?;
        let hash = bundle.hash;
        let reservation = self.pool.reserve(from, bundle).map_err(RpcError::from)?;
        tracing::debug!(%from, %hash, id = %reservation.id(), "rpc.mev.send_bundle");
        Ok((hash, reservation))
    }

    /// Applies a cancel once it is durable, on a task the caller cannot cancel midway.
    async fn cancel_durably(
        &self,
        ext: &Extensions,
        from: Address,
        replacement: Replacement,
    ) -> Result<(), RpcError> {
        let order = || signed_order(ext, OrderKind::CancelBundle);
        let this = self.clone();
        durable_then(&self.replication, ext, order, move |written| {
            if written.is_ok() {
                this.cancel_bundle_as(from, replacement);
            }
        })
        .await
    }

    /// The sender the request proved, within its peer IP's and its own request budgets (spent
    /// once by a batch call that runs again).
    ///
    /// The IP budget is spent first, so unsigned or forged requests spend it too.
    fn admit(&self, ext: &Extensions) -> Result<Address, RpcError> {
        Admission::admit(
            ext,
            || match ext.get::<PeerAddr>() {
                Some(PeerAddr(peer)) => self.ips.check(peer.ip()),
                None => Ok(()),
            },
            || {
                let from = sender(ext)?;
                self.senders.check(from)?;
                Ok(from)
            },
        )
    }

    /// Checks a MEV-Share bundle off the async workers, resolving `{hash}` items against the
    /// transactions `from` may see.
    pub(crate) async fn mev_bundle(
        &self,
        from: Address,
        request: serde_json::Value,
    ) -> Result<(alloy_rpc_types_mev::MevSendBundle, Bundle), RpcError> {
        let txs = self.txs.clone();
        tokio::task::spawn_blocking(move || {
            let request = parse_mev_bundle(request).map_err(invalid)?;
            let bundle = Bundle::from_mev_share(&request, |hash| {
                txs.visible(&hash, Some(from)).map(|p| p.tx.clone())
            })
            .map_err(invalid)?;
            Ok((request, bundle))
        })
        .await
        .map_err(RpcError::internal)?
    }
}

fn invalid(e: OrderError) -> RpcError {
    RpcError::InvalidParams(e.to_string())
}

/// The sender the request proved, or the error a client should see.
fn sender(ext: &Extensions) -> Result<Address, RpcError> {
    match ext.get::<Signed>() {
        Some(Signed(Ok(address))) => Ok(*address),
        Some(Signed(Err(reason))) => Err(RpcError::Unauthorized(reason.clone())),
        None => Err(RpcError::Unauthorized(AuthError::Missing)),
    }
}

#[jsonrpsee::core::async_trait]
impl BundleApiServer for Bundles {
    async fn send_bundle(
        &self,
        ext: &Extensions,
        request: EthSendBundle,
    ) -> RpcResult<Option<EthBundleHash>> {
        let from = self.admit(ext)?;
        match Self::parse_bundle(request).await? {
            BundleRequest::Send(bundle) => {
                let (hash, reservation) = self.reserve_bundle(from, bundle)?;
                let order = || signed_order(ext, OrderKind::SendBundle);
                acknowledge(&self.replication, ext, order, reservation).await?;
                Ok(Some(EthBundleHash { bundle_hash: hash }))
            }
            BundleRequest::Cancel(replacement) => {
                self.cancel_durably(ext, from, replacement).await?;
                Ok(None)
            }
        }
    }

    async fn cancel_bundle(
        &self,
        ext: &Extensions,
        request: EthCancelBundle,
    ) -> RpcResult<Option<()>> {
        let from = self.admit(ext)?;
        let replacement = Replacement {
            uuid: request.replacement_uuid,
            nonce: None,
        };
        self.cancel_durably(ext, from, replacement).await?;
        Ok(None)
    }

    async fn call_bundle(
        &self,
        ext: &Extensions,
        request: EthCallBundle,
    ) -> RpcResult<CallBundleResponse> {
        let from = self.admit(ext)?;
        let chain = self.chain.clone();
        tracing::debug!(%from, txs = request.txs.len(), "rpc.bundle.call");
        let slot = self.sim.slot(from).await?;
        let budget = self.sim.clone();
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let (head, state) = chain.head_state().map_err(RpcError::internal)?;
            call::call_bundle(chain.spec(), &head, state, request, &|gas| {
                budget.charge(from, gas)
            })
        })
        .await
        .map_err(RpcError::internal)?
        .map_err(Into::into)
    }

    async fn send_private_transaction(
        &self,
        ext: &Extensions,
        request: serde_json::Value,
    ) -> RpcResult<B256> {
        let owner = self.admit(ext)?;
        let (hash, reservation) = self.reserve_private(owner, request).await?;
        let order = || signed_order(ext, OrderKind::SendPrivateTransaction);
        acknowledge(&self.replication, ext, order, reservation).await?;
        Ok(hash)
    }

    async fn cancel_private_transaction(
        &self,
        ext: &Extensions,
        request: EthCancelPrivateTransaction,
    ) -> RpcResult<bool> {
        let owner = self.admit(ext)?;
        let order = || signed_order(ext, OrderKind::CancelPrivateTransaction);
        let this = self.clone();
        let cancelled = durable_then(&self.replication, ext, order, move |written| {
            written.is_ok() && this.cancel_private_as(owner, &request.tx_hash)
        })
        .await?;
        Ok(cancelled)
    }
}

#[jsonrpsee::core::async_trait]
impl MevApiServer for Bundles {
    async fn send_mev_bundle(
        &self,
        ext: &Extensions,
        request: serde_json::Value,
    ) -> RpcResult<EthBundleHash> {
        let from = self.admit(ext)?;
        let (hash, reservation) = self.reserve_mev_bundle(from, request).await?;
        let order = || signed_order(ext, OrderKind::MevSendBundle);
        acknowledge(&self.replication, ext, order, reservation).await?;
        Ok(EthBundleHash { bundle_hash: hash })
    }

    async fn sim_mev_bundle(
        &self,
        ext: &Extensions,
        request: serde_json::Value,
        overrides: Option<SimBundleOverrides>,
    ) -> RpcResult<SimBundleResponse> {
        let from = self.admit(ext)?;
        let (request, bundle) = self.mev_bundle(from, request).await?;
        let chain = self.chain.clone();
        tracing::debug!(%from, txs = bundle.txs.len(), "rpc.mev.sim_bundle");
        let slot = self.sim.slot(from).await?;
        let budget = self.sim.clone();
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let (head, state) = chain.head_state().map_err(RpcError::internal)?;
            sim::sim_bundle(
                chain.spec(),
                &head,
                state,
                &bundle,
                &referenced_transactions(&request),
                overrides.unwrap_or_default(),
                &|gas| budget.charge(from, gas),
            )
        })
        .await
        .map_err(RpcError::internal)?
        .map_err(Into::into)
    }
}
