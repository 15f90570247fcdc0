//! The chain handle: opens the store (writing genesis the first time), keeps the head, builds on
//! it, commits and imports blocks.

use std::{path::Path, sync::Arc};

use alloy_consensus::{Block, Header, Sealable, Sealed, TxEnvelope};
use alloy_primitives::B256;
use cobuild_primitives::ChainSpec;
use parking_lot::{Mutex, RwLock};

use crate::{
    block::{self, BlockAttributes, BlockBuilder, BlockError, ExecutedBlock, ImportError},
    genesis::Genesis,
    state::{EmptyState, HashedStateDiff, StateSnapshot},
    store::{BlockWrite, ReadView, Store, StoreError, StoredBlock},
};

/// Errors of the chain handle.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A block attempt failed.
    #[error(transparent)]
    Block(#[from] BlockError),
    /// An imported block was invalid.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// The data directory holds a different chain.
    #[error(
        "data directory holds a chain with genesis {stored}, this configuration's is {expected}"
    )]
    GenesisMismatch {
        /// Genesis hash in the store.
        stored: B256,
        /// Genesis hash of the configuration.
        expected: B256,
    },
    /// A committed block was not built on the current head.
    #[error("block {got} does not build on the head {head}")]
    NotOnHead {
        /// The block's parent.
        got: B256,
        /// The head.
        head: B256,
    },
}

/// A handle to the chain. Cheap to clone; all clones share one store and head.
#[derive(Debug, Clone)]
pub struct Chain {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    spec: Arc<ChainSpec>,
    store: Store,
    head: RwLock<Arc<Sealed<Header>>>,
    // Serialises commits so the parent check and the write are one step.
    commit: Mutex<()>,
}

impl Chain {
    /// Opens the chain stored at `path`, creating it from `genesis` if the store is new.
    ///
    /// Fails if the store holds a chain with another genesis.
    pub fn open(path: &Path, spec: Arc<ChainSpec>, genesis: &Genesis) -> Result<Self, ChainError> {
        let store = Store::open(path)?;
        let view = store.read()?;
        let head = match view.head_number()? {
            Some(number) => {
                let expected = genesis_block(genesis)?.hash;
                let stored = view
                    .canonical_hash(0)?
                    .ok_or(StoreError::Corrupt("no genesis"))?;
                if stored != expected {
                    return Err(ChainError::GenesisMismatch { stored, expected });
                }
                let header = view
                    .header(number)?
                    .ok_or(StoreError::Corrupt("no head header"))?;
                header.seal_slow()
            }
            None => {
                let genesis_block = genesis_block(genesis)?;
                let diff = HashedStateDiff::new(&EmptyState, &genesis.changeset())?;
                store.write_block(BlockWrite {
                    block: &genesis_block,
                    receipts: &[],
                    diff: &diff,
                })?;
                genesis_block.block.header.seal_slow()
            }
        };
        drop(view);
        tracing::info!(number = head.number, hash = %head.hash(), "chain.open");
        Ok(Self {
            inner: Arc::new(Inner {
                spec,
                store,
                head: RwLock::new(Arc::new(head)),
                commit: Mutex::new(()),
            }),
        })
    }

    /// The rules the chain runs under.
    pub fn spec(&self) -> &Arc<ChainSpec> {
        &self.inner.spec
    }

    /// The current head header.
    pub fn head(&self) -> Arc<Sealed<Header>> {
        self.inner.head.read().clone()
    }

    /// A snapshot of everything committed, for queries.
    pub fn read(&self) -> Result<ReadView, ChainError> {
        Ok(self.inner.store.read()?)
    }

    /// The head header and its post-state, from one consistent snapshot.
    pub fn head_state(&self) -> Result<(Arc<Sealed<Header>>, StateSnapshot), ChainError> {
        let view = self.inner.store.read()?;
        let number = view.head_number()?.ok_or(StoreError::Corrupt("no head"))?;
        let cached = self.head();
        let head = if cached.number == number {
            cached
        } else {
            let header = view
                .header(number)?
                .ok_or(StoreError::Corrupt("no head header"))?;
            Arc::new(header.seal_slow())
        };
        Ok((head, StateSnapshot::new(Arc::new(view), number)))
    }

    /// Opens a block on the current head.
    pub fn builder(&self, attrs: BlockAttributes) -> Result<BlockBuilder, ChainError> {
        let (head, state) = self.head_state()?;
        Ok(BlockBuilder::new(
            self.inner.spec.clone(),
            head,
            state,
            attrs,
        )?)
    }

    /// Stores a block built on the current head and makes it the head.
    pub fn commit(&self, executed: &ExecutedBlock) -> Result<(), ChainError> {
        let _guard = self.inner.commit.lock();
        let head = self.head();
        if executed.header().parent_hash != head.hash() {
            return Err(ChainError::NotOnHead {
                got: executed.header().parent_hash,
                head: head.hash(),
            });
        }
        self.inner.store.write_block(BlockWrite {
            block: &executed.block,
            receipts: &executed.receipts,
            diff: &executed.diff,
        })?;
        let sealed = Sealed::new_unchecked(executed.header().clone(), executed.block.hash);
        *self.inner.head.write() = Arc::new(sealed);
        tracing::info!(
            number = executed.header().number,
            hash = %executed.block.hash,
            txs = executed.block.block.body.transactions.len(),
            gas_used = executed.header().gas_used,
            "chain.commit"
        );
        Ok(())
    }

    /// Re-executes a block produced elsewhere on the head, and stores it if it is valid.
    pub fn import(&self, block: Block<TxEnvelope>) -> Result<B256, ChainError> {
        let executed = self.reexecute(block)?;
        self.commit(&executed)?;
        Ok(executed.block.hash)
    }

    /// Re-executes a block produced elsewhere on the current head and returns it, ready for
    /// [`Chain::commit`], if every header field matches; nothing is stored.
    ///
    /// A relay uses this to judge a bid before it decides whether to commit it. The result
    /// commits only while the head it was executed on is still the head.
    pub fn reexecute(&self, block: Block<TxEnvelope>) -> Result<ExecutedBlock, ChainError> {
        let (head, state) = self.head_state()?;
        Ok(block::reexecute(
            self.inner.spec.clone(),
            head,
            state,
            block,
        )?)
    }
}

fn genesis_block(genesis: &Genesis) -> Result<StoredBlock, ChainError> {
    let diff = HashedStateDiff::new(&EmptyState, &genesis.changeset())?;
    let header = genesis.header(diff.state_root);
    let hash = header.hash_slow();
    Ok(StoredBlock {
        hash,
        block: Block {
            header,
            body: Default::default(),
        },
        senders: Vec::new(),
    })
}
