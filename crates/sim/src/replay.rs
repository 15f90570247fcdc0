//! What an order did in simulation, kept so that a builder can commit it to a block without
//! executing it again.
//!
//! The EVM is deterministic: a transaction that reads the same values in the same environment
//! does the same thing. So when every key an order read (account or slot, before the order ran)
//! holds the same value in a block as it did in simulation, the simulated results are the
//! block's results. Balances are the exception: every order pays the coinbase, and
//! transfers raise the balances of accounts other orders spend from, while most code never
//! reads a balance, only needs it to cover what it spends. So the coinbase is left out of the
//! reads, and the builder adds each transaction's gain to the block's own coinbase balance; an
//! account whose balance only grew since is admitted too, its changes carrying the difference
//! ([`ReadValue::admits`]). Neither holds for a balance the order's code depends on (read by
//! `BALANCE` or `SELFBALANCE`, or whose emptiness `EXTCODEHASH`, a `CALL` with value or a
//! `SELFDESTRUCT` depends on: noted by [`cobuild_primitives::BalanceReads`]), and the coinbase
//! must be a plain account. An order that could not show all it depends on keeps no replay: one with a transaction
//! that could not run, blobs or an authorization list.

use alloy_evm::EvmEnv;
use alloy_primitives::{
    Address, B256, U256,
    map::{HashMap, HashSet},
};
use revm::{
    context_interface::result::{HaltReason, ResultAndState},
    primitives::KECCAK_EMPTY,
    state::AccountInfo,
};

use crate::StateKey;

/// The value a key held when an order first read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadValue {
    /// An account's balance, nonce and code; an account that does not exist reads as empty.
    Account {
        /// Its balance.
        balance: U256,
        /// Its nonce.
        nonce: u64,
        /// Its code hash ([`KECCAK_EMPTY`] without code).
        code_hash: B256,
        /// Whether the order depends on the balance itself: its code read it (`BALANCE`,
        /// `SELFBALANCE`), or it self-destructed the account (which moves all of it). Otherwise
        /// the order only needed it to cover what it spent or sent.
        balance_read: bool,
    },
    /// A storage slot's value.
    Slot(U256),
}

impl ReadValue {
    /// The value of an account as a state read returns it.
    pub fn account(info: Option<&AccountInfo>) -> Self {
        let (balance, nonce, code_hash) = info.map_or((U256::ZERO, 0, KECCAK_EMPTY), |info| {
            (info.balance, info.nonce, info.code_hash)
        });
        Self::Account {
            balance,
            nonce,
            code_hash,
            balance_read: false,
        }
    }

    /// Whether an order that read `self` does the same where the key holds `now`: `None` if it
    /// may not; otherwise what `now` holds above `self`'s balance (zero but for an account), which
    /// the order's changes to the account must carry.
    ///
    /// A balance the order's code never read may have grown: the checks it passed (the sender
    /// covers gas and value, a call's value is there) pass again, and the account stays
    /// non-empty (emptiness decides `EXTCODEHASH` and what a transfer to it costs) unless it
    /// was empty.
    pub fn admits(&self, now: &Self) -> Option<U256> {
        match (self, now) {
            (Self::Slot(then), Self::Slot(now)) => (then == now).then_some(U256::ZERO),
            (
                Self::Account {
                    balance,
                    nonce,
                    code_hash,
                    balance_read,
                },
                Self::Account {
                    balance: now_balance,
                    nonce: now_nonce,
                    code_hash: now_code,
                    ..
                },
            ) => {
                if nonce != now_nonce || code_hash != now_code || now_balance < balance {
                    return None;
                }
                let grew = *now_balance - *balance;
                let empty = *nonce == 0 && balance.is_zero() && *code_hash == KECCAK_EMPTY;
                (grew.is_zero() || !(*balance_read || empty)).then_some(grew)
            }
            _ => None,
        }
    }
}

/// One kept transaction's simulated execution.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayedTx {
    /// Its position among the order's transactions.
    pub index: usize,
    /// Its result and state changes on the simulated state.
    pub result: ResultAndState<HaltReason>,
    /// What it added to the coinbase's balance.
    pub coinbase_gain: U256,
}

