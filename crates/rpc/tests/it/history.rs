//! State queries at past blocks: every block the chain holds answers as it stood then.

use alloy_primitives::{B256, U256};
use serde_json::{Value, json};

use super::{error_code, logs::chain_with_logs};

fn quantity(value: &Value) -> u64 {
    let hex = value
        .as_str()
        .unwrap_or_else(|| panic!("a quantity: {value}"));
    u64::from_str_radix(hex.trim_start_matches("0x"), 16).expect("hex")
}

#[test]
fn test_state_queries_answer_at_every_block_as_it_stood_then() {
    let (node, [emitter, _]) = chain_with_logs(|eth| eth);
    let dev0 = cobuild_chain::dev_signers()[0].address();
    let call = |method: &str, params: Value| {
        let reply = node.call(None, method, params);
        assert!(reply.get("error").is_none(), "{method}: {reply}");
        reply["result"].clone()
    };

    // The nonce at each block is the number of dev account 0's transactions up to it.
    let mut sent = 0;
    let mut balances = Vec::new();
    for number in 0..=12u64 {
        let tag = json!(format!("{number:#x}"));
        let block = call("eth_getBlockByNumber", json!([tag, true]));
        let txs = block["transactions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        sent += txs.iter().filter(|tx| tx["from"] == json!(dev0)).count() as u64;
        let nonce = call("eth_getTransactionCount", json!([dev0, tag]));
        assert_eq!(quantity(&nonce), sent, "block {number}");
        // By hash, the same answer.
        let by_hash = json!({"blockHash": block["hash"]});
        assert_eq!(
            call("eth_getTransactionCount", json!([dev0, by_hash])),
            nonce
        );
        balances.push(call("eth_getBalance", json!([dev0, tag])));
    }
    assert_eq!(
        balances[0],
        json!(U256::from(cobuild_chain::DEV_BALANCE)),
        "earliest: the genesis balance"
    );
    assert_eq!(
        call("eth_getBalance", json!([dev0, "earliest"])),
        balances[0]
    );
    assert!(
        balances.windows(2).any(|w| w[0] != w[1]),
        "fees moved the balance"
    );

    // Code and execution at a block before the emitter existed, and after.
    assert_eq!(call("eth_getCode", json!([emitter, "0x0"])), "0x");
    let code = call("eth_getCode", json!([emitter, "0x1"]));
    assert_ne!(code, "0x");
    assert_eq!(call("eth_getCode", json!([emitter, "latest"])), code);
    // Mostly zero bytes, so execution, not the calldata floor (EIP-7623), sets the gas.
    let mut input = B256::with_last_byte(1).to_vec();
    input.extend_from_slice(B256::with_last_byte(2).as_slice());
    let request = json!({"from": dev0, "to": emitter, "data": alloy_primitives::hex::encode_prefixed(&input)});
    let before = quantity(&call("eth_estimateGas", json!([request, "0x0"])));
    let after = quantity(&call("eth_estimateGas", json!([request, "0x1"])));
    assert!(
        after > before,
        "the LOG2 costs gas once the code is there: {before} vs {after}"
    );
    assert_eq!(
        call("eth_getStorageAt", json!([emitter, "0x0", "0x0"])),
        json!(B256::ZERO)
    );

    // Blocks the chain does not hold are errors.
    let future = node.call(None, "eth_getBalance", json!([dev0, "0x64"]));
    assert_eq!(error_code(&future), -32000, "{future}");
    let unknown = node.call(
        None,
        "eth_getBalance",
        json!([dev0, {"blockHash": B256::repeat_byte(3)}]),
    );
    assert_eq!(error_code(&unknown), -32000, "{unknown}");
}

/// Init code of a contract whose runtime stores calldata word 1 at slot calldata word 0.
const STORE_INIT: [u8; 17] = [
    0x67, 0x60, 0x20, 0x35, 0x60, 0x00, 0x35, 0x55, 0x00, 0x60, 0x00, 0x52, 0x60, 0x08, 0x60, 0x18,
    0xf3,
];
/// Init code of a contract whose runtime calls the address in calldata word 0 with no data.
const CALLER_INIT: [u8; 25] = [
    0x6f, 0x60, 0x00, 0x60, 0x00, 0x60, 0x00, 0x60, 0x00, 0x60, 0x00, 0x60, 0x00, 0x35, 0x5a, 0xf1,
    0x00, 0x60, 0x00, 0x52, 0x60, 0x10, 0x60, 0x10, 0xf3,
];

#[test]
fn test_create_access_list_names_what_the_call_reaches_and_the_gas_it_saves() {
    let (node, _) = chain_with_logs(|eth| eth);
    let dev0 = cobuild_chain::dev_signers()[0].address();
    let call = |method: &str, params: Value| {
        let reply = node.call(None, method, params);
        assert!(reply.get("error").is_none(), "{method}: {reply}");
        reply["result"].clone()
    };
    let nonce = quantity(&call("eth_getTransactionCount", json!([dev0, "latest"])));
    node.seal(&[
        super::logs::tx(
            nonce,
            None,
            alloy_primitives::Bytes::from_static(&STORE_INIT),
        ),
        super::logs::tx(
            nonce + 1,
            None,
            alloy_primitives::Bytes::from_static(&CALLER_INIT),
        ),
    ]);
    let (store, caller) = (dev0.create(nonce), dev0.create(nonce + 1));
    // The caller calls the store, which writes slot 0 (calldata is empty there).
    let request = json!({"from": dev0, "to": caller, "data": store.into_word()});
    let result = call("eth_createAccessList", json!([request, "latest"]));
    assert_eq!(
        result["accessList"],
        json!([{"address": store, "storageKeys": [B256::ZERO]}]),
        "{result}"
    );
    assert!(result.get("error").is_none(), "{result}");
    // With the list the call costs what the answer says, and less than without it.
    let with_list = json!({"from": dev0, "to": caller, "data": store.into_word(), "accessList": result["accessList"]});
    let listed = quantity(&call("eth_estimateGas", json!([with_list])));
    let plain = quantity(&call("eth_estimateGas", json!([request])));
    assert!(listed < plain, "the list saves gas: {listed} vs {plain}");
    assert!(quantity(&result["gasUsed"]) <= listed, "{result}");
    // Before the contracts existed, the call reaches nothing.
    let before = call("eth_createAccessList", json!([request, "0x1"]));
    assert_eq!(before["accessList"], json!([]), "{before}");
}
