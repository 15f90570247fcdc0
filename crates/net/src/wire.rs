//! The replication protocol's messages, as they travel on the engine's authenticated channels.
//!
//! Three messages: envelopes pushed (to everyone, or as the answer to a pull), a status that
//! announces what a member holds, and a pull that asks one member for a range of one origin's
//! envelopes. Each is a tag byte followed by RLP; decoding is bounded by the channel's message
//! size and refuses trailing bytes.

use alloy_rlp::{Decodable, Encodable, RlpDecodable, RlpEncodable};

use crate::{Envelope, MemberId, SignedHead};

/// One origin's progress as a member announces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct Progress {
    /// The origin.
    pub origin: MemberId,
    /// The announcing member holds every envelope of the origin up to this seq.
    pub contiguous: u64,
}

/// What a member holds: per origin its contiguous prefix, and the signed head of the highest
/// envelope it holds, which proves to the others that the envelope exists.
#[derive(Debug, Clone, Default, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct Status {
    /// Contiguous prefixes.
    pub progress: Vec<Progress>,
    /// Highest envelopes held, by origin.
    pub heads: Vec<SignedHead>,
}

/// A request for `origin`'s envelopes `from..=to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct Pull {
    /// The origin.
    pub origin: MemberId,
    /// First seq wanted.
    pub from: u64,
    /// Last seq wanted.
    pub to: u64,
}

/// A replication message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Envelopes: new orders, or the answer to a pull.
    Envelopes(Vec<Envelope>),
    /// What the sender holds.
    Status(Status),
    /// A request for missing envelopes.
    Pull(Pull),
}

/// Bytes that are not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed replication message: {0}")]
pub struct WireError(String);

const ENVELOPES: u8 = 0;
const STATUS: u8 = 1;
const PULL: u8 = 2;

impl Message {
    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Self::Envelopes(envelopes) => {
                out.push(ENVELOPES);
                envelopes.encode(&mut out);
            }
            Self::Status(status) => {
                out.push(STATUS);
                status.encode(&mut out);
            }
            Self::Pull(pull) => {
                out.push(PULL);
                pull.encode(&mut out);
            }
        }
        out
    }

    /// Reads the wire form (shape only: signatures are checked by the receiver).
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let (&tag, mut rest) = bytes
            .split_first()
            .ok_or_else(|| WireError("empty".into()))?;
        let bad = |e: alloy_rlp::Error| WireError(e.to_string());
        let message = match tag {
            ENVELOPES => Self::Envelopes(Vec::<Envelope>::decode(&mut rest).map_err(bad)?),
            STATUS => Self::Status(Status::decode(&mut rest).map_err(bad)?),
            PULL => Self::Pull(Pull::decode(&mut rest).map_err(bad)?),
            other => return Err(WireError(format!("unknown tag {other}"))),
        };
        if !rest.is_empty() {
            return Err(WireError("trailing bytes".into()));
        }
        Ok(message)
    }

    /// Encoded size of `envelope` inside an [`Message::Envelopes`] list, to pack batches.
    pub fn envelope_size(envelope: &Envelope) -> usize {
        envelope.length()
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::Bytes;
    use commonware_cryptography::{Signer as _, ed25519};

    use super::*;
    use crate::EnvelopeBody;
    use cobuild_primitives::OrderKind;

    fn envelope(seq: u64) -> Envelope {
        Envelope::sign(
            EnvelopeBody {
                origin: 1,
                seq,
                received_at_ms: 5,
                kind: OrderKind::RawTransaction as u8,
                payload: Bytes::from_static(b"\x02\xf8"),
                auth: Bytes::new(),
                call: 0,
            },
            &ed25519::PrivateKey::from_seed(1),
        )
    }

    #[test]
    fn test_messages_roundtrip() {
        let key = ed25519::PrivateKey::from_seed(1);
        let e = envelope(3);
        for message in [
            Message::Envelopes(vec![envelope(1), envelope(2)]),
            Message::Envelopes(Vec::new()),
            Message::Status(Status {
                progress: vec![Progress {
                    origin: 1,
                    contiguous: 2,
                }],
                heads: vec![e.signed_head()],
            }),
            Message::Pull(Pull {
                origin: 1,
                from: 3,
                to: 9,
            }),
        ] {
            assert_eq!(Message::decode(&message.encode()), Ok(message));
        }
        e.signed_head()
            .verify(&key.public_key())
            .expect("a head verifies as its envelope does");
    }

    #[test]
    fn test_garbage_is_refused() {
        for bytes in [&b""[..], &[9][..], &[0, 0xff][..], &[2, 0xc0][..]] {
            assert!(Message::decode(bytes).is_err(), "{bytes:?}");
        }
        let mut trailing = Message::Pull(Pull {
            origin: 1,
            from: 1,
            to: 1,
        })
        .encode();
        trailing.push(0);
        assert!(Message::decode(&trailing).is_err());
    }
}
