//! The orderflow methods: Flashbots bundles and private transactions (`eth_` namespace) and
//! MEV-Share bundles (`mev_` namespace). They need a sender proven by `X-Flashbots-Signature`,
//! and every call spends from its peer IP's and its sender's request budgets.

mod call;
mod limit;
mod sim;

pub use call::{CallBundleResponse, CallBundleTxResult};
pub use limit::{IpLimiter, RateLimiter, SenderLimiter};

use std::sync::Arc;

use alloy_primitives::{Address, B256};
use alloy_rpc_types_mev::{
    EthBundleHash, EthCallBundle, EthCancelBundle, EthCancelPrivateTransaction, EthSendBundle,
    EthSendPrivateTransaction, MevSendBundle, SimBundleOverrides, SimBundleResponse,
};
use cobuild_chain::Chain;
use cobuild_pool::{BundlePool, PrivateTx, TxPool};
use cobuild_primitives::{
    Bundle, BundleRequest, OrderError, Replacement, parse_mev_bundle, referenced_transactions,
};
use jsonrpsee::{Extensions, core::RpcResult, proc_macros::rpc};

use crate::{
    RpcError,
    auth::AuthError,
    eth::decode_raw_transaction,
    middleware::{PeerAddr, Signed},
    replicate::{AcceptedOrder, Hook, Replicate, SignedBody, calls, method, replicate, signer},
};
use cobuild_primitives::OrderKind;

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

    /// Submits a transaction that only this node's builders see, until `maxBlockNumber`
    /// (default: the head + 25). Returns its hash.
    #[method(name = "sendPrivateTransaction", with_extensions)]
    async fn send_private_transaction(&self, request: EthSendPrivateTransaction)
    -> RpcResult<B256>;

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
}

impl Default for OrderflowLimits {
    fn default() -> Self {
        Self {
            sender_rate: 1_000,
            sender_burst: 2_000,
            ip_rate: 5_000,
            ip_burst: 10_000,
        }
    }
}

/// The orderflow API over a chain and its pools. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Bundles {
    chain: Chain,
    txs: TxPool,
    pool: BundlePool,
    senders: Arc<SenderLimiter>,
    ips: Arc<IpLimiter>,
    replication: Hook,
}

impl Bundles {
    /// Serves the orderflow methods against `chain`, keeping private transactions in `txs` and
    /// bundles in `pool`, within `limits`.
    pub fn new(chain: Chain, txs: TxPool, pool: BundlePool, limits: OrderflowLimits) -> Self {
        Self {
            chain,
            txs,
            pool,
            senders: Arc::new(RateLimiter::new(limits.sender_rate, limits.sender_burst)),
            ips: Arc::new(RateLimiter::new(limits.ip_rate, limits.ip_burst)),
            replication: None,
        }
    }

    /// Hands every accepted order (and cancellation) to `hook` before answering.
    #[must_use]
    pub fn with_replication(mut self, hook: Arc<dyn Replicate>) -> Self {
        self.replication = Some(hook);
        self
    }

    /// Replicates what a signed request did, as it was signed.
    async fn replicate(&self, ext: &Extensions, kind: OrderKind) -> Result<(), RpcError> {
        if self.replication.is_none() {
            return Ok(());
        }
        let Some(signed) = ext.get::<SignedBody>() else {
            return Err(RpcError::internal("signed body missing"));
        };
        replicate(
            &self.replication,
            AcceptedOrder {
                kind,
                payload: signed.body.clone(),
                auth: signed.header.clone(),
            },
        )
        .await
    }

