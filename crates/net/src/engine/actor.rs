//! The replication actor: pushes this member's envelopes, takes in the others', and pulls what
//! is missing.
//!
//! One task, one loop over four sources: commands from the node (envelopes to send, member
//! changes), the push channel (new envelopes, forwarded once on first valid sight), the sync
//! channel (statuses, pulls and their answers) and a ticker. Every tick it announces what it
//! holds (contiguous prefix and the signed head of the highest envelope per origin) and pulls,
//! per origin, the first missing range from a member that claims to hold it. Nothing waits for
//! an acknowledgement: a lost push, pull or answer is simply asked for again on a later tick, so
//! an envelope any correct member holds reaches every correct member once links heal.
//!
//! The node is handed other origins' envelopes from the log, in each origin's sequence order,
//! as that origin's contiguous prefix grows: whatever is stored is handed over exactly once,
//! and a cancel never overtakes the order it cancels. At start the node has refilled its pools
//! up to each prefix, so handing starts there.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use commonware_cryptography::ed25519;
use commonware_p2p::{Receiver, Recipients, Sender};
use commonware_runtime::{Clock, Handle, Spawner};
use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};

use super::{
    Config, Mailbox, Peer, Recovery,
    ingress::{Command, Counters, OriginProgress, PeerProgress, View},
};
use crate::{
    Envelope, Held, Insert, Log, LogError, MemberId, SignedHead,
    envelope::verify_all,
    wire::{Message, Progress, Pull, Status},
};

/// The replication engine of one member.
pub struct Engine<E> {
    context: E,
    config: Config,
    log: Arc<Log>,
    deliver: mpsc::Sender<Envelope>,
    commands: mpsc::Receiver<Command>,
    view: Arc<Mutex<View>>,
    members: BTreeMap<MemberId, ed25519::PublicKey>,
    by_key: HashMap<ed25519::PublicKey, MemberId>,
    origins: BTreeMap<MemberId, OriginProgress>,
    /// Per origin, the signed head of the highest envelope held: what the status announces,
    /// kept here so a tick does not read and decode it from the log.
    heads: BTreeMap<MemberId, SignedHead>,
    peers: BTreeMap<MemberId, PeerProgress>,
    counters: Counters,
    tick: u64,
    /// When the log's copies were last made durable.
    copies_synced: SystemTime,
    /// Per origin: tokens left and when they were last refilled (spent on valid envelopes).
    budgets: HashMap<MemberId, Bucket>,
    /// Per sending peer: tokens left and when they were last refilled (spent before checks).
    peer_budgets: HashMap<MemberId, Bucket>,
    /// Peers that sent a bad signature: their envelopes are checked one by one from then on. A
    /// batch that fails is checked again one by one, so a peer mixing forgeries into every
    /// message would otherwise cost more per envelope than it is charged; honest peers only
    /// forward envelopes they verified, so they never land here.
    suspects: HashSet<MemberId>,
    /// Per origin, the highest seq handed to the node: it holds every envelope up to it.
    handed: BTreeMap<MemberId, u64>,
    /// Start-up recovery: the others heard from, and when it began (`None` once it ended).
    recovering: Option<(BTreeSet<MemberId>, SystemTime)>,
    recovery: watch::Sender<Recovery>,
}

/// A token bucket: tokens left and when it was last refilled.
type Bucket = (f64, SystemTime);

impl<E> std::fmt::Debug for Engine<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("me", &self.config.me)
            .field("members", &self.members.len())
            .finish_non_exhaustive()
    }
}

