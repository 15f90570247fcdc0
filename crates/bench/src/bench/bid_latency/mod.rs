//! Accepted → bid: how long an acknowledged order waits for the first bid that carries it, on a
//! real node (the single-process devnet: RPC server, pools, builder, bidder, local relay and
//! proposer, started as `cobuild devnet` starts them) under a steady load.
//!
//! ```text
//!  setup:    fund the bundle senders (raw transfers from the dev accounts); wait for the block
//!  baseline: one bundle at a time on the idle node, a pause of two bid spacings after each:
//!            acknowledgement -> first bid holding it
//!  load:     R orders/s for D s over C keep-alive connections: half raw transfers from the dev
//!            accounts (eth_sendRawTransaction), half signed one-transaction bundles for the
//!            next block (eth_sendBundle) from the funded senders; every order is timed from
//!            the moment its answer reached the client to the first accepted bid holding it
//!  tail:     two more slots, so every order's block had its whole slot; then the node stops
//! ```
//! Bids are read off the relay's in-process feed
//! ([`cobuild_node::Devnet::accepted_bids`]), stamped when the relay began reading the
//! submission: the figure holds the wait for a round, the round (simulation, building,
//! sealing), signing and sending, not the relay's own checks. An order whose block was sealed
//! before it arrived, or that no bid held, is counted as missed. Client, node and relay share
//! the machine's cores.

mod load;
mod memory;
mod report;

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use alloy_primitives::B256;
use cobuild_node::DevnetError;
use cobuild_relay::{
    events::{ReceivedSlot, SubscribeConfig, subscribe},
    server::AcceptedBid,
};
use tokio::sync::{broadcast, oneshot, watch};

use self::load::{Load, Order, OrderKind};
pub use self::memory::{Footprint, FootprintSample};
use super::{
    http::HttpError,
    intake::{DEVNET_BIDS_PER_SECOND, start_devnet},
    measure::Latency,
};
use crate::workload::WorkloadError;

/// Settings of the accepted → bid benchmark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BidLatencyConfig {
    /// Orders per second of the load (half raw transactions, half bundles).
    pub rate: u32,
    /// How long the load runs.
    pub duration: Duration,
    /// The devnet's slot.
    pub slot: Duration,
    /// Concurrent keep-alive connections the load is sent over.
    pub connections: usize,
    /// Bundles of the idle baseline, sent one at a time.
    pub probes: usize,
}

impl Default for BidLatencyConfig {
    /// 1,000 orders/s for 10 s over 16 connections, 2 s slots (the devnet's), 20 idle probes.
    fn default() -> Self {
        Self {
            rate: 1_000,
            duration: Duration::from_secs(10),
            slot: Duration::from_secs(2),
            connections: 16,
            probes: 20,
        }
    }
}

/// The accepted → bid benchmark failed.
#[derive(Debug, thiserror::Error)]
pub enum BidLatencyError {
    /// A runtime or the data folder could not be made.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The node did not start or stopped with an error.
    #[error("devnet: {0}")]
    Devnet(Box<DevnetError>),
    /// A transaction could not be signed.
    #[error(transparent)]
    Workload(#[from] WorkloadError),
    /// A request could not be signed.
    #[error(transparent)]
    Intake(#[from] super::IntakeError),
    /// A request failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The slot stream could not be followed.
    #[error("slot stream: {0}")]
    Slots(String),
    /// The chain's state could not be read.
    #[error("state: {0}")]
    State(String),
    /// The setup did not land.
    #[error("setup: {0}")]
    Setup(String),
    /// A task panicked or was cancelled.
    #[error("task: {0}")]
    Task(String),
}

impl From<DevnetError> for BidLatencyError {
    fn from(error: DevnetError) -> Self {
        Self::Devnet(Box::new(error))
    }
}

/// Orders of one kind and when bids first held them.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct KindFigure {
    /// Acknowledged (answered with a hash).
    pub acked: usize,
    /// Held by at least one accepted bid.
    pub in_bid: usize,
    /// Of those, held by a bid the relay had before the answer reached the client (timed 0).
    pub before_answer: usize,
    /// Acknowledgement -> first accepted bid holding it.
    pub latency: Latency,
}

impl KindFigure {
    /// Acknowledged orders no bid held.
    pub const fn missed(&self) -> usize {
        self.acked - self.in_bid
    }
}

/// What the accepted → bid benchmark measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BidLatencyFigure {
    /// Orders per second asked for.
    pub rate: u32,
    /// The devnet's slot.
    #[serde(rename = "slot_ms", serialize_with = "crate::bench::report::ms")]
    pub slot: Duration,
    /// How long the load ran.
    #[serde(rename = "duration_ms", serialize_with = "crate::bench::report::ms")]
    pub duration: Duration,
    /// Connections the load was sent over.
    pub connections: usize,
    /// Orders sent.
    pub offered: usize,
    /// Orders per second sent, from the first to the last.
    pub offered_per_sec: f64,
    /// Orders not sent because the queue of the connection they were due on was full (the
    /// node fell behind).
    pub behind: usize,
    /// Bundles not sent because every bundle sender had sent one in the slot already.
    pub no_sender: usize,
    /// Orders answered with an error or not answered.
    pub refused: usize,
    /// Request round trip of the load.
    pub request: Latency,
    /// The load's bundles.
    pub bundles: KindFigure,
    /// The load's raw transactions.
    pub raw: KindFigure,
    /// The baseline: bundles one at a time on the idle node.
    pub idle: KindFigure,
    /// Bids the relay accepted during the load and its tail.
    pub bids: usize,
    /// Blocks the chain grew by during the load and its tail.
    pub blocks: u64,
    /// The process's memory and the data folder's size through the load, at even steps.
    pub footprint: Footprint,
}

