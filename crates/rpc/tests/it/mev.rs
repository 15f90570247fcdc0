//! `mev_sendBundle` and `mev_simBundle` (MEV-Share v0.1).

use alloy_primitives::{Address, B256, U256, address};
use cobuild_rpc::OrderflowLimits;
use serde_json::{Value, json};

use crate::{GWEI, Node, auth, error_code, hash_of, raw_tx};

/// Calling it with no data reverts (the EIP-4788 beacon roots contract, in the devnet genesis).
const REVERTS: Address = address!("0x000F3df6D732807Ef1319fB7B8bB8522d0Beac02");
const DEAD: Address = Address::repeat_byte(0xde);

fn message(reply: &Value) -> String {
    reply["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error: {reply}"))
        .to_string()
}

#[test]
fn test_real_client_mev_bundle_naming_an_unknown_hash_is_refused_clearly() {
    let node = Node::start(OrderflowLimits::default());
    let (_, header, body) = cobuild_test_utils::flashbots_fixtures()
        .into_iter()
        .find(|(m, _, _)| m == "mev_sendBundle")
        .expect("fixture");
    let (_, reply) = cobuild_test_utils::http_post(
        &node.url,
        body.as_bytes(),
        &[("X-Flashbots-Signature", &header)],
    );
    let reply: Value = serde_json::from_str(&reply).expect("json");
    assert_eq!(error_code(&reply), -32602, "{reply}");
    assert!(
        message(&reply).contains(&format!("unknown transaction {}", B256::repeat_byte(0xaa))),
        "{reply}"
    );
}

#[test]
fn test_mev_bundle_lands_in_the_pool_with_its_range_and_resolved_hashes() {
    let node = Node::start(OrderflowLimits::default());
    let (alice, bob) = (auth(0xa1), auth(0xb0));
    // Alice's private transaction: hers to reference, nobody else's.
    let user = raw_tx(1, 0, DEAD, 21_000, 1);
    let sent = node.call(
        Some(&alice),
        "eth_sendPrivateTransaction",
        json!([{"tx": user}]),
    );
    assert!(sent.get("error").is_none(), "{sent}");
    let backrun = raw_tx(2, 0, DEAD, 21_000, 9);
    let bundle = json!({
        "version": "v0.1",
        "inclusion": {"block": "0x1", "maxBlock": "0x3"},
        "body": [{"hash": hash_of(&user)}, {"tx": backrun, "canRevert": false}],
    });
    let by_bob = node.call(Some(&bob), "mev_sendBundle", json!([bundle.clone()]));
    assert_eq!(error_code(&by_bob), -32602, "{by_bob}");
    assert!(
        message(&by_bob).contains("unknown transaction"),
        "same answer as for no transaction"
    );

    let by_alice = node.call(Some(&alice), "mev_sendBundle", json!([bundle]));
    let hash: B256 = serde_json::from_value(by_alice["result"]["bundleHash"].clone())
        .unwrap_or_else(|_| panic!("{by_alice}"));
    for block in 1..=3 {
        let held = node.bundles.for_block(block, 0);
        assert_eq!(held.len(), 1, "valid for block {block}");
        let txs: Vec<B256> = held[0].bundle.txs.iter().map(|t| *t.tx_hash()).collect();
        assert_eq!(txs, vec![hash_of(&user), hash_of(&backrun)]);
        assert_eq!(held[0].bundle.hash, hash);
    }
    assert!(node.bundles.for_block(4, 0).is_empty());

    // Shared by its owner's hints (or public): anyone may backrun it.
    let shared = raw_tx(3, 0, DEAD, 21_000, 1);
    let sent = node.call(
        Some(&alice),
        "eth_sendPrivateTransaction",
        json!([{"tx": shared, "preferences": {"privacy": {"hints": ["hash"]}}}]),
    );
    assert!(sent.get("error").is_none(), "{sent}");
    let public = raw_tx(4, 0, DEAD, 21_000, 1);
    node.call(None, "eth_sendRawTransaction", json!([public]));
    let by_bob = node.call(
        Some(&bob),
        "mev_sendBundle",
        json!([{
            "version": "v0.1",
            "inclusion": {"block": 1},
            "body": [{"hash": hash_of(&shared)}, {"hash": hash_of(&public)}, {"tx": raw_tx(5, 0, DEAD, 21_000, 9)}],
        }]),
    );
    assert!(by_bob["result"]["bundleHash"].is_string(), "{by_bob}");
}

