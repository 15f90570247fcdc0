//! A memo of recovered transaction senders, keyed by transaction hash.
//!
//! Recovering a sender (a secp256k1 public key recovery) is most of what taking an order costs.
//! A node meets the same signed transaction many times: a searcher sends one bundle for each
//! of the next few blocks, every backrun of a swap carries the swap, a sender resends what did
//! not land, and the refund ledger decodes again every order the slot's archive holds. The hash
//! covers every field of the signed transaction, the signature included, so it names exactly
//! one sender: a hit is as sound as a recovery.
//!
//! The memo is a fixed table of slots, each chosen by the hash's first bytes, so it never grows
//! and a lookup is one short, rarely contended lock. A new sender takes the slot of whatever was
//! there. Hashes made to collide (a sender grinding transactions to evict others') cost only
//! recoveries, never a wrong sender; a transaction whose signature does not recover is not kept.

use std::sync::{
    LazyLock,
    atomic::{AtomicU64, Ordering},
};

use alloy_consensus::{
    TxEnvelope,
    crypto::RecoveryError,
    transaction::{Recovered, SignerRecoverable},
};
use alloy_primitives::{Address, B256};
use parking_lot::Mutex;

/// Slots of the process's memo: about 3.5 MiB, a few minutes of a busy node's distinct
/// transactions.
pub const SENDER_MEMO_SLOTS: usize = 1 << 16;

static GLOBAL: LazyLock<SenderMemo> = LazyLock::new(|| SenderMemo::new(SENDER_MEMO_SLOTS));

/// A slot: the hash of the transaction it holds the sender of, and the sender.
type Slot = Mutex<Option<(B256, Address)>>;

/// Recently recovered senders by transaction hash (see the module docs).
#[derive(Debug)]
pub struct SenderMemo {
    slots: Box<[Slot]>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// How often the memo answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SenderMemoStats {
    /// Senders taken from the memo.
    pub hits: u64,
    /// Senders recovered (and kept) because the memo did not hold them.
    pub misses: u64,
}