/// Runs the benchmark: starts a devnet in a temporary folder, drives it from this thread, stops
/// it.
pub fn bid_latency(config: &BidLatencyConfig) -> Result<BidLatencyFigure, BidLatencyError> {
    let (server, dir, devnet) =
        start_devnet::<BidLatencyError>("cobuild-bench-bid", config.slot, 20_000)?;
    let node = Node {
        chain: devnet.chain.clone(),
        rpc: devnet.rpc_addr,
        relay: devnet.relay_addr,
        data_dir: dir.path().to_path_buf(),
    };
    let feed = devnet.accepted_bids();
    let (stop, stopped) = oneshot::channel::<()>();
    let running = server.spawn(devnet.run(async move {
        let _ = stopped.await;
    }));

    let clients = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let figure = clients.block_on(drive(config, &node, feed));
    drop(clients);
    let _ = stop.send(());
    let stopped = server
        .block_on(running)
        .map_err(|e| BidLatencyError::Task(e.to_string()));
    server.shutdown_timeout(Duration::from_secs(5));
    let figure = figure?;
    stopped??;
    Ok(figure)
}

/// What the client side knows of the node.
struct Node {
    chain: cobuild_chain::Chain,
    rpc: SocketAddr,
    relay: SocketAddr,
    data_dir: std::path::PathBuf,
}

/// One answered order.
struct Ack {
    hash: B256,
    kind: OrderKind,
    ok: bool,
    sent: Instant,
    answered: Instant,
}

