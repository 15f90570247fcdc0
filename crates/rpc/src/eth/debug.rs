//! The `debug_` namespace: raw blocks, so another node can follow this chain by re-executing
//! its blocks (`debug_getRawBlock`, as geth and reth serve it).

use alloy_eips::BlockId;
use alloy_primitives::Bytes;
use jsonrpsee::{core::RpcResult, proc_macros::rpc};

use super::Eth;
use crate::RpcError;

/// The `debug_` methods a follower needs.
#[rpc(server, namespace = "debug")]
pub trait DebugApi {
    /// The RLP encoding of a whole block (header, transactions, ommers, withdrawals), as geth
    /// answers it. A block that does not exist is an error, as in geth.
    #[method(name = "getRawBlock")]
    async fn raw_block(&self, block: BlockId) -> RpcResult<Bytes>;
}

#[jsonrpsee::core::async_trait]
impl DebugApiServer for Eth {
    async fn raw_block(&self, block: BlockId) -> RpcResult<Bytes> {
        self.blocking(move |this| {
            let view = this.chain.read().map_err(RpcError::internal)?;
            let stored = this
                .stored_block(&view, block)?
                .ok_or(RpcError::UnknownBlock)?;
            Ok(Bytes::from(alloy_rlp::encode(&stored.block)))
        })
        .await
    }
}
