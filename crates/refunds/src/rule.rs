//! The flat-tax rule for one slot whose block a member won.
//!
//! `μ_i = min(b_i, v(T) − v(T∖i))` bounds what an identity earns by what it paid and by what
//! the block would lose without it; the builder shares out `min(v(T) − c, Σμ)` in proportion to
//! `μ`, so it never pays out more than it kept after the proposer payment `c`. Every division
//! rounds down; what rounding and the identity caps withhold stays with the builder and is
//! reported as the remainder.
//!
//! The identity cap (for any set `I`, `Σ_{i∈I} r_i ≤ min(Σ_{i∈I} b_i, v(T) − v(T∖I))`) is
//! enforced exactly for every set the caller lists in [`SlotFigures::joint`], each by the
//! smallest change in the least-squares sense (equal cuts, none below zero), sets in order.
//! Cutting only lowers refunds, so a later set never breaks an earlier one. Which sets are
//! listed is the caller's choice: checking every subset is exponential, so, like rbuilder's
//! redistribution, the node lists the pairs whose orders interact (a pairwise approximation of
//! the published rule, which asks for every subset).

use std::collections::{BTreeMap, BTreeSet};

use alloy_primitives::{U256, U512};

use crate::Identity;

/// What one identity's orders did in the winning block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contribution {
    /// `b_i`: what its orders paid the builder in the block.
    pub paid: U256,
    /// `v(T∖i)`: the block's value to its builder with the identity's orders left out.
    pub value_without: U256,
}

/// A set of identities whose orders interact, and the block's value without all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joint {
    /// The identities (at least two, each with a [`Contribution`]).
    pub identities: BTreeSet<Identity>,
    /// `v(T∖I)`.
    pub value_without: U256,
}

/// The figures of one won slot the rule needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotFigures {
    /// `v(T)`: the block's value to its builder.
    pub value: U256,
    /// `c`: what the builder paid the proposer.
    pub payment: U256,
    /// Every identity with orders in the block.
    pub contributions: BTreeMap<Identity, Contribution>,
    /// Sets of identities whose joint cap is enforced.
    pub joint: Vec<Joint>,
}

/// The refunds of one slot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refunds {
    /// `μ_i` per identity.
    pub marginal: BTreeMap<Identity, U256>,
    /// What is shared out: `min(v(T) − c, Σμ)` (zero when the proposer got it all).
    pub to_split: U256,
    /// The refund per identity (identities owed nothing are left out).
    pub refunds: BTreeMap<Identity, U256>,
    /// `to_split − Σ refunds`: what rounding and the caps withheld, kept by the builder.
    pub remainder: U256,
}

/// The figures do not describe a slot the rule can be applied to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefundError {
    /// A joint set names fewer than two identities.
    #[error("a joint set needs at least two identities, got {0}")]
    JointTooSmall(usize),
    /// A joint set names an identity with no contribution.
    #[error("joint set names {0}, which has no orders in the block")]
    UnknownIdentity(Identity),
    /// The figures add up to more wei than exist (2^256).
    #[error("the figures overflow 256 bits")]
    Overflow,
}

/// `Σ values`, or [`RefundError::Overflow`].
fn sum(values: impl IntoIterator<Item = U256>) -> Result<U256, RefundError> {
    values.into_iter().try_fold(U256::ZERO, |total, v| {
        total.checked_add(v).ok_or(RefundError::Overflow)
    })
}

