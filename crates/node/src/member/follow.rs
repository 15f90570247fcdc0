//! Following the hub's chain: fetch each block the hub committed, import it into the node's
//! replica (re-executed, every header field checked), and let the pools follow the new head
//! exactly as the devnet proposer's do.
//!
//! Syncs are serialised: the slot loop asks for the parent of the slot it is about to build
//! on, and a poller catches up when no slot announcement comes; whichever comes second finds
//! the work done.

use std::{collections::VecDeque, future::Future, time::Duration};

use alloy_consensus::{Block, TxEnvelope};
use alloy_primitives::B256;
use cobuild_chain::{Chain, ChainError};
use parking_lot::Mutex;

use crate::orderflow::Orderflow;

/// How many of this node's recent best blocks are remembered to spot when one won.
const REMEMBERED: usize = 4;

/// Where a follower gets blocks: the hub's RPC, or a local chain in tests.
pub trait BlockSource: Send + Sync + 'static {
    /// Why a request failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The number of the source's head block.
    fn head_number(&self) -> impl Future<Output = Result<u64, Self::Error>> + Send;

    /// The source's canonical block `number` (which is at most its head).
    fn block(
        &self,
        number: u64,
    ) -> impl Future<Output = Result<Block<TxEnvelope>, Self::Error>> + Send;
}

/// A sync stopped; what was imported before stays imported.
#[derive(Debug, thiserror::Error)]
pub enum FollowError<E: std::error::Error + 'static> {
    /// The source failed.
    #[error(transparent)]
    Source(E),
    /// A block did not import: it does not extend the replica (the replica holds another
    /// chain) or it is invalid.
    #[error("importing block {number}: {source}")]
    Import {
        /// The block's number.
        number: u64,
        /// Why.
        #[source]
        source: ChainError,
    },
    /// The import task died.
    #[error("import task: {0}")]
    Join(String),
}

/// Keeps a chain replica and its pools on the source's chain.
#[derive(Debug)]
pub struct Follower<S> {
    chain: Chain,
    orderflow: Orderflow,
    source: S,
    /// (block hash, orders) of this node's recent best blocks.
    ours: Mutex<VecDeque<(B256, Vec<B256>)>>,
    syncing: tokio::sync::Mutex<()>,
}

impl<S: BlockSource> Follower<S> {
    /// A follower importing `source`'s blocks into `chain`; `orderflow`'s pools follow.
    pub fn new(chain: Chain, orderflow: Orderflow, source: S) -> Self {
        Self {
            chain,
            orderflow,
            source,
            ours: Mutex::new(VecDeque::new()),
            syncing: tokio::sync::Mutex::new(()),
        }
    }

    /// The source blocks come from.
    pub const fn source(&self) -> &S {
        &self.source
    }

    /// Notes this node's best block `hash` of a slot with its `orders`: if the source's chain
    /// takes it, its bundles leave the pool at once (they cannot run again), as the devnet
    /// proposer does with its own builder's.
    pub fn remember(&self, hash: B256, orders: Vec<B256>) {
        let mut ours = self.ours.lock();
        if ours.len() == REMEMBERED {
            ours.pop_front();
        }
        ours.push_back((hash, orders));
    }

    /// Imports the source's blocks up to its head; returns how many were imported.
    pub async fn sync(&self) -> Result<u64, FollowError<S::Error>> {
        let target = self
            .source
            .head_number()
            .await
            .map_err(FollowError::Source)?;
        self.sync_to(target).await
    }

    /// Imports the source's blocks up to `target`; returns how many were imported.
    pub async fn sync_to(&self, target: u64) -> Result<u64, FollowError<S::Error>> {
        let _one_at_a_time = self.syncing.lock().await;
        let mut imported = 0;
        loop {
            let number = self.chain.head().number + 1;
            if number > target {
                return Ok(imported);
            }
            let block = self
                .source
                .block(number)
                .await
                .map_err(FollowError::Source)?;
            self.import(number, block).await?;
            imported += 1;
        }
    }

    /// Imports one block and moves the pools to it, off the async runtime (re-execution is
    /// CPU work).
    async fn import(
        &self,
        number: u64,
        block: Block<TxEnvelope>,
    ) -> Result<(), FollowError<S::Error>> {
        let chain = self.chain.clone();
        let orderflow = self.orderflow.clone();
        let txs = block.body.transactions.len();
        let hash = block.header.hash_slow();
        let landed = self
            .ours
            .lock()
            .iter()
            .find(|(ours, _)| *ours == hash)
            .map(|(_, orders)| orders.clone())
            .unwrap_or_default();
        let ours = !landed.is_empty();
        tokio::task::spawn_blocking(move || {
            chain.import(block)?;
            let (_, state) = chain.head_state()?;
            orderflow.on_head(&state, number, &landed);
            Ok::<_, ChainError>(())
        })
        .await
        .map_err(|e| FollowError::Join(e.to_string()))?
        .map_err(|source| FollowError::Import { number, source })?;
        tracing::info!(number, %hash, txs, ours, "member.follow.imported");
        Ok(())
    }

