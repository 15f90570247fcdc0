//! The slot loop beside an execution client: for each slot a consensus client announces, check
//! that a relay lists a proposer registration for it, follow the execution client to the slot's
//! parent, and build on it until shortly before bids close. Each round of the builder first
//! reads ahead, from the execution client, what its new orders touch.
//!
//! A newer announcement ends the slot being built at once ([`build_announced`]): a later slot,
//! or the same slot on another parent (a reorg), whose block the old candidates no longer are.

use std::time::Instant;

use alloy_consensus::{TxEnvelope, transaction::Recovered};
use alloy_primitives::{B256, Bytes};
use cobuild_chain::{HeadSource, next_gas_limit};
use cobuild_el::ElChain;
use cobuild_relay::events::{ReceivedSlot, SlotClock};
use tokio::sync::watch;

use super::registrations::Registrations;
use crate::{
    builder::{BuildSlot, Builder, ReadAhead, SlotJob, build_announced, cutoff},
    orderflow::Orderflow,
};

/// What the slot loop works with.
#[derive(Debug)]
pub(crate) struct Slots {
    pub(crate) chain: ElChain,
    pub(crate) orderflow: Orderflow,
    pub(crate) builder: Builder,
    pub(crate) registrations: Registrations,
    /// The chain's slot clock (from the consensus client).
    pub(crate) clock: SlotClock,
    /// The header extra data of this node's blocks.
    pub(crate) extra_data: Bytes,
}

impl Slots {
    /// Builds for every announced slot, until the announcements end or the future is dropped.
    pub(crate) async fn run(&self, slots: watch::Receiver<Option<ReceivedSlot>>) {
        build_announced(slots, &self.builder, self).await;
    }
}

impl BuildSlot for Slots {
    /// Builds for one slot until its cut-off, if a relay lists its proposer.
    async fn build(&self, slot: &ReceivedSlot) {
        let number = slot.event.slot();
        let cutoff = cutoff(slot.received, slot.deadline());
        if Instant::now() >= cutoff {
            tracing::debug!(slot = number, "el.slot.too_late");
            return;
        }
        let Some(duty) = self.registrations.for_slot(number).await else {
            tracing::info!(slot = number, "el.slot.unregistered");
            return;
        };
        let chain = self.chain.clone();
        let parent_hash = slot.event.parent_hash();
        // Per-slot figures: how long reading the parent took, and the execution client's round
        // trips for the whole slot (parent, pool checks, simulation reads, proofs for seals).
        let (started, trips_before) = (Instant::now(), self.chain.client().round_trips());
        let orderflow = self.orderflow.clone();
        // Reading the parent's header, and the pools' nonce checks on a new head, wait on the
        // execution client.
        let followed = tokio::task::spawn_blocking(move || {
            let followed = chain.follow(parent_hash)?;
            if followed.moved {
                orderflow.on_head(&followed.state, followed.header.number, &[]);
            }
            Ok::<_, cobuild_el::ElError>((followed.header, followed.state))
        })
        .await;
        let (parent, state) = match followed {
            Ok(Ok(followed)) => followed,
            Ok(Err(error)) => {
                tracing::warn!(
                    slot = number,
                    parent = %parent_hash,
                    %error,
                    "el.slot.parent_unreadable"
                );
                return;
            }
            Err(error) => {
                tracing::error!(slot = number, %error, "el.slot.follow_failed");
                return;
            }
        };
        let follow_ms = started.elapsed().as_millis() as u64;
        let mut attrs = slot
            .event
            .block_attributes(parent.gas_limit, self.extra_data.clone());
        if attrs.timestamp != self.clock.start(number) {
            tracing::warn!(
                slot = number,
                timestamp = attrs.timestamp,
                expected = self.clock.start(number),
                "el.slot.timestamp_off_clock"
            );
        }
        // Slots between the parent's and this one had no block: their proposers missed them.
        let missed = self
            .clock
            .slot_at(attrs.timestamp)
            .zip(self.clock.slot_at(parent.timestamp))
            .map_or(0, |(this, parents)| this.saturating_sub(parents + 1));
        if missed > 0 {
            tracing::info!(
                slot = number,
                missed,
                parent = parent.number,
                "el.slot.after_missed"
            );
        }
        attrs.gas_limit = next_gas_limit(parent.gas_limit, duty.gas_limit);
        let job = SlotJob {
            slot: number,
            attrs,
            parent,
            state,
            proposer_fee_recipient: duty.fee_recipient,
        };
        let outcome = self.builder.run_slot(job, cutoff).await;
        let round_trips = self.chain.client().round_trips() - trips_before;
        let run = match outcome {
            Ok(run) => run,
            Err(error) => {
                tracing::error!(slot = number, %error, round_trips, "el.slot.failed");
                return;
            }
        };
        // The bids' submit times are on the slot's `bidder.slot` line, one per relay.
        let (read_ahead_ms, sim_ms, fill_ms, seal_ms) = run.figures.millis();
        let (rounds, sealed) = (run.figures.rounds, run.figures.sealed);
        match run.best {
            Some(best) => tracing::info!(
                slot = number,
                value = %best.block.value,
                hash = %best.block.block.block.hash,
                follow_ms,
                read_ahead_ms,
                sim_ms,
                fill_ms,
                seal_ms,
                rounds,
                sealed,
                round_trips,
                "el.slot.built"
            ),
            None => tracing::info!(
                slot = number,
                follow_ms,
                read_ahead_ms,
                sim_ms,
                rounds,
                round_trips,
                "el.slot.nothing_to_bid"
            ),
        }
    }
}

/// The builder's rounds read ahead on the execution client's state: what their new orders touch,
/// in two batches, on the head the node follows, which is the slot's parent while the slot runs.
impl ReadAhead for ElChain {
    fn read_ahead(&self, parent: B256, txs: &[Recovered<TxEnvelope>]) {
        // The head moved on (the slot is ending): its reads would go to another state.
        if self.head().hash() != parent {
            return;
        }
        match ElChain::read_ahead(self, txs) {
            Ok(keys) => tracing::debug!(txs = txs.len(), keys, "el.read_ahead"),
            Err(error) => tracing::warn!(%error, "el.read_ahead.failed"),
        }
    }
}
