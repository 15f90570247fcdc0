//! What the members agree on once a slot: signed cuts, the agreed cut, and the slot record.
//!
//! Everything here is plain data with one canonical encoding (RLP), so a record's digest is the
//! same at every member and a signature over a cut means one thing only.

use std::collections::{BTreeMap, BTreeSet};

use alloy_primitives::{B256, B512, U256};
use alloy_rlp::{Decodable, Encodable, RlpDecodable, RlpEncodable};
use commonware_cryptography::{Hasher as _, Sha256, Signer as _, Verifier as _, ed25519, sha256};
use serde::{Deserialize, Serialize};

use crate::{Epoch, Membership};

/// A member's id, as the registry numbers members.
pub type MemberId = u32;

/// Domain separation of cut signatures.
pub const CUT_NAMESPACE: &[u8] = b"cobuild.cut.v1";
/// Domain separation of the genesis digest the first record builds on.
const GENESIS_NAMESPACE: &[u8] = b"cobuild.ledger.genesis.v1";
/// Domain separation of bridge payloads.
const BRIDGE_NAMESPACE: &[u8] = b"cobuild.ledger.bridge.v1";

/// One origin's contiguous prefix: every envelope of `origin` up to `seq` is held.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    RlpEncodable,
    RlpDecodable,
    Serialize,
    Deserialize,
)]
pub struct Prefix {
    /// The origin member.
    pub origin: MemberId,
    /// Highest envelope number of the contiguous prefix.
    pub seq: u64,
}

/// What one member held when a slot closed: per origin, the contiguous prefix of its envelopes.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable, Serialize, Deserialize)]
pub struct Cut {
    /// The member that held it.
    pub member: MemberId,
    /// The slot that closed.
    pub slot: u64,
    /// Prefixes by origin, origins strictly increasing, no zero prefix.
    pub prefixes: Vec<Prefix>,
}

impl Cut {
    /// A cut of `member` at `slot` from prefixes in any order (zero prefixes are left out).
    pub fn new(member: MemberId, slot: u64, prefixes: impl IntoIterator<Item = Prefix>) -> Self {
        let mut by_origin = BTreeMap::new();
        for prefix in prefixes {
            if prefix.seq > 0 {
                let seq = by_origin.entry(prefix.origin).or_insert(0);
                *seq = prefix.seq.max(*seq);
            }
        }
        Self {
            member,
            slot,
            prefixes: by_origin
                .into_iter()
                .map(|(origin, seq)| Prefix { origin, seq })
                .collect(),
        }
    }

    /// Signs the cut with the member's node key.
    pub fn sign(self, key: &ed25519::PrivateKey) -> SignedCut {
        let signature = key.sign(CUT_NAMESPACE, &alloy_rlp::encode(&self));
        SignedCut {
            cut: self,
            signature: B512::from_slice(signature.as_ref()),
        }
    }

    fn is_canonical(&self) -> bool {
        self.prefixes
            .windows(2)
            .all(|pair| pair[0].origin < pair[1].origin)
            && self.prefixes.iter().all(|p| p.seq > 0)
    }
}

/// A cut with its member's signature.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable, Serialize, Deserialize)]
pub struct SignedCut {
    /// The cut.
    pub cut: Cut,
    /// The member's ed25519 signature over the RLP of the cut, under [`CUT_NAMESPACE`].
    pub signature: B512,
}

impl SignedCut {
    /// Checks the signature against the member's node key.
    pub fn verify(&self, key: &ed25519::PublicKey) -> bool {
        use commonware_codec::{Copying, DecodeExt as _};
        let Ok(signature) = ed25519::Signature::decode(Copying(self.signature.as_slice())) else {
            return false;
        };
        key.verify(CUT_NAMESPACE, &alloy_rlp::encode(&self.cut), &signature)
    }
}

/// The canonical block at a slot, as the member's chain holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, RlpEncodable, RlpDecodable, Serialize, Deserialize)]
pub struct BlockRef {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
    /// Parent hash.
    pub parent: B256,
}

/// Who built the winning block: a member, or nobody of the network (an outside builder or
/// the proposer's own block). RLP: a list of zero or one id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Winner(pub Option<MemberId>);

