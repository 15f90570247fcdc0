//! Real-chain mode on loopback: anvil is the execution client, the mock consensus client opens
//! slots on anvil's head through a strict relay that checks bids on anvil's state, and an
//! [`ElNode`] takes a bundle over its RPC and bids for each registered slot. Every winning
//! block is mined again by anvil from its transactions, and anvil's roots must be the bid's.

use std::{net::SocketAddr, time::Duration};

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, address};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use cobuild_chain::dev_signers;
use cobuild_node::{
    LogLimits, OrderflowConfig, OrderflowLimits,
    el::{
        ElNode, ElNodeConfig,
        mock::{MockConsensus, OpenSlot, SlotOutcome},
    },
};
use cobuild_primitives::{DEFAULT_GAS_LIMIT, DEVNET_CHAIN_ID, INITIAL_BASE_FEE};
use cobuild_relay::{BuilderKey, client::Config as RelayConfig};
use cobuild_test_utils::{Anvil, flashbots_post};

const GWEI: u128 = 1_000_000_000;
/// How long each slot takes bids: room for the node to hear of it, read the parent, simulate,
/// build and bid on a 2-core machine running tests beside it.
const WINDOW: Duration = Duration::from_millis(2_500);
const PROPOSER: Address = address!("0x00000000000000000000000000000000000fee01");

/// Anvil, the relay and mock consensus client beside it, and a node bidding to that relay.
struct Setup {
    anvil: Anvil,
    mock: MockConsensus,
    node_rpc: SocketAddr,
    orderflow: cobuild_node::Orderflow,
    coinbase: Address,
    auth: PrivateKeySigner,
}

async fn setup() -> Setup {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let anvil = Anvil::like_devnet(DEVNET_CHAIN_ID, DEFAULT_GAS_LIMIT, INITIAL_BASE_FEE);
    let url = anvil.cast.url.clone();
    let bls = BuilderKey::from_seed(b"el node test builder");
    let mock = MockConsensus::start(
        &url,
        vec![bls.public_key()],
        PROPOSER,
        DEFAULT_GAS_LIMIT,
        true,
    )
    .await
    .expect("mock consensus client and its relay");
    let relay_url = mock.relay_url().to_owned();
    let node = ElNode::start(ElNodeConfig {
        // Over WS, so the public mempool streams in (`cobuild node`'s own test reads over HTTP).
        el_rpc: url.replace("http://", "ws://"),
        beacons: vec![relay_url.clone()],
        // Optimistic, so every bid is also re-executed on the node's side before it goes.
        relays: vec![RelayConfig {
            optimistic: true,
            ..RelayConfig::new(relay_url)
        }],
        // A funded account, as an operator's is: anvil takes a transaction into its pool (to
        // mine the winner again) only if its sender can pay at the parent, and the proposer
        // payment is sent before the block's fees reach the coinbase.
        coinbase: dev_signers()[8].clone(),
        bls,
        // The consensus client gives it.
        genesis_fork_version: None,
        orderflow: OrderflowConfig {
            http_addr: "127.0.0.1:0".parse().expect("addr"),
            limits: OrderflowLimits::default(),
            max_orders: 1_000,
            bundle_horizon: 64,
            log_limits: LogLimits::default(),
            history_blocks: None,
            proof_window: cobuild_node::DEFAULT_PROOF_WINDOW,
        },
        bid_percent: 90,
        extra_data: Bytes::from_static(b"cobuild el test"),
        round_interval: Duration::from_millis(20),
        head_poll: Duration::from_millis(50),
    })
    .await
    .expect("node starts");
    let node_rpc = node.rpc_addr();
    let coinbase = node.coinbase();
    let orderflow = node.orderflow.clone();
    tokio::spawn(node.run(std::future::pending()));
    Setup {
        anvil,
        mock,
        node_rpc,
        orderflow,
        coinbase,
        auth: PrivateKeySigner::from_bytes(&B256::repeat_byte(0xa1)).expect("key"),
    }
}

/// A transfer by dev account `account` paying `tip_gwei` per gas to the block's builder.
fn transfer(account: usize, nonce: u64, tip_gwei: u128) -> TxEnvelope {
    let signer = &dev_signers()[account];
    let tx = TxEip1559 {
        chain_id: DEVNET_CHAIN_ID,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 100 * GWEI,
        max_priority_fee_per_gas: tip_gwei * GWEI,
        to: TxKind::Call(Address::repeat_byte(0x77)),
        value: U256::from(1_000),
        access_list: Default::default(),
        input: Bytes::new(),
    };
    let signature = signer.sign_hash_sync(&tx.signature_hash()).expect("sign");
    tx.into_signed(signature).into()
}

impl Setup {
    /// Sends `txs` as a bundle for block `number` to the node, as a searcher would.
    async fn send_bundle(&self, txs: &[TxEnvelope], number: u64) {
        let raw: Vec<Bytes> = txs.iter().map(|tx| tx.encoded_2718().into()).collect();
        let reply = self
            .call(
                "eth_sendBundle",
                serde_json::json!({"txs": raw, "blockNumber": format!("{number:#x}")}),
            )
            .await;
        assert!(reply.contains("bundleHash"), "{reply}");
    }

    /// Calls the node's `method` with `params`, signed as a searcher's client signs.
    async fn call(&self, method: &str, params: serde_json::Value) -> String {
        let body = serde_json::json!({
            "jsonrpc": "2.0", "id": 1, "method": method, "params": [params],
        })
        .to_string();
        let (url, auth) = (format!("http://{}", self.node_rpc), self.auth.clone());
        let (status, reply) =
            tokio::task::spawn_blocking(move || flashbots_post(&url, body.as_bytes(), &auth))
                .await
                .expect("task");
        assert_eq!(status, 200, "{reply}");
        reply
    }
}

