//! The ledger actor: signs and exchanges cuts, builds and checks proposed records for simplex,
//! and appends final records to the store, fetching those it missed.
//!
//! One task, one loop over three sources: the mailbox (simplex's requests and reports), the
//! ledger channel (cuts, proposals, fetches and their answers) and a ticker. Requests that
//! cannot be answered yet (the block is still importing, cuts or the proposal have not arrived)
//! wait and are tried again on every tick and every arrival: simplex treats an answer as final,
//! so "not yet" must never become "no".

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::{Duration, SystemTime},
};

use alloy_primitives::{B256, Bytes};
use commonware_codec::Encode as _;
use commonware_consensus::{
    Epochable as _, Viewable as _,
    simplex::{Plan, types::Context},
};
use commonware_cryptography::ed25519;
use commonware_p2p::{Receiver, Recipients, Sender};
use commonware_runtime::{Clock, Spawner};
use tokio::sync::{mpsc, oneshot, watch};

use super::{Local, ingress::Message};
use crate::{
    Config, Digest, Entry, Epoch, Finalization, MemberId, Membership, SignedCut, SlotRecord, Store,
    record::{self, Cut, agreed_cut, bridge_digest, check_structure, genesis_digest, to_b256},
    wire,
};

type ConsensusContext = Context<Digest, ed25519::PublicKey>;

/// Most final records sent in one answer to a fetch.
const FETCH_BATCH: usize = 32;
/// Slots past the last final one for which cuts and candidates are kept (bounds memory against
/// a member that signs cuts for slots far ahead).
const WINDOW: u64 = 256;
/// Candidates taken per slot from each member.
const MAX_CANDIDATES_PER_SLOT: usize = 8;
/// How often own cuts are re-sent and final records asked for.
const HOUSEKEEPING: Duration = Duration::from_millis(500);
/// Cuts signed in one tick (a member back from a long outage signs its backlog over a few).
const SIGN_PER_TICK: u64 = 64;

struct PendingVerify {
    context: ConsensusContext,
    payload: Digest,
    response: oneshot::Sender<bool>,
    deadline: SystemTime,
}

/// The ledger actor of one member.
pub(crate) struct Actor<E, L> {
    context: E,
    config: Config,
    local: L,
    store: Arc<Store>,
    mailbox: mpsc::Receiver<Message>,
    /// The epoch of the next record: whose cuts count and who votes.
    epoch: Epoch,
    /// The current epoch's members by key.
    by_key: HashMap<ed25519::PublicKey, MemberId>,
    /// Where the current epoch's consensus starts: the epoch and the digest it builds on.
    epochs: watch::Sender<(Epoch, Digest)>,
    genesis: B256,
    /// Slot and digest of the last final record (the genesis before the first).
    last: (u64, B256),
    /// Cuts received or signed, by slot and member.
    cuts: BTreeMap<u64, BTreeMap<MemberId, SignedCut>>,
    /// Records proposed but not final, by digest.
    candidates: HashMap<B256, SlotRecord>,
    /// Finalizations of records not appended yet (their record or an ancestor is missing).
    finals: HashMap<B256, Finalization>,
    proposes: Vec<(ConsensusContext, oneshot::Sender<Digest>)>,
    verifies: Vec<PendingVerify>,
    /// Own cuts are signed for every slot up to this one.
    signed: u64,
    /// Candidates taken from each member, by slot and member.
    received: BTreeMap<(u64, MemberId), usize>,
    final_slot: watch::Sender<u64>,
    ticks: u64,
    /// Logged once: the network's records build on another genesis than this member's.
    founders_differ: bool,
}

