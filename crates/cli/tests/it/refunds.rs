//! Refunds with real processes and real clients: on `cobuild devnet --nodes 4` two searchers
//! with ethers-provider-bundle send competing bundles to different members (one delegates its
//! refunds first), a third sends with web3-flashbots; every node serves the same refunds, which
//! match figures worked out from the blocks by hand, and once the payouts land each
//! recipient's balance is exactly its refund.

use std::{path::Path, process::Command, time::Duration};

use alloy_primitives::B256;
use alloy_signer_local::PrivateKeySigner;
use cobuild_test_utils::{tools_bin, venv_python};
use serde_json::{Value, json};

use super::{
    cobuild_ok,
    nodes::{Member, eventually, four_members, landed},
    run_client, tx_hash,
};

const GWEI: u128 = 1_000_000_000;

fn quantity(value: &Value) -> u128 {
    let text = value.as_str().expect("a hex quantity");
    u128::from_str_radix(text.trim_start_matches("0x"), 16).expect("hex")
}

/// The node's refunds of block `number`, with each refund's status left out (a payout can
/// land between two nodes' answers).
fn refunds_of_block(node: &Member<'_>, number: u64) -> Option<Vec<Value>> {
    let answer = node.rpc(
        "flashbots_getFeeRefundsByBlock",
        json!([{"block_number": format!("{number:#x}")}]),
    )?;
    let mut refunds = answer["refunds"].as_array()?.clone();
    for refund in &mut refunds {
        refund.as_object_mut()?.remove("status");
    }
    Some(refunds)
}

