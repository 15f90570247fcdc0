//! The Flashbots orderflow methods. They need a sender proven by `X-Flashbots-Signature`.

mod call;
mod limit;

pub use call::{CallBundleResponse, CallBundleTxResult};
pub use limit::SenderLimiter;

use alloy_primitives::Address;
use alloy_rpc_types_mev::{EthBundleHash, EthCallBundle, EthCancelBundle, EthSendBundle};
use cobuild_chain::Chain;
use cobuild_pool::BundlePool;
use cobuild_primitives::{BundleRequest, Replacement};
use jsonrpsee::{Extensions, core::RpcResult, proc_macros::rpc};

use crate::{RpcError, auth::AuthError, middleware::Signed};

/// Bundle methods of the Flashbots API, beside the eth namespace on the same URL.
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
}

/// The bundle API over a chain. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Bundles {
    chain: Chain,
    pool: BundlePool,
    limiter: std::sync::Arc<SenderLimiter>,
}

impl Bundles {
    /// Serves bundle methods against `chain`, keeping submitted bundles in `pool`; each sender
    /// may make `per_second` calls per second on average, in bursts of up to `burst`.
    pub fn new(chain: Chain, pool: BundlePool, per_second: u32, burst: u32) -> Self {
        Self {
            chain,
            pool,
            limiter: std::sync::Arc::new(SenderLimiter::new(per_second, burst)),
        }
    }

    /// The sender the request proved, within its request budget.
    fn admit(&self, ext: &Extensions) -> Result<Address, RpcError> {
        let from = sender(ext)?;
        self.limiter.check(from)?;
        Ok(from)
    }
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
        // Decoding and signature recovery are CPU work: off the async workers.
        let parsed = tokio::task::spawn_blocking(move || BundleRequest::from_rpc(request))
            .await
            .map_err(RpcError::internal)?
            .map_err(|e| RpcError::InvalidParams(e.to_string()))?;
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

    async fn cancel_bundle(
        &self,
        ext: &Extensions,
        request: EthCancelBundle,
    ) -> RpcResult<Option<()>> {
        let from = self.admit(ext)?;
        self.pool.cancel(
            from,
            Replacement {
                uuid: request.replacement_uuid,
                nonce: None,
            },
        );
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
}
