//! End to end: the real `cobuild` binary, driven by `cast` and an ethers v6 provider.

mod el;
mod ledger;
mod nodes;
mod refunds;
mod relays;

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use cobuild_test_utils::{Cast, free_port, tools_bin};
use serde_json::Value;

const DEV0_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const DEAD: &str = "0x000000000000000000000000000000000000dEaD";

/// What `Devnet::signed_tx` signs.
#[derive(Clone, Copy)]
struct TxSpec<'a> {
    to: &'a str,
    value: &'a str,
    nonce: u64,
    gas: u64,
    max_fee: &'a str,
    tip: &'a str,
}

impl Default for TxSpec<'_> {
    fn default() -> Self {
        Self {
            to: DEAD,
            value: "0",
            nonce: 0,
            gas: 21_000,
            max_fee: "10gwei",
            tip: "2gwei",
        }
    }
}

/// The hash of a raw transaction.
fn tx_hash(raw: &str) -> String {
    let bytes = alloy_primitives::hex::decode(raw).expect("hex");
    format!("{:#x}", alloy_primitives::keccak256(bytes))
}

/// A running `cobuild devnet`, killed on drop.
struct Devnet {
    child: Child,
    url: String,
    /// The local relay's builder API.
    relay: String,
    cast: Cast,
    data_dir: PathBuf,
}

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A failing test takes its data directory with it: the logs are shown first, beside
        // the test's own message (the harness prints what the failing test wrote).
        if std::thread::panicking() {
            eprintln!("{}", log_tails(&self.data_dir));
        }
    }
}

impl Devnet {
    fn start(data_dir: &Path) -> Self {
        Self::start_with(data_dir, &[])
    }

    fn start_with(data_dir: &Path, extra: &[&str]) -> Self {
        Self::spawn(data_dir, extra, Stdio::null())
    }

