//! A member node's side of the slot ledger: what its chain replica and envelope log say about
//! each slot (the [`Local`] view consensus checks proposals against), and the start of the
//! ledger on the transport's runtime, beside replication.
//!
//! The ledger never sits on the bid path: it reads the replica and the log, and nothing in
//! building or bidding waits for it.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    sync::Arc,
};

use alloy_consensus::Transaction as _;
use alloy_primitives::{B256, U256};
use cobuild_chain::Chain;
use cobuild_consensus::{
    BlockRef, Channels, Config, Local, MemberId, Prefix, SlotFacts, Store, StoreError, Winner,
};
use cobuild_net::{Extension, Log, StartExtension};
use commonware_cryptography::ed25519;

/// The prefix of a member's blocks' extra data; the member id follows.
const EXTRA_DATA_PREFIX: &str = "cobuild node ";

/// What this member's replica and log say, as the ledger reads them.
#[derive(Debug, Clone)]
pub struct ChainView {
    chain: Chain,
    log: Arc<Log>,
    members: BTreeSet<MemberId>,
}

impl ChainView {
    /// The view of `chain` and `log` among `members`.
    pub fn new(chain: Chain, log: Arc<Log>, members: BTreeSet<MemberId>) -> Self {
        Self {
            chain,
            log,
            members,
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
        Some(facts(&block, balances, &self.members))
    }

    fn prefixes(&self) -> Vec<Prefix> {
        log_prefixes(&self.log)
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

/// The figures of a stored block: the member named by its extra data (if it is a member), the
/// proposer payment (the value of a last transaction the fee recipient sends to someone else),
/// and the block's value to its builder: what the fee recipient gained in the block plus what it
/// paid the proposer. A block stored before balances were kept counts no gain.
pub fn facts(
    block: &cobuild_chain::StoredBlock,
    balances: Option<(U256, U256)>,
    members: &BTreeSet<MemberId>,
) -> SlotFacts {
    let header = &block.block.header;
    let winner = std::str::from_utf8(&header.extra_data)
        .ok()
        .and_then(|text| text.strip_prefix(EXTRA_DATA_PREFIX))
        .and_then(|id| id.parse::<MemberId>().ok())
        .filter(|id| members.contains(id));
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
}

/// Opens the ledger's store in `data_dir` (`ledger.redb`).
pub fn open_store(data_dir: &Path) -> Result<Arc<Store>, StoreError> {
    Store::open(&data_dir.join("ledger.redb")).map(Arc::new)
}

/// The transport extension that starts the ledger of member `me` among `members`.
pub(crate) fn extension(
    setup: LedgerSetup,
    log: Arc<Log>,
    me: MemberId,
    key: ed25519::PrivateKey,
    members: BTreeMap<MemberId, ed25519::PublicKey>,
) -> StartExtension {
    let view = ChainView::new(setup.chain, log, members.keys().copied().collect());
    let config = Config::new(me, key, members, setup.chain_genesis);
    start_extension(config, view, setup.store, |_| {})
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
