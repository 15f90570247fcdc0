//! What can go wrong talking to the registry contract.

use std::time::Duration;

use alloy_primitives::{Address, B256, Bytes};
use alloy_provider::transport::TransportError;
use cobuild_contracts::IRegistry::IRegistryErrors;

use crate::{MemberId, RegistryError};

/// Why the contract refused a change: its custom errors, decoded from the revert data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Only the owner may change the registry.
    #[error("{caller} is not the registry owner")]
    NotOwner {
        /// The account that sent the change.
        caller: Address,
    },
    /// No current member has this id.
    #[error("no current member with id {id}")]
    UnknownMember {
        /// The id.
        id: MemberId,
    },
    /// A current member already holds this node key.
    #[error("node key {node_key} is already registered")]
    DuplicateNodeKey {
        /// The key.
        node_key: B256,
    },
    /// The node key is zero.
    #[error("node key is zero")]
    ZeroNodeKey,
    /// The BLS key is not 48 bytes.
    #[error("bls key is {length} bytes, expected 48")]
    InvalidBlsKey {
        /// Its length.
        length: usize,
    },
    /// The member's network address is empty.
    #[error("network address is empty")]
    EmptyAddress,
    /// The owner cannot be the zero address.
    #[error("owner is the zero address")]
    ZeroOwner,
    /// A revert that is not one of the registry's errors (for instance out of gas, or not a
    /// registry at that address).
    #[error("reverted: {reason}")]
    Other {
        /// The decoded reason, or the revert data in hex.
        reason: String,
    },
}

impl Refusal {
    /// Decodes a revert's data; anything but a registry error becomes [`Refusal::Other`].
    pub fn from_revert_data(data: &Bytes) -> Self {
        use alloy_sol_types::SolInterface;
        match IRegistryErrors::abi_decode(data) {
            Ok(IRegistryErrors::NotOwner(e)) => Self::NotOwner { caller: e.caller },
            Ok(IRegistryErrors::UnknownMember(e)) => Self::UnknownMember { id: e.id },
            Ok(IRegistryErrors::DuplicateNodeKey(e)) => Self::DuplicateNodeKey {
                node_key: e.nodeKey,
            },
            Ok(IRegistryErrors::ZeroNodeKey(_)) => Self::ZeroNodeKey,
            Ok(IRegistryErrors::InvalidBlsKey(e)) => Self::InvalidBlsKey {
                length: e.length.saturating_to(),
            },
            Ok(IRegistryErrors::EmptyAddress(_)) => Self::EmptyAddress,
            Ok(IRegistryErrors::ZeroOwner(_)) => Self::ZeroOwner,
            Err(_) => Self::Other {
                reason: alloy_sol_types::decode_revert_reason(data)
                    .unwrap_or_else(|| data.to_string()),
            },
        }
    }
}

/// A registry contract operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// The JSON-RPC endpoint could not be reached or answered with an error.
    #[error("registry rpc: {0}")]
    Rpc(#[source] TransportError),
    /// A request took longer than allowed.
    #[error("registry rpc: {what} timed out after {after:?}")]
    Timeout {
        /// The request.
        what: &'static str,
        /// The limit.
        after: Duration,
    },
    /// The contract refused the change (it would revert); nothing was sent.
    #[error("registry refused the change: {0}")]
    Refused(Refusal),
    /// The transaction was mined but reverted (the state changed between estimate and
    /// inclusion).
    #[error("registry transaction {tx_hash} reverted")]
    Failed {
        /// The transaction.
        tx_hash: B256,
    },
    /// The mined transaction lacks what it must have produced (deployed address, event).
    #[error("registry transaction {tx_hash}: {missing} not in the receipt")]
    Receipt {
        /// The transaction.
        tx_hash: B256,
        /// What is missing.
        missing: &'static str,
    },
    /// There is no contract at the address.
    #[error("no registry contract at {0}")]
    NoContract(Address),
    /// The contract's answer is not what `Registry.sol` returns.
    #[error("undecodable registry answer: {0}")]
    Decode(#[from] alloy_sol_types::Error),
    /// The contract's list breaks the rules every member list obeys (keys, duplicates).
    #[error(transparent)]
    Invalid(RegistryError),
    /// The contract lists a member no node could use.
    #[error("registry member {id}: {reason}")]
    InvalidMember {
        /// The member's id.
        id: MemberId,
        /// What is wrong.
        reason: &'static str,
    },
    /// The refresh thread or its runtime could not start.
    #[error("registry refresh thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The refresh thread has stopped (it panicked).
    #[error("registry refresh thread stopped")]
    Stopped,
}

impl ContractError {
    /// Turns a JSON-RPC error into a refusal when it is a revert (with revert data), so
    /// callers can match on the contract's reason.
    pub(crate) fn from_rpc(err: TransportError) -> Self {
        match err
            .as_error_resp()
            .and_then(|payload| payload.as_revert_data())
        {
            Some(data) => Self::Refused(Refusal::from_revert_data(&data)),
            None => Self::Rpc(err),
        }
    }

    /// Whether the contract refused the change (as opposed to a transport or node failure).
    pub fn is_refusal(&self) -> bool {
        matches!(self, Self::Refused(_) | Self::Failed { .. })
    }
}
