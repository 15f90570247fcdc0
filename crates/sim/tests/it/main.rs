//! Integration tests of the simulator on a devnet chain: nonce chains, bundle rules, access sets
//! for conflict detection, caching per head, and parallel runs matching sequential ones.

use std::sync::Arc;

use alloy_consensus::TxEnvelope;
use alloy_eips::Encodable2718;
use alloy_evm::EvmEnv;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256};
use alloy_rpc_types_mev::EthSendBundle;
use alloy_signer_local::PrivateKeySigner;
use cobuild_chain::{
    Chain, NextBlock, dev_signers, next_evm_env,
    test_utils::{ETHER, GWEI, devnet_chain, sign, transfer, tx},
};
use cobuild_pool::{PooledBundle, PooledTx};
use cobuild_primitives::INITIAL_BASE_FEE;
use cobuild_sim::{
    Order, SimRejected, Simulator, StateKey, simulate_order, simulate_order_without_access,
};
use revm::{DatabaseRef, database::CacheDB};

const COINBASE: Address = Address::repeat_byte(0xcb);

fn env(chain: &Chain) -> EvmEnv {
    let head = chain.head();
    next_evm_env(
        chain.spec(),
        &head,
        NextBlock {
            number: head.number + 1,
            timestamp: head.timestamp + 2,
            beneficiary: COINBASE,
            gas_limit: head.gas_limit,
            base_fee: head
                .next_block_base_fee(chain.spec().base_fee_params())
                .unwrap_or(INITIAL_BASE_FEE),
            prev_randao: B256::ZERO,
        },
    )
}

fn pooled(tx: alloy_consensus::transaction::Recovered<TxEnvelope>) -> Arc<PooledTx> {
    Arc::new(PooledTx::public(tx))
}

fn bundle(
    txs: &[alloy_consensus::transaction::Recovered<TxEnvelope>],
    reverting: &[B256],
) -> Arc<PooledBundle> {
    let request = EthSendBundle {
        txs: txs
            .iter()
            .map(|t| Bytes::from(t.inner().encoded_2718()))
            .collect(),
        block_number: 1,
        reverting_tx_hashes: reverting.to_vec(),
        ..Default::default()
    };
    let bundle = PooledBundle::from_request(Address::repeat_byte(0x5e), request)
        .expect("valid bundle")
        .expect("not a cancel");
    Arc::new(bundle)
}

/// Init code that reverts at once (PUSH1 0 PUSH1 0 REVERT).
fn reverting_create(
    signer: &PrivateKeySigner,
    nonce: u64,
) -> alloy_consensus::transaction::Recovered<TxEnvelope> {
    sign(
        signer,
        tx(
            nonce,
            TxKind::Create,
            U256::ZERO,
            Bytes::from_static(&[0x60, 0, 0x60, 0, 0xfd]),
            100_000,
            GWEI,
        ),
    )
}

#[test]
fn test_sender_chain_simulates_later_nonces_and_stops_at_a_gap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = devnet_chain(dir.path());
    let (_, state) = chain.head_state().expect("state");
    let alice = &dev_signers()[0];
    let to = Address::repeat_byte(0x77);
    let txs = [
        pooled(sign(alice, transfer(0, to, ETHER, GWEI))),
        pooled(sign(alice, transfer(1, to, ETHER, 2 * GWEI))),
        // Nonce 3 with 2 missing can never run on this head.
        pooled(sign(alice, transfer(3, to, ETHER, 3 * GWEI))),
    ];
    let mut sim = Simulator::new(0).expect("simulator");
    let round = sim
        .simulate(chain.head().hash(), &state, &env(&chain), &txs, &[])
        .expect("simulates");
    assert_eq!(round.orders.len(), 2);
    assert_eq!(round.rejected, 1);
    let second = round
        .orders
        .iter()
        .find(|o| o.order.id() == txs[1].hash)
        .expect("nonce 1 runs after nonce 0");
    assert_eq!(second.outcome.gas_used, 21_000);
    assert_eq!(
        second.outcome.coinbase_profit,
        U256::from(21_000 * 2 * GWEI),
        "the coinbase earns exactly the priority fee"
    );
    assert!(
        second
            .outcome
            .access
            .writes
            .contains(&StateKey::Account(to))
    );
    assert!(
        !second
            .outcome
            .access
            .reads
            .contains(&StateKey::Account(COINBASE)),
        "the coinbase is left out of access sets"
    );
}

