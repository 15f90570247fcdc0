//! The HTTP surface: two routes, JSON in and out, and every failure as `{code, message,
//! reason}` with its status. The handlers only parse and answer; the checks live in
//! [`Shared::submit`](super::service).

use std::sync::Arc;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State, rejection::BytesRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};

use super::service::Shared;
use crate::{
    BlockVerifier,
    client::{BLOCKS_PATH, VALIDATORS_PATH},
    reply::{ErrorReply, RejectReason},
};

pub(crate) fn router<V: BlockVerifier>(shared: Arc<Shared<V>>) -> Router {
    let limit = shared.config().max_body_bytes;
    Router::new()
        .route(BLOCKS_PATH, post(submit::<V>))
        .route(VALIDATORS_PATH, get(validators::<V>))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(shared)
}

async fn submit<V: BlockVerifier>(
    State(shared): State<Arc<Shared<V>>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
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
    match shared.submit(&body).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(err) => {
            tracing::info!(reason = ?err.reason(), error = %err, "relay.bid.rejected");
            error_reply(err.status(), err.reason(), err.to_string())
        }
    }
}

async fn validators<V: BlockVerifier>(State(shared): State<Arc<Shared<V>>>) -> Response {
    Json(shared.duties()).into_response()
}

fn error_reply(status: StatusCode, reason: RejectReason, message: String) -> Response {
    let body = ErrorReply {
        code: status.as_u16(),
        message,
        reason: Some(reason),
    };
    (status, Json(body)).into_response()
}
