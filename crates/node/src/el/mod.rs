//! A node beside the operator's own execution and consensus clients (real-chain mode): the
//! state it validates orders against and builds on is the execution client's, read over its
//! standard JSON-RPC; the slots come from the consensus clients' `payload_attributes` events;
//! bids go to every configured relay.
//!
//! # Design
//! ```text
//!  senders ──HTTP──▶ Orderflow (orderflow methods only) ──▶ TxPool / BundlePool
//!                          │ validate against                     │
//!                          ▼                                      ▼
//!  execution client ◀── ElChain (head pinned by hash) ──▶ Builder ──▶ Bidder per relay ──▶ relays
//!        ▲                     ▲ follow(parent)                ▲ SlotJob
//!        │                     └──────────── slots::Slots ─────┘
//!        │                                        ▲ ReceivedSlot (merged, deduplicated)
//!  consensus clients ── payload_attributes (SSE) ─┘   + registrations::Registrations (relays'
//!                                                      validators: skip unregistered slots)
//! ```
//! The node keeps no chain of its own: no store, no replica to sync. Each slot's parent is
//! read from the execution client when the slot is announced, its state pinned by hash, and
//! blocks are sealed from the client's proofs. The eth namespace is the execution client's;
//! the node serves only the orderflow methods.
//!
//! [`mock`] is a consensus client of the project's own for tests and trials: it drives an anvil
//! one slot at a time through a relay that checks bids on the same execution client.

mod config;
mod mempool;
pub mod mock;
mod registrations;
mod slots;
mod verify;

pub use config::ElNodeConfig;
pub use verify::ElVerifier;

use std::{future::Future, net::SocketAddr, sync::Arc};

use cobuild_chain::HeadSource;
use cobuild_el::{ElChain, ElClient, ElError};
use cobuild_relay::{
    RelayClient,
    bid::builder_domain,
    client::RelayError,
    events::{
        BeaconError, BeaconGenesis, SubscribeConfig, SubscribeError, fetch_genesis, subscribe_all,
    },
};

use crate::{
    bidding::spawn_bidders,
    builder::{Builder, BuilderConfig, BuilderError},
    orderflow::{Orderflow, Pools, RpcStartError},
};

