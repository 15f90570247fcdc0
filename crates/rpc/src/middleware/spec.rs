//! The RPC layer that holds every call to what the JSON-RPC 2.0 spec and the eth API promise
//! where jsonrpsee is lenient: a notification that would place an order is refused rather than
//! dropped without a word, a method without parameters refuses parameters, and no error text
//! (jsonrpsee's parameter errors quote the offending value) grows with the input.

use jsonrpsee::{
    server::{
        MethodResponse,
        middleware::rpc::{Batch, Notification, RpcServiceT},
    },
    types::{ErrorObject, ErrorObjectOwned, Id, Request},
};

use cobuild_primitives::{MAX_ERROR_TEXT, OrderKind, bounded};

use crate::error::{INVALID_PARAMS, INVALID_REQUEST};

/// The longest error response (the whole JSON of one answer) passed on as it is; a longer one
/// keeps its code and id and has its texts cut to [`MAX_ERROR_TEXT`] bytes.
pub const MAX_ERROR_RESPONSE: usize = 1024;

/// Adds [`SpecService`] to the server's RPC stack.
#[derive(Debug, Clone, Copy)]
pub struct SpecLayer {
    max_response_body: u32,
    without_params: &'static [&'static str],
}

impl SpecLayer {
    /// `max_response_body` bounds a batch's answer as the server does; `without_params` names
    /// the methods that take no parameters.
    pub const fn new(max_response_body: u32, without_params: &'static [&'static str]) -> Self {
        Self {
            max_response_body,
            without_params,
        }
    }
}

impl<S> tower::Layer<S> for SpecLayer {
    type Service = SpecService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SpecService {
            inner,
            max_response_body: self.max_response_body,
            without_params: self.without_params,
        }
    }
}

/// The RPC service of [`SpecLayer`].
#[derive(Debug, Clone)]
pub struct SpecService<S> {
    inner: S,
    max_response_body: u32,
    without_params: &'static [&'static str],
}

/// Whether `method` places or cancels an order: such a call must be answered.
fn changes_state(method: &str) -> bool {
    OrderKind::ALL
        .iter()
        .any(|kind| kind.methods().contains(&method))
}

fn unanswerable(method: &str) -> ErrorObjectOwned {
    ErrorObject::owned(
        INVALID_REQUEST,
        format!(
            "{} is a notification (it has no id): an order is never taken without an answer; send it with an id",
            bounded(method, MAX_ERROR_TEXT)
        ),
        None::<()>,
    )
}

/// Whether raw JSON params carry anything (`[]`, `{}` and `null` are nothing).
fn has_params(params: Option<&str>) -> bool {
    params.is_some_and(|raw| {
        let compact: String = raw.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        !matches!(compact.as_str(), "" | "[]" | "{}" | "null")
    })
}

/// An error answer longer than [`MAX_ERROR_RESPONSE`] rebuilt with its texts cut; any other
/// answer unchanged.
fn bound_error(response: MethodResponse) -> MethodResponse {
    if !response.is_error() || response.as_json().get().len() <= MAX_ERROR_RESPONSE {
        return response;
    }
    #[derive(serde::Deserialize)]
    struct Answer<'a> {
        #[serde(borrow)]
        id: Id<'a>,
        error: ErrorObject<'a>,
    }
    let json = response.as_json().get().to_owned();
    let extensions = response.extensions().clone();
    let Ok(answer) = serde_json::from_str::<Answer<'_>>(&json) else {
        // Not an error object after all (cannot happen for jsonrpsee's answers): leave it.
        return response;
    };
    let data = answer.error.data().map(|data| {
        let text = serde_json::from_str::<String>(data.get()).unwrap_or_else(|_| data.get().into());
        bounded(&text, MAX_ERROR_TEXT)
    });
    let error = ErrorObject::owned(
        answer.error.code(),
        bounded(answer.error.message(), MAX_ERROR_TEXT),
        data,
    );
    MethodResponse::error(answer.id.into_owned(), error).with_extensions(extensions)
}

impl<S> RpcServiceT for SpecService<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            NotificationResponse = MethodResponse,
            BatchResponse = MethodResponse,
        > + Send
        + Sync
        + Clone
        + 'static,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(
        &self,
        request: Request<'a>,
    ) -> impl std::future::Future<Output = Self::MethodResponse> + Send + 'a {
        let refused = (self.without_params.contains(&request.method_name())
            && has_params(request.params.as_deref().map(|raw| raw.get())))
        .then(|| {
            let error = ErrorObject::owned(
                INVALID_PARAMS,
                format!("{} takes no parameters", request.method_name()),
                None::<()>,
            );
            MethodResponse::error(request.id.clone().into_owned(), error)
                .with_extensions(request.extensions.clone())
        });
        let inner = self.inner.clone();
        async move {
            match refused {
                Some(response) => response,
                None => bound_error(inner.call(request).await),
            }
        }
    }

    fn batch<'a>(
        &self,
        batch: Batch<'a>,
    ) -> impl std::future::Future<Output = Self::BatchResponse> + Send + 'a {
        // Each call passes through `call` above, and each notification through
        // `notification` below, which answers one that would place an order.
        super::batch::run(
            self.clone(),
            batch,
            self.max_response_body as usize,
            changes_state,
        )
    }

    fn notification<'a>(
        &self,
        notification: Notification<'a>,
    ) -> impl std::future::Future<Output = Self::NotificationResponse> + Send + 'a {
        let refused = changes_state(notification.method_name()).then(|| {
            MethodResponse::error(Id::Null, unanswerable(notification.method_name()))
                .with_extensions(notification.extensions.clone())
        });
        let inner = self.inner.clone();
        async move {
            match refused {
                Some(response) => response,
                None => inner.notification(notification).await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_empty_params_are_no_params() {
        for nothing in [None, Some("[]"), Some(" [ ] "), Some("{}"), Some("null")] {
            assert!(!has_params(nothing), "{nothing:?}");
        }
        for junk in [
            Some("[1]"),
            Some("[null]"),
            Some("{\"a\":1}"),
            Some("\"x\""),
        ] {
            assert!(has_params(junk), "{junk:?}");
        }
    }

    #[test]
    fn test_every_order_method_changes_state() {
        for method in [
            "eth_sendRawTransaction",
            "eth_sendBundle",
            "eth_cancelBundle",
            "eth_sendPrivateTransaction",
            "eth_cancelPrivateTransaction",
            "mev_sendBundle",
        ] {
            assert!(changes_state(method), "{method}");
        }
        assert!(!changes_state("eth_callBundle"));
        assert!(!changes_state("eth_chainId"));
    }

    #[test]
    fn test_a_long_error_keeps_its_code_and_id_and_loses_its_length() {
        let data = "a".repeat(10_000);
        let long = MethodResponse::error(
            Id::Number(7),
            ErrorObject::owned(INVALID_PARAMS, "Invalid params", Some(data)),
        );
        let short = bound_error(long);
        let json: serde_json::Value = serde_json::from_str(short.as_json().get()).expect("json");
        assert!(short.as_json().get().len() < MAX_ERROR_RESPONSE);
        assert_eq!(json["id"], 7);
        assert_eq!(json["error"]["code"], INVALID_PARAMS);
        assert_eq!(json["error"]["message"], "Invalid params");
        assert!(
            json["error"]["data"]
                .as_str()
                .is_some_and(|d| d.ends_with("(10000 bytes in all)"))
        );
    }
}
