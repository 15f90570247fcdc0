//! The single-process devnet: an embedded chain that produces a block every slot.

mod config;
mod producer;

pub use config::{DevnetConfig, default_builder_key};
pub use producer::{Producer, ProducerError};

use std::{future::Future, net::SocketAddr, sync::Arc};

use alloy_signer_local::PrivateKeySigner;
use cobuild_chain::{Chain, ChainError, Genesis, dev_signers};
use cobuild_contracts::{DemoDeployment, DemoParams};
use cobuild_pool::{BundlePool, OrderLimit, PoolConfig, TxPool};
use cobuild_primitives::ChainSpec;
use cobuild_relay::{self as relay, BuilderKey, RelayClient, RelayServer};
use cobuild_rpc::{Bundles, Eth, RpcConfig};

use crate::builder::{Bidder, Builder, BuilderConfig};

/// Why the devnet could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    /// The data directory could not be prepared.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The chain could not be opened.
    #[error("chain: {0}")]
    Chain(#[from] ChainError),
    /// The RPC server could not start.
    #[error("rpc server on {addr}: {source}")]
    Rpc {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Block production failed.
    #[error(transparent)]
    Producer(#[from] ProducerError),
    /// The builder could not start.
    #[error(transparent)]
    Builder(#[from] crate::builder::BuilderError),
    /// The builder's coinbase key is not a valid secp256k1 key.
    #[error("builder key: {0}")]
    BuilderKey(String),
    /// The relay client could not be set up.
    #[error("relay client: {0}")]
    RelayClient(#[from] cobuild_relay::client::RelayError),
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
    pub pool: TxPool,
    /// Where the JSON-RPC server listens.
    pub rpc_addr: SocketAddr,
    /// The demo contracts, when enabled (deployed by the last development account, nonce 0).
    pub demo: Option<DemoDeployment>,
    /// Where the local relay serves the builder API.
    pub relay_addr: SocketAddr,
    /// The builder's coinbase.
    pub builder_coinbase: alloy_primitives::Address,
    rpc: jsonrpsee::server::ServerHandle,
    producer: Producer,
    relay_stop: tokio::sync::oneshot::Sender<()>,
}

impl Devnet {
    /// Opens (or creates) the chain in the data directory and starts the RPC server.
    pub async fn start(config: DevnetConfig) -> Result<Self, DevnetError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| DevnetError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let spec = Arc::new(ChainSpec::devnet(config.chain_id));
        let genesis = Genesis::devnet(config.gas_limit, cobuild_primitives::INITIAL_BASE_FEE);
        let path = config.data_dir.join("chain.redb");
        let chain = tokio::task::spawn_blocking(move || Chain::open(&path, spec, &genesis))
            .await
            .map_err(|e| DevnetError::Producer(ProducerError::Join(e.to_string())))??;
        let limit = OrderLimit::new(config.max_orders);
        let pool = TxPool::with_limit(chain.clone(), PoolConfig::default(), &limit);
        let demo = config.demo_contracts.then(|| {
            let deployer = &dev_signers()[cobuild_chain::DEV_ACCOUNT_COUNT as usize - 1];
            let params = DemoParams {
                chain_id: config.chain_id,
                nonce: 0,
                max_fee_per_gas: 100_000_000_000,
            };
            DemoDeployment::new(deployer, params)
        });
        // A new chain gets the demo state in its first block; an existing one already has it.
        if let Some(demo) = &demo
            && chain.head().number == 0
        {
            for tx in demo.transactions.clone() {
                pool.add(tx).map_err(DevnetError::Demo)?;
            }
        }
        let bundles = BundlePool::with_limit(&limit);
        let server = cobuild_rpc::start(
            RpcConfig::new(config.http_addr),
            Eth::new(chain.clone(), pool.clone()),
            Bundles::new(
                chain.clone(),
                pool.clone(),
                bundles.clone(),
                cobuild_rpc::OrderflowLimits {
                    sender_rate: config.bundle_rate,
                    sender_burst: config.bundle_burst,
                    ip_rate: config.ip_rate,
                    ip_burst: config.ip_burst,
                },
            ),
        )
        .await
        .map_err(|source| DevnetError::Rpc {
            addr: config.http_addr,
            source,
        })?;
        let coinbase = PrivateKeySigner::from_bytes(&config.builder_key)
            .map_err(|e| DevnetError::BuilderKey(e.to_string()))?;
        let builder_coinbase = coinbase.address();
        let builder = Builder::new(
            chain.clone(),
            pool.clone(),
            bundles.clone(),
            &limit,
            BuilderConfig {
                coinbase,
                bid_percent: config.bid_percent,
                sim_threads: 2,
                round_interval: (config.slot / 100).clamp(
                    std::time::Duration::from_millis(10),
                    std::time::Duration::from_millis(100),
                ),
            },
        )?;

        // The local relay + proposer, serving the builder API beside the RPC server.
        let bls = BuilderKey::from_seed(&config.builder_key.0);
        let relay = RelayServer::new(
            relay::server::Config::devnet(
                vec![bls.public_key()],
                config.fee_recipient,
                config.gas_limit,
            ),
            chain.clone(),
        );
        let relay_bind = SocketAddr::new(config.http_addr.ip(), config.relay_port);
        let listener = tokio::net::TcpListener::bind(relay_bind)
            .await
            .map_err(|source| DevnetError::Rpc {
                addr: relay_bind,
                source,
            })?;
        let relay_addr = listener.local_addr().map_err(|source| DevnetError::Rpc {
            addr: relay_bind,
            source,
        })?;
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
        let mut client_config = relay::client::Config::new(format!("http://{relay_addr}"));
        client_config.max_submissions_per_second =
            std::num::NonZeroU32::new(config.max_bids_per_second)
                .unwrap_or(std::num::NonZeroU32::MIN);
        let bidder = Bidder::new(
            RelayClient::new(client_config)?,
            bls,
            relay.domain(),
            config.fee_recipient,
        );
        tokio::spawn(bidder.run(builder.subscribe()));
        tracing::info!(%relay_addr, coinbase = %builder_coinbase, "devnet.relay.start");

        let producer = Producer::new(
            chain.clone(),
            pool.clone(),
            bundles,
            builder,
            relay,
            config.clone(),
        );
        Ok(Self {
            chain,
            pool,
            rpc_addr: server.local_addr,
            demo,
            relay_addr,
            builder_coinbase,
            rpc: server.handle,
            producer,
            relay_stop,
        })
    }

    /// Produces a block every slot until `shutdown` resolves, then stops the RPC server.
    ///
    /// Shutdown is seen only between slots, so a block being sealed is always committed.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), DevnetError> {
        let result = self.producer.run(shutdown).await;
        let _ = self.relay_stop.send(());
        let _ = self.rpc.stop();
        self.rpc.stopped().await;
        tracing::info!(head = self.chain.head().number, "devnet.stopped");
        Ok(result?)
    }
}
