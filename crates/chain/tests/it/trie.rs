//! Incremental roots: blocks of random transfers and storage writes (new slots, overwrites,
//! deletions, new accounts) keep roots and trie nodes equal to a rebuild from the leaves.

use alloy_consensus::TxEip1559;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256};
use cobuild_chain::{Chain, dev_signers};
use cobuild_test_utils::Rng;

use super::{attrs, open, signed, unsigned_transfer};

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

#[test]
fn test_random_blocks_keep_roots_and_nodes_equal_to_a_rebuild() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = open(dir.path());
    chain.check_state().expect("nodes built at open match");
    let signers = dev_signers();
    let mut nonces = vec![0u64; signers.len()];
    let deploy = |chain: &Chain, nonce: u64| {
        let mut builder = chain.builder(attrs(chain)).expect("builder");
        let tx = TxEip1559 {
            gas_limit: 200_000,
            to: TxKind::Create,
            input: Bytes::copy_from_slice(&STORE_INIT),
            ..unsigned_transfer(nonce, Address::ZERO, 0)
        };
        builder
            .execute(signed(&signers[0], tx))
            .expect("no fatal")
            .expect("included");
        chain
            .commit(&builder.finish().expect("sealed"))
            .expect("committed");
    };
    deploy(&chain, 0);
    nonces[0] = 1;
    let store = signers[0].address().create(0);

    let mut rng = Rng::new(7);
    for block in 0..40 {
        let mut builder = chain.builder(attrs(&chain)).expect("builder");
        let txs = 1 + rng.next_u64() % 60;
        for _ in 0..txs {
            let who = (rng.next_u64() % signers.len() as u64) as usize;
            let tx = if rng.next_u64().is_multiple_of(2) {
                // A slot from a small space, so writes overwrite and deletions hit.
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
            } else {
                // New accounts, and accounts that already exist.
                let to = Address::from_word(B256::from(U256::from(rng.next_u64() % 500 + 1)));
                unsigned_transfer(nonces[who], to, 1 + u128::from(rng.next_u64() % 1_000))
            };
            let included = builder
                .execute(signed(&signers[who], tx))
                .expect("no fatal")
                .is_ok();
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
