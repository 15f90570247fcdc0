//! The baseline: anvil 1.7.1 (`--no-mining --order fifo --hardfork osaka`) mining the same
//! pending transactions with `evm_mine`, measured in the same run.
//!
//! ```text
//!  spawn anvil (same chain id, gas limit) ─▶ anvil_setBalance (genesis-funded accounts)
//!    ─▶ replay the setup blocks (send, evm_mine) ─▶ check the pool reserves match
//!    ─▶ per repetition: evm_snapshot, send the canonical pending txs, set the next base fee,
//!       time evm_mine, read the block, anvil_dropAllTransactions, evm_revert
//! ```
//! Then, back at the setup state, the same workload is built on anvil's state read over
//! JSON-RPC (see `el`).
//!
//! Only `evm_mine` is timed (as one JSON-RPC round trip on loopback, which adds well under a
//! millisecond). Anvil has no bundles: their transactions arrive flattened in pool order and
//! are mined one by one, so a bundle's bid lands even when its swap reverts.

use std::{
    net::{Ipv4Addr, SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use alloy_primitives::{Address, Bytes, U256};
use serde_json::{Value, json};

use super::{
    el::{self, ElFigure},
    http::{HttpError, JsonRpc},
    measure::Latency,
};
use crate::Workload;

/// Transactions per `eth_sendRawTransaction` batch request.
const SEND_BATCH: usize = 500;
/// How long anvil may take to answer after it is spawned.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The anvil baseline failed.
#[derive(Debug, thiserror::Error)]
pub enum AnvilError {
    /// The binary could not be run.
    #[error("spawning {path}: {source}")]
    Spawn {
        /// The binary.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It did not answer in time.
    #[error("anvil did not answer on {0} within {START_TIMEOUT:?}")]
    NotReady(SocketAddr),
    /// A JSON-RPC exchange failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// Anvil refused some of the transactions sent.
    #[error("anvil refused {refused} of {sent} transactions, first: {first}")]
    Refused {
        /// How many were refused.
        refused: usize,
        /// How many were sent.
        sent: usize,
        /// The first refusal.
        first: String,
    },
    /// Anvil's state after the setup differs from the workload's chain.
    #[error("anvil diverged from the workload chain: {0}")]
    Diverged(String),
    /// Building on anvil's state over JSON-RPC panicked (a bug). Its errors are not this: they
    /// go into [`AnvilFigure::el`] and the run goes on.
    #[error("building on anvil's state: {0}")]
    El(String),
}

/// Where anvil is and how often to time it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnvilConfig {
    /// The anvil binary.
    pub path: PathBuf,
    /// Timed `evm_mine` repetitions per pool.
    pub reps: usize,
}

impl AnvilConfig {
    /// The pinned anvil of the repository (`tools/node_modules/.bin/anvil`), or the one in
    /// `COBUILD_TOOLS_BIN`.
    pub fn default_path() -> PathBuf {
        std::env::var_os("COBUILD_TOOLS_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tools/node_modules/.bin")
            })
            .join("anvil")
    }
}

/// What anvil did with the same pending transactions.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AnvilFigure {
    /// `anvil --version`, first line.
    pub version: String,
    /// `evm_mine` latency.
    pub latency: Latency,
    /// Transactions in the mined block.
    pub txs: usize,
    /// Gas used by the mined block.
    pub gas_used: u64,
    /// What the coinbase gained in the mined block (tips plus bids, bundles not atomic).
    pub coinbase_gain: U256,
    /// The same workload built on anvil's state read over JSON-RPC, or why that failed. Its
    /// failure is reported, not fatal: on a large pool anvil can take longer to answer a batch
    /// of reads than the client waits, and the run's other figures still stand.
    #[serde(serialize_with = "el_outcome")]
    pub el: Result<ElFigure, String>,
}

