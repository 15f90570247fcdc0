//! Merkle proofs of the head state (EIP-1186, `eth_getProof`): the account trie's nodes on the
//! path to an account, and its storage trie's nodes on the path to each slot asked for.
//!
//! The proof comes out of the same walk that computes roots: the proved keys are handed to it
//! as unchanged "changes", so it descends along their paths (reading only the leaves there)
//! while every other subtree goes in as its stored hash, and alloy-trie's `HashBuilder`
//! keeps the nodes on those paths. The root it reaches is checked against the one expected, so
//! a proof never describes another state than the one asked for.

use std::collections::BTreeMap;

use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_rlp::Encodable;
use alloy_trie::{EMPTY_ROOT_HASH, Nibbles};

use super::{
    EntryIter, HashedState, TrieNodes,
    root::{TrieInput, trie_proof},
};
use crate::store::{AccountRecord, StoreError};

/// An account with the proof of its leaf (or of its absence) and of the slots asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountProof {
    /// The account, `None` if it does not exist.
    pub record: Option<AccountRecord>,
    /// The account trie's nodes from the root to the account's path.
    pub account_proof: Vec<Bytes>,
    /// Per slot asked for, in order: its value and the storage trie's nodes to it.
    pub storage: Vec<(B256, U256, Vec<Bytes>)>,
}

/// The proof of `address` and its `slots` in `state`, whose root is `state_root`, walking
/// `nodes` (the state's stored branch nodes).
pub(crate) fn prove(
    state: &(impl HashedState + ?Sized),
    nodes: &TrieNodes,
    state_root: B256,
    address: Address,
    slots: &[B256],
) -> Result<AccountProof, StoreError> {
    let hashed = keccak256(address);
    let record = state.account(&hashed)?;
    let accounts = BTreeMap::from([(hashed, record)]);
    let stored = |lo: &B256, hi: &B256| state.accounts(lo, hi);
    let (root, proof) = trie_proof(
        &TrieInput {
            nodes: nodes.accounts(),
            changes: &accounts,
            keep: |r: &Option<AccountRecord>| *r,
            stored: &stored,
            encode: |r: &AccountRecord, out: &mut Vec<u8>| r.trie_account().encode(out),
            before: &|_: &B256| None,
        },
        vec![Nibbles::unpack(hashed)],
    )?;
    if root != state_root {
        return Err(StoreError::Corrupt("the state does not hash to its root"));
    }
    let account_proof = nodes_to(&proof, &hashed);

    let hashed_slots: Vec<B256> = slots.iter().map(keccak256).collect();
    let mut values = BTreeMap::new();
    for hashed_slot in &hashed_slots {
        let value = state
            .storage_slots(&hashed, hashed_slot, hashed_slot)?
            .next()
            .transpose()?
            .map_or(U256::ZERO, |(_, value)| value);
        values.insert(*hashed_slot, value);
    }
    let storage_root = record.map_or(EMPTY_ROOT_HASH, |r| r.storage_root);
    let stored = |lo: &B256, hi: &B256| -> Result<EntryIter<'_, U256>, StoreError> {
        state.storage_slots(&hashed, lo, hi)
    };
    let (root, proof) = trie_proof(
        &TrieInput {
            nodes: nodes.storage(&hashed),
            changes: &values,
            keep: |v: &U256| (!v.is_zero()).then_some(*v),
            stored: &stored,
            encode: |v: &U256, out: &mut Vec<u8>| v.encode(out),
            before: &|_: &B256| None,
        },
        hashed_slots.iter().map(|h| Nibbles::unpack(*h)).collect(),
    )?;
    if root != storage_root {
        return Err(StoreError::Corrupt("a storage does not hash to its root"));
    }
    let storage = slots
        .iter()
        .zip(&hashed_slots)
        .map(|(slot, hashed_slot)| {
            let value = values.get(hashed_slot).copied().unwrap_or_default();
            (*slot, value, nodes_to(&proof, hashed_slot))
        })
        .collect();
    Ok(AccountProof {
        record,
        account_proof,
        storage,
    })
}

/// The retained nodes on the path to `key`, root first.
fn nodes_to(proof: &alloy_trie::proof::ProofNodes, key: &B256) -> Vec<Bytes> {
    proof
        .matching_nodes_sorted(&Nibbles::unpack(*key))
        .into_iter()
        .map(|(_, node)| node)
        .collect()
}
