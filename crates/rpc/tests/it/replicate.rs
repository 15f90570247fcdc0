//! Replication of accepted orders: what the hook receives, and how another member applies it.

use std::sync::Arc;

use alloy_primitives::Address;
use cobuild_primitives::OrderKind;
use cobuild_rpc::{
    AcceptedOrder, Durable, Intake, IntakeError, OrderflowLimits, Replicate, ReplicateError,
};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::{Node, auth, error_code, hash_of, raw_tx, raw_tx_with_fee};

/// Records what it is handed; fails every call when `fail` is set.
#[derive(Debug, Default)]
struct Recorder {
    orders: Mutex<Vec<AcceptedOrder>>,
    fail: bool,
}

impl Replicate for Recorder {
    fn accepted(&self, order: AcceptedOrder) -> cobuild_rpc::ReplicateFuture<'_> {
        Box::pin(async move {
            if self.fail {
                return Err(ReplicateError("disk full".into()));
            }
            self.orders.lock().push(order);
            let durable: Durable = Box::pin(async { Ok(()) });
            Ok(durable)
        })
    }
}

/// Queues what it is handed at once (telling `queued`), and makes each order durable only
/// once `durable` counts past its place: the test decides when writes end. An order whose
/// place is in `failing` fails its write.
#[derive(Debug)]
struct Gate {
    queued: Mutex<std::sync::mpsc::Sender<AcceptedOrder>>,
    durable: watch::Sender<usize>,
    places: std::sync::atomic::AtomicUsize,
    failing: Vec<usize>,
}

impl Gate {
    fn new(failing: Vec<usize>) -> (Arc<Self>, std::sync::mpsc::Receiver<AcceptedOrder>) {
        let (tx, rx) = std::sync::mpsc::channel();
        let gate = Self {
            queued: Mutex::new(tx),
            durable: watch::channel(0).0,
            places: Default::default(),
            failing,
        };
        (Arc::new(gate), rx)
    }

    /// Makes every order queued so far, and up to `n` in all, durable.
    fn open(&self, n: usize) {
        self.durable.send_replace(n);
    }
}

impl Replicate for Gate {
    fn accepted(&self, order: AcceptedOrder) -> cobuild_rpc::ReplicateFuture<'_> {
        let place = self
            .places
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _ = self.queued.lock().send(order);
        let mut durable = self.durable.subscribe();
        let fails = self.failing.contains(&place);
        Box::pin(async move {
            let write: Durable = Box::pin(async move {
                let _ = durable.wait_for(|n| *n > place).await;
                if fails {
                    return Err(ReplicateError("disk full".into()));
                }
                Ok(())
            });
            Ok(write)
        })
    }
}

/// A JSON-RPC batch body of `calls` (method, params), numbered from 0.
fn batch(calls: &[(&str, Value)]) -> String {
    Value::Array(
        calls
            .iter()
            .enumerate()
            .map(|(id, (method, params))| {
                json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
            })
            .collect(),
    )
    .to_string()
}

/// The next order the gate queued, or a panic naming what was awaited.
fn next_queued(queued: &std::sync::mpsc::Receiver<AcceptedOrder>, what: &str) -> AcceptedOrder {
    queued
        .recv_timeout(std::time::Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("not queued: {what}"))
}

/// Applies `order` on `node` as a member that received it does.
fn apply(node: &Node, order: &AcceptedOrder) -> Result<(), IntakeError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let intake = Intake::new(node.chain.clone(), node.txs.clone(), node.bundles.clone());
    runtime.block_on(intake.apply(order.kind as u8, &order.payload, &order.auth, order.call))
}