/// RLP of a newtype over `Option<T>` as a list of zero or one item.
macro_rules! rlp_optional {
    ($ty:ident, $inner:ty, $many:literal) => {
        impl Encodable for $ty {
            fn encode(&self, out: &mut dyn alloy_rlp::BufMut) {
                self.0.into_iter().collect::<Vec<_>>().encode(out);
            }
            fn length(&self) -> usize {
                self.0.into_iter().collect::<Vec<_>>().length()
            }
        }

        impl Decodable for $ty {
            fn decode(buf: &mut &[u8]) -> alloy_rlp::Result<Self> {
                match Vec::<$inner>::decode(buf)?.as_slice() {
                    [] => Ok(Self(None)),
                    [one] => Ok(Self(Some(*one))),
                    _ => Err(alloy_rlp::Error::Custom($many)),
                }
            }
        }
    };
}

rlp_optional!(Winner, MemberId, "more than one winner");

/// How many slots after a slot its refunds are committed: the record of slot `s + REFUND_LAG`
/// carries the digest of slot `s`'s refunds. Computing them needs the records of `s` and
/// `s + 1` final (the orders of `s`'s block may be covered only by the next record), which they
/// are, at every member that votes, a couple of slots later.
pub const REFUND_LAG: u64 = 4;

/// The slot whose refunds the record of `slot` commits to, if any.
pub fn refunds_slot(slot: u64) -> Option<u64> {
    slot.checked_sub(REFUND_LAG).filter(|s| *s > 0)
}

/// The digest of a slot's refunds as a record commits to it: none when no member won the
/// slot. RLP: a list of zero or one digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RefundCommitment(pub Option<B256>);

rlp_optional!(RefundCommitment, B256, "more than one refund digest");

/// What a member's own chain says about a slot's block: the part of a record every member
/// checks against its own view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, RlpEncodable, RlpDecodable, Serialize, Deserialize)]
pub struct SlotFacts {
    /// The canonical block.
    pub block: BlockRef,
    /// The member whose bid won.
    pub winner: Winner,
    /// What the block paid the proposer (wei).
    pub payment: U256,
    /// What the block was worth to its builder before paying the proposer (wei).
    pub value: U256,
}

/// One entry of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable, Serialize, Deserialize)]
pub struct SlotRecord {
    /// The membership epoch the record was agreed in.
    pub epoch: u64,
    /// The slot (on the devnet, the number of its block).
    pub slot: u64,
    /// The block at the slot and its figures.
    pub facts: SlotFacts,
    /// At least a quorum of signed cuts for the slot, members strictly increasing.
    pub cuts: Vec<SignedCut>,
    /// Per origin, the (f+1)-th highest prefix among the cuts.
    pub agreed: Vec<Prefix>,
    /// Digest of the previous record (or of the ledger's genesis).
    pub prev: B256,
    /// The members of the next epoch when this record closes its epoch; empty otherwise.
    pub next: Membership,
    /// The digest of the refunds of slot `slot - REFUND_LAG` (see [`refunds_slot`]), each
    /// voter having computed them itself.
    pub refunds: RefundCommitment,
}

impl SlotRecord {
    /// The record's digest: SHA-256 of its RLP, what consensus agrees on and the next record
    /// links to.
    pub fn digest(&self) -> sha256::Digest {
        Sha256::hash(&[&alloy_rlp::encode(self)])
    }

    /// The RLP bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        alloy_rlp::encode(self)
    }

    /// Reads RLP bytes, refusing trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, alloy_rlp::Error> {
        let mut rest = bytes;
        let record = Self::decode(&mut rest)?;
        if !rest.is_empty() {
            return Err(alloy_rlp::Error::UnexpectedLength);
        }
        Ok(record)
    }
}

/// The digest the ledger's first record links to: fixed by the chain's genesis block and the
/// founding members, so two ledgers of different chains never share a record and every record
/// commits, through the hash chain, to who founded the ledger.
pub fn genesis_digest(chain_genesis: B256, founders: &Membership) -> sha256::Digest {
    Sha256::hash(&[
        GENESIS_NAMESPACE,
        chain_genesis.as_slice(),
        &alloy_rlp::encode(founders),
    ])
}

