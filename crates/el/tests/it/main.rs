//! An execution client's state read over JSON-RPC (anvil here, as any client): what a
//! transaction does on it is what the client does when it mines the transaction, reads stay on
//! the block they are pinned to, a prefetch reads many keys in two round trips, and a block
//! built on it and sealed from its proofs has the roots the client computes for the same
//! transactions.

use std::sync::Arc;

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope, transaction::Recovered};
use alloy_eips::Encodable2718;
use alloy_evm::{Evm, EvmFactory, FromRecoveredTx, eth::EthEvmFactory};
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, address};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::SolCall;
use cobuild_chain::{
    BlockAttributes, BlockBuilder, NextBlock, StateSnapshot, dev_signers, next_evm_env,
};
use cobuild_contracts::{DemoDeployment, DemoParams, IPool, IToken};
use cobuild_el::ElClient;
use cobuild_primitives::{ChainSpec, DEFAULT_GAS_LIMIT, DEVNET_CHAIN_ID, INITIAL_BASE_FEE};
use cobuild_test_utils::Anvil;
use revm::{context::TxEnv, database::CacheDB, database_interface::DatabaseRef};
use serde_json::Value;

fn sign(
    signer: &PrivateKeySigner,
    nonce: u64,
    to: Address,
    input: Vec<u8>,
) -> Recovered<TxEnvelope> {
    let tx = TxEip1559 {
        chain_id: DEVNET_CHAIN_ID,
        nonce,
        gas_limit: 200_000,
        max_fee_per_gas: 100_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(to),
        value: U256::ZERO,
        access_list: Default::default(),
        input: Bytes::from(input),
    };
    let sig = signer.sign_hash_sync(&tx.signature_hash()).expect("sign");
    Recovered::new_unchecked(tx.into_signed(sig).into(), signer.address())
}

/// Sends `txs` to anvil and mines them.
fn publish(anvil: &Anvil, txs: &[Recovered<TxEnvelope>]) {
    send_pending(anvil, txs);
    anvil.cast.rpc("evm_mine", "[]");
}

/// Sends `txs` to anvil's pool (`cast publish`), without mining them.
fn send_pending(anvil: &Anvil, txs: &[Recovered<TxEnvelope>]) {
    for tx in txs {
        let raw = alloy_primitives::hex::encode_prefixed(tx.inner().encoded_2718());
        anvil.cast.ok(&["publish", "--async", &raw]);
    }
}

fn latest(anvil: &Anvil) -> alloy_rpc_types_eth::Block {
    serde_json::from_str(&anvil.cast.ok(&["block", "latest", "--json"])).expect("block json")
}

/// Anvil with the devnet's chain id, gas limit and base fee, mining only when told, in the
/// order transactions arrive.
fn start_anvil() -> Anvil {
    Anvil::like_devnet(DEVNET_CHAIN_ID, DEFAULT_GAS_LIMIT, INITIAL_BASE_FEE)
}

/// `amount` of `token` swapped on `pool`, whatever comes out.
fn swap(
    signer: &PrivateKeySigner,
    nonce: u64,
    pool: Address,
    token: Address,
    amount: U256,
) -> Recovered<TxEnvelope> {
    let call = IPool::swapCall {
        tokenIn: token,
        amountIn: amount,
        minAmountOut: U256::ZERO,
    };
    sign(signer, nonce, pool, call.abi_encode())
}

/// The devnet's demo tokens and pool, deployed by `owner` from its first nonce.
fn demo(owner: &PrivateKeySigner) -> DemoDeployment {
    DemoDeployment::new(
        owner,
        DemoParams {
            chain_id: DEVNET_CHAIN_ID,
            nonce: 0,
            max_fee_per_gas: 100_000_000_000,
            supply: DemoParams::DEVNET_SUPPLY,
        },
    )
}

/// Has anvil mine the next block with `coinbase`, `timestamp` and `base_fee`.
fn next_block_env(anvil: &Anvil, coinbase: Address, timestamp: u64, base_fee: u64) {
    anvil
        .cast
        .rpc("anvil_setCoinbase", &format!("[\"{coinbase}\"]"));
    anvil
        .cast
        .rpc("evm_setNextBlockTimestamp", &format!("[{timestamp}]"));
    anvil.cast.rpc(
        "anvil_setNextBlockBaseFeePerGas",
        &format!("[\"{base_fee:#x}\"]"),
    );
}