#[test]
fn test_nested_mev_bundles_flatten_one_level_only() {
    let node = Node::start(OrderflowLimits::default());
    let alice = auth(0xa1);
    let inner = json!({
        "version": "v0.1",
        "inclusion": {"block": 1, "maxBlock": 5},
        "body": [{"tx": raw_tx(1, 0, DEAD, 21_000, 1)}],
    });
    let nested = node.call(
        Some(&alice),
        "mev_sendBundle",
        json!([{
            "version": "v0.1",
            "inclusion": {"block": 2, "maxBlock": 9},
            "body": [{"bundle": inner.clone()}, {"tx": raw_tx(2, 0, DEAD, 21_000, 9), "canRevert": true}],
        }]),
    );
    assert!(nested["result"]["bundleHash"].is_string(), "{nested}");
    let held = node.bundles.for_block(2, 0);
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].bundle.txs.len(), 2, "flattened");
    assert_eq!(held[0].bundle.reverting.len(), 1);
    assert_eq!(
        held[0].bundle.last_block(),
        5,
        "the nested range narrows the outer one"
    );

    let deeper = node.call(
        Some(&alice),
        "mev_sendBundle",
        json!([{
            "version": "v0.1",
            "inclusion": {"block": 2},
            "body": [{"bundle": {"version": "v0.1", "inclusion": {"block": 2}, "body": [{"bundle": inner}]}}],
        }]),
    );
    assert_eq!(error_code(&deeper), -32602, "{deeper}");
    assert!(message(&deeper).contains("one level"), "{deeper}");
    let long = node.call(
        Some(&alice),
        "mev_sendBundle",
        json!([{"version": "v0.1", "inclusion": {"block": 1, "maxBlock": 40}, "body": [{"tx": raw_tx(3, 0, DEAD, 21_000, 1)}]}]),
    );
    assert_eq!(error_code(&long), -32602, "{long}");
}

