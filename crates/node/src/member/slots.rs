//! The member's slot loop: for each slot the hub announces, catch up to its parent, build on
//! it until shortly before the relay stops taking bids (the bidder sends each improvement), and
//! remember the best block so the follower knows when it won.
//!
//! A newer announcement arriving mid-slot ends the slot being built at once: the hub has moved
//! on, and bids for the old slot would be refused.

use std::time::Instant;

use alloy_primitives::Bytes;
use cobuild_chain::Chain;
use cobuild_relay::events::ReceivedSlot;
use tokio::sync::watch;

use super::{follow::Follower, hub::HubClient};
use crate::builder::{BuildSlot, Builder, SlotJob, build_announced, cutoff};

/// What the slot loop works with.
#[derive(Debug)]
pub(crate) struct Slots<'a> {
    pub(crate) chain: &'a Chain,
    pub(crate) builder: &'a Builder,
    pub(crate) follower: &'a Follower<HubClient>,
    /// The header extra data of this node's blocks (names the node).
    pub(crate) extra_data: Bytes,
}

impl Slots<'_> {
    /// Builds for every announced slot, until the announcements end or the future is dropped.
    pub(crate) async fn run(&self, slots: watch::Receiver<Option<ReceivedSlot>>) {
        build_announced(slots, self.builder, self).await;
    }
}

impl BuildSlot for Slots<'_> {
    /// Builds for one slot until its cut-off.
    async fn build(&self, slot: &ReceivedSlot) {
        let number = slot.event.slot();
        let cutoff = cutoff(slot.received, slot.deadline());
        if Instant::now() >= cutoff {
            tracing::debug!(slot = number, "member.slot.too_late");
            return;
        }
        // The parent is usually the block the hub committed just before announcing.
        if self.chain.head().number < slot.event.parent_number() {
            match tokio::time::timeout_at(
                cutoff.into(),
                self.follower.sync_to(slot.event.parent_number()),
            )
            .await
            {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => {
                    tracing::warn!(slot = number, %error, "member.slot.sync_failed");
                    return;
                }
                Err(_) => {
                    tracing::warn!(slot = number, "member.slot.sync_too_slow");
                    return;
                }
            }
        }
        let (parent, state) = match self.chain.head_state() {
            Ok(head) => head,
            Err(error) => {
                tracing::error!(slot = number, %error, "member.slot.head_state_failed");
                return;
            }
        };
        if parent.hash() != slot.event.parent_hash() {
            tracing::warn!(
                slot = number,
                head = %parent.hash(),
                expected = %slot.event.parent_hash(),
                "member.slot.other_parent"
            );
            return;
        }
        let job = SlotJob {
            slot: number,
            attrs: slot
                .event
                .block_attributes(parent.gas_limit, self.extra_data.clone()),
            parent,
            state,
            proposer_fee_recipient: slot.event.proposer_fee_recipient(),
        };
        match self.builder.run_slot(job, cutoff).await.map(|run| run.best) {
            Ok(Some(best)) => self
                .follower
                .remember(best.block.block.block.hash, best.block.orders.clone()),
            Ok(None) => tracing::debug!(slot = number, "member.slot.nothing_to_bid"),
            Err(error) => tracing::error!(slot = number, %error, "member.slot.failed"),
        }
    }
}