#[test]
fn test_a_transaction_on_the_clients_state_does_what_the_client_mines_and_reads_stay_pinned() {
    let anvil = start_anvil();
    let signers = dev_signers();
    let unit = U256::from(10u64).pow(U256::from(18));
    let demo = demo(&signers[9]);
    let (token, pool) = (demo.token_a, demo.pool);
    let trader = &signers[9];
    let nonce = demo.transactions.len() as u64;
    publish(&anvil, &demo.transactions);

    let el = ElClient::connect(&anvil.cast.url).expect("connects");
    let head = el.head().expect("head");
    let parent = latest(&anvil);
    assert_eq!(
        (head.number, head.hash),
        (parent.header.number, parent.header.hash)
    );
    let before =
        StateSnapshot::from_source(Arc::new(el.state_at(head.hash, head.number)), head.number);

    // Reads agree with the client's own answers.
    let account = before
        .basic_ref(trader.address())
        .expect("reads")
        .expect("exists");
    assert_eq!(account.nonce, nonce);
    assert_eq!(
        account.balance,
        anvil
            .cast
            .ok(&["balance", &trader.address().to_string()])
            .parse::<U256>()
            .expect("wei")
    );
    assert_eq!(
        before
            .basic_ref(address!("0x00000000000000000000000000000000000dead1"))
            .expect("reads"),
        None
    );
    let pool_account = before.basic_ref(pool).expect("reads").expect("deployed");
    assert!(
        pool_account.code.as_ref().is_some_and(|c| !c.is_empty()),
        "contracts come with their code"
    );

    // A swap, executed here with revm on the client's state for the next block ...
    let coinbase = address!("0x00000000000000000000000000000000000c0b11");
    let spec = ChainSpec::devnet(DEVNET_CHAIN_ID);
    let next_base_fee = parent
        .header
        .next_block_base_fee(spec.base_fee_params())
        .expect("base fee");
    let timestamp = parent.header.timestamp + 12;
    let env = next_evm_env(
        &spec,
        &parent.header.inner,
        NextBlock {
            number: head.number + 1,
            timestamp,
            beneficiary: coinbase,
            gas_limit: parent.header.gas_limit,
            base_fee: next_base_fee,
            prev_randao: B256::ZERO,
        },
    );
    let swap = swap(trader, nonce, pool, token, unit * U256::from(10));
    let mut evm = EthEvmFactory::default().create_evm(CacheDB::new(&before), env.clone());
    let ours = evm
        .transact(TxEnv::from_recovered_tx(swap.inner(), trader.address()))
        .expect("executes");
    assert!(ours.result.is_success(), "{:?}", ours.result);

    // ... and mined by the client in the same block environment.
    next_block_env(&anvil, coinbase, timestamp, next_base_fee);
    publish(&anvil, std::slice::from_ref(&swap));
    let receipt: Value =
        serde_json::from_str(
            &anvil
                .cast
                .ok(&["receipt", &swap.tx_hash().to_string(), "--json"]),
        )
        .expect("receipt");
    let gas_used = u64::from_str_radix(
        receipt["gasUsed"]
            .as_str()
            .expect("gas")
            .trim_start_matches("0x"),
        16,
    )
    .expect("hex");
    assert_eq!(
        ours.result.tx_gas_used(),
        gas_used,
        "gas used as the client's"
    );
    assert_eq!(
        receipt["logs"].as_array().expect("logs").len(),
        ours.result.logs().len()
    );

    // Every storage slot the swap wrote holds, at the client's new head, what revm computed.
    let mined = el.head().expect("head");
    assert_eq!(mined.number, head.number + 1);
    let after = StateSnapshot::from_source(
        Arc::new(el.state_at(mined.hash, mined.number)),
        mined.number,
    );
    let mut slots = 0;
    for (address, account) in &ours.state {
        for (slot, value) in &account.storage {
            if value.is_changed() {
                assert_eq!(
                    after.storage_ref(*address, *slot).expect("reads"),
                    value.present_value,
                    "{address} slot {slot}"
                );
                slots += 1;
            }
        }
    }
    assert!(
        slots >= 4,
        "token balances and pool reserves moved: {slots} slots"
    );

    // The first snapshot stays on its block: the trader's nonce there is the old one.
    let pinned = el.state_at(head.hash, head.number);
    let again = StateSnapshot::from_source(Arc::new(pinned), head.number);
    assert_eq!(
        again
            .basic_ref(trader.address())
            .expect("reads")
            .expect("exists")
            .nonce,
        nonce
    );
    assert_eq!(
        after
            .basic_ref(trader.address())
            .expect("reads")
            .expect("exists")
            .nonce,
        nonce + 1
    );

    // Read ahead: accounts (one of them a contract whose code is new to the client) and slots
    // in two round trips (the reads, then the new code), after which reading them costs none.
    let fresh = ElClient::connect(&anvil.cast.url).expect("connects");
    let ahead = StateSnapshot::from_source(
        Arc::new(fresh.state_at(mined.hash, mined.number)),
        mined.number,
    );
    let accounts: Vec<Address> = signers
        .iter()
        .take(4)
        .map(|s| s.address())
        .chain([token, pool])
        .collect();
    let keys: Vec<(Address, U256)> = ours
        .state
        .iter()
        .flat_map(|(a, acc)| acc.storage.keys().map(|s| (*a, *s)))
        .collect();
    ahead.prefetch(&accounts, &keys).expect("prefetches");
    assert_eq!(
        fresh.round_trips(),
        2,
        "one batch of reads, one of new code"
    );
    for address in &accounts {
        assert_eq!(
            ahead.basic_ref(*address).expect("reads"),
            after.basic_ref(*address).expect("reads")
        );
    }
    for (address, slot) in &keys {
        assert_eq!(
            ahead.storage_ref(*address, *slot).expect("reads"),
            after.storage_ref(*address, *slot).expect("reads")
        );
    }
    assert_eq!(
        fresh.round_trips(),
        2,
        "everything read ahead is answered from the snapshot"
    );
    ahead.prefetch(&accounts, &keys).expect("prefetches");
    assert_eq!(fresh.round_trips(), 2, "what was read is not read again");

    // What a transaction will touch, from the client (one batch of eth_createAccessList),
    // read ahead (two more): executing it then reads nothing more.
    let third = ElClient::connect(&anvil.cast.url).expect("connects");
    let source = Arc::new(third.state_at(head.hash, head.number));
    let touched = source
        .touched_by([&swap])
        .expect("the client lists what it touches");
    assert_eq!(third.round_trips(), 1);
    assert!(touched.accounts.contains(&pool) && touched.accounts.contains(&token));
    assert!(
        touched.slots.len() >= 4,
        "balances and reserves: {touched:?}"
    );
    let primed = StateSnapshot::from_source(source, head.number);
    let accounts: Vec<Address> = touched.accounts.iter().copied().chain([coinbase]).collect();
    let slots: Vec<(Address, U256)> = touched.slots.iter().copied().collect();
    primed.prefetch(&accounts, &slots).expect("prefetches");
    let before_execution = third.round_trips();
    assert!(before_execution <= 3, "{before_execution} round trips");
    let mut evm = EthEvmFactory::default().create_evm(CacheDB::new(&primed), env.clone());
    let again = evm
        .transact(TxEnv::from_recovered_tx(swap.inner(), trader.address()))
        .expect("executes");
    assert_eq!(again.result, ours.result, "the same execution");
    assert_eq!(
        third.round_trips(),
        before_execution,
        "everything it read was read ahead"
    );

    // A block the client does not have is an error, not a panic or a zero.
    let unknown = StateSnapshot::from_source(Arc::new(el.state_at(B256::repeat_byte(7), 9)), 9);
    let error = unknown
        .basic_ref(trader.address())
        .expect_err("no such block");
    assert!(
        matches!(error, cobuild_chain::StateError::Source(_)),
        "{error}"
    );

    // Order validation reads from an RPC handler, inside an async runtime: the read still
    // reaches the client and gives the pinned answer.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let inside = runtime
        .block_on(async { after.basic_ref(trader.address()) })
        .expect("read inside a runtime")
        .expect("account");
    assert_eq!(
        inside.nonce,
        after
            .basic_ref(trader.address())
            .expect("read")
            .expect("account")
            .nonce
    );
}

