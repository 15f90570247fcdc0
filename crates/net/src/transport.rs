//! The production transport: commonware's authenticated, encrypted `lookup` network among the
//! registry's members, with the replication engine on top, on commonware's tokio runtime.
//!
//! The network and the engine run on their own runtime thread, so the node's RPC runtime never
//! waits for them and their log writes never block a request. The node talks to them through
//! the engine's [`Mailbox`] and a member-set channel: a new set is tracked as the next peer set
//! (so removed members are disconnected and added ones dialled) and handed to the engine (so a
//! removed member's later envelopes are refused).

use std::{net::SocketAddr, num::NonZeroUsize, sync::Arc, thread, time::Duration};

use commonware_cryptography::ed25519;
use commonware_p2p::{Address, AddressableManager as _, authenticated::lookup};
use commonware_runtime::{Quota, Runner as _, Spawner as _, Supervisor as _};
use commonware_stream::{
    cups::{self, Cups},
    sake::{self, Sake},
};
use commonware_utils::{NZU32, ordered::Map};
use tokio::sync::{mpsc, oneshot};

use crate::{
    Envelope, Log, MemberId,
    engine::{self, Engine, Mailbox, Peer},
};

/// Domain separation of the transport's handshakes.
pub const P2P_NAMESPACE: &[u8] = b"cobuild.p2p.v1";

const PUSH: u64 = 0;
const SYNC: u64 = 1;
/// The channels handed to a service beside replication (the slot ledger): consensus votes,
/// certificates, consensus fetches, and the service's own messages.
const EXTENSION_CHANNELS: [u64; 4] = [2, 3, 4, 5];

/// One of the transport's channels, as the runtime thread hands it out.
pub type Channel = (
    lookup::Sender<ed25519::PublicKey, commonware_runtime::tokio::Context>,
    lookup::Receiver<ed25519::PublicKey>,
);

/// What a service that runs beside replication on the same links gets: the transport's runtime
/// (with its storage), the network's blocker, and four channels of its own.
pub struct Extension {
    /// The runtime's context.
    pub context: commonware_runtime::tokio::Context,
    /// Blocks a misbehaving peer on the network.
    pub blocker: lookup::Oracle<ed25519::PublicKey>,
    /// Four channels: votes, certificates, consensus fetches, the service's own messages.
    pub channels: [Channel; 4],
}

impl std::fmt::Debug for Extension {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extension").finish_non_exhaustive()
    }
}

/// Starts a service beside replication; what it returns is kept alive as long as the transport.
pub type StartExtension = Box<dyn FnOnce(Extension) -> Box<dyn std::any::Any + Send> + Send>;

/// A member as the transport needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetMember {
    /// Registry id.
    pub id: MemberId,
    /// Node key: authenticates its links and signs its envelopes.
    pub key: ed25519::PublicKey,
    /// Where it listens.
    pub addr: SocketAddr,
}

/// Transport settings.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// This member.
    pub me: MemberId,
    /// This member's node key.
    pub key: ed25519::PrivateKey,
    /// Where to listen for the other members.
    pub listen: SocketAddr,
    /// The current members (this one included).
    pub members: Vec<NetMember>,
    /// How often the status goes out and gaps are pulled.
    pub status_interval: Duration,
    /// How long a starting member waits to hear from every other member before it settles for
    /// a quorum (see [`Recovery`](crate::engine::Recovery)).
    pub recovery_timeout: Duration,
    /// Where the runtime keeps the journals of services beside replication (`None`: a
    /// temporary folder).
    pub storage: Option<std::path::PathBuf>,
}

/// The transport could not start.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The runtime thread could not be spawned.
    #[error("transport thread: {0}")]
    Thread(std::io::Error),
    /// The member list is not usable (duplicate keys).
    #[error("member list: {0}")]
    Members(String),
    /// The engine failed to start (its log could not be read).
    #[error("replication engine: {0}")]
    Engine(String),
}

/// A running transport with its replication engine.
#[derive(Debug)]
pub struct Replication {
    /// Sends own envelopes and reads progress.
    pub mailbox: Mailbox,
    members: mpsc::Sender<(Vec<NetMember>, oneshot::Sender<()>)>,
}

