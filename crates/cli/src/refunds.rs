//! `cobuild refunds`: what a recipient has earned from the ledger, as any member serves it —
//! each order's refund with the slot record it comes from, and whether its payout landed.

use std::fmt::Write as _;

use alloy_primitives::{Address, U256};
use cobuild_rpc::{FeeRefunds, RefundTotals};
use eyre::WrapErr;
use serde_json::json;

use crate::ledger::{Target, call, rpc_url};

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RefundsArgs {
    #[command(flatten)]
    target: Target,
    /// The address refunds are credited to (a signer, or whom it delegated them to).
    #[arg(long)]
    recipient: Address,
}

pub(crate) fn refunds(args: &RefundsArgs) -> eyre::Result<String> {
    let url = rpc_url(&args.target)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let totals: RefundTotals = serde_json::from_value(call(
        &runtime,
        &url,
        "flashbots_getFeeRefundTotalsByRecipient",
        json!([args.recipient]),
    )?)
    .wrap_err("unexpected totals shape")?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "refunds to {} at {url}: {} received, {} pending (computed up to block {})",
        args.recipient,
        ether(totals.received),
        ether(totals.pending),
        totals.max_block_number
    );
    let mut cursor = None;
    loop {
        let page: FeeRefunds = serde_json::from_value(call(
            &runtime,
            &url,
            "flashbots_getFeeRefundsByRecipient",
            json!([{"recipient": args.recipient, "cursor": cursor}]),
        )?)
        .wrap_err("unexpected refunds shape")?;
        for refund in &page.refunds {
            let _ = writeln!(
                out,
                "  block {:<6} {} {} wei {:<8} earned by {} (slot {} record {})",
                refund.block_number,
                refund.hash,
                refund.amount,
                refund.status,
                refund.identity,
                refund.slot,
                refund.record
            );
        }
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(out)
}

/// Wei as ether, to 18 decimals without trailing zeros.
fn ether(wei: U256) -> String {
    let unit = U256::from(10u64).pow(U256::from(18));
    let (whole, frac) = (wei / unit, wei % unit);
    if frac.is_zero() {
        return format!("{whole} ether");
    }
    let frac = format!("{frac:0>18}");
    format!("{whole}.{} ether", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_wei_print_as_ether() {
        assert_eq!(ether(U256::ZERO), "0 ether");
        assert_eq!(ether(U256::from(2_100_000_000_000_000u64)), "0.0021 ether");
        assert_eq!(
            ether(U256::from(3u64) * U256::from(10u64).pow(U256::from(18))),
            "3 ether"
        );
    }
}
