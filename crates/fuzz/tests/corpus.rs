//! Every fuzz target over its checked-in corpus, then over mutations of it for a bounded time
//! (`COBUILD_FUZZ_SECS` per target, default 10). A panic fails the test and leaves the input in
//! `target/fuzz-findings/`; fixed, it goes into the corpus.
//!
//! The corpus starts from seeds made here from real inputs (the recorded client requests, a
//! signed envelope, a sealed block's submission, a registry file);
//! `COBUILD_WRITE_CORPUS=1 cargo test -p cobuild-fuzz --test corpus` writes any that are missing.

use std::{
    panic::AssertUnwindSafe,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use alloy_primitives::{Address, B256, Bytes, keccak256};
use cobuild_fuzz::{TARGETS, Target, mutate::Mutator};
use commonware_cryptography::{Signer as _, ed25519};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target)
}

/// The checked-in inputs of `target`, in name order.
fn corpus(target: &str) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(corpus_dir(target)) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read(p).expect("corpus file readable"))
        .collect()
}

fn json_params(method: &str) -> Vec<Vec<u8>> {
    cobuild_test_utils::flashbots_fixture_params(method)
        .iter()
        .map(|params| serde_json::to_vec(params).expect("json"))
        .collect()
}

fn envelopes() -> Vec<cobuild_net::Envelope> {
    let key = ed25519::PrivateKey::from_seed(1);
    let raw = cobuild_test_utils::flashbots_fixture_params("eth_sendBundle")
        .first()
        .and_then(|p| p["txs"][0].as_str().map(str::to_owned))
        .expect("a recorded bundle transaction");
    let body = cobuild_net::EnvelopeBody {
        origin: 0,
        seq: 1,
        received_at_ms: 1_700_000_000_000,
        kind: 0,
        payload: raw.parse::<Bytes>().expect("hex"),
        auth: Default::default(),
        call: 0,
    };
    vec![cobuild_net::Envelope::sign(body, &key)]
}

fn relay_submission() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = cobuild_chain::Chain::open(
        &dir.path().join("chain.redb"),
        Arc::new(cobuild_primitives::ChainSpec::devnet(
            cobuild_primitives::DEVNET_CHAIN_ID,
        )),
        &cobuild_chain::Genesis::devnet(
            cobuild_primitives::DEFAULT_GAS_LIMIT,
            cobuild_primitives::INITIAL_BASE_FEE,
        ),
    )
    .expect("chain");
    let head = chain.head();
    let executed = chain
        .builder(cobuild_chain::BlockAttributes {
            timestamp: head.timestamp + 2,
            fee_recipient: Address::repeat_byte(0xc0),
            prev_randao: B256::repeat_byte(0x42),
            gas_limit: head.gas_limit,
            withdrawals: Vec::new(),
            parent_beacon_block_root: B256::ZERO,
            extra_data: Bytes::from_static(b"cobuild"),
        })
        .expect("builder")
        .finish()
        .expect("sealed");
    let key = cobuild_relay::BuilderKey::from_seed(b"fuzz seed");
    let params = cobuild_relay::bid::BidParams {
        slot: 1,
        proposer_pubkey: key.public_key(),
        proposer_fee_recipient: Address::repeat_byte(0xfe),
        domain: B256::ZERO,
    };
    let request = cobuild_relay::bid::build_submission(&executed, &params, &key).expect("bid");
    serde_json::to_vec(&request).expect("json")
}

fn registry_file() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("registry.toml");
    let registry = cobuild_registry::FileRegistry::open_or_create(&path).expect("registry");
    // Keys from fixed seeds, so the seed file is the same on every run.
    for id in 0..2u32 {
        let node_key = ed25519::PrivateKey::from_seed(u64::from(id)).public_key();
        let bls_key = cobuild_relay::BuilderKey::from_seed(&id.to_be_bytes()).public_key();
        registry
            .add(cobuild_registry::Member {
                id,
                address: format!("127.0.0.1:{}", 30_000 + id),
                node_key: B256::from_slice(node_key.as_ref()),
                bls_key: Bytes::copy_from_slice(bls_key.as_ref()),
                attestation: (id == 1).then(|| B256::repeat_byte(0xa7)),
            })
            .expect("add");
    }
    std::fs::read(&path).expect("read")
}