#[test]
fn test_accepted_orders_reach_the_hook_before_the_answer_and_apply_on_another_member() {
    let recorder = Arc::new(Recorder::default());
    let origin = Node::start_with(OrderflowLimits::default(), Some(recorder.clone()));
    let other = Node::start(OrderflowLimits::default());
    let sender = auth(7);
    let target = Address::repeat_byte(0xaa);

    let bundle = json!([{"txs": [raw_tx(1, 0, target, 21_000, 3)], "blockNumber": "0x1", "replacementUuid": "9b9c0c55-4a47-4a4f-8f0c-6f1b7e2b8c11"}]);
    let reply = origin.call(Some(&sender), "eth_sendBundle", bundle);
    let hash = reply["result"]["bundleHash"].clone();
    assert!(hash.is_string(), "{reply}");
    let raw = raw_tx(2, 0, target, 21_000, 2);
    let reply = origin.call(None, "eth_sendRawTransaction", json!([raw]));
    assert!(reply.get("error").is_none(), "{reply}");

    // By the time the answers came, the hook had both, exactly as sent.
    let orders = recorder.orders.lock().clone();
    assert_eq!(orders.len(), 2);
    assert_eq!(orders[0].kind, OrderKind::SendBundle);
    assert!(String::from_utf8_lossy(&orders[0].payload).contains("eth_sendBundle"));
    assert!(
        String::from_utf8_lossy(&orders[0].auth).starts_with(&format!("{}", sender.address())),
        "the sender's own header travels"
    );
    assert_eq!(orders[1].kind, OrderKind::RawTransaction);
    assert_eq!(orders[1].payload, raw);

    // Another member applies them with its own checks and ends up holding the same orders.
    for order in &orders {
        apply(&other, order).expect("applies");
    }
    assert_eq!(other.bundles.len(), 1);
    assert_eq!(other.txs.len(), 1);

    // A cancellation replicates too, and wins on the other member.
    let cancel = json!([{"replacementUuid": "9b9c0c55-4a47-4a4f-8f0c-6f1b7e2b8c11"}]);
    let reply = origin.call(Some(&sender), "eth_cancelBundle", cancel);
    assert!(reply.get("error").is_none(), "{reply}");
    let cancel = recorder.orders.lock().last().cloned().expect("recorded");
    assert_eq!(cancel.kind, OrderKind::CancelBundle);
    apply(&other, &cancel).expect("applies");
    assert_eq!(other.bundles.len(), 0, "the cancel removed the bundle");

    // On a third member the cancel arrives first: the bundle that follows never enters.
    let third = Node::start(OrderflowLimits::default());
    apply(&third, &cancel).expect("applies");
    let late = apply(&third, &orders[0]).expect_err("a cancelled bundle is refused");
    assert!(
        late.is_refusal() && late.to_string().contains("cancel"),
        "{late}"
    );
    assert_eq!(
        third.bundles.len(),
        0,
        "a cancel wins whatever the arrival order"
    );
}

#[test]
fn test_refused_orders_are_not_replicated_and_a_failing_log_fails_the_call() {
    let recorder = Arc::new(Recorder::default());
    let origin = Node::start_with(OrderflowLimits::default(), Some(recorder.clone()));
    let unsigned = origin.call(
        None,
        "eth_sendBundle",
        json!([{"txs": [], "blockNumber": "0x1"}]),
    );
    assert_eq!(error_code(&unsigned), -32600, "{unsigned}");
    let bad = origin.call(None, "eth_sendRawTransaction", json!(["0x02"]));
    assert!(bad.get("error").is_some(), "{bad}");
    assert!(recorder.orders.lock().is_empty(), "refused orders went out");

    let failing = Arc::new(Recorder {
        fail: true,
        ..Recorder::default()
    });
    let origin = Node::start_with(OrderflowLimits::default(), Some(failing));
    let reply = origin.call(
        None,
        "eth_sendRawTransaction",
        json!([raw_tx(1, 0, Address::repeat_byte(1), 21_000, 2)]),
    );
    assert_eq!(
        error_code(&reply),
        -32603,
        "not durable, not acknowledged: {reply}"
    );
    // ... and not taken either: nothing reaches the pools, the builder or other senders.
    let bundle =
        json!([{"txs": [raw_tx(2, 0, Address::repeat_byte(1), 21_000, 3)], "blockNumber": "0x1"}]);
    let reply = origin.call(Some(&auth(7)), "eth_sendBundle", bundle);
    assert_eq!(error_code(&reply), -32603, "{reply}");
    let private = json!([{"tx": raw_tx(3, 0, Address::repeat_byte(1), 21_000, 3)}]);
    let reply = origin.call(Some(&auth(7)), "eth_sendPrivateTransaction", private);
    assert_eq!(error_code(&reply), -32603, "{reply}");
    assert_eq!(
        origin.txs.len(),
        0,
        "a refused transaction stayed in the pool"
    );
    assert_eq!(origin.txs.best(0).count(), 0);
    assert_eq!(
        origin.bundles.len(),
        0,
        "a refused bundle stayed in the pool"
    );
    assert!(origin.bundles.for_block(1, u64::MAX).is_empty());
    let nonce = origin.call(
        None,
        "eth_getTransactionCount",
        json!([cobuild_chain::dev_signers()[1].address(), "pending"]),
    );
    assert_eq!(nonce["result"], "0x0", "{nonce}");
}

