//! alloy-trie's `HashBuilder`, handed each leaf as the hash of its leaf node.
//!
//! The `HashBuilder` stores a branch node's child hashes only for children that came in as
//! hashes, so a branch whose children are leaves keeps nothing of them, and a later root that
//! changes one leaf there reads and hashes every sibling again. Handing leaves in as hashes
//! (at the path where their leaf node hangs) makes the stored branches hold their leaves' hashes
//! too: a walk then reads only the leaves that changed.
//!
//! Where a leaf node hangs follows from its neighbours alone: one nibble below the longer of
//! its common prefixes with the item before and the item after it. So each leaf waits for the
//! next item before it goes in. A leaf node short enough to be inlined in its branch has no
//! hash and goes in as a leaf. The root is the one the plain `HashBuilder` computes over the
//! same items; the property tests in `root` hold it to the reference.

use alloy_primitives::B256;
use alloy_trie::{HashBuilder, Nibbles, nodes::LeafNodeRef};

/// A `HashBuilder` that takes leaves as their nodes' hashes (when `hash_leaves`), one item late.
pub(super) struct Feed {
    hb: HashBuilder,
    hash_leaves: bool,
    /// The key of the last item handed to `hb`.
    last: Option<Nibbles>,
    /// A leaf waiting for the item after it; `value` holds its value.
    pending: Option<Nibbles>,
    /// The last leaf's value, written in place by the caller's encoder.
    value: Vec<u8>,
    rlp: Vec<u8>,
}

impl Feed {
    /// Feeds `hb`; with `hash_leaves` off every leaf goes in as a leaf (proofs need the leaf
    /// nodes themselves).
    pub(super) fn new(hb: HashBuilder, hash_leaves: bool) -> Self {
        Self {
            hb,
            hash_leaves,
            last: None,
            pending: None,
            value: Vec::with_capacity(128),
            rlp: Vec::with_capacity(128),
        }
    }

    /// Adds the leaf at `key` (keys in increasing order, as the `HashBuilder` wants them),
    /// its value written by `encode`.
    pub(super) fn add_leaf(&mut self, key: Nibbles, encode: impl FnOnce(&mut Vec<u8>)) {
        // The waiting leaf's value is in the buffer: it goes in before the buffer is reused.
        self.flush(Some(&key));
        self.value.clear();
        encode(&mut self.value);
        if self.hash_leaves {
            self.pending = Some(key);
        } else {
            self.hb.add_leaf(key, &self.value);
        }
    }

    /// Adds the subtree at `path` by its hash.
    pub(super) fn add_branch(&mut self, path: Nibbles, hash: B256, stored: bool) {
        self.flush(Some(&path));
        self.hb.add_branch(path, hash, stored);
        self.last = Some(path);
    }

    /// The root over everything added.
    pub(super) fn root(&mut self) -> B256 {
        self.flush(None);
        self.hb.root()
    }

    /// The `HashBuilder`, for its node updates or proof after [`root`](Self::root).
    pub(super) fn into_builder(self) -> HashBuilder {
        self.hb
    }

    /// Hands the waiting leaf to `hb`, now that the item after it (`next`) is known.
    fn flush(&mut self, next: Option<&Nibbles>) {
        let Some(key) = self.pending.take() else {
            return;
        };
        let before = self.last.map(|p| p.common_prefix_length(&key));
        let after = next.map(|n| n.common_prefix_length(&key));
        self.last = Some(key);
        // A trie of one leaf is that leaf, at the root.
        if before.is_none() && after.is_none() {
            self.hb.add_leaf(key, &self.value);
            return;
        }
        let depth = before.unwrap_or(0).max(after.unwrap_or(0)) + 1;
        match leaf_hash(&key.slice(depth..), &self.value, &mut self.rlp) {
            Some(hash) => self.hb.add_branch(key.slice(..depth), hash, false),
            None => self.hb.add_leaf(key, &self.value),
        }
    }
}

/// The hash of the leaf node with the key's `rest` below where it hangs and the RLP `value`;
/// `None` for a node short enough to be inlined. `rlp` is a reused buffer.
pub(super) fn leaf_hash(rest: &Nibbles, value: &[u8], rlp: &mut Vec<u8>) -> Option<B256> {
    rlp.clear();
    LeafNodeRef::new(rest, value).rlp(rlp).as_hash()
}

#[cfg(test)]
mod tests {
    use alloy_primitives::keccak256;

    use super::*;

    fn leaves(n: u64) -> Vec<(Nibbles, Vec<u8>)> {
        let mut leaves: Vec<_> = (0..n)
            .map(|i| {
                let mut key = keccak256(i.to_be_bytes());
                // Some share long prefixes, so some leaf nodes are short enough to inline.
                if i % 5 == 0 {
                    key.0[..9].copy_from_slice(&[7; 9]);
                }
                (Nibbles::unpack(key), vec![(i % 200) as u8 + 1])
            })
            .collect();
        leaves.sort();
        leaves
    }

    #[test]
    fn test_leaves_as_hashes_give_the_plain_root() {
        for n in [0u64, 1, 2, 3, 17, 300, 2000] {
            let leaves = leaves(n);
            let mut plain = HashBuilder::default();
            let mut feed = Feed::new(HashBuilder::default(), true);
            for (key, value) in &leaves {
                plain.add_leaf(*key, value);
                feed.add_leaf(*key, |out| out.extend_from_slice(value));
            }
            assert_eq!(feed.root(), plain.root(), "{n} leaves");
        }
    }

    #[test]
    fn test_branches_keep_their_leaves_hashes() {
        let leaves = leaves(300);
        let mut plain = HashBuilder::default().with_updates(true);
        let mut feed = Feed::new(HashBuilder::default().with_updates(true), true);
        for (key, value) in &leaves {
            plain.add_leaf(*key, value);
            feed.add_leaf(*key, |out| out.extend_from_slice(value));
        }
        feed.root();
        plain.root();
        let count = |hb: HashBuilder| -> usize {
            hb.split()
                .1
                .values()
                .map(|node| node.hashes.len())
                .sum::<usize>()
        };
        let (fed, plain) = (count(feed.into_builder()), count(plain));
        // Nearly every leaf's hash is kept (the inlined ones are not); plainly only branches'.
        assert!(fed > plain + 200, "{fed} hashes kept, plainly {plain}");
    }
}
