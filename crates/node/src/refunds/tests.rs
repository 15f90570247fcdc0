//! Refunds end to end inside one member: orders as senders sent them, in a log the records
//! cover, a block built from them on a devnet chain, the slot's refunds from the ledger's
//! records, and the payouts that settle them.

use std::collections::BTreeMap;

use alloy_consensus::{Block, BlockBody, Header, TxEnvelope, transaction::Recovered};
use alloy_eips::{Decodable2718 as _, Encodable2718 as _};
use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_signer::SignerSync as _;
use alloy_signer_local::PrivateKeySigner;
use cobuild_chain::{
    Chain, StoredBlock, dev_signers,
    test_utils::{balance, devnet_chain, next_attrs, sign, transfer},
};
use cobuild_consensus::{Entry, Prefix, SlotRecord, Store, to_b256};
use cobuild_net::{Envelope, EnvelopeBody, Log};
use cobuild_primitives::{AcceptedOrder, OrderKind};
use cobuild_refunds::Book;
use commonware_cryptography::Signer as _;
use serde_json::{Value, json};

use super::{
    Window,
    orders::{OrderKey, attribute, decode, key},
    payout::{PayoutConfig, sign_payouts},
    payouts, slot_refunds,
};

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

/// A JSON-RPC body with one call, and its `X-Flashbots-Signature` as the clients make it.
fn signed_body(signer: &PrivateKeySigner, method: &str, params: Value) -> (Vec<u8>, String) {
    let body =
        serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
            .expect("json");
    let digest = format!("{:#x}", keccak256(&body));
    let signature = signer.sign_message_sync(digest.as_bytes()).expect("signs");
    (body, format!("{}:{signature}", signer.address()))
}

fn bundle_order(
    signer: &PrivateKeySigner,
    txs: &[&Recovered<TxEnvelope>],
    extra: Value,
) -> AcceptedOrder {
    let mut params =
        json!({"txs": txs.iter().map(|t| raw(t)).collect::<Vec<_>>(), "blockNumber": "0x1"});
    if let (Some(params), Some(extra)) = (params.as_object_mut(), extra.as_object()) {
        params.extend(extra.clone());
    }
    let (body, header) = signed_body(signer, "eth_sendBundle", json!([params]));
    AcceptedOrder {
        kind: OrderKind::SendBundle,
        payload: body.into(),
        auth: header.into_bytes().into(),
        call: 0,
    }
}

fn delegation_order(signer: &PrivateKeySigner, to: Address) -> AcceptedOrder {
    let (body, header) = signed_body(
        signer,
        "flashbots_setFeeRefundRecipient",
        json!([signer.address(), to]),
    );
    AcceptedOrder {
        kind: OrderKind::SetFeeRefundRecipient,
        payload: body.into(),
        auth: header.into_bytes().into(),
        call: 0,
    }
}

fn envelope(seq: u64, order: AcceptedOrder) -> Envelope {
    Envelope {
        body: EnvelopeBody {
            origin: 0,
            seq,
            received_at_ms: seq,
            kind: order.kind as u8,
            payload: order.payload,
            auth: order.auth,
            call: 0,
        },
        signature: Default::default(),
    }
}

#[test]
fn test_who_earns_is_read_from_the_orders_as_their_senders_sent_them() {
    let (public, plain, named, kept, delayed) = (tx(0, 1), tx(1, 2), tx(2, 3), tx(3, 4), tx(4, 5));
    let (a, b, r, d, q) = (auth(0xa), auth(0xb), auth(0xc), auth(0xd), auth(0xe));
    let delegate = Address::repeat_byte(0xdd);
    let identity = Address::repeat_byte(0x1d);
    let envelopes = vec![
        envelope(
            1,
            AcceptedOrder::raw_transaction(public.inner().encoded_2718().into()),
        ),
        envelope(2, bundle_order(&a, &[&plain], json!({}))),
        envelope(
            3,
            bundle_order(&b, &[&named], json!({"refundIdentity": identity})),
        ),
        envelope(4, bundle_order(&r, &[&kept], json!({"refundPercent": 50}))),
        envelope(
            5,
            bundle_order(
                &d,
                &[&delayed],
                json!({"refundPercent": 50, "delayedRefund": true}),
            ),
        ),
        // Made only of a transaction also sent raw: public orderflow repackaged.
        envelope(6, bundle_order(&q, &[&public], json!({}))),
        envelope(7, delegation_order(&a, delegate)),
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
                number: 1,
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
        "the earning orders that targeted block 1 and missed it"
    );
}

/// The unit of every payment: 0.001 ether, far above the gas the transfers cost.
const U: u128 = 1_000_000_000_000_000;

fn u(n: u128) -> U256 {
    U256::from(n * U)
}

