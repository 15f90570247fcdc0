//! Replication engine settings.

use std::time::Duration;

use commonware_cryptography::ed25519;

use crate::MemberId;

/// A member as the engine knows it: its id and the key its envelopes and links are signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Registry id.
    pub id: MemberId,
    /// Node key (ed25519).
    pub key: ed25519::PublicKey,
}

/// Settings of the replication engine.
#[derive(Debug, Clone)]
pub struct Config {
    /// This member's id.
    pub me: MemberId,
    /// The current members (this one included).
    pub members: Vec<Peer>,
    /// How often the status (what this member holds) goes to every member, and missing
    /// envelopes are pulled. A lost push is healed within about two intervals.
    pub status_interval: Duration,
    /// How often envelopes received from the others are made durable (one disk flush). Until
    /// then a crash loses them, and they are fetched again; a flush per message would hold
    /// every insert behind the disk.
    pub copies_sync_interval: Duration,
    /// Most envelopes asked for in one pull (and served in one answer).
    pub max_pull: u64,
    /// Most bytes of envelopes in one message (below the channel's message size limit).
    pub max_message_bytes: usize,
    /// Re-send every envelope to the other members on first valid sight, so an envelope that
    /// reached one member reaches the rest without waiting for a pull.
    pub forward: bool,
    /// Commands queued to the engine before `broadcast` waits.
    pub mailbox_size: usize,
    /// Most new envelopes of one origin taken in per second (the burst is as large), counted
    /// only once their origin signature verified, so forgeries in an origin's name cannot spend
    /// its budget. More are left unstored and pulled later, so a member that floods the network
    /// with its own orders is slowed to this rate without costing the others theirs.
    pub max_origin_rate: u32,
    /// Most envelopes one peer may make this member check per second, whatever origin they
    /// claim (the burst is as large): charged before the signature check, so a peer sending
    /// forgeries spends its own budget, never an honest origin's. `None`: the origin rate
    /// times the number of members (an honest peer relays every origin's orders).
    pub max_peer_rate: Option<u32>,
    /// How long a starting member waits to hear from every other member before it settles for
    /// a quorum (see [`Recovery`](super::Recovery)).
    pub recovery_timeout: Duration,
}

impl Config {
    /// Settings for member `me` of `members`, with defaults fit for a LAN or loopback.
    pub fn new(me: MemberId, members: Vec<Peer>) -> Self {
        Self {
            me,
            members,
            status_interval: Duration::from_millis(100),
            copies_sync_interval: Duration::from_secs(1),
            max_pull: 512,
            max_message_bytes: 4 * 1024 * 1024,
            forward: true,
            mailbox_size: 4096,
            max_origin_rate: 20_000,
            max_peer_rate: None,
            recovery_timeout: Duration::from_secs(10),
        }
    }
}
