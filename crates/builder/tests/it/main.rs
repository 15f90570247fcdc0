//! Integration tests of the building algorithms on a devnet chain: ordering, nonce chains,
//! conflicting bundles, refunds, the proposer payment, and blocks that re-import (and replay on
//! anvil).

mod anvil;

use std::sync::{Arc, atomic::AtomicBool};

use alloy_consensus::{Transaction as _, TxEnvelope, transaction::Recovered};
use alloy_eips::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256};
use alloy_rpc_types_mev::EthSendBundle;
use alloy_signer_local::PrivateKeySigner;
use cobuild_builder::{
    Algorithm, BuildContext, BuildError, BuiltBlock, ConflictSearch, Greedy, GreedyBlock,
    GreedyByProfit, Payout, build_best,
};
use cobuild_chain::{
    Chain, dev_signers,
    test_utils::{ETHER, GWEI, balance, devnet_chain, next_attrs, sign, transfer, tx},
};
use cobuild_pool::{PooledBundle, PooledTx};
use cobuild_sim::{SimulatedOrder, Simulator};

const PROPOSER: Address = Address::repeat_byte(0xfe);

fn coinbase_key() -> PrivateKeySigner {
    PrivateKeySigner::from_bytes(&B256::repeat_byte(0x42)).expect("valid key")
}

fn context(chain: &Chain) -> BuildContext {
    let coinbase = coinbase_key();
    let (parent, state) = chain.head_state().expect("state");
    BuildContext {
        spec: chain.spec().clone(),
        parent,
        state,
        attrs: next_attrs(chain, coinbase.address()),
        payout: Payout {
            coinbase,
            proposer_fee_recipient: PROPOSER,
            bid_percent: 100,
        },
    }
}

fn pooled(tx: Recovered<TxEnvelope>) -> Arc<PooledTx> {
    Arc::new(PooledTx::public(tx))
}

fn bundle(txs: &[Recovered<TxEnvelope>], refund_percent: Option<u8>) -> Arc<PooledBundle> {
    bundle_refunding(txs, refund_percent, None)
}

fn bundle_refunding(
    txs: &[Recovered<TxEnvelope>],
    refund_percent: Option<u8>,
    refund_recipient: Option<Address>,
) -> Arc<PooledBundle> {
    let request = EthSendBundle {
        txs: txs
            .iter()
            .map(|t| Bytes::from(t.inner().encoded_2718()))
            .collect(),
        block_number: 1,
        refund_percent,
        refund_recipient,
        ..Default::default()
    };
    let bundle = PooledBundle::from_request(Address::repeat_byte(0x5e), request)
        .expect("valid bundle")
        .expect("not a cancel");
    Arc::new(bundle)
}

fn simulate(
    ctx: &BuildContext,
    txs: &[Arc<PooledTx>],
    bundles: &[Arc<PooledBundle>],
) -> Vec<Arc<SimulatedOrder>> {
    let round = Simulator::new(0)
        .expect("simulator")
        .simulate(ctx.parent.hash(), &ctx.state, &ctx.evm_env(), txs, bundles)
        .expect("simulates");
    assert_eq!(round.rejected, 0, "every test order is valid on the head");
    round.orders
}

fn hashes(built: &BuiltBlock) -> Vec<B256> {
    built
        .block
        .block
        .block
        .body
        .transactions
        .iter()
        .map(|t| *t.tx_hash())
        .collect()
}

/// The block's last transaction must pay the proposer exactly the bid (invariant "honest value").
fn assert_pays_bid(built: &BuiltBlock) {
    let last = built
        .block
        .block
        .block
        .body
        .transactions
        .last()
        .expect("a payment");
    assert_eq!(last.to(), Some(PROPOSER));
    assert_eq!(last.value(), built.value);
    assert_eq!(
        built.block.block.senders.last(),
        Some(&coinbase_key().address())
    );
}