    /// Starts with `extra` flags, the devnet's log going to `stderr`.
    fn spawn(data_dir: &Path, extra: &[&str], stderr: Stdio) -> Self {
        // Short slots keep the tests quick, unless a test asks for its own.
        let slot: &[&str] = if extra.contains(&"--slot-ms") {
            &[]
        } else {
            &["--slot-ms", "300"]
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_cobuild"))
            .args(["devnet", "--http-port", "0"])
            .args(slot)
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("cobuild starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        // The banner names the bound address; reading it is the readiness event.
        let Some(url) = lines
            .by_ref()
            .map(|line| line.expect("utf-8 banner"))
            .find_map(|line| {
                line.trim()
                    .strip_prefix("rpc")
                    .map(|rest| rest.trim().to_string())
            })
        else {
            // The data directory goes with the test: what it says why is shown now.
            let status = child.wait().expect("the devnet is waited for");
            panic!(
                "the devnet ended ({status}) before its banner printed the rpc url\n{}",
                log_tails(data_dir)
            );
        };
        let relay = lines
            .by_ref()
            .map(|line| line.expect("utf-8 banner"))
            .find_map(|line| {
                line.trim()
                    .strip_prefix("relay")
                    .and_then(|rest| rest.split_whitespace().next())
                    .map(str::to_string)
            })
            .expect("banner prints the relay url");
        // Keep reading so the node never writes into a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let cast = Cast { url: url.clone() };
        Self {
            child,
            url,
            relay,
            cast,
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// A signed EIP-1559 transaction as raw hex, made by `cast mktx` (not sent).
    fn signed_tx(&self, key: &str, tx: TxSpec<'_>) -> String {
        let (nonce, gas) = (tx.nonce.to_string(), tx.gas.to_string());
        self.cast(&[
            "mktx",
            "--private-key",
            key,
            tx.to,
            "--value",
            tx.value,
            "--nonce",
            &nonce,
            "--gas-limit",
            &gas,
            "--gas-price",
            tx.max_fee,
            "--priority-gas-price",
            tx.tip,
        ])
        .expect("cast mktx")
    }

    fn cast(&self, args: &[&str]) -> Result<String, String> {
        self.cast.run(args)
    }

    fn head(&self) -> u64 {
        self.cast(&["block-number"])
            .expect("block number")
            .parse()
            .expect("a number")
    }

    fn interrupt(mut self) -> std::process::ExitStatus {
        interrupt(&mut self.child)
    }
}

/// The last lines of every log and output file under `dir` (a devnet's data directory), each
/// under its path: what a failed start leaves to explain itself.
fn log_tails(dir: &Path) -> String {
    const LINES: usize = 40;
    let mut files = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for path in entries.flatten().map(|e| e.path()) {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                folders.push(path);
            } else if name.ends_with(".log") || name.ends_with(".out") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut tails = String::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(LINES)..];
        tails.push_str(&format!(
            "--- {} (last {} lines)\n",
            file.display(),
            tail.len()
        ));
        for line in tail {
            tails.push_str(line);
            tails.push('\n');
        }
    }
    tails
}

/// Sends process `pid` the signal `name` (`-INT`, `-KILL`, …) with kill(1); whether it was
/// delivered.
pub(crate) fn send_signal(pid: &str, name: &str) -> bool {
    Command::new("kill")
        .args([name, pid])
        .status()
        .is_ok_and(|status| status.success())
}

/// Sends `child` SIGINT (Ctrl-C) and waits for it to exit.
fn interrupt(child: &mut Child) -> std::process::ExitStatus {
    assert!(send_signal(&child.id().to_string(), "-INT"));
    child.wait().expect("exits")
}

#[test]
fn test_devnet_serves_cast_and_ethers_and_survives_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let devnet = Devnet::start(dir.path());

    // cast send, as in the README.
    let receipt: Value = serde_json::from_str(
        &devnet
            .cast(&[
                "send",
                "--private-key",
                DEV0_KEY,
                DEAD,
                "--value",
                "1ether",
                "--json",
            ])
            .expect("cast send succeeds"),
    )
    .expect("receipt json");
    assert_eq!(receipt["status"], "0x1", "{receipt}");
    let tx_hash = receipt["transactionHash"]
        .as_str()
        .expect("hash")
        .to_string();
    let again: Value = serde_json::from_str(
        &devnet
            .cast(&["receipt", &tx_hash, "--json"])
            .expect("cast receipt"),
    )
    .expect("json");
    assert_eq!(again["blockHash"], receipt["blockHash"]);

    // The demo pool exists and answers calls.
    let reserves = devnet
        .cast(&[
            "call",
            "0xb19b36b1456E65E3A6D514D3F715f204BD59f431",
            "getReserves()(uint256,uint256)",
        ])
        .expect("cast call");
    assert!(
        reserves.starts_with("100000000000000000000000"),
        "{reserves}"
    );

    // ethers v6 JsonRpcProvider + Wallet.
    let ethers = run_client(
        Command::new("node")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/send.cjs"))
            .args([&devnet.url, "0x000000000000000000000000000000000000bEEF"])
            .env("NODE_PATH", tools_bin().join("../"))
            .current_dir(tools_bin().join("../..")),
    );
    assert_eq!(ethers["status"], 1);
    assert_eq!(ethers["balance"], "500000000000000000");

    // Bad input is an error, not a crash.
    let err = devnet
        .cast(&["publish", "0x02f8"])
        .expect_err("malformed rlp is refused");
    assert!(err.contains("rlp"), "{err}");
    let err = devnet
        .cast(&["rpc", "eth_getBalance", "0xnothex", "latest"])
        .expect_err("bad hex is refused");
    assert!(
        err.contains("-32602") || err.to_lowercase().contains("invalid"),
        "{err}"
    );

    // Ctrl-C stops it cleanly; a restart continues the same chain and state.
    let devnet = restart_keeps_chain(dir.path(), devnet, |d| {
        let status = d.interrupt();
        assert!(status.success(), "clean exit on SIGINT: {status}");
    });
    let kept: Value = serde_json::from_str(
        &devnet
            .cast(&["receipt", &tx_hash, "--json"])
            .expect("receipt"),
    )
    .expect("json");
    assert_eq!(kept["blockHash"], receipt["blockHash"]);

    // kill -9 in the middle of its slots: the restart still has every committed block.
    restart_keeps_chain(dir.path(), devnet, drop);
}

/// Stops `devnet` with `stop`, starts it again on the same data, and checks the chain and the
/// 1 ETH sent to `DEAD` survived.
fn restart_keeps_chain(dir: &Path, devnet: Devnet, stop: impl FnOnce(Devnet)) -> Devnet {
    let height = devnet.head();
    stop(devnet);
    let devnet = Devnet::start(dir);
    let after = devnet.head();
    assert!(
        after >= height,
        "chain continues from {height}, got {after}"
    );
    assert_eq!(
        devnet.cast(&["balance", DEAD]).expect("balance"),
        "1000000000000000000"
    );
    devnet
}

#[test]
fn test_a_devnet_whose_chain_store_was_emptied_refuses_to_start_unless_told() {
    let dir = tempfile::tempdir().expect("tempdir");
    let devnet = Devnet::start_with(dir.path(), &["--no-demo-contracts"]);
    while devnet.head() < 5 {
        std::thread::yield_now();
    }
    assert!(devnet.interrupt().success());
    std::fs::remove_file(dir.path().join("chain.redb")).expect("the store goes");

    let output = Command::new(env!("CARGO_BIN_EXE_cobuild"))
        .args([
            "devnet",
            "--http-port",
            "0",
            "--no-demo-contracts",
            "--data-dir",
        ])
        .arg(dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("cobuild runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "it must not start over: {stderr}");
    assert!(
        stderr.contains("deleted or emptied") && stderr.contains("--accept-chain-rollback"),
        "it says what happened and what to do: {stderr}"
    );

    // Told to, it starts again from genesis: with 10 s slots its head is still below the 5
    // blocks the lost store had when the banner is up.
    let devnet = Devnet::start_with(
        dir.path(),
        &[
            "--no-demo-contracts",
            "--accept-chain-rollback",
            "--slot-ms",
            "10000",
        ],
    );
    assert!(devnet.head() < 5, "it starts over from genesis");
    assert!(devnet.interrupt().success());
}

/// Runs a client script and returns the JSON report it prints.
fn run_client(command: &mut Command) -> Value {
    let out = command.output().expect("the client runs");
    assert!(
        out.status.success(),
        "client script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the script prints json")
}

/// Signs a transfer with `cast mktx` (offline fields given) and submits it; returns the error.
fn refused(devnet: &Devnet, key: &str, extra: &[&str]) -> String {
    let mut args = vec!["mktx", "--private-key", key, DEAD, "--value", "1wei"];
    args.extend_from_slice(extra);
    let raw = devnet.cast(&args).expect("cast signs the transaction");
    devnet
        .cast(&["publish", "--async", &raw])
        .expect_err("the node refuses it")
}

#[test]
fn test_devnet_refuses_bad_transactions_with_clear_errors() {
    use std::io::{Read, Write};

    let dir = tempfile::tempdir().expect("tempdir");
    let devnet = Devnet::start(dir.path());
    let fees = [
        "--gas-price",
        "10gwei",
        "--priority-gas-price",
        "1gwei",
        "--gas-limit",
        "21000",
    ];

    let err = refused(
        &devnet,
        DEV0_KEY,
        &[&["--chain", "1", "--nonce", "0"][..], &fees].concat(),
    );
    assert!(err.contains("invalid chain id"), "{err}");

    devnet
        .cast(&["send", "--private-key", DEV0_KEY, DEAD, "--value", "1wei"])
        .expect("first send lands");
    let err = refused(&devnet, DEV0_KEY, &[&["--nonce", "0"][..], &fees].concat());
    assert!(err.contains("nonce too low"), "{err}");

    // A key nobody funded.
    let empty = "0x0000000000000000000000000000000000000000000000000000000000000001";
    let err = refused(&devnet, empty, &[&["--nonce", "0"][..], &fees].concat());
    assert!(err.contains("insufficient funds"), "{err}");

    let err = refused(
        &devnet,
        DEV0_KEY,
        &[
            "--nonce",
            "1",
            "--gas-price",
            "1",
            "--priority-gas-price",
            "0",
            "--gas-limit",
            "21000",
        ],
    );
    assert!(err.contains("less than block base fee"), "{err}");

    let err = refused(
        &devnet,
        DEV0_KEY,
        &[
            "--nonce",
            "1",
            "--gas-price",
            "10gwei",
            "--priority-gas-price",
            "1gwei",
            "--gas-limit",
            "70000000",
        ],
    );
    assert!(err.contains("exceeds block gas limit"), "{err}");

    // A body over the limit is refused before it is buffered, and the node stays up.
    let addr = devnet.url.trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
    let len = 6 * 1024 * 1024;
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).expect("write head");
    let _ = stream.write_all(&vec![b' '; len]);
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    assert!(
        response.starts_with("HTTP/1.1 413"),
        "{}",
        response.lines().next().unwrap_or_default()
    );
    devnet.cast(&["block-number"]).expect("still serving");
}

#[test]
fn test_call_bundle_from_real_clients_needs_their_signature() {
    use cobuild_test_utils::{flashbots_fixtures, http_post};

    let dir = tempfile::tempdir().expect("tempdir");
    let devnet = Devnet::start(dir.path());
    let calls: Vec<_> = flashbots_fixtures()
        .into_iter()
        .filter(|(m, _, _)| m == "eth_callBundle")
        .collect();
    assert!(calls.len() >= 2, "fixtures from both clients");
    // web3-flashbots names state block 2: wait until the chain has it.
    while devnet.head() < 2 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for (_, header, body) in &calls {
        // Exactly the bytes and header the client sent.
        let (status, reply) = http_post(
            &devnet.url,
            body.as_bytes(),
            &[("X-Flashbots-Signature", header)],
        );
        assert_eq!(status, 200, "{reply}");
        let reply: Value = serde_json::from_str(&reply).expect("json-rpc reply");
        let result = &reply["result"];
        assert!(result.is_object(), "{reply}");
        let results = result["results"].as_array().expect("per-tx results");
        assert!(!results.is_empty());
        for r in results {
            assert_eq!(r["gasUsed"], 21_000, "{r}");
            assert_eq!(r["gasPrice"], "1000000000", "{r}");
        }
        assert!(result["coinbaseDiff"].as_str().is_some_and(|d| d != "0"));

        // Unsigned, and signed over other bytes: refused with a clear error.
        let (_, unsigned) = http_post(&devnet.url, body.as_bytes(), &[]);
        let unsigned: Value = serde_json::from_str(&unsigned).expect("json");
        assert_eq!(unsigned["error"]["code"], -32600, "{unsigned}");
        assert!(
            unsigned["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("X-Flashbots-Signature"))
        );
        let tampered = body.replacen("\"id\":", "\"id\": ", 1);
        let (_, forged) = http_post(
            &devnet.url,
            tampered.as_bytes(),
            &[("X-Flashbots-Signature", header)],
        );
        let forged: Value = serde_json::from_str(&forged).expect("json");
        assert_eq!(forged["error"]["code"], -32600, "{forged}");
    }
}

/// A Flashbots-style JSON-RPC call: the body signed as ethers-provider-bundle signs it.
fn flashbots_call(
    url: &str,
    auth: &alloy_signer_local::PrivateKeySigner,
    method: &str,
    params: Value,
) -> Value {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": [params]})
        .to_string();
    let (_, reply) = cobuild_test_utils::flashbots_post(url, body.as_bytes(), auth);
    serde_json::from_str(&reply).expect("json-rpc reply")
}

#[test]
fn test_bundles_land_atomically_and_cancels_win() {
    let dir = tempfile::tempdir().expect("tempdir");
    let devnet = Devnet::start(dir.path());
    let auth =
        alloy_signer_local::PrivateKeySigner::from_bytes(&alloy_primitives::B256::repeat_byte(7))
            .expect("key");
    let keys = [
        "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a", // dev 2
        "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6", // dev 3
        "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a", // dev 4
    ];
    let mktx = |key: &str, to: &str, gas: u64| {
        devnet.signed_tx(
            key,
            TxSpec {
                to,
                gas,
                ..TxSpec::default()
            },
        )
    };
    let head = devnet.head();
    let target = head + 3;
    let target_hex = format!("{target:#x}");

    // A plain bundle: lands in its target block.
    let plain = mktx(keys[0], DEAD, 21_000);
    let reply = flashbots_call(
        &devnet.url,
        &auth,
        "eth_sendBundle",
        serde_json::json!({"txs": [plain], "blockNumber": target_hex}),
    );
    assert!(reply["result"]["bundleHash"].is_string(), "{reply}");

    // Sent, then cancelled by uuid: never lands.
    let cancelled = mktx(keys[1], DEAD, 21_000);
    let reply = flashbots_call(
        &devnet.url,
        &auth,
        "eth_sendBundle",
        serde_json::json!({"txs": [cancelled], "blockNumber": target_hex, "replacementUuid": "cancel-me"}),
    );
    assert!(reply["result"]["bundleHash"].is_string(), "{reply}");
    let reply = flashbots_call(
        &devnet.url,
        &auth,
        "eth_cancelBundle",
        serde_json::json!({"replacementUuid": "cancel-me"}),
    );
    assert!(reply.get("error").is_none(), "{reply}");

    // A transaction that reverts without being allowed to: never lands.
    let reverting = mktx(
        keys[2],
        "0x000F3df6D732807Ef1319fB7B8bB8522d0Beac02",
        100_000,
    );
    let reply = flashbots_call(
        &devnet.url,
        &auth,
        "eth_sendBundle",
        serde_json::json!({"txs": [reverting], "blockNumber": target_hex}),
    );
    assert!(reply["result"]["bundleHash"].is_string(), "{reply}");

    // Unsigned: refused.
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "eth_sendBundle", "params": [{"txs": [plain], "blockNumber": target_hex}]}).to_string();
    let (_, unsigned) = cobuild_test_utils::http_post(&devnet.url, body.as_bytes(), &[]);
    let unsigned: Value = serde_json::from_str(&unsigned).expect("json");
    assert_eq!(unsigned["error"]["code"], -32600, "{unsigned}");

    while devnet.head() <= target {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let landed: Value = serde_json::from_str(
        &devnet
            .cast(&["receipt", &tx_hash(&plain), "--json"])
            .expect("plain bundle landed"),
    )
    .expect("json");
    assert_eq!(landed["blockNumber"], target_hex, "in the target block");
    for never in [&cancelled, &reverting] {
        let receipt = devnet
            .cast(&["rpc", "eth_getTransactionReceipt", &tx_hash(never)])
            .expect("rpc");
        assert_eq!(receipt, "null", "{never} must not land");
    }
}

#[test]
fn test_higher_value_conflicting_bundle_wins_through_the_builder_and_relay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let devnet = Devnet::start(dir.path());
    let auth =
        alloy_signer_local::PrivateKeySigner::from_bytes(&alloy_primitives::B256::repeat_byte(7))
            .expect("key");
    let dev5 = "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba";
    // The same nonce of the same account: at most one of the two can ever land.
    let mktx = |to: &str, tip: &str| {
        devnet.signed_tx(
            dev5,
            TxSpec {
                to,
                max_fee: "50gwei",
                tip,
                ..TxSpec::default()
            },
        )
    };
    let low = mktx(DEAD, "2gwei");
    let high = mktx("0x000000000000000000000000000000000000bEEF", "30gwei");
    let target = devnet.head() + 2;
    let target_hex = format!("{target:#x}");
    for raw in [&low, &high] {
        let reply = flashbots_call(
            &devnet.url,
            &auth,
            "eth_sendBundle",
            serde_json::json!({"txs": [raw], "blockNumber": target_hex}),
        );
        assert!(reply["result"]["bundleHash"].is_string(), "{reply}");
    }
    while devnet.head() <= target {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let landed: Value = serde_json::from_str(
        &devnet
            .cast(&["receipt", &tx_hash(&high), "--json"])
            .expect("the higher-paying bundle landed"),
    )
    .expect("json");
    assert_eq!(landed["blockNumber"], target_hex);
    let lost = devnet
        .cast(&["rpc", "eth_getTransactionReceipt", &tx_hash(&low)])
        .expect("rpc");
    assert_eq!(
        lost, "null",
        "the lower-paying conflicting bundle never lands"
    );

    // The block came from the builder through the relay: its coinbase is the builder's, and its
    // last transaction pays the proposer's fee recipient.
    let block: Value = serde_json::from_str(
        &devnet
            .cast(&["block", &target.to_string(), "--json"])
            .expect("block"),
    )
    .expect("json");
    let fee_recipient = "0x0000000000000000000000000000000000c0b11d";
    assert_ne!(
        block["miner"].as_str().map(str::to_lowercase).as_deref(),
        Some(fee_recipient)
    );
    let last = block["transactions"]
        .as_array()
        .and_then(|txs| txs.last())
        .and_then(Value::as_str)
        .expect("a payment transaction");
    let payment: Value =
        serde_json::from_str(&devnet.cast(&["tx", last, "--json"]).expect("tx")).expect("json");
    assert_eq!(
        payment["to"].as_str().map(str::to_lowercase).as_deref(),
        Some(fee_recipient)
    );
    assert_eq!(
        payment["from"], block["miner"],
        "paid by the block's coinbase"
    );
    let paid = payment["value"].as_str().expect("value");
    assert_ne!(paid, "0x0", "the bid pays the proposer");
}

#[test]
fn test_bundle_cancelled_after_it_was_bid_never_lands() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Long slots, so the cancel surely falls inside the slot the bundle was bid in.
    let devnet = Devnet::start_with(dir.path(), &["--slot-ms", "3000"]);
    let auth =
        alloy_signer_local::PrivateKeySigner::from_bytes(&alloy_primitives::B256::repeat_byte(7))
            .expect("key");
    let dev6 = "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e";
    let raw = devnet.signed_tx(
        dev6,
        TxSpec {
            max_fee: "50gwei",
            tip: "5gwei",
            ..TxSpec::default()
        },
    );
    let hash = tx_hash(&raw);
    // Right after a new head the next slot has just opened.
    let start = devnet.head();
    while devnet.head() == start {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let target = devnet.head() + 1;
    let reply = flashbots_call(
        &devnet.url,
        &auth,
        "eth_sendBundle",
        serde_json::json!({"txs": [raw], "blockNumber": format!("{target:#x}"), "replacementUuid": "bid-then-cancel"}),
    );
    assert!(reply["result"]["bundleHash"].is_string(), "{reply}");
    // The builder bids it: the relay's data API shows a paying bid for the target slot.
    let received = |slot: u64| -> Vec<Value> {
        let (status, body) = cobuild_test_utils::http_get(
            &devnet.relay,
            &format!("/relay/v1/data/bidtraces/builder_blocks_received?slot={slot}"),
        );
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("json list")
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while received(target).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no bid for slot {target}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(devnet.head() + 1, target, "still inside the slot");
    let reply = flashbots_call(
        &devnet.url,
        &auth,
        "eth_cancelBundle",
        serde_json::json!({"replacementUuid": "bid-then-cancel"}),
    );
    assert!(reply.get("error").is_none(), "{reply}");
    while devnet.head() < target {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let receipt = devnet
        .cast(&["rpc", "eth_getTransactionReceipt", &hash])
        .expect("rpc");
    assert_eq!(
        receipt, "null",
        "a bundle cancelled before the slot ended must not land"
    );
    // The builder withdrew its bid with a cancellation the relay honoured.
    let bids = received(target);
    assert!(
        bids.iter().any(|b| b["cancellation"] == true),
        "a withdrawal was sent: {bids:?}"
    );
}

#[test]
fn test_ethers_provider_bundle_sends_simulates_and_lands_a_bundle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let devnet = Devnet::start(dir.path());
    let recipient = "0x00000000000000000000000000000000000B0B00";
    let report = run_client(
        Command::new("node")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/bundle.cjs"))
            .args([&devnet.url, recipient])
            .env("NODE_PATH", tools_bin().join("../")),
    );
    assert_eq!(report["included"], true, "{report}");
    assert_eq!(report["simulatedGas"], 21_000, "{report}");
    // The chain agrees: the recipient got the value in the target block.
    assert_eq!(
        devnet.cast(&["balance", recipient]).expect("balance"),
        "12345"
    );
}

#[test]
fn test_web3_flashbots_simulates_and_lands_a_bundle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let devnet = Devnet::start(dir.path());
    let recipient = "0x00000000000000000000000000000000000b0b01";
    let report = run_client(
        Command::new(cobuild_test_utils::venv_python())
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/bundle.py"))
            .args([&devnet.url, recipient]),
    );
    assert_eq!(report["status"], 1, "{report}");
    assert_eq!(
        report["block"], report["target"],
        "landed in its target block: {report}"
    );
    assert_eq!(report["simulatedGas"], 21_000, "{report}");
    assert_eq!(
        devnet.cast(&["balance", recipient]).expect("balance"),
        "54321"
    );
}

#[test]
fn test_a_sender_over_its_budget_is_refused_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let devnet = Devnet::start_with(dir.path(), &["--bundle-rate", "1", "--bundle-burst", "2"]);
    let auth =
        alloy_signer_local::PrivateKeySigner::from_bytes(&alloy_primitives::B256::repeat_byte(9))
            .expect("key");
    let other =
        alloy_signer_local::PrivateKeySigner::from_bytes(&alloy_primitives::B256::repeat_byte(8))
            .expect("key");
    let cancel = serde_json::json!({"replacementUuid": "nothing"});
    for _ in 0..2 {
        let reply = flashbots_call(&devnet.url, &auth, "eth_cancelBundle", cancel.clone());
        assert!(reply.get("error").is_none(), "{reply}");
    }
    let refused = flashbots_call(&devnet.url, &auth, "eth_cancelBundle", cancel.clone());
    assert_eq!(refused["error"]["code"], -32005, "{refused}");
    // Another sender keeps its own budget.
    let reply = flashbots_call(&devnet.url, &other, "eth_cancelBundle", cancel);
    assert!(reply.get("error").is_none(), "{reply}");
}

#[test]
fn test_ethers_provider_bundle_private_transactions_land_and_cancelled_ones_never_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let devnet = Devnet::start(dir.path());
    let recipient = "0x00000000000000000000000000000000000b0b02";
    let report = run_client(
        Command::new("node")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/private.cjs"))
            .args([&devnet.url, recipient])
            .env("NODE_PATH", tools_bin().join("../")),
    );
    assert_eq!(report["included"], true, "{report}");
    assert_eq!(report["status"], 1, "{report}");
    assert!(
        report["block"].as_u64() <= report["maxBlock"].as_u64(),
        "landed by its maxBlockNumber: {report}"
    );
    assert_eq!(report["hiddenWhilePending"], true, "{report}");
    assert_eq!(report["cancelledLanded"], false, "{report}");
    // The chain agrees: 777 from the private transaction, 1 from the public filler, never 888.
    assert_eq!(
        devnet.cast(&["balance", recipient]).expect("balance"),
        "778"
    );
}

