//! Reading a request body the way every HTTP layer of the server does: at most the server's
//! limit, within its deadline, and the answer when that fails.

use std::time::Duration;

use alloy_primitives::bytes::Bytes;
use cobuild_http::{BodyError, read_body};
use jsonrpsee::{
    server::{HttpBody, HttpResponse, http::response},
    types::{ErrorObject, Id, Response, ResponsePayload},
};

use crate::error::INVALID_REQUEST;

/// How a request body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    /// Most bytes (the server's own limit).
    pub max: u32,
    /// Time from the header to the body's last byte.
    pub deadline: Duration,
}

impl BodyLimits {
    /// The whole body, or the answer to give instead: 413 past the limit, 408 past the
    /// deadline, 400 for a broken one, each with a JSON-RPC error and a `null` id.
    pub(super) async fn read(self, body: HttpBody) -> Result<Bytes, HttpResponse> {
        read_body(body, self.max as usize, self.deadline)
            .await
            .map_err(|error| match error {
                BodyError::TooLarge { .. } => response::too_large(self.max),
                BodyError::Broken => response::malformed(),
                BodyError::Timeout(_) => {
                    let error = ErrorObject::owned(INVALID_REQUEST, error.to_string(), None::<()>);
                    let answer = Response::new(ResponsePayload::<()>::error(error), Id::Null);
                    let json = serde_json::to_string(&answer).unwrap_or_default();
                    let mut refused = response::ok_response(json);
                    *refused.status_mut() = http::StatusCode::REQUEST_TIMEOUT;
                    refused
                }
            })
    }
}
