//! `eth_getLogs` against a chain of blocks whose contracts emit logs with chosen topics: every
//! answer equals the logs of the blocks' receipts filtered by hand, and the limits answer with
//! the error that names them.

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256};
use alloy_signer::SignerSync;
use cobuild_primitives::DEVNET_CHAIN_ID;
use cobuild_rpc::{Eth, LogLimits, OrderflowLimits, RpcConfig};
use cobuild_test_utils::Rng;
use serde_json::{Value, json};

use super::{GWEI, Node, error_code};

/// Init code of a contract whose runtime emits `LOG2(topic0 = calldata word 0, topic1 =
/// calldata word 1)` with no data.
const EMITTER_INIT: [u8; 22] = [
    0x6b, // PUSH12 runtime:
    0x60, 0x20, 0x35, 0x60, 0x00, 0x35, 0x60, 0x00, 0x60, 0x00, 0xa2, 0x00, 0x60, 0x00,
    0x52, // MSTORE at 0 (runtime in bytes 20..32)
    0x60, 0x0c, 0x60, 0x14, 0xf3, // RETURN(20, 12)
    0x00,
];

/// A transaction by dev account 0 at `nonce`: a deployment (`to` none) or a call with `input`.
pub(super) fn tx(nonce: u64, to: Option<Address>, input: Bytes) -> Bytes {
    let signer = &cobuild_chain::dev_signers()[0];
    let tx = TxEip1559 {
        chain_id: DEVNET_CHAIN_ID,
        nonce,
        gas_limit: 200_000,
        max_fee_per_gas: 50 * GWEI,
        max_priority_fee_per_gas: GWEI,
        to: to.map_or(TxKind::Create, TxKind::Call),
        value: U256::ZERO,
        access_list: Default::default(),
        input,
    };
    let sig = signer.sign_hash_sync(&tx.signature_hash()).expect("sign");
    TxEnvelope::from(tx.into_signed(sig)).encoded_2718().into()
}

pub(super) fn topic(n: u64) -> B256 {
    B256::from(U256::from(n + 1))
}

/// A node (its eth API set up by `eth_api`) whose chain holds blocks 1 (two emitters
/// deployed) to 12, each with a few logs from either emitter with topics from small sets.
pub(super) fn chain_with_logs(eth_api: impl FnOnce(Eth) -> Eth) -> (Node, [Address; 2]) {
    let node = Node::start_configured(
        OrderflowLimits::default(),
        None,
        RpcConfig::new(([127, 0, 0, 1], 0).into()),
        eth_api,
    );
    let deployer = cobuild_chain::dev_signers()[0].address();
    let emitters = [deployer.create(0), deployer.create(1)];
    let init = Bytes::from_static(&EMITTER_INIT);
    node.seal(&[tx(0, None, init.clone()), tx(1, None, init)]);
    let mut rng = Rng::new(3);
    let mut nonce = 2;
    for _ in 0..11 {
        let txs: Vec<Bytes> = (0..rng.next_u64() % 4)
            .map(|_| {
                let to = emitters[(rng.next_u64() % 2) as usize];
                let mut input = topic(rng.next_u64() % 3).to_vec();
                input.extend_from_slice(topic(10 + rng.next_u64() % 3).as_slice());
                nonce += 1;
                tx(nonce - 1, Some(to), input.into())
            })
            .collect();
        node.seal(&txs);
    }
    (node, emitters)
}

