//! The state root of a block built on a state known only through Merkle proofs (EIP-1186
//! `eth_getProof` answers from an execution client), without the state's tables.
//!
//! Every proof node goes into one pool, keyed by its hash: a trie is the nodes reachable from
//! its root hash. A root after changes walks from the old root down every path a change lies
//! on; the subtrees off those paths go to alloy-trie's `HashBuilder` as their hashes, the leaves
//! on them (changed or not) as leaves, and the builder makes whatever branches, extensions and
//! leaves the new key set needs. A proof of each changed key reveals its path, which is all an
//! update or insertion needs.
//!
//! A deletion can need more. When a branch is left with one child, the child moves up into
//! the parent's place and how it moves depends on what it is (a branch gains an extension, a
//! leaf or extension a longer key); the builder treats a hash as a branch, so a lone child
//! whose node is not in the pool is reported ([`ProofError::Missing`], every such node the
//! root meets, so they are fetched in one batch). Its node comes from
//! the proof of any key under its path; [`key_under`] finds such a key by trying keys in turn,
//! which is cheap in a shallow trie and hopeless in a deep one, where the seal fails rather
//! than guess.
//!
//! The pool lasts for the parent: every candidate block of a slot starts from the same state,
//! so each only fetches proofs of the keys no earlier candidate changed.

use std::collections::{BTreeMap, HashMap, HashSet, hash_map::Entry};

use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_rlp::{Decodable, Encodable};
use alloy_trie::{
    EMPTY_ROOT_HASH, HashBuilder, Nibbles, TrieAccount,
    nodes::{RlpNode, TrieNode},
};
use revm::{database::states::StateChangeset, state::AccountInfo};

use super::{AccountProof, root::bounds};
use crate::store::AccountRecord;

/// Why a root could not be computed from the proofs at hand.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// The source has no proofs to give (it is not an execution client).
    #[error("the state source gives no proofs")]
    Unsupported,
    /// A changed account has no proof yet; [`ProvedState::unproved`] names what to fetch.
    #[error("no proof of account {0}")]
    NotProved(Address),
    /// A changed key's path runs through a node no proof revealed: the proofs given do not
    /// belong to this state.
    #[error("trie node {hash} on a changed path is not revealed (trie of {account:?})")]
    NotRevealed {
        /// The account whose storage trie it is; `None` for the account trie.
        account: Option<Address>,
        /// Its hash.
        hash: B256,
    },
    /// Deletions leave nodes alone in their branches, and these are not revealed: every one
    /// the root met, so they are fetched together.
    #[error("{} trie nodes left alone by deletions must be revealed", .0.len())]
    Missing(Vec<MissingNode>),
    /// No key under a missing node's path was found within the search's budget (see
    /// [`key_under`]): the trie is too deep there to seal from proofs.
    #[error("no key found under {path:?} (trie of {account:?})")]
    NoKeyUnder {
        /// The account whose storage trie it is; `None` for the account trie.
        account: Option<Address>,
        /// The path searched under.
        path: Nibbles,
    },
    /// A proof node is not a trie node.
    #[error("proof node does not decode: {0}")]
    Decode(#[from] alloy_rlp::Error),
}

/// A node a deletion leaves alone in its branch, which the root needs revealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingNode {
    /// The account whose storage trie it is in; `None` for the account trie.
    pub account: Option<Address>,
    /// The node's path.
    pub path: Nibbles,
    /// Its hash.
    pub hash: B256,
}

/// What the proofs fetched so far tell of one state: its trie nodes, and the accounts and
/// slots proved.
#[derive(Debug, Clone)]
pub struct ProvedState {
    state_root: B256,
    nodes: HashMap<B256, TrieNode>,
    accounts: HashMap<Address, Option<AccountRecord>>,
    slots: HashSet<(Address, B256)>,
}

/// New leaf values by hashed key; `None` deletes the leaf.
type LeafChanges = BTreeMap<B256, Option<Vec<u8>>>;

/// Keys to prove: accounts, each with the slots wanted.
pub type ProofRequest = Vec<(Address, Vec<B256>)>;

impl ProvedState {
    /// Nothing proved yet of the state whose root is `state_root`.
    pub fn new(state_root: B256) -> Self {
        Self {
            state_root,
            nodes: HashMap::new(),
            accounts: HashMap::new(),
            slots: HashSet::new(),
        }
    }

    /// The state's root.
    pub const fn state_root(&self) -> B256 {
        self.state_root
    }

    /// Adds the nodes of `proof`, the proof of `address` and some of its slots.
    pub fn reveal(&mut self, address: Address, proof: &AccountProof) -> Result<(), ProofError> {
        let nodes = proof
            .account_proof
            .iter()
            .chain(proof.storage.iter().flat_map(|(_, _, nodes)| nodes));
        for node in nodes {
            self.add_node(node)?;
        }
        self.accounts.insert(address, proof.record);
        self.slots
            .extend(proof.storage.iter().map(|(slot, _, _)| (address, *slot)));
        Ok(())
    }

