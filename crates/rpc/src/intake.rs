//! The replicated-order intake: an order another member acknowledged (or this member did,
//! before a restart) applied to this node's pools with the same checks and code the RPC uses.
//!
//! The order comes as its sender sent it. A raw transaction carries its own signature; any
//! other order is one call of a signed JSON-RPC body, so the sender's `X-Flashbots-Signature`
//! is checked over the whole body, the call at the envelope's position is taken, its method must
//! be one of the order kind's, and only that call is applied. No budget is spent (the accepting
//! member spent it) and nothing is replicated again.

use alloy_primitives::{Address, Bytes};
use alloy_rpc_types_mev::{EthCancelBundle, EthCancelPrivateTransaction, EthSendBundle};
use cobuild_chain::Chain;
use cobuild_pool::{BundlePool, PoolError, Reservation, TxPool};
use cobuild_primitives::{BundleRequest, OrderKind, Replacement, UnknownOrderKind};
use serde_json::Value;

use crate::{AuthError, Bundles, Eth, OrderflowLimits, RpcError, verify_flashbots_signature};

/// Why a replicated order was not applied. [`IntakeError::Refused`] is a normal outcome (the
/// order broke a rule on this node's state, as it may have by the time it arrived); every other
/// variant means a faulty origin or a fault of this node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntakeError {
    /// The envelope's kind byte names no order kind this node knows.
    #[error(transparent)]
    UnknownKind(#[from] UnknownOrderKind),
    /// The sender's `X-Flashbots-Signature` does not verify over the body.
    #[error("sender signature: {0}")]
    Sender(#[from] AuthError),
    /// The body has no call at the envelope's position.
    #[error("the body has no call {call}")]
    NoSuchCall {
        /// The position the envelope names.
        call: u32,
    },
    /// The call at that position is another method than the order kind's.
    #[error("call is {method:?}, not a {kind:?} order")]
    WrongMethod {
        /// The envelope's kind.
        kind: OrderKind,
        /// The call's method.
        method: String,
    },
    /// The call's parameters are not a valid order.
    #[error("invalid order: {0}")]
    Invalid(String),
    /// A pool rule refused the order here (expired, cancelled, nonce used, pool full ...).
    #[error("refused: {0}")]
    Refused(PoolError),
    /// This node failed while applying it (a state read, a panicked task).
    #[error("failed: {0}")]
    Failed(String),
}

impl IntakeError {
    /// Whether the order was refused by a rule (normal) rather than failing.
    pub const fn is_refusal(&self) -> bool {
        matches!(self, Self::Refused(_))
    }
}

impl From<RpcError> for IntakeError {
    fn from(e: RpcError) -> Self {
        match e {
            RpcError::Pool(pool) if pool.is_internal() => Self::Failed(pool.to_string()),
            RpcError::Pool(pool) => Self::Refused(pool),
            RpcError::Internal(reason) => Self::Failed(reason),
            RpcError::Unauthorized(auth) => Self::Sender(auth),
            other => Self::Invalid(other.to_string()),
        }
    }
}

/// Applies replicated orders to a node's pools. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Intake {
    eth: Eth,
    bundles: Bundles,
}

impl Intake {
    /// The intake into `txs` and `bundles`, validating against `chain`.
    pub fn new(chain: Chain, txs: TxPool, bundles: BundlePool) -> Self {
        Self {
            eth: Eth::new(chain.clone(), txs.clone()),
            bundles: Bundles::new(chain, txs, bundles, OrderflowLimits::default()),
        }
    }

    /// Applies one order: `kind` is the envelope's kind byte, `payload` the raw transaction or
    /// the signed body, `auth` its header, `call` the call's position in the body.
    pub async fn apply(
        &self,
        kind: u8,
        payload: &Bytes,
        auth: &Bytes,
        call: u32,
    ) -> Result<(), IntakeError> {
        let kind = OrderKind::try_from(kind)?;
        if kind == OrderKind::RawTransaction {
            let (eth, raw) = (self.eth.clone(), payload.clone());
            let reservation = blocking(move || eth.reserve_raw(&raw)).await??;
            reservation.publish();
            return Ok(());
        }
        // Hashing and recovering over the body, and parsing it, are CPU work.
        let (body, header) = (payload.clone(), auth.clone());
        let (from, method, mut all_params) =
            tokio::task::spawn_blocking(move || signed_call(kind, &body, &header, call))
                .await
                .map_err(|e| IntakeError::Failed(format!("apply task: {e}")))??;
        let bad = |e: serde_json::Error| IntakeError::Invalid(e.to_string());
        if kind == OrderKind::SetFeeRefundRecipient {
            // Nothing to pool: the delegation counts where refunds are computed, from the
            // orders the ledger's records cover. Checked here as the accepting member did.
            crate::delegation(from, &all_params)?;
            return Ok(());
        }
        let params = all_params.swap_remove(0);
        match (kind, method.as_str()) {
            (OrderKind::SendBundle, _) => {
                let request: EthSendBundle = serde_json::from_value(params).map_err(bad)?;
                match Bundles::parse_bundle(request).await? {
                    BundleRequest::Send(bundle) => {
                        publish(self.bundles.reserve_bundle(from, bundle)?.1);
                    }
                    BundleRequest::Cancel(_) => {
                        return Err(IntakeError::WrongMethod { kind, method });
                    }
                }
            }
            (OrderKind::CancelBundle, "eth_cancelBundle") => {
                let request: EthCancelBundle = serde_json::from_value(params).map_err(bad)?;
                let replacement = Replacement {
                    uuid: request.replacement_uuid,
                    nonce: None,
                };
                self.bundles.cancel_bundle_as(from, replacement);
            }
            (OrderKind::CancelBundle, _) => {
                let request: EthSendBundle = serde_json::from_value(params).map_err(bad)?;
                match Bundles::parse_bundle(request).await? {
                    BundleRequest::Cancel(replacement) => {
                        self.bundles.cancel_bundle_as(from, replacement);
                    }
                    BundleRequest::Send(_) => {
                        return Err(IntakeError::WrongMethod { kind, method });
                    }
                }
            }
            (OrderKind::SendPrivateTransaction, _) => {
                publish(self.bundles.reserve_private(from, params).await?.1);
            }
            (OrderKind::CancelPrivateTransaction, _) => {
                let request: EthCancelPrivateTransaction =
                    serde_json::from_value(params).map_err(bad)?;
                self.bundles.cancel_private_as(from, &request.tx_hash);
            }
            (OrderKind::MevSendBundle, _) => {
                publish(self.bundles.reserve_mev_bundle(from, params).await?.1);
            }
            (OrderKind::RawTransaction | OrderKind::SetFeeRefundRecipient, _) => {
                unreachable!("handled above")
            }
        }
        Ok(())
    }
}

