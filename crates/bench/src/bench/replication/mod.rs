//! Replication: members on loopback with real sockets and real logs, orders entering as the
//! node's RPC hook enters them, and how long until every other member has each one.
//!
//! ```text
//!  payloads: the workload's signed raw transactions (EIP-2718), reused round-robin
//!  baseline: Log::append_own alone, one after another, on an idle log (the durable commit)
//!  members 0..n: Log (redb, temp dir) + Replication (commonware lookup on loopback)
//!                └─ deliver ─▶ recorder task: (origin, seq) reached member m at t
//!  warm-up:  one order per member, until every link is up
//!  rate:     `rate` orders/s spread over the members for `duration`
//!  flood:    `flood_in_flight` concurrent offers per member, as fast as they go, for
//!            `flood_duration`
//!  intake:   signed eth_sendBundle over HTTP to an RPC server without, then with, a hook
//!            that replicates through member 0
//!  each phase then waits (up to `drain`) for its orders to reach every other member
//! ```
//! An offer is what `cobuild-node`'s hook does with an accepted order: hand it to the member's
//! committer thread, which makes every order waiting at that moment durable in one commit
//! (`Log::append_own_batch`), then `Mailbox::broadcast`. Latency runs from just before the
//! order is handed over for its commit to the delivery at the last of the other members; it
//! is also split at the end of the commit (the point where the node may answer the sender). An
//! order not at every other member when the drain ends is lost.

mod cluster;
mod intake;
mod ledger;
mod report;
mod tracker;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use alloy_primitives::Bytes;
use cobuild_chain::ChainError;
use cobuild_net::{Envelope, EnvelopeError, Insert, Log, LogError, TransportError};
use cobuild_primitives::AcceptedOrder;
use commonware_cryptography::{Signer as _, ed25519};
use tokio::{sync::Semaphore, task::JoinSet};

pub use intake::IntakeRun;
pub use ledger::LedgerFigure;

use self::{
    cluster::{Hook, Member, offer},
    tracker::{Phase, Tally, Tracker},
};
use super::{IntakeConfig, Machine, http::HttpError, intake::IntakeError, measure::Latency};
use crate::{Workload, WorkloadConfig, WorkloadError};

/// Settings of the replication benchmark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationConfig {
    /// Members on loopback (2 to 64).
    pub members: usize,
    /// Orders per second offered in the fixed-rate phase, spread evenly over the members.
    pub rate: u32,
    /// Length of the fixed-rate phase.
    pub duration: Duration,
    /// Most offers one member has in flight in the fixed-rate phase (like concurrent RPC
    /// requests); when all are busy the offering falls behind the rate, which the figures show.
    pub max_in_flight: usize,
    /// Length of the as-fast-as-possible phase.
    pub flood_duration: Duration,
    /// Concurrent offers per member in that phase.
    pub flood_in_flight: usize,
    /// How long a phase may wait after its last offer for every order to reach every member
    /// (anti-entropy heals a lost push within about two status intervals).
    pub drain: Duration,
    /// How long the members may take to connect.
    pub connect_timeout: Duration,
    /// The engines' status (and gap pull) interval.
    pub status_interval: Duration,
    /// Orders in the workload whose signed raw transactions are the payloads.
    pub payload_orders: usize,
    /// Seed of that workload.
    pub seed: u64,
    /// Timed durable appends for the baseline (fewer past one second); the receive baseline
    /// takes the same envelopes in.
    pub commit_reps: usize,
    /// Intake with replication on and off (`timeout` is each run's length); `None` skips it.
    pub intake: Option<IntakeConfig>,
    /// Slots the ledger phase records (0: the members run no ledger).
    pub ledger_slots: usize,
    /// Time between the ledger phase's blocks.
    pub ledger_slot: Duration,
}

