//! A member node's side of the slot ledger: what its chain replica and envelope log say about
//! each slot (the [`Local`] view consensus checks proposals against), and the start of the
//! ledger on the transport's runtime, beside replication.
//!
//! The ledger never sits on the bid path: it reads the replica and the log, and nothing in
//! building or bidding waits for it.

use std::{collections::BTreeMap, path::Path, sync::Arc};

use alloy_consensus::Transaction as _;
use alloy_primitives::{B256, U256};
use cobuild_chain::Chain;
use cobuild_consensus::{
    BlockRef, Channels, Config, Local, MemberId, Membership, Prefix, SlotFacts, Store, StoreError,
    Winner, to_b256,
};
use cobuild_net::{Extension, Log, LogError, StartExtension};
use commonware_cryptography::ed25519;
use tokio::sync::{oneshot, watch};

/// The prefix of a member's blocks' extra data; the member id follows.
const EXTRA_DATA_PREFIX: &str = "cobuild node ";

/// What this member's replica and log say, as the ledger reads them.
#[derive(Debug, Clone)]
pub struct ChainView {
    chain: Chain,
    log: Arc<Log>,
    registry: watch::Receiver<BTreeMap<MemberId, ed25519::PublicKey>>,
    refunds: Arc<cobuild_refunds::Book>,
}

impl ChainView {
    /// The view of `chain` and `log`, with the registry's members as the node last read them
    /// and the refunds it computed in `refunds`.
    pub fn new(
        chain: Chain,
        log: Arc<Log>,
        registry: watch::Receiver<BTreeMap<MemberId, ed25519::PublicKey>>,
        refunds: Arc<cobuild_refunds::Book>,
    ) -> Self {
        Self {
            chain,
            log,
            registry,
            refunds,
        }
    }
}

impl Local for ChainView {
    fn head(&self) -> u64 {
        self.chain.head().number
    }

    fn facts(&self, slot: u64) -> Option<SlotFacts> {
        let view = self.chain.read().ok()?;
        let block = view.block(slot).ok()??;
        let balances = view.beneficiary_balances(slot).ok()?;
        Some(facts(&block, balances))
    }

    fn prefixes(&self) -> Vec<Prefix> {
        log_prefixes(&self.log)
    }

    fn members(&self) -> Option<BTreeMap<MemberId, ed25519::PublicKey>> {
        Some(self.registry.borrow().clone())
    }

    fn refunds(&self, slot: u64) -> Option<Option<B256>> {
        // The book takes slots in order; one it has not reached is not known yet.
        if self.refunds.processed().ok()? < slot {
            return None;
        }
        Some(self.refunds.slot(slot).ok()?.map(|r| r.digest()))
    }
}

/// Per origin, the contiguous prefix `log` holds (none when the log cannot be read: a cut is
/// then simply not signed for anything).
pub fn log_prefixes(log: &Log) -> Vec<Prefix> {
    match log.summary() {
        Ok(summary) => summary
            .into_iter()
            .map(|s| Prefix {
                origin: s.origin,
                seq: s.contiguous,
            })
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "ledger.log.unreadable");
            Vec::new()
        }
    }
}

/// The figures of a stored block: the member named by its extra data (the ledger counts it
/// only if it is a member of the record's epoch), the
/// proposer payment (the value of a last transaction the fee recipient sends to someone else),
/// and the block's value to its builder: what the fee recipient gained in the block plus what it
/// paid the proposer. A block stored before balances were kept counts no gain.
pub fn facts(block: &cobuild_chain::StoredBlock, balances: Option<(U256, U256)>) -> SlotFacts {
    let header = &block.block.header;
    let winner = std::str::from_utf8(&header.extra_data)
        .ok()
        .and_then(|text| text.strip_prefix(EXTRA_DATA_PREFIX))
        .and_then(|id| id.parse::<MemberId>().ok());
    let payment = match (block.block.body.transactions.last(), block.senders.last()) {
        (Some(tx), Some(sender))
            if *sender == header.beneficiary && tx.to() != Some(header.beneficiary) =>
        {
            tx.value()
        }
        _ => U256::ZERO,
    };
    let (before, after) = balances.unwrap_or_default();
    SlotFacts {
        block: BlockRef {
            number: header.number,
            hash: block.hash,
            parent: header.parent_hash,
        },
        winner: Winner(winner),
        payment,
        value: after.saturating_add(payment).saturating_sub(before),
    }
}

