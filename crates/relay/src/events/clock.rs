//! A beacon chain's slot clock: slot `n` starts at `genesis_time + n × seconds_per_slot`, and
//! the block of slot `n` carries that start as its timestamp.

/// When each slot starts, in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotClock {
    genesis_time: u64,
    seconds_per_slot: u64,
}

impl SlotClock {
    /// The clock of a chain that started at `genesis_time` with slots of `seconds_per_slot`
    /// (`None` for slots of no length).
    pub const fn new(genesis_time: u64, seconds_per_slot: u64) -> Option<Self> {
        if seconds_per_slot == 0 {
            return None;
        }
        Some(Self {
            genesis_time,
            seconds_per_slot,
        })
    }

    /// Length of a slot in seconds.
    pub const fn seconds_per_slot(&self) -> u64 {
        self.seconds_per_slot
    }

    /// The slot running at `unix` seconds (`None` before genesis).
    pub const fn slot_at(&self, unix: u64) -> Option<u64> {
        match unix.checked_sub(self.genesis_time) {
            Some(since) => Some(since / self.seconds_per_slot),
            None => None,
        }
    }

    /// When `slot` starts: its block's timestamp (saturating far in the future).
    pub const fn start(&self, slot: u64) -> u64 {
        self.genesis_time
            .saturating_add(slot.saturating_mul(self.seconds_per_slot))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_slots_start_every_slot_length_from_genesis() {
        let clock = SlotClock::new(1_606_824_023, 12).expect("slots have a length");
        assert_eq!(clock.slot_at(1_606_824_022), None, "before genesis");
        assert_eq!(clock.slot_at(1_606_824_023), Some(0));
        assert_eq!(clock.slot_at(1_606_824_023 + 25), Some(2));
        assert_eq!(clock.start(3), 1_606_824_023 + 36);
        assert_eq!(clock.slot_at(clock.start(9_000_000)), Some(9_000_000));
        assert_eq!(clock.start(u64::MAX), u64::MAX);
        assert_eq!(SlotClock::new(0, 0), None);
    }
}
