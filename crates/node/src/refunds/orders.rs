//! The orders a slot's refunds are computed from: envelopes the final records cover, decoded
//! as the accepting member checked them, sorted into who earns what, and matched to the
//! transactions of the winning block.
//!
//! Who earns: a signed order (`eth_sendBundle`, `mev_sendBundle`, `eth_sendPrivateTransaction`)
//! earns for its `refundIdentity` or, without one, its `X-Flashbots-Signature` signer. A raw
//! transaction is public orderflow and earns nothing, and so does a signed order made only of
//! transactions also sent raw. A bundle that keeps an in-block refund (`refundPercent` without
//! `delayedRefund: true`) earns nothing more; the builder counts it net of that refund.

use std::{
    borrow::Cow,
    collections::{BTreeMap, HashSet},
};

use alloy_consensus::{TxEnvelope, transaction::Recovered};
use alloy_primitives::{Address, B256, Bytes, map::B256Map};
use alloy_rpc_types_mev::{EthSendBundle, MevSendBundle};
use cobuild_chain::StoredBlock;
use cobuild_net::Envelope;
use cobuild_primitives::{
    Allowed, Bundle, BundleRequest, OrderKind, decode_transactions, parse_mev_bundle, quantity,
};
use cobuild_refunds::Landed;

/// Which order a refund is for: its bundle or transaction hash, and the envelope it came in
/// (none for a block transaction no order in the records carried).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OrderKey {
    pub(crate) hash: B256,
    pub(crate) envelope: Option<(u32, u64)>,
}

/// One decoded order.
#[derive(Debug, Clone)]
pub(crate) struct Decoded {
    pub(crate) key: OrderKey,
    /// Who earns, before the public-transaction rule is applied.
    pub(crate) identity: Option<Address>,
    pub(crate) txs: Vec<Recovered<TxEnvelope>>,
    pub(crate) rules: Allowed,
    pub(crate) in_block_refund: u8,
    /// The blocks it may land in (`None`: any).
    pub(crate) range: Option<(u64, u64)>,
}

/// What the covered envelopes hold. The orders are borrowed from the parsed envelopes where
/// the window changes nothing in them: a member decodes its whole window (~32 slots) for every
/// slot, and copying every order's transactions each time cost more than the rest of it.
#[derive(Debug, Default)]
pub(crate) struct Covered<'a> {
    pub(crate) orders: Vec<Cow<'a, Decoded>>,
    /// `from → to`, in the order they were accepted.
    pub(crate) delegations: Vec<(Address, Address)>,
}

#[cfg(test)]
impl Covered<'_> {
    fn into_owned(self) -> Covered<'static> {
        Covered {
            orders: self
                .orders
                .into_iter()
                .map(|o| Cow::Owned(o.into_owned()))
                .collect(),
            delegations: self.delegations,
        }
    }
}

/// One envelope of a final record with its expensive half of decoding done (read from the log,
/// signatures recovered, JSON and RLP parsed): what a slot keeps while it is in the window of
/// the slots after it ([`super::Window`]).
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    /// Acceptance order: received at (ms), origin, sequence.
    accepted: (u64, u32, u64),
    item: Item,
}

#[derive(Debug, Clone)]
enum Item {
    /// A raw transaction: public orderflow, as the lone order it is.
    Raw(Box<Decoded>),
    /// A signed order whose reading depends on no other order.
    Order(Box<Decoded>),
    /// A MEV-Share bundle, whose `{hash}` items are the window's raw transactions.
    Mev {
        identity: Address,
        request: Box<MevSendBundle>,
    },
    /// `from` has `to` receive its refunds.
    Delegation(Address, Address),
    /// Does not decode: it was checked when accepted, so only an envelope from a newer node.
    Skip,
}

/// Parses one envelope (the costly part of [`decode`]).
pub(crate) fn parse(envelope: &Envelope) -> Parsed {
    let body = &envelope.body;
    let item = if body.kind == OrderKind::RawTransaction as u8 {
        raw(&body.payload).map_or(Item::Skip, |tx| {
            Item::Raw(Box::new(lone_order(
                (body.origin, body.seq),
                tx,
                None,
                None,
            )))
        })
    } else {
        signed(envelope).unwrap_or(Item::Skip)
    };
    Parsed {
        accepted: (body.received_at_ms, body.origin, body.seq),
        item,
    }
}

/// Decodes `envelopes` (any order); those that do not decode are skipped (they were checked
/// when accepted, so this is only an envelope from a newer node).
#[cfg(test)]
pub(crate) fn decode(envelopes: &[Envelope]) -> Covered<'static> {
    let parsed: Vec<Parsed> = envelopes.iter().map(parse).collect();
    decode_parsed(&parsed).into_owned()
}

