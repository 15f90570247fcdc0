//! Building for the slots a `payload_attributes` stream announces, one at a time: the loop a
//! member node and a node beside an execution client share.

use cobuild_relay::events::ReceivedSlot;
use tokio::sync::watch;

use super::Builder;

/// What builds for one announced slot.
pub(crate) trait BuildSlot: Sync {
    /// Builds for `slot` until its cut-off (dropped early when a newer announcement comes).
    fn build(&self, slot: &ReceivedSlot) -> impl Future<Output = ()> + Send;
}

/// Runs `slot_builder` for every slot announced on `slots`, until the announcements end (never, while
/// the subscription lives) or the future is dropped. An announcement arriving while a slot is
/// being built ends that build at once and is taken next: a later slot, or the same slot on
/// another parent (a reorg), makes the old candidates worthless. `builder`'s slot is ended
/// after each.
pub(crate) async fn build_announced(
    mut slots: watch::Receiver<Option<ReceivedSlot>>,
    builder: &Builder,
    slot_builder: &impl BuildSlot,
) {
    let mut pending = false;
    loop {
        if !pending && slots.changed().await.is_err() {
            return;
        }
        pending = false;
        let Some(slot) = slots.borrow_and_update().clone() else {
            continue;
        };
        let superseded = {
            let build = slot_builder.build(&slot);
            tokio::pin!(build);
            tokio::select! {
                () = &mut build => Some(false),
                changed = slots.changed() => changed.ok().map(|()| true),
            }
        };
        builder.end_slot();
        match superseded {
            None => return,
            Some(true) => {
                tracing::info!(slot = slot.event.slot(), "slot.superseded");
                pending = true;
            }
            Some(false) => {}
        }
    }
}
