//! The pool against a real devnet chain: admission rules, ordering and clean-up.

mod bundles;
mod limit;
mod private;

use std::sync::Arc;

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope, transaction::Recovered};
use alloy_primitives::{Address, B256, Bytes, TxKind, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use cobuild_chain::{BlockAttributes, Chain, Genesis, dev_signers};
use cobuild_pool::{PoolConfig, PoolError, TxPool};
use cobuild_primitives::{ChainSpec, DEFAULT_GAS_LIMIT, DEVNET_CHAIN_ID, INITIAL_BASE_FEE};

const GWEI: u128 = 1_000_000_000;

fn setup(config: PoolConfig) -> (tempfile::TempDir, Chain, TxPool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = Arc::new(ChainSpec::devnet(DEVNET_CHAIN_ID));
    let chain = Chain::open(
        &dir.path().join("c.redb"),
        spec,
        &Genesis::devnet(DEFAULT_GAS_LIMIT, INITIAL_BASE_FEE),
    )
    .expect("chain");
    let pool = TxPool::new(chain.clone(), config);
    (dir, chain, pool)
}

fn fields(nonce: u64, tip_gwei: u128) -> TxEip1559 {
    TxEip1559 {
        chain_id: DEVNET_CHAIN_ID,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 50 * GWEI,
        max_priority_fee_per_gas: tip_gwei * GWEI,
        to: TxKind::Call(Address::repeat_byte(7)),
        value: U256::from(1),
        access_list: Default::default(),
        input: Bytes::new(),
    }
}

fn sign(t: TxEip1559, signer: &PrivateKeySigner) -> Recovered<TxEnvelope> {
    let sig = signer.sign_hash_sync(&t.signature_hash()).expect("sign");
    Recovered::new_unchecked(TxEnvelope::from(t.into_signed(sig)), signer.address())
}

fn tx(signer: &PrivateKeySigner, nonce: u64, tip_gwei: u128) -> Recovered<TxEnvelope> {
    sign(fields(nonce, tip_gwei), signer)
}

/// Seals and commits an empty block on `chain`.
fn seal_empty(chain: &Chain) {
    let head = chain.head();
    let builder = chain
        .builder(BlockAttributes {
            timestamp: head.timestamp + 1,
            fee_recipient: Address::ZERO,
            prev_randao: B256::ZERO,
            gas_limit: head.gas_limit,
            withdrawals: Vec::new(),
            parent_beacon_block_root: B256::ZERO,
            extra_data: Bytes::new(),
        })
        .expect("builder");
    chain
        .commit(&builder.finish().expect("seal"))
        .expect("commit");
}

#[test]
fn test_best_orders_by_tip_and_keeps_nonce_order() {
    let (_dir, _chain, pool) = setup(PoolConfig::default());
    let s = dev_signers();
    // Sender 0: a low tip first, then a high one that can only follow it.
    pool.add(tx(&s[0], 0, 1)).expect("add");
    pool.add(tx(&s[0], 1, 9)).expect("add");
    pool.add(tx(&s[1], 0, 5)).expect("add");
    let order: Vec<(Address, u64)> = pool
        .best(INITIAL_BASE_FEE)
        .map(|t| (t.sender(), t.nonce()))
        .collect();
    assert_eq!(
        order,
        vec![
            (s[1].address(), 0),
            (s[0].address(), 0),
            (s[0].address(), 1)
        ]
    );
}

#[test]
fn test_skip_last_sender_drops_its_later_nonces() {
    let (_dir, _chain, pool) = setup(PoolConfig::default());
    let s = dev_signers();
    pool.add(tx(&s[0], 0, 9)).expect("add");
    pool.add(tx(&s[0], 1, 9)).expect("add");
    pool.add(tx(&s[1], 0, 1)).expect("add");
    let mut best = pool.best(INITIAL_BASE_FEE);
    let first = best.next().expect("one");
    assert_eq!(first.sender(), s[0].address());
    best.skip_last_sender();
    let rest: Vec<Address> = best.map(|t| t.sender()).collect();
    assert_eq!(rest, vec![s[1].address()]);
}

#[test]
fn test_replacement_needs_a_fee_bump() {
    let (_dir, _chain, pool) = setup(PoolConfig::default());
    let s = dev_signers();
    pool.add(tx(&s[0], 0, 10)).expect("add");
    assert_eq!(pool.add(tx(&s[0], 0, 10)), Err(PoolError::AlreadyKnown));
    // Same fees, another value: a different transaction that pays nothing more.
    let cheaper = sign(
        TxEip1559 {
            value: U256::from(2),
            ..fields(0, 10)
        },
        &s[0],
    );
    assert_eq!(pool.add(cheaper), Err(PoolError::ReplacementUnderpriced));
    let bumped = sign(
        TxEip1559 {
            max_fee_per_gas: 60 * GWEI,
            max_priority_fee_per_gas: 11 * GWEI,
            ..fields(0, 10)
        },
        &s[0],
    );
    let hash = pool.add(bumped).expect("a 10% bump replaces");
    assert_eq!(pool.len(), 1);
    assert!(pool.get(&hash).is_some());
}

#[test]
fn test_full_pool_refuses_and_on_block_cleans_up() {
    let config = PoolConfig {
        max_transactions: 2,
        ..PoolConfig::default()
    };
    let (_dir, chain, pool) = setup(config);
    let s = dev_signers();
    pool.add(tx(&s[0], 0, 2)).expect("add");
    pool.add(tx(&s[0], 1, 2)).expect("add");
    assert_eq!(pool.add(tx(&s[1], 0, 2)), Err(PoolError::Full));
    assert_eq!(pool.pending_nonce(s[0].address(), 0), 2);

    // Include the first one; the pool forgets it and keeps the second.
    let head = chain.head();
    let mut builder = chain
        .builder(BlockAttributes {
            timestamp: head.timestamp + 1,
            fee_recipient: Address::ZERO,
            prev_randao: B256::ZERO,
            gas_limit: head.gas_limit,
            withdrawals: Vec::new(),
            parent_beacon_block_root: B256::ZERO,
            extra_data: Bytes::new(),
        })
        .expect("builder");
    builder.execute(tx(&s[0], 0, 2)).expect("ok").expect("in");
    chain
        .commit(&builder.finish().expect("seal"))
        .expect("commit");
    let (_, state) = chain.head_state().expect("state");
    pool.on_block(&state);
    assert_eq!(pool.len(), 1);
    assert_eq!(
        pool.add(tx(&s[0], 0, 3)),
        Err(PoolError::NonceTooLow {
            got: 0,
            expected: 1
        })
    );
}

#[test]
fn test_admission_rules() {
    let (_dir, _chain, pool) = setup(PoolConfig::default());
    let s = dev_signers();
    let base = fields(0, 1);
    let poor = PrivateKeySigner::random();
    assert!(matches!(
        pool.add(sign(base.clone(), &poor)),
        Err(PoolError::InsufficientFunds { .. })
    ));
    let low_gas = TxEip1559 {
        gas_limit: 20_000,
        ..base.clone()
    };
    assert!(matches!(
        pool.add(sign(low_gas, &s[0])),
        Err(PoolError::IntrinsicGasTooLow { .. })
    ));
    let tip_over_cap = TxEip1559 {
        max_priority_fee_per_gas: 60 * GWEI,
        ..base.clone()
    };
    assert_eq!(
        pool.add(sign(tip_over_cap, &s[0])),
        Err(PoolError::TipAboveFeeCap)
    );
    let cheap = TxEip1559 {
        max_fee_per_gas: 1,
        max_priority_fee_per_gas: 0,
        ..base.clone()
    };
    assert!(matches!(
        pool.add(sign(cheap, &s[0])),
        Err(PoolError::FeeBelowBaseFee { .. })
    ));
    let other_chain = TxEip1559 {
        chain_id: 1,
        ..base.clone()
    };
    assert!(matches!(
        pool.add(sign(other_chain, &s[0])),
        Err(PoolError::WrongChainId { got: 1, .. })
    ));
    let huge = TxEip1559 {
        gas_limit: DEFAULT_GAS_LIMIT + 1,
        ..base
    };
    assert_eq!(
        pool.add(sign(huge, &s[0])),
        Err(PoolError::GasLimitExceedsBlock)
    );
    assert!(pool.is_empty());
}

#[test]
fn test_a_reserved_transaction_is_seen_only_once_published() {
    let (_dir, _chain, pool) = setup(PoolConfig::default());
    let s = cobuild_chain::dev_signers();
    let bumped = || {
        sign(
            TxEip1559 {
                max_fee_per_gas: 60 * GWEI,
                ..fields(0, 5)
            },
            &s[0],
        )
    };
    let first = pool.reserve(tx(&s[0], 0, 2), None).expect("reserve");
    let hash = first.id();
    assert!(pool.get(&hash).is_none(), "not shown while reserved");
    assert_eq!(pool.best(0).count(), 0, "not offered while reserved");
    assert_eq!(pool.pending_nonce(s[0].address(), 0), 0);
    assert_eq!(
        pool.reserve(bumped(), None).map(|r| r.id()),
        Err(PoolError::PendingReplacement),
        "it holds its place: a replacement waits until it is settled"
    );
    // The same transaction again (a resend, another member's copy) joins it: one withdrawal
    // leaves it waiting on the other.
    let copy = pool.reserve(tx(&s[0], 0, 2), None).expect("joins");
    copy.withdraw();
    assert_eq!(pool.len(), 1);
    assert!(pool.get(&hash).is_none());
    first.publish();
    assert!(pool.get(&hash).is_some());
    assert_eq!(pool.pending_nonce(s[0].address(), 0), 1);
    assert_eq!(pool.add(tx(&s[0], 0, 2)), Err(PoolError::AlreadyKnown));

    // A withdrawn replacement puts the replaced transaction back; a dropped one goes.
    let bump = pool.reserve(bumped(), None).expect("replacement");
    assert!(pool.get(&hash).is_none(), "replaced while reserved");
    bump.withdraw();
    assert!(pool.get(&hash).is_some(), "back after the withdrawal");
    drop(pool.reserve(tx(&s[1], 0, 2), None).expect("reserve"));
    assert_eq!(pool.len(), 1);
    assert_eq!(pool.best(0).count(), 1);

    // Two reservations of one transaction whose writes both fail leave nothing behind.
    let a = pool.reserve(tx(&s[2], 0, 2), None).expect("reserve");
    let b = pool.reserve(tx(&s[2], 0, 2), None).expect("joins");
    a.withdraw();
    b.withdraw();
    assert_eq!(pool.len(), 1);
}
