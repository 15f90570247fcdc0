//! Test helpers: the pinned external clients (anvil, cast) and processes driven by them, and a
//! seeded generator for property tests and workloads.
//!
//! The tools come from `tools/package.json` (installed by `scripts/test.sh`); tests find them in
//! `COBUILD_TOOLS_BIN`, or in `tools/node_modules/.bin` of the repository.

use std::{
    collections::BTreeSet,
    hash::{BuildHasher, RandomState},
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Mutex, PoisonError},
};

use serde_json::Value;

mod rng;
pub use rng::Rng;

/// The folder holding the pinned tool binaries.
pub fn tools_bin() -> PathBuf {
    std::env::var_os("COBUILD_TOOLS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tools/node_modules/.bin")
        })
}

/// The path of one tool.
///
/// # Panics
/// If the tool is not installed, with the command that installs it.
pub fn tool(name: &str) -> PathBuf {
    let path = tools_bin().join(name);
    assert!(
        path.exists(),
        "{} not found: run scripts/test.sh (npm ci --prefix tools)",
        path.display()
    );
    path
}

/// `cast` pointed at one JSON-RPC endpoint.
#[derive(Debug, Clone)]
pub struct Cast {
    /// The endpoint.
    pub url: String,
}

impl Cast {
    /// Runs `cast <args> --rpc-url <url>`: its stdout on success, its stderr on failure.
    pub fn run(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(tool("cast"))
            .args(args)
            .args(["--rpc-url", &self.url])
            .env("FOUNDRY_DISABLE_NIGHTLY_WARNING", "1")
            .output()
            .expect("cast runs");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).to_string())
        }
    }

    /// Runs `cast` and expects success.
    ///
    /// # Panics
    /// If cast fails, with its error output.
    pub fn ok(&self, args: &[&str]) -> String {
        self.run(args)
            .unwrap_or_else(|err| panic!("cast {args:?} failed: {err}"))
    }

    /// A raw JSON-RPC call with JSON `params`.
    pub fn rpc(&self, method: &str, params: &str) -> Value {
        serde_json::from_str(&self.ok(&["rpc", "--raw", method, params])).expect("cast prints json")
    }
}

/// The lowest port [`free_port`] looks at.
const QUIET_FLOOR: u16 = 10_000;

/// A free loopback port, for a server a test starts next, and never one this process handed
/// out before.
///
/// Taken from below the kernel's ephemeral range where there is room. A port from that range
/// (what binding port 0 gives) can become the local port of any connection made on the
/// machine before the server binds it: with a suite's devnets dialling each other, a member
/// started on such a port once failed to bind in CI.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut given = GIVEN.lock().unwrap_or_else(PoisonError::into_inner);
    let span = ephemeral_floor()
        .unwrap_or(QUIET_FLOOR)
        .saturating_sub(QUIET_FLOOR);
    // Processes running at once (test binaries, devnets) should not walk the ports in step.
    let start = BuildHasher::hash_one(&RandomState::new(), 0u8);
    let quiet = (0..span).map(|i| QUIET_FLOOR + ((start + u64::from(i)) % u64::from(span)) as u16);
    let port = quiet
        .take(1024)
        .find(|port| !given.contains(port) && TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .unwrap_or_else(|| {
            TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("bind loopback")
                .port()
        });
    given.insert(port);
    port
}

/// The first port of the kernel's ephemeral range, where it says (Linux).
fn ephemeral_floor() -> Option<u16> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    range.split_whitespace().next()?.parse().ok()
}

/// An anvil process on loopback, killed on drop.
#[derive(Debug)]
pub struct Anvil {
    child: Child,
    /// What it was started with, to start it again the same way.
    args: Vec<String>,
    port: u16,
    /// `cast` pointed at it.
    pub cast: Cast,
}

impl Anvil {
    /// Starts anvil with `args` and waits until it answers.
    ///
    /// # Panics
    /// If it does not start.
    pub fn start(args: &[&str]) -> Self {
        let port = free_port();
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let mut anvil = Self {
            child: Self::spawn(port, &args),
            args,
            port,
            cast: Cast {
                url: format!("http://127.0.0.1:{port}"),
            },
        };
        anvil.wait_ready();
        anvil
    }

