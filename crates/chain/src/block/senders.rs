//! The signers of transactions seen before, by transaction hash.
//!
//! Recovering a signer (one secp256k1 recovery, ~55 µs) costs more than executing a plain
//! transfer, and a relay re-executes the same transactions again and again: a builder's
//! successive bids in a slot mostly extend one another. A member importing a block whose
//! transactions it already checked as bids is the same case. The hash commits to the signature
//! and everything it signs, so a hash seen before has the signer recovered then.

use std::num::NonZeroUsize;

use alloy_consensus::{
    TxEnvelope,
    transaction::{Recovered, SignerRecoverable},
};
use alloy_primitives::{Address, B256};
use lru::LruCache;
use parking_lot::Mutex;

/// Signers by transaction hash, the least recently used forgotten first.
#[derive(Debug)]
pub(crate) struct SenderCache {
    signers: Mutex<LruCache<B256, Address>>,
}

/// A transaction whose signature does not recover, by its position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadSignature(pub(crate) usize);

impl SenderCache {
    /// Enough for every transaction of a few hundred full devnet blocks; ~100 bytes each.
    pub(crate) const DEFAULT_CAPACITY: NonZeroUsize = NonZeroUsize::new(1 << 16).expect("not zero");

    /// A cache that remembers at most `capacity` signers.
    pub(crate) fn new(capacity: NonZeroUsize) -> Self {
        Self {
            signers: Mutex::new(LruCache::new(capacity)),
        }
    }

    /// How many signers it holds.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.signers.lock().len()
    }

    /// Every transaction with its signer, in order: remembered ones from the cache, the others
    /// recovered and remembered. Fails on the first transaction, by position, whose
    /// signature does not recover; then nothing is remembered.
    pub(crate) fn recover_all(
        &self,
        txs: Vec<TxEnvelope>,
    ) -> Result<Vec<Recovered<TxEnvelope>>, BadSignature> {
        let known: Vec<Option<Address>> = {
            let mut signers = self.signers.lock();
            txs.iter()
                .map(|tx| signers.get(tx.tx_hash()).copied())
                .collect()
        };
        // On the caller's thread, not rayon's pool: a block of new transactions would hold the
        // pool for tens of milliseconds, and the builder's seals wait on that pool.
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
        for ((tx, known), signer) in txs.iter().zip(&known).zip(&signers) {
            if known.is_none() {
                cache.put(*tx.tx_hash(), *signer);
            }
        }
        drop(cache);
        Ok(txs
            .into_iter()
            .zip(signers)
            .map(|(tx, signer)| Recovered::new_unchecked(tx, signer))
            .collect())
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
        // The same hash with a signature that recovers to someone else can only come from the
        // cache: the hash commits to the signature, so a real one never differs this way.
        let TxEnvelope::Eip1559(signed_tx) = &tx else {
            unreachable!("built as EIP-1559")
        };
        let other = Signature::new(U256::from(1), U256::from(1), false);
        let forged: TxEnvelope =
            alloy_consensus::Signed::new_unchecked(signed_tx.tx().clone(), other, *tx.tx_hash())
                .into();
        let recovered = cache
            .recover_all(vec![forged])
            .expect("answered from the cache");
        assert_eq!(recovered[0].signer(), a.address());
    }

    #[test]
    fn test_a_bad_signature_is_reported_by_position_and_nothing_is_remembered_of_it() {
        let a = PrivateKeySigner::random();
        let good = signed(&a, 0);
        let TxEnvelope::Eip1559(signed_tx) = signed(&a, 1) else {
            unreachable!("built as EIP-1559")
        };
        let zero = Signature::new(U256::ZERO, U256::ZERO, false);
        let bad: TxEnvelope = signed_tx.tx().clone().into_signed(zero).into();
        let cache = SenderCache::default();
        assert_eq!(cache.recover_all(vec![good, bad]), Err(BadSignature(1)));
        assert_eq!(cache.len(), 0, "a failed block remembers nothing");
    }
}
