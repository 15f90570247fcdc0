//! Envelopes: an accepted order as one member relays it to the others, bound to its origin, its
//! place in the origin's sequence and its receive time by the origin's ed25519 signature.
//!
//! The order itself travels as the sender sent it: a raw signed transaction, or the raw JSON-RPC
//! body with its `X-Flashbots-Signature` header. So a receiver checks the sender's own signature
//! too, and a Byzantine member can neither forge an order nor re-attribute it to another
//! sender; the origin's signature stops it from altering or re-attributing another member's.

use crate::MemberId;
use alloy_primitives::{B256, Bytes, keccak256};
use alloy_rlp::{Decodable, Encodable, RlpDecodable, RlpEncodable};
use cobuild_primitives::{OrderKind, UnknownOrderKind};
use commonware_codec::{Copying, DecodeExt, Encode as _};
use commonware_cryptography::{
    BatchEntry, BatchVerifier as _, Signer as _, Verifier as _, ed25519,
};
use commonware_parallel::Sequential;

/// Domain separation of envelope signatures: they can never be taken for another message.
pub const NAMESPACE: &[u8] = b"cobuild.envelope.v2";

/// Largest encoded envelope accepted (the RPC's own body limit plus headroom).
pub const MAX_ENVELOPE_BYTES: usize = 6 * 1024 * 1024;

/// An envelope that cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The bytes are not an envelope.
    #[error("malformed envelope: {0}")]
    Malformed(String),
    /// Larger than any envelope may be.
    #[error("envelope of {0} bytes exceeds the limit")]
    TooLarge(usize),
    /// An order kind this node does not know.
    #[error(transparent)]
    UnknownKind(#[from] UnknownOrderKind),
    /// The origin's signature does not verify with the origin's registered key.
    #[error("signature of origin {origin} does not verify")]
    BadSignature {
        /// The claimed origin.
        origin: MemberId,
    },
    /// The sequence numbers start at 1.
    #[error("sequence number 0 is never used")]
    ZeroSequence,
}

/// What the origin signs.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct EnvelopeBody {
    /// The member that accepted the order from its sender.
    pub origin: MemberId,
    /// Its place in the origin's sequence, from 1, without gaps.
    pub seq: u64,
    /// When the origin accepted it, in milliseconds since the Unix epoch.
    pub received_at_ms: u64,
    /// [`OrderKind`] as a byte.
    pub kind: u8,
    /// The order as the sender sent it.
    pub payload: Bytes,
    /// The sender's `X-Flashbots-Signature` header, empty for raw transactions.
    pub auth: Bytes,
    /// Which call of the sender's body this order is: its position in a JSON-RPC batch (0 for
    /// a single call and for raw transactions). One batch can hold several orders; each
    /// acknowledged call is an envelope of its own, and a refused call is none.
    pub call: u32,
}

impl EnvelopeBody {
    /// The order kind.
    pub fn order_kind(&self) -> Result<OrderKind, EnvelopeError> {
        Ok(OrderKind::try_from(self.kind)?)
    }

    /// What the signature covers: the place and a digest of the order, so a member can prove
    /// an envelope exists (in a status) without sending the order itself.
    pub fn head(&self) -> Head {
        Head {
            origin: self.origin,
            seq: self.seq,
            received_at_ms: self.received_at_ms,
            kind: self.kind,
            order: order_digest(&self.payload, &self.auth, self.call),
        }
    }
}

/// The signed part of an envelope: its place, receive time, kind and order digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct Head {
    /// The origin.
    pub origin: MemberId,
    /// The origin's sequence number.
    pub seq: u64,
    /// Receive time at the origin, in milliseconds since the Unix epoch.
    pub received_at_ms: u64,
    /// The order kind byte.
    pub kind: u8,
    /// keccak256 of the RLP list `[payload, auth, call]`.
    pub order: B256,
}

/// What a head commits to of the order: keccak256 of the RLP list `[payload, auth, call]`.
fn order_digest(payload: &[u8], auth: &[u8], call: u32) -> B256 {
    let payload_length = payload.length() + auth.length() + call.length();
    let mut out = Vec::with_capacity(payload_length + 8);
    alloy_rlp::Header {
        list: true,
        payload_length,
    }
    .encode(&mut out);
    Encodable::encode(payload, &mut out);
    Encodable::encode(auth, &mut out);
    Encodable::encode(&call, &mut out);
    keccak256(out)
}

impl Head {
    fn signing_bytes(&self) -> Vec<u8> {
        alloy_rlp::encode(self)
    }
}

/// A head with its origin's signature: proof that the origin numbered an envelope `seq`, which
/// a member announces so the others know what to fetch.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct SignedHead {
    /// What was signed.
    pub head: Head,
    /// The origin's signature over the RLP of `head`, under [`NAMESPACE`].
    pub signature: Bytes,
}

