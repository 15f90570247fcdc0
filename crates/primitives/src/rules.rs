//! The bundle rules, written once: what a transaction that reverted or could not run does to
//! the order it belongs to.
//!
//! A bundle lands atomically: all the transactions it keeps, in order, or none. A transaction
//! that reverts is kept only if the bundle lists it in `revertingTxHashes`; one that reverts or
//! cannot run at all (nonce, funds, fees) may be left out only if it is in `droppingTxHashes`;
//! anything else voids the whole bundle, and so does leaving every transaction out. A single
//! transaction may revert (it still pays for its gas) but never be dropped. The block builder,
//! the simulator and `mev_simBundle` all judge with [`OrderRules::fate`].

use alloy_primitives::B256;
use revm::context_interface::result::{EVMError, InvalidTransaction, ResultAndState};

use crate::Bundle;

/// How one transaction of an order ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxRun {
    /// It ran and succeeded.
    Succeeded,
    /// It ran and reverted (or halted): it used gas, its other effects are undone.
    Reverted,
    /// It could not run on this state (nonce, funds, fee, gas limit).
    Invalid,
}

/// One transaction's EVM outcome as the rules see it: how it ran, its result when it ran and
/// why not when it could not.
#[derive(Debug)]
pub struct Ran<H> {
    /// How it ran.
    pub run: TxRun,
    /// The result and state changes, unless it could not run.
    pub result: Option<ResultAndState<H>>,
    /// Why it could not run, if so.
    pub invalid: Option<InvalidTransaction>,
}

impl<H> Ran<H> {
    /// Reads an EVM outcome; any error other than an invalid transaction (a failed state read)
    /// is returned as it is: it stops the caller, not just this order.
    pub fn from_outcome<E>(
        outcome: Result<ResultAndState<H>, EVMError<E>>,
    ) -> Result<Self, EVMError<E>> {
        Ok(match outcome {
            Ok(result) => Self {
                run: if result.result.is_success() {
                    TxRun::Succeeded
                } else {
                    TxRun::Reverted
                },
                result: Some(result),
                invalid: None,
            },
            Err(EVMError::Transaction(reason)) => Self {
                run: TxRun::Invalid,
                result: None,
                invalid: Some(reason),
            },
            Err(other) => return Err(other),
        })
    }
}

/// What an order's rules make of one transaction's run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxFate {
    /// It stays in the order, with its effects.
    Keep,
    /// It is left out, as if it were not in the order.
    Drop,
    /// The whole order is void: none of it lands.
    Void,
}

/// The rules of one order: which of its transactions may revert and which may be left out.
pub trait OrderRules {
    /// Whether transaction `tx` may revert without voiding the order.
    fn may_revert(&self, tx: &B256) -> bool;

    /// Whether transaction `tx` may be left out when it reverts or cannot run.
    fn may_drop(&self, tx: &B256) -> bool;

    /// What becomes of transaction `tx`, which ran as `run`.
    fn fate(&self, tx: &B256, run: TxRun) -> TxFate {
        match run {
            TxRun::Succeeded => TxFate::Keep,
            TxRun::Reverted if self.may_revert(tx) => TxFate::Keep,
            TxRun::Reverted | TxRun::Invalid if self.may_drop(tx) => TxFate::Drop,
            TxRun::Reverted | TxRun::Invalid => TxFate::Void,
        }
    }

    /// Whether an order that kept `kept` transactions stands (one that dropped them all is void).
    fn stands(&self, kept: usize) -> bool {
        kept > 0
    }
}

impl OrderRules for Bundle {
    fn may_revert(&self, tx: &B256) -> bool {
        self.reverting.contains(tx)
    }

    fn may_drop(&self, tx: &B256) -> bool {
        self.dropping.contains(tx)
    }
}

/// The rules of a single transaction: it may revert, never be dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SingleTx;

impl OrderRules for SingleTx {
    fn may_revert(&self, _: &B256) -> bool {
        true
    }

    fn may_drop(&self, _: &B256) -> bool {
        false
    }
}

/// Rules given as lists: the transactions that may revert and those that may be dropped (what a
/// bundle's `revertingTxHashes` and `droppingTxHashes` say).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowed {
    /// May revert.
    pub reverting: Vec<B256>,
    /// May be left out.
    pub dropping: Vec<B256>,
}

impl OrderRules for Allowed {
    fn may_revert(&self, tx: &B256) -> bool {
        self.reverting.contains(tx)
    }

    fn may_drop(&self, tx: &B256) -> bool {
        self.dropping.contains(tx)
    }
}

/// No transaction may revert or be dropped: a strict bundle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Strict;

impl OrderRules for Strict {
    fn may_revert(&self, _: &B256) -> bool {
        false
    }

    fn may_drop(&self, _: &B256) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_the_rule_table() {
        let (revert, drop, both, plain) = (
            B256::repeat_byte(1),
            B256::repeat_byte(2),
            B256::repeat_byte(3),
            B256::repeat_byte(4),
        );
        let rules = Allowed {
            reverting: vec![revert, both],
            dropping: vec![drop, both],
        };
        use TxFate::*;
        use TxRun::*;
        let table = [
            (plain, Succeeded, Keep),
            (plain, Reverted, Void),
            (plain, Invalid, Void),
            (revert, Reverted, Keep),
            (revert, Invalid, Void),
            (drop, Reverted, Drop),
            (drop, Invalid, Drop),
            (both, Reverted, Keep),
            (both, Invalid, Drop),
        ];
        for (tx, run, fate) in table {
            assert_eq!(rules.fate(&tx, run), fate, "{tx} {run:?}");
        }
        assert_eq!(SingleTx.fate(&plain, Reverted), Keep);
        assert_eq!(SingleTx.fate(&plain, Invalid), Void);
        assert_eq!(Strict.fate(&plain, Reverted), Void);
        assert!(!rules.stands(0) && rules.stands(1));
    }
}