#[test]
fn test_ethers_websocket_watcher_sees_heads_logs_and_public_pending_transactions_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let devnet = Devnet::start(dir.path());
    let ws = devnet.url.replacen("http://", "ws://", 1);
    let report = run_client(
        Command::new("node")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/subscribe.cjs"))
            .args([
                &devnet.url,
                &ws,
                "0x00000000000000000000000000000000000b0b03",
            ])
            .env("NODE_PATH", tools_bin().join("../")),
    );
    assert_eq!(
        report["headsInOrder"], true,
        "every block, in order: {report}"
    );
    assert!(report["heads"].as_u64() >= Some(3), "{report}");
    assert_eq!(report["log"]["tx"], report["call"]["hash"], "{report}");
    assert_eq!(report["log"]["block"], report["call"]["block"], "{report}");
    assert_eq!(
        report["log"]["topic1"],
        format!("0x{}2a", "00".repeat(31)),
        "{report}"
    );
    assert_eq!(report["publicAnnounced"], true, "{report}");
    assert_eq!(report["privateLanded"], true, "{report}");
    assert_eq!(report["privateAnnounced"], false, "invariant 7: {report}");
}

#[test]
fn test_a_searcher_bot_backruns_a_public_swap_it_saw_over_websocket() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Slots long enough that a bot answering within tens of milliseconds is always in time.
    let devnet = Devnet::start_with(dir.path(), &["--slot-ms", "1000"]);
    let ws = devnet.url.replacen("http://", "ws://", 1);
    let report = run_client(
        Command::new("node")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/bot.cjs"))
            .args([&devnet.url, &ws])
            .env("NODE_PATH", tools_bin().join("../")),
    );
    assert_eq!(report["botSawVictim"], true, "{report}");
    assert_eq!(report["victim"]["status"], 1, "{report}");
    assert_eq!(report["backrun"]["status"], 1, "{report}");
    // The bundle landed whole: the backrun right after the victim, in the same block.
    assert_eq!(
        report["backrun"]["block"], report["victim"]["block"],
        "{report}"
    );
    assert_eq!(
        report["backrun"]["index"].as_u64(),
        report["victim"]["index"].as_u64().map(|i| i + 1),
        "{report}"
    );
    // The bot's subscription saw both swaps, victim first.
    let events = report["swapEvents"].as_array().expect("events");
    assert_eq!(events.len(), 2, "{report}");
    assert_eq!(events[0]["tx"], report["victim"]["hash"], "{report}");
    assert_eq!(events[1]["tx"], report["backrun"]["hash"], "{report}");
}