impl SignedHead {
    /// Checks the signature against the origin's registered node key.
    pub fn verify(&self, origin_key: &ed25519::PublicKey) -> Result<(), EnvelopeError> {
        verify_head(&self.head, &self.signature, origin_key)
    }
}

fn verify_head(
    head: &Head,
    signature: &[u8],
    origin_key: &ed25519::PublicKey,
) -> Result<(), EnvelopeError> {
    match signed(head, signature) {
        Some((message, signature)) if origin_key.verify(NAMESPACE, &message, &signature) => Ok(()),
        _ => Err(EnvelopeError::BadSignature {
            origin: head.origin,
        }),
    }
}

/// What `signature` must sign for `head`, and the signature decoded (`None` if it does not
/// decode).
fn signed(head: &Head, signature: &[u8]) -> Option<(Vec<u8>, ed25519::Signature)> {
    let signature = ed25519::Signature::decode(Copying(signature)).ok()?;
    Some((head.signing_bytes(), signature))
}

/// A signed envelope.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct Envelope {
    /// What was signed.
    pub body: EnvelopeBody,
    /// The origin's ed25519 signature over the RLP of the body's [`Head`], under [`NAMESPACE`].
    pub signature: Bytes,
}

impl Envelope {
    /// Signs `body` as its origin.
    pub fn sign(body: EnvelopeBody, key: &ed25519::PrivateKey) -> Self {
        let signature = key.sign(NAMESPACE, &body.head().signing_bytes());
        Self {
            body,
            signature: Bytes::from(signature.encode().to_vec()),
        }
    }

    /// Checks the signature against the origin's registered node key.
    pub fn verify(&self, origin_key: &ed25519::PublicKey) -> Result<(), EnvelopeError> {
        verify_head(&self.body.head(), &self.signature, origin_key)
    }

    /// The signed head, to announce that this envelope exists.
    pub fn signed_head(&self) -> SignedHead {
        SignedHead {
            head: self.body.head(),
            signature: self.signature.clone(),
        }
    }

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        alloy_rlp::encode(self)
    }

    /// Reads the wire form, bounded in size, checking shape only (not the signature).
    pub fn decode(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(EnvelopeError::TooLarge(bytes.len()));
        }
        let mut slice = bytes;
        let envelope =
            Self::decode_rlp(&mut slice).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        if !slice.is_empty() {
            return Err(EnvelopeError::Malformed("trailing bytes".into()));
        }
        envelope.check()?;
        Ok(envelope)
    }

    /// Checks what decoding alone does not: a seq from 1.
    ///
    /// The kind is not checked here: an envelope of a kind this node does not know (written by
    /// a newer member) is still stored, relayed and handed over in its origin's order, so it
    /// never blocks that origin's later orders; the node's intake counts it and skips it.
    pub fn check(&self) -> Result<(), EnvelopeError> {
        if self.body.seq == 0 {
            return Err(EnvelopeError::ZeroSequence);
        }
        Ok(())
    }

    fn decode_rlp(buf: &mut &[u8]) -> alloy_rlp::Result<Self> {
        <Self as Decodable>::decode(buf)
    }

    /// A digest of the whole envelope, to tell two envelopes with the same place apart.
    pub fn digest(&self) -> alloy_primitives::B256 {
        let mut out = Vec::with_capacity(self.length());
        Encodable::encode(self, &mut out);
        keccak256(out)
    }
}

/// Checks each envelope's signature against the key beside it, as [`Envelope::verify`] does.
/// With `batch`, one batch equation for all of them first: a batch of valid signatures, which
/// is what honest members send, costs much less than checking each alone (multi-scalar
/// multiplication, and signatures under one key coalesce); when it fails each is checked alone,
/// to tell which. A caller that expects forgeries passes `batch: false`, so they cost no more
/// than one check each.
pub(crate) fn verify_all(items: &[(&Envelope, &ed25519::PublicKey)], batch: bool) -> Vec<bool> {
    struct Entry<'a> {
        at: usize,
        key: &'a ed25519::PublicKey,
        message: Vec<u8>,
        signature: ed25519::Signature,
    }
    let entries: Vec<Entry<'_>> = items
        .iter()
        .enumerate()
        .filter_map(|(at, (envelope, key))| {
            let (message, signature) = signed(&envelope.body.head(), &envelope.signature)?;
            Some(Entry {
                at,
                key,
                message,
                signature,
            })
        })
        .collect();
    // The batch's random weights must be unknown to whoever made the signatures.
    let all = batch
        && entries.len() > 1
        && ed25519::PublicKey::verify_batch(
            &mut rand::rng(),
            &entries,
            |_, e| BatchEntry {
                namespace: NAMESPACE,
                message: &e.message,
                public_key: e.key,
                signature: &e.signature,
            },
            &Sequential,
        );
    let mut valid = vec![false; items.len()];
    for e in &entries {
        valid[e.at] = all || e.key.verify(NAMESPACE, &e.message, &e.signature);
    }
    valid
}

