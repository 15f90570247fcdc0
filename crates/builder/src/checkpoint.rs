//! Sealing a filling block's copies on a spare core, so that the seal once it is full hashes
//! only what came after the last copy.
//!
//! A first seal hashes every account and slot the block changed: for a full 60M-gas block that
//! is most of the seal's cost, paid after the last order is in. While the block fills, a copy of
//! it ([`cobuild_chain::Checkpoint`]) is sealed on another thread, from what the copy before it
//! kept; one copy is sealed at a time, the next taken once that seal is done and the block has
//! grown by a step. The seal at the end starts from the last copy's cache, as a builder round
//! does from the last round's.
//!
//! It costs a copy of the block's execution state per step on the filling thread, and a core:
//! a caller turns it on only where a core is free beside the fill.

use std::sync::mpsc;

use cobuild_chain::{BlockError, SealCache};

use crate::assembler::Assembler;

/// Seals copies of one growing block in the background, one at a time.
#[derive(Debug)]
pub(crate) struct Checkpoints {
    /// Transactions the block takes between the starts of two copies' seals: a seal has a
    /// fixed cost (copying the state, walking the tries' tops), which steps too small would
    /// spend a core on.
    step: usize,
    /// The seal running now.
    running: Option<mpsc::Receiver<Result<SealCache, BlockError>>>,
    /// Transactions in the block when its last seal (a copy's, or the block's own) started.
    sealed_at: usize,
    /// Copies whose seal ended, and kept a cache.
    sealed: usize,
}

impl Checkpoints {
    /// A copy is sealed each time the block has taken `step` more transactions.
    pub(crate) fn new(step: usize) -> Self {
        Self {
            step: step.max(1),
            running: None,
            sealed_at: 0,
            sealed: 0,
        }
    }

    /// Called as `block` grows. Takes what a finished seal kept into `cache`; then, with no
    /// seal running and the block `step` transactions past the last one, starts sealing a copy
    /// of it from `cache`.
    pub(crate) fn poll(&mut self, block: &Assembler, cache: &mut Option<SealCache>) {
        if let Some(running) = &self.running {
            match running.try_recv() {
                Ok(result) => self.keep(result, cache),
                Err(mpsc::TryRecvError::Empty) => return,
                // The sealing thread panicked: its cache is gone, the next seal starts afresh.
                Err(mpsc::TryRecvError::Disconnected) => self.running = None,
            }
        }
        let transactions = block.transactions();
        if transactions < self.sealed_at + self.step {
            return;
        }
        let copy = block.checkpoint();
        let earlier = cache.take();
        let (done, running) = mpsc::sync_channel(1);
        let spawned = std::thread::Builder::new()
            .name("builder-checkpoint".into())
            .spawn(move || {
                // The receiver is gone only when the block was dropped: nothing to keep.
                let _ = done.send(copy.seal(earlier));
            });
        match spawned {
            Ok(_) => {
                self.running = Some(running);
                self.sealed_at = transactions;
            }
            Err(e) => {
                // The block seals without copies (slower, not wrong); the cache went with the
                // closure.
                tracing::warn!(error = %e, "build.checkpoint.no_thread");
                self.step = usize::MAX;
            }
        }
    }

    /// Waits for the running seal, if one runs, and puts what it kept into `cache`: the block
    /// is about to be sealed from it.
    pub(crate) fn wait(&mut self, cache: &mut Option<SealCache>) {
        if let Some(running) = &self.running {
            match running.recv() {
                Ok(result) => self.keep(result, cache),
                Err(mpsc::RecvError) => self.running = None,
            }
        }
    }

    /// The block itself was sealed with `transactions`: the next copy is a step past them.
    pub(crate) fn sealed_with(&mut self, transactions: usize) {
        self.sealed_at = transactions;
    }

    /// Copies sealed so far.
    pub(crate) fn sealed(&self) -> usize {
        self.sealed
    }

    fn keep(&mut self, result: Result<SealCache, BlockError>, cache: &mut Option<SealCache>) {
        self.running = None;
        match result {
            Ok(kept) => {
                self.sealed += 1;
                *cache = Some(kept);
            }
            // The block's own seal reports what is wrong with the block, if anything is.
            Err(e) => tracing::debug!(error = %e, "build.checkpoint.failed"),
        }
    }
}
