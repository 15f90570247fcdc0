//! The builder's slot loop: while a slot is open, simulate what arrived, build, and publish
//! each block that beats the slot's best so far.
//!
//! Two kinds of work, so a new order reaches a bid at the pace of the fast one:
//! ```text
//!  pools change ──▶ round: simulate what is new, greedy block ──▶ offer (at once)
//!                     └─ no search running and the orders changed since the last one?
//!                        ──▶ conflict search on this round's orders (beside later rounds)
//!                                                            ──▶ offer when it ends
//! ```
//! A round starts as soon as the pools change (their change listener wakes the loop), at most
//! once per `round_interval`; the slower conflict search runs one at a time, always on the
//! newest orders when it starts, so it never holds a round back, and rests as long as it ran
//! before the next one starts, so it takes at most half a core from the rounds.
//!
//! A round's greedy blocks grow through the slot (see [`super::blocks`]): two of them, by
//! profit per gas and by profit, extended side by side; each adds only the orders that are new
//! since the last round and seals a copy, so a round costs what arrived, not the whole pool.
//! Rounds run on a thread of the slot's own, which keeps those blocks; searches on tokio's
//! blocking pool (simulation and building are CPU-bound); the loop itself only waits. The best block is
//! published on a `watch` channel, so a slow bidder always sees the latest best and never holds
//! up building.
//!
//! Cancellation: when an order in the published best is cancelled (or replaced), the next
//! round's block replaces it whatever its value, marked as a withdrawal, so the bidder can
//! replace the bid at the relay; a block built before a cancel is checked again before it is
//! published, so no block with a cancelled order is published after the cancel was answered.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Instant,
};

use alloy_consensus::{Header, Sealed};
use alloy_primitives::{Address, U256};
use cobuild_builder::{BuildContext, BuildError, BuiltBlock, ConflictSearch, Payout};
use cobuild_chain::{BlockAttributes, ChainError, StateSnapshot};
use cobuild_pool::{BundlePool, OrderLimit, TxPool};
use cobuild_primitives::ChainSpec;
use cobuild_sim::{SimError, SimulatedOrder, Simulator};
use parking_lot::Mutex;
use tokio::sync::{Notify, mpsc, oneshot, watch};

use super::{
    BuilderConfig,
    blocks::{RoundBlock, SlotBlocks},
    figures::{RoundTimes, SlotFigures},
    read_ahead::{ReadAhead, SlotReads},
};

/// The builder cannot go on with this slot.
#[derive(Debug, thiserror::Error)]
pub enum BuilderError {
    /// The head state could not be read.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// Simulation failed to read state.
    #[error(transparent)]
    Sim(#[from] SimError),
    /// A block attempt failed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// A round's task died.
    #[error("build round task: {0}")]
    Join(String),
    /// The simulation thread pool could not start.
    #[error("simulation threads: {0}")]
    Threads(String),
}

/// One slot to build for: the parent and the attributes of the block on it.
#[derive(Debug, Clone)]
pub struct SlotJob {
    /// The slot number.
    pub slot: u64,
    /// The parent block.
    pub parent: Arc<Sealed<Header>>,
    /// Its post-state.
    pub state: StateSnapshot,
    /// Attributes of the next block (the builder sets the fee recipient to its coinbase).
    pub attrs: BlockAttributes,
    /// Who the proposer wants paid.
    pub proposer_fee_recipient: Address,
}

/// The best block of a slot so far, as the bidder sees it.
#[derive(Debug, Clone)]
pub struct Bid {
    /// The slot.
    pub slot: u64,
    /// The block and its value.
    pub block: Arc<BuiltBlock>,
    /// When the round that built it started: orders that arrived before are in it (if valid).
    pub round_started: Instant,
    /// It replaces a published best that held an order cancelled since: the bidder must send
    /// it even though it is worth less.
    pub withdraws: bool,
}

/// A node's block builder. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Builder {
    spec: Arc<ChainSpec>,
    pool: TxPool,
    bundles: BundlePool,
    config: BuilderConfig,
    sim: Arc<Mutex<Simulator>>,
    best: Arc<watch::Sender<Option<Bid>>>,
    changed: Arc<Notify>,
    read_ahead: Option<Arc<dyn ReadAhead>>,
}

