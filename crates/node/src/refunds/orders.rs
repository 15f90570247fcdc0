//! The orders a slot's refunds are computed from: envelopes the final records cover, decoded
//! as the accepting member checked them, sorted into who earns what, and matched to the
//! transactions of the winning block.
//!
//! Who earns: a signed order (`eth_sendBundle`, `mev_sendBundle`, `eth_sendPrivateTransaction`)
//! earns for its `refundIdentity` or, without one, its `X-Flashbots-Signature` signer. A raw
//! transaction is public orderflow and earns nothing, and so does a signed order made only of
//! transactions also sent raw. A bundle that keeps an in-block refund (`refundPercent` without
//! `delayedRefund: true`) earns nothing more; the builder counts it net of that refund.

use std::collections::{BTreeMap, HashMap, HashSet};

use alloy_consensus::{TxEnvelope, transaction::Recovered};
use alloy_eips::Decodable2718 as _;
use alloy_primitives::{Address, B256, Bytes};
use alloy_rpc_types_mev::EthSendBundle;
use cobuild_chain::StoredBlock;
use cobuild_net::Envelope;
use cobuild_primitives::{Allowed, Bundle, BundleRequest, OrderKind, parse_mev_bundle};
use cobuild_refunds::Landed;
use serde_json::Value;

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

/// What the covered envelopes hold.
#[derive(Debug, Default)]
pub(crate) struct Covered {
    pub(crate) orders: Vec<Decoded>,
    /// `from → to`, in the order they were accepted.
    pub(crate) delegations: Vec<(Address, Address)>,
}

/// Decodes `envelopes` (any order); those that do not decode are skipped (they were checked
/// when accepted, so this is only an envelope from a newer node).
pub(crate) fn decode(envelopes: &[Envelope]) -> Covered {
    let mut sorted: Vec<&Envelope> = envelopes.iter().collect();
    sorted.sort_by_key(|e| (e.body.received_at_ms, e.body.origin, e.body.seq));
    let mut public: HashMap<B256, Recovered<TxEnvelope>> = HashMap::new();
    let mut covered = Covered::default();
    for envelope in &sorted {
        if envelope.body.kind == OrderKind::RawTransaction as u8
            && let Some(tx) = raw(&envelope.body.payload)
        {
            public.insert(*tx.tx_hash(), tx.clone());
            covered.orders.push(Decoded {
                key: key(envelope, *tx.tx_hash()),
                identity: None,
                rules: lone(&tx),
                txs: vec![tx],
                in_block_refund: 0,
                range: None,
            });
        }
    }
    for envelope in sorted {
        match signed(envelope, &public) {
            Some(Signed::Order(order)) => covered.orders.push(order),
            Some(Signed::Delegation(from, to)) => covered.delegations.push((from, to)),
            None => {}
        }
    }
    for order in &mut covered.orders {
        if order.txs.iter().all(|tx| public.contains_key(tx.tx_hash())) {
            order.identity = None;
        }
    }
    covered
}

enum Signed {
    Order(Decoded),
    Delegation(Address, Address),
}

fn signed(envelope: &Envelope, public: &HashMap<B256, Recovered<TxEnvelope>>) -> Option<Signed> {
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
        return Some(Signed::Delegation(delegation.from, delegation.to));
    }
    let params = params.swap_remove(0);
    let identity = params
        .get("refundIdentity")
        .and_then(|v| serde_json::from_value::<Address>(v.clone()).ok())
        .unwrap_or(from);
    let decoded = match kind {
        OrderKind::SendBundle => {
            let request: EthSendBundle = serde_json::from_value(params).ok()?;
            let BundleRequest::Send(bundle) = BundleRequest::from_rpc(request).ok()? else {
                return None;
            };
            from_bundle(envelope, identity, &bundle)
        }
        OrderKind::MevSendBundle => {
            let request = parse_mev_bundle(params).ok()?;
            let bundle =
                Bundle::from_mev_share(&request, |hash| public.get(&hash).cloned()).ok()?;
            from_bundle(envelope, identity, &bundle)
        }
        _ => {
            let tx = raw(&serde_json::from_value::<Bytes>(params.get("tx")?.clone()).ok()?)?;
            let last = params.get("maxBlockNumber").and_then(quantity);
            Decoded {
                key: key(envelope, *tx.tx_hash()),
                identity: Some(identity),
                rules: lone(&tx),
                txs: vec![tx],
                in_block_refund: 0,
                range: last.map(|last| (0, last)),
            }
        }
    };
    Some(Signed::Order(decoded))
}

