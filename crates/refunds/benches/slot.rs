//! The refunds of one slot against one replay of its block.
//!
//! The block holds 50 identities' bundles, each a transfer to the coinbase; ten more bundles
//! that did not land each spend the nonce of two of them (so leaving either out is not enough
//! to let it in): thirty interacting pairs, 81 passes in all. `replay` executes the block's orders once, the
//! baseline; `refunds` is everything a member does for the slot: one pass with every order, one
//! without each identity, one without each interacting pair, the rule and the per-order split.
//! Besides criterion's estimates, p50 and p99 of each and their ratio are printed.

use std::{collections::BTreeMap, time::Duration};

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope, transaction::Recovered};
use alloy_primitives::{Address, Bytes, TxKind, U256, keccak256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use cobuild_chain::{BlockAttributes, Chain, Genesis, GenesisAccount};
use cobuild_primitives::{
    Allowed, ChainSpec, DEFAULT_GAS_LIMIT, DEVNET_CHAIN_ID, INITIAL_BASE_FEE,
};
use cobuild_refunds::{Landed, refunds, replay, split};
use criterion::{Criterion, criterion_group, criterion_main};

const IDENTITIES: usize = 50;
const BLOCKED: usize = 10;

fn key(i: usize) -> PrivateKeySigner {
    PrivateKeySigner::from_bytes(&keccak256(U256::from(i + 1).to_be_bytes::<32>())).expect("a key")
}

fn pay(signer: &PrivateKeySigner, coinbase: Address, value: u64) -> Recovered<TxEnvelope> {
    let tx = TxEip1559 {
        chain_id: DEVNET_CHAIN_ID,
        nonce: 0,
        gas_limit: 21_000,
        max_fee_per_gas: 10_000_000_000,
        max_priority_fee_per_gas: 0,
        to: TxKind::Call(coinbase),
        value: U256::from(value),
        access_list: Default::default(),
        input: Bytes::new(),
    };
    let signature = signer.sign_hash_sync(&tx.signature_hash()).expect("signs");
    Recovered::new_unchecked(tx.into_signed(signature).into(), signer.address())
}

fn order(n: usize, txs: Vec<Recovered<TxEnvelope>>) -> Landed<usize> {
    Landed {
        key: n,
        identity: Some(Address::with_last_byte(n as u8)),
        txs,
        rules: Allowed::default(),
        in_block_refund: 0,
    }
}

struct Slot {
    chain: Chain,
    _dir: tempfile::TempDir,
    landed: Vec<Landed<usize>>,
    candidates: Vec<Landed<usize>>,
}

fn slot() -> Slot {
    let coinbase = Address::repeat_byte(0xcb);
    let mut genesis = Genesis::devnet(DEFAULT_GAS_LIMIT, INITIAL_BASE_FEE);
    let funded: BTreeMap<Address, GenesisAccount> = (0..IDENTITIES)
        .map(|i| {
            let account = GenesisAccount {
                balance: U256::from(10u64).pow(U256::from(20)),
                ..Default::default()
            };
            (key(i).address(), account)
        })
        .collect();
    genesis.accounts.extend(funded);
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = Chain::open(
        &dir.path().join("chain.redb"),
        std::sync::Arc::new(ChainSpec::devnet(DEVNET_CHAIN_ID)),
        &genesis,
    )
    .expect("chain");
    let landed: Vec<Landed<usize>> = (0..IDENTITIES)
        .map(|i| order(i, vec![pay(&key(i), coinbase, 1_000 + i as u64)]))
        .collect();
    let candidates = (0..BLOCKED)
        .map(|j| {
            let txs = vec![
                pay(&key(2 * j), coinbase, 3_000),
                pay(&key(2 * j + 1), coinbase, 3_000),
            ];
            order(IDENTITIES + j, txs)
        })
        .collect();
    let attrs = |chain: &Chain| BlockAttributes {
        timestamp: chain.head().timestamp + 2,
        fee_recipient: coinbase,
        prev_randao: Default::default(),
        gas_limit: chain.head().gas_limit,
        withdrawals: Vec::new(),
        parent_beacon_block_root: Default::default(),
        extra_data: Bytes::new(),
    };
    let mut block = chain.builder(attrs(&chain)).expect("builder");
    for o in &landed {
        block
            .execute_bundle(&o.txs, &o.rules)
            .expect("no fatal")
            .expect("lands");
    }
    chain
        .commit(&block.finish().expect("sealed"))
        .expect("commit");
    let next = chain.builder(attrs(&chain)).expect("builder");
    chain
        .commit(&next.finish().expect("sealed"))
        .expect("commit");
    Slot {
        chain,
        _dir: dir,
        landed,
        candidates,
    }
}

fn refunds_of(slot: &Slot) {
    let (figures, full, orders) =
        replay::figures(&slot.chain, 1, &slot.landed, &slot.candidates, U256::ZERO)
            .expect("replays");
    let refunds = refunds(&figures).expect("the rule applies");
    for (identity, amount) in &refunds.refunds {
        let paid: Vec<(usize, U256)> = orders
            .iter()
            .zip(&full.paid)
            .filter(|(o, _)| o.identity == Some(*identity))
            .map(|(o, p)| (o.key, *p))
            .collect();
        std::hint::black_box(split(*amount, &paid));
    }
    // Each blocked bundle's two, and each of them with the blocked bundle's own identity.
    assert_eq!(figures.joint.len(), 3 * BLOCKED, "interacting pairs");
}

fn replay_once(slot: &Slot) {
    let pass = replay::pass(&slot.chain, 1, &slot.landed, |_| false).expect("replays");
    std::hint::black_box(pass);
}

fn percentiles(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.50), at(0.99))
}

fn bench(c: &mut Criterion) {
    let slot = slot();
    let mut group = c.benchmark_group("slot_refunds");
    group.sample_size(20);
    group.bench_function("replay", |b| b.iter(|| replay_once(&slot)));
    group.bench_function("refunds", |b| b.iter(|| refunds_of(&slot)));
    group.finish();
    // Interleaved, so both see the same machine.
    let (mut replays, mut computed) = (Vec::new(), Vec::new());
    for _ in 0..100 {
        let start = std::time::Instant::now();
        replay_once(&slot);
        replays.push(start.elapsed());
        let start = std::time::Instant::now();
        refunds_of(&slot);
        computed.push(start.elapsed());
    }
    let (r50, r99) = percentiles(&mut replays);
    let (f50, f99) = percentiles(&mut computed);
    println!(
        "one replay of the block: p50 {r50:?} p99 {r99:?}\n\
         refunds of the slot:     p50 {f50:?} p99 {f99:?}  ({:.1}x / {:.1}x one replay)",
        f50.as_secs_f64() / r50.as_secs_f64(),
        f99.as_secs_f64() / r99.as_secs_f64()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
