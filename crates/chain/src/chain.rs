//! The chain handle: opens the store (writing genesis the first time), keeps the head, builds on
//! it, commits and imports blocks.

use std::{path::Path, sync::Arc};

use alloy_consensus::{Block, Header, Sealable, Sealed, TxEnvelope};
use alloy_primitives::B256;
use cobuild_primitives::{ChainSpec, SenderCache};
use parking_lot::{Mutex, RwLock};

use crate::{
    block::{self, BlockAttributes, BlockBuilder, BlockError, ExecutedBlock, ImportError},
    genesis::Genesis,
    head_mark::{HeadMark, Mark},
    state::{EmptyState, HashedStateDiff, StateSnapshot, TrieNodes},
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
    /// The store's head is behind the head this store had committed (recorded beside it), or
    /// holds another block at that height: it was truncated, rolled back or replaced.
    #[error(
        "the chain store {} holds blocks up to {head}, but it had committed block {marked} ({marked_hash}) before: it was {}",
        path.display(),
        if *empty { "deleted or emptied" } else { "truncated or rolled back (a torn write repaired to an older commit, or a restored copy)" }
    )]
    RolledBack {
        /// The store.
        path: std::path::PathBuf,
        /// Its head now.
        head: u64,
        /// Whether it holds nothing but genesis, written just now.
        empty: bool,
        /// The last head it had committed.
        marked: u64,
        /// That head's hash.
        marked_hash: B256,
    },
    /// The state after a block is no longer kept (or the block does not exist).
    #[error("the state after block {number} is not kept (head {head})")]
    NoHistory {
        /// The block asked for.
        number: u64,
        /// The head.
        head: u64,
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

/// What opening does with a store that was rolled back ([`ChainError::RolledBack`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rollback {
    /// Refuse to open it.
    Refuse,
    /// Open it at its head, logging the rollback as an error.
    Accept,
}

impl Rollback {
    /// [`Rollback::Accept`] if `accept`, else [`Rollback::Refuse`].
    pub const fn accepted(accept: bool) -> Self {
        if accept { Self::Accept } else { Self::Refuse }
    }
}

#[derive(Debug)]
struct Inner {
    spec: Arc<ChainSpec>,
    store: Store,
    mark: HeadMark,
    head: RwLock<Arc<Sealed<Header>>>,
    // The head's trie nodes; replaced at each commit, before `head`.
    trie: RwLock<Arc<TrieNodes>>,
    // Serialises commits so the parent check and the write are one step.
    commit: Mutex<()>,
    // Tells watchers a block was committed (the latest head; the blocks between are stored).
    heads: tokio::sync::watch::Sender<Arc<Sealed<Header>>>,
    // The bids re-executed last on the head, up to their payments.
    bids: block::Prefixes,
}

impl Chain {
    /// Opens the chain stored at `path`, creating it from `genesis` if the store is new.
    ///
    /// Fails if the store holds a chain with another genesis, or was rolled back.
    pub fn open(path: &Path, spec: Arc<ChainSpec>, genesis: &Genesis) -> Result<Self, ChainError> {
        Self::open_with(path, spec, genesis, Rollback::Refuse)
    }