/// A measured [`ElFigure`] as itself, a failed one as `{"error": why}`.
fn el_outcome<S: serde::Serializer>(
    el: &Result<ElFigure, String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::Serialize;
    match el {
        Ok(figure) => figure.serialize(serializer),
        Err(why) => serde_json::json!({ "error": why }).serialize(serializer),
    }
}

/// An anvil process on loopback, killed on drop.
#[derive(Debug)]
struct Process {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16, std::io::Error> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()
        .map(|a| a.port())
}

fn version(path: &Path) -> Result<String, AnvilError> {
    let out = Command::new(path)
        .arg("--version")
        .output()
        .map_err(|source| AnvilError::Spawn {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string())
}

async fn spawn(
    path: &Path,
    gas_limit: u64,
    chain_id: u64,
) -> Result<(Process, JsonRpc), AnvilError> {
    let spawn_error = |source| AnvilError::Spawn {
        path: path.to_path_buf(),
        source,
    };
    let port = free_port().map_err(spawn_error)?;
    let child = Command::new(path)
        .args(["--port", &port.to_string(), "--silent"])
        .args(["--no-mining", "--order", "fifo", "--hardfork", "osaka"])
        .args(["--gas-limit", &gas_limit.to_string()])
        .args(["--chain-id", &chain_id.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(spawn_error)?;
    let process = Process {
        child,
        addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
    };
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(mut rpc) = JsonRpc::connect(process.addr).await
            && rpc.call("eth_chainId", json!([])).await.is_ok()
        {
            return Ok((process, rpc));
        }
        if Instant::now() > deadline {
            return Err(AnvilError::NotReady(process.addr));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Sends raw transactions in batches; every one must be accepted.
async fn send_raw(rpc: &mut JsonRpc, txs: &[Bytes]) -> Result<(), AnvilError> {
    let mut refused = 0;
    let mut first = None;
    for chunk in txs.chunks(SEND_BATCH) {
        let results = rpc
            .batch(
                "eth_sendRawTransaction",
                chunk.iter().map(|raw| json!([raw])),
            )
            .await?;
        for result in results {
            if let Err(e) = result {
                refused += 1;
                first.get_or_insert_with(|| e.to_string());
            }
        }
    }
    match first {
        None => Ok(()),
        Some(first) => Err(AnvilError::Refused {
            refused,
            sent: txs.len(),
            first,
        }),
    }
}

fn quantity(value: &Value) -> Result<U256, AnvilError> {
    value
        .as_str()
        .and_then(|s| s.parse::<U256>().ok())
        .ok_or_else(|| AnvilError::Diverged(format!("not a quantity: {value}")))
}

/// `(transactions, gas used)` of the latest block.
async fn latest(rpc: &mut JsonRpc) -> Result<(usize, u64), AnvilError> {
    let block = rpc
        .call("eth_getBlockByNumber", json!(["latest", false]))
        .await?;
    let txs = block["transactions"].as_array().map_or(0, Vec::len);
    let gas = quantity(&block["gasUsed"])?.saturating_to::<u64>();
    Ok((txs, gas))
}

async fn balance(rpc: &mut JsonRpc, who: Address) -> Result<U256, AnvilError> {
    quantity(&rpc.call("eth_getBalance", json!([who, "latest"])).await?)
}

/// Runs the baseline for `workload`: the next block at `base_fee`, paying `coinbase`.
pub(crate) async fn baseline(
    workload: &Workload,
    base_fee: u64,
    coinbase: Address,
    config: &AnvilConfig,
) -> Result<AnvilFigure, AnvilError> {
    let version = version(&config.path)?;
    let (process, mut rpc) = spawn(
        &config.path,
        workload.config.gas_limit,
        workload.chain.spec().chain_id(),
    )
    .await?;

    // The genesis accounts anvil does not have, then the setup blocks.
    for chunk in workload.funded.chunks(SEND_BATCH) {
        let params = chunk
            .iter()
            .map(|(who, balance)| json!([who, format!("{balance:#x}")]));
        for result in rpc.batch("anvil_setBalance", params).await? {
            result?;
        }
    }
    let setup: Vec<Bytes> = workload
        .setup_blocks
        .iter()
        .flatten()
        .map(|tx| Bytes::from(alloy_eips::Encodable2718::encoded_2718(tx.inner())))
        .collect();
    send_raw(&mut rpc, &setup).await?;
    let mut mined = 0;
    // Anvil packs the same way (a transaction that does not fit waits); bounded regardless.
    for _ in 0..workload.setup_blocks.len() * 2 + 2 {
        if mined >= setup.len() {
            break;
        }
        rpc.call("evm_mine", json!([])).await?;
        mined += latest(&mut rpc).await?.0;
    }
    if mined != setup.len() {
        return Err(AnvilError::Diverged(format!(
            "mined {mined} of {} setup transactions",
            setup.len()
        )));
    }
    let pool = workload.demo.pool;
    let reserve0 = quantity(
        &rpc.call("eth_getStorageAt", json!([pool, "0x0", "latest"]))
            .await?,
    )?;
    let (_, state) = workload
        .chain
        .head_state()
        .map_err(|e| AnvilError::Diverged(e.to_string()))?;
    let ours = state
        .storage_at(pool, U256::ZERO)
        .map_err(|e| AnvilError::Diverged(e.to_string()))?;
    if reserve0 != ours {
        return Err(AnvilError::Diverged(format!(
            "pool reserve0 {reserve0} on anvil, {ours} on the workload chain"
        )));
    }
    rpc.call("anvil_setCoinbase", json!([coinbase])).await?;

    let mut samples = Vec::with_capacity(config.reps);
    let mut last = (0, 0, U256::ZERO);
    for _ in 0..config.reps.max(1) {
        let snapshot = rpc.call("evm_snapshot", json!([])).await?;
        send_raw(&mut rpc, &workload.canonical).await?;
        rpc.call(
            "anvil_setNextBlockBaseFeePerGas",
            json!([format!("{base_fee:#x}")]),
        )
        .await?;
        let before = balance(&mut rpc, coinbase).await?;
        let start = Instant::now();
        rpc.call("evm_mine", json!([])).await?;
        samples.push(start.elapsed());
        let (txs, gas) = latest(&mut rpc).await?;
        let after = balance(&mut rpc, coinbase).await?;
        last = (txs, gas, after.saturating_sub(before));
        rpc.call("anvil_dropAllTransactions", json!([])).await?;
        let reverted = rpc.call("evm_revert", json!([snapshot])).await?;
        if reverted != Value::Bool(true) {
            return Err(AnvilError::Diverged(
                "evm_revert refused the snapshot".into(),
            ));
        }
    }
    // Back at the setup state: the same workload on anvil's state, read over JSON-RPC. Its
    // reads wait on a runtime of their own, so they run on a thread outside this one.
    let url = format!("http://{}", process.addr);
    let el = std::thread::scope(|s| s.spawn(|| el::measure(&url, workload)).join())
        .map_err(|_| AnvilError::El("the measurement panicked".into()))?
        .map_err(|e| e.to_string());
    if let Err(why) = &el {
        tracing::warn!(%why, "bench.anvil.el_failed");
    }
    Ok(AnvilFigure {
        version,
        latency: Latency::from_samples(samples),
        txs: last.0,
        gas_used: last.1,
        coinbase_gain: last.2,
        el,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_a_failed_build_on_anvils_state_is_reported_in_the_json() {
        let figure = AnvilFigure {
            version: "anvil Version: 1.7.1".into(),
            latency: Latency::from_samples(vec![Duration::from_millis(25)]),
            txs: 1,
            gas_used: 21_000,
            coinbase_gain: U256::from(1u64),
            el: Err("execution client did not answer within 10s".into()),
        };
        let json = serde_json::to_value(&figure).expect("serializes");
        assert_eq!(
            json["el"]["error"], "execution client did not answer within 10s",
            "{json}"
        );
        assert!(json["latency"]["p50_ms"].as_f64() > Some(0.0), "{json}");
    }
}
