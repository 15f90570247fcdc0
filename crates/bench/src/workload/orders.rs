//! The pending orders: who sends what, with which nonce, fee and amount, drawn from the seed.
//!
//! Drawing happens in two steps on one generator. The [`Plan`] (kinds in pool order, senders,
//! searchers and their arbitrage sizes) comes first, because the setup blocks must hand out the
//! tokens the orders will spend. The signed orders come after setup, because swaps quote their
//! minimum output from the pool reserves the setup left.

use std::sync::Arc;

use alloy_consensus::{TxEnvelope, transaction::Recovered};
use alloy_eips::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_rpc_types_mev::EthSendBundle;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::SolCall;
use cobuild_contracts::{IPool, IToken};
use cobuild_pool::{PooledBundle, PooledTx};

use super::{
    Mix, OrderKind, WorkloadConfig, WorkloadError,
    setup::{
        GWEI, Grant, SEARCHER_ETH, UNIT, USER_ETH, USER_TOKENS, account_key, coinbase_key, sign,
    },
};
use crate::Rng;

/// Gas limit of token transfers (a new recipient slot costs ~51k).
const TOKEN_TRANSFER_GAS: u64 = 80_000;
/// Gas limit of swaps (~75-100k used).
const SWAP_GAS: u64 = 200_000;
/// Gas of a plain transfer.
const TRANSFER_GAS: u64 = 21_000;
/// Tolerance of an arbitrage's minimum output, in basis points: tight enough that any other
/// arbitrage in the same direction before it makes it revert.
const ARB_TOLERANCE_BPS: u64 = 2;

/// A searcher's arbitrage, fixed before setup so the searcher can be given its input tokens.
#[derive(Debug, Clone)]
struct Arb {
    /// Sells token A (else token B).
    sells_a: bool,
    /// Input, in whole tokens.
    amount: u128,
    /// The bid paid to the coinbase, in wei.
    bid: u128,
}

/// Kinds in pool order, and the accounts the orders need.
#[derive(Debug)]
pub(crate) struct Plan {
    kinds: Vec<OrderKind>,
    users: Vec<PrivateKeySigner>,
    /// One searcher per bundle, in pool order, with its arbitrage.
    searchers: Vec<(PrivateKeySigner, Arb)>,
    pub(crate) mix: Mix,
}

impl Plan {
    /// Draws the kinds and the accounts.
    pub(crate) fn draw(config: &WorkloadConfig, rng: &mut Rng) -> Self {
        let mix = Mix::split(config.orders, &config.shares);
        let mut kinds = Vec::with_capacity(config.orders);
        for kind in OrderKind::ALL {
            kinds.extend(std::iter::repeat_n(kind, mix.count(kind)));
        }
        rng.shuffle(&mut kinds);
        let txs = config.orders - mix.bundles();
        let users = txs.div_ceil(config.txs_per_sender.max(1)).max(1);
        let users = (0..users).map(|i| account_key("user", i)).collect();
        let searchers = kinds
            .iter()
            .filter(|k| k.is_bundle())
            .enumerate()
            .map(|(i, _)| {
                let arb = Arb {
                    sells_a: rng.chance(500),
                    amount: u128::from(rng.range(50, 300)),
                    bid: u128::from(rng.range(1, 50)) * 1_000_000 * GWEI,
                };
                (account_key("searcher", i), arb)
            })
            .collect();
        Self {
            kinds,
            users,
            searchers,
            mix,
        }
    }

    /// What the setup must give each account.
    pub(crate) fn grants(&self) -> Vec<Grant> {
        let users = self.users.iter().map(|signer| Grant {
            signer: signer.clone(),
            eth: USER_ETH,
            tokens: [USER_TOKENS; 2],
        });
        let searchers = self.searchers.iter().map(|(signer, arb)| {
            let amount = arb.amount * UNIT;
            Grant {
                signer: signer.clone(),
                eth: SEARCHER_ETH,
                tokens: if arb.sells_a {
                    [amount, 0]
                } else {
                    [0, amount]
                },
            }
        });
        users.chain(searchers).collect()
    }
}

/// The chain facts orders depend on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Market {
    pub(crate) token_a: Address,
    pub(crate) token_b: Address,
    pub(crate) pool: Address,
    /// Reserves of token A and token B.
    pub(crate) reserves: (U256, U256),
    /// The block the orders are for.
    pub(crate) block_number: u64,
}

impl Market {
    /// `Pool.quote`: the output of swapping `amount_in` at the current reserves, 0.3 % fee.
    fn quote(&self, sells_a: bool, amount_in: U256) -> U256 {
        let (r_in, r_out) = if sells_a {
            self.reserves
        } else {
            (self.reserves.1, self.reserves.0)
        };
        let in_with_fee = amount_in * U256::from(9_970);
        in_with_fee * r_out / (r_in * U256::from(10_000) + in_with_fee)
    }

    fn token(&self, a: bool) -> Address {
        if a { self.token_a } else { self.token_b }
    }
}

/// The generated pool.
#[derive(Debug)]
pub(crate) struct Orders {
    pub(crate) txs: Vec<Arc<PooledTx>>,
    pub(crate) bundles: Vec<Arc<PooledBundle>>,
    /// Every order's id (tx or bundle hash) with its kind, in pool order.
    pub(crate) kinds: Vec<(B256, OrderKind)>,
    /// The signed transactions in pool order, bundles flattened in place (EIP-2718 bytes).
    pub(crate) canonical: Vec<Bytes>,
}

/// A priority fee between 0.01 and 90 gwei, spread over four decades like mainnet tips.
fn tip(rng: &mut Rng) -> u128 {
    let decade = 10u128.pow(rng.below(4) as u32);
    decade * u128::from(rng.range(1, 9)) * 10_000_000
}

