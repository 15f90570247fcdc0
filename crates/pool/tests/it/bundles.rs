//! The bundle pool's replacement, cancellation and expiry rules.

use alloy_primitives::{Address, B256};
use cobuild_pool::{BundlePool, PoolError};
use cobuild_primitives::{Bundle, Replacement};

fn bundle(tag: u8, block: u64, uuid: Option<&str>, nonce: Option<u64>) -> Bundle {
    Bundle {
        hash: B256::repeat_byte(tag),
        txs: Vec::new(),
        block_number: block,
        max_block: None,
        min_timestamp: None,
        max_timestamp: None,
        reverting: Vec::new(),
        dropping: Vec::new(),
        replacement: uuid.map(|u| Replacement {
            uuid: u.into(),
            nonce,
        }),
        refund: None,
    }
}

const ALICE: Address = Address::repeat_byte(0xa1);
const BOB: Address = Address::repeat_byte(0xb0);

fn cancel(uuid: &str, nonce: Option<u64>) -> Replacement {
    Replacement {
        uuid: uuid.into(),
        nonce,
    }
}

#[test]
fn test_replacement_by_uuid_keeps_only_the_latest() {
    let pool = BundlePool::new(100);
    pool.add(ALICE, bundle(1, 5, Some("u"), None)).expect("add");
    pool.add(ALICE, bundle(2, 5, Some("u"), None))
        .expect("replace");
    assert!(
        pool.count_hash(&B256::repeat_byte(1)) == 0 && (pool.count_hash(&B256::repeat_byte(2)) > 0)
    );
    // The same uuid from another sender is another key.
    pool.add(BOB, bundle(3, 5, Some("u"), None))
        .expect("bob's own");
    assert_eq!(pool.len(), 2);
}

#[test]
fn test_cancel_before_bundle_still_wins() {
    let pool = BundlePool::new(100);
    pool.cancel(ALICE, cancel("u", None));
    assert_eq!(
        pool.add(ALICE, bundle(1, 5, Some("u"), None)),
        Err(PoolError::BundleCancelled)
    );
    assert!(pool.is_empty());
    // Bob's cancel does not touch Alice's bundle.
    pool.add(ALICE, bundle(2, 5, Some("v"), None)).expect("add");
    pool.cancel(BOB, cancel("v", None));
    assert!(pool.count_hash(&B256::repeat_byte(2)) > 0);
    pool.cancel(ALICE, cancel("v", None));
    assert!(pool.count_hash(&B256::repeat_byte(2)) == 0);
}

#[test]
fn test_replacement_nonce_orders_out_of_order_arrivals() {
    let pool = BundlePool::new(100);
    pool.add(ALICE, bundle(2, 5, Some("u"), Some(2)))
        .expect("add");
    assert_eq!(
        pool.add(ALICE, bundle(1, 5, Some("u"), Some(1))),
        Err(PoolError::ReplacementStale)
    );
    // A cancel older than the live replacement does not remove it; a newer one does.
    pool.cancel(ALICE, cancel("u", Some(1)));
    assert!(pool.count_hash(&B256::repeat_byte(2)) > 0);
    pool.cancel(ALICE, cancel("u", Some(3)));
    assert!(pool.is_empty());
    // A bundle newer than the cancel may come back.
    pool.add(ALICE, bundle(4, 5, Some("u"), Some(4)))
        .expect("newer than the cancel");
}

#[test]
fn test_target_block_and_expiry() {
    let pool = BundlePool::new(100);
    pool.add(ALICE, bundle(1, 5, None, None)).expect("add");
    pool.add(ALICE, bundle(2, 6, None, None)).expect("add");
    let for_five: Vec<B256> = pool.for_block(5, 0).iter().map(|b| b.bundle.hash).collect();
    assert_eq!(for_five, vec![B256::repeat_byte(1)]);
    pool.on_block(5);
    assert_eq!(pool.len(), 1, "the bundle for block 5 expired with it");
    assert!(matches!(
        pool.add(ALICE, bundle(3, 5, None, None)),
        Err(PoolError::BundleExpired { .. })
    ));
}

#[test]
fn test_full_pool_refuses_new_bundles() {
    let pool = BundlePool::new(1);
    pool.add(ALICE, bundle(1, 5, Some("u"), None)).expect("add");
    assert_eq!(
        pool.add(BOB, bundle(2, 5, None, None)),
        Err(PoolError::Full)
    );
    pool.add(ALICE, bundle(3, 5, Some("u"), None))
        .expect("a replacement needs no room");
}