/// What a member needs to run its ledger.
#[derive(Debug, Clone)]
pub struct LedgerSetup {
    /// The final records (shared with the RPC that serves them).
    pub store: Arc<Store>,
    /// The replica the records are checked against.
    pub chain: Chain,
    /// The replica's genesis hash.
    pub chain_genesis: B256,
    /// How many slots an order stays in the live order log after a final record covers it
    /// (then it moves to the archive); see [`retain`].
    pub retention_slots: u64,
    /// The refunds computed from the final records (shared with the RPC that serves them).
    pub refunds: Arc<cobuild_refunds::Book>,
    /// The ledger's founders when they are not the registry's members now (a member that
    /// joins after the ledger's first epoch change); only used while the store is new.
    pub founders: Option<Membership>,
}

/// Opens the refund book in `data_dir` (`refunds.redb`).
pub fn open_book(
    data_dir: &Path,
) -> Result<Arc<cobuild_refunds::Book>, cobuild_refunds::BookError> {
    cobuild_refunds::Book::open(&data_dir.join("refunds.redb")).map(Arc::new)
}

/// Opens the ledger's store in `data_dir` (`ledger.redb`).
pub fn open_store(data_dir: &Path) -> Result<Arc<Store>, StoreError> {
    Store::open(&data_dir.join("ledger.redb")).map(Arc::new)
}

/// The transport extension that starts the ledger of member `me`, following the registry's
/// members on `registry` (they found the ledger if it is new); its final-slot watch is sent on
/// `started` once it runs.
pub(crate) fn extension(
    setup: LedgerSetup,
    log: Arc<Log>,
    me: MemberId,
    key: ed25519::PrivateKey,
    registry: watch::Receiver<BTreeMap<MemberId, ed25519::PublicKey>>,
    started: oneshot::Sender<watch::Receiver<u64>>,
) -> StartExtension {
    // A store that was founded keeps its founders whatever is passed here.
    let members = match setup.founders.as_ref().map(Membership::keys) {
        Some(Ok(founders)) => founders,
        Some(Err(e)) => {
            tracing::error!(error = %e, "ledger.founders.unusable");
            registry.borrow().clone()
        }
        None => registry.borrow().clone(),
    };
    let view = ChainView::new(setup.chain, log, registry, setup.refunds);
    let config = Config::new(me, key, members, setup.chain_genesis);
    start_extension(config, view, setup.store, move |ledger| {
        // Nobody waiting only means the node is stopping.
        let _ = started.send(ledger.final_slot.clone());
    })
}

/// The transport extension that starts a ledger with `config` over `local` and `store`;
/// `started` sees it once it runs (to take its final-slot watch).
pub fn start_extension<L: Local>(
    config: Config,
    local: L,
    store: Arc<Store>,
    started: impl FnOnce(&cobuild_consensus::Ledger) + Send + 'static,
) -> StartExtension {
    Box::new(move |extension: Extension| {
        let [votes, certificates, resolver, ledger] = extension.channels;
        match cobuild_consensus::start(
            extension.context,
            config,
            local,
            store,
            extension.blocker,
            Channels {
                votes,
                certificates,
                resolver,
                ledger,
            },
        ) {
            Ok(running) => {
                started(&running);
                Box::new(running) as Box<dyn std::any::Any + Send>
            }
            Err(e) => {
                tracing::error!(error = %e, "ledger.start_failed");
                Box::new(())
            }
        }
    })
}

/// Envelopes moved to the archive per step, so a step holds the log's writer only briefly.
const ARCHIVE_STEP: usize = 4096;