/// Why a node beside an execution client could not start.
#[derive(Debug, thiserror::Error)]
pub enum ElNodeError {
    /// The execution client could not be reached or read.
    #[error(transparent)]
    El(#[from] ElError),
    /// No relay was given.
    #[error("no relay to bid to")]
    NoRelay,
    /// No consensus client was given.
    #[error("no beacon API to take slots from")]
    NoBeacon,
    /// No consensus client answered the genesis and spec reads.
    #[error("no beacon API gave the chain's genesis: {0}")]
    Genesis(#[source] BeaconError),
    /// Neither the settings nor the consensus client give the genesis fork version.
    #[error("the genesis fork version is unknown: the beacon API does not give it, pass it")]
    NoForkVersion,
    /// A relay client could not be set up.
    #[error("relay client: {0}")]
    Relay(#[from] RelayError),
    /// The slot subscription could not start.
    #[error(transparent)]
    Subscribe(#[from] SubscribeError),
    /// The RPC server could not start.
    #[error(transparent)]
    Rpc(#[from] RpcStartError),
    /// The builder could not start.
    #[error(transparent)]
    Builder(#[from] BuilderError),
    /// The connecting task died.
    #[error("starting task: {0}")]
    Join(String),
}

/// A running node beside an execution client.
#[derive(Debug)]
pub struct ElNode {
    /// Its order intake (RPC and pools).
    pub orderflow: Orderflow,
    /// The execution client's chain it follows.
    pub chain: ElChain,
    builder: Builder,
    slots: slots::Slots,
    head_poll: std::time::Duration,
    announcements: tokio::sync::watch::Receiver<Option<cobuild_relay::events::ReceivedSlot>>,
}

impl ElNode {
    /// Connects to the execution client (its chain id and head), starts the orderflow RPC, the
    /// builder, a bidder per relay and the slot subscription.
    pub async fn start(config: ElNodeConfig) -> Result<Self, ElNodeError> {
        if config.relays.is_empty() {
            return Err(ElNodeError::NoRelay);
        }
        if config.beacons.is_empty() {
            return Err(ElNodeError::NoBeacon);
        }
        let genesis = beacon_genesis(&config.beacons).await?;
        let fork_version = match (config.genesis_fork_version, genesis.fork_version) {
            (Some(ours), Some(theirs)) if ours != theirs => {
                // A wrong domain gets every bid refused; the operator's word stands, loudly.
                tracing::warn!(?ours, ?theirs, "el.fork_version.differs_from_beacon");
                ours
            }
            (Some(version), _) | (None, Some(version)) => version,
            (None, None) => return Err(ElNodeError::NoForkVersion),
        };
        let url = config.el_rpc.clone();
        let chain = tokio::task::spawn_blocking(move || ElChain::connect(ElClient::connect(&url)?))
            .await
            .map_err(|e| ElNodeError::Join(e.to_string()))??;
        let pools = Pools::new(
            &chain,
            config.orderflow.max_orders,
            config.orderflow.bundle_horizon,
        );
        let orderflow = Orderflow::serve_orders(pools, chain.clone(), &config.orderflow).await?;
        let builder = Builder::new(
            chain.spec().clone(),
            orderflow.pool.clone(),
            orderflow.bundles.clone(),
            &orderflow.limit,
            BuilderConfig {
                coinbase: config.coinbase.clone(),
                bid_percent: config.bid_percent,
                sim_threads: 2,
                round_interval: config.round_interval,
            },
        )?
        .with_read_ahead(Arc::new(chain.clone()));
        let clients = config
            .relays
            .iter()
            .cloned()
            .map(RelayClient::new)
            .collect::<Result<Vec<_>, _>>()?;
        // Optimistic relays get a block once it executed again on the followed parent.
        let check: Arc<dyn crate::builder::BidCheck> = Arc::new(verify::ElVerifier(chain.clone()));
        spawn_bidders(
            &builder,
            clients.clone(),
            &config.bls,
            builder_domain(fork_version),
            &check,
        );
        // A beacon node sends no keep-alives: a stream is dead only after two silent slots,
        // and its head events (one a slot) keep it talking.
        let idle_timeout = std::time::Duration::from_secs(2 * genesis.clock.seconds_per_slot() + 2)
            .max(SubscribeConfig::new("").idle_timeout);
        let announcements = subscribe_all(
            config
                .beacons
                .iter()
                .map(|url| SubscribeConfig {
                    idle_timeout,
                    with_head: true,
                    ..SubscribeConfig::new(url)
                })
                .collect(),
        )?;
        let head = chain.head();
        tracing::info!(
            rpc = %orderflow.rpc_addr,
            el = %config.el_rpc,
            chain_id = chain.spec().chain_id(),
            head = head.number,
            coinbase = %builder.coinbase(),
            relays = config.relays.len(),
            beacons = config.beacons.len(),
            "el.start"
        );
        Ok(Self {
            slots: slots::Slots {
                chain: chain.clone(),
                orderflow: orderflow.clone(),
                builder: builder.clone(),
                registrations: registrations::Registrations::new(clients),
                clock: genesis.clock,
                extra_data: config.extra_data,
            },
            orderflow,
            chain,
            builder,
            announcements,
            head_poll: config.head_poll,
        })
    }

    /// Where the orderflow RPC listens.
    pub const fn rpc_addr(&self) -> SocketAddr {
        self.orderflow.rpc_addr
    }

    /// The coinbase of the node's blocks.
    pub fn coinbase(&self) -> alloy_primitives::Address {
        self.builder.coinbase()
    }

    /// Builds for every announced slot until `shutdown` resolves, then stops the RPC server.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let announcements = self.announcements.clone();
        let poll = mempool::PollMempool::new();
        tokio::select! {
            () = shutdown => {}
            () = self.slots.run(announcements) => tracing::error!("el.slots.ended"),
            () = follow_head(self.chain.clone(), self.orderflow.clone(), self.head_poll, poll.clone()) => {}
            () = mempool::stream(self.chain.clone(), self.orderflow.clone(), poll) => {}
        }
        self.builder.end_slot();
        self.orderflow.stop().await;
        tracing::info!("el.stopped");
    }
}

/// Asks the execution client for its head every `every` and, when it moved, follows it and lets
/// the pools drop what it made stale (a slot announcement does the same for the slot's parent;
/// whichever comes first finds the work done); then, unless a subscription streams it, reads
/// its public mempool into the pool. Never returns.
async fn follow_head(
    chain: ElChain,
    orderflow: Orderflow,
    every: std::time::Duration,
    poll: mempool::PollMempool,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let (chain, orderflow, poll) = (chain.clone(), orderflow.clone(), poll.clone());
        let followed = tokio::task::spawn_blocking(move || {
            let head = chain.client().head()?;
            let followed = chain.follow(head.hash)?;
            if followed.moved {
                orderflow.on_head(&followed.state, followed.header.number, &[]);
            }
            // A client without `txpool_content` only costs the public orderflow.
            let public = if poll.wanted() {
                mempool::take_whole(&chain, &orderflow).unwrap_or_else(|error| {
                    tracing::debug!(%error, "el.mempool.unreadable");
                    0
                })
            } else {
                0
            };
            Ok::<_, ElError>((followed, public))
        })
        .await;
        match followed {
            Ok(Ok((followed, public))) => {
                if followed.moved || public > 0 {
                    tracing::debug!(
                        number = followed.header.number,
                        moved = followed.moved,
                        public,
                        "el.head.followed"
                    );
                }
            }
            Ok(Err(error)) => tracing::warn!(%error, "el.head.unreadable"),
            Err(error) => tracing::error!(%error, "el.head.task_failed"),
        }
    }
}

/// How long one Beacon API read at start may take.
const BEACON_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The genesis of the first of `beacons` that gives it (the others are logged).
async fn beacon_genesis(beacons: &[String]) -> Result<BeaconGenesis, ElNodeError> {
    let mut last = None;
    for url in beacons {
        match fetch_genesis(url, BEACON_TIMEOUT).await {
            Ok(genesis) => return Ok(genesis),
            Err(error) => {
                tracing::warn!(beacon = %url, %error, "el.beacon.genesis_failed");
                last = Some(error);
            }
        }
    }
    Err(last.map_or(ElNodeError::NoBeacon, ElNodeError::Genesis))
}
