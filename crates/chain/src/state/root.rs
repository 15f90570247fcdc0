//! The root of one trie after a block's changes, hashing only the paths the changes touch.
//!
//! The store keeps a trie's leaves (accounts, or one account's slots) in key order;
//! [`BranchNodes`] keeps, for the same state, the branch nodes alloy-trie's `HashBuilder`
//! produced with the hashes of their children, leaves included (leaves go in as their nodes'
//! hashes, see `feed`). The walk starts at the top stored node. A child whose key range holds no
//! changed key goes to the `HashBuilder` as its stored hash and is never read; a changed child
//! that has a stored node below it is walked into; anything else (a changed leaf, a place where
//! a new one goes) is read from the store merged with the changes, unless nothing is stored
//! there (an empty child) or the caller knows the changed key's old value and the leaf node it
//! makes hashes to the child's stored hash (then that leaf is all the child holds). A deletion
//! may turn a branch into a single leaf one level up, so under a node where one happens the
//! children kept only by hash that may be leaves are read too. The `HashBuilder` rebuilds the changed paths, including
//! the extensions and branches that appear or collapse, and reports the nodes it built: they
//! replace the stored nodes the walk went through.
//!
//! With no stored nodes the walk reads every leaf, which is the full rebuild; the property tests
//! hold the two equal.

use std::{borrow::Cow, collections::BTreeMap};

use alloy_primitives::{B256, U256};
use alloy_trie::{
    BranchNodeCompact, HashBuilder, Nibbles, TrieMask,
    proof::{ProofNodes, ProofRetainer},
};

use rayon::prelude::*;

use super::{
    EntryIter,
    feed::{Feed, leaf_hash},
};
use crate::store::StoreError;

/// The stored branch nodes of one trie, by path.
pub type BranchNodes = BTreeMap<Nibbles, BranchNodeCompact>;

/// A trie without stored nodes: its root reads every leaf.
pub(super) static NO_NODES: BranchNodes = BTreeMap::new();

/// How computing a root changed its trie's stored branch nodes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeUpdates {
    /// Stored nodes the walk went through; each is gone unless `updated` holds it again.
    pub removed: Vec<Nibbles>,
    /// Nodes the `HashBuilder` built.
    pub updated: BranchNodes,
}

impl NodeUpdates {
    /// Applies the updates to the nodes they were computed from.
    pub(super) fn apply_to(&self, nodes: &mut BranchNodes) {
        for path in &self.removed {
            nodes.remove(path);
        }
        nodes.extend(self.updated.iter().map(|(k, v)| (*k, v.clone())));
    }

    /// These updates followed by `next` (computed on the nodes these updates lead to), as
    /// one set of updates to the nodes these were computed from.
    pub(super) fn then(mut self, next: &Self) -> Self {
        for path in &next.removed {
            self.updated.remove(path);
        }
        self.updated
            .extend(next.updated.iter().map(|(k, v)| (*k, v.clone())));
        self.removed.extend(next.removed.iter().copied());
        self
    }
}

/// Reads a trie's stored leaves in an inclusive key range, in order.
pub(super) trait StoredLeaves<'a, V>:
    Fn(&B256, &B256) -> Result<EntryIter<'a, V>, StoreError>
{
}
impl<'a, V, F: Fn(&B256, &B256) -> Result<EntryIter<'a, V>, StoreError> + ?Sized>
    StoredLeaves<'a, V> for F
{
}

/// What the caller knows of changed keys' values before the changes.
pub(super) trait KnownBefore<V>: Fn(&B256) -> Option<V> {}
impl<V, F: Fn(&B256) -> Option<V> + ?Sized> KnownBefore<V> for F {}

/// One trie as the walk reads it: the stored nodes and leaves underneath, and the changes.
/// The readers are generic so that an input whose readers can be shared is walked in parallel.
pub(super) struct TrieInput<'a, V, O, S: ?Sized, K: ?Sized> {
    /// Stored branch nodes of the state under the changes.
    pub nodes: &'a BranchNodes,
    /// Changed leaves by key; `keep` says which survive and with what value.
    pub changes: &'a BTreeMap<B256, O>,
    /// A change's new value, `None` when it deletes the leaf.
    pub keep: fn(&O) -> Option<V>,
    /// The stored leaves in an inclusive key range, in order.
    pub stored: &'a S,
    /// A leaf value's RLP.
    pub encode: fn(&V, &mut Vec<u8>),
    /// A changed key's value under the changes, where the caller already knows it (`None`:
    /// absent, or not known). A changed leaf whose stored node is found to be this one is not
    /// read from the store.
    pub before: &'a K,
}

