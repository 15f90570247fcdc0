//! Acknowledging an order: made durable (and handed to the other members) through the hook
//! before the sender hears back, and offered to the builders only then.
//!
//! An order travels as its sender sent it (raw transaction, or the signed JSON-RPC body, its
//! `X-Flashbots-Signature` and the call's place in the body), so a receiving member checks the
//! sender's signature itself and applies that one call with the same code the RPC uses
//! ([`Intake`](crate::Intake)). Each acknowledged call of a batch is an order of its own; a
//! refused call is none.
//!
//! ```text
//!  handler: checks ──▶ pool reservation (placed, hidden)
//!                          │
//!                  task ── Replicate::accepted (queued) ── durable ──ok──▶ publish ──▶ answer
//!                                                              └─err──▶ withdraw ─▶ -32603
//! ```
//! The write and what follows it run on a task of their own, so a sender that hangs up midway
//! never leaves a durable order out of the pools or a refused one in them. In a batch the next
//! call starts once this one's order is queued, and the publish waits for the earlier calls'
//! (see [`batch`](crate::middleware::batch)).

use std::{
    fmt::Debug,
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use alloy_primitives::Bytes;
use cobuild_pool::Reservation;
use cobuild_primitives::{AcceptedOrder, OrderKind};
use jsonrpsee::Extensions;

use crate::{RpcError, middleware::batch::Turns};

/// Why an accepted order could not be made durable; the sender gets an internal error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("order not replicated: {0}")]
pub struct ReplicateError(pub String);

/// The rest of a queued order's write: resolves once the order is durable.
pub type Durable = Pin<Box<dyn Future<Output = Result<(), ReplicateError>> + Send + 'static>>;

/// A boxed future, as the hook returns it: resolves once the order is queued, with the rest of
/// its write.
pub type ReplicateFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Durable, ReplicateError>> + Send + 'a>>;

/// Where accepted orders go before the sender hears back (the node's durable replication log).
pub trait Replicate: Send + Sync + Debug {
    /// Queues `order` to be made durable and handed to the network. Resolves once the order has
    /// its place among this member's orders (waiting while the queue is full), with a future
    /// that resolves once it is durable. The order reaches the pools, and the sender its
    /// answer, only after both are `Ok`; on an error it reaches neither.
    fn accepted(&self, order: AcceptedOrder) -> ReplicateFuture<'_>;
}

/// The hook shared by the RPC handlers (none: replication is off).
pub(crate) type Hook = Option<Arc<dyn Replicate>>;

/// Most bytes of orders one request may have replicated. Every acknowledged call of a batch
/// carries the whole signed body (the sender's signature covers nothing less), so a batch of
/// many calls in a large body would otherwise be written and sent many times over.
pub const MAX_REPLICATED_BYTES_PER_REQUEST: usize = 32 * 1024 * 1024;

/// The raw body and signature header of a signed request, kept by the auth middleware so an
/// accepted order can be replicated exactly as it was signed.
#[derive(Debug, Clone)]
pub struct SignedBody {
    /// The JSON-RPC body.
    pub body: Bytes,
    /// The `X-Flashbots-Signature` header value.
    pub header: Bytes,
    /// Bytes of orders this request has had replicated so far (shared by its calls).
    pub replicated: Arc<AtomicUsize>,
}

impl SignedBody {
    /// The body and header of one signed request.
    pub fn new(body: Bytes, header: Bytes) -> Self {
        Self {
            body,
            header,
            replicated: Arc::default(),
        }
    }
}

/// The position of a call in its JSON-RPC batch, set on each call of a batch by the server's
/// RPC middleware ([`CallIndexLayer`](crate::middleware::CallIndexLayer)); a single call has
/// none (position 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallIndex(pub u32);

/// The order a signed call of `kind` is, as its sender signed it.
pub(crate) fn signed_order(ext: &Extensions, kind: OrderKind) -> Result<AcceptedOrder, RpcError> {
    let signed = ext
        .get::<SignedBody>()
        .ok_or_else(|| RpcError::internal("signed body missing"))?;
    let before = signed
        .replicated
        .fetch_add(signed.body.len(), Ordering::Relaxed);
    if before + signed.body.len() > MAX_REPLICATED_BYTES_PER_REQUEST {
        return Err(RpcError::TooMuchToReplicate {
            limit: MAX_REPLICATED_BYTES_PER_REQUEST,
        });
    }
    Ok(AcceptedOrder {
        kind,
        payload: signed.body.clone(),
        auth: signed.header.clone(),
        call: ext.get::<CallIndex>().map_or(0, |c| c.0),
    })
}

/// Acknowledges a reserved order: durable through the hook (when there is one), then offered
/// to the builders; withdrawn if the write fails. `order` is built only when there is a hook;
/// `ext` are the call's extensions (its turns in a batch).
pub(crate) async fn acknowledge(
    hook: &Hook,
    ext: &Extensions,
    order: impl FnOnce() -> Result<AcceptedOrder, RpcError>,
    reservation: Reservation,
) -> Result<(), RpcError> {
    durable_then(hook, ext, order, move |written| match written {
        Ok(()) => reservation.publish(),
        Err(_) => reservation.withdraw(),
    })
    .await
}

/// Makes an order durable through the hook (when there is one) and then runs `apply` with the
/// outcome of the write, on a task the caller's cancellation cannot stop. Returns `apply`'s
/// answer, or the write's error.
///
/// A call of a batch (its [`Turns`] in `ext`) lets the next call start once its order is
/// queued, and applies only after every earlier call of the batch has applied its own.
pub(crate) async fn durable_then<T: Send + 'static>(
    hook: &Hook,
    ext: &Extensions,
    order: impl FnOnce() -> Result<AcceptedOrder, RpcError>,
    apply: impl FnOnce(Result<(), &ReplicateError>) -> T + Send + 'static,
) -> Result<T, RpcError> {
    let Some(hook) = hook.clone() else {
        return Ok(apply(Ok(())));
    };
    let order = order()?;
    let (queue, settle) = Turns::take(ext).unzip();
    let task = tokio::spawn(async move {
        let queued = hook.accepted(order).await;
        drop(queue);
        let written = match queued {
            Ok(durable) => durable.await,
            Err(e) => Err(e),
        };
        if let Some(settle) = &settle {
            settle.turn().await;
        }
        let answer = apply(written.as_ref().map(|_| ()));
        drop(settle);
        written.map(|()| answer)
    });
    task.await
        .map_err(RpcError::internal)?
        .map_err(|e| RpcError::internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_a_signed_order_names_its_call() {
        let mut ext = Extensions::new();
        assert!(
            signed_order(&ext, OrderKind::SendBundle).is_err(),
            "no body"
        );
        ext.insert(SignedBody::new(
            Bytes::from_static(b"[{}]"),
            Bytes::from_static(b"0xabc:0xdef"),
        ));
        assert_eq!(
            signed_order(&ext, OrderKind::SendBundle)
                .ok()
                .map(|o| o.call),
            Some(0)
        );
        ext.insert(CallIndex(3));
        let order = signed_order(&ext, OrderKind::CancelBundle).expect("order");
        assert_eq!((order.kind, order.call), (OrderKind::CancelBundle, 3));
    }

    #[test]
    fn test_a_request_replicates_a_bounded_number_of_bytes() {
        let mut ext = Extensions::new();
        let body = Bytes::from(vec![b' '; 4 * 1024 * 1024]);
        ext.insert(SignedBody::new(body, Bytes::from_static(b"0xabc:0xdef")));
        let allowed = MAX_REPLICATED_BYTES_PER_REQUEST / (4 * 1024 * 1024);
        for _ in 0..allowed {
            signed_order(&ext, OrderKind::CancelBundle).expect("within the bound");
        }
        assert!(matches!(
            signed_order(&ext, OrderKind::CancelBundle),
            Err(RpcError::TooMuchToReplicate { .. })
        ));
    }
}
