//! The figures of the rule from the block itself: the winning block's orders executed again, in
//! block order, on the state the block was built on, once with every order and once without
//! each identity's (and each interacting pair's) orders.
//!
//! Every order keeps or drops its own transactions by its own rules (a bundle's revert and drop
//! lists; a lone transaction may revert), so leaving one sender out lets a conflicting order
//! land where it failed before, exactly as a builder without that sender would have seen it.
//! Transactions the coinbase sends (in-block refunds, the proposer payment) are not orders and
//! are not replayed; an order that keeps an in-block refund (`refundPercent`) counts net of it.
//! Execution is deterministic, so every member replaying the same block and orders gets the
//! same wei.

use std::collections::{BTreeMap, BTreeSet};

use alloy_consensus::{TxEnvelope, transaction::Recovered};
use alloy_primitives::U256;
use cobuild_chain::{BlockError, Chain, ChainError};
use cobuild_primitives::Allowed;

use crate::{Contribution, Identity, Joint, SlotFigures};

/// One order of the block, as the replay executes it.
#[derive(Debug, Clone)]
pub struct Landed<K> {
    /// What the caller calls the order.
    pub key: K,
    /// Who earns its refund; `None`: nobody (public orderflow, an in-block refund kept).
    pub identity: Option<Identity>,
    /// All its transactions, in its own order (those it dropped in the block too).
    pub txs: Vec<Recovered<TxEnvelope>>,
    /// Which may revert and which may be left out.
    pub rules: Allowed,
    /// The share of what it pays the builder that the builder refunds in the block (0..=99).
    pub in_block_refund: u8,
}

/// What one execution of the block's orders gave the builder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pass {
    /// Everything the included orders paid the builder, net of in-block refunds.
    pub value: U256,
    /// What each order paid (zero when it did not land), by index.
    pub paid: Vec<U256>,
}

/// The block could not be executed again.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The chain no longer holds the block or the state it was built on.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// Execution failed for a reason that is not an order's fault.
    #[error(transparent)]
    Block(#[from] BlockError),
}

/// Executes block `number`'s `orders` again, in order, leaving out those `skip` names.
pub fn pass<K>(
    chain: &Chain,
    number: u64,
    orders: &[Landed<K>],
    skip: impl Fn(&Landed<K>) -> bool,
) -> Result<Pass, ReplayError> {
    let mut builder = chain.replay(number)?;
    let mut out = Pass {
        value: U256::ZERO,
        paid: vec![U256::ZERO; orders.len()],
    };
    for (n, order) in orders.iter().enumerate() {
        if skip(order) {
            continue;
        }
        if let Ok(outcome) = builder.execute_bundle(&order.txs, &order.rules)? {
            let kept = outcome.coinbase_profit
                - outcome.coinbase_profit * U256::from(order.in_block_refund) / U256::from(100);
            out.paid[n] = kept;
            out.value = out.value.saturating_add(kept);
        }
    }
    Ok(out)
}

/// The rule's figures for block `number`, whose builder paid the proposer `payment`.
///
/// `landed` are the block's orders in block order; `candidates` the orders that targeted the
/// block and did not land, in a fixed order. A candidate that lands when tried after the
/// block's orders was merely left out and conflicts with nothing: it is dropped. The others are
/// tried after the block's orders in every pass, so leaving an identity out lets the orders it
/// blocked land. `v(T)` and what each order paid come from the pass with every order, `v(T∖i)`
/// from one pass per earning identity, `v(T∖{i,j})` from one per interacting pair: leaving one
/// out changes what the other's orders pay, or their orders share a transaction signer with
/// each other or both with a third order (so they may block it together). With the full pass and the
/// orders it ran, for splitting refunds over orders.
pub fn figures<K: Clone>(
    chain: &Chain,
    number: u64,
    landed: &[Landed<K>],
    candidates: &[Landed<K>],
    payment: U256,
) -> Result<(SlotFigures, Pass, Vec<Landed<K>>), ReplayError> {
    let mut orders: Vec<Landed<K>> = landed.iter().chain(candidates).cloned().collect();
    let tried = pass(chain, number, &orders, |_| false)?;
    let mut n = 0;
    orders.retain(|_| {
        n += 1;
        n <= landed.len() || tried.paid[n - 1].is_zero()
    });
    let full = if orders.len() == tried.paid.len() {
        tried
    } else {
        pass(chain, number, &orders, |_| false)?
    };
    let identities: BTreeSet<Identity> = orders.iter().filter_map(|o| o.identity).collect();
    let mut contributions = BTreeMap::new();
    let mut pairs: BTreeSet<(Identity, Identity)> = shared_signers(&orders);
    for identity in &identities {
        let without = pass(chain, number, &orders, |o| o.identity == Some(*identity))?;
        contributions.insert(
            *identity,
            Contribution {
                paid: paid_by(&orders, &full, *identity),
                value_without: without.value,
            },
        );
        for (o, (with, without)) in orders.iter().zip(full.paid.iter().zip(&without.paid)) {
            match o.identity {
                Some(other) if other != *identity && with != without => {
                    pairs.insert(((*identity).min(other), (*identity).max(other)));
                }
                _ => {}
            }
        }
    }
    let mut joint = Vec::with_capacity(pairs.len());
    for (a, b) in pairs {
        let without = pass(chain, number, &orders, |o| {
            o.identity == Some(a) || o.identity == Some(b)
        })?;
        joint.push(Joint {
            identities: [a, b].into(),
            value_without: without.value,
        });
    }
    let figures = SlotFigures {
        value: full.value,
        payment,
        contributions,
        joint,
    };
    Ok((figures, full, orders))
}

/// Pairs of earning identities whose orders share a transaction signer with each other, or
/// both with one third order (of anyone).
fn shared_signers<K>(orders: &[Landed<K>]) -> BTreeSet<(Identity, Identity)> {
    let signers: Vec<BTreeSet<alloy_primitives::Address>> = orders
        .iter()
        .map(|o| o.txs.iter().map(|tx| tx.signer()).collect())
        .collect();
    let mut pairs = BTreeSet::new();
    for (third, shared) in signers.iter().enumerate() {
        let touching: BTreeSet<Identity> = orders
            .iter()
            .zip(&signers)
            .enumerate()
            .filter(|(n, (_, s))| *n == third || !s.is_disjoint(shared))
            .filter_map(|(_, (o, _))| o.identity)
            .collect();
        for a in &touching {
            for b in touching.range(*a..).skip(1) {
                pairs.insert((*a, *b));
            }
        }
    }
    pairs
}

/// What `identity`'s orders paid in `pass`.
fn paid_by<K>(orders: &[Landed<K>], pass: &Pass, identity: Identity) -> U256 {
    orders
        .iter()
        .zip(&pass.paid)
        .filter(|(o, _)| o.identity == Some(identity))
        .fold(U256::ZERO, |sum, (_, paid)| sum.saturating_add(*paid))
}