    /// Applies an order another member accepted: checks its sender's signature and runs every
    /// call of its kind in the body as this node's RPC would, without budgets (the accepting
    /// member spent them) and without replicating it again.
    pub async fn apply_replicated(
        &self,
        kind: OrderKind,
        payload: &[u8],
        auth: &[u8],
    ) -> Result<(), RpcError> {
        let from = signer(payload, auth)?;
        for params in calls(payload, method(kind))? {
            let bad = |e: serde_json::Error| RpcError::InvalidParams(e.to_string());
            match kind {
                OrderKind::SendBundle => {
                    self.send_bundle_as(from, serde_json::from_value(params).map_err(bad)?)
                        .await?;
                }
                OrderKind::CancelBundle => {
                    self.cancel_bundle_as(from, serde_json::from_value(params).map_err(bad)?);
                }
                OrderKind::SendPrivateTransaction => {
                    self.send_private_as(from, serde_json::from_value(params).map_err(bad)?)
                        .await?;
                }
                OrderKind::CancelPrivateTransaction => {
                    let request: EthCancelPrivateTransaction =
                        serde_json::from_value(params).map_err(bad)?;
                    self.txs.cancel_private(from, &request.tx_hash);
                }
                OrderKind::MevSendBundle => {
                    let (_, bundle) = self.mev_bundle(from, params).await?;
                    self.pool.add(from, bundle).map_err(RpcError::from)?;
                }
                OrderKind::RawTransaction => {
                    return Err(RpcError::InvalidParams(
                        "a raw transaction is not a signed call".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    async fn send_bundle_as(
        &self,
        from: Address,
        request: EthSendBundle,
    ) -> Result<Option<EthBundleHash>, RpcError> {
        // Decoding and signature recovery are CPU work: off the async workers.
        let parsed = tokio::task::spawn_blocking(move || BundleRequest::from_rpc(request))
            .await
            .map_err(RpcError::internal)?
            .map_err(invalid)?;
        match parsed {
            BundleRequest::Send(bundle) => {
                let hash = self.pool.add(from, bundle).map_err(RpcError::from)?;
                tracing::debug!(%from, %hash, "rpc.bundle.send");
                Ok(Some(EthBundleHash { bundle_hash: hash }))
            }
            BundleRequest::Cancel(replacement) => {
                self.pool.cancel(from, replacement);
                Ok(None)
            }
        }
    }

    fn cancel_bundle_as(&self, from: Address, request: EthCancelBundle) {
        self.pool.cancel(
            from,
            Replacement {
                uuid: request.replacement_uuid,
                nonce: None,
            },
        );
    }

    async fn send_private_as(
        &self,
        owner: Address,
        request: EthSendPrivateTransaction,
    ) -> Result<B256, RpcError> {
        let (chain, txs) = (self.chain.clone(), self.txs.clone());
        // Decoding, signature recovery and the state read are blocking work.
        tokio::task::spawn_blocking(move || {
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
            let hash_shared = request
                .preferences
                .privacy
                .as_ref()
                .and_then(|p| p.hints.as_ref())
                .is_some_and(|hints| hints.has_hash());
            let private = PrivateTx {
                owner,
                max_block,
                hash_shared,
            };
            let hash = txs.add_private(tx, private)?;
            tracing::debug!(%owner, %hash, max_block, "rpc.private.send");
            Ok(hash)
        })
        .await
        .map_err(RpcError::internal)?
    }

    /// The sender the request proved, within its peer IP's and its own request budgets.
    ///
    /// The IP budget is spent first, so unsigned or forged requests spend it too.
    fn admit(&self, ext: &Extensions) -> Result<Address, RpcError> {
        if let Some(PeerAddr(peer)) = ext.get::<PeerAddr>() {
            self.ips.check(peer.ip())?;
        }
        let from = sender(ext)?;
        self.senders.check(from)?;
        Ok(from)
    }

    /// Checks a MEV-Share bundle off the async workers, resolving `{hash}` items against the
    /// transactions `from` may see.
    async fn mev_bundle(
        &self,
        from: Address,
        request: serde_json::Value,
    ) -> Result<(MevSendBundle, Bundle), RpcError> {
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
        let cancel = request.txs.is_empty();
        let answer = self.send_bundle_as(from, request).await?;
        let kind = if cancel {
            OrderKind::CancelBundle
        } else {
            OrderKind::SendBundle
        };
        self.replicate(ext, kind).await?;
        Ok(answer)
    }

    async fn cancel_bundle(
        &self,
        ext: &Extensions,
        request: EthCancelBundle,
    ) -> RpcResult<Option<()>> {
        let from = self.admit(ext)?;
        self.cancel_bundle_as(from, request);
        self.replicate(ext, OrderKind::CancelBundle).await?;
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
        tokio::task::spawn_blocking(move || {
            let (head, state) = chain.head_state().map_err(RpcError::internal)?;
            call::call_bundle(chain.spec(), &head, state, request)
        })
        .await
        .map_err(RpcError::internal)?
        .map_err(Into::into)
    }

    async fn send_private_transaction(
        &self,
        ext: &Extensions,
        request: EthSendPrivateTransaction,
    ) -> RpcResult<B256> {
        let owner = self.admit(ext)?;
        let hash = self.send_private_as(owner, request).await?;
        self.replicate(ext, OrderKind::SendPrivateTransaction)
            .await?;
        Ok(hash)
    }

    async fn cancel_private_transaction(
        &self,
        ext: &Extensions,
        request: EthCancelPrivateTransaction,
    ) -> RpcResult<bool> {
        let owner = self.admit(ext)?;
        let cancelled = self.txs.cancel_private(owner, &request.tx_hash);
        tracing::debug!(%owner, hash = %request.tx_hash, cancelled, "rpc.private.cancel");
        self.replicate(ext, OrderKind::CancelPrivateTransaction)
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
        let (_, bundle) = self.mev_bundle(from, request).await?;
        let hash = self.pool.add(from, bundle).map_err(RpcError::from)?;
        tracing::debug!(%from, %hash, "rpc.mev.send_bundle");
        self.replicate(ext, OrderKind::MevSendBundle).await?;
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
        tokio::task::spawn_blocking(move || {
            let (head, state) = chain.head_state().map_err(RpcError::internal)?;
            sim::sim_bundle(
                chain.spec(),
                &head,
                state,
                &bundle,
                &referenced_transactions(&request),
                overrides.unwrap_or_default(),
            )
        })
        .await
        .map_err(RpcError::internal)?
        .map_err(Into::into)
    }
}
