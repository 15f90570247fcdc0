//! Commits orders into a block one at a time, measuring each one's real effect on the coinbase
//! (not its simulated one), paying in-block refunds, and sealing with the proposer payment.

use alloy_primitives::{Address, B256, U256};
use cobuild_chain::{BlockBuilder, BundleRejected, TxRejected};
use cobuild_sim::{Order, SimulatedOrder};

use crate::{
    BuildContext, BuildError, BuiltBlock,
    payout::{self, CONTRACT_PAYMENT_GAS, TRANSFER_GAS},
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
pub(crate) struct Assembler<'c> {
    ctx: &'c BuildContext,
    builder: BlockBuilder,
    start_balance: U256,
    coinbase_nonce: u64,
    /// Gas kept back for the proposer payment.
    reserved: u64,
    orders: Vec<B256>,
}

impl<'c> Assembler<'c> {
    pub(crate) fn new(ctx: &'c BuildContext) -> Result<Self, BuildError> {
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
            ctx,
            builder,
            start_balance: account.balance,
            coinbase_nonce: account.nonce,
            reserved,
            orders: Vec::new(),
        })
    }

    /// Gas orders may still use.
    pub(crate) fn gas_left(&self) -> u64 {
        self.builder.gas_left().saturating_sub(self.reserved)
    }

    /// The nonce `address` has in the block so far.
    pub(crate) fn nonce(&self, address: Address) -> Result<u64, BuildError> {
        Ok(self
            .builder
            .account(address)?
            .map(|a| a.nonce)
            .unwrap_or_default())
    }

    /// Whether a transaction order's nonce is the sender's next one in this block: `Less` when
    /// it is already used, `Greater` when an earlier nonce is still missing. Bundles are judged
    /// by execution instead.
    pub(crate) fn nonce_order(&self, order: &Order) -> Result<std::cmp::Ordering, BuildError> {
        match order {
            Order::Tx(tx) => Ok(tx.nonce().cmp(&self.nonce(tx.sender())?)),
            Order::Bundle(_) => Ok(std::cmp::Ordering::Equal),
        }
    }

    /// Executes `order` and commits it if its rules hold and `accept` approves its real profit
    /// (net of the refund it is owed); pays its refund in the same step.
    pub(crate) fn commit(
        &mut self,
        order: &SimulatedOrder,
        accept: impl FnOnce(U256) -> bool,
    ) -> Result<Result<U256, Skip>, BuildError> {
        let refund_gas = if order.order.refund().is_some() {
            TRANSFER_GAS
        } else {
            0
        };
        if order.outcome.gas_used + refund_gas > self.gas_left() {
            return Ok(Err(Skip::NoGas));
        }
        let percent = order.order.refund().map_or(0, |r| r.percent);
        let net = |profit: U256| profit - profit * U256::from(percent) / U256::from(100);
        let mut seen = U256::ZERO;
        let judge = |profit: U256| {
            seen = net(profit);
            accept(seen)
        };
        let profit = match &order.order {
            Order::Tx(tx) => {
                match self
                    .builder
                    .execute_if(tx.tx.clone(), |trial| judge(trial.coinbase_profit))?
                {
                    Ok(outcome) => outcome.coinbase_profit,
                    Err(TxRejected::Refused) => return Ok(Err(Skip::Refused { profit: seen })),
                    Err(TxRejected::BlockGasExhausted { .. }) => return Ok(Err(Skip::NoGas)),
                    Err(_) => return Ok(Err(Skip::Invalid)),
                }
            }
            Order::Bundle(bundle) => {
                let b = &bundle.bundle;
                match self.builder.execute_bundle_if(
                    &b.txs,
                    |h| b.reverting.contains(h),
                    |h| b.dropping.contains(h),
                    judge,
                )? {
                    Ok(outcome) => outcome.coinbase_profit,
                    Err(BundleRejected::Refused) => {
                        return Ok(Err(Skip::Refused { profit: seen }));
                    }
                    Err(BundleRejected::GasExhausted { .. }) => return Ok(Err(Skip::NoGas)),
                    Err(_) => return Ok(Err(Skip::Invalid)),
                }
            }
        };
        if let Some(refund) = order.order.refund() {
            let owed = profit * U256::from(refund.percent) / U256::from(100);
            let recipient = refund
                .recipient
                .or_else(|| order.order.first_signer())
                .unwrap_or_default();
            self.pay(recipient, owed, TRANSFER_GAS)?;
        }
        self.orders.push(order.order.id());
        Ok(Ok(net(profit)))
    }

    /// Sends `total` (gas included) from the coinbase to `to`; nothing when the gas would eat it.
    fn pay(&mut self, to: Address, total: U256, gas_limit: u64) -> Result<U256, BuildError> {
        let cost = U256::from(gas_limit) * U256::from(self.builder.base_fee());
        if total <= cost {
            return Ok(U256::ZERO);
        }
        let value = total - cost;
        let tx = payout::transfer(
            &self.ctx.payout.coinbase,
            self.ctx.spec.chain_id(),
            self.coinbase_nonce,
            self.builder.base_fee(),
            gas_limit,
            to,
            value,
        )?;
        match self.builder.execute(tx)? {
            Ok(outcome) if outcome.success => {
                self.coinbase_nonce += 1;
                Ok(value)
            }
            Ok(_) => Err(BuildError::Payout(format!("payment to {to} reverted"))),
            Err(reason) => Err(BuildError::Payout(format!("payment to {to}: {reason}"))),
        }
    }

    /// Pays the proposer its share of the block's profit as the last transaction and seals.
    pub(crate) fn seal(mut self, algorithm: &'static str) -> Result<BuiltBlock, BuildError> {
        let coinbase = self.builder.coinbase();
        let profit = self
            .builder
            .balance(coinbase)?
            .saturating_sub(self.start_balance);
        let share = profit * U256::from(self.ctx.payout.bid_percent.min(100)) / U256::from(100);
        let gas = self.reserved;
        self.reserved = 0;
        let value = self.pay(self.ctx.payout.proposer_fee_recipient, share, gas)?;
        let block = self.builder.finish()?;
        Ok(BuiltBlock {
            block,
            value,
            profit,
            orders: self.orders,
            algorithm,
        })
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
