//! A member's refunds: as records become final, each slot whose block a member won gets its
//! refunds computed from the record, the chain replica and the orders the records cover, and
//! kept in the member's refund book for the query methods.
//!
//! Every input is fixed by final records (which envelopes; which block; what was paid), and the
//! replay is deterministic, so every member computes the same wei.

mod orders;
pub mod payout;
#[cfg(test)]
mod tests;

use std::{collections::BTreeMap, sync::Arc};

use alloy_primitives::B256;
use cobuild_chain::Chain;
use cobuild_consensus::{Store, to_b256};
use cobuild_net::Log;
use cobuild_refunds::{Book, OrderRefund, Owed, SlotRefunds, replay};
use tokio::sync::watch;

use crate::ledger::{ArchiveError, slot_orders};
use orders::{Covered, Parsed, attribute, decode_parsed, parse};

/// Slots of records whose orders may have landed in a slot's block: the record of the slot
/// itself, the one after it (an order the winner took just before building may be covered
/// only there), and those before it back to the longest inclusion range a bundle may name.
pub const ORDER_WINDOW: u64 = 32;

/// Why a slot's refunds could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum RefundsError {
    /// The ledger or the order log.
    #[error(transparent)]
    Orders(#[from] ArchiveError),
    /// The chain replica.
    #[error(transparent)]
    Chain(#[from] cobuild_chain::ChainError),
    /// The replay.
    #[error(transparent)]
    Replay(#[from] cobuild_refunds::ReplayError),
    /// The rule.
    #[error(transparent)]
    Rule(#[from] cobuild_refunds::RefundError),
    /// The book.
    #[error(transparent)]
    Book(#[from] cobuild_refunds::BookError),
    /// The record a slot's refunds need is not final here yet.
    #[error("the record of slot {0} is not final yet")]
    NotFinal(u64),
    /// This member's log does not hold every order the records cover yet (replication brings
    /// them; the slot is tried again).
    #[error("the log holds origin {origin} up to {held}, the records cover up to {covered}")]
    OrdersMissing {
        /// The origin.
        origin: u32,
        /// What the log holds.
        held: u64,
        /// What the records cover.
        covered: u64,
    },
}

/// Fails with [`RefundsError::OrdersMissing`] unless this member's log holds every envelope the
/// final records up to `slot` cover (every member must read the same orders; replication
/// brings the missing ones, and the slot is tried again).
fn holds_covered(store: &Store, log: &Log, slot: u64) -> Result<(), RefundsError> {
    let Some(entry) = store.get(slot).map_err(ArchiveError::from)? else {
        return Err(RefundsError::NotFinal(slot));
    };
    for prefix in &entry.record.agreed {
        let held = log.contiguous(prefix.origin).map_err(ArchiveError::from)?;
        if held < prefix.seq {
            return Err(RefundsError::OrdersMissing {
                origin: prefix.origin,
                held,
                covered: prefix.seq,
            });
        }
    }
    Ok(())
}

/// Orders a [`Window`] keeps parsed at most; past it, its oldest slots are read and parsed
/// again when a window needs them.
const MAX_KEPT_ORDERS: usize = 200_000;

/// The parsed orders of the slots a slot's refunds read, kept from one slot to the next.
///
/// The refunds of a slot read the orders of the [`ORDER_WINDOW`] slots around it, so without
/// it each order was read from the log and decoded (its `X-Flashbots-Signature` and its
/// transactions' senders recovered, its JSON parsed) once for every slot whose window held it:
/// some thirty times, which at a few hundred orders a second took more CPU than taking the
/// orders in. A slot's orders are fixed once its record is final, so they are parsed once.
#[derive(Debug, Default)]
pub struct Window {
    slots: BTreeMap<u64, Vec<Parsed>>,
}

impl Window {
    /// What the final records of slots `from..=to` cover, decoded.
    fn covered(
        &mut self,
        store: &Store,
        log: &Log,
        from: u64,
        to: u64,
    ) -> Result<Covered<'_>, ArchiveError> {
        // Over the cap, the oldest slots go first (read again when asked for). Trimmed before
        // the decoding, which borrows what is kept: at most one window's slots over the cap.
        while self.kept() > MAX_KEPT_ORDERS && self.slots.pop_first().is_some() {}
        for slot in from..=to {
            if self.slots.contains_key(&slot) {
                continue;
            }
            // A slot without a record yet is not kept: asked again, it is read again.
            if let Some((_, _, envelopes)) = slot_orders(store, log, slot, 0, usize::MAX)? {
                self.slots
                    .insert(slot, envelopes.iter().map(parse).collect());
            }
        }
        Ok(decode_parsed(
            self.slots.range(from..=to).flat_map(|(_, p)| p),
        ))
    }

    /// Drops the slots before `slot`: no later window reads them.
    fn forget_before(&mut self, slot: u64) {
        self.slots = self.slots.split_off(&slot);
    }

    /// Orders kept, over every slot.
    fn kept(&self) -> usize {
        self.slots.values().map(Vec::len).sum()
    }

    /// Slots kept.
    #[cfg(test)]
    pub(crate) fn slots(&self) -> Vec<u64> {
        self.slots.keys().copied().collect()
    }
}

/// The first slot whose orders the refunds of `slot` read.
fn window_start(slot: u64) -> u64 {
    slot.saturating_sub(ORDER_WINDOW - 2)
}

/// The refunds of `slot`, if its final record names a member as the winner; recipients as
/// `book` has the delegations, with `pending` (this record's, in acceptance order) on top.
pub fn slot_refunds(
    chain: &Chain,
    store: &Store,
    log: &Log,
    book: &Book,
    window: &mut Window,
    pending: &[(alloy_primitives::Address, alloy_primitives::Address)],
    slot: u64,
) -> Result<Option<SlotRefunds>, RefundsError> {
    let Some(entry) = store.get(slot).map_err(ArchiveError::from)? else {
        return Ok(None);
    };
    let record = &entry.record;
    let Some(winner) = record.facts.winner.0 else {
        return Ok(None);
    };
    let number = record.facts.block.number;
    let Some(block) = chain
        .read()?
        .block(number)
        .map_err(cobuild_chain::ChainError::from)?
    else {
        return Ok(None);
    };
    holds_covered(store, log, slot + 1)?;
    let decoded = window.covered(store, log, window_start(slot), slot + 1)?;
    let (landed, candidates) = attribute(&block, &decoded.orders);
    let (mut figures, full, orders) =
        replay::figures(chain, number, &landed, &candidates, record.facts.payment)?;
    // The replay leaves out the builder's own transactions (the proposer payment, in-block
    // refunds), whose gas the builder paid: what it kept is the record's value less the
    // payment, so that is all it may share out.
    figures.payment = figures
        .payment
        .saturating_add(figures.value.saturating_sub(record.facts.value));
    let refunds = cobuild_refunds::refunds(&figures)?;
    let mut owed = Vec::new();
    for (identity, amount) in &refunds.refunds {
        let paid: Vec<(B256, alloy_primitives::U256)> = orders
            .iter()
            .zip(&full.paid)
            .filter(|(o, _)| o.identity == Some(*identity))
            .map(|(o, paid)| (o.key.hash, *paid))
            .collect();
        let split = cobuild_refunds::split(*amount, &paid);
        owed.push(Owed {
            identity: *identity,
            recipient: match pending.iter().rev().find(|(from, _)| from == identity) {
                Some((_, to)) => *to,
                None => book.recipient(*identity)?,
            },
            amount: *amount,
            orders: split
                .parts
                .into_iter()
                .filter(|(_, part)| !part.is_zero())
                .map(|(hash, amount)| OrderRefund { hash, amount })
                .collect(),
        });
    }
    Ok(Some(SlotRefunds {
        slot,
        block: number,
        record: to_b256(&record.digest()),
        winner,
        coinbase: block.block.header.beneficiary,
        value: figures.value,
        payment: record.facts.payment,
        to_split: refunds.to_split,
        remainder: refunds.remainder,
        owed,
    }))
}

/// Processes one final record: its delegations, the payouts its block carries, then its
/// slot's refunds.
fn process(
    chain: &Chain,
    store: &Store,
    log: &Log,
    book: &Book,
    window: &mut Window,
    slot: u64,
) -> Result<(), RefundsError> {
    // Slots are processed in order: no later slot reads what this one's window leaves out.
    window.forget_before(window_start(slot));
    // Delegations of this record count for its own slot's refunds; like its orders, they are
    // read only once the log holds everything the records cover.
    holds_covered(store, log, slot + 1)?;
    let delegations = window.covered(store, log, slot, slot)?.delegations;
    let paid = match store.get(slot).map_err(ArchiveError::from)? {
        Some(entry) => payouts(chain, book, entry.record.facts.block.number)?,
        None => Vec::new(),
    };
    let refunds = match slot_refunds(chain, store, log, book, window, &delegations, slot) {
        Ok(refunds) => refunds,
        // A slot this member cannot replay (its replica no longer keeps the parent state)
        // is logged and left; the other members' books have it.
        Err(RefundsError::Replay(e)) => {
            tracing::error!(slot, error = %e, "refunds.replay_failed");
            None
        }
        Err(e) => return Err(e),
    };
    if let Some(refunds) = &refunds {
        tracing::info!(
            slot,
            identities = refunds.owed.len(),
            remainder = %refunds.remainder,
            "refunds.slot"
        );
    }
    for (earlier, recipient, tx) in &paid {
        tracing::info!(slot = earlier, %recipient, %tx, "refunds.paid");
    }
    book.record(slot, &delegations, refunds.as_ref(), &paid)?;
    Ok(())
}

/// The refunds block `number` pays: each successful payout (see [`cobuild_refunds::payout_input`])
/// from the fee recipient that owes every slot it names, to a recipient not yet paid for them,
/// for exactly what they owe it.
fn payouts(
    chain: &Chain,
    book: &Book,
    number: u64,
) -> Result<Vec<(u64, alloy_primitives::Address, B256)>, RefundsError> {
    use alloy_consensus::Transaction as _;
    let view = chain.read()?;
    let (Some(block), Some(receipts)) = (
        view.block(number)
            .map_err(cobuild_chain::ChainError::from)?,
        view.receipts(number)
            .map_err(cobuild_chain::ChainError::from)?,
    ) else {
        return Ok(Vec::new());
    };
    let mut paid = Vec::new();
    for ((tx, sender), receipt) in block
        .block
        .body
        .transactions
        .iter()
        .zip(&block.senders)
        .zip(&receipts)
    {
        let (Some(slots), Some(to)) = (cobuild_refunds::payout_slots(tx.input()), tx.to()) else {
            continue;
        };
        if !receipt.status() {
            continue;
        }
        let mut owed = alloy_primitives::U256::ZERO;
        let mut valid = true;
        for slot in &slots {
            let refunds = book.slot(*slot)?;
            let fresh = !paid.iter().any(|(s, r, _)| s == slot && *r == to)
                && book.paid(*slot, to)?.is_none();
            match refunds {
                Some(r) if r.coinbase == *sender && fresh && !r.owed_to(to).is_zero() => {
                    owed = owed.saturating_add(r.owed_to(to));
                }
                _ => valid = false,
            }
        }
        if valid && owed == tx.value() {
            paid.extend(slots.into_iter().map(|s| (s, to, *tx.tx_hash())));
        }
    }
    Ok(paid)
}

/// How often a slot that could not be processed yet (orders still replicating) is tried again.
const RETRY: std::time::Duration = std::time::Duration::from_millis(200);

/// Follows the final slot: each record, once the one after it is final too, is processed in
/// slot order, on a blocking thread.
pub async fn follow(
    book: Arc<Book>,
    chain: Chain,
    store: Arc<Store>,
    log: Arc<Log>,
    mut final_slot: watch::Receiver<u64>,
) {
    // Only the blocking step below takes it, one step at a time.
    let window = Arc::new(parking_lot::Mutex::new(Window::default()));
    loop {
        let last = *final_slot.borrow_and_update();
        let (book2, chain2, store2, log2, window2) = (
            book.clone(),
            chain.clone(),
            store.clone(),
            log.clone(),
            window.clone(),
        );
        let step = tokio::task::spawn_blocking(move || -> Result<(), RefundsError> {
            let mut window = window2.lock();
            let mut next = book2.processed()? + 1;
            while next < last {
                process(&chain2, &store2, &log2, &book2, &mut window, next)?;
                next += 1;
            }
            Ok(())
        })
        .await;
        let behind = match step {
            Ok(Ok(())) => false,
            Ok(Err(e @ (RefundsError::OrdersMissing { .. } | RefundsError::NotFinal(_)))) => {
                tracing::debug!(error = %e, "refunds.waiting_for_orders");
                true
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "refunds.follow_failed");
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "refunds.follow_panicked");
                true
            }
        };
        tokio::select! {
            changed = final_slot.changed() => if changed.is_err() {
                return;
            },
            () = tokio::time::sleep(RETRY), if behind => {}
        }
    }
}
