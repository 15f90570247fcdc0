//! The signers of transactions seen before, by transaction hash.
//!
//! Recovering a signer (one secp256k1 public key recovery, 30–55 µs) costs more than executing
//! a plain transfer, and the same signed transaction comes back again and again: a searcher
//! sends one bundle for each of the next few blocks, every backrun of a swap carries the swap,
//! the refund ledger reads again the orders its records cover, a relay re-executes a builder's
//! successive bids (which mostly extend one another), and a member imports a block whose
//! transactions it checked as bids. The hash commits to the signature and everything it signs,
//! so a hash seen before has the signer recovered then: a hit is as sound as a recovery.
//!
//! The cache is bounded (least recently used forgotten first) and a transaction whose
//! signature does not recover is never remembered.

use std::{
    num::NonZeroUsize,
    sync::{
        LazyLock,
        atomic::{AtomicU64, Ordering},
    },
};

use alloy_consensus::{
    TxEnvelope,
    transaction::{Recovered, SignerRecoverable},
};
use alloy_primitives::{Address, B256};
use lru::LruCache;
use parking_lot::Mutex;

static GLOBAL: LazyLock<SenderCache> = LazyLock::new(SenderCache::default);

/// Signers by transaction hash, the least recently used forgotten first.
#[derive(Debug)]
pub struct SenderCache {
    signers: Mutex<LruCache<B256, Address>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// A transaction whose signature does not recover, by its position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadSignature(pub usize);

/// How often a cache answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SenderCacheStats {
    /// Signers taken from the cache.
    pub hits: u64,
    /// Signers recovered because the cache did not hold them.
    pub misses: u64,
}

impl SenderCache {
    /// Every transaction of a few hundred full blocks, or a few minutes of a busy node's
    /// orderflow; about 100 bytes each.
    pub const DEFAULT_CAPACITY: NonZeroUsize = NonZeroUsize::new(1 << 16).expect("not zero");

