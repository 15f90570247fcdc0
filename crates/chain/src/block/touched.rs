//! Which state keys each commit to a block changed, so a seal that starts from an earlier one
//! hashes only what the block did since.
//!
//! A growing block is sealed again and again on one parent; between two seals it gains a few
//! transactions. Finding what those changed by comparing the two blocks' whole change sets
//! costs as much as the block; recording the keys as each transaction commits costs what the
//! transaction touched. The post-block changes (withdrawals, the EIP-7002/7251 system calls)
//! are recorded through the state's commit hook, which sees every commit `finish` makes,
//! whatever the fork adds there.

use std::sync::{Arc, Mutex, PoisonError};

use alloy_primitives::{Address, U256};
use revm::primitives::KECCAK_EMPTY;
use revm::{
    database::{
        State,
        states::{PlainStorageChangeset, StateChangeset},
    },
    state::EvmState,
};

/// A key a commit changed: an account (its fields), or one of its storage slots.
pub(super) type Touch = (Address, Option<U256>);

/// The keys `state` (one commit's accounts) changes: every touched account and every slot
/// whose value it changes. Accounts only read are not touched and not committed.
pub(super) fn touches(state: &EvmState) -> Arc<[Touch]> {
    let mut out = Vec::new();
    for (address, account) in state.iter().filter(|(_, a)| a.is_touched()) {
        out.push((*address, None));
        out.extend(
            account
                .storage
                .iter()
                .filter(|(_, slot)| slot.is_changed())
                .map(|(slot, _)| (*address, Some(*slot))),
        );
    }
    out.into()
}

/// Records the keys of every commit made to `db` from now on, until its hook is cleared.
pub(super) fn record<DB: revm::Database>(db: &mut State<DB>) -> Recorded {
    let recorded = Recorded::default();
    let sink = recorded.clone();
    db.set_state_hook(Some(Box::new(move |state: EvmState| {
        let keys = touches(&state);
        sink.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(keys.iter().copied());
    })));
    recorded
}

/// The keys a state hook installed by [`record`] has seen.
#[derive(Debug, Clone, Default)]
pub(super) struct Recorded(Arc<Mutex<Vec<Touch>>>);

impl Recorded {
    /// The keys seen so far.
    pub(super) fn take(&self) -> Vec<Touch> {
        std::mem::take(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The present values in `db` of the accounts and slots `keys` name, as a change set, with the
/// code of those accounts whose code the block deployed. `None` when one of them was
/// destroyed or its storage wiped, or a key is not in the state's cache (each is there once
/// committed): the caller then takes the block's whole change set.
pub(super) fn present<'a, DB>(
    db: &State<DB>,
    keys: impl IntoIterator<Item = &'a Touch>,
) -> Option<StateChangeset> {
    let mut slots: std::collections::BTreeMap<Address, Vec<U256>> = Default::default();
    for (address, slot) in keys {
        let entry = slots.entry(*address).or_default();
        entry.extend(slot);
    }
    let transitions = db.transition_state.as_ref()?;
    let mut changes = StateChangeset::default();
    for (address, mut keys) in slots {
        let cached = db.cache.accounts.get(&address)?;
        if cached.status.was_destroyed() {
            return None;
        }
        let account = cached.account.as_ref()?;
        // The rule revm's change sets follow: code whose hash the block changed, never empty.
        if let Some((hash, code)) = transitions
            .transitions
            .get(&address)
            .and_then(|t| t.has_new_contract())
            .filter(|(hash, _)| *hash != KECCAK_EMPTY)
        {
            changes.contracts.push((hash, code.clone()));
        }
        changes.accounts.push((address, Some(account.info.clone())));
        keys.sort_unstable();
        keys.dedup();
        if !keys.is_empty() {
            let storage = keys
                .into_iter()
                .map(|slot| account.storage.get(&slot).map(|value| (slot, *value)))
                .collect::<Option<Vec<_>>>()?;
            changes.storage.push(PlainStorageChangeset {
                address,
                wipe_storage: false,
                storage,
            });
        }
    }
    Some(changes)
}