async fn drive(
    config: &BidLatencyConfig,
    node: &Node,
    mut feed: broadcast::Receiver<Arc<AcceptedBid>>,
) -> Result<BidLatencyFigure, BidLatencyError> {
    let mut slots = subscribe(SubscribeConfig::new(format!("http://{}", node.relay)))
        .map_err(|e| BidLatencyError::Slots(e.to_string()))?;
    next_slot(&mut slots).await?;

    // Enough senders that none sends twice in one slot, with room for a slot that runs long.
    let per_slot = (f64::from(config.rate) / 2.0 * config.slot.as_secs_f64()).ceil() as usize;
    let mut load = Load::new(per_slot * 3 / 2 + 1, config.probes, &node.chain)?;
    load.fund(node, &mut slots).await?;

    let idle = probe(config, node, &mut load, &mut slots, &mut feed).await?;

    // The load: a collector keeps the first bid of every transaction while the pacer sends.
    let head_before = node.chain.head().number;
    let (collected, collector) = collect(feed);
    let (senders, connections) = connect(node.rpc, config.connections).await?;
    let total = (f64::from(config.rate) * config.duration.as_secs_f64()).round() as usize;
    let start = Instant::now();
    // Orders due so far: sent, or counted as not sent.
    let mut due_so_far = 0;
    let mut behind = 0;
    let mut no_sender = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // Twenty steps through the load (the first at once), at most one a second.
    let mut footprint = Footprint::default();
    let mut sample = tokio::time::interval((config.duration / 20).max(Duration::from_secs(1)));
    sample.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    load.new_slot(&node.chain, current_target(&slots))?;
    while due_so_far < total {
        tokio::select! {
            _ = sample.tick() => {
                footprint.samples.push(FootprintSample::take(start.elapsed(), &node.data_dir));
            }
            changed = slots.changed() => {
                changed.map_err(|e| BidLatencyError::Slots(e.to_string()))?;
                load.new_slot(&node.chain, current_target(&slots))?;
            }
            _ = tick.tick() => {
                let due = ((start.elapsed().as_secs_f64() * f64::from(config.rate)) as usize)
                    .min(total);
                while due_so_far < due {
                    let index = due_so_far;
                    due_so_far += 1;
                    // The place in the queue first: an order made and then dropped would
                    // leave its sender's nonce used and every later one of it invalid.
                    let Ok(place) = senders[index % senders.len()].try_reserve() else {
                        behind += 1;
                        continue;
                    };
                    let kind = if index % 2 == 0 { OrderKind::Raw } else { OrderKind::Bundle };
                    match load.next(kind, index as u64)? {
                        Some(order) => place.send(order),
                        None => no_sender += 1,
                    }
                }
            }
        }
    }
    let offered_in = start.elapsed();
    footprint
        .samples
        .push(FootprintSample::take(offered_in, &node.data_dir));
    drop(senders);
    let mut acks = Vec::with_capacity(total);
    for connection in connections {
        acks.extend(
            connection
                .await
                .map_err(|e| BidLatencyError::Task(e.to_string()))??,
        );
    }
    // Every order's block gets its whole slot, and its bids their way to the relay.
    next_slot(&mut slots).await?;
    next_slot(&mut slots).await?;
    let _ = collected.send(());
    let (first_bid, bids) = collector
        .await
        .map_err(|e| BidLatencyError::Task(e.to_string()))?;

    let mut request = Vec::with_capacity(acks.len());
    let mut refused = 0;
    let (mut bundle_acks, mut raw_acks) = (Vec::new(), Vec::new());
    for ack in acks {
        request.push(ack.answered - ack.sent);
        if !ack.ok {
            refused += 1;
            continue;
        }
        match ack.kind {
            OrderKind::Bundle => bundle_acks.push(ack),
            OrderKind::Raw => raw_acks.push(ack),
        }
    }
    Ok(BidLatencyFigure {
        rate: config.rate,
        slot: config.slot,
        duration: config.duration,
        connections: config.connections.max(1),
        offered: total - behind - no_sender,
        offered_per_sec: (total - behind - no_sender) as f64
            / offered_in.as_secs_f64().max(f64::MIN_POSITIVE),
        behind,
        no_sender,
        refused,
        request: Latency::from_samples(request),
        bundles: kind_figure(&bundle_acks, &first_bid),
        raw: kind_figure(&raw_acks, &first_bid),
        idle,
        bids,
        blocks: node.chain.head().number - head_before,
        footprint,
    })
}