/// A replicated order is durable already (it came out of the log): it is offered at once.
fn publish(reservation: Reservation) {
    reservation.publish();
}

/// Runs blocking work off the async workers; a panic there is a failure, never a success.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RpcError> + Send + 'static,
) -> Result<Result<T, RpcError>, IntakeError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| IntakeError::Failed(format!("apply task: {e}")))
}

/// The sender, method and parameters of call `call` of a replicated signed order of `kind`,
/// checked as the accepting member checked them (CPU work: run it off the async workers).
pub fn signed_call(
    kind: OrderKind,
    body: &[u8],
    header: &[u8],
    call: u32,
) -> Result<(Address, String, Vec<Value>), IntakeError> {
    let from = signer(body, header)?;
    let (method, params) = call_params(body, kind, call)?;
    Ok((from, method, params))
}

/// The sender a replicated body proves (the same check the auth middleware makes).
fn signer(body: &[u8], header: &[u8]) -> Result<Address, IntakeError> {
    let header = std::str::from_utf8(header).map_err(|_| AuthError::Malformed)?;
    Ok(verify_flashbots_signature(header, body)?)
}

/// The method and parameters (at least one) of call `call` of a JSON-RPC body (one call, or a
/// batch), which must be a method of `kind`.
fn call_params(
    body: &[u8],
    kind: OrderKind,
    call: u32,
) -> Result<(String, Vec<Value>), IntakeError> {
    let body: Value =
        serde_json::from_slice(body).map_err(|e| IntakeError::Invalid(format!("body: {e}")))?;
    let mut call_value = match body {
        Value::Array(mut calls) => {
            let index = usize::try_from(call).unwrap_or(usize::MAX);
            if index >= calls.len() {
                return Err(IntakeError::NoSuchCall { call });
            }
            calls.swap_remove(index)
        }
        one if call == 0 => one,
        _ => return Err(IntakeError::NoSuchCall { call }),
    };
    let method = call_value
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if !kind.methods().contains(&method.as_str()) {
        return Err(IntakeError::WrongMethod { kind, method });
    }
    let params = match call_value.get_mut("params").map(Value::take) {
        Some(Value::Array(params)) if !params.is_empty() => params,
        _ => return Err(IntakeError::Invalid(format!("{method} without params"))),
    };
    Ok((method, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn test_a_panicked_apply_is_a_failure_never_a_success() {
        let outcome = blocking(|| -> Result<(), RpcError> { panic!("apply blew up") }).await;
        assert!(
            matches!(outcome, Err(IntakeError::Failed(_))),
            "{outcome:?}"
        );
        assert!(!IntakeError::Failed(String::new()).is_refusal());
        assert!(IntakeError::Refused(PoolError::AlreadyKnown).is_refusal());
    }

    #[test]
    fn test_the_call_at_the_envelopes_position_is_taken() {
        let batch = br#"[{"method":"eth_sendBundle","params":[{"a":1}]},{"method":"eth_callBundle","params":[{"b":2}]},{"method":"eth_cancelBundle","params":[{"c":3}]}]"#;
        assert_eq!(
            call_params(batch, OrderKind::SendBundle, 0).expect("call 0"),
            ("eth_sendBundle".into(), vec![serde_json::json!({"a":1})])
        );
        assert_eq!(
            call_params(batch, OrderKind::CancelBundle, 2)
                .expect("call 2")
                .1,
            vec![serde_json::json!({"c":3})]
        );
        assert_eq!(
            call_params(batch, OrderKind::SendBundle, 1),
            Err(IntakeError::WrongMethod {
                kind: OrderKind::SendBundle,
                method: "eth_callBundle".into()
            }),
            "a call of another method is not an order of this kind"
        );
        assert_eq!(
            call_params(batch, OrderKind::SendBundle, 3),
            Err(IntakeError::NoSuchCall { call: 3 })
        );
        let single = br#"{"jsonrpc":"2.0","id":1,"method":"eth_sendBundle","params":[{"a":1}]}"#;
        assert!(call_params(single, OrderKind::SendBundle, 0).is_ok());
        assert_eq!(
            call_params(single, OrderKind::SendBundle, 1),
            Err(IntakeError::NoSuchCall { call: 1 })
        );
        assert!(call_params(b"not json", OrderKind::SendBundle, 0).is_err());
    }
}
