//! Why a workload could not be made.

use cobuild_chain::{BlockError, ChainError, StateError};
use cobuild_primitives::OrderError;

/// A workload could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// The chain could not be opened, built on or committed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// A setup block could not be executed or sealed.
    #[error(transparent)]
    Block(#[from] BlockError),
    /// The head state could not be read.
    #[error(transparent)]
    State(#[from] StateError),
    /// The chain's folder could not be made.
    #[error("chain folder: {0}")]
    Dir(#[from] std::io::Error),
    /// A transaction could not be signed.
    #[error("signing: {0}")]
    Sign(String),
    /// A generated bundle was refused by the `eth_sendBundle` checks.
    #[error("bundle: {0}")]
    Bundle(#[from] OrderError),
    /// The setup did not go as planned (a setup transaction failed).
    #[error("setup: {0}")]
    Setup(String),
}
