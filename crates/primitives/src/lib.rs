//! Chain specification and shared types every cobuild crate speaks.
//!
//! # Design
//! The [`ChainSpec`] is the one place that says which hard forks are active, the chain id,
//! the blob parameters and the EIP-1559 fee rules. Execution (`cobuild-chain`), validation
//! (`cobuild-pool`) and later building and sealing all read it, so a block produced by one
//! component is judged by the same rules everywhere.

mod bls;
mod evm;
mod hints;
mod kind;
mod mev;
mod order;
mod rules;
mod senders;
mod spec;
mod text;

pub use bls::{BLS_DST, BlsPublicKey, BlsSignature, BuilderKey, KeyError};
pub use evm::eth_evm;
pub use hints::{Hints, PRIVACY_HINTS, take_hints};
pub use kind::{AcceptedOrder, OrderKind, UnknownOrderKind};
pub use mev::{
    MAX_INCLUSION_RANGE, parse_mev_bundle, parse_private_transaction, referenced_transactions,
};
pub use order::{
    Bundle, BundleRequest, MAX_BUNDLE_TXS, OrderError, Refund, Replacement, bundle_hash,
    decode_transactions, quantity,
};
pub use rules::{Allowed, OrderRules, Ran, SingleTx, Strict, TxFate, TxRun};
pub use senders::{BadSignature, SenderCache, SenderCacheStats};
pub use spec::{ChainSpec, DEFAULT_GAS_LIMIT, DEVNET_CHAIN_ID, INITIAL_BASE_FEE};
pub use text::{MAX_ERROR_TEXT, bounded};
