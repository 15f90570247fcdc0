//! `cobuild devnet --nodes 4`: member nodes in their own processes replicate every order to each
//! other and build and bid to the hub's relay. A bundle sent to one node lands through another's
//! bid after the first is killed; orders sent to every node while one is killed with SIGKILL
//! and restarted from the command line recorded in endpoints.json all land, and every node ends
//! with the same orders.

use std::{
    fs::File,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use cobuild_test_utils::{Cast, http_get, tools_bin, try_http_post};
use serde_json::{Value, json};

use super::{Devnet, TxSpec, run_client};

/// Dev account 8, which owns the devnet's registry contract.
pub(crate) const REGISTRY_OWNER_KEY: &str =
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97";

/// Dev accounts 2, 3, 4 and 6: each sends to one node, so its nonces stay in order there.
pub(crate) const SENDERS: [&str; 4] = [
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
];

/// A process killed on drop.
pub(crate) struct Killed(Child);

impl Killed {
    /// Spawns `command`.
    pub(crate) fn spawn(command: &mut Command) -> Self {
        Self(command.spawn().expect("the process starts"))
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `check` until it returns something or `within` passed.
pub(crate) fn eventually<T>(
    what: &str,
    within: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    eventually_showing(what, within, || check().ok_or_else(String::new))
}

/// [`eventually`], where `check` says what it saw instead: a timeout shows its last word.
pub(crate) fn eventually_showing<T>(
    what: &str,
    within: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        let seen = match check() {
            Ok(found) => return found,
            Err(seen) => seen,
        };
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last seen: {seen}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `command` (a devnet writing under `data_dir`) to completion, or fails the test once
/// `within` has passed: a devnet that never stops would otherwise hold the whole run without a
/// word. A late devnet is stopped as Ctrl-C stops it (it stops its nodes), killed if that does not
/// do, and its logs are shown.
fn output_within(
    command: &mut Command,
    within: Duration,
    data_dir: &std::path::Path,
) -> std::process::Output {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cobuild runs");
    let pid = child.id().to_string();
    let (done, exited) = std::sync::mpsc::sync_channel(1);
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    if let Ok(output) = exited.recv_timeout(within) {
        return output.expect("cobuild's output is read");
    }
    // Best effort: the test fails below whether or not the devnet stops.
    super::send_signal(&pid, "-INT");
    if exited.recv_timeout(Duration::from_secs(15)).is_err() {
        super::send_signal(&pid, "-KILL");
    }
    panic!(
        "cobuild did not exit within {within:?}\n{}",
        super::log_tails(data_dir)
    );
}

fn head(cast: &Cast) -> Option<u64> {
    cast.run(&["block-number"]).ok()?.parse().ok()
}

/// The running devnet's view of one node, from endpoints.json.
pub(crate) struct Member<'a>(pub(crate) &'a Value);

impl Member<'_> {
    pub(crate) fn cast(&self) -> Cast {
        Cast {
            url: self.0["rpc"].as_str().expect("rpc url").to_owned(),
        }
    }

    pub(crate) fn field(&self, name: &str) -> &str {
        self.0[name]
            .as_str()
            .unwrap_or_else(|| panic!("node has no {name}"))
    }

    /// A call to the node's admin API with its token.
    pub(crate) fn admin(&self, method: &str, params: Value) -> Option<Value> {
        let token = std::fs::read_to_string(
            std::path::Path::new(self.field("data_dir")).join("admin.token"),
        )
        .ok()?;
        let auth = format!("Bearer {}", token.trim());
        json_rpc(
            self.field("admin"),
            method,
            params,
            &[("authorization", &auth)],
        )
    }

    /// A call to the node's public RPC.
    pub(crate) fn rpc(&self, method: &str, params: Value) -> Option<Value> {
        json_rpc(self.field("rpc"), method, params, &[])
    }

    pub(crate) fn kill(&self) {
        let pid = self.0["pid"].as_u64().expect("pid").to_string();
        assert!(super::send_signal(&pid, "-9"));
    }

    /// Starts the node again from its recorded command line (its log and output appended).
    pub(crate) fn restart(&self) -> Killed {
        let argv: Vec<&str> = self.0["argv"]
            .as_array()
            .expect("argv")
            .iter()
            .map(|a| a.as_str().expect("utf-8 argument"))
            .collect();
        // The node writes its log itself (its argv says where); the rest goes where the
        // devnet sends it.
        let log = File::options()
            .append(true)
            .open(std::path::Path::new(self.field("data_dir")).join("node.out"))
            .expect("node output");
        let child = Killed(
            Command::new(argv[0])
                .args(&argv[1..])
                .stdout(Stdio::null())
                .stderr(Stdio::from(log))
                .spawn()
                .expect("the node restarts"),
        );
        eventually("the restarted node's RPC", Duration::from_secs(60), || {
            head(&self.cast())
        });
        child
    }
}

/// One JSON-RPC call to `url` with extra `headers`: its result, `None` on any failure.
fn json_rpc(url: &str, method: &str, params: Value, headers: &[(&str, &str)]) -> Option<Value> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    // A node that resets the connection (starting, stopping, busy) has not answered yet.
    let (status, reply) = try_http_post(url, body.to_string().as_bytes(), &all).ok()?;
    if status != 200 {
        return None;
    }
    serde_json::from_str::<Value>(&reply)
        .ok()?
        .get("result")
        .cloned()
}

/// The block (as `cast block --json` prints it) that included `hash` on the hub.
pub(crate) fn landed(hub: &Devnet, hash: &str) -> Value {
    let number = eventually(
        "the order to land on the hub",
        Duration::from_secs(60),
        || {
            let receipt: Value =
                serde_json::from_str(&hub.cast(&["receipt", hash, "--json"]).ok()?).ok()?;
            receipt["blockNumber"].as_str().map(str::to_owned)
        },
    );
    serde_json::from_str(&hub.cast(&["block", &number, "--json"]).expect("block")).expect("json")
}

/// Removes member `id` from the devnet's registry contract at `contract` (signed by its owner).
pub(crate) fn remove_from_registry_contract(hub: &str, contract: &str, id: u32) {
    let id = id.to_string();
    super::cobuild_ok(&[
        "registry",
        "remove",
        "--rpc-url",
        hub,
        "--contract",
        contract,
        "--owner-key",
        REGISTRY_OWNER_KEY,
        "--id",
        &id,
    ]);
}

/// `cobuild devnet --nodes 4` (500 ms slots) in `dir`, its log in `hub.log` (anything else it
/// prints in `hub.out`), and the endpoints.json it wrote.
pub(crate) fn four_members(dir: &std::path::Path, extra: &[&str]) -> (Devnet, Value) {
    let log = File::create(dir.join("hub.out")).expect("hub output");
    let hub_log = dir.join("hub.log");
    let mut args = vec![
        "--nodes",
        "4",
        "--slot-ms",
        "500",
        "--no-demo-contracts",
        "--log-file",
        hub_log.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    let hub = Devnet::spawn(dir, &args, Stdio::from(log));
    // The banner comes after endpoints.json is written.
    let endpoints = serde_json::from_str(
        &std::fs::read_to_string(dir.join("endpoints.json")).expect("endpoints.json"),
    )
    .expect("json");
    (hub, endpoints)
}

#[test]
fn test_four_member_devnet_replicates_orders_through_kill_and_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (hub, endpoints) = four_members(dir.path(), &[]);
    assert_eq!(endpoints["hub"]["rpc"], hub.url.as_str());
    let nodes: Vec<Member<'_>> = (0..4).map(|i| Member(&endpoints["nodes"][i])).collect();
    let coinbases: Vec<String> = nodes
        .iter()
        .map(|n| n.field("coinbase").to_lowercase())
        .collect();

    // A bundle sent to node 0 with ethers-provider-bundle reaches the other members ...
    let recipient = "0x0000000000000000000000000000000000000777";
    // Far enough ahead (5 s of slots) that node 0 is dead before anyone bids for the target.
    let target = hub.head() + 10;
    let (first, last) = (target.to_string(), (target + 6).to_string());
    let sent = run_client(
        Command::new("node")
            .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/send_bundle.cjs"))
            .args([nodes[0].field("rpc"), recipient, &first, &last])
            .env("NODE_PATH", tools_bin().join("../")),
    );
    let bundle = sent["hashes"][0]["bundleHash"]
        .as_str()
        .expect("hash")
        .to_owned();
    eventually(
        "node 2 to hold node 0's bundle",
        Duration::from_secs(20),
        || {
            let held = nodes[2].admin("cobuild_orderHashes", json!([target]))?;
            held.as_array()?
                .iter()
                .any(|h| h.as_str() == Some(bundle.as_str()))
                .then_some(())
        },
    );
    // ... so with node 0 killed it still lands, through another member's bid.
    nodes[0].kill();
    let killed_at = hub.head();
    let tx = super::tx_hash(sent["signed"][0].as_str().expect("signed tx"));
    let block = landed(&hub, &tx);
    let number = u64::from_str_radix(
        block["number"]
            .as_str()
            .expect("number")
            .trim_start_matches("0x"),
        16,
    )
    .expect("hex number");
    // A bid node 0 sent before it died could only be for the slot after `killed_at`.
    assert!(
        number > killed_at + 1,
        "the bundle landed in #{number}, too close to node 0's death at #{killed_at} to tell"
    );
    let miner = block["miner"].as_str().expect("miner").to_lowercase();
    assert_ne!(miner, coinbases[0], "node 0 is dead: it cannot have bid");
    assert!(coinbases.contains(&miner), "a member built it: {miner}");
    let (status, received) = http_get(
        &hub.relay,
        "/relay/v1/data/bidtraces/builder_blocks_received",
    );
    assert_eq!(status, 200, "{received}");
    assert!(
        received.contains(block["hash"].as_str().expect("hash")),
        "the relay took the bid"
    );
    let mut restarted = vec![nodes[0].restart()];

    // Orders to every member while node 1 is killed right after acknowledging one, and
    // restarted later: every acknowledged order lands.
    let mut nonces = [0u64; 4];
    let mut acked = Vec::new();
    for round in 0..6 {
        if round == 4 {
            restarted.push(nodes[1].restart());
        }
        for (i, key) in SENDERS.iter().enumerate() {
            if i == 1 && (round == 2 || round == 3) {
                continue;
            }
            let raw = hub.signed_tx(
                key,
                TxSpec {
                    nonce: nonces[i],
                    ..TxSpec::default()
                },
            );
            nodes[i].cast().ok(&["publish", &raw]);
            acked.push(super::tx_hash(&raw));
            nonces[i] += 1;
            if i == 1 && round == 1 {
                // Acknowledged, perhaps not yet sent to anyone: the log keeps it.
                nodes[1].kill();
            }
        }
    }
    for hash in &acked {
        landed(&hub, hash);
    }

    // Every member ends with the same orders: each origin's log complete everywhere.
    let progress = |node: &Member<'_>| -> Option<Vec<(u64, u64)>> {
        let status = node.admin("cobuild_status", json!([]))?;
        let origins = status["origins"].as_array()?;
        let all_held = origins.iter().all(|o| o["missing"] == 0);
        all_held.then(|| {
            origins
                .iter()
                .map(|o| {
                    (
                        o["origin"].as_u64().unwrap_or(u64::MAX),
                        o["contiguous"].as_u64().unwrap_or_default(),
                    )
                })
                .collect()
        })
    };
    eventually(
        "every member to hold the same orders",
        Duration::from_secs(30),
        || {
            let all: Vec<_> = nodes.iter().map(progress).collect::<Option<Vec<_>>>()?;
            let same = all.windows(2).all(|w| w[0] == w[1]);
            (same && all[0].len() == 4).then_some(())
        },
    );
    let printed = super::cobuild_ok(&["status", "--data-dir", dir.path().to_str().expect("utf-8")]);
    for id in 0..4 {
        assert!(printed.contains(&format!("node {id} (")), "{printed}");
    }
    assert!(!printed.contains("unreachable"), "{printed}");
    assert!(printed.contains("missing 0"), "{printed}");
    // Every refusal is shown by reason; an honest run refuses nothing.
    assert!(
        printed.contains("0 bad signatures, 0 equivocations, 0 unknown origins, 0 malformed"),
        "{printed}"
    );
    assert!(printed.contains("replicated orders: "), "{printed}");
    let hub_log = std::fs::read_to_string(dir.path().join("hub.log")).expect("the hub's log");
    assert!(hub_log.contains("relay.bid.accepted"), "{hub_log}");
    // Each node writes its own log (rotated by size, so never read through the devnet's
    // redirect), beside `node.out` for anything printed outside it.
    for node in &nodes {
        let log = std::fs::read_to_string(node.field("log")).expect("the node's log");
        assert!(log.contains("cli.node.ready"), "{log}");
        assert!(!log.contains('\u{1b}'), "no colour codes in a log file");
        let out = std::path::Path::new(node.field("data_dir")).join("node.out");
        assert!(out.exists(), "{}", out.display());
    }

    // The registry contract drops member 3 while everything runs: the others follow it, and the
    // orders member 3 accepts from then on are refused by them.
    let contract = endpoints["registry_contract"]
        .as_str()
        .expect("registry contract");
    remove_from_registry_contract(&hub.url, contract, 3);
    let member_ids = |node: &Member<'_>| -> Option<Vec<u64>> {
        let status = node.admin("cobuild_status", json!([]))?;
        status["members"]
            .as_array()?
            .iter()
            .map(|m| m["id"].as_u64())
            .collect()
    };
    eventually(
        "node 0 to follow the removal",
        Duration::from_secs(30),
        || (member_ids(&nodes[0])? == vec![0, 1, 2]).then_some(()),
    );
    let held_from_3 = |node: &Member<'_>| -> Option<u64> {
        let status = node.admin("cobuild_status", json!([]))?;
        status["origins"]
            .as_array()?
            .iter()
            .find(|o| o["origin"] == 3)
            .and_then(|o| o["contiguous"].as_u64())
    };
    let before = held_from_3(&nodes[0]).expect("node 0 held member 3's orders");
    let raw = hub.signed_tx(
        SENDERS[3],
        TxSpec {
            nonce: nonces[3],
            ..TxSpec::default()
        },
    );
    nodes[3].cast().ok(&["publish", &raw]);
    let own = eventually("node 3 to log its order", Duration::from_secs(10), || {
        held_from_3(&nodes[3]).filter(|c| *c > before)
    });
    // A negative: give the others several status rounds (100 ms each) to take it, then check.
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        assert_eq!(
            held_from_3(&nodes[0]),
            Some(before),
            "node 0 took an order from removed member 3 (its log is at {own})"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(restarted);
}

