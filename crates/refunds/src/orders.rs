//! An identity's refund over its orders, so each bundle's refund can be queried on its own.

use alloy_primitives::U256;

use crate::rule::share;

/// An identity's refund shared over its orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split<K> {
    /// Each order's part, in the order given (orders that paid nothing get nothing).
    pub parts: Vec<(K, U256)>,
    /// What rounding left over; it goes to the first order that paid the most (the first
    /// order when none paid anything), so the parts add up to the refund whenever there is an
    /// order to give it to.
    pub rounding: U256,
}

/// Shares `refund` over `orders` in proportion to what each paid the builder, rounding down;
/// the wei rounding leaves go to the order that paid the most (the first such order).
pub fn split<K: Clone>(refund: U256, orders: &[(K, U256)]) -> Split<K> {
    let total: U256 = orders
        .iter()
        .fold(U256::ZERO, |sum, (_, paid)| sum.saturating_add(*paid));
    // Shares of a saturated total add up to less than the refund; the rounding takes the rest.
    let mut parts: Vec<(K, U256)> = orders
        .iter()
        .map(|(key, paid)| (key.clone(), share(*paid, refund, total)))
        .collect();
    let given = parts
        .iter()
        .fold(U256::ZERO, |sum, (_, part)| sum.saturating_add(*part));
    let rounding = refund.saturating_sub(given);
    let largest = orders
        .iter()
        .enumerate()
        .rev()
        .max_by_key(|(_, (_, paid))| *paid)
        .map(|(n, _)| n);
    if let Some(n) = largest {
        parts[n].1 += rounding;
    }
    Split { parts, rounding }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_a_refund_is_shared_by_what_each_order_paid_and_adds_up() {
        // 10 wei over orders that paid 1, 2 and 2: ⌊2⌋, ⌊4⌋, ⌊4⌋ = 10, nothing left.
        let even = split(
            U256::from(10),
            &[
                ("a", U256::from(1)),
                ("b", U256::from(2)),
                ("c", U256::from(2)),
            ],
        );
        assert_eq!(even.rounding, U256::ZERO);
        // 10 wei over 1, 1, 1: 3 each and 1 left, to the first of the largest ("a").
        let odd = split(
            U256::from(10),
            &[
                ("a", U256::from(1)),
                ("b", U256::from(1)),
                ("c", U256::from(1)),
            ],
        );
        assert_eq!(
            odd.parts,
            vec![
                ("a", U256::from(4)),
                ("b", U256::from(3)),
                ("c", U256::from(3))
            ]
        );
        assert_eq!(odd.rounding, U256::from(1));
        // Orders that paid nothing share nothing pro rata; the refund is not lost either.
        let none = split(U256::from(10), &[("a", U256::ZERO), ("b", U256::ZERO)]);
        assert_eq!(none.parts, vec![("a", U256::from(10)), ("b", U256::ZERO)]);
    }
}
