//! A member node's side of order replication: the durable log every accepted order enters
//! before its sender hears back, the transport to the other members, and the way replicated
//! orders reach this node's pools.
//!
//! ```text
//!  RPC accepts ──▶ LogHook: Log::append_own (durable) ──▶ answer ; Mailbox::broadcast ──▶ members
//!  members ──▶ engine (origin signature, dedup, gaps pulled) ──▶ intake: sender signature,
//!                                                                 same code as the RPC ──▶ pools
//!  start: every envelope in the log ──▶ intake (the pools are memory; the log is not)
//!  registry ──(changes)──▶ Replication::set_members (disconnect removed, dial added)
//! ```

use std::{
    net::{SocketAddr, ToSocketAddrs},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use cobuild_net::{Envelope, GroupCommit, Log, MemberId, NetMember, Replication, TransportConfig};
use cobuild_primitives::OrderKind;
use cobuild_registry::{Member, Registry};
use cobuild_rpc::{AcceptedOrder, Bundles, Eth, Replicate, ReplicateError, ReplicateFuture};
use commonware_codec::DecodeExt as _;
use commonware_cryptography::ed25519;
use tokio::sync::mpsc;

/// Replication could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    /// The envelope log could not be opened.
    #[error("envelope log {path}: {source}")]
    Log {
        /// Its file.
        path: PathBuf,
        /// Why.
        source: cobuild_net::LogError,
    },
    /// The registry could not be read or lists an unusable member.
    #[error("registry: {0}")]
    Registry(String),
    /// This node is not in the registry.
    #[error("member {0} is not in the registry")]
    NotAMember(MemberId),
    /// The transport could not start.
    #[error(transparent)]
    Transport(#[from] cobuild_net::TransportError),
    /// The log's committer thread could not start.
    #[error("envelope log committer: {0}")]
    Committer(std::io::Error),
}

/// Settings of a node's replication.
#[derive(Debug, Clone)]
pub struct ReplicationConfig {
    /// Where the envelope log lives (`orders.redb` in it).
    pub data_dir: PathBuf,
    /// This member's id.
    pub me: MemberId,
    /// Its node key.
    pub key: ed25519::PrivateKey,
    /// Where the transport listens (`None`: the registry's address for this member).
    pub listen: Option<SocketAddr>,
    /// How often statuses go out and gaps are pulled.
    pub status_interval: Duration,
    /// How often the registry is read again for member changes.
    pub registry_interval: Duration,
}

/// A running replication: the log, the transport and the hook the RPC calls.
#[derive(Debug, Clone)]
pub struct NodeReplication {
    /// The durable envelope log.
    pub log: Arc<Log>,
    /// The transport and engine.
    pub replication: Arc<Replication>,
    deliveries: Arc<parking_lot::Mutex<Option<mpsc::Receiver<Envelope>>>>,
}

impl NodeReplication {
    /// Opens the log and starts the transport among the registry's members.
    pub fn start(
        config: &ReplicationConfig,
        registry: &dyn Registry,
    ) -> Result<Self, ReplicationError> {
        let path = config.data_dir.join("orders.redb");
        let log = Arc::new(
            Log::open(&path, config.me, config.key.clone())
                .map_err(|source| ReplicationError::Log { path, source })?,
        );
        let members = net_members(registry)?;
        let listen = match config.listen {
            Some(addr) => addr,
            None => {
                members
                    .iter()
                    .find(|m| m.id == config.me)
                    .ok_or(ReplicationError::NotAMember(config.me))?
                    .addr
            }
        };
        let (tx, rx) = mpsc::channel(4096);
        let replication = Replication::start(
            TransportConfig {
                me: config.me,
                key: config.key.clone(),
                listen,
                members,
                status_interval: config.status_interval,
            },
            log.clone(),
            tx,
        )?;
        Ok(Self {
            log,
            replication: Arc::new(replication),
            deliveries: Arc::new(parking_lot::Mutex::new(Some(rx))),
        })
    }

    /// The hook the RPC calls for every accepted order.
    pub fn hook(&self) -> Result<Arc<dyn Replicate>, ReplicationError> {
        let commits = GroupCommit::start(self.log.clone(), "cobuild-log".into())
            .map_err(ReplicationError::Committer)?;
        Ok(Arc::new(LogHook {
            commits,
            replication: self.replication.clone(),
        }))
    }

    /// Refills the pools from the log (what this node held before a restart), then applies
    /// every order the other members send, until the transport stops. Run once.
    pub async fn run_intake(&self, eth: Eth, bundles: Bundles) {
        let Some(mut deliveries) = self.deliveries.lock().take() else {
            return;
        };
        let log = self.log.clone();
        let stored = tokio::task::spawn_blocking(move || {
            let mut all = Vec::new();
            let _ = log.for_each(|e: Envelope| {
                all.push(e);
                Ok::<_, cobuild_net::LogError>(())
            });
            all
        })
        .await
        .unwrap_or_default();
        let refilled = stored.len();
        for envelope in stored {
            apply(&eth, &bundles, &envelope).await;
        }
        tracing::info!(orders = refilled, "node.replication.refilled");
        while let Some(envelope) = deliveries.recv().await {
            apply(&eth, &bundles, &envelope).await;
        }
    }

    /// Reads the registry every `interval` and hands member changes to the transport.
    pub async fn follow_registry(&self, registry: Arc<dyn Registry>, interval: Duration) {
        let mut last: Option<Vec<NetMember>> = None;
        loop {
            let read = {
                let registry = registry.clone();
                tokio::task::spawn_blocking(move || net_members(registry.as_ref())).await
            };
            match read {
                Ok(Ok(members)) if last.as_ref() != Some(&members) => {
                    if last.is_some() {
                        tracing::info!(members = members.len(), "node.registry.changed");
                        self.replication.set_members(members.clone()).await;
                    }
                    last = Some(members);
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "node.registry.unreadable"),
                _ => {}
            }
            tokio::time::sleep(interval).await;
        }
    }
}

/// Applies one replicated order to the pools; a refusal (expired, already known, bad
/// signature) is logged, never fatal.
async fn apply(eth: &Eth, bundles: &Bundles, envelope: &Envelope) {
    let body = &envelope.body;
    let Ok(kind) = body.order_kind() else {
        return;
    };
    let result = match kind {
        OrderKind::RawTransaction => {
            let (eth, raw) = (eth.clone(), body.payload.clone());
            tokio::task::spawn_blocking(move || eth.apply_replicated(&raw).map(|_| ()))
                .await
                .unwrap_or(Ok(()))
        }
        kind => {
            bundles
                .apply_replicated(kind, &body.payload, &body.auth)
                .await
        }
    };
    if let Err(e) = result {
        tracing::debug!(origin = body.origin, seq = body.seq, error = %e, "node.replication.refused");
    }
}

/// Makes accepted orders durable (group commit) and sends them to the members.
#[derive(Debug)]
struct LogHook {
    commits: GroupCommit,
    replication: Arc<Replication>,
}

impl Replicate for LogHook {
    fn accepted(&self, order: AcceptedOrder) -> ReplicateFuture<'_> {
        Box::pin(async move {
            let envelope = self
                .commits
                .append(order.kind, order.payload, order.auth)
                .await
                .map_err(|e| ReplicateError(e.to_string()))?;
            self.replication.mailbox.broadcast(envelope).await;
            Ok(())
        })
    }
}

/// The registry's members as the transport needs them.
pub fn net_members(registry: &dyn Registry) -> Result<Vec<NetMember>, ReplicationError> {
    registry
        .members()
        .map_err(|e| ReplicationError::Registry(e.to_string()))?
        .iter()
        .map(net_member)
        .collect()
}

fn net_member(member: &Member) -> Result<NetMember, ReplicationError> {
    let bad = |what: &str| ReplicationError::Registry(format!("member {}: {what}", member.id));
    let key = ed25519::PublicKey::decode(commonware_codec::Copying(member.node_key.as_slice()))
        .map_err(|_| bad("node key is not an ed25519 point"))?;
    let addr = member
        .address
        .to_socket_addrs()
        .map_err(|e| bad(&format!("address {}: {e}", member.address)))?
        .next()
        .ok_or_else(|| bad("address resolves to nothing"))?;
    Ok(NetMember {
        id: member.id,
        key,
        addr,
    })
}