/// The winner of `outcome` holds `tx` and builds on `open`'s parent, and anvil mined the same
/// roots from its transactions.
fn assert_won_and_replayed(open: &OpenSlot, outcome: &SlotOutcome, tx: &TxEnvelope) {
    let winner = outcome
        .winner
        .as_ref()
        .expect("the node's bid won the slot");
    assert_eq!(
        winner.executed.header().parent_hash,
        open.parent.hash,
        "built on the slot's parent"
    );
    assert!(
        outcome.winner_holds(*tx.tx_hash()),
        "the bundle is in the block"
    );
    assert_eq!(outcome.replay_differences(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_a_node_beside_an_execution_client_bids_registered_slots_and_rebuilds_after_a_reorg() {
    let mut setup = setup().await;

    // No proposer registration: the node builds nothing and the relay hears no bid, though
    // an order waits. (This first slot also moves anvil past its genesis block, whose header
    // carries the empty root whatever anvil's genesis state holds: no block built on it can
    // match anvil's roots.)
    let head = setup.mock.head().await.expect("head");
    setup
        .send_bundle(&[transfer(2, 0, 5)], head.number + 1)
        .await;
    setup.mock.relay().set_registered(false);
    let before = setup.mock.relay().stats();
    let open = setup.mock.open_slot(WINDOW).await.expect("opens");
    let unregistered = setup.mock.close_slot(&open).await.expect("closes");
    assert!(
        unregistered.winner.is_none(),
        "no bid for an unregistered slot"
    );
    assert_eq!(setup.mock.relay().stats(), before);
    setup.mock.relay().set_registered(true);

    // A bundle for the next block wins the slot; anvil mines it to the same roots.
    let first = transfer(1, 0, 5);
    setup
        .send_bundle(std::slice::from_ref(&first), unregistered.mined.number + 1)
        .await;
    let open = setup.mock.open_slot(WINDOW).await.expect("opens");
    let outcome = setup.mock.close_slot(&open).await.expect("closes");
    assert_won_and_replayed(&open, &outcome, &first);
    assert_eq!(
        outcome
            .winner
            .as_ref()
            .map(|w| w.executed.header().beneficiary),
        Some(setup.coinbase),
        "the node's coinbase, which pays the proposer"
    );

    // The next proposer misses its slot; then a bid on the slot's parent (two slots old), and
    // the parent is reorged away (mined again with another transaction): the node drops that
    // block and bids on the new parent, which the slot's winner builds on.
    setup.mock.miss_slot();
    let third = transfer(3, 0, 5);
    setup
        .send_bundle(std::slice::from_ref(&third), outcome.mined.number + 1)
        .await;
    let mut accepted = setup.mock.relay().accepted_bids();
    let open = setup.mock.open_slot(WINDOW).await.expect("opens");
    let first_bid = loop {
        let bid = accepted.recv().await.expect("the relay's feed");
        if bid.slot == open.slot {
            break bid;
        }
    };
    let reopened = setup
        .mock
        .reorg(&open, 1, &[transfer(4, 0, 1).encoded_2718().into()], WINDOW)
        .await
        .expect("reorg and reopen");
    assert_ne!(reopened.parent.hash, open.parent.hash, "the parent changed");
    assert_eq!(reopened.parent.number, open.parent.number);
    let outcome = setup.mock.close_slot(&reopened).await.expect("closes");
    assert_won_and_replayed(&reopened, &outcome, &third);
    assert_ne!(
        outcome.winner.as_ref().map(|w| w.trace.block_hash),
        Some(first_bid.block_hash),
        "the bid on the old parent is not the winner"
    );

    // Between slots the node follows the execution client's head: a block mined elsewhere
    // that uses a waiting private transaction's nonce takes it out of the pool.
    let waiting = transfer(5, 0, 3);
    let reply = setup
        .call(
            "eth_sendPrivateTransaction",
            serde_json::json!({"tx": Bytes::from(waiting.encoded_2718())}),
        )
        .await;
    assert!(reply.contains(&format!("{}", waiting.tx_hash())), "{reply}");
    assert_eq!(setup.orderflow.pool.len(), 1);
    let elsewhere = transfer(5, 0, 9);
    let raw = alloy_primitives::hex::encode_prefixed(elsewhere.encoded_2718());
    setup.anvil.cast.ok(&["publish", "--async", &raw]);
    setup.anvil.cast.rpc("evm_mine", "[]");
    let dropped = tokio::time::timeout(Duration::from_secs(10), async {
        // The node polls its head every 50 ms; the pool has no event of its own to await.
        while !setup.orderflow.pool.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(dropped.is_ok(), "the pool followed the new head");

    // The execution client's public mempool is orderflow too: a transaction sent to anvil
    // alone reaches the node's pool, and the next slot's winning block carries it.
    let public = transfer(6, 0, 4);
    let raw = alloy_primitives::hex::encode_prefixed(public.encoded_2718());
    setup.anvil.cast.ok(&["publish", "--async", &raw]);
    let taken = tokio::time::timeout(Duration::from_secs(10), async {
        // Streamed to the node's pool, which has no event of its own to await.
        while setup.orderflow.pool.get(public.tx_hash()).is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(taken.is_ok(), "the node took anvil's pending transaction");
    let open = setup.mock.open_slot(WINDOW).await.expect("opens");
    let outcome = setup.mock.close_slot(&open).await.expect("closes");
    assert_won_and_replayed(&open, &outcome, &public);
}