    /// [`Chain::open`], doing with a rolled-back store what `rollback` says.
    pub fn open_with(
        path: &Path,
        spec: Arc<ChainSpec>,
        genesis: &Genesis,
        rollback: Rollback,
    ) -> Result<Self, ChainError> {
        let mut store = Store::open(path)?;
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
                let diff = HashedStateDiff::new(&EmptyState, None, &genesis.changeset())?;
                store.write_block(BlockWrite {
                    block: &genesis_block,
                    receipts: &[],
                    diff: &diff,
                })?;
                genesis_block.block.header.seal_slow()
            }
        };
        drop(view);
        store.index_in_background()?;
        // Built after the genesis write, from what the store holds, so it checks that too.
        let trie = TrieNodes::build(&store.read()?, head.hash(), head.state_root)?;
        let mark = HeadMark::beside(path);
        check_mark(path, &mark, &store, &head, rollback)?;
        tracing::info!(number = head.number, hash = %head.hash(), "chain.open");
        let head = Arc::new(head);
        Ok(Self {
            inner: Arc::new(Inner {
                spec,
                store,
                mark,
                head: RwLock::new(head.clone()),
                trie: RwLock::new(Arc::new(trie)),
                commit: Mutex::new(()),
                heads: tokio::sync::watch::Sender::new(head),
                bids: block::Prefixes::default(),
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

    /// Keeps the state of the last `blocks` blocks readable (at least
    /// [`HISTORY_BLOCKS`](crate::HISTORY_BLOCKS)), or of every block (`None`, the default).
    pub fn keep_history(&self, blocks: Option<u64>) {
        self.inner.store.keep_history(blocks);
    }

    /// Indexes the history of the blocks committed since the background pass and applies the
    /// history window, on this thread and now rather than shortly after the commits; returns
    /// how many blocks it indexed. Reads are the same either way: for tools and tests that
    /// need the window applied at a known point.
    pub fn index_history(&self) -> Result<u64, ChainError> {
        Ok(self.inner.store.index_history()?)
    }

    /// Watches the head: the receiver wakes after each commit and holds the latest head. A
    /// watcher that wakes after several commits reads the blocks between from the store.
    pub fn watch_head(&self) -> tokio::sync::watch::Receiver<Arc<Sealed<Header>>> {
        self.inner.heads.subscribe()
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
        // A commit between the read and here leaves the nodes of a later block: not these.
        let trie = Some(self.inner.trie.read().clone()).filter(|t| t.block() == head.hash());
        Ok((head, StateSnapshot::new(Arc::new(view), number, trie)))
    }

    /// The header of block `number` and the state after it, for a block before the head too
    /// while the store keeps what the later blocks overwrote.
    pub fn state_at(
        &self,
        number: u64,
    ) -> Result<(Arc<Sealed<Header>>, StateSnapshot), ChainError> {
        let view = self.inner.store.read()?;
        let head = view.head_number()?.ok_or(StoreError::Corrupt("no head"))?;
        if number == head {
            drop(view);
            let (header, state) = self.head_state()?;
            if header.number == number {
                return Ok((header, state));
            }
            return self.state_at(number);
        }
        let header = view
            .header(number)?
            .ok_or(ChainError::NoHistory { number, head })?;
        let past = view
            .past_state(number)?
            .ok_or(ChainError::NoHistory { number, head })?;
        Ok((
            Arc::new(header.seal_slow()),
            StateSnapshot::past(Arc::new(view), number, past),
        ))
    }

    /// Opens block `number` again on the state it was built on, with its own attributes, to
    /// execute its orders in another arrangement. What is executed is never stored: the
    /// builder cannot seal (its parent is not the head).
    pub fn replay(&self, number: u64) -> Result<BlockBuilder, ChainError> {
        let parent = number.checked_sub(1).ok_or(ChainError::NoHistory {
            number,
            head: self.head().number,
        })?;
        let header = self.read()?.header(number)?.ok_or(ChainError::NoHistory {
            number,
            head: self.head().number,
        })?;
        let (parent, state) = self.state_at(parent)?;
        let attrs = BlockAttributes {
            timestamp: header.timestamp,
            fee_recipient: header.beneficiary,
            prev_randao: header.mix_hash,
            gas_limit: header.gas_limit,
            withdrawals: self
                .read()?
                .block(number)?
                .and_then(|b| b.block.body.withdrawals)
                .map(|w| w.into_inner())
                .unwrap_or_default(),
            parent_beacon_block_root: header.parent_beacon_block_root.unwrap_or_default(),
            extra_data: header.extra_data,
        };
        Ok(BlockBuilder::new(
            self.inner.spec.clone(),
            parent,
            state,
            attrs,
        )?)
    }

    /// Hashes the head state again from its leaves and checks the result against the head's
    /// state root and against the trie nodes kept for the head (which make roots incremental).
    pub fn check_state(&self) -> Result<(), ChainError> {
        let _guard = self.inner.commit.lock();
        let head = self.head();
        let rebuilt = TrieNodes::build(&self.inner.store.read()?, head.hash(), head.state_root)?;
        if **self.inner.trie.read() != rebuilt {
            return Err(StoreError::Corrupt("the kept trie nodes differ from a rebuild").into());
        }
        Ok(())
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
        let trie = self
            .inner
            .trie
            .read()
            .apply(&executed.diff.trie, executed.block.hash)
            .unwrap_or_else(|| {
                // Hashed without the head's nodes: the next block reads every leaf.
                tracing::debug!(
                    number = executed.header().number,
                    "chain.trie_nodes_dropped"
                );
                TrieNodes::empty(executed.block.hash)
            });
        *self.inner.trie.write() = Arc::new(trie);
        let sealed = Arc::new(Sealed::new_unchecked(
            executed.header().clone(),
            executed.block.hash,
        ));
        *self.inner.head.write() = sealed.clone();
        self.inner.heads.send_replace(sealed);
        record(
            &self.inner.mark,
            executed.header().number,
            executed.block.hash,
        );
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
        self.reexecute_with(block, None)
    }

    /// [`reexecute`](Self::reexecute) for a relay judging bids: a builder's next bid on the
    /// head is mostly its last one, so the chain keeps the last few bids executed up to their
    /// payment and executes only what a new bid adds to one of them.
    pub fn reexecute_bid(&self, block: Block<TxEnvelope>) -> Result<ExecutedBlock, ChainError> {
        self.reexecute_with(block, Some(&self.inner.bids))
    }

    /// How many bids [`reexecute_bid`](Self::reexecute_bid) judged from a kept one (for tests
    /// and benchmarks).
    pub fn bids_resumed(&self) -> u64 {
        self.inner.bids.resumed()
    }

    fn reexecute_with(
        &self,
        block: Block<TxEnvelope>,
        prefixes: Option<&block::Prefixes>,
    ) -> Result<ExecutedBlock, ChainError> {
        let (head, state) = self.head_state()?;
        Ok(block::reexecute(
            self.inner.spec.clone(),
            head,
            state,
            // The process's cache: a relay sees a builder's transactions again in every bid,
            // and a member imports blocks of transactions it took in as orders.
            SenderCache::global(),
            block,
            prefixes,
        )?)
    }
}

/// Compares the store's head with the head it recorded last time, then records the current one.
fn check_mark(
    path: &Path,
    mark: &HeadMark,
    store: &Store,
    head: &Sealed<Header>,
    rollback: Rollback,
) -> Result<(), ChainError> {
    match mark.read() {
        // A mark that cannot be read protects nothing; it is replaced below.
        Err(reason) => tracing::warn!(%reason, "chain.head_mark.unreadable"),
        Ok(None) => {}
        Ok(Some(marked)) => {
            let holds = marked.number <= head.number
                && store.read()?.canonical_hash(marked.number)? == Some(marked.hash);
            if !holds {
                let error = ChainError::RolledBack {
                    path: path.to_owned(),
                    head: head.number,
                    empty: head.number == 0,
                    marked: marked.number,
                    marked_hash: marked.hash,
                };
                match rollback {
                    Rollback::Refuse => return Err(error),
                    Rollback::Accept => tracing::error!(%error, "chain.rollback.accepted"),
                }
            }
        }
    }
    record(mark, head.number, head.hash());
    Ok(())
}

/// Records a committed head; a failure is logged (the block is committed either way, and a
/// stale mark only weakens the next start's check).
fn record(mark: &HeadMark, number: u64, hash: B256) {
    if let Err(error) = mark.write(Mark { number, hash }) {
        tracing::warn!(%error, path = %mark.path().display(), "chain.head_mark.write_failed");
    }
}

fn genesis_block(genesis: &Genesis) -> Result<StoredBlock, ChainError> {
    let diff = HashedStateDiff::new(&EmptyState, None, &genesis.changeset())?;
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
