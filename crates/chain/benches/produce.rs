//! Producing a full devnet block: execution alone, execution plus sealing (receipts, state and
//! transaction roots), and the whole path with the atomic commit to disk.
//!
//! The block is 2,857 plain transfers from distinct senders to distinct new accounts: 60M gas,
//! the default gas limit. `execute` is the baseline the other two are read against.
//!
//! `chain::seal` seals a sparse block, as a real chain's are: 200 of those transfers over a
//! state of 200,000 more accounts, with roots hashed incrementally from the head's trie nodes
//! and, as their baseline, rebuilt from every leaf.

use std::{collections::BTreeMap, path::Path, sync::Arc};

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope, transaction::Recovered};
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, keccak256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use cobuild_chain::{BlockAttributes, BlockBuilder, Chain, Genesis, GenesisAccount};
use cobuild_primitives::{ChainSpec, DEFAULT_GAS_LIMIT, DEVNET_CHAIN_ID, INITIAL_BASE_FEE};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

const TXS: usize = (DEFAULT_GAS_LIMIT / 21_000) as usize;

struct Workload {
    genesis: Genesis,
    txs: Vec<Recovered<TxEnvelope>>,
}

fn workload() -> Workload {
    let mut genesis = Genesis::devnet(DEFAULT_GAS_LIMIT, INITIAL_BASE_FEE);
    let mut txs = Vec::with_capacity(TXS);
    let mut accounts = BTreeMap::new();
    for i in 0..TXS {
        let key = keccak256(U256::from(i + 1).to_be_bytes::<32>());
        let signer = PrivateKeySigner::from_bytes(&key).expect("hash is a valid key");
        accounts.insert(
            signer.address(),
            GenesisAccount {
                balance: U256::from(10u64).pow(U256::from(20)),
                ..Default::default()
            },
        );
        let tx = TxEip1559 {
            chain_id: DEVNET_CHAIN_ID,
            nonce: 0,
            gas_limit: 21_000,
            max_fee_per_gas: 10_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            to: TxKind::Call(Address::from_word(keccak256(key))),
            value: U256::from(1),
            access_list: Default::default(),
            input: Bytes::new(),
        };
        let sig = signer.sign_hash_sync(&tx.signature_hash()).expect("sign");
        txs.push(Recovered::new_unchecked(
            tx.into_signed(sig).into(),
            signer.address(),
        ));
    }
    genesis.accounts.extend(accounts);
    Workload { genesis, txs }
}

fn open(dir: &Path, genesis: &Genesis) -> Chain {
    Chain::open(
        &dir.join("chain.redb"),
        Arc::new(ChainSpec::devnet(DEVNET_CHAIN_ID)),
        genesis,
    )
    .expect("open")
}

fn attrs(chain: &Chain) -> BlockAttributes {
    let head = chain.head();
    BlockAttributes {
        timestamp: head.timestamp + 12,
        fee_recipient: Address::repeat_byte(0xc0),
        prev_randao: B256::repeat_byte(1),
        gas_limit: head.gas_limit,
        withdrawals: Vec::new(),
        parent_beacon_block_root: B256::repeat_byte(2),
        extra_data: Bytes::new(),
    }
}

/// Opens a block on `chain` and executes every transaction of the workload.
fn execute_all(chain: &Chain, txs: &[Recovered<TxEnvelope>]) -> BlockBuilder {
    fill(chain.builder(attrs(chain)).expect("builder"), txs)
}

/// Executes every one of `txs` into `builder`; each must be included.
fn fill(mut builder: BlockBuilder, txs: &[Recovered<TxEnvelope>]) -> BlockBuilder {
    for tx in txs {
        builder
            .execute(tx.clone())
            .expect("no fatal")
            .expect("included");
    }
    builder
}

fn bench(c: &mut Criterion) {
    let w = workload();
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = open(dir.path(), &w.genesis);
    let mut group = c.benchmark_group("chain::produce");
    group.sample_size(10);
    group.bench_function(format!("execute/txs={TXS}"), |b| {
        b.iter(|| execute_all(&chain, &w.txs))
    });
    group.bench_function(format!("execute_seal/txs={TXS}"), |b| {
        b.iter(|| {
            let builder = execute_all(&chain, &w.txs);
            builder.finish().expect("sealed")
        })
    });
    group.bench_function(format!("execute_seal_commit/txs={TXS}"), |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("tempdir");
                let chain = open(dir.path(), &w.genesis);
                (dir, chain)
            },
            |(dir, chain)| {
                let builder = execute_all(&chain, &w.txs);
                chain
                    .commit(&builder.finish().expect("sealed"))
                    .expect("commit");
                (dir, chain)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
    drop(chain);

    let mut sparse = w.genesis.clone();
    for i in 0..SPARSE_STATE {
        sparse.accounts.insert(
            Address::from_word(keccak256((i as u64).to_be_bytes())),
            GenesisAccount {
                balance: U256::from(i + 1),
                ..Default::default()
            },
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = open(dir.path(), &sparse);
    let (parent, state) = chain.head_state().expect("head state");
    let txs = &w.txs[..SPARSE_TXS];
    let mut group = c.benchmark_group("chain::seal");
    group.sample_size(20);
    for (roots, state) in [
        ("incremental", state.clone()),
        ("full", state.without_trie()),
    ] {
        group.bench_function(
            format!("accounts={SPARSE_STATE} txs={SPARSE_TXS} roots={roots}"),
            |b| {
                b.iter_batched(
                    || {
                        let builder = BlockBuilder::new(
                            chain.spec().clone(),
                            parent.clone(),
                            state.clone(),
                            attrs(&chain),
                        )
                        .expect("builder");
                        fill(builder, txs)
                    },
                    |builder| builder.finish().expect("sealed"),
                    BatchSize::PerIteration,
                )
            },
        );
    }
    group.finish();
}

const SPARSE_STATE: usize = 200_000;
const SPARSE_TXS: usize = 200;

criterion_group!(benches, bench);
criterion_main!(benches);
