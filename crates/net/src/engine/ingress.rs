//! How the rest of the node talks to the engine: hand it envelopes to send, change the member
//! set, and read its progress.

use std::{collections::BTreeMap, sync::Arc};

use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, watch};

use super::Peer;
use crate::{Envelope, MemberId};

/// A command for the engine.
#[derive(Debug)]
pub(crate) enum Command {
    /// Send an envelope this member appended to its log.
    Broadcast(Envelope),
    /// The member set changed; `applied` is answered once it is in force.
    Members {
        members: Vec<Peer>,
        applied: oneshot::Sender<()>,
    },
}

/// Replication progress of one origin at this member.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OriginProgress {
    /// Every envelope up to this seq is held.
    pub contiguous: u64,
    /// The highest seq some member proved exists.
    pub known_high: u64,
}

impl OriginProgress {
    /// Envelopes known to exist and not held yet.
    pub const fn missing(&self) -> u64 {
        self.known_high.saturating_sub(self.contiguous)
    }
}

/// What one peer last told this member.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerProgress {
    /// When its last message arrived (engine clock, milliseconds since the Unix epoch).
    pub last_heard_ms: u64,
    /// Its contiguous prefix per origin, from its last status.
    pub contiguous: BTreeMap<MemberId, u64>,
}

/// Where a starting member stands in learning what the others hold of its own envelopes.
///
/// A member whose log was wiped, replaced or restored from a backup must not number new orders
/// at places the others already hold (they would refuse them as equivocations). So before it
/// accepts orders it hears the others' statuses, whose signed heads say the highest of its own
/// envelopes each holds, and fetches what it lacks; its next sequence number then follows the
/// highest any of them proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// Still listening (or fetching its own envelopes back).
    Waiting {
        /// The other members heard from so far.
        heard: Vec<MemberId>,
        /// How many other members there are.
        others: usize,
    },
    /// Every other member was heard (or, after the timeout, a quorum) and this member holds
    /// every envelope of its own they proved: it may accept orders.
    Ready {
        /// The sequence number its next order gets.
        next_seq: u64,
        /// The other members heard from before it became ready.
        heard: Vec<MemberId>,
    },
    /// The timeout passed without a quorum: the highest own sequence number is unknown.
    Failed {
        /// The other members heard from.
        heard: Vec<MemberId>,
        /// How many other members must be heard from (a quorum, with this one).
        needed: usize,
    },
    /// A quorum was heard, but three timeouts later this member still lacks own envelopes the
    /// others proved exist (nobody serves them): numbering on would reuse their places.
    Behind {
        /// The own prefix held.
        holds: u64,
        /// The highest own envelope another member proved.
        proven: u64,
    },
}

/// Counters of what the engine saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Envelopes stored for the first time.
    pub stored: u64,
    /// Envelopes handed to the node (in each origin's order, once its prefix reached them).
    pub delivered: u64,
    /// Own envelopes fetched back from the other members (after a lost or restored log).
    pub recovered: u64,
    /// Envelopes already held.
    pub duplicates: u64,
    /// Envelopes whose origin signature did not verify (forged or altered).
    pub bad_signatures: u64,
    /// Envelopes from origins that are not members.
    pub unknown_origins: u64,
    /// Second envelopes for a place already taken: the origin equivocated.
    pub equivocations: u64,
    /// Messages that did not decode.
    pub malformed: u64,
    /// Envelopes left for later because their origin was over its rate.
    pub throttled: u64,
    /// Envelopes left unchecked because the peer that sent them was over its rate.
    pub throttled_peers: u64,
    /// Pulls sent.
    pub pulls_sent: u64,
    /// Envelopes sent in answer to pulls.
    pub pulled_served: u64,
}

/// The engine's state as the node may read it.
#[derive(Debug, Default)]
pub(crate) struct View {
    pub(crate) members: Vec<MemberId>,
    pub(crate) origins: BTreeMap<MemberId, OriginProgress>,
    pub(crate) peers: BTreeMap<MemberId, PeerProgress>,
    pub(crate) counters: Counters,
}

/// A handle to a running engine. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Mailbox {
    tx: mpsc::Sender<Command>,
    view: Arc<Mutex<View>>,
    recovery: watch::Receiver<Recovery>,
}

impl Mailbox {
    pub(crate) fn new(
        tx: mpsc::Sender<Command>,
        view: Arc<Mutex<View>>,
        recovery: watch::Receiver<Recovery>,
    ) -> Self {
        Self { tx, view, recovery }
    }

    /// Waits until the start-up recovery ended: [`Recovery::Ready`] (orders may be accepted)
    /// or [`Recovery::Failed`]. Returns [`Recovery::Failed`] with nobody heard if the engine
    /// stopped first.
    pub async fn recovered(&self) -> Recovery {
        let mut recovery = self.recovery.clone();
        let ended = recovery
            .wait_for(|r| !matches!(r, Recovery::Waiting { .. }))
            .await
            .map(|r| r.clone());
        ended.unwrap_or(Recovery::Failed {
            heard: Vec::new(),
            needed: 0,
        })
    }

    /// Where the start-up recovery stands now.
    pub fn recovery(&self) -> Recovery {
        self.recovery.borrow().clone()
    }

    /// Sends an envelope this member appended to its log to every member. Waits while the
    /// engine's queue is full (back-pressure on intake); the envelope is durable already, so
    /// one that is never sent (the engine stopped) is still pulled by the others later.
    pub async fn broadcast(&self, envelope: Envelope) {
        // A stopped engine is not an error for the caller: the log has the envelope.
        let _ = self.tx.send(Command::Broadcast(envelope)).await;
    }

    /// Replaces the member set and returns once the engine applies it: from then on,
    /// envelopes from removed members are refused and added ones are taken.
    pub async fn set_members(&self, members: Vec<Peer>) {
        let (applied, done) = oneshot::channel();
        if self
            .tx
            .send(Command::Members { members, applied })
            .await
            .is_ok()
        {
            // A stopped engine takes nothing from anyone, so there is nothing to wait for.
            let _ = done.await;
        }
    }

    /// The members whose envelopes the engine takes now (its last member set).
    pub fn members(&self) -> Vec<MemberId> {
        self.view.lock().members.clone()
    }

    /// Replication progress per origin.
    pub fn origins(&self) -> BTreeMap<MemberId, OriginProgress> {
        self.view.lock().origins.clone()
    }

    /// What each peer last announced.
    pub fn peers(&self) -> BTreeMap<MemberId, PeerProgress> {
        self.view.lock().peers.clone()
    }

    /// What the engine counted.
    pub fn counters(&self) -> Counters {
        self.view.lock().counters
    }
}
