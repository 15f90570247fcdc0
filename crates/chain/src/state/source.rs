//! Where a state's accounts, storage and code come from.
//!
//! A [`StateSnapshot`](super::StateSnapshot) executes on any [`StateSource`]: the embedded
//! chain's store ([`StoreSource`]), or an execution client read over JSON-RPC (the `cobuild-el`
//! crate). The snapshot remembers what it read ([`ReadCache`](super::cache::ReadCache)), so a
//! source answers each key once per parent; a remote one also reads ahead in batches
//! ([`StateSource::prefetch`]), and gives the proofs a block built on it is sealed from
//! ([`StateSource::proofs`]).

use std::sync::Arc;

use alloy_primitives::{Address, B256, U256, keccak256};
use revm::{bytecode::Bytecode, primitives::KECCAK_EMPTY, state::AccountInfo};

use super::{AccountProof, ProofError, StateError};
use crate::store::{PastState, ReadView};

/// Accounts and slots read ahead: every key asked for, with its value.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Prefetched {
    /// Accounts (absent ones as `None`), with their code.
    pub accounts: Vec<(Address, Option<AccountInfo>)>,
    /// Storage slots.
    pub slots: Vec<((Address, U256), U256)>,
}

/// The state after one block, as execution reads it. Implementations are read from many
/// threads at once and never change: the block is fixed when the source is made.
pub trait StateSource: std::fmt::Debug + Send + Sync {
    /// The account at `address`. Its `code` may be left `None` for the reader to fetch with
    /// [`code`](Self::code) by its hash.
    fn account(&self, address: Address) -> Result<Option<AccountInfo>, StateError>;

    /// The value of `slot` in `address`'s storage (zero where unset).
    fn storage(&self, address: Address, slot: U256) -> Result<U256, StateError>;

    /// The code whose hash is `code_hash`.
    fn code(&self, code_hash: B256) -> Result<Bytecode, StateError>;

    /// The hash of the canonical block `number` (an ancestor of this state's block).
    fn block_hash(&self, number: u64) -> Result<B256, StateError>;

    /// Reads `accounts` and `slots` ahead of execution, in as few round trips as the source
    /// allows. By default one by one (a local store gains nothing from batching).
    fn prefetch(
        &self,
        accounts: &[Address],
        slots: &[(Address, U256)],
    ) -> Result<Prefetched, StateError> {
        Ok(Prefetched {
            accounts: accounts
                .iter()
                .map(|a| Ok((*a, self.account(*a)?)))
                .collect::<Result<_, StateError>>()?,
            slots: slots
                .iter()
                .map(|&(a, s)| Ok(((a, s), self.storage(a, s)?)))
                .collect::<Result<_, StateError>>()?,
        })
    }

    /// The root of this state, which its proofs lead to. Unsupported by default: the store's
    /// roots come from its tables, not from proofs.
    fn state_root(&self) -> Result<B256, StateError> {
        Err(ProofError::Unsupported.into())
    }

    /// EIP-1186 proofs of `keys` (accounts, each with the slots wanted, as words) in this
    /// state, in as few round trips as the source allows, in the order asked: what a block built
    /// on a source without the state's tables is sealed from. Unsupported by default.
    fn proofs(&self, keys: &[(Address, Vec<B256>)]) -> Result<Vec<AccountProof>, StateError> {
        let _ = keys;
        Err(ProofError::Unsupported.into())
    }
}

/// The embedded chain's store: the head's tables, and for a block before the head what the
/// later blocks overwrote.
#[derive(Debug, Clone)]
pub struct StoreSource {
    pub(crate) view: Arc<ReadView>,
    pub(crate) past: Option<Arc<PastState>>,
}

impl StateSource for StoreSource {
    fn account(&self, address: Address) -> Result<Option<AccountInfo>, StateError> {
        let hashed = keccak256(address);
        let past = match &self.past {
            Some(past) => self.view.past_account(past, &hashed)?,
            None => None,
        };
        let record = match past {
            Some(record) => record,
            None => self.view.account(&hashed)?,
        };
        Ok(record.map(|record| {
            let mut info = AccountInfo::new(
                record.balance,
                record.nonce,
                record.code_hash,
                Bytecode::default(),
            );
            info.code = None;
            info
        }))
    }

    fn storage(&self, address: Address, slot: U256) -> Result<U256, StateError> {
        let (hashed_address, hashed_slot) = (keccak256(address), keccak256(B256::from(slot)));
        if let Some(past) = &self.past
            && let Some(value) = self.view.past_slot(past, &hashed_address, &hashed_slot)?
        {
            return Ok(value);
        }
        Ok(self.view.storage(&hashed_address, &hashed_slot)?)
    }

    fn code(&self, code_hash: B256) -> Result<Bytecode, StateError> {
        if code_hash == KECCAK_EMPTY {
            return Ok(Bytecode::default());
        }
        let raw = self
            .view
            .code(&code_hash)?
            .ok_or(StateError::MissingCode(code_hash))?;
        Ok(Bytecode::new_raw(raw))
    }

    fn block_hash(&self, number: u64) -> Result<B256, StateError> {
        // BLOCKHASH only reaches the 256 most recent ancestors; revm enforces the window.
        Ok(self.view.canonical_hash(number)?.unwrap_or_default())
    }
}