#[test]
fn test_a_block_sealed_from_the_clients_proofs_has_the_roots_the_client_mines() {
    let anvil = start_anvil();
    let signers = dev_signers();
    let unit = U256::from(10u64).pow(U256::from(18));
    let owner = &signers[9];
    let demo = demo(owner);
    let (token, pool) = (demo.token_a, demo.pool);
    publish(&anvil, &demo.transactions);
    // Two holders who pass on part of what they hold: their slots change, the receivers' are
    // new or change. (A slot emptied would be deleted from the trie, as the protocol has it,
    // but anvil keeps emptied slots as leaves of value zero (foundry-rs/foundry#15934 fixed
    // that for `eth_simulateV1` only), so its roots would differ there; the chain crate's
    // tests check deletions against the full rebuild instead.)
    let amount = unit * U256::from(5);
    let mut owner_nonce = demo.transactions.len() as u64;
    let gifts: Vec<_> = [1, 2]
        .iter()
        .map(|i: &usize| {
            owner_nonce += 1;
            sign(
                owner,
                owner_nonce - 1,
                token,
                IToken::transferCall {
                    to: signers[*i].address(),
                    value: amount,
                }
                .abi_encode(),
            )
        })
        .collect();
    publish(&anvil, &gifts);

    let parent = latest(&anvil);
    let el = ElClient::connect(&anvil.cast.url).expect("connects");
    let state = el.state_at(parent.header.hash, parent.header.number);
    let snapshot = StateSnapshot::from_source(Arc::new(state), parent.header.number);
    let spec = Arc::new(ChainSpec::devnet(DEVNET_CHAIN_ID));
    let coinbase = address!("0x00000000000000000000000000000000000c0b12");
    let base_fee = parent
        .header
        .next_block_base_fee(spec.base_fee_params())
        .expect("base fee");
    let attrs = BlockAttributes {
        timestamp: parent.header.timestamp + 12,
        fee_recipient: coinbase,
        prev_randao: B256::ZERO,
        gas_limit: parent.header.gas_limit,
        withdrawals: Vec::new(),
        // What anvil puts in its headers; it has no EIP-4788 contract to store it in.
        parent_beacon_block_root: B256::ZERO,
        extra_data: Bytes::new(),
    };
    let sealed_parent = Arc::new(alloy_consensus::Sealed::new_unchecked(
        parent.header.inner.clone(),
        parent.header.hash,
    ));
    let fresh = address!("0x000000000000000000000000000000000000beef");
    let transfer = |from: usize, nonce: u64, to: Address| {
        sign(
            &signers[from],
            nonce,
            token,
            IToken::transferCall {
                to,
                value: amount / U256::from(2),
            }
            .abi_encode(),
        )
    };
    let txs = vec![
        transfer(1, 0, signers[3].address()),
        transfer(2, 0, owner.address()),
        swap(owner, owner_nonce, pool, token, unit * U256::from(10)),
        // Plain value to an account that does not exist yet.
        {
            let tx = TxEip1559 {
                chain_id: DEVNET_CHAIN_ID,
                nonce: 0,
                gas_limit: 21_000,
                max_fee_per_gas: 100_000_000_000,
                max_priority_fee_per_gas: 1_000_000_000,
                to: TxKind::Call(fresh),
                value: unit,
                access_list: Default::default(),
                input: Bytes::new(),
            };
            let sig = signers[4]
                .sign_hash_sync(&tx.signature_hash())
                .expect("sign");
            Recovered::new_unchecked(tx.into_signed(sig).into(), signers[4].address())
        },
    ];
    let build = |txs: &[Recovered<TxEnvelope>]| {
        let mut builder = BlockBuilder::new(
            spec.clone(),
            sealed_parent.clone(),
            snapshot.clone(),
            attrs.clone(),
        )
        .expect("attributes hold");
        for tx in txs {
            let outcome = builder
                .execute(tx.clone())
                .expect("executes")
                .expect("valid");
            assert!(outcome.success, "{}", tx.tx_hash());
        }
        let before = el.round_trips();
        let block = builder.finish().expect("seals from proofs");
        (block, el.round_trips() - before)
    };
    // An earlier candidate of the slot, then the whole block: the second fetches only the
    // proofs of keys the first did not change, in one batch.
    let (_, first_seal) = build(&txs[..2]);
    let (ours, second_seal) = build(&txs);
    assert!(
        first_seal >= 2,
        "the parent's root, then one batch of proofs"
    );
    assert_eq!(second_seal, 1, "one batch for what the first left unproved");
    let before = el.round_trips();
    let (again, seal) = build(&txs);
    assert_eq!(
        (el.round_trips() - before, seal),
        (0, 0),
        "a block whose keys are all read and proved fetches nothing"
    );
    assert_eq!(again.block.hash, ours.block.hash);

    // The client mines the same transactions in the same environment.
    next_block_env(&anvil, coinbase, attrs.timestamp, base_fee);
    publish(&anvil, &txs);
    let mined = latest(&anvil);
    assert_eq!(mined.header.number, parent.header.number + 1);
    let (ours, theirs) = (&ours.block.block.header, &mined.header.inner);
    assert_eq!(ours.state_root, theirs.state_root, "state root");
    assert_eq!(ours.transactions_root, theirs.transactions_root);
    assert_eq!(ours.receipts_root, theirs.receipts_root);
    assert_eq!(ours.logs_bloom, theirs.logs_bloom);
    assert_eq!(ours.gas_used, theirs.gas_used);
    assert_eq!(ours.withdrawals_root, theirs.withdrawals_root);
    assert_eq!(ours.requests_hash, theirs.requests_hash);
}

