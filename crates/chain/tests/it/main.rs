//! Integration tests of the devnet chain: genesis, production, persistence, import, and
//! cross-validation against anvil.

mod anvil;
mod trie;

use std::sync::Arc;

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope, transaction::Recovered};
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, address};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use cobuild_chain::{
    BlockAttributes, BlockBuilder, BundleRejected, Chain, ChainError, DEV_BALANCE, Genesis,
    ImportError, Rollback, TxRejected, dev_signers, test_utils::balance,
};
use cobuild_primitives::{
    Allowed, ChainSpec, DEFAULT_GAS_LIMIT, DEVNET_CHAIN_ID, INITIAL_BASE_FEE, Strict,
};
use revm::{context_interface::result::InvalidTransaction, database_interface::DatabaseRef};

const ONE_ETH: u128 = 1_000_000_000_000_000_000;

fn open(dir: &std::path::Path) -> Chain {
    let spec = Arc::new(ChainSpec::devnet(DEVNET_CHAIN_ID));
    Chain::open(
        &dir.join("chain.redb"),
        spec,
        &Genesis::devnet(DEFAULT_GAS_LIMIT, INITIAL_BASE_FEE),
    )
    .expect("chain opens")
}

fn unsigned_transfer(nonce: u64, to: Address, value: u128) -> TxEip1559 {
    TxEip1559 {
        chain_id: DEVNET_CHAIN_ID,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 3_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(to),
        value: U256::from(value),
        access_list: Default::default(),
        input: Bytes::new(),
    }
}

fn signed(signer: &PrivateKeySigner, tx: TxEip1559) -> Recovered<TxEnvelope> {
    let sig = signer
        .sign_hash_sync(&tx.signature_hash())
        .expect("signing works");
    Recovered::new_unchecked(tx.into_signed(sig).into(), signer.address())
}

fn transfer(
    signer: &PrivateKeySigner,
    nonce: u64,
    to: Address,
    value: u128,
) -> Recovered<TxEnvelope> {
    signed(signer, unsigned_transfer(nonce, to, value))
}

fn attrs(chain: &Chain) -> BlockAttributes {
    let head = chain.head();
    BlockAttributes {
        timestamp: head.timestamp + 2,
        fee_recipient: address!("0x00000000000000000000000000000000000000c0"),
        prev_randao: B256::repeat_byte(0x42),
        gas_limit: head.gas_limit,
        withdrawals: Vec::new(),
        parent_beacon_block_root: B256::repeat_byte(0x01),
        extra_data: Bytes::from_static(b"cobuild"),
    }
}

#[test]
fn test_genesis_is_deterministic_and_funds_dev_accounts() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    let (ca, cb) = (open(a.path()), open(b.path()));
    assert_eq!(ca.head().hash(), cb.head().hash());
    assert_eq!(ca.head().number, 0);
    for signer in dev_signers() {
        assert_eq!(balance(&ca, signer.address()), DEV_BALANCE);
    }
}

#[test]
fn test_block_with_transfer_persists_across_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let signers = dev_signers();
    let to = address!("0x000000000000000000000000000000000000beef");
    let (hash, root) = {
        let chain = open(dir.path());
        let mut builder = chain.builder(attrs(&chain)).expect("builder");
        let outcome = builder
            .execute(transfer(&signers[0], 0, to, ONE_ETH))
            .expect("no fatal error");
        assert_eq!(outcome.expect("included").gas_used, 21_000);
        let block = builder.finish().expect("sealed");
        chain.commit(&block).expect("committed");
        assert_eq!(balance(&chain, to), U256::from(ONE_ETH));
        (block.block.hash, block.header().state_root)
    };
    // Reopening is what a restart after kill -9 does: the head and the state come back.
    let chain = open(dir.path());
    assert_eq!(chain.head().number, 1);
    assert_eq!(chain.head().hash(), hash);
    assert_eq!(chain.head().state_root, root);
    assert_eq!(balance(&chain, to), U256::from(ONE_ETH));
    let view = chain.read().expect("view");
    let receipts = view.receipts(1).expect("read").expect("stored");
    assert_eq!(receipts.len(), 1);
    assert!(receipts[0].status());
    // The fee recipient's balance around the block is kept: the slot ledger records what a
    // block was worth to its builder from it.
    let fee_recipient = attrs(&chain).fee_recipient;
    let (before, after) = view
        .beneficiary_balances(1)
        .expect("read")
        .expect("kept for every block");
    assert_eq!(before, U256::ZERO);
    assert_eq!(after, balance(&chain, fee_recipient));
    assert!(
        after > U256::ZERO,
        "the transfer's priority fee went to the fee recipient"
    );
}