impl std::fmt::Debug for dyn ReadAhead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadAhead")
    }
}

impl Builder {
    /// A builder for a chain under `spec`, over the node's pools; `limit` is the pools' shared
    /// bound, whose change listener it takes over to start rounds as orders arrive.
    pub fn new(
        spec: Arc<ChainSpec>,
        pool: TxPool,
        bundles: BundlePool,
        limit: &OrderLimit,
        config: BuilderConfig,
    ) -> Result<Self, BuilderError> {
        let changed = Arc::new(Notify::new());
        let notify = changed.clone();
        limit.on_change(Arc::new(move || notify.notify_one()));
        let sim =
            Simulator::new(config.sim_threads).map_err(|e| BuilderError::Threads(e.to_string()))?;
        Ok(Self {
            spec,
            pool,
            bundles,
            config,
            sim: Arc::new(Mutex::new(sim)),
            best: Arc::new(watch::channel(None).0),
            changed,
            read_ahead: None,
        })
    }

    /// This builder, reading ahead with `reader` what each round's new orders touch before
    /// simulating them (for a state read over the network).
    #[must_use]
    pub fn with_read_ahead(mut self, reader: Arc<dyn ReadAhead>) -> Self {
        self.read_ahead = Some(reader);
        self
    }

    /// The coinbase of the blocks this builder builds.
    pub fn coinbase(&self) -> Address {
        self.config.coinbase.address()
    }

    /// Follows the best block of the current slot.
    pub fn subscribe(&self) -> watch::Receiver<Option<Bid>> {
        self.best.subscribe()
    }

    /// Builds rounds for `job` until `deadline`, publishing every improvement; returns the
    /// slot's best block (none when no block paid anything) and where the rounds' time went.
    pub async fn run_slot(&self, job: SlotJob, deadline: Instant) -> Result<SlotRun, BuilderError> {
        let ctx = Arc::new(self.context(&job));
        let rounds = RoundThread::start(self.clone(), ctx.clone())?;
        let mut best: Option<Bid> = None;
        let mut figures = SlotFigures::default();
        let mut last: Option<Latest> = None;
        let mut search = Search::default();
        while Instant::now() < deadline {
            let started = Instant::now();
            let previous = last.as_ref().map(|latest| latest.set.clone());
            match rounds.run(previous).await {
                Ok(Round {
                    set,
                    orders,
                    built,
                    times,
                }) => {
                    figures.add(&times, built.is_some());
                    last = Some(Latest {
                        set,
                        orders,
                        started,
                    });
                    if let Some(block) = built {
                        self.offer(&job, &mut best, block, started);
                    }
                }
                // A failed round costs this round only: the slot goes on, and the proposer
                // falls back to its own block if no bid comes.
                Err(e) => tracing::error!(slot = job.slot, error = %e, "builder.round_failed"),
            }
            search.start(&ctx, last.as_ref());
            // Wait for the pools to change, but start no sooner than one interval after this
            // round started, and never past the deadline; a search that ends meanwhile is
            // offered, and the next one starts on the newest orders.
            let earliest = (started + self.config.round_interval).min(deadline);
            loop {
                let rest = search.rest_until(last.as_ref());
                tokio::select! {
                    () = self.changed.notified() => break,
                    () = tokio::time::sleep_until(deadline.into()) => break,
                    (block, round_started) = search.finished() => {
                        match block {
                            Ok(block) => self.offer(&job, &mut best, block, round_started),
                            Err(e) => tracing::error!(
                                slot = job.slot,
                                error = %e,
                                "builder.search_failed"
                            ),
                        }
                        search.start(&ctx, last.as_ref());
                    }
                    () = until(rest) => search.start(&ctx, last.as_ref()),
                }
            }
            tokio::time::sleep_until(earliest.into()).await;
        }
        Ok(SlotRun { best, figures })
    }

    /// What every block of `job` is built on, paying this builder's coinbase.
    fn context(&self, job: &SlotJob) -> BuildContext {
        let mut attrs = job.attrs.clone();
        attrs.fee_recipient = self.coinbase();
        BuildContext {
            spec: self.spec.clone(),
            parent: job.parent.clone(),
            state: job.state.clone(),
            attrs,
            payout: Payout {
                coinbase: self.config.coinbase.clone(),
                proposer_fee_recipient: job.proposer_fee_recipient,
                bid_percent: self.config.bid_percent,
            },
        }
    }

