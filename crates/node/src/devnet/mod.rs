//! The devnet: an embedded chain that produces a block every slot, with the local relay and
//! proposer. It runs either with its own builder in one process ([`Devnet::start`]), or as the
//! hub of member nodes in other processes that build and bid ([`Devnet::start_hub`]).
//!
//! ```text
//!  single process:  Orderflow ──▶ Builder ──▶ Bidder ──▶ relay ◀── Producer (slot clock)
//!  hub:             Orderflow (public txs, for local blocks)        relay ◀── Producer
//!                   member nodes ── bids ──▶ relay;  relay ── payload_attributes ──▶ members
//! ```

mod config;
mod producer;

pub use config::{DevnetConfig, default_builder_key};
pub use producer::{Producer, ProducerError};

use std::{future::Future, net::SocketAddr};

use alloy_primitives::Address;
use alloy_signer_local::PrivateKeySigner;
use cobuild_chain::{Chain, dev_signers};
use cobuild_contracts::{DemoDeployment, DemoParams};
use cobuild_relay::{self as relay, BlsPublicKey, BuilderKey, RelayServer};

use crate::{
    bidding::{BiddingConfig, BiddingError, start_bidding},
    chain::{OpenError, open_chain},
    orderflow::{Orderflow, RpcStartError},
};

