//! Iterating the pool best-first.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, VecDeque},
    sync::Arc,
};

use alloy_consensus::Transaction;

use crate::PooledTx;

/// Transactions in inclusion order: the highest effective tip among every sender's next
/// transaction, so a sender's nonces always come in order.
#[derive(Debug)]
pub struct BestTransactions {
    queues: Vec<VecDeque<Arc<PooledTx>>>,
    // (effective tip, queue index); ties go to the lower index, which is deterministic.
    heap: BinaryHeap<(u128, Reverse<usize>)>,
    base_fee: u64,
    last: Option<usize>,
}

impl BestTransactions {
    pub(crate) fn new(queues: Vec<VecDeque<Arc<PooledTx>>>, base_fee: u64) -> Self {
        let mut best = Self {
            queues,
            heap: BinaryHeap::new(),
            base_fee,
            last: None,
        };
        for i in 0..best.queues.len() {
            best.push_head(i);
        }
        best
    }

    fn push_head(&mut self, queue: usize) {
        if let Some(tx) = self.queues[queue].front() {
            // Below the base fee the transaction cannot be included at all; its sender waits.
            if let Some(tip) = tx.tx.effective_tip_per_gas(self.base_fee) {
                self.heap.push((tip, Reverse(queue)));
            }
        }
    }

    /// Drops the remaining transactions of the sender of the last one returned: it was not
    /// included, so its later nonces cannot run in this block.
    pub fn skip_last_sender(&mut self) {
        if let Some(queue) = self.last {
            self.queues[queue].clear();
        }
    }
}

impl Iterator for BestTransactions {
    type Item = Arc<PooledTx>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (_, Reverse(queue)) = self.heap.pop()?;
            // A skipped sender's queue is empty but may still have its entry in the heap.
            let Some(tx) = self.queues[queue].pop_front() else {
                continue;
            };
            self.push_head(queue);
            self.last = Some(queue);
            return Some(tx);
        }
    }
}