    /// A cache that remembers at most `capacity` signers.
    pub fn new(capacity: NonZeroUsize) -> Self {
        Self {
            signers: Mutex::new(LruCache::new(capacity)),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The process's cache, which every path decoding orderflow shares: a transaction recovered
    /// when it came in is not recovered again when it comes back.
    pub fn global() -> &'static Self {
        &GLOBAL
    }

    /// `tx` with its signer, from the cache if it holds the hash, else recovered (the
    /// signature's `s` must be in the lower half, as on mainnet) and remembered.
    pub fn recover(&self, tx: TxEnvelope) -> Result<Recovered<TxEnvelope>, BadSignature> {
        let mut one = self.recover_all(vec![tx])?;
        one.pop().ok_or(BadSignature(0))
    }

    /// Every transaction with its signer, in order: remembered ones from the cache, the others
    /// recovered and remembered. Fails on the first transaction, by position, whose
    /// signature does not recover; then nothing is remembered.
    pub fn recover_all(
        &self,
        txs: Vec<TxEnvelope>,
    ) -> Result<Vec<Recovered<TxEnvelope>>, BadSignature> {
        let known: Vec<Option<Address>> = {
            let mut signers = self.signers.lock();
            txs.iter()
                .map(|tx| signers.get(tx.tx_hash()).copied())
                .collect()
        };
        // Recovered without the lock (the slow part: other threads' lookups must not wait for
        // it), on the caller's thread, not rayon's pool: a block of new transactions would hold
        // the pool for tens of milliseconds, and the builder's seals wait on that pool.
        let signers = txs
            .iter()
            .zip(&known)
            .enumerate()
            .map(|(index, (tx, known))| match known {
                Some(signer) => Ok(*signer),
                None => tx.recover_signer().map_err(|_| BadSignature(index)),
            })
            .collect::<Result<Vec<Address>, _>>()?;
        let mut cache = self.signers.lock();
        let mut misses = 0;
        for ((tx, known), signer) in txs.iter().zip(&known).zip(&signers) {
            if known.is_none() {
                cache.put(*tx.tx_hash(), *signer);
                misses += 1;
            }
        }
        drop(cache);
        self.misses.fetch_add(misses, Ordering::Relaxed);
        self.hits
            .fetch_add(txs.len() as u64 - misses, Ordering::Relaxed);
        Ok(txs
            .into_iter()
            .zip(signers)
            .map(|(tx, signer)| Recovered::new_unchecked(tx, signer))
            .collect())
    }

    /// Hits and misses so far.
    pub fn stats(&self) -> SenderCacheStats {
        SenderCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    /// How many signers it holds.
    pub fn len(&self) -> usize {
        self.signers.lock().len()
    }

    /// Whether it holds no signer.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for SenderCache {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

#[cfg(test)]
mod tests {
    use alloy_consensus::{SignableTransaction, TxEip1559};
    use alloy_primitives::{Signature, TxKind, U256};
    use alloy_signer::SignerSync;
    use alloy_signer_local::PrivateKeySigner;

    use super::*;

    fn signed(signer: &PrivateKeySigner, nonce: u64) -> TxEnvelope {
        let tx = TxEip1559 {
            chain_id: 1,
            nonce,
            gas_limit: 21_000,
            max_fee_per_gas: 2,
            to: TxKind::Call(Address::repeat_byte(7)),
            value: U256::from(1),
            ..Default::default()
        };
        let signature = signer.sign_hash_sync(&tx.signature_hash()).expect("signs");
        tx.into_signed(signature).into()
    }

    /// `tx` with `signature` in place of its own but keeping its hash: what a cache hit alone
    /// can answer for (the hash commits to the signature, so a real one never differs this
    /// way).
    fn with_hash_of(tx: &TxEnvelope, signature: Signature) -> TxEnvelope {
        let TxEnvelope::Eip1559(signed_tx) = tx else {
            unreachable!("built as EIP-1559")
        };
        alloy_consensus::Signed::new_unchecked(signed_tx.tx().clone(), signature, *tx.tx_hash())
            .into()
    }

    #[test]
    fn test_signers_match_recovery_and_are_remembered_within_capacity() {
        let (a, b) = (PrivateKeySigner::random(), PrivateKeySigner::random());
        let txs: Vec<TxEnvelope> = (0..3)
            .map(|n| signed(&a, n))
            .chain([signed(&b, 0)])
            .collect();
        let cache = SenderCache::new(NonZeroUsize::new(3).expect("not zero"));
        let recovered = cache.recover_all(txs.clone()).expect("all valid");
        let signers: Vec<Address> = recovered.iter().map(|tx| tx.signer()).collect();
        assert_eq!(
            signers,
            [a.address(), a.address(), a.address(), b.address()]
        );
        assert_eq!(cache.len(), 3, "the oldest is forgotten past the capacity");
        // A second pass answers from the cache and recovers what was forgotten.
        let again = cache.recover_all(txs).expect("all valid");
        assert_eq!(
            again.iter().map(|tx| tx.signer()).collect::<Vec<_>>(),
            signers
        );
    }

    #[test]
    fn test_a_remembered_hash_is_not_recovered_again() {
        let a = PrivateKeySigner::random();
        let tx = signed(&a, 0);
        let cache = SenderCache::default();
        cache.recover_all(vec![tx.clone()]).expect("valid");
        let forged = with_hash_of(&tx, Signature::new(U256::from(1), U256::from(1), false));
        let recovered = cache
            .recover_all(vec![forged])
            .expect("answered from the cache");
        assert_eq!(recovered[0].signer(), a.address());
    }

    #[test]
    fn test_one_transaction_met_again_is_taken_from_the_cache() {
        let a = PrivateKeySigner::random();
        let tx = signed(&a, 0);
        let cache = SenderCache::default();
        assert_eq!(
            cache.recover(tx.clone()).expect("valid").signer(),
            a.address()
        );
        assert_eq!(cache.stats(), SenderCacheStats { hits: 0, misses: 1 });
        let forged = with_hash_of(&tx, Signature::new(U256::from(1), U256::from(1), false));
        assert_eq!(
            cache.recover(forged).expect("from the cache").signer(),
            a.address()
        );
        assert_eq!(cache.stats(), SenderCacheStats { hits: 1, misses: 1 });
    }

    #[test]
    fn test_another_signature_over_the_same_transaction_is_recovered_on_its_own() {
        let (alice, mallory) = (PrivateKeySigner::random(), PrivateKeySigner::random());
        let by_alice = signed(&alice, 3);
        let TxEnvelope::Eip1559(signed_tx) = &by_alice else {
            unreachable!("built as EIP-1559")
        };
        let tx = signed_tx.tx().clone();
        let signature = mallory.sign_hash_sync(&tx.signature_hash()).expect("signs");
        let by_mallory: TxEnvelope = tx.into_signed(signature).into();
        let cache = SenderCache::default();
        assert_eq!(
            cache.recover(by_alice).expect("valid").signer(),
            alice.address()
        );
        assert_eq!(
            cache.recover(by_mallory).expect("valid").signer(),
            mallory.address()
        );
        assert_eq!(cache.stats().hits, 0);
    }

    #[test]
    fn test_a_bad_signature_is_refused_and_nothing_is_remembered_of_it() {
        let a = PrivateKeySigner::random();
        let good = signed(&a, 0);
        let TxEnvelope::Eip1559(signed_tx) = signed(&a, 1) else {
            unreachable!("built as EIP-1559")
        };
        let zero = Signature::new(U256::ZERO, U256::ZERO, false);
        let bad: TxEnvelope = signed_tx.tx().clone().into_signed(zero).into();
        let cache = SenderCache::default();
        assert_eq!(
            cache.recover_all(vec![good, bad.clone()]),
            Err(BadSignature(1))
        );
        assert!(cache.is_empty(), "a failed block remembers nothing");
        // s above half the curve order: refused since EIP-2.
        let TxEnvelope::Eip1559(signed_tx) = signed(&a, 2) else {
            unreachable!("built as EIP-1559")
        };
        let high_s = Signature::new(
            signed_tx.signature().r(),
            U256::from_be_slice(&[0xff; 32]) >> 1,
            false,
        );
        let high_s: TxEnvelope = signed_tx.tx().clone().into_signed(high_s).into();
        assert!(cache.recover(bad).is_err());
        assert!(cache.recover(high_s).is_err());
        assert!(cache.is_empty());
        assert_eq!(cache.stats(), SenderCacheStats::default());
    }
}