#[test]
fn test_mev_sim_bundle_answers_in_the_mev_share_shape() {
    let node = Node::start(OrderflowLimits::default());
    let alice = auth(0xa1);
    // mev-share-client simulates on parent block 15: give the chain that many blocks.
    node.seal_empty(15);
    let (_, header, body) = cobuild_test_utils::flashbots_fixtures()
        .into_iter()
        .find(|(m, _, _)| m == "mev_simBundle")
        .expect("fixture");
    let (_, reply) = cobuild_test_utils::http_post(
        &node.url,
        body.as_bytes(),
        &[("X-Flashbots-Signature", &header)],
    );
    let reply: Value = serde_json::from_str(&reply).expect("json");
    let result = &reply["result"];
    assert_eq!(result["success"], true, "{reply}");
    assert_eq!(result["stateBlock"], "0xf", "{reply}");
    assert_eq!(result["gasUsed"], "0x5208", "{reply}");
    // A 1 gwei tip on 21,000 gas, all of it the bundle's own.
    let profit = U256::from(21_000 * GWEI);
    assert_eq!(result["profit"], json!(profit), "{reply}");
    assert_eq!(result["refundableValue"], json!(profit), "{reply}");
    assert_eq!(result["mevGasPrice"], json!(U256::from(GWEI)), "{reply}");
    assert!(result["logs"].is_array(), "{reply}");

    // A revert voids the bundle unless canRevert allows it.
    let reverting = raw_tx(3, 0, REVERTS, 100_000, 2);
    let sim = |can_revert: bool| {
        node.call(
            Some(&alice),
            "mev_simBundle",
            json!([{"version": "v0.1", "inclusion": {"block": 16}, "body": [{"tx": reverting, "canRevert": can_revert}]}]),
        )
    };
    let failed = sim(false);
    assert_eq!(failed["result"]["success"], false, "{failed}");
    assert!(
        failed["result"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("reverted")),
        "{failed}"
    );
    assert_eq!(sim(true)["result"]["success"], true);

    // Value from a referenced pending transaction is profit, but not refundable.
    let user = raw_tx(4, 0, DEAD, 21_000, 1);
    node.call(None, "eth_sendRawTransaction", json!([user]));
    let backrun = raw_tx(5, 0, DEAD, 21_000, 3);
    let sim = node.call(
        Some(&alice),
        "mev_simBundle",
        json!([{"version": "v0.1", "inclusion": {"block": 16}, "body": [{"hash": hash_of(&user)}, {"tx": backrun}]}, {"parentBlock": "latest"}]),
    );
    assert_eq!(sim["result"]["success"], true, "{sim}");
    assert_eq!(
        sim["result"]["profit"],
        json!(U256::from(4 * 21_000 * GWEI)),
        "{sim}"
    );
    assert_eq!(
        sim["result"]["refundableValue"],
        json!(U256::from(3 * 21_000 * GWEI)),
        "{sim}"
    );
    // A parent block that does not exist yet.
    let future = node.call(
        Some(&alice),
        "mev_simBundle",
        json!([{"version": "v0.1", "inclusion": {"block": 16}, "body": [{"tx": backrun}]}, {"parentBlock": "0x63"}]),
    );
    assert_eq!(error_code(&future), -32000, "{future}");
}

#[test]
fn test_every_mev_share_privacy_hint_is_accepted_and_an_unknown_one_is_named() {
    let node = Node::start(OrderflowLimits::default());
    let alice = auth(0xa1);
    let all = json!([
        "calldata",
        "contract_address",
        "logs",
        "function_selector",
        "hash",
        "tx_hash",
        "special_logs",
        "default_logs"
    ]);
    let private = node.call(
        Some(&alice),
        "eth_sendPrivateTransaction",
        json!([{"tx": raw_tx(1, 0, DEAD, 21_000, 1), "preferences": {"fast": true, "privacy": {"hints": all}}}]),
    );
    assert!(private["result"].is_string(), "{private}");
    let bundle = node.call(
        Some(&alice),
        "mev_sendBundle",
        json!([{
            "version": "v0.1",
            "inclusion": {"block": "0x1"},
            "body": [{"tx": raw_tx(2, 0, DEAD, 21_000, 9)}],
            "privacy": {"hints": ["default_logs", "special_logs", "calldata"]},
        }]),
    );
    assert!(bundle["result"]["bundleHash"].is_string(), "{bundle}");

    for (method, params) in [
        (
            "eth_sendPrivateTransaction",
            json!([{"tx": raw_tx(3, 0, DEAD, 21_000, 1), "preferences": {"privacy": {"hints": ["hash", "everything"]}}}]),
        ),
        (
            "mev_sendBundle",
            json!([{
                "version": "v0.1",
                "inclusion": {"block": "0x1"},
                "body": [{"tx": raw_tx(4, 0, DEAD, 21_000, 9)}],
                "privacy": {"hints": ["everything"]},
            }]),
        ),
    ] {
        let reply = node.call(Some(&alice), method, params);
        assert_eq!(error_code(&reply), -32602, "{method}: {reply}");
        assert!(
            message(&reply).contains("everything"),
            "{method}: the error names the hint: {reply}"
        );
    }
    assert_eq!(node.txs.len(), 1, "the refused transaction was not taken");
}
