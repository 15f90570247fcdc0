//! Intake with replication on and off: signed `eth_sendBundle` requests of the same shape (two
//! sets of distinct transactions, so neither run finds the other's senders in the process's
//! sender cache) sent to two RPC servers in turn, one without a replication hook, one whose hook makes
//! every accepted order durable in member 0's log and broadcasts it to the running members.
//!
//! Each server has its own pools over one fresh devnet chain (bundles for block 1), budgets
//! high enough never to refuse, and runs on the same 2-worker runtime; the clients are C
//! keep-alive connections on this thread that stop taking new requests at the deadline (the
//! ones in flight are answered and counted).

use std::{
    net::{Ipv4Addr, SocketAddr},
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use cobuild_chain::{Chain, Genesis};
use cobuild_pool::{BundlePool, OrderLimit, PoolConfig, TxPool};
use cobuild_primitives::{ChainSpec, DEFAULT_GAS_LIMIT, DEVNET_CHAIN_ID, INITIAL_BASE_FEE};
use cobuild_rpc::{Bundles, Eth, FLASHBOTS_SIGNATURE_HEADER, Replicate, RpcConfig};

use super::ReplicationBenchError;
use crate::bench::{
    http::{HttpClient, HttpError},
    intake::{Signed, UNLIMITED},
    measure::Latency,
};

/// One intake run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IntakeRun {
    /// Requests sent.
    pub sent: usize,
    /// Answered with a bundle hash.
    pub accepted: usize,
    /// Answered with an error, or the connection failed.
    pub errors: usize,
    /// From the first request to the last answer.
    #[serde(rename = "elapsed_ms", serialize_with = "crate::bench::report::ms")]
    pub elapsed: Duration,
    /// Accepted requests per second.
    pub requests_per_sec: f64,
    /// Round trip of the answered requests.
    pub latency: Latency,
}

/// A fresh devnet chain in `dir` (its head is block 0, so the bundles target block 1).
pub(crate) fn chain(dir: &Path) -> Result<Chain, ReplicationBenchError> {
    Ok(Chain::open(
        &dir.join("chain.redb"),
        Arc::new(ChainSpec::devnet(DEVNET_CHAIN_ID)),
        &Genesis::devnet(DEFAULT_GAS_LIMIT, INITIAL_BASE_FEE),
    )?)
}

/// Starts an RPC server over `chain` with fresh pools holding `capacity` orders, replicating
/// through `hook` if given, and sends it `requests` until they run out or `duration` passes.
pub(crate) fn run(
    server: &tokio::runtime::Runtime,
    chain: &Chain,
    hook: Option<Arc<dyn Replicate>>,
    requests: &Arc<Vec<Signed>>,
    connections: usize,
    duration: Duration,
) -> Result<IntakeRun, ReplicationBenchError> {
    let limit = OrderLimit::new(requests.len() + 1_000);
    let txs = TxPool::with_limit(chain.clone(), PoolConfig::default(), &limit);
    let bundles = BundlePool::with_limit(&limit);
    let limits = UNLIMITED;
    let mut eth = Eth::new(chain.clone(), txs.clone());
    let mut orderflow = Bundles::new(chain.clone(), txs, bundles, limits);
    if let Some(hook) = hook {
        eth = eth.with_replication(hook.clone());
        orderflow = orderflow.with_replication(hook);
    }
    let rpc = server.block_on(cobuild_rpc::start(
        RpcConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))),
        eth,
        orderflow,
    ))?;
    let clients = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let stop_at = start + duration;
    let tallies = clients.block_on(async {
        let tasks: Vec<_> = (0..connections.max(1))
            .map(|_| {
                tokio::spawn(connection(
                    rpc.local_addr,
                    requests.clone(),
                    next.clone(),
                    stop_at,
                ))
            })
            .collect();
        let mut tallies = Vec::with_capacity(tasks.len());
        for task in tasks {
            tallies.push(task.await);
        }
        tallies
    });
    let elapsed = start.elapsed();
    // Stopping an already stopped server is not a failure of the run.
    let _ = rpc.handle.stop();
    let mut total = Tally::default();
    for tally in tallies {
        let tally = tally.map_err(|e| ReplicationBenchError::Task(e.to_string()))??;
        total.sent += tally.sent;
        total.accepted += tally.accepted;
        total.errors += tally.errors;
        total.samples.extend(tally.samples);
    }
    Ok(IntakeRun {
        sent: total.sent,
        accepted: total.accepted,
        errors: total.errors,
        elapsed,
        requests_per_sec: total.accepted as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE),
        latency: Latency::from_samples(total.samples),
    })
}

/// What one connection saw.
#[derive(Debug, Default)]
struct Tally {
    sent: usize,
    accepted: usize,
    errors: usize,
    samples: Vec<Duration>,
}

async fn connection(
    addr: SocketAddr,
    requests: Arc<Vec<Signed>>,
    next: Arc<AtomicUsize>,
    stop_at: Instant,
) -> Result<Tally, HttpError> {
    let mut client = HttpClient::connect(addr).await?;
    let mut tally = Tally::default();
    while Instant::now() < stop_at {
        let Some(request) = requests.get(next.fetch_add(1, Ordering::Relaxed)) else {
            break;
        };
        tally.sent += 1;
        let sent = Instant::now();
        let headers = [(FLASHBOTS_SIGNATURE_HEADER, request.header.as_str())];
        match client.post(request.body.clone(), &headers).await {
            Ok((status, reply)) => {
                tally.samples.push(sent.elapsed());
                let accepted = status.is_success()
                    && serde_json::from_slice::<serde_json::Value>(&reply)
                        .is_ok_and(|v| v.get("result").is_some_and(|r| !r.is_null()));
                if accepted {
                    tally.accepted += 1;
                } else {
                    tally.errors += 1;
                    tracing::debug!(
                        reply = %String::from_utf8_lossy(&reply[..reply.len().min(200)]),
                        "bench.replication.intake.refused"
                    );
                }
            }
            Err(error) => {
                // The connection is unusable after a transport error.
                tally.errors += 1;
                tracing::debug!(%error, "bench.replication.intake.failed");
                break;
            }
        }
    }
    Ok(tally)
}