/// Why the devnet could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    /// The chain could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The RPC server could not start.
    #[error(transparent)]
    Rpc(#[from] RpcStartError),
    /// The relay could not listen.
    #[error("relay on {addr}: {source}")]
    Relay {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Block production failed.
    #[error(transparent)]
    Producer(#[from] ProducerError),
    /// The builder or its bidder could not start.
    #[error(transparent)]
    Bidding(#[from] BiddingError),
    /// The builder's coinbase key is not a valid secp256k1 key.
    #[error("builder key: {0}")]
    BuilderKey(String),
    /// The demo deployment was refused by the pool.
    #[error("demo contracts: {0}")]
    Demo(cobuild_pool::PoolError),
}

/// A running devnet.
#[derive(Debug)]
pub struct Devnet {
    /// The chain.
    pub chain: Chain,
    /// The pending transactions.
    pub pool: cobuild_pool::TxPool,
    /// Where the JSON-RPC server listens.
    pub rpc_addr: SocketAddr,
    /// The demo contracts, when enabled (deployed by the last development account, nonce 0).
    pub demo: Option<DemoDeployment>,
    /// Where the local relay serves the builder API and the slot event stream.
    pub relay_addr: SocketAddr,
    /// The coinbase of the devnet's own builder (none for a hub: its members build).
    pub builder_coinbase: Option<Address>,
    orderflow: Orderflow,
    relay: RelayServer<Chain>,
    producer: Producer,
    relay_stop: tokio::sync::oneshot::Sender<()>,
}

impl Devnet {
    /// Opens (or creates) the chain in the data directory and starts the RPC server, the local
    /// relay and the devnet's own builder, which bids with a BLS key derived from
    /// `config.builder_key`.
    pub async fn start(config: DevnetConfig) -> Result<Self, DevnetError> {
        let coinbase = PrivateKeySigner::from_bytes(&config.builder_key)
            .map_err(|e| DevnetError::BuilderKey(e.to_string()))?;
        let bls = BuilderKey::from_seed(&config.builder_key.0);
        let builders = vec![bls.public_key()];
        Self::launch(config, builders, Some((coinbase, bls))).await
    }

    /// Opens (or creates) the chain and starts the RPC server and the local relay, taking bids
    /// from `builders` (the members' BLS keys) only; the devnet builds nothing itself and
    /// falls back to a local block when no bid came.
    pub async fn start_hub(
        config: DevnetConfig,
        builders: Vec<BlsPublicKey>,
    ) -> Result<Self, DevnetError> {
        Self::launch(config, builders, None).await
    }

    async fn launch(
        config: DevnetConfig,
        builders: Vec<BlsPublicKey>,
        own_builder: Option<(PrivateKeySigner, BuilderKey)>,
    ) -> Result<Self, DevnetError> {
        let rollback = cobuild_chain::Rollback::accepted(config.accept_chain_rollback);
        let chain = open_chain(
            &config.data_dir,
            config.chain_id,
            config.gas_limit,
            rollback,
        )
        .await?;
        let orderflow = Orderflow::start(&chain, &config.orderflow()).await?;
        let demo = config.demo_contracts.then(|| {
            let deployer = &dev_signers()[cobuild_chain::DEV_ACCOUNT_COUNT as usize - 1];
            let params = DemoParams {
                chain_id: config.chain_id,
                nonce: 0,
                max_fee_per_gas: 100_000_000_000,
                supply: DemoParams::DEVNET_SUPPLY,
            };
            DemoDeployment::new(deployer, params)
        });
        // A new chain gets the demo state in its first block; an existing one already has it.
        if let Some(demo) = &demo
            && chain.head().number == 0
        {
            for tx in demo.transactions.clone() {
                orderflow.pool.add(tx).map_err(DevnetError::Demo)?;
            }
        }

        // The local relay + proposer, serving the builder API beside the RPC server.
        let relay = RelayServer::new(
            relay::server::Config {
                strict: config.strict_relay,
                ..relay::server::Config::devnet(builders, config.fee_recipient, config.gas_limit)
            },
            chain.clone(),
        );
        let relay_bind = SocketAddr::new(config.http_addr.ip(), config.relay_port);
        let relay_err = |source| DevnetError::Relay {
            addr: relay_bind,
            source,
        };
        let listener = tokio::net::TcpListener::bind(relay_bind)
            .await
            .map_err(relay_err)?;
        let relay_addr = listener.local_addr().map_err(relay_err)?;
        let (relay_stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = relay.clone();
        tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = serving.serve(listener, shutdown).await {
                tracing::error!(error = %e, "devnet.relay.failed");
            }
        });

        let builder = match own_builder {
            Some((coinbase, bls)) => Some(start_bidding(
                chain.spec().clone(),
                &orderflow,
                BiddingConfig {
                    coinbase,
                    bls,
                    relay_url: format!("http://{relay_addr}"),
                    domain: relay.domain(),
                    bid_percent: config.bid_percent,
                    max_bids_per_second: config.max_bids_per_second,
                    extra_relays: config.extra_relays.clone(),
                    // About a hundred rounds a slot at most: more would only repeat the
                    // same block.
                    round_interval: (config.slot / 100).clamp(
                        std::time::Duration::from_millis(10),
                        std::time::Duration::from_millis(100),
                    ),
                },
                std::sync::Arc::new(chain.clone()),
            )?),
            None => None,
        };
        let builder_coinbase = builder.as_ref().map(crate::builder::Builder::coinbase);
        tracing::info!(%relay_addr, coinbase = ?builder_coinbase, "devnet.relay.start");

        let producer = Producer::new(
            chain.clone(),
            orderflow.clone(),
            builder,
            relay.clone(),
            config.clone(),
        );
        Ok(Self {
            chain,
            pool: orderflow.pool.clone(),
            rpc_addr: orderflow.rpc_addr,
            demo,
            relay_addr,
            builder_coinbase,
            orderflow,
            relay,
            producer,
            relay_stop,
        })
    }

    /// Every bid the local relay accepts from now on, with its block's transactions (see
    /// [`RelayServer::accepted_bids`]).
    pub fn accepted_bids(
        &self,
    ) -> tokio::sync::broadcast::Receiver<std::sync::Arc<relay::server::AcceptedBid>> {
        self.relay.accepted_bids()
    }

    /// Produces a block every slot until `shutdown` resolves, then stops the RPC server.
    ///
    /// Shutdown is seen only between slots, so a block being sealed is always committed.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), DevnetError> {
        let result = self.producer.run(shutdown).await;
        let _ = self.relay_stop.send(());
        self.orderflow.stop().await;
        tracing::info!(head = self.chain.head().number, "devnet.stopped");
        Ok(result?)
    }
}