impl Default for ReplicationConfig {
    /// 4 members, 2,000 orders/s for 3 s, then 2 s as fast as possible (4 offers in flight
    /// per member), then intake off and on for up to 3 s each: about 25 s in all when the
    /// members keep up (each phase waits for its last order and for the engines to go quiet).
    fn default() -> Self {
        Self {
            members: 4,
            rate: 2_000,
            duration: Duration::from_secs(3),
            max_in_flight: 64,
            flood_duration: Duration::from_secs(2),
            flood_in_flight: 4,
            drain: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(20),
            status_interval: Duration::from_millis(100),
            payload_orders: 1_000,
            seed: 1,
            commit_reps: 200,
            intake: Some(IntakeConfig {
                requests: 8_000,
                connections: 8,
                signers: 64,
                timeout: Duration::from_secs(3),
                // The replication runs compare on and off over distinct bundles only.
                resend_blocks: 1,
            }),
            ledger_slots: 20,
            ledger_slot: Duration::from_millis(250),
        }
    }
}

/// The replication benchmark failed (a broken measurement, not a slow figure).
#[derive(Debug, thiserror::Error)]
pub enum ReplicationBenchError {
    /// The settings cannot be run.
    #[error("settings: {0}")]
    Config(String),
    /// A runtime, socket or folder could not be made.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The payload workload could not be generated.
    #[error(transparent)]
    Workload(#[from] WorkloadError),
    /// A member's log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The receive baseline refused an envelope it was given straight from its origin.
    #[error("receive baseline: {0}")]
    Envelope(#[from] EnvelopeError),
    /// A member's transport did not start.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The intake chain could not be opened.
    #[error("chain: {0}")]
    Chain(#[from] ChainError),
    /// The intake requests could not be made.
    #[error(transparent)]
    Intake(#[from] IntakeError),
    /// An intake connection failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// A task panicked or was cancelled.
    #[error("task: {0}")]
    Task(String),
    /// A member's group commit failed.
    #[error("envelope log commit: {0}")]
    Commit(String),
    /// The members did not all exchange an order in time.
    #[error("members not connected after {0:?}: {1} warm-up orders still missing somewhere")]
    NotConnected(Duration, usize),
}

/// What one phase achieved.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PhaseFigure {
    /// Orders durably committed and broadcast.
    pub offered: usize,
    /// Offered per second over the offering (below the asked rate: the members fell behind).
    pub offered_per_sec: f64,
    /// Orders every other member received.
    pub replicated: usize,
    /// Orders some other member still lacked when the drain ended.
    pub lost: usize,
    /// Envelopes a member received twice (the engine promises exactly once).
    pub duplicates: usize,
    /// Just before the commit to delivery at the last other member.
    pub latency: Latency,
    /// The durable (group) commit alone, waiting for the committer included.
    pub commit: Latency,
    /// End of the commit to delivery at the last other member.
    pub network: Latency,
    /// Replicated orders per second, from the first offer to the last delivery.
    pub replicated_per_sec: f64,
}

impl PhaseFigure {
    fn new(tally: Tally, started: Instant, offering: Duration) -> Self {
        let span = tally.last_done.map_or(Duration::ZERO, |done| {
            done.saturating_duration_since(started)
        });
        Self {
            offered: tally.offered,
            offered_per_sec: tally.offered as f64 / offering.as_secs_f64().max(f64::MIN_POSITIVE),
            replicated: tally.replicated,
            lost: tally.offered - tally.replicated,
            duplicates: tally.duplicates,
            latency: Latency::from_samples(tally.total),
            commit: Latency::from_samples(tally.commit),
            network: Latency::from_samples(tally.network),
            replicated_per_sec: tally.replicated as f64 / span.as_secs_f64().max(f64::MIN_POSITIVE),
        }
    }
}

/// Intake with replication off and on, in the same run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IntakeComparison {
    /// Concurrent connections.
    pub connections: usize,
    /// Longest each run sends for.
    #[serde(rename = "duration_ms", serialize_with = "crate::bench::report::ms")]
    pub duration: Duration,
    /// The server without a hook.
    pub off: IntakeRun,
    /// The server replicating through member 0.
    pub on: IntakeRun,
    /// The orders accepted with replication on, as they reached the other members.
    pub replicated: PhaseFigure,
}

impl IntakeComparison {
    /// Accepted requests per second with replication on over off.
    pub fn ratio(&self) -> f64 {
        self.on.requests_per_sec / self.off.requests_per_sec.max(f64::MIN_POSITIVE)
    }
}

/// Everything the replication benchmark measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReplicationFigure {
    /// Members.
    pub members: usize,
    /// The fixed rate asked for, orders/s.
    pub rate: u32,
    /// Length of the fixed-rate phase.
    #[serde(rename = "duration_ms", serialize_with = "crate::bench::report::ms")]
    pub duration: Duration,
    /// Length of the as-fast-as-possible phase.
    #[serde(
        rename = "flood_duration_ms",
        serialize_with = "crate::bench::report::ms"
    )]
    pub flood_duration: Duration,
    /// Concurrent offers per member in that phase.
    pub flood_in_flight: usize,
    /// Distinct payloads (signed raw transactions).
    pub payloads: usize,
    /// Their mean size in bytes.
    pub payload_bytes: f64,
    /// Baselines: one durable append and a receiver's work per envelope, each alone.
    pub baseline: Baseline,
    /// Cores the machine offers, and its load average when the run began (Linux), since
    /// every member shares them with the rest of the machine.
    pub machine: Machine,
    /// The fixed-rate phase.
    pub at_rate: PhaseFigure,
    /// The as-fast-as-possible phase.
    pub flood: PhaseFigure,
    /// Intake with replication off and on, if run.
    pub intake: Option<IntakeComparison>,
    /// Deliveries of unknown origins or impossible seqs (none expected).
    pub strays: u64,
    /// The slot ledger beside replication, if run.
    pub ledger: Option<LedgerFigure>,
}

