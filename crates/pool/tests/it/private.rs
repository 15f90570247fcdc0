//! Private transactions: hidden from other senders, cancelled only by their owner, expiring.

use alloy_primitives::Address;
use cobuild_chain::dev_signers;
use cobuild_pool::{PoolConfig, PoolError, PrivateTx};

use crate::{seal_empty, setup, tx};

const OWNER: Address = Address::repeat_byte(0x0f);
const OTHER: Address = Address::repeat_byte(0x0e);

fn private(max_block: u64, hash_shared: bool) -> PrivateTx {
    PrivateTx {
        owner: OWNER,
        max_block,
        hash_shared,
    }
}

#[test]
fn test_private_tx_is_hidden_from_everyone_but_its_owner() {
    let (_dir, _chain, pool) = setup(PoolConfig::default());
    let s = dev_signers();
    let hash = pool
        .add_private(tx(&s[0], 0, 2), private(10, false))
        .expect("add");
    assert!(
        pool.visible(&hash, None).is_none(),
        "not to anonymous queries"
    );
    assert!(
        pool.visible(&hash, Some(OTHER)).is_none(),
        "not to another sender"
    );
    assert!(pool.visible(&hash, Some(OWNER)).is_some());
    assert_eq!(
        pool.pending_nonce(s[0].address(), 0),
        0,
        "the nonce does not leak"
    );
    // The same transaction again is known, whatever the path.
    assert_eq!(pool.add(tx(&s[0], 0, 2)), Err(PoolError::AlreadyKnown));
    // It is still a candidate for blocks.
    assert_eq!(pool.best(1).count(), 1);

    let shared = pool
        .add_private(tx(&s[1], 0, 2), private(10, true))
        .expect("add");
    assert!(pool.visible(&shared, None).is_none());
    assert!(
        pool.visible(&shared, Some(OTHER)).is_some(),
        "hints share the hash with proven senders"
    );
    let public = pool.add(tx(&s[2], 0, 2)).expect("add");
    assert!(pool.visible(&public, None).is_some());
    assert_eq!(pool.pending_nonce(s[2].address(), 0), 1);
}

#[test]
fn test_only_the_owner_cancels_a_private_tx() {
    let (_dir, _chain, pool) = setup(PoolConfig::default());
    let s = dev_signers();
    let hash = pool
        .add_private(tx(&s[0], 0, 2), private(10, true))
        .expect("add");
    assert!(!pool.cancel_private(OTHER, &hash));
    assert!(pool.get(&hash).is_some());
    assert!(pool.cancel_private(OWNER, &hash));
    assert!(pool.get(&hash).is_none());
    assert!(!pool.cancel_private(OWNER, &hash), "already gone");
    let public = pool.add(tx(&s[1], 0, 2)).expect("add");
    assert!(
        !pool.cancel_private(OWNER, &public),
        "public transactions are not cancelled"
    );
}

#[test]
fn test_private_tx_leaves_the_pool_after_its_max_block() {
    let (_dir, chain, pool) = setup(PoolConfig::default());
    let s = dev_signers();
    let head = chain.head().number;
    let short = pool
        .add_private(tx(&s[0], 0, 2), private(head + 1, false))
        .expect("add");
    let long = pool
        .add_private(tx(&s[1], 0, 2), private(head + 2, false))
        .expect("add");
    // Blocks without them: the first expires with block head + 1, the second one later.
    seal_empty(&chain);
    let (_, state) = chain.head_state().expect("state");
    pool.on_block(&state);
    assert!(pool.get(&short).is_none(), "expired with its max block");
    assert!(pool.get(&long).is_some());
    seal_empty(&chain);
    let (_, state) = chain.head_state().expect("state");
    pool.on_block(&state);
    assert!(pool.is_empty());
}

#[test]
fn test_cancelling_a_private_tx_drops_the_bundles_that_carry_it() {
    use cobuild_pool::{BundlePool, OrderLimit, TxPool};
    use cobuild_primitives::Bundle;
    let (_dir, chain, _) = setup(PoolConfig::default());
    let limit = OrderLimit::new(100);
    let pool = TxPool::with_limit(chain, PoolConfig::default(), &limit);
    let bundles = BundlePool::with_limit(&limit);
    let s = dev_signers();
    let user = tx(&s[0], 0, 2);
    let hash = pool
        .add_private(user.clone(), private(10, true))
        .expect("add");
    // A MEV-Share backrun took the private transaction in by hash.
    let backrun = tx(&s[1], 0, 3);
    let carrying = Bundle {
        hash: alloy_primitives::B256::repeat_byte(0xbb),
        txs: vec![user, backrun.clone()],
        block_number: 1,
        max_block: None,
        min_timestamp: None,
        max_timestamp: None,
        reverting: Vec::new(),
        dropping: Vec::new(),
        replacement: None,
        refund: None,
    };
    let other = Bundle {
        hash: alloy_primitives::B256::repeat_byte(0xcc),
        txs: vec![backrun],
        ..carrying.clone()
    };
    bundles.add(OTHER, carrying).expect("add");
    bundles.add(OTHER, other).expect("add");
    assert!(pool.cancel_private(OWNER, &hash));
    assert!(
        bundles.count_hash(&alloy_primitives::B256::repeat_byte(0xbb)) == 0,
        "the cancelled transaction cannot land through a bundle"
    );
    assert!(bundles.count_hash(&alloy_primitives::B256::repeat_byte(0xcc)) > 0);
}
