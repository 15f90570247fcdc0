//! The hub's JSON-RPC, as a member node reads it: the chain id, the head number and raw
//! blocks (`debug_getRawBlock`), each request bounded in time.

use std::time::Duration;

use alloy_consensus::{Block, TxEnvelope};
use alloy_primitives::Bytes;
use alloy_provider::{DynProvider, Provider, ProviderBuilder};
use alloy_rlp::Decodable;

use super::follow::BlockSource;

/// A request to the hub failed.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The URL could not be used.
    #[error("hub rpc url {url:?}: {source}")]
    Url {
        /// The URL as configured.
        url: String,
        /// Why.
        #[source]
        source: alloy_provider::transport::TransportError,
    },
    /// The request failed or the hub answered with an error.
    #[error("hub {method}: {source}")]
    Rpc {
        /// The method called.
        method: &'static str,
        /// What failed.
        #[source]
        source: alloy_provider::transport::TransportError,
    },
    /// The hub did not answer in time.
    #[error("hub {method}: no answer within {timeout:?}")]
    Timeout {
        /// The method called.
        method: &'static str,
        /// The bound.
        timeout: Duration,
    },
    /// A raw block did not decode.
    #[error("hub block {number}: not an RLP block: {source}")]
    Decode {
        /// The block number asked for.
        number: u64,
        /// The decoding error.
        #[source]
        source: alloy_rlp::Error,
    },
}

/// A client of the hub's JSON-RPC. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HubClient {
    provider: DynProvider,
    timeout: Duration,
}

impl HubClient {
    /// A client of the hub at `url` (plain `http://`), each request bounded by `timeout`.
    pub async fn connect(url: &str, timeout: Duration) -> Result<Self, HubError> {
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .connect(url)
            .await
            .map_err(|source| HubError::Url {
                url: url.to_owned(),
                source,
            })?;
        Ok(Self {
            provider: provider.erased(),
            timeout,
        })
    }

    async fn bounded<T>(
        &self,
        method: &'static str,
        call: impl Future<Output = Result<T, alloy_provider::transport::TransportError>>,
    ) -> Result<T, HubError> {
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| HubError::Timeout {
                method,
                timeout: self.timeout,
            })?
            .map_err(|source| HubError::Rpc { method, source })
    }

    /// The hub's chain id.
    pub async fn chain_id(&self) -> Result<u64, HubError> {
        self.bounded("eth_chainId", async { self.provider.get_chain_id().await })
            .await
    }

    /// The hub's block `number`, decoded (not checked: importing it checks it).
    pub async fn raw_block(&self, number: u64) -> Result<Block<TxEnvelope>, HubError> {
        let raw: Bytes = self
            .bounded("debug_getRawBlock", async {
                self.provider
                    .raw_request("debug_getRawBlock".into(), (format!("{number:#x}"),))
                    .await
            })
            .await?;
        Block::decode(&mut raw.as_ref()).map_err(|source| HubError::Decode { number, source })
    }
}

impl BlockSource for HubClient {
    type Error = HubError;

    async fn head_number(&self) -> Result<u64, HubError> {
        self.bounded("eth_blockNumber", async {
            self.provider.get_block_number().await
        })
        .await
    }

    async fn block(&self, number: u64) -> Result<Block<TxEnvelope>, HubError> {
        self.raw_block(number).await
    }
}