#[test]
fn test_inclusion_range_holds_until_its_last_block() {
    let pool = BundlePool::new(100);
    let ranged = Bundle {
        max_block: Some(7),
        ..bundle(1, 5, None, None)
    };
    pool.add(ALICE, ranged).expect("add");
    let hashes =
        |n: u64| -> Vec<B256> { pool.for_block(n, 0).iter().map(|b| b.bundle.hash).collect() };
    assert!(hashes(4).is_empty(), "not before its first block");
    assert_eq!(hashes(5), vec![B256::repeat_byte(1)]);
    assert_eq!(hashes(7), vec![B256::repeat_byte(1)]);
    assert!(hashes(8).is_empty());
    pool.on_block(6);
    assert_eq!(pool.len(), 1, "still valid for block 7");
    pool.on_block(7);
    assert!(pool.is_empty(), "expired after its last block");
    // A range that ended is refused; one that still has a block left is taken.
    assert!(matches!(
        pool.add(
            ALICE,
            Bundle {
                max_block: Some(7),
                ..bundle(2, 5, None, None)
            }
        ),
        Err(PoolError::BundleExpired { block: 7, head: 7 })
    ));
    pool.add(
        ALICE,
        Bundle {
            max_block: Some(8),
            ..bundle(3, 5, None, None)
        },
    )
    .expect("block 8 is still ahead");
}

#[test]
fn test_listener_hears_every_add_and_cancel() {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };
    let limit = cobuild_pool::OrderLimit::new(100);
    let pool = BundlePool::with_limit(&limit);
    let heard = Arc::new(AtomicUsize::new(0));
    let counter = heard.clone();
    limit.on_change(Arc::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    }));
    pool.add(ALICE, bundle(1, 5, Some("u"), None)).expect("add");
    assert_eq!(heard.load(Ordering::SeqCst), 1);
    pool.add(ALICE, bundle(2, 5, Some("u"), None))
        .expect("replace");
    assert_eq!(heard.load(Ordering::SeqCst), 2, "a replacement is a change");
    pool.cancel(ALICE, cancel("u", None));
    assert_eq!(heard.load(Ordering::SeqCst), 3, "a cancel is a change");
    assert!(pool.add(ALICE, bundle(3, 5, Some("u"), None)).is_err());
    assert_eq!(
        heard.load(Ordering::SeqCst),
        3,
        "a refused bundle changes nothing"
    );
}

#[test]
fn test_the_same_transactions_for_several_blocks_are_each_kept_for_their_block() {
    let pool = BundlePool::new(100);
    // What the real clients' examples do: the same bundle for the next three blocks.
    let ids: Vec<B256> = (5..8)
        .map(|block| pool.add(ALICE, bundle(1, block, None, None)).expect("add"))
        .collect();
    assert_eq!(
        pool.count_hash(&B256::repeat_byte(1)),
        3,
        "one per target block"
    );
    assert_eq!(
        ids.iter().collect::<std::collections::HashSet<_>>().len(),
        3,
        "three orders"
    );
    for (block, id) in (5..8).zip(&ids) {
        let offered: Vec<B256> = pool.for_block(block, 0).iter().map(|b| b.id).collect();
        assert_eq!(offered, vec![*id], "block {block} is offered its own copy");
    }
    // Sending one of them again changes nothing.
    assert_eq!(pool.add(ALICE, bundle(1, 6, None, None)), Ok(ids[1]));
    assert_eq!(pool.len(), 3);
    // The first target missed: the later ones still stand.
    pool.on_block(5);
    assert_eq!(pool.count_hash(&B256::repeat_byte(1)), 2);
    assert_eq!(pool.for_block(6, 0).len(), 1);
}

#[test]
fn test_replacement_and_cancel_reach_every_target_of_a_uuid() {
    let pool = BundlePool::new(100);
    for block in 5..8 {
        pool.add(ALICE, bundle(1, block, Some("u"), None))
            .expect("add");
    }
    assert_eq!(pool.count_hash(&B256::repeat_byte(1)), 3);
    // A replacement for block 6 replaces that block's bundle only.
    pool.add(ALICE, bundle(2, 6, Some("u"), None))
        .expect("replace");
    assert_eq!(pool.count_hash(&B256::repeat_byte(1)), 2);
    let six: Vec<B256> = pool.for_block(6, 0).iter().map(|b| b.bundle.hash).collect();
    assert_eq!(six, vec![B256::repeat_byte(2)]);
    // A cancel of the uuid removes every target's bundle, and later sends stay cancelled.
    pool.cancel(ALICE, cancel("u", None));
    assert!(pool.is_empty());
    assert_eq!(
        pool.add(ALICE, bundle(1, 8, Some("u"), None)),
        Err(PoolError::BundleCancelled)
    );
}