fn from_bundle(envelope: &Envelope, identity: Address, bundle: &Bundle) -> Decoded {
    let in_block_refund = bundle
        .refund
        .filter(|r| !r.delayed)
        .map_or(0, |r| r.percent);
    Decoded {
        key: key(envelope, bundle.hash),
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

fn key(envelope: &Envelope, hash: B256) -> OrderKey {
    OrderKey {
        hash,
        envelope: Some((envelope.body.origin, envelope.body.seq)),
    }
}

/// A lone transaction may revert.
fn lone(tx: &Recovered<TxEnvelope>) -> Allowed {
    Allowed {
        reverting: vec![*tx.tx_hash()],
        dropping: Vec::new(),
    }
}

fn raw(bytes: &[u8]) -> Option<Recovered<TxEnvelope>> {
    use alloy_consensus::transaction::SignerRecoverable as _;
    let mut slice = bytes;
    let tx = TxEnvelope::decode_2718(&mut slice).ok()?;
    if !slice.is_empty() {
        return None;
    }
    let signer = tx.recover_signer().ok()?;
    Some(Recovered::new_unchecked(tx, signer))
}

fn quantity(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => u64::from_str_radix(s.strip_prefix("0x")?, 16).ok(),
        _ => None,
    }
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
    orders: &[Decoded],
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

#[cfg(test)]
mod tests {
    use alloy_consensus::{Block, BlockBody, Header};
    use alloy_eips::Encodable2718 as _;
    use alloy_primitives::{B256, keccak256};
    use alloy_signer::SignerSync as _;
    use alloy_signer_local::PrivateKeySigner;
    use cobuild_chain::{
        dev_signers,
        test_utils::{sign, transfer},
    };
    use cobuild_net::EnvelopeBody;
    use serde_json::json;

    use super::*;

    fn auth(byte: u8) -> PrivateKeySigner {
        PrivateKeySigner::from_bytes(&B256::repeat_byte(byte)).expect("key")
    }

    fn tx(account: usize, to: u8) -> Recovered<TxEnvelope> {
        sign(
            &dev_signers()[account],
            transfer(0, Address::repeat_byte(to), 1, 1),
        )
    }

    fn raw(tx: &Recovered<TxEnvelope>) -> String {
        format!(
            "0x{}",
            alloy_primitives::hex::encode(tx.inner().encoded_2718())
        )
    }

    fn envelope(seq: u64, kind: OrderKind, payload: Vec<u8>, header: String) -> Envelope {
        Envelope {
            body: EnvelopeBody {
                origin: 0,
                seq,
                received_at_ms: seq,
                kind: kind as u8,
                payload: payload.into(),
                auth: header.into_bytes().into(),
                call: 0,
            },
            signature: Default::default(),
        }
    }

    /// A call signed as the Flashbots clients sign it.
    fn signed(
        seq: u64,
        kind: OrderKind,
        signer: &PrivateKeySigner,
        method: &str,
        params: Value,
    ) -> Envelope {
        let body = serde_json::to_vec(
            &json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": [params]}),
        )
        .expect("json");
        let digest = format!("{:#x}", keccak256(&body));
        let signature = signer.sign_message_sync(digest.as_bytes()).expect("signs");
        envelope(seq, kind, body, format!("{}:{signature}", signer.address()))
    }

    fn bundle(
        seq: u64,
        signer: &PrivateKeySigner,
        txs: &[&Recovered<TxEnvelope>],
        extra: Value,
    ) -> Envelope {
        let mut params =
            json!({"txs": txs.iter().map(|t| raw(t)).collect::<Vec<_>>(), "blockNumber": "0x5"});
        if let (Some(params), Some(extra)) = (params.as_object_mut(), extra.as_object()) {
            params.extend(extra.clone());
        }
        signed(seq, OrderKind::SendBundle, signer, "eth_sendBundle", params)
    }

    #[test]
    fn test_who_earns_is_read_from_the_orders_as_their_senders_sent_them() {
        let (public, plain, named, kept, delayed) =
            (tx(0, 1), tx(1, 2), tx(2, 3), tx(3, 4), tx(4, 5));
        let (a, b, r, d, q) = (auth(0xa), auth(0xb), auth(0xc), auth(0xd), auth(0xe));
        let delegate = Address::repeat_byte(0xdd);
        let identity = Address::repeat_byte(0x1d);
        let envelopes = vec![
            envelope(
                1,
                OrderKind::RawTransaction,
                public.inner().encoded_2718(),
                String::new(),
            ),
            bundle(2, &a, &[&plain], json!({})),
            bundle(3, &b, &[&named], json!({"refundIdentity": identity})),
            bundle(4, &r, &[&kept], json!({"refundPercent": 50})),
            bundle(
                5,
                &d,
                &[&delayed],
                json!({"refundPercent": 50, "delayedRefund": true}),
            ),
            // Made only of a transaction also sent raw: public orderflow repackaged.
            bundle(6, &q, &[&public], json!({})),
            {
                let body = serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 1,
                    "method": "flashbots_setFeeRefundRecipient", "params": [a.address(), delegate]}))
                .expect("json");
                let digest = format!("{:#x}", keccak256(&body));
                let signature = a.sign_message_sync(digest.as_bytes()).expect("signs");
                envelope(
                    7,
                    OrderKind::SetFeeRefundRecipient,
                    body,
                    format!("{}:{signature}", a.address()),
                )
            },
        ];
        let covered = decode(&envelopes);
        let earns: Vec<(u64, Option<Address>, u8)> = covered
            .orders
            .iter()
            .map(|o| {
                (
                    o.key.envelope.expect("an envelope").1,
                    o.identity,
                    o.in_block_refund,
                )
            })
            .collect();
        assert_eq!(
            earns,
            vec![
                (1, None, 0),
                (2, Some(a.address()), 0),
                (3, Some(identity), 0),
                (4, None, 50),
                (5, Some(d.address()), 0),
                (6, None, 0),
            ]
        );
        assert_eq!(covered.delegations, vec![(a.address(), delegate)]);

        // The block: the plain bundle, a transaction nobody sent as an order, the kept-refund
        // bundle and the coinbase's own payment. The named bundle targeted it and did not land.
        let coinbase = dev_signers()[9].address();
        let stranger = tx(5, 6);
        let payment = sign(
            &dev_signers()[9],
            transfer(0, Address::repeat_byte(9), 1, 0),
        );
        let txs = [&plain, &stranger, &kept, &payment];
        let block = StoredBlock {
            hash: B256::ZERO,
            block: Block {
                header: Header {
                    number: 5,
                    beneficiary: coinbase,
                    ..Default::default()
                },
                body: BlockBody {
                    transactions: txs.iter().map(|t| t.inner().clone()).collect(),
                    ommers: Vec::new(),
                    withdrawals: None,
                },
            },
            senders: txs.iter().map(|t| t.signer()).collect(),
        };
        let (landed, candidates) = attribute(&block, &covered.orders);
        let keys: Vec<(OrderKey, Option<Address>)> =
            landed.iter().map(|l| (l.key, l.identity)).collect();
        let bundle_hash = |t: &Recovered<TxEnvelope>| keccak256(t.tx_hash());
        assert_eq!(
            keys,
            vec![
                (key(&envelopes[1], bundle_hash(&plain)), Some(a.address())),
                (
                    OrderKey {
                        hash: *stranger.tx_hash(),
                        envelope: None
                    },
                    None
                ),
                (key(&envelopes[3], bundle_hash(&kept)), None),
            ],
            "the coinbase's payment is not an order"
        );
        assert_eq!(landed[2].in_block_refund, 50);
        let candidates: Vec<u64> = candidates
            .iter()
            .filter_map(|c| c.key.envelope.map(|e| e.1))
            .collect();
        assert_eq!(
            candidates,
            vec![3, 5],
            "the earning orders that targeted block 5 and missed it"
        );
    }
}
