//! Group commit of this member's own orders: one thread writes every order waiting at that
//! moment in one durable commit, so under load one disk flush acknowledges many orders instead
//! of each order waiting for its own.

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use tokio::sync::{mpsc, oneshot};

use crate::{Envelope, Log};
use cobuild_primitives::AcceptedOrder;

/// Most orders in one commit.
const MAX_GROUP: usize = 512;

/// An order could not be made durable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitError {
    /// The committer thread is gone (it could not start, or the process is stopping).
    #[error("envelope log stopped")]
    Stopped,
    /// The log refused the write.
    #[error("envelope log: {0}")]
    Log(String),
}

/// An order waiting for the next commit.
struct Pending {
    order: (AcceptedOrder, u64),
    reply: oneshot::Sender<Result<Envelope, CommitError>>,
}

/// Appends own orders to a [`Log`] through one committer thread. Cheap to clone.
#[derive(Debug, Clone)]
pub struct GroupCommit {
    pending: mpsc::Sender<Pending>,
}

impl GroupCommit {
    /// Starts the committer thread for `log` (named `name`).
    pub fn start(log: Arc<Log>, name: String) -> std::io::Result<Self> {
        let (pending, mut rx) = mpsc::channel::<Pending>(4 * MAX_GROUP);
        std::thread::Builder::new().name(name).spawn(move || {
            while let Some(first) = rx.blocking_recv() {
                let mut group = vec![first];
                while group.len() < MAX_GROUP {
                    match rx.try_recv() {
                        Ok(next) => group.push(next),
                        Err(_) => break,
                    }
                }
                let (orders, replies): (Vec<_>, Vec<_>) =
                    group.into_iter().map(|p| (p.order, p.reply)).unzip();
                match log.append_own_batch(orders) {
                    Ok(envelopes) => {
                        for (reply, envelope) in replies.into_iter().zip(envelopes) {
                            // A caller that went away needs no answer.
                            let _ = reply.send(Ok(envelope));
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "net.log.append_failed");
                        for reply in replies {
                            let _ = reply.send(Err(CommitError::Log(e.to_string())));
                        }
                    }
                }
            }
        })?;
        Ok(Self { pending })
    }

    /// Numbers, signs and durably stores an order accepted now; returns its envelope once it
    /// is on disk. Waits while the queue is full (back-pressure on intake).
    pub async fn append(&self, order: AcceptedOrder) -> Result<Envelope, CommitError> {
        self.enqueue(order).await?.durable().await
    }

    /// Queues an order accepted now for the next commit and returns once it is queued: orders
    /// are numbered in the order they were queued. Waits while the queue is full
    /// (back-pressure on intake).
    pub async fn enqueue(&self, order: AcceptedOrder) -> Result<Queued, CommitError> {
        let received_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_millis() as u64;
        let (reply, committed) = oneshot::channel();
        self.pending
            .send(Pending {
                order: (order, received_at_ms),
                reply,
            })
            .await
            .map_err(|_| CommitError::Stopped)?;
        Ok(Queued(committed))
    }
}

/// An order queued for a commit ([`GroupCommit::enqueue`]).
#[derive(Debug)]
pub struct Queued(oneshot::Receiver<Result<Envelope, CommitError>>);

impl Queued {
    /// The order's envelope, once it is on disk.
    pub async fn durable(self) -> Result<Envelope, CommitError> {
        self.0.await.map_err(|_| CommitError::Stopped)?
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::Bytes;
    use commonware_cryptography::{Signer as _, ed25519};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn test_concurrent_appends_get_distinct_seqs_in_the_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log.redb");
        let key = ed25519::PrivateKey::from_seed(3);
        let log = Arc::new(Log::open(&path, 0, key.clone()).expect("opens"));
        let commit = GroupCommit::start(log.clone(), "test-log".into()).expect("starts");
        let appends = (0..64u8).map(|i| {
            let commit = commit.clone();
            tokio::spawn(async move {
                commit
                    .append(AcceptedOrder::raw_transaction(Bytes::from(vec![i])))
                    .await
            })
        });
        let mut seqs = Vec::new();
        for append in appends {
            let envelope = append.await.expect("task").expect("durable");
            envelope.verify(&key.public_key()).expect("signed by us");
            seqs.push(envelope.body.seq);
        }
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=64).collect::<Vec<_>>());
        assert_eq!(log.contiguous(0).expect("prefix"), 64);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn test_orders_are_numbered_in_the_order_they_were_queued() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = ed25519::PrivateKey::from_seed(4);
        let log = Arc::new(Log::open(&dir.path().join("log.redb"), 0, key).expect("opens"));
        let commit = GroupCommit::start(log, "test-log".into()).expect("starts");
        let mut queued = Vec::new();
        for i in 0..16u8 {
            let order = AcceptedOrder::raw_transaction(Bytes::from(vec![i]));
            queued.push(commit.enqueue(order).await.expect("queued"));
        }
        // Awaited last first: the numbers were fixed when queued.
        for (i, queued) in queued.into_iter().enumerate().rev() {
            let envelope = queued.durable().await.expect("durable");
            assert_eq!(envelope.body.seq, i as u64 + 1);
            assert_eq!(envelope.body.payload.as_ref(), [i as u8]);
        }
    }
}
