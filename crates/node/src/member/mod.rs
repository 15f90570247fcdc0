//! A member node: its own chain replica following the hub's chain, its own pools and
//! orderflow RPC, and its own builder bidding to the hub's relay with the member's BLS key.
//!
//! # Design
//! ```text
//!  senders ──HTTP──▶ Orderflow (RPC + pools) ──▶ Builder ──▶ Bidder ──bids──▶ hub relay
//!                          ▲                        ▲                             │
//!                          │ pools follow           │ SlotJob                      │ SSE
//!  hub RPC ──debug_getRawBlock──▶ Follower ──▶ Chain (replica) ◀── slots::Slots ◀──┘
//!           (on each announcement, and polled)                    payload_attributes
//! ```
//! The node builds exactly the block the hub's relay accepts: parent, timestamp, randomness,
//! beacon root, withdrawals and gas limit come from the announcement; fee recipient is the
//! node's coinbase, which pays the proposer in the block. Its blocks carry
//! `cobuild node <id>` as extra data.
//!
//! Starting checks the key file against the registry entry (node and BLS keys must match) and
//! the replica's genesis against the hub's, so a node never bids for another chain. A node
//! killed and restarted reopens its replica and catches up from the hub.

mod admin;
mod config;
mod follow;
mod hub;
mod ports;
mod slots;

pub use admin::MemberAdmin;
pub use config::{MemberConfig, RegistrySource};
pub use follow::{BlockSource, FollowError, Follower};
pub use hub::{HubClient, HubError};
pub use ports::PortError;