#[test]
fn test_the_client_is_reached_over_ws_and_ipc_as_over_http() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("anvil.ipc");
    let socket = socket.to_str().expect("utf-8 path");
    let anvil = Anvil::start(&["--ipc", socket]);
    // The HTTP port answering is anvil's readiness; its socket is made at the same start.
    while !std::path::Path::new(socket).exists() {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let http = ElClient::connect(&anvil.cast.url).expect("http");
    let ws = ElClient::connect(&anvil.cast.url.replace("http://", "ws://")).expect("ws");
    let ipc = ElClient::connect(socket).expect("ipc");
    let accounts: Vec<Address> = dev_signers().iter().map(|s| s.address()).collect();
    let read = |client: &ElClient| {
        let head = client.head().expect("head");
        let state = StateSnapshot::from_source(
            Arc::new(client.state_at(head.hash, head.number)),
            head.number,
        );
        // One batch for all of them, then reads from what it brought.
        state.prefetch(&accounts, &[]).expect("prefetch");
        let balances: Vec<U256> = accounts
            .iter()
            .map(|a| state.basic_ref(*a).expect("read").expect("account").balance)
            .collect();
        (client.chain_id().expect("chain id"), head, balances)
    };
    let over_http = read(&http);
    assert_eq!(read(&ws), over_http, "ws");
    assert_eq!(read(&ipc), over_http, "ipc");

    // Anything else is refused by name.
    let refused = ElClient::connect("ftp://127.0.0.1:1").expect_err("no such transport");
    assert!(
        refused.to_string().contains("ftp://127.0.0.1:1"),
        "{refused}"
    );
}

