//! Polled filters: installed by `eth_newFilter`, `eth_newBlockFilter` and
//! `eth_newPendingTransactionFilter`, read by `eth_getFilterChanges` (what is new since the
//! last poll) and `eth_getFilterLogs`, removed by `eth_uninstallFilter` or after sitting idle.
//!
//! A filter keeps only a cursor: the next block it has not reported, or, for pending
//! transactions, a receiver of the pool's public announcements (bounded: a filter polled too
//! rarely misses the oldest hashes rather than holding them without bound).

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use alloy_primitives::{B256, U128};
use alloy_rpc_types_eth::Filter;
use parking_lot::Mutex;
use tokio::sync::broadcast::{self, error::TryRecvError};

use crate::RpcError;

/// How many filters a node keeps and how long an unpolled one lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilterLimits {
    /// Most filters installed at once, all clients together.
    pub max_filters: usize,
    /// A filter not polled for this long is removed (geth's deadline: 5 minutes).
    pub idle: Duration,
}

impl FilterLimits {
    /// 10,000 filters, 5 minutes idle.
    pub const DEFAULT: Self = Self {
        max_filters: 10_000,
        idle: Duration::from_secs(300),
    };
}

impl Default for FilterLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What one filter watches, and where its last poll left it.
#[derive(Debug)]
pub(super) enum Watch {
    /// Logs matching the filter, from block `next` on.
    Logs { filter: Box<Filter>, next: u64 },
    /// New blocks, from `next` on.
    Blocks { next: u64 },
    /// Public transactions entering the pool.
    Pending(broadcast::Receiver<B256>),
}

#[derive(Debug)]
struct Installed {
    watch: Watch,
    polled: Instant,
}

/// What a poll of one filter has to report.
#[derive(Debug)]
pub(super) enum Due {
    /// The logs of blocks `from..=to` matching the filter (`from > to`: none).
    Logs {
        filter: Box<Filter>,
        from: u64,
        to: u64,
    },
    /// The hashes of blocks `from..=to`.
    Blocks { from: u64, to: u64 },
    /// Hashes of public transactions.
    Pending(Vec<B256>),
}

/// The node's installed filters. Cheap to clone; clones share them.
#[derive(Debug, Clone)]
pub(super) struct Filters {
    installed: Arc<Mutex<HashMap<U128, Installed>>>,
    limits: FilterLimits,
}

impl Filters {
    pub(super) fn new(limits: FilterLimits) -> Self {
        Self {
            installed: Arc::default(),
            limits,
        }
    }

    /// Installs `watch`; its id is random, so one client cannot guess another's.
    pub(super) fn install(&self, watch: Watch) -> Result<U128, RpcError> {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(RpcError::internal)?;
        let id = U128::from_be_bytes(id);
        let mut installed = self.installed.lock();
        let idle = self.limits.idle;
        installed.retain(|_, filter| filter.polled.elapsed() < idle);
        if installed.len() >= self.limits.max_filters {
            return Err(RpcError::LimitExceeded(format!(
                "too many filters: this node keeps at most {}; uninstall those no longer polled",
                self.limits.max_filters
            )));
        }
        installed.insert(
            id,
            Installed {
                watch,
                polled: Instant::now(),
            },
        );
        Ok(id)
    }

    /// Removes a filter; whether it was there.
    pub(super) fn uninstall(&self, id: U128) -> bool {
        self.installed.lock().remove(&id).is_some()
    }

    /// What filter `id` has to report since its last poll, with the head at `head`, and moves
    /// its cursor past it.
    pub(super) fn poll(&self, id: U128, head: u64) -> Result<Due, RpcError> {
        let mut installed = self.installed.lock();
        let filter = polled(&mut installed, id, self.limits.idle)?;
        Ok(match &mut filter.watch {
            Watch::Logs { filter, next } => {
                let from = std::mem::replace(next, head + 1);
                Due::Logs {
                    filter: filter.clone(),
                    from,
                    to: head,
                }
            }
            Watch::Blocks { next } => Due::Blocks {
                from: std::mem::replace(next, head + 1),
                to: head,
            },
            Watch::Pending(receiver) => {
                let mut hashes = Vec::new();
                loop {
                    match receiver.try_recv() {
                        Ok(hash) => hashes.push(hash),
                        // Missed while unpolled: the newest are still to come.
                        Err(TryRecvError::Lagged(_)) => {}
                        Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                    }
                }
                Due::Pending(hashes)
            }
        })
    }

    /// The filter of log filter `id`, which its last poll does not move.
    pub(super) fn log_filter(&self, id: U128) -> Result<Box<Filter>, RpcError> {
        let mut installed = self.installed.lock();
        let filter = polled(&mut installed, id, self.limits.idle)?;
        match &filter.watch {
            Watch::Logs { filter, .. } => Ok(filter.clone()),
            Watch::Blocks { .. } | Watch::Pending(_) => Err(RpcError::FilterNotFound),
        }
    }
}

/// Filter `id`, unless it sat unpolled past `idle`, marked as polled now.
fn polled(
    installed: &mut HashMap<U128, Installed>,
    id: U128,
    idle: Duration,
) -> Result<&mut Installed, RpcError> {
    let filter = installed
        .get_mut(&id)
        .filter(|f| f.polled.elapsed() < idle)
        .ok_or(RpcError::FilterNotFound)?;
    filter.polled = Instant::now();
    Ok(filter)
}
