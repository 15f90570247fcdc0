//! Which slots have a proposer registered at a relay, and with what fee recipient and gas
//! limit: a builder builds only for those (the others' proposers build their own blocks).

use cobuild_relay::{RelayClient, client::ProposerDuty};
use futures_util::future::join_all;
use parking_lot::Mutex;

/// The proposer duties the node's relays list, asked again when a slot is not among them.
#[derive(Debug)]
pub(crate) struct Registrations {
    relays: Vec<RelayClient>,
    known: Mutex<Vec<ProposerDuty>>,
}

impl Registrations {
    pub(crate) const fn new(relays: Vec<RelayClient>) -> Self {
        Self {
            relays,
            known: Mutex::new(Vec::new()),
        }
    }

    /// The registration of `slot`'s proposer at any relay, if one lists it. Relays that do not
    /// answer are logged and skipped: one relay down does not stop building for the others.
    pub(crate) async fn for_slot(&self, slot: u64) -> Option<ProposerDuty> {
        let find = |known: &[ProposerDuty]| known.iter().find(|d| d.slot == slot).cloned();
        if let Some(duty) = find(&self.known.lock()) {
            return Some(duty);
        }
        let answers = join_all(self.relays.iter().map(RelayClient::proposer_duties)).await;
        let mut fresh = Vec::new();
        for (index, answer) in answers.into_iter().enumerate() {
            match answer {
                Ok(duties) => fresh.extend(duties),
                Err(error) => tracing::warn!(relay = index, %error, "el.duties.failed"),
            }
        }
        let duty = find(&fresh);
        *self.known.lock() = fresh;
        duty
    }
}