/// The trie's root after the changes, and what became of its stored nodes.
pub(super) fn trie_root<'a, V, O, S, K>(
    input: &TrieInput<'a, V, O, S, K>,
) -> Result<(B256, NodeUpdates), StoreError>
where
    S: StoredLeaves<'a, V> + ?Sized,
    K: KnownBefore<V> + ?Sized,
{
    let hb = HashBuilder::default().with_updates(true);
    let mut walk = Walk::run(input, Feed::new(hb, true))?;
    let root = walk.feed.root();
    let (_, updated) = walk.feed.into_builder().split();
    Ok((
        root,
        NodeUpdates {
            removed: walk.removed,
            updated: updated.into_iter().collect(),
        },
    ))
}

/// Changes below which a root is walked on one thread: splitting costs a `HashBuilder` per
/// changed child of the root and one more for the root itself.
const SPLIT_CHANGES: usize = 64;

/// [`trie_root`], with the subtrees under the root's changed children walked in parallel.
///
/// A subtree hashes the same wherever it is walked, as long as the root above it stays a
/// branch: each changed child is fed to its own `HashBuilder` beside a made-up sibling, so that
/// builder's root is a branch whose child there is the subtree's node, and the node's hash and
/// stored flag are read off the made-up root's update. The children then go into one more
/// builder as hashes. The walk stays on one thread for few changes, for a root that is not a
/// stored branch over stored branches (a small trie), for a change where the root has no child
/// yet (the root's own leaves would be needed), and when fewer than two children are left (the
/// root would stop being a branch) or a child's node is too short to have a hash.
pub(super) fn trie_root_split<'a, V, O, S, K>(
    input: &TrieInput<'a, V, O, S, K>,
) -> Result<(B256, NodeUpdates), StoreError>
where
    O: Sync,
    S: StoredLeaves<'a, V> + Sync + ?Sized,
    K: KnownBefore<V> + Sync + ?Sized,
{
    match split(input)? {
        Some(done) => Ok(done),
        None => trie_root(input),
    }
}

/// A subtree under the root, walked on its own.
struct Child {
    nibble: u8,
    /// The subtree's node hash and whether that node is stored; `None` when it is empty.
    node: Option<(B256, bool)>,
    removed: Vec<Nibbles>,
    updated: BranchNodes,
}

fn split<'a, V, O, S, K>(
    input: &TrieInput<'a, V, O, S, K>,
) -> Result<Option<(B256, NodeUpdates)>, StoreError>
where
    O: Sync,
    S: StoredLeaves<'a, V> + Sync + ?Sized,
    K: KnownBefore<V> + Sync + ?Sized,
{
    let top = Nibbles::default();
    let Some(node) = input.nodes.get(&top) else {
        return Ok(None);
    };
    let children = node.state_mask;
    if input.changes.len() < SPLIT_CHANGES
        || node.tree_mask != children
        || node.hash_mask != children
    {
        return Ok(None);
    }
    let mut changed = TrieMask::default();
    for key in input.changes.keys() {
        changed.set_bit(nibble_at(key, 0));
    }
    if changed.get() & !children.get() != 0 {
        return Ok(None);
    }
    let nibbles: Vec<u8> = (0..16).filter(|n| changed.is_bit_set(*n)).collect();
    let sorted: Vec<_> = input.changes.iter().collect();
    let walked = nibbles
        .into_par_iter()
        .map(|nibble| walk_child(input, &sorted, nibble))
        .collect::<Result<Vec<_>, _>>()?;
    let Some(walked) = walked.into_iter().collect::<Option<Vec<Child>>>() else {
        return Ok(None);
    };
    let kept = (children.get() & !changed.get()).count_ones() as usize;
    if kept + walked.iter().filter(|c| c.node.is_some()).count() < 2 {
        return Ok(None);
    }
    let mut hb = HashBuilder::default().with_updates(true);
    let mut removed = vec![top];
    let mut updated = BranchNodes::new();
    let mut walked = walked.into_iter().peekable();
    for nibble in 0..16u8 {
        let path = Nibbles::from_nibbles_unchecked([nibble]);
        if let Some(child) = walked.next_if(|c| c.nibble == nibble) {
            if let Some((hash, stored)) = child.node {
                hb.add_branch(path, hash, stored);
            }
            removed.extend(child.removed);
            updated.extend(child.updated);
        } else if children.is_bit_set(nibble) {
            hb.add_branch(path, node.hash_for_nibble(nibble), true);
        }
    }
    let root = hb.root();
    let (_, top_nodes) = hb.split();
    updated.extend(top_nodes);
    Ok(Some((root, NodeUpdates { removed, updated })))
}

