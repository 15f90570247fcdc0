//! Incremental roots: blocks of random transfers and storage writes (new slots, overwrites,
//! deletions, new accounts) keep roots and trie nodes equal to a rebuild from the leaves, and
//! so do blocks sealed round after round, each seal from the last.

use alloy_consensus::{TxEip1559, TxEnvelope, transaction::Recovered};
use alloy_eips::eip4895::Withdrawal;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256};
use alloy_signer_local::PrivateKeySigner;
use cobuild_chain::{Chain, dev_signers};
use cobuild_test_utils::Rng;

use super::{attrs, fill, open, signed, unsigned_transfer};

/// Init code of a contract whose runtime stores calldata word 1 at slot calldata word 0
/// (`SSTORE(calldataload(0), calldataload(32))`), so a zero value deletes the slot.
const STORE_INIT: [u8; 17] = [
    0x67, 0x60, 0x20, 0x35, 0x60, 0x00, 0x35, 0x55, 0x00, // PUSH8 runtime
    0x60, 0x00, 0x52, // MSTORE at 0 (runtime in bytes 24..32)
    0x60, 0x08, 0x60, 0x18, 0xf3, // RETURN(24, 8)
];

fn store_call(word0: U256, word1: U256) -> Bytes {
    let mut data = word0.to_be_bytes::<32>().to_vec();
    data.extend_from_slice(&word1.to_be_bytes::<32>());
    data.into()
}

/// Deploys the store contract from the first dev account; returns its address.
fn deploy_store(chain: &Chain, signers: &[PrivateKeySigner]) -> Address {
    let mut builder = chain.builder(attrs(chain)).expect("builder");
    builder
        .execute(signed(&signers[0], deployment(0)))
        .expect("no fatal")
        .expect("included");
    chain
        .commit(&builder.finish().expect("sealed"))
        .expect("committed");
    signers[0].address().create(0)
}

fn deployment(nonce: u64) -> TxEip1559 {
    TxEip1559 {
        gas_limit: 200_000,
        to: TxKind::Create,
        input: Bytes::copy_from_slice(&STORE_INIT),
        ..unsigned_transfer(nonce, Address::ZERO, 0)
    }
}

/// Accounts from a small space, so blocks meet existing ones and create new ones.
fn account(rng: &mut Rng) -> Address {
    Address::from_word(B256::from(U256::from(rng.next_u64() % 500 + 1)))
}

/// A random transaction from a random dev account at its next nonce: a write to the store
/// contract (a slot from a small space, so writes overwrite and deletions hit), a transfer,
/// or, with `deploys`, now and then a new contract.
fn random_tx(
    rng: &mut Rng,
    signers: &[PrivateKeySigner],
    nonces: &[u64],
    store: Address,
    deploys: bool,
) -> (usize, Recovered<TxEnvelope>) {
    let who = (rng.next_u64() % signers.len() as u64) as usize;
    let tx = match rng.next_u64() % 20 {
        0 if deploys => deployment(nonces[who]),
        n if n % 2 == 0 => {
            let slot = U256::from(rng.next_u64() % 400);
            let value = match rng.next_u64() % 4 {
                0 => U256::ZERO,
                _ => U256::from(rng.next_u64()),
            };
            TxEip1559 {
                gas_limit: 60_000,
                input: store_call(slot, value),
                ..unsigned_transfer(nonces[who], store, 0)
            }
        }
        _ => unsigned_transfer(
            nonces[who],
            account(rng),
            1 + u128::from(rng.next_u64() % 1_000),
        ),
    };
    (who, signed(&signers[who], tx))
}

#[test]
fn test_random_blocks_keep_roots_and_nodes_equal_to_a_rebuild() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = open(dir.path());
    chain.check_state().expect("nodes built at open match");
    let signers = dev_signers();
    let mut nonces = vec![0u64; signers.len()];
    let store = deploy_store(&chain, &signers);
    nonces[0] = 1;

    let mut rng = Rng::new(7);
    for block in 0..40 {
        let mut builder = chain.builder(attrs(&chain)).expect("builder");
        let txs = 1 + rng.next_u64() % 60;
        for _ in 0..txs {
            let (who, tx) = random_tx(&mut rng, &signers, &nonces, store, false);
            let included = builder.execute(tx).expect("no fatal").is_ok();
            if included {
                nonces[who] += 1;
            }
        }
        chain
            .commit(&builder.finish().expect("sealed"))
            .expect("committed");
        chain
            .check_state()
            .unwrap_or_else(|e| panic!("block {block}: {e}"));
    }
    drop(chain);
    // Reopening rebuilds the nodes from the store and checks the head's root again.
    open(dir.path())
        .check_state()
        .expect("reopened chain matches");
}