/// Posts `calls` as one JSON-RPC batch, signed as the Flashbots clients sign a body.
fn flashbots_batch(url: &str, auth_key: u8, calls: &[Value]) -> Vec<Value> {
    let auth = alloy_signer_local::PrivateKeySigner::from_bytes(
        &alloy_primitives::B256::repeat_byte(auth_key),
    )
    .expect("key");
    let body = Value::Array(calls.to_vec()).to_string();
    let (status, reply) = cobuild_test_utils::flashbots_post(url, body.as_bytes(), &auth);
    assert_eq!(status, 200, "{reply}");
    serde_json::from_str::<Value>(&reply)
        .expect("json")
        .as_array()
        .expect("a batch answer")
        .clone()
}

/// Whether the hub's chain has a receipt for `hash` (asked once: `cast receipt` would wait).
fn on_chain(hub: &Devnet, hash: &str) -> bool {
    let receipt = hub
        .cast(&["rpc", "eth_getTransactionReceipt", hash])
        .expect("the hub answers");
    serde_json::from_str::<Value>(&receipt).is_ok_and(|r| r["blockNumber"].is_string())
}

#[test]
fn test_a_batch_replicates_call_by_call_and_a_wiped_log_does_not_reuse_numbers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (hub, endpoints) = four_members(dir.path(), &[]);
    let nodes: Vec<Member<'_>> = (0..4).map(|i| Member(&endpoints["nodes"][i])).collect();

    // One signed batch to node 0: a refused bundle, the same bundle for seven target blocks
    // (the real clients' own pattern), a bundle and its cancel, a private transaction. The
    // target is 20 s of slots ahead: every member must hold the orders before it passes, and
    // with the whole suite running on 2 cores (several 4-node devnets at once) 5 s, and once
    // 10 s, were not enough.
    let target = hub.head() + 40;
    let kept_tx = hub.signed_tx(SENDERS[0], TxSpec::default());
    let cancelled_tx = hub.signed_tx(SENDERS[1], TxSpec::default());
    let private_tx = hub.signed_tx(SENDERS[2], TxSpec::default());
    let uuid = "6c1f0b8e-3a51-4d2b-9a0c-5f7e2d9b1c44";
    let call = |id: u64, method: &str, params: Value| json!({"jsonrpc": "2.0", "id": id, "method": method, "params": [params]});
    let mut calls = vec![call(
        0,
        "eth_sendBundle",
        json!({"txs": [], "blockNumber": format!("{target:#x}")}),
    )];
    for block in target..target + 7 {
        calls.push(call(
            block,
            "eth_sendBundle",
            json!({"txs": [kept_tx], "blockNumber": format!("{block:#x}")}),
        ));
    }
    calls.push(call(
        100,
        "eth_sendBundle",
        json!({"txs": [cancelled_tx], "blockNumber": format!("{target:#x}"), "replacementUuid": uuid}),
    ));
    calls.push(call(
        101,
        "eth_cancelBundle",
        json!({"replacementUuid": uuid}),
    ));
    calls.push(call(
        102,
        "eth_sendPrivateTransaction",
        json!({"tx": private_tx, "maxBlockNumber": target + 30}),
    ));
    let replies = flashbots_batch(nodes[0].field("rpc"), 7, &calls);
    let refused: Vec<&Value> = replies
        .iter()
        .filter(|r| r.get("error").is_some())
        .collect();
    assert_eq!(refused.len(), 1, "{replies:?}");
    assert_eq!(
        refused[0]["id"], 0,
        "only the empty bundle is refused: {replies:?}"
    );
    let kept_hash = replies
        .iter()
        .find(|r| r["id"] == target)
        .and_then(|r| r["result"]["bundleHash"].as_str())
        .expect("the kept bundle's hash")
        .to_owned();
    let private_hash = super::tx_hash(&private_tx);

    // Every other member holds exactly the acknowledged orders: the kept bundle for each of
    // its blocks and the private transaction; not the refused or the cancelled bundle.
    let mut want = vec![kept_hash.clone(), private_hash.clone()];
    want.sort();
    for (i, node) in nodes.iter().enumerate().skip(1) {
        for block in [target, target + 6] {
            eventually_showing(
                &format!("node {i} to hold the batch's orders for #{block}"),
                Duration::from_secs(30),
                || {
                    let held = node
                        .admin("cobuild_orderHashes", json!([block]))
                        .ok_or("no answer from its admin API")?;
                    let mut held: Vec<String> = held
                        .as_array()
                        .ok_or_else(|| format!("not a list: {held}"))?
                        .iter()
                        .filter_map(|h| h.as_str().map(str::to_lowercase))
                        .collect();
                    held.sort();
                    if held == want {
                        return Ok(());
                    }
                    // No head here: asking for it spawns `cast` at every poll, and a failing
                    // test prints the hub's log, whose last commits show it.
                    Err(format!("{held:?} (want {want:?})"))
                },
            );
        }
    }

    // Node 0 dies: what it acknowledged still lands through the others; the cancel holds.
    nodes[0].kill();
    landed(&hub, &super::tx_hash(&kept_tx));
    landed(&hub, &private_hash);
    eventually(
        "the last target block to pass",
        Duration::from_secs(30),
        || (hub.head() > target + 7).then_some(()),
    );
    assert!(
        !on_chain(&hub, &super::tx_hash(&cancelled_tx)),
        "a bundle cancelled in the same batch landed"
    );
    let mut restarted = vec![nodes[0].restart()];

    // Node 1 accepts an order, then loses its order log (a wiped data dir, a new disk).
    let first = hub.signed_tx(SENDERS[3], TxSpec::default());
    nodes[1].cast().ok(&["publish", &first]);
    let origin_1 = |node: &Member<'_>| -> Option<(u64, u64)> {
        let status = node.admin("cobuild_status", json!([]))?;
        let held = status["origins"]
            .as_array()?
            .iter()
            .find(|o| o["origin"] == 1)?["contiguous"]
            .as_u64()?;
        Some((held, status["refusals"]["equivocations"].as_u64()?))
    };
    for node in [&nodes[0], &nodes[2], &nodes[3]] {
        eventually(
            "node 1's first order to replicate",
            Duration::from_secs(20),
            || (origin_1(node)?.0 == 1).then_some(()),
        );
    }
    nodes[1].kill();
    std::fs::remove_file(std::path::Path::new(nodes[1].field("data_dir")).join("orders.redb"))
        .expect("the order log is wiped");
    restarted.push(nodes[1].restart());

    // Its next order gets the next number, not the first one again: everyone takes it.
    let second = hub.signed_tx(
        SENDERS[3],
        TxSpec {
            nonce: 1,
            ..TxSpec::default()
        },
    );
    nodes[1].cast().ok(&["publish", &second]);
    for node in &nodes {
        eventually(
            "node 1's new order to replicate to every member",
            Duration::from_secs(20),
            || (origin_1(node)? == (2, 0)).then_some(()),
        );
    }
    landed(&hub, &super::tx_hash(&first));
    landed(&hub, &super::tx_hash(&second));
    drop(restarted);
}

