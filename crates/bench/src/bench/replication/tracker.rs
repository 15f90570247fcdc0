//! Which member holds which envelope, and since when: the origin records when it began and
//! finished its durable commit, every member records when each envelope reached it, and the
//! figures are read off at the end (so the order the two records arrive in does not matter).

use std::{
    sync::{Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use cobuild_net::MemberId;

/// Which part of the run an order belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// One order per member until every link is up; not reported.
    Warmup,
    /// Offered at the fixed rate.
    Rate,
    /// Offered as fast as the members take them.
    Flood,
    /// Accepted by the RPC server with the replication hook.
    Intake,
}

/// What the origin recorded of one of its orders.
#[derive(Debug, Clone, Copy)]
struct Offered {
    phase: Phase,
    /// Just before the order was handed over for its durable commit.
    start: Instant,
    /// Just after it returned (the order is durable: the sender may be answered).
    appended: Instant,
}

/// One (origin, seq).
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    offered: Option<Offered>,
    /// Bit `m` set: member `m` delivered it.
    seen: u64,
    /// A member delivered it a second time (the engine promises exactly once).
    duplicates: u32,
    /// The latest delivery.
    last: Option<Instant>,
}

/// Seqs above this are not tracked (a guard against a corrupt seq allocating gigabytes; no run
/// gets near it).
const MAX_TRACKED_SEQ: u64 = 1 << 26;

/// What one phase came to.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally {
    /// Orders offered (durably committed) in the phase.
    pub(crate) offered: usize,
    /// Delivered at every other member.
    pub(crate) replicated: usize,
    /// Second deliveries of the same envelope at the same member.
    pub(crate) duplicates: usize,
    /// Start of the commit to delivery at the last other member, per replicated order.
    pub(crate) total: Vec<Duration>,
    /// The commit alone, per order.
    pub(crate) commit: Vec<Duration>,
    /// End of the commit to delivery at the last other member, per replicated order.
    pub(crate) network: Vec<Duration>,
    /// The latest delivery that completed an order.
    pub(crate) last_done: Option<Instant>,
}

/// Deliveries of every origin's orders at every member.
#[derive(Debug)]
pub(crate) struct Tracker {
    members: usize,
    origins: Vec<Mutex<Vec<Slot>>>,
    strays: Mutex<u64>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking recorder leaves plain counters behind: still readable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Tracker {
    /// Tracks `members` members (at most 64: one bit each).
    pub(crate) fn new(members: usize) -> Self {
        Self {
            members,
            origins: (0..members).map(|_| Mutex::new(Vec::new())).collect(),
            strays: Mutex::new(0),
        }
    }

    fn with_slot(&self, origin: MemberId, seq: u64, f: impl FnOnce(&mut Slot)) {
        let Some(slots) = self.origins.get(origin as usize) else {
            *lock(&self.strays) += 1;
            return;
        };
        if seq == 0 || seq > MAX_TRACKED_SEQ {
            *lock(&self.strays) += 1;
            return;
        }
        let index = (seq - 1) as usize;
        let mut slots = lock(slots);
        if slots.len() <= index {
            slots.resize(index + 1, Slot::default());
        }
        f(&mut slots[index]);
    }

    /// `origin` appended its order `seq` between `start` and `appended`.
    pub(crate) fn offered(
        &self,
        origin: MemberId,
        seq: u64,
        phase: Phase,
        start: Instant,
        appended: Instant,
    ) {
        self.with_slot(origin, seq, |slot| {
            slot.offered = Some(Offered {
                phase,
                start,
                appended,
            });
        });
    }

    /// `member` was handed `origin`'s envelope `seq` at `at`.
    pub(crate) fn delivered(&self, member: MemberId, origin: MemberId, seq: u64, at: Instant) {
        let bit = 1u64 << (member % 64);
        self.with_slot(origin, seq, |slot| {
            if slot.seen & bit != 0 {
                slot.duplicates += 1;
            }
            slot.seen |= bit;
            slot.last = Some(slot.last.map_or(at, |last| last.max(at)));
        });
    }

    /// Every member but `origin`.
    fn others(&self, origin: usize) -> u64 {
        let all = if self.members >= 64 {
            u64::MAX
        } else {
            (1u64 << self.members) - 1
        };
        all & !(1u64 << (origin % 64))
    }

    /// Orders of `phase` not yet delivered at every other member.
    pub(crate) fn outstanding(&self, phase: Phase) -> usize {
        let mut outstanding = 0;
        for (origin, slots) in self.origins.iter().enumerate() {
            let others = self.others(origin);
            outstanding += lock(slots)
                .iter()
                .filter(|s| s.offered.is_some_and(|o| o.phase == phase) && s.seen != others)
                .count();
        }
        outstanding
    }

    /// Deliveries of unknown origins or impossible seqs.
    pub(crate) fn strays(&self) -> u64 {
        *lock(&self.strays)
    }

    /// What `phase` came to so far.
    pub(crate) fn tally(&self, phase: Phase) -> Tally {
        let mut tally = Tally::default();
        for (origin, slots) in self.origins.iter().enumerate() {
            let others = self.others(origin);
            for slot in lock(slots).iter() {
                let Some(offered) = slot.offered.filter(|o| o.phase == phase) else {
                    continue;
                };
                tally.offered += 1;
                tally.duplicates += slot.duplicates as usize;
                tally
                    .commit
                    .push(offered.appended.saturating_duration_since(offered.start));
                let Some(last) = slot.last.filter(|_| slot.seen == others) else {
                    continue;
                };
                tally.replicated += 1;
                tally
                    .total
                    .push(last.saturating_duration_since(offered.start));
                tally
                    .network
                    .push(last.saturating_duration_since(offered.appended));
                tally.last_done = Some(tally.last_done.map_or(last, |done| done.max(last)));
            }
        }
        tally
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_an_order_counts_once_every_other_member_has_it() {
        let tracker = Tracker::new(3);
        let t0 = Instant::now();
        let ms = |v| t0 + Duration::from_millis(v);
        // A delivery may be recorded before the origin records its commit.
        tracker.delivered(1, 0, 1, ms(5));
        tracker.offered(0, 1, Phase::Rate, t0, ms(2));
        assert_eq!(tracker.outstanding(Phase::Rate), 1);
        tracker.delivered(2, 0, 1, ms(7));
        tracker.delivered(2, 0, 1, ms(9));
        tracker.offered(1, 1, Phase::Rate, t0, ms(1));
        tracker.offered(2, 1, Phase::Flood, t0, ms(1));
        tracker.delivered(0, 9, 1, ms(1));
        tracker.delivered(0, 1, 0, ms(1));
        let tally = tracker.tally(Phase::Rate);
        assert_eq!((tally.offered, tally.replicated), (2, 1));
        assert_eq!(tally.duplicates, 1);
        assert_eq!(tally.total, vec![Duration::from_millis(9)]);
        assert_eq!(tally.network, vec![Duration::from_millis(7)]);
        assert_eq!(tally.last_done, Some(ms(9)));
        assert_eq!(tracker.outstanding(Phase::Rate), 1, "member 1's order");
        assert_eq!(tracker.outstanding(Phase::Flood), 1);
        assert_eq!(tracker.strays(), 2);
    }
}
