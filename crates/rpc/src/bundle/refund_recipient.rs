//! `flashbots_setFeeRefundRecipient`: a signer delegates the refunds its orders earn to another
//! address.
//!
//! The call is an order like a bundle: made durable and replicated before it is acknowledged,
//! so it sits in the envelope log, under a slot record's agreed cut, and then in the archive.
//! Refunds are computed from the orders records cover, so a delegation counts from the first
//! slot whose record covers it, at every member alike; nothing here keeps it in memory.

use alloy_primitives::Address;
use cobuild_primitives::OrderKind;
use jsonrpsee::{Extensions, core::RpcResult, proc_macros::rpc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Bundles;
use crate::{
    RpcError,
    replicate::{durable_then, signed_order},
};

/// A delegation as the method answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeRefundRecipient {
    /// The signer whose refunds are delegated.
    pub from: Address,
    /// Who receives them from now on.
    pub to: Address,
}

/// Flashbots' refund delegation method.
#[rpc(server, namespace = "flashbots")]
pub trait RefundRecipientApi {
    /// Sends the refunds of `from` (which must sign the request) to `to` from now on.
    #[method(name = "setFeeRefundRecipient", with_extensions)]
    async fn set_fee_refund_recipient(
        &self,
        from: Address,
        to: Address,
    ) -> RpcResult<FeeRefundRecipient>;
}

/// The delegation a call's parameters `[from, to]` make, signed by `signer`: only an address
/// can delegate its own refunds.
pub fn delegation(signer: Address, params: &[Value]) -> Result<FeeRefundRecipient, RpcError> {
    let [from, to] = params else {
        return Err(RpcError::InvalidParams(format!(
            "expected [from, to], got {} parameters",
            params.len()
        )));
    };
    let address = |value: &Value, name: &str| {
        serde_json::from_value::<Address>(value.clone())
            .map_err(|e| RpcError::InvalidParams(format!("{name}: {e}")))
    };
    signed_by(signer, address(from, "from")?, address(to, "to")?)
}

fn signed_by(signer: Address, from: Address, to: Address) -> Result<FeeRefundRecipient, RpcError> {
    if from != signer {
        return Err(RpcError::InvalidParams(format!(
            "the request is signed by {signer}, not by {from}: only an address delegates its \
             own refunds"
        )));
    }
    Ok(FeeRefundRecipient { from, to })
}

#[jsonrpsee::core::async_trait]
impl RefundRecipientApiServer for Bundles {
    async fn set_fee_refund_recipient(
        &self,
        ext: &Extensions,
        from: Address,
        to: Address,
    ) -> RpcResult<FeeRefundRecipient> {
        let signer = self.admit(ext)?;
        let delegation = signed_by(signer, from, to)?;
        let order = || signed_order(ext, OrderKind::SetFeeRefundRecipient);
        durable_then(&self.replication, ext, order, |_| ()).await?;
        Ok(delegation)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn test_only_the_signer_delegates_its_own_refunds() {
        let (me, other) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let params = [json!(me), json!(other)];
        assert_eq!(
            delegation(me, &params).expect("its own"),
            FeeRefundRecipient {
                from: me,
                to: other
            }
        );
        assert!(matches!(
            delegation(other, &params),
            Err(RpcError::InvalidParams(_))
        ));
        assert!(delegation(me, &params[..1]).is_err());
        assert!(delegation(me, &[json!(me), json!("not an address")]).is_err());
    }
}