impl ReplicationFigure {
    /// Fixed-rate p50 over the commit baseline's p50 (how many durable appends one replicated
    /// order costs in latency).
    pub fn ratio_vs_commit(&self) -> Option<f64> {
        let commit = self.baseline.commit.p50;
        (!commit.is_zero()).then(|| self.at_rate.latency.p50.as_secs_f64() / commit.as_secs_f64())
    }
}

fn runtime(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
}

/// The next payload, round-robin over the workload's raw transactions.
#[derive(Debug)]
struct Payloads {
    raw: Vec<Bytes>,
    next: AtomicUsize,
}

impl Payloads {
    fn next(&self) -> Bytes {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        self.raw[i % self.raw.len()].clone()
    }
}

/// The costs of one envelope at its origin and at a receiver, each alone on one thread.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Baseline {
    /// `Log::append_own` on an idle log, one after another (the durable commit).
    pub commit: Latency,
    /// What a receiving engine does with an envelope it did not have: decode, check, verify
    /// the origin's signature, `Log::insert`.
    pub receive_new: Latency,
    /// The same for an envelope it already has (every forwarded copy after the first).
    pub receive_duplicate: Latency,
}

impl Baseline {
    /// Orders per second, network-wide, that one member's engine could take in if receiving
    /// were all it did, at these p50s: of every `n` orders, `n - 1` come from other members,
    /// each arriving once new and `n - 2` times more as forwarded duplicates.
    pub fn receive_ceiling(&self, members: usize) -> Option<f64> {
        let (n, new, dup) = (
            members as f64,
            self.receive_new.p50.as_secs_f64(),
            self.receive_duplicate.p50.as_secs_f64(),
        );
        let per_order = (n - 1.0) / n * (new + (n - 2.0) * dup);
        (per_order > 0.0).then(|| 1.0 / per_order)
    }