use std::{
    future::Future,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use alloy_primitives::{Address, B256, Bytes};
use cobuild_chain::Chain;
use cobuild_registry::{
    FileRegistry, KeyFileError, Member, MemberId, NodeKeys, Registry, RegistryError,
    contract::{ContractConfig, ContractRegistry},
};
use cobuild_relay::{
    bid::{DEVNET_GENESIS_FORK_VERSION, builder_domain},
    events::{ReceivedSlot, SubscribeConfig, SubscribeError, subscribe},
};
use tokio::sync::watch;

use self::ports::PortHold;
use crate::{
    bidding::{BiddingConfig, BiddingError, start_bidding},
    builder::Builder,
    chain::{OpenError, open_chain},
    ledger::{self, LedgerSetup},
    orderflow::{Orderflow, Pools, RpcStartError},
    replication::{NodeReplication, ReplicationConfig, ReplicationError},
};

/// Pause between attempts to reach the hub while starting.
const HUB_RETRY: Duration = Duration::from_millis(200);
/// Least time between two build rounds: rounds start when orders arrive, so this only caps a
/// flood.
const ROUND_INTERVAL: Duration = Duration::from_millis(20);

/// Why a member node could not start.
#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    /// The key file could not be read.
    #[error(transparent)]
    Keys(#[from] KeyFileError),
    /// The registry could not be read.
    #[error("registry {source_of}: {source}")]
    Registry {
        /// Where it was read.
        source_of: String,
        /// Why.
        #[source]
        source: RegistryError,
    },
    /// The registry lists no member with this id, or none with the key file's node key.
    #[error("the registry lists no member {0}")]
    NotListed(String),
    /// The registry lists other keys for the member than the key file holds.
    #[error("member {id}: the registry lists another {key} than the key file's")]
    KeyMismatch {
        /// The member.
        id: MemberId,
        /// Which key differs.
        key: &'static str,
    },
    /// The registry's address for the member is not `ip:port` and none was given.
    #[error("member {id}: registry address {address:?} is not ip:port (pass the p2p port)")]
    Address {
        /// The member.
        id: MemberId,
        /// The address listed.
        address: String,
    },
    /// The hub did not answer.
    #[error(transparent)]
    Hub(#[from] HubError),
    /// A port the node must listen on is taken.
    #[error(transparent)]
    Port(#[from] PortError),
    /// The replica could not be read.
    #[error("the chain replica cannot be read: {0}")]
    Replica(String),
    /// The replica holds, or would hold, another chain than the hub's.
    #[error("the replica's genesis {ours} is not the hub's {hub}")]
    GenesisMismatch {
        /// Ours.
        ours: B256,
        /// The hub's.
        hub: B256,
    },
    /// The replica could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The RPC server could not start.
    #[error(transparent)]
    Rpc(#[from] RpcStartError),
    /// The builder could not start.
    #[error(transparent)]
    Bidding(#[from] BiddingError),
    /// The relay URL cannot be subscribed to.
    #[error(transparent)]
    Subscribe(#[from] SubscribeError),
    /// Replication to the other members could not start.
    #[error(transparent)]
    Replication(#[from] ReplicationError),
    /// The admin API could not start.
    #[error("admin api: {0}")]
    Admin(std::io::Error),
    /// The slot ledger's store could not be opened.
    #[error("slot ledger: {0}")]
    Ledger(String),
}

/// A running member node.
#[derive(Debug)]
pub struct MemberNode {
    /// The node's registry entry.
    pub member: Member,
    /// Its chain replica.
    pub chain: Chain,
    /// Its pools and RPC server.
    pub orderflow: Orderflow,
    /// Where its P2P transport is to listen.
    pub p2p_addr: SocketAddr,
    /// The coinbase of its blocks.
    pub coinbase: Address,
    /// Its order replication (log, transport).
    pub replication: NodeReplication,
    /// Where its admin API listens.
    pub admin_addr: SocketAddr,
    admin: MemberAdmin,
    admin_handle: jsonrpsee::server::ServerHandle,
    registry: Arc<dyn Registry>,
    builder: Builder,
    follower: Arc<Follower<HubClient>>,
    slots: watch::Receiver<Option<ReceivedSlot>>,
    poll_interval: Duration,
    refund_book: Arc<cobuild_refunds::Book>,
    payout: crate::refunds::payout::PayoutConfig,
}

impl MemberNode {
    /// Checks the keys against the registry, reaches the hub, opens the replica, and starts the
    /// RPC server, the builder and its bidder, and the slot subscription.
    pub async fn start(config: MemberConfig) -> Result<Self, MemberError> {
        let keys = NodeKeys::read(&config.key_file)?;
        let registry = open_registry(&config.registry).await?;
        let member = own_entry(&config, registry.as_ref(), &keys)?;
        let p2p_addr = match config.p2p_addr {
            Some(addr) => addr,
            None => member.address.parse().map_err(|_| MemberError::Address {
                id: member.id,
                address: member.address.clone(),
            })?,
        };
        // Held until each server binds: see `ports`.
        let rpc_port = PortHold::bind("the RPC server", config.orderflow.http_addr).await?;
        let admin_port = PortHold::bind("the admin API", config.admin_addr).await?;
        let p2p_port = PortHold::bind("the P2P transport", p2p_addr).await?;
        let hub = HubClient::connect(&config.hub_rpc, config.hub_timeout).await?;
        let (chain_id, genesis) = wait_for_hub(&hub, config.hub_timeout).await?;
        let rollback = cobuild_chain::Rollback::accepted(config.accept_chain_rollback);
        let chain = open_chain(
            &config.data_dir,
            chain_id,
            genesis.header.gas_limit,
            rollback,
        )
        .await
        .map_err(|e| match e {
            OpenError::Chain(error) => match *error {
                cobuild_chain::ChainError::GenesisMismatch { stored, .. } => {
                    MemberError::GenesisMismatch {
                        ours: stored,
                        hub: genesis.header.hash_slow(),
                    }
                }
                error => OpenError::Chain(Box::new(error)).into(),
            },
            other => other.into(),
        })?;
        // A replica that cannot be read is a fault of this node, not another chain.
        let ours = chain
            .read()
            .map_err(|e| MemberError::Replica(e.to_string()))?
            .canonical_hash(0)
            .map_err(|e| MemberError::Replica(e.to_string()))?
            .ok_or_else(|| MemberError::Replica("the replica has no genesis block".into()))?;
        let hub_genesis = genesis.header.hash_slow();
        if ours != hub_genesis {
            return Err(MemberError::GenesisMismatch {
                ours,
                hub: hub_genesis,
            });
        }
        // Orders reach the pools from the log first (refill), then from the members; the RPC
        // takes new ones only once this member knows where its own numbering stands.
        let pools = Pools::new(
            &chain,
            config.orderflow.max_orders,
            config.orderflow.bundle_horizon,
        );
        let ledger_store =
            ledger::open_store(&config.data_dir).map_err(|e| MemberError::Ledger(e.to_string()))?;
        let refund_book =
            ledger::open_book(&config.data_dir).map_err(|e| MemberError::Ledger(e.to_string()))?;
        p2p_port.release();
        let replication = NodeReplication::start(
            &ReplicationConfig {
                data_dir: config.data_dir.clone(),
                me: member.id,
                key: keys.node().clone(),
                listen: Some(p2p_addr),
                status_interval: Duration::from_millis(100),
                registry_interval: Duration::from_secs(1),
                recovery_timeout: config.recovery_timeout,
            },
            registry.as_ref(),
            pools.intake(&chain),
            Some(LedgerSetup {
                store: ledger_store.clone(),
                chain: chain.clone(),
                chain_genesis: hub_genesis,
                retention_slots: config.log_retention_slots,
                refunds: refund_book.clone(),
                founders: config.ledger_founders.clone(),
            }),
        )
        .await?;
        replication.recovered().await?;
        rpc_port.release();
        let orderflow = Orderflow::serve(
            pools,
            &chain,
            &config.orderflow,
            Some(replication.hook()?),
            Some((ledger_store.clone(), refund_book.clone())),
        )
        .await?;
        let builder = start_bidding(
            chain.spec().clone(),
            &orderflow,
            BiddingConfig {
                coinbase: keys.coinbase().clone(),
                bls: keys.builder().clone(),
                relay_url: config.relay_url.clone(),
                domain: builder_domain(DEVNET_GENESIS_FORK_VERSION),
                bid_percent: config.bid_percent,
                max_bids_per_second: config.max_bids_per_second,
                extra_relays: config.extra_relays.clone(),
                round_interval: ROUND_INTERVAL,
            },
            Arc::new(chain.clone()),
        )?;
        let slots = subscribe(SubscribeConfig::new(&config.relay_url))?;
        let follower = Arc::new(Follower::new(chain.clone(), orderflow.clone(), hub));
        tracing::info!(
            id = member.id,
            rpc = %orderflow.rpc_addr,
            %p2p_addr,
            coinbase = %builder.coinbase(),
            head = chain.head().number,
            "member.start"
        );
        let admin = MemberAdmin {
            me: member.id,
            chain: chain.clone(),
            orderflow: orderflow.clone(),
            replication: replication.clone(),
            registry: registry.clone(),
            bids: Arc::default(),
        };
        let token = admin_token(&config.data_dir).map_err(MemberError::Admin)?;
        admin_port.release();
        let admin_server =
            cobuild_rpc::start_admin(config.admin_addr, token, Arc::new(admin.clone()))
                .await
                .map_err(MemberError::Admin)?;
        let payout = crate::refunds::payout::PayoutConfig {
            me: member.id,
            coinbase: keys.coinbase().clone(),
            rpc_url: format!("http://{}", orderflow.rpc_addr),
            every_slots: config.refund_batch_slots,
        };
        Ok(Self {
            member,
            replication,
            admin_addr: admin_server.local_addr,
            admin,
            admin_handle: admin_server.handle,
            registry,
            coinbase: builder.coinbase(),
            chain,
            orderflow,
            p2p_addr,
            builder,
            follower,
            slots,
            poll_interval: config.poll_interval,
            payout,
            refund_book,
        })
    }

    /// Follows the hub and builds for every slot until `shutdown` resolves, then stops the RPC
    /// server.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let slots = slots::Slots {
            chain: &self.chain,
            builder: &self.builder,
            follower: &self.follower,
            extra_data: extra_data(self.member.id),
        };
        // Both loops are safe to drop at any await: an import under way finishes on its
        // blocking thread.
        tokio::select! {
            () = shutdown => {}
            () = self.follower.run(self.poll_interval) => {}
            () = self.replication.intake_stopped() => {
                tracing::error!("member.replication.ended");
            }
            () = self.replication.follow_registry(self.registry.clone(), Duration::from_secs(1)) => {}
            () = self.admin.record_bids(self.builder.subscribe()) => {}
            () = crate::refunds::payout::run(
                self.payout.clone(),
                self.refund_book.clone(),
                self.chain.clone(),
            ) => {}
            () = slots.run(self.slots.clone()) => {
                tracing::error!("member.slots.ended");
            }
        }
        self.builder.end_slot();
        let _ = self.admin_handle.stop();
        self.orderflow.stop().await;
        tracing::info!(head = self.chain.head().number, "member.stopped");
    }
}

/// The admin API's bearer token: read from `admin.token` in the data directory, or made there
/// (random, readable by the owner only) on first start.
fn admin_token(data_dir: &std::path::Path) -> std::io::Result<String> {
    let path = data_dir.join("admin.token");
    if let Ok(token) = std::fs::read_to_string(&path) {
        let token = token.trim().to_owned();
        if !token.is_empty() {
            return Ok(token);
        }
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(std::io::Error::other)?;
    let token = alloy_primitives::hex::encode(secret);
    std::fs::create_dir_all(data_dir)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(&path)?, token.as_bytes())?;
    Ok(token)
}

/// The extra data of member `id`'s blocks.
pub fn extra_data(id: MemberId) -> Bytes {
    Bytes::from(format!("cobuild node {id}").into_bytes())
}

/// Opens the member list the node follows.
async fn open_registry(source: &RegistrySource) -> Result<Arc<dyn Registry>, MemberError> {
    let failed = |e: String| MemberError::Registry {
        source_of: source.to_string(),
        source: RegistryError::Source(e),
    };
    Ok(match source {
        RegistrySource::File(path) => {
            Arc::new(
                FileRegistry::open(path).map_err(|source| MemberError::Registry {
                    source_of: path.display().to_string(),
                    source,
                })?,
            )
        }
        RegistrySource::Contract { rpc_url, address } => Arc::new(
            ContractRegistry::connect(ContractConfig::new(rpc_url.clone(), *address))
                .await
                .map_err(|e| failed(e.to_string()))?,
        ),
    })
}

/// The registry entry of this node, checked against its keys.
fn own_entry(
    config: &MemberConfig,
    registry: &dyn Registry,
    keys: &NodeKeys,
) -> Result<Member, MemberError> {
    let members = registry.members().map_err(|source| MemberError::Registry {
        source_of: config.registry.to_string(),
        source,
    })?;
    let public = keys.public();
    let member = match config.member_id {
        Some(id) => members
            .into_iter()
            .find(|m| m.id == id)
            .ok_or_else(|| MemberError::NotListed(format!("with id {id}")))?,
        None => members
            .into_iter()
            .find(|m| m.node_key == public.node_key)
            .ok_or_else(|| MemberError::NotListed(format!("with node key {}", public.node_key)))?,
    };
    if member.node_key != public.node_key {
        return Err(MemberError::KeyMismatch {
            id: member.id,
            key: "node key",
        });
    }
    if member.bls_key != public.bls_key {
        return Err(MemberError::KeyMismatch {
            id: member.id,
            key: "BLS key",
        });
    }
    Ok(member)
}

/// The hub's chain id and genesis block, asked until the hub answers or `timeout` passed (the
/// hub may still be starting).
async fn wait_for_hub(
    hub: &HubClient,
    timeout: Duration,
) -> Result<(u64, alloy_consensus::Block<alloy_consensus::TxEnvelope>), HubError> {
    let give_up = Instant::now() + timeout;
    loop {
        let answer = async { Ok::<_, HubError>((hub.chain_id().await?, hub.raw_block(0).await?)) };
        match answer.await {
            Ok(answer) => return Ok(answer),
            Err(error) if Instant::now() < give_up => {
                tracing::info!(%error, "member.hub.waiting");
                tokio::time::sleep(HUB_RETRY).await;
            }
            Err(error) => return Err(error),
        }
    }
}
