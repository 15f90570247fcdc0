//! Deterministic simulation of the whole replication network: honest members accepting orders
//! while links lose 20 % of messages, partitions come and go, members crash and restart, and a
//! Byzantine member forges, alters, replays and equivocates envelopes and spams. After the
//! faults heal, every honest member must hold every envelope any honest member acknowledged
//! (no loss), and nothing an honest origin did not sign (no forgery).
//!
//! Every member's node side is modelled too: at each (re)start it refills its "pools" from the
//! log's contiguous prefixes, then takes what the engine hands over; in the end each node must
//! have been handed every other origin's envelope exactly once, in the origin's order (stored
//! means delivered).
//!
//! Each run is seeded: the same seed replays exactly (the runtime's audit state is compared).
//! CI runs 200 seeds of each scenario (`SIM_SEEDS` changes the count, `SIM_SEED=<n>` replays
//! one seed).

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::Duration,
};

use alloy_primitives::Bytes;
use cobuild_net::{
    Envelope, EnvelopeBody, Log, MemberId,
    engine::{Config, Engine, Mailbox, Peer, Recovery},
    wire::{Message, Pull, Status},
};
use cobuild_primitives::{AcceptedOrder, OrderKind};
use commonware_cryptography::{Signer as _, ed25519};
use commonware_p2p::{
    Receiver as _, Recipients, Sender as _,
    simulated::{self, Link, Oracle},
};
use commonware_runtime::{
    Clock, Handle, Quota, Runner as _, Spawner, Supervisor as _, deterministic,
};
use commonware_utils::{NZU32, NZUsize, Probability};
use parking_lot::Mutex;
use tokio::sync::mpsc;

const PUSH: u64 = 0;
const SYNC: u64 = 1;

/// What a run exercises.
#[derive(Debug, Clone, Copy)]
struct Scenario {
    honest: usize,
    byzantine: bool,
    /// Fraction of messages each link drops while faults last.
    loss: f64,
    partitions: bool,
    crashes: bool,
    /// How long orders arrive and faults happen (virtual time).
    active: Duration,
}

/// A small deterministic generator for the fault schedule (the runtime's own randomness
/// drives message timing; this drives what the test does).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo))
    }
}

fn key(id: MemberId) -> ed25519::PrivateKey {
    ed25519::PrivateKey::from_seed(u64::from(id) + 1)
}

fn link(loss: f64) -> Link {
    Link {
        latency: Duration::from_millis(5),
        jitter: Duration::from_millis(3),
        success_rate: Probability::from_f64(1.0 - loss).expect("a probability"),
    }
}

fn quota() -> Quota {
    Quota::per_second(NZU32!(100_000))
}

/// One honest member: its log survives crashes (as its file would); its engine does not.
struct Member {
    id: MemberId,
    log: Arc<Log>,
    engine: Option<(Handle<()>, Handle<()>, Mailbox)>,
    /// Envelopes this member acknowledged to its senders.
    acked: Vec<Envelope>,
    /// What the node's current incarnation was given, in order: its refill from the log at
    /// start, then what the engine handed over.
    handed: Arc<Mutex<Vec<(MemberId, u64)>>>,
    /// Forged or altered envelopes refused by engines that have crashed since.
    refused_before: u64,
}

impl Member {
    /// Member `id`, not started, with an empty log.
    fn new(id: MemberId) -> Self {
        Self {
            id,
            log: Arc::new(Log::in_memory(id, key(id)).expect("log")),
            engine: None,
            acked: Vec::new(),
            handed: Arc::default(),
            refused_before: 0,
        }
    }

    fn refused(&self) -> u64 {
        self.refused_before
            + self
                .engine
                .as_ref()
                .map_or(0, |(_, _, mailbox)| mailbox.counters().bad_signatures)
    }
}

async fn start(
    context: &deterministic::Context,
    oracle: &Oracle<ed25519::PublicKey, deterministic::Context>,
    member: &mut Member,
    peers: &[Peer],
) {
    start_with(context, oracle, member, peers, |_| {}).await;
}

