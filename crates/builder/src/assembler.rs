//! Commits orders into a block one at a time, measuring each one's real effect on the coinbase
//! (not its simulated one), paying in-block refunds, and sealing with the proposer payment.

use alloy_primitives::{Address, B256, U256};
use cobuild_chain::{BlockBuilder, BundleRejected, ExecutedBlock, SealCache, TxRejected};
use cobuild_sim::{Order, SimulatedOrder};

use crate::{
    BuildContext, BuildError, BuiltBlock, Payout,
    payout::{self, CONTRACT_PAYMENT_GAS, TRANSFER_GAS},
    share,
};

/// Why an order was left out of this block. The block is unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Skip {
    /// The caller's check refused what it would really pay (`profit`, net of its refund).
    Refused { profit: U256 },
    /// Not enough gas left, counting what the payouts need.
    NoGas,
    /// A transaction is invalid now (nonce, funds ...), or a bundle rule failed.
    Invalid,
}

/// A block being filled for one algorithm.
pub(crate) struct Assembler {
    payout: Payout,
    chain_id: u64,
    builder: BlockBuilder,
    start_balance: U256,
    /// Gas kept back for the proposer payment.
    reserved: u64,
    orders: Vec<B256>,
}

impl Assembler {
    pub(crate) fn new(ctx: &BuildContext) -> Result<Self, BuildError> {
        let builder = BlockBuilder::new(
            ctx.spec.clone(),
            ctx.parent.clone(),
            ctx.state.clone(),
            ctx.attrs.clone(),
        )?;
        let coinbase = builder.coinbase();
        let account = builder.account(coinbase)?.unwrap_or_default();
        let reserved = payment_gas(&builder, ctx.payout.proposer_fee_recipient)?;
        Ok(Self {
            payout: ctx.payout.clone(),
            chain_id: ctx.spec.chain_id(),
            builder,
            start_balance: account.balance,
            reserved,
            orders: Vec::new(),
        })
    }

    /// A copy of the block so far that goes on (and seals) on its own.
    pub(crate) fn fork(&self) -> Self {
        Self {
            payout: self.payout.clone(),
            chain_id: self.chain_id,
            builder: self.builder.fork(),
            start_balance: self.start_balance,
            reserved: self.reserved,
            orders: self.orders.clone(),
        }
    }

    /// Ids of the orders committed so far, in block order.
    pub(crate) fn orders(&self) -> &[B256] {
        &self.orders
    }

    /// Gas orders may still use.
    pub(crate) fn gas_left(&self) -> u64 {
        self.builder.gas_left().saturating_sub(self.reserved)
    }

    /// The nonce `address` has in the block so far.
    pub(crate) fn nonce(&mut self, address: Address) -> Result<u64, BuildError> {
        Ok(self
            .builder
            .load_account(address)?
            .map(|a| a.nonce)
            .unwrap_or_default())
    }

    /// Whether a transaction order's nonce is the sender's next one in this block: `Less` when
    /// it is already used, `Greater` when an earlier nonce is still missing. Bundles are judged
    /// by execution instead.
    pub(crate) fn nonce_order(&mut self, order: &Order) -> Result<std::cmp::Ordering, BuildError> {
        match order {
            Order::Tx(tx) => Ok(tx.nonce().cmp(&self.nonce(tx.sender())?)),
            Order::Bundle(_) => Ok(std::cmp::Ordering::Equal),
        }
    }

    /// Executes `order` and commits it if its rules hold, it fits in the gas left (counting
    /// its refund) and `accept` approves its real profit (net of the refund it is owed); pays its
    /// refund in the same step.
    pub(crate) fn commit(
        &mut self,
        order: &SimulatedOrder,
        accept: impl FnOnce(U256) -> bool,
    ) -> Result<Result<U256, Skip>, BuildError> {
        let coinbase = self.builder.coinbase();
        // The coinbase's own transactions would race its refund and payment nonces.
        if order.order.txs().iter().any(|tx| tx.signer() == coinbase) {
            return Ok(Err(Skip::Invalid));
        }
        let refund = order.order.refund().map(|refund| {
            let recipient = refund
                .recipient
                .or_else(|| order.order.first_signer())
                .unwrap_or_default();
            (refund.percent, recipient)
        });
        let refund_gas = match refund {
            Some((_, recipient)) => payment_gas(&self.builder, recipient)?,
            None => 0,
        };
        // The executor only checks gas limits against the whole block; the budget keeps the
        // payment's gas free whatever the order really uses.
        let budget = self.gas_left();
        if order.outcome.gas_used + refund_gas > budget {
            return Ok(Err(Skip::NoGas));
        }
        let percent = refund.map_or(0, |(percent, _)| percent);
        let net = |profit: U256| profit - share(profit, percent);
        let mut seen = U256::ZERO;
        let mut over_budget = false;
        let judge = |gas_used: u64, profit: U256| {
            if gas_used + refund_gas > budget {
                over_budget = true;
                return false;
            }
            seen = net(profit);
            accept(seen)
        };
        let refused = |over_budget: bool, profit: U256| {
            if over_budget {
                Skip::NoGas
            } else {
                Skip::Refused { profit }
            }
        };
        let profit = match &order.order {
            Order::Tx(tx) => match self.builder.execute_if(tx.tx.clone(), |trial| {
                judge(trial.result.tx_gas_used(), trial.coinbase_profit)
            })? {
                Ok(outcome) => outcome.coinbase_profit,
                Err(TxRejected::Refused) => return Ok(Err(refused(over_budget, seen))),
                Err(TxRejected::BlockGasExhausted { .. }) => return Ok(Err(Skip::NoGas)),
                Err(_) => return Ok(Err(Skip::Invalid)),
            },
            Order::Bundle(bundle) => {
                let b = &bundle.bundle;
                match self
                    .builder
                    .execute_bundle_if(b.txs.as_slice(), b, |trial| {
                        judge(trial.gas_used, trial.coinbase_profit)
                    })? {
                    Ok(outcome) => outcome.coinbase_profit,
                    Err(BundleRejected::Refused) => {
                        return Ok(Err(refused(over_budget, seen)));
                    }
                    Err(BundleRejected::GasExhausted { .. }) => return Ok(Err(Skip::NoGas)),
                    Err(_) => return Ok(Err(Skip::Invalid)),
                }
            }
        };
        if let Some((percent, recipient)) = refund {
            let owed = share(profit, percent);
            self.pay(recipient, owed, refund_gas)?;
        }
        self.orders.push(order.order.id());
        Ok(Ok(net(profit)))
    }

