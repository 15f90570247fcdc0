//! The execution client's public mempool as orderflow: public transactions join the pool as
//! orders like any other (checked against the followed head).
//!
//! Over WS or IPC the client tells each new pending transaction as it hears of it (a
//! subscription); over HTTP, or when the client refuses the subscription or the stream ends,
//! the head follower reads the whole pool (`txpool_content`) on each tick instead. The whole
//! pool is also read once when the subscription starts (what was pending before it) and when
//! the stream dropped transactions because the node fell behind.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use alloy_consensus::{TxEnvelope, transaction::SignerRecoverable};
use cobuild_el::{ElChain, ElError, PendingBatch};

use crate::orderflow::Orderflow;

/// Most streamed transactions taken into the pool in one blocking task.
const BATCH: usize = 512;

/// Whether the head follower must read the whole pool on its ticks: true until a subscription
/// runs, and again if it ends.
#[derive(Debug, Clone)]
pub(super) struct PollMempool(Arc<AtomicBool>);

impl PollMempool {
    pub(super) fn new() -> Self {
        Self(Arc::new(AtomicBool::new(true)))
    }

    pub(super) fn wanted(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self, poll: bool) {
        self.0.store(poll, Ordering::Relaxed);
    }
}

/// Adds the execution client's whole pending pool (`txpool_content`); returns how many
/// transactions were new to the pool and taken. Blocking.
pub(super) fn take_whole(chain: &ElChain, orderflow: &Orderflow) -> Result<usize, ElError> {
    Ok(add_public(
        orderflow,
        chain.client().pending_transactions()?,
    ))
}

/// Adds the transactions the pool does not hold yet, senders recovered from their signatures
/// (only for those that are new: recovery is the costly part); returns how many it took.
/// Blocking.
fn add_public(orderflow: &Orderflow, txs: impl IntoIterator<Item = TxEnvelope>) -> usize {
    let mut taken = 0;
    for tx in txs {
        if orderflow.pool.get(tx.tx_hash()).is_some() {
            continue;
        }
        let Ok(tx) = tx.try_into_recovered() else {
            continue;
        };
        match orderflow.pool.add(tx) {
            Ok(_) => taken += 1,
            Err(error) => tracing::trace!(%error, "el.mempool.refused"),
        }
    }
    taken
}

/// Takes the client's pending transactions into the pool as they come, for as long as its
/// connection has a subscription; `poll` is cleared while it runs. Never returns.
pub(super) async fn stream(chain: ElChain, orderflow: Orderflow, poll: PollMempool) {
    let client = chain.clone();
    let subscribed = tokio::task::spawn_blocking(move || client.client().subscribe_pending()).await;
    let mut pending = match subscribed {
        Ok(Ok(Some(pending))) => pending,
        // HTTP: the head follower polls.
        Ok(Ok(None)) => return std::future::pending().await,
        Ok(Err(error)) => {
            tracing::warn!(%error, "el.mempool.subscribe_refused");
            return std::future::pending().await;
        }
        Err(error) => {
            tracing::error!(%error, "el.mempool.task_failed");
            return std::future::pending().await;
        }
    };
    tracing::info!("el.mempool.subscribed");
    poll.set(false);
    catch_up(&chain, &orderflow).await;
    loop {
        match pending.next_batch(BATCH).await {
            PendingBatch::Txs(txs) => {
                let orderflow = orderflow.clone();
                match tokio::task::spawn_blocking(move || add_public(&orderflow, txs)).await {
                    Ok(taken) => tracing::trace!(taken, "el.mempool.streamed"),
                    Err(error) => tracing::error!(%error, "el.mempool.task_failed"),
                }
            }
            PendingBatch::Missed(missed) => {
                tracing::debug!(missed, "el.mempool.fell_behind");
                catch_up(&chain, &orderflow).await;
            }
            PendingBatch::Closed => {
                tracing::warn!("el.mempool.stream_closed");
                poll.set(true);
                return std::future::pending().await;
            }
        }
    }
}

/// Reads the whole pool once, on a blocking thread.
async fn catch_up(chain: &ElChain, orderflow: &Orderflow) {
    let (chain, orderflow) = (chain.clone(), orderflow.clone());
    match tokio::task::spawn_blocking(move || take_whole(&chain, &orderflow)).await {
        Ok(Ok(taken)) => tracing::debug!(taken, "el.mempool.caught_up"),
        Ok(Err(error)) => tracing::debug!(%error, "el.mempool.unreadable"),
        Err(error) => tracing::error!(%error, "el.mempool.task_failed"),
    }
}
