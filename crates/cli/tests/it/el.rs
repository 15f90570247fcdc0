//! `cobuild node --el-rpc` as an operator runs it: the real binary beside anvil (the execution
//! client), the project's mock consensus client announcing each slot through a strict relay
//! that checks bids on anvil's state. Every slot gets a bid with the bundle sent for it, and
//! anvil, mining the winning block's transactions, reaches the bid's roots.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use alloy_primitives::{Address, address};
use alloy_signer_local::PrivateKeySigner;
use cobuild_node::el::mock::MockConsensus;
use cobuild_registry::NodeKeys;
use cobuild_test_utils::{Anvil, flashbots_post};

use crate::{DEV0_KEY, cobuild_ok, tx_hash};

const PROPOSER: Address = address!("0x00000000000000000000000000000000000fee02");
/// Anvil's dev accounts 1 and 2 (mnemonic "test ... junk"), the searchers here.
const SEARCHERS: [&str; 2] = [
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
];
/// Room for the node to hear of a slot, read its parent, simulate, build and bid, on a 2-core
/// machine running other tests beside it.
const WINDOW: Duration = Duration::from_millis(2_500);

/// The running `cobuild node`, killed on drop.
struct Node {
    child: Child,
    rpc: String,
}

impl Node {
    /// Sends SIGINT and waits for the exit.
    fn interrupt(mut self) -> std::process::ExitStatus {
        crate::interrupt(&mut self.child)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `cast mktx`: a transfer of 1,000 wei by `key` paying 5 gwei per gas to the builder.
fn transfer(anvil: &Anvil, key: &str, nonce: u64) -> String {
    anvil
        .cast
        .ok(&[
            "mktx",
            "--private-key",
            key,
            "0x7777777777777777777777777777777777777777",
            "--value",
            "1000",
            "--nonce",
            &nonce.to_string(),
            "--gas-limit",
            "21000",
            "--gas-price",
            "100gwei",
            "--priority-gas-price",
            "5gwei",
        ])
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_cobuild_node_beside_an_execution_client_bids_every_slot_and_its_winners_replay_to_the_same_roots()
 {
    let anvil = Anvil::like_devnet(
        cobuild_primitives::DEVNET_CHAIN_ID,
        cobuild_primitives::DEFAULT_GAS_LIMIT,
        cobuild_primitives::INITIAL_BASE_FEE,
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = dir.path().join("node.key");
    let key_path = key_file.to_str().expect("utf-8 path");
    cobuild_ok(&["keys", "new", "--out", key_path]);
    let keys = NodeKeys::read(&key_file).expect("key file");

    // The operator funds the coinbase, which pays the proposer before the block's fees reach
    // it (and mining that block moves anvil past its genesis, whose header root is empty).
    let coinbase = keys.coinbase().address().to_string();
    let fund = anvil.cast.ok(&[
        "mktx",
        "--private-key",
        DEV0_KEY,
        &coinbase,
        "--value",
        "1ether",
        "--gas-price",
        "10gwei",
        "--priority-gas-price",
        "1gwei",
    ]);
    anvil.cast.ok(&["publish", "--async", fund.trim()]);
    anvil.cast.rpc("evm_mine", "[]");

    let mut mock = MockConsensus::start(
        &anvil.cast.url,
        vec![keys.builder().public_key()],
        PROPOSER,
        cobuild_primitives::DEFAULT_GAS_LIMIT,
        true,
    )
    .await
    .expect("mock consensus client and its strict relay");
    let relay = mock.relay_url().to_owned();
    let node = spawn_node(&anvil.cast.url, &relay, key_path, dir.path());

    let auth =
        PrivateKeySigner::from_bytes(&alloy_primitives::B256::repeat_byte(0xa2)).expect("key");
    for (slot, key) in SEARCHERS.iter().enumerate() {
        let raw = transfer(&anvil, key, 0);
        let head = mock.head().await.expect("head");
        send_bundle(&node.rpc, &auth, &raw, head.number + 1).await;
        let open = mock.open_slot(WINDOW).await.expect("opens");
        let outcome = mock.close_slot(&open).await.expect("closes");
        let winner = outcome
            .winner
            .as_ref()
            .unwrap_or_else(|| panic!("slot {slot}: the node's bid won"));
        let ours = winner.executed.header();
        assert_eq!(ours.parent_hash, open.parent.hash);
        assert_eq!(ours.beneficiary.to_string(), coinbase);
        let hash = tx_hash(&raw).parse().expect("hash");
        assert!(outcome.winner_holds(hash), "the bundle is in the block");
        assert_eq!(
            outcome.replay_differences(),
            Vec::<String>::new(),
            "slot {slot}"
        );
    }

    // Ctrl-C stops it cleanly (its execution client's runtime goes down from async code).
    let status = node.interrupt();
    assert!(status.success(), "clean exit on SIGINT: {status}");

    // Each slot's log line says where its time went and what it cost the execution client;
    // each bid's, how long posting it took.
    let log = read_log(dir.path());
    assert!(!log.contains('\u{1b}'), "a log file holds no colour codes");
    let built: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("el.slot.built"))
        .collect();
    assert!(
        built.len() >= SEARCHERS.len(),
        "a line per slot built:\n{log}"
    );
    for line in built {
        for figure in [
            "follow_ms",
            "read_ahead_ms",
            "sim_ms",
            "fill_ms",
            "seal_ms",
            "round_trips",
        ] {
            assert!(line.contains(figure), "{figure} in {line}");
        }
    }
    assert!(
        log.lines().any(|l| l.contains("bidder.slot")
            && l.contains("bids=")
            && l.contains("last_submit_us")),
        "a slot's bids are summed up with their submit times:\n{log}"
    );
}

/// The node's log in `data_dir`, oldest line first: the rotated files, then `node.log`. The
/// node rotates it past [`LOG_MAX_SIZE`], which a run of this test passes several times.
fn read_log(data_dir: &std::path::Path) -> String {
    let mut files = Vec::new();
    for n in (1..).map(|n| format!("node.log.{n}")) {
        match std::fs::read_to_string(data_dir.join(&n)) {
            Ok(text) => files.push(text),
            Err(_) => break,
        }
    }
    let current = std::fs::read_to_string(data_dir.join("node.log")).expect("the node's log");
    assert!(!files.is_empty(), "the log was rotated:\n{current}");
    files.reverse();
    files.push(current);
    for file in &files {
        // Whole lines, within the size unless one line alone is longer.
        assert!(
            file.len() <= LOG_MAX_BYTES || file.lines().count() == 1,
            "{} bytes",
            file.len()
        );
        assert!(file.is_empty() || file.ends_with('\n'));
    }
    files.concat()
}

/// Size the node keeps each log file within (`--log-max-size`), small to see it rotate.
const LOG_MAX_SIZE: &str = "512";
const LOG_MAX_BYTES: usize = 512;

/// Starts `cobuild node --el-rpc` beside `el` with `relay` as its beacon and relay, logging to
/// `node.log` in `data_dir` (anything else it prints to `node.out`), and waits for its banner.
fn spawn_node(el: &str, relay: &str, key_file: &str, data_dir: &std::path::Path) -> Node {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cobuild"))
        .args([
            "node",
            "--el-rpc",
            el,
            "--beacon",
            relay,
            "--relay",
            relay,
            "--key-file",
            key_file,
            "--http-port",
            "0",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--log-file")
        .arg(data_dir.join("node.log"))
        // Every rotated file is kept, for the test to read the whole log.
        .args(["--log-max-size", LOG_MAX_SIZE, "--log-keep", "1000"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(data_dir.join("node.out")).expect("output file"))
        .spawn()
        .expect("cobuild starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let rpc = lines
        .by_ref()
        .map(|line| line.expect("utf-8 banner"))
        .find_map(|line| line.trim().strip_prefix("rpc").map(|r| r.trim().to_owned()))
        .expect("the banner names the rpc url");
    std::thread::spawn(move || lines.for_each(drop));
    Node { child, rpc }
}

/// Sends `raw` as a bundle for block `number`, signed by `auth` as a searcher's client does.
async fn send_bundle(rpc: &str, auth: &PrivateKeySigner, raw: &str, number: u64) {
    let body = serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": "eth_sendBundle",
        "params": [{"txs": [raw], "blockNumber": format!("{number:#x}")}],
    })
    .to_string();
    let (rpc, auth) = (rpc.to_owned(), auth.clone());
    let (status, reply) =
        tokio::task::spawn_blocking(move || flashbots_post(&rpc, body.as_bytes(), &auth))
            .await
            .expect("task");
    assert_eq!(status, 200, "{reply}");
    assert!(reply.contains("bundleHash"), "{reply}");
}