    /// Syncs every `interval`, until dropped (a catch-up when slot announcements do not
    /// come); failures are logged and retried at the next tick. Dropping it mid-import leaves
    /// the import to finish on its blocking thread.
    pub async fn run(&self, interval: Duration) {
        loop {
            if let Err(error) = self.sync().await {
                tracing::warn!(%error, "member.follow.sync_failed");
            }
            tokio::time::sleep(interval).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use alloy_consensus::transaction::Recovered;
    use alloy_primitives::Address;
    use cobuild_chain::{
        dev_signers,
        test_utils::{GWEI, devnet_chain, next_attrs, sign, transfer},
    };
    use cobuild_rpc::OrderflowLimits;

    use super::*;
    use crate::orderflow::OrderflowConfig;

    /// A hub that is a local chain.
    struct LocalHub(Chain);

    impl BlockSource for LocalHub {
        type Error = ChainError;

        async fn head_number(&self) -> Result<u64, ChainError> {
            Ok(self.0.head().number)
        }

        async fn block(&self, number: u64) -> Result<Block<TxEnvelope>, ChainError> {
            let stored = self.0.read()?.block(number)?;
            Ok(stored.expect("asked only up to the head").block)
        }
    }

    /// A devnet chain in its own folder under `dir`.
    fn chain(dir: &tempfile::TempDir, name: &str) -> Chain {
        let path = dir.path().join(name);
        std::fs::create_dir_all(&path).expect("folder");
        devnet_chain(&path)
    }

    fn payment(nonce: u64) -> Recovered<TxEnvelope> {
        sign(
            &dev_signers()[0],
            transfer(nonce, Address::repeat_byte(0xbe), 1, GWEI),
        )
    }

    /// Commits a block on `chain` holding `txs`, paying `coinbase` (blocks on different
    /// coinbases differ).
    fn commit(chain: &Chain, txs: &[Recovered<TxEnvelope>], coinbase: u8) {
        let mut builder = chain
            .builder(next_attrs(chain, Address::repeat_byte(coinbase)))
            .expect("builder");
        for tx in txs {
            builder
                .execute(tx.clone())
                .expect("runs")
                .expect("included");
        }
        chain
            .commit(&builder.finish().expect("seals"))
            .expect("commits");
    }

    async fn orderflow(chain: &Chain) -> Orderflow {
        let config = OrderflowConfig {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            limits: OrderflowLimits::default(),
            max_orders: 100,
            bundle_horizon: cobuild_pool::DEFAULT_BUNDLE_HORIZON,
            log_limits: cobuild_rpc::LogLimits::DEFAULT,
            history_blocks: None,
            proof_window: cobuild_rpc::DEFAULT_PROOF_WINDOW,
        };
        Orderflow::start(chain, &config).await.expect("rpc starts")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn test_replica_imports_the_hubs_blocks_and_its_pool_follows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hub = chain(&dir, "hub");
        let replica = chain(&dir, "replica");
        let orderflow = orderflow(&replica).await;
        let tx = orderflow.pool.add(payment(0)).expect("pooled");
        commit(&hub, &[payment(0)], 1);
        commit(&hub, &[], 1);
        commit(&hub, &[payment(1)], 1);
        let follower = Follower::new(replica.clone(), orderflow.clone(), LocalHub(hub.clone()));

        assert_eq!(follower.sync_to(1).await.expect("syncs"), 1);
        assert_eq!(replica.head().number, 1);
        assert!(
            orderflow.pool.get(&tx).is_none(),
            "the landed tx left the pool"
        );
        assert_eq!(follower.sync().await.expect("syncs"), 2);
        assert_eq!(replica.head().hash(), hub.head().hash());
        assert_eq!(follower.sync().await.expect("nothing to do"), 0);
        orderflow.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn test_a_replica_on_another_chain_fails_to_import_and_keeps_its_head() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hub = chain(&dir, "hub");
        let replica = chain(&dir, "replica");
        commit(&hub, &[], 1);
        commit(&hub, &[], 1);
        commit(&replica, &[], 2);
        let head = replica.head().hash();
        let orderflow = orderflow(&replica).await;
        let follower = Follower::new(replica.clone(), orderflow.clone(), LocalHub(hub));
        match follower.sync().await {
            Err(FollowError::Import { number: 2, .. }) => {}
            other => panic!("expected an import failure at block 2, got {other:?}"),
        }
        assert_eq!(replica.head().hash(), head);
        orderflow.stop().await;
    }
}