    /// Stops anvil and starts it again on the same port with the same arguments, as an
    /// operator restarts an execution client; its state starts over.
    ///
    /// # Panics
    /// If it does not start again.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Self::spawn(self.port, &self.args);
        self.wait_ready();
    }

    fn spawn(port: u16, args: &[String]) -> Child {
        Command::new(tool("anvil"))
            .args(["--port", &port.to_string(), "--silent"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("anvil starts")
    }

    /// Waits until it answers; each failed attempt is a refused connection.
    fn wait_ready(&mut self) {
        for _ in 0..500 {
            if self.cast.run(&["block-number"]).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("anvil did not start on {}", self.cast.url);
    }
}

impl Anvil {
    /// Anvil with a devnet's rules: every fork through Osaka, `chain_id`, `gas_limit` and
    /// `base_fee` at genesis, mining only when told, transactions in the order they arrive.
    ///
    /// # Panics
    /// If it does not start.
    pub fn like_devnet(chain_id: u64, gas_limit: u64, base_fee: u64) -> Self {
        let (chain_id, gas_limit, base_fee) = (
            chain_id.to_string(),
            gas_limit.to_string(),
            base_fee.to_string(),
        );
        Self::start(&[
            "--no-mining",
            "--order",
            "fifo",
            "--hardfork",
            "osaka",
            "--gas-limit",
            &gas_limit,
            "--chain-id",
            &chain_id,
            "--base-fee",
            &base_fee,
        ])
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `X-Flashbots-Signature` header a searcher's client (ethers-provider-bundle,
/// web3-flashbots) sends with `body`: `address:signature` of the body's keccak as hex text.
///
/// # Panics
/// If signing fails.
pub fn flashbots_header(auth: &alloy_signer_local::PrivateKeySigner, body: &[u8]) -> String {
    use alloy_signer::SignerSync;
    let digest = format!("{:#x}", alloy_primitives::keccak256(body));
    let signature = auth.sign_message_sync(digest.as_bytes()).expect("sign");
    format!("{}:{}", auth.address(), signature)
}

/// POSTs `body` to `url` signed by `auth` as a searcher's client signs it, and returns the
/// status code and the response body.
pub fn flashbots_post(
    url: &str,
    body: &[u8],
    auth: &alloy_signer_local::PrivateKeySigner,
) -> (u16, String) {
    http_post(
        url,
        body,
        &[("X-Flashbots-Signature", &flashbots_header(auth, body))],
    )
}

/// POSTs `body` to `url` (`http://host:port`, with a path and query or not) with `headers`, as
/// a client would send it, and returns the status code and the response body.
///
/// # Panics
/// If the connection fails or the reply is not HTTP.
pub fn http_post(url: &str, body: &[u8], headers: &[(&str, &str)]) -> (u16, String) {
    try_http_post(url, body, headers).expect("an HTTP exchange")
}

/// [`http_post`], with a failed connection or a reply that is not HTTP as an error: for polls
/// of a process that may be starting, stopping or busy, where that means "not yet".
///
/// # Errors
/// The connection failed, was reset, or the reply has no HTTP status line.
pub fn try_http_post(
    url: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> std::io::Result<(u16, String)> {
    let rest = url.trim_start_matches("http://");
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    http_request("POST", authority, path, body, headers)
}

/// GETs `path` (with its query) from `url` (`http://host:port`); returns the status code and
/// the response body.
///
/// # Panics
/// If the connection fails or the reply is not HTTP.
pub fn http_get(url: &str, path: &str) -> (u16, String) {
    http_request("GET", url, path, &[], &[]).expect("an HTTP exchange")
}

fn http_request(
    method: &str,
    url: &str,
    path: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(addr)?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP reply: {response:?}")))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// The first params object of every fixture request of `method`, as the client sent it.
///
/// # Panics
/// If a fixture body is not JSON.
pub fn flashbots_fixture_params(method: &str) -> Vec<Value> {
    flashbots_fixtures()
        .into_iter()
        .filter(|(m, _, _)| m == method)
        .map(|(_, _, body)| {
            let body: Value = serde_json::from_str(&body).expect("body json");
            body["params"][0].clone()
        })
        .collect()
}

/// The real client requests recorded by `tools/record-fixtures.sh` (ethers-provider-bundle,
/// mev-share-client and web3-flashbots, pinned in `tools/`): `(method, header, body)`.
///
/// # Panics
/// If the checked-in fixture file is missing or not JSON lines.
pub fn flashbots_fixtures() -> Vec<(String, String, String)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/flashbots-client-requests.jsonl"
    );
    std::fs::read_to_string(path)
        .expect("fixtures checked in beside this crate (tools/record-fixtures.sh records them)")
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).expect("fixture json");
            let field = |k: &str| v[k].as_str().expect("string field").to_string();
            (field("method"), field("header"), field("body"))
        })
        .collect()
}

/// The Python of the test tools' virtualenv (`tools/.venv`, with PyPI `flashbots` pinned).
///
/// # Panics
/// If the virtualenv is missing, with the command that makes it.
pub fn venv_python() -> PathBuf {
    let path = tools_bin().join("../../.venv/bin/python");
    assert!(
        path.exists(),
        "{} not found: run scripts/test.sh (makes tools/.venv)",
        path.display()
    );
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_free_ports_are_distinct_bindable_and_below_the_ephemeral_range() {
        let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
        let distinct: BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len(), "{ports:?}");
        for port in &ports {
            TcpListener::bind(("127.0.0.1", *port)).expect("free");
        }
        if let Some(floor) = ephemeral_floor().filter(|f| *f > QUIET_FLOOR + 1024) {
            assert!(
                ports.iter().all(|p| (QUIET_FLOOR..floor).contains(p)),
                "{ports:?} not in {QUIET_FLOOR}..{floor}"
            );
        }
    }
}
