//! Reading ahead, before a round simulates them, the state that new orders will touch: on a
//! state read over the network (an execution client's), a key first read by the EVM costs a
//! round trip in the middle of a simulation, one after another; read ahead, all of a round's
//! new keys cost two batches. On the embedded chain reads are local and nothing is read ahead.

use std::{collections::HashSet, sync::Arc};

use alloy_consensus::{TxEnvelope, transaction::Recovered};
use alloy_primitives::B256;
use cobuild_pool::{PooledBundle, PooledTx};

/// Most transactions read ahead in one round: a few batches' worth; the rest are read as
/// simulation meets them.
pub const MAX_READ_AHEAD: usize = 2_000;

/// Reads ahead what transactions touch into the state after a block, which the slot's state
/// shares its read cache with. Called on the round's thread.
pub trait ReadAhead: Send + Sync + 'static {
    /// Reads what `txs` touch into the state after block `parent` (nothing if that is no longer
    /// the state at hand); a failure only costs the reads later.
    fn read_ahead(&self, parent: B256, txs: &[Recovered<TxEnvelope>]);
}

/// The transactions a slot has read ahead already.
#[derive(Default)]
pub(super) struct SlotReads {
    done: HashSet<B256>,
}

impl SlotReads {
    /// Reads ahead, with `reader`, the transactions of `bundles` and `txs` not read ahead this
    /// slot (bundles first: they pay the most), at most [`MAX_READ_AHEAD`].
    pub(super) fn read_new(
        &mut self,
        reader: &dyn ReadAhead,
        parent: B256,
        bundles: &[Arc<PooledBundle>],
        txs: &[Arc<PooledTx>],
    ) {
        let fresh: Vec<Recovered<TxEnvelope>> = bundles
            .iter()
            .flat_map(|pooled| pooled.bundle.txs.iter())
            .chain(txs.iter().map(|pooled| &pooled.tx))
            .filter(|tx| !self.done.contains(tx.tx_hash()))
            .take(MAX_READ_AHEAD)
            .cloned()
            .collect();
        if fresh.is_empty() {
            return;
        }
        self.done.extend(fresh.iter().map(|tx| *tx.tx_hash()));
        reader.read_ahead(parent, &fresh);
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::Address;
    use cobuild_chain::{
        dev_signers,
        test_utils::{sign, transfer},
    };
    use parking_lot::Mutex;

    use super::*;
    use crate::builder::test_bundle;

    /// Records what it is asked to read ahead.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<Vec<B256>>>);

    impl ReadAhead for Recorder {
        fn read_ahead(&self, _: B256, txs: &[Recovered<TxEnvelope>]) {
            self.0
                .lock()
                .push(txs.iter().map(|tx| *tx.tx_hash()).collect());
        }
    }

    fn pooled(signer: usize, nonce: u64) -> Arc<PooledTx> {
        let tx = sign(
            &dev_signers()[signer],
            transfer(nonce, Address::repeat_byte(1), 1, 1),
        );
        Arc::new(PooledTx {
            hash: *tx.tx_hash(),
            tx,
            private: None,
        })
    }

    #[test]
    fn test_each_transaction_is_read_ahead_once_a_slot_bundles_first() {
        let recorder = Recorder::default();
        let mut reads = SlotReads::default();
        let in_bundle = pooled(3, 0);
        let bundle = Arc::new(PooledBundle {
            id: B256::repeat_byte(9),
            sender: Address::repeat_byte(9),
            bundle: test_bundle(std::slice::from_ref(&in_bundle.tx)),
        });
        let (first, second) = (pooled(1, 0), pooled(2, 0));

        let (bundles, first_only, both) = (
            vec![bundle],
            vec![first.clone()],
            vec![first, second.clone()],
        );
        reads.read_new(&recorder, B256::ZERO, &bundles, &first_only);
        // A round with nothing new reads nothing; one with a new order reads only that one.
        reads.read_new(&recorder, B256::ZERO, &bundles, &first_only);
        reads.read_new(&recorder, B256::ZERO, &bundles, &both);
        assert_eq!(
            *recorder.0.lock(),
            vec![vec![in_bundle.hash, pooled(1, 0).hash], vec![second.hash]]
        );
    }
}
