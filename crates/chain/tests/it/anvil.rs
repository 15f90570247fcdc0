//! Cross-validation: the same signed transactions mined by anvil and by the devnet chain must
//! give the same receipts and the same account state.
//!
//! What cannot be matched, and so is not compared:
//! - state root and block hash: the genesis blocks differ (anvil predeploys only the EIP-2935
//!   contract and computes its genesis differently), so the EIP-2935 and EIP-4788 system
//!   contracts store different parent hashes and roots; every other account is compared.
//! - the header's prevrandao and parent beacon root are copied from anvil's block into ours
//!   (anvil picks them), so they match by construction.

use std::sync::Arc;

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope, transaction::Recovered};
use alloy_eips::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, address, keccak256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::SolCall;
use cobuild_chain::{BlockAttributes, Chain, Genesis, dev_signers};
use cobuild_contracts::{DemoDeployment, DemoParams, IPool, IToken};
use cobuild_primitives::{ChainSpec, DEFAULT_GAS_LIMIT, DEVNET_CHAIN_ID, INITIAL_BASE_FEE};
use cobuild_test_utils::Anvil;
use revm::database_interface::DatabaseRef;
use serde_json::Value;

fn sign(
    signer: &PrivateKeySigner,
    nonce: u64,
    to: TxKind,
    value: U256,
    input: Vec<u8>,
    gas: u64,
) -> Recovered<TxEnvelope> {
    let tx = TxEip1559 {
        chain_id: DEVNET_CHAIN_ID,
        nonce,
        gas_limit: gas,
        max_fee_per_gas: 100_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to,
        value,
        access_list: Default::default(),
        input: Bytes::from(input),
    };
    let sig = signer.sign_hash_sync(&tx.signature_hash()).expect("sign");
    Recovered::new_unchecked(tx.into_signed(sig).into(), signer.address())
}

fn hex_u64(v: &Value) -> u64 {
    u64::from_str_radix(v.as_str().expect("hex string").trim_start_matches("0x"), 16).expect("hex")
}

