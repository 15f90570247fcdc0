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

#[test]
fn test_get_proof_verifies_against_the_state_root_of_the_head_and_of_past_blocks() {
    use alloy_rlp::Encodable;
    use alloy_trie::{Nibbles, TrieAccount, proof::verify_proof};

    let (node, _) = chain_with_logs(|eth| eth.with_proof_window(3));
    let dev0 = cobuild_chain::dev_signers()[0].address();
    let nonce =
        quantity(&node.call(None, "eth_getTransactionCount", json!([dev0, "latest"]))["result"]);
    let store = dev0.create(nonce);
    let mut write = B256::with_last_byte(5).to_vec();
    write.extend_from_slice(B256::with_last_byte(9).as_slice());
    // The contract in one block, its slot 5 written in the next.
    node.seal(&[super::logs::tx(
        nonce,
        None,
        alloy_primitives::Bytes::from_static(&STORE_INIT),
    )]);
    node.seal(&[super::logs::tx(nonce + 1, Some(store), write.into())]);
    let head = node.call(None, "eth_getBlockByNumber", json!(["latest", false]))["result"].clone();
    let head_number: u64 = quantity(&head["number"]);

    // At the head slot 5 holds 9; one block before, the contract exists with nothing stored.
    for (number, slot5) in [(head_number, 9u64), (head_number - 1, 0)] {
        let block = node.call(
            None,
            "eth_getBlockByNumber",
            json!([format!("{number:#x}"), false]),
        );
        let state_root: B256 =
            serde_json::from_value(block["result"]["stateRoot"].clone()).expect("root");
        for (address, exists) in [
            (store, true),
            (dev0, true),
            (alloy_primitives::Address::repeat_byte(0x42), false),
        ] {
            let reply = node.call(
                None,
                "eth_getProof",
                json!([address, ["0x5", "0x6"], format!("{number:#x}")]),
            );
            let proof = reply["result"].clone();
            assert!(proof.is_object(), "{reply}");
            let nodes: Vec<alloy_primitives::Bytes> =
                serde_json::from_value(proof["accountProof"].clone()).expect("nodes");
            let account = TrieAccount {
                nonce: quantity(&proof["nonce"]),
                balance: serde_json::from_value(proof["balance"].clone()).expect("balance"),
                storage_root: serde_json::from_value(proof["storageHash"].clone()).expect("hash"),
                code_hash: serde_json::from_value(proof["codeHash"].clone()).expect("hash"),
            };
            let leaf = exists.then(|| {
                let mut out = Vec::new();
                account.encode(&mut out);
                out
            });
            let key = Nibbles::unpack(alloy_primitives::keccak256(address));
            verify_proof(state_root, key, leaf, &nodes)
                .unwrap_or_else(|e| panic!("{address} at {number}: {e:?}"));
            for (i, item) in proof["storageProof"]
                .as_array()
                .expect("slots")
                .iter()
                .enumerate()
            {
                let value: U256 = serde_json::from_value(item["value"].clone()).expect("value");
                let want = if address == store && i == 0 {
                    U256::from(slot5)
                } else {
                    U256::ZERO
                };
                assert_eq!(value, want, "{address} at {number}: {item}");
                let nodes: Vec<alloy_primitives::Bytes> =
                    serde_json::from_value(item["proof"].clone()).expect("nodes");
                let slot = B256::with_last_byte(5 + i as u8);
                let leaf = (!value.is_zero()).then(|| {
                    let mut out = Vec::new();
                    value.encode(&mut out);
                    out
                });
                let key = Nibbles::unpack(alloy_primitives::keccak256(slot));
                verify_proof(account.storage_root, key, leaf, &nodes)
                    .unwrap_or_else(|e| panic!("{address} slot {slot} at {number}: {e:?}"));
            }
        }
    }
    // Beyond the window (3 blocks here) the node says how far it proves.
    let old = node.call(
        None,
        "eth_getProof",
        json!([dev0, [], format!("{:#x}", head_number - 4)]),
    );
    assert_eq!(error_code(&old), -32000, "{old}");
    assert!(
        old["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("--proof-window")),
        "{old}"
    );
    let edge = node.call(
        None,
        "eth_getProof",
        json!([dev0, [], format!("{:#x}", head_number - 3)]),
    );
    assert!(edge["result"].is_object(), "{edge}");
}