#[test]
fn test_the_followed_head_reads_ahead_what_waiting_orders_touch_once_per_parent() {
    use cobuild_chain::HeadSource;
    use cobuild_el::ElChain;

    let anvil = start_anvil();
    anvil.cast.rpc("evm_mine", "[]");
    let chain = ElChain::connect(ElClient::connect(&anvil.cast.url).expect("connects"))
        .expect("follows the head");
    let sender = &dev_signers()[3];
    let fresh = address!("0x000000000000000000000000000000000000be02");
    let order = sign(sender, 0, fresh, Vec::new());
    let keys = chain.read_ahead([&order]).expect("reads ahead");
    assert!(keys >= 2, "the sender and the recipient at least");

    // The slot's simulation then finds them at hand: no round trip.
    let (_, state) = chain.head_state().expect("head state");
    let before = chain.client().round_trips();
    let account = state
        .basic_ref(sender.address())
        .expect("read")
        .expect("funded");
    assert_eq!(account.nonce, 0);
    assert!(state.basic_ref(fresh).expect("read").is_none());
    assert_eq!(chain.client().round_trips(), before, "read ahead");

    // A new parent is a new state: what was read for the old one does not carry over.
    anvil.cast.rpc("evm_mine", "[]");
    let head = chain.client().head().expect("head");
    let followed = chain.follow(head.hash).expect("follows");
    assert!(followed.moved);
    let before = chain.client().round_trips();
    followed.state.basic_ref(sender.address()).expect("read");
    assert!(
        chain.client().round_trips() > before,
        "read from the new parent"
    );
}

