//! One sender's simulations beside another's flood: the round trip of a light `eth_callBundle`
//! (one transfer) from sender B, alone and while sender A keeps two connections busy with
//! block-sized `eth_callBundle`s that burn all their gas. The ratio of the two is what a flood
//! costs everyone else; A's calls run on at most half the simulation threads and are charged
//! by gas, so it should stay near 1.
//!
//! `cargo bench -p cobuild-rpc --bench sim_fairness`

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, keccak256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use cobuild_chain::{Chain, Genesis};
use cobuild_pool::{BundlePool, OrderLimit, PoolConfig, TxPool};
use cobuild_primitives::{ChainSpec, DEFAULT_GAS_LIMIT, DEVNET_CHAIN_ID, INITIAL_BASE_FEE};
use cobuild_rpc::{Bundles, Eth, OrderflowLimits, RpcConfig};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

/// A transaction of dev account `account` with `gas`: a transfer, or (no `to`) a contract
/// creation whose init code loops until it runs out of gas.
fn tx(account: usize, nonce: u64, to: Option<Address>, gas: u64) -> Bytes {
    let signer = &cobuild_chain::dev_signers()[account];
    let tx = TxEip1559 {
        chain_id: DEVNET_CHAIN_ID,
        nonce,
        gas_limit: gas,
        max_fee_per_gas: 50_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: to.map_or(TxKind::Create, TxKind::Call),
        value: U256::ZERO,
        access_list: Default::default(),
        // JUMPDEST PUSH1 0 JUMP: for ever.
        input: if to.is_none() {
            Bytes::from_static(&[0x5b, 0x60, 0x00, 0x56])
        } else {
            Bytes::new()
        },
    };
    let signature = signer.sign_hash_sync(&tx.signature_hash()).expect("sign");
    TxEnvelope::from(tx.into_signed(signature))
        .encoded_2718()
        .into()
}

/// A signed `eth_callBundle` body and its signature header.
fn signed_call(auth: &PrivateKeySigner, txs: &[Bytes]) -> (String, String) {
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "eth_callBundle",
        "params": [{"txs": txs, "blockNumber": "0x1", "stateBlockNumber": "latest"}],
    })
    .to_string();
    let digest = format!("{:#x}", keccak256(body.as_bytes()));
    let signature = auth.sign_message_sync(digest.as_bytes()).expect("sign");
    (body, format!("{}:{signature}", auth.address()))
}

fn call(url: &str, (body, header): &(String, String)) -> bool {
    let (status, reply) = cobuild_test_utils::http_post(
        url,
        body.as_bytes(),
        &[("X-Flashbots-Signature", header.as_str())],
    );
    status == 200 && reply.contains("\"result\"")
}

fn fairness(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = Chain::open(
        &dir.path().join("chain.redb"),
        Arc::new(ChainSpec::devnet(DEVNET_CHAIN_ID)),
        &Genesis::devnet(DEFAULT_GAS_LIMIT, INITIAL_BASE_FEE),
    )
    .expect("chain");
    let limit = OrderLimit::new(1_000);
    let txs = TxPool::with_limit(chain.clone(), PoolConfig::default(), &limit);
    let bundles = BundlePool::with_limit(&limit);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let limits = OrderflowLimits {
        sender_rate: 1_000_000,
        sender_burst: 1_000_000,
        ip_rate: 1_000_000,
        ip_burst: 1_000_000,
        ..OrderflowLimits::default()
    };
    let server = runtime
        .block_on(cobuild_rpc::start(
            RpcConfig::new(SocketAddr::from(([127, 0, 0, 1], 0))),
            Eth::new(chain.clone(), txs.clone()),
            Bundles::new(chain, txs, bundles, limits),
        ))
        .expect("server");
    let url = format!("http://{}", server.local_addr);

    let victim = PrivateKeySigner::from_bytes(&B256::repeat_byte(0xb0)).expect("key");
    let light = signed_call(&victim, &[tx(1, 0, Some(Address::repeat_byte(9)), 21_000)]);
    assert!(call(&url, &light), "the light call is answered");

    let mut group = c.benchmark_group("call_bundle");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("alone", |b| b.iter(|| call(&url, &light)));

    let flooder = PrivateKeySigner::from_bytes(&B256::repeat_byte(0xa0)).expect("key");
    // Two loops under the per-transaction cap (2^24 gas), most of a block together.
    let heavy = Arc::new(signed_call(
        &flooder,
        &[tx(2, 0, None, 14_000_000), tx(2, 1, None, 14_000_000)],
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let (served, refused) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let floods: Vec<_> = (0..2)
        .map(|_| {
            let (url, heavy, stop) = (url.clone(), heavy.clone(), stop.clone());
            let (served, refused) = (served.clone(), refused.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let counter = if call(&url, &heavy) {
                        &served
                    } else {
                        &refused
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    group.bench_function("beside_a_flood", |b| b.iter(|| call(&url, &light)));
    group.finish();
    stop.store(true, Ordering::Relaxed);
    for flood in floods {
        let _ = flood.join();
    }
    eprintln!(
        "flooder: {} block-sized simulations served, {} refused (gas budget)",
        served.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed)
    );
    let _ = server.handle.stop();
}

criterion_group!(benches, fairness);
criterion_main!(benches);