/// Walks the subtree under the root's child `nibble` on its own; `None` when its node is too
/// short to be hashed.
fn walk_child<'a, V, O, S, K>(
    input: &TrieInput<'a, V, O, S, K>,
    changes: &[(&'a B256, &'a O)],
    nibble: u8,
) -> Result<Option<Child>, StoreError>
where
    S: StoredLeaves<'a, V> + ?Sized,
    K: KnownBefore<V> + ?Sized,
{
    let path = Nibbles::from_nibbles_unchecked([nibble]);
    let sibling = Nibbles::from_nibbles_unchecked([u8::from(nibble == 0)]);
    let hb = HashBuilder::default().with_updates(true);
    let mut walk = Walk::new(input, Some(changes), Feed::new(hb, true));
    if sibling < path {
        walk.feed.add_branch(sibling, B256::ZERO, false);
    }
    walk.subtree(path)?;
    if sibling > path {
        walk.feed.add_branch(sibling, B256::ZERO, false);
    }
    walk.feed.root();
    let Walk { feed, removed, .. } = walk;
    let (_, mut updated) = feed.into_builder().split();
    // The made-up root holds the subtree's node as its child; with the subtree empty it is
    // not a branch, and not stored.
    let node = match updated.remove(&Nibbles::default()) {
        Some(root) if root.state_mask.is_bit_set(nibble) => {
            if !root.hash_mask.is_bit_set(nibble) {
                return Ok(None);
            }
            Some((
                root.hash_for_nibble(nibble),
                root.tree_mask.is_bit_set(nibble),
            ))
        }
        _ => None,
    };
    Ok(Some(Child {
        nibble,
        node,
        removed,
        updated: updated.into_iter().collect(),
    }))
}

/// The trie's root after the changes, with the nodes on the path to each of `targets` (the
/// proof of its leaf, or of its absence). A target must be among the changed keys, so the
/// walk descends to it rather than taking its subtree's stored hash.
pub(super) fn trie_proof<'a, V, O, S, K>(
    input: &TrieInput<'a, V, O, S, K>,
    targets: Vec<Nibbles>,
) -> Result<(B256, ProofNodes), StoreError>
where
    S: StoredLeaves<'a, V> + ?Sized,
    K: KnownBefore<V> + ?Sized,
{
    let retainer = ProofRetainer::new(targets);
    // Leaves go in as leaves: a proof holds the target's leaf node itself.
    let hb = HashBuilder::default().with_proof_retainer(retainer);
    let mut walk = Walk::run(input, Feed::new(hb, false))?;
    let root = walk.feed.root();
    Ok((root, walk.feed.into_builder().take_proof_nodes()))
}

struct Walk<'i, 'a, V, O, S: ?Sized, K: ?Sized> {
    input: &'i TrieInput<'a, V, O, S, K>,
    /// The changes in key order, as a slice: the walk asks for the ones in a key range at
    /// every node, and two binary searches over a slice cost less than a map's range.
    changes: Cow<'i, [(&'a B256, &'a O)]>,
    feed: Feed,
    removed: Vec<Nibbles>,
    /// Buffers for hashing a known leaf.
    scratch: (Vec<u8>, Vec<u8>),
}