    /// Publishes `block` if it beats the slot's best, or if the best holds an order that is no
    /// longer in the pools (cancelled or replaced) — unless `block` itself holds one.
    fn offer(&self, job: &SlotJob, best: &mut Option<Bid>, block: BuiltBlock, started: Instant) {
        if !self.all_live(&block) {
            tracing::debug!(slot = job.slot, "builder.discarded_cancelled");
            return;
        }
        let stale = best.as_ref().is_some_and(|b| !self.all_live(&b.block));
        let improves = block.value > best.as_ref().map_or(U256::ZERO, |b| b.block.value);
        if !(improves || stale) {
            return;
        }
        // Debug: rounds improve the best many times a slot, and the bids sent are summed up on
        // the slot's `bidder.slot` line; at info these were most of a member's log.
        tracing::debug!(
            slot = job.slot,
            number = block.block.header().number,
            value = %block.value,
            orders = block.orders.len(),
            algorithm = block.algorithm,
            withdraws = stale,
            elapsed_us = started.elapsed().as_micros() as u64,
            "builder.best"
        );
        let bid = Bid {
            slot: job.slot,
            block: Arc::new(block),
            round_started: started,
            withdraws: stale,
        };
        self.best.send_replace(Some(bid.clone()));
        *best = Some(bid);
    }

    /// Whether every order in `block` is still in the pools (not cancelled or replaced).
    fn all_live(&self, block: &BuiltBlock) -> bool {
        block
            .orders
            .iter()
            .all(|id| self.bundles.contains(id) || self.pool.get(id).is_some())
    }

    /// One round: simulate what is new and, if the set of runnable orders changed since
    /// `previous` (or on the slot's first round), add what is new to the growing greedy blocks
    /// (or build them again, see [`super::blocks`]) and seal them. Returns the orders too, for
    /// the conflict search.
    fn round(
        &self,
        ctx: &BuildContext,
        previous: Option<&OrderSet>,
        blocks: &mut SlotBlocks,
        reads: &mut SlotReads,
    ) -> Result<Round, BuilderError> {
        let base_fee = ctx
            .parent
            .next_block_base_fee(ctx.spec.base_fee_params())
            .unwrap_or_default();
        let txs: Vec<_> = self.pool.best(base_fee).collect();
        let bundles = self
            .bundles
            .for_block(ctx.parent.number + 1, ctx.attrs.timestamp);
        let began = Instant::now();
        if let Some(reader) = &self.read_ahead {
            reads.read_new(&**reader, ctx.parent.hash(), &bundles, &txs);
        }
        let read = began.elapsed();
        let round = self.sim.lock().simulate(
            ctx.parent.hash(),
            &ctx.state,
            &ctx.evm_env(),
            &txs,
            &bundles,
        )?;
        let set = OrderSet::of(&round.orders);
        let orders: Arc<[Arc<SimulatedOrder>]> = round.orders.into();
        let mut times = RoundTimes {
            read_ahead: read,
            simulate: began.elapsed() - read,
            ..RoundTimes::default()
        };
        if previous == Some(&set) {
            return Ok(Round {
                set,
                orders,
                built: None,
                times,
            });
        }
        let RoundBlock {
            block,
            added,
            fill,
            seal,
        } = blocks.build(ctx, &orders, &set)?;
        (times.fill, times.seal) = (fill, seal);
        let us = |d: std::time::Duration| d.as_micros() as u64;
        tracing::debug!(
            orders = orders.len(),
            added,
            algorithm = block.algorithm,
            read_ahead_us = us(times.read_ahead),
            sim_us = us(times.simulate),
            fill_us = us(fill),
            seal_us = us(seal),
            "builder.round"
        );
        Ok(Round {
            set,
            orders,
            built: Some(block),
            times,
        })
    }

    /// Forgets the published best (the slot is over).
    pub fn end_slot(&self) {
        self.best.send_replace(None);
    }
}

/// What a round ran on, and the greedy block when the orders changed.
struct Round {
    set: OrderSet,
    orders: Arc<[Arc<SimulatedOrder>]>,
    /// This round's sealed block, when the orders changed.
    built: Option<BuiltBlock>,
    times: RoundTimes,
}