/// [`decode`] of envelopes parsed already (any order).
pub(crate) fn decode_parsed<'a>(parsed: impl IntoIterator<Item = &'a Parsed>) -> Covered<'a> {
    let mut sorted: Vec<&Parsed> = parsed.into_iter().collect();
    sorted.sort_by_key(|p| p.accepted);
    let raw = |p: &&'a Parsed| match &p.item {
        Item::Raw(order) => Some(&**order),
        _ => None,
    };
    let mut public: B256Map<&'a Recovered<TxEnvelope>> = B256Map::with_capacity_and_hasher(
        sorted.iter().filter_map(raw).count(),
        Default::default(),
    );
    let mut covered = Covered {
        orders: Vec::with_capacity(sorted.len()),
        delegations: Vec::new(),
    };
    for order in sorted.iter().filter_map(raw) {
        public.extend(order.txs.iter().map(|tx| (*tx.tx_hash(), tx)));
        covered.orders.push(Cow::Borrowed(order));
    }
    for parsed in sorted {
        let (_, origin, seq) = parsed.accepted;
        match &parsed.item {
            Item::Order(order) => covered.orders.push(Cow::Borrowed(&**order)),
            Item::Mev { identity, request } => {
                if let Ok(bundle) = Bundle::from_mev_share(request, |hash| {
                    public.get(&hash).map(|tx| (*tx).clone())
                }) {
                    covered
                        .orders
                        .push(Cow::Owned(from_bundle((origin, seq), *identity, &bundle)));
                }
            }
            Item::Delegation(from, to) => covered.delegations.push((*from, *to)),
            Item::Raw(_) | Item::Skip => {}
        }
    }
    for order in &mut covered.orders {
        if order.identity.is_some() && order.txs.iter().all(|tx| public.contains_key(tx.tx_hash()))
        {
            order.to_mut().identity = None;
        }
    }
    covered
}

fn signed(envelope: &Envelope) -> Option<Item> {
    let body = &envelope.body;
    let kind = OrderKind::try_from(body.kind).ok()?;
    if !matches!(
        kind,
        OrderKind::SendBundle
            | OrderKind::MevSendBundle
            | OrderKind::SendPrivateTransaction
            | OrderKind::SetFeeRefundRecipient
    ) {
        return None;
    }
    let (from, _, mut params) =
        cobuild_rpc::signed_call(kind, &body.payload, &body.auth, body.call).ok()?;
    if kind == OrderKind::SetFeeRefundRecipient {
        let delegation = cobuild_rpc::delegation(from, &params).ok()?;
        return Some(Item::Delegation(delegation.from, delegation.to));
    }
    let params = params.swap_remove(0);
    let identity = params
        .get("refundIdentity")
        .and_then(|v| serde_json::from_value::<Address>(v.clone()).ok())
        .unwrap_or(from);
    let at = (body.origin, body.seq);
    let decoded = match kind {
        OrderKind::SendBundle => {
            let request: EthSendBundle = serde_json::from_value(params).ok()?;
            let BundleRequest::Send(bundle) = BundleRequest::from_rpc(request).ok()? else {
                return None;
            };
            from_bundle(at, identity, &bundle)
        }
        OrderKind::MevSendBundle => {
            let request = Box::new(parse_mev_bundle(params).ok()?);
            return Some(Item::Mev { identity, request });
        }
        _ => {
            let tx = raw(&serde_json::from_value::<Bytes>(params.get("tx")?.clone()).ok()?)?;
            let last = params.get("maxBlockNumber").and_then(quantity);
            lone_order(at, tx, Some(identity), last.map(|last| (0, last)))
        }
    };
    Some(Item::Order(Box::new(decoded)))
}

fn from_bundle((origin, seq): (u32, u64), identity: Address, bundle: &Bundle) -> Decoded {
    let in_block_refund = bundle
        .refund
        .filter(|r| !r.delayed)
        .map_or(0, |r| r.percent);
    Decoded {
        key: key_at(origin, seq, bundle.hash),
        identity: (in_block_refund == 0).then_some(identity),
        txs: bundle.txs.clone(),
        rules: Allowed {
            reverting: bundle.reverting.clone(),
            dropping: bundle.dropping.clone(),
        },
        in_block_refund,
        range: (bundle.block_number != 0).then(|| (bundle.block_number, bundle.last_block())),
    }
}

#[cfg(test)]
pub(super) fn key(envelope: &Envelope, hash: B256) -> OrderKey {
    key_at(envelope.body.origin, envelope.body.seq, hash)
}

fn key_at(origin: u32, seq: u64, hash: B256) -> OrderKey {
    OrderKey {
        hash,
        envelope: Some((origin, seq)),
    }
}

