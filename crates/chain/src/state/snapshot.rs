//! The head state behind revm's `DatabaseRef`.

use std::sync::Arc;

use alloy_primitives::{Address, B256, U256};
use parking_lot::Mutex;
use revm::{
    bytecode::Bytecode,
    database::states::StateChangeset,
    database_interface::{DBErrorMarker, DatabaseRef},
    primitives::KECCAK_EMPTY,
    state::AccountInfo,
};

use super::{
    AccountProof, ProofError, ProofRequest, ProvedState, TrieNodes,
    cache::ReadCache,
    key_under, prove,
    source::{StateSource, StoreSource},
};
use crate::store::{PastState, ReadView, StoreError};

/// A state read failed; execution of the block attempt must stop.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An account names code the store does not have.
    #[error("missing code {0}")]
    MissingCode(B256),
    /// A source other than the store (an execution client) failed.
    #[error("state source: {0}")]
    Source(Box<dyn std::error::Error + Send + Sync>),
    /// A root could not be computed from the source's proofs.
    #[error(transparent)]
    Proof(#[from] ProofError),
}

impl DBErrorMarker for StateError {}

/// The state at one block, readable by the EVM from many threads at once.
///
/// Reads come from a [`StateSource`]; clones share it, and what any of them has read
/// ([`ReadCache`]). The embedded chain's snapshots also carry the store's tables, which roots
/// and proofs are computed from. A snapshot of a block before the head reads the head state
/// through what the later blocks overwrote; it can execute, but not hash, a block.
#[derive(Debug, Clone)]
pub struct StateSnapshot {
    number: u64,
    reads: Arc<dyn StateSource>,
    store: Option<StoreSource>,
    trie: Option<Arc<TrieNodes>>,
    cache: Arc<ReadCache>,
    /// What the source's proofs revealed, for the roots of blocks built on a source without
    /// the store's tables; `None` until the first such root.
    proved: Arc<Mutex<Option<ProvedState>>>,
}

impl StateSnapshot {
    /// The head state `view` holds, with its trie nodes if they are at hand.
    pub(crate) fn new(view: Arc<ReadView>, number: u64, trie: Option<Arc<TrieNodes>>) -> Self {
        Self::of_store(StoreSource { view, past: None }, number, trie)
    }

    /// The state after block `number`, below the head `view` holds, from `past`.
    pub(crate) fn past(view: Arc<ReadView>, number: u64, past: PastState) -> Self {
        let store = StoreSource {
            view,
            past: Some(Arc::new(past)),
        };
        Self::of_store(store, number, None)
    }

    fn of_store(store: StoreSource, number: u64, trie: Option<Arc<TrieNodes>>) -> Self {
        Self {
            number,
            reads: Arc::new(store.clone()),
            store: Some(store),
            trie,
            cache: Arc::default(),
            proved: Arc::default(),
        }
    }

    /// The state after block `number` as `source` reads it (an execution client). Blocks built
    /// on it are sealed from the source's proofs ([`root_from_proofs`](Self::root_from_proofs)).
    pub fn from_source(source: Arc<dyn StateSource>, number: u64) -> Self {
        Self {
            number,
            reads: source,
            store: None,
            trie: None,
            cache: Arc::default(),
            proved: Arc::default(),
        }
    }

    /// Whether this is the state of a block before the head (whose roots the store's tables
    /// do not describe).
    pub fn is_past(&self) -> bool {
        self.store.as_ref().is_some_and(|s| s.past.is_some())
    }

    /// Number of the block whose post-state this is.
    pub const fn number(&self) -> u64 {
        self.number
    }

    /// The store snapshot underneath, for root computation and queries; `None` for a state
    /// read from another source.
    pub fn view(&self) -> Option<&ReadView> {
        self.store.as_ref().map(|s| &*s.view)
    }

    /// The state's trie nodes, which make its roots incremental; `None` when not at hand.
    pub fn trie(&self) -> Option<&TrieNodes> {
        self.trie.as_deref()
    }

    /// The same state without its trie nodes: a block sealed on it reads every leaf to hash
    /// (the full rebuild), which benchmarks compare the incremental roots against.
    pub fn without_trie(&self) -> Self {
        Self {
            trie: None,
            ..self.clone()
        }
    }

    /// The EIP-1186 proof of `address` and its `slots` (as given, unhashed) in this state,
    /// whose root is `state_root`. The head's walks its trie nodes; a past state's reads every
    /// key the later blocks wrote, and every leaf, so its cost grows with the state and with
    /// the blocks since.
    pub fn prove(
        &self,
        state_root: B256,
        address: Address,
        slots: &[B256],
    ) -> Result<AccountProof, StoreError> {
        let store = self
            .store
            .as_ref()
            .ok_or(StoreError::Corrupt("proofs come from the store's tables"))?;
        let none = TrieNodes::empty(B256::ZERO);
        if store.past.is_none() {
            let nodes = self.trie.as_deref().unwrap_or(&none);
            return prove(&*store.view, nodes, state_root, address, slots);
        }
        let past = store
            .view
            .past_trie_state(self.number)?
            .ok_or(StoreError::Corrupt("a past state without its reverts"))?;
        prove(&past, &none, state_root, address, slots)
    }

