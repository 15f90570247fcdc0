//! Byte encodings of the records the store keeps.
//!
//! Blocks and receipts use their consensus (RLP / EIP-2718) encodings so a stored block is
//! exactly what travels on the wire; account records use a fixed-width layout.

use alloy_primitives::{B256, U256};

use super::StoreError;

/// An account as the state trie sees it, keyed by `keccak(address)` in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountRecord {
    /// Transaction count (or contract creation count).
    pub nonce: u64,
    /// Balance in wei.
    pub balance: U256,
    /// Hash of the account's code (`KECCAK_EMPTY` for none).
    pub code_hash: B256,
    /// Root of the account's storage trie.
    pub storage_root: B256,
}

const ACCOUNT_LEN: usize = 8 + 32 + 32 + 32;

impl AccountRecord {
    pub(crate) fn encode(&self) -> [u8; ACCOUNT_LEN] {
        let mut out = [0u8; ACCOUNT_LEN];
        out[..8].copy_from_slice(&self.nonce.to_be_bytes());
        out[8..40].copy_from_slice(&self.balance.to_be_bytes::<32>());
        out[40..72].copy_from_slice(self.code_hash.as_slice());
        out[72..].copy_from_slice(self.storage_root.as_slice());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        if bytes.len() != ACCOUNT_LEN {
            return Err(StoreError::Corrupt("account record length"));
        }
        let mut nonce = [0u8; 8];
        nonce.copy_from_slice(&bytes[..8]);
        Ok(Self {
            nonce: u64::from_be_bytes(nonce),
            balance: U256::from_be_slice(&bytes[8..40]),
            code_hash: B256::from_slice(&bytes[40..72]),
            storage_root: B256::from_slice(&bytes[72..]),
        })
    }

    /// The RLP form the account trie commits to.
    pub fn trie_account(&self) -> alloy_trie::TrieAccount {
        alloy_trie::TrieAccount {
            nonce: self.nonce,
            balance: self.balance,
            storage_root: self.storage_root,
            code_hash: self.code_hash,
        }
    }
}

/// Key of a storage slot: `keccak(address) ++ keccak(slot)`, so one account's slots are one
/// contiguous, trie-ordered range.
pub(crate) fn storage_key(hashed_address: &B256, hashed_slot: &B256) -> [u8; 64] {
    let mut key = [0u8; 64];
    key[..32].copy_from_slice(hashed_address.as_slice());
    key[32..].copy_from_slice(hashed_slot.as_slice());
    key
}

/// The inclusive key range holding every slot of one account.
pub(crate) fn storage_range(hashed_address: &B256) -> ([u8; 64], [u8; 64]) {
    let mut lo = [0u8; 64];
    let mut hi = [0xffu8; 64];
    lo[..32].copy_from_slice(hashed_address.as_slice());
    hi[..32].copy_from_slice(hashed_address.as_slice());
    (lo, hi)
}

/// Position of a transaction: block number and index in the block.
pub(crate) fn encode_tx_location(number: u64, index: u32) -> [u8; 12] {
    let mut out = [0u8; 12];
    out[..8].copy_from_slice(&number.to_be_bytes());
    out[8..].copy_from_slice(&index.to_be_bytes());
    out
}

pub(crate) fn decode_tx_location(bytes: [u8; 12]) -> (u64, u32) {
    let mut n = [0u8; 8];
    let mut i = [0u8; 4];
    n.copy_from_slice(&bytes[..8]);
    i.copy_from_slice(&bytes[8..]);
    (u64::from_be_bytes(n), u32::from_be_bytes(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_account_record_roundtrip() {
        let rec = AccountRecord {
            nonce: 7,
            balance: U256::from(10u64).pow(U256::from(22u64)),
            code_hash: B256::repeat_byte(3),
            storage_root: B256::repeat_byte(9),
        };
        assert_eq!(
            AccountRecord::decode(&rec.encode()).expect("valid record"),
            rec
        );
        assert!(AccountRecord::decode(&[0u8; 5]).is_err());
    }

    #[test]
    fn test_tx_location_roundtrip() {
        assert_eq!(decode_tx_location(encode_tx_location(42, 3)), (42, 3));
    }
}