#[test]
fn test_builder_rejects_stale_nonce_without_changing_block() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = open(dir.path());
    let signers = dev_signers();
    let to = Address::repeat_byte(9);
    let mut builder = chain.builder(attrs(&chain)).expect("builder");
    builder
        .execute(transfer(&signers[1], 0, to, 1))
        .expect("no fatal")
        .expect("included");
    let rejected = builder
        .execute(transfer(&signers[1], 0, to, 2))
        .expect("no fatal");
    assert!(matches!(
        rejected,
        Err(TxRejected::Invalid(InvalidTransaction::NonceTooLow { .. }))
    ));
    assert_eq!(builder.transactions().len(), 1);
    assert_eq!(builder.gas_used(), 21_000);
}

/// A fork seals the block so far while the original keeps going, and neither sees the
/// other's later transactions: both seal exactly as blocks built straight through.
#[test]
fn test_a_forked_block_seals_alone_and_the_original_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = open(dir.path());
    let s = dev_signers();
    let to = Address::repeat_byte(9);
    let txs = [
        transfer(&s[1], 0, to, 1),
        transfer(&s[2], 0, to, 2),
        transfer(&s[1], 1, to, 3),
        transfer(&s[3], 0, s[1].address(), ONE_ETH),
    ];
    let straight = |n: usize| {
        let mut builder = chain.builder(attrs(&chain)).expect("builder");
        fill(&mut builder, &txs[..n]);
        builder.finish().expect("seals")
    };

    let mut growing = chain.builder(attrs(&chain)).expect("builder");
    fill(&mut growing, &txs[..2]);
    let mut early = growing.fork();
    fill(&mut growing, &txs[2..]);
    // The fork did not see the original's later nonce 1 of signer 1: it takes it itself.
    assert_eq!(early.transactions().len(), 2);
    assert_eq!(early.gas_used(), 42_000);
    let late = growing.fork().finish().expect("the second fork seals");
    let full = growing.finish().expect("the original seals");
    assert_eq!(full.block.hash, straight(4).block.hash);
    assert_eq!(late.block.hash, full.block.hash);
    assert_eq!(full.receipts, straight(4).receipts);

    early
        .execute(txs[2].clone())
        .expect("no fatal")
        .expect("the fork's own nonce 1");
    assert_eq!(
        early.finish().expect("the fork seals").block.hash,
        straight(3).block.hash
    );
}

/// Executes `txs` into `builder`; each must be included.
fn fill(builder: &mut BlockBuilder, txs: &[Recovered<TxEnvelope>]) {
    for tx in txs {
        builder
            .execute(tx.clone())
            .expect("no fatal")
            .expect("included");
    }
}