/// What a slot's rounds came to.
#[derive(Debug)]
pub struct SlotRun {
    /// The slot's best block (none when no block paid anything).
    pub best: Option<Bid>,
    /// Where the rounds' time went.
    pub figures: SlotFigures,
}

/// The slot's rounds run on a thread of their own, which keeps the growing block: a block
/// being built holds an EVM, which cannot move between threads. The thread ends when the slot
/// does (its request channel closes).
struct RoundThread {
    requests: mpsc::Sender<RoundRequest>,
}

/// The orders of the last round, and where to answer.
type RoundRequest = (
    Option<OrderSet>,
    oneshot::Sender<Result<Round, BuilderError>>,
);

impl RoundThread {
    fn start(builder: Builder, ctx: Arc<BuildContext>) -> Result<Self, BuilderError> {
        // One round at a time: the slot loop waits for each answer before it asks again.
        let (requests, mut incoming) = mpsc::channel::<RoundRequest>(1);
        std::thread::Builder::new()
            .name("builder-rounds".into())
            .spawn(move || {
                let mut blocks = SlotBlocks::default();
                let mut reads = SlotReads::default();
                while let Some((previous, answer)) = incoming.blocking_recv() {
                    let round = builder.round(&ctx, previous.as_ref(), &mut blocks, &mut reads);
                    // The slot loop is gone only when the slot ended: nothing to tell.
                    let _ = answer.send(round);
                }
            })
            .map_err(|e| BuilderError::Threads(e.to_string()))?;
        Ok(Self { requests })
    }

    /// Runs one round on the slot's thread.
    async fn run(&self, previous: Option<OrderSet>) -> Result<Round, BuilderError> {
        let (answer, round) = oneshot::channel();
        let gone = || BuilderError::Join("the round thread stopped".into());
        self.requests
            .send((previous, answer))
            .await
            .map_err(|_| gone())?;
        round.await.map_err(|_| gone())?
    }
}

/// The orders of the slot's latest round.
struct Latest {
    set: OrderSet,
    orders: Arc<[Arc<SimulatedOrder>]>,
    /// When that round started: orders that arrived before are in it (if valid).
    started: Instant,
}

/// A conflict search running on the blocking pool.
type SearchTask = tokio::task::JoinHandle<Result<BuiltBlock, BuildError>>;

/// The conflict search of a slot: at most one runs, on the newest orders when it starts, and
/// each rests as long as the one before it ran: a search costs a whole block of execution per
/// run, and back to back it would hold a core all slot long, which the rounds (whose blocks
/// reach bids first) need more.
#[derive(Default)]
struct Search {
    /// The search's block, when it started, and when the round whose orders it runs on started.
    running: Option<(Instant, Instant, SearchTask)>,
    /// Calls off the running search.
    cancel: Arc<AtomicBool>,
    /// The orders the last search started on.
    searched: Option<OrderSet>,
    /// No search starts before this.
    resume_at: Option<Instant>,
}

impl Search {
    /// Starts a search on `latest` unless one is running, `latest` was searched already, or
    /// the last one's rest is not over.
    fn start(&mut self, ctx: &Arc<BuildContext>, latest: Option<&Latest>) {
        let Some(latest) = latest else { return };
        if !self.due(latest) || self.resume_at.is_some_and(|at| Instant::now() < at) {
            return;
        }
        self.searched = Some(latest.set.clone());
        let (ctx, orders) = (ctx.clone(), latest.orders.clone());
        self.cancel = Arc::new(AtomicBool::new(false));
        let cancel = self.cancel.clone();
        let task = tokio::task::spawn_blocking(move || {
            ConflictSearch::default().build_until(&ctx, &orders, &cancel)
        });
        self.running = Some((Instant::now(), latest.started, task));
    }

    /// Whether `latest` waits for a search: none runs and it was not searched.
    fn due(&self, latest: &Latest) -> bool {
        self.running.is_none() && self.searched.as_ref() != Some(&latest.set)
    }

    /// When a search waits only for the last one's rest to end: `latest` is due and the rest is
    /// not over.
    fn rest_until(&self, latest: Option<&Latest>) -> Option<Instant> {
        let at = self.resume_at?;
        (latest.is_some_and(|latest| self.due(latest)) && Instant::now() < at).then_some(at)
    }
}

