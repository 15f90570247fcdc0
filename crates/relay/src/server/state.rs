//! The bid board: which slot is open for bids, on which parent, and its best bid so far.
//! Plain state under the caller's lock; generic over what a bid carries, so it is tested
//! without blocks.

use std::{collections::HashMap, hash::Hash};

use alloy_primitives::{B256, U256};

/// The slot bids are accepted for, as the devnet's clock decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotContext {
    /// The slot.
    pub slot: u64,
    /// The head the block must build on.
    pub parent_hash: B256,
    /// The block timestamp of the slot.
    pub timestamp: u64,
    /// The parent beacon block root of the slot (EIP-4788); the payload does not carry it.
    pub parent_beacon_block_root: B256,
    /// The slot's `prev_randao` (the payload's `prev_randao` must be it).
    pub prev_randao: B256,
    /// The root of the slot's withdrawals (the payload's must hash to it).
    pub withdrawals_root: B256,
}

/// What became of a valid bid offered to the board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    /// It is the best bid of the slot now.
    Best,
    /// A bid worth at least as much came first.
    Outbid {
        /// The best value.
        best: U256,
    },
}

/// Where a submission stands among its builder's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Place {
    /// The relay's count of submissions when it received this one.
    Received(u64),
    /// The builder's own number for it (its `x-sequence` header); a numbered submission
    /// places after every unnumbered one.
    Sequence(u64),
}

impl From<u64> for Place {
    fn from(received: u64) -> Self {
        Self::Received(received)
    }
}

/// The bid was valid, but its slot closed (or moved to another parent) while it was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Closed;

/// One open slot at a time and each builder's latest bid in it; the best is the most valuable
/// of those (the first of equal ones).
///
/// A builder's later bid replaces its earlier one only if worth more, unless it is sent as a
/// cancellation (the builder-specs `cancellations` option): then it replaces it whatever its
/// value, so a builder can withdraw a block whose orders were cancelled. "Later" is by when the
/// relay received it, not when its check ended: a builder with several bids in flight keeps
/// the last one it sent, even when an earlier one finishes its check after it. A builder that
/// numbers its submissions ([`Place::Sequence`]) orders them itself: one numbered at or below
/// its bid on the board never replaces it, whatever its value, as the network may deliver
/// an older block last.
#[derive(Debug)]
pub(crate) struct BidBoard<K, T> {
    open: Option<SlotContext>,
    /// The open slot takes no new submissions; the ones already being checked may still land.
    closing: bool,
    /// Each builder's bid: value, arrival on the board (first of equals wins), its place.
    bids: HashMap<K, (U256, u64, Place, T)>,
    arrivals: u64,
    last_closed: Option<u64>,
}

impl<K, T> Default for BidBoard<K, T> {
    fn default() -> Self {
        Self {
            open: None,
            closing: false,
            bids: HashMap::new(),
            arrivals: 0,
            last_closed: None,
        }
    }
}

impl<K: Eq + Hash + Copy, T> BidBoard<K, T> {
    /// Opens `ctx` for bids; a previous slot's best bid that nobody took is dropped and
    /// returned.
    pub(crate) fn open(&mut self, ctx: SlotContext) -> Option<(U256, T)> {
        if let Some(previous) = self.open.replace(ctx) {
            self.last_closed = Some(previous.slot);
        }
        self.closing = false;
        self.take_best()
    }

    /// The slot new submissions are checked for: the open one, unless it is closing.
    pub(crate) const fn context(&self) -> Option<SlotContext> {
        if self.closing { None } else { self.open }
    }

    /// Stops taking new submissions for `slot` (if open); those already being checked may
    /// still be offered until [`BidBoard::take`].
    pub(crate) fn stop_submissions(&mut self, slot: u64) {
        if self.open.is_some_and(|ctx| ctx.slot == slot) {
            self.closing = true;
        }
    }

    /// The slot whose proposer the relay advertises first: the open one, else the one after
    /// the last closed one.
    pub(crate) fn upcoming_slot(&self) -> Option<u64> {
        match (self.open, self.last_closed) {
            (Some(ctx), _) => Some(ctx.slot),
            (None, Some(closed)) => Some(closed + 1),
            (None, None) => None,
        }
    }

    fn best(&self) -> Option<(&K, U256)> {
        self.bids
            .iter()
            .max_by_key(|(_, (value, arrival, ..))| (*value, std::cmp::Reverse(*arrival)))
            .map(|(builder, (value, ..))| (builder, *value))
    }

