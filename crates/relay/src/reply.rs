//! The relay's JSON error body, shared by the server that writes it and the client that reads
//! it, so a refusal's kind travels as data and nobody matches on message text.

use serde::{Deserialize, Serialize};

/// The body of every non-success reply: `{code, message}` as MEV-Boost relays send it, plus
/// an optional machine-readable `reason` that the devnet relay adds (other relays omit it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// The HTTP status code, repeated.
    pub code: u16,
    /// What was wrong, for people.
    pub message: String,
    /// What was wrong, for programs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<RejectReason>,
}

/// Why a relay refused a submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The body is not a submission this relay understands.
    Malformed,
    /// No slot is open for bids, or the bid is for another slot.
    WrongSlot,
    /// The bid does not build on the slot's parent.
    WrongParent,
    /// The bid names another proposer or fee recipient than the slot's duty.
    WrongProposer,
    /// The builder's public key is not on the relay's allow-list.
    UnknownBuilder,
    /// The BLS signature does not verify.
    BadSignature,
    /// The bid trace, the payload or the blobs bundle disagree, or the payload is not a block.
    InvalidPayload,
    /// Re-executing the block failed or produced another header.
    InvalidBlock,
    /// The bid's value is not what the block pays the proposer.
    ValueMismatch,
    /// The relay failed on its side.
    Internal,
    /// The relay serves as many clients as it will (event streams); retry later.
    Busy,
    /// A reason this client does not know.
    #[serde(other)]
    Other,
}
