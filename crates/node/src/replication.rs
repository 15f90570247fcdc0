//! A member node's side of order replication: the durable log every accepted order enters
//! before it reaches the pools and its sender hears back, the transport to the other members,
//! and the way stored orders reach this node's pools.
//!
//! ```text
//!  start: log prefixes ──▶ Intake ──▶ pools      (refill: the pools are memory, the log is not)
//!         transport + engine ──▶ recovery: own highest seq learned from the others ──▶ Ready
//!  RPC accepts ──▶ pool reservation ──▶ LogHook: group commit (durable) ──▶ publish, answer
//!                                                 └──▶ Mailbox::broadcast ──▶ members
//!  members ──▶ engine (peer budget, origin signature, origin budget, dedup, gaps pulled)
//!          ──▶ log ──▶ handed over in each origin's order ──▶ Intake ──▶ pools
//!  registry ──(changes)──▶ Replication::set_members (disconnect removed, dial added)
//!                      └──▶ the ledger, which moves to a new epoch at a record boundary
//! ```
//! Every envelope stored in the log reaches the pools exactly once per process: the refill
//! covers each origin's contiguous prefix at start, the engine hands over the rest as the
//! prefixes grow. What the intake refuses or fails to apply is counted and logged.

use std::{
    collections::BTreeMap,
    net::{SocketAddr, ToSocketAddrs},
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use cobuild_net::{
    Envelope, GroupCommit, Log, LogError, MemberId, NetMember, Replication, TransportConfig,
    engine::Recovery,
};
use cobuild_primitives::AcceptedOrder;
use cobuild_registry::{Member, Registry};
use cobuild_rpc::{
    Durable, Intake, IntakeError, Refusals, Replicate, ReplicateError, ReplicateFuture,
};
use commonware_codec::DecodeExt as _;
use commonware_cryptography::ed25519;
use tokio::{
    sync::{mpsc, oneshot, watch},
    task::JoinHandle,
};

use crate::ledger::{self, LedgerSetup};

/// Envelopes read from the log at a time while refilling the pools.
const REFILL_CHUNK: usize = 512;

/// Replication could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    /// The envelope log could not be opened.
    #[error("envelope log {path}: {source}")]
    Log {
        /// Its file.
        path: PathBuf,
        /// Why.
        source: LogError,
    },
    /// The envelope log could not be read back into the pools.
    #[error("refilling the pools from the envelope log: {0}")]
    Refill(LogError),
    /// A read of the envelope log panicked while refilling the pools.
    #[error("refilling the pools from the envelope log: the read failed: {0}")]
    RefillTask(String),
    /// The log says it holds an origin's envelopes up to a number, but one is missing.
    #[error(
        "refilling the pools from the envelope log: origin {origin}'s envelope {seq} is missing \
         below its prefix {contiguous} (the log file is damaged)"
    )]
    RefillGap {
        /// The origin.
        origin: MemberId,
        /// The missing envelope.
        seq: u64,
        /// The prefix the log claims.
        contiguous: u64,
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
    /// Too few members answered to learn this member's highest sequence number.
    #[error(
        "could not learn this member's last order number from the others: heard from {heard:?}, \
         a quorum needs {needed} of the {others} other members. Orders this member numbered \
         before may be held only by members that did not answer, and numbering again from its \
         own log could reuse their numbers (the others would refuse the new orders). Start it \
         again once at least {needed} other members are reachable"
    )]
    Recovery {
        /// The members heard from.
        heard: Vec<MemberId>,
        /// How many must be heard from.
        needed: usize,
        /// How many other members there are.
        others: usize,
    },
    /// The others proved own orders this member cannot fetch back.
    #[error(
        "this member holds its own orders up to number {holds}, but other members proved it \
         numbered up to {proven} and none served the rest; numbering on would reuse those \
         numbers. Start it again once the members holding them are reachable"
    )]
    RecoveryBehind {
        /// The own prefix held.
        holds: u64,
        /// The highest own order proven.
        proven: u64,
    },
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
    /// How long a starting node waits to hear from every other member before it settles for a
    /// quorum (and fails without one).
    pub recovery_timeout: Duration,
}

/// What the intake did with the orders it was given.
#[derive(Debug, Default)]
struct IntakeCounters {
    applied: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
    unknown_kinds: AtomicU64,
}

/// A running replication: the log, the transport and the hook the RPC calls.
#[derive(Debug, Clone)]
pub struct NodeReplication {
    /// The durable envelope log.
    pub log: Arc<Log>,
    /// The transport and engine.
    pub replication: Arc<Replication>,
    counters: Arc<IntakeCounters>,
    intake_task: Arc<parking_lot::Mutex<Option<JoinHandle<()>>>>,
    others: usize,
    /// The slot ledger's final records, when the ledger runs.
    pub ledger: Option<Arc<cobuild_consensus::Store>>,
    /// The registry's members as the ledger follows them (it proposes a change of epoch when
    /// they differ from its current members).
    ledger_members: watch::Sender<BTreeMap<MemberId, ed25519::PublicKey>>,
    /// The members the transport and the ledger started with.
    started_with: Vec<NetMember>,
}