/// The order of one transaction (raw, or a private transaction of `identity`) accepted as
/// `origin`'s `seq`.
fn lone_order(
    (origin, seq): (u32, u64),
    tx: Recovered<TxEnvelope>,
    identity: Option<Address>,
    range: Option<(u64, u64)>,
) -> Decoded {
    Decoded {
        key: key_at(origin, seq, *tx.tx_hash()),
        identity,
        rules: lone(&tx),
        txs: vec![tx],
        in_block_refund: 0,
        range,
    }
}

/// A lone transaction may revert.
fn lone(tx: &Recovered<TxEnvelope>) -> Allowed {
    Allowed {
        reverting: vec![*tx.tx_hash()],
        dropping: Vec::new(),
    }
}

/// The transaction in `bytes`, decoded and its signer recovered as intake does.
fn raw(bytes: &Bytes) -> Option<Recovered<TxEnvelope>> {
    decode_transactions(std::slice::from_ref(bytes)).ok()?.pop()
}

/// The block's orders in block order, and the orders that targeted the block and did not
/// land (in the order they were accepted).
///
/// Each transaction of the block, the coinbase's own left out, is claimed by the first order
/// (most transactions first, then signed before public, then acceptance order) whose
/// transactions present in the block start there, in its own order, and whose absent ones it
/// may drop. A transaction no order claims is public.
pub(crate) fn attribute(
    block: &StoredBlock,
    orders: &[Cow<'_, Decoded>],
) -> (Vec<Landed<OrderKey>>, Vec<Landed<OrderKey>>) {
    let coinbase = block.block.header.beneficiary;
    let txs: Vec<Recovered<TxEnvelope>> = block
        .block
        .body
        .transactions
        .iter()
        .zip(&block.senders)
        .filter(|(_, sender)| **sender != coinbase)
        .map(|(tx, sender)| Recovered::new_unchecked(tx.clone(), *sender))
        .collect();
    let in_block: HashSet<B256> = txs.iter().map(|tx| *tx.tx_hash()).collect();
    let mut by_first: BTreeMap<B256, Vec<usize>> = BTreeMap::new();
    for (n, order) in orders.iter().enumerate() {
        if let Some(first) = order.txs.iter().find(|tx| in_block.contains(tx.tx_hash())) {
            by_first.entry(*first.tx_hash()).or_default().push(n);
        }
    }
    for list in by_first.values_mut() {
        // Stable: acceptance order within each rank.
        list.sort_by_key(|n| {
            let o = &orders[*n];
            (std::cmp::Reverse(o.txs.len()), o.identity.is_none())
        });
    }
    let mut landed = Vec::new();
    let mut used = HashSet::new();
    let mut p = 0;
    while p < txs.len() {
        let here = *txs[p].tx_hash();
        let claim = by_first.get(&here).and_then(|list| {
            list.iter().copied().find_map(|n| {
                let order = &orders[n];
                let present: Vec<&Recovered<TxEnvelope>> = order
                    .txs
                    .iter()
                    .filter(|tx| in_block.contains(tx.tx_hash()))
                    .collect();
                let fits = present.len() <= txs.len() - p
                    && present
                        .iter()
                        .zip(&txs[p..])
                        .all(|(a, b)| a.tx_hash() == b.tx_hash())
                    && order
                        .txs
                        .iter()
                        .filter(|tx| !in_block.contains(tx.tx_hash()))
                        .all(|tx| order.rules.dropping.contains(tx.tx_hash()));
                fits.then_some((n, present.len()))
            })
        });
        match claim {
            Some((n, len)) => {
                used.insert(n);
                landed.push(landing(&orders[n]));
                p += len;
            }
            None => {
                let tx = txs[p].clone();
                landed.push(Landed {
                    key: OrderKey {
                        hash: here,
                        envelope: None,
                    },
                    identity: None,
                    rules: lone(&tx),
                    txs: vec![tx],
                    in_block_refund: 0,
                });
                p += 1;
            }
        }
    }
    let number = block.block.header.number;
    let candidates = orders
        .iter()
        .enumerate()
        .filter(|(n, o)| {
            !used.contains(n)
                && o.key.envelope.is_some()
                && o.identity.is_some()
                && o.range
                    .is_none_or(|(first, last)| (first..=last).contains(&number))
                && o.txs.iter().all(|tx| !in_block.contains(tx.tx_hash()))
        })
        .map(|(_, o)| landing(o))
        .collect();
    (landed, candidates)
}

fn landing(order: &Decoded) -> Landed<OrderKey> {
    Landed {
        key: order.key,
        identity: order.identity,
        txs: order.txs.clone(),
        rules: order.rules.clone(),
        in_block_refund: order.in_block_refund,
    }
}
