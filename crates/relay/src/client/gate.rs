//! Which bids may leave: strictly better than the last one sent for their `(slot, parent)`,
//! and within the per-second cap, spread evenly over the second. Pure state over instants the
//! caller passes in, so it is tested without a clock.
//!
//! Spreading matters: a builder makes a new best every few milliseconds, so a cap that lets the
//! whole second's budget go at once spends it in the first few hundred milliseconds and then
//! sends nothing for the rest of the second, while new orders wait. Bids go at least
//! `1 s / cap` apart instead, so no best waits more than that.

use std::{
    collections::{HashMap, VecDeque},
    time::{Duration, Instant},
};

use alloy_primitives::{B256, U256};

/// How many slots back the last-sent values are remembered.
const SLOTS_KEPT: u64 = 2;

const WINDOW: Duration = Duration::from_secs(1);

/// The decision on one bid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Send it; `previous` is the value it replaced, to give back if the send fails.
    Go { previous: Option<U256> },
    /// A bid worth at least as much was already sent for this slot and parent.
    NotImproved { last_sent: U256 },
    /// The per-second cap is reached, or the last bid went too recently: the next may go
    /// after `retry_in`.
    RateLimited { retry_in: Duration },
}

/// The bids sent so far.
#[derive(Debug)]
pub(crate) struct Gate {
    per_second: usize,
    sent: VecDeque<Instant>,
    last: HashMap<(u64, B256), U256>,
    newest_slot: u64,
}

impl Gate {
    pub(crate) fn new(per_second: u32) -> Self {
        Self {
            per_second: per_second as usize,
            sent: VecDeque::new(),
            last: HashMap::new(),
            newest_slot: 0,
        }
    }

    /// Decides on a bid worth `value` for `(slot, parent)` at `now`, and records it if it goes.
    /// A `withdrawal` (a bid replacing one whose orders were cancelled) skips the improvement
    /// rule, not the cap.
    pub(crate) fn admit(
        &mut self,
        now: Instant,
        slot: u64,
        parent: B256,
        value: U256,
        withdrawal: bool,
    ) -> Admit {
        let previous = self.last.get(&(slot, parent)).copied();
        if let Some(last_sent) = previous.filter(|last| value <= *last && !withdrawal) {
            return Admit::NotImproved { last_sent };
        }
        while self
            .sent
            .front()
            .is_some_and(|at| now.saturating_duration_since(*at) >= WINDOW)
        {
            self.sent.pop_front();
        }
        let spaced = self.sent.back().map_or(now, |last| *last + self.spacing());
        let free = match self.sent.front() {
            Some(first) if self.sent.len() >= self.per_second => *first + WINDOW,
            _ => now,
        };
        let next = spaced.max(free);
        if next > now {
            return Admit::RateLimited {
                retry_in: next - now,
            };
        }
        self.sent.push_back(now);
        self.last.insert((slot, parent), value);
        if slot > self.newest_slot {
            self.newest_slot = slot;
            let oldest = slot.saturating_sub(SLOTS_KEPT);
            self.last.retain(|(s, _), _| *s >= oldest);
        }
        Admit::Go { previous }
    }

    /// The least time between two bids: the second's budget, evenly spread.
    fn spacing(&self) -> Duration {
        WINDOW / self.per_second.max(1) as u32
    }

