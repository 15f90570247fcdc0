//! Where a slot's building time went, phase by phase, for the slot's log line: on a state read
//! over the network an operator needs to see whether reads, execution or sealing eat the slot.

use std::time::Duration;

/// The time one round spent in each phase.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RoundTimes {
    /// Reading ahead what the round's new orders touch.
    pub read_ahead: Duration,
    /// Simulating the round's orders on the parent state.
    pub simulate: Duration,
    /// Adding the simulated orders to the growing blocks.
    pub fill: Duration,
    /// Sealing the richer block (state root, receipts, header).
    pub seal: Duration,
}

/// The sum of a slot's rounds, by phase.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SlotFigures {
    /// Rounds run (those whose orders had not changed built nothing, but read and simulated).
    pub rounds: u32,
    /// Rounds that sealed a block.
    pub sealed: u32,
    /// Time in each phase, over every round.
    pub total: RoundTimes,
}

impl SlotFigures {
    /// Counts one round, which `sealed` a block or not.
    pub fn add(&mut self, round: &RoundTimes, sealed: bool) {
        self.rounds += 1;
        self.sealed += u32::from(sealed);
        self.total.read_ahead += round.read_ahead;
        self.total.simulate += round.simulate;
        self.total.fill += round.fill;
        self.total.seal += round.seal;
    }

    /// The figures in milliseconds, as `(read_ahead, simulate, fill, seal)`, for a log line.
    pub fn millis(&self) -> (u64, u64, u64, u64) {
        let ms = |d: Duration| d.as_millis() as u64;
        (
            ms(self.total.read_ahead),
            ms(self.total.simulate),
            ms(self.total.fill),
            ms(self.total.seal),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_a_slot_sums_its_rounds_and_counts_those_that_sealed() {
        let mut slot = SlotFigures::default();
        let ms = Duration::from_millis;
        slot.add(
            &RoundTimes {
                read_ahead: ms(5),
                simulate: ms(2),
                fill: ms(3),
                seal: ms(1),
            },
            true,
        );
        // Orders unchanged: read and simulated, nothing built.
        slot.add(
            &RoundTimes {
                read_ahead: ms(0),
                simulate: ms(2),
                ..RoundTimes::default()
            },
            false,
        );
        assert_eq!((slot.rounds, slot.sealed), (2, 1));
        assert_eq!(slot.millis(), (5, 4, 3, 1));
    }
}