#[test]
fn test_greedy_orders_by_profit_per_gas_and_pays_the_proposer_the_bid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = devnet_chain(dir.path());
    let ctx = context(&chain);
    let s = dev_signers();
    let to = Address::repeat_byte(0x77);
    let low = pooled(sign(&s[1], transfer(0, to, ETHER, GWEI)));
    let high = pooled(sign(&s[2], transfer(0, to, ETHER, 5 * GWEI)));
    let paying = bundle(
        &[sign(
            &s[3],
            transfer(0, ctx.attrs.fee_recipient, ETHER / 10, 0),
        )],
        None,
    );
    let orders = simulate(
        &ctx,
        &[low.clone(), high.clone()],
        std::slice::from_ref(&paying),
    );
    let built = Greedy.build(&ctx, &orders).expect("builds");

    let block_txs = hashes(&built);
    assert_eq!(block_txs.len(), 4);
    assert_eq!(
        &block_txs[..3],
        &[*paying.bundle.txs[0].tx_hash(), high.hash, low.hash]
    );
    let base_fee = built.block.header().base_fee_per_gas.expect("base fee");
    let profit = U256::from(ETHER / 10 + 21_000 * 5 * GWEI + 21_000 * GWEI);
    assert_eq!(built.profit, profit);
    assert_eq!(built.value, profit - U256::from(21_000 * base_fee));
    assert_pays_bid(&built);

    // The sealed block is valid: it re-executes to the same roots, and the proposer is paid.
    chain
        .import(built.block.block.block.clone())
        .expect("block re-imports");
    assert_eq!(balance(&chain, PROPOSER), built.value);
}

#[test]
fn test_greedy_keeps_nonce_order_when_later_nonces_pay_more() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = devnet_chain(dir.path());
    let ctx = context(&chain);
    let alice = &dev_signers()[1];
    let to = Address::repeat_byte(0x66);
    let txs: Vec<_> = (0..3)
        .map(|n| {
            pooled(sign(
                alice,
                transfer(n, to, ETHER, GWEI * (1 + 10 * n as u128)),
            ))
        })
        .collect();
    let orders = simulate(&ctx, &txs, &[]);
    let built = Greedy.build(&ctx, &orders).expect("builds");
    let want: Vec<B256> = txs.iter().map(|t| t.hash).collect();
    assert_eq!(&hashes(&built)[..3], &want[..], "all three, in nonce order");
    chain
        .import(built.block.block.block.clone())
        .expect("block re-imports");
}

/// A growing greedy block adds each call's new orders after those it holds, seals copies while
/// it grows, runs a transaction that waited a call for its earlier nonce, and forgets a waiting
/// transaction that is no longer offered (replaced).
#[test]
fn test_a_growing_greedy_block_adds_new_orders_after_the_ones_it_holds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = devnet_chain(dir.path());
    let ctx = context(&chain);
    let s = dev_signers();
    let to = Address::repeat_byte(0x55);
    let alice0 = pooled(sign(&s[1], transfer(0, to, ETHER, 5 * GWEI)));
    let alice1 = pooled(sign(&s[1], transfer(1, to, ETHER, 20 * GWEI)));
    let alice1_replacement = pooled(sign(&s[1], transfer(1, to, 2 * ETHER, 2 * GWEI)));
    let low = pooled(sign(&s[2], transfer(0, to, ETHER, GWEI)));
    let high = pooled(sign(&s[3], transfer(0, to, ETHER, 9 * GWEI)));
    let first = simulate(
        &ctx,
        &[alice0.clone(), alice1.clone(), low.clone(), high.clone()],
        &[],
    );
    let replaced = simulate(&ctx, &[alice0.clone(), alice1_replacement.clone()], &[]);
    let pick = |orders: &[Arc<SimulatedOrder>], tx: &Arc<PooledTx>| {
        orders
            .iter()
            .find(|o| o.order.id() == tx.hash)
            .cloned()
            .expect("simulated")
    };

    let mut block = GreedyBlock::new(&ctx).expect("opens");
    // Alice's nonce 1 comes before her nonce 0: it waits.
    let new = block
        .extend(&[pick(&first, &alice1), pick(&first, &low)])
        .expect("extends");
    assert_eq!(new, 2);
    assert_eq!(block.orders(), &[low.hash]);
    let early = block.seal().expect("seals a copy");
    assert_eq!(&hashes(&early)[..1], &[low.hash]);

    // Her nonce 0 arrives with a richer order, and her nonce 1 was replaced by a cheaper one.
    let now = [
        pick(&first, &alice0),
        pick(&replaced, &alice1_replacement),
        pick(&first, &low),
        pick(&first, &high),
    ];
    assert_eq!(
        block.extend(&now).expect("extends"),
        3,
        "low was offered before"
    );
    let want = [low.hash, high.hash, alice0.hash, alice1_replacement.hash];
    assert_eq!(block.orders(), &want);
    let late = block.seal().expect("seals a copy");
    assert_eq!(&hashes(&late)[..4], &want);
    assert_pays_bid(&late);
    assert_eq!(
        &hashes(&early)[..1],
        &[low.hash],
        "an earlier copy is untouched"
    );
    // Built at once, the richer order would come first: the growing block trades that for
    // not running the earlier orders again.
    let fresh = Greedy.build(&ctx, &now).expect("builds");
    assert_eq!(hashes(&fresh)[0], high.hash);
    chain
        .import(late.block.block.block.clone())
        .expect("the grown block re-imports");
}

