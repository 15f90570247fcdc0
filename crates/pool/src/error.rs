//! Why a transaction was refused.

use alloy_primitives::U256;

/// A transaction the pool refused. Messages follow geth's, which clients match on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// The pool already holds this transaction.
    #[error("already known")]
    AlreadyKnown,
    /// Signed for another chain.
    #[error("invalid chain id: have {got}, want {expected}")]
    WrongChainId {
        /// Chain id in the transaction.
        got: u64,
        /// This chain's id.
        expected: u64,
    },
    /// A legacy transaction without EIP-155 replay protection.
    #[error("only replay-protected (EIP-155) transactions allowed over RPC")]
    Unprotected,
    /// Nonce below the sender's account nonce.
    #[error("nonce too low: next nonce {expected}, tx nonce {got}")]
    NonceTooLow {
        /// The transaction's nonce.
        got: u64,
        /// The account's nonce.
        expected: u64,
    },
    /// The sender cannot pay `gas * max fee + value`.
    #[error("insufficient funds for gas * price + value: have {balance} want {cost}")]
    InsufficientFunds {
        /// The sender's balance.
        balance: U256,
        /// What the transaction may cost.
        cost: U256,
    },
    /// Max fee per gas below the next block's base fee.
    #[error(
        "max fee per gas less than block base fee: maxFeePerGas: {max_fee}, baseFee: {base_fee}"
    )]
    FeeBelowBaseFee {
        /// The transaction's max fee per gas.
        max_fee: u128,
        /// The next block's base fee.
        base_fee: u64,
    },
    /// Priority fee above max fee.
    #[error("max priority fee per gas higher than max fee per gas")]
    TipAboveFeeCap,
    /// Gas limit above the block gas limit.
    #[error("exceeds block gas limit")]
    GasLimitExceedsBlock,
    /// Gas limit above the EIP-7825 per-transaction cap.
    #[error("transaction gas limit {got} exceeds the cap {cap}")]
    GasLimitExceedsCap {
        /// The transaction's gas limit.
        got: u64,
        /// The cap.
        cap: u64,
    },
    /// Gas limit below the intrinsic cost.
    #[error("intrinsic gas too low: have {got}, want {want}")]
    IntrinsicGasTooLow {
        /// The transaction's gas limit.
        got: u64,
        /// Its intrinsic gas.
        want: u64,
    },
    /// Larger than the pool accepts.
    #[error("oversized data: transaction size {size}, limit {limit}")]
    Oversized {
        /// Encoded size.
        size: usize,
        /// Limit.
        limit: usize,
    },
    /// Replaces a pending transaction without paying enough more.
    #[error("replacement transaction underpriced")]
    ReplacementUnderpriced,
    /// Blob transactions need a sidecar path the devnet does not offer yet.
    #[error("blob transactions are not supported by this node")]
    BlobsUnsupported,
    /// It would replace an order whose acceptance is still being recorded.
    #[error("replaces an order that is still being accepted: retry in a moment")]
    PendingReplacement,
    /// The pool (or the sender's share of it) is full.
    #[error("txpool is full")]
    Full,
    /// The bundle's uuid was cancelled (possibly before the bundle arrived).
    #[error("bundle was cancelled")]
    BundleCancelled,
    /// A replacement with a lower `replacementNonce` than the bundle it would replace.
    #[error("replacement is older than the bundle it would replace")]
    ReplacementStale,
    /// The bundle targets a block that is already sealed.
    #[error("bundle targets block {block}, the head is already {head}")]
    BundleExpired {
        /// Target block.
        block: u64,
        /// Head.
        head: u64,
    },
    /// The bundle reaches a block further past the head than the node's horizon.
    #[error("bundle reaches block {block}, more than {horizon} blocks past the head {head}")]
    BundleTooFar {
        /// The last block it may land in.
        block: u64,
        /// Head.
        head: u64,
        /// The node's horizon, in blocks.
        horizon: u64,
    },
    /// The state could not be read; not the sender's fault.
    #[error("state unavailable: {0}")]
    State(String),
}

impl PoolError {
    /// Whether the fault lies with the node rather than the transaction.
    pub const fn is_internal(&self) -> bool {
        matches!(self, Self::State(_))
    }
}