    /// The same bound when `members` engines share `cores` cores: every member does that work
    /// for every order, so the machine runs out of cores first once members outnumber them.
    pub fn machine_ceiling(&self, members: usize, cores: usize) -> Option<f64> {
        let one = self.receive_ceiling(members)?;
        Some(one * (cores as f64 / members as f64).min(1.0))
    }
}

/// Times up to `reps` durable appends one after another on a fresh log in `dir` (stopping
/// after a second, keeping at least one), then takes the envelopes in at a second log twice.
fn baseline(
    dir: &std::path::Path,
    payloads: &Payloads,
    reps: usize,
) -> Result<Baseline, ReplicationBenchError> {
    let key = ed25519::PrivateKey::from_seed(0xc0b0_ffff);
    let origin_key = key.public_key();
    let origin = Log::open(&dir.join("baseline-origin.redb"), 0, key)?;
    let started = Instant::now();
    let mut commit = Vec::with_capacity(reps);
    let mut wire = Vec::with_capacity(reps);
    for _ in 0..reps.max(1) {
        let payload = payloads.next();
        let start = Instant::now();
        let envelope = origin.append_own(AcceptedOrder::raw_transaction(payload), 0)?;
        commit.push(start.elapsed());
        wire.push(envelope.encode());
        if started.elapsed() > Duration::from_secs(1) {
            break;
        }
    }
    let receiver = Log::open(
        &dir.join("baseline-receiver.redb"),
        1,
        ed25519::PrivateKey::from_seed(0xc0b0_fffe),
    )?;
    let receive = |expect_new: bool| -> Result<Vec<Duration>, ReplicationBenchError> {
        let mut samples = Vec::with_capacity(wire.len());
        for bytes in &wire {
            let start = Instant::now();
            let envelope = Envelope::decode(bytes)?;
            envelope.check()?;
            envelope.verify(&origin_key)?;
            let inserted = receiver.insert(&envelope)?;
            samples.push(start.elapsed());
            if matches!(inserted, Insert::New { .. }) != expect_new {
                return Err(ReplicationBenchError::Config(format!(
                    "receive baseline: {inserted:?} for a{} envelope",
                    if expect_new { " new" } else { " held" }
                )));
            }
        }
        Ok(samples)
    };
    let receive_new = receive(true)?;
    let receive_duplicate = receive(false)?;
    Ok(Baseline {
        commit: Latency::from_samples(commit),
        receive_new: Latency::from_samples(receive_new),
        receive_duplicate: Latency::from_samples(receive_duplicate),
    })
}

