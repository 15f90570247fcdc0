//! `eth_subscribe` / `eth_unsubscribe` over WebSocket, on the RPC port: `newHeads`, `logs`
//! (with a filter) and `newPendingTransactions` (public transactions only: a private one or a
//! bundle's is never announced before it lands).
//!
//! Each subscription is a task that follows its source and writes notifications without
//! waiting: when the connection's buffer is full the subscriber is reading slower than the
//! chain moves, and the subscription ends rather than queueing without bound.

use alloy_consensus::Sealed;
use alloy_primitives::B256;
use alloy_rpc_types_eth::{
    Filter, Header,
    pubsub::{Params, SubscriptionKind},
};
use cobuild_chain::Chain;
use jsonrpsee::{
    PendingSubscriptionSink, SubscriptionMessage, SubscriptionSink, core::SubscriptionResult,
    proc_macros::rpc, server::TrySendError, types::ErrorObjectOwned,
};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

use super::{Eth, logs};
use crate::{RpcError, error::INVALID_PARAMS};

/// The `eth_subscribe` method (WebSocket only).
#[rpc(server, namespace = "eth")]
pub trait EthPubSubApi {
    /// Subscribes to new heads, logs matching a filter, or public pending transactions.
    #[subscription(
        name = "subscribe" => "subscription",
        unsubscribe = "unsubscribe",
        item = serde_json::Value
    )]
    async fn subscribe(&self, kind: SubscriptionKind, params: Option<Params>)
    -> SubscriptionResult;
}

#[jsonrpsee::core::async_trait]
impl EthPubSubApiServer for Eth {
    async fn subscribe(
        &self,
        pending: PendingSubscriptionSink,
        kind: SubscriptionKind,
        params: Option<Params>,
    ) -> SubscriptionResult {
        let filter = match (kind, params.unwrap_or_default()) {
            (SubscriptionKind::Logs, Params::Logs(filter)) => Some(filter),
            (SubscriptionKind::Logs, Params::None) => Some(Box::default()),
            (
                SubscriptionKind::NewHeads | SubscriptionKind::NewPendingTransactions,
                Params::None,
            ) => None,
            (SubscriptionKind::NewPendingTransactions, Params::Bool(false)) => None,
            (SubscriptionKind::Syncing, _) => {
                return refuse(pending, "syncing: this node never syncs").await;
            }
            (kind, params) => {
                let why = format!("{kind:?} does not take {params:?}");
                return refuse(pending, &why).await;
            }
        };
        let sink = pending.accept().await?;
        let eth = self.clone();
        match kind {
            SubscriptionKind::NewPendingTransactions => {
                tokio::spawn(pending_transactions(eth, sink));
            }
            _ => {
                tokio::spawn(heads(eth, sink, filter));
            }
        }
        Ok(())
    }
}

async fn refuse(pending: PendingSubscriptionSink, why: &str) -> SubscriptionResult {
    pending
        .reject(ErrorObjectOwned::owned(INVALID_PARAMS, why, None::<()>))
        .await;
    Ok(())
}

/// Sends `item` without waiting; `false` when the subscription is over (closed, or dropped
/// for reading too slowly).
fn send(sink: &mut SubscriptionSink, item: &impl Serialize) -> bool {
    let message = match serde_json::value::to_raw_value(item) {
        Ok(raw) => SubscriptionMessage::from(raw),
        Err(error) => {
            tracing::warn!(%error, "rpc.subscription.encode");
            return false;
        }
    };
    match sink.try_send(message) {
        Ok(()) => true,
        Err(TrySendError::Closed(_)) => false,
        Err(TrySendError::Full(_)) => {
            tracing::debug!(id = ?sink.subscription_id(), "rpc.subscription.slow_dropped");
            false
        }
    }
}

/// Follows the chain's head: every new block's header, or with `filter` its matching logs.
async fn heads(eth: Eth, mut sink: SubscriptionSink, filter: Option<Box<Filter>>) {
    let chain = eth.chain.clone();
    let mut watch = chain.watch_head();
    let mut next = watch.borrow_and_update().number + 1;
    loop {
        tokio::select! {
            () = sink.closed() => return,
            changed = watch.changed() => if changed.is_err() { return },
        }
        let head = watch.borrow_and_update().number;
        let (from, filter_for_read) = (next, filter.clone());
        let limits = eth.log_limits;
        let chain_for_read = chain.clone();
        let read = tokio::task::spawn_blocking(move || {
            news(
                &chain_for_read,
                from,
                head,
                filter_for_read.as_deref(),
                limits,
            )
        })
        .await;
        next = head + 1;
        let items = match read.map_err(RpcError::internal).and_then(|read| read) {
            Ok(items) => items,
            Err(error) => {
                tracing::warn!(%error, "rpc.subscription.read");
                return;
            }
        };
        for item in &items {
            if !send(&mut sink, item) {
                return;
            }
        }
    }
}

/// One notification of a heads or logs subscription.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum News {
    Head(Box<Header>),
    Log(Box<alloy_rpc_types_eth::Log>),
}

/// What blocks `from..=to` bring: their headers, or with `filter` their matching logs.
fn news(
    chain: &Chain,
    from: u64,
    to: u64,
    filter: Option<&Filter>,
    limits: logs::LogLimits,
) -> Result<Vec<News>, RpcError> {
    let view = chain.read().map_err(RpcError::internal)?;
    let Some(filter) = filter else {
        let mut heads = Vec::new();
        for number in from..=to {
            let header = view.header(number).map_err(RpcError::internal)?;
            let hash = view.canonical_hash(number).map_err(RpcError::internal)?;
            if let (Some(header), Some(hash)) = (header, hash) {
                let sealed = Sealed::new_unchecked(header, hash);
                heads.push(News::Head(Box::new(Header::from_consensus(
                    sealed, None, None,
                ))));
            }
        }
        return Ok(heads);
    };
    let (lo, hi) = logs::watched(&view, filter)?;
    let range = (from.max(lo), to.min(hi));
    if range.0 > range.1 {
        return Ok(Vec::new());
    }
    let found = logs::logs(&view, filter, range, limits)?;
    Ok(found
        .into_iter()
        .map(|log| News::Log(Box::new(log)))
        .collect())
}

/// Follows the pool's announcements of public transactions.
async fn pending_transactions(eth: Eth, mut sink: SubscriptionSink) {
    let mut hashes = eth.pool.public_hashes();
    loop {
        let hash: B256 = tokio::select! {
            () = sink.closed() => return,
            received = hashes.recv() => match received {
                Ok(hash) => hash,
                // The subscriber's task fell behind the pool: the missed hashes are gone.
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "rpc.subscription.pending_lagged");
                    continue;
                }
                Err(RecvError::Closed) => return,
            },
        };
        if !send(&mut sink, &hash) {
            return;
        }
    }
}
