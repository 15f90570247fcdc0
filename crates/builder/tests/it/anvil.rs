//! Invariant "valid blocks": a block the builder sealed — bundle, in-block refund, plain
//! transactions and the coinbase's proposer payment — replayed on anvil in the same order gives
//! the same statuses, gas, receipts root and balances.
//!
//! Not compared, as in the chain's own cross-validation: the state root and block hash (anvil's
//! genesis differs in the system contracts), and prevrandao/beacon root (anvil picks its own;
//! no transaction here reads them).

use alloy_consensus::Transaction as _;
use alloy_eips::Encodable2718;
use alloy_primitives::{Address, B256, U256};
use cobuild_builder::{Algorithm, Greedy};
use cobuild_chain::{
    dev_signers,
    test_utils::{ETHER, GWEI, devnet_chain, sign, transfer},
};
use cobuild_primitives::{DEFAULT_GAS_LIMIT, DEVNET_CHAIN_ID, INITIAL_BASE_FEE};
use cobuild_test_utils::Anvil;
use serde_json::Value;

use super::{PROPOSER, balance, bundle, context, pooled, simulate};

fn hex_u64(v: &Value) -> u64 {
    u64::from_str_radix(v.as_str().expect("hex string").trim_start_matches("0x"), 16).expect("hex")
}

#[test]
fn test_sealed_block_replays_on_anvil_to_the_same_receipts_and_balances() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = devnet_chain(dir.path());
    let mut ctx = context(&chain);
    ctx.attrs.timestamp = 1_800_000_000;
    let coinbase = ctx.attrs.fee_recipient;
    let s = dev_signers();
    let searcher = &s[4];
    let orders = simulate(
        &ctx,
        &[
            pooled(sign(
                &s[1],
                transfer(0, Address::repeat_byte(0x77), ETHER, 2 * GWEI),
            )),
            pooled(sign(
                &s[2],
                transfer(0, Address::repeat_byte(0x78), ETHER, 3 * GWEI),
            )),
        ],
        &[bundle(
            &[sign(searcher, transfer(0, coinbase, ETHER, 0))],
            Some(50),
        )],
    );
    let built = Greedy.build(&ctx, &orders).expect("builds");
    let block = &built.block.block;
    let txs = &block.block.body.transactions;
    assert_eq!(txs.len(), 5, "bundle, refund, two transfers, payment");
    chain
        .import(block.block.clone())
        .expect("our own chain re-imports it");

    let base_fee = built.block.header().base_fee_per_gas.expect("base fee");
    let process = Anvil::like_devnet(DEVNET_CHAIN_ID, DEFAULT_GAS_LIMIT, INITIAL_BASE_FEE);
    let anvil = &process.cast;
    anvil.rpc("anvil_setCoinbase", &format!("[\"{coinbase}\"]"));
    // Anvil's pool checks the coinbase's refund and payment against its balance before the
    // block pays it anything; a float lets them in, and is subtracted below.
    let float = U256::from(ETHER);
    anvil.rpc(
        "anvil_setBalance",
        &format!("[\"{coinbase}\", \"{float:#x}\"]"),
    );
    anvil.rpc(
        "evm_setNextBlockTimestamp",
        &format!("[{}]", ctx.attrs.timestamp),
    );
    anvil.rpc(
        "anvil_setNextBlockBaseFeePerGas",
        &format!("[\"{base_fee:#x}\"]"),
    );
    for tx in txs {
        let raw = alloy_primitives::hex::encode_prefixed(tx.encoded_2718());
        anvil.ok(&["publish", "--async", &raw]);
    }
    anvil.rpc("evm_mine", "[]");
    let theirs: Value =
        serde_json::from_str(&anvil.ok(&["block", "1", "--json"])).expect("block json");
    assert_eq!(
        theirs["transactions"].as_array().expect("txs").len(),
        txs.len(),
        "anvil mined every transaction, the coinbase's own included"
    );
    let mut previous = 0;
    for (tx, receipt) in txs.iter().zip(&built.block.receipts) {
        let their: Value =
            serde_json::from_str(&anvil.ok(&["receipt", &tx.tx_hash().to_string(), "--json"]))
                .expect("receipt");
        assert_eq!(hex_u64(&their["status"]) == 1, receipt.status());
        assert_eq!(
            hex_u64(&their["gasUsed"]),
            receipt.cumulative_gas_used() - previous,
            "gas of {}",
            tx.tx_hash()
        );
        previous = receipt.cumulative_gas_used();
    }
    let header = built.block.header();
    assert_eq!(hex_u64(&theirs["gasUsed"]), header.gas_used);
    let root =
        |field: &str| -> B256 { theirs[field].as_str().expect("root").parse().expect("b256") };
    assert_eq!(root("transactionsRoot"), header.transactions_root);
    assert_eq!(root("receiptsRoot"), header.receipts_root);
    // The money moved the same way: proposer paid the bid, searcher refunded, coinbase left
    // with what it kept.
    for who in [PROPOSER, searcher.address(), coinbase, s[1].address()] {
        let theirs: U256 = anvil
            .ok(&["balance", &who.to_string()])
            .parse()
            .expect("decimal balance");
        let theirs = if who == coinbase {
            theirs - float
        } else {
            theirs
        };
        assert_eq!(theirs, balance(&chain, who), "balance of {who}");
    }
    assert_eq!(balance(&chain, PROPOSER), built.value);
    assert!(built.value > U256::ZERO);
    let refund = &txs[1];
    assert_eq!(refund.to(), Some(searcher.address()));
}
