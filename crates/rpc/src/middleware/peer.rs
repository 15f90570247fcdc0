//! The accept loop's peer address, attached to every request for per-IP budgets.

use std::{
    net::SocketAddr,
    task::{Context, Poll},
};

use http_body_util::BodyExt;
use jsonrpsee::server::{HttpBody, HttpRequest};

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