    fn add_node(&mut self, rlp: &Bytes) -> Result<(), ProofError> {
        if let Entry::Vacant(entry) = self.nodes.entry(keccak256(rlp)) {
            entry.insert(TrieNode::decode(&mut &rlp[..])?);
        }
        Ok(())
    }

    /// The keys `changes` touch that have no proof yet. A wiped storage needs none of its
    /// slots proved: its new trie starts empty.
    pub fn unproved(&self, changes: &StateChangeset) -> ProofRequest {
        let mut wanted: BTreeMap<Address, Vec<B256>> = BTreeMap::new();
        for (address, _) in &changes.accounts {
            if !self.accounts.contains_key(address) {
                wanted.entry(*address).or_default();
            }
        }
        for change in &changes.storage {
            let address = change.address;
            let slots = change
                .storage
                .iter()
                .map(|(slot, _)| B256::from(*slot))
                .filter(|slot| !change.wipe_storage && !self.slots.contains(&(address, *slot)));
            let mut slots = slots.peekable();
            if slots.peek().is_some() || !self.accounts.contains_key(&address) {
                wanted.entry(address).or_default().extend(slots);
            }
        }
        wanted.into_iter().collect()
    }

    /// The state root after `changes`, every changed key proved (see
    /// [`unproved`](Self::unproved)).
    pub fn root_after(&self, changes: &StateChangeset) -> Result<B256, ProofError> {
        let mut infos: BTreeMap<Address, &Option<AccountInfo>> = BTreeMap::new();
        for (address, info) in &changes.accounts {
            infos.insert(*address, info);
        }
        let mut storage: BTreeMap<Address, (bool, LeafChanges)> = BTreeMap::new();
        for change in &changes.storage {
            let (wiped, slots) = storage.entry(change.address).or_default();
            *wiped |= change.wipe_storage;
            for (slot, value) in &change.storage {
                let leaf = (!value.is_zero()).then(|| alloy_rlp::encode(value));
                slots.insert(keccak256(B256::from(*slot)), leaf);
            }
        }
        let addresses: HashSet<Address> = infos.keys().chain(storage.keys()).copied().collect();
        let mut leaves = BTreeMap::new();
        // Every storage trie is tried, so the nodes they all miss are fetched in one go.
        let mut missing = Vec::new();
        for address in addresses {
            let proved = self
                .accounts
                .get(&address)
                .ok_or(ProofError::NotProved(address))?;
            let fields = match infos.get(&address) {
                Some(info) => info.as_ref().map(|i| (i.nonce, i.balance, i.code_hash)),
                None => proved.map(|r| (r.nonce, r.balance, r.code_hash)),
            };
            let Some((nonce, balance, code_hash)) = fields else {
                leaves.insert(keccak256(address), None);
                continue;
            };
            let old_root = proved.map_or(EMPTY_ROOT_HASH, |r| r.storage_root);
            let storage_root = match storage.get(&address) {
                // A wiped storage's new trie starts empty: its clears delete nothing.
                Some((true, slots)) => {
                    let set = slots
                        .iter()
                        .filter(|(_, v)| v.is_some())
                        .map(|(k, v)| (*k, v.clone()))
                        .collect();
                    self.trie_root(Some(address), EMPTY_ROOT_HASH, &set)
                }
                Some((false, slots)) => self.trie_root(Some(address), old_root, slots),
                None => Ok(old_root),
            };
            let storage_root = match storage_root {
                Ok(root) => root,
                Err(ProofError::Missing(nodes)) => {
                    missing.extend(nodes);
                    continue;
                }
                Err(other) => return Err(other),
            };
            let account = TrieAccount {
                nonce,
                balance,
                storage_root,
                code_hash,
            };
            let mut leaf = Vec::with_capacity(account.length());
            account.encode(&mut leaf);
            leaves.insert(keccak256(address), Some(leaf));
        }
        if !missing.is_empty() {
            return Err(ProofError::Missing(missing));
        }
        self.trie_root(None, self.state_root, &leaves)
    }