/// Every log of blocks `from..=to`, from the receipts.
pub(super) fn all_logs(node: &Node, from: u64, to: u64) -> Vec<Value> {
    (from..=to)
        .flat_map(|n| {
            let reply = node.call(None, "eth_getBlockReceipts", json!([format!("{n:#x}")]));
            let receipts = reply["result"].as_array().cloned().unwrap_or_default();
            receipts
                .into_iter()
                .flat_map(|r| r["logs"].as_array().cloned().unwrap_or_default())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Whether `log` matches a filter's address set and topic sets (`null` or missing: any).
fn matches(log: &Value, addresses: &[Address], topics: &[Option<Vec<B256>>]) -> bool {
    let address: Address = serde_json::from_value(log["address"].clone()).expect("address");
    let log_topics: Vec<B256> = serde_json::from_value(log["topics"].clone()).expect("topics");
    (addresses.is_empty() || addresses.contains(&address))
        && topics.iter().enumerate().all(|(i, set)| match set {
            None => true,
            Some(set) => log_topics.get(i).is_some_and(|t| set.contains(t)),
        })
}

#[test]
fn test_get_logs_answers_every_filter_as_the_receipts_do() {
    let (node, emitters) = chain_with_logs(|eth| eth);
    let head = 12;
    let everything = all_logs(&node, 0, head);
    assert!(
        everything.len() > 10,
        "the chain holds logs: {everything:?}"
    );

    let mut rng = Rng::new(9);
    for case in 0..60 {
        let from = rng.next_u64() % (head + 1);
        let to = from + rng.next_u64() % (head + 1 - from);
        let addresses: Vec<Address> = emitters
            .iter()
            .copied()
            .filter(|_| rng.next_u64().is_multiple_of(3))
            .collect();
        // Topic sets: any (null), one value, or an OR-set; trailing positions left out.
        let topics: Vec<Option<Vec<B256>>> = (0..rng.next_u64() % 3)
            .map(|position| match rng.next_u64() % 3 {
                0 => None,
                1 => Some(vec![topic(position * 10 + rng.next_u64() % 3)]),
                _ => Some(vec![topic(position * 10), topic(position * 10 + 2)]),
            })
            .collect();
        let mut filter = json!({
            "fromBlock": format!("{from:#x}"),
            "toBlock": format!("{to:#x}"),
            "topics": topics.iter().map(|set| match set {
                None => Value::Null,
                Some(set) if set.len() == 1 => json!(set[0]),
                Some(set) => json!(set),
            }).collect::<Vec<_>>(),
        });
        match addresses.as_slice() {
            [] => {}
            [one] => filter["address"] = json!(one),
            many => filter["address"] = json!(many),
        }
        let reply = node.call(None, "eth_getLogs", json!([filter]));
        let got = reply["result"]
            .as_array()
            .unwrap_or_else(|| panic!("{reply}"));
        let want: Vec<&Value> = everything
            .iter()
            .filter(|log| {
                let number = u64::from_str_radix(
                    log["blockNumber"]
                        .as_str()
                        .expect("number")
                        .trim_start_matches("0x"),
                    16,
                )
                .expect("hex");
                (from..=to).contains(&number) && matches(log, &addresses, &topics)
            })
            .collect();
        assert_eq!(
            got.iter().collect::<Vec<_>>(),
            want,
            "case {case}: {filter}"
        );
    }

    // One block by hash; tags; a range past the head holds nothing yet.
    let block5 = node.call(None, "eth_getBlockByNumber", json!(["0x5", false]));
    let hash = block5["result"]["hash"].clone();
    let by_hash = node.call(None, "eth_getLogs", json!([{"blockHash": hash}]));
    assert_eq!(by_hash["result"], json!(all_logs(&node, 5, 5)));
    let latest = node.call(
        None,
        "eth_getLogs",
        json!([{"fromBlock": "earliest", "toBlock": "latest"}]),
    );
    assert_eq!(latest["result"], json!(everything));
    let future = node.call(
        None,
        "eth_getLogs",
        json!([{"fromBlock": "0x20", "toBlock": "0x30"}]),
    );
    assert_eq!(future["result"], json!([]));

    // Malformed ranges and unknown blocks are errors that say so.
    let backwards = node.call(
        None,
        "eth_getLogs",
        json!([{"fromBlock": "0x5", "toBlock": "0x2"}]),
    );
    assert_eq!(error_code(&backwards), -32602, "{backwards}");
    let unknown = node.call(
        None,
        "eth_getLogs",
        json!([{"blockHash": B256::repeat_byte(7)}]),
    );
    assert_eq!(error_code(&unknown), -32000, "{unknown}");
    let both = node.call(
        None,
        "eth_getLogs",
        json!([{"blockHash": hash, "fromBlock": "0x1"}]),
    );
    assert_eq!(error_code(&both), -32602, "{both}");
}

#[test]
fn test_get_logs_refuses_past_its_limits_naming_them() {
    let limits = LogLimits {
        max_blocks: 5,
        max_logs: 4,
    };
    let (node, _) = chain_with_logs(|eth| eth.with_log_limits(limits));
    let message = |reply: &Value| {
        reply["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };

    let wide = node.call(
        None,
        "eth_getLogs",
        json!([{"fromBlock": "0x0", "toBlock": "0x5"}]),
    );
    assert_eq!(error_code(&wide), -32005, "{wide}");
    assert!(message(&wide).contains("max block range 5"), "{wide}");
    // Five blocks are within the limit (a topic no log has keeps the results under theirs).
    let none = B256::repeat_byte(0xee);
    let narrow = node.call(
        None,
        "eth_getLogs",
        json!([{"fromBlock": "0x1", "toBlock": "0x5", "topics": [none]}]),
    );
    assert_eq!(narrow["result"], json!([]), "{narrow}");

    // More logs than the limit: the error names it and a range that fits.
    let many = (1..=12)
        .find_map(|from| {
            let to = (from + 4).min(12);
            let range = json!([{"fromBlock": format!("{from:#x}"), "toBlock": format!("{to:#x}")}]);
            let reply = node.call(None, "eth_getLogs", range);
            reply.get("error").is_some().then_some((from, reply))
        })
        .expect("some five blocks hold more than four logs");
    let (from, reply) = many;
    assert_eq!(error_code(&reply), -32005, "{reply}");
    let text = message(&reply);
    assert!(text.contains("max results 4"), "{reply}");
    if let Some(range) = text.split("retry with the range ").nth(1) {
        let (lo, hi) = range.split_once('-').expect("a range");
        assert_eq!(lo.parse::<u64>().expect("number"), from, "{reply}");
        let hi: u64 = hi.parse().expect("number");
        let retry = json!([{"fromBlock": format!("{from:#x}"), "toBlock": format!("{hi:#x}")}]);
        let fits = node.call(None, "eth_getLogs", retry);
        assert!(
            fits.get("error").is_none(),
            "the suggested range fits: {fits}"
        );
    }
}
