//! Opening a node's chain replica: the devnet genesis, stored in the node's data directory.

use std::{path::Path, sync::Arc};

use cobuild_chain::{Chain, ChainError, Genesis};
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
    /// The store could not be opened, or holds another chain.
    #[error("chain: {0}")]
    Chain(#[from] ChainError),
    /// The opening task died.
    #[error("opening task: {0}")]
    Join(String),
}

/// Opens (or creates) the devnet chain `chain_id` with the genesis of `gas_limit` in
/// `data_dir`, off the async runtime (opening reads and may write the store).
pub async fn open_chain(
    data_dir: &Path,
    chain_id: u64,
    gas_limit: u64,
) -> Result<Chain, OpenError> {
    std::fs::create_dir_all(data_dir).map_err(|source| OpenError::DataDir {
        path: data_dir.to_owned(),
        source,
    })?;
    let spec = Arc::new(ChainSpec::devnet(chain_id));
    let genesis = Genesis::devnet(gas_limit, cobuild_primitives::INITIAL_BASE_FEE);
    let path = data_dir.join(CHAIN_FILE);
    let chain = tokio::task::spawn_blocking(move || Chain::open(&path, spec, &genesis))
        .await
        .map_err(|e| OpenError::Join(e.to_string()))??;
    Ok(chain)
}
