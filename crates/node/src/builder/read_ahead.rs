//! Reading ahead, before a round simulates them, the state that new orders will touch: on a
//! state read over the network (an execution client's), a key first read by the EVM costs a
//! round trip in the middle of a simulation, one after another; read ahead, all of a round's
//! new keys cost two batches. On the embedded chain reads are local and nothing is read ahead.

use std::{collections::HashSet, sync::Arc};

use alloy_consensus::{TxEnvelope, transaction::Recovered};
use alloy_primitives::B256;
use cobuild_chain::StateSnapshot;
use cobuild_pool::{PooledBundle, PooledTx};

/// Most transactions read ahead in one round: a few batches' worth; the rest are read as
/// simulation meets them.
pub const MAX_READ_AHEAD: usize = 2_000;

/// Reads ahead what transactions touch into a slot's state. Called on the round's thread.
pub trait ReadAhead: Send + Sync + 'static {
    /// Reads what `txs` touch into `state`, the state after block `parent`; a failure only
    /// costs the reads later.
    fn read_ahead(&self, parent: B256, state: &StateSnapshot, txs: &[Recovered<TxEnvelope>]);
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
        state: &StateSnapshot,
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
        reader.read_ahead(parent, state, &fresh);
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::Address;
    use cobuild_chain::{
        dev_signers,
        test_utils::{sign, transfer},
    };
    use cobuild_primitives::Bundle;
    use parking_lot::Mutex;

    use super::*;

    /// Records what it is asked to read ahead.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<Vec<B256>>>);

    impl ReadAhead for Recorder {
        fn read_ahead(&self, _: B256, _: &StateSnapshot, txs: &[Recovered<TxEnvelope>]) {
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
        let dir = tempfile::tempdir().expect("temp dir");
        let chain = cobuild_chain::test_utils::devnet_chain(dir.path());
        let (_, state) = chain.head_state().expect("state");
        let recorder = Recorder::default();
        let mut reads = SlotReads::default();
        let in_bundle = pooled(3, 0);
        let bundle = Arc::new(PooledBundle {
            id: B256::repeat_byte(9),
            sender: Address::repeat_byte(9),
            bundle: Bundle {
                hash: B256::repeat_byte(9),
                txs: vec![in_bundle.tx.clone()],
                block_number: 0,
                max_block: None,
                min_timestamp: None,
                max_timestamp: None,
                reverting: Vec::new(),
                dropping: Vec::new(),
                replacement: None,
                refund: None,
            },
        });
        let (first, second) = (pooled(1, 0), pooled(2, 0));

        let (bundles, first_only, both) = (
            vec![bundle],
            vec![first.clone()],
            vec![first, second.clone()],
        );
        reads.read_new(&recorder, B256::ZERO, &state, &bundles, &first_only);
        // A round with nothing new reads nothing; one with a new order reads only that one.
        reads.read_new(&recorder, B256::ZERO, &state, &bundles, &first_only);
        reads.read_new(&recorder, B256::ZERO, &state, &bundles, &both);
        assert_eq!(
            *recorder.0.lock(),
            vec![vec![in_bundle.hash, pooled(1, 0).hash], vec![second.hash]]
        );
    }
}
