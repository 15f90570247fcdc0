//! Why a request to a relay failed. Relay replies are outside strings: [`RelayError::from_reply`]
//! is the one place that turns a status and a body into a variant.

use cobuild_primitives::{MAX_ERROR_TEXT, bounded};
use http::StatusCode;

use crate::reply::{ErrorReply, RejectReason};

/// A request to a relay that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The configured URL is not a plain `http://` URL.
    #[error("relay url {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as configured.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The request could not be sent or its reply not received (connection refused, reset ...).
    #[error("relay request failed: {0}")]
    Transport(#[from] hyper_util::client::legacy::Error),
    /// The reply body could not be read, or was too long.
    #[error("relay reply body: {0}")]
    Body(Box<dyn std::error::Error + Send + Sync>),
    /// The relay did not answer within the configured timeout.
    #[error("relay did not answer in time")]
    Timeout,
    /// The submission could not be encoded.
    #[error("encoding the request: {0}")]
    Encode(serde_json::Error),
    /// A configured header is not a valid HTTP header.
    #[error("relay header {name:?}: {reason}")]
    InvalidHeader {
        /// The header's name as configured.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The TLS settings could not be made (a trusted certificate that does not decode).
    #[error("relay tls: {0}")]
    Tls(String),
    /// Compressing the body failed.
    #[error("compressing the request: {0}")]
    Compress(std::io::Error),
    /// A success reply did not hold what the endpoint promises.
    #[error("decoding the relay reply: {0}")]
    Decode(serde_json::Error),
    /// The relay refused the request as invalid (HTTP 400).
    #[error("relay refused the request ({reason:?}): {message}")]
    Refused {
        /// Why, when the relay says so (the devnet relay does); [`RejectReason::Other`] if not.
        reason: RejectReason,
        /// The relay's message.
        message: String,
    },
    /// The relay is throttling this builder (HTTP 429).
    #[error("relay is rate limiting: {message}")]
    TooManyRequests {
        /// The relay's message.
        message: String,
    },
    /// The relay failed on its side (HTTP 5xx).
    #[error("relay failed ({status}): {message}")]
    Unavailable {
        /// The status code.
        status: u16,
        /// The relay's message.
        message: String,
    },
    /// Any other status.
    #[error("relay answered {status}: {message}")]
    Unexpected {
        /// The status code.
        status: u16,
        /// The relay's message, or the start of the body.
        message: String,
    },
}

impl RelayError {
    /// Turns a relay reply that is not a success into an error.
    ///
    /// Reads the `{code, message}` body relays send (and the devnet relay's `reason`); a body
    /// that is not JSON is kept, cut to a few hundred bytes, as the message.
    pub fn from_reply(status: StatusCode, body: &[u8]) -> Self {
        let (message, reason) = match serde_json::from_slice::<ErrorReply>(body) {
            Ok(reply) => (bounded(&reply.message, MAX_ERROR_TEXT), reply.reason),
            Err(_) => (
                bounded(&String::from_utf8_lossy(body), MAX_ERROR_TEXT),
                None,
            ),
        };
        match status {
            StatusCode::BAD_REQUEST => Self::Refused {
                reason: reason.unwrap_or(RejectReason::Other),
                message,
            },
            StatusCode::TOO_MANY_REQUESTS => Self::TooManyRequests { message },
            s if s.is_server_error() => Self::Unavailable {
                status: s.as_u16(),
                message,
            },
            s => Self::Unexpected {
                status: s.as_u16(),
                message,
            },
        }
    }

    /// Whether the relay judged the request itself invalid (sending it again cannot help).
    pub const fn is_refusal(&self) -> bool {
        matches!(self, Self::Refused { .. })
    }

    /// The relay's reason for a refusal.
    pub const fn reject_reason(&self) -> Option<RejectReason> {
        match self {
            Self::Refused { reason, .. } => Some(*reason),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_replies_become_variants() {
        let refused = RelayError::from_reply(
            StatusCode::BAD_REQUEST,
            br#"{"code":400,"message":"value 2 is not the payment 1","reason":"value_mismatch"}"#,
        );
        assert!(matches!(
            refused,
            RelayError::Refused { reason: RejectReason::ValueMismatch, ref message }
                if message == "value 2 is not the payment 1"
        ));
        // A relay without `reason`, and a reason this client does not know.
        let plain = RelayError::from_reply(
            StatusCode::BAD_REQUEST,
            br#"{"code":400,"message":"simulation failed"}"#,
        );
        assert_eq!(plain.reject_reason(), Some(RejectReason::Other));
        let unknown = RelayError::from_reply(
            StatusCode::BAD_REQUEST,
            br#"{"code":400,"message":"x","reason":"from_the_future"}"#,
        );
        assert_eq!(unknown.reject_reason(), Some(RejectReason::Other));
        assert!(matches!(
            RelayError::from_reply(StatusCode::TOO_MANY_REQUESTS, b"slow down"),
            RelayError::TooManyRequests { ref message } if message == "slow down"
        ));
        assert!(matches!(
            RelayError::from_reply(StatusCode::BAD_GATEWAY, b""),
            RelayError::Unavailable { status: 502, .. }
        ));
        let long = "é".repeat(2 * MAX_ERROR_TEXT);
        match RelayError::from_reply(StatusCode::NOT_FOUND, long.as_bytes()) {
            RelayError::Unexpected { status, message } => {
                assert_eq!(status, 404);
                assert!(message.starts_with(&"é".repeat(MAX_ERROR_TEXT / 2)));
                assert!(message.len() < MAX_ERROR_TEXT + 32, "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
        let quoting = format!(r#"{{"code":400,"message":"{}"}}"#, "x".repeat(100_000));
        match RelayError::from_reply(StatusCode::BAD_REQUEST, quoting.as_bytes()) {
            RelayError::Refused { message, .. } => {
                assert!(message.len() < MAX_ERROR_TEXT + 32, "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