    /// A bid admitted with `previous` failed to reach the relay: forget its value, unless a
    /// later bid for the same key replaced it meanwhile.
    pub(crate) fn give_back(
        &mut self,
        slot: u64,
        parent: B256,
        value: U256,
        previous: Option<U256>,
    ) {
        let key = (slot, parent);
        if self.last.get(&key) == Some(&value) {
            match previous {
                Some(previous) => self.last.insert(key, previous),
                None => self.last.remove(&key),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(x: u64) -> U256 {
        U256::from(x)
    }

    /// Instants a second apart, so neither the cap nor the spacing holds a bid back.
    struct Ticks(Instant);

    impl Default for Ticks {
        fn default() -> Self {
            Self(Instant::now())
        }
    }

    impl Ticks {
        fn next(&mut self) -> Instant {
            self.0 += WINDOW;
            self.0
        }
    }

    #[test]
    fn test_only_strictly_better_bids_go() {
        let mut gate = Gate::new(100);
        let mut clock = Ticks::default();
        let parent = B256::repeat_byte(1);
        assert_eq!(
            gate.admit(clock.next(), 5, parent, v(10), false),
            Admit::Go { previous: None }
        );
        assert_eq!(
            gate.admit(clock.next(), 5, parent, v(10), false),
            Admit::NotImproved { last_sent: v(10) }
        );
        assert_eq!(
            gate.admit(clock.next(), 5, parent, v(9), false),
            Admit::NotImproved { last_sent: v(10) }
        );
        assert_eq!(
            gate.admit(clock.next(), 5, parent, v(11), false),
            Admit::Go {
                previous: Some(v(10))
            }
        );
        // Another parent or another slot is another auction.
        assert_eq!(
            gate.admit(clock.next(), 5, B256::repeat_byte(2), v(1), false),
            Admit::Go { previous: None }
        );
        assert_eq!(
            gate.admit(clock.next(), 6, parent, v(1), false),
            Admit::Go { previous: None }
        );
    }

    #[test]
    fn test_bids_go_evenly_spread_over_the_second() {
        let mut gate = Gate::new(2);
        let start = Instant::now();
        let parent = B256::ZERO;
        let at = |ms: u64| start + Duration::from_millis(ms);
        assert!(matches!(
            gate.admit(start, 1, parent, v(1), false),
            Admit::Go { .. }
        ));
        assert_eq!(
            gate.admit(at(300), 1, parent, v(2), false),
            Admit::RateLimited {
                retry_in: Duration::from_millis(200)
            },
            "half a second apart at two a second"
        );
        assert!(matches!(
            gate.admit(at(500), 1, parent, v(2), false),
            Admit::Go { .. }
        ));
        // A refused bid is not recorded: the same value may go once there is room.
        assert_eq!(
            gate.admit(at(999), 1, parent, v(3), false),
            Admit::RateLimited {
                retry_in: Duration::from_millis(1)
            }
        );
        assert!(matches!(
            gate.admit(at(1000), 1, parent, v(3), false),
            Admit::Go { .. }
        ));
    }

    #[test]
    fn test_rounded_spacing_never_lets_more_than_the_cap_into_a_second() {
        // 1 s / 3 rounds down: three spacings end a nanosecond short of a second.
        let mut gate = Gate::new(3);
        let start = Instant::now();
        let parent = B256::ZERO;
        let mut now = start;
        for value in 1..=3 {
            assert!(matches!(
                gate.admit(now, 1, parent, v(value), false),
                Admit::Go { .. }
            ));
            now += gate.spacing();
        }
        assert!(now < start + WINDOW);
        assert_eq!(
            gate.admit(now, 1, parent, v(4), false),
            Admit::RateLimited {
                retry_in: start + WINDOW - now
            },
            "a fourth waits for the first to leave the window"
        );
    }

    #[test]
    fn test_failed_send_gives_its_value_back() {
        let mut gate = Gate::new(100);
        let mut clock = Ticks::default();
        let parent = B256::ZERO;
        assert!(matches!(
            gate.admit(clock.next(), 1, parent, v(5), false),
            Admit::Go { .. }
        ));
        let Admit::Go { previous } = gate.admit(clock.next(), 1, parent, v(7), false) else {
            panic!("7 improves on 5");
        };
        gate.give_back(1, parent, v(7), previous);
        assert_eq!(
            gate.admit(clock.next(), 1, parent, v(6), false),
            Admit::Go {
                previous: Some(v(5))
            }
        );
        // A give-back after a newer bid replaced the value changes nothing.
        gate.give_back(1, parent, v(5), None);
        assert_eq!(
            gate.admit(clock.next(), 1, parent, v(6), false),
            Admit::NotImproved { last_sent: v(6) }
        );
    }

    #[test]
    fn test_old_slots_are_forgotten() {
        let mut gate = Gate::new(100);
        let mut clock = Ticks::default();
        for slot in 1..=10 {
            assert!(matches!(
                gate.admit(clock.next(), slot, B256::ZERO, v(1), false),
                Admit::Go { .. }
            ));
        }
        assert!(gate.last.len() <= (SLOTS_KEPT + 1) as usize);
    }

    #[test]
    fn test_withdrawal_skips_the_improvement_rule_not_the_cap() {
        let mut gate = Gate::new(2);
        let now = Instant::now();
        let parent = B256::repeat_byte(1);
        let v = |x: u64| U256::from(x);
        assert_eq!(
            gate.admit(now, 5, parent, v(10), false),
            Admit::Go { previous: None }
        );
        let later = now + gate.spacing();
        assert_eq!(
            gate.admit(later, 5, parent, v(4), true),
            Admit::Go {
                previous: Some(v(10))
            },
            "a withdrawal goes out although worth less"
        );
        assert_eq!(
            gate.admit(later + Duration::from_millis(300), 5, parent, v(5), false),
            Admit::RateLimited {
                retry_in: Duration::from_millis(200)
            },
            "and it counts against the cap: the next waits its spacing"
        );
    }
}