/// An order's simulated execution, with what it depended on.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    /// The environment it ran in (block number, time, coinbase, base fee, fork ...).
    pub env: EvmEnv,
    /// Each key it read (the coinbase's account excluded) with its value before the order,
    /// slots first.
    pub reads: Vec<(StateKey, ReadValue)>,
    /// The kept transactions, in order.
    pub txs: Vec<ReplayedTx>,
}

// revm's results hold no floats: equality is an equivalence, it is only not derived there.
impl Eq for Replay {}

impl Replay {
    /// Whether an account can be a coinbase whose changing balance replays ignore: it has no
    /// code (code of its own could read its balance without an opcode naming it).
    pub fn coinbase_allows(info: Option<&AccountInfo>) -> bool {
        info.is_none_or(|a| a.code_hash == KECCAK_EMPTY)
    }
}

/// Collects the first value of every key an order's transactions read.
#[derive(Debug, Default)]
pub(crate) struct Reads {
    first: HashMap<StateKey, ReadValue>,
    /// Accounts whose balance the order depends on exactly.
    balance_read: HashSet<Address>,
}

impl Reads {
    /// Records `key` with `value` unless an earlier transaction of the order read it already:
    /// the value before the order is the first one read (whatever wrote it since also read it).
    pub(crate) fn note(&mut self, key: StateKey, value: ReadValue) {
        self.first.entry(key).or_insert(value);
    }

    /// Marks `address`'s balance as one the order depends on exactly.
    pub(crate) fn balance_read(&mut self, address: Address) {
        self.balance_read.insert(address);
    }

    pub(crate) fn into_vec(self) -> Vec<(StateKey, ReadValue)> {
        let Self {
            first,
            balance_read,
        } = self;
        // Sorted, so that orders from two runs compare equal whatever the hash map's order, with
        // slots first: orders collide on slots (a pool's reserves) far more often than on
        // accounts, and a builder checking them stops at the first that changed.
        let mut reads: Vec<_> = first
            .into_iter()
            .map(|(key, mut value)| {
                if let (
                    StateKey::Account(address),
                    ReadValue::Account {
                        balance_read: read, ..
                    },
                ) = (key, &mut value)
                {
                    *read = balance_read.contains(&address);
                }
                (key, value)
            })
            .collect();
        reads.sort_unstable_by_key(|(key, _)| (matches!(key, StateKey::Account(_)), *key));
        reads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(balance: u64, nonce: u64, balance_read: bool) -> ReadValue {
        ReadValue::Account {
            balance: U256::from(balance),
            nonce,
            code_hash: KECCAK_EMPTY,
            balance_read,
        }
    }

    #[test]
    fn test_a_read_admits_equal_values_and_a_grown_balance_nobody_read() {
        let slot = ReadValue::Slot(U256::from(7));
        assert_eq!(slot.admits(&slot), Some(U256::ZERO));
        assert_eq!(slot.admits(&ReadValue::Slot(U256::from(8))), None);
        assert_eq!(slot.admits(&account(7, 0, false)), None);

        let sender = account(100, 3, false);
        assert_eq!(sender.admits(&account(100, 3, false)), Some(U256::ZERO));
        assert_eq!(
            sender.admits(&account(130, 3, false)),
            Some(U256::from(30)),
            "a transfer in since: what it checked still holds"
        );
        assert_eq!(
            sender.admits(&account(90, 3, false)),
            None,
            "less may not cover it"
        );
        assert_eq!(
            sender.admits(&account(100, 4, false)),
            None,
            "another nonce"
        );
        let mut code = account(100, 3, false);
        if let ReadValue::Account { code_hash, .. } = &mut code {
            *code_hash = B256::repeat_byte(1);
        }
        assert_eq!(sender.admits(&code), None, "other code");

        let read = account(100, 3, true);
        assert_eq!(read.admits(&account(100, 3, false)), Some(U256::ZERO));
        assert_eq!(
            read.admits(&account(130, 3, false)),
            None,
            "its code read the balance"
        );
        let empty = account(0, 0, false);
        assert_eq!(
            empty.admits(&account(5, 0, false)),
            None,
            "an empty account that is no longer empty costs other gas"
        );
    }
}