async fn start_with(
    context: &deterministic::Context,
    oracle: &Oracle<ed25519::PublicKey, deterministic::Context>,
    member: &mut Member,
    peers: &[Peer],
    tune: impl FnOnce(&mut Config),
) {
    let control = oracle.control(key(member.id).public_key());
    let push = control.register(PUSH, quota()).await.expect("push channel");
    let sync = control.register(SYNC, quota()).await.expect("sync channel");
    let (tx, mut rx) = mpsc::channel(1024);
    let mut config = Config::new(member.id, peers.to_vec());
    config.max_message_bytes = 1024 * 1024;
    tune(&mut config);
    let (engine, mailbox) = Engine::new(
        context.child("member").with_attribute("id", member.id),
        config,
        member.log.clone(),
        tx,
    )
    .expect("engine");
    // A new incarnation of the node: its pools are refilled from the log's prefixes before the
    // engine hands over anything newer (the engine was made on the same log state above).
    let handed = Arc::new(Mutex::new(Vec::new()));
    member
        .log
        .for_each_contiguous(|e: Envelope| {
            handed.lock().push((e.body.origin, e.body.seq));
            Ok::<_, cobuild_net::LogError>(())
        })
        .expect("refill");
    member.handed = handed.clone();
    let handle = engine.start(push, sync);
    let app = context
        .child("app")
        .with_attribute("id", member.id)
        .spawn(move |_| async move {
            while let Some(envelope) = rx.recv().await {
                handed
                    .lock()
                    .push((envelope.body.origin, envelope.body.seq));
            }
        });
    member.engine = Some((handle, app, mailbox));
}

fn crash(member: &mut Member) {
    member.refused_before = member.refused();
    if let Some((engine, app, _)) = member.engine.take() {
        engine.abort();
        app.abort();
    }
}

async fn set_links(
    oracle: &Oracle<ed25519::PublicKey, deterministic::Context>,
    keys: &[ed25519::PublicKey],
    cut: &BTreeSet<(usize, usize)>,
    loss: f64,
) {
    for (i, a) in keys.iter().enumerate() {
        for (j, b) in keys.iter().enumerate() {
            if i == j {
                continue;
            }
            let _ = oracle.remove_link(a.clone(), b.clone()).await;
            if !cut.contains(&(i, j)) {
                oracle
                    .add_link(a.clone(), b.clone(), link(loss))
                    .await
                    .expect("link");
            }
        }
    }
}

/// The simulated network of members `ids`, started, with a link between every two of them:
/// their keys, their engine peers and the oracle that changes links.
async fn network(
    context: &deterministic::Context,
    ids: &[MemberId],
    loss: f64,
) -> (
    Vec<ed25519::PublicKey>,
    Vec<Peer>,
    Oracle<ed25519::PublicKey, deterministic::Context>,
) {
    let keys: Vec<_> = ids.iter().map(|id| key(*id).public_key()).collect();
    let peers: Vec<Peer> = ids
        .iter()
        .map(|id| Peer {
            id: *id,
            key: key(*id).public_key(),
        })
        .collect();
    let (network, oracle) = simulated::Network::new_with_peers(
        context.child("network"),
        simulated::Config {
            max_size: 2 * 1024 * 1024,
            max_peers_per_set: NZUsize!(16),
            disconnect_on_block: true,
            tracked_peer_sets: NZUsize!(1),
        },
        keys.clone(),
    )
    .await;
    network.start();
    set_links(&oracle, &keys, &BTreeSet::new(), loss).await;
    (keys, peers, oracle)
}

