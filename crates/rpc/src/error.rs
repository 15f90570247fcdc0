//! JSON-RPC errors: every failure maps to a standard code and a geth-like message, in one place.

use alloy_primitives::Bytes;
use cobuild_pool::PoolError;
use jsonrpsee::types::ErrorObjectOwned;

/// JSON-RPC "invalid params" (the request is malformed).
pub const INVALID_PARAMS: i32 = -32602;
/// JSON-RPC "invalid request" (here: the request lacks a valid `X-Flashbots-Signature`).
pub const INVALID_REQUEST: i32 = -32600;
/// EIP-1474 "limit exceeded".
pub const LIMIT_EXCEEDED: i32 = -32005;
/// JSON-RPC "internal error" (the node failed).
pub const INTERNAL_ERROR: i32 = -32603;
/// geth's generic server error, used for transaction and state errors clients match by message.
pub const SERVER_ERROR: i32 = -32000;
/// geth's code for a reverted call, with the revert data in `data`.
pub const EXECUTION_REVERTED: i32 = 3;

/// An RPC method failed.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The parameters are malformed (bad hex, bad RLP, bad signature ...).
    #[error("{0}")]
    InvalidParams(String),
    /// The transaction pool refused a transaction.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// The call reverted.
    #[error("execution reverted{}", .reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    Reverted {
        /// The decoded revert reason, if any.
        reason: Option<String>,
        /// The raw revert output.
        output: Bytes,
    },
    /// The call halted (out of gas, invalid opcode ...) or was invalid for the state.
    #[error("{0}")]
    Execution(String),
    /// The state of a block the node does not keep (or a method cannot use) was asked for.
    #[error("historical state {0} is not available")]
    HistoricalState(String),
    /// The block does not exist.
    #[error("header not found")]
    UnknownBlock,
    /// No filter has this id (never installed, uninstalled, or expired unpolled), or it is
    /// not of the kind the method reads.
    #[error("filter not found")]
    FilterNotFound,
    /// The request did not prove a sender where one is required.
    #[error(transparent)]
    Unauthorized(#[from] crate::auth::AuthError),
    /// The sender spent its request budget.
    #[error("rate limit exceeded: retry in {retry_after_ms} ms")]
    RateLimited {
        /// When one more request will be allowed.
        retry_after_ms: u64,
    },
    /// The request's calls would replicate more bytes than one request may.
    #[error(
        "limit exceeded: this request's orders would replicate more than {limit} bytes (each call of a batch carries the whole body); send fewer calls per batch"
    )]
    TooMuchToReplicate {
        /// The bound.
        limit: usize,
    },
    /// The request asks for more than the node answers at once (the message names the bound).
    #[error("{0}")]
    LimitExceeded(String),
    /// The node failed.
    #[error("internal error: {0}")]
    Internal(String),
}

impl RpcError {
    /// An internal failure with its context.
    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<RpcError> for ErrorObjectOwned {
    fn from(err: RpcError) -> Self {
        let message = err.to_string();
        match err {
            RpcError::InvalidParams(_) => {
                ErrorObjectOwned::owned(INVALID_PARAMS, message, None::<()>)
            }
            RpcError::Pool(pool) if pool.is_internal() => {
                ErrorObjectOwned::owned(INTERNAL_ERROR, message, None::<()>)
            }
            RpcError::Reverted { output, .. } => {
                ErrorObjectOwned::owned(EXECUTION_REVERTED, message, Some(output))
            }
            RpcError::Internal(_) => ErrorObjectOwned::owned(INTERNAL_ERROR, message, None::<()>),
            RpcError::RateLimited { .. }
            | RpcError::TooMuchToReplicate { .. }
            | RpcError::LimitExceeded(_) => {
                ErrorObjectOwned::owned(LIMIT_EXCEEDED, message, None::<()>)
            }
            RpcError::Unauthorized(_) => {
                ErrorObjectOwned::owned(INVALID_REQUEST, message, None::<()>)
            }
            RpcError::Pool(_)
            | RpcError::Execution(_)
            | RpcError::HistoricalState(_)
            | RpcError::UnknownBlock
            | RpcError::FilterNotFound => {
                ErrorObjectOwned::owned(SERVER_ERROR, message, None::<()>)
            }
        }
    }
}