impl<E: Clock + Spawner, L: Local> Actor<E, L> {
    pub(crate) fn new(
        context: E,
        config: Config,
        local: L,
        store: Arc<Store>,
        mailbox: mpsc::Receiver<Message>,
        final_slot: watch::Sender<u64>,
        epochs: watch::Sender<(Epoch, Digest)>,
    ) -> Result<Self, crate::StoreError> {
        let founders = store.found(&config.founders())?;
        let genesis_root = genesis_digest(config.chain_genesis, &founders);
        let genesis = to_b256(&genesis_root);
        let epoch = store
            .next_epoch()?
            .ok_or(crate::StoreError::Membership(0))?;
        // An epoch's consensus builds on the record that opened it (the genesis for the first).
        let floor = match store.opened(epoch.number)? {
            Some(slot) => store
                .get(slot)?
                .ok_or(crate::StoreError::Membership(epoch.number))?
                .record
                .digest(),
            None => genesis_root,
        };
        epochs.send_replace((epoch.clone(), floor));
        let last = match store.last()? {
            Some(entry) => (entry.record.slot, to_b256(&entry.record.digest())),
            None => (config.first_slot.saturating_sub(1), genesis),
        };
        let candidates = store
            .candidates()?
            .into_iter()
            .map(|record| (to_b256(&record.digest()), record))
            .collect();
        final_slot.send_replace(last.0);
        Ok(Self {
            by_key: by_key(&epoch),
            epoch,
            epochs,
            signed: last.0,
            received: BTreeMap::new(),
            context,
            local,
            store,
            mailbox,
            genesis,
            last,
            cuts: BTreeMap::new(),
            candidates,
            finals: HashMap::new(),
            proposes: Vec::new(),
            verifies: Vec::new(),
            final_slot,
            ticks: 0,
            founders_differ: false,
            config,
        })
    }

    pub(crate) async fn run<S, R>(mut self, (mut sender, mut receiver): (S, R))
    where
        S: Sender<PublicKey = ed25519::PublicKey>,
        R: Receiver<PublicKey = ed25519::PublicKey>,
    {
        let mut next_tick = self.context.current();
        loop {
            tokio::select! {
                biased;
                message = self.mailbox.recv() => match message {
                    Some(message) => self.on_request(message, &mut sender),
                    None => return,
                },
                received = receiver.recv() => match received {
                    Ok((peer, bytes)) => self.on_message(&peer, bytes.as_ref(), &mut sender),
                    Err(e) => {
                        tracing::debug!(error = %e, "ledger.channel.closed");
                        return;
                    }
                },
                () = self.context.sleep_until(next_tick) => {
                    self.on_tick(&mut sender);
                    next_tick = self.context.current() + self.config.tick;
                }
            }
        }
    }

    fn on_request<S: Sender<PublicKey = ed25519::PublicKey>>(
        &mut self,
        message: Message,
        sender: &mut S,
    ) {
        match message {
            Message::Propose { context, response } => {
                self.proposes.push((context, response));
                self.try_propose();
            }
            Message::Verify {
                context,
                payload,
                response,
            } => {
                let deadline = self.context.current() + self.config.verify_timeout;
                self.verifies.push(PendingVerify {
                    context,
                    payload,
                    response,
                    deadline,
                });
                self.try_verify();
            }
            Message::Broadcast { payload, plan } => {
                let recipients = match plan {
                    Plan::Propose { .. } => Recipients::All,
                    Plan::Forward { recipients, .. } => recipients,
                    // Handoffs are never staged (the default `prepare` waits).
                    Plan::Prepare { .. } => return,
                };
                if let Some(record) = self.candidates.get(&to_b256(&payload)) {
                    sender.send(
                        recipients,
                        wire::Message::Proposal(record.clone()).encode(),
                        false,
                    );
                }
            }
            Message::Finalized(finalization) => {
                let digest = to_b256(&finalization.proposal.payload);
                // A late report of an epoch this member has left is of a record it holds or
                // of a bridge it no longer needs.
                let settled = finalization.proposal.round.epoch().get() < self.epoch.number
                    || self.store.slot_of(&digest).ok().flatten().is_some()
                    || digest == to_b256(&bridge_digest(&self.last.1));
                if !settled {
                    self.finals.insert(digest, *finalization);
                    self.advance();
                }
            }
        }
    }

