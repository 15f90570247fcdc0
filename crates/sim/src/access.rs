//! What an order read and wrote, so builders can tell which orders can interfere.
//!
//! The coinbase is left out: every order pays it, and builders measure its balance themselves.

use alloy_primitives::{Address, U256, map::HashSet};

/// A piece of state: an account's balance/nonce/code, or one storage slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StateKey {
    /// Balance, nonce and code of an account.
    Account(Address),
    /// One storage slot.
    Slot(Address, U256),
}

/// The state an order read and the state it changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessSet {
    /// Keys read (including those written).
    pub reads: HashSet<StateKey>,
    /// Keys changed.
    pub writes: HashSet<StateKey>,
}

impl AccessSet {
    /// Whether running one of the two orders can change what the other does: one writes what
    /// the other reads or writes.
    pub fn conflicts(&self, other: &Self) -> bool {
        let touches = |writes: &HashSet<StateKey>, other: &Self| {
            writes
                .iter()
                .any(|k| other.reads.contains(k) || other.writes.contains(k))
        };
        touches(&self.writes, other) || touches(&other.writes, self)
    }

    /// Adds another order's accesses (for a sequence of orders).
    pub fn extend(&mut self, other: &Self) {
        self.reads.extend(other.reads.iter().copied());
        self.writes.extend(other.writes.iter().copied());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(reads: &[StateKey], writes: &[StateKey]) -> AccessSet {
        AccessSet {
            reads: reads.iter().chain(writes).copied().collect(),
            writes: writes.iter().copied().collect(),
        }
    }

    #[test]
    fn test_conflicts_only_through_writes() {
        let pool = StateKey::Slot(Address::repeat_byte(1), U256::from(8));
        let token = StateKey::Slot(Address::repeat_byte(2), U256::from(1));
        let reader = set(&[pool], &[]);
        let writer = set(&[], &[pool]);
        let other = set(&[], &[token]);
        assert!(
            !reader.conflicts(&reader.clone()),
            "two readers never conflict"
        );
        assert!(reader.conflicts(&writer) && writer.conflicts(&reader));
        assert!(writer.conflicts(&writer.clone()));
        assert!(!writer.conflicts(&other));
    }
}
