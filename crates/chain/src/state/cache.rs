//! What the EVM has read of one state, shared by every thread reading it.
//!
//! Through a slot the simulator, two greedy blocks and the conflict search all execute on the
//! same parent state and read mostly the same accounts and slots. Each store read hashes the key
//! (Keccak) and walks a B-tree, and each contract read analyses its bytecode; the store's own
//! page cache saves neither. The snapshot is immutable, so what one reader fetched is right for
//! all: the first read of a key pays, the others find it here.

use std::sync::atomic::{AtomicUsize, Ordering};

use alloy_primitives::{Address, U256, map::DefaultHashBuilder};
use dashmap::DashMap;
use revm::state::AccountInfo;

/// Entries one state keeps before it stops remembering: a slot's work reads tens of thousands,
/// and the cap bounds what a stream of `eth_call`s over one head can pin (tens of MiB).
pub(crate) const READ_CACHE_LIMIT: usize = 1 << 18;

/// Accounts (with their analysed code) and storage slots read from one state.
#[derive(Debug, Default)]
pub(crate) struct ReadCache {
    accounts: DashMap<Address, Option<AccountInfo>, DefaultHashBuilder>,
    storage: DashMap<(Address, U256), U256, DefaultHashBuilder>,
    entries: AtomicUsize,
}

impl ReadCache {
    /// The account at `address`, from the cache or from `read` (remembered while there is room).
    pub(crate) fn account<E>(
        &self,
        address: Address,
        read: impl FnOnce() -> Result<Option<AccountInfo>, E>,
    ) -> Result<Option<AccountInfo>, E> {
        if let Some(info) = self.accounts.get(&address) {
            return Ok(info.clone());
        }
        let info = read()?;
        if self.room() {
            self.accounts.insert(address, info.clone());
        }
        Ok(info)
    }

    /// The value of `slot` at `address`, from the cache or from `read`.
    pub(crate) fn storage<E>(
        &self,
        address: Address,
        slot: U256,
        read: impl FnOnce() -> Result<U256, E>,
    ) -> Result<U256, E> {
        if let Some(value) = self.storage.get(&(address, slot)) {
            return Ok(*value);
        }
        let value = read()?;
        if self.room() {
            self.storage.insert((address, slot), value);
        }
        Ok(value)
    }

    /// Whether `address` has been read.
    pub(crate) fn has_account(&self, address: &Address) -> bool {
        self.accounts.contains_key(address)
    }

    /// Whether `key` (address, slot) has been read.
    pub(crate) fn has_slot(&self, key: &(Address, U256)) -> bool {
        self.storage.contains_key(key)
    }

    /// Whether one more entry fits; counts it if so. Two threads reading the same key at once
    /// may both count it: the cap is approximate, never exceeded.
    fn room(&self) -> bool {
        self.entries
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < READ_CACHE_LIMIT).then_some(n + 1)
            })
            .is_ok()
    }

    /// Entries held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.accounts.len() + self.storage.len()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[test]
    fn test_a_key_is_read_once_and_the_cache_stops_growing_at_its_limit() {
        let cache = ReadCache::default();
        let reads = Cell::new(0);
        let read = |value: u64| {
            reads.set(reads.get() + 1);
            Ok::<_, ()>(U256::from(value))
        };
        let a = Address::repeat_byte(1);
        assert_eq!(
            cache.storage(a, U256::from(1), || read(7)),
            Ok(U256::from(7))
        );
        assert_eq!(
            cache.storage(a, U256::from(1), || read(8)),
            Ok(U256::from(7))
        );
        assert_eq!(reads.get(), 1, "the second read is the cache's");
        assert_eq!(cache.account(a, || Ok::<_, ()>(None)), Ok(None));
        assert_eq!(
            cache.account(a, || Ok::<_, ()>(Some(AccountInfo::default()))),
            Ok(None),
            "an absent account is remembered too"
        );
        // A failed read is not remembered.
        assert_eq!(cache.storage(a, U256::from(2), || Err(())), Err(()));
        assert_eq!(
            cache.storage(a, U256::from(2), || read(9)),
            Ok(U256::from(9))
        );

        cache.entries.store(READ_CACHE_LIMIT, Ordering::Relaxed);
        assert_eq!(
            cache.storage(a, U256::from(3), || read(1)),
            Ok(U256::from(1))
        );
        assert_eq!(
            cache.storage(a, U256::from(3), || read(2)),
            Ok(U256::from(2))
        );
        assert_eq!(cache.len(), 3, "full: read through, not kept");
    }
}