/// The payload consensus agrees on after a record that closes its epoch, in place of a record:
/// the closing record's epoch may add nothing after it, but its consensus must still be able
/// to finalize it when its own view's finalize votes were lost, and a finalized bridge
/// finalizes the record it names (as a child finalizes its parent).
pub fn bridge_digest(closing: &B256) -> sha256::Digest {
    Sha256::hash(&[BRIDGE_NAMESPACE, closing.as_slice()])
}

/// Converts a digest to the `B256` records carry.
pub fn to_b256(digest: &sha256::Digest) -> B256 {
    B256::from_slice(digest.as_ref())
}

/// Most Byzantine members `n` members tolerate: f with n ≥ 3f + 1.
pub fn max_faults(n: usize) -> usize {
    n.saturating_sub(1) / 3
}

/// Votes (or cuts) that make a quorum among `n`: n − f.
pub fn quorum(n: usize) -> usize {
    n - max_faults(n)
}

/// The agreed cut of `cuts` tolerating `f` faults: per origin the (f+1)-th highest prefix
/// (a cut that does not name an origin holds none of it). At most f cuts can overstate what
/// their members hold, so at least one honest member holds every envelope the result covers.
pub fn agreed_cut(cuts: &[&Cut], f: usize) -> Vec<Prefix> {
    let origins: BTreeSet<MemberId> = cuts
        .iter()
        .flat_map(|cut| cut.prefixes.iter().map(|p| p.origin))
        .collect();
    origins
        .into_iter()
        .filter_map(|origin| {
            let mut seqs: Vec<u64> = cuts
                .iter()
                .map(|cut| {
                    cut.prefixes
                        .iter()
                        .find(|p| p.origin == origin)
                        .map_or(0, |p| p.seq)
                })
                .collect();
            seqs.sort_unstable_by(|a, b| b.cmp(a));
            let seq = seqs.get(f).copied().unwrap_or(0);
            (seq > 0).then_some(Prefix { origin, seq })
        })
        .collect()
}

/// Why a proposed record is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// It does not link to the parent consensus built it on.
    #[error("links to {got}, its parent is {parent}")]
    WrongParent {
        /// The link it carries.
        got: B256,
        /// The parent's digest.
        parent: B256,
    },
    /// Its slot does not follow the parent's.
    #[error("slot {got} does not follow the parent's slot {parent}")]
    WrongSlot {
        /// Its slot.
        got: u64,
        /// The parent's slot.
        parent: u64,
    },
    /// It is from another epoch.
    #[error("epoch {got}, the current one is {current}")]
    WrongEpoch {
        /// Its epoch.
        got: u64,
        /// The current epoch.
        current: u64,
    },
    /// Too few cuts, or two from one member, or cuts out of order.
    #[error("{got} cuts from distinct members in order, a quorum is {quorum}")]
    TooFewCuts {
        /// Distinct, ordered cuts.
        got: usize,
        /// How many are needed.
        quorum: usize,
    },
    /// A cut is from a non-member, for another slot, not canonical, or badly signed.
    #[error("the cut of member {member} is not valid: {why}")]
    BadCut {
        /// Its member.
        member: MemberId,
        /// What is wrong.
        why: &'static str,
    },
    /// The agreed cut is not what the cuts give.
    #[error("the agreed cut is not the (f+1)-th highest prefix of the cuts")]
    WrongAgreedCut,
    /// The next epoch's membership is unusable, or names the current one.
    #[error("the next membership is not valid: {0}")]
    BadNext(String),
    /// The block or figures differ from this member's chain.
    #[error("the slot's block or figures differ from this member's chain: {ours:?}")]
    WrongFacts {
        /// What this member's chain says.
        ours: Box<SlotFacts>,
    },
    /// The refunds it commits to differ from the ones this member computed.
    #[error("the refunds of slot {slot} are {got:?}, this member computed {ours:?}")]
    WrongRefunds {
        /// The slot.
        slot: u64,
        /// The record's digest.
        got: Option<B256>,
        /// This member's.
        ours: Option<B256>,
    },
}

