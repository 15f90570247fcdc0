//! Opening a node's chain replica: the devnet genesis, stored in the node's data directory.

use std::{path::Path, sync::Arc};

use cobuild_chain::{Chain, ChainError, Genesis, Rollback};
use cobuild_primitives::ChainSpec;

/// Where a node keeps its chain inside its data directory.
pub const CHAIN_FILE: &str = "chain.redb";

/// Why the chain could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The data directory could not be prepared.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The store was truncated, rolled back or emptied since its last commit.
    #[error(
        "chain: {0}; restore the store, or start with --accept-chain-rollback to go on from its head"
    )]
    RolledBack(#[source] Box<ChainError>),
    /// The store could not be opened, or holds another chain.
    #[error("chain: {0}")]
    Chain(#[source] Box<ChainError>),
    /// The opening task died.
    #[error("opening task: {0}")]
    Join(String),
}

impl From<ChainError> for OpenError {
    fn from(error: ChainError) -> Self {
        match error {
            ChainError::RolledBack { .. } => Self::RolledBack(Box::new(error)),
            error => Self::Chain(Box::new(error)),
        }
    }
}

/// Opens (or creates) the devnet chain `chain_id` with the genesis of `gas_limit` in
/// `data_dir`, off the async runtime (opening reads and may write the store); a store that was
/// rolled back is refused unless `rollback` accepts it.
pub async fn open_chain(
    data_dir: &Path,
    chain_id: u64,
    gas_limit: u64,
    rollback: Rollback,
) -> Result<Chain, OpenError> {
    std::fs::create_dir_all(data_dir).map_err(|source| OpenError::DataDir {
        path: data_dir.to_owned(),
        source,
    })?;
    let spec = Arc::new(ChainSpec::devnet(chain_id));
    let genesis = Genesis::devnet(gas_limit, cobuild_primitives::INITIAL_BASE_FEE);
    let path = data_dir.join(CHAIN_FILE);
    let chain =
        tokio::task::spawn_blocking(move || Chain::open_with(&path, spec, &genesis, rollback))
            .await
            .map_err(|e| OpenError::Join(e.to_string()))??;
    Ok(chain)
}
