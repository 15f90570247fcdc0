//! What a member node tells its operator over the admin API: members and links, per-origin
//! replication lag, pools and the last bids.

use std::{
    collections::VecDeque,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use alloy_primitives::B256;
use cobuild_chain::Chain;
use cobuild_registry::{MemberId, Registry};
use cobuild_rpc::{
    AdminSource, ArchivedOrder, BidStatus, LedgerStatus, MAX_SLOT_ORDERS_PER_CALL, MemberStatus,
    NodeStatus, OriginStatus, SlotOrders,
};
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::{builder::Bid, ledger, orderflow::Orderflow, replication::NodeReplication};

/// Bids remembered for the status.
const LAST_BIDS: usize = 8;

/// The admin API's view of a member node.
#[derive(Debug, Clone)]
pub struct MemberAdmin {
    pub(crate) me: MemberId,
    pub(crate) chain: Chain,
    pub(crate) orderflow: Orderflow,
    pub(crate) replication: NodeReplication,
    pub(crate) registry: Arc<dyn Registry>,
    pub(crate) bids: Arc<Mutex<VecDeque<BidStatus>>>,
}

impl MemberAdmin {
    /// Remembers every new best block the builder publishes (newest first), until the builder
    /// goes away.
    pub async fn record_bids(&self, mut best: watch::Receiver<Option<Bid>>) {
        while best.changed().await.is_ok() {
            let Some(bid) = best.borrow_and_update().clone() else {
                continue;
            };
            let mut bids = self.bids.lock();
            bids.push_front(BidStatus {
                slot: bid.slot,
                block_hash: bid.block.block.block.hash,
                value: bid.block.value,
                orders: bid.block.orders.len(),
            });
            bids.truncate(LAST_BIDS);
        }
    }
}

impl AdminSource for MemberAdmin {
    fn status(&self) -> NodeStatus {
        let now = now_ms();
        let peers = self.replication.replication.mailbox.peers();
        // The members the node enforces now (its engine's set), with the registry's addresses.
        let listed = self.registry.members().unwrap_or_default();
        let members = self
            .replication
            .replication
            .mailbox
            .members()
            .into_iter()
            .map(|id| MemberStatus {
                id,
                address: listed
                    .iter()
                    .find(|m| m.id == id)
                    .map(|m| m.address.clone())
                    .unwrap_or_default(),
                me: id == self.me,
                last_heard_ms_ago: peers
                    .get(&id)
                    .filter(|p| p.last_heard_ms > 0)
                    .map(|p| now.saturating_sub(p.last_heard_ms)),
            })
            .collect();
        let archived = self.replication.log.archive_floors();
        let origins = self
            .replication
            .replication
            .mailbox
            .origins()
            .into_iter()
            .map(|(origin, p)| OriginStatus {
                origin,
                contiguous: p.contiguous,
                known_high: p.known_high,
                missing: p.missing(),
                archived: archived.get(&origin).copied().unwrap_or(0),
            })
            .collect();
        let head = self.chain.head().number;
        NodeStatus {
            member: Some(self.me),
            head,
            members,
            origins,
            pool_txs: self.orderflow.pool.len(),
            pool_bundles: self.orderflow.bundles.len(),
            refusals: self.replication.refusals(),
            bids: self.bids.lock().iter().cloned().collect(),
            ledger: self.replication.ledger.as_ref().map(|store| {
                let final_slot = store.last_slot().ok().flatten();
                let epoch = store.next_epoch().ok().flatten();
                LedgerStatus {
                    final_slot,
                    lag: head.saturating_sub(final_slot.unwrap_or(0)),
                    epoch: epoch.as_ref().map_or(0, |e| e.number),
                    epoch_members: epoch
                        .map(|e| e.members.into_keys().collect())
                        .unwrap_or_default(),
                }
            }),
        }
    }

    fn order_hashes(&self, number: u64) -> Vec<B256> {
        let mut hashes: Vec<B256> = self.orderflow.pool.best(0).map(|tx| tx.hash).collect();
        hashes.extend(
            self.orderflow
                .bundles
                .for_block(number, now_ms() / 1000)
                .iter()
                .map(|b| b.bundle.hash),
        );
        hashes.sort_unstable();
        hashes.dedup();
        hashes
    }

    fn slot_orders(&self, slot: u64, skip: u64) -> Result<Option<SlotOrders>, String> {
        let Some(store) = &self.replication.ledger else {
            return Ok(None);
        };
        let found = ledger::slot_orders(
            store,
            &self.replication.log,
            slot,
            skip,
            MAX_SLOT_ORDERS_PER_CALL,
        )
        .map_err(|e| e.to_string())?;
        Ok(found.map(|(digest, total, envelopes)| SlotOrders {
            slot,
            digest,
            total,
            orders: envelopes
                .into_iter()
                .map(|e| ArchivedOrder {
                    origin: e.body.origin,
                    seq: e.body.seq,
                    received_at_ms: e.body.received_at_ms,
                    kind: e.body.kind,
                    payload: e.body.payload,
                    auth: e.body.auth,
                    call: e.body.call,
                })
                .collect(),
        }))
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as u64
}
