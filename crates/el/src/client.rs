//! One JSON-RPC connection to an execution client, shared by the states read through it.

use std::{
    collections::BTreeMap,
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use alloy_consensus::{Header, Sealed, TxEnvelope};
use alloy_primitives::{B256, map::HashMap};
use alloy_rpc_client::{BuiltInConnectionString, ClientBuilder, ConnectionConfig, RpcClient};
use parking_lot::RwLock;
use revm::bytecode::Bytecode;

use crate::{
    ElError, RpcSource,
    pending::{PENDING_BUFFER, PendingStream},
};

/// Longest wait for one read: a slot is twelve seconds, and a read that takes longer helps no
/// bid; without it a read sent while a WS connection is being made again would wait for it.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// First pause before making a dropped WS connection again (doubling up to alloy's cap).
const RECONNECT_INTERVAL: Duration = Duration::from_millis(250);

/// The execution client's head when asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElHead {
    /// Its number.
    pub number: u64,
    /// Its hash.
    pub hash: B256,
}

/// A connection to an execution client's JSON-RPC (HTTP), with the code it has read (by hash,
/// for good) and a count of its round trips. Clones share all three.
#[derive(Debug, Clone)]
pub struct ElClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) rpc: RpcClient,
    runtime: OwnRuntime,
    pub(crate) code: RwLock<HashMap<B256, Bytecode>>,
    round_trips: AtomicU64,
}

impl ElClient {
    /// Connects to the execution client at `url`: `http://` or `https://`, `ws://` or
    /// `wss://`, or the path of its IPC socket. Over HTTP nothing is sent until the first read;
    /// WS and IPC connect now.
    pub fn connect(url: &str) -> Result<Self, ElError> {
        let refused = |reason: String| ElError::Url {
            url: url.to_owned(),
            reason,
        };
        // Parsed here too, for an error that names what is accepted.
        let _: BuiltInConnectionString =
            url.parse().map_err(|e: alloy_transport::TransportError| {
                refused(format!(
                    "not http(s)://, ws(s):// or the path of an IPC socket ({e})"
                ))
            })?;
        // Its own runtime: reads come from simulation and building threads, which wait.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("el-rpc")
            .enable_all()
            .build()?;
        let runtime = OwnRuntime(Some(runtime));
        // A WS connection that drops is made again for as long as it takes (alloy stops after
        // ten tries by default, which would leave the node without a client for good); reads
        // meanwhile fail at their timeout.
        let config = ConnectionConfig::new()
            .with_max_retries(u32::MAX)
            .with_retry_interval(RECONNECT_INTERVAL);
        let rpc = wait_on(&runtime, async {
            ClientBuilder::default()
                .connect_with_config(url, config)
                .await
                .map_err(|e| refused(e.to_string()))
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                rpc,
                runtime,
                code: RwLock::new(HashMap::default()),
                round_trips: AtomicU64::new(0),
            }),
        })
    }

    /// The client's head block.
    pub fn head(&self) -> Result<ElHead, ElError> {
        let block: Option<alloy_rpc_types_eth::Block> = self.inner.call(
            "eth_getBlockByNumber",
            self.inner
                .rpc
                .request("eth_getBlockByNumber", ("latest", false)),
        )?;
        let block = block.ok_or(ElError::NoBlock(B256::ZERO))?;
        Ok(ElHead {
            number: block.header.number,
            hash: block.header.hash,
        })
    }

    /// The header of the block `hash`, sealed with that hash.
    pub fn header(&self, hash: B256) -> Result<Sealed<Header>, ElError> {
        self.inner.header(hash)
    }

    /// The id of the client's chain (what transactions must be signed for).
    pub fn chain_id(&self) -> Result<u64, ElError> {
        let id: alloy_primitives::U64 = self.inner.call(
            "eth_chainId",
            self.inner.rpc.request_noparams("eth_chainId"),
        )?;
        Ok(id.to())
    }

    /// The state after the block `hash` (number `number`), every read pinned to that block.
    pub fn state_at(&self, hash: B256, number: u64) -> RpcSource {
        RpcSource::new(self.inner.clone(), hash, number)
    }

    /// The transactions pending in the client's pool (`txpool_content`'s `pending`): the
    /// public mempool a builder adds to its orderflow. Their senders are left to the caller to
    /// recover from the signatures (not taken from the answer), once it knows which are new.
    pub fn pending_transactions(&self) -> Result<Vec<TxEnvelope>, ElError> {
        let content: alloy_rpc_types_txpool::TxpoolContent = self.inner.call(
            "txpool_content",
            self.inner.rpc.request_noparams("txpool_content"),
        )?;
        Ok(content
            .pending
            .into_values()
            .flat_map(BTreeMap::into_values)
            .map(|tx| tx.inner.into_inner())
            .collect())
    }

    /// The client's new pending transactions as it hears of them (`eth_subscribe`
    /// `newPendingTransactions` with full transactions), over WS or IPC. `None` over HTTP,
    /// which has no subscriptions; `Err` if the client refuses the subscription.
    pub fn subscribe_pending(&self) -> Result<Option<PendingStream>, ElError> {
        let Some(frontend) = self.inner.rpc.pubsub_frontend() else {
            return Ok(None);
        };
        // The buffer of a subscription is set when it is made.
        frontend.set_channel_size(PENDING_BUFFER);
        let id: B256 = self.inner.call(
            "eth_subscribe",
            self.inner
                .rpc
                .request("eth_subscribe", ("newPendingTransactions", true)),
        )?;
        let subscription = self.inner.wait(async {
            frontend
                .get_subscription(id)
                .await
                .map_err(|source| ElError::Rpc {
                    method: "eth_subscribe",
                    source,
                })
        })?;
        Ok(Some(PendingStream {
            subscription: subscription.into(),
            missed: 0,
        }))
    }

    /// JSON-RPC round trips so far (a batch counts once): what the per-slot figures report.
    pub fn round_trips(&self) -> u64 {
        self.inner.round_trips.load(Ordering::Relaxed)
    }
}