/// The idle baseline: each probe bundle waits for its first bid (or two slots), and then twice
/// the bidder's spacing, before the next is sent. Without the pause the probes are a stream of
/// ~50 orders a second, more bids than the cap lets out, and each would wait for the bidder's
/// spacing (1 s / cap) rather than measure a lone order on a quiet node.
async fn probe(
    config: &BidLatencyConfig,
    node: &Node,
    load: &mut Load,
    slots: &mut watch::Receiver<Option<ReceivedSlot>>,
    feed: &mut broadcast::Receiver<Arc<AcceptedBid>>,
) -> Result<KindFigure, BidLatencyError> {
    let (senders, connections) = connect(node.rpc, 1).await?;
    let mut acks = Vec::with_capacity(config.probes);
    let mut first_bid = HashMap::new();
    for i in 0..config.probes {
        let order = load.probe(i, current_target(slots))?;
        let hash = order.hash;
        senders[0]
            .send(order)
            .await
            .map_err(|_| BidLatencyError::Task("probe connection closed".into()))?;
        let deadline = tokio::time::Instant::now() + 2 * config.slot;
        loop {
            tokio::select! {
                bid = feed.recv() => match bid {
                    Ok(bid) => {
                        record(&mut first_bid, &bid);
                        if first_bid.contains_key(&hash) {
                            break;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => {
                        return Err(BidLatencyError::Task("the relay's feed closed".into()));
                    }
                },
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        tokio::time::sleep(2 * Duration::from_secs(1) / DEVNET_BIDS_PER_SECOND).await;
    }
    drop(senders);
    for connection in connections {
        acks.extend(
            connection
                .await
                .map_err(|e| BidLatencyError::Task(e.to_string()))??,
        );
    }
    let acks: Vec<Ack> = acks.into_iter().filter(|ack| ack.ok).collect();
    Ok(kind_figure(&acks, &first_bid))
}

/// Orders of one kind against the first bids that held them.
fn kind_figure(acks: &[Ack], first_bid: &HashMap<B256, Instant>) -> KindFigure {
    let mut figure = KindFigure {
        acked: acks.len(),
        ..KindFigure::default()
    };
    let mut samples = Vec::with_capacity(acks.len());
    for ack in acks {
        if let Some(bid) = first_bid.get(&ack.hash) {
            figure.in_bid += 1;
            if *bid < ack.answered {
                figure.before_answer += 1;
            }
            samples.push(bid.saturating_duration_since(ack.answered));
        }
    }
    figure.latency = Latency::from_samples(samples);
    figure
}

/// Notes, for each transaction `bid` holds and no earlier bid did, when the relay got `bid`.
fn record(first_bid: &mut HashMap<B256, Instant>, bid: &AcceptedBid) {
    for tx in &bid.transactions {
        first_bid.entry(*tx).or_insert(bid.received_at);
    }
}

/// For every transaction a bid held, when the relay got the first such bid; and the bid count.
type FirstBids = (HashMap<B256, Instant>, usize);

/// Keeps, for every transaction any accepted bid held, when the relay got the first such bid,
/// until told to stop.
fn collect(
    mut feed: broadcast::Receiver<Arc<AcceptedBid>>,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<FirstBids>) {
    let (stop, mut stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let mut first_bid = HashMap::new();
        let mut bids = 0;
        loop {
            tokio::select! {
                bid = feed.recv() => match bid {
                    Ok(bid) => {
                        bids += 1;
                        record(&mut first_bid, &bid);
                    }
                    Err(broadcast::error::RecvError::Lagged(skipped)) => {
                        tracing::warn!(skipped, "bench.bid_latency.feed_lagged");
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = &mut stopped => break,
            }
        }
        (first_bid, bids)
    });
    (stop, task)
}

type Connection = tokio::task::JoinHandle<Result<Vec<Ack>, BidLatencyError>>;

/// `count` keep-alive connections, each sending what its channel gives it in order; each
/// returns its answers when its channel closes.
async fn connect(
    addr: SocketAddr,
    count: usize,
) -> Result<(Vec<tokio::sync::mpsc::Sender<Order>>, Vec<Connection>), BidLatencyError> {
    let mut senders = Vec::with_capacity(count.max(1));
    let mut tasks = Vec::with_capacity(count.max(1));
    for _ in 0..count.max(1) {
        let mut client = super::http::HttpClient::connect(addr).await?;
        // A few orders of slack per connection; past that the node is behind.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Order>(16);
        senders.push(tx);
        tasks.push(tokio::spawn(async move {
            let mut acks = Vec::new();
            while let Some(order) = rx.recv().await {
                let headers: Vec<(&str, &str)> = order
                    .header
                    .as_deref()
                    .map(|h| (cobuild_rpc::FLASHBOTS_SIGNATURE_HEADER, h))
                    .into_iter()
                    .collect();
                let sent = Instant::now();
                let reply = client.post(order.body.clone(), &headers).await;
                let answered = Instant::now();
                let ok = match &reply {
                    Ok((status, body)) => {
                        status.is_success()
                            && serde_json::from_slice::<serde_json::Value>(body)
                                .is_ok_and(|v| v.get("result").is_some_and(|r| !r.is_null()))
                    }
                    Err(_) => false,
                };
                if !ok {
                    tracing::debug!(reply = ?reply, "bench.bid_latency.refused");
                }
                acks.push(Ack {
                    hash: order.hash,
                    kind: order.kind,
                    ok,
                    sent,
                    answered,
                });
                // A broken connection cannot send the rest.
                reply?;
            }
            Ok(acks)
        }));
    }
    Ok((senders, tasks))
}

/// Waits for the next slot announcement.
async fn next_slot(
    slots: &mut watch::Receiver<Option<ReceivedSlot>>,
) -> Result<(), BidLatencyError> {
    loop {
        slots
            .changed()
            .await
            .map_err(|e| BidLatencyError::Slots(e.to_string()))?;
        if slots.borrow_and_update().is_some() {
            return Ok(());
        }
    }
}

/// The block the open slot builds (the head's successor before the first announcement).
fn current_target(slots: &watch::Receiver<Option<ReceivedSlot>>) -> Option<u64> {
    slots
        .borrow()
        .as_ref()
        .map(|slot| slot.event.parent_number() + 1)
}
