//! Replication of accepted orders: the hook an accepting method calls before it answers, and
//! the way back in for orders other members accepted.
//!
//! An order travels as its sender sent it (raw transaction, or the signed JSON-RPC body and its
//! `X-Flashbots-Signature`), so a receiving member checks the sender's signature itself and
//! applies the call with the same code the RPC method uses, minus the answer.

use std::{fmt::Debug, future::Future, pin::Pin, sync::Arc};

use alloy_primitives::{Address, Bytes};
use cobuild_primitives::OrderKind;

use crate::RpcError;

/// An order this node accepted, as the sender sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedOrder {
    /// What the call was.
    pub kind: OrderKind,
    /// The raw transaction, or the whole JSON-RPC body.
    pub payload: Bytes,
    /// The `X-Flashbots-Signature` header (empty for raw transactions).
    pub auth: Bytes,
}

/// Why an accepted order could not be made durable; the sender gets an internal error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("order not replicated: {0}")]
pub struct ReplicateError(pub String);

/// A boxed future, as the hook returns it.
pub type ReplicateFuture<'a> =
    Pin<Box<dyn Future<Output = Result<(), ReplicateError>> + Send + 'a>>;

/// Where accepted orders go before the sender hears back (the node's durable replication log).
pub trait Replicate: Send + Sync + Debug {
    /// Makes `order` durable and hands it to the network. The RPC answers only after it
    /// returns `Ok`, so an acknowledged order survives this node's crash.
    fn accepted(&self, order: AcceptedOrder) -> ReplicateFuture<'_>;
}

/// The hook shared by the RPC handlers (none: replication is off).
pub(crate) type Hook = Option<Arc<dyn Replicate>>;

/// The raw body and signature header of a signed request, kept by the auth middleware so an
/// accepted order can be replicated exactly as it was signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedBody {
    /// The JSON-RPC body.
    pub body: Bytes,
    /// The `X-Flashbots-Signature` header value.
    pub header: Bytes,
}

/// Passes `order` to the hook, if there is one.
pub(crate) async fn replicate(hook: &Hook, order: AcceptedOrder) -> Result<(), RpcError> {
    match hook {
        Some(hook) => hook
            .accepted(order)
            .await
            .map_err(|e| RpcError::internal(e.to_string())),
        None => Ok(()),
    }
}

/// The JSON-RPC method an order kind stands for.
pub(crate) const fn method(kind: OrderKind) -> &'static str {
    match kind {
        OrderKind::RawTransaction => "eth_sendRawTransaction",
        OrderKind::SendBundle => "eth_sendBundle",
        OrderKind::CancelBundle => "eth_cancelBundle",
        OrderKind::SendPrivateTransaction => "eth_sendPrivateTransaction",
        OrderKind::CancelPrivateTransaction => "eth_cancelPrivateTransaction",
        OrderKind::MevSendBundle => "mev_sendBundle",
    }
}

/// The first parameter of every call to `method` in a JSON-RPC body (one call or a batch).
pub(crate) fn calls(body: &[u8], method: &str) -> Result<Vec<serde_json::Value>, RpcError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| RpcError::InvalidParams(format!("replicated body: {e}")))?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        one => vec![one],
    };
    Ok(items
        .into_iter()
        .filter(|call| call.get("method").and_then(|m| m.as_str()) == Some(method))
        .filter_map(|mut call| {
            call.get_mut("params")
                .and_then(|p| p.as_array_mut())
                .and_then(|p| (!p.is_empty()).then(|| p.swap_remove(0)))
        })
        .collect())
}

/// The sender a replicated body proves (the same check the auth middleware makes).
pub(crate) fn signer(body: &[u8], header: &[u8]) -> Result<Address, RpcError> {
    let header = std::str::from_utf8(header)
        .map_err(|_| RpcError::Unauthorized(crate::AuthError::Malformed))?;
    crate::verify_flashbots_signature(header, body).map_err(RpcError::Unauthorized)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_calls_are_picked_from_single_and_batch_bodies() {
        let single = br#"{"jsonrpc":"2.0","id":1,"method":"eth_sendBundle","params":[{"a":1}]}"#;
        assert_eq!(
            calls(single, "eth_sendBundle").expect("parses"),
            vec![serde_json::json!({"a":1})]
        );
        let batch = br#"[{"method":"eth_sendBundle","params":[{"a":1}]},{"method":"eth_callBundle","params":[{"b":2}]},{"method":"eth_sendBundle","params":[]}]"#;
        assert_eq!(
            calls(batch, "eth_sendBundle").expect("parses"),
            vec![serde_json::json!({"a":1})]
        );
        assert!(calls(b"not json", "eth_sendBundle").is_err());
    }
}