#[test]
fn test_conflict_search_takes_the_richer_of_two_conflicting_bundles() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = devnet_chain(dir.path());
    let ctx = context(&chain);
    let s = dev_signers();
    let coinbase = ctx.attrs.fee_recipient;
    // Both bundles spend the same nonce of signer 1, so at most one can land. The cheap one pays
    // more per gas; the rich one pays five times as much in total but burns gas on calldata.
    let cheap = bundle(&[sign(&s[1], transfer(0, coinbase, ETHER / 10, 0))], None);
    let heavy = tx(
        0,
        TxKind::Call(Address::repeat_byte(0x11)),
        U256::ZERO,
        Bytes::from(vec![1u8; 4000]),
        250_000,
        0,
    );
    let rich = bundle(
        &[
            sign(&s[1], transfer(0, coinbase, ETHER / 2, 0)),
            sign(&s[2], heavy),
        ],
        None,
    );
    let orders = simulate(&ctx, &[], &[cheap.clone(), rich.clone()]);
    let greedy = Greedy.build(&ctx, &orders).expect("greedy builds");
    let search = ConflictSearch::default()
        .build(&ctx, &orders)
        .expect("search builds");
    assert_eq!(
        greedy.orders,
        vec![cheap.id],
        "greedy takes the best per gas"
    );
    assert_eq!(
        search.orders,
        vec![rich.id],
        "the search takes the richer bundle"
    );
    assert!(search.value > greedy.value * U256::from(4));
    // Greedy by profit takes the richer one too, without trying orderings.
    let by_profit = GreedyByProfit.build(&ctx, &orders).expect("builds");
    assert_eq!(by_profit.algorithm, "greedy-profit");
    assert_eq!(by_profit.orders, vec![rich.id]);
    assert_eq!(by_profit.value, search.value);
    assert_pays_bid(&by_profit);

    let best = build_best(&ctx, &orders, &[&Greedy, &ConflictSearch::default()]).expect("builds");
    assert_eq!(best.algorithm, "conflict-search");
    assert_eq!(best.value, search.value);
    assert_pays_bid(&best);
    chain
        .import(best.block.block.block.clone())
        .expect("block re-imports");
    assert_eq!(balance(&chain, PROPOSER), best.value);
}

#[test]
fn test_a_cancelled_conflict_search_gives_up_and_an_open_one_builds_as_usual() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = devnet_chain(dir.path());
    let ctx = context(&chain);
    let s = dev_signers();
    let coinbase = ctx.attrs.fee_recipient;
    // Two bundles on one nonce: a group the search has to try orderings for.
    let a = bundle(&[sign(&s[1], transfer(0, coinbase, ETHER / 10, 0))], None);
    let b = bundle(&[sign(&s[1], transfer(0, coinbase, ETHER / 5, 0))], None);
    let orders = simulate(&ctx, &[], &[a, b.clone()]);
    let search = ConflictSearch::default();

    let open = AtomicBool::new(false);
    let built = search.build_until(&ctx, &orders, &open).expect("builds");
    assert_eq!(built.orders, vec![b.id]);
    let usual = search.build(&ctx, &orders).expect("builds");
    assert_eq!(built.block.block.hash, usual.block.block.hash);

    let cancelled = AtomicBool::new(true);
    assert!(matches!(
        search.build_until(&ctx, &orders, &cancelled),
        Err(BuildError::Cancelled)
    ));
}

#[test]
fn test_refund_percent_is_paid_to_the_sender_in_the_same_block() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = devnet_chain(dir.path());
    let ctx = context(&chain);
    let searcher = &dev_signers()[4];
    let refunded = bundle(
        &[sign(
            searcher,
            transfer(0, ctx.attrs.fee_recipient, ETHER, 0),
        )],
        Some(40),
    );
    let orders = simulate(&ctx, &[], std::slice::from_ref(&refunded));
    let built = Greedy.build(&ctx, &orders).expect("builds");
    let txs = &built.block.block.block.body.transactions;
    assert_eq!(txs.len(), 3, "bundle, refund, payment");
    let base_fee = built.block.header().base_fee_per_gas.expect("base fee");
    let refund = &txs[1];
    assert_eq!(refund.to(), Some(searcher.address()));
    assert_eq!(
        refund.value(),
        U256::from(ETHER * 40 / 100 - 21_000 * u128::from(base_fee)),
        "40% of the bundle's payment, less the refund's own gas"
    );
    assert_eq!(built.profit, U256::from(ETHER * 60 / 100));
    assert_pays_bid(&built);
    chain
        .import(built.block.block.block.clone())
        .expect("block re-imports");
}

