//! What can go wrong talking to an execution client.

use alloy_primitives::B256;

/// A read from the execution client failed.
#[derive(Debug, thiserror::Error)]
pub enum ElError {
    /// The URL is not one the client can connect to.
    #[error("execution client url {url}: {reason}")]
    Url {
        /// The URL given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// The client's own runtime could not start.
    #[error("execution client runtime: {0}")]
    Runtime(#[from] std::io::Error),
    /// A JSON-RPC exchange failed (connection, HTTP status, error object, bad reply).
    #[error("execution client {method}: {source}")]
    Rpc {
        /// The method called.
        method: &'static str,
        /// Why.
        source: alloy_transport::TransportError,
    },
    /// The client did not answer in time (a connection being re-made waits here too).
    #[error("execution client did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// The client does not know the block the state is pinned to (pruned, or reorged away).
    #[error("execution client has no block {0}")]
    NoBlock(B256),
    /// An account's code does not hash to the code hash the client gave for it.
    #[error("code of {address} does not hash to {expected}")]
    CodeMismatch {
        /// The account.
        address: alloy_primitives::Address,
        /// The hash the client gave.
        expected: B256,
    },
    /// Reading ahead into a state failed.
    #[error("reading ahead: {0}")]
    Prefetch(Box<cobuild_chain::StateError>),
}