#[test]
fn test_bundle_rules_and_direct_payments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = devnet_chain(dir.path());
    let (_, state) = chain.head_state().expect("state");
    let signers = dev_signers();
    let env = env(&chain);
    // A direct payment to the coinbase counts as profit.
    let paying = bundle(&[sign(&signers[1], transfer(0, COINBASE, ETHER, 0))], &[]);
    let mut db = CacheDB::new(&state);
    let outcome = simulate_order(&mut db, &env, &Order::Bundle(paying))
        .expect("state reads")
        .expect("bundle runs");
    assert_eq!(outcome.coinbase_profit, U256::from(ETHER));

    // A revert outside revertingTxHashes voids the bundle and leaves the state as it was.
    let reverting = reverting_create(&signers[2], 0);
    let hash = *reverting.tx_hash();
    let voided = bundle(
        &[
            sign(&signers[3], transfer(0, COINBASE, ETHER, 0)),
            reverting.clone(),
        ],
        &[],
    );
    let mut db = CacheDB::new(&state);
    let result = simulate_order(&mut db, &env, &Order::Bundle(voided)).expect("state reads");
    assert_eq!(result, Err(SimRejected::Reverted { hash }));
    let again = bundle(&[sign(&signers[3], transfer(0, COINBASE, ETHER, 0))], &[]);
    simulate_order(&mut db, &env, &Order::Bundle(again))
        .expect("state reads")
        .expect("the voided bundle used no nonce of signer 3");

    // Allowed to revert: it lands and still pays its gas.
    let allowed = bundle(&[reverting], &[hash]);
    let mut db = CacheDB::new(&state);
    let outcome = simulate_order(&mut db, &env, &Order::Bundle(allowed))
        .expect("state reads")
        .expect("reverting is allowed");
    assert_eq!(outcome.kept, vec![hash]);
}

#[test]
fn test_a_run_without_access_pays_uses_and_leaves_the_state_as_a_simulation_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = devnet_chain(dir.path());
    let (_, state) = chain.head_state().expect("state");
    let signers = dev_signers();
    let env = env(&chain);
    let to = Address::repeat_byte(0x42);
    let order = Order::Bundle(bundle(
        &[
            sign(&signers[1], transfer(0, to, ETHER, 2 * GWEI)),
            sign(&signers[1], transfer(1, COINBASE, ETHER, 0)),
        ],
        &[],
    ));
    let mut recorded = CacheDB::new(&state);
    let full = simulate_order(&mut recorded, &env, &order)
        .expect("state reads")
        .expect("bundle runs");
    let mut bare = CacheDB::new(&state);
    let lean = simulate_order_without_access(&mut bare, &env, &order)
        .expect("state reads")
        .expect("bundle runs");
    assert!(full.access.writes.contains(&StateKey::Account(to)));
    assert!(lean.access.reads.is_empty() && lean.access.writes.is_empty());
    assert_eq!(
        (lean.gas_used, lean.coinbase_profit, &lean.kept),
        (full.gas_used, full.coinbase_profit, &full.kept)
    );
    let balance = |db: &CacheDB<_>, who| db.basic_ref(who).expect("read").map(|a| a.balance);
    assert_eq!(balance(&bare, to), balance(&recorded, to));
    assert_eq!(balance(&bare, to), Some(U256::from(ETHER)));
    // The layer moved on: the bundle's nonces are used.
    let again = simulate_order_without_access(&mut bare, &env, &order).expect("state reads");
    assert!(
        matches!(again, Err(SimRejected::Invalid { .. })),
        "{again:?}"
    );
}

#[test]
fn test_access_sets_show_conflicts_between_orders_on_the_same_account() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = devnet_chain(dir.path());
    let (_, state) = chain.head_state().expect("state");
    let signers = dev_signers();
    let shared = Address::repeat_byte(0x99);
    let a = bundle(&[sign(&signers[1], transfer(0, shared, ETHER, GWEI))], &[]);
    let b = bundle(&[sign(&signers[2], transfer(0, shared, ETHER, GWEI))], &[]);
    let c = bundle(
        &[sign(
            &signers[3],
            transfer(0, Address::repeat_byte(0x98), ETHER, GWEI),
        )],
        &[],
    );
    let mut sim = Simulator::new(2).expect("simulator");
    let round = sim
        .simulate(
            chain.head().hash(),
            &state,
            &env(&chain),
            &[],
            &[a.clone(), b.clone(), c.clone()],
        )
        .expect("simulates");
    let find = |h: B256| {
        round
            .orders
            .iter()
            .find(|o| o.order.id() == h)
            .expect("simulated")
    };
    let (sa, sb, sc) = (find(a.id), find(b.id), find(c.id));
    assert!(
        sa.outcome.access.conflicts(&sb.outcome.access),
        "both credit the same account"
    );
    assert!(!sa.outcome.access.conflicts(&sc.outcome.access));
}