impl NodeReplication {
    /// Opens the log, refills the pools behind `intake` from it, starts the transport among
    /// the registry's members and the intake of what they send. Wait for
    /// [`NodeReplication::recovered`] before accepting orders.
    pub async fn start(
        config: &ReplicationConfig,
        registry: &dyn Registry,
        intake: Intake,
        ledger: Option<LedgerSetup>,
    ) -> Result<Self, ReplicationError> {
        let path = config.data_dir.join("orders.redb");
        let log = Arc::new(
            Log::open(&path, config.me, config.key.clone())
                .map_err(|source| ReplicationError::Log { path, source })?,
        );
        let counters = Arc::new(IntakeCounters::default());
        // The engine hands over what grows past the prefixes it finds at start, so the pools
        // are refilled up to them before it starts; nothing else writes the log meanwhile.
        let refilled = refill(&log, &intake, &counters).await?;
        tracing::info!(
            orders = refilled,
            refused = counters.refused.load(Ordering::Relaxed),
            failed = counters.failed.load(Ordering::Relaxed),
            "node.replication.refilled"
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
        let others = members.iter().filter(|m| m.id != config.me).count();
        let (tx, deliveries) = mpsc::channel(4096);
        let ledger_store = ledger.as_ref().map(|setup| setup.store.clone());
        let mut retention = None;
        let (ledger_members, registry) = watch::channel(ledger_keys(&members));
        let extension = ledger.map(|setup| {
            let (started, final_slot) = oneshot::channel();
            retention = Some((
                setup.store.clone(),
                setup.retention_slots,
                final_slot,
                setup.refunds.clone(),
                setup.chain.clone(),
            ));
            ledger::extension(
                setup,
                log.clone(),
                config.me,
                config.key.clone(),
                registry,
                started,
            )
        });
        let started_with = members.clone();
        let replication = Replication::start(
            TransportConfig {
                me: config.me,
                key: config.key.clone(),
                listen,
                members,
                status_interval: config.status_interval,
                recovery_timeout: config.recovery_timeout,
                storage: Some(config.data_dir.join("consensus")),
            },
            log.clone(),
            tx,
            extension,
        )?;
        let task = tokio::spawn(take_in(deliveries, intake, counters.clone()));
        if let Some((store, window, final_slot, book, chain)) = retention {
            let log = log.clone();
            // Ends with the ledger (its watch closes) or if it never starts.
            tokio::spawn(async move {
                if let Ok(final_slot) = final_slot.await {
                    let refunds = crate::refunds::follow(
                        book,
                        chain,
                        store.clone(),
                        log.clone(),
                        final_slot.clone(),
                    );
                    tokio::join!(ledger::retain(log, store, final_slot, window), refunds);
                }
            });
        }
        Ok(Self {
            log,
            replication: Arc::new(replication),
            counters,
            intake_task: Arc::new(parking_lot::Mutex::new(Some(task))),
            others,
            ledger: ledger_store,
            ledger_members,
            started_with,
        })
    }

    /// Waits until this member knows its highest sequence number (the others' signed heads)
    /// and holds every own envelope they proved: only then may it number new orders.
    pub async fn recovered(&self) -> Result<(), ReplicationError> {
        match self.replication.mailbox.recovered().await {
            Recovery::Ready { next_seq, heard } => {
                tracing::info!(next_seq, heard = ?heard, "node.replication.recovered");
                Ok(())
            }
            Recovery::Behind { holds, proven } => {
                Err(ReplicationError::RecoveryBehind { holds, proven })
            }
            Recovery::Failed { heard, needed }
            | Recovery::Waiting {
                heard,
                others: needed,
            } => Err(ReplicationError::Recovery {
                heard,
                needed,
                others: self.others,
            }),
        }
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

    /// Resolves if the intake of replicated orders stopped (the transport went away).
    pub async fn intake_stopped(&self) {
        let task = self.intake_task.lock().take();
        if let Some(task) = task
            && let Err(e) = task.await
        {
            tracing::error!(error = %e, "node.replication.intake_panicked");
        }
    }

    /// What the engine turned away and the intake refused or failed to apply.
    pub fn refusals(&self) -> Refusals {
        let engine = self.replication.mailbox.counters();
        let count = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Refusals {
            bad_signatures: engine.bad_signatures,
            equivocations: engine.equivocations,
            unknown_origins: engine.unknown_origins,
            malformed: engine.malformed,
            throttled_origins: engine.throttled,
            throttled_peers: engine.throttled_peers,
            orders_refused: count(&self.counters.refused),
            orders_failed: count(&self.counters.failed),
            unknown_kinds: count(&self.counters.unknown_kinds),
        }
    }

    /// Reads the registry every `interval` and hands member changes to the transport.
    pub async fn follow_registry(&self, registry: Arc<dyn Registry>, interval: Duration) {
        // A change between the start's read and the first one here counts too.
        let mut last = self.started_with.clone();
        loop {
            let read = {
                let registry = registry.clone();
                tokio::task::spawn_blocking(move || net_members(registry.as_ref())).await
            };
            match read {
                Ok(Ok(members)) if last != members => {
                    tracing::info!(members = members.len(), "node.registry.changed");
                    self.replication.set_members(members.clone()).await;
                    self.ledger_members.send_replace(ledger_keys(&members));
                    last = members;
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "node.registry.unreadable"),
                Err(e) => tracing::error!(error = %e, "node.registry.read_panicked"),
                Ok(Ok(_)) => {}
            }
            tokio::time::sleep(interval).await;
        }
    }
}

/// Applies every envelope of each origin's contiguous prefix above its archive floor, in order;
/// returns how many. A log that cannot be read stops the start.
async fn refill(
    log: &Arc<Log>,
    intake: &Intake,
    counters: &IntakeCounters,
) -> Result<usize, ReplicationError> {
    let prefixes: Vec<(MemberId, u64, u64)> = read(log, |log| log.summary())
        .await?
        .into_iter()
        .map(|s| (s.origin, s.archived, s.contiguous))
        .collect();
    let mut applied = 0;
    for (origin, archived, contiguous) in prefixes {
        // What the ledger settled long ago is in the archive, not the pools' business.
        let mut from = archived + 1;
        while from <= contiguous {
            let count = (contiguous - from + 1).min(REFILL_CHUNK as u64) as usize;
            let chunk = read(log, move |log| log.range(origin, from, count)).await?;
            for (offset, envelope) in chunk.iter().enumerate() {
                let seq = from + offset as u64;
                if envelope.body.seq != seq {
                    return Err(ReplicationError::RefillGap {
                        origin,
                        seq,
                        contiguous,
                    });
                }
            }
            if chunk.is_empty() {
                return Err(ReplicationError::RefillGap {
                    origin,
                    seq: from,
                    contiguous,
                });
            }
            from += chunk.len() as u64;
            for envelope in chunk {
                apply(intake, &envelope, counters).await;
                applied += 1;
            }
        }
    }
    Ok(applied)
}

/// Reads the log on the blocking pool.
async fn read<T: Send + 'static>(
    log: &Arc<Log>,
    f: impl FnOnce(&Log) -> Result<T, LogError> + Send + 'static,
) -> Result<T, ReplicationError> {
    let log = log.clone();
    tokio::task::spawn_blocking(move || f(&log))
        .await
        .map_err(|e| ReplicationError::RefillTask(e.to_string()))?
        .map_err(ReplicationError::Refill)
}

/// Applies what the engine hands over until the transport stops.
async fn take_in(
    mut deliveries: mpsc::Receiver<Envelope>,
    intake: Intake,
    counters: Arc<IntakeCounters>,
) {
    while let Some(envelope) = deliveries.recv().await {
        apply(&intake, &envelope, &counters).await;
    }
    tracing::info!("node.replication.intake_closed");
}

/// Applies one stored order, counting what happened: a refusal by a rule (expired, cancelled,
/// nonce used) is normal and logged at debug; anything else is a fault, logged as one.
async fn apply(intake: &Intake, envelope: &Envelope, counters: &IntakeCounters) {
    let body = &envelope.body;
    let (origin, seq) = (body.origin, body.seq);
    match intake
        .apply(body.kind, &body.payload, &body.auth, body.call)
        .await
    {
        Ok(()) => {
            counters.applied.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) if e.is_refusal() => {
            counters.refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(origin, seq, error = %e, "node.replication.refused");
        }
        Err(e @ IntakeError::UnknownKind(_)) => {
            counters.unknown_kinds.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(origin, seq, error = %e, "node.replication.unknown_kind");
        }
        Err(e) => {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            tracing::error!(origin, seq, error = %e, "node.replication.apply_failed");
        }
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
            let queued = self
                .commits
                .enqueue(order)
                .await
                .map_err(|e| ReplicateError(e.to_string()))?;
            let mailbox = self.replication.mailbox.clone();
            let durable: Durable = Box::pin(async move {
                let envelope = queued
                    .durable()
                    .await
                    .map_err(|e| ReplicateError(e.to_string()))?;
                mailbox.broadcast(envelope).await;
                Ok(())
            });
            Ok(durable)
        })
    }
}

