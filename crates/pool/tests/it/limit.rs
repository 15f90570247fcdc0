//! One bound on transactions plus bundles: the least valuable order makes room for a better one.

use alloy_consensus::TxEip1559;
use alloy_primitives::Address;
use cobuild_pool::{BundlePool, OrderLimit, PoolConfig, PoolError, TxPool, bundle_value, tx_value};
use cobuild_primitives::{Bundle, bundle_hash};

use crate::{GWEI, fields, setup, sign, tx};
use cobuild_chain::dev_signers;

/// Pools sharing a bound of `max` orders.
fn pools(max: usize) -> (tempfile::TempDir, cobuild_chain::Chain, TxPool, BundlePool) {
    let (dir, chain, _) = setup(PoolConfig::default());
    let limit = OrderLimit::new(max);
    let txs = TxPool::with_limit(chain.clone(), PoolConfig::default(), &limit);
    let bundles = BundlePool::with_limit(&limit);
    (dir, chain, txs, bundles)
}

/// A bundle of one transfer by dev account `account` paying `tip_gwei`.
fn bundle(account: usize, tip_gwei: u128) -> Bundle {
    let txs = vec![tx(&dev_signers()[account], 0, tip_gwei)];
    Bundle {
        hash: bundle_hash(&txs),
        txs,
        block_number: 0,
        max_block: None,
        min_timestamp: None,
        max_timestamp: None,
        reverting: Vec::new(),
        dropping: Vec::new(),
        replacement: None,
        refund: None,
    }
}

const SEARCHER: Address = Address::repeat_byte(0x5e);

#[test]
fn test_values_are_per_gas_at_the_base_fee() {
    let s = dev_signers();
    let cheap = tx(&s[0], 0, 2);
    assert_eq!(tx_value(&cheap, 1), 2 * GWEI);
    // The fee cap is 50 gwei: at a 49 gwei base fee only 1 gwei is left for the tip.
    assert_eq!(tx_value(&cheap, 49 * 1_000_000_000), GWEI);
    assert_eq!(
        tx_value(&cheap, 51 * 1_000_000_000),
        0,
        "below the base fee"
    );
    // Two transactions of equal gas: the average tip.
    let mut b = bundle(0, 2);
    b.txs.push(tx(&s[1], 0, 6));
    assert_eq!(bundle_value(&b, 1), 4 * GWEI);
}

#[test]
fn test_full_pool_evicts_the_least_valuable_highest_nonce() {
    let (_dir, _chain, pool, _bundles) = pools(3);
    let s = dev_signers();
    let low_first = pool.add(tx(&s[0], 0, 1)).expect("add");
    let s0_tail = pool.add(tx(&s[0], 1, 5)).expect("add");
    let s1 = pool.add(tx(&s[1], 0, 3)).expect("add");
    // The candidates are the highest nonces (5 and 3 gwei): 2 gwei is worth less, refused.
    assert_eq!(pool.add(tx(&s[2], 0, 2)), Err(PoolError::Full));
    // Equal is not better.
    assert_eq!(pool.add(tx(&s[2], 0, 3)), Err(PoolError::Full));
    let better = pool
        .add(tx(&s[2], 0, 4))
        .expect("evicts the 3 gwei transaction");
    assert_eq!(pool.len(), 3);
    assert!(
        pool.get(&s1).is_none(),
        "the least valuable tail was evicted"
    );
    for kept in [low_first, s0_tail, better] {
        assert!(pool.get(&kept).is_some());
    }
}

#[test]
fn test_eviction_never_opens_a_nonce_gap() {
    let (_dir, _chain, pool, _bundles) = pools(2);
    let s = dev_signers();
    let first = pool.add(tx(&s[0], 0, 1)).expect("add");
    let second = pool.add(tx(&s[0], 1, 1)).expect("add");
    // The sender's own transactions never make room for its next nonce.
    assert_eq!(pool.add(tx(&s[0], 2, 9)), Err(PoolError::Full));
    pool.add(tx(&s[1], 0, 9))
        .expect("evicts s0's highest nonce");
    assert!(pool.get(&first).is_some(), "nonce 0 stays");
    assert!(pool.get(&second).is_none(), "nonce 1 went, leaving no gap");
    assert_eq!(pool.pending_nonce(s[0].address(), 0), 1);
}

#[test]
fn test_bundles_and_transactions_share_one_bound() {
    let (_dir, _chain, pool, bundles) = pools(2);
    let s = dev_signers();
    let cheap_tx = pool.add(tx(&s[0], 0, 1)).expect("add");
    let mid = bundle(5, 3);
    bundles.add(SEARCHER, mid.clone()).expect("add");
    // Full: a bundle worth less than everything held is refused ...
    assert_eq!(bundles.add(SEARCHER, bundle(6, 1)), Err(PoolError::Full));
    // ... the same bundle again is deduplicated, not refused and not double counted ...
    assert_eq!(
        bundles.add(SEARCHER, mid.clone()),
        Ok(mid.identity(SEARCHER))
    );
    assert_eq!(pool.add(tx(&s[0], 0, 1)), Err(PoolError::AlreadyKnown));
    // ... a better bundle evicts the 1 gwei transaction ...
    let rich = bundle(7, 8);
    bundles
        .add(SEARCHER, rich.clone())
        .expect("evicts the cheap transaction");
    assert!(pool.get(&cheap_tx).is_none());
    assert_eq!(pool.len() + bundles.len(), 2);
    // ... and a better transaction evicts the 3 gwei bundle.
    pool.add(tx(&s[1], 0, 5))
        .expect("evicts the cheaper bundle");
    assert!(bundles.count_hash(&mid.hash) == 0 && bundles.count_hash(&rich.hash) > 0);
    assert_eq!(pool.len() + bundles.len(), 2);
    // A replacement needs no room even when full.
    let bumped = TxEip1559 {
        max_fee_per_gas: 60 * GWEI,
        max_priority_fee_per_gas: 6 * GWEI,
        ..fields(0, 5)
    };
    pool.add(sign(bumped, &s[1])).expect("replaces in place");
    assert_eq!(pool.len() + bundles.len(), 2);
}