#[test]
fn test_a_growing_block_sealed_from_its_last_seal_is_the_block_sealed_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = open(dir.path());
    let s = dev_signers();
    // Past 16 transactions, so the transactions and receipts tries have whole groups to keep.
    let txs: Vec<_> = (0..40u64)
        .map(|n| {
            transfer(
                &s[1 + (n % 3) as usize],
                n / 3,
                Address::repeat_byte(n as u8),
                1,
            )
        })
        .collect();
    let alone = |chain: &Chain, attrs: BlockAttributes, n: usize| {
        let mut builder = chain.builder(attrs).expect("builder");
        fill(&mut builder, &txs[..n]);
        builder.finish().expect("seals")
    };

    let mut growing = chain.builder(attrs(&chain)).expect("builder");
    let mut cache = None;
    let mut done = 0;
    for n in [1, 17, 18, 33, 40] {
        fill(&mut growing, &txs[done..n]);
        done = n;
        let (sealed, kept) = growing.fork().finish_cached(cache.take()).expect("seals");
        let want = alone(&chain, attrs(&chain), n);
        assert_eq!(sealed.block.hash, want.block.hash, "{n} transactions");
        assert_eq!(sealed.receipts, want.receipts);
        assert_eq!(sealed.diff.state_root, want.diff.state_root);
        cache = Some(kept);
    }
    // Committed, the last seal's state hashes to its root, and the trie nodes its composed
    // updates left are those a rebuild makes.
    let (last, _) = growing.finish_cached(cache).expect("seals");
    chain.commit(&last).expect("commits");
    assert_eq!(chain.head().hash(), last.block.hash);
    chain
        .check_state()
        .expect("the committed state and nodes match a rebuild");

    // A cache kept on other attributes still gives the right block. (Transfers' receipts do
    // not depend on the fee recipient, so this does not show the cache is set aside.)
    let other_dir = tempfile::tempdir().expect("tempdir");
    let other = open(other_dir.path());
    let mut other_attrs = attrs(&other);
    other_attrs.fee_recipient = Address::repeat_byte(0xc1);
    let mut first = other.builder(attrs(&other)).expect("builder");
    fill(&mut first, &txs[..20]);
    let (_, kept) = first.finish_cached(None).expect("seals");
    let mut second = other.builder(other_attrs.clone()).expect("builder");
    fill(&mut second, &txs[..20]);
    let (sealed, _) = second.finish_cached(Some(kept)).expect("seals");
    assert_eq!(sealed.block.hash, alone(&other, other_attrs, 20).block.hash);
}

#[test]
fn test_import_accepts_valid_block_and_rejects_tampered_root() {
    let (a, b) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let (producer, follower) = (open(a.path()), open(b.path()));
    let signers = dev_signers();
    let mut builder = producer.builder(attrs(&producer)).expect("builder");
    for (i, s) in signers.iter().take(3).enumerate() {
        builder
            .execute(transfer(s, 0, Address::repeat_byte(i as u8 + 1), ONE_ETH))
            .expect("ok")
            .expect("in");
    }
    let block = builder.finish().expect("sealed");
    producer.commit(&block).expect("committed");

    let mut tampered = block.block.block.clone();
    tampered.header.state_root = B256::repeat_byte(0xee);
    let err = follower
        .import(tampered)
        .expect_err("wrong root must be refused");
    assert!(
        matches!(
            err,
            ChainError::Import(ImportError::Mismatch {
                field: "state root",
                ..
            })
        ),
        "{err}"
    );
    assert_eq!(
        follower.head().number,
        0,
        "a refused block leaves the head alone"
    );

    let hash = follower
        .import(block.block.block.clone())
        .expect("valid block imports");
    assert_eq!(hash, producer.head().hash());
    assert_eq!(
        balance(&follower, Address::repeat_byte(2)),
        U256::from(ONE_ETH)
    );
}

/// A builder's bid on `chain`'s head: `txs`, then its payment `pay` to the proposer.
fn bid(
    chain: &Chain,
    txs: &[Recovered<TxEnvelope>],
    pay: u128,
) -> alloy_consensus::Block<TxEnvelope> {
    let payer = &dev_signers()[9];
    let mut builder = chain.builder(attrs(chain)).expect("builder");
    for tx in txs
        .iter()
        .cloned()
        .chain([transfer(payer, 0, Address::repeat_byte(0xfe), pay)])
    {
        builder.execute(tx).expect("ok").expect("in");
    }
    builder.finish().expect("sealed").block.block
}

