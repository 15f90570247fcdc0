//! Starts a member's ledger: simplex consensus on its three channels and the ledger actor on
//! its own, over whatever authenticated network carries them (commonware's `lookup` network in
//! production, its simulated network in tests).

use std::{num::NonZeroU16, sync::Arc, time::Duration};

use commonware_consensus::{
    simplex::{
        self,
        config::{Floor, ForwardPolicy, SkipBudget, SkipPolicy},
        elector::RoundRobin,
    },
    types::{Epoch, ViewDelta},
};
use commonware_cryptography::{Sha256, ed25519};
use commonware_p2p::{Blocker, Receiver, Sender};
use commonware_parallel::Sequential;
use commonware_runtime::{Clock, Handle, Metrics, Spawner, Storage, buffer::paged::CacheRef};
use commonware_utils::{NZDuration, NZUsize};
use rand_core::CryptoRng;
use tokio::sync::{mpsc, watch};

use crate::{
    Config, Store, StoreError,
    application::{Actor, Local, Mailbox},
    record::genesis_digest,
};

/// The channels a ledger runs on: consensus's votes, certificates and resolver, and the
/// ledger's own (cuts, proposals, final records).
#[derive(Debug)]
pub struct Channels<S, R> {
    /// Votes.
    pub votes: (S, R),
    /// Certificates.
    pub certificates: (S, R),
    /// Consensus's fetches of missing certificates.
    pub resolver: (S, R),
    /// Cuts, proposed records and final records.
    pub ledger: (S, R),
}

/// The ledger could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// This member's key is not the registry's key for it.
    #[error("member {0}'s node key is not among the ledger's members")]
    NotAMember(u32),
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A running ledger.
pub struct Ledger {
    /// The final records.
    pub store: Arc<Store>,
    /// The slot of the last final record (the one before the first slot while none is).
    pub final_slot: watch::Receiver<u64>,
    /// Consensus.
    pub consensus: Handle<()>,
    /// The ledger actor.
    pub actor: Handle<()>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("final_slot", &*self.final_slot.borrow())
            .finish_non_exhaustive()
    }
}

/// Starts simplex and the ledger actor for `config.me`.
pub fn start<E, L, B, S, R>(
    context: E,
    config: Config,
    local: L,
    store: Arc<Store>,
    blocker: B,
    channels: Channels<S, R>,
) -> Result<Ledger, StartError>
where
    E: Clock + CryptoRng + Spawner + Storage + Metrics,
    L: Local,
    B: Blocker<PublicKey = ed25519::PublicKey>,
    S: Sender<PublicKey = ed25519::PublicKey>,
    R: Receiver<PublicKey = ed25519::PublicKey>,
{
    let scheme = config.signer().ok_or(StartError::NotAMember(config.me))?;
    let (tx, rx) = mpsc::channel(1024);
    let mailbox = Mailbox::new(tx);
    let (final_tx, final_slot) = watch::channel(0);
    let genesis = genesis_digest(config.chain_genesis, config.epoch);
    let leader_timeout = config.leader_timeout;
    let partition = format!("{}-{}", config.partition, config.epoch);
    let epoch = config.epoch;
    let actor = Actor::new(
        context.child("ledger"),
        config,
        local,
        store.clone(),
        rx,
        final_tx,
    )?;
    // The actor writes candidates and final records to disk as it goes (each a durable
    // commit); on a thread of its own those waits never hold up the shared executor that runs
    // replication and simplex.
    let actor = context
        .child("ledger")
        .dedicated()
        .spawn(move |_| actor.run(channels.ledger));
    let engine = simplex::Engine::new(
        context.child("simplex"),
        simplex::config::Config {
            scheme,
            elector: RoundRobin::<Sha256>::default(),
            blocker,
            automaton: mailbox.clone(),
            relay: mailbox.clone(),
            reporter: mailbox,
            track_historical_votes: false,
            strategy: Sequential,
            partition,
            mailbox_size: NZUsize!(1024),
            epoch: Epoch::new(epoch),
            floor: Floor::Genesis(genesis),
            replay_buffer: NZUsize!(1024 * 1024),
            write_buffer: NZUsize!(1024 * 1024),
            page_cache: CacheRef::new(
                NonZeroU16::new(4096).unwrap_or(NonZeroU16::MIN),
                NZUsize!(64),
            ),
            leader_timeout,
            certification_timeout: leader_timeout + leader_timeout / 2,
            timeout_retry: leader_timeout * 2,
            view_retention: ViewDelta::new(64),
            skip: SkipPolicy::Enabled {
                timeout: leader_timeout * 5,
                budget: SkipBudget::Participants,
            },
            fetch_timeout: NZDuration!(Duration::from_secs(1)),
            fetch_retry_delay: Duration::from_millis(200),
            forward: ForwardPolicy::SilentVoters,
        },
    );
    let consensus = engine.start(channels.votes, channels.certificates, channels.resolver);
    Ok(Ledger {
        store,
        final_slot,
        consensus,
        actor,
    })
}