impl<'i, 'a, V, O, S, K> Walk<'i, 'a, V, O, S, K>
where
    S: StoredLeaves<'a, V> + ?Sized,
    K: KnownBefore<V> + ?Sized,
{
    /// A walk of `input` into `feed`; `changes` are `input`'s in a slice, where the caller has
    /// them already.
    fn new(
        input: &'i TrieInput<'a, V, O, S, K>,
        changes: Option<&'i [(&'a B256, &'a O)]>,
        feed: Feed,
    ) -> Self {
        Walk {
            input,
            changes: match changes {
                Some(changes) => Cow::Borrowed(changes),
                None => Cow::Owned(input.changes.iter().collect()),
            },
            feed,
            removed: Vec::new(),
            scratch: Default::default(),
        }
    }

    /// Feeds the whole trie to `feed`.
    fn run(input: &'i TrieInput<'a, V, O, S, K>, feed: Feed) -> Result<Self, StoreError> {
        let mut walk = Self::new(input, None, feed);
        walk.subtree(Nibbles::default())?;
        Ok(walk)
    }

    /// Feeds every leaf under `prefix`, as hashes where nothing under them changed.
    ///
    /// `prefix` is a node boundary of the stored trie (the root, or a child of a stored branch),
    /// so every stored key under it shares the path of the topmost stored node under it.
    fn subtree(&mut self, prefix: Nibbles) -> Result<(), StoreError> {
        let nodes = self.input.nodes;
        let Some((path, node)) = nodes
            .range(prefix..)
            .next()
            .filter(|(path, _)| path.starts_with(&prefix))
        else {
            let (lo, hi) = bounds(&prefix);
            return self.leaves(lo, hi);
        };
        self.removed.push(*path);
        let (lo, hi) = bounds(&prefix);
        let (path_lo, path_hi) = bounds(path);
        // Beside the stored node's path only new keys can be, and nothing stored: no read.
        if path_lo > lo {
            let before = B256::from(U256::from_be_bytes(path_lo.0) - U256::from(1));
            self.new_leaves(lo, before)?;
        }
        // Children read from the store (and empty ones between them) are read in one range:
        // one store read for a run of them, not one per leaf.
        let changed_mask = self.changed_children(path.len(), path_lo, path_hi);
        let mut deletes = None;
        let mut pending: Option<(B256, B256)> = None;
        for nibble in 0..16u8 {
            let mut child = *path;
            child.push_unchecked(nibble);
            let (child_lo, child_hi) = (
                with_nibble(path_lo, path.len(), nibble),
                with_nibble(path_hi, path.len(), nibble),
            );
            let changed = changed_mask.is_bit_set(nibble);
            // A kept hash that is not a stored branch's may be a leaf's (see `feed`): it holds
            // while this node stays a branch, which only a deletion under it can undo (the leaf
            // would then move up, its node re-encoded). Then such children are read instead.
            let hashed = node.hash_mask.is_bit_set(nibble)
                && !changed
                && (node.tree_mask.is_bit_set(nibble)
                    || !*deletes.get_or_insert_with(|| self.deletes(path_lo, path_hi)));
            if hashed || node.tree_mask.is_bit_set(nibble) {
                if let Some((from, to)) = pending.take() {
                    self.leaves(from, to)?;
                }
                if hashed {
                    self.feed.add_branch(
                        child,
                        node.hash_for_nibble(nibble),
                        node.tree_mask.is_bit_set(nibble),
                    );
                } else {
                    self.subtree(child)?;
                }
            } else if node.state_mask.is_bit_set(nibble) {
                let known = (changed && node.hash_mask.is_bit_set(nibble))
                    .then(|| self.known_leaf(&child, child_lo, child_hi, node, nibble))
                    .flatten();
                match known {
                    Some(leaf) => {
                        if let Some((from, to)) = pending.take() {
                            self.leaves(from, to)?;
                        }
                        self.leaves_over(leaf, child_lo, child_hi)?;
                    }
                    None => {
                        pending = Some((pending.map_or(child_lo, |(from, _)| from), child_hi));
                    }
                }
            } else if changed {
                // An empty child holds nothing stored: its new leaves go in without a read.
                if let Some((from, to)) = pending.take() {
                    self.leaves(from, to)?;
                }
                self.new_leaves(child_lo, child_hi)?;
            }
        }
        if let Some((from, to)) = pending {
            self.leaves(from, to)?;
        }
        if path_hi < hi {
            let after = B256::from(U256::from_be_bytes(path_hi.0) + U256::from(1));
            self.new_leaves(after, hi)?;
        }
        Ok(())
    }

    /// Whether a change in `[lo, hi]` deletes a leaf.
    fn deletes(&self, lo: B256, hi: B256) -> bool {
        within(&self.changes, lo, hi)
            .iter()
            .any(|(_, change)| (self.input.keep)(change).is_none())
    }

    /// Which children of the node whose path is `len` nibbles long and whose keys span
    /// `[path_lo, path_hi]` hold a changed key.
    fn changed_children(&self, len: usize, path_lo: B256, path_hi: B256) -> TrieMask {
        let mut mask = TrieMask::default();
        for (key, _) in within(&self.changes, path_lo, path_hi) {
            mask.set_bit(nibble_at(key, len));
        }
        mask
    }

    /// Feeds the changes in `[lo, hi]` that leave a leaf, where nothing is stored.
    fn new_leaves(&mut self, lo: B256, hi: B256) -> Result<(), StoreError> {
        self.merged(std::iter::empty(), lo, hi)
    }

    /// The one leaf stored at `child` (keys `[lo, hi]`) of `node`, without reading the store:
    /// known when a changed key there had a value before whose leaf node, hung at `child`,
    /// hashes to the child's stored hash. Anything else stored there (more leaves, another key)
    /// would hash otherwise.
    fn known_leaf(
        &mut self,
        child: &Nibbles,
        lo: B256,
        hi: B256,
        node: &BranchNodeCompact,
        nibble: u8,
    ) -> Option<(B256, V)> {
        let (key, value) = within(&self.changes, lo, hi)
            .iter()
            .find_map(|(key, _)| (self.input.before)(key).map(|value| (**key, value)))?;
        let (encoded, rlp) = &mut self.scratch;
        encoded.clear();
        (self.input.encode)(&value, encoded);
        let hash = leaf_hash(&Nibbles::unpack(key).slice(child.len()..), encoded, rlp)?;
        (hash == node.hash_for_nibble(nibble)).then_some((key, value))
    }

    /// Feeds the leaves in `[lo, hi]` where `stored` is all the store holds there.
    fn leaves_over(&mut self, stored: (B256, V), lo: B256, hi: B256) -> Result<(), StoreError> {
        self.merged(std::iter::once(Ok(stored)), lo, hi)
    }

    /// Feeds the leaves in `[lo, hi]`: the stored ones merged with the changes.
    fn leaves(&mut self, lo: B256, hi: B256) -> Result<(), StoreError> {
        let stored = (self.input.stored)(&lo, &hi)?;
        self.merged(stored, lo, hi)
    }

    /// Feeds `stored` (the stored leaves in `[lo, hi]`) merged with the changes there.
    fn merged(
        &mut self,
        stored: impl Iterator<Item = Result<(B256, V), StoreError>>,
        lo: B256,
        hi: B256,
    ) -> Result<(), StoreError> {
        let Self {
            input,
            changes,
            feed,
            ..
        } = self;
        merge(
            stored,
            within(changes, lo, hi).iter().copied(),
            input.keep,
            |key, value| {
                feed.add_leaf(Nibbles::unpack(key), |out| (input.encode)(value, out));
            },
        )
    }
}

