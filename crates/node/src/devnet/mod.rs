//! The single-process devnet: an embedded chain that produces a block every slot.

mod config;
mod producer;

pub use config::DevnetConfig;
pub use producer::{Producer, ProducerError};

use std::{future::Future, net::SocketAddr, sync::Arc};

use cobuild_chain::{Chain, ChainError, Genesis, dev_signers};
use cobuild_contracts::{DemoDeployment, DemoParams};
use cobuild_pool::{BundlePool, PoolConfig, TxPool};
use cobuild_primitives::ChainSpec;
use cobuild_rpc::{Bundles, Eth, RpcConfig};

/// Most bundles the devnet holds at once.
const MAX_BUNDLES: usize = 10_000;

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
    rpc: jsonrpsee::server::ServerHandle,
    producer: Producer,
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
        let pool = TxPool::new(chain.clone(), PoolConfig::default());
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
        let bundles = BundlePool::new(MAX_BUNDLES);
        let server = cobuild_rpc::start(
            RpcConfig::new(config.http_addr),
            Eth::new(chain.clone(), pool.clone()),
            Bundles::new(
                chain.clone(),
                bundles.clone(),
                config.bundle_rate,
                config.bundle_burst,
            ),
        )
        .await
        .map_err(|source| DevnetError::Rpc {
            addr: config.http_addr,
            source,
        })?;
        let producer = Producer::new(chain.clone(), pool.clone(), bundles, config.clone());
        Ok(Self {
            chain,
            pool,
            rpc_addr: server.local_addr,
            demo,
            rpc: server.handle,
            producer,
        })
    }

    /// Produces one block now (outside the slot clock), for tests and tools.
    pub async fn produce(&self) -> Result<cobuild_chain::ExecutedBlock, DevnetError> {
        Ok(self.producer.produce().await?)
    }

    /// Produces a block every slot until `shutdown` resolves, then stops the RPC server.
    ///
    /// Shutdown is seen only between slots, so a block being sealed is always committed.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), DevnetError> {
        let result = self.producer.run(shutdown).await;
        let _ = self.rpc.stop();
        self.rpc.stopped().await;
        tracing::info!(head = self.chain.head().number, "devnet.stopped");
        Ok(result?)
    }
}