#[test]
fn test_mev_share_bundle_backruns_a_private_transaction_and_lands() {
    let dir = tempfile::tempdir().expect("tempdir");
    let devnet = Devnet::start(dir.path());
    let alice = alloy_signer_local::PrivateKeySigner::from_bytes(
        &alloy_primitives::B256::repeat_byte(0xa1),
    )
    .expect("key");
    let bob = alloy_signer_local::PrivateKeySigner::from_bytes(
        &alloy_primitives::B256::repeat_byte(0xb0),
    )
    .expect("key");
    let dev3 = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6";
    let dev4 = "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a";
    let mktx = |key: &str, nonce: u64, value: &str| {
        devnet.signed_tx(
            key,
            TxSpec {
                value,
                nonce,
                ..TxSpec::default()
            },
        )
    };
    // Alice's private transaction one nonce ahead: it cannot land on its own.
    let first = mktx(dev3, 0, "1");
    let user = mktx(dev3, 1, "2");
    let reply = flashbots_call(
        &devnet.url,
        &alice,
        "eth_sendPrivateTransaction",
        serde_json::json!({"tx": user}),
    );
    assert_eq!(reply["result"], tx_hash(&user), "{reply}");
    let hidden = devnet
        .cast(&["rpc", "eth_getTransactionByHash", &tx_hash(&user)])
        .expect("rpc");
    assert_eq!(hidden, "null", "a pending private transaction is not shown");
    let by_bob = flashbots_call(
        &devnet.url,
        &bob,
        "eth_cancelPrivateTransaction",
        serde_json::json!({"txHash": tx_hash(&user)}),
    );
    assert_eq!(
        by_bob["result"], false,
        "only its owner cancels it: {by_bob}"
    );

    // Bob cannot reference it; Alice backruns it with a MEV-Share bundle over a block range.
    let backrun = mktx(dev4, 0, "3");
    let head = devnet.head();
    let bundle = serde_json::json!({
        "version": "v0.1",
        "inclusion": {"block": format!("{:#x}", head + 2), "maxBlock": format!("{:#x}", head + 8)},
        "body": [{"tx": first}, {"hash": tx_hash(&user)}, {"tx": backrun, "canRevert": false}],
        "validity": {"refund": [], "refundConfig": []},
    });
    let refused = flashbots_call(&devnet.url, &bob, "mev_sendBundle", bundle.clone());
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    let reply = flashbots_call(&devnet.url, &alice, "mev_sendBundle", bundle);
    assert!(reply["result"]["bundleHash"].is_string(), "{reply}");

    while devnet.head() < head + 2 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let receipt = |raw: &str| -> Value {
        let mut tries = 0;
        loop {
            if let Ok(json) = devnet.cast(&["receipt", &tx_hash(raw), "--json", "--async"])
                && let Ok(value) = serde_json::from_str::<Value>(&json)
                && value["blockNumber"].is_string()
            {
                return value;
            }
            tries += 1;
            assert!(
                devnet.head() <= head + 9 && tries < 200,
                "{raw} did not land by block {}",
                head + 8
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    let landed: Vec<Value> = [&first, &user, &backrun]
        .iter()
        .map(|raw| receipt(raw))
        .collect();
    let block = landed[0]["blockNumber"]
        .as_str()
        .expect("block")
        .to_string();
    let number = u64::from_str_radix(block.trim_start_matches("0x"), 16).expect("hex");
    assert!(
        (head + 2..=head + 8).contains(&number),
        "in the inclusion range: {number}"
    );
    let index = |r: &Value| {
        u64::from_str_radix(
            r["transactionIndex"]
                .as_str()
                .expect("index")
                .trim_start_matches("0x"),
            16,
        )
        .expect("hex")
    };
    for (i, r) in landed.iter().enumerate() {
        assert_eq!(r["blockNumber"].as_str(), Some(block.as_str()), "one block");
        assert_eq!(
            index(r),
            index(&landed[0]) + i as u64,
            "contiguous, in order"
        );
        assert_eq!(r["status"], "0x1");
    }
}

#[test]
fn test_a_peer_over_its_ip_budget_is_refused_at_once_and_full_pools_refuse_cheap_orders() {
    let dir = tempfile::tempdir().expect("tempdir");
    let devnet = Devnet::start_with(
        dir.path(),
        &[
            "--ip-rate",
            "1",
            "--ip-burst",
            "2",
            "--max-orders",
            "1",
            "--no-demo-contracts",
        ],
    );
    // Every sender from this address shares one budget.
    let cancel = serde_json::json!({"replacementUuid": "nothing"});
    for byte in [1u8, 2] {
        let auth = alloy_signer_local::PrivateKeySigner::from_bytes(
            &alloy_primitives::B256::repeat_byte(byte),
        )
        .expect("key");
        let reply = flashbots_call(&devnet.url, &auth, "eth_cancelBundle", cancel.clone());
        assert!(reply.get("error").is_none(), "{reply}");
    }
    let third =
        alloy_signer_local::PrivateKeySigner::from_bytes(&alloy_primitives::B256::repeat_byte(3))
            .expect("key");
    let refused = flashbots_call(&devnet.url, &third, "eth_cancelBundle", cancel);
    assert_eq!(refused["error"]["code"], -32005, "{refused}");

    // One order at most: nonce-gapped transactions stay pending, so the pool stays full.
    let dev1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
    let dev2 = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";
    let gapped = |key: &str, tip: &str| {
        let raw = devnet.signed_tx(
            key,
            TxSpec {
                value: "1",
                nonce: 5,
                tip,
                ..TxSpec::default()
            },
        );
        devnet.cast(&["publish", "--async", &raw])
    };
    gapped(dev1, "1gwei").expect("the first order fits");
    let err = gapped(dev2, "1gwei").expect_err("not worth more than what is held");
    assert!(err.contains("txpool is full"), "{err}");
    gapped(dev2, "3gwei").expect("a more valuable order evicts the cheaper one");
}

#[test]
fn test_bench_prints_figures_beside_the_anvil_baseline() {
    let out = Command::new(env!("CARGO_BIN_EXE_cobuild"))
        .args([
            "bench",
            "--orders",
            "60",
            "--reps",
            "2",
            "--anvil-reps",
            "2",
            "--sim-threads",
            "1",
            "--intake-requests",
            "50",
            "--intake-connections",
            "2",
        ])
        .env("COBUILD_TOOLS_BIN", cobuild_test_utils::tools_bin())
        .arg("--anvil")
        .arg(cobuild_test_utils::tool("anvil"))
        .output()
        .expect("cobuild bench runs");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{table}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "pool of 60 orders",
        "greedy",
        "greedy-profit",
        "conflict-search",
        "node round",
        "build_best",
        "anvil evm_mine",
        "vs anvil",
        "req/s",
    ] {
        assert!(
            table.contains(expected),
            "missing {expected:?} in:\n{table}"
        );
    }
}

/// Runs `cobuild` with `args` to completion.
fn cobuild(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cobuild"))
        .args(args)
        .output()
        .expect("cobuild runs")
}

/// Stdout of a run that must succeed.
fn cobuild_ok(args: &[&str]) -> String {
    let out = cobuild(args);
    assert!(
        out.status.success(),
        "cobuild {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Stderr of a run that must fail.
fn cobuild_err(args: &[&str]) -> String {
    let out = cobuild(args);
    assert!(!out.status.success(), "cobuild {args:?} succeeded");
    String::from_utf8(out.stderr).expect("utf-8")
}

/// The value printed after `label` in `cobuild keys` output.
fn printed(output: &str, label: &str) -> String {
    output
        .lines()
        .find_map(|line| line.strip_prefix(label))
        .map(|rest| rest.trim().to_string())
        .unwrap_or_else(|| panic!("no {label:?} in {output}"))
}

#[test]
fn test_keys_new_then_show_prints_the_same_public_keys_and_no_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = dir.path().join("node.key");
    let key_path = key_file.to_str().expect("utf-8 path");
    let created = cobuild_ok(&["keys", "new", "--out", key_path]);
    let shown = cobuild_ok(&["keys", "show", "--key-file", key_path]);
    for label in ["node key", "bls key", "coinbase"] {
        assert_eq!(printed(&created, label), printed(&shown, label), "{label}");
    }
    assert_eq!(printed(&shown, "node key").len(), 66, "{shown}");
    assert_eq!(printed(&shown, "bls key").len(), 98, "{shown}");

    // The secrets are in the file, and in no output.
    let text = std::fs::read_to_string(&key_file).expect("key file");
    let secrets: Vec<String> = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            line.split_once('=')
                .map(|(_, v)| v.trim().trim_matches('"'))
        })
        .map(|hex| hex.trim_start_matches("0x").to_lowercase())
        .collect();
    assert_eq!(secrets.len(), 3, "{text}");
    for secret in &secrets {
        assert_eq!(secret.len(), 64);
        for output in [&created, &shown] {
            assert!(!output.to_lowercase().contains(secret.as_str()), "{output}");
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file)
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Keys are never overwritten by accident; --force replaces them.
    let err = cobuild_err(&["keys", "new", "--out", key_path]);
    assert!(err.contains("already exists"), "{err}");
    let replaced = cobuild_ok(&["keys", "new", "--out", key_path, "--force"]);
    assert_ne!(
        printed(&replaced, "node key"),
        printed(&created, "node key")
    );
}

/// A member whose RPC port is taken says so and stops before it reaches for the hub (here
/// nothing answers at the hub's address; the node would wait 30 s for it).
#[test]
fn test_a_member_whose_rpc_port_is_taken_fails_at_once_naming_the_port() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = |name: &str| dir.path().join(name).to_str().expect("utf-8").to_string();
    let (key, registry, data) = (path("node.key"), path("members.toml"), path("node"));
    cobuild_ok(&["keys", "new", "--out", &key]);
    let p2p = format!("127.0.0.1:{}", free_port());
    cobuild_ok(&[
        "registry",
        "add",
        "--file",
        &registry,
        "--key-file",
        &key,
        "--address",
        &p2p,
    ]);
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port().to_string();
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let out = cobuild(&[
        "node",
        "--data-dir",
        &data,
        "--key-file",
        &key,
        "--registry",
        &registry,
        "--hub-rpc",
        &nowhere,
        "--relay-url",
        &nowhere,
        "--http-addr",
        "127.0.0.1",
        "--http-port",
        &port,
    ]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains(&format!("the RPC server on 127.0.0.1:{port}")) && said.contains("in use"),
        "{said}"
    );
}

#[test]
fn test_registry_add_list_remove_with_key_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = |name: &str| dir.path().join(name).to_str().expect("utf-8").to_string();
    let (a, b, registry) = (path("a.key"), path("b.key"), path("members.toml"));
    let node_a = printed(&cobuild_ok(&["keys", "new", "--out", &a]), "node key");
    let node_b = printed(&cobuild_ok(&["keys", "new", "--out", &b]), "node key");

    let add = |key: &str, address: &str| {
        let args = [
            "registry",
            "add",
            "--file",
            &registry,
            "--key-file",
            key,
            "--address",
            address,
        ];
        cobuild(&args)
    };
    let first = add(&a, "127.0.0.1:7000");
    assert!(first.status.success(), "{first:?}");
    assert!(String::from_utf8_lossy(&first.stdout).contains("added member 0"));
    let second = add(&b, "127.0.0.1:7001");
    assert!(second.status.success(), "{second:?}");
    assert!(String::from_utf8_lossy(&second.stdout).contains("added member 1"));

    let list = cobuild_ok(&["registry", "list", "--file", &registry]);
    let rows: Vec<&str> = list.lines().skip(1).collect();
    assert!(list.starts_with("ID"), "{list}");
    assert_eq!(rows.len(), 2, "{list}");
    assert!(
        rows[0].starts_with('0') && rows[0].contains("127.0.0.1:7000"),
        "{list}"
    );
    assert!(rows[0].contains(&node_a), "{list}");
    assert!(
        rows[1].starts_with('1') && rows[1].contains(&node_b),
        "{list}"
    );

    // The same key file twice: refused, and the registry is unchanged.
    let again = add(&a, "127.0.0.1:7002");
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("already registered as member 0"), "{err}");

    cobuild_ok(&["registry", "remove", "--file", &registry, "--id", "0"]);
    let list = cobuild_ok(&["registry", "list", "--file", &registry]);
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(list.contains(&node_b) && !list.contains(&node_a), "{list}");

    let err = cobuild_err(&["registry", "remove", "--file", &registry, "--id", "0"]);
    assert!(err.contains("no member with id 0"), "{err}");
    let err = cobuild_err(&["registry", "list", "--file", &path("missing.toml")]);
    assert!(err.contains("missing.toml"), "{err}");
    let err = cobuild_err(&["registry", "list"]);
    assert!(err.contains("--file"), "{err}");
}