#[test]
fn test_a_refund_the_recipient_refuses_costs_the_refund_not_the_block() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = devnet_chain(dir.path());
    let ctx = context(&chain);
    let searcher = &dev_signers()[4];
    // The EIP-4788 contract reverts on any call but the system's: a refund to it must fail.
    let refusing = alloy_primitives::address!("0x000F3df6D732807Ef1319fB7B8bB8522d0Beac02");
    let order = bundle_refunding(
        &[sign(
            searcher,
            transfer(0, ctx.attrs.fee_recipient, ETHER, 0),
        )],
        Some(40),
        Some(refusing),
    );
    let orders = simulate(&ctx, &[], std::slice::from_ref(&order));
    let built = build_best(&ctx, &orders, &[&Greedy, &ConflictSearch::default()])
        .expect("the block is built all the same");
    assert_eq!(built.orders, vec![order.id]);
    let txs = &built.block.block.block.body.transactions;
    assert_eq!(txs[1].to(), Some(refusing), "the refund was attempted");
    assert!(
        !built.block.receipts[1].status(),
        "and refused by the recipient"
    );
    assert_pays_bid(&built);
    chain
        .import(built.block.block.block.clone())
        .expect("block re-imports");
}

#[test]
fn test_a_coinbase_transaction_from_outside_is_never_included() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = devnet_chain(dir.path());
    let ctx = context(&chain);
    // Someone holding the coinbase key sends from it: it would take the nonce the refunds and
    // the payment need.
    let from_coinbase = pooled(sign(&coinbase_key(), transfer(0, PROPOSER, 0, GWEI)));
    let paying = bundle(
        &[sign(
            &dev_signers()[1],
            transfer(0, ctx.attrs.fee_recipient, ETHER, 0),
        )],
        None,
    );
    let mut orders = simulate(&ctx, &[], std::slice::from_ref(&paying));
    // The coinbase has nothing at the head, so simulation alone would drop its transaction; once
    // the bundle paid it, the transaction could run. Offer it as if simulated.
    orders.push(Arc::new(SimulatedOrder {
        order: cobuild_sim::Order::Tx(from_coinbase.clone()),
        outcome: cobuild_sim::SimOutcome {
            gas_used: 21_000,
            coinbase_profit: U256::ZERO,
            kept: vec![from_coinbase.hash],
            access: Default::default(),
        },
    }));
    for algorithm in [&Greedy as &dyn Algorithm, &ConflictSearch::default()] {
        let built = algorithm.build(&ctx, &orders).expect("builds");
        assert_eq!(built.orders, vec![paying.id], "{}", algorithm.name());
        assert_pays_bid(&built);
    }
}

#[test]
fn test_an_order_invalidated_by_an_earlier_one_is_left_out_of_a_valid_block() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = devnet_chain(dir.path());
    let ctx = context(&chain);
    let alice = &dev_signers()[5];
    let to = Address::repeat_byte(0x44);
    // The same nonce twice: the public tx pays more per gas and goes first; the bundle then fails
    // on its real (not simulated) state and must leave no trace.
    let public = pooled(sign(alice, transfer(0, to, ETHER, 50 * GWEI)));
    let stale = bundle(&[sign(alice, transfer(0, to, 2 * ETHER, GWEI))], None);
    let orders = simulate(&ctx, std::slice::from_ref(&public), &[stale]);
    for algorithm in [&Greedy as &dyn Algorithm, &ConflictSearch::default()] {
        let built = algorithm.build(&ctx, &orders).expect("builds");
        assert_eq!(built.orders, vec![public.hash], "{}", algorithm.name());
    }
    let built = Greedy.build(&ctx, &orders).expect("builds");
    chain
        .import(built.block.block.block.clone())
        .expect("block re-imports");
}

#[test]
fn test_empty_pool_builds_an_empty_block_without_a_payment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = devnet_chain(dir.path());
    let ctx = context(&chain);
    let built = Greedy.build(&ctx, &[]).expect("builds");
    assert_eq!(built.value, U256::ZERO);
    assert!(built.block.block.block.body.transactions.is_empty());
}
