//! The HTTP layer that checks `X-Flashbots-Signature` on the raw body before JSON parsing.
//!
//! Requests without the header pass through untouched (the eth methods need none). With the
//! header, the body is read (bounded), verified, and the outcome is attached to the request as
//! a [`Signed`] extension, which jsonrpsee hands to methods declared `with_extensions`; each
//! method decides whether it needs a sender.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use alloy_primitives::Address;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};

use super::body::BodyLimits;

use crate::auth::{AuthError, FLASHBOTS_SIGNATURE_HEADER, verify_flashbots_signature};

/// What the signature header of a request proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed(pub Result<Address, AuthError>);

/// Adds [`FlashbotsAuth`] to the server's HTTP stack.
#[derive(Debug, Clone, Copy)]
pub struct FlashbotsAuthLayer {
    limits: BodyLimits,
}

impl FlashbotsAuthLayer {
    /// Reads a signed request within `limits`.
    pub const fn new(limits: BodyLimits) -> Self {
        Self { limits }
    }
}

impl<S> tower::Layer<S> for FlashbotsAuthLayer {
    type Service = FlashbotsAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        FlashbotsAuth {
            inner,
            limits: self.limits,
        }
    }
}

/// The signature-checking HTTP service.
#[derive(Debug, Clone)]
pub struct FlashbotsAuth<S> {
    inner: S,
    limits: BodyLimits,
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
        let limits = self.limits;
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let bytes = match limits.read(body).await {
                Ok(bytes) => bytes,
                Err(refused) => return Ok(refused),
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
                    HttpBody::new(http_body_util::Full::new(bytes)),
                ))
                .await
        })
    }
}
