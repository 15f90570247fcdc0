//! A relay's check of bids built on an execution client's chain.

use alloy_consensus::{Block, TxEnvelope};
use cobuild_chain::{BlockError, ExecutedBlock, ImportError};
use cobuild_el::ElChain;
use cobuild_relay::BlockVerifier;

/// Re-executes each bid on the head an [`ElChain`] follows (the slot's parent, followed by
/// whoever opens the slot): how the mock consensus client's relay checks bids.
#[derive(Debug, Clone)]
pub struct ElVerifier(pub ElChain);

impl BlockVerifier for ElVerifier {
    type Error = ImportError;

    fn verify(&self, block: Block<TxEnvelope>) -> Result<ExecutedBlock, ImportError> {
        self.0.reexecute(block)
    }

    fn is_invalid_block(error: &ImportError) -> bool {
        // A read the execution client did not answer is the relay's fault, not the block's.
        !matches!(
            error,
            ImportError::Block(BlockError::State(_) | BlockError::Store(_))
        )
    }
}