/// Waits until every node serves the same, non-empty refunds for block `number`.
fn agreed_refunds(nodes: &[Member<'_>], number: u64) -> Vec<Value> {
    eventually(
        &format!("every node to serve the refunds of block {number}"),
        Duration::from_secs(60),
        || {
            let all: Vec<Vec<Value>> = nodes
                .iter()
                .map(|n| refunds_of_block(n, number))
                .collect::<Option<_>>()?;
            (!all[0].is_empty() && all.iter().all(|r| *r == all[0])).then(|| all[0].clone())
        },
    )
}

fn balance(node: &Member<'_>, address: &str) -> u128 {
    node.rpc("eth_getBalance", json!([address, "latest"]))
        .map(|b| quantity(&b))
        .unwrap_or_default()
}

#[test]
fn test_refunds_from_the_ledger_match_the_blocks_and_are_paid() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The builders keep 80 % of each block's profit, so the refunds are not capped by it.
    let (hub, endpoints) = four_members(dir.path(), &["--bid-percent", "20"]);
    let nodes: Vec<Member<'_>> = (0..4).map(|i| Member(&endpoints["nodes"][i])).collect();

    // A (at node 0) and B (at node 1) both spend one account's nonce 0: A tips 200 gwei a gas,
    // B 100. A delegates its refunds to D.
    let delegate = "0x00000000000000000000000000000000000dd001";
    let target = hub.head() + 8;
    let sent = run_client(
        Command::new("node")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/refund_searchers.cjs"))
            .args([
                nodes[0].field("rpc"),
                nodes[1].field("rpc"),
                delegate,
                &target.to_string(),
                &(target + 4).to_string(),
            ])
            .env("NODE_PATH", tools_bin().join("../")),
    );
    assert_eq!(sent["delegation"]["to"], delegate, "{sent}");
    let a_tx = tx_hash(sent["a"]["signed"].as_str().expect("A's transaction"));
    let block_a = quantity(&landed(&hub, &a_tx)["number"]) as u64;

    // C, with web3-flashbots at node 2, once A landed: a bundle of its own, in a later block.
    let c = run_client(
        Command::new(venv_python())
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/bundle.py"))
            .args([
                nodes[2].field("rpc"),
                "0x0000000000000000000000000000000000000c0c",
            ]),
    );
    assert_eq!(c["status"], 1, "{c}");
    let block_c = c["block"].as_u64().expect("C's block");
    assert!(block_c > block_a);
    let c_auth = format!(
        "{:#x}",
        PrivateKeySigner::from_bytes(&B256::repeat_byte(7))
            .expect("a key")
            .address()
    );

    // By hand, A's block: A paid 200 gwei × 21,000 gas; without A, B would have landed and
    // paid 100 gwei × 21,000, so A's marginal contribution is the difference. It is the only
    // identity, and the builder kept 80 % of 4.2 finney, more than that: A gets all of it, to D.
    let refunds_a = agreed_refunds(&nodes, block_a);
    assert_eq!(refunds_a.len(), 1, "{refunds_a:?}");
    let refund_a = (200 - 100) * GWEI * 21_000;
    assert_eq!(quantity(&refunds_a[0]["amount"]), refund_a);
    assert_eq!(refunds_a[0]["hash"], sent["a"]["bundleHash"]);
    assert_eq!(
        refunds_a[0]["identity"].as_str().map(str::to_lowercase),
        sent["a"]["auth"].as_str().map(str::to_lowercase)
    );
    assert_eq!(refunds_a[0]["recipient"], delegate);
    // The refund names the record it comes from, which every node holds.
    let record = nodes[3]
        .rpc("cobuild_getSlotRecord", json!([format!("{block_a:#x}")]))
        .expect("A's record");
    assert_eq!(record["digest"], refunds_a[0]["record"]);
    // B paid nothing in the block: it earns nothing.
    let by_bundle = nodes[1]
        .rpc(
            "flashbots_getFeeRefundsByBundle",
            json!([{"bundle_hash": sent["b"]["bundleHash"]}]),
        )
        .expect("answer");
    assert_eq!(by_bundle["refunds"], json!([]));

    // C's block: C paid 2 gwei × 21,000 and nothing would replace it, so its contribution is
    // all it paid; the builder shares out at most what it kept (the block's value less the
    // proposer payment).
    let refunds_c = agreed_refunds(&nodes, block_c);
    let record_c = nodes[0]
        .rpc("cobuild_getSlotRecord", json!([format!("{block_c:#x}")]))
        .expect("C's record");
    let kept = quantity(&record_c["record"]["facts"]["value"])
        - quantity(&record_c["record"]["facts"]["payment"]);
    let refund_c = (2 * GWEI * 21_000).min(kept);
    assert!(refund_c > 0);
    assert_eq!(refunds_c.len(), 1, "{refunds_c:?}");
    assert_eq!(quantity(&refunds_c[0]["amount"]), refund_c);
    assert_eq!(refunds_c[0]["recipient"], c_auth.as_str());

    // The payouts land: each recipient (both started empty) holds exactly its refund, and every
    // node shows them received and no member owing.
    for (recipient, refund) in [(delegate, refund_a), (c_auth.as_str(), refund_c)] {
        eventually(
            &format!("the payout to {recipient}"),
            Duration::from_secs(60),
            || {
                nodes
                    .iter()
                    .all(|n| {
                        n.rpc(
                            "flashbots_getFeeRefundTotalsByRecipient",
                            json!([recipient]),
                        )
                        .is_some_and(|t| {
                            quantity(&t["received"]) == refund && quantity(&t["pending"]) == 0
                        })
                    })
                    .then_some(())
            },
        );
        assert_eq!(balance(&nodes[0], recipient), refund, "{recipient}");
    }
    let debts = nodes[2]
        .rpc("cobuild_getRefundDebts", json!([]))
        .expect("debts");
    for debt in debts.as_array().expect("a list") {
        assert_eq!(quantity(&debt["outstanding"]), 0, "{debts}");
    }
    let printed = cobuild_ok(&[
        "refunds",
        "--recipient",
        delegate,
        "--rpc",
        nodes[3].field("rpc"),
    ]);
    assert!(
        printed.contains(&format!("{refund_a} wei received")),
        "{printed}"
    );
}