/// Checks a proposed record against everything but the chain: its link, slot, epoch, cuts,
/// agreed cut and the next membership it names, if any.
pub fn check_structure(
    record: &SlotRecord,
    epoch: &Epoch,
    parent: (u64, B256),
) -> Result<(), RecordError> {
    let members = &epoch.members;
    if record.epoch != epoch.number {
        return Err(RecordError::WrongEpoch {
            got: record.epoch,
            current: epoch.number,
        });
    }
    if !record.next.is_empty() {
        let next = record
            .next
            .keys()
            .map_err(|e| RecordError::BadNext(e.to_string()))?;
        if next == *members {
            return Err(RecordError::BadNext(
                "it names the current membership".into(),
            ));
        }
    }
    if record.prev != parent.1 {
        return Err(RecordError::WrongParent {
            got: record.prev,
            parent: parent.1,
        });
    }
    if Some(record.slot) != parent.0.checked_add(1) {
        return Err(RecordError::WrongSlot {
            got: record.slot,
            parent: parent.0,
        });
    }
    let ordered = record
        .cuts
        .windows(2)
        .all(|pair| pair[0].cut.member < pair[1].cut.member);
    let needed = quorum(members.len());
    if !ordered || record.cuts.len() < needed {
        return Err(RecordError::TooFewCuts {
            got: if ordered { record.cuts.len() } else { 0 },
            quorum: needed,
        });
    }
    for signed in &record.cuts {
        let member = signed.cut.member;
        let bad = |why| RecordError::BadCut { member, why };
        let key = members.get(&member).ok_or(bad("not a member"))?;
        if signed.cut.slot != record.slot {
            return Err(bad("for another slot"));
        }
        if !signed.cut.is_canonical() {
            return Err(bad("prefixes not in canonical order"));
        }
        if !signed.verify(key) {
            return Err(bad("bad signature"));
        }
    }
    let cuts: Vec<&Cut> = record.cuts.iter().map(|s| &s.cut).collect();
    if record.agreed != agreed_cut(&cuts, max_faults(members.len())) {
        return Err(RecordError::WrongAgreedCut);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: MemberId) -> ed25519::PrivateKey {
        ed25519::PrivateKey::from_seed(u64::from(id) + 1)
    }

    fn members(n: u32) -> BTreeMap<MemberId, ed25519::PublicKey> {
        (0..n).map(|id| (id, key(id).public_key())).collect()
    }

    fn cut(member: MemberId, slot: u64, prefixes: &[(MemberId, u64)]) -> Cut {
        Cut::new(
            member,
            slot,
            prefixes.iter().map(|&(origin, seq)| Prefix { origin, seq }),
        )
    }

    fn facts() -> SlotFacts {
        SlotFacts {
            block: BlockRef {
                number: 5,
                hash: B256::repeat_byte(5),
                parent: B256::repeat_byte(4),
            },
            winner: Winner(Some(2)),
            payment: U256::from(7),
            value: U256::from(9),
        }
    }

    fn record(cuts: Vec<SignedCut>, prev: B256) -> SlotRecord {
        let plain: Vec<&Cut> = cuts.iter().map(|s| &s.cut).collect();
        let agreed = agreed_cut(&plain, 1);
        SlotRecord {
            epoch: 0,
            slot: 5,
            facts: facts(),
            cuts,
            agreed,
            prev,
            next: Membership::default(),
            refunds: Default::default(),
        }
    }

    #[test]
    fn test_the_agreed_cut_is_the_f_plus_first_highest_prefix() {
        // f = 1 of 4: one member may overstate; the second highest is held by an honest one.
        let cuts = [
            cut(0, 5, &[(0, 10), (1, 4)]),
            cut(1, 5, &[(0, 9), (1, 6), (3, 2)]),
            cut(2, 5, &[(0, 1_000_000), (1, 5)]),
        ];
        let refs: Vec<&Cut> = cuts.iter().collect();
        assert_eq!(
            agreed_cut(&refs, 1),
            vec![Prefix { origin: 0, seq: 10 }, Prefix { origin: 1, seq: 5 }],
            "origin 3 is named by one cut only, which a liar could do alone"
        );
        assert_eq!(agreed_cut(&refs, 0)[0].seq, 1_000_000);
    }

    #[test]
    fn test_quorum_and_faults() {
        assert_eq!((max_faults(4), quorum(4)), (1, 3));
        assert_eq!((max_faults(7), quorum(7)), (2, 5));
        assert_eq!((max_faults(3), quorum(3)), (0, 3));
        assert_eq!((max_faults(1), quorum(1)), (0, 1));
    }

    #[test]
    fn test_a_record_round_trips_and_its_digest_is_its_content() {
        let cuts = (0..3).map(|m| cut(m, 5, &[(0, 3)]).sign(&key(m))).collect();
        let record = record(cuts, B256::repeat_byte(1));
        let bytes = record.to_bytes();
        assert_eq!(SlotRecord::from_bytes(&bytes).expect("decodes"), record);
        let mut other = record.clone();
        other.facts.payment = U256::from(8);
        assert_ne!(other.digest(), record.digest());
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(SlotRecord::from_bytes(&trailing).is_err());
        // The refunds it commits to are part of its content too.
        let mut committed = record.clone();
        committed.refunds = RefundCommitment(Some(B256::repeat_byte(7)));
        assert_eq!(
            SlotRecord::from_bytes(&committed.to_bytes()).expect("decodes"),
            committed
        );
        assert_ne!(committed.digest(), record.digest());
        let two = alloy_rlp::encode(vec![B256::ZERO, B256::ZERO]);
        assert!(RefundCommitment::decode(&mut two.as_slice()).is_err());
    }

    #[test]
    fn test_a_well_formed_record_passes_and_each_flaw_is_named() {
        let members = members(4);
        let epoch = Epoch::new(0, members.clone());
        let prev = B256::repeat_byte(1);
        let cuts: Vec<SignedCut> = (0..3)
            .map(|m| cut(m, 5, &[(0, 3 + u64::from(m))]).sign(&key(m)))
            .collect();
        let good = record(cuts.clone(), prev);
        assert_eq!(check_structure(&good, &epoch, (4, prev)), Ok(()));

        assert!(matches!(
            check_structure(&good, &epoch, (4, B256::ZERO)),
            Err(RecordError::WrongParent { .. })
        ));
        assert!(matches!(
            check_structure(&good, &epoch, (3, prev)),
            Err(RecordError::WrongSlot { .. })
        ));
        assert!(matches!(
            check_structure(&good, &Epoch::new(1, members.clone()), (4, prev)),
            Err(RecordError::WrongEpoch { .. })
        ));
        // Two cuts only: below the quorum of 3.
        let short = record(cuts[..2].to_vec(), prev);
        assert!(matches!(
            check_structure(&short, &epoch, (4, prev)),
            Err(RecordError::TooFewCuts { .. })
        ));
        // The same member twice.
        let twice = record(
            vec![cuts[0].clone(), cuts[0].clone(), cuts[1].clone()],
            prev,
        );
        assert!(matches!(
            check_structure(&twice, &epoch, (4, prev)),
            Err(RecordError::TooFewCuts { .. })
        ));
        // A forged cut: member 2's cut signed by member 3's key.
        let mut forged = cuts.clone();
        forged[2] = cut(2, 5, &[(0, 100)]).sign(&key(3));
        assert!(matches!(
            check_structure(&record(forged, prev), &epoch, (4, prev)),
            Err(RecordError::BadCut {
                member: 2,
                why: "bad signature"
            })
        ));
        // A cut of another slot.
        let mut stale = cuts.clone();
        stale[1] = cut(1, 4, &[(0, 3)]).sign(&key(1));
        assert!(matches!(
            check_structure(&record(stale, prev), &epoch, (4, prev)),
            Err(RecordError::BadCut { member: 1, .. })
        ));
        // An agreed cut raised above what the cuts give.
        let mut raised = good.clone();
        raised.agreed[0].seq += 1;
        assert_eq!(
            check_structure(&raised, &epoch, (4, prev)),
            Err(RecordError::WrongAgreedCut)
        );
        // A change of membership: a new set passes; the current one, or a broken one, not.
        let mut closing = good.clone();
        closing.next = Membership::from_keys(&self::members(5));
        assert_eq!(check_structure(&closing, &epoch, (4, prev)), Ok(()));
        closing.next = Membership::from_keys(&members);
        assert!(matches!(
            check_structure(&closing, &epoch, (4, prev)),
            Err(RecordError::BadNext(_))
        ));
        closing.next.0.reverse();
        assert!(matches!(
            check_structure(&closing, &epoch, (4, prev)),
            Err(RecordError::BadNext(_))
        ));
    }
}
