//! Membership epochs: which members agree on records, and how that changes.
//!
//! The ledger starts with its founding members (epoch 0, committed in the genesis digest). A
//! membership change never takes effect mid-slot: a record whose `next` names a membership
//! closes its epoch, and the record after it is agreed by the members it names, in the next
//! epoch, on a consensus instance of their own. So every record is certified by the members
//! of its epoch, and the membership of every epoch is fixed by a record the previous one
//! certified: anyone who trusts the founders (or the current registry, walking the hash chain
//! back from a record it certified) can check the whole ledger.

use std::collections::BTreeMap;

use alloy_primitives::B256;
use alloy_rlp::{RlpDecodable, RlpDecodableWrapper, RlpEncodable, RlpEncodableWrapper};
use commonware_codec::{Copying, DecodeExt as _};
use commonware_cryptography::ed25519;
use serde::{Deserialize, Serialize};

use crate::{MemberId, Scheme, SlotRecord, record::max_faults, record::quorum, verify::verifier};

/// One member of a membership: its id and 32-byte ed25519 node key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, RlpEncodable, RlpDecodable, Serialize, Deserialize)]
pub struct MemberKey {
    /// The member's id.
    pub id: MemberId,
    /// Its node key.
    pub key: B256,
}

/// A member set as records carry it: ids strictly increasing. In a record's `next` the empty
/// list means "no change".
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    Default,
    RlpEncodableWrapper,
    RlpDecodableWrapper,
    Serialize,
    Deserialize,
)]
#[serde(transparent)]
pub struct Membership(pub Vec<MemberKey>);

/// A membership that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    /// No member at all.
    #[error("the membership is empty")]
    Empty,
    /// Ids not strictly increasing.
    #[error("member ids are not strictly increasing")]
    NotCanonical,
    /// A key that is not an ed25519 point, or one key listed for two members.
    #[error("member {0}'s node key is not a usable ed25519 key")]
    BadKey(MemberId),
}

impl Membership {
    /// The membership of `members`.
    pub fn from_keys(members: &BTreeMap<MemberId, ed25519::PublicKey>) -> Self {
        Self(
            members
                .iter()
                .map(|(id, key)| MemberKey {
                    id: *id,
                    key: B256::from_slice(key.as_ref()),
                })
                .collect(),
        )
    }

    /// True when it names nobody (in a record: no change).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The members' keys, checked: at least one member, ids strictly increasing, every key a
    /// distinct ed25519 point.
    pub fn keys(&self) -> Result<BTreeMap<MemberId, ed25519::PublicKey>, MembershipError> {
        if self.0.is_empty() {
            return Err(MembershipError::Empty);
        }
        if !self.0.windows(2).all(|pair| pair[0].id < pair[1].id) {
            return Err(MembershipError::NotCanonical);
        }
        let mut keys = BTreeMap::new();
        let mut seen = std::collections::BTreeSet::new();
        for member in &self.0 {
            let key = ed25519::PublicKey::decode(Copying(member.key.as_slice()))
                .map_err(|_| MembershipError::BadKey(member.id))?;
            if !seen.insert(member.key) {
                return Err(MembershipError::BadKey(member.id));
            }
            keys.insert(member.id, key);
        }
        Ok(keys)
    }
}

/// An epoch: its number and the members that agree on its records.
#[derive(Clone)]
pub struct Epoch {
    /// The epoch's number (0 for the founders).
    pub number: u64,
    /// Its members with their node keys.
    pub members: BTreeMap<MemberId, ed25519::PublicKey>,
    /// Checks its votes and certificates.
    pub verifier: Scheme,
}

impl std::fmt::Debug for Epoch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Epoch")
            .field("number", &self.number)
            .field("members", &self.members.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl PartialEq for Epoch {
    fn eq(&self, other: &Self) -> bool {
        self.number == other.number && self.members == other.members
    }
}

impl Epoch {
    /// Epoch `number` among `members`.
    pub fn new(number: u64, members: BTreeMap<MemberId, ed25519::PublicKey>) -> Self {
        let verifier = verifier(&members);
        Self {
            number,
            members,
            verifier,
        }
    }

    /// The epoch that follows `record`: the next one if the record closes this epoch (its
    /// `next` names a usable membership), else this one. `record` must be of this epoch.
    pub fn after(&self, record: &SlotRecord) -> Self {
        match record.next.keys() {
            Ok(members) if !record.next.is_empty() => Self::new(self.number + 1, members),
            _ => self.clone(),
        }
    }

    /// The epoch's membership as a record names it.
    pub fn membership(&self) -> Membership {
        Membership::from_keys(&self.members)
    }

    /// How many members may be Byzantine.
    pub fn max_faults(&self) -> usize {
        max_faults(self.members.len())
    }

    /// Cuts or votes that make a quorum.
    pub fn quorum(&self) -> usize {
        quorum(self.members.len())
    }
}

#[cfg(test)]
mod tests {
    use commonware_cryptography::Signer as _;

    use super::*;

    fn keys(ids: &[MemberId]) -> BTreeMap<MemberId, ed25519::PublicKey> {
        ids.iter()
            .map(|&id| {
                (
                    id,
                    ed25519::PrivateKey::from_seed(u64::from(id)).public_key(),
                )
            })
            .collect()
    }

    #[test]
    fn test_a_membership_round_trips_and_flaws_are_named() {
        let members = keys(&[0, 2, 5]);
        let membership = Membership::from_keys(&members);
        assert_eq!(membership.keys(), Ok(members));
        let bytes = alloy_rlp::encode(&membership);
        let decoded: Membership = alloy_rlp::decode_exact(&bytes).expect("decodes");
        assert_eq!(decoded, membership);

        assert_eq!(Membership::default().keys(), Err(MembershipError::Empty));
        let mut swapped = membership.clone();
        swapped.0.swap(0, 1);
        assert_eq!(swapped.keys(), Err(MembershipError::NotCanonical));
        let mut twice = membership.clone();
        twice.0[1].key = twice.0[0].key;
        assert_eq!(twice.keys(), Err(MembershipError::BadKey(2)));
    }
}
