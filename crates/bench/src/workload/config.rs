//! What a workload asks for: its size, seed and mix of order kinds.

use std::fmt;

use cobuild_primitives::DEFAULT_GAS_LIMIT;

/// The kinds of order a workload holds.
///
/// Every swap and every bundle trades on the one demo pool, so they all read and write its
/// reserves: they conflict with each other, and arbitrage bundles in the same direction exclude
/// each other (the first one moves the price past the others' minimum output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OrderKind {
    /// A plain ETH transfer (21,000 gas).
    EthTransfer,
    /// An ERC-20 `transfer` of one of the demo tokens.
    TokenTransfer,
    /// A swap on the pool with a slippage tolerance of 0.5-3 %.
    Swap,
    /// A swap whose minimum output is twice its input: it reverts ("slippage") and still pays
    /// for its gas.
    RevertingSwap,
    /// A bundle: a searcher's arbitrage swap with a 0.02 % tolerance, then a transfer to the
    /// coinbase (the bid). Valid alone; voided once another arbitrage in the same direction
    /// landed first.
    Arbitrage,
    /// The same, but the swap is listed in `revertingTxHashes`: when it loses the race the swap
    /// reverts and the bid is still paid.
    ArbitrageMayRevert,
    /// An arbitrage whose swap always reverts and may not: the simulator rejects the bundle.
    ArbitrageVoid,
}

impl OrderKind {
    /// Every kind, in a fixed order.
    pub const ALL: [Self; 7] = [
        Self::EthTransfer,
        Self::TokenTransfer,
        Self::Swap,
        Self::RevertingSwap,
        Self::Arbitrage,
        Self::ArbitrageMayRevert,
        Self::ArbitrageVoid,
    ];

    /// Whether orders of this kind are bundles.
    pub const fn is_bundle(self) -> bool {
        matches!(
            self,
            Self::Arbitrage | Self::ArbitrageMayRevert | Self::ArbitrageVoid
        )
    }

    /// Whether the simulator accepts orders of this kind on the head state.
    pub const fn is_valid_on_head(self) -> bool {
        !matches!(self, Self::ArbitrageVoid)
    }

    /// A short name for tables.
    pub const fn name(self) -> &'static str {
        match self {
            Self::EthTransfer => "eth",
            Self::TokenTransfer => "erc20",
            Self::Swap => "swap",
            Self::RevertingSwap => "swap-revert",
            Self::Arbitrage => "arb",
            Self::ArbitrageMayRevert => "arb-may-revert",
            Self::ArbitrageVoid => "arb-void",
        }
    }
}

impl fmt::Display for OrderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How many of each kind, per thousand orders. The default follows the shape of mainnet
/// orderflow: mostly plain transfers and swaps, a minority of bundles carrying most of the
/// value, some of everything reverting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MixShares {
    /// ETH transfers.
    pub eth_transfer: u32,
    /// ERC-20 transfers.
    pub token_transfer: u32,
    /// Swaps that succeed alone.
    pub swap: u32,
    /// Swaps that revert.
    pub reverting_swap: u32,
    /// Arbitrage bundles.
    pub arbitrage: u32,
    /// Arbitrage bundles whose swap may revert.
    pub arbitrage_may_revert: u32,
    /// Arbitrage bundles the simulator rejects.
    pub arbitrage_void: u32,
}

impl Default for MixShares {
    fn default() -> Self {
        Self {
            eth_transfer: 300,
            token_transfer: 250,
            swap: 255,
            reverting_swap: 45,
            arbitrage: 110,
            arbitrage_may_revert: 20,
            arbitrage_void: 20,
        }
    }
}

impl MixShares {
    /// The share of `kind`, per thousand (of the sum of all shares).
    pub const fn share(&self, kind: OrderKind) -> u32 {
        match kind {
            OrderKind::EthTransfer => self.eth_transfer,
            OrderKind::TokenTransfer => self.token_transfer,
            OrderKind::Swap => self.swap,
            OrderKind::RevertingSwap => self.reverting_swap,
            OrderKind::Arbitrage => self.arbitrage,
            OrderKind::ArbitrageMayRevert => self.arbitrage_may_revert,
            OrderKind::ArbitrageVoid => self.arbitrage_void,
        }
    }
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadConfig {
    /// Seed of every random choice.
    pub seed: u64,
    /// Orders in the pending pool (a bundle counts as one order).
    pub orders: usize,
    /// Mean number of pending transactions per (non-searcher) sender.
    pub txs_per_sender: usize,
    /// Gas limit of the genesis, the setup blocks and the measured block.
    pub gas_limit: u64,
    /// The mix of order kinds.
    pub shares: MixShares,
}

impl WorkloadConfig {
    /// The default mix of `orders` orders from `seed`, at the default 60M gas limit.
    pub fn new(orders: usize, seed: u64) -> Self {
        Self {
            seed,
            orders,
            txs_per_sender: 4,
            gas_limit: DEFAULT_GAS_LIMIT,
            shares: MixShares::default(),
        }
    }
}

/// How many orders of each kind a workload holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Mix {
    /// Count per kind, in [`OrderKind::ALL`] order.
    pub counts: [usize; 7],
}

impl Mix {
    /// Orders of `kind`.
    pub fn count(&self, kind: OrderKind) -> usize {
        self.counts[kind as usize]
    }

    /// All orders.
    pub fn total(&self) -> usize {
        self.counts.iter().sum()
    }

    /// Bundles.
    pub fn bundles(&self) -> usize {
        OrderKind::ALL
            .iter()
            .filter(|k| k.is_bundle())
            .map(|k| self.count(*k))
            .sum()
    }

    /// Orders the simulator should accept on the head state.
    pub fn valid_on_head(&self) -> usize {
        OrderKind::ALL
            .iter()
            .filter(|k| k.is_valid_on_head())
            .map(|k| self.count(*k))
            .sum()
    }

    /// Splits `orders` by `shares`: each kind gets its rounded-down share (at least one when
    /// there are at least as many orders as kinds), ETH transfers take the remainder.
    pub(crate) fn split(orders: usize, shares: &MixShares) -> Self {
        let total: usize = OrderKind::ALL
            .iter()
            .map(|k| shares.share(*k) as usize)
            .sum::<usize>()
            .max(1);
        let mut counts = [0; 7];
        for kind in OrderKind::ALL {
            let share = shares.share(kind) as usize;
            let mut n = orders * share / total;
            if n == 0 && share > 0 && orders >= OrderKind::ALL.len() {
                n = 1;
            }
            counts[kind as usize] = n;
        }
        let assigned: usize = counts.iter().sum();
        let eth = OrderKind::EthTransfer as usize;
        if assigned <= orders {
            counts[eth] += orders - assigned;
        } else {
            counts[eth] = counts[eth].saturating_sub(assigned - orders);
        }
        Self { counts }
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, kind) in OrderKind::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{kind}={}", self.count(*kind))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_split_adds_up_and_has_every_kind() {
        for orders in [7, 100, 200, 1000, 5000, 12_345] {
            let mix = Mix::split(orders, &MixShares::default());
            assert_eq!(mix.total(), orders);
            for kind in OrderKind::ALL {
                assert!(mix.count(kind) > 0, "{orders} orders: no {kind}");
            }
        }
        let mix = Mix::split(1000, &MixShares::default());
        assert_eq!(mix.bundles(), 150);
        assert_eq!(mix.valid_on_head(), 980);
    }
}