#[test]
fn test_cache_simulates_only_new_orders_until_the_head_moves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = devnet_chain(dir.path());
    let (_, state) = chain.head_state().expect("state");
    let signers = dev_signers();
    let to = Address::repeat_byte(0x55);
    let first = vec![pooled(sign(&signers[1], transfer(0, to, ETHER, GWEI)))];
    let bundles = vec![bundle(
        &[sign(&signers[2], transfer(0, to, ETHER, GWEI))],
        &[],
    )];
    let mut sim = Simulator::new(0).expect("simulator");
    let env = env(&chain);
    let parent = chain.head().hash();
    let round = sim
        .simulate(parent, &state, &env, &first, &bundles)
        .expect("simulates");
    assert_eq!((round.simulated, round.orders.len()), (2, 2));
    let round = sim
        .simulate(parent, &state, &env, &first, &bundles)
        .expect("simulates");
    assert_eq!(
        (round.simulated, round.orders.len()),
        (0, 2),
        "nothing new, nothing re-run"
    );
    let mut more = first.clone();
    more.push(pooled(sign(&signers[4], transfer(0, to, ETHER, GWEI))));
    let round = sim
        .simulate(parent, &state, &env, &more, &bundles)
        .expect("simulates");
    assert_eq!(
        (round.simulated, round.orders.len()),
        (1, 3),
        "only the new sender's chain"
    );
    let round = sim
        .simulate(B256::repeat_byte(1), &state, &env, &more, &[])
        .expect("simulates");
    assert_eq!(
        (round.simulated, round.orders.len()),
        (2, 2),
        "a new head re-runs everything left"
    );
}

/// A sender's chain that grows runs only its new transactions, on the state its earlier ones
/// left, and gives what a fresh simulation of the whole chain gives; a chain changed in the
/// middle runs again whole.
#[test]
fn test_a_growing_chain_runs_only_its_new_transactions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = devnet_chain(dir.path());
    let (_, state) = chain.head_state().expect("state");
    let alice = &dev_signers()[1];
    let to = Address::repeat_byte(0x55);
    // Each spends most of what is left, so a later nonce's outcome depends on the earlier ones.
    let txs: Vec<_> = (0..4)
        .map(|n| {
            pooled(sign(
                alice,
                transfer(n, to, 2_000 * ETHER, GWEI * (n as u128 + 1)),
            ))
        })
        .collect();
    let env = env(&chain);
    let parent = chain.head().hash();
    let mut sim = Simulator::new(0).expect("simulator");
    let round = sim
        .simulate(parent, &state, &env, &txs[..1], &[])
        .expect("simulates");
    assert_eq!((round.simulated, round.orders.len()), (1, 1));
    let round = sim
        .simulate(parent, &state, &env, &txs[..3], &[])
        .expect("simulates");
    assert_eq!(
        (round.simulated, round.orders.len()),
        (2, 3),
        "only nonces 1 and 2"
    );
    let round = sim
        .simulate(parent, &state, &env, &txs, &[])
        .expect("simulates");
    assert_eq!(
        (round.simulated, round.orders.len()),
        (1, 4),
        "only nonce 3"
    );
    let fresh = Simulator::new(0)
        .expect("simulator")
        .simulate(parent, &state, &env, &txs, &[])
        .expect("simulates");
    assert_eq!(round.orders, fresh.orders);
    // Nonce 4 cannot pay (the 10,000 ETH account has spent 8,000 and gas): the chain stops there.
    let mut broke = txs.clone();
    broke.push(pooled(sign(alice, transfer(4, to, 2_000 * ETHER, GWEI))));
    let round = sim
        .simulate(parent, &state, &env, &broke, &[])
        .expect("simulates");
    assert_eq!(
        (round.simulated, round.orders.len(), round.rejected),
        (1, 4, 1)
    );

    let mut replaced = txs[..3].to_vec();
    replaced[1] = pooled(sign(alice, transfer(1, to, ETHER, 7 * GWEI)));
    let round = sim
        .simulate(parent, &state, &env, &replaced, &[])
        .expect("simulates");
    assert_eq!(
        (round.simulated, round.orders.len()),
        (3, 3),
        "changed mid-chain: all again"
    );
}

#[test]
fn test_parallel_round_matches_sequential_round() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = devnet_chain(dir.path());
    let (_, state) = chain.head_state().expect("state");
    let signers = dev_signers();
    let mut txs = Vec::new();
    for (i, signer) in signers.iter().enumerate() {
        for nonce in 0..5 {
            let to = Address::with_last_byte(i as u8);
            txs.push(pooled(sign(
                signer,
                transfer(nonce, to, ETHER, GWEI * (nonce as u128 + 1)),
            )));
        }
    }
    let env = env(&chain);
    let parent = chain.head().hash();
    let sequential = Simulator::new(0)
        .expect("simulator")
        .simulate(parent, &state, &env, &txs, &[])
        .expect("simulates");
    let parallel = Simulator::new(2)
        .expect("simulator")
        .simulate(parent, &state, &env, &txs, &[])
        .expect("simulates");
    assert_eq!(sequential.orders.len(), 50);
    assert_eq!(sequential.orders, parallel.orders);
}