    fn on_message<S: Sender<PublicKey = ed25519::PublicKey>>(
        &mut self,
        peer: &ed25519::PublicKey,
        bytes: &[u8],
        sender: &mut S,
    ) {
        let message = match wire::Message::decode(bytes) {
            Ok(message) => message,
            Err(e) => {
                tracing::debug!(error = %e, "ledger.message.malformed");
                return;
            }
        };
        // Cuts and proposals count only from the epoch's members; final records carry their
        // own proof, so any member of the network may serve or ask for them (a member that
        // joins, or one that left, still catches up).
        let member = self.by_key.get(peer).copied();
        match message {
            wire::Message::Cut(signed) => {
                if member.is_some() && self.take_cut(signed) {
                    self.try_propose();
                }
            }
            wire::Message::Proposal(record) => {
                let Some(peer_id) = member else {
                    return;
                };
                let slot = record.slot;
                // A member may propose once per view, so a slot sees a handful of candidates
                // from each; more are spam and would each cost a disk write. Counted per
                // sender, so one member's spam cannot crowd out the others' proposals.
                let sent = self.received.get(&(slot, peer_id)).copied().unwrap_or(0);
                if slot > self.last.0
                    && slot <= self.last.0 + WINDOW
                    && sent < MAX_CANDIDATES_PER_SLOT
                {
                    let digest = to_b256(&record.digest());
                    if !self.candidates.contains_key(&digest) {
                        *self.received.entry((slot, peer_id)).or_default() += 1;
                        if let Err(e) = self.store.put_candidate(&record) {
                            tracing::warn!(error = %e, "ledger.candidate.store_failed");
                        }
                        self.candidates.insert(digest, record);
                        self.try_verify();
                        self.advance();
                    }
                }
            }
            wire::Message::Fetch(from) => {
                let Ok(entries) = self.store.range(from, u64::MAX, FETCH_BATCH) else {
                    return;
                };
                if !entries.is_empty() {
                    sender.send(
                        Recipients::One(peer.clone()),
                        wire::Message::Final(entries).encode(),
                        false,
                    );
                }
            }
            wire::Message::Final(entries) => self.take_final(entries),
        }
    }

    /// Stores a cut if it is a member's, signed by it, canonical and in the window; true if new.
    fn take_cut(&mut self, signed: SignedCut) -> bool {
        let cut = &signed.cut;
        if cut.slot <= self.last.0 || cut.slot > self.last.0 + WINDOW {
            return false;
        }
        let Some(key) = self.epoch.members.get(&cut.member) else {
            return false;
        };
        if self
            .cuts
            .get(&cut.slot)
            .is_some_and(|by_member| by_member.contains_key(&cut.member))
        {
            return false;
        }
        if !signed.verify(key) {
            tracing::debug!(
                member = cut.member,
                slot = cut.slot,
                "ledger.cut.bad_signature"
            );
            return false;
        }
        self.cuts
            .entry(cut.slot)
            .or_default()
            .insert(cut.member, signed);
        true
    }

    fn on_tick<S: Sender<PublicKey = ed25519::PublicKey>>(&mut self, sender: &mut S) {
        self.ticks += 1;
        // Sign a cut for every slot whose block this member's chain now holds.
        let head = self.local.head();
        let from = self.signed.max(self.last.0) + 1;
        let to = head.min(from + SIGN_PER_TICK - 1).min(self.last.0 + WINDOW);
        if from <= to && self.is_member() {
            let prefixes = self.local.prefixes();
            for slot in from..=to {
                let signed =
                    Cut::new(self.config.me, slot, prefixes.iter().copied()).sign(&self.config.key);
                self.take_cut(signed.clone());
                sender.send(Recipients::All, wire::Message::Cut(signed).encode(), false);
            }
            self.signed = to;
        }
        // Resend own cuts of the next few unrecorded slots, for members that lost them, and
        // ask one member for final records this one may have missed.
        let every = (HOUSEKEEPING.as_millis() / self.config.tick.as_millis().max(1)).max(1) as u64;
        if self.ticks.is_multiple_of(every) {
            for slot in self.last.0 + 1..=(self.last.0 + 4).min(self.signed) {
                if let Some(own) = self.cuts.get(&slot).and_then(|c| c.get(&self.config.me)) {
                    sender.send(
                        Recipients::All,
                        wire::Message::Cut(own.clone()).encode(),
                        false,
                    );
                }
            }
            let others: Vec<_> = self
                .epoch
                .members
                .iter()
                .filter(|(id, _)| **id != self.config.me)
                .map(|(_, key)| key.clone())
                .collect();
            if !others.is_empty() {
                let peer = others[(self.ticks / every) as usize % others.len()].clone();
                sender.send(
                    Recipients::One(peer),
                    wire::Message::Fetch(self.last.0 + 1).encode(),
                    false,
                );
            }
        }
        self.try_propose();
        self.try_verify();
    }

    /// The slot of the record with `digest`, if it is the genesis, final, or a candidate.
    fn slot_of(&self, digest: &B256) -> Option<u64> {
        if *digest == self.genesis {
            return Some(self.config.first_slot.saturating_sub(1));
        }
        if let Some(record) = self.candidates.get(digest) {
            return Some(record.slot);
        }
        self.store.slot_of(digest).ok().flatten()
    }

