//! How a payout transaction names the refunds it pays: its input is a marker and the slots
//! whose refunds to its recipient it settles, so every member, reading the same chain, marks
//! the same refunds paid.

use alloy_primitives::Bytes;

/// The first bytes of a payout's input.
pub const PAYOUT_MARKER: &[u8] = b"cobuild.refunds.v1";

/// Most slots one payout settles (keeps its input, and gas, small).
pub const MAX_SLOTS_PER_PAYOUT: usize = 64;

/// The input of a payout settling `slots` (increasing).
pub fn payout_input(slots: &[u64]) -> Bytes {
    let mut out = PAYOUT_MARKER.to_vec();
    for slot in slots {
        out.extend_from_slice(&slot.to_be_bytes());
    }
    out.into()
}

/// The slots a payout's input settles, if it is one.
pub fn payout_slots(input: &[u8]) -> Option<Vec<u64>> {
    let rest = input.strip_prefix(PAYOUT_MARKER)?;
    if rest.is_empty() || !rest.len().is_multiple_of(8) || rest.len() / 8 > MAX_SLOTS_PER_PAYOUT {
        return None;
    }
    let slots: Vec<u64> = rest
        .chunks_exact(8)
        .map(|c| u64::from_be_bytes(c.try_into().unwrap_or_default()))
        .collect();
    // Each slot once, in order: a payout cannot count one slot twice.
    slots.windows(2).all(|w| w[0] < w[1]).then_some(slots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_a_payout_input_names_its_slots_and_nothing_else_passes_for_one() {
        let input = payout_input(&[7, 1 << 40]);
        assert_eq!(payout_slots(&input), Some(vec![7, 1 << 40]));
        assert_eq!(payout_slots(b"cobuild.refunds.v1"), None);
        assert_eq!(payout_slots(&input[..input.len() - 1]), None);
        assert_eq!(payout_slots(b"transfer"), None);
        assert_eq!(payout_slots(&payout_input(&[7, 7])), None);
    }
}
