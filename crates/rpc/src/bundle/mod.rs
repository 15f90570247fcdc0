//! The Flashbots orderflow methods. They need a sender proven by `X-Flashbots-Signature`.

mod call;

pub use call::{CallBundleResponse, CallBundleTxResult};

use alloy_primitives::Address;
use alloy_rpc_types_mev::EthCallBundle;
use cobuild_chain::Chain;
use jsonrpsee::{Extensions, core::RpcResult, proc_macros::rpc};

use crate::{RpcError, auth::AuthError, middleware::Signed};

/// Bundle methods of the Flashbots API, beside the eth namespace on the same URL.
#[rpc(server, namespace = "eth")]
pub trait BundleApi {
    /// Simulates a bundle on the head state as the next block would run it.
    #[method(name = "callBundle", with_extensions)]
    async fn call_bundle(&self, request: EthCallBundle) -> RpcResult<CallBundleResponse>;
}

/// The bundle API over a chain. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Bundles {
    chain: Chain,
}

impl Bundles {
    /// Serves bundle methods against `chain`.
    pub const fn new(chain: Chain) -> Self {
        Self { chain }
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
    async fn call_bundle(
        &self,
        ext: &Extensions,
        request: EthCallBundle,
    ) -> RpcResult<CallBundleResponse> {
        let from = sender(ext)?;
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