    /// The root of the trie `root` after `changes` (leaf values by hashed key; `None`
    /// deletes).
    fn trie_root(
        &self,
        account: Option<Address>,
        root: B256,
        changes: &LeafChanges,
    ) -> Result<B256, ProofError> {
        if changes.is_empty() {
            return Ok(root);
        }
        let mut walk = Walk {
            nodes: &self.nodes,
            changes,
            account,
            out: Vec::new(),
        };
        if root != EMPTY_ROOT_HASH {
            walk.hashed(Nibbles::default(), root, Kind::Unknown)?;
        }
        let elements = merge(walk.out, changes);
        let mut missing = Vec::new();
        for (i, element) in elements.iter().enumerate() {
            let Element::Hash(path, hash, Kind::Unknown) = element else {
                continue;
            };
            // A node stays where it is only beside another in its branch; alone, it moves up
            // and what it becomes depends on what it is.
            let parent = path.slice(..path.len().saturating_sub(1));
            let beside = |j: Option<usize>| {
                j.and_then(|j| elements.get(j))
                    .is_some_and(|e| e.path().starts_with(&parent))
            };
            if !beside(i.checked_sub(1)) && !beside(i.checked_add(1)) {
                missing.push(MissingNode {
                    account,
                    path: *path,
                    hash: *hash,
                });
            }
        }
        if !missing.is_empty() {
            return Err(ProofError::Missing(missing));
        }
        let mut hb = HashBuilder::default();
        for element in &elements {
            match element {
                Element::Leaf(key, value) => hb.add_leaf(*key, value),
                Element::Hash(path, hash, _) => hb.add_branch(*path, *hash, false),
            }
        }
        Ok(hb.root())
    }
}

/// What a hashed subtree is known to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A branch node: an extension's child, or a revealed branch.
    Branch,
    /// Not revealed: any node.
    Unknown,
}

/// One piece of the new trie, in key order: a leaf, or an unchanged subtree by its hash.
#[derive(Debug)]
enum Element {
    Leaf(Nibbles, Vec<u8>),
    Hash(Nibbles, B256, Kind),
}

impl Element {
    const fn path(&self) -> &Nibbles {
        match self {
            Self::Leaf(path, _) | Self::Hash(path, _, _) => path,
        }
    }
}

/// The old trie cut along the changed paths: the leaves on them and the subtrees beside them.
struct Walk<'a> {
    nodes: &'a HashMap<B256, TrieNode>,
    changes: &'a LeafChanges,
    account: Option<Address>,
    out: Vec<Element>,
}