#[cfg(test)]
mod tests {
    use commonware_cryptography::Signer;

    use super::*;

    fn body(seq: u64) -> EnvelopeBody {
        EnvelopeBody {
            origin: 3,
            seq,
            received_at_ms: 1_800_000_000_000,
            kind: OrderKind::SendBundle as u8,
            payload: Bytes::from_static(br#"{"jsonrpc":"2.0","id":1,"method":"eth_sendBundle"}"#),
            auth: Bytes::from_static(b"0xabc:0xdef"),
            call: 2,
        }
    }

    #[test]
    fn test_signed_envelope_roundtrips_and_verifies() {
        let key = ed25519::PrivateKey::from_seed(1);
        let envelope = Envelope::sign(body(7), &key);
        let decoded = Envelope::decode(&envelope.encode()).expect("decodes");
        assert_eq!(decoded, envelope);
        decoded.verify(&key.public_key()).expect("verifies");
    }

    #[test]
    fn test_altered_or_reattributed_envelope_fails() {
        let key = ed25519::PrivateKey::from_seed(1);
        let other = ed25519::PrivateKey::from_seed(2);
        let envelope = Envelope::sign(body(7), &key);
        let mut altered = envelope.clone();
        altered.body.payload = Bytes::from_static(b"{}");
        assert!(
            altered.verify(&key.public_key()).is_err(),
            "payload changed"
        );
        let mut other_call = envelope.clone();
        other_call.body.call = 0;
        assert!(
            other_call.verify(&key.public_key()).is_err(),
            "another call of the same batch"
        );
        let mut moved = envelope.clone();
        moved.body.seq = 8;
        assert!(moved.verify(&key.public_key()).is_err(), "sequence changed");
        let mut reattributed = envelope.clone();
        reattributed.body.origin = 4;
        assert!(reattributed.verify(&key.public_key()).is_err());
        assert!(
            envelope.verify(&other.public_key()).is_err(),
            "another member's key"
        );
    }

    #[test]
    fn test_a_batch_check_agrees_with_checking_each_envelope_alone() {
        let keys: Vec<_> = (1..=3).map(ed25519::PrivateKey::from_seed).collect();
        let publics: Vec<_> = keys.iter().map(|k| k.public_key()).collect();
        let envelopes: Vec<Envelope> = (1..=12)
            .map(|seq| Envelope::sign(body(seq), &keys[seq as usize % 3]))
            .collect();
        let check = |envelopes: &[Envelope], key_of: &dyn Fn(usize) -> usize| {
            let items: Vec<_> = envelopes
                .iter()
                .enumerate()
                .map(|(i, e)| (e, &publics[key_of(i)]))
                .collect();
            let alone: Vec<bool> = items.iter().map(|(e, k)| e.verify(k).is_ok()).collect();
            let batch = verify_all(&items, true);
            assert_eq!(batch, alone);
            assert_eq!(verify_all(&items, false), alone);
            batch
        };
        let signer = |i: usize| (i + 1) % 3;
        assert!(check(&envelopes, &signer).iter().all(|v| *v));
        assert!(check(&envelopes[..1], &signer)[0]);
        assert!(check(&[], &signer).is_empty());

        // One altered, one under another member's key, one with a signature that does not
        // decode: exactly those fail, the rest of the batch still passes.
        let mut mixed = envelopes.clone();
        mixed[2].body.payload = Bytes::from_static(b"{}");
        mixed[7].signature = Bytes::from_static(&[0xff; 3]);
        let wrong_key = |i: usize| {
            if i == 5 {
                (signer(i) + 1) % 3
            } else {
                signer(i)
            }
        };
        let valid = check(&mixed, &wrong_key);
        let failed: Vec<usize> = (0..valid.len()).filter(|i| !valid[*i]).collect();
        assert_eq!(failed, [2, 5, 7]);
    }

    #[test]
    fn test_garbage_is_refused_without_panicking() {
        for bytes in [&b""[..], &[0xc0][..], &[0xff; 40][..]] {
            assert!(Envelope::decode(bytes).is_err());
        }
        let key = ed25519::PrivateKey::from_seed(1);
        let mut unknown = body(1);
        unknown.kind = 99;
        let envelope = Envelope::sign(unknown, &key);
        // A kind from a newer member travels (it must not block its origin's later orders);
        // only the node's intake refuses it.
        let decoded = Envelope::decode(&envelope.encode()).expect("an unknown kind travels");
        assert_eq!(
            decoded.body.order_kind(),
            Err(EnvelopeError::UnknownKind(UnknownOrderKind(99)))
        );
        let zero = Envelope::sign(body(0), &key);
        assert_eq!(
            Envelope::decode(&zero.encode()),
            Err(EnvelopeError::ZeroSequence)
        );
        let mut trailing = Envelope::sign(body(1), &key).encode();
        trailing.push(0);
        assert!(Envelope::decode(&trailing).is_err());
    }
}
