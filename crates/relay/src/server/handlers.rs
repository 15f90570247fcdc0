//! The HTTP surface: the builder API (submissions in JSON or SSZ, plain or gzip), the data API
//! and the slot event stream, and every failure as `{code, message, reason}` with its status. The handlers only parse and answer; the checks live in
//! [`Shared::submit`](super::service).

use std::sync::Arc;

use axum::{
    Json, Router,
    body::Body,
    extract::State,
    http::{HeaderMap, StatusCode, Uri, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};

use cobuild_http::{BodyError, read_body};
use cobuild_primitives::{MAX_ERROR_TEXT, bounded};

use super::{
    events,
    service::{BodyFormat, Shared},
};
use crate::{
    BlockVerifier,
    client::{BLOCKS_PATH, RECEIVED_PATH, SEQUENCE_HEADER, VALIDATORS_PATH},
    events::EVENTS_PATH,
    reply::{ErrorReply, RejectReason},
};

pub(crate) fn router<V: BlockVerifier>(shared: Arc<Shared<V>>) -> Router {
    Router::new()
        .route(BLOCKS_PATH, post(submit::<V>))
        .route(VALIDATORS_PATH, get(validators::<V>))
        .route(RECEIVED_PATH, get(received::<V>))
        .route(EVENTS_PATH, get(events::events::<V>))
        .with_state(shared)
}

async fn submit<V: BlockVerifier>(
    State(shared): State<Arc<Shared<V>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // As mev-boost-relay reads them: SSZ when the body says it is octet-stream, else JSON;
    // gzip when the content encoding says so.
    let format = BodyFormat {
        ssz: headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/octet-stream")),
        gzip: headers
            .get(header::CONTENT_ENCODING)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip")),
    };
    // builder-specs: `?cancellations=1` lets a lower bid replace the builder's earlier one.
    let cancellation = uri.query().is_some_and(|q| {
        q.split('&')
            .any(|p| p == "cancellations=1" || p == "cancellations=true")
    });
    // A builder's own order of its submissions (`x-sequence`, as the ultra sound relay takes it).
    let sequence = headers
        .get(SEQUENCE_HEADER)
        .map(|v| v.to_str().ok().and_then(|v| v.parse::<u64>().ok()));
    if sequence == Some(None) {
        let why = format!("{SEQUENCE_HEADER} is not a decimal u64");
        tracing::info!(status = 400, why, "relay.bid.rejected");
        return error_reply(StatusCode::BAD_REQUEST, Some(RejectReason::Malformed), why);
    }
    let serve = shared.config().serve;
    let body = match read_body(body, shared.config().max_body_bytes, serve.body_timeout).await {
        Ok(body) => body,
        Err(error) => {
            let status = match error {
                BodyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                BodyError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
                BodyError::Broken => StatusCode::BAD_REQUEST,
            };
            tracing::info!(status = status.as_u16(), %error, "relay.bid.rejected");
            return error_reply(status, Some(RejectReason::Malformed), error.to_string());
        }
    };
    let strict = shared.config().strict;
    match shared
        .submit(body, format, cancellation, sequence.flatten())
        .await
    {
        Ok(()) => StatusCode::OK.into_response(),
        Err(err) => {
            tracing::info!(reason = ?err.reason(), error = %err, "relay.bid.rejected");
            let reason = (!strict).then(|| err.reason());
            error_reply(err.status(), reason, err.to_string())
        }
    }
}

/// The relay data API's accepted bids, optionally of one `slot`.
async fn received<V: BlockVerifier>(State(shared): State<Arc<Shared<V>>>, uri: Uri) -> Response {
    let mut slot = None;
    for pair in uri.query().unwrap_or_default().split('&') {
        if let Some(value) = pair.strip_prefix("slot=") {
            match value.parse::<u64>() {
                Ok(s) => slot = Some(s),
                Err(_) => {
                    return error_reply(
                        StatusCode::BAD_REQUEST,
                        Some(RejectReason::Malformed),
                        format!("slot: not a number: {value}"),
                    );
                }
            }
        }
    }
    Json(shared.received(slot)).into_response()
}

async fn validators<V: BlockVerifier>(State(shared): State<Arc<Shared<V>>>) -> Response {
    Json(shared.duties()).into_response()
}

/// Every refusal's body; the message is cut to [`MAX_ERROR_TEXT`] bytes, since it may quote
/// what the client sent.
pub(super) fn error_reply(
    status: StatusCode,
    reason: Option<RejectReason>,
    message: String,
) -> Response {
    let body = ErrorReply {
        code: status.as_u16(),
        message: bounded(&message, MAX_ERROR_TEXT),
        reason,
    };
    (status, Json(body)).into_response()
}