/// The Byzantine member: it holds a valid key and links, and abuses them.
async fn byzantine(
    context: deterministic::Context,
    oracle: Oracle<ed25519::PublicKey, deterministic::Context>,
    id: MemberId,
    honest: Vec<MemberId>,
    seed: u64,
    until: Duration,
) {
    let me = key(id);
    let control = oracle.control(me.public_key());
    let (mut push_tx, mut push_rx) = control.register(PUSH, quota()).await.expect("push");
    let (mut sync_tx, mut sync_rx) = control.register(SYNC, quota()).await.expect("sync");
    let mut rng = Rng(seed ^ 0xb12);
    let mut seen: Vec<Envelope> = Vec::new();
    let mut own_seq = 0u64;
    let start = context.current();
    let honest_keys: Vec<_> = honest.iter().map(|h| key(*h).public_key()).collect();
    loop {
        if context.current().duration_since(start).unwrap_or_default() > until {
            break;
        }
        // Take in what the honest members send (to replay and alter it).
        while let Some(Ok((_, bytes))) =
            futures_now(push_rx.recv()).or_else(|| futures_now(sync_rx.recv()))
        {
            if let Ok(Message::Envelopes(envelopes)) = Message::decode(bytes.as_ref()) {
                seen.extend(envelopes.into_iter().take(8));
                if seen.len() > 256 {
                    seen.drain(..128);
                }
            }
        }
        let victim = honest[rng.below(honest.len() as u64) as usize];
        let body = |origin, seq, rng: &mut Rng| EnvelopeBody {
            origin,
            seq,
            received_at_ms: 1,
            kind: OrderKind::RawTransaction as u8,
            payload: Bytes::from(rng.next().to_be_bytes().to_vec()),
            auth: Bytes::new(),
            call: 0,
        };
        let message = match rng.below(6) {
            // Forged: another member's origin, our signature.
            0 => {
                let seq = 1 + rng.below(50);
                Message::Envelopes(vec![Envelope::sign(body(victim, seq, &mut rng), &me)])
            }
            // Altered: a real envelope with its order changed.
            1 if !seen.is_empty() => {
                let mut e = seen[rng.below(seen.len() as u64) as usize].clone();
                e.body.payload = Bytes::from(rng.next().to_be_bytes().to_vec());
                Message::Envelopes(vec![e])
            }
            // Replayed: real envelopes again.
            2 if !seen.is_empty() => {
                let n = seen.len() as u64;
                Message::Envelopes(
                    (0..4)
                        .map(|_| seen[rng.below(n) as usize].clone())
                        .collect(),
                )
            }
            // Equivocation: two different envelopes for one place, to different members.
            3 => {
                own_seq += 1;
                let a = Envelope::sign(body(id, own_seq, &mut rng), &me);
                let b = Envelope::sign(body(id, own_seq, &mut rng), &me);
                let half = honest_keys.len() / 2;
                push_tx.send(
                    Recipients::Some(honest_keys[..half].to_vec()),
                    Message::Envelopes(vec![a]).encode(),
                    false,
                );
                Message::Envelopes(vec![b])
            }
            // A status that claims envelopes nobody numbered, and greedy pulls.
            4 => {
                let mut head = seen.first().map(Envelope::signed_head).unwrap_or_else(|| {
                    Envelope::sign(body(victim, 1, &mut rng), &me).signed_head()
                });
                head.head.seq += 1_000_000;
                sync_tx.send(
                    Recipients::All,
                    Message::Pull(Pull {
                        origin: victim,
                        from: 1,
                        to: u64::MAX,
                    })
                    .encode(),
                    false,
                );
                Message::Status(Status {
                    progress: Vec::new(),
                    heads: vec![head],
                })
            }
            // Junk.
            _ => {
                let junk: Vec<u8> = (0..64).map(|_| rng.next() as u8).collect();
                push_tx.send(Recipients::All, junk, false);
                context.sleep(rng.millis(5, 30)).await;
                continue;
            }
        };
        let tx = if matches!(message, Message::Status(_)) {
            &mut sync_tx
        } else {
            &mut push_tx
        };
        tx.send(Recipients::All, message.encode(), false);
        context.sleep(rng.millis(5, 30)).await;
    }
}

/// Polls a future once: its output if it is ready now.
fn futures_now<F: std::future::Future>(future: F) -> Option<F::Output> {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(output) => Some(output),
        std::task::Poll::Pending => None,
    }
}