#[test]
fn test_a_bid_that_extends_the_last_is_judged_from_it_as_if_whole() {
    let (a, b) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let (builder, relay) = (open(a.path()), open(b.path()));
    let signers = dev_signers();
    let txs: Vec<_> = (0..6)
        .map(|i| {
            transfer(
                &signers[i % 3],
                (i / 3) as u64,
                Address::repeat_byte(i as u8 + 1),
                ONE_ETH,
            )
        })
        .collect();
    let first = bid(&builder, &txs[..3], 1_000);
    let second = bid(&builder, &txs[..5], 2_000);
    let third = bid(&builder, &txs, 3_000);
    relay.reexecute_bid(first).expect("valid");
    assert_eq!(relay.bids_resumed(), 0);

    // A tampered extension is still refused, field by field, though it went on from the first.
    let mut tampered = second.clone();
    tampered.header.state_root = B256::repeat_byte(0xee);
    let refused = relay.reexecute_bid(tampered).expect_err("wrong root");
    assert!(
        matches!(
            refused,
            ChainError::Import(ImportError::Mismatch {
                field: "state root",
                ..
            })
        ),
        "{refused}"
    );
    assert_eq!(relay.bids_resumed(), 1);
    // What the refused bid executed is kept all the same: the corrected bid goes on from it.
    let corrected = relay.reexecute_bid(second.clone()).expect("valid");
    assert_eq!(corrected.block.hash, second.header.hash_slow());
    assert_eq!(
        relay.bids_resumed(),
        2,
        "the corrected bid went on from the refused one"
    );
    // An extension whose new transaction cannot run is refused, at its place in the block.
    let mut stale = second.clone();
    stale.body.transactions[3] = txs[0].inner().clone();
    let refused = relay.reexecute_bid(stale).expect_err("nonce used");
    assert!(
        matches!(
            refused,
            ChainError::Import(ImportError::InvalidTransaction { index: 3, .. })
        ),
        "{refused}"
    );

    // Each valid bid seals to its own header: the first whole (what it extended was taken by
    // the tampered bid), the next two from a kept bid.
    let resumed = relay.bids_resumed();
    for block in [bid(&builder, &txs[..3], 1_000), second, third.clone()] {
        let hash = block.header.hash_slow();
        assert_eq!(relay.reexecute_bid(block).expect("valid").block.hash, hash);
    }
    assert_eq!(
        relay.bids_resumed(),
        resumed + 2,
        "the second and third went on from a kept bid"
    );

    // Another builder's bid (another fee recipient) does not go on from this one's.
    let mut other = relay
        .builder(BlockAttributes {
            fee_recipient: Address::repeat_byte(0xc1),
            ..attrs(&relay)
        })
        .expect("builder");
    for tx in txs.iter().cloned() {
        other.execute(tx).expect("ok").expect("in");
    }
    other
        .execute(transfer(&signers[9], 0, Address::repeat_byte(0xfe), 5))
        .expect("ok")
        .expect("in");
    let other = other.finish().expect("sealed").block.block;
    let hash = other.header.hash_slow();
    assert_eq!(relay.reexecute_bid(other).expect("valid").block.hash, hash);
    assert_eq!(relay.bids_resumed(), resumed + 2);

    // The judged block commits as the whole re-execution's would.
    let executed = relay.reexecute_bid(third.clone()).expect("valid");
    relay.commit(&executed).expect("commits");
    assert_eq!(relay.head().hash(), third.header.hash_slow());
    assert_eq!(
        balance(&relay, Address::repeat_byte(6)),
        U256::from(ONE_ETH)
    );
}

/// Seals `n` empty blocks on `chain`.
fn seal_empty(chain: &Chain, n: usize) {
    for _ in 0..n {
        let block = chain
            .builder(attrs(chain))
            .expect("builder")
            .finish()
            .expect("sealed");
        chain.commit(&block).expect("committed");
    }
}