    /// True when this member, under its key, is one of the current epoch's.
    fn is_member(&self) -> bool {
        use commonware_cryptography::Signer as _;
        self.epoch.members.get(&self.config.me) == Some(&self.config.key.public_key())
    }

    /// The facts of the block at `slot` as this member's chain holds them, the winner counted
    /// only if it is a member of the epoch (so every member names the same one).
    fn facts(&self, slot: u64) -> Option<crate::SlotFacts> {
        let mut facts = self.local.facts(slot)?;
        if facts
            .winner
            .0
            .is_some_and(|id| !self.epoch.members.contains_key(&id))
        {
            facts.winner = crate::Winner(None);
        }
        Some(facts)
    }

    /// The epoch the record with `digest` (final or candidate) closes, if it closes one.
    fn closed_epoch(&self, digest: &B256) -> Option<u64> {
        let closes = |record: &SlotRecord| (!record.next.is_empty()).then_some(record.epoch);
        if let Some(record) = self.candidates.get(digest) {
            return closes(record);
        }
        let slot = self.store.slot_of(digest).ok()??;
        closes(&self.store.get(slot).ok()??.record)
    }

    /// The record closing `epoch` that `digest` is, or is the bridge of: in that epoch's
    /// consensus nothing follows it but bridges. (The next epoch's consensus builds on the same
    /// record as its floor, with records.)
    fn closing_before(&self, digest: &B256, epoch: u64) -> Option<B256> {
        if self.closed_epoch(digest) == Some(epoch) {
            return Some(*digest);
        }
        self.bridged(digest)
            .filter(|closing| self.closed_epoch(closing) == Some(epoch))
    }

    /// The closing record (final or candidate) whose bridge `digest` is.
    fn bridged(&self, digest: &B256) -> Option<B256> {
        let is_bridge_of = |closing: &B256| to_b256(&bridge_digest(closing)) == *digest;
        if is_bridge_of(&self.last.1) && self.closed_epoch(&self.last.1).is_some() {
            return Some(self.last.1);
        }
        self.candidates
            .iter()
            .find(|(closing, record)| !record.next.is_empty() && is_bridge_of(closing))
            .map(|(closing, _)| *closing)
    }

    /// The membership the registry lists now, as a record would name it if it differs from
    /// the current epoch's (empty when it does not, or when it is not known).
    fn registry_change(&self) -> Membership {
        match self.local.members() {
            Some(members) if !members.is_empty() && members != self.epoch.members => {
                Membership::from_keys(&members)
            }
            _ => Membership::default(),
        }
    }

    fn try_propose(&mut self) {
        let pending = std::mem::take(&mut self.proposes);
        for (context, response) in pending {
            if response.is_closed() {
                continue;
            }
            // After a closing record its epoch only bridges, so that it can still finalize it.
            let parent = to_b256(&context.parent.1);
            if let Some(closing) = self.closing_before(&parent, context.epoch().get()) {
                let _ = response.send(bridge_digest(&closing));
                continue;
            }
            match self.build(&context) {
                Some(record) => {
                    let digest = record.digest();
                    if let Err(e) = self.store.put_candidate(&record) {
                        tracing::warn!(error = %e, "ledger.candidate.store_failed");
                        continue;
                    }
                    tracing::debug!(slot = record.slot, view = %context.view(), "ledger.propose");
                    self.candidates.insert(to_b256(&digest), record);
                    let _ = response.send(digest);
                }
                None => self.proposes.push((context, response)),
            }
        }
    }

    /// The record to propose on the context's parent, once the next slot's block and a quorum
    /// of its cuts are here.
    fn build(&self, context: &ConsensusContext) -> Option<SlotRecord> {
        if context.epoch().get() != self.epoch.number {
            return None;
        }
        let prev = to_b256(&context.parent.1);
        let slot = self.slot_of(&prev)? + 1;
        let facts = self.facts(slot)?;
        let cuts: Vec<SignedCut> = self
            .cuts
            .get(&slot)?
            .iter()
            .filter(|(member, _)| self.epoch.members.contains_key(member))
            .map(|(_, cut)| cut.clone())
            .collect();
        if cuts.len() < self.epoch.quorum() {
            return None;
        }
        let refunds = self.refunds(slot)?;
        let plain: Vec<&Cut> = cuts.iter().map(|s| &s.cut).collect();
        let agreed = agreed_cut(&plain, self.epoch.max_faults());
        Some(SlotRecord {
            epoch: self.epoch.number,
            slot,
            facts,
            cuts,
            agreed,
            prev,
            next: self.registry_change(),
            refunds,
        })
    }