impl<E: Clock + Spawner> Engine<E> {
    /// An engine for the member whose log is `log`. Envelopes of other members go to `deliver`
    /// in each origin's order once their origin's contiguous prefix reaches them, starting after
    /// the prefix the log holds now (the node refilled its pools up to it before starting the
    /// engine; see [`Log::for_each_contiguous`]). Own envelopes go there only when they come back
    /// from the others after a lost log (the node has the rest already).
    pub fn new(
        context: E,
        config: Config,
        log: Arc<Log>,
        deliver: mpsc::Sender<Envelope>,
    ) -> Result<(Self, Mailbox), LogError> {
        let (tx, commands) = mpsc::channel(config.mailbox_size.max(1));
        let view = Arc::new(Mutex::new(View::default()));
        let (recovery, recovery_rx) = watch::channel(Recovery::Waiting {
            heard: Vec::new(),
            others: config.members.iter().filter(|p| p.id != config.me).count(),
        });
        let mut origins = BTreeMap::new();
        let mut heads = BTreeMap::new();
        let mut handed = BTreeMap::new();
        for summary in log.summary()? {
            handed.insert(summary.origin, summary.contiguous);
            origins.insert(
                summary.origin,
                OriginProgress {
                    contiguous: summary.contiguous,
                    known_high: summary.high.as_ref().map_or(0, |h| h.head.seq),
                },
            );
            if let Some(high) = summary.high {
                heads.insert(summary.origin, high);
            }
        }
        let mut engine = Self {
            log,
            deliver,
            commands,
            view: view.clone(),
            members: BTreeMap::new(),
            by_key: HashMap::new(),
            origins,
            heads,
            peers: BTreeMap::new(),
            counters: Counters::default(),
            tick: 0,
            copies_synced: context.current(),
            budgets: HashMap::new(),
            peer_budgets: HashMap::new(),
            suspects: HashSet::new(),
            handed,
            recovering: Some((BTreeSet::new(), context.current())),
            recovery,
            context,
            config,
        };
        engine.set_members(engine.config.members.clone());
        engine.check_recovery();
        engine.publish();
        Ok((engine, Mailbox::new(tx, view, recovery_rx)))
    }

    /// Runs the engine on the push and sync channels until the network or the node goes away.
    pub fn start<S, R>(self, push: (S, R), sync: (S, R)) -> Handle<()>
    where
        S: Sender<PublicKey = ed25519::PublicKey>,
        R: Receiver<PublicKey = ed25519::PublicKey>,
    {
        let context = self.context.child("replication");
        context.spawn(move |context| {
            let mut engine = self;
            engine.context = context;
            engine.run(push, sync)
        })
    }