#[test]
fn test_a_member_cannot_forge_or_reattribute_a_replicated_order() {
    let recorder = Arc::new(Recorder::default());
    let origin = Node::start_with(OrderflowLimits::default(), Some(recorder.clone()));
    let other = Node::start(OrderflowLimits::default());
    let bundle =
        json!([{"txs": [raw_tx(1, 0, Address::repeat_byte(2), 21_000, 3)], "blockNumber": "0x1"}]);
    let reply = origin.call(Some(&auth(7)), "eth_sendBundle", bundle);
    assert!(reply.get("error").is_none(), "{reply}");
    let genuine = recorder.orders.lock()[0].clone();

    // The body changed under the sender's header: refused.
    let mut altered = genuine.clone();
    altered.payload = String::from_utf8_lossy(&genuine.payload)
        .replace("0x1", "0x2")
        .into_bytes()
        .into();
    assert!(apply(&other, &altered).is_err());
    // Someone else's header on the sender's body: refused.
    let mut reattributed = genuine.clone();
    reattributed.auth = format!("{}:0x{}", auth(8).address(), "11".repeat(65))
        .into_bytes()
        .into();
    assert!(apply(&other, &reattributed).is_err());
    assert_eq!(other.bundles.len(), 0);
    apply(&other, &genuine).expect("the genuine order applies");
    assert_eq!(other.bundles.len(), 1);
}