/// Runs one seed; returns the runtime's audit state (equal for equal seeds) and the number of
/// orders acknowledged.
fn run(seed: u64, scenario: Scenario) -> (String, usize) {
    let config = deterministic::Config::default()
        .with_seed(seed)
        .with_timeout(Some(Duration::from_secs(600)));
    deterministic::Runner::new(config).start(|context| async move {
        let n = scenario.honest;
        let byz_id = n as MemberId;
        let ids: Vec<MemberId> = (0..n as MemberId)
            .chain(scenario.byzantine.then_some(byz_id))
            .collect();
        let (keys, peers, oracle) = network(&context, &ids, scenario.loss).await;
        let mut cut = BTreeSet::new();

        let mut members: Vec<Member> = (0..n as MemberId).map(Member::new).collect();
        for member in &mut members {
            start(&context, &oracle, member, &peers).await;
        }
        if scenario.byzantine {
            let honest: Vec<MemberId> = (0..n as MemberId).collect();
            context.child("byzantine").spawn({
                let oracle = oracle.clone();
                move |context| byzantine(context, oracle, byz_id, honest, seed, scenario.active)
            });
        }

        // Orders arrive and faults happen until `active` has passed.
        let mut rng = Rng(seed);
        let begin = context.current();
        let mut crashed: Option<(usize, std::time::SystemTime)> = None;
        let mut healed_at = begin;
        while context.current().duration_since(begin).unwrap_or_default() < scenario.active {
            context.sleep(rng.millis(2, 20)).await;
            let now = context.current();
            // An order reaches a random member that is up: log first, then the network.
            let at = rng.below(n as u64) as usize;
            // A crashed member takes no orders: its sender got no acknowledgement.
            if crashed.is_none_or(|(c, _)| c != at) {
                let member = &mut members[at];
                let envelope = member
                    .log
                    .append_own(
                        AcceptedOrder::raw_transaction(Bytes::from(
                            rng.next().to_be_bytes().to_vec(),
                        )),
                        1,
                    )
                    .expect("durable append");
                if let Some((_, _, mailbox)) = &member.engine {
                    mailbox.broadcast(envelope.clone()).await;
                }
                member.acked.push(envelope);
            }
            // Faults: at most one crashed member (f = 1 of 4) and one partition at a time.
            if scenario.crashes {
                match crashed {
                    Some((c, until)) if now >= until => {
                        start(&context, &oracle, &mut members[c], &peers).await;
                        crashed = None;
                    }
                    None if rng.below(200) == 0 => {
                        let c = rng.below(n as u64) as usize;
                        crash(&mut members[c]);
                        crashed = Some((c, now + rng.millis(500, 3000)));
                    }
                    _ => {}
                }
            }
            if scenario.partitions {
                if !cut.is_empty() && now >= healed_at {
                    cut.clear();
                    set_links(&oracle, &keys, &cut, scenario.loss).await;
                } else if cut.is_empty() && rng.below(300) == 0 {
                    // Split the honest members in two; the Byzantine one sees both sides.
                    let side: Vec<bool> = (0..keys.len()).map(|_| rng.below(2) == 0).collect();
                    for i in 0..n {
                        for j in 0..n {
                            if i != j && side[i] != side[j] {
                                cut.insert((i, j));
                            }
                        }
                    }
                    set_links(&oracle, &keys, &cut, scenario.loss).await;
                    healed_at = now + rng.millis(500, 3000);
                }
            }
        }

        // Heal: every link clean, every member up.
        cut.clear();
        set_links(&oracle, &keys, &cut, 0.0).await;
        if let Some((c, _)) = crashed.take() {
            start(&context, &oracle, &mut members[c], &peers).await;
        }
        let healed = context.current();
        let acked: usize = members.iter().map(|m| m.acked.len()).sum();
        let expected: BTreeMap<(MemberId, u64), Envelope> = members
            .iter()
            .flat_map(|m| m.acked.iter())
            .map(|e| ((e.body.origin, e.body.seq), e.clone()))
            .collect();
        let complete = |members: &[Member]| {
            members.iter().all(|m| {
                expected
                    .iter()
                    .all(|((origin, seq), _)| m.log.get(*origin, *seq).ok().flatten().is_some())
            })
        };
        // No loss: within bounded time after healing, everyone holds everything.
        while !complete(&members) {
            let waited = context.current().duration_since(healed).unwrap_or_default();
            assert!(
                waited < Duration::from_secs(30),
                "seed {seed}: not every acknowledged envelope reached every member 30 s after \
                 healing; missing: {:?}",
                members
                    .iter()
                    .map(|m| (
                        m.id,
                        expected
                            .keys()
                            .filter(|(o, s)| m.log.get(*o, *s).ok().flatten().is_none())
                            .count()
                    ))
                    .collect::<Vec<_>>()
            );
            context.sleep(Duration::from_millis(50)).await;
        }

        for member in &members {
            for ((origin, seq), envelope) in &expected {
                // No forgery or alteration: what is held is exactly what the origin signed.
                let held = member.log.get(*origin, *seq).expect("read").expect("held");
                assert_eq!(
                    &held, envelope,
                    "seed {seed}: member {} holds an altered ({origin}, {seq})",
                    member.id
                );
            }
            let mut stored = 0usize;
            member
                .log
                .for_each(|e: Envelope| {
                    let origin = e.body.origin;
                    if origin < n as MemberId {
                        stored += 1;
                    }
                    e.verify(&key(origin).public_key()).map_err(|_| {
                        cobuild_net::LogError::Corrupt {
                            origin,
                            seq: e.body.seq,
                            source: cobuild_net::EnvelopeError::BadSignature { origin },
                        }
                    })
                })
                .unwrap_or_else(|e| {
                    panic!(
                        "seed {seed}: member {} holds a forged envelope: {e}",
                        member.id
                    )
                });
            assert_eq!(
                stored,
                expected.len(),
                "seed {seed}: member {} holds honest-origin envelopes nobody acknowledged",
                member.id
            );
        }
        // Stored means delivered: each node's current incarnation was given every other origin's
        // envelopes exactly once and in order (refill, then hand-over), and its own at most once.
        let per_origin = |member: &Member| {
            let mut out: BTreeMap<MemberId, Vec<u64>> = BTreeMap::new();
            for (origin, seq) in member.handed.lock().iter() {
                out.entry(*origin).or_default().push(*seq);
            }
            out
        };
        let counts: BTreeMap<MemberId, u64> =
            expected.keys().fold(BTreeMap::new(), |mut m, (o, _)| {
                *m.entry(*o).or_default() += 1;
                m
            });
        let settled = |member: &Member| {
            let got = per_origin(member);
            counts.iter().all(|(origin, count)| {
                *origin == member.id || got.get(origin).map_or(0, Vec::len) as u64 >= *count
            })
        };
        let complete_at = context.current();
        while !members.iter().all(settled) {
            let waited = context
                .current()
                .duration_since(complete_at)
                .unwrap_or_default();
            assert!(
                waited < Duration::from_secs(30),
                "seed {seed}: an envelope stored in a member's log was not handed to its node \
                 within 30 s"
            );
            context.sleep(Duration::from_millis(10)).await;
        }
        for member in &members {
            let got = per_origin(member);
            for (origin, count) in &counts {
                let seqs = got.get(origin).cloned().unwrap_or_default();
                let in_order: Vec<u64> = (1..=seqs.len() as u64).collect();
                assert_eq!(
                    seqs, in_order,
                    "seed {seed}: member {} was not handed origin {origin}'s envelopes exactly \
                     once and in order",
                    member.id
                );
                if *origin != member.id {
                    assert_eq!(
                        seqs.len() as u64,
                        *count,
                        "seed {seed}: member {}",
                        member.id
                    );
                }
            }
        }
        if scenario.byzantine {
            let refused: u64 = members.iter().map(Member::refused).sum();
            assert!(
                refused > 0,
                "seed {seed}: no member refused a forged envelope: the Byzantine member ran?"
            );
        }
        (context.auditor().state(), acked)
    })
}