impl Inner {
    /// The header of the block `hash`, sealed with that hash.
    pub(crate) fn header(&self, hash: B256) -> Result<Sealed<Header>, ElError> {
        let block: Option<alloy_rpc_types_eth::Block> = self.call(
            "eth_getBlockByHash",
            self.rpc.request("eth_getBlockByHash", (hash, false)),
        )?;
        let block = block.ok_or(ElError::NoBlock(hash))?;
        Ok(Sealed::new_unchecked(block.header.inner, block.header.hash))
    }

    /// Waits on the client's runtime for `future`, one round trip.
    pub(crate) fn call<T: Send>(
        &self,
        method: &'static str,
        future: impl Future<Output = alloy_transport::TransportResult<T>> + Send,
    ) -> Result<T, ElError> {
        self.wait(async {
            future
                .await
                .map_err(|source| ElError::Rpc { method, source })
        })
    }

    /// Runs `future` on the client's runtime and waits for it on this thread, counting one
    /// round trip.
    pub(crate) fn wait<T: Send>(
        &self,
        future: impl Future<Output = Result<T, ElError>> + Send,
    ) -> Result<T, ElError> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        wait_on(&self.runtime, async {
            tokio::time::timeout(READ_TIMEOUT, future)
                .await
                .map_err(|_| ElError::Timeout(READ_TIMEOUT))?
        })
    }
}

/// The client's runtime, shut down without waiting when the last clone goes: a node drops its
/// client from async code, where dropping a runtime the usual way (which waits for its
/// threads) panics.
#[derive(Debug)]
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl std::ops::Deref for OwnRuntime {
    type Target = tokio::runtime::Runtime;

    fn deref(&self) -> &tokio::runtime::Runtime {
        self.0
            .as_ref()
            .expect("the runtime is only taken when the client is dropped")
    }
}

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Runs `future` on `runtime` and waits for it on this thread.
fn wait_on<T: Send>(
    runtime: &tokio::runtime::Runtime,
    future: impl Future<Output = Result<T, ElError>> + Send,
) -> Result<T, ElError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return runtime.block_on(future);
    }
    // Inside another runtime's context (an RPC handler validating an order, a blocking-pool
    // task) tokio refuses to start a nested wait, so a scoped thread waits instead; it costs
    // tens of microseconds beside a round trip of a millisecond or more.
    std::thread::scope(|scope| {
        scope
            .spawn(|| runtime.block_on(future))
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
