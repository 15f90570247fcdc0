//! The thread that keeps the per-key history index up with the blocks committed.
//!
//! A commit wakes it; it indexes every block committed since its last pass in one write
//! transaction, so a burst of commits costs one pass. The index and the mark saying how far it
//! reaches are written together, so a crash leaves them consistent; whatever the mark does not
//! cover is indexed when the store opens.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
    mpsc,
};

use super::{StoreError, history};

/// Handle of the indexing thread; dropping it waits for the pass under way to finish.
#[derive(Debug)]
pub(super) struct Indexer {
    wake: Option<mpsc::SyncSender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Indexer {
    /// Starts the thread over `db`, pruning outside the window `window` holds.
    pub(super) fn spawn(db: Arc<redb::Database>, window: Arc<AtomicU64>) -> std::io::Result<Self> {
        // One pending wake is enough: a pass indexes everything committed before it starts.
        let (wake, woken) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("chain-history-index".into())
            .spawn(move || {
                while woken.recv().is_ok() {
                    match index(&db, window.load(Ordering::Relaxed)) {
                        Ok(0) => {}
                        Ok(blocks) => tracing::trace!(blocks, "chain.store.history_indexed"),
                        // The reads fall back to the reverts; the next pass tries again.
                        Err(error) => tracing::warn!(%error, "chain.store.history_index_failed"),
                    }
                }
            })?;
        let indexer = Self {
            wake: Some(wake),
            thread: Some(thread),
        };
        // Blocks the store was given before (the genesis) are indexed without waiting for one.
        indexer.wake();
        Ok(indexer)
    }

    /// Asks for a pass (none is queued twice).
    pub(super) fn wake(&self) {
        if let Some(wake) = &self.wake {
            let _ = wake.try_send(());
        }
    }
}

impl Drop for Indexer {
    fn drop(&mut self) {
        self.wake = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One pass: indexes the blocks not indexed yet and prunes outside `window`.
pub(super) fn index(db: &redb::Database, window: u64) -> Result<u64, StoreError> {
    let txn = db.begin_write()?;
    let blocks = history::index_pending(&txn, window)?;
    txn.commit()?;
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use redb::ReadableDatabase;

    use crate::{
        state::HashedStateDiff,
        store::{META, Store, decode_u64, history::HISTORY_NEXT_KEY, write_test_block},
    };

    #[test]
    fn test_the_thread_indexes_what_was_committed_and_finishes_before_the_store_closes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("chain.redb");
        let mut store = Store::open(&path).expect("opens");
        store.index_in_background().expect("starts");
        for number in 0..20 {
            write_test_block(&store, number, &[], &HashedStateDiff::default());
        }
        // Dropping the store waits for the thread, which takes the wake left queued.
        drop(store);
        let db = redb::Database::open(&path).expect("closed by the thread too");
        let txn = db.begin_read().expect("read");
        let meta = txn.open_table(META).expect("meta");
        let next = meta.get(HISTORY_NEXT_KEY).expect("reads").expect("marked");
        assert_eq!(decode_u64(next.value()).expect("u64"), 20);
    }
}