    fn try_verify(&mut self) {
        let now = self.context.current();
        let pending = std::mem::take(&mut self.verifies);
        for verify in pending {
            if verify.response.is_closed() {
                continue;
            }
            match self.check(&verify.context, &verify.payload) {
                Some(verdict) => {
                    let _ = verify.response.send(verdict);
                }
                // Dropping the response after the deadline ends the request without a verdict;
                // the view times out as it would without a proposal.
                None if now >= verify.deadline => {}
                None => self.verifies.push(verify),
            }
        }
    }

    /// The verdict on a proposal, or `None` while something it depends on is not here yet.
    fn check(&self, context: &ConsensusContext, payload: &Digest) -> Option<bool> {
        let prev = to_b256(&context.parent.1);
        if let Some(closing) = self.closing_before(&prev, context.epoch().get()) {
            return Some(*payload == bridge_digest(&closing));
        }
        let record = self.candidates.get(&to_b256(payload))?;
        let parent_slot = self.slot_of(&prev)?;
        let refuse = |why: &dyn std::fmt::Display| {
            tracing::warn!(slot = record.slot, error = %why, "ledger.proposal.refused");
            Some(false)
        };
        if context.epoch().get() != record.epoch {
            return refuse(&"proposed in a round of another epoch");
        }
        if let Err(e) = check_structure(record, &self.epoch, (parent_slot, prev)) {
            return refuse(&e);
        }
        // A change of members is voted for only once this member's registry lists the same
        // ones: wait for a registry read that is behind, never agree to members it does not
        // list.
        if !record.next.is_empty() && self.registry_change() != record.next {
            return None;
        }
        // Wait while this member's chain has not imported the block yet.
        if self.local.head() < record.slot {
            return None;
        }
        let ours = self.facts(record.slot)?;
        if ours != record.facts {
            return refuse(&record::RecordError::WrongFacts {
                ours: Box::new(ours),
            });
        }
        // Wait until this member has computed the refunds itself; vote only for its own.
        let refunds = self.refunds(record.slot)?;
        if refunds != record.refunds {
            return refuse(&record::RecordError::WrongRefunds {
                slot: record::refunds_slot(record.slot).unwrap_or_default(),
                got: record.refunds.0,
                ours: refunds.0,
            });
        }
        Some(true)
    }

    /// The refunds the record of `slot` must commit to, as this member computes them; `None`
    /// until it can.
    fn refunds(&self, slot: u64) -> Option<record::RefundCommitment> {
        match record::refunds_slot(slot) {
            Some(earlier) => self.local.refunds(earlier).map(record::RefundCommitment),
            None => Some(record::RefundCommitment(None)),
        }
    }

    /// Appends every record now known to be final: those with a finalization, and their
    /// ancestors back to the last final record.
    fn advance(&mut self) {
        loop {
            // A finalized record whose ancestors back to the last final one are all known.
            let mut found = None;
            for (digest, finalization) in &self.finals {
                let mut chain = Vec::new();
                // A finalized bridge finalizes the closing record it names.
                let mut cursor = self.bridged(digest).unwrap_or(*digest);
                while cursor != self.last.1 {
                    let Some(record) = self.candidates.get(&cursor) else {
                        break;
                    };
                    chain.push(record.clone());
                    cursor = record.prev;
                    if record.slot <= self.last.0 + 1 {
                        break;
                    }
                }
                if cursor == self.last.1 && !chain.is_empty() {
                    found = Some((*digest, finalization.clone(), chain));
                    break;
                }
            }
            let Some((digest, finalization, mut chain)) = found else {
                return;
            };
            self.finals.remove(&digest);
            chain.reverse();
            let last_index = chain.len() - 1;
            let entries: Vec<Entry> = chain
                .into_iter()
                .enumerate()
                .map(|(i, record)| Entry {
                    record,
                    finalization: if i == last_index {
                        Bytes::from(finalization.encode().to_vec())
                    } else {
                        Bytes::new()
                    },
                })
                .collect();
            self.append(entries);
        }
    }

