//! The transactions and receipts roots of a block sealed again and again as it grows.
//!
//! Both are roots of an ordered trie: item `i` under the key `rlp(i)`. Items `16g..=16g+15`
//! (from 1 for `g = 0`) have keys of one length that differ only in their last nibble, so they
//! are the leaves of one branch node and nothing else is: their *group*. Index 0 (`rlp(0)` is
//! `0x80`) shares its node with longer keys and is never grouped. A group whose items are all
//! present is hashed as that branch (alloy-trie's node types) and handed to the `HashBuilder`
//! as one hash; a later seal whose first items are unchanged reuses the hashes of the groups
//! among them and hashes only the rest. Roots equal alloy-trie's `ordered_trie_root`, which the
//! tests hold them to.

use std::ops::RangeInclusive;

use alloy_primitives::B256;
use alloy_trie::{
    EMPTY_ROOT_HASH, HashBuilder, Nibbles, TrieMask,
    nodes::{BranchNodeRef, LeafNodeRef, RlpNode},
    root::adjust_index_for_rlp,
};

/// Items per group: one branch node's children.
const GROUP: usize = 16;

/// The hashes of an ordered trie's complete groups, by group number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct OrderedGroups(Vec<Option<B256>>);

/// The root of the ordered trie over `items`, and the hashes of its complete groups. A group
/// whose items all lie among the first `unchanged` (the same as when `earlier` was computed)
/// takes its hash from `earlier` where it is there.
pub(crate) fn ordered_root<T>(
    items: &[T],
    encode: impl Fn(&T, &mut Vec<u8>),
    earlier: &OrderedGroups,
    unchanged: usize,
) -> (B256, OrderedGroups) {
    let n = items.len();
    if n == 0 {
        return (EMPTY_ROOT_HASH, OrderedGroups::default());
    }
    let mut hb = HashBuilder::default();
    let mut groups = OrderedGroups(vec![None; n / GROUP + 1]);
    let mut value = Vec::new();
    // Positions run in key order; a group's items are consecutive in it.
    let mut position = 0;
    while position < n {
        let index = adjust_index_for_rlp(position, n);
        if let Some(members) = complete_group(index, n) {
            let group = index / GROUP;
            let kept = earlier.0.get(group).copied().flatten();
            let hash = match kept.filter(|_| *members.end() < unchanged) {
                Some(hash) => Some(hash),
                None => group_hash(items, members.clone(), &encode, &mut value),
            };
            // A group whose node is short enough to be inlined has no hash: its leaves go in.
            if let Some(hash) = hash {
                groups.0[group] = Some(hash);
                let mut path = key(index);
                path.truncate(path.len() - 1);
                hb.add_branch(path, hash, false);
                position += members.count();
                continue;
            }
        }
        value.clear();
        encode(&items[index], &mut value);
        hb.add_leaf(key(index), &value);
        position += 1;
    }
    (hb.root(), groups)
}

fn key(index: usize) -> Nibbles {
    Nibbles::unpack(alloy_rlp::encode_fixed_size(&index))
}

/// The items of `index`'s group, when `index` is its first and all of them are among `n`.
fn complete_group(index: usize, n: usize) -> Option<RangeInclusive<usize>> {
    if index == 0 {
        return None;
    }
    let base = index / GROUP * GROUP;
    let (first, last) = (base.max(1), base + GROUP - 1);
    (index == first && last < n).then_some(first..=last)
}

/// The hash of the branch node holding `members` as leaves (each leaf's path is empty: the
/// branch consumed the key's last nibble); `None` if the node is inlined rather than hashed.
fn group_hash<T>(
    items: &[T],
    members: RangeInclusive<usize>,
    encode: &impl Fn(&T, &mut Vec<u8>),
    value: &mut Vec<u8>,
) -> Option<B256> {
    let empty = Nibbles::default();
    let mut stack: Vec<RlpNode> = Vec::with_capacity(GROUP);
    let mut mask = TrieMask::default();
    let mut rlp = Vec::new();
    for index in members {
        value.clear();
        encode(&items[index], value);
        rlp.clear();
        stack.push(LeafNodeRef::new(&empty, value).rlp(&mut rlp));
        mask.set_bit((index % GROUP) as u8);
    }
    rlp.clear();
    BranchNodeRef::new(&stack, mask).rlp(&mut rlp).as_hash()
}

#[cfg(test)]
mod tests {
    use alloy_primitives::Bytes;
    use alloy_trie::root::ordered_trie_root_with_encoder;
    use cobuild_test_utils::Rng;

    use super::*;

    fn items(rng: &mut Rng, n: usize) -> Vec<Bytes> {
        (0..n)
            .map(|_| {
                // Short items make inlined leaves; long ones, like transactions, hashed ones.
                let len = [1usize, 20, 40, 300][(rng.next_u64() % 4) as usize];
                (0..len)
                    .map(|_| rng.next_u64() as u8)
                    .collect::<Vec<u8>>()
                    .into()
            })
            .collect()
    }

    fn encode(item: &Bytes, out: &mut Vec<u8>) {
        out.extend_from_slice(item);
    }

    #[test]
    fn test_grouped_roots_equal_the_ordered_trie_root() {
        let mut rng = Rng::new(7);
        let sizes = (0..40).chain([127, 128, 129, 143, 144, 255, 256, 257, 271, 272, 1249]);
        for n in sizes {
            let items = items(&mut rng, n);
            let want = ordered_trie_root_with_encoder(&items, encode);
            let (root, groups) = ordered_root(&items, encode, &OrderedGroups::default(), 0);
            assert_eq!(root, want, "{n} items");
            // With every group's hash at hand.
            assert_eq!(
                ordered_root(&items, encode, &groups, n).0,
                want,
                "{n} items"
            );
        }
    }

    #[test]
    fn test_a_block_sealed_again_reuses_only_groups_it_did_not_change() {
        let mut rng = Rng::new(11);
        for round in 0..60 {
            let n = 1 + (rng.next_u64() % 1300) as usize;
            let earlier = items(&mut rng, n);
            let (_, groups) = ordered_root(&earlier, encode, &OrderedGroups::default(), 0);
            // The later block keeps a prefix, replaces the rest and grows (or shrinks).
            let unchanged = (rng.next_u64() % (n as u64 + 1)) as usize;
            let mut later = earlier[..unchanged].to_vec();
            let more = (rng.next_u64() % 40) as usize;
            later.extend(items(&mut rng, n - unchanged + more));
            later.truncate((rng.next_u64() % 1400) as usize + unchanged.min(1));
            let unchanged = unchanged.min(later.len());
            let want = ordered_trie_root_with_encoder(&later, encode);
            let (root, _) = ordered_root(&later, encode, &groups, unchanged);
            assert_eq!(root, want, "round {round}: {n} -> {} items", later.len());
        }
    }

    #[test]
    fn test_stale_group_hashes_past_the_unchanged_items_are_not_used() {
        let mut rng = Rng::new(3);
        let earlier = items(&mut rng, 300);
        let (_, groups) = ordered_root(&earlier, encode, &OrderedGroups::default(), 0);
        let mut later = earlier.clone();
        later[200] = vec![0xab; 50].into();
        let want = ordered_trie_root_with_encoder(&later, encode);
        assert_eq!(ordered_root(&later, encode, &groups, 200).0, want);
        // Claiming item 200 unchanged reuses its group's stale hash: the root is wrong.
        assert_ne!(ordered_root(&later, encode, &groups, 300).0, want);
    }
}
