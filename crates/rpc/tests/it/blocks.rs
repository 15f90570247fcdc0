//! The block and transaction lookups beside `eth_getBlockBy*`: by block and index, counts,
//! raw transactions, uncles (none), and the fee and mining answers a devnet can give truthfully.

use alloy_primitives::{B256, Bytes, keccak256};
use serde_json::{Value, json};

use super::logs::chain_with_logs;

#[test]
fn test_transactions_by_block_and_index_counts_and_raw_bytes_agree_with_the_block() {
    let (node, _) = chain_with_logs(|eth| eth);
    let call = |method: &str, params: Value| {
        let reply = node.call(None, method, params);
        assert!(reply.get("error").is_none(), "{method}: {reply}");
        reply["result"].clone()
    };
    let mut seen = 0;
    for number in 0..=13u64 {
        let tag = format!("{number:#x}");
        let block = call("eth_getBlockByNumber", json!([tag, true]));
        let txs = block["transactions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let hash = block["hash"].clone();
        if number == 13 {
            // Past the head: no block, so nothing in it.
            assert_eq!(block, Value::Null);
            assert_eq!(
                call("eth_getBlockTransactionCountByNumber", json!([tag])),
                Value::Null
            );
            assert_eq!(
                call("eth_getUncleCountByBlockNumber", json!([tag])),
                Value::Null
            );
            continue;
        }
        let count = json!(format!("{:#x}", txs.len()));
        assert_eq!(
            call("eth_getBlockTransactionCountByNumber", json!([tag])),
            count
        );
        assert_eq!(
            call("eth_getBlockTransactionCountByHash", json!([hash])),
            count
        );
        assert_eq!(call("eth_getUncleCountByBlockNumber", json!([tag])), "0x0");
        assert_eq!(call("eth_getUncleCountByBlockHash", json!([hash])), "0x0");
        assert_eq!(
            call("eth_getUncleByBlockNumberAndIndex", json!([tag, "0x0"])),
            Value::Null
        );
        for (index, tx) in txs.iter().enumerate() {
            let at = json!(format!("{index:#x}"));
            let by_number = call("eth_getTransactionByBlockNumberAndIndex", json!([tag, at]));
            let by_hash = call("eth_getTransactionByBlockHashAndIndex", json!([hash, at]));
            assert_eq!(&by_number, tx, "block {number} index {index}");
            assert_eq!(&by_hash, tx, "block {number} index {index}");
            let raw: Bytes =
                serde_json::from_value(call("eth_getRawTransactionByHash", json!([tx["hash"]])))
                    .expect("raw bytes");
            assert_eq!(
                json!(keccak256(&raw)),
                tx["hash"],
                "the raw bytes hash to the transaction"
            );
            seen += 1;
        }
        let past = json!(format!("{:#x}", txs.len()));
        assert_eq!(
            call(
                "eth_getTransactionByBlockNumberAndIndex",
                json!([tag, past])
            ),
            Value::Null
        );
    }
    assert!(seen > 5, "the chain holds transactions: {seen}");
    let unknown = B256::repeat_byte(9);
    assert_eq!(
        call("eth_getBlockTransactionCountByHash", json!([unknown])),
        Value::Null
    );
    assert_eq!(
        call("eth_getRawTransactionByHash", json!([unknown])),
        Value::Null
    );

    // Fees and mining, as a devnet without a miner of its own can answer them.
    assert_eq!(
        call("eth_blobBaseFee", json!([])),
        "0x1",
        "no blobs yet: the minimum"
    );
    let head = call("eth_getBlockByNumber", json!(["latest", false]));
    assert_eq!(call("eth_coinbase", json!([])), head["miner"]);
    assert_eq!(call("eth_mining", json!([])), false);
    assert_eq!(call("eth_hashrate", json!([])), "0x0");
}
