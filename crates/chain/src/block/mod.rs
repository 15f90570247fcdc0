//! Executing transactions into a block: the environment of the next block, the incremental
//! builder used both to produce new blocks and to re-execute imported ones, and the checks an
//! imported block must pass.

mod attributes;
mod builder;
mod bundle;
mod env;
mod import;
mod prefix;
mod receipts;
mod roots;
mod touched;

pub use attributes::{BlockAttributes, MIN_GAS_LIMIT, next_gas_limit};
pub use builder::{
    BlockBuilder, BlockError, ExecutedBlock, SealCache, TxOutcome, TxRejected, TxTrial,
};
pub use bundle::{BundleOutcome, BundleRejected, BundleTrial};
pub use env::{NextBlock, next_evm_env};
pub(crate) use import::reexecute;
pub use import::{ImportError, reexecute_on};
pub(crate) use prefix::Prefixes;