#[test]
fn test_a_rolled_back_or_emptied_store_is_refused_unless_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("chain.redb");
    let chain = open(dir.path());
    seal_empty(&chain, 1);
    drop(chain);
    // A copy of the store at block 1, as a repair to an older commit would leave it.
    std::fs::copy(&store, dir.path().join("at-1.redb")).expect("copy");
    let chain = open(dir.path());
    seal_empty(&chain, 2);
    let head = chain.head().hash();
    drop(chain);

    std::fs::copy(dir.path().join("at-1.redb"), &store).expect("restore the older copy");
    let spec = Arc::new(ChainSpec::devnet(DEVNET_CHAIN_ID));
    let genesis = Genesis::devnet(DEFAULT_GAS_LIMIT, INITIAL_BASE_FEE);
    match Chain::open(&store, spec.clone(), &genesis) {
        Err(ChainError::RolledBack {
            head: 1,
            empty: false,
            marked: 3,
            marked_hash,
            ..
        }) => assert_eq!(marked_hash, head),
        other => panic!("a rollback must be refused: {other:?}"),
    }
    // Accepted, it opens at the store's head and records that head from then on.
    let chain = Chain::open_with(&store, spec.clone(), &genesis, Rollback::Accept).expect("opens");
    assert_eq!(chain.head().number, 1);
    drop(chain);
    assert_eq!(
        open(dir.path()).head().number,
        1,
        "accepted once, not refused again"
    );

    // A store that is gone while its mark says it had blocks.
    std::fs::remove_file(&store).expect("rm");
    match Chain::open(&store, spec, &genesis) {
        Err(error @ ChainError::RolledBack { empty: true, .. }) => {
            assert!(error.to_string().contains("deleted or emptied"), "{error}");
        }
        other => panic!("an emptied store must be refused: {other:?}"),
    }
}

#[test]
fn test_reopen_with_other_genesis_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(open(dir.path()));
    let spec = Arc::new(ChainSpec::devnet(DEVNET_CHAIN_ID));
    let other = Genesis::devnet(DEFAULT_GAS_LIMIT / 2, INITIAL_BASE_FEE);
    let err = Chain::open(&dir.path().join("chain.redb"), spec, &other).expect_err("mismatch");
    assert!(matches!(err, ChainError::GenesisMismatch { .. }));
}

fn call(
    signer: &PrivateKeySigner,
    nonce: u64,
    to: Address,
    gas_limit: u64,
) -> Recovered<TxEnvelope> {
    signed(
        signer,
        TxEip1559 {
            gas_limit,
            value: U256::ZERO,
            ..unsigned_transfer(nonce, to, 0)
        },
    )
}

/// The EIP-4788 contract reverts on calldata that is not 32 bytes long.
const REVERTS: Address = alloy_eips::eip4788::BEACON_ROOTS_ADDRESS;

#[test]
fn test_bundle_with_forbidden_revert_leaves_block_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = open(dir.path());
    let s = dev_signers();
    let bundle = [
        transfer(&s[3], 0, Address::repeat_byte(5), ONE_ETH),
        call(&s[3], 1, REVERTS, 100_000),
    ];
    let reverting = *bundle[1].tx_hash();
    let mut builder = chain.builder(attrs(&chain)).expect("builder");

    let refused = builder
        .execute_bundle(&bundle, &Strict)
        .expect("no fatal error");
    assert_eq!(refused, Err(BundleRejected::Reverted { hash: reverting }));
    assert!(
        builder.transactions().is_empty(),
        "nothing of the bundle landed"
    );
    assert_eq!(builder.gas_used(), 0);

    let included = builder
        .execute_bundle(
            &bundle,
            &Allowed {
                reverting: vec![reverting],
                dropping: Vec::new(),
            },
        )
        .expect("no fatal error");
    let outcome = included.expect("allowed revert keeps the bundle");
    assert_eq!(outcome.included, vec![*bundle[0].tx_hash(), reverting]);
    assert_eq!(builder.transactions().len(), 2);
    assert_eq!(outcome.gas_used, builder.gas_used());
    assert!(
        outcome.coinbase_profit > U256::ZERO,
        "priority fees reach the coinbase"
    );
    let block = builder.finish().expect("sealed");
    chain.commit(&block).expect("commit");
    assert_eq!(
        balance(&chain, Address::repeat_byte(5)),
        U256::from(ONE_ETH)
    );
}