#[test]
fn test_every_acknowledged_call_of_a_batch_replicates_on_its_own() {
    let recorder = Arc::new(Recorder::default());
    let origin = Node::start_with(OrderflowLimits::default(), Some(recorder.clone()));
    let sender = auth(7);
    let to = Address::repeat_byte(0xaa);
    let uuid = "0d5e8c3a-1f0e-4c55-9c6a-2d0b1a7e9f31";
    let kept = json!({"txs": [raw_tx(1, 0, to, 21_000, 3)], "blockNumber": "0x5"});
    let cancelled = json!({"txs": [raw_tx(2, 0, to, 21_000, 3)], "blockNumber": "0x5", "replacementUuid": uuid});
    let batch = json!([
        // Refused: a bundle with no transactions and no uuid.
        {"jsonrpc": "2.0", "id": 1, "method": "eth_sendBundle", "params": [{"txs": [], "blockNumber": "0x5"}]},
        {"jsonrpc": "2.0", "id": 2, "method": "eth_sendBundle", "params": [kept]},
        // Not an order.
        {"jsonrpc": "2.0", "id": 3, "method": "eth_blockNumber", "params": []},
        {"jsonrpc": "2.0", "id": 4, "method": "eth_sendBundle", "params": [cancelled]},
        {"jsonrpc": "2.0", "id": 5, "method": "eth_cancelBundle", "params": [{"replacementUuid": uuid}]},
        {"jsonrpc": "2.0", "id": 6, "method": "eth_sendPrivateTransaction", "params": [{"tx": raw_tx(3, 0, to, 21_000, 3)}]},
        // A duplicate of an acknowledged call.
        {"jsonrpc": "2.0", "id": 7, "method": "eth_sendBundle", "params": [kept]},
    ])
    .to_string();
    let replies = origin.post(Some(&sender), &batch);
    let replies = replies.as_array().expect("a batch reply");
    let failed: Vec<u64> = replies
        .iter()
        .filter(|r| r.get("error").is_some())
        .filter_map(|r| r["id"].as_u64())
        .collect();
    assert_eq!(
        failed,
        vec![1],
        "only the empty bundle is refused: {replies:?}"
    );

    // One order per acknowledged call, naming its place in the body; none for the refused one.
    let orders = recorder.orders.lock().clone();
    let places: Vec<(OrderKind, u32)> = orders.iter().map(|o| (o.kind, o.call)).collect();
    assert_eq!(
        places,
        vec![
            (OrderKind::SendBundle, 1),
            (OrderKind::SendBundle, 3),
            (OrderKind::CancelBundle, 4),
            (OrderKind::SendPrivateTransaction, 5),
            (OrderKind::SendBundle, 6),
        ]
    );
    assert!(
        orders
            .iter()
            .all(|o| o.payload.as_ref() == batch.as_bytes())
    );

    // Another member applying them in order ends up holding exactly what the origin holds.
    let other = Node::start(OrderflowLimits::default());
    for order in &orders {
        apply(&other, order).expect("each acknowledged call applies");
    }
    assert_eq!(other.bundles.len(), origin.bundles.len());
    assert_eq!(
        other.bundles.len(),
        1,
        "the kept bundle, once; the cancelled one gone"
    );
    assert_eq!(other.txs.len(), 1, "the private transaction");
    assert_eq!(origin.txs.len(), 1);

    // An order naming a call that is not an order of its kind is refused as such.
    let mut wrong = orders[0].clone();
    wrong.call = 2;
    assert!(matches!(
        apply(&other, &wrong),
        Err(IntakeError::WrongMethod { .. })
    ));
    wrong.call = 0;
    let refused = apply(&Node::start(OrderflowLimits::default()), &wrong)
        .expect_err("the refused call is no order");
    assert!(matches!(refused, IntakeError::Invalid(_)), "{refused}");
}

#[test]
fn test_the_same_bundle_for_several_blocks_replicates_each_target() {
    let recorder = Arc::new(Recorder::default());
    let origin = Node::start_with(OrderflowLimits::default(), Some(recorder.clone()));
    let sender = auth(7);
    let tx = raw_tx(1, 0, Address::repeat_byte(0xaa), 21_000, 3);
    let mut hashes = Vec::new();
    for block in 5..8u64 {
        let reply = origin.call(
            Some(&sender),
            "eth_sendBundle",
            json!([{"txs": [tx.clone()], "blockNumber": format!("{block:#x}")}]),
        );
        hashes.push(reply["result"]["bundleHash"].clone());
    }
    assert!(
        hashes.iter().all(|h| *h == hashes[0] && h.is_string()),
        "{hashes:?}"
    );
    let hash: alloy_primitives::B256 = serde_json::from_value(hashes[0].clone()).expect("hash");
    assert_eq!(origin.bundles.count_hash(&hash), 3, "every target is kept");
    let other = Node::start(OrderflowLimits::default());
    for order in recorder.orders.lock().iter() {
        apply(&other, order).expect("applies");
    }
    assert_eq!(
        other.bundles.count_hash(&hash),
        3,
        "and reaches the other member"
    );
    for block in 5..8 {
        assert_eq!(
            other.bundles.for_block(block, u64::MAX).len(),
            1,
            "block {block}"
        );
    }
}

