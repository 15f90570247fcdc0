//! Settings of a member's ledger.

use std::{collections::BTreeMap, time::Duration};

use alloy_primitives::B256;
use commonware_cryptography::{Signer as _, ed25519};
use commonware_utils::ordered::Set;

use crate::{Epoch, MemberId, Membership, Scheme, application::DEFAULT_VERIFY_TIMEOUT};

/// Domain separation of consensus votes.
pub const VOTE_NAMESPACE: &[u8] = b"cobuild.ledger.v1";

/// Settings of a member's ledger.
#[derive(Debug, Clone)]
pub struct Config {
    /// This member.
    pub me: MemberId,
    /// Its node key: signs its cuts and votes.
    pub key: ed25519::PrivateKey,
    /// The founding members with their node keys: the members of epoch 0 when this member's
    /// ledger is new. A ledger that has started keeps the founders it stored; later epochs'
    /// members come from the records that opened them.
    pub members: BTreeMap<MemberId, ed25519::PublicKey>,
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
            chain_genesis,
            first_slot: 1,
            tick: Duration::from_millis(100),
            verify_timeout: DEFAULT_VERIFY_TIMEOUT,
            leader_timeout: Duration::from_secs(2),
            partition: "cobuild-ledger".into(),
        }
    }

    /// The founding membership.
    pub fn founders(&self) -> Membership {
        Membership::from_keys(&self.members)
    }

    /// A scheme that signs this member's votes in `epoch` (`None` if it is not a member of it
    /// under its key).
    pub fn signer(&self, epoch: &Epoch) -> Option<Scheme> {
        let mine = self.key.public_key();
        if epoch.members.get(&self.me) != Some(&mine) {
            return None;
        }
        Scheme::signer(
            VOTE_NAMESPACE,
            Set::from_iter_dedup(epoch.members.values().cloned()),
            self.key.clone(),
        )
    }
}
