//! The ledger's own messages, on a channel beside consensus's vote, certificate and resolver
//! channels: cuts, proposed records, and the fetch of final records a member missed.
//!
//! A tag byte followed by RLP; trailing bytes are refused. Shape only: signatures and
//! certificates are checked by the receiver.

use alloy_rlp::{Decodable, Encodable};

use crate::{Entry, SignedCut, SlotRecord};

/// A ledger message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A member's signed cut of a slot.
    Cut(SignedCut),
    /// A proposed record, sent by its leader (consensus carries only its digest).
    Proposal(SlotRecord),
    /// A request for final records from this slot on.
    Fetch(u64),
    /// Final records with their proofs, in slot order.
    Final(Vec<Entry>),
}

/// Bytes that are not a ledger message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed ledger message: {0}")]
pub struct WireError(String);

const CUT: u8 = 0;
const PROPOSAL: u8 = 1;
const FETCH: u8 = 2;
const FINAL: u8 = 3;

impl Message {
    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Self::Cut(cut) => {
                out.push(CUT);
                cut.encode(&mut out);
            }
            Self::Proposal(record) => {
                out.push(PROPOSAL);
                record.encode(&mut out);
            }
            Self::Fetch(from) => {
                out.push(FETCH);
                from.encode(&mut out);
            }
            Self::Final(entries) => {
                out.push(FINAL);
                entries.encode(&mut out);
            }
        }
        out
    }

    /// Reads the wire form.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let (&tag, mut rest) = bytes
            .split_first()
            .ok_or_else(|| WireError("empty".into()))?;
        let bad = |e: alloy_rlp::Error| WireError(e.to_string());
        let message = match tag {
            CUT => Self::Cut(SignedCut::decode(&mut rest).map_err(bad)?),
            PROPOSAL => Self::Proposal(SlotRecord::decode(&mut rest).map_err(bad)?),
            FETCH => Self::Fetch(u64::decode(&mut rest).map_err(bad)?),
            FINAL => Self::Final(Vec::<Entry>::decode(&mut rest).map_err(bad)?),
            other => return Err(WireError(format!("unknown tag {other}"))),
        };
        if !rest.is_empty() {
            return Err(WireError("trailing bytes".into()));
        }
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use commonware_cryptography::{Signer as _, ed25519};

    use super::*;
    use crate::{Cut, Prefix};

    #[test]
    fn test_messages_round_trip_and_junk_is_refused() {
        let key = ed25519::PrivateKey::from_seed(1);
        let cut = Cut::new(0, 3, [Prefix { origin: 1, seq: 2 }]).sign(&key);
        for message in [
            Message::Cut(cut),
            Message::Fetch(7),
            Message::Final(Vec::new()),
        ] {
            let bytes = message.encode();
            assert_eq!(Message::decode(&bytes), Ok(message));
            let mut trailing = bytes.clone();
            trailing.push(1);
            assert!(Message::decode(&trailing).is_err());
        }
        assert!(Message::decode(&[]).is_err());
        assert!(Message::decode(&[9, 0xc0]).is_err());
    }
}
