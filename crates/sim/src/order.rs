//! An order as the simulator and builders see it: one pooled transaction or one bundle, with the
//! rules that decide whether a failing transaction voids it.

use std::sync::Arc;

use alloy_consensus::{Transaction as _, TxEnvelope, transaction::Recovered};
use alloy_primitives::{Address, B256};
use cobuild_pool::{PooledBundle, PooledTx};
use cobuild_primitives::{OrderRules, Refund, SingleTx};

/// A transaction or a bundle from the pools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Order {
    /// A single transaction; it may revert (it still pays for its gas) but never be dropped.
    Tx(Arc<PooledTx>),
    /// A bundle: all its kept transactions land, in order, or none does.
    Bundle(Arc<PooledBundle>),
}

impl Order {
    /// The transaction hash, or the bundle's pool id ([`PooledBundle::id`]).
    pub fn id(&self) -> B256 {
        match self {
            Self::Tx(tx) => tx.hash,
            Self::Bundle(b) => b.id,
        }
    }

    /// The transactions, in order.
    pub fn txs(&self) -> &[Recovered<TxEnvelope>] {
        match self {
            Self::Tx(tx) => std::slice::from_ref(&tx.tx),
            Self::Bundle(b) => &b.bundle.txs,
        }
    }

    /// The in-block refund the order asks for.
    pub fn refund(&self) -> Option<&Refund> {
        match self {
            Self::Tx(_) => None,
            // A delayed refund is the ledger's to pay, after the slot.
            Self::Bundle(b) => b.bundle.refund.as_ref().filter(|r| !r.delayed),
        }
    }

    /// Sum of the transactions' gas limits.
    pub fn gas_limit(&self) -> u64 {
        self.txs().iter().map(|tx| tx.gas_limit()).sum()
    }

    /// The signer of the first transaction (the default refund recipient).
    pub fn first_signer(&self) -> Option<Address> {
        self.txs().first().map(|tx| tx.signer())
    }

    /// Whether this is a bundle.
    pub const fn is_bundle(&self) -> bool {
        matches!(self, Self::Bundle(_))
    }
}

/// A transaction may revert but never be dropped; a bundle follows its own lists.
impl OrderRules for Order {
    fn may_revert(&self, hash: &B256) -> bool {
        match self {
            Self::Tx(_) => SingleTx.may_revert(hash),
            Self::Bundle(b) => b.bundle.may_revert(hash),
        }
    }

    fn may_drop(&self, hash: &B256) -> bool {
        match self {
            Self::Tx(_) => SingleTx.may_drop(hash),
            Self::Bundle(b) => b.bundle.may_drop(hash),
        }
    }
}