#[test]
fn test_a_batch_longer_than_the_limit_is_refused_whole() {
    let recorder = Arc::new(Recorder::default());
    let origin = Node::start_with(OrderflowLimits::default(), Some(recorder.clone()));
    let cancel = |i: u32| json!({"jsonrpc": "2.0", "id": i, "method": "eth_cancelBundle", "params": [{"replacementUuid": format!("u{i}")}]});
    let batch = Value::Array((0..1_001).map(cancel).collect()).to_string();
    let reply = origin.post(Some(&auth(7)), &batch);
    assert!(reply.get("error").is_some(), "{reply}");
    assert!(
        recorder.orders.lock().is_empty(),
        "nothing of it was replicated"
    );
    let batch = Value::Array((0..10).map(cancel).collect()).to_string();
    let replies = origin.post(Some(&auth(7)), &batch);
    assert_eq!(replies.as_array().map(Vec::len), Some(10), "{replies}");
    assert_eq!(recorder.orders.lock().len(), 10);
}

#[test]
fn test_a_refund_delegation_is_an_order_only_its_signer_makes() {
    let recorder = Arc::new(Recorder::default());
    let origin = Node::start_with(OrderflowLimits::default(), Some(recorder.clone()));
    let other = Node::start(OrderflowLimits::default());
    let (signer, stranger) = (auth(7), auth(8));
    let to = Address::repeat_byte(0x77);

    let reply = origin.call(
        Some(&signer),
        "flashbots_setFeeRefundRecipient",
        json!([signer.address(), to]),
    );
    assert_eq!(
        reply["result"],
        json!({"from": signer.address(), "to": to}),
        "{reply}"
    );
    // Durable and replicated before the answer, as the signer sent it; another member checks
    // the signature and the delegation the same way.
    let orders = recorder.orders.lock().clone();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].kind, OrderKind::SetFeeRefundRecipient);
    apply(&other, &orders[0]).expect("another member takes it");

    // Nobody delegates another's refunds, and an unsigned call is refused: neither replicates.
    let theirs = origin.call(
        Some(&stranger),
        "flashbots_setFeeRefundRecipient",
        json!([signer.address(), stranger.address()]),
    );
    assert_eq!(error_code(&theirs), -32602, "{theirs}");
    let unsigned = origin.call(
        None,
        "flashbots_setFeeRefundRecipient",
        json!([signer.address(), to]),
    );
    assert_eq!(error_code(&unsigned), -32600, "{unsigned}");
    let malformed = origin.call(
        Some(&signer),
        "flashbots_setFeeRefundRecipient",
        json!([to]),
    );
    assert_eq!(error_code(&malformed), -32602, "{malformed}");
    assert_eq!(recorder.orders.lock().len(), 1, "refused calls went out");

    // A forged replicated delegation (signed by the stranger, naming the signer) is refused.
    let mut forged = orders[0].clone();
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"flashbots_setFeeRefundRecipient","params":["{}","{}"]}}"#,
        signer.address(),
        stranger.address()
    );
    forged.payload = body.clone().into_bytes().into();
    forged.auth = cobuild_test_utils::flashbots_header(&stranger, body.as_bytes())
        .into_bytes()
        .into();
    let refused = apply(&other, &forged).expect_err("not the signer's");
    assert!(matches!(refused, IntakeError::Invalid(_)), "{refused}");
}