/// Applies the rule to `figures`.
pub fn refunds(figures: &SlotFigures) -> Result<Refunds, RefundError> {
    for joint in &figures.joint {
        if joint.identities.len() < 2 {
            return Err(RefundError::JointTooSmall(joint.identities.len()));
        }
        if let Some(unknown) = joint
            .identities
            .iter()
            .find(|i| !figures.contributions.contains_key(*i))
        {
            return Err(RefundError::UnknownIdentity(*unknown));
        }
    }
    let marginal: BTreeMap<Identity, U256> = figures
        .contributions
        .iter()
        .map(|(identity, c)| {
            let loss = figures.value.saturating_sub(c.value_without);
            (*identity, c.paid.min(loss))
        })
        .collect();
    let total = sum(marginal.values().copied())?;
    let to_split = figures.value.saturating_sub(figures.payment).min(total);
    let mut refunds: BTreeMap<Identity, U256> = marginal
        .iter()
        .map(|(identity, mu)| (*identity, share(*mu, to_split, total)))
        .collect();
    for joint in &figures.joint {
        let paid = sum(joint
            .identities
            .iter()
            .map(|i| figures.contributions[i].paid))?;
        let cap = paid.min(figures.value.saturating_sub(joint.value_without));
        cut_to(&mut refunds, &joint.identities, cap);
    }
    refunds.retain(|_, r| !r.is_zero());
    let paid_out = sum(refunds.values().copied())?;
    Ok(Refunds {
        marginal,
        to_split,
        // Each share is rounded down from its exact part of `to_split`, and caps only lower them.
        remainder: to_split
            .checked_sub(paid_out)
            .ok_or(RefundError::Overflow)?,
        refunds,
    })
}

/// `⌊part · whole / of⌋` without overflow; callers pass `whole ≤ of`, so it is at most `part`
/// (saturating otherwise rather than panicking).
pub(crate) fn share(part: U256, whole: U256, of: U256) -> U256 {
    if of.is_zero() {
        return U256::ZERO;
    }
    let exact = U512::from(part) * U512::from(whole) / U512::from(of);
    U256::saturating_from(exact)
}

