//! The head state behind revm's `DatabaseRef`.

use std::sync::Arc;

use alloy_primitives::{Address, B256, U256, keccak256};
use revm::{
    bytecode::Bytecode,
    database_interface::{DBErrorMarker, DatabaseRef},
    primitives::KECCAK_EMPTY,
    state::AccountInfo,
};

use super::{AccountProof, TrieNodes, cache::ReadCache, prove};
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
}

impl DBErrorMarker for StateError {}

/// The state at one block, readable by the EVM from many threads at once.
///
/// Clones share one underlying snapshot, and what any of them has read ([`ReadCache`]). A
/// snapshot of a block before the head reads the head state through what the later blocks
/// overwrote; it can execute, but not hash, a block.
#[derive(Debug, Clone)]
pub struct StateSnapshot {
    view: Arc<ReadView>,
    number: u64,
    past: Option<Arc<PastState>>,
    trie: Option<Arc<TrieNodes>>,
    cache: Arc<ReadCache>,
}

impl StateSnapshot {
    /// The head state `view` holds, with its trie nodes if they are at hand.
    pub(crate) fn new(view: Arc<ReadView>, number: u64, trie: Option<Arc<TrieNodes>>) -> Self {
        Self {
            view,
            number,
            past: None,
            trie,
            cache: Arc::default(),
        }
    }

    /// The state after block `number`, below the head `view` holds, from `past`.
    pub(crate) fn past(view: Arc<ReadView>, number: u64, past: PastState) -> Self {
        Self {
            view,
            number,
            past: Some(Arc::new(past)),
            trie: None,
            cache: Arc::default(),
        }
    }

    /// Whether this is the state of a block before the head (whose roots the store's tables
    /// do not describe).
    pub const fn is_past(&self) -> bool {
        self.past.is_some()
    }

    /// Number of the block whose post-state this is.
    pub const fn number(&self) -> u64 {
        self.number
    }

    /// The store snapshot underneath, for root computation and queries.
    pub fn view(&self) -> &ReadView {
        &self.view
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
        let none = TrieNodes::empty(B256::ZERO);
        if self.past.is_none() {
            let nodes = self.trie.as_deref().unwrap_or(&none);
            return prove(&*self.view, nodes, state_root, address, slots);
        }
        let past = self
            .view
            .past_trie_state(self.number)?
            .ok_or(StoreError::Corrupt("a past state without its reverts"))?;
        prove(&past, &none, state_root, address, slots)
    }

    /// Storage value of `slot` at `address`.
    pub fn storage_at(&self, address: Address, slot: U256) -> Result<U256, StateError> {
        self.cache
            .storage(address, slot, || self.read_storage(address, slot))
    }

    fn read_storage(&self, address: Address, slot: U256) -> Result<U256, StateError> {
        let (hashed_address, hashed_slot) = (keccak256(address), keccak256(B256::from(slot)));
        if let Some(past) = &self.past
            && let Some(value) = self.view.past_slot(past, &hashed_address, &hashed_slot)?
        {
            return Ok(value);
        }
        Ok(self.view.storage(&hashed_address, &hashed_slot)?)
    }

    /// An account with its code, from the store.
    fn read_account(&self, address: Address) -> Result<Option<AccountInfo>, StateError> {
        let hashed = keccak256(address);
        let past = match &self.past {
            Some(past) => self.view.past_account(past, &hashed)?,
            None => None,
        };
        let record = match past {
            Some(record) => record,
            None => self.view.account(&hashed)?,
        };
        let Some(record) = record else {
            return Ok(None);
        };
        let mut info = AccountInfo::new(
            record.balance,
            record.nonce,
            record.code_hash,
            Bytecode::default(),
        );
        info.code = None;
        if record.code_hash != KECCAK_EMPTY {
            info.code = Some(self.code_by_hash_ref(record.code_hash)?);
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
        let raw = self
            .view
            .code(&code_hash)?
            .ok_or(StateError::MissingCode(code_hash))?;
        Ok(Bytecode::new_raw(raw))
    }

    fn storage_ref(&self, address: Address, index: U256) -> Result<U256, Self::Error> {
        self.storage_at(address, index)
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, Self::Error> {
        // BLOCKHASH only reaches the 256 most recent ancestors; revm enforces the window.
        Ok(self.view.canonical_hash(number)?.unwrap_or_default())
    }
}
