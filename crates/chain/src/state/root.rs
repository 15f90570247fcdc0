//! State and storage roots over the stored head state plus a block's changes.
//!
//! Both walk a sorted merge of the stored table and the overlay into alloy-trie's
//! `HashBuilder`. The account trie is rebuilt from all accounts each block; storage tries only
//! for accounts whose storage changed (others keep their cached root).

use std::collections::BTreeMap;

use alloy_primitives::{B256, U256};
use alloy_rlp::Encodable;
use alloy_trie::{HashBuilder, Nibbles};

use super::{HashedState, StorageDiff};
use crate::store::{AccountRecord, StoreError};

/// Merges a sorted stored stream with a sorted overlay (which wins on equal keys) and feeds the
/// surviving entries to `leaf`.
fn merge<V, O>(
    stored: impl Iterator<Item = Result<(B256, V), StoreError>>,
    overlay: &BTreeMap<B256, O>,
    mut keep: impl FnMut(&O) -> Option<V>,
    mut leaf: impl FnMut(&B256, &V),
) -> Result<(), StoreError> {
    let mut over = overlay.iter().peekable();
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

/// The storage root of one account after `diff`.
pub(super) fn storage_root(
    base: &(impl HashedState + ?Sized),
    hashed_address: &B256,
    diff: &StorageDiff,
) -> Result<B256, StoreError> {
    let mut builder = HashBuilder::default();
    let mut buf = Vec::with_capacity(33);
    let mut leaf = |key: &B256, value: &U256| {
        buf.clear();
        value.encode(&mut buf);
        builder.add_leaf(Nibbles::unpack(key), &buf);
    };
    let keep = |v: &U256| (!v.is_zero()).then_some(*v);
    if diff.wiped {
        merge(std::iter::empty(), &diff.slots, keep, &mut leaf)?;
    } else {
        merge(
            base.storage_slots(hashed_address)?,
            &diff.slots,
            keep,
            &mut leaf,
        )?;
    }
    Ok(finish(builder))
}

/// The state root after replacing the given accounts (`None` deletes).
pub(super) fn state_root(
    base: &(impl HashedState + ?Sized),
    accounts: &BTreeMap<B256, Option<AccountRecord>>,
) -> Result<B256, StoreError> {
    let mut builder = HashBuilder::default();
    let mut buf = Vec::with_capacity(110);
    merge(
        base.accounts()?,
        accounts,
        |r: &Option<AccountRecord>| *r,
        |key, record| {
            buf.clear();
            record.trie_account().encode(&mut buf);
            builder.add_leaf(Nibbles::unpack(key), &buf);
        },
    )?;
    Ok(finish(builder))
}

fn finish(mut builder: HashBuilder) -> B256 {
    builder.root()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(items: &[(u8, u32)]) -> Vec<Result<(B256, u32), StoreError>> {
        items
            .iter()
            .map(|(k, v)| Ok((B256::repeat_byte(*k), *v)))
            .collect()
    }

    #[test]
    fn test_merge_overlay_wins_and_deletes() {
        let mut overlay = BTreeMap::new();
        overlay.insert(B256::repeat_byte(2), None);
        overlay.insert(B256::repeat_byte(3), Some(30));
        overlay.insert(B256::repeat_byte(5), Some(50));
        overlay.insert(B256::repeat_byte(0), Some(1));
        let mut out = Vec::new();
        merge(
            stored(&[(1, 10), (2, 20), (3, 3), (4, 40)]).into_iter(),
            &overlay,
            |o: &Option<u32>| *o,
            |k, v| out.push((k[0], *v)),
        )
        .expect("no store errors");
        assert_eq!(out, vec![(0, 1), (1, 10), (3, 30), (4, 40), (5, 50)]);
    }

    #[test]
    fn test_empty_trie_root() {
        assert_eq!(finish(HashBuilder::default()), alloy_trie::EMPTY_ROOT_HASH);
    }

    #[test]
    fn test_storage_root_matches_alloy_reference() {
        // The merge-and-stream root must equal alloy-trie's reference over the same slots.
        let slots: BTreeMap<B256, U256> = (1u64..50)
            .map(|i| {
                (
                    alloy_primitives::keccak256(B256::from(U256::from(i))),
                    U256::from(i * 7),
                )
            })
            .collect();
        let mut builder = HashBuilder::default();
        let mut buf = Vec::new();
        merge(
            std::iter::empty(),
            &slots,
            |v: &U256| Some(*v),
            |k, v| {
                buf.clear();
                v.encode(&mut buf);
                builder.add_leaf(Nibbles::unpack(k), &buf);
            },
        )
        .expect("no store errors");
        let expected = alloy_trie::root::storage_root_unhashed(
            (1u64..50).map(|i| (B256::from(U256::from(i)), U256::from(i * 7))),
        );
        assert_eq!(finish(builder), expected);
    }
}
