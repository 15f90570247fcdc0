//! The refunds of one block worked out by hand: the block is built on a devnet chain, its
//! orders replayed with `replay::figures`, and the rule applied.

use alloy_consensus::{TxEnvelope, transaction::Recovered};
use alloy_primitives::{Address, U256, address};
use alloy_signer_local::PrivateKeySigner;
use cobuild_chain::{
    dev_signers,
    test_utils::{devnet_chain, next_attrs, sign, transfer},
};
use cobuild_primitives::Allowed;
use cobuild_refunds::{Contribution, Landed, replay};

/// The unit of every payment: 0.001 ether, far above the gas the transfers cost.
const U: u128 = 1_000_000_000_000_000;

const A: Address = address!("0x00000000000000000000000000000000000000a1");
const B: Address = address!("0x00000000000000000000000000000000000000b1");
const S1: Address = address!("0x00000000000000000000000000000000000005a1");
const S2: Address = address!("0x00000000000000000000000000000000000005a2");
const X: Address = address!("0x00000000000000000000000000000000000000c1");
const Y: Address = address!("0x00000000000000000000000000000000000000d1");
const R: Address = address!("0x00000000000000000000000000000000000000e1");

fn u(n: u128) -> U256 {
    U256::from(n * U)
}

/// A transfer of `units` to `coinbase` with no priority fee: what it pays the builder is
/// exactly its value.
fn pay(
    signer: &PrivateKeySigner,
    nonce: u64,
    coinbase: Address,
    units: u128,
) -> Recovered<TxEnvelope> {
    sign(signer, transfer(nonce, coinbase, units * U, 0))
}

fn order(
    key: &'static str,
    identity: Option<Address>,
    txs: Vec<Recovered<TxEnvelope>>,
) -> Landed<&'static str> {
    Landed {
        key,
        identity,
        txs,
        rules: Allowed::default(),
        in_block_refund: 0,
    }
}

#[test]
fn test_the_refunds_of_a_block_match_the_figures_worked_by_hand() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = devnet_chain(dir.path());
    let k = dev_signers();
    let builder_key = &k[9];
    let coinbase = builder_key.address();

    // The block's orders, in block order:
    //   A pays 30 from k0; Y (which did not land) would have paid 25 from k0's same nonce.
    //   B pays 20.
    //   S1 and S2, one sender as two identities, pay 10 each from k2 and k3; X (which did not
    //   land) would have paid 6 + 6 from both their nonces, so it lands only without both.
    //   P, a public transaction, pays 5 and earns nothing.
    //   R pays 40 and keeps half in the block (refundPercent 50): it earns nothing more.
    let a = order("a", Some(A), vec![pay(&k[0], 0, coinbase, 30)]);
    let b = order("b", Some(B), vec![pay(&k[1], 0, coinbase, 20)]);
    let s1 = order("s1", Some(S1), vec![pay(&k[2], 0, coinbase, 10)]);
    let s2 = order("s2", Some(S2), vec![pay(&k[3], 0, coinbase, 10)]);
    let p = order("p", None, vec![pay(&k[4], 0, coinbase, 5)]);
    let r = Landed {
        in_block_refund: 50,
        ..order("r", None, vec![pay(&k[5], 0, coinbase, 40)])
    };
    let y = order("y", Some(Y), vec![pay(&k[0], 0, coinbase, 25)]);
    let x = order(
        "x",
        Some(X),
        vec![pay(&k[2], 0, coinbase, 6), pay(&k[3], 0, coinbase, 6)],
    );
    // A candidate that conflicts with nothing was only left out; it changes no refund.
    let late = order("late", Some(Y), vec![pay(&k[6], 0, coinbase, 1)]);

    // The block as its builder built it: the orders, R's in-block refund, then the proposer
    // payment of 10.
    let mut block = chain
        .builder(next_attrs(&chain, coinbase))
        .expect("builder");
    for o in [&a, &b, &s1, &s2, &p, &r] {
        block
            .execute_bundle(&o.txs, &o.rules)
            .expect("no fatal")
            .expect("lands");
    }
    let proposer = address!("0x0000000000000000000000000000000000000fee");
    block
        .execute(sign(builder_key, transfer(0, R, 20 * U, 0)))
        .expect("no fatal")
        .expect("refund lands");
    block
        .execute(sign(builder_key, transfer(1, proposer, 10 * U, 0)))
        .expect("no fatal")
        .expect("payment lands");
    let sealed = block.finish().expect("sealed");
    chain.commit(&sealed).expect("committed");
    // The replay reads the state the block was built on even after later blocks.
    let next = chain
        .builder(next_attrs(&chain, coinbase))
        .expect("builder");
    chain
        .commit(&next.finish().expect("sealed"))
        .expect("committed");

    let landed = [a, b, s1, s2, p, r];
    let (figures, full, orders) =
        replay::figures(&chain, 1, &landed, &[y, x, late], u(10)).expect("replayed");
    // v(T) = 30 + 20 + 10 + 10 + 5 + 40/2.
    assert_eq!(figures.value, u(95));
    assert_eq!(
        orders.len(),
        8,
        "the candidate that conflicts with nothing is gone"
    );
    assert_eq!(full.paid[..6], [u(30), u(20), u(10), u(10), u(5), u(20)]);
    let contribution = |paid, without| Contribution {
        paid: u(paid),
        value_without: u(without),
    };
    // Without A, Y lands and pays 25: v(T∖A) = 95 − 30 + 25. Without B: 95 − 20. Without S1
    // (or S2) X still cannot land: 85. Y and X paid nothing in the block.
    assert_eq!(figures.contributions[&A], contribution(30, 90));
    assert_eq!(figures.contributions[&B], contribution(20, 75));
    assert_eq!(figures.contributions[&S1], contribution(10, 85));
    assert_eq!(figures.contributions[&S2], contribution(10, 85));
    assert_eq!(figures.contributions[&Y].paid, U256::ZERO);
    assert_eq!(figures.contributions[&X].paid, U256::ZERO);
    assert_eq!(
        figures.contributions.len(),
        6,
        "P and R earn nothing: {figures:?}"
    );
    // Without both S1 and S2, X lands and pays 12: v(T∖{S1,S2}) = 95 − 20 + 12.
    let split = figures
        .joint
        .iter()
        .find(|j| j.identities == [S1, S2].into())
        .expect("S1 and S2 both block X: their pair is capped");
    assert_eq!(split.value_without, u(87));

    // μ: A min(30, 5) = 5, B 20, S1 10, S2 10; Σμ = 45 ≤ v − c = 85, so each gets its μ, and
    // the pair cap min(10 + 10, 95 − 87) = 8 takes 6 off each of S1 and S2: what S as one
    // identity would get, min(20, 8).
    let refunds = cobuild_refunds::refunds(&figures).expect("rule applies");
    assert_eq!(refunds.to_split, u(45));
    assert_eq!(
        refunds.refunds,
        [(A, u(5)), (B, u(20)), (S1, u(4)), (S2, u(4))].into()
    );
    assert_eq!(refunds.remainder, u(12));
}