/// A recipient: another user half of the time, a fresh address otherwise.
fn recipient(rng: &mut Rng, users: &[PrivateKeySigner]) -> Address {
    if rng.chance(500) {
        users[rng.below(users.len() as u64) as usize].address()
    } else {
        Address::from_word(B256::from(
            U256::from(rng.next_u64()) + U256::from(1u64 << 40),
        ))
    }
}

/// An amount of tokens between 0.5 and 5 whole tokens.
fn token_amount(rng: &mut Rng) -> U256 {
    U256::from(u128::from(rng.range(50, 500)) * UNIT / 100)
}

/// Signs every order of `plan` for `market`.
pub(crate) fn generate(
    plan: &Plan,
    market: &Market,
    rng: &mut Rng,
) -> Result<Orders, WorkloadError> {
    let users = &plan.users;
    // Users approved both tokens at setup: their pool orders start at nonce 2.
    let mut nonces = vec![2u64; users.len()];
    let mut searchers = plan.searchers.iter();
    let coinbase = coinbase_key().address();
    let mut out = Orders {
        txs: Vec::new(),
        bundles: Vec::new(),
        kinds: Vec::with_capacity(plan.kinds.len()),
        canonical: Vec::new(),
    };
    for &kind in &plan.kinds {
        if kind.is_bundle() {
            let (searcher, arb) = searchers
                .next()
                .expect("the plan draws one searcher per bundle");
            let bundle = arbitrage(kind, searcher, arb, market, coinbase)?;
            out.canonical.extend(bundle.bundle.txs.iter().map(encode));
            out.kinds.push((bundle.id, kind));
            out.bundles.push(bundle);
            continue;
        }
        // Half the orders come from a few busy senders, half from anyone.
        let n = users.len() as u64;
        let index = if rng.chance(500) {
            rng.skewed(n)
        } else {
            rng.below(n)
        } as usize;
        let user = &users[index];
        let nonce = nonces[index];
        nonces[index] += 1;
        let tip = tip(rng);
        let (to, input, gas) = match kind {
            OrderKind::EthTransfer => {
                let value = U256::from(u128::from(rng.range(1, 500)) * UNIT / 1000);
                let to = recipient(rng, users);
                let tx = sign(user, nonce, to, value, Bytes::new(), TRANSFER_GAS, tip)?;
                push_tx(&mut out, kind, tx);
                continue;
            }
            OrderKind::TokenTransfer => {
                let token = market.token(rng.chance(500));
                let input = IToken::transferCall {
                    to: recipient(rng, users),
                    value: token_amount(rng),
                }
                .abi_encode();
                (token, input, TOKEN_TRANSFER_GAS)
            }
            // Swaps (bundles were handled above).
            _ => {
                let sells_a = rng.chance(500);
                let amount_in = token_amount(rng);
                let min_out = if kind == OrderKind::RevertingSwap {
                    amount_in * U256::from(2)
                } else {
                    let tolerance = [50u64, 100, 300][rng.below(3) as usize];
                    market.quote(sells_a, amount_in) * U256::from(10_000 - tolerance)
                        / U256::from(10_000)
                };
                let input = IPool::swapCall {
                    tokenIn: market.token(sells_a),
                    amountIn: amount_in,
                    minAmountOut: min_out,
                }
                .abi_encode();
                (market.pool, input, SWAP_GAS)
            }
        };
        let tx = sign(user, nonce, to, U256::ZERO, input.into(), gas, tip)?;
        push_tx(&mut out, kind, tx);
    }
    Ok(out)
}

fn push_tx(out: &mut Orders, kind: OrderKind, tx: Recovered<TxEnvelope>) {
    out.canonical.push(encode(&tx));
    out.kinds.push((*tx.tx_hash(), kind));
    out.txs.push(Arc::new(PooledTx::public(tx)));
}

fn encode(tx: &Recovered<TxEnvelope>) -> Bytes {
    Bytes::from(tx.inner().encoded_2718())
}

/// A searcher's bundle: the swap (nonce 1, after its approval), then the bid to the coinbase.
fn arbitrage(
    kind: OrderKind,
    searcher: &PrivateKeySigner,
    arb: &Arb,
    market: &Market,
    coinbase: Address,
) -> Result<Arc<PooledBundle>, WorkloadError> {
    let amount_in = U256::from(arb.amount * UNIT);
    let min_out = if kind == OrderKind::ArbitrageVoid {
        amount_in * U256::from(2)
    } else {
        market.quote(arb.sells_a, amount_in) * U256::from(10_000 - ARB_TOLERANCE_BPS)
            / U256::from(10_000)
    };
    let input = IPool::swapCall {
        tokenIn: market.token(arb.sells_a),
        amountIn: amount_in,
        minAmountOut: min_out,
    }
    .abi_encode();
    let swap = sign(
        searcher,
        1,
        market.pool,
        U256::ZERO,
        input.into(),
        SWAP_GAS,
        0,
    )?;
    let bid = sign(
        searcher,
        2,
        coinbase,
        U256::from(arb.bid),
        Bytes::new(),
        TRANSFER_GAS,
        0,
    )?;
    let reverting_tx_hashes = if kind == OrderKind::ArbitrageMayRevert {
        vec![*swap.tx_hash()]
    } else {
        Vec::new()
    };
    let request = EthSendBundle {
        txs: vec![encode(&swap), encode(&bid)],
        block_number: market.block_number,
        reverting_tx_hashes,
        ..Default::default()
    };
    PooledBundle::from_request(searcher.address(), request)?
        .map(Arc::new)
        .ok_or_else(|| {
            WorkloadError::Setup("a bundle with transactions decoded as a cancel".into())
        })
}