/// The entries of sorted `changes` whose keys lie in `[lo, hi]`.
fn within<'c, O>(changes: &'c [(&B256, &O)], lo: B256, hi: B256) -> &'c [(&'c B256, &'c O)] {
    let start = changes.partition_point(|(key, _)| **key < lo);
    let len = changes[start..].partition_point(|(key, _)| **key <= hi);
    &changes[start..start + len]
}

/// The nibble of `key` at `position` (0 is the high half of the first byte).
fn nibble_at(key: &B256, position: usize) -> u8 {
    let byte = key[position / 2];
    if position.is_multiple_of(2) {
        byte >> 4
    } else {
        byte & 0x0f
    }
}

/// `key` with its nibble at `position` set to `nibble`: a child's key bounds from its
/// parent's, without going over the path again.
fn with_nibble(mut key: B256, position: usize, nibble: u8) -> B256 {
    let byte = &mut key.0[position / 2];
    *byte = if position.is_multiple_of(2) {
        (*byte & 0x0f) | (nibble << 4)
    } else {
        (*byte & 0xf0) | nibble
    };
    key
}

/// The inclusive range of 32-byte keys that start with `prefix`.
pub(super) fn bounds(prefix: &Nibbles) -> (B256, B256) {
    let mut lo = [0u8; 32];
    let mut hi = [0xffu8; 32];
    for (i, nibble) in prefix.iter().enumerate() {
        let byte = i / 2;
        if i.is_multiple_of(2) {
            lo[byte] = nibble << 4;
            hi[byte] = (nibble << 4) | 0x0f;
        } else {
            lo[byte] |= nibble;
            hi[byte] = (hi[byte] & 0xf0) | nibble;
        }
    }
    (B256::from(lo), B256::from(hi))
}