/// Waits until every order of `phase` is at every other member, or `drain` has passed.
async fn settle(tracker: &Tracker, phase: Phase, drain: Duration) -> usize {
    let deadline = Instant::now() + drain;
    loop {
        let outstanding = tracker.outstanding(phase);
        if outstanding == 0 || Instant::now() >= deadline {
            return outstanding;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// How long every engine must have taken nothing in before the next phase starts.
const QUIET: Duration = Duration::from_millis(300);

/// Waits until no member's engine has taken an envelope in (new or duplicate) for [`QUIET`],
/// or `limit` has passed. A phase's orders reach every member before the forwarded copies of
/// them stop arriving (each member re-sends what it sees first to the others), and engines
/// still busy with those would slow the next phase down.
async fn quiesce(members: &[Arc<Member>], limit: Duration) -> Duration {
    let started = Instant::now();
    let taken_in = || {
        members
            .iter()
            .map(|m| {
                let c = m.mailbox.counters();
                c.delivered + c.duplicates + c.pulled_served
            })
            .sum::<u64>()
    };
    let mut last = taken_in();
    let mut quiet_since = Instant::now();
    while started.elapsed() < limit && quiet_since.elapsed() < QUIET {
        tokio::time::sleep(Duration::from_millis(25)).await;
        let now = taken_in();
        if now != last {
            last = now;
            quiet_since = Instant::now();
        }
    }
    started.elapsed()
}

async fn join_all(
    mut tasks: JoinSet<Result<(), ReplicationBenchError>>,
) -> Result<(), ReplicationBenchError> {
    while let Some(result) = tasks.join_next().await {
        result.map_err(|e| ReplicationBenchError::Task(e.to_string()))??;
    }
    Ok(())
}

/// Offers `rate` orders/s spread over `members` for `duration`: member m's k-th order is due
/// at start + (k + m/n) / (rate/n). An offer that falls due while `max_in_flight` of the
/// member's are busy waits, so the schedule slips rather than the latency hiding queueing.
async fn at_rate(
    members: &[Arc<Member>],
    tracker: &Arc<Tracker>,
    payloads: &Arc<Payloads>,
    config: &ReplicationConfig,
) -> Result<(), ReplicationBenchError> {
    let n = members.len();
    let per_member = f64::from(config.rate) / n as f64;
    let count = (per_member * config.duration.as_secs_f64()).round() as usize;
    let start = tokio::time::Instant::now();
    let mut schedules = JoinSet::new();
    for (m, member) in members.iter().enumerate() {
        let (member, tracker, payloads) = (member.clone(), tracker.clone(), payloads.clone());
        let slots = Arc::new(Semaphore::new(config.max_in_flight.max(1)));
        schedules.spawn(async move {
            let mut offers = JoinSet::new();
            for k in 0..count {
                let due = (k as f64 + m as f64 / n as f64) / per_member;
                tokio::time::sleep_until(start + Duration::from_secs_f64(due)).await;
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    break;
                };
                let (member, tracker, payload) = (member.clone(), tracker.clone(), payloads.next());
                offers.spawn(async move {
                    let result = offer(
                        &member,
                        &tracker,
                        Phase::Rate,
                        AcceptedOrder::raw_transaction(payload),
                    )
                    .await;
                    drop(slot);
                    result
                });
            }
            join_all(offers).await
        });
    }
    join_all(schedules).await
}

/// `in_flight` offer loops per member, each starting its next offer when its last returned,
/// until `duration` has passed.
async fn flood(
    members: &[Arc<Member>],
    tracker: &Arc<Tracker>,
    payloads: &Arc<Payloads>,
    in_flight: usize,
    duration: Duration,
) -> Result<(), ReplicationBenchError> {
    let stop_at = Instant::now() + duration;
    let mut loops = JoinSet::new();
    for member in members {
        for _ in 0..in_flight.max(1) {
            let (member, tracker, payloads) = (member.clone(), tracker.clone(), payloads.clone());
            loops.spawn(async move {
                while Instant::now() < stop_at {
                    offer(
                        &member,
                        &tracker,
                        Phase::Flood,
                        AcceptedOrder::raw_transaction(payloads.next()),
                    )
                    .await?;
                }
                Ok(())
            });
        }
    }
    join_all(loops).await
}

/// Runs one offering phase on `driver`, waits for its orders to settle, then for the engines
/// to go quiet.
fn phase(
    driver: &tokio::runtime::Runtime,
    members: &[Arc<Member>],
    tracker: &Tracker,
    which: Phase,
    drain: Duration,
    offering: impl std::future::Future<Output = Result<(), ReplicationBenchError>>,
) -> Result<PhaseFigure, ReplicationBenchError> {
    let started = Instant::now();
    driver.block_on(offering)?;
    let offered_in = started.elapsed();
    let outstanding = driver.block_on(settle(tracker, which, drain));
    let figure = PhaseFigure::new(tracker.tally(which), started, offered_in);
    let quiet_in = driver.block_on(quiesce(members, drain));
    tracing::info!(
        phase = ?which,
        offered = figure.offered,
        lost = outstanding,
        quiet_ms = quiet_in.as_millis() as u64,
        p50_us = figure.latency.p50.as_micros() as u64,
        p99_us = figure.latency.p99.as_micros() as u64,
        "bench.replication.phase"
    );
    Ok(figure)
}

/// Runs the replication benchmark.
///
/// Synchronous (about 20 s at the defaults): call it from a plain thread, not from inside an
/// async runtime (it starts its own, and every member's transport runs its own).
pub fn replication(config: &ReplicationConfig) -> Result<ReplicationFigure, ReplicationBenchError> {
    if !(2..=64).contains(&config.members) {
        return Err(ReplicationBenchError::Config(format!(
            "{} members: 2 to 64 can be measured",
            config.members
        )));
    }
    if config.rate == 0 {
        return Err(ReplicationBenchError::Config("a rate of 0 orders/s".into()));
    }
    let begun = Instant::now();
    let machine = Machine::now();
    let workload = Workload::generate(WorkloadConfig::new(
        config.payload_orders.max(1),
        config.seed,
    ))?;
    let raw = workload.canonical.clone();
    drop(workload);
    if raw.is_empty() {
        return Err(ReplicationBenchError::Config(
            "the workload has no transactions".into(),
        ));
    }
    let payload_bytes = raw.iter().map(|b| b.len()).sum::<usize>() as f64 / raw.len() as f64;
    let payloads = Arc::new(Payloads {
        raw,
        next: AtomicUsize::new(0),
    });
    // Signed before any member runs, so signing takes no time from the measurements.
    // One set for each run: a set sent twice would find its senders in the process's sender cache the
    // second time.
    let requests = match &config.intake {
        Some(intake) => {
            let set = |role| super::intake::prepare(role, intake.requests, intake.signers, 1);
            Some((Arc::new(set("intake-off")?), Arc::new(set("intake-on")?)))
        }
        None => None,
    };

    tracing::info!(
        payloads = payloads.raw.len(),
        ms = begun.elapsed().as_millis() as u64,
        "bench.replication.prepared"
    );
    let dir = tempfile::Builder::new()
        .prefix("cobuild-bench-replication")
        .tempdir()?;
    let baseline = baseline(dir.path(), &payloads, config.commit_reps)?;

    let driver = runtime(2)?;
    let tracker = Arc::new(Tracker::new(config.members));
    let chain = (config.ledger_slots > 0).then(|| Arc::new(ledger::BenchChain::default()));
    let members = cluster::start(
        dir.path(),
        config.members,
        config.status_interval,
        &tracker,
        driver.handle(),
        chain.as_ref(),
    )?;

    // Warm-up: one order per member until each has reached every other.
    driver.block_on(async {
        let mut tasks = JoinSet::new();
        for member in &members {
            let (member, tracker, payload) = (member.clone(), tracker.clone(), payloads.next());
            tasks.spawn(async move {
                offer(
                    &member,
                    &tracker,
                    Phase::Warmup,
                    AcceptedOrder::raw_transaction(payload),
                )
                .await
            });
        }
        join_all(tasks).await
    })?;
    let missing = driver.block_on(settle(&tracker, Phase::Warmup, config.connect_timeout));
    if missing > 0 {
        return Err(ReplicationBenchError::NotConnected(
            config.connect_timeout,
            missing,
        ));
    }
    tracing::info!(
        ms = begun.elapsed().as_millis() as u64,
        "bench.replication.connected"
    );

    driver.block_on(quiesce(&members, config.drain));
    // The process's CPU rate with every member idle, to take out of the phases' CPU.
    let idle = driver.block_on(ledger::idle_rate(Duration::from_millis(500)));
    let (cpu_before, rate_begun) = (ledger::cpu_time(), Instant::now());
    let at_rate_figure = phase(
        &driver,
        &members,
        &tracker,
        Phase::Rate,
        config.drain,
        at_rate(&members, &tracker, &payloads, config),
    )?;
    let rate_cpu =
        (ledger::cpu_time() - cpu_before).as_secs_f64() - idle * rate_begun.elapsed().as_secs_f64();
    let cpu_per_order =
        Duration::from_secs_f64(rate_cpu.max(0.0) / at_rate_figure.offered.max(1) as f64);
    let flood_figure = phase(
        &driver,
        &members,
        &tracker,
        Phase::Flood,
        config.drain,
        flood(
            &members,
            &tracker,
            &payloads,
            config.flood_in_flight,
            config.flood_duration,
        ),
    )?;

    let intake = match (&config.intake, requests) {
        (Some(intake_config), Some((off_requests, on_requests))) => {
            let server = runtime(2)?;
            let chain = intake::chain(dir.path())?;
            let off = intake::run(
                &server,
                &chain,
                None,
                &off_requests,
                intake_config.connections,
                intake_config.timeout,
            )?;
            let hook: Arc<dyn cobuild_rpc::Replicate> = Arc::new(Hook {
                member: members[0].clone(),
                tracker: tracker.clone(),
            });
            let started = Instant::now();
            let on = intake::run(
                &server,
                &chain,
                Some(hook),
                &on_requests,
                intake_config.connections,
                intake_config.timeout,
            )?;
            let offered_in = started.elapsed();
            driver.block_on(settle(&tracker, Phase::Intake, config.drain));
            let replicated = PhaseFigure::new(tracker.tally(Phase::Intake), started, offered_in);
            driver.block_on(quiesce(&members, config.drain));
            server.shutdown_timeout(Duration::from_secs(2));
            tracing::info!(
                off = off.requests_per_sec as u64,
                on = on.requests_per_sec as u64,
                lost = replicated.lost,
                "bench.replication.intake"
            );
            Some(IntakeComparison {
                connections: intake_config.connections.max(1),
                duration: intake_config.timeout,
                off,
                on,
                replicated,
            })
        }
        _ => None,
    };

    let ledger = chain.map(|chain| {
        let mut finals: Vec<_> = members
            .iter()
            .filter_map(|m| m.final_slot.clone())
            .collect();
        driver.block_on(async {
            quiesce(&members, config.drain).await;
            let idle = ledger::idle_rate(Duration::from_millis(500)).await;
            ledger::run(
                &chain,
                &mut finals,
                config.ledger_slots,
                config.ledger_slot,
                config.drain,
                idle,
                cpu_per_order,
            )
            .await
        })
    });
    if let Some(ledger) = &ledger {
        tracing::info!(
            records = ledger.records,
            missed = ledger.missed,
            p50_us = ledger.latency.p50.as_micros() as u64,
            "bench.replication.ledger"
        );
    }
    let strays = tracker.strays();
    tracing::info!(
        ms = begun.elapsed().as_millis() as u64,
        "bench.replication.measured"
    );
    // Dropping the members ends their transports (their runtimes stop on their own threads).
    drop(members);
    driver.shutdown_timeout(Duration::from_secs(2));
    Ok(ReplicationFigure {
        members: config.members,
        rate: config.rate,
        duration: config.duration,
        flood_duration: config.flood_duration,
        flood_in_flight: config.flood_in_flight.max(1),
        payloads: payloads.raw.len(),
        payload_bytes,
        baseline,
        machine,
        at_rate: at_rate_figure,
        flood: flood_figure,
        intake,
        strays,
        ledger,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_receive_ceilings_count_every_copy_and_share_the_cores() {
        let us = |v| Latency {
            samples: 1,
            p50: Duration::from_micros(v),
            ..Latency::default()
        };
        let baseline = Baseline {
            commit: us(500),
            receive_new: us(100),
            receive_duplicate: us(50),
        };
        // 4 members: 3/4 of the orders are foreign, each 100 us new + 2 x 50 us forwarded.
        let one = baseline.receive_ceiling(4).expect("costs are known");
        assert!((one - 1e6 / 150.0).abs() < 1e-6, "{one}");
        let shared = baseline.machine_ceiling(4, 2).expect("costs are known");
        assert!((shared - one / 2.0).abs() < 1e-6, "{shared}");
        assert_eq!(baseline.machine_ceiling(4, 8), Some(one));
        assert_eq!(Baseline::default().receive_ceiling(4), None);
    }
}