/// Keeps the live order log to the orders the ledger has not settled: whenever the last final
/// slot reaches `s`, the envelopes covered by the agreed cut of the record at slot
/// `s - window` move to the archive. The window keeps orders that can still land (a private
/// transaction's block range, a bundle's) in the log a restart refills the pools from;
/// the archive keeps every order a record covered, for whoever asks later.
pub async fn retain(
    log: Arc<Log>,
    store: Arc<Store>,
    mut final_slot: watch::Receiver<u64>,
    window: u64,
) {
    let mut settled = 0;
    loop {
        let last = *final_slot.borrow_and_update();
        if let Some(slot) = last.checked_sub(window).filter(|&s| s > settled) {
            let (log, store) = (log.clone(), store.clone());
            let step = tokio::task::spawn_blocking(move || archive_to(&log, &store, slot)).await;
            match step {
                Ok(Ok(Some(moved))) => {
                    settled = slot;
                    tracing::debug!(slot, moved, "ledger.log.archived");
                }
                // No record at that slot (yet): the next final slot tries again.
                Ok(Ok(None)) => {}
                Ok(Err(e)) => tracing::warn!(slot, error = %e, "ledger.log.archive_failed"),
                Err(e) => tracing::error!(slot, error = %e, "ledger.log.archive_panicked"),
            }
        }
        if final_slot.changed().await.is_err() {
            return;
        }
    }
}

/// Archives what the record at `slot` covers; how many envelopes moved, or `None` without a
/// record there.
fn archive_to(log: &Log, store: &Store, slot: u64) -> Result<Option<usize>, ArchiveError> {
    let Some(entry) = store.get(slot)? else {
        return Ok(None);
    };
    let floors: Vec<(MemberId, u64)> = entry
        .record
        .agreed
        .iter()
        .map(|p| (p.origin, p.seq))
        .collect();
    let mut moved = 0;
    loop {
        let step = log.archive(&floors, ARCHIVE_STEP)?;
        moved += step.moved;
        if step.done {
            return Ok(Some(moved));
        }
    }
}

/// The ledger's store or the order log could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The ledger's store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The order log or its archive.
    #[error(transparent)]
    Log(#[from] LogError),
}

/// The orders the final record of `slot` added: per origin, the envelopes after the previous
/// record's agreed cut up to its own, from the `skip`-th on, at most `max`. With the record's
/// digest and how many it added in all; `None` without a record for the slot.
pub fn slot_orders(
    store: &Store,
    log: &Log,
    slot: u64,
    skip: u64,
    max: usize,
) -> Result<Option<(B256, u64, Vec<cobuild_net::Envelope>)>, ArchiveError> {
    let Some(entry) = store.get(slot)? else {
        return Ok(None);
    };
    let previous: BTreeMap<MemberId, u64> = match store.slot_of(&entry.record.prev)? {
        Some(prev) => store
            .get(prev)?
            .map(|e| e.record.agreed.iter().map(|p| (p.origin, p.seq)).collect())
            .unwrap_or_default(),
        // The first record links to the genesis digest: everything up to its cut is new.
        None => BTreeMap::new(),
    };
    let ranges: Vec<(MemberId, u64, u64)> = entry
        .record
        .agreed
        .iter()
        .map(|p| {
            (
                p.origin,
                previous.get(&p.origin).copied().unwrap_or(0) + 1,
                p.seq,
            )
        })
        .filter(|(_, from, to)| from <= to)
        .collect();
    let total = ranges
        .iter()
        .fold(0u64, |sum, (_, from, to)| sum.saturating_add(to - from + 1));
    let mut skip = skip;
    let mut out = Vec::new();
    for (origin, from, to) in ranges {
        let len = (to - from).saturating_add(1);
        if skip >= len {
            skip -= len;
            continue;
        }
        let from = from + skip;
        skip = 0;
        let want = usize::try_from(to - from + 1)
            .unwrap_or(usize::MAX)
            .min(max - out.len());
        out.extend(
            log.range(origin, from, want)?
                .into_iter()
                .take_while(|e| e.body.seq <= to),
        );
        if out.len() == max {
            break;
        }
    }
    Ok(Some((to_b256(&entry.record.digest()), total, out)))
}
