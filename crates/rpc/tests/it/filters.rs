//! Polled filters: what each reports after blocks and transactions arrive, and how filters
//! end (uninstalled, idle, or one too many).

use std::time::Duration;

use alloy_primitives::{Address, Bytes};
use cobuild_rpc::FilterLimits;
use serde_json::{Value, json};

use super::{
    Node, auth, error_code, hash_of,
    logs::{all_logs, chain_with_logs, topic, tx},
    raw_tx,
};

fn install(node: &Node, method: &str, params: Value) -> Value {
    let reply = node.call(None, method, params);
    assert!(reply["result"].is_string(), "{method}: {reply}");
    reply["result"].clone()
}

fn changes(node: &Node, id: &Value) -> Value {
    let reply = node.call(None, "eth_getFilterChanges", json!([id]));
    assert!(reply.get("error").is_none(), "{reply}");
    reply["result"].clone()
}

/// Dev account 0's next nonce.
fn nonce(node: &Node) -> u64 {
    let address = cobuild_chain::dev_signers()[0].address();
    let reply = node.call(None, "eth_getTransactionCount", json!([address, "latest"]));
    let hex = reply["result"].as_str().expect("a nonce");
    u64::from_str_radix(hex.trim_start_matches("0x"), 16).expect("hex")
}

/// A call of `emitter` logging `(topic(t0), topic(t1))`.
fn emit(nonce: u64, emitter: Address, t0: u64, t1: u64) -> Bytes {
    let mut input = topic(t0).to_vec();
    input.extend_from_slice(topic(t1).as_slice());
    tx(nonce, Some(emitter), input.into())
}

#[test]
fn test_filters_report_what_arrived_since_their_last_poll() {
    let (node, [a, b]) = chain_with_logs(|eth| eth);
    let filter = json!({"address": a, "topics": [topic(0)]});
    let logs = install(&node, "eth_newFilter", json!([filter]));
    let blocks = install(&node, "eth_newBlockFilter", json!([]));
    let pending = install(&node, "eth_newPendingTransactionFilter", json!([]));
    for id in [&logs, &blocks, &pending] {
        assert_eq!(changes(&node, id), json!([]), "nothing new yet");
    }

    // Two blocks with logs the filter matches and logs it does not.
    let n = nonce(&node);
    node.seal(&[emit(n, a, 0, 10), emit(n + 1, b, 0, 10)]);
    node.seal(&[emit(n + 2, a, 1, 10), emit(n + 3, a, 0, 11)]);
    let head = 14;
    let hash = |number: u64| {
        let reply = node.call(
            None,
            "eth_getBlockByNumber",
            json!([format!("{number:#x}"), false]),
        );
        reply["result"]["hash"].clone()
    };
    assert_eq!(changes(&node, &blocks), json!([hash(head - 1), hash(head)]));
    let want: Vec<Value> = all_logs(&node, head - 1, head)
        .into_iter()
        .filter(|log| log["address"] == json!(a) && log["topics"][0] == json!(topic(0)))
        .collect();
    assert_eq!(want.len(), 2, "{want:?}");
    assert_eq!(changes(&node, &logs), json!(want));
    // Reported once: the next poll has nothing until more arrives.
    assert_eq!(changes(&node, &blocks), json!([]));
    assert_eq!(changes(&node, &logs), json!([]));
    // The whole range of the filter (latest to latest by default) is the head's logs.
    let whole = node.call(None, "eth_getFilterLogs", json!([logs]));
    assert_eq!(whole["result"], json!(&want[1..]), "{whole}");
    let not_logs = node.call(None, "eth_getFilterLogs", json!([blocks]));
    assert_eq!(error_code(&not_logs), -32000, "{not_logs}");

    // Public transactions are announced; a private one never is.
    let public = raw_tx(1, 0, Address::repeat_byte(0xde), 21_000, 2);
    let reply = node.call(None, "eth_sendRawTransaction", json!([public]));
    assert!(reply.get("error").is_none(), "{reply}");
    let private = raw_tx(2, 0, Address::repeat_byte(0xde), 21_000, 2);
    let reply = node.call(
        Some(&auth(0xa1)),
        "eth_sendPrivateTransaction",
        json!([{"tx": private}]),
    );
    assert!(reply.get("error").is_none(), "{reply}");
    assert_eq!(changes(&node, &pending), json!([hash_of(&public)]));
    assert_eq!(changes(&node, &pending), json!([]));

    // Uninstalled, a filter is gone.
    let reply = node.call(None, "eth_uninstallFilter", json!([blocks]));
    assert_eq!(reply["result"], json!(true), "{reply}");
    let gone = node.call(None, "eth_getFilterChanges", json!([blocks]));
    assert_eq!(error_code(&gone), -32000, "{gone}");
    assert!(
        gone["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("filter not found"))
    );
    let again = node.call(None, "eth_uninstallFilter", json!([blocks]));
    assert_eq!(again["result"], json!(false), "{again}");
    // An id of the right shape that was never installed: not found, not a parameter error.
    let unknown = node.call(None, "eth_getFilterChanges", json!(["0x1234"]));
    assert!(unknown.get("error").is_some(), "{unknown}");
    assert_eq!(error_code(&unknown), -32000, "{unknown}");
}

#[test]
fn test_filters_are_capped_and_expire_when_not_polled() {
    let limits = FilterLimits {
        max_filters: 2,
        idle: Duration::from_millis(300),
    };
    let (node, _) = chain_with_logs(|eth| eth.with_filter_limits(limits));
    let first = install(&node, "eth_newBlockFilter", json!([]));
    install(&node, "eth_newBlockFilter", json!([]));
    let third = node.call(None, "eth_newBlockFilter", json!([]));
    assert_eq!(error_code(&third), -32005, "{third}");
    assert!(
        third["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("at most 2")),
        "{third}"
    );
    // The expiry is what is tested: waiting past it is the point, not a synchronisation.
    std::thread::sleep(Duration::from_millis(400));
    let expired = node.call(None, "eth_getFilterChanges", json!([first]));
    assert_eq!(error_code(&expired), -32000, "{expired}");
    // Idle filters make room for new ones.
    install(&node, "eth_newBlockFilter", json!([]));
    install(&node, "eth_newBlockFilter", json!([]));
}