/// The seed inputs of `target`.
fn seeds(target: &str) -> Vec<Vec<u8>> {
    match target {
        "send_bundle" => json_params("eth_sendBundle"),
        "mev_bundle" => json_params("mev_sendBundle"),
        "private_transaction" => json_params("eth_sendPrivateTransaction"),
        "raw_transaction" => cobuild_test_utils::flashbots_fixture_params("eth_sendBundle")
            .iter()
            .flat_map(|p| p["txs"].as_array().cloned().unwrap_or_default())
            .filter_map(|tx| tx.as_str()?.parse::<Bytes>().ok().map(|b| b.to_vec()))
            .collect(),
        "envelope" => envelopes()
            .iter()
            .map(cobuild_net::Envelope::encode)
            .collect(),
        "wire_message" => {
            let envelope = envelopes().remove(0);
            vec![
                cobuild_net::wire::Message::Envelopes(vec![envelope.clone()]).encode(),
                cobuild_net::wire::Message::Status(cobuild_net::wire::Status {
                    progress: vec![cobuild_net::wire::Progress {
                        origin: 0,
                        contiguous: 1,
                    }],
                    heads: vec![envelope.signed_head()],
                })
                .encode(),
                cobuild_net::wire::Message::Pull(cobuild_net::wire::Pull {
                    origin: 0,
                    from: 1,
                    to: 9,
                })
                .encode(),
            ]
        }
        "relay_submission" => vec![relay_submission()],
        "registry_file" => vec![registry_file()],
        other => panic!("no seeds for target {other}"),
    }
}

fn name_of(input: &[u8]) -> String {
    format!("{:x}", keccak256(input))[..16].to_owned()
}

#[test]
fn test_the_corpus_holds_every_seed() {
    let write = std::env::var_os("COBUILD_WRITE_CORPUS").is_some();
    for (target, _) in TARGETS {
        let seeds = seeds(target);
        assert!(!seeds.is_empty(), "{target} has seeds");
        for seed in seeds {
            let path = corpus_dir(target).join(name_of(&seed));
            if write && !path.exists() {
                std::fs::create_dir_all(corpus_dir(target)).expect("mkdir");
                std::fs::write(&path, &seed).expect("write");
            }
            assert!(
                path.exists(),
                "{} is missing: run COBUILD_WRITE_CORPUS=1 cargo test -p cobuild-fuzz --test corpus",
                path.display()
            );
        }
    }
}

/// Runs `target` on `input`; a panic leaves the input in `target/fuzz-findings/` and fails.
fn run(name: &str, target: Target, input: &[u8]) {
    if std::panic::catch_unwind(AssertUnwindSafe(|| target(input))).is_err() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/fuzz-findings");
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(format!("{name}-{}", name_of(input)));
        let _ = std::fs::write(&path, input);
        panic!("{name} panicked on the input saved in {}", path.display());
    }
}

fn fuzz(name: &str) {
    let (_, target) = *TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .expect("a target of that name");
    let inputs = corpus(name);
    assert!(!inputs.is_empty(), "{name}'s corpus is checked in");
    for input in &inputs {
        run(name, target, input);
    }
    let secs = std::env::var("COBUILD_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let until = Instant::now() + Duration::from_secs(secs);
    let mut mutator = Mutator::new(u64::from_le_bytes(
        keccak256(name.as_bytes())[..8].try_into().expect("8 bytes"),
    ));
    let mut runs = 0u64;
    while Instant::now() < until {
        let base = &inputs[runs as usize % inputs.len()];
        let input = mutator.mutate(base, &inputs);
        run(name, target, &input);
        runs += 1;
    }
    eprintln!("{name}: {} corpus inputs, {runs} mutations", inputs.len());
}

#[test]
fn test_send_bundle() {
    fuzz("send_bundle");
}

#[test]
fn test_mev_bundle() {
    fuzz("mev_bundle");
}

#[test]
fn test_private_transaction() {
    fuzz("private_transaction");
}

#[test]
fn test_raw_transaction() {
    fuzz("raw_transaction");
}

#[test]
fn test_envelope() {
    fuzz("envelope");
}

#[test]
fn test_wire_message() {
    fuzz("wire_message");
}

#[test]
fn test_relay_submission() {
    fuzz("relay_submission");
}

#[test]
fn test_registry_file() {
    fuzz("registry_file");
}