    /// Sends `total` (gas included) from the coinbase to `to` and returns what arrived: nothing
    /// when the gas would eat it, or when the transfer fails (a contract that refuses the
    /// value). A failed transfer is the recipient's problem, not the block's: it is logged and
    /// the block goes on.
    fn pay(&mut self, to: Address, total: U256, gas_limit: u64) -> Result<U256, BuildError> {
        let cost = U256::from(gas_limit) * U256::from(self.builder.base_fee());
        if total <= cost {
            return Ok(U256::ZERO);
        }
        let value = total - cost;
        let coinbase = self.builder.coinbase();
        let nonce = self.nonce(coinbase)?;
        let tx = payout::transfer(
            &self.payout.coinbase,
            self.chain_id,
            nonce,
            self.builder.base_fee(),
            gas_limit,
            to,
            value,
        )?;
        match self.builder.execute(tx)? {
            Ok(outcome) if outcome.success => Ok(value),
            Ok(_) => {
                tracing::warn!(%to, %value, "build.payment.reverted");
                Ok(U256::ZERO)
            }
            Err(reason) => {
                tracing::warn!(%to, %value, %reason, "build.payment.rejected");
                Ok(U256::ZERO)
            }
        }
    }

    /// Pays the proposer its share of the block's profit as the last transaction and seals.
    pub(crate) fn seal(self, algorithm: &'static str) -> Result<BuiltBlock, BuildError> {
        let (paid, builder) = self.pay_proposer()?;
        Ok(paid.into_built(builder.finish()?, algorithm))
    }

    /// [`seal`](Self::seal), starting from what an `earlier` seal of a block on the same parent
    /// kept ([`BlockBuilder::finish_cached`]) and keeping what the next one needs.
    pub(crate) fn seal_cached(
        self,
        algorithm: &'static str,
        earlier: Option<SealCache>,
    ) -> Result<(BuiltBlock, SealCache), BuildError> {
        let (paid, builder) = self.pay_proposer()?;
        let (block, cache) = builder.finish_cached(earlier)?;
        Ok((paid.into_built(block, algorithm), cache))
    }

    /// What the coinbase has gained so far (after refunds): the block's profit, of which the
    /// proposer payment is a share, so blocks on the same parent rank by it before sealing.
    pub(crate) fn profit(&self) -> Result<U256, BuildError> {
        let coinbase = self.builder.coinbase();
        Ok(self
            .builder
            .balance(coinbase)?
            .saturating_sub(self.start_balance))
    }

    /// Pays the proposer its share of the block's profit as the last transaction.
    fn pay_proposer(mut self) -> Result<(Paid, BlockBuilder), BuildError> {
        let profit = self.profit()?;
        let gas = self.reserved;
        self.reserved = 0;
        let value = self.pay(
            self.payout.proposer_fee_recipient,
            share(profit, self.payout.bid_percent.min(100)),
            gas,
        )?;
        let paid = Paid {
            value,
            profit,
            orders: self.orders,
        };
        Ok((paid, self.builder))
    }
}

/// A block's takings once the proposer is paid, waiting for the seal.
struct Paid {
    value: U256,
    profit: U256,
    orders: Vec<B256>,
}

impl Paid {
    fn into_built(self, block: ExecutedBlock, algorithm: &'static str) -> BuiltBlock {
        BuiltBlock {
            block,
            value: self.value,
            profit: self.profit,
            orders: self.orders,
            algorithm,
        }
    }
}

/// Gas the proposer payment needs: a plain transfer to an account without code, more to a
/// contract.
fn payment_gas(builder: &BlockBuilder, to: Address) -> Result<u64, BuildError> {
    let has_code = builder
        .account(to)?
        .is_some_and(|a| a.code_hash != revm::primitives::KECCAK_EMPTY);
    Ok(if has_code {
        CONTRACT_PAYMENT_GAS
    } else {
        TRANSFER_GAS
    })
}