/// Sleeps until `at`; never resolves for `None`.
async fn until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

impl Search {
    /// The block of the running search, once it ends, and when the round whose orders it ran
    /// on started; never resolves while none runs.
    async fn finished(&mut self) -> (Result<BuiltBlock, BuilderError>, Instant) {
        let Some((ran_from, started, task)) = self.running.as_mut() else {
            return std::future::pending().await;
        };
        let (ran_from, started) = (*ran_from, *started);
        let result = task.await;
        self.running = None;
        let now = Instant::now();
        self.resume_at = Some(now + (now - ran_from));
        let block = result
            .map_err(|e| BuilderError::Join(e.to_string()))
            .and_then(|built| built.map_err(BuilderError::from));
        (block, started)
    }
}

/// The slot is over: a search still running is called off, so that it does not hold a core
/// the next slot's first rounds need.
impl Drop for Search {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

/// Which orders a round could run (ids, sorted): a round whose set equals the previous one's
/// would build the same block, so it is skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderSet(Vec<alloy_primitives::B256>);

impl OrderSet {
    /// The ids of `orders`, as the simulator returns them.
    pub fn of(orders: &[Arc<SimulatedOrder>]) -> Self {
        // The simulator returns orders sorted by id.
        Self(orders.iter().map(|o| o.order.id()).collect())
    }

    pub(super) fn contains(&self, id: &alloy_primitives::B256) -> bool {
        self.0.binary_search(id).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use alloy_primitives::{B256, Bytes, TxKind};
    use alloy_signer_local::PrivateKeySigner;
    use cobuild_chain::{
        dev_signers,
        test_utils::{ETHER, devnet_chain, next_attrs, sign, transfer, tx},
    };
    use cobuild_pool::PoolConfig;

    use super::*;
    use crate::builder::test_bundle as bundle;

    /// A builder over an empty devnet chain and pools, and the job of the slot on its head.
    struct Fixture {
        _dir: tempfile::TempDir,
        builder: Builder,
        bundles: BundlePool,
        coinbase: PrivateKeySigner,
        job: SlotJob,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().expect("tempdir");
            let chain = devnet_chain(dir.path());
            let limit = OrderLimit::new(100);
            let pool = TxPool::with_limit(chain.clone(), PoolConfig::default(), &limit);
            let bundles = BundlePool::with_limit(&limit);
            let coinbase = PrivateKeySigner::from_bytes(&alloy_primitives::B256::repeat_byte(0x42))
                .expect("valid key");
            let builder = Builder::new(
                chain.spec().clone(),
                pool,
                bundles.clone(),
                &limit,
                BuilderConfig {
                    coinbase: coinbase.clone(),
                    bid_percent: 100,
                    sim_threads: 0,
                    round_interval: Duration::from_millis(10),
                },
            )
            .expect("builder");
            let (parent, state) = chain.head_state().expect("state");
            let job = SlotJob {
                slot: 1,
                parent,
                state,
                attrs: next_attrs(&chain, coinbase.address()),
                proposer_fee_recipient: Address::repeat_byte(0xfe),
            };
            Self {
                _dir: dir,
                builder,
                bundles,
                coinbase,
                job,
            }
        }
    }

    /// Who sends the tests' bundles.
    const SENDER: Address = Address::repeat_byte(0x5e);

    /// Pools a bundle of one transfer of `value` to the coinbase from dev account `signer`
    /// (nonce 0), and returns its id.
    fn pay(bundles: &BundlePool, coinbase: &PrivateKeySigner, signer: usize, value: u128) -> B256 {
        let tx = sign(
            &dev_signers()[signer],
            transfer(0, coinbase.address(), value, 0),
        );
        bundles.add(SENDER, bundle(&[tx])).expect("pooled")
    }

    /// Pools a payment from dev account `signer` (see [`pay`]) and runs a fresh round: the
    /// orders a search would be given.
    fn pay_and_round(fixture: &Fixture, ctx: &BuildContext, signer: usize) -> Latest {
        pay(&fixture.bundles, &fixture.coinbase, signer, ETHER / 100);
        let round = fixture
            .builder
            .round(
                ctx,
                None,
                &mut SlotBlocks::default(),
                &mut SlotReads::default(),
            )
            .expect("a round runs");
        Latest {
            set: round.set,
            orders: round.orders,
            started: Instant::now(),
        }
    }

