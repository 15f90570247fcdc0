//! An accepted order as its sender sent it, and what kind of call brought it in. The RPC hands
//! one to replication for every call it acknowledges, the envelope log stores it, and a
//! receiving member reads the kind to know how to check and apply it.

use alloy_primitives::Bytes;

/// The kind of an accepted order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OrderKind {
    /// `eth_sendRawTransaction`: the order is the EIP-2718 transaction itself.
    RawTransaction = 0,
    /// `eth_sendBundle`.
    SendBundle = 1,
    /// `eth_cancelBundle`, or `eth_sendBundle` with no transactions and a uuid.
    CancelBundle = 2,
    /// `eth_sendPrivateTransaction`.
    SendPrivateTransaction = 3,
    /// `eth_cancelPrivateTransaction`.
    CancelPrivateTransaction = 4,
    /// `mev_sendBundle`.
    MevSendBundle = 5,
    /// `flashbots_setFeeRefundRecipient`: the signer delegates its refunds to another address.
    SetFeeRefundRecipient = 6,
}

/// A kind byte no [`OrderKind`] has (written by a newer node, or garbage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown order kind {0}")]
pub struct UnknownOrderKind(pub u8);

impl OrderKind {
    /// Every kind, in byte order.
    pub const ALL: [Self; 7] = [
        Self::RawTransaction,
        Self::SendBundle,
        Self::CancelBundle,
        Self::SendPrivateTransaction,
        Self::CancelPrivateTransaction,
        Self::MevSendBundle,
        Self::SetFeeRefundRecipient,
    ];

    /// The JSON-RPC methods whose calls are orders of this kind (an `eth_sendBundle` with no
    /// transactions is a cancel).
    pub const fn methods(self) -> &'static [&'static str] {
        match self {
            Self::RawTransaction => &["eth_sendRawTransaction"],
            Self::SendBundle => &["eth_sendBundle"],
            Self::CancelBundle => &["eth_cancelBundle", "eth_sendBundle"],
            Self::SendPrivateTransaction => &["eth_sendPrivateTransaction"],
            Self::CancelPrivateTransaction => &["eth_cancelPrivateTransaction"],
            Self::MevSendBundle => &["mev_sendBundle"],
            Self::SetFeeRefundRecipient => &["flashbots_setFeeRefundRecipient"],
        }
    }

    /// Whether the order travels as the sender's signed JSON-RPC body (all but raw
    /// transactions, which carry their own signature).
    pub const fn is_signed_call(self) -> bool {
        !matches!(self, Self::RawTransaction)
    }
}

impl TryFrom<u8> for OrderKind {
    type Error = UnknownOrderKind;

    fn try_from(value: u8) -> Result<Self, Self::Error> {
        Self::ALL
            .get(usize::from(value))
            .copied()
            .ok_or(UnknownOrderKind(value))
    }
}

/// An order this node acknowledged, exactly as the sender sent it, so another member can check
/// the sender's own signature and apply it with the same code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedOrder {
    /// What the call was.
    pub kind: OrderKind,
    /// The raw transaction, or the whole JSON-RPC body (one call or a batch).
    pub payload: Bytes,
    /// The `X-Flashbots-Signature` header (empty for raw transactions).
    pub auth: Bytes,
    /// The position of the call in a batch body (0 for a single call and raw transactions).
    pub call: u32,
}

impl AcceptedOrder {
    /// A raw transaction (`eth_sendRawTransaction`).
    pub const fn raw_transaction(raw: Bytes) -> Self {
        Self {
            kind: OrderKind::RawTransaction,
            payload: raw,
            auth: Bytes::new(),
            call: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_kind_bytes_roundtrip_and_unknown_bytes_are_refused() {
        for kind in OrderKind::ALL {
            assert_eq!(OrderKind::try_from(kind as u8), Ok(kind));
        }
        assert_eq!(OrderKind::try_from(7), Err(UnknownOrderKind(7)));
        assert_eq!(OrderKind::try_from(255), Err(UnknownOrderKind(255)));
    }
}
