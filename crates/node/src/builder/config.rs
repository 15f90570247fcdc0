//! Builder settings.

use std::time::Duration;

use alloy_signer_local::PrivateKeySigner;

/// Settings of a node's block builder.
#[derive(Debug, Clone)]
pub struct BuilderConfig {
    /// Key of the coinbase of built blocks: it receives the orders' payments and signs refunds
    /// and the proposer payment.
    pub coinbase: PrivateKeySigner,
    /// Share of a block's profit bid to the proposer, in percent (1..=100).
    pub bid_percent: u8,
    /// Simulation threads (0: on the building thread).
    pub sim_threads: usize,
    /// Least time between the starts of two build rounds of one slot; rounds start when the
    /// pools change, and a round whose runnable orders did not change is skipped.
    pub round_interval: Duration,
}