/// A transfer of `units` to `to` with no priority fee: to the coinbase, it pays exactly its
/// value.
fn pay(signer: &PrivateKeySigner, nonce: u64, to: Address, units: u128) -> Recovered<TxEnvelope> {
    sign(signer, transfer(nonce, to, units * U, 0))
}

/// The record of `slot`, whose block is `block` on `chain`, covering the log up to `seq`.
fn record(chain: &Chain, slot: u64, seq: u64, prev: B256) -> Entry {
    let view = chain.read().expect("view");
    let block = view.block(slot).expect("read").expect("block");
    let balances = view.beneficiary_balances(slot).expect("read");
    let mut facts = crate::ledger::facts(&block, balances);
    // The block's extra data names no member here; member 0 won it.
    facts.winner = cobuild_consensus::Winner(Some(0));
    Entry {
        record: SlotRecord {
            epoch: 0,
            slot,
            facts,
            cuts: Vec::new(),
            agreed: vec![Prefix { origin: 0, seq }],
            prev,
            next: Default::default(),
            refunds: Default::default(),
        },
        finalization: Bytes::new(),
    }
}

#[test]
fn test_a_slot_worked_by_hand_gets_its_refunds_from_the_ledger_and_the_payouts_settle_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = devnet_chain(dir.path());
    let k = dev_signers();
    let builder = &k[9];
    let coinbase = builder.address();
    let ids: Vec<PrivateKeySigner> = (0xa1..=0xa7).map(auth).collect();
    let [a, b, s1, s2, r, x, y] = [0, 1, 2, 3, 4, 5, 6].map(|i| &ids[i]);
    let delegate = Address::repeat_byte(0xdd);

    // The orders as their senders sent them:
    //   A pays 30 from k0, and delegates its refunds to D; Y would have paid 25 from k0's
    //   same nonce (it did not land).
    //   B pays 20.
    //   S1 and S2, one sender as two identities, pay 10 each from k2 and k3; X would have paid
    //   6 + 6 from both their nonces, so it lands only without both.
    //   P, a raw (public) transaction, pays 5 and earns nothing.
    //   R pays 40 and keeps half in the block (refundPercent 50): it earns nothing more.
    let (ta, tb, ts1, ts2) = (
        pay(&k[0], 0, coinbase, 30),
        pay(&k[1], 0, coinbase, 20),
        pay(&k[2], 0, coinbase, 10),
        pay(&k[3], 0, coinbase, 10),
    );
    let (tp, tr) = (pay(&k[4], 0, coinbase, 5), pay(&k[5], 0, coinbase, 40));
    let (ty, tx1, tx2) = (
        pay(&k[0], 0, coinbase, 25),
        pay(&k[2], 0, coinbase, 6),
        pay(&k[3], 0, coinbase, 6),
    );
    let orders = vec![
        delegation_order(a, delegate),
        bundle_order(a, &[&ta], json!({})),
        bundle_order(b, &[&tb], json!({})),
        bundle_order(s1, &[&ts1], json!({})),
        bundle_order(s2, &[&ts2], json!({})),
        AcceptedOrder::raw_transaction(tp.inner().encoded_2718().into()),
        bundle_order(r, &[&tr], json!({"refundPercent": 50})),
        bundle_order(y, &[&ty], json!({})),
        bundle_order(x, &[&tx1, &tx2], json!({})),
    ];
    let log = Log::in_memory(
        0,
        commonware_cryptography::ed25519::PrivateKey::from_seed(0),
    )
    .expect("log");
    for (n, order) in orders.into_iter().enumerate() {
        log.append_own(order, n as u64 + 1).expect("appended");
    }

    // The block as its builder built it: the orders, R's in-block refund of 20, then the
    // proposer payment of 10. Then the next block, and a record for each.
    let mut built = chain
        .builder(next_attrs(&chain, coinbase))
        .expect("builder");
    for txs in [&ta, &tb, &ts1, &ts2, &tp, &tr] {
        built
            .execute_bundle(
                std::slice::from_ref(txs),
                &cobuild_primitives::Allowed::default(),
            )
            .expect("no fatal")
            .expect("lands");
    }
    let proposer = Address::repeat_byte(0xfe);
    for (nonce, to, units) in [(0, r.address(), 20), (1, proposer, 10)] {
        built
            .execute(pay(builder, nonce, to, units))
            .expect("no fatal")
            .expect("lands");
    }
    chain
        .commit(&built.finish().expect("sealed"))
        .expect("commit");
    let next = chain
        .builder(next_attrs(&chain, coinbase))
        .expect("builder");
    chain
        .commit(&next.finish().expect("sealed"))
        .expect("commit");
    let store = Store::in_memory().expect("store");
    let first = record(&chain, 1, 9, B256::ZERO);
    let second = record(&chain, 2, 9, to_b256(&first.record.digest()));
    store.append(&[first.clone(), second]).expect("appended");

    let book = Book::open(&dir.path().join("refunds.redb")).expect("book");
    let delegations = vec![(a.address(), delegate)];
    let mut window = Window::default();
    let refunds = slot_refunds(&chain, &store, &log, &book, &mut window, &delegations, 1)
        .expect("computed")
        .expect("member 0 won the slot");
    // The window keeps the orders of the slots it read (those with a record), and the next
    // slot's refunds come out the same from them as from the log.
    assert_eq!(window.slots(), vec![1, 2]);
    let again = slot_refunds(&chain, &store, &log, &book, &mut window, &delegations, 1)
        .expect("computed")
        .expect("member 0 won the slot");
    assert_eq!(again, refunds);

    // By hand (as in cobuild-refunds' test): v(T) = 30 + 20 + 10 + 10 + 5 + 40/2 = 95.
    // μ: A min(30, 95 − 90) = 5 (Y would take its place), B 20, S1 and S2 10 each, but without
    // both X lands and pays 12: their pair is capped at min(20, 95 − 87) = 8, 4 each. The builder
    // kept 95 less the payment and its own transactions' gas, more than Σμ = 45.
    let owed: Vec<(Address, Address, U256)> = refunds
        .owed
        .iter()
        .map(|o| (o.identity, o.recipient, o.amount))
        .collect();
    let mut expected = vec![
        (a.address(), delegate, u(5)),
        (b.address(), b.address(), u(20)),
        (s1.address(), s1.address(), u(4)),
        (s2.address(), s2.address(), u(4)),
    ];
    expected.sort();
    assert_eq!(owed, expected);
    assert_eq!(refunds.value, u(95));
    assert_eq!(refunds.payment, u(10));
    assert_eq!(refunds.to_split, u(45));
    assert_eq!(refunds.remainder, u(12));
    assert_eq!(refunds.record, to_b256(&first.record.digest()));
    assert_eq!(
        refunds.owed[0].orders.len(),
        1,
        "each identity's one bundle"
    );
    book.record(1, &delegations, Some(&refunds), &[])
        .expect("kept");

    // Member 0 pays from its coinbase; a block includes the payouts; the book reads them and
    // every recipient holds exactly its refund more.
    let config = PayoutConfig {
        me: 0,
        coinbase: builder.clone(),
        rpc_url: String::new(),
        every_slots: 1,
    };
    let signed = sign_payouts(&config, &book, &chain, &BTreeMap::new()).expect("signed");
    assert_eq!(signed.len(), 4, "one payout per recipient");
    let recipients: Vec<Address> = expected.iter().map(|(_, to, _)| *to).collect();
    let before: Vec<U256> = recipients.iter().map(|to| balance(&chain, *to)).collect();
    let mut block = chain
        .builder(next_attrs(&chain, Address::repeat_byte(0xc2)))
        .expect("builder");
    for (_, bytes, _) in &signed {
        let envelope = TxEnvelope::decode_2718(&mut bytes.as_slice()).expect("decodes");
        let tx = Recovered::new_unchecked(envelope, coinbase);
        block.execute(tx).expect("no fatal").expect("lands");
    }
    chain
        .commit(&block.finish().expect("sealed"))
        .expect("commit");
    let paid = payouts(&chain, &book, 3).expect("read");
    assert_eq!(paid.len(), 4, "{paid:?}");
    for ((to, was), (_, _, refund)) in recipients.iter().zip(&before).zip(&expected) {
        assert_eq!(balance(&chain, *to) - *was, *refund, "{to}");
    }
    book.record(3, &[], None, &paid).expect("kept");
    assert!(book.paid(1, delegate).expect("read").is_some());
    // Nothing is left to pay.
    let again = sign_payouts(&config, &book, &chain, &BTreeMap::new()).expect("signed");
    assert!(again.is_empty());
}

#[test]
fn test_the_window_forgets_the_slots_before_its_start() {
    let parsed = |seq| {
        let order = AcceptedOrder::raw_transaction(tx(0, 1).inner().encoded_2718().into());
        super::orders::parse(&envelope(seq, order))
    };
    let mut window = Window::default();
    for slot in 1..=5 {
        window
            .slots
            .insert(slot, vec![parsed(slot), parsed(slot + 10)]);
    }
    window.forget_before(3);
    assert_eq!(window.slots(), vec![3, 4, 5]);
    assert_eq!(window.kept(), 6);
    window.forget_before(0);
    assert_eq!(window.slots(), vec![3, 4, 5]);
    window.forget_before(9);
    assert!(window.slots().is_empty());
    assert_eq!(window.kept(), 0);
}