    /// Two bundles of the same sender compete for its nonce: one pays less but per gas more.
    /// The round offers the block that takes the richer one (the by-profit block), and keeps
    /// offering it as the blocks grow.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn test_a_round_offers_the_richer_of_competing_bundles_even_at_less_per_gas() {
        let Fixture {
            _dir,
            builder,
            bundles,
            coinbase,
            job,
        } = Fixture::new();
        let ctx = builder.context(&job);
        let signer = &dev_signers()[1];
        let to = coinbase.address();
        // 0.01 ETH over 21,000 gas against 0.016 ETH over 42,000 gas.
        let cheap = bundles
            .add(
                SENDER,
                bundle(&[sign(signer, transfer(0, to, ETHER / 100, 0))]),
            )
            .expect("pooled");
        let rich = bundles
            .add(
                SENDER,
                bundle(&[
                    sign(signer, transfer(0, to, ETHER / 125, 0)),
                    sign(signer, transfer(1, to, ETHER / 125, 0)),
                ]),
            )
            .expect("pooled");
        let mut blocks = SlotBlocks::default();
        let first = builder
            .round(&ctx, None, &mut blocks, &mut SlotReads::default())
            .expect("a round runs");
        let built = first.built.expect("built");
        assert_eq!(built.orders, vec![rich]);
        assert_eq!(built.algorithm, "greedy-profit");
        assert!(!built.orders.contains(&cheap));

        // Both blocks grow: a new independent payment joins the richer block.
        let more = pay(&bundles, &coinbase, 2, ETHER / 100);
        let second = builder
            .round(
                &ctx,
                Some(&first.set),
                &mut blocks,
                &mut SlotReads::default(),
            )
            .expect("a round runs");
        assert_eq!(second.built.expect("built").orders, vec![rich, more]);
    }

    /// A round adds what is new to the slot's growing block, after the orders it holds; when one
    /// of those leaves the pools, the next round builds the block again without it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn test_a_round_adds_new_orders_to_the_block_and_rebuilds_after_a_cancel() {
        let Fixture {
            _dir,
            builder,
            bundles,
            coinbase,
            job,
        } = Fixture::new();
        let ctx = builder.context(&job);
        let mut blocks = SlotBlocks::default();
        let mut round = |previous: Option<&OrderSet>| {
            builder
                .round(&ctx, previous, &mut blocks, &mut SlotReads::default())
                .expect("a round runs")
        };

        let cheap = pay(&bundles, &coinbase, 1, ETHER / 100);
        let first = round(None);
        assert_eq!(first.built.expect("built").orders, vec![cheap]);
        // The same orders again: nothing to build.
        assert!(round(Some(&first.set)).built.is_none());

        // A richer order comes after the one the block holds (a fresh greedy block would put
        // it first).
        let rich = pay(&bundles, &coinbase, 2, ETHER);
        let second = round(Some(&first.set));
        assert_eq!(second.built.expect("built").orders, vec![cheap, rich]);