impl Replication {
    /// Starts the network and the engine. Envelopes of other members go to `deliver` in each
    /// origin's order as its contiguous prefix grows past what the log holds now (refill the
    /// pools from [`Log::for_each_contiguous`] first). Wait for
    /// [`Mailbox::recovered`] before accepting orders.
    pub fn start(
        config: TransportConfig,
        log: Arc<Log>,
        deliver: mpsc::Sender<Envelope>,
        extension: Option<StartExtension>,
    ) -> Result<Self, TransportError> {
        let initial = peer_map(&config.members)?;
        let (members_tx, mut members_rx) =
            mpsc::channel::<(Vec<NetMember>, oneshot::Sender<()>)>(16);
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        thread::Builder::new()
            .name("cobuild-net".into())
            .spawn(move || {
                let mut runtime = commonware_runtime::tokio::Config::new().with_worker_threads(2);
                if let Some(storage) = &config.storage {
                    runtime = runtime.with_storage_directory(storage.clone());
                }
                commonware_runtime::tokio::Runner::new(runtime).start(|context| async move {
                    let max_message = 8 * 1024 * 1024_u32;
                    let handshake = Cups::<_, commonware_cryptography::ChaCha20Poly1305>::new(
                        Sake {
                            signer: config.key.clone(),
                            synchrony_bound: Duration::from_secs(5),
                            max_handshake_age: Duration::from_secs(10),
                            version: sake::Version::V1,
                        },
                        cups::Version::V1,
                    );
                    // `local` dials often and allows private addresses and many handshakes from
                    // one IP: members on one machine (the devnet) share 127.0.0.1.
                    let mut p2p = lookup::Config::local(
                        handshake,
                        P2P_NAMESPACE,
                        config.listen,
                        NonZeroUsize::new(config.members.len() + 4).unwrap_or(NonZeroUsize::MIN),
                        max_message.min(lookup::max_size::<
                            Cups<
                                Sake<ed25519::PrivateKey>,
                                commonware_cryptography::ChaCha20Poly1305,
                            >,
                        >()),
                        NonZeroUsize::new(4096).unwrap_or(NonZeroUsize::MIN),
                    );
                    p2p.peer_connection_cooldown = Duration::from_millis(500);
                    p2p.tracked_peer_sets = NonZeroUsize::new(2).unwrap_or(NonZeroUsize::MIN);
                    let (mut network, mut oracle) = lookup::Network::new(context.child("p2p"), p2p);
                    oracle.track(0, initial);
                    // Messages per second from one peer. Channel buffers are sized from these
                    // (one burst per possible peer), so they are kept near what a member sends:
                    // pushes are batched, syncs are a status per tick plus pulls and answers.
                    let push = network.register(PUSH, Quota::per_second(NZU32!(5_000)));
                    let sync = network.register(SYNC, Quota::per_second(NZU32!(500)));
                    // Consensus sends a few messages per view and member; the ledger's own
                    // channel carries cuts, proposals and fetches of final records.
                    let channels = EXTENSION_CHANNELS
                        .map(|c| network.register(c, Quota::per_second(NZU32!(2_000))));
                    network.start();
                    let _extension = extension.map(|start| {
                        start(Extension {
                            context: context.child("extension"),
                            blocker: oracle.clone(),
                            channels,
                        })
                    });
                    let mut engine_config = engine::Config::new(config.me, peers(&config.members));
                    engine_config.status_interval = config.status_interval;
                    engine_config.recovery_timeout = config.recovery_timeout;
                    engine_config.max_message_bytes = max_message as usize / 2;
                    let (engine, mailbox) =
                        match Engine::new(context.child("engine"), engine_config, log, deliver) {
                            Ok(started) => started,
                            Err(e) => {
                                let _ = ready_tx.send(Err(TransportError::Engine(e.to_string())));
                                return;
                            }
                        };
                    let _ = ready_tx.send(Ok(mailbox.clone()));
                    let _engine = engine.start(push, sync);
                    // Follow the member set until the node drops its handle.
                    let mut set = 0u64;
                    while let Some((members, applied)) = members_rx.recv().await {
                        let Ok(map) = peer_map(&members) else {
                            tracing::warn!("net.members.refused");
                            continue;
                        };
                        set += 1;
                        oracle.track(set, map);
                        mailbox.set_members(peers(&members)).await;
                        let _ = applied.send(());
                        tracing::info!(set, members = members.len(), "net.members.updated");
                    }
                    let _ = context.stop(0, Some(Duration::from_secs(1))).await;
                });
            })
            .map_err(TransportError::Thread)?;
        let mailbox = ready_rx
            .recv()
            .map_err(|_| TransportError::Engine("runtime thread exited".into()))??;
        Ok(Self {
            mailbox,
            members: members_tx,
        })
    }

    /// Replaces the member set (removed members are disconnected, added ones dialled) and
    /// returns once the engine applies it, so an envelope a removed member sends afterwards
    /// is refused. A set that does not form a peer map is logged and left out.
    pub async fn set_members(&self, members: Vec<NetMember>) {
        let (applied, done) = oneshot::channel();
        if self.members.send((members, applied)).await.is_ok() {
            let _ = done.await;
        }
    }
}

fn peers(members: &[NetMember]) -> Vec<Peer> {
    members
        .iter()
        .map(|m| Peer {
            id: m.id,
            key: m.key.clone(),
        })
        .collect()
}

fn peer_map(members: &[NetMember]) -> Result<Map<ed25519::PublicKey, Address>, TransportError> {
    Map::try_from(
        members
            .iter()
            .map(|m| (m.key.clone(), Address::from(m.addr)))
            .collect::<Vec<_>>(),
    )
    .map_err(|e| TransportError::Members(format!("{e:?}")))
}