#[test]
fn test_same_transactions_same_outcome_as_anvil() {
    let signers = dev_signers();
    let unit = U256::from(10u64).pow(U256::from(18));
    let demo = DemoDeployment::new(
        &signers[9],
        DemoParams {
            chain_id: DEVNET_CHAIN_ID,
            nonce: 0,
            max_fee_per_gas: 100_000_000_000,
            supply: DemoParams::DEVNET_SUPPLY,
        },
    );
    let dead = address!("0x000000000000000000000000000000000000dEaD");
    let (a, pool) = (demo.token_a, demo.pool);
    let mut txs = vec![sign(
        &signers[0],
        0,
        TxKind::Call(dead),
        unit,
        Vec::new(),
        21_000,
    )];
    txs.extend(demo.transactions.clone());
    let transfer =
        |to: Address, amount: U256| IToken::transferCall { to, value: amount }.abi_encode();
    let swap = |min: U256| {
        IPool::swapCall {
            tokenIn: a,
            amountIn: unit * U256::from(10),
            minAmountOut: min,
        }
        .abi_encode()
    };
    txs.push(sign(
        &signers[9],
        6,
        TxKind::Call(a),
        U256::ZERO,
        transfer(signers[1].address(), unit * U256::from(1000)),
        100_000,
    ));
    txs.push(sign(
        &signers[9],
        7,
        TxKind::Call(pool),
        U256::ZERO,
        swap(U256::ZERO),
        200_000,
    ));
    // Asks for more than the pool can give: reverts with "slippage", still included.
    txs.push(sign(
        &signers[9],
        8,
        TxKind::Call(pool),
        U256::ZERO,
        swap(unit * unit),
        200_000,
    ));
    txs.push(sign(
        &signers[1],
        0,
        TxKind::Call(a),
        U256::ZERO,
        transfer(signers[2].address(), unit * U256::from(5)),
        100_000,
    ));

    // The devnet chain's block 1.
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = Arc::new(ChainSpec::devnet(DEVNET_CHAIN_ID));
    let chain = Chain::open(
        &dir.path().join("chain.redb"),
        spec.clone(),
        &Genesis::devnet(DEFAULT_GAS_LIMIT, INITIAL_BASE_FEE),
    )
    .expect("chain");
    let coinbase = address!("0x00000000000000000000000000000000000c0b11");
    let timestamp = 1_800_000_000u64;
    let base_fee = chain
        .head()
        .next_block_base_fee(spec.base_fee_params())
        .expect("base fee");

    // Anvil, with the block environment matched: timestamp, coinbase, gas limit, base fee.
    let process = Anvil::like_devnet(DEVNET_CHAIN_ID, DEFAULT_GAS_LIMIT, INITIAL_BASE_FEE);
    let anvil = &process.cast;
    anvil.rpc("anvil_setCoinbase", &format!("[\"{coinbase}\"]"));
    anvil.rpc("evm_setNextBlockTimestamp", &format!("[{timestamp}]"));
    anvil.rpc(
        "anvil_setNextBlockBaseFeePerGas",
        &format!("[\"{base_fee:#x}\"]"),
    );
    for tx in &txs {
        let raw = alloy_primitives::hex::encode_prefixed(tx.inner().encoded_2718());
        anvil.ok(&["publish", "--async", &raw]);
    }
    anvil.rpc("evm_mine", "[]");
    let block: Value =
        serde_json::from_str(&anvil.ok(&["block", "1", "--json"])).expect("block json");
    assert_eq!(
        block["transactions"].as_array().expect("txs").len(),
        txs.len(),
        "anvil mined every transaction"
    );

    let mut builder = chain
        .builder(BlockAttributes {
            timestamp,
            fee_recipient: coinbase,
            prev_randao: block["mixHash"]
                .as_str()
                .expect("mixHash")
                .parse()
                .expect("b256"),
            gas_limit: hex_u64(&block["gasLimit"]),
            withdrawals: Vec::new(),
            parent_beacon_block_root: block["parentBeaconBlockRoot"]
                .as_str()
                .map_or(B256::ZERO, |s| s.parse().expect("b256")),
            extra_data: Bytes::new(),
        })
        .expect("builder");
    for tx in &txs {
        builder
            .execute(tx.clone())
            .expect("no fatal error")
            .expect("included, as on anvil");
    }
    let ours = builder.finish().expect("sealed");
    chain.commit(&ours).expect("commit");
    let header = ours.header();

    // Per transaction: status, gas used, logs.
    let mut previous = 0;
    let mut statuses = Vec::new();
    for (tx, receipt) in txs.iter().zip(&ours.receipts) {
        let theirs: Value =
            serde_json::from_str(&anvil.ok(&["receipt", &tx.tx_hash().to_string(), "--json"]))
                .expect("receipt");
        let gas_used = receipt.cumulative_gas_used() - previous;
        previous = receipt.cumulative_gas_used();
        assert_eq!(
            hex_u64(&theirs["status"]) == 1,
            receipt.status(),
            "status of {}",
            tx.tx_hash()
        );
        assert_eq!(
            hex_u64(&theirs["gasUsed"]),
            gas_used,
            "gas used by {}",
            tx.tx_hash()
        );
        let their_logs = theirs["logs"].as_array().expect("logs");
        assert_eq!(
            their_logs.len(),
            receipt.logs().len(),
            "log count of {}",
            tx.tx_hash()
        );
        for (theirs, ours) in their_logs.iter().zip(receipt.logs()) {
            assert_eq!(
                theirs["address"]
                    .as_str()
                    .expect("addr")
                    .parse::<Address>()
                    .expect("a"),
                ours.address
            );
            let topics: Vec<B256> = theirs["topics"]
                .as_array()
                .expect("t")
                .iter()
                .map(|t| t.as_str().expect("t").parse().expect("b"))
                .collect();
            assert_eq!(topics, ours.topics());
            assert_eq!(
                theirs["data"]
                    .as_str()
                    .expect("d")
                    .parse::<Bytes>()
                    .expect("b"),
                ours.data.data
            );
        }
        statuses.push(receipt.status());
    }
    assert_eq!(
        statuses.iter().filter(|s| !**s).count(),
        1,
        "exactly the slippage swap reverts"
    );
    assert!(!statuses[9], "the slippage swap is the one that reverts");

    // Block-level commitments that depend only on the transactions and receipts.
    assert_eq!(hex_u64(&block["gasUsed"]), header.gas_used);
    assert_eq!(
        block["transactionsRoot"]
            .as_str()
            .expect("root")
            .parse::<B256>()
            .expect("b"),
        header.transactions_root
    );
    assert_eq!(
        block["receiptsRoot"]
            .as_str()
            .expect("root")
            .parse::<B256>()
            .expect("b"),
        header.receipts_root
    );
    assert_eq!(
        block["logsBloom"]
            .as_str()
            .expect("bloom")
            .parse::<alloy_primitives::Bloom>()
            .expect("b"),
        header.logs_bloom
    );
    assert_eq!(hex_u64(&block["baseFeePerGas"]), base_fee);

    // Post-block state of every account the block touched.
    let (_, state) = chain.head_state().expect("state");
    let holders = [
        signers[9].address(),
        signers[1].address(),
        signers[2].address(),
        pool,
    ];
    let mut accounts = vec![
        signers[0].address(),
        signers[1].address(),
        signers[2].address(),
        signers[9].address(),
        dead,
        coinbase,
    ];
    accounts.extend([demo.token_a, demo.token_b, pool]);
    for who in accounts {
        let info = state.basic_ref(who).expect("read").unwrap_or_default();
        let w = who.to_string();
        assert_eq!(
            anvil.ok(&["balance", &w]),
            info.balance.to_string(),
            "balance of {w}"
        );
        assert_eq!(
            anvil.ok(&["nonce", &w]),
            info.nonce.to_string(),
            "nonce of {w}"
        );
        let code = info.code.map(|c| c.original_bytes()).unwrap_or_default();
        assert_eq!(anvil.ok(&["code", &w]), code.to_string(), "code of {w}");
    }
    // Storage: the tokens' and pool's plain slots and every holder's token balance.
    for contract in [demo.token_a, demo.token_b, pool] {
        let mut slots: Vec<U256> = (0u64..6).map(U256::from).collect();
        for holder in holders {
            // balanceOf is slot 3 of Token: keccak(holder . 3).
            let mut preimage = [0u8; 64];
            preimage[12..32].copy_from_slice(holder.as_slice());
            preimage[63] = 3;
            slots.push(keccak256(preimage).into());
        }
        for slot in slots {
            let theirs: B256 = anvil
                .ok(&["storage", &contract.to_string(), &slot.to_string()])
                .parse()
                .expect("b256");
            let ours = B256::from(state.storage_at(contract, slot).expect("read"));
            assert_eq!(theirs, ours, "storage {slot} of {contract}");
        }
    }
}
