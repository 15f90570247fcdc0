//! The members: each a durable envelope log in the run's folder and the production transport
//! (commonware's authenticated `lookup` network and the replication engine) on loopback, with
//! a task per member recording what the engine hands it. An order enters as `cobuild-node`'s RPC
//! hook enters it: handed to the member's committer thread, which writes every order waiting at
//! that moment in one durable commit (`cobuild_net::GroupCommit`, the node's own), then
//! `Mailbox::broadcast`.

use std::{
    net::{Ipv4Addr, SocketAddr, TcpListener},
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use cobuild_net::{
    GroupCommit, Log, MemberId, NetMember, Queued, Replication, TransportConfig, engine::Mailbox,
};
use cobuild_rpc::{AcceptedOrder, Durable, Replicate, ReplicateError, ReplicateFuture};
use commonware_cryptography::{Signer as _, ed25519};
use tokio::sync::{mpsc, watch};

use super::{
    ReplicationBenchError,
    ledger::BenchChain,
    tracker::{Phase, Tracker},
};

/// Envelopes a member's engine may queue for the node before it waits (as the node sets it).
const DELIVERY_QUEUE: usize = 4096;

/// One member as the benchmark drives it.
#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) id: MemberId,
    pub(crate) mailbox: Mailbox,
    /// The member's group commit, as the node's hook uses it.
    commits: GroupCommit,
    /// The slot of the member's last final ledger record, when the ledger runs.
    pub(crate) final_slot: Option<watch::Receiver<u64>>,
    /// Kept for its lifetime: dropping it stops the transport's runtime.
    _replication: Replication,
}

/// The node key of member `id`: seeded (`from_seed` is for tests), as the benchmark's members
/// are throwaway and their logs are deleted with the run.
fn key(id: MemberId) -> ed25519::PrivateKey {
    ed25519::PrivateKey::from_seed(0xc0b0_0000 + u64::from(id))
}

/// `n` distinct free loopback ports: all bound at once so none is handed out twice, then
/// released for the transports to bind.
fn free_addrs(n: usize) -> std::io::Result<Vec<SocketAddr>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<std::io::Result<Vec<_>>>()?;
    listeners.iter().map(TcpListener::local_addr).collect()
}

/// Starts `n` members with their logs in `dir`; what each engine delivers is recorded in
/// `tracker` by a task on `runtime`.
pub(crate) fn start(
    dir: &Path,
    n: usize,
    status_interval: Duration,
    tracker: &Arc<Tracker>,
    runtime: &tokio::runtime::Handle,
    ledger: Option<&Arc<BenchChain>>,
) -> Result<Vec<Arc<Member>>, ReplicationBenchError> {
    let addrs = free_addrs(n)?;
    let members: Vec<NetMember> = addrs
        .iter()
        .enumerate()
        .map(|(id, addr)| NetMember {
            id: id as MemberId,
            key: key(id as MemberId).public_key(),
            addr: *addr,
        })
        .collect();
    let mut started = Vec::with_capacity(n);
    for member in &members {
        let id = member.id;
        let log = Arc::new(Log::open(
            &dir.join(format!("member-{id}.redb")),
            id,
            key(id),
        )?);
        let (tx, mut delivered) = mpsc::channel(DELIVERY_QUEUE);
        let (final_tx, final_rx) = std::sync::mpsc::sync_channel(1);
        let extension = ledger
            .map(|chain| {
                let keys = members.iter().map(|m| (m.id, m.key.clone())).collect();
                super::ledger::extension(chain.clone(), log.clone(), id, key(id), keys, final_tx)
            })
            .transpose()
            .map_err(|e| ReplicationBenchError::Config(format!("ledger store: {e}")))?;
        let replication = Replication::start(
            TransportConfig {
                me: id,
                key: key(id),
                listen: member.addr,
                members: members.clone(),
                status_interval,
                recovery_timeout: Duration::from_secs(10),
                storage: None,
            },
            log.clone(),
            tx,
            extension,
        )?;
        let tracker = tracker.clone();
        runtime.spawn(async move {
            while let Some(envelope) = delivered.recv().await {
                tracker.delivered(id, envelope.body.origin, envelope.body.seq, Instant::now());
            }
        });
        started.push(Arc::new(Member {
            id,
            mailbox: replication.mailbox.clone(),
            commits: GroupCommit::start(log, format!("bench-log-{id}"))?,
            // The extension ran while the transport started.
            final_slot: final_rx.try_recv().ok(),
            _replication: replication,
        }));
    }
    Ok(started)
}

/// Accepts one order at `member` as the node does: durable (group) commit, then broadcast.
/// Recorded in `tracker` between the two, so every delivery has a start to count from.
pub(crate) async fn offer(
    member: &Member,
    tracker: &Tracker,
    phase: Phase,
    order: AcceptedOrder,
) -> Result<(), ReplicationBenchError> {
    let start = Instant::now();
    let queued = member
        .commits
        .enqueue(order)
        .await
        .map_err(|e| ReplicationBenchError::Commit(e.to_string()))?;
    broadcast_once_durable(member, tracker, phase, start, queued).await
}

/// The rest of [`offer`] once the order is queued (since `start`).
async fn broadcast_once_durable(
    member: &Member,
    tracker: &Tracker,
    phase: Phase,
    start: Instant,
    queued: Queued,
) -> Result<(), ReplicationBenchError> {
    let envelope = queued
        .durable()
        .await
        .map_err(|e| ReplicationBenchError::Commit(e.to_string()))?;
    let appended = Instant::now();
    tracker.offered(member.id, envelope.body.seq, phase, start, appended);
    member.mailbox.broadcast(envelope).await;
    Ok(())
}

/// The RPC's replication hook on one member, recording in the tracker as it goes.
#[derive(Debug)]
pub(crate) struct Hook {
    pub(crate) member: Arc<Member>,
    pub(crate) tracker: Arc<Tracker>,
}

impl Replicate for Hook {
    fn accepted(&self, order: AcceptedOrder) -> ReplicateFuture<'_> {
        Box::pin(async move {
            let start = Instant::now();
            let queued = self
                .member
                .commits
                .enqueue(order)
                .await
                .map_err(|e| ReplicateError(e.to_string()))?;
            let (member, tracker) = (self.member.clone(), self.tracker.clone());
            let durable: Durable = Box::pin(async move {
                broadcast_once_durable(&member, &tracker, Phase::Intake, start, queued)
                    .await
                    .map_err(|e| ReplicateError(e.to_string()))
            });
            Ok(durable)
        })
    }
}