    fn take_best(&mut self) -> Option<(U256, T)> {
        let builder = *self.best()?.0;
        let best = self
            .bids
            .remove(&builder)
            .map(|(value, _, _, bid)| (value, bid));
        self.bids.clear();
        best
    }

    /// Offers `builder`'s valid bid for `slot` on `parent`, at `place` among the builder's
    /// submissions (a `cancellation` replaces the builder's bid placed before it even when
    /// worth less).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn offer(
        &mut self,
        slot: u64,
        parent: B256,
        builder: K,
        value: U256,
        bid: T,
        cancellation: bool,
        place: impl Into<Place>,
    ) -> Result<Offer, Closed> {
        match self.open {
            Some(ctx) if ctx.slot == slot && ctx.parent_hash == parent => {}
            _ => return Err(Closed),
        }
        let place = place.into();
        let replaces = match self.bids.get(&builder) {
            Some((_, _, own_place, _))
                if matches!(place, Place::Sequence(_)) && place <= *own_place =>
            {
                false
            }
            Some((_, _, own_place, _)) if cancellation => place > *own_place,
            Some((own, ..)) => value > *own,
            None => true,
        };
        if replaces {
            self.arrivals += 1;
            self.bids
                .insert(builder, (value, self.arrivals, place, bid));
        }
        match self.best() {
            Some((best_builder, best)) if replaces && *best_builder == builder && best == value => {
                Ok(Offer::Best)
            }
            Some((_, best)) => Ok(Offer::Outbid { best }),
            None => Ok(Offer::Best),
        }
    }

    /// Closes `slot` and takes its best bid. Returns `None`, and leaves the board alone, if
    /// `slot` is not the open slot.
    pub(crate) fn take(&mut self, slot: u64) -> Option<(U256, T)> {
        if self.open.is_none_or(|ctx| ctx.slot != slot) {
            return None;
        }
        self.open = None;
        self.closing = false;
        self.last_closed = Some(slot);
        self.take_best()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(slot: u64) -> SlotContext {
        SlotContext {
            slot,
            parent_hash: B256::repeat_byte(slot as u8),
            timestamp: slot * 2,
            parent_beacon_block_root: B256::ZERO,
            prev_randao: B256::ZERO,
            withdrawals_root: B256::ZERO,
        }
    }

    #[test]
    fn test_a_cancellation_checked_late_never_replaces_one_received_after_it() {
        let mut board = BidBoard::default();
        board.open(ctx(1));
        let parent = ctx(1).parent_hash;
        // Received 2nd, checked first; then the 1st ends its check.
        assert_eq!(
            board.offer(1, parent, 'x', U256::from(9), "second", true, 2),
            Ok(Offer::Best)
        );
        assert_eq!(
            board.offer(1, parent, 'x', U256::from(5), "first", true, 1),
            Ok(Offer::Outbid {
                best: U256::from(9)
            })
        );
        // A later one replaces it whatever its value (a withdrawal).
        assert_eq!(
            board.offer(1, parent, 'x', U256::from(3), "third", true, 3),
            Ok(Offer::Best)
        );
        assert_eq!(board.take(1), Some((U256::from(3), "third")));
    }

    #[test]
    fn test_a_numbered_bid_replaces_its_builders_bid_only_if_numbered_higher() {
        let mut board = BidBoard::default();
        board.open(ctx(1));
        let parent = ctx(1).parent_hash;
        let at = Place::Sequence;
        assert_eq!(
            board.offer(1, parent, 'x', U256::from(5), "made 2nd", false, at(20)),
            Ok(Offer::Best)
        );
        // Made before it, delivered after: stale, even worth more.
        assert_eq!(
            board.offer(1, parent, 'x', U256::from(9), "made 1st", false, at(10)),
            Ok(Offer::Outbid {
                best: U256::from(5)
            })
        );
        // Numbered higher: by value as usual, or whatever its value as a cancellation.
        assert_eq!(
            board.offer(1, parent, 'x', U256::from(4), "made 3rd", false, at(30)),
            Ok(Offer::Outbid {
                best: U256::from(5)
            })
        );
        assert_eq!(
            board.offer(1, parent, 'x', U256::from(4), "made 4th", true, at(40)),
            Ok(Offer::Best)
        );
        // Unnumbered submissions of the same builder place before numbered ones.
        assert_eq!(
            board.offer(1, parent, 'x', U256::from(1), "unnumbered", true, 99),
            Ok(Offer::Outbid {
                best: U256::from(4)
            })
        );
        assert_eq!(board.take(1), Some((U256::from(4), "made 4th")));
    }

    #[test]
    fn test_a_closing_slot_takes_no_new_submission_but_keeps_checked_offers() {
        let mut board = BidBoard::default();
        board.open(ctx(1));
        board.stop_submissions(2);
        assert_eq!(
            board.context(),
            Some(ctx(1)),
            "another slot's stop changes nothing"
        );
        board.stop_submissions(1);
        assert_eq!(board.context(), None, "no new submission is checked");
        let parent = ctx(1).parent_hash;
        assert_eq!(
            board.offer(1, parent, 'x', U256::from(5), "checked", false, 1),
            Ok(Offer::Best),
            "a bid checked since it arrived still lands"
        );
        assert_eq!(board.take(1), Some((U256::from(5), "checked")));
        board.open(ctx(2));
        assert_eq!(board.context(), Some(ctx(2)), "the next slot takes bids");
    }

    #[test]
    fn test_keeps_highest_bid_first_of_equals() {
        let mut board = BidBoard::default();
        board.open(ctx(1));
        let parent = ctx(1).parent_hash;
        assert_eq!(
            board.offer(1, parent, 'x', U256::from(5), "a", false, 2),
            Ok(Offer::Best)
        );
        assert_eq!(
            board.offer(1, parent, 'x', U256::from(5), "b", false, 3),
            Ok(Offer::Outbid {
                best: U256::from(5)
            })
        );
        assert_eq!(
            board.offer(1, parent, 'x', U256::from(3), "c", false, 4),
            Ok(Offer::Outbid {
                best: U256::from(5)
            })
        );
        assert_eq!(
            board.offer(1, parent, 'x', U256::from(8), "d", false, 5),
            Ok(Offer::Best)
        );
        assert_eq!(board.take(1), Some((U256::from(8), "d")));
    }

    #[test]
    fn test_take_closes_the_slot() {
        let mut board = BidBoard::default();
        assert_eq!(board.upcoming_slot(), None);
        board.open(ctx(1));
        assert_eq!(board.take(2), None, "not the open slot");
        let parent = ctx(1).parent_hash;
        assert_eq!(
            board.offer(1, parent, 'x', U256::from(1), (), false, 6),
            Ok(Offer::Best)
        );
        assert_eq!(board.take(1), Some((U256::from(1), ())));
        assert_eq!(board.take(1), None, "taken once");
        assert_eq!(
            board.offer(1, parent, 'x', U256::from(2), (), false, 7),
            Err(Closed)
        );
        assert_eq!(board.context(), None);
        assert_eq!(board.upcoming_slot(), Some(2));
    }

    #[test]
    fn test_other_slot_or_parent_is_closed() {
        let mut board = BidBoard::default();
        board.open(ctx(1));
        assert_eq!(
            board.offer(2, ctx(1).parent_hash, 'x', U256::from(1), (), false, 8),
            Err(Closed)
        );
        assert_eq!(
            board.offer(1, B256::repeat_byte(0xee), 'x', U256::from(1), (), false, 9),
            Err(Closed)
        );
        assert_eq!(
            board.offer(1, ctx(1).parent_hash, 'x', U256::from(1), (), false, 10),
            Ok(Offer::Best)
        );
        // Opening the next slot drops the untaken bid.
        assert_eq!(board.open(ctx(2)), Some((U256::from(1), ())));
        assert_eq!(board.upcoming_slot(), Some(2));
        assert_eq!(board.take(2), None);
    }

    #[test]
    fn test_each_builder_keeps_its_latest_and_a_cancellation_may_lower_it() {
        let mut board = BidBoard::default();
        board.open(ctx(1));
        let parent = ctx(1).parent_hash;
        assert_eq!(
            board.offer(1, parent, 'a', U256::from(9), "a9", false, 11),
            Ok(Offer::Best)
        );
        assert_eq!(
            board.offer(1, parent, 'b', U256::from(7), "b7", false, 12),
            Ok(Offer::Outbid {
                best: U256::from(9)
            })
        );
        // Without cancellation a lower bid does not replace the builder's own.
        assert_eq!(
            board.offer(1, parent, 'a', U256::from(2), "a2", false, 13),
            Ok(Offer::Outbid {
                best: U256::from(9)
            })
        );
        // With it, builder a withdraws its 9 and b's 7 becomes the best.
        assert_eq!(
            board.offer(1, parent, 'a', U256::from(2), "a2", true, 14),
            Ok(Offer::Outbid {
                best: U256::from(7)
            })
        );
        assert_eq!(board.take(1), Some((U256::from(7), "b7")));
    }
}
