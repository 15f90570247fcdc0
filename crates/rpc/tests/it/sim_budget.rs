//! Simulation costs its sender: `eth_callBundle` and `mev_simBundle` refuse bundles that do not
//! fit a block, and charge each call's gas to the sender's budget.

use alloy_primitives::Address;
use cobuild_rpc::OrderflowLimits;
use serde_json::json;

use super::{Node, auth, error_code, raw_tx};

/// Five transactions that each ask for 16.7M gas: 83.5M in all, almost three blocks.
fn over_a_block() -> Vec<alloy_primitives::Bytes> {
    (0..5)
        .map(|nonce| raw_tx(0, nonce, Address::repeat_byte(9), 16_700_000, 1))
        .collect()
}

#[test]
fn test_a_bundle_larger_than_a_block_is_not_simulated() {
    let node = Node::start(OrderflowLimits::default());
    let signer = auth(1);
    let call = node.call(
        Some(&signer),
        "eth_callBundle",
        json!([{"txs": over_a_block(), "blockNumber": "0x1", "stateBlockNumber": "latest"}]),
    );
    assert_eq!(error_code(&call), -32602, "{call}");
    let message = call["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("83500000 gas"), "{message}");

    // Nor by asking for a larger block.
    let one = [raw_tx(0, 0, Address::repeat_byte(9), 21_000, 1)];
    let call = node.call(
        Some(&signer),
        "eth_callBundle",
        json!([{"txs": one, "blockNumber": "0x1", "stateBlockNumber": "latest", "gasLimit": 1_000_000_000_000u64}]),
    );
    assert_eq!(error_code(&call), -32602, "{call}");

    let body: Vec<_> = over_a_block()
        .into_iter()
        .map(|tx| json!({"tx": tx, "canRevert": false}))
        .collect();
    let sim = node.call(
        Some(&signer),
        "mev_simBundle",
        json!([{"version": "v0.1", "inclusion": {"block": "0x1"}, "body": body}]),
    );
    assert_eq!(error_code(&sim), -32602, "{sim}");
}

#[test]
fn test_a_senders_simulations_are_charged_by_gas() {
    let node = Node::start(OrderflowLimits {
        sim_gas_rate: 1,
        sim_gas_burst: 30_000_000,
        ..OrderflowLimits::default()
    });
    let (alice, bob) = (auth(1), auth(2));
    // Two transactions under the per-transaction cap (2^24 gas), a block's worth together.
    let block = [
        raw_tx(0, 0, Address::repeat_byte(9), 14_500_000, 1),
        raw_tx(0, 1, Address::repeat_byte(9), 14_500_000, 1),
    ];
    let request = json!([{"txs": block, "blockNumber": "0x1", "stateBlockNumber": "latest"}]);
    let first = node.call(Some(&alice), "eth_callBundle", request.clone());
    assert!(
        first.get("result").is_some(),
        "a block's worth fits the burst: {first}"
    );
    // One call, well within the call budget, but the gas budget is spent.
    let second = node.call(Some(&alice), "eth_callBundle", request.clone());
    assert_eq!(error_code(&second), -32005, "{second}");
    let bobs = node.call(Some(&bob), "eth_callBundle", request);
    assert!(
        bobs.get("result").is_some(),
        "another sender is not charged: {bobs}"
    );
}