/// Lowers the refunds of `set` until they add up to at most `cap`, by the least squared change:
/// the same amount off each, none below zero (those that would go below are zeroed and the rest
/// share what is left to cut). Wei that do not divide evenly come off the lowest addresses first.
fn cut_to(refunds: &mut BTreeMap<Identity, U256>, set: &BTreeSet<Identity>, cap: U256) {
    let sum = set.iter().fold(U256::ZERO, |sum, i| {
        sum.saturating_add(refunds.get(i).copied().unwrap_or_default())
    });
    let Some(mut excess) = sum.checked_sub(cap).filter(|e| !e.is_zero()) else {
        return;
    };
    // Smallest refunds first, ties by address: those are the ones cutting can zero.
    let mut left: Vec<(U256, Identity)> = set
        .iter()
        .map(|i| (refunds.get(i).copied().unwrap_or_default(), *i))
        .collect();
    left.sort_unstable();
    let mut start = 0;
    while !excess.is_zero() && start < left.len() {
        let count = U256::from(left.len() - start);
        let (each, odd) = (excess / count, excess % count);
        let smallest = left[start].0;
        if smallest > each || (smallest == each && odd.is_zero()) {
            // Every one left can give `each`, and the `odd` extra wei come one each from the
            // lowest addresses, which all hold more than `each`.
            let mut by_address: Vec<&mut (U256, Identity)> = left[start..].iter_mut().collect();
            by_address.sort_unstable_by_key(|(_, i)| *i);
            let odd = odd.to::<usize>();
            for (n, (refund, _)) in by_address.into_iter().enumerate() {
                *refund -= each + U256::from(u8::from(n < odd));
            }
            excess = U256::ZERO;
        } else {
            excess -= smallest;
            left[start].0 = U256::ZERO;
            start += 1;
        }
    }
    for (refund, identity) in left {
        refunds.insert(identity, refund);
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::Address;

    use super::*;

    fn id(n: u8) -> Identity {
        Address::with_last_byte(n)
    }

    fn wei(n: u64) -> U256 {
        U256::from(n)
    }

    fn figures(value: u64, payment: u64, identities: &[(u8, u64, u64)]) -> SlotFigures {
        SlotFigures {
            value: wei(value),
            payment: wei(payment),
            contributions: identities
                .iter()
                .map(|&(n, paid, without)| {
                    (
                        id(n),
                        Contribution {
                            paid: wei(paid),
                            value_without: wei(without),
                        },
                    )
                })
                .collect(),
            joint: Vec::new(),
        }
    }

    fn owed(refunds: &Refunds) -> Vec<(u8, u64)> {
        refunds
            .refunds
            .iter()
            .map(|(i, r)| (i.0[19], r.to::<u64>()))
            .collect()
    }

    #[test]
    fn test_marginal_contributions_are_refunded_when_the_builder_kept_enough() {
        // v = 100, c = 60, so 40 is left to share.
        // A paid 30, the block is worth 75 without it: μ = min(30, 25) = 25.
        // B paid 20, worth 90 without it: μ = min(20, 10) = 10.
        // C paid 15, but another bundle takes its place: worth 100 without it, μ = 0.
        // Σμ = 35 ≤ 40, so each gets its μ.
        let out =
            refunds(&figures(100, 60, &[(1, 30, 75), (2, 20, 90), (3, 15, 100)])).expect("valid");
        assert_eq!(out.to_split, wei(35));
        assert_eq!(owed(&out), vec![(1, 25), (2, 10)]);
        assert_eq!(out.remainder, U256::ZERO);
    }

    #[test]
    fn test_what_is_left_after_the_proposer_is_shared_pro_rata_rounding_down() {
        // The same block, but the proposer took 80: 20 to share among Σμ = 35.
        // A: ⌊25 · 20 / 35⌋ = ⌊14.28⌋ = 14; B: ⌊10 · 20 / 35⌋ = ⌊5.71⌋ = 5; 1 wei left over.
        let out =
            refunds(&figures(100, 80, &[(1, 30, 75), (2, 20, 90), (3, 15, 100)])).expect("valid");
        assert_eq!(out.to_split, wei(20));
        assert_eq!(owed(&out), vec![(1, 14), (2, 5)]);
        assert_eq!(out.remainder, wei(1));
        // A proposer paid more than the block was worth leaves nothing to share.
        let out = refunds(&figures(100, 120, &[(1, 30, 75)])).expect("valid");
        assert_eq!((out.to_split, out.refunds.len()), (U256::ZERO, 0));
    }

    #[test]
    fn test_splitting_one_sender_into_two_identities_earns_nothing_extra() {
        // S's two bundles each block a third party's bundle X (which pays 12). v = 100, c = 50.
        // Without S1, S2 still blocks X: worth 90, μ1 = min(10, 10) = 10; the same for S2.
        // Without both, X lands: worth 100 − 20 + 12 = 92, so together they are capped at
        // min(10 + 10, 100 − 92) = 8. Alone, S1 and S2 would get 10 each (Σμ = 20 ≤ 50); the
        // cap takes 12 off, 6 from each: 4 and 4, and the 12 stays with the builder.
        let mut split = figures(100, 50, &[(1, 10, 90), (2, 10, 90)]);
        split.joint.push(Joint {
            identities: [id(1), id(2)].into(),
            value_without: wei(92),
        });
        let out = refunds(&split).expect("valid");
        assert_eq!(owed(&out), vec![(1, 4), (2, 4)]);
        assert_eq!(out.remainder, wei(12));
        // As one identity S (paid 20, worth 92 without it): μ = min(20, 8) = 8, the same total.
        let whole = refunds(&figures(100, 50, &[(1, 20, 92)])).expect("valid");
        assert_eq!(owed(&whole), vec![(1, 8)]);
    }

    #[test]
    fn test_a_cut_zeroes_small_refunds_before_going_below_zero() {
        let mut refunds: BTreeMap<Identity, U256> =
            [(id(1), wei(2)), (id(2), wei(10)), (id(3), wei(11))].into();
        // 23 down to 8: 15 to cut. 5 each would take 1 below zero, so it gives its 2 and the
        // other two share 13: 6 each and the odd wei from the lower address (2).
        cut_to(&mut refunds, &[id(1), id(2), id(3)].into(), wei(8));
        assert_eq!(
            refunds,
            [(id(1), wei(0)), (id(2), wei(3)), (id(3), wei(5))].into()
        );
    }

    #[test]
    fn test_figures_that_name_no_one_are_refused() {
        let mut bad = figures(100, 50, &[(1, 10, 90)]);
        bad.joint.push(Joint {
            identities: [id(1), id(9)].into(),
            value_without: wei(80),
        });
        assert_eq!(refunds(&bad), Err(RefundError::UnknownIdentity(id(9))));
        bad.joint[0].identities = [id(1)].into();
        assert_eq!(refunds(&bad), Err(RefundError::JointTooSmall(1)));
        // Contributions that add up past 2^256 wei are refused, not wrapped or saturated.
        let huge = Contribution {
            paid: U256::MAX,
            value_without: U256::ZERO,
        };
        let overflow = SlotFigures {
            value: U256::MAX,
            payment: U256::ZERO,
            contributions: [(id(1), huge), (id(2), huge)].into(),
            joint: Vec::new(),
        };
        assert_eq!(refunds(&overflow), Err(RefundError::Overflow));
    }

    /// A small deterministic generator, so a failing case can be replayed from its seed.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    #[test]
    fn test_refunds_never_exceed_any_bound_the_rule_sets() {
        for seed in 1..2_000u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            // Wei up to ~10^24 so products overflow 128 bits.
            let scale = U256::from(10u64).pow(U256::from(rng.below(7) * 3));
            let value = U256::from(rng.below(1_000_000)) * scale;
            let payment = U256::from(rng.below(1_200_000)) * scale;
            let n = 1 + rng.below(8) as u8;
            let contributions: BTreeMap<Identity, Contribution> = (0..n)
                .map(|i| {
                    (
                        id(i),
                        Contribution {
                            paid: U256::from(rng.below(300_000)) * scale,
                            value_without: U256::from(rng.below(1_100_000)) * scale,
                        },
                    )
                })
                .collect();
            let joint: Vec<Joint> = (0..rng.below(4))
                .filter(|_| n >= 2)
                .map(|_| {
                    let a = rng.below(u64::from(n)) as u8;
                    let b = (a + 1 + rng.below(u64::from(n) - 1) as u8) % n;
                    Joint {
                        identities: [id(a), id(b)].into(),
                        value_without: U256::from(rng.below(1_100_000)) * scale,
                    }
                })
                .collect();
            let input = SlotFigures {
                value,
                payment,
                contributions,
                joint,
            };
            let out = refunds(&input).expect("valid");
            let total: U256 = out.refunds.values().copied().sum();
            assert!(total <= out.to_split, "seed {seed}");
            assert!(out.to_split <= value.saturating_sub(payment), "seed {seed}");
            assert_eq!(total + out.remainder, out.to_split, "seed {seed}");
            for (identity, refund) in &out.refunds {
                let c = input.contributions[identity];
                assert!(*refund <= out.marginal[identity], "seed {seed}");
                assert!(out.marginal[identity] <= c.paid, "seed {seed}");
            }
            for joint in &input.joint {
                let together: U256 = joint
                    .identities
                    .iter()
                    .map(|i| out.refunds.get(i).copied().unwrap_or_default())
                    .sum();
                let paid: U256 = joint
                    .identities
                    .iter()
                    .map(|i| input.contributions[i].paid)
                    .sum();
                let cap = paid.min(value.saturating_sub(joint.value_without));
                assert!(together <= cap, "seed {seed}: {together} > {cap}");
            }
            // Without caps, each refund is its exact share rounded down: within 1 wei of it.
            if input.joint.is_empty() && !out.to_split.is_zero() {
                let sum_mu: U256 = out.marginal.values().copied().sum();
                for (identity, mu) in &out.marginal {
                    let refund = out.refunds.get(identity).copied().unwrap_or_default();
                    let scaled = U512::from(refund) * U512::from(sum_mu);
                    let exact = U512::from(*mu) * U512::from(out.to_split);
                    assert!(scaled <= exact, "seed {seed}");
                    assert!(exact - scaled < U512::from(sum_mu), "seed {seed}");
                }
            }
            assert_eq!(refunds(&input), Ok(out), "seed {seed}: not deterministic");
        }
    }
}