#[test]
fn test_bundle_drops_only_what_it_may() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = open(dir.path());
    let s = dev_signers();
    // Nonce 7 cannot run now: invalid.
    let bundle = [
        transfer(&s[4], 7, Address::repeat_byte(6), 1),
        transfer(&s[5], 0, Address::repeat_byte(6), 2),
    ];
    let invalid = *bundle[0].tx_hash();
    let mut builder = chain.builder(attrs(&chain)).expect("builder");
    let refused = builder.execute_bundle(&bundle, &Strict).expect("no fatal");
    assert!(matches!(refused, Err(BundleRejected::Invalid { hash, .. }) if hash == invalid));
    assert!(builder.transactions().is_empty());
    let outcome = builder
        .execute_bundle(
            &bundle,
            &Allowed {
                reverting: Vec::new(),
                dropping: vec![invalid],
            },
        )
        .expect("no fatal")
        .expect("kept");
    assert_eq!(outcome.included, vec![*bundle[1].tx_hash()]);
    assert_eq!(builder.transactions().len(), 1);
}

#[test]
fn test_a_bundle_commits_what_its_dry_run_did_and_seals_the_block_its_transactions_make_alone() {
    let (a, b) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let (chain, follower) = (open(a.path()), open(b.path()));
    let s = dev_signers();
    let fresh = Address::repeat_byte(0x77);
    let before = transfer(&s[6], 0, fresh, ONE_ETH);
    // Each transaction runs on what the earlier ones left: the sender's nonces, the fresh
    // account; one reverts (allowed), one cannot run (nonce 5, dropped).
    let bundle = [
        transfer(&s[6], 1, fresh, ONE_ETH),
        call(&s[6], 2, REVERTS, 100_000),
        transfer(&s[7], 5, fresh, 1),
        transfer(&s[6], 3, fresh, 2),
    ];
    let after = transfer(&s[6], 4, fresh, 3);
    let rules = Allowed {
        reverting: vec![*bundle[1].tx_hash()],
        dropping: vec![*bundle[2].tx_hash()],
    };

    let mut builder = chain.builder(attrs(&chain)).expect("builder");
    fill(&mut builder, std::slice::from_ref(&before));
    let outcome = builder
        .execute_bundle(&bundle, &rules)
        .expect("no fatal")
        .expect("kept");
    fill(&mut builder, std::slice::from_ref(&after));

    let kept = [&bundle[0], &bundle[1], &bundle[3]];
    assert_eq!(
        outcome.included,
        kept.iter().map(|tx| *tx.tx_hash()).collect::<Vec<_>>()
    );
    let mut alone = chain.builder(attrs(&chain)).expect("builder");
    fill(&mut alone, std::slice::from_ref(&before));
    let (mut gas, mut profit) = (0, U256::ZERO);
    for tx in kept {
        let one = alone.execute(tx.clone()).expect("no fatal").expect("in");
        gas += one.gas_used;
        profit += one.coinbase_profit;
    }
    fill(&mut alone, std::slice::from_ref(&after));
    assert_eq!((outcome.gas_used, outcome.coinbase_profit), (gas, profit));
    let want = alone.finish().expect("seals");

    // Both seals: the one from the whole diff and the one from the keys each commit touched.
    let whole = builder.fork().finish().expect("seals");
    let (touched, _) = builder.finish_cached(None).expect("seals");
    for sealed in [&whole, &touched] {
        assert_eq!(sealed.block.hash, want.block.hash);
        assert_eq!(sealed.receipts, want.receipts);
        assert_eq!(sealed.diff.state_root, want.diff.state_root);
    }
    chain.commit(&touched).expect("commits");
    chain
        .check_state()
        .expect("the committed state matches a rebuild");
    let imported = follower
        .import(touched.block.block.clone())
        .expect("another node re-executes the block to the same roots");
    assert_eq!(imported, touched.block.hash);
    assert_eq!(balance(&follower, fresh), U256::from(2 * ONE_ETH + 5));
}