#[test]
fn test_a_batch_queues_every_order_before_the_first_is_durable_and_answers_in_order() {
    let (gate, queued) = Gate::new(vec![3]);
    let node = Node::start_with(OrderflowLimits::default(), Some(gate.clone()));
    let target = Address::repeat_byte(0xbb);
    let raws: Vec<_> = (0..5).map(|n| raw_tx(1, n, target, 21_000, 2)).collect();
    let body = batch(
        &raws
            .iter()
            .map(|raw| ("eth_sendRawTransaction", json!([raw])))
            .collect::<Vec<_>>(),
    );
    std::thread::scope(|s| {
        let reply = s.spawn(|| node.post(None, &body));
        // All five are queued, in body order, while none is durable: the writes overlap (one
        // by one, the second would wait for the first's).
        for (n, raw) in raws.iter().enumerate() {
            let order = next_queued(&queued, &format!("call {n}"));
            assert_eq!(&order.payload, raw, "call {n} in its place");
        }
        assert!(
            raws.iter()
                .all(|raw| node.txs.visible(&hash_of(raw), None).is_none()),
            "nothing is offered before it is durable"
        );
        gate.open(5);
        let reply = reply.join().expect("the batch answers");
        let answers = reply.as_array().expect("a batch answer");
        assert_eq!(answers.len(), 5, "{reply}");
        for (n, (answer, raw)) in answers.iter().zip(&raws).enumerate() {
            assert_eq!(answer["id"], n, "answers in body order: {reply}");
            if n == 3 {
                assert_eq!(error_code(answer), -32603, "its write failed: {answer}");
                assert!(node.txs.visible(&hash_of(raw), None).is_none());
            } else {
                assert_eq!(answer["result"], json!(hash_of(raw)), "{answer}");
                assert!(node.txs.visible(&hash_of(raw), None).is_some(), "call {n}");
            }
        }
    });
}

#[test]
fn test_a_batch_reads_replaces_and_cancels_as_if_its_calls_ran_one_by_one() {
    let (gate, queued) = Gate::new(Vec::new());
    let node = Node::start_with(OrderflowLimits::default(), Some(gate.clone()));
    let sender = auth(9);
    let target = Address::repeat_byte(0xcc);
    let first = raw_tx(2, 0, target, 21_000, 2);
    // Both fees bumped: a replacement that replaces.
    let replacement = raw_tx_with_fee(2, 0, target, 21_000, 60, 4);
    let uuid = "0d6c4b1e-5b43-4b7b-9e0c-3a5f5d1f2b7a";
    let bundle = json!([{"txs": [raw_tx(3, 0, target, 21_000, 3)], "blockNumber": "0x1", "replacementUuid": uuid}]);
    let body = batch(&[
        ("eth_sendRawTransaction", json!([first])),
        ("eth_sendRawTransaction", json!([replacement])),
        ("eth_getTransactionByHash", json!([hash_of(&replacement)])),
        ("eth_sendBundle", bundle),
        ("eth_cancelBundle", json!([{"replacementUuid": uuid}])),
    ]);
    std::thread::scope(|s| {
        let reply = s.spawn(|| node.post(Some(&sender), &body));
        assert_eq!(next_queued(&queued, "the first transaction").payload, first);
        // The replacement finds the first reserved, not yet in the pool: it runs again once
        // the first is.
        gate.open(1);
        assert_eq!(next_queued(&queued, "the replacement").payload, replacement);
        // The read waits for the replacement to be in the pool.
        gate.open(2);
        assert_eq!(
            next_queued(&queued, "the bundle").kind,
            OrderKind::SendBundle
        );
        assert_eq!(
            next_queued(&queued, "the cancel").kind,
            OrderKind::CancelBundle
        );
        gate.open(4);
        let reply = reply.join().expect("the batch answers");
        let answers = reply.as_array().expect("a batch answer");
        assert_eq!(answers.len(), 5, "{reply}");
        assert_eq!(answers[0]["result"], json!(hash_of(&first)), "{reply}");
        assert_eq!(
            answers[1]["result"],
            json!(hash_of(&replacement)),
            "the replacement replaces it: {reply}"
        );
        assert_eq!(
            answers[2]["result"]["hash"],
            json!(hash_of(&replacement)),
            "the read sees the order sent before it: {reply}"
        );
        assert!(answers[3]["result"]["bundleHash"].is_string(), "{reply}");
        assert!(answers[4].get("error").is_none(), "{reply}");
    });
    assert!(node.txs.visible(&hash_of(&first), None).is_none());
    assert!(node.txs.visible(&hash_of(&replacement), None).is_some());
    assert_eq!(node.bundles.len(), 0, "the cancel came after the bundle");
}