    /// Storage value of `slot` at `address`.
    pub fn storage_at(&self, address: Address, slot: U256) -> Result<U256, StateError> {
        self.cache
            .storage(address, slot, || self.reads.storage(address, slot))
    }

    /// Reads `accounts` and `slots` ahead of execution (those not read yet), in one batch where
    /// the source allows: the simulation of a new order reads what it touches from a remote
    /// source in one round trip instead of one per key.
    pub fn prefetch(
        &self,
        accounts: &[Address],
        slots: &[(Address, U256)],
    ) -> Result<(), StateError> {
        let accounts: Vec<Address> = accounts
            .iter()
            .copied()
            .filter(|a| !self.cache.has_account(a))
            .collect();
        let slots: Vec<(Address, U256)> = slots
            .iter()
            .copied()
            .filter(|k| !self.cache.has_slot(k))
            .collect();
        if accounts.is_empty() && slots.is_empty() {
            return Ok(());
        }
        let read = self.reads.prefetch(&accounts, &slots)?;
        for (address, info) in read.accounts {
            let info = self.with_code(info)?;
            self.cache.account(address, || Ok::<_, StateError>(info))?;
        }
        for ((address, slot), value) in read.slots {
            self.cache
                .storage(address, slot, || Ok::<_, StateError>(value))?;
        }
        Ok(())
    }

    /// The state root after `changes` on this state, from the source's proofs (for a source
    /// without the store's tables: an execution client). What the proofs reveal is kept for
    /// later calls on this snapshot and its clones, so the candidates of a slot fetch only the
    /// proofs of keys none before them changed.
    pub fn root_from_proofs(&self, changes: &StateChangeset) -> Result<B256, StateError> {
        // Rounds of reveals one root may need for its deletions: one for the storage tries,
        // one for the account trie, and a margin for a state that changes under the proofs.
        const MAX_REVEALS: usize = 4;
        let mut reveals = 0;
        loop {
            // The parent's root is read once per snapshot, and not under the lock.
            if self.proved.lock().is_none() {
                let root = self.reads.state_root()?;
                self.proved
                    .lock()
                    .get_or_insert_with(|| ProvedState::new(root));
            }
            let wanted = match &*self.proved.lock() {
                Some(proved) => proved.unproved(changes),
                None => return Err(ProofError::Unsupported.into()),
            };
            if !wanted.is_empty() {
                self.reveal(&wanted)?;
            }
            let root = match &*self.proved.lock() {
                Some(proved) => proved.root_after(changes),
                None => Err(ProofError::Unsupported),
            };
            match root {
                Ok(root) => return Ok(root),
                Err(ProofError::Missing(nodes)) if reveals < MAX_REVEALS => {
                    reveals += 1;
                    // The proof of any key under a node's path passes through the node.
                    let mut request: ProofRequest = Vec::with_capacity(nodes.len());
                    for node in nodes {
                        let word = key_under(&node.path, node.account.is_some()).ok_or(
                            ProofError::NoKeyUnder {
                                account: node.account,
                                path: node.path,
                            },
                        )?;
                        request.push(match node.account {
                            Some(address) => (address, vec![word]),
                            None => (Address::from_slice(&word[12..]), Vec::new()),
                        });
                    }
                    self.reveal(&request)?;
                }
                Err(other) => return Err(other.into()),
            }
        }
    }

    /// Fetches the proofs of `keys` (without holding the lock meanwhile) and reveals them.
    fn reveal(&self, keys: &ProofRequest) -> Result<(), StateError> {
        let proofs = self.reads.proofs(keys)?;
        if proofs.len() != keys.len() {
            return Err(StateError::Source(
                "the source answered a different number of proofs than asked".into(),
            ));
        }
        let mut proved = self.proved.lock();
        if let Some(proved) = proved.as_mut() {
            for ((address, _), proof) in keys.iter().zip(&proofs) {
                proved.reveal(*address, proof)?;
            }
        }
        Ok(())
    }

    /// An account with its code, from the source.
    fn read_account(&self, address: Address) -> Result<Option<AccountInfo>, StateError> {
        let info = self.reads.account(address)?;
        self.with_code(info)
    }

    fn with_code(&self, info: Option<AccountInfo>) -> Result<Option<AccountInfo>, StateError> {
        let Some(mut info) = info else {
            return Ok(None);
        };
        if info.code.is_none() && info.code_hash != KECCAK_EMPTY {
            info.code = Some(self.reads.code(info.code_hash)?);
        }
        Ok(Some(info))
    }
}

impl DatabaseRef for StateSnapshot {
    type Error = StateError;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, Self::Error> {
        self.cache.account(address, || self.read_account(address))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, Self::Error> {
        if code_hash == KECCAK_EMPTY {
            return Ok(Bytecode::default());
        }
        self.reads.code(code_hash)
    }

    fn storage_ref(&self, address: Address, index: U256) -> Result<U256, Self::Error> {
        self.storage_at(address, index)
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, Self::Error> {
        self.reads.block_hash(number)
    }
}
