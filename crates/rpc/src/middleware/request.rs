//! The HTTP layer that reads every request body under the server's limit and refuses request
//! ids jsonrpsee would mistake for notifications.
//!
//! jsonrpsee answers an over-long body with 413 only when it can tell from the headers; and it
//! reads a call whose `id` is neither a string, a whole number nor `null` (an object, a float,
//! a negative number) as a notification and answers nothing. Here the body is read once, bounded
//! (413 however it was sent), and each call with such an id is answered `-32600` with a `null`
//! id, as the JSON-RPC 2.0 spec asks for an invalid request.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use alloy_primitives::bytes::Bytes;
use jsonrpsee::{
    server::{HttpBody, HttpRequest, HttpResponse, http::response},
    types::{ErrorObject, Id, Response, ResponsePayload},
};
use serde_json::value::RawValue;

use super::body::BodyLimits;
use crate::error::INVALID_REQUEST;

/// Adds [`RequestCheck`] to the server's HTTP stack.
#[derive(Debug, Clone, Copy)]
pub struct RequestCheckLayer {
    limits: BodyLimits,
}

impl RequestCheckLayer {
    /// Reads any request within `limits`.
    pub const fn new(limits: BodyLimits) -> Self {
        Self { limits }
    }
}

impl<S> tower::Layer<S> for RequestCheckLayer {
    type Service = RequestCheck<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestCheck {
            inner,
            limits: self.limits,
        }
    }
}

/// The HTTP service of [`RequestCheckLayer`].
#[derive(Debug, Clone)]
pub struct RequestCheck<S> {
    inner: S,
    limits: BodyLimits,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// Whether jsonrpsee can read `id` as a request id (`null`, a string, or a whole number that
/// fits 64 bits).
fn id_is_valid(id: &RawValue) -> bool {
    let text = id.get();
    text == "null" || text.starts_with('"') || text.parse::<u64>().is_ok()
}

/// What the body's calls need: nothing, one answer instead of the call, or the body with the
/// calls whose ids are invalid replaced.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Pass,
    Refuse,
    Rewrite(Bytes),
}

/// One call's `id`, if it has one; every other field is skipped.
#[derive(serde::Deserialize)]
struct IdOnly<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
}

/// `Some(false)` for a call whose id is invalid; `None` when it is not an object at all (for
/// jsonrpsee to answer as it does).
fn call_id_is_valid(call: &[u8]) -> Option<bool> {
    // `Option<&RawValue>` reads `null` as `None`, which is valid anyway.
    let probe: IdOnly<'_> = serde_json::from_slice(call).ok()?;
    Some(probe.id.is_none_or(id_is_valid))
}

/// Jsonrpsee answers this entry of a batch as an invalid request with a `null` id.
const INVALID_ENTRY: &str = r#"{"id":null}"#;

fn verdict(body: &[u8]) -> Verdict {
    let start = body.iter().position(|b| !b.is_ascii_whitespace());
    match start.map(|i| body[i]) {
        Some(b'{') => match call_id_is_valid(body) {
            Some(false) => Verdict::Refuse,
            _ => Verdict::Pass,
        },
        Some(b'[') => {
            let Ok(calls) = serde_json::from_slice::<Vec<&RawValue>>(body) else {
                return Verdict::Pass;
            };
            let invalid: Vec<bool> = calls
                .iter()
                .map(|call| call_id_is_valid(call.get().as_bytes()) == Some(false))
                .collect();
            if !invalid.contains(&true) {
                return Verdict::Pass;
            }
            // Each entry keeps its place: a call's position in the body is what replication
            // names it by.
            let mut rewritten = String::with_capacity(body.len());
            rewritten.push('[');
            for (i, (call, bad)) in calls.iter().zip(&invalid).enumerate() {
                if i > 0 {
                    rewritten.push(',');
                }
                rewritten.push_str(if *bad { INVALID_ENTRY } else { call.get() });
            }
            rewritten.push(']');
            Verdict::Rewrite(Bytes::from(rewritten))
        }
        _ => Verdict::Pass,
    }
}

fn invalid_id() -> HttpResponse {
    let error = ErrorObject::borrowed(
        INVALID_REQUEST,
        "Invalid request: the id must be a string, a whole number or null",
        None,
    );
    let answer = Response::new(ResponsePayload::<()>::error(error), Id::Null);
    match serde_json::to_string(&answer) {
        Ok(json) => response::ok_response(json),
        Err(_) => response::internal_error(),
    }
}

impl<S> tower::Service<HttpRequest> for RequestCheck<S>
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
        // The clone is the one that was not polled ready; swap so the ready one serves this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let limits = self.limits;
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let bytes = match limits.read(body).await {
                Ok(bytes) => bytes,
                Err(refused) => return Ok(refused),
            };
            let bytes = match verdict(&bytes) {
                Verdict::Pass => bytes,
                Verdict::Refuse => return Ok(invalid_id()),
                Verdict::Rewrite(rewritten) => rewritten,
            };
            inner
                .call(HttpRequest::from_parts(
                    parts,
                    HttpBody::new(http_body_util::Full::new(bytes)),
                ))
                .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_ids_jsonrpsee_reads_pass() {
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#,
            r#"{"jsonrpc":"2.0","id":"a","method":"eth_chainId"}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"eth_chainId"}"#,
            r#"{"jsonrpc":"2.0","method":"eth_chainId"}"#,
            r#"[{"jsonrpc":"2.0","id":18446744073709551615,"method":"eth_chainId"}]"#,
            "not json",
            "",
        ] {
            assert_eq!(verdict(body.as_bytes()), Verdict::Pass, "{body}");
        }
    }

    #[test]
    fn test_other_ids_are_refused() {
        for id in [
            r#"{"a":1}"#,
            "[1]",
            "1.5",
            "-1",
            "true",
            "1e3",
            "18446744073709551616",
        ] {
            let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"eth_chainId"}}"#);
            assert_eq!(verdict(body.as_bytes()), Verdict::Refuse, "{body}");
        }
    }

    #[test]
    fn test_a_batch_keeps_each_calls_place() {
        let body = r#"[{"jsonrpc":"2.0","id":1,"method":"a"}, {"jsonrpc":"2.0","id":{},"method":"b"},{"jsonrpc":"2.0","id":3,"method":"c"}]"#;
        let Verdict::Rewrite(rewritten) = verdict(body.as_bytes()) else {
            panic!("the batch has an invalid id");
        };
        assert_eq!(
            std::str::from_utf8(&rewritten).expect("utf-8"),
            r#"[{"jsonrpc":"2.0","id":1,"method":"a"},{"id":null},{"jsonrpc":"2.0","id":3,"method":"c"}]"#
        );
    }
}
