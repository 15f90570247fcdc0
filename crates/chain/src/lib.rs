//! The devnet execution layer: genesis, persistent state, block execution, import and queries.
//!
//! # Design
//! ```text
//!   Genesis ──▶ Chain::open ──▶ Store (redb: blocks, receipts, indexes, head state)
//!                   │
//!   BlockAttributes ┴▶ BlockBuilder (alloy-evm EthBlockExecutor over a StateSnapshot)
//!                          │ execute / execute_if, one transaction at a time
//!                          ▼
//!                     ExecutedBlock (sealed header, receipts, HashedStateDiff)
//!                          │
//!                   Chain::commit ─── one atomic write ──▶ new head
//! ```
//! Imported blocks go through the same builder (`Chain::import` re-executes and compares every
//! committed header field), so producing and validating can never disagree.
//!
//! Execution is synchronous and CPU-bound; callers run it off their async runtime.

mod block;
mod chain;
mod genesis;
mod head;
mod head_mark;
mod state;
mod store;
#[cfg(feature = "test-utils")]
pub mod test_utils;

pub use block::{
    BlockAttributes, BlockBuilder, BlockError, BundleOutcome, BundleRejected, BundleTrial,
    ExecutedBlock, ImportError, MIN_GAS_LIMIT, NextBlock, SealCache, TxOutcome, TxRejected,
    TxTrial, next_evm_env, next_gas_limit, reexecute_on,
};
pub use chain::{Chain, ChainError, Rollback};
pub use genesis::{
    DEV_ACCOUNT_COUNT, DEV_BALANCE, DEV_MNEMONIC, Genesis, GenesisAccount, dev_signers,
};
pub use head::HeadSource;
pub use state::{
    AccountProof, BranchNodes, DiffMemo, EmptyState, EntryIter, HashedState, HashedStateDiff,
    MAX_SEARCH_NIBBLES, MissingNode, NodeUpdates, Prefetched, ProofError, ProofRequest,
    ProvedState, SlotsBefore, StateError, StateSnapshot, StateSource, StorageDiff, StorageUpdates,
    StoreSource, TrieNodes, TrieUpdates, key_under,
};
pub use store::{
    AccountRecord, HISTORY_BLOCKS, LogField, PastState, ReadView, StoreError, StoredBlock,
};