    /// Takes final records a member sent: each must extend the ledger, and each run of them
    /// must end in one whose finalization verifies against the members' keys.
    fn take_final(&mut self, entries: Vec<Entry>) {
        let mut run: Vec<Entry> = Vec::new();
        let mut tip = self.last;
        let mut epoch = self.epoch.clone();
        for entry in entries {
            let record = &entry.record;
            if Some(record.slot) != tip.0.checked_add(1)
                || record.prev != tip.1
                || record.epoch != epoch.number
            {
                // The network's first record does not build on this member's genesis: its
                // ledger was founded by other members than the network's (a member that joined
                // after the first membership change, started without the founders).
                if tip.1 == self.genesis && record.slot == tip.0 + 1 && !self.founders_differ {
                    self.founders_differ = true;
                    tracing::error!(
                        "ledger.founders_differ: the network's ledger was founded by other \
                         members than this one's; restart it on an empty ledger with \
                         --ledger-founders (cobuild ledger founders --rpc <a member>)"
                    );
                }
                break;
            }
            let proven = match crate::certificate(&entry, &epoch.verifier) {
                Ok(found) => found.is_some(),
                Err(e) => {
                    tracing::warn!(error = %e, "ledger.fetch.refused");
                    break;
                }
            };
            // The members a record names for the next epoch are taken only from a record its
            // own epoch certified: a later certificate by the very members it names would prove
            // nothing (an honest store keeps every closing record's own certificate).
            if !record.next.is_empty() && !proven {
                tracing::warn!(
                    slot = record.slot,
                    "ledger.fetch.uncertified_closing_record"
                );
                break;
            }
            tip = (record.slot, to_b256(&record.digest()));
            epoch = epoch.after(record);
            run.push(entry);
            if proven {
                self.append(std::mem::take(&mut run));
            }
        }
        // A run without a certificate at its end may be finalized by one this member holds;
        // kept only within the window, as proposals are.
        for entry in run {
            if entry.record.slot > self.last.0 + WINDOW {
                break;
            }
            let digest = to_b256(&entry.record.digest());
            self.candidates.entry(digest).or_insert(entry.record);
        }
        self.advance();
    }

    fn append(&mut self, entries: Vec<Entry>) {
        let Some(last) = entries.last() else {
            return;
        };
        let tip = (last.record.slot, to_b256(&last.record.digest()));
        if let Err(e) = self.store.append(&entries) {
            tracing::warn!(error = %e, "ledger.append_failed");
            return;
        }
        for entry in &entries {
            tracing::info!(
                slot = entry.record.slot,
                block = %entry.record.facts.block.hash,
                winner = ?entry.record.facts.winner.0,
                certified = !entry.finalization.is_empty(),
                "ledger.final"
            );
        }
        self.last = tip;
        self.signed = self.signed.max(tip.0);
        for entry in &entries {
            let next = self.epoch.after(&entry.record);
            if next != self.epoch {
                self.enter(next, entry.record.digest(), entry.record.slot);
            }
        }
        self.cuts = self.cuts.split_off(&(tip.0 + 1));
        self.received = self.received.split_off(&(tip.0 + 1, 0));
        self.candidates.retain(|_, record| record.slot > tip.0);
        let store = &self.store;
        let bridge_of_tip = to_b256(&bridge_digest(&tip.1));
        self.finals.retain(|digest, _| {
            *digest != bridge_of_tip && store.slot_of(digest).ok().flatten().is_none()
        });
        self.final_slot.send_replace(tip.0);
    }

    /// Enters `epoch`, opened by the final record with digest `floor`: only its members' cuts
    /// count from now on, and its consensus (started by the engine) builds on that record.
    fn enter(&mut self, epoch: Epoch, floor: Digest, closed_at: u64) {
        tracing::info!(
            epoch = epoch.number,
            members = ?epoch.members.keys().collect::<Vec<_>>(),
            first_slot = closed_at + 1,
            "ledger.epoch"
        );
        for by_member in self.cuts.values_mut() {
            by_member.retain(|member, signed| {
                epoch
                    .members
                    .get(member)
                    .is_some_and(|key| signed.verify(key))
            });
        }
        self.by_key = by_key(&epoch);
        self.epoch = epoch.clone();
        self.epochs.send_replace((epoch, floor));
    }
}

fn by_key(epoch: &Epoch) -> HashMap<ed25519::PublicKey, MemberId> {
    epoch
        .members
        .iter()
        .map(|(id, key)| (key.clone(), *id))
        .collect()
}

/// How long a verification waits for what it depends on before it gives up.
pub(crate) const DEFAULT_VERIFY_TIMEOUT: Duration = Duration::from_secs(30);