#[test]
fn test_the_state_before_a_recent_block_is_read_back_and_its_block_replays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = open(dir.path());
    let signers = dev_signers();
    let to = address!("0x000000000000000000000000000000000000beef");
    // The EIP-4788 contract stores each block's timestamp and beacon root: storage that every
    // block overwrites, beside the balances the transfers move.
    let beacon_slot = |chain: &Chain, number: u64| {
        let (_, state) = chain.state_at(number).expect("state kept");
        let timestamp = chain.read().expect("view").header(number).expect("read");
        let slot = U256::from(timestamp.expect("header").timestamp % 8191);
        state.storage_ref(REVERTS, slot).expect("read")
    };
    let mut seen = Vec::new();
    for n in 0..3u64 {
        let mut builder = chain.builder(attrs(&chain)).expect("builder");
        let tx = transfer(&signers[0], n, to, ONE_ETH);
        builder.execute(tx).expect("no fatal").expect("included");
        let block = builder.finish().expect("sealed");
        chain.commit(&block).expect("committed");
        seen.push((
            balance(&chain, to),
            balance(&chain, signers[0].address()),
            beacon_slot(&chain, n + 1),
        ));
    }
    for (n, (to_balance, from_balance, stored)) in seen.iter().enumerate() {
        let number = n as u64 + 1;
        let (header, state) = chain.state_at(number).expect("state kept");
        assert_eq!(header.number, number);
        let read = |who| state.basic_ref(who).expect("read").map(|a| a.balance);
        assert_eq!(read(to), Some(*to_balance), "after block {number}");
        assert_eq!(read(signers[0].address()), Some(*from_balance));
        assert_eq!(beacon_slot(&chain, number), *stored);
    }
    // Before block 1 the recipient did not exist.
    let (_, genesis) = chain.state_at(0).expect("genesis state kept");
    assert_eq!(genesis.basic_ref(to).expect("read"), None);

    // Block 2 again, on the state it was built on: its transaction is valid there (nonce 1),
    // pays the same fee, and the replay can never be sealed over the head.
    let mut replay = chain.replay(2).expect("replay opens");
    let stored = chain
        .read()
        .expect("view")
        .block(2)
        .expect("read")
        .expect("block");
    let tx = Recovered::new_unchecked(stored.block.body.transactions[0].clone(), stored.senders[0]);
    let outcome = replay.execute(tx).expect("no fatal").expect("valid again");
    assert!(outcome.success);
    assert_eq!(replay.balance(to).expect("read"), seen[1].0);
    assert!(replay.finish().is_err(), "a replay must not seal");
    assert!(matches!(
        chain.state_at(4),
        Err(ChainError::NoHistory { number: 4, head: 3 })
    ));
}

#[test]
fn test_every_blocks_state_is_kept_unless_a_window_is_set() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = open(dir.path());
    seal_empty(&chain, 300);
    // By default every block's state stays readable, the genesis too.
    assert!(chain.state_at(0).is_ok(), "the genesis state is kept");
    assert!(chain.state_at(150).is_ok());

    // A window of 10 is widened to the 256 blocks the ledger needs; the index pass after the
    // next block prunes everything older at once.
    chain.keep_history(Some(10));
    seal_empty(&chain, 1);
    chain.index_history().expect("indexed");
    let head = chain.head().number;
    assert_eq!(head, 301);
    assert!(matches!(
        chain.state_at(0),
        Err(ChainError::NoHistory { number: 0, .. })
    ));
    assert!(matches!(
        chain.state_at(head - 257),
        Err(ChainError::NoHistory { .. })
    ));
    assert!(
        chain.state_at(head - 256).is_ok(),
        "the last 256 blocks' states are kept"
    );
}