#[test]
fn test_registry_contract_deploy_add_list_remove_and_refusals() {
    // Development accounts 8 (the owner, as in `devnet --nodes`) and 7 (not the owner).
    const OWNER_KEY: &str = "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97";
    const OTHER_KEY: &str = "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356";
    let dir = tempfile::tempdir().expect("tempdir");
    let devnet = Devnet::start(&dir.path().join("devnet"));
    let path = |name: &str| dir.path().join(name).to_str().expect("utf-8").to_string();
    let (a, b, c) = (path("a.key"), path("b.key"), path("c.key"));
    let node_a = printed(&cobuild_ok(&["keys", "new", "--out", &a]), "node key");
    let node_b = printed(&cobuild_ok(&["keys", "new", "--out", &b]), "node key");
    cobuild_ok(&["keys", "new", "--out", &c]);

    let deployed = cobuild_ok(&[
        "registry",
        "deploy",
        "--rpc-url",
        &devnet.url,
        "--owner-key",
        OWNER_KEY,
    ]);
    let contract = deployed.trim().to_string();
    assert!(
        contract.starts_with("0x") && contract.len() == 42,
        "{deployed}"
    );
    let source = ["--rpc-url", devnet.url.as_str(), "--contract", &contract];
    let add = |key: &str, address: &str, extra: &[&str]| {
        let mut args = vec!["registry", "add", "--key-file", key, "--address", address];
        args.extend(source);
        args.extend(extra);
        cobuild(&args)
    };
    let list = || {
        let mut args = vec!["registry", "list"];
        args.extend(source);
        cobuild_ok(&args)
    };

    assert_eq!(list(), "no members\n");
    let first = add(&a, "127.0.0.1:7000", &["--owner-key", OWNER_KEY]);
    assert!(first.status.success(), "{first:?}");
    assert!(String::from_utf8_lossy(&first.stdout).contains("added member 0"));
    let second = add(&b, "127.0.0.1:7001", &["--owner-key", OWNER_KEY]);
    assert!(second.status.success(), "{second:?}");
    assert!(String::from_utf8_lossy(&second.stdout).contains("added member 1"));

    let listed = list();
    let rows: Vec<&str> = listed.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{listed}");
    assert!(
        rows[0].starts_with('0') && rows[0].contains("127.0.0.1:7000"),
        "{listed}"
    );
    assert!(rows[0].contains(&node_a), "{listed}");
    assert!(
        rows[1].starts_with('1') && rows[1].contains(&node_b),
        "{listed}"
    );

    let mut remove = vec!["registry", "remove", "--id", "0", "--owner-key", OWNER_KEY];
    remove.extend(source);
    let removed = cobuild_ok(&remove);
    assert!(
        removed.contains("removed member 0") && removed.contains(&node_a),
        "{removed}"
    );
    let listed = list();
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert!(
        listed.contains(&node_b) && !listed.contains(&node_a),
        "{listed}"
    );

    // Refusals carry the contract's reason and change nothing.
    let not_owner = add(&c, "127.0.0.1:7002", &["--owner-key", OTHER_KEY]);
    assert!(!not_owner.status.success(), "{not_owner:?}");
    let err = String::from_utf8_lossy(&not_owner.stderr);
    assert!(err.contains("is not its owner"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let err = cobuild_err(&remove);
    assert!(err.contains("no current member with id 0"), "{err}");
    let duplicate = add(&b, "127.0.0.1:7003", &["--owner-key", OWNER_KEY]);
    assert!(!duplicate.status.success(), "{duplicate:?}");
    let err = String::from_utf8_lossy(&duplicate.stderr);
    assert!(err.contains("is already registered"), "{err}");
    // The contract numbers members itself; an explicit id is refused before anything is sent.
    let with_id = add(
        &c,
        "127.0.0.1:7002",
        &["--owner-key", OWNER_KEY, "--id", "5"],
    );
    assert!(!with_id.status.success(), "{with_id:?}");
    let err = String::from_utf8_lossy(&with_id.stderr);
    assert!(err.contains("assigns member ids itself"), "{err}");
    // A change without the owner's key is refused before connecting; its value is never echoed.
    let no_key = Command::new(env!("CARGO_BIN_EXE_cobuild"))
        .args([
            "registry",
            "add",
            "--key-file",
            &c,
            "--address",
            "127.0.0.1:7002",
        ])
        .args(source)
        .env_remove("COBUILD_REGISTRY_OWNER_KEY")
        .output()
        .expect("cobuild runs");
    assert!(!no_key.status.success(), "{no_key:?}");
    let err = String::from_utf8_lossy(&no_key.stderr);
    assert!(err.contains("--owner-key"), "{err}");
    let bad_key = add(&c, "127.0.0.1:7002", &["--owner-key", "0xsecretbutnothex"]);
    let err = String::from_utf8_lossy(&bad_key.stderr);
    assert!(
        !bad_key.status.success() && !err.contains("secretbutnothex"),
        "{err}"
    );
    assert_eq!(list().lines().count(), 2);

    // --file and the contract flags are one-of.
    let err = cobuild_err(&[
        "registry",
        "list",
        "--file",
        &path("members.toml"),
        "--rpc-url",
        &devnet.url,
        "--contract",
        &contract,
    ]);
    assert!(err.contains("cannot be used with"), "{err}");
}
