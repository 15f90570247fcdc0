//! `eth_sendPrivateTransaction` and `eth_cancelPrivateTransaction`.

use alloy_primitives::{Address, B256};
use cobuild_rpc::{DEFAULT_PRIVATE_TX_BLOCKS, OrderflowLimits};
use serde_json::{Value, json};

use crate::{Node, auth, error_code, hash_of, raw_tx};

/// The Flashbots key of the real client fixtures (32 bytes of 0x07).
const FIXTURE_KEY: u8 = 7;

#[test]
fn test_real_client_private_transactions_enter_the_pool_with_their_max_block() {
    let node = Node::start(OrderflowLimits::default());
    let owner = auth(FIXTURE_KEY);
    let fixtures: Vec<_> = cobuild_test_utils::flashbots_fixtures()
        .into_iter()
        .filter(|(m, _, _)| m == "eth_sendPrivateTransaction")
        .collect();
    assert!(
        fixtures.len() >= 3,
        "ethers, mev-share-client and web3-flashbots"
    );
    for (_, header, body) in fixtures {
        // Exactly the bytes and header the client sent: maxBlockNumber as 17, "0x14" and 5.
        let (status, reply) = cobuild_test_utils::http_post(
            &node.url,
            body.as_bytes(),
            &[("X-Flashbots-Signature", &header)],
        );
        assert_eq!(status, 200);
        let reply: Value = serde_json::from_str(&reply).expect("json");
        let hash: B256 = serde_json::from_value(reply["result"].clone())
            .unwrap_or_else(|_| panic!("a hash: {reply}"));
        let sent: Value = serde_json::from_str(&body).expect("json");
        let max_block = &sent["params"][0]["maxBlockNumber"];
        let want = max_block
            .as_u64()
            .or_else(|| {
                max_block
                    .as_str()
                    .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
            })
            .expect("fixture names a max block");
        let pooled = node.txs.get(&hash).expect("in the pool");
        let private = pooled.private.expect("marked private");
        assert_eq!(private.max_block, want);
        assert_eq!(private.owner, owner.address());
        // Its owner cancels it, so the next fixture (the same transaction) is new again.
        let cancelled = node.call(
            Some(&owner),
            "eth_cancelPrivateTransaction",
            json!([{"txHash": hash}]),
        );
        assert_eq!(cancelled["result"], true, "{cancelled}");
    }
}

#[test]
fn test_private_tx_is_hidden_and_only_its_owner_cancels_it() {
    let node = Node::start(OrderflowLimits::default());
    let (alice, bob) = (auth(0xa1), auth(0xb0));
    let raw = raw_tx(1, 0, Address::repeat_byte(0xde), 21_000, 2);
    let reply = node.call(
        Some(&alice),
        "eth_sendPrivateTransaction",
        json!([{"tx": raw}]),
    );
    let hash = hash_of(&raw);
    assert_eq!(reply["result"], json!(hash), "{reply}");
    let private = node
        .txs
        .get(&hash)
        .and_then(|p| p.private)
        .expect("private");
    assert_eq!(private.max_block, DEFAULT_PRIVATE_TX_BLOCKS, "head 0 + 25");

    // Nobody else learns of it: not by hash, not through the pending nonce.
    let by_hash = node.call(None, "eth_getTransactionByHash", json!([hash]));
    assert_eq!(by_hash["result"], Value::Null, "{by_hash}");
    let nonce = node.call(
        None,
        "eth_getTransactionCount",
        json!([cobuild_chain::dev_signers()[1].address(), "pending"]),
    );
    assert_eq!(nonce["result"], "0x0", "{nonce}");
    // A public pending transaction is still shown.
    let public = raw_tx(2, 0, Address::repeat_byte(0xde), 21_000, 2);
    node.call(None, "eth_sendRawTransaction", json!([public]));
    let shown = node.call(None, "eth_getTransactionByHash", json!([hash_of(&public)]));
    assert_eq!(shown["result"]["hash"], json!(hash_of(&public)), "{shown}");

    // Only Alice may cancel it.
    let cancel = json!([{"txHash": hash}]);
    let by_bob = node.call(Some(&bob), "eth_cancelPrivateTransaction", cancel.clone());
    assert_eq!(by_bob["result"], false, "{by_bob}");
    assert!(node.txs.get(&hash).is_some());
    let by_alice = node.call(Some(&alice), "eth_cancelPrivateTransaction", cancel.clone());
    assert_eq!(by_alice["result"], true, "{by_alice}");
    assert!(node.txs.get(&hash).is_none());
    let again = node.call(Some(&alice), "eth_cancelPrivateTransaction", cancel);
    assert_eq!(again["result"], false, "{again}");
}

#[test]
fn test_private_tx_errors_are_clear() {
    let node = Node::start(OrderflowLimits::default());
    let alice = auth(0xa1);
    let raw = raw_tx(1, 0, Address::repeat_byte(0xde), 21_000, 2);
    // Unsigned: refused before anything else.
    let unsigned = node.call(None, "eth_sendPrivateTransaction", json!([{"tx": raw}]));
    assert_eq!(error_code(&unsigned), -32600, "{unsigned}");
    let unsigned = node.call(
        None,
        "eth_cancelPrivateTransaction",
        json!([{"txHash": B256::ZERO}]),
    );
    assert_eq!(error_code(&unsigned), -32600, "{unsigned}");
    // A max block already sealed.
    node.seal_empty(2);
    let late = node.call(
        Some(&alice),
        "eth_sendPrivateTransaction",
        json!([{"tx": raw, "maxBlockNumber": 2}]),
    );
    assert_eq!(error_code(&late), -32602, "{late}");
    assert!(
        late["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("maxBlockNumber 2")),
        "{late}"
    );
    // The eth_sendRawTransaction rules and messages.
    let bad = node.call(
        Some(&alice),
        "eth_sendPrivateTransaction",
        json!([{"tx": "0x02f8"}]),
    );
    assert_eq!(error_code(&bad), -32602, "{bad}");
    let poor = raw_tx(1, 0, Address::repeat_byte(0xde), 20_000, 2);
    let refused = node.call(
        Some(&alice),
        "eth_sendPrivateTransaction",
        json!([{"tx": poor}]),
    );
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("intrinsic gas too low")),
        "{refused}"
    );
    // Expiry: kept through its max block, dropped once that block is sealed.
    let ok = node.call(
        Some(&alice),
        "eth_sendPrivateTransaction",
        json!([{"tx": raw, "maxBlockNumber": "0x4"}]),
    );
    assert_eq!(ok["result"], json!(hash_of(&raw)), "{ok}");
    node.seal_empty(1);
    assert!(
        node.txs.get(&hash_of(&raw)).is_some(),
        "block 4 is still ahead"
    );
    node.seal_empty(1);
    assert!(
        node.txs.get(&hash_of(&raw)).is_none(),
        "gone once block 4 is sealed"
    );
}
