//! Order intake: signed `eth_sendBundle` requests sent over HTTP to the node's RPC server,
//! started in-process, against a baseline of checking the same signatures in a tight loop.
//!
//! ```text
//!  prepare (untimed): N distinct bundles, each body signed (X-Flashbots-Signature)
//!  baseline: verify_flashbots_signature over the N (header, body) pairs, one thread
//!  server runtime (2 workers): Devnet::start on a temporary data dir, port 0, not producing
//!  client runtime (this thread): C keep-alive connections pull the next request until all
//!                                are answered or the deadline passes
//!  re-sent (a fresh node): as many requests again, each transaction in bundles for the next K
//!                          blocks; the process's sender cache recovers each transaction once
//! ```
//! The per-sender and per-IP budgets are set high enough never to refuse (they are still
//! checked on every request); the node's producer is not running, so bundles stay in the pool.
//! Client and server share the machine's cores, so the figure is a lower bound for a node
//! whose clients are elsewhere.

use std::{
    net::{Ipv4Addr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use alloy_consensus::TxEnvelope;
use alloy_eips::Encodable2718;
use alloy_primitives::{Address, Bytes, U256, hex, keccak256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use cobuild_node::{Devnet, DevnetConfig, DevnetError, devnet::default_builder_key};
use cobuild_primitives::{DEFAULT_GAS_LIMIT, DEVNET_CHAIN_ID, SenderCache, SenderCacheStats};
use cobuild_rpc::{FLASHBOTS_SIGNATURE_HEADER, verify_flashbots_signature};
use hyper::body::Bytes as HttpBytes;
use serde_json::json;

use super::{
    IntakeConfig, IntakeRun,
    http::{HttpClient, HttpError},
    measure::Latency,
};
use crate::workload::{WorkloadError, account_key, sign};

/// Budgets high enough that no request is refused for its rate (or its simulated gas).
pub(crate) const UNLIMITED: cobuild_rpc::OrderflowLimits = {
    const RATE: u32 = 1_000_000_000;
    cobuild_rpc::OrderflowLimits {
        sender_rate: RATE,
        sender_burst: RATE,
        ip_rate: RATE,
        ip_burst: RATE,
        sim_gas_rate: RATE,
        sim_gas_burst: RATE,
    }
};

/// The intake benchmark failed.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// A runtime or the data folder could not be made.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The node did not start.
    #[error("devnet: {0}")]
    Devnet(Box<DevnetError>),
    /// A request could not be made.
    #[error(transparent)]
    Workload(#[from] WorkloadError),
    /// A request could not be signed.
    #[error("signing: {0}")]
    Sign(String),
    /// A connection failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// A client task panicked or was cancelled.
    #[error("client task: {0}")]
    Task(String),
    /// The baseline refused a request's own signature.
    #[error("signature check refused request {index}: {reason}")]
    BadSignature {
        /// Which request.
        index: usize,
        /// Why.
        reason: String,
    },
}

impl From<DevnetError> for IntakeError {
    fn from(error: DevnetError) -> Self {
        Self::Devnet(Box::new(error))
    }
}

/// What intake achieved.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IntakeFigure {
    /// Requests sent (answered or not).
    pub sent: usize,
    /// Answered with a bundle hash.
    pub accepted: usize,
    /// Answered with an error (HTTP or JSON-RPC) or not answered.
    pub errors: usize,
    /// Concurrent connections.
    pub connections: usize,
    /// From the first request to the last answer.
    #[serde(rename = "elapsed_ms", serialize_with = "crate::bench::report::ms")]
    pub elapsed: Duration,
    /// Accepted requests per second.
    pub requests_per_sec: f64,
    /// Request round-trip latency.
    pub latency: Latency,
    /// Signature checks per second in the baseline loop.
    pub verify_per_sec: f64,
    /// Whether the deadline stopped the sending.
    pub timed_out: bool,
    /// The run that re-sends each transaction for the next blocks, if made.
    pub resent: Option<ResentFigure>,
}

/// Intake of as many requests again, each transaction sent in bundles for the next `blocks`
/// blocks (every bundle a request of its own, signed over its own body).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ResentFigure {
    /// Blocks each transaction was sent for.
    pub blocks: usize,
    /// What the run achieved.
    #[serde(flatten)]
    pub run: IntakeRun,
    /// What the process's sender cache answered during the run.
    pub senders: SenderCacheStats,
}

/// One prepared request.
#[derive(Debug)]
pub(crate) struct Signed {
    /// The JSON-RPC body.
    pub(crate) body: HttpBytes,
    /// Its `X-Flashbots-Signature` header.
    pub(crate) header: String,
}

/// `count` one-transaction bundles signed by `signers` rotating keys named after `role`, each
/// transaction sent in `blocks` bundles, for blocks 1 to `blocks`, as a searcher sends a bundle
/// for each of the next blocks: all the bundles for block 1 first, then for block 2, and so on.
///
/// Each run's requests need their own `role`: a transaction the process met in an earlier run
/// has its signer in the process's sender cache, and would cost that run no recovery.
pub(crate) fn prepare(
    role: &str,
    count: usize,
    signers: usize,
    blocks: usize,
) -> Result<Vec<Signed>, IntakeError> {
    let keys: Vec<_> = (0..signers.max(1)).map(|i| account_key(role, i)).collect();
    let to = Address::repeat_byte(0x1e);
    let distinct = count.div_ceil(blocks.max(1));
    let txs = (0..distinct)
        .map(|i| {
            let key = &keys[i % keys.len()];
            let nonce = (i / keys.len()) as u64;
            let tx = sign(
                key,
                nonce,
                to,
                U256::from(1),
                Bytes::new(),
                21_000,
                1_000_000_000,
            )?;
            Ok((key, tx))
        })
        .collect::<Result<Vec<_>, IntakeError>>()?;
    (0..count)
        .map(|i| {
            let (key, tx) = &txs[i % distinct];
            let block = (i / distinct) as u64 + 1;
            signed_bundle(key, i as u64, tx.inner(), block)
        })
        .collect()
}

/// An `eth_sendBundle` request of the one transaction `tx` for block `block`, its body signed by
/// `key` (`X-Flashbots-Signature`).
pub(crate) fn signed_bundle(
    key: &PrivateKeySigner,
    id: u64,
    tx: &TxEnvelope,
    block: u64,
) -> Result<Signed, IntakeError> {
    let raw = hex::encode_prefixed(tx.encoded_2718());
    let body = serde_json::to_vec(&json!({
        "jsonrpc": "2.0",
        "id": id,
        "method": "eth_sendBundle",
        "params": [{"txs": [raw], "blockNumber": format!("{block:#x}")}],
    }))
    .map_err(|e| IntakeError::Sign(e.to_string()))?;
    let message = format!("{:#x}", keccak256(&body));
    let signature = key
        .sign_message_sync(message.as_bytes())
        .map_err(|e| IntakeError::Sign(e.to_string()))?;
    Ok(Signed {
        header: format!(
            "{}:{}",
            key.address(),
            hex::encode_prefixed(signature.as_bytes())
        ),
        body: HttpBytes::from(body),
    })
}

/// Checks every request's signature on one thread; checks per second.
fn verify_baseline(requests: &[Signed]) -> Result<f64, IntakeError> {
    let start = Instant::now();
    for (index, request) in requests.iter().enumerate() {
        verify_flashbots_signature(&request.header, &request.body).map_err(|e| {
            IntakeError::BadSignature {
                index,
                reason: e.to_string(),
            }
        })?;
    }
    Ok(requests.len() as f64 / start.elapsed().as_secs_f64().max(f64::MIN_POSITIVE))
}

/// What one connection saw.
#[derive(Default)]
struct Tally {
    sent: usize,
    accepted: usize,
    errors: usize,
    samples: Vec<Duration>,
    timed_out: bool,
}

async fn connection(
    addr: SocketAddr,
    requests: Arc<Vec<Signed>>,
    next: Arc<AtomicUsize>,
    deadline: Instant,
) -> Result<Tally, HttpError> {
    let mut client = HttpClient::connect(addr).await?;
    let mut tally = Tally::default();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(request) = requests.get(i) else {
            break;
        };
        let now = Instant::now();
        let Some(left) = deadline.checked_duration_since(now) else {
            tally.timed_out = true;
            break;
        };
        tally.sent += 1;
        let headers = [(FLASHBOTS_SIGNATURE_HEADER, request.header.as_str())];
        match tokio::time::timeout(left, client.post(request.body.clone(), &headers)).await {
            Ok(Ok((status, reply))) => {
                tally.samples.push(now.elapsed());
                let ok = status.is_success()
                    && serde_json::from_slice::<serde_json::Value>(&reply)
                        .is_ok_and(|v| v.get("result").is_some_and(|r| !r.is_null()));
                if ok {
                    tally.accepted += 1;
                } else {
                    tally.errors += 1;
                    tracing::debug!(
                        reply = %String::from_utf8_lossy(&reply[..reply.len().min(200)]),
                        "bench.intake.refused"
                    );
                }
            }
            Ok(Err(error)) => {
                // The connection is unusable after a transport error.
                tally.errors += 1;
                tracing::debug!(%error, "bench.intake.failed");
                break;
            }
            Err(_) => {
                tally.errors += 1;
                tally.timed_out = true;
                break;
            }
        }
    }
    Ok(tally)
}

