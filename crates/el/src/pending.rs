//! The execution client's public mempool as it grows: `eth_subscribe` to
//! `newPendingTransactions` with full transactions (geth, reth, Nethermind and anvil send
//! them), over WS or IPC. HTTP has no subscriptions; there the pool is read whole with
//! [`ElClient::pending_transactions`](crate::ElClient::pending_transactions), which on a busy
//! chain is megabytes a read.

use alloy_consensus::TxEnvelope;
use alloy_pubsub::Subscription;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

/// Transactions the subscription buffers before the reader is told it missed some: a busy
/// mainnet pool sends a few hundred a second, the reader takes them in batches.
pub(crate) const PENDING_BUFFER: usize = 16_384;

/// What [`PendingStream::next_batch`] gives.
#[derive(Debug)]
pub enum PendingBatch {
    /// New pending transactions, senders not yet recovered (that is CPU work for the caller's
    /// blocking threads).
    Txs(Vec<TxEnvelope>),
    /// The reader fell behind and this many were dropped: read the pool whole to catch up.
    Missed(u64),
    /// The connection is gone and will send no more.
    Closed,
}

/// New pending transactions of an execution client, as it hears of them.
#[derive(Debug)]
pub struct PendingStream {
    pub(crate) subscription: Subscription<alloy_rpc_types_eth::Transaction>,
    /// Transactions dropped while a batch was being taken, told on the next call.
    pub(crate) missed: u64,
}

impl PendingStream {
    /// Waits for the next transaction, then takes with it whatever else has arrived, up to
    /// `max` in all.
    pub async fn next_batch(&mut self, max: usize) -> PendingBatch {
        if self.missed > 0 {
            return PendingBatch::Missed(std::mem::take(&mut self.missed));
        }
        let first = match self.subscription.recv().await {
            Ok(tx) => tx,
            Err(RecvError::Lagged(missed)) => return PendingBatch::Missed(missed),
            Err(RecvError::Closed) => return PendingBatch::Closed,
        };
        let mut txs = vec![first.inner.into_inner()];
        while txs.len() < max.max(1) {
            match self.subscription.try_recv() {
                Ok(tx) => txs.push(tx.inner.into_inner()),
                // Those already taken go first; the loss is told on the next call.
                Err(TryRecvError::Lagged(missed)) => {
                    self.missed = missed;
                    break;
                }
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
        PendingBatch::Txs(txs)
    }
}
