//! Fee suggestions and `eth_feeHistory`.

use alloy_consensus::Transaction as _;
use alloy_rpc_types_eth::FeeHistory;
use cobuild_chain::ReadView;
use cobuild_primitives::ChainSpec;

use crate::RpcError;

/// The priority fee suggested to senders: 1 gwei, what a devnet block producer needs to order
/// transactions and what wallets default to.
pub(super) const SUGGESTED_TIP: u128 = 1_000_000_000;

/// Most blocks one `eth_feeHistory` call may cover (geth's limit).
const MAX_FEE_HISTORY_BLOCKS: u64 = 1024;

/// Base fees, gas used ratios and, if asked, reward percentiles of up to `count` blocks ending at
/// `newest`.
pub(super) fn fee_history(
    spec: &ChainSpec,
    view: &ReadView,
    count: u64,
    newest: u64,
    percentiles: Option<&[f64]>,
) -> Result<FeeHistory, RpcError> {
    if let Some(p) = percentiles
        && (p.windows(2).any(|w| w[0] > w[1]) || p.iter().any(|x| !(0.0..=100.0).contains(x)))
    {
        return Err(RpcError::InvalidParams("invalid reward percentiles".into()));
    }
    let count = count.min(MAX_FEE_HISTORY_BLOCKS).min(newest + 1);
    let oldest = newest + 1 - count;
    let mut history = FeeHistory {
        oldest_block: oldest,
        ..Default::default()
    };
    if count == 0 {
        return Ok(history);
    }
    let mut rewards = Vec::new();
    let mut last = None;
    for number in oldest..=newest {
        let block = view
            .block(number)
            .map_err(RpcError::internal)?
            .ok_or(RpcError::UnknownBlock)?;
        let header = &block.block.header;
        let base_fee = header.base_fee_per_gas.unwrap_or_default();
        history.base_fee_per_gas.push(u128::from(base_fee));
        history
            .gas_used_ratio
            .push(header.gas_used as f64 / header.gas_limit as f64);
        history.base_fee_per_blob_gas.push(0);
        history.blob_gas_used_ratio.push(0.0);
        if let Some(p) = percentiles {
            let receipts = view
                .receipts(number)
                .map_err(RpcError::internal)?
                .unwrap_or_default();
            let mut tips: Vec<(u128, u64)> = Vec::new();
            let mut prev = 0;
            for (tx, receipt) in block.block.body.transactions.iter().zip(&receipts) {
                let used = receipt.cumulative_gas_used() - prev;
                prev = receipt.cumulative_gas_used();
                tips.push((tx.effective_tip_per_gas(base_fee).unwrap_or_default(), used));
            }
            rewards.push(reward_percentiles(tips, header.gas_used, p));
        }
        last = Some(header.clone());
    }
    // The base fee of the block after `newest` is known and clients use it.
    if let Some(header) = last {
        history.base_fee_per_gas.push(u128::from(
            header
                .next_block_base_fee(spec.base_fee_params())
                .unwrap_or_default(),
        ));
        history.base_fee_per_blob_gas.push(0);
    }
    if percentiles.is_some() {
        history.reward = Some(rewards);
    }
    Ok(history)
}

/// The tip at each gas-weighted percentile of a block (geth's algorithm).
fn reward_percentiles(mut tips: Vec<(u128, u64)>, gas_used: u64, percentiles: &[f64]) -> Vec<u128> {
    if tips.is_empty() {
        return vec![0; percentiles.len()];
    }
    tips.sort_unstable();
    let mut out = Vec::with_capacity(percentiles.len());
    let mut index = 0;
    let mut sum = tips[0].1;
    for p in percentiles {
        let threshold = (gas_used as f64 * p / 100.0) as u64;
        while sum < threshold && index < tips.len() - 1 {
            index += 1;
            sum += tips[index].1;
        }
        out.push(tips[index].0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_reward_percentiles_are_gas_weighted() {
        let tips = vec![(5, 21_000), (1, 79_000)];
        assert_eq!(
            reward_percentiles(tips, 100_000, &[10.0, 50.0, 90.0]),
            vec![1, 1, 5]
        );
        assert_eq!(reward_percentiles(Vec::new(), 0, &[50.0]), vec![0]);
    }
}
