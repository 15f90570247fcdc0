//! What a block producer chooses for the next block (the payload attributes of the engine API).

use alloy_eips::eip4895::Withdrawal;
use alloy_primitives::{Address, B256, Bytes};

/// Inputs of the next block that do not follow from its parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockAttributes {
    /// Block timestamp, strictly greater than the parent's.
    pub timestamp: u64,
    /// Beneficiary of priority fees (the builder's coinbase).
    pub fee_recipient: Address,
    /// The beacon chain randomness (`mixHash` in the header).
    pub prev_randao: B256,
    /// Gas limit of the block.
    pub gas_limit: u64,
    /// Validator withdrawals to credit after the transactions.
    pub withdrawals: Vec<Withdrawal>,
    /// Root of the parent beacon block (EIP-4788).
    pub parent_beacon_block_root: B256,
    /// Free-form header bytes (at most 32).
    pub extra_data: Bytes,
}

/// Largest gas limit change from one block to the next is `parent / 1024` (minus one).
const GAS_LIMIT_BOUND_DIVISOR: u64 = 1024;
/// A gas limit below this is invalid.
pub const MIN_GAS_LIMIT: u64 = 5000;

/// Moves from the parent's gas limit toward `desired` by the most one block may move (as geth's
/// `CalcGasLimit` does), so an operator can change the limit without producing invalid blocks.
pub fn next_gas_limit(parent: u64, desired: u64) -> u64 {
    let delta = (parent / GAS_LIMIT_BOUND_DIVISOR).saturating_sub(1);
    let desired = desired.max(MIN_GAS_LIMIT);
    if desired > parent {
        parent.saturating_add(delta).min(desired)
    } else {
        parent.saturating_sub(delta).max(desired)
    }
}

/// Whether `gas_limit` may follow `parent` (the consensus rule).
pub(crate) fn gas_limit_valid(parent: u64, gas_limit: u64) -> bool {
    gas_limit >= MIN_GAS_LIMIT && gas_limit.abs_diff(parent) < parent / GAS_LIMIT_BOUND_DIVISOR
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_next_gas_limit_moves_within_bound() {
        assert_eq!(next_gas_limit(30_000_000, 30_000_000), 30_000_000);
        let up = next_gas_limit(30_000_000, 60_000_000);
        assert!(up > 30_000_000 && gas_limit_valid(30_000_000, up));
        let down = next_gas_limit(30_000_000, 1);
        assert!(down < 30_000_000 && gas_limit_valid(30_000_000, down));
        assert!(!gas_limit_valid(30_000_000, 60_000_000));
    }
}