#[test]
fn test_a_reserved_bundle_is_offered_only_once_published() {
    let pool = BundlePool::new(100);
    let reserved = pool
        .reserve(ALICE, bundle(1, 5, None, None))
        .expect("reserve");
    assert!(
        pool.for_block(5, 0).is_empty(),
        "not offered while reserved"
    );
    assert!(!pool.contains(&reserved.id()));
    assert_eq!(pool.len(), 1, "but it holds its place");
    let id = reserved.id();
    reserved.publish();
    assert!(pool.contains(&id));
    assert_eq!(pool.for_block(5, 0).len(), 1);

    // A replacement waits until the bundle it would replace is settled.
    let pending = pool
        .reserve(ALICE, bundle(5, 5, Some("w"), None))
        .expect("reserve");
    assert_eq!(
        pool.reserve(ALICE, bundle(6, 5, Some("w"), None))
            .map(|r| r.id()),
        Err(PoolError::PendingReplacement)
    );
    // The same bundle again joins the reservation: shown once any of them is published.
    let copy = pool
        .reserve(ALICE, bundle(5, 5, Some("w"), None))
        .expect("joins");
    pending.withdraw();
    assert_eq!(
        pool.count_hash(&B256::repeat_byte(5)),
        0,
        "still waiting on the copy"
    );
    copy.publish();
    assert_eq!(pool.count_hash(&B256::repeat_byte(5)), 1);

    // A withdrawn replacement gives the place back to the bundle it replaced.
    let old = pool.add(ALICE, bundle(2, 5, Some("u"), None)).expect("add");
    let replacing = pool
        .reserve(ALICE, bundle(3, 5, Some("u"), None))
        .expect("reserve");
    assert!(
        !pool.contains(&old),
        "replaced while the replacement is reserved"
    );
    replacing.withdraw();
    assert!(pool.contains(&old), "back after the withdrawal");
    assert_eq!(pool.count_hash(&B256::repeat_byte(3)), 0);
    // Dropping a reservation withdraws it too.
    drop(
        pool.reserve(ALICE, bundle(4, 5, None, None))
            .expect("reserve"),
    );
    assert_eq!(pool.len(), 3);
}

#[test]
fn test_a_cancel_keeps_refusing_older_sends_for_every_block() {
    let pool = BundlePool::new(100);
    pool.cancel(ALICE, cancel("u", Some(5)));
    // A send newer than the cancel takes block 10 ...
    pool.add(ALICE, bundle(1, 10, Some("u"), Some(6)))
        .expect("newer than the cancel");
    // ... which does not lift the cancel for the other blocks.
    assert_eq!(
        pool.add(ALICE, bundle(2, 11, Some("u"), Some(3))),
        Err(PoolError::BundleCancelled)
    );
    assert_eq!(
        pool.add(ALICE, bundle(3, 11, Some("u"), None)),
        Err(PoolError::BundleCancelled)
    );
    // A cancel older than a live bundle leaves it, but still refuses older sends.
    pool.add(ALICE, bundle(4, 12, Some("v"), Some(9)))
        .expect("add");
    pool.cancel(ALICE, cancel("v", Some(4)));
    assert_eq!(pool.count_hash(&B256::repeat_byte(4)), 1);
    assert_eq!(
        pool.add(ALICE, bundle(5, 13, Some("v"), Some(2))),
        Err(PoolError::BundleCancelled)
    );
}

#[test]
fn test_a_withdrawn_bundle_restores_only_its_own_block() {
    let pool = BundlePool::new(100);
    let reserved = pool
        .reserve(ALICE, bundle(1, 10, Some("u"), None))
        .expect("reserve");
    pool.add(ALICE, bundle(2, 11, Some("u"), None))
        .expect("another block of the uuid");
    reserved.withdraw();
    // The other block's bundle keeps its slot: a cancel of the uuid still reaches it.
    pool.cancel(ALICE, cancel("u", None));
    assert!(pool.is_empty());
}

#[test]
fn test_bundles_reach_no_further_than_the_horizon() {
    let pool = BundlePool::new(100).with_horizon(10);
    pool.on_block(100);
    pool.add(ALICE, bundle(1, 110, None, None))
        .expect("the horizon's last block");
    assert_eq!(
        pool.add(ALICE, bundle(2, 111, None, None)),
        Err(PoolError::BundleTooFar {
            block: 111,
            head: 100,
            horizon: 10
        })
    );
    let mut ranged = bundle(3, 101, None, None);
    ranged.max_block = Some(200);
    assert!(matches!(
        pool.add(ALICE, ranged),
        Err(PoolError::BundleTooFar { block: 200, .. })
    ));
    // A bundle for any block is held for the horizon, then dropped.
    pool.add(ALICE, bundle(4, 0, None, None))
        .expect("any block");
    pool.on_block(109);
    assert_eq!(
        pool.count_hash(&B256::repeat_byte(4)),
        1,
        "still within its horizon"
    );
    pool.on_block(110);
    assert_eq!(
        pool.count_hash(&B256::repeat_byte(4)),
        0,
        "dropped at its horizon"
    );
}