#[test]
fn test_a_node_that_cannot_start_stops_the_devnet_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Node 1's chain replica cannot be opened: its file is a directory.
    std::fs::create_dir_all(dir.path().join("node-1").join("chain.redb")).expect("mkdir");
    let mut devnet = Command::new(env!("CARGO_BIN_EXE_cobuild"));
    devnet
        .args([
            "devnet",
            "--nodes",
            "2",
            "--http-port",
            "0",
            "--slot-ms",
            "300",
        ])
        .arg("--no-demo-contracts")
        .arg("--data-dir")
        .arg(dir.path())
        .stdin(Stdio::null());
    let output = output_within(&mut devnet, Duration::from_secs(120), dir.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "the devnet must not run short of a node"
    );
    assert!(
        stderr.contains("node 1 did not start") && stderr.contains("node-1"),
        "the error names the node and its log: {stderr}"
    );
    assert!(
        !dir.path().join("endpoints.json").exists(),
        "no endpoints are recorded for a devnet that did not start"
    );
    // Node 0 was stopped with the devnet: nothing listens on its P2P port any more.
    let registry = std::fs::read_to_string(dir.path().join("registry.toml")).expect("registry");
    let p2p = registry
        .lines()
        .find_map(|line| line.trim().strip_prefix("address = "))
        .map(|address| address.trim_matches('"').to_owned())
        .expect("member 0 is listed");
    assert!(
        std::net::TcpStream::connect(&p2p).is_err(),
        "node 0 still listens on {p2p}"
    );
}