impl SenderMemo {
    /// An empty memo of `slots` slots (rounded up to a power of two, at least one).
    pub fn new(slots: usize) -> Self {
        let slots = slots.max(1).next_power_of_two();
        Self {
            slots: (0..slots).map(|_| Mutex::new(None)).collect(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The process's memo, which every decoding path of the node shares: a transaction
    /// recovered when it came in is not recovered again when it comes back.
    pub fn global() -> &'static Self {
        &GLOBAL
    }

    /// `tx` with its sender, from the memo when it holds the transaction's hash, else
    /// recovered (the signature's `s` must be in the lower half, as on mainnet) and kept.
    pub fn recover(&self, tx: TxEnvelope) -> Result<Recovered<TxEnvelope>, RecoveryError> {
        let hash = *tx.tx_hash();
        let slot = &self.slots[self.index(&hash)];
        let held = *slot.lock();
        if let Some((held, sender)) = held
            && held == hash
        {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Recovered::new_unchecked(tx, sender));
        }
        // Recovered outside the lock: it is the slow part, and another thread's lookup of the
        // slot must not wait for it.
        let sender = tx.recover_signer()?;
        *slot.lock() = Some((hash, sender));
        self.misses.fetch_add(1, Ordering::Relaxed);
        Ok(Recovered::new_unchecked(tx, sender))
    }

    /// Hits and misses so far.
    pub fn stats(&self) -> SenderMemoStats {
        SenderMemoStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    fn index(&self, hash: &B256) -> usize {
        let mut low = [0u8; 8];
        low.copy_from_slice(&hash[..8]);
        // The slot count is a power of two: the mask keeps the hash's low bits.
        (u64::from_le_bytes(low) as usize) & (self.slots.len() - 1)
    }

    /// Puts `sender` in `hash`'s slot, whoever signed it: lets a test tell a hit from a
    /// recovery.
    #[cfg(test)]
    fn plant(&self, hash: B256, sender: Address) {
        *self.slots[self.index(&hash)].lock() = Some((hash, sender));
    }
}

#[cfg(test)]
mod tests {
    use alloy_consensus::{SignableTransaction, TxEip1559};
    use alloy_primitives::{Signature, TxKind, U256};
    use alloy_signer::SignerSync;
    use alloy_signer_local::PrivateKeySigner;

    use super::*;

    fn signed(key: &PrivateKeySigner, nonce: u64) -> TxEnvelope {
        let tx = TxEip1559 {
            chain_id: 1,
            nonce,
            gas_limit: 21_000,
            max_fee_per_gas: 2_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            to: TxKind::Call(Address::repeat_byte(0x11)),
            value: U256::from(1),
            ..Default::default()
        };
        let signature = key
            .sign_hash_sync(&tx.signature_hash())
            .expect("signing a hash");
        TxEnvelope::Eip1559(tx.into_signed(signature))
    }

    #[test]
    fn test_a_transaction_met_again_is_not_recovered_again() {
        let key = PrivateKeySigner::random();
        let memo = SenderMemo::new(16);
        let tx = signed(&key, 0);
        let first = memo.recover(tx.clone()).expect("recovers");
        assert_eq!(first.signer(), key.address());
        assert_eq!(memo.stats(), SenderMemoStats { hits: 0, misses: 1 });
        let again = memo.recover(tx).expect("recovers");
        assert_eq!(again.signer(), key.address());
        assert_eq!(memo.stats(), SenderMemoStats { hits: 1, misses: 1 });
    }

    #[test]
    fn test_the_sender_comes_from_the_memo_when_it_holds_the_hash() {
        let memo = SenderMemo::new(16);
        let tx = signed(&PrivateKeySigner::random(), 0);
        let planted = Address::repeat_byte(0x77);
        memo.plant(*tx.tx_hash(), planted);
        assert_eq!(memo.recover(tx).expect("from the memo").signer(), planted);
    }

    #[test]
    fn test_another_signature_over_the_same_transaction_is_recovered_on_its_own() {
        let (alice, mallory) = (PrivateKeySigner::random(), PrivateKeySigner::random());
        let memo = SenderMemo::new(1);
        let TxEnvelope::Eip1559(by_alice) = signed(&alice, 3) else {
            unreachable!("signed makes EIP-1559 transactions")
        };
        let tx = by_alice.tx().clone();
        let by_mallory = mallory
            .sign_hash_sync(&tx.signature_hash())
            .expect("signing a hash");
        let by_mallory = TxEnvelope::Eip1559(tx.into_signed(by_mallory));
        // One slot: both land in it, so only the hash tells them apart.
        let recovered = memo.recover(by_alice.into()).expect("recovers");
        assert_eq!(recovered.signer(), alice.address());
        let recovered = memo.recover(by_mallory).expect("recovers");
        assert_eq!(recovered.signer(), mallory.address());
        assert_eq!(memo.stats().hits, 0);
    }

    #[test]
    fn test_a_signature_that_does_not_recover_is_refused_and_not_kept() {
        let memo = SenderMemo::new(16);
        let TxEnvelope::Eip1559(signed) = signed(&PrivateKeySigner::random(), 0) else {
            unreachable!("signed makes EIP-1559 transactions")
        };
        // s above half the curve order: refused since EIP-2.
        let high_s = Signature::new(
            signed.signature().r(),
            U256::from_be_slice(&[0xff; 32]) >> 1,
            false,
        );
        let bad = TxEnvelope::Eip1559(signed.tx().clone().into_signed(high_s));
        assert!(memo.recover(bad.clone()).is_err());
        assert!(memo.recover(bad).is_err());
        assert_eq!(memo.stats(), SenderMemoStats::default());
    }

    #[test]
    fn test_slots_are_a_power_of_two() {
        assert_eq!(SenderMemo::new(0).slots.len(), 1);
        assert_eq!(SenderMemo::new(3).slots.len(), 4);
        assert_eq!(
            SenderMemo::new(SENDER_MEMO_SLOTS).slots.len(),
            SENDER_MEMO_SLOTS
        );
    }
}