/// The seeds to run: `default`, or all of `0..SIM_SEEDS`, or just `SIM_SEED`.
fn seeds(default: std::ops::Range<u64>) -> Vec<u64> {
    if let Ok(seed) = std::env::var("SIM_SEED") {
        return vec![seed.parse().expect("SIM_SEED is a number")];
    }
    match std::env::var("SIM_SEEDS") {
        Ok(n) => (0..n.parse().expect("SIM_SEEDS is a number")).collect(),
        Err(_) => default.collect(),
    }
}

/// Runs `test` for every seed of [`seeds`], spread over the machine's cores (each run is a
/// deterministic runtime of its own, so runs do not interfere); re-raises the first failure.
fn for_each_seed(default: std::ops::Range<u64>, test: impl Fn(u64) + Sync) {
    let seeds = seeds(default);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(seed) = seeds.get(i) else { return };
                        test(*seed);
                    }
                })
            })
            .collect();
        for handle in handles {
            if let Err(panic) = handle.join() {
                // Stop handing out seeds, then fail with the seed's own message.
                next.store(seeds.len(), std::sync::atomic::Ordering::Relaxed);
                std::panic::resume_unwind(panic);
            }
        }
    });
}

const ALL_FAULTS: Scenario = Scenario {
    honest: 4,
    byzantine: true,
    loss: 0.2,
    partitions: true,
    crashes: true,
    active: Duration::from_secs(20),
};

#[test]
fn test_no_loss_no_forgery_under_loss_partitions_crashes_and_a_byzantine_member() {
    for_each_seed(0..200, |seed| {
        let (_, acked) = run(seed, ALL_FAULTS);
        assert!(
            acked > 500,
            "seed {seed}: only {acked} orders: the driver ran?"
        );
    });
}

#[test]
fn test_lossy_links_without_crashes_deliver_each_order_exactly_once() {
    let scenario = Scenario {
        crashes: false,
        partitions: false,
        byzantine: false,
        active: Duration::from_secs(10),
        ..ALL_FAULTS
    };
    // Seeds 0 and 137 once left an envelope in a member's log that its node was never handed.
    for_each_seed(0..200, |seed| {
        run(seed, scenario);
    });
}

#[test]
fn test_a_seed_replays_exactly() {
    let seed = 42;
    let short = Scenario {
        active: Duration::from_secs(5),
        ..ALL_FAULTS
    };
    let (first, a) = run(seed, short);
    let (second, b) = run(seed, short);
    assert_eq!(
        (first, a),
        (second, b),
        "seed {seed} did not replay exactly"
    );
    let (other, _) = run(seed + 1, short);
    assert_ne!(
        run(seed, short).0,
        other,
        "different seeds gave the same run: the seed is not used"
    );
}

/// What a flooding member sends, 200 envelopes every 10 ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flood {
    /// Valid envelopes of its own origin, 20 times the origin rate.
    Own,
    /// Envelopes claiming the honest origins (their next places), signed with its own key.
    Forged,
}

/// The origin rate of the flood runs: the flooder sends 20 times as much.
const FLOOD_RATE: u32 = 2_000;

/// How long a flood run lasts: `rounds` batches of 200 envelopes, 10 ms apart, while
/// `honest` honest orders go out 40 ms apart.
#[derive(Debug, Clone, Copy)]
struct FloodLength {
    rounds: u64,
    honest: u64,
}

impl FloodLength {
    /// The first few seeds run a 2 s flood (40,000 envelopes); the rest a 0.5 s one, so that
    /// hundreds of seeds fit in CI.
    const fn for_seed(seed: u64) -> Self {
        if seed < 4 {
            Self {
                rounds: 200,
                honest: 40,
            }
        } else {
            Self {
                rounds: 50,
                honest: 12,
            }
        }
    }