/// Merges a sorted stored stream with sorted changes (which win on equal keys) and feeds the
/// surviving entries to `leaf`.
pub(super) fn merge<'c, V, O: 'c>(
    stored: impl Iterator<Item = Result<(B256, V), StoreError>>,
    changes: impl Iterator<Item = (&'c B256, &'c O)>,
    keep: impl Fn(&O) -> Option<V>,
    mut leaf: impl FnMut(&B256, &V),
) -> Result<(), StoreError> {
    let mut over = changes.peekable();
    for entry in stored {
        let (key, value) = entry?;
        let mut shadowed = false;
        while let Some((okey, ovalue)) = over.next_if(|(k, _)| **k <= key) {
            shadowed = *okey == key;
            if let Some(v) = keep(ovalue) {
                leaf(okey, &v);
            }
        }
        if !shadowed {
            leaf(&key, &value);
        }
    }
    for (okey, ovalue) in over {
        if let Some(v) = keep(ovalue) {
            leaf(okey, &v);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use alloy_rlp::Encodable;
    use cobuild_test_utils::Rng;

    use super::*;

    fn stored(items: &[(u8, u32)]) -> Vec<Result<(B256, u32), StoreError>> {
        items
            .iter()
            .map(|(k, v)| Ok((B256::repeat_byte(*k), *v)))
            .collect()
    }

    #[test]
    fn test_merge_changes_win_and_delete() {
        let mut changes = BTreeMap::new();
        changes.insert(B256::repeat_byte(2), None);
        changes.insert(B256::repeat_byte(3), Some(30));
        changes.insert(B256::repeat_byte(5), Some(50));
        changes.insert(B256::repeat_byte(0), Some(1));
        let mut out = Vec::new();
        merge(
            stored(&[(1, 10), (2, 20), (3, 3), (4, 40)]).into_iter(),
            changes.iter(),
            |o: &Option<u32>| *o,
            |k, v| out.push((k[0], *v)),
        )
        .expect("no store errors");
        assert_eq!(out, vec![(0, 1), (1, 10), (3, 30), (4, 40), (5, 50)]);
    }

    #[test]
    fn test_bounds_cover_exactly_the_prefix() {
        let prefix = Nibbles::from_nibbles([0xa, 0x3, 0x7]);
        let (lo, hi) = bounds(&prefix);
        assert_eq!(&lo[..2], &[0xa3, 0x70]);
        assert!(lo[2..].iter().all(|b| *b == 0));
        assert_eq!(&hi[..2], &[0xa3, 0x7f]);
        assert!(hi[2..].iter().all(|b| *b == 0xff));
        assert_eq!(
            bounds(&Nibbles::default()),
            (B256::ZERO, B256::repeat_byte(0xff))
        );
    }

    /// A trie held in memory, fed to the walk as the store would.
    struct Memory {
        leaves: BTreeMap<B256, U256>,
        nodes: BranchNodes,
    }

    impl Memory {
        fn root(&self, changes: &BTreeMap<B256, U256>) -> (B256, NodeUpdates) {
            self.root_knowing(changes, &BTreeMap::new())
        }

        fn root_knowing(
            &self,
            changes: &BTreeMap<B256, U256>,
            before: &BTreeMap<B256, U256>,
        ) -> (B256, NodeUpdates) {
            let leaves = &self.leaves;
            let stored = move |lo: &B256, hi: &B256| -> Result<EntryIter<'_, U256>, StoreError> {
                Ok(Box::new(leaves.range(*lo..=*hi).map(|(k, v)| Ok((*k, *v)))))
            };
            // Split where the trie allows: the property test holds both ways to the reference.
            trie_root_split(&TrieInput {
                nodes: &self.nodes,
                changes,
                keep: |v: &U256| (!v.is_zero()).then_some(*v),
                stored: &stored,
                encode: |v: &U256, out: &mut Vec<u8>| v.encode(out),
                before: &|key: &B256| before.get(key).copied(),
            })
            .expect("memory never fails")
        }

        fn commit(&mut self, changes: &BTreeMap<B256, U256>, updates: &NodeUpdates) {
            for (k, v) in changes {
                if v.is_zero() {
                    self.leaves.remove(k);
                } else {
                    self.leaves.insert(*k, *v);
                }
            }
            updates.apply_to(&mut self.nodes);
        }
    }

    /// A key from a small space, so changes hit existing keys, neighbours and shared prefixes
    /// (extensions that appear and collapse).
    fn key(rng: &mut Rng, space: u64) -> B256 {
        let n = rng.next_u64() % space;
        let mut key = alloy_primitives::keccak256(n.to_be_bytes());
        // Some keys share long prefixes with others.
        if n.is_multiple_of(7) {
            key.0[..6].copy_from_slice(&[0x11, 0x22, 0x33, 0x44, 0x55, (n % 3) as u8]);
        }
        key
    }

    fn reference(leaves: &BTreeMap<B256, U256>) -> B256 {
        alloy_trie::root::storage_root_unsorted(leaves.iter().map(|(k, v)| (*k, *v)))
    }

    #[test]
    fn test_incremental_root_equals_full_rebuild_over_random_changes() {
        for seed in 0..40u64 {
            let mut rng = Rng::new(seed);
            let space = [3u64, 20, 300, 3000][(seed % 4) as usize];
            let mut trie = Memory {
                leaves: BTreeMap::new(),
                nodes: BranchNodes::new(),
            };
            for round in 0..12 {
                let mut changes = BTreeMap::new();
                let count = 1 + rng.next_u64() % [2u64, 40, 400][round % 3];
                for _ in 0..count {
                    // A third of the changes delete (zero), some of keys that are not there.
                    let value = match rng.next_u64() % 3 {
                        0 => U256::ZERO,
                        _ => U256::from(rng.next_u64() % 1000 + 1),
                    };
                    changes.insert(key(&mut rng, space), value);
                }
                // The caller knows some values before the changes; some of what it "knows" is
                // wrong, which must cost reads, never the root.
                let before: BTreeMap<B256, U256> = changes
                    .keys()
                    .filter_map(|key| match rng.next_u64() % 4 {
                        0 | 1 => trie.leaves.get(key).map(|v| (*key, *v)),
                        2 => Some((*key, U256::from(rng.next_u64() % 1000 + 1))),
                        _ => None,
                    })
                    .collect();
                let (root, updates) = trie.root_knowing(&changes, &before);
                trie.commit(&changes, &updates);
                assert_eq!(root, reference(&trie.leaves), "seed {seed} round {round}");
                // The nodes left are exactly those a full rebuild stores.
                let full = Memory {
                    leaves: trie.leaves.clone(),
                    nodes: BranchNodes::new(),
                };
                let (full_root, full_nodes) = full.root(&BTreeMap::new());
                assert_eq!(full_root, root);
                assert_eq!(full_nodes.updated, trie.nodes, "seed {seed} round {round}");
            }
        }
    }

    /// A 5,000-leaf trie with its nodes.
    fn stored_trie() -> Memory {
        let mut trie = Memory {
            leaves: (0u64..5000)
                .map(|n| {
                    (
                        alloy_primitives::keccak256(n.to_be_bytes()),
                        U256::from(n + 1),
                    )
                })
                .collect(),
            nodes: BranchNodes::new(),
        };
        let (_, updates) = trie.root(&BTreeMap::new());
        trie.commit(&BTreeMap::new(), &updates);
        trie
    }

    /// The root of `trie` after `changes`, checked against the reference, and how many
    /// stored leaves the walk read.
    fn leaves_read(trie: &Memory, changes: &BTreeMap<B256, U256>) -> usize {
        store_reads(trie, changes, &BTreeMap::new()).1
    }

    /// The root of `trie` after `changes` (with `before` as the caller's knowledge of the
    /// values under them), checked against the reference, and how many times the walk read
    /// the store and how many stored leaves it read.
    fn store_reads(
        trie: &Memory,
        changes: &BTreeMap<B256, U256>,
        before: &BTreeMap<B256, U256>,
    ) -> (usize, usize) {
        let reads = std::cell::Cell::new(0usize);
        let calls = std::cell::Cell::new(0usize);
        let leaves = &trie.leaves;
        let stored = |lo: &B256, hi: &B256| -> Result<EntryIter<'_, U256>, StoreError> {
            let items: Vec<_> = leaves.range(*lo..=*hi).map(|(k, v)| Ok((*k, *v))).collect();
            calls.set(calls.get() + 1);
            reads.set(reads.get() + items.len());
            Ok(Box::new(items.into_iter()))
        };
        let (root, _) = trie_root(&TrieInput {
            nodes: &trie.nodes,
            changes,
            keep: |v: &U256| (!v.is_zero()).then_some(*v),
            stored: &stored,
            encode: |v: &U256, out: &mut Vec<u8>| v.encode(out),
            before: &|key: &B256| before.get(key).copied(),
        })
        .expect("memory never fails");
        let mut after = trie.leaves.clone();
        for (key, value) in changes {
            if value.is_zero() {
                after.remove(key);
            } else {
                after.insert(*key, *value);
            }
        }
        assert_eq!(root, reference(&after));
        (calls.get(), reads.get())
    }

    #[test]
    fn test_only_changed_leaves_are_read() {
        let trie = stored_trie();
        let key = |n: u64| alloy_primitives::keccak256(n.to_be_bytes());
        // An update reads the leaf it replaces and nothing else: its siblings' hashes are kept.
        let update = BTreeMap::from([(key(7), U256::from(99))]);
        assert_eq!(leaves_read(&trie, &update), 1);
        // A new key reads at most the one leaf whose place it shares.
        let insert = BTreeMap::from([(key(90_001), U256::from(5))]);
        assert!(leaves_read(&trie, &insert) <= 1);
        // A deletion may turn its branch into a leaf one level up: the branch's leaves are read.
        let delete = BTreeMap::from([(key(7), U256::ZERO)]);
        assert!(leaves_read(&trie, &delete) > 1);
        // Still one path of a 5,000-leaf trie, not the whole trie.
        assert!(leaves_read(&trie, &delete) < 100);
    }

    /// The split walk of `trie` after `changes` (`None` where it falls back) and the walk on
    /// one thread, both checked: a split that runs gives the same root and node updates.
    fn split_or_not(trie: &Memory, changes: &BTreeMap<B256, U256>) -> Option<B256> {
        let leaves = &trie.leaves;
        let stored = move |lo: &B256, hi: &B256| -> Result<EntryIter<'_, U256>, StoreError> {
            Ok(Box::new(leaves.range(*lo..=*hi).map(|(k, v)| Ok((*k, *v)))))
        };
        let input = TrieInput {
            nodes: &trie.nodes,
            changes,
            keep: |v: &U256| (!v.is_zero()).then_some(*v),
            stored: &stored,
            encode: |v: &U256, out: &mut Vec<u8>| v.encode(out),
            before: &|_: &B256| None,
        };
        let (root, mut expected) = trie_root(&input).expect("memory never fails");
        let (split_root, mut updates) = split(&input).expect("memory never fails")?;
        assert_eq!(split_root, root);
        updates.removed.sort();
        expected.removed.sort();
        assert_eq!(updates, expected);
        Some(root)
    }

    #[test]
    fn test_a_split_root_equals_the_walk_on_one_thread() {
        let trie = stored_trie();
        let mut rng = Rng::new(7);
        let mut split_at_least_once = false;
        for round in 0..20u64 {
            let mut changes = BTreeMap::new();
            // Some rounds change keys under a few of the root's children only, some delete
            // nearly everything under one.
            let count = [70u64, 300, 1200][(round % 3) as usize];
            for _ in 0..count {
                let n = rng.next_u64() % 6000;
                let value = match rng.next_u64() % 3 {
                    0 => U256::ZERO,
                    _ => U256::from(rng.next_u64() % 1000 + 1),
                };
                changes.insert(alloy_primitives::keccak256(n.to_be_bytes()), value);
            }
            if round % 4 == 3 {
                for (key, _) in trie.leaves.iter().filter(|(k, _)| k[0] >> 4 == 0xa) {
                    changes.insert(*key, U256::ZERO);
                }
            }
            split_at_least_once |= split_or_not(&trie, &changes).is_some();
        }
        assert!(split_at_least_once);
    }

    #[test]
    fn test_a_root_child_left_as_one_leaf_or_an_extension() {
        let trie = stored_trie();
        let under = |nibble: u8| {
            trie.leaves
                .keys()
                .filter(move |k| k[0] >> 4 == nibble)
                .copied()
        };
        // Everything under child 0xa but one leaf goes: that leaf hangs right under the root.
        let keep = under(0xa).next().expect("5,000 leaves fill every child");
        let to_one_leaf: BTreeMap<B256, U256> = under(0xa)
            .filter(|k| *k != keep)
            .map(|k| (k, U256::ZERO))
            .collect();
        let root = split_or_not(&trie, &to_one_leaf).expect("the root stays a branch: it splits");
        let mut after = trie.leaves.clone();
        after.retain(|k, _| !to_one_leaf.contains_key(k));
        assert_eq!(root, reference(&after));
        // Everything under 0xa but the leaves under 0xa7 goes: the node at 0xa becomes an
        // extension, which has no hash bit in its parent, so the split gives up and the walk
        // on one thread computes the root.
        let to_extension: BTreeMap<B256, U256> = under(0xa)
            .filter(|k| k[0] != 0xa7)
            .map(|k| (k, U256::ZERO))
            .collect();
        assert!(under(0xa).filter(|k| k[0] == 0xa7).count() >= 2);
        assert_eq!(split_or_not(&trie, &to_extension), None);
        let (root, _) = trie.root(&to_extension);
        let mut after = trie.leaves.clone();
        after.retain(|k, _| !to_extension.contains_key(k));
        assert_eq!(root, reference(&after));
    }

    #[test]
    fn test_a_new_key_where_nothing_is_stored_reads_nothing() {
        let trie = stored_trie();
        let inserts: Vec<(usize, usize)> = (100_000u64..100_050)
            .map(|n| {
                let change = (alloy_primitives::keccak256(n.to_be_bytes()), U256::from(n));
                store_reads(&trie, &BTreeMap::from([change]), &BTreeMap::new())
            })
            .collect();
        // A new key in an empty child of a stored branch makes no store call at all; one in
        // a child that holds a leaf reads that leaf, once.
        assert!(inserts.iter().any(|&(calls, _)| calls == 0));
        assert!(
            inserts
                .iter()
                .all(|&(calls, leaves)| calls <= 1 && leaves <= 1)
        );
        assert!(inserts.iter().all(|&(calls, leaves)| calls == leaves));
    }

    #[test]
    fn test_a_changed_leaf_whose_value_before_is_known_is_not_read() {
        let trie = stored_trie();
        let changed: Vec<B256> = (0u64..40)
            .map(|n| alloy_primitives::keccak256((n * 97).to_be_bytes()))
            .collect();
        let changes: BTreeMap<B256, U256> = changed
            .iter()
            .map(|key| (*key, trie.leaves[key] + U256::from(1)))
            .collect();
        let known: BTreeMap<B256, U256> = changed.iter().map(|k| (*k, trie.leaves[k])).collect();
        let unknown = store_reads(&trie, &changes, &BTreeMap::new());
        assert_eq!(unknown.1, 40, "unknown, each changed leaf is read");
        assert_eq!(store_reads(&trie, &changes, &known), (0, 0));
        // A value before that is not the stored one does not match the stored hash: the leaf
        // is read, and the root is still right (checked inside).
        let wrong: BTreeMap<B256, U256> = known
            .iter()
            .map(|(k, v)| (*k, *v + U256::from(7)))
            .collect();
        assert_eq!(store_reads(&trie, &changes, &wrong).1, 40);
        // A known key beside a new one in the same place: the new one cannot hide the old.
        let mut beside = changes.clone();
        for n in 200_000u64..200_400 {
            beside.insert(alloy_primitives::keccak256(n.to_be_bytes()), U256::from(n));
        }
        store_reads(&trie, &beside, &known);
        // Deleting known leaves reads only what the collapse of their branches needs.
        let deletes: BTreeMap<B256, U256> = changed.iter().map(|k| (*k, U256::ZERO)).collect();
        store_reads(&trie, &deletes, &known);
    }
}
