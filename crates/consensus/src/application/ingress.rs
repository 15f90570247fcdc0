//! The application's mailbox: what simplex calls (propose, verify, broadcast, report) turned
//! into messages for the actor.
//!
//! Propose and verify wait for room in the mailbox. Broadcast and report cannot wait (the
//! traits are synchronous): they are dropped when the mailbox is full, which costs nothing
//! lasting, since a lost proposal is fetched as a final record and a lost finalization is
//! recovered by the periodic fetch.

use commonware_actor::Feedback;
use commonware_consensus::{
    Automaton, CertifiableAutomaton, Relay, Reporter,
    simplex::{
        Plan,
        types::{Activity, Context},
    },
};
use commonware_cryptography::ed25519;
use tokio::sync::{mpsc, oneshot};

use crate::{Digest, Finalization, Scheme};

/// What the actor is asked to do.
pub(crate) enum Message {
    Propose {
        context: Context<Digest, ed25519::PublicKey>,
        response: oneshot::Sender<Digest>,
    },
    Verify {
        context: Context<Digest, ed25519::PublicKey>,
        payload: Digest,
        response: oneshot::Sender<bool>,
    },
    Broadcast {
        payload: Digest,
        plan: Plan<ed25519::PublicKey>,
    },
    Finalized(Box<Finalization>),
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Self::Propose { .. } => "Propose",
            Self::Verify { .. } => "Verify",
            Self::Broadcast { .. } => "Broadcast",
            Self::Finalized(_) => "Finalized",
        };
        f.write_str(name)
    }
}

/// The handle simplex holds: automaton, relay and reporter in one.
#[derive(Debug, Clone)]
pub struct Mailbox {
    sender: mpsc::Sender<Message>,
}

impl Mailbox {
    pub(crate) const fn new(sender: mpsc::Sender<Message>) -> Self {
        Self { sender }
    }

    fn offer(&self, message: Message) -> Feedback {
        match self.sender.try_send(message) {
            Ok(()) => Feedback::Ok,
            Err(mpsc::error::TrySendError::Full(_)) => Feedback::Backoff,
            Err(mpsc::error::TrySendError::Closed(_)) => Feedback::Closed,
        }
    }
}

impl Automaton for Mailbox {
    type Context = Context<Digest, ed25519::PublicKey>;
    type Digest = Digest;

    async fn propose(&mut self, context: Self::Context) -> oneshot::Receiver<Digest> {
        let (response, receiver) = oneshot::channel();
        // A closed actor drops the response: consensus sees the proposal declined.
        let _ = self
            .sender
            .send(Message::Propose { context, response })
            .await;
        receiver
    }

    async fn verify(&mut self, context: Self::Context, payload: Digest) -> oneshot::Receiver<bool> {
        let (response, receiver) = oneshot::channel();
        let _ = self
            .sender
            .send(Message::Verify {
                context,
                payload,
                response,
            })
            .await;
        receiver
    }
}

impl CertifiableAutomaton for Mailbox {}

impl Relay for Mailbox {
    type Digest = Digest;
    type PublicKey = ed25519::PublicKey;
    type Plan = Plan<ed25519::PublicKey>;

    fn broadcast(&mut self, payload: Digest, plan: Self::Plan) -> Feedback {
        self.offer(Message::Broadcast { payload, plan })
    }
}

impl Reporter for Mailbox {
    type Activity = Activity<Scheme, Digest>;

    fn report(&mut self, activity: Self::Activity) -> Feedback {
        // Only finalizations matter to the ledger; votes and the rest are simplex's business.
        match activity {
            Activity::Finalization(finalization) => {
                self.offer(Message::Finalized(Box::new(finalization)))
            }
            _ => Feedback::Ok,
        }
    }
}
