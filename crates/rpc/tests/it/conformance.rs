//! The node's answers against the Ethereum execution-apis OpenRPC specification (fetched at a
//! pinned commit by `scripts/fetch-execution-apis.py`, checked in beside this test): real
//! traffic (legacy, EIP-2930 and EIP-1559 transactions, a deployment, a revert), then every
//! method of the specification the node serves, each answer validated against its schema.

use std::{cell::RefCell, collections::BTreeSet, path::Path, process::Command};

use alloy_consensus::{SignableTransaction, TxEip1559, TxEip2930, TxEnvelope, TxLegacy};
use alloy_eips::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, Signature, TxKind, U256};
use alloy_signer::SignerSync;
use cobuild_primitives::DEVNET_CHAIN_ID;
use serde_json::{Value, json};

use super::{GWEI, Node, logs::chain_with_logs};

/// Methods of the specification the node refuses, each with a reason it gives.
const REFUSED: &[&str] = &[
    "eth_sendTransaction",
    "eth_sign",
    "eth_signTransaction",
    "eth_simulateV1",
    "eth_getBlockAccessList",
    "eth_config",
    "eth_capabilities",
    "eth_fillTransaction",
];

/// Signs `tx` with dev account `account`.
fn signed<T>(account: usize, tx: T) -> Bytes
where
    T: SignableTransaction<Signature>,
    TxEnvelope: From<alloy_consensus::Signed<T>>,
{
    let signer = &cobuild_chain::dev_signers()[account];
    let signature = signer.sign_hash_sync(&tx.signature_hash()).expect("signs");
    TxEnvelope::from(tx.into_signed(signature))
        .encoded_2718()
        .into()
}

/// Every call made, with its answer or refusal, as `check.py` reads them.
struct Recorder<'a> {
    node: &'a Node,
    calls: RefCell<Vec<Value>>,
}

impl Recorder<'_> {
    /// An answer (the test fails on a refusal).
    fn ok(&self, method: &str, params: Value) -> Value {
        let reply = self.node.call(None, method, params.clone());
        assert!(reply.get("error").is_none(), "{method} {params}: {reply}");
        let result = reply["result"].clone();
        self.calls
            .borrow_mut()
            .push(json!({"method": method, "params": params, "result": result}));
        result
    }

    /// A refusal (the test fails on an answer); its message.
    fn refused(&self, method: &str, params: Value) -> String {
        let reply = self.node.call(None, method, params.clone());
        let message = reply["error"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("{method}: {reply}"));
        self.calls
            .borrow_mut()
            .push(json!({"method": method, "params": params, "error": reply["error"]}));
        message.to_owned()
    }
}