#[tokio::test]
async fn test_a_client_dropped_in_async_code_goes_quietly() {
    // A node drops its client when it stops, from async code; dropping the client's runtime
    // the usual way there panics ("cannot drop a runtime in a context where blocking is not
    // allowed").
    let client = ElClient::connect("http://127.0.0.1:1").expect("http connects lazily");
    let clone = client.clone();
    drop(client);
    drop(clone);
}

#[test]
fn test_pending_transactions_stream_over_ws_and_are_read_whole_over_http() {
    let anvil = Anvil::like_devnet(DEVNET_CHAIN_ID, DEFAULT_GAS_LIMIT, INITIAL_BASE_FEE);
    let http = ElClient::connect(&anvil.cast.url).expect("http");
    assert!(
        http.subscribe_pending().expect("no subscription").is_none(),
        "HTTP has no subscriptions"
    );
    let ws = ElClient::connect(&anvil.cast.url.replace("http://", "ws://")).expect("ws");
    let mut stream = ws
        .subscribe_pending()
        .expect("anvil takes the subscription")
        .expect("WS has subscriptions");

    let signers = dev_signers();
    let txs: Vec<_> = (0..3)
        .map(|i| sign(&signers[i], 0, Address::repeat_byte(0x55), Vec::new()))
        .collect();
    // Sent, not mined: they stay pending.
    send_pending(&anvil, &txs);
    let heard = hear(&mut stream, txs.len());
    let sent: Vec<B256> = txs.iter().map(|tx| *tx.inner().tx_hash()).collect();
    assert_eq!(heard, sent, "each once, in the order sent");

    // Over HTTP the same pool is read whole.
    let mut whole: Vec<B256> = http
        .pending_transactions()
        .expect("txpool_content")
        .iter()
        .map(|tx| *tx.tx_hash())
        .collect();
    whole.sort();
    let mut sent = sent;
    sent.sort();
    assert_eq!(whole, sent);
}

#[test]
fn test_a_ws_client_reads_and_streams_again_after_its_execution_client_restarts() {
    let mut anvil = Anvil::like_devnet(DEVNET_CHAIN_ID, DEFAULT_GAS_LIMIT, INITIAL_BASE_FEE);
    anvil.cast.rpc("evm_mine", "[]");
    let ws = ElClient::connect(&anvil.cast.url.replace("http://", "ws://")).expect("ws");
    let mut stream = ws
        .subscribe_pending()
        .expect("anvil takes the subscription")
        .expect("WS has subscriptions");
    assert_eq!(ws.head().expect("head").number, 1);

    // The restarted client starts from genesis: a read that answers block 0 went to it, over a
    // connection the client made again by itself.
    anvil.restart();
    assert_eq!(ws.head().expect("a read after the restart").number, 0);

    // The subscription was made again on the new connection: a transaction sent to the
    // restarted client is heard.
    let tx = sign(&dev_signers()[0], 0, Address::repeat_byte(0x55), Vec::new());
    send_pending(&anvil, std::slice::from_ref(&tx));
    assert_eq!(hear(&mut stream, 1), vec![*tx.inner().tx_hash()]);
}

/// The hashes of the next `count` pending transactions `stream` tells of, in order (each batch
/// waited for at most 10 s).
fn hear(stream: &mut cobuild_el::PendingStream, count: usize) -> Vec<B256> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let mut heard = Vec::new();
    while heard.len() < count {
        let batch = runtime
            .block_on(async {
                tokio::time::timeout(std::time::Duration::from_secs(10), stream.next_batch(16))
                    .await
            })
            .expect("the client tells of each pending transaction");
        match batch {
            cobuild_el::PendingBatch::Txs(got) => heard.extend(got.iter().map(|tx| *tx.tx_hash())),
            other => panic!("{other:?}"),
        }
    }
    heard
}
