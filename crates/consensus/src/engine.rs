//! Starts a member's ledger: simplex consensus on its three channels and the ledger actor on
//! its own, over whatever authenticated network carries them (commonware's `lookup` network in
//! production, its simulated network in tests).

use std::{collections::BTreeMap, num::NonZeroU16, sync::Arc, time::Duration};

use commonware_consensus::{
    simplex::{
        self,
        config::{Floor, ForwardPolicy, SkipBudget, SkipPolicy},
        elector::RoundRobin,
    },
    types::ViewDelta,
};
use commonware_cryptography::{Digest as _, Sha256, ed25519};
use commonware_p2p::{
    Blocker, Receiver, Sender,
    utils::mux::{MuxHandle, Muxer},
};
use commonware_parallel::Sequential;
use commonware_runtime::{Clock, Handle, Metrics, Spawner, Storage, buffer::paged::CacheRef};
use commonware_utils::{NZDuration, NZUsize};
use rand_core::CryptoRng;
use tokio::sync::{mpsc, watch};

use crate::{
    Config, Digest, Epoch, Scheme, Store, StoreError,
    application::{Actor, Local, Mailbox},
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
    /// The epoch of the next record, and the digest its consensus builds on.
    pub epoch: watch::Receiver<(Epoch, Digest)>,
    /// Consensus, one simplex instance per epoch.
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

/// Starts the ledger actor and, for each epoch this member belongs to, simplex among the
/// epoch's members.
///
/// Consensus's three channels are split by epoch (commonware's muxer, the epoch number as the
/// subchannel), so an epoch's instance never hears another's votes. When a final record
/// closes an epoch the actor names the next one, and the instance of the old epoch is stopped
/// and one of the new members started on the record that closed it: a membership change takes
/// effect at a record boundary, never inside a slot.
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
    let (tx, rx) = mpsc::channel(1024);
    let mailbox = Mailbox::new(tx);
    let (final_tx, final_slot) = watch::channel(0);
    let (epochs_tx, epochs) = watch::channel((Epoch::new(0, BTreeMap::new()), Digest::EMPTY));
    let actor = Actor::new(
        context.child("ledger"),
        config.clone(),
        local,
        store.clone(),
        rx,
        final_tx,
        epochs_tx,
    )?;
    // A member the epoch lists under another key (its key was rotated and no record has named
    // the new one yet) follows the records until one does, as a non-member would.
    // The actor writes candidates and final records to disk as it goes (each a durable
    // commit); on a thread of its own those waits never hold up the shared executor that runs
    // replication and simplex.
    let actor = context
        .child("ledger")
        .dedicated()
        .spawn(move |_| actor.run(channels.ledger));
    let epoch = epochs.clone();
    let (votes, certificates, resolver) =
        (channels.votes, channels.certificates, channels.resolver);
    let consensus = context.child("epochs").spawn(move |context| {
        // The muxers are this task's children: stopping the ledger stops them too.
        let (votes, votes_mux) = Muxer::new(context.child("votes"), votes.0, votes.1);
        let (certificates, certificates_mux) = Muxer::new(
            context.child("certificates"),
            certificates.0,
            certificates.1,
        );
        let (resolver, resolver_mux) =
            Muxer::new(context.child("resolver"), resolver.0, resolver.1);
        votes.start();
        certificates.start();
        resolver.start();
        run_epochs(
            context,
            config,
            blocker,
            mailbox,
            epochs,
            [votes_mux, certificates_mux, resolver_mux],
        )
    });
    Ok(Ledger {
        store,
        final_slot,
        epoch,
        consensus,
        actor,
    })
}

/// Runs simplex for the current epoch, replacing the instance whenever the actor enters a new
/// one; ends when the actor does.
async fn run_epochs<E, B, S>(
    context: E,
    config: Config,
    blocker: B,
    mailbox: Mailbox,
    mut epochs: watch::Receiver<(Epoch, Digest)>,
    mut muxes: [MuxHandle<S>; 3],
) where
    E: Clock + CryptoRng + Spawner + Storage + Metrics,
    B: Blocker<PublicKey = ed25519::PublicKey>,
    S: Sender<PublicKey = ed25519::PublicKey>,
{
    let mut running: Option<Handle<()>> = None;
    loop {
        let (epoch, floor) = epochs.borrow_and_update().clone();
        if let Some(old) = running.take() {
            old.abort();
        }
        match config.signer(&epoch) {
            Some(scheme) => {
                let [votes, certificates, resolver] = &mut muxes;
                let subchannels = (
                    votes.register(epoch.number).await,
                    certificates.register(epoch.number).await,
                    resolver.register(epoch.number).await,
                );
                let (Ok(votes), Ok(certificates), Ok(resolver)) = subchannels else {
                    tracing::error!(epoch = epoch.number, "ledger.epoch.channels_unavailable");
                    return;
                };
                let engine = simplex_engine(
                    context
                        .child("simplex")
                        .with_attribute("epoch", epoch.number),
                    &config,
                    scheme,
                    blocker.clone(),
                    mailbox.clone(),
                    epoch.number,
                    floor,
                );
                running = Some(engine.start(votes, certificates, resolver));
                tracing::info!(epoch = epoch.number, "ledger.consensus.started");
            }
            // Not a member of this epoch: the actor still follows the final records.
            None if epoch.members.contains_key(&config.me) => tracing::warn!(
                epoch = epoch.number,
                "ledger.consensus.other_key: the epoch lists this member under another node \
                 key; following the records until one names this key"
            ),
            None => tracing::info!(epoch = epoch.number, "ledger.consensus.not_a_member"),
        }
        if epochs.changed().await.is_err() {
            if let Some(old) = running.take() {
                old.abort();
            }
            return;
        }
    }
}

/// The simplex engine of one epoch, building on `floor`.
fn simplex_engine<E, B>(
    context: E,
    config: &Config,
    scheme: Scheme,
    blocker: B,
    mailbox: Mailbox,
    epoch: u64,
    floor: Digest,
) -> simplex::Engine<E, Scheme, RoundRobin<Sha256>, B, Digest, Mailbox, Mailbox, Mailbox, Sequential>
where
    E: Clock + CryptoRng + Spawner + Storage + Metrics,
    B: Blocker<PublicKey = ed25519::PublicKey>,
{
    let leader_timeout = config.leader_timeout;
    simplex::Engine::new(
        context,
        simplex::config::Config {
            scheme,
            elector: RoundRobin::<Sha256>::default(),
            blocker,
            automaton: mailbox.clone(),
            relay: mailbox.clone(),
            reporter: mailbox,
            track_historical_votes: false,
            strategy: Sequential,
            partition: format!("{}-{epoch}", config.partition),
            mailbox_size: NZUsize!(1024),
            epoch: commonware_consensus::types::Epoch::new(epoch),
            floor: Floor::Genesis(floor),
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
    )
}