#[test]
fn test_every_served_method_answers_as_the_specification_says() {
    let (node, [emitter, _]) = chain_with_logs(|eth| eth);
    let rec = Recorder {
        node: &node,
        calls: RefCell::new(Vec::new()),
    };
    let to = Address::repeat_byte(0xd0);
    let fees = (50 * GWEI, 2 * GWEI);
    let legacy = signed(
        1,
        TxLegacy {
            chain_id: Some(DEVNET_CHAIN_ID),
            nonce: 0,
            gas_price: fees.0,
            gas_limit: 21_000,
            to: TxKind::Call(to),
            value: U256::from(1),
            input: Bytes::new(),
        },
    );
    let access_list = alloy_eips::eip2930::AccessList(vec![alloy_eips::eip2930::AccessListItem {
        address: emitter,
        storage_keys: vec![B256::ZERO],
    }]);
    let eip2930 = signed(
        2,
        TxEip2930 {
            chain_id: DEVNET_CHAIN_ID,
            nonce: 0,
            gas_price: fees.0,
            gas_limit: 100_000,
            to: TxKind::Call(emitter),
            value: U256::ZERO,
            access_list,
            input: Bytes::from(B256::with_last_byte(1).to_vec()),
        },
    );
    let eip1559 = |account, nonce, to: TxKind, gas_limit, input: Bytes| {
        signed(
            account,
            TxEip1559 {
                chain_id: DEVNET_CHAIN_ID,
                nonce,
                gas_limit,
                max_fee_per_gas: fees.0,
                max_priority_fee_per_gas: fees.1,
                to,
                value: U256::ZERO,
                access_list: Default::default(),
                input,
            },
        )
    };
    let transfer = eip1559(3, 0, TxKind::Call(to), 21_000, Bytes::new());
    // The emitter's init code again: a deployment.
    let deployment = eip1559(
        4,
        0,
        TxKind::Create,
        200_000,
        Bytes::from_static(&EMITTER_INIT),
    );
    // The EIP-4788 contract reverts on calldata that is not 32 bytes long.
    let revert = eip1559(
        5,
        0,
        TxKind::Call(alloy_eips::eip4788::BEACON_ROOTS_ADDRESS),
        100_000,
        Bytes::from_static(&[1]),
    );
    let filters = [
        rec.ok("eth_newFilter", json!([{"address": emitter}])),
        rec.ok("eth_newBlockFilter", json!([])),
        rec.ok("eth_newPendingTransactionFilter", json!([])),
    ];
    let txs = [legacy, eip2930, transfer, deployment, revert];
    let hashes: Vec<Value> = txs
        .iter()
        .map(|raw| rec.ok("eth_sendRawTransaction", json!([raw])))
        .collect();
    for filter in &filters {
        rec.ok("eth_getFilterChanges", json!([filter]));
    }
    node.seal(&txs);
    for filter in &filters {
        rec.ok("eth_getFilterChanges", json!([filter]));
    }
    rec.ok("eth_getFilterLogs", json!([filters[0]]));
    for filter in &filters {
        rec.ok("eth_uninstallFilter", json!([filter]));
    }

    // Blocks, transactions and receipts: of every kind above.
    let head = rec.ok("eth_blockNumber", json!([]));
    let block = rec.ok("eth_getBlockByNumber", json!([head, true]));
    rec.ok("eth_getBlockByNumber", json!(["latest", false]));
    rec.ok("eth_getBlockByNumber", json!(["0x0", false]));
    rec.ok("eth_getBlockByNumber", json!(["0xffff", false]));
    rec.ok("eth_getBlockByHash", json!([block["hash"], true]));
    rec.ok("eth_getBlockByHash", json!([B256::repeat_byte(1), false]));
    rec.ok("eth_getBlockReceipts", json!([head]));
    rec.ok("eth_getBlockTransactionCountByNumber", json!([head]));
    rec.ok("eth_getBlockTransactionCountByHash", json!([block["hash"]]));
    for (index, hash) in hashes.iter().enumerate() {
        rec.ok("eth_getTransactionByHash", json!([hash]));
        let receipt = rec.ok("eth_getTransactionReceipt", json!([hash]));
        assert!(receipt.is_object(), "{hash} landed");
        let at = format!("{index:#x}");
        rec.ok("eth_getTransactionByBlockNumberAndIndex", json!([head, at]));
        rec.ok(
            "eth_getTransactionByBlockHashAndIndex",
            json!([block["hash"], at]),
        );
    }
    rec.ok("eth_getTransactionByHash", json!([B256::repeat_byte(2)]));
    rec.ok("eth_getTransactionReceipt", json!([B256::repeat_byte(2)]));

    // State, now and at the genesis.
    let dev1 = cobuild_chain::dev_signers()[1].address();
    for at in [json!("latest"), json!("0x0"), block["hash"].clone()] {
        rec.ok("eth_getBalance", json!([dev1, at]));
        rec.ok("eth_getTransactionCount", json!([dev1, at]));
        rec.ok("eth_getCode", json!([emitter, at]));
        rec.ok("eth_getStorageAt", json!([emitter, "0x0", at]));
    }
    let call = json!({"from": dev1, "to": emitter, "input": B256::with_last_byte(1)});
    rec.ok("eth_call", json!([call, "latest"]));
    rec.ok("eth_estimateGas", json!([call]));
    rec.ok("eth_createAccessList", json!([call, "latest"]));
    rec.ok("eth_getProof", json!([emitter, ["0x0"], "latest"]));
    rec.ok(
        "eth_getStorageValues",
        json!([{emitter.to_string(): ["0x0", "0x1"]}, "latest"]),
    );
    rec.ok(
        "eth_getLogs",
        json!([{"fromBlock": "0x0", "toBlock": "latest"}]),
    );
    rec.ok(
        "eth_getLogs",
        json!([{"blockHash": block["hash"], "address": [emitter]}]),
    );

    // Fees and the client.
    for method in [
        "eth_chainId",
        "eth_syncing",
        "eth_coinbase",
        "eth_accounts",
        "eth_gasPrice",
        "eth_maxPriorityFeePerGas",
        "eth_blobBaseFee",
        "eth_baseFee",
        "net_version",
    ] {
        rec.ok(method, json!([]));
    }
    rec.ok("eth_feeHistory", json!(["0x4", "latest", [25.0, 75.0]]));

    // What the node will not do, it says, with a reason.
    for method in REFUSED {
        let message = rec.refused(method, json!([]));
        assert!(
            message.len() > 20,
            "{method}: a reason, not just a code: {message}"
        );
    }

    // Every method of the specification was called.
    let spec_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openrpc/execution-apis.json");
    let spec: Value =
        serde_json::from_str(&std::fs::read_to_string(&spec_path).expect("spec")).expect("json");
    let called: BTreeSet<String> = rec
        .calls
        .borrow()
        .iter()
        .map(|c| c["method"].as_str().expect("method").to_owned())
        .collect();
    let missing: Vec<&str> = spec["methods"]
        .as_array()
        .expect("methods")
        .iter()
        .map(|m| m["name"].as_str().expect("name"))
        .filter(|name| !called.contains(*name))
        .collect();
    assert!(
        missing.is_empty(),
        "methods of the specification never called: {missing:?}"
    );

    // And every answer is what the specification says.
    let dir = tempfile::tempdir().expect("tempdir");
    let traffic = dir.path().join("traffic.json");
    std::fs::write(&traffic, Value::from(rec.calls.take()).to_string()).expect("written");
    let out = Command::new(cobuild_test_utils::venv_python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openrpc/check.py"))
        .arg(&spec_path)
        .arg(&traffic)
        .output()
        .expect("the checker runs");
    assert!(
        out.status.success(),
        "answers that break the specification:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Init code of the log emitter (see `logs.rs`).
const EMITTER_INIT: [u8; 22] = [
    0x6b, 0x60, 0x20, 0x35, 0x60, 0x00, 0x35, 0x60, 0x00, 0x60, 0x00, 0xa2, 0x00, 0x60, 0x00, 0x52,
    0x60, 0x0c, 0x60, 0x14, 0xf3, 0x00,
];
