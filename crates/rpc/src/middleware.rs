//! The server's middleware: the HTTP layer that checks `X-Flashbots-Signature` on the raw body
//! before JSON parsing, the accept loop's peer address, and the RPC layer that tells each call
//! of a batch its position.
//!
//! Requests without the header pass through untouched (the eth methods need none). With the
//! header, the body is read (bounded), verified, and the outcome is attached to the request as
//! a [`Signed`] extension, which jsonrpsee hands to methods declared `with_extensions`; each
//! method decides whether it needs a sender.

use std::{
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
};

use alloy_primitives::Address;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse, http::response};

use jsonrpsee::server::middleware::rpc::{Batch, Notification, RpcServiceT};

use crate::{
    auth::{AuthError, FLASHBOTS_SIGNATURE_HEADER, verify_flashbots_signature},
    replicate::CallIndex,
};

/// What the signature header of a request proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed(pub Result<Address, AuthError>);

/// The remote address of the connection a request came on, attached to every request by the
/// server's accept loop ([`PeerAddrService`]) for per-IP budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// Attaches [`PeerAddr`] to every request of one connection.
///
/// jsonrpsee's own accept loop (`Server::start`) keeps the remote address to itself (it only
/// names it in a tracing span), so the server accepts connections itself and wraps each
/// connection's service in this one.
#[derive(Debug, Clone)]
pub struct PeerAddrService<S> {
    inner: S,
    peer: SocketAddr,
}

impl<S> PeerAddrService<S> {
    /// Serves one connection from `peer` with `inner`.
    pub const fn new(inner: S, peer: SocketAddr) -> Self {
        Self { inner, peer }
    }
}

impl<S, B> tower::Service<http::Request<B>> for PeerAddrService<S>
where
    S: tower::Service<HttpRequest>,
    B: BodyExt<Data = alloy_primitives::bytes::Bytes> + Send + 'static,
    B::Error: Into<jsonrpsee::core::BoxError>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // The body is boxed the way jsonrpsee's own accept loop boxes it.
        let mut request = request.map(HttpBody::new);
        request.extensions_mut().insert(PeerAddr(self.peer));
        self.inner.call(request)
    }
}

/// Adds [`FlashbotsAuth`] to the server's HTTP stack.
#[derive(Debug, Clone, Copy)]
pub struct FlashbotsAuthLayer {
    max_body: u32,
}

impl FlashbotsAuthLayer {
    /// Reads at most `max_body` bytes of a signed request (the server's own limit).
    pub const fn new(max_body: u32) -> Self {
        Self { max_body }
    }
}

impl<S> tower::Layer<S> for FlashbotsAuthLayer {
    type Service = FlashbotsAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        FlashbotsAuth {
            inner,
            max_body: self.max_body,
        }
    }
}

/// The signature-checking HTTP service.
#[derive(Debug, Clone)]
pub struct FlashbotsAuth<S> {
    inner: S,
    max_body: u32,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S> tower::Service<HttpRequest> for FlashbotsAuth<S>
where
    S: tower::Service<HttpRequest, Response = HttpResponse> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
{
    type Response = HttpResponse;
    type Error = S::Error;
    type Future = BoxFuture<Result<HttpResponse, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: HttpRequest) -> Self::Future {
        let Some(header) = request.headers().get(FLASHBOTS_SIGNATURE_HEADER).cloned() else {
            return Box::pin(self.inner.call(request));
        };
        // The clone is the one that was not polled ready; swap so the ready one serves this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let max = self.max_body;
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let bytes = match Limited::new(body, max as usize).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
                    return Ok(response::too_large(max));
                }
                Err(_) => return Ok(response::malformed()),
            };
            let signed = match header.to_str() {
                Ok(value) => verify_flashbots_signature(value, &bytes),
                Err(_) => Err(AuthError::Malformed),
            };
            if let Err(reason) = &signed {
                tracing::debug!(%reason, "rpc.auth.refused");
            }
            if signed.is_ok() {
                parts.extensions.insert(crate::replicate::SignedBody::new(
                    alloy_primitives::Bytes::from(bytes.clone()),
                    alloy_primitives::Bytes::copy_from_slice(header.as_bytes()),
                ));
            }
            parts.extensions.insert(Signed(signed));
            inner
                .call(HttpRequest::from_parts(
                    parts,
                    HttpBody::from(bytes.to_vec()),
                ))
                .await
        })
    }
}

/// Tells every call of a batch its position in the batch ([`CallIndex`]), so an order can name
/// exactly which call of the signed body it is. jsonrpsee runs a batch's calls one after the
/// other, in order.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallIndexLayer;

impl<S> tower::Layer<S> for CallIndexLayer {
    type Service = CallIndexService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CallIndexService { inner }
    }
}

/// The RPC service of [`CallIndexLayer`].
#[derive(Debug, Clone)]
pub struct CallIndexService<S> {
    inner: S,
}

impl<S> RpcServiceT for CallIndexService<S>
where
    S: RpcServiceT + Send + Sync,
{
    type MethodResponse = S::MethodResponse;
    type NotificationResponse = S::NotificationResponse;
    type BatchResponse = S::BatchResponse;

    fn call<'a>(
        &self,
        request: jsonrpsee::types::Request<'a>,
    ) -> impl std::future::Future<Output = Self::MethodResponse> + Send + 'a {
        self.inner.call(request)
    }

    fn batch<'a>(
        &self,
        mut batch: Batch<'a>,
    ) -> impl std::future::Future<Output = Self::BatchResponse> + Send + 'a {
        // Entries that are not calls keep their place too: the position is the one in the body.
        for (index, entry) in batch.iter_mut().enumerate() {
            if let Ok(entry) = entry {
                let index = u32::try_from(index).unwrap_or(u32::MAX);
                entry.extensions_mut().insert(CallIndex(index));
            }
        }
        self.inner.batch(batch)
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl std::future::Future<Output = Self::NotificationResponse> + Send + 'a {
        self.inner.notification(n)
    }
}