#[test]
fn test_rounds_sealed_from_the_last_seal_equal_the_block_sealed_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = open(dir.path());
    let signers = dev_signers();
    let mut nonces = vec![0u64; signers.len()];
    let store = deploy_store(&chain, &signers);
    nonces[0] = 1;

    let mut rng = Rng::new(11);
    for block in 0..8 {
        // Withdrawals, so the post-block changes touch accounts the transactions touch too.
        let mut attrs = attrs(&chain);
        attrs.withdrawals = (0..3)
            .map(|index| Withdrawal {
                index,
                validator_index: index,
                address: account(&mut rng),
                amount: 1 + rng.next_u64() % 1_000,
            })
            .collect();
        let mut growing = chain.builder(attrs.clone()).expect("builder");
        let mut cache = None;
        for round in 0..6 {
            for _ in 0..rng.next_u64() % 12 {
                let (who, tx) = random_tx(&mut rng, &signers, &nonces, store, true);
                if growing.execute(tx).expect("no fatal").is_ok() {
                    nonces[who] += 1;
                }
            }
            let (sealed, kept) = growing.fork().finish_cached(cache.take()).expect("seals");
            let mut alone = chain.builder(attrs.clone()).expect("builder");
            fill(&mut alone, growing.transactions());
            let want = alone.finish().expect("seals");
            let at = format!("block {block} round {round}");
            assert_eq!(sealed.block.hash, want.block.hash, "{at}");
            let code = |mut contracts: Vec<(B256, Bytes)>| {
                contracts.sort();
                contracts
            };
            assert_eq!(
                code(sealed.diff.contracts),
                code(want.diff.contracts),
                "{at}"
            );
            cache = Some(kept);
        }
        // Committed, the last seal leaves the state and trie nodes a rebuild makes.
        let (last, _) = growing.finish_cached(cache).expect("seals");
        chain.commit(&last).expect("commits");
        chain
            .check_state()
            .unwrap_or_else(|e| panic!("block {block}: {e}"));
    }
}

/// Checks the proof of `address` and `slots` at block `number` against the block's state root,
/// and that the slots proved set are `written` (the others prove absent); returns the balance.
fn check_proof(chain: &Chain, number: u64, address: Address, written: &[u64]) -> U256 {
    use alloy_rlp::Encodable;
    use alloy_trie::{Nibbles, proof::verify_proof};

    let slots: Vec<B256> = [7u64, 14, 8, 275, 1_000]
        .iter()
        .map(|s| B256::from(U256::from(*s)))
        .collect();
    let (header, state) = chain.state_at(number).expect("state");
    assert_eq!(state.is_past(), number != chain.head().number);
    let proof = state
        .prove(header.state_root, address, &slots)
        .expect("proves");
    let key = Nibbles::unpack(alloy_primitives::keccak256(address));
    let leaf = proof.record.map(|record| {
        let mut out = Vec::new();
        record.trie_account().encode(&mut out);
        out
    });
    verify_proof(header.state_root, key, leaf, &proof.account_proof)
        .unwrap_or_else(|e| panic!("{address} at {number}: {e:?}"));
    let storage_root = proof
        .record
        .map_or(alloy_trie::EMPTY_ROOT_HASH, |r| r.storage_root);
    for (slot, value, nodes) in &proof.storage {
        let key = Nibbles::unpack(alloy_primitives::keccak256(slot));
        let leaf = (!value.is_zero()).then(|| {
            let mut out = Vec::new();
            value.encode(&mut out);
            out
        });
        verify_proof(storage_root, key, leaf, nodes)
            .unwrap_or_else(|e| panic!("{address} slot {slot} at {number}: {e:?}"));
        let slot = U256::from_be_bytes(slot.0);
        let is_written = written.iter().any(|w| U256::from(*w) == slot);
        assert_eq!(
            !value.is_zero(),
            is_written,
            "{address} slot {slot} at {number}"
        );
        if is_written {
            assert_eq!(
                *value,
                slot / U256::from(7) + U256::from(number),
                "at {number}"
            );
        }
    }
    proof.record.map_or(U256::ZERO, |r| r.balance)
}

#[test]
fn test_proofs_of_accounts_and_slots_verify_against_the_state_root_at_the_head_and_before() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = open(dir.path());
    let signers = dev_signers();
    let store = deploy_store(&chain, &signers);
    // Block n (from 2) writes slot s as s / 7 + n for s in 7, 14, 21, …: block 2 the first 39
    // multiples, each later block one fewer (the last one deleted), so every block changes
    // every slot a proof asks for and the storage trie shrinks.
    let mut nonce = 1;
    let first = chain.head().number + 1;
    for (round, number) in (first..first + 3).enumerate() {
        let mut builder = chain.builder(attrs(&chain)).expect("builder");
        for slot in 1..40 - round as u64 {
            let tx = TxEip1559 {
                gas_limit: 60_000,
                input: store_call(U256::from(slot * 7), U256::from(slot + number)),
                ..unsigned_transfer(nonce, store, 0)
            };
            nonce += 1;
            builder
                .execute(signed(&signers[0], tx))
                .expect("no fatal")
                .expect("included");
        }
        let delete = TxEip1559 {
            gas_limit: 60_000,
            input: store_call(U256::from((40 - round as u64) * 7), U256::ZERO),
            ..unsigned_transfer(nonce, store, 0)
        };
        nonce += 1;
        builder
            .execute(signed(&signers[0], delete))
            .expect("no fatal")
            .expect("included");
        chain
            .commit(&builder.finish().expect("sealed"))
            .expect("committed");
    }

    let absent = Address::repeat_byte(0x77);
    let head = chain.head().number;
    let mut balances = Vec::new();
    for number in first..=head {
        check_proof(&chain, number, store, &[7, 14]);
        balances.push(check_proof(&chain, number, signers[0].address(), &[]));
        check_proof(&chain, number, absent, &[]);
    }
    // The sender paid gas in every block: each past proof shows the balance of its block.
    assert!(balances.windows(2).all(|w| w[0] > w[1]), "{balances:?}");
    // Before the contract existed, it proves absent.
    let (header, state) = chain.state_at(first - 2).expect("state");
    let proof = state.prove(header.state_root, store, &[]).expect("proves");
    assert_eq!(proof.record, None);
}