    async fn run<S, R>(mut self, push: (S, R), sync: (S, R))
    where
        S: Sender<PublicKey = ed25519::PublicKey>,
        R: Receiver<PublicKey = ed25519::PublicKey>,
    {
        let (mut push_tx, mut push_rx) = push;
        let (mut sync_tx, mut sync_rx) = sync;
        let mut next_tick = self.context.current();
        loop {
            tokio::select! {
                biased;
                command = self.commands.recv() => match command {
                    Some(Command::Broadcast(envelope)) => {
                        self.broadcast(&mut push_tx, envelope);
                    }
                    Some(Command::Members { members, applied }) => {
                        self.set_members(members);
                        self.publish();
                        let _ = applied.send(());
                    }
                    None => return,
                },
                received = push_rx.recv() => match received {
                    Ok((peer, bytes)) => {
                        self.on_message(&peer, bytes.as_ref(), true, &mut push_tx, &mut sync_tx).await;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "net.push.closed");
                        return;
                    }
                },
                received = sync_rx.recv() => match received {
                    Ok((peer, bytes)) => {
                        self.on_message(&peer, bytes.as_ref(), false, &mut push_tx, &mut sync_tx).await;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "net.sync.closed");
                        return;
                    }
                },
                () = self.context.sleep_until(next_tick) => {
                    self.on_tick(&mut sync_tx);
                    self.sync_copies();
                    self.check_recovery();
                    // The node's view is refreshed once a tick, not per message: copying the
                    // maps is off the receive path, and status readers need no finer grain.
                    self.publish();
                    next_tick = self.context.current() + self.config.status_interval;
                }
            }
        }
    }

    fn set_members(&mut self, members: Vec<Peer>) {
        self.members = members.iter().map(|p| (p.id, p.key.clone())).collect();
        self.by_key = members.into_iter().map(|p| (p.key, p.id)).collect();
        self.peers.retain(|id, _| self.members.contains_key(id));
        // A member that leaves and comes back (a new key, a new operator) starts trusted again.
        self.suspects.retain(|id| self.members.contains_key(id));
    }

    /// Sends this member's new envelope (and any queued behind it) to every member.
    fn broadcast<S: Sender<PublicKey = ed25519::PublicKey>>(
        &mut self,
        sender: &mut S,
        first: Envelope,
    ) {
        let mut batch = vec![first];
        let mut bytes = Message::envelope_size(&batch[0]);
        while bytes < self.config.max_message_bytes / 2 {
            match self.commands.try_recv() {
                Ok(Command::Broadcast(envelope)) => {
                    bytes += Message::envelope_size(&envelope);
                    batch.push(envelope);
                }
                Ok(Command::Members { members, applied }) => {
                    self.set_members(members);
                    self.publish();
                    let _ = applied.send(());
                }
                Err(_) => break,
            }
        }
        for envelope in &batch {
            // Own envelopes are numbered without gaps by the log, and the node has them.
            let seq = envelope.body.seq;
            let progress = self.origins.entry(self.config.me).or_default();
            progress.contiguous = progress.contiguous.max(seq);
            let handed = self.handed.entry(self.config.me).or_default();
            *handed = (*handed).max(seq);
            self.hold(envelope);
        }
        self.send_envelopes(sender, Recipients::All, batch);
    }

    /// Sends envelopes in messages no larger than the limit.
    fn send_envelopes<S: Sender<PublicKey = ed25519::PublicKey>>(
        &self,
        sender: &mut S,
        recipients: Recipients<ed25519::PublicKey>,
        envelopes: Vec<Envelope>,
    ) {
        let limit = self.config.max_message_bytes;
        let mut batch = Vec::new();
        let mut bytes = 0;
        for envelope in envelopes {
            let size = Message::envelope_size(&envelope);
            if !batch.is_empty() && bytes + size > limit {
                let full = std::mem::take(&mut batch);
                sender.send(recipients.clone(), Message::Envelopes(full).encode(), false);
                bytes = 0;
            }
            bytes += size;
            batch.push(envelope);
        }
        if !batch.is_empty() {
            sender.send(recipients, Message::Envelopes(batch).encode(), false);
        }
    }

    async fn on_message<S: Sender<PublicKey = ed25519::PublicKey>>(
        &mut self,
        peer: &ed25519::PublicKey,
        bytes: &[u8],
        pushed: bool,
        push_tx: &mut S,
        sync_tx: &mut S,
    ) {
        // Links only come up between members, but a member removed a moment ago may still talk.
        let Some(&peer_id) = self.by_key.get(peer) else {
            return;
        };
        let now = millis(self.context.current());
        self.peers.entry(peer_id).or_default().last_heard_ms = now;
        let message = match Message::decode(bytes) {
            Ok(message) => message,
            Err(e) => {
                self.counters.malformed += 1;
                tracing::debug!(peer = peer_id, error = %e, "net.message.malformed");
                return;
            }
        };
        match message {
            Message::Envelopes(envelopes) => {
                let fresh = self.take_in(peer_id, envelopes);
                if fresh.is_empty() {
                    return;
                }
                if pushed && self.config.forward {
                    let others: Vec<_> = self
                        .members
                        .iter()
                        .filter(|(id, _)| **id != self.config.me && **id != peer_id)
                        .map(|(_, key)| key.clone())
                        .collect();
                    if !others.is_empty() {
                        self.send_envelopes(push_tx, Recipients::Some(others), fresh.clone());
                    }
                }
                let origins: BTreeSet<MemberId> = fresh.iter().map(|e| e.body.origin).collect();
                for origin in origins {
                    self.hand_over(origin).await;
                }
            }
            Message::Status(status) => {
                self.on_status(peer_id, status);
                self.check_recovery();
            }
            Message::Pull(pull) => self.on_pull(peer.clone(), pull, sync_tx),
        }
    }

    /// Checks and stores envelopes `peer` sent; returns the ones stored for the first time.
    ///
    /// Cheapest checks first: shape and membership, then one log read that recognises copies
    /// already held (forwards make most arrivals copies) without their signatures, then the
    /// peer's budget, the signatures (one batch check for all of them), and only for a valid
    /// envelope its origin's budget, then one write for all that are new. So forgeries in an
    /// honest origin's name cost the peer that sent them, never the origin. Own envelopes are taken only when absent: they are ones
    /// this member lost (a wiped or restored log) and is fetching back.
    fn take_in(&mut self, peer: MemberId, envelopes: Vec<Envelope>) -> Vec<Envelope> {
        let mut candidates = Vec::with_capacity(envelopes.len());
        for envelope in envelopes {
            let origin = envelope.body.origin;
            if envelope.check().is_err() {
                self.counters.malformed += 1;
            } else if !self.members.contains_key(&origin) {
                self.counters.unknown_origins += 1;
            } else {
                candidates.push(envelope);
            }
        }
        let held = match self.log.held(&candidates) {
            Ok(held) => held,
            Err(e) => {
                tracing::error!(error = %e, "net.log.read_failed");
                return Vec::new();
            }
        };
        // The peer pays for every signature check, before any is made.
        let mut to_check = Vec::with_capacity(candidates.len());
        for (envelope, held) in candidates.into_iter().zip(held) {
            if held == Held::Same {
                self.counters.duplicates += 1;
                continue;
            }
            let peer_rate = self.peer_rate();
            if !spend(
                &mut self.peer_budgets,
                peer,
                peer_rate,
                self.context.current(),
            ) {
                self.counters.throttled_peers += 1;
                continue;
            }
            // Unknown origins were dropped above.
            if let Some(key) = self.members.get(&envelope.body.origin) {
                to_check.push((envelope, held, key));
            }
        }
        let valid = verify_all(
            &to_check
                .iter()
                .map(|(envelope, _, key)| (envelope, *key))
                .collect::<Vec<_>>(),
            !self.suspects.contains(&peer),
        );
        let mut verified = Vec::with_capacity(to_check.len());
        // One warning per message, not per envelope: a peer sending forgeries must not be able
        // to flood the log (and rotate the history out of it); the counters have the totals.
        let mut bad: Option<(MemberId, u64, usize)> = None;
        for ((envelope, held, _), valid) in to_check.into_iter().zip(valid) {
            let (origin, seq) = (envelope.body.origin, envelope.body.seq);
            if !valid {
                self.counters.bad_signatures += 1;
                bad.get_or_insert((origin, seq, 0)).2 += 1;
                continue;
            }
            if held == Held::Other {
                self.counters.equivocations += 1;
                tracing::warn!(origin, seq, "net.envelope.equivocation");
                continue;
            }
            let origin_rate = self.config.max_origin_rate;
            if !spend(
                &mut self.budgets,
                origin,
                origin_rate,
                self.context.current(),
            ) {
                self.counters.throttled += 1;
                continue;
            }
            verified.push(envelope);
        }
        if let Some((origin, seq, count)) = bad {
            self.suspects.insert(peer);
            tracing::warn!(peer, origin, seq, count, "net.envelope.bad_signature");
        }
        if verified.is_empty() {
            return Vec::new();
        }
        let results = match self.log.insert_batch(&verified) {
            Ok(results) => results,
            Err(e) => {
                tracing::error!(error = %e, "net.log.insert_failed");
                return Vec::new();
            }
        };
        let mut fresh = Vec::new();
        for (envelope, result) in verified.into_iter().zip(results) {
            match result {
                Insert::New { contiguous } => {
                    self.hold(&envelope);
                    let origin = envelope.body.origin;
                    self.origins.entry(origin).or_default().contiguous = contiguous;
                    self.counters.stored += 1;
                    if origin == self.config.me {
                        self.counters.recovered += 1;
                    }
                    fresh.push(envelope);
                }
                // The same envelope twice in one message.
                Insert::Duplicate => self.counters.duplicates += 1,
                Insert::Equivocation { .. } => self.counters.equivocations += 1,
            }
        }
        fresh
    }

    /// Records that `envelope` is in the log: the origin's known high and, if it is the
    /// highest held, the head the status announces.
    fn hold(&mut self, envelope: &Envelope) {
        let (origin, seq) = (envelope.body.origin, envelope.body.seq);
        let progress = self.origins.entry(origin).or_default();
        progress.known_high = progress.known_high.max(seq);
        if self.heads.get(&origin).is_none_or(|h| h.head.seq < seq) {
            self.heads.insert(origin, envelope.signed_head());
        }
    }

    /// Hands the node `origin`'s envelopes from the one after the last handed up to the
    /// origin's contiguous prefix, read from the log, in order.
    ///
    /// Waiting on the node is the back-pressure: a slow node slows this member's intake from the
    /// network, and what the network drops meanwhile is pulled again later.
    async fn hand_over(&mut self, origin: MemberId) {
        let contiguous = self.origins.get(&origin).map_or(0, |p| p.contiguous);
        loop {
            let from = self.handed.get(&origin).copied().unwrap_or(0) + 1;
            if from > contiguous {
                return;
            }
            let count = (contiguous - from + 1).min(self.config.max_pull) as usize;
            let envelopes = match self.log.range(origin, from, count) {
                Ok(envelopes) => envelopes,
                Err(e) => {
                    // Retried on the next envelope of this origin, or at the next start.
                    tracing::error!(origin, from, error = %e, "net.log.hand_over_failed");
                    return;
                }
            };
            for envelope in envelopes {
                let seq = envelope.body.seq;
                if seq != self.handed.get(&origin).copied().unwrap_or(0) + 1 || seq > contiguous {
                    tracing::error!(origin, seq, "net.log.hand_over_gap");
                    return;
                }
                if self.deliver.send(envelope).await.is_err() {
                    tracing::debug!("net.deliver.closed");
                    return;
                }
                self.handed.insert(origin, seq);
                self.counters.delivered += 1;
            }
        }
    }

    /// The budget of one sending peer per second.
    fn peer_rate(&self) -> u32 {
        self.config.max_peer_rate.unwrap_or_else(|| {
            let members = u32::try_from(self.members.len()).unwrap_or(u32::MAX);
            self.config.max_origin_rate.saturating_mul(members.max(1))
        })
    }

    /// Ends the start-up recovery when it can: every other member heard (or, after the
    /// timeout, a quorum) and every own envelope they proved fetched back.
    fn check_recovery(&mut self) {
        let Some((heard, began)) = &self.recovering else {
            return;
        };
        let me = self.config.me;
        let others: Vec<MemberId> = self
            .members
            .keys()
            .copied()
            .filter(|id| *id != me)
            .collect();
        let heard_now: Vec<MemberId> = others
            .iter()
            .copied()
            .filter(|id| heard.contains(id))
            .collect();
        // f of n members may be faulty: a quorum of n - f (this one included) intersects every
        // other quorum in an honest member, which holds what any quorum acknowledged.
        let n = others.len() + 1;
        let needed = (n - (n - 1) / 3).saturating_sub(1);
        let timed_out = self
            .context
            .current()
            .duration_since(*began)
            .unwrap_or_default()
            >= self.config.recovery_timeout;
        let own = self.origins.get(&me).copied().unwrap_or_default();
        let caught_up = own.contiguous >= own.known_high;
        let enough = heard_now.len() == others.len() || (timed_out && heard_now.len() >= needed);
        let given_up = self
            .context
            .current()
            .duration_since(*began)
            .unwrap_or_default()
            >= self.config.recovery_timeout * 3;
        let state = if enough && caught_up {
            tracing::info!(
                next_seq = own.contiguous + 1,
                heard = heard_now.len(),
                of = others.len(),
                "net.recovery.ready"
            );
            self.recovering = None;
            Recovery::Ready {
                next_seq: own.contiguous + 1,
                heard: heard_now,
            }
        } else if enough && given_up {
            tracing::error!(
                holds = own.contiguous,
                proven = own.known_high,
                "net.recovery.behind"
            );
            self.recovering = None;
            Recovery::Behind {
                holds: own.contiguous,
                proven: own.known_high,
            }
        } else if timed_out && heard_now.len() < needed {
            tracing::error!(
                heard = heard_now.len(),
                needed,
                of = others.len(),
                "net.recovery.failed"
            );
            self.recovering = None;
            Recovery::Failed {
                heard: heard_now,
                needed,
            }
        } else {
            Recovery::Waiting {
                heard: heard_now,
                others: others.len(),
            }
        };
        self.recovery.send_if_modified(|current| {
            let changed = *current != state;
            *current = state;
            changed
        });
    }

    fn on_status(&mut self, peer_id: MemberId, status: Status) {
        if let Some((heard, _)) = &mut self.recovering {
            heard.insert(peer_id);
        }
        let claims = &mut self.peers.entry(peer_id).or_default().contiguous;
        for Progress { origin, contiguous } in status.progress {
            if self.members.contains_key(&origin) {
                claims.insert(origin, contiguous);
            }
        }
        for head in status.heads {
            let origin = head.head.origin;
            // A head of this member's own origin (signed by its own key) tells it how far it
            // numbered before: after a lost log it fetches those envelopes back.
            let Some(key) = self.members.get(&origin) else {
                continue;
            };
            let progress = self.origins.entry(origin).or_default();
            // Only a signed head moves the known high: a member cannot make the others chase
            // envelopes that were never numbered.
            if head.head.seq > progress.known_high && head.verify(key).is_ok() {
                progress.known_high = head.head.seq;
            }
        }
    }

    fn on_pull<S: Sender<PublicKey = ed25519::PublicKey>>(
        &mut self,
        peer: ed25519::PublicKey,
        pull: Pull,
        sync_tx: &mut S,
    ) {
        if pull.to < pull.from || pull.from == 0 {
            return;
        }
        let count = (pull.to - pull.from + 1).min(self.config.max_pull);
        let envelopes = match self.log.range(pull.origin, pull.from, count as usize) {
            Ok(envelopes) => envelopes,
            Err(e) => {
                tracing::error!(error = %e, "net.log.range_failed");
                return;
            }
        };
        let envelopes: Vec<_> = envelopes
            .into_iter()
            .filter(|e| e.body.seq <= pull.to)
            .collect();
        if envelopes.is_empty() {
            return;
        }
        self.counters.pulled_served += envelopes.len() as u64;
        self.send_envelopes(sync_tx, Recipients::One(peer), envelopes);
    }

    /// Makes the envelopes taken in since the last sync durable, once a `copies_sync_interval`.
    fn sync_copies(&mut self) {
        let now = self.context.current();
        let since = now.duration_since(self.copies_synced).unwrap_or_default();
        if since < self.config.copies_sync_interval {
            return;
        }
        self.copies_synced = now;
        if let Err(e) = self.log.sync_copies() {
            tracing::error!(error = %e, "net.log.sync_failed");
        }
    }

    /// Announces what this member holds and pulls the first missing range of each origin.
    fn on_tick<S: Sender<PublicKey = ed25519::PublicKey>>(&mut self, sync_tx: &mut S) {
        self.tick += 1;
        let status = Status {
            progress: self
                .origins
                .iter()
                .map(|(origin, p)| Progress {
                    origin: *origin,
                    contiguous: p.contiguous,
                })
                .collect(),
            heads: self.heads.values().cloned().collect(),
        };
        sync_tx.send(Recipients::All, Message::Status(status).encode(), false);

        let wanting: Vec<(MemberId, OriginProgress)> = self
            .origins
            .iter()
            .filter(|(origin, p)| p.known_high > p.contiguous && self.members.contains_key(origin))
            .map(|(o, p)| (*o, *p))
            .collect();
        for (origin, progress) in wanting {
            let missing =
                match self
                    .log
                    .missing(origin, progress.known_high, self.config.max_pull as usize)
                {
                    Ok(missing) => missing,
                    Err(e) => {
                        tracing::error!(error = %e, "net.log.missing_failed");
                        continue;
                    }
                };
            let (Some(&from), Some(&to)) = (missing.first(), missing.last()) else {
                continue;
            };
            let Some(peer) = self.pull_target(origin, from) else {
                continue;
            };
            self.counters.pulls_sent += 1;
            sync_tx.send(
                Recipients::One(peer),
                Message::Pull(Pull { origin, from, to }).encode(),
                false,
            );
        }
    }

    /// A member to pull `origin`'s envelope `from` from: one that claims to hold it, else any
    /// other member; rotated per tick so a member that lies about what it holds costs one tick.
    fn pull_target(&self, origin: MemberId, from: u64) -> Option<ed25519::PublicKey> {
        let others: Vec<MemberId> = self
            .members
            .keys()
            .copied()
            .filter(|id| *id != self.config.me)
            .collect();
        let holders: Vec<MemberId> = others
            .iter()
            .copied()
            .filter(|id| {
                *id == origin
                    || self
                        .peers
                        .get(id)
                        .and_then(|p| p.contiguous.get(&origin))
                        .is_some_and(|c| *c >= from)
            })
            .collect();
        let pool = if holders.is_empty() {
            &others
        } else {
            &holders
        };
        if pool.is_empty() {
            return None;
        }
        let pick = pool[(self.tick as usize + origin as usize) % pool.len()];
        self.members.get(&pick).cloned()
    }

    /// Copies the engine's progress where the node can read it.
    fn publish(&self) {
        let mut view = self.view.lock();
        if view.members.len() != self.members.len() || !view.members.iter().eq(self.members.keys())
        {
            view.members = self.members.keys().copied().collect();
        }
        view.origins.clone_from(&self.origins);
        view.peers.clone_from(&self.peers);
        view.counters = self.counters;
    }
}

/// Spends one token of `key`'s bucket (refilled at `rate` per second, holding at most `rate`)
/// if it has one.
fn spend(
    budgets: &mut HashMap<MemberId, Bucket>,
    key: MemberId,
    rate: u32,
    now: SystemTime,
) -> bool {
    let rate = f64::from(rate.max(1));
    let (tokens, last) = budgets.entry(key).or_insert((rate, now));
    let elapsed = now.duration_since(*last).unwrap_or_default().as_secs_f64();
    *tokens = (*tokens + elapsed * rate).min(rate);
    *last = now;
    if *tokens >= 1.0 {
        *tokens -= 1.0;
        true
    } else {
        false
    }
}

fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as u64
}
