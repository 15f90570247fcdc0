//! `cobuild devnet --nodes 2`: member nodes in their own processes build and bid to the hub's
//! relay; a node killed with SIGKILL leaves the other bidding, and restarted from the command
//! line recorded in endpoints.json it catches up with the hub.

use std::{
    fs::File,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use cobuild_test_utils::{Cast, http_get};
use serde_json::Value;

use super::{DEAD, Devnet, TxSpec};

/// Dev account 1: the tests' sender here (account 0 is left to the other tests' habits).
const DEV1_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

/// A process killed on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `check` until it returns something or `within` passed.
fn eventually<T>(what: &str, within: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn head(cast: &Cast) -> Option<u64> {
    cast.run(&["block-number"]).ok()?.parse().ok()
}

/// Sends a transfer from dev account 1 with `nonce` to `node`, and returns the hub block that
/// included it (as `cast block --json` prints it).
fn lands_via(hub: &Devnet, node: &Cast, nonce: u64) -> Value {
    let raw = hub.signed_tx(
        DEV1_KEY,
        TxSpec {
            nonce,
            ..TxSpec::default()
        },
    );
    node.ok(&["publish", &raw]);
    let hash = super::tx_hash(&raw);
    let number = eventually(
        "the transaction to land on the hub",
        Duration::from_secs(60),
        || {
            let receipt: Value =
                serde_json::from_str(&hub.cast(&["receipt", &hash, "--json"]).ok()?).ok()?;
            receipt["blockNumber"].as_str().map(str::to_owned)
        },
    );
    serde_json::from_str(&hub.cast(&["block", &number, "--json"]).expect("block")).expect("json")
}

#[test]
fn test_two_node_devnet_bids_through_members_and_a_killed_node_catches_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = File::create(dir.path().join("hub.log")).expect("hub log");
    let hub = Devnet::spawn(
        dir.path(),
        &["--nodes", "2", "--slot-ms", "500", "--no-demo-contracts"],
        Stdio::from(log),
    );
    // The banner comes after endpoints.json is written.
    let endpoints: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("endpoints.json")).expect("endpoints.json"),
    )
    .expect("json");
    assert_eq!(endpoints["hub"]["rpc"], hub.url.as_str());
    assert_eq!(endpoints["hub"]["relay"], hub.relay.as_str());
    let node = |i: usize| &endpoints["nodes"][i];
    let cast = |i: usize| Cast {
        url: node(i)["rpc"].as_str().expect("rpc url").to_owned(),
    };

    // Node 0 alone gets the transaction (no replication yet): only its bid can carry it.
    let block = lands_via(&hub, &cast(0), 0);
    let coinbase0 = node(0)["coinbase"]
        .as_str()
        .expect("coinbase")
        .to_lowercase();
    assert_eq!(
        block["miner"].as_str().map(str::to_lowercase),
        Some(coinbase0.clone())
    );
    let extra = format!("0x{}", alloy_primitives::hex::encode(b"cobuild node 0"));
    assert_eq!(block["extraData"], extra.as_str());
    let (status, received) = http_get(
        &hub.relay,
        "/relay/v1/data/bidtraces/builder_blocks_received",
    );
    assert_eq!(status, 200, "{received}");
    let received: Value = serde_json::from_str(&received).expect("json");
    let bls0 = node(0)["bls_key"].as_str().expect("bls key");
    assert!(
        received
            .as_array()
            .expect("list")
            .iter()
            .any(|bid| bid["block_hash"] == block["hash"] && bid["builder_pubkey"] == bls0),
        "the relay took node 0's bid for the block: {received}"
    );

    // kill -9 node 1: node 0 keeps bidding and winning.
    let pid = node(1)["pid"].as_u64().expect("pid").to_string();
    let killed = Command::new("kill")
        .args(["-9", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let block = lands_via(&hub, &cast(0), 1);
    assert_eq!(
        block["miner"].as_str().map(str::to_lowercase),
        Some(coinbase0)
    );

    // Restarted from its recorded command line, node 1 reopens its replica and catches up.
    let argv: Vec<&str> = node(1)["argv"]
        .as_array()
        .expect("argv")
        .iter()
        .map(|a| a.as_str().expect("utf-8 argument"))
        .collect();
    let log = File::options()
        .append(true)
        .open(node(1)["log"].as_str().expect("log path"))
        .expect("node log");
    let _restarted = Killed(
        Command::new(argv[0])
            .args(&argv[1..])
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("node 1 restarts"),
    );
    let target = hub.head();
    eventually(
        "node 1 to reach the hub's head",
        Duration::from_secs(60),
        || head(&cast(1)).filter(|h| *h >= target),
    );
    let _ = DEAD;
}