    /// Envelopes the flooder offers.
    const fn offered(self) -> u64 {
        self.rounds * 200
    }

    /// The most of them a member may take at its origin rate: a burst, then the rate for the
    /// flood's duration (and a second's slack for the last pulls).
    fn takeable(self) -> u64 {
        u64::from(FLOOD_RATE) * (2 + self.rounds / 100)
    }
}

/// Three honest members with origin rate [`FLOOD_RATE`] and a flooder: returns the members (still
/// running) and the worst time an honest order took to reach every honest member.
fn run_flood(
    flood: Flood,
    seed: u64,
    length: FloodLength,
) -> (
    Vec<(MemberId, cobuild_net::engine::Counters, u64)>,
    Duration,
) {
    let config = deterministic::Config::default()
        .with_seed(seed)
        .with_timeout(Some(Duration::from_secs(600)));
    deterministic::Runner::new(config).start(|context| async move {
        let honest = 3;
        let flooder: MemberId = honest;
        let ids: Vec<MemberId> = (0..=honest).collect();
        let (_, peers, oracle) = network(&context, &ids, 0.0).await;
        let mut members: Vec<Member> = (0..honest).map(Member::new).collect();
        for member in &mut members {
            start_with(&context, &oracle, member, &peers, |c| {
                c.max_origin_rate = FLOOD_RATE;
                // Twice an origin's rate: the honest peers send little, a short forged flood
                // still runs past it.
                c.max_peer_rate = Some(2 * FLOOD_RATE);
            })
            .await;
        }
        let flood_task = context.child("flooder").spawn({
            let oracle = oracle.clone();
            move |context| async move {
                let me = key(flooder);
                let control = oracle.control(me.public_key());
                let (mut push, _rx) = control.register(PUSH, quota()).await.expect("push");
                let (_sync, _srx) = control.register(SYNC, quota()).await.expect("sync");
                let mut seq = 0u64;
                for round in 0..length.rounds {
                    let batch: Vec<Envelope> = (0..200u64)
                        .map(|i| {
                            seq += 1;
                            let (origin, place) = match flood {
                                Flood::Own => (flooder, seq),
                                // The honest origins' next few places, where their real
                                // envelopes are about to go.
                                Flood::Forged => {
                                    ((i % u64::from(honest)) as MemberId, 1 + round / 5 + i % 3)
                                }
                            };
                            Envelope::sign(
                                EnvelopeBody {
                                    origin,
                                    seq: place,
                                    received_at_ms: 1,
                                    kind: OrderKind::RawTransaction as u8,
                                    payload: Bytes::from(seq.to_be_bytes().to_vec()),
                                    auth: Bytes::new(),
                                    call: 0,
                                },
                                &me,
                            )
                        })
                        .collect();
                    push.send(Recipients::All, Message::Envelopes(batch).encode(), false);
                    context.sleep(Duration::from_millis(10)).await;
                }
            }
        });
        // Honest orders during the flood.
        let mut worst = Duration::ZERO;
        for i in 0..length.honest {
            let at = (i % u64::from(honest)) as usize;
            let envelope = members[at]
                .log
                .append_own(
                    AcceptedOrder::raw_transaction(Bytes::from(i.to_be_bytes().to_vec())),
                    1,
                )
                .expect("append");
            if let Some((_, _, mailbox)) = &members[at].engine {
                mailbox.broadcast(envelope.clone()).await;
            }
            let sent = context.current();
            loop {
                let everywhere = members.iter().all(|m| {
                    m.log
                        .get(envelope.body.origin, envelope.body.seq)
                        .ok()
                        .flatten()
                        .is_some()
                });
                if everywhere {
                    break;
                }
                context.sleep(Duration::from_millis(1)).await;
            }
            worst = worst.max(context.current().duration_since(sent).unwrap_or_default());
            context.sleep(Duration::from_millis(40)).await;
        }
        flood_task.await.expect("flood ran");
        let seen = members
            .iter()
            .map(|m| {
                let counters = m.engine.as_ref().expect("running").2.counters();
                (m.id, counters, m.log.contiguous(flooder).expect("read"))
            })
            .collect();
        (seen, worst)
    })
}

#[test]
fn test_a_flooding_member_is_slowed_without_starving_the_others() {
    for_each_seed(0..200, |seed| {
        let length = FloodLength::for_seed(seed);
        let (members, worst) = run_flood(Flood::Own, seed, length);
        assert!(
            worst < Duration::from_millis(300),
            "seed {seed}: an honest order took {worst:?} to reach every member during the flood"
        );
        for (id, counters, held) in members {
            assert!(
                counters.throttled > 0,
                "seed {seed}: member {id} never throttled"
            );
            assert!(
                held < length.offered() && held <= length.takeable(),
                "seed {seed}: member {id} took {held} of the flooder's envelopes"
            );
        }
    });
}