/// A devnet node as `cobuild devnet` starts it (its own builder, bidder and local relay, no
/// demo contracts, budgets that never refuse), in a temporary folder, on a runtime of two
/// workers that stands for the node's process; its producer is not running yet.
pub(crate) fn start_devnet<E: From<std::io::Error> + From<DevnetError>>(
    prefix: &str,
    slot: Duration,
    max_orders: usize,
) -> Result<(tokio::runtime::Runtime, tempfile::TempDir, Devnet), E> {
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let dir = tempfile::Builder::new().prefix(prefix).tempdir()?;
    let devnet = server.block_on(Devnet::start(DevnetConfig {
        data_dir: dir.path().to_path_buf(),
        http_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        chain_id: DEVNET_CHAIN_ID,
        slot,
        gas_limit: DEFAULT_GAS_LIMIT,
        fee_recipient: Address::repeat_byte(0xfe),
        demo_contracts: false,
        limits: UNLIMITED,
        max_orders,
        bundle_horizon: 256,
        log_limits: cobuild_rpc::LogLimits::DEFAULT,
        history_blocks: None,
        proof_window: cobuild_rpc::DEFAULT_PROOF_WINDOW,
        accept_chain_rollback: false,
        builder_key: default_builder_key(),
        bid_percent: 100,
        relay_port: 0,
        max_bids_per_second: DEVNET_BIDS_PER_SECOND,
        extra_relays: Vec::new(),
        strict_relay: false,
    }))?;
    Ok((server, dir, devnet))
}