impl Walk<'_> {
    fn changed(&self, path: &Nibbles) -> bool {
        let (lo, hi) = bounds(path);
        self.changes.range(lo..=hi).next().is_some()
    }

    fn child(&mut self, path: Nibbles, child: &RlpNode, kind: Kind) -> Result<(), ProofError> {
        match child.as_hash() {
            Some(hash) => self.hashed(path, hash, kind),
            // A node under 32 bytes is held in its parent, not by hash: always at hand.
            None => self.node(path, &TrieNode::decode(&mut &child[..])?),
        }
    }

    fn hashed(&mut self, path: Nibbles, hash: B256, kind: Kind) -> Result<(), ProofError> {
        let changed = self.changed(&path);
        match self.nodes.get(&hash) {
            None if changed => Err(ProofError::NotRevealed {
                account: self.account,
                hash,
            }),
            None => {
                self.out.push(Element::Hash(path, hash, kind));
                Ok(())
            }
            Some(TrieNode::Branch(_)) if !changed => {
                self.out.push(Element::Hash(path, hash, Kind::Branch));
                Ok(())
            }
            Some(node) => self.node(path, node),
        }
    }

    fn node(&mut self, path: Nibbles, node: &TrieNode) -> Result<(), ProofError> {
        match node {
            TrieNode::EmptyRoot => Ok(()),
            TrieNode::Leaf(leaf) => {
                self.out
                    .push(Element::Leaf(path.join(&leaf.key), leaf.value.clone()));
                Ok(())
            }
            TrieNode::Extension(ext) => self.child(path.join(&ext.key), &ext.child, Kind::Branch),
            TrieNode::Branch(branch) => {
                for (nibble, child) in branch.as_ref().children() {
                    if let Some(child) = child {
                        let mut child_path = path;
                        child_path.push(nibble);
                        self.child(child_path, child, Kind::Unknown)?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// The walked pieces with the changes applied: a changed key's leaf replaces the old one (or
/// goes, if deleted); a new key's leaf goes in its place. Both inputs are in key order and a
/// change never falls inside a subtree kept by its hash (the walk descends wherever one does).
fn merge(walked: Vec<Element>, changes: &LeafChanges) -> Vec<Element> {
    let mut out = Vec::with_capacity(walked.len() + changes.len());
    let mut changes = changes
        .iter()
        .map(|(key, value)| (Nibbles::unpack(key), value))
        .peekable();
    for element in walked {
        while let Some((key, value)) = changes.next_if(|(key, _)| key < element.path()) {
            if let Some(value) = value {
                out.push(Element::Leaf(key, value.clone()));
            }
        }
        if let Element::Leaf(key, _) = &element
            && let Some((_, value)) = changes.next_if(|(k, _)| k == key)
        {
            if let Some(value) = value {
                out.push(Element::Leaf(*key, value.clone()));
            }
            continue;
        }
        out.push(element);
    }
    out.extend(changes.filter_map(|(key, value)| value.clone().map(|v| Element::Leaf(key, v))));
    out
}

/// Most paths [`key_under`] searches under: 16⁵ keys to try on average, a fraction of a
/// second; a longer path would take minutes.
pub const MAX_SEARCH_NIBBLES: usize = 5;

/// A key whose trie path starts with `path`: a slot (as a 32-byte word) for a storage trie, an
/// address (in the word's last 20 bytes) for the account trie, found by trying 0, 1, 2, ….
/// `None` when the path is longer than [`MAX_SEARCH_NIBBLES`] or no key turned up in 16 times
/// the expected number of tries.
pub fn key_under(path: &Nibbles, storage: bool) -> Option<B256> {
    if path.len() > MAX_SEARCH_NIBBLES {
        return None;
    }
    let (lo, hi) = bounds(path);
    let budget = 16u64 << (4 * path.len());
    (0..budget).map(|i| B256::from(U256::from(i))).find(|word| {
        let hashed = if storage {
            keccak256(word)
        } else {
            keccak256(&word[12..])
        };
        lo <= hashed && hashed <= hi
    })
}

#[cfg(test)]
mod tests {
    use cobuild_test_utils::Rng;

    use super::*;
    use crate::state::{
        HashedStateDiff, TrieNodes,
        diff::tests::{Memory, changes, parent_state},
        prove,
    };

    /// Seals `changes` on `parent` from proofs, as a snapshot of an execution client does:
    /// proofs of the changed keys, then of a key under each node a deletion needs. Returns the
    /// root and how many nodes had to be revealed that way.
    fn root_from_proofs(
        parent: &Memory,
        root: B256,
        proved: &mut ProvedState,
        changes: &StateChangeset,
    ) -> (B256, usize) {
        let nodes = TrieNodes::empty(B256::ZERO);
        let reveal = |proved: &mut ProvedState, request: ProofRequest| {
            for (address, slots) in request {
                let proof = prove(parent, &nodes, root, address, &slots).expect("memory reads");
                proved.reveal(address, &proof).expect("proof nodes decode");
            }
        };
        reveal(proved, proved.unproved(changes));
        let (mut revealed, mut rounds) = (0, 0);
        loop {
            match proved.root_after(changes) {
                Ok(root) => return (root, revealed),
                Err(ProofError::Missing(nodes)) => {
                    revealed += nodes.len();
                    rounds += 1;
                    // Storage tries first, then the account trie: two rounds at most.
                    assert!(rounds <= 2, "a node is asked for again");
                    let request = nodes
                        .iter()
                        .map(|node| {
                            let word = key_under(&node.path, node.account.is_some())
                                .expect("a shallow trie");
                            match node.account {
                                Some(address) => (address, vec![word]),
                                None => (Address::from_slice(&word[12..]), Vec::new()),
                            }
                        })
                        .collect();
                    reveal(proved, request);
                }
                Err(other) => panic!("{other}"),
            }
        }
    }

    #[test]
    fn test_a_root_from_proofs_equals_the_root_from_the_whole_state() {
        let mut revealed = 0;
        for seed in 0..80u64 {
            let mut rng = Rng::new(seed);
            let space = [4u64, 30, 200][(seed % 3) as usize];
            let (parent, root) = parent_state(&mut rng, space);
            // Candidates of one slot share what the proofs revealed.
            let mut proved = ProvedState::new(root);
            for candidate in 0..4 {
                let block = changes(&mut rng, space, true);
                let expected = HashedStateDiff::new(&parent, None, &block)
                    .expect("memory reads")
                    .state_root;
                let (got, nodes) = root_from_proofs(&parent, root, &mut proved, &block);
                revealed += nodes;
                assert_eq!(got, expected, "seed {seed} candidate {candidate}");
            }
        }
        // The seeds are fixed: deletions did leave nodes alone that had to be revealed.
        assert!(revealed > 10, "{revealed} nodes revealed for deletions");
    }

    #[test]
    fn test_a_key_found_under_a_path_hashes_under_it() {
        let path = Nibbles::from_nibbles([0xa, 0x3, 0x7]);
        for storage in [true, false] {
            let word = key_under(&path, storage).expect("a three-nibble path is searched");
            let hashed = if storage {
                keccak256(word)
            } else {
                keccak256(&word[12..])
            };
            assert!(Nibbles::unpack(hashed).starts_with(&path));
        }
        let deep = Nibbles::from_nibbles([0u8; MAX_SEARCH_NIBBLES + 1]);
        assert_eq!(key_under(&deep, true), None);
    }
}
