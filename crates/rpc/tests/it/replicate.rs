//! Replication of accepted orders: what the hook receives, and how another member applies it.

use std::sync::Arc;

use alloy_primitives::Address;
use cobuild_primitives::OrderKind;
use cobuild_rpc::{AcceptedOrder, Bundles, Eth, OrderflowLimits, Replicate, ReplicateError};
use parking_lot::Mutex;
use serde_json::json;

use super::{Node, auth, error_code, raw_tx};

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
            Ok(())
        })
    }
}

fn apply(node: &Node, order: &AcceptedOrder) -> Result<(), cobuild_rpc::RpcError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let bundles = Bundles::new(
        node.chain.clone(),
        node.txs.clone(),
        node.bundles.clone(),
        OrderflowLimits::default(),
    );
    let eth = Eth::new(node.chain.clone(), node.txs.clone());
    runtime.block_on(async {
        match order.kind {
            OrderKind::RawTransaction => eth.apply_replicated(&order.payload).map(|_| ()),
            kind => {
                bundles
                    .apply_replicated(kind, &order.payload, &order.auth)
                    .await
            }
        }
    })
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
    assert!(late.to_string().contains("cancel"), "{late}");
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
