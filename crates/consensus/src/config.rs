//! Settings of a member's ledger.

use std::{collections::BTreeMap, time::Duration};

use alloy_primitives::B256;
use commonware_cryptography::{Signer as _, ed25519};
use commonware_utils::ordered::Set;

use crate::{MemberId, Scheme, application::DEFAULT_VERIFY_TIMEOUT};

/// Domain separation of consensus votes.
pub const VOTE_NAMESPACE: &[u8] = b"cobuild.ledger.v1";

/// Settings of a member's ledger.
#[derive(Debug, Clone)]
pub struct Config {
    /// This member.
    pub me: MemberId,
    /// Its node key: signs its cuts and votes.
    pub key: ed25519::PrivateKey,
    /// Every member of the epoch with its node key (this one included).
    pub members: BTreeMap<MemberId, ed25519::PublicKey>,
    /// The membership epoch.
    pub epoch: u64,
    /// The chain's genesis block hash: the ledger's first record links to a digest of it.
    pub chain_genesis: B256,
    /// The slot of the ledger's first record.
    pub first_slot: u64,
    /// How often cuts are signed for newly imported blocks and waiting requests retried.
    pub tick: Duration,
    /// How long a verification waits for the block, the proposal or its parent.
    pub verify_timeout: Duration,
    /// How long a view waits for its leader's proposal before members vote to skip it.
    pub leader_timeout: Duration,
    /// Name of consensus's journal within the runtime's storage.
    pub partition: String,
}

impl Config {
    /// Settings with defaults fit for a LAN or loopback.
    pub fn new(
        me: MemberId,
        key: ed25519::PrivateKey,
        members: BTreeMap<MemberId, ed25519::PublicKey>,
        chain_genesis: B256,
    ) -> Self {
        Self {
            me,
            key,
            members,
            epoch: 0,
            chain_genesis,
            first_slot: 1,
            tick: Duration::from_millis(100),
            verify_timeout: DEFAULT_VERIFY_TIMEOUT,
            leader_timeout: Duration::from_secs(2),
            partition: "cobuild-ledger".into(),
        }
    }

    /// The members' keys in consensus's order (sorted by key).
    pub fn participants(&self) -> Set<ed25519::PublicKey> {
        Set::from_iter_dedup(self.members.values().cloned())
    }

    /// A scheme that checks votes and certificates only.
    pub fn verifier(&self) -> Scheme {
        Scheme::verifier(VOTE_NAMESPACE, self.participants())
    }

    /// A scheme that also signs this member's votes (`None` if its key is not a member's).
    pub fn signer(&self) -> Option<Scheme> {
        let mine = self.key.public_key();
        if self.members.get(&self.me) != Some(&mine) {
            return None;
        }
        Scheme::signer(VOTE_NAMESPACE, self.participants(), self.key.clone())
    }
}