fn ledger_keys(members: &[NetMember]) -> BTreeMap<MemberId, ed25519::PublicKey> {
    members.iter().map(|m| (m.id, m.key.clone())).collect()
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

#[cfg(test)]
mod tests {
    use alloy_primitives::Bytes;
    use cobuild_net::{Envelope, EnvelopeBody};
    use cobuild_registry::RegistryError;
    use commonware_cryptography::Signer as _;

    use super::*;
    use crate::orderflow::Pools;

    /// A registry the refill never gets to read.
    #[derive(Debug)]
    struct Unread;

    impl Registry for Unread {
        fn members(&self) -> Result<Vec<Member>, RegistryError> {
            Err(RegistryError::Source("read before the refill ended".into()))
        }
    }

    fn config(dir: &std::path::Path) -> ReplicationConfig {
        ReplicationConfig {
            data_dir: dir.to_path_buf(),
            me: 0,
            key: ed25519::PrivateKey::from_seed(1),
            listen: None,
            status_interval: Duration::from_millis(100),
            registry_interval: Duration::from_secs(1),
            recovery_timeout: Duration::from_secs(1),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn test_a_damaged_log_stops_the_start_with_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let chain = cobuild_chain::test_utils::devnet_chain(dir.path());
        let intake = Pools::new(&chain, 100, cobuild_pool::DEFAULT_BUNDLE_HORIZON).intake(&chain);
        {
            let log =
                Log::open(&dir.path().join("orders.redb"), 0, config(dir.path()).key).expect("log");
            log.append_own(
                AcceptedOrder::raw_transaction(Bytes::from_static(b"\x02")),
                1,
            )
            .expect("append");
        }
        // The stored envelope's bytes are damaged on disk.
        {
            let db = redb::Database::create(dir.path().join("orders.redb")).expect("db");
            let tx = db.begin_write().expect("write");
            let table: redb::TableDefinition<'_, (u32, u64), &[u8]> =
                redb::TableDefinition::new("envelopes");
            tx.open_table(table)
                .expect("table")
                .insert((0, 1), b"garbage".as_slice())
                .expect("insert");
            tx.commit().expect("commit");
        }
        let err = NodeReplication::start(&config(dir.path()), &Unread, intake, None)
            .await
            .expect_err("a damaged log must not start");
        assert!(
            matches!(
                err,
                ReplicationError::Refill(LogError::Corrupt {
                    origin: 0,
                    seq: 1,
                    ..
                })
            ),
            "{err}"
        );
        assert!(err.to_string().contains("refilling the pools"), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn test_every_intake_outcome_is_counted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let chain = cobuild_chain::test_utils::devnet_chain(dir.path());
        let intake = Pools::new(&chain, 100, cobuild_pool::DEFAULT_BUNDLE_HORIZON).intake(&chain);
        let counters = IntakeCounters::default();
        let key = ed25519::PrivateKey::from_seed(2);
        let envelope = |kind: u8, payload: &'static [u8]| {
            Envelope::sign(
                EnvelopeBody {
                    origin: 1,
                    seq: 1,
                    received_at_ms: 1,
                    kind,
                    payload: Bytes::from_static(payload),
                    auth: Bytes::new(),
                    call: 0,
                },
                &key,
            )
        };
        // A kind from a newer node, a transaction that does not decode, a body with a forged
        // header: none is a success.
        apply(&intake, &envelope(99, b"\x02"), &counters).await;
        apply(&intake, &envelope(0, b"\x02"), &counters).await;
        apply(
            &intake,
            &envelope(1, br#"{"method":"eth_sendBundle"}"#),
            &counters,
        )
        .await;
        let count = |c: &AtomicU64| c.load(Ordering::Relaxed);
        assert_eq!(count(&counters.unknown_kinds), 1);
        assert_eq!(count(&counters.failed), 2);
        assert_eq!(count(&counters.applied), 0);
        // A valid transaction applies; the same again is refused by the pool's rule.
        let signer = &cobuild_chain::dev_signers()[0];
        let transfer =
            cobuild_chain::test_utils::transfer(0, alloy_primitives::Address::ZERO, 1, 1);
        let tx = cobuild_chain::test_utils::sign(signer, transfer);
        let raw: Bytes = alloy_eips::Encodable2718::encoded_2718(tx.inner()).into();
        let valid = Envelope::sign(
            EnvelopeBody {
                payload: raw,
                ..envelope(0, b"").body
            },
            &key,
        );
        apply(&intake, &valid, &counters).await;
        apply(&intake, &valid, &counters).await;
        assert_eq!(count(&counters.applied), 1);
        assert_eq!(count(&counters.refused), 1, "already known");
    }
}