#[test]
fn test_forgeries_in_honest_names_do_not_slow_the_honest_origins() {
    // 20,000 forged envelopes a second in the honest origins' names, each origin's rate 2,000/s:
    // charged to the origins, they would leave every honest envelope waiting for a pull.
    for_each_seed(0..200, |seed| {
        let (members, worst) = run_flood(Flood::Forged, seed, FloodLength::for_seed(seed));
        let tick = Config::new(0, Vec::new()).status_interval;
        assert!(
            worst < tick,
            "seed {seed}: an honest order took {worst:?} (more than a status tick, {tick:?}) to \
             reach every member while a member forged envelopes in the honest origins' names"
        );
        for (id, counters, _) in members {
            assert!(
                counters.bad_signatures > 0,
                "seed {seed}: member {id} checked no forgery"
            );
            assert!(
                counters.throttled_peers > 0,
                "seed {seed}: member {id} never throttled the forging peer"
            );
            assert_eq!(
                counters.throttled, 0,
                "seed {seed}: member {id} throttled an honest origin"
            );
        }
    });
}

/// Appends an order at `member` and broadcasts it, as its RPC would.
async fn accept(member: &mut Member, n: u64) -> Envelope {
    let envelope = member
        .log
        .append_own(
            AcceptedOrder::raw_transaction(Bytes::from(n.to_be_bytes().to_vec())),
            1,
        )
        .expect("append");
    if let Some((_, _, mailbox)) = &member.engine {
        mailbox.broadcast(envelope.clone()).await;
    }
    member.acked.push(envelope.clone());
    envelope
}

/// Waits (virtual time) until every member holds (origin, seq).
async fn everywhere(
    context: &deterministic::Context,
    members: &[Member],
    origin: MemberId,
    seq: u64,
) {
    for _ in 0..10_000 {
        if members
            .iter()
            .all(|m| m.log.get(origin, seq).ok().flatten().is_some())
        {
            return;
        }
        context.sleep(Duration::from_millis(5)).await;
    }
    panic!("({origin}, {seq}) did not reach every member");
}

#[test]
fn test_a_member_that_lost_its_log_continues_after_what_the_others_hold() {
    for_each_seed(0..20, |seed| {
        let config = deterministic::Config::default()
            .with_seed(seed)
            .with_timeout(Some(Duration::from_secs(600)));
        deterministic::Runner::new(config).start(|context| async move {
            let ids: Vec<MemberId> = (0..4).collect();
            let (_, peers, oracle) = network(&context, &ids, 0.0).await;
            let mut members: Vec<Member> = ids.iter().map(|id| Member::new(*id)).collect();
            for member in &mut members {
                start(&context, &oracle, member, &peers).await;
            }
            for member in &members {
                let ready = member.engine.as_ref().expect("running").2.recovered().await;
                assert!(
                    matches!(ready, Recovery::Ready { next_seq: 1, .. }),
                    "seed {seed}: {ready:?}"
                );
            }
            for n in 0..30 {
                accept(&mut members[1], n).await;
            }
            everywhere(&context, &members, 1, 30).await;

            // Member 1's disk is replaced: its log is empty when it starts again.
            crash(&mut members[1]);
            members[1].log = Arc::new(Log::in_memory(1, key(1)).expect("log"));
            start(&context, &oracle, &mut members[1], &peers).await;
            let mailbox = members[1].engine.as_ref().expect("running").2.clone();
            let ready = mailbox.recovered().await;
            assert!(
                matches!(ready, Recovery::Ready { next_seq: 31, .. }),
                "seed {seed}: it must number after what the others hold: {ready:?}"
            );
            assert_eq!(
                members[1].log.contiguous(1).expect("read"),
                30,
                "its orders are back"
            );
            // The engine refreshes the counters it shows once a status tick.
            context
                .sleep(2 * Config::new(0, Vec::new()).status_interval)
                .await;
            assert_eq!(mailbox.counters().recovered, 30);
            let own: Vec<u64> = members[1]
                .handed
                .lock()
                .iter()
                .filter(|(o, _)| *o == 1)
                .map(|(_, s)| *s)
                .collect();
            assert_eq!(
                own,
                (1..=30).collect::<Vec<_>>(),
                "and back in its node, in order"
            );

            // Its new orders replicate to everyone: nobody sees an equivocation.
            for n in 30..40 {
                let envelope = accept(&mut members[1], n).await;
                assert_eq!(envelope.body.seq, n + 1);
            }
            everywhere(&context, &members, 1, 40).await;
            for member in &members {
                let counters = member.engine.as_ref().expect("running").2.counters();
                assert_eq!(
                    counters.equivocations, 0,
                    "seed {seed}: member {}",
                    member.id
                );
            }
        });
    });
}