        bundles.remove(&cheap);
        let third = round(Some(&second.set));
        assert_eq!(third.built.expect("built").orders, vec![rich]);
    }

    /// A search rests as long as the one before it ran before it starts on newer orders, and
    /// starts when the rest is over.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn test_a_conflict_search_rests_as_long_as_the_last_one_ran() {
        let fixture = Fixture::new();
        let ctx = Arc::new(fixture.builder.context(&fixture.job));
        let latest = |signer| pay_and_round(&fixture, &ctx, signer);

        let mut search = Search::default();
        let first = latest(1);
        search.start(&ctx, Some(&first));
        assert!(search.running.is_some());
        // Newer orders arrive while it runs.
        let second = latest(2);
        let before = Instant::now();
        let (block, _) = search.finished().await;
        assert_eq!(block.expect("the search builds").orders.len(), 1);
        let rest = search.resume_at.expect("a rest after a search");
        assert!(rest > before);

        search.start(&ctx, Some(&second));
        // Deterministic even if this thread stalls: the check is made only when the start was
        // surely inside the rest (nearly always).
        if Instant::now() < rest {
            assert!(search.running.is_none(), "no search during the rest");
            assert_eq!(search.rest_until(Some(&second)), Some(rest));
        }
        if let Some(at) = search.rest_until(Some(&second)) {
            until(Some(at)).await;
        }
        search.start(&ctx, Some(&second));
        assert!(search.running.is_some(), "the rest is over");
        assert_eq!(search.rest_until(Some(&second)), None);
    }

    /// The slot loop drops its search when the slot ends: one still running is called off.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn test_a_search_still_running_when_the_slot_ends_is_called_off() {
        let fixture = Fixture::new();
        let ctx = Arc::new(fixture.builder.context(&fixture.job));
        let latest = pay_and_round(&fixture, &ctx, 1);
        let mut search = Search::default();
        search.start(&ctx, Some(&latest));
        let (_, _, task) = search.running.take().expect("a search runs");
        let cancel = search.cancel.clone();
        assert!(!cancel.load(Ordering::Relaxed));
        drop(search);
        assert!(cancel.load(Ordering::Relaxed), "the search is called off");
        // Called off, or done before it looked: either way it ends.
        match task.await.expect("the search task ends") {
            Ok(_) | Err(BuildError::Cancelled) => {}
            Err(e) => panic!("the search failed: {e}"),
        }
    }

    /// The greedy block goes out at once; the conflict search, running beside the rounds,
    /// still gets the slot's best block when it is worth more.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn test_the_conflict_search_beside_the_rounds_wins_when_richer() {
        let Fixture {
            _dir,
            builder,
            bundles,
            coinbase,
            job,
        } = Fixture::new();
        // One bundle spends nonce 0 of signers 1 and 2 and pays the most, and the most per gas:
        // both greedy blocks take it. Two others each spend one of those nonces (beside a
        // heavy transaction of another signer) and together pay more: only the search, which
        // tries the group's orderings, finds them.
        let s = dev_signers();
        let to = coinbase.address();
        let heavy = |signer: &PrivateKeySigner| {
            sign(
                signer,
                tx(
                    0,
                    TxKind::Call(Address::repeat_byte(0x11)),
                    U256::ZERO,
                    Bytes::from(vec![1u8; 4000]),
                    250_000,
                    0,
                ),
            )
        };
        let both = bundle(&[
            sign(&s[1], transfer(0, to, ETHER / 4, 0)),
            sign(&s[2], transfer(0, to, ETHER / 4, 0)),
        ]);
        let first = bundle(&[
            sign(&s[1], transfer(0, to, ETHER * 3 / 10, 0)),
            heavy(&s[3]),
        ]);
        let second = bundle(&[
            sign(&s[2], transfer(0, to, ETHER * 3 / 10, 0)),
            heavy(&s[4]),
        ]);
        let both = bundles.add(SENDER, both).expect("pooled");
        let first = bundles.add(SENDER, first).expect("pooled");
        let second = bundles.add(SENDER, second).expect("pooled");

        // A round builds greedily only: the richer block is the search's, beside the rounds.
        let Round { orders, built, .. } = builder
            .round(
                &builder.context(&job),
                None,
                &mut SlotBlocks::default(),
                &mut SlotReads::default(),
            )
            .expect("a round runs");
        let greedy = built.expect("a slot's first round builds");
        assert_eq!(orders.len(), 3);
        assert_eq!(greedy.orders, vec![both]);

        let mut published = builder.subscribe();
        let run = builder
            .run_slot(job, Instant::now() + Duration::from_millis(300))
            .await
            .expect("the slot runs");
        // The slot's figures count the round that built a block, and its time in each phase.
        assert!(run.figures.sealed >= 1 && run.figures.rounds >= run.figures.sealed);
        assert!(!run.figures.total.simulate.is_zero() && !run.figures.total.seal.is_zero());
        assert!(!run.figures.total.fill.is_zero());
        let best = run.best.expect("a block paid");
        assert_eq!(best.block.algorithm, "conflict-search");
        let mut searched = best.block.orders.clone();
        searched.sort();
        let mut expected = vec![first, second];
        expected.sort();
        assert_eq!(searched, expected);
        assert!(published.has_changed().expect("open"));
        let last = published.borrow_and_update().clone().expect("published");
        assert_eq!(last.block.block.block.hash, best.block.block.block.hash);
    }
}
