//! The HTTP surface: the builder API, the data API and the slot event stream, JSON in and out, and every failure as `{code, message,
//! reason}` with its status. The handlers only parse and answer; the checks live in
//! [`Shared::submit`](super::service).

use std::sync::Arc;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State, rejection::BytesRejection},
    http::{StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::{get, post},
};

use super::{events, service::Shared};
use crate::{
    BlockVerifier,
    client::{BLOCKS_PATH, RECEIVED_PATH, VALIDATORS_PATH},
    events::EVENTS_PATH,
    reply::{ErrorReply, RejectReason},
};

pub(crate) fn router<V: BlockVerifier>(shared: Arc<Shared<V>>) -> Router {
    let limit = shared.config().max_body_bytes;
    Router::new()
        .route(BLOCKS_PATH, post(submit::<V>))
        .route(VALIDATORS_PATH, get(validators::<V>))
        .route(RECEIVED_PATH, get(received::<V>))
        .route(EVENTS_PATH, get(events::events::<V>))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(shared)
}

async fn submit<V: BlockVerifier>(
    State(shared): State<Arc<Shared<V>>>,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // builder-specs: `?cancellations=1` lets a lower bid replace the builder's earlier one.
    let cancellation = uri.query().is_some_and(|q| {
        q.split('&')
            .any(|p| p == "cancellations=1" || p == "cancellations=true")
    });
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            tracing::info!(status = rejection.status().as_u16(), error = %rejection, "relay.bid.rejected");
            return error_reply(
                rejection.status(),
                RejectReason::Malformed,
                rejection.body_text(),
            );
        }
    };
    match shared.submit(body, cancellation).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(err) => {
            tracing::info!(reason = ?err.reason(), error = %err, "relay.bid.rejected");
            error_reply(err.status(), err.reason(), err.to_string())
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
                        RejectReason::Malformed,
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

pub(super) fn error_reply(status: StatusCode, reason: RejectReason, message: String) -> Response {
    let body = ErrorReply {
        code: status.as_u16(),
        message,
        reason: Some(reason),
    };
    (status, Json(body)).into_response()
}