/// The bid cap of the benchmarks' devnet: the CLI's default.
pub(crate) const DEVNET_BIDS_PER_SECOND: u32 = 20;

/// Runs the intake benchmark: distinct bundles, then (if configured) the same number of
/// requests re-sending each transaction for the next blocks, each on a fresh node.
pub fn intake(config: &IntakeConfig) -> Result<IntakeFigure, IntakeError> {
    let requests = prepare("intake", config.requests, config.signers, 1)?;
    let verify_per_sec = verify_baseline(&requests)?;
    let (total, elapsed) = send_all(config, requests)?;
    let resent = match config.resend_blocks {
        blocks @ 2.. => {
            let requests = prepare("intake-resent", config.requests, config.signers, blocks)?;
            let before = SenderCache::global().stats();
            let (total, elapsed) = send_all(config, requests)?;
            let after = SenderCache::global().stats();
            Some(ResentFigure {
                blocks,
                run: IntakeRun {
                    sent: total.sent,
                    accepted: total.accepted,
                    errors: total.errors,
                    elapsed,
                    requests_per_sec: per_sec(total.accepted, elapsed),
                    latency: Latency::from_samples(total.samples),
                },
                senders: SenderCacheStats {
                    hits: after.hits - before.hits,
                    misses: after.misses - before.misses,
                },
            })
        }
        _ => None,
    };
    Ok(IntakeFigure {
        sent: total.sent,
        accepted: total.accepted,
        errors: total.errors,
        connections: config.connections.max(1),
        elapsed,
        requests_per_sec: per_sec(total.accepted, elapsed),
        latency: Latency::from_samples(total.samples),
        verify_per_sec,
        timed_out: total.timed_out,
        resent,
    })
}

fn per_sec(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
}

/// Sends `requests` to a fresh node over the configured connections; what they saw, and how
/// long from the first request to the last answer.
fn send_all(
    config: &IntakeConfig,
    requests: Vec<Signed>,
) -> Result<(Tally, Duration), IntakeError> {
    let (server, _dir, devnet) = start_devnet::<IntakeError>(
        "cobuild-bench-intake",
        Duration::from_secs(12),
        config.requests + 1_000,
    )?;
    let addr = devnet.rpc_addr;

    let clients = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let requests = Arc::new(requests);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + config.timeout;
    let tallies = clients.block_on(async {
        let tasks: Vec<_> = (0..config.connections.max(1))
            .map(|_| tokio::spawn(connection(addr, requests.clone(), next.clone(), deadline)))
            .collect();
        let mut tallies = Vec::with_capacity(tasks.len());
        for task in tasks {
            tallies.push(task.await);
        }
        tallies
    });
    let elapsed = start.elapsed();
    let mut total = Tally::default();
    for tally in tallies {
        let tally = tally.map_err(|e| IntakeError::Task(e.to_string()))??;
        total.sent += tally.sent;
        total.accepted += tally.accepted;
        total.errors += tally.errors;
        total.samples.extend(tally.samples);
        total.timed_out |= tally.timed_out;
    }
    drop(devnet);
    // Stops the server, the relay and the node's tasks.
    server.shutdown_timeout(Duration::from_secs(5));
    Ok((total, elapsed))
}