#[test]
fn test_a_member_that_hears_no_quorum_does_not_start() {
    let config = deterministic::Config::default()
        .with_seed(3)
        .with_timeout(Some(Duration::from_secs(600)));
    deterministic::Runner::new(config).start(|context| async move {
        let ids: Vec<MemberId> = (0..4).collect();
        let (keys, peers, oracle) = network(&context, &ids, 0.0).await;
        // Member 0 is cut off from everyone.
        let cut: BTreeSet<(usize, usize)> = (1..4).flat_map(|i| [(0, i), (i, 0)]).collect();
        set_links(&oracle, &keys, &cut, 0.0).await;
        let mut lonely = Member::new(0);
        start_with(&context, &oracle, &mut lonely, &peers, |c| {
            c.recovery_timeout = Duration::from_secs(2);
        })
        .await;
        let mailbox = lonely.engine.as_ref().expect("running").2.clone();
        let began = context.current();
        let ended = mailbox.recovered().await;
        assert_eq!(
            ended,
            Recovery::Failed {
                heard: Vec::new(),
                needed: 2
            }
        );
        let waited = context.current().duration_since(began).unwrap_or_default();
        assert!(waited >= Duration::from_secs(2), "it waited {waited:?}");
    });
}

#[test]
fn test_a_member_that_cannot_fetch_back_what_was_proved_does_not_start() {
    let config = deterministic::Config::default()
        .with_seed(11)
        .with_timeout(Some(Duration::from_secs(600)));
    deterministic::Runner::new(config).start(|context| async move {
        let ids: Vec<MemberId> = (0..4).collect();
        let (_, peers, oracle) = network(&context, &ids, 0.0).await;
        let mut members: Vec<Member> = ids.iter().map(|id| Member::new(*id)).collect();
        // Member 1 signed 30 orders on a disk it has since lost; member 2 kept only the last one,
        // so its status proves seq 30 but nobody can hand back 1..29.
        let lost = Log::in_memory(1, key(1)).expect("log");
        for n in 0..30u64 {
            lost.append_own(
                AcceptedOrder::raw_transaction(Bytes::from(n.to_be_bytes().to_vec())),
                1,
            )
            .expect("append");
        }
        let last = lost.get(1, 30).expect("read").expect("stored");
        members[2].log.insert(&last).expect("kept by member 2");
        for member in members.iter_mut().filter(|m| m.id != 1) {
            start(&context, &oracle, member, &peers).await;
        }
        start_with(&context, &oracle, &mut members[1], &peers, |c| {
            c.recovery_timeout = Duration::from_secs(2);
        })
        .await;
        let mailbox = members[1].engine.as_ref().expect("running").2.clone();
        let began = context.current();
        let ended = mailbox.recovered().await;
        assert_eq!(
            ended,
            Recovery::Behind {
                holds: 0,
                proven: 30
            },
            "it must not number its next order 1 while seq 30 is known"
        );
        let waited = context.current().duration_since(began).unwrap_or_default();
        assert!(
            waited >= Duration::from_secs(6),
            "three timeouts: {waited:?}"
        );
    });
}

#[test]
fn test_an_order_of_an_unknown_kind_does_not_block_its_origin() {
    let config = deterministic::Config::default()
        .with_seed(5)
        .with_timeout(Some(Duration::from_secs(600)));
    deterministic::Runner::new(config).start(|context| async move {
        let ids: Vec<MemberId> = vec![0, 1];
        let (_, peers, oracle) = network(&context, &ids, 0.0).await;
        let mut members: Vec<Member> = ids.iter().map(|id| Member::new(*id)).collect();
        for member in &mut members {
            start(&context, &oracle, member, &peers).await;
        }
        // Member 0 runs a newer version: its first order is of a kind member 1 does not know.
        let newer = Envelope::sign(
            EnvelopeBody {
                origin: 0,
                seq: 1,
                received_at_ms: 1,
                kind: 42,
                payload: Bytes::from_static(b"from the future"),
                auth: Bytes::new(),
                call: 0,
            },
            &key(0),
        );
        members[0].log.insert(&newer).expect("stored by its origin");
        let mailbox = members[0].engine.as_ref().expect("running").2.clone();
        mailbox.broadcast(newer).await;
        let known = accept(&mut members[0], 7).await;
        assert_eq!(known.body.seq, 2);
        everywhere(&context, &members, 0, 2).await;
        for _ in 0..1_000 {
            if members[1].handed.lock().len() == 2 {
                break;
            }
            context.sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            *members[1].handed.lock(),
            vec![(0, 1), (0, 2)],
            "both handed over, in order: the node's intake decides about the unknown kind"
        );
    });
}
