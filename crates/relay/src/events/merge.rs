//! Slot announcements from several sources at once (consensus clients, or relays that serve
//! the stream), merged into one: a builder beside more than one beacon node hears of a slot
//! from whichever is first, and keeps hearing of slots while any of them is up.
//!
//! Each source has its own subscription, which reconnects on its own (see
//! [`subscribe`](super::subscribe)). The merge passes an announcement on the first time any
//! source makes it: a later slot, or the same slot on another parent (a reorg one source saw
//! first). The same slot and parent from the other sources, and anything for an earlier slot,
//! are dropped.

use alloy_primitives::B256;
use futures_util::future::select_all;
use tokio::sync::watch;

use super::{ReceivedSlot, SubscribeConfig, SubscribeError, subscribe};

/// Subscribes to every source in `configs` and merges their announcements (see the module
/// docs); the receiver holds the newest. The merge ends when every source's task has ended or
/// every receiver is dropped.
pub fn subscribe_all(
    configs: Vec<SubscribeConfig>,
) -> Result<watch::Receiver<Option<ReceivedSlot>>, SubscribeError> {
    let sources = configs
        .into_iter()
        .map(subscribe)
        .collect::<Result<Vec<_>, _>>()?;
    let (out, merged) = watch::channel(None);
    tokio::spawn(merge(sources, out));
    Ok(merged)
}

/// The announcements passed on for the newest slot so far: a slot and each parent it was
/// announced on.
#[derive(Debug, Default)]
struct Seen {
    slot: u64,
    parents: Vec<B256>,
}

impl Seen {
    /// Whether `slot` on `parent` is news, recording it if so.
    fn news(&mut self, slot: u64, parent: B256) -> bool {
        if slot < self.slot || (slot == self.slot && self.parents.contains(&parent)) {
            return false;
        }
        if slot > self.slot {
            self.slot = slot;
            self.parents.clear();
        }
        self.parents.push(parent);
        true
    }
}

async fn merge(
    mut sources: Vec<watch::Receiver<Option<ReceivedSlot>>>,
    out: watch::Sender<Option<ReceivedSlot>>,
) {
    let mut seen = Seen::default();
    while !sources.is_empty() {
        let (changed, index, _) =
            select_all(sources.iter_mut().map(|s| Box::pin(s.changed()))).await;
        if changed.is_err() {
            sources.swap_remove(index);
            continue;
        }
        let Some(announced) = sources[index].borrow_and_update().clone() else {
            continue;
        };
        let (slot, parent) = (announced.event.slot(), announced.event.parent_hash());
        if seen.news(slot, parent) {
            tracing::debug!(slot, %parent, source = index, "events.merge.slot");
            if out.send(Some(announced)).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_a_slot_is_news_once_per_parent_and_earlier_slots_never() {
        let (a, b) = (B256::repeat_byte(1), B256::repeat_byte(2));
        let mut seen = Seen::default();
        assert!(seen.news(5, a));
        assert!(
            !seen.news(5, a),
            "the same announcement from another source"
        );
        assert!(seen.news(5, b), "a reorg: the same slot on another parent");
        assert!(!seen.news(4, b), "an earlier slot from a lagging source");
        assert!(seen.news(6, a));
        assert!(!seen.news(5, b));
    }
}
