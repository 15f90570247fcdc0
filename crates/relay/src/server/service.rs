//! The relay handle: owns the configuration, the verifier and the bid board, runs a submission
//! through the checks, and gives the devnet the slot's winner.

use std::collections::VecDeque;
use std::{
    collections::HashSet,
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use alloy_primitives::B256;
use alloy_rpc_types_beacon::{
    BlsPublicKey, BlsSignature,
    events::PayloadAttributesEvent,
    relay::{
        BidTrace, SignedBidSubmissionV5, Validator, ValidatorRegistration,
        ValidatorRegistrationMessage,
    },
};
use cobuild_chain::ExecutedBlock;
use cobuild_primitives::{MAX_ERROR_TEXT, bounded};
use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, watch};

use super::{
    config::Config,
    events::{Announcement, Announcements},
    handlers,
    state::{BidBoard, Closed, Offer, Place, SlotContext},
    validate::{
        Screened, SubmissionError, check_bid, check_payment, screen_strict, strict_simulation,
    },
};
use crate::{
    BlockVerifier,
    bid::{builder_domain, sign_registration, submission_block},
    wei,
};

/// The best valid bid of a slot, ready to commit.
#[derive(Debug, Clone)]
pub struct WinningBid {
    /// The signed bid trace; its `value` is the verified proposer payment.
    pub trace: BidTrace,
    /// The re-executed block, for [`Chain::commit`](cobuild_chain::Chain::commit).
    pub executed: ExecutedBlock,
}

/// How many accepted bids the data endpoint remembers.
const RECEIVED_KEPT: usize = 1024;

/// An accepted bid as the relay data API lists it
/// (`/relay/v1/data/bidtraces/builder_blocks_received`): the bid trace plus what the relay
/// learnt checking it. Numbers are decimal strings, as relays serve them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReceivedBid {
    /// The signed bid trace.
    #[serde(flatten)]
    pub trace: BidTrace,
    /// The block's number.
    #[serde(with = "alloy_serde::displayfromstr")]
    pub block_number: u64,
    /// Transactions in the block.
    #[serde(with = "alloy_serde::displayfromstr")]
    pub num_tx: u64,
    /// When it was accepted, in seconds since the Unix epoch.
    #[serde(with = "alloy_serde::displayfromstr")]
    pub timestamp: u64,
    /// When it was accepted, in milliseconds since the Unix epoch.
    #[serde(with = "alloy_serde::displayfromstr")]
    pub timestamp_ms: u64,
    /// Whether it was sent as a cancellation (replacing the builder's earlier bid).
    pub cancellation: bool,
}

/// Accepted bids the feed buffers for a slow subscriber before it starts skipping.
const FEED_CAPACITY: usize = 1024;

/// An accepted bid as the in-process feed ([`RelayServer::accepted_bids`]) gives it: what a
/// proposer-side observer needs to time orders from acknowledgement to bid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedBid {
    /// The bid's slot.
    pub slot: u64,
    /// The block's hash.
    pub block_hash: B256,
    /// The verified proposer payment.
    pub value: alloy_primitives::U256,
    /// When the relay started on the submission (its body read), before any check.
    pub received_at: std::time::Instant,
    /// The block's transaction hashes, in block order.
    pub transactions: Vec<B256>,
}

/// Counts of submissions since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Submissions answered 200.
    pub accepted: u64,
    /// Submissions answered with an error.
    pub rejected: u64,
}

/// The devnet relay and proposer. Cheap to clone; clones share one board.
#[derive(Debug)]
pub struct RelayServer<V> {
    shared: Arc<Shared<V>>,
}

impl<V> Clone for RelayServer<V> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Shared<V> {
    config: Config,
    domain: B256,
    builders: HashSet<BlsPublicKey>,
    registration: BlsSignature,
    verifier: Arc<V>,
    board: Mutex<BidBoard<BlsPublicKey, WinningBid>>,
    validations: Semaphore,
    accepted: AtomicU64,
    received: Mutex<VecDeque<ReceivedBid>>,
    feed: broadcast::Sender<Arc<AcceptedBid>>,
    /// Submissions being checked right now.
    checking: watch::Sender<usize>,
    /// Submissions received so far: a bid's place in that order decides which of a builder's
    /// bids is its latest.
    receipts: AtomicU64,
    rejected: AtomicU64,
    announcements: watch::Sender<Announcements>,
    /// One permit per open event stream.
    subscribers: Arc<Semaphore>,
    /// Whether the proposer's registration is listed (see [`RelayServer::set_registered`]).
    registered: std::sync::atomic::AtomicBool,
}

impl<V: BlockVerifier> RelayServer<V> {
    /// A relay with `config` that verifies blocks with `verifier`. No slot is open yet.
    pub fn new(config: Config, verifier: V) -> Self {
        let domain = builder_domain(config.genesis_fork_version);
        let registration =
            sign_registration(&config.proposer, &registration_message(&config), domain);
        Self {
            shared: Arc::new(Shared {
                domain,
                builders: config.builders.iter().copied().collect(),
                registration,
                verifier: Arc::new(verifier),
                board: Mutex::new(BidBoard::default()),
                validations: Semaphore::new(config.max_concurrent_validations.max(1)),
                accepted: AtomicU64::new(0),
                received: Mutex::new(VecDeque::new()),
                feed: broadcast::channel(FEED_CAPACITY).0,
                checking: watch::channel(0).0,
                receipts: AtomicU64::new(0),
                rejected: AtomicU64::new(0),
                announcements: watch::channel(Announcements::default()).0,
                subscribers: Arc::new(Semaphore::new(config.max_subscribers)),
                registered: std::sync::atomic::AtomicBool::new(true),
                config,
            }),
        }
    }

    /// The HTTP routes of the relay, for callers that serve them themselves.
    pub fn router(&self) -> axum::Router {
        handlers::router(self.shared.clone())
    }

    /// Serves the builder API and the slot event stream on `listener` until `shutdown`
    /// completes.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.serve_with(listener, axum::Router::new(), shutdown)
            .await
    }

    /// [`serve`](Self::serve), with the routes of `extra` beside the relay's (a mock consensus
    /// client's Beacon API reads).
    pub async fn serve_with(
        self,
        listener: tokio::net::TcpListener,
        extra: axum::Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let shared = self.shared.clone();
        // Event streams never end by themselves: end them first, or the graceful shutdown
        // would wait for every subscriber to hang up.
        let shutdown = async move {
            shutdown.await;
            shared.announcements.send_modify(|a| a.closed = true);
        };
        let router = self.router().merge(extra);
        cobuild_http::serve(
            listener,
            self.shared.config.serve,
            move |_| router.clone(),
            shutdown,
        )
        .await;
        Ok(())
    }

    /// Announces the slot just opened to the `payload_attributes` stream: `event` describes the
    /// block the relay will accept, and bids are taken until `bids_until`. Subscribers get it
    /// at once, and later subscribers get it first, until the next announcement.
    pub fn announce(&self, event: PayloadAttributesEvent, bids_until: std::time::Instant) {
        let slot = event.data.proposal_slot;
        self.shared.announcements.send_modify(|a| {
            a.current = Some(Announcement { event, bids_until });
        });
        tracing::debug!(slot, "relay.slot.announced");
    }

    /// Opens `ctx.slot` for bids on `ctx.parent_hash`, closing the slot before it; that slot's
    /// best bid, if nobody took it, is dropped.
    pub fn open_slot(&self, ctx: SlotContext) {
        if let Some((value, dropped)) = self.shared.board.lock().open(ctx) {
            tracing::info!(
                slot = dropped.trace.slot,
                value = wei(value),
                "relay.slot.dropped_untaken"
            );
        }
        tracing::debug!(slot = ctx.slot, parent = %ctx.parent_hash, "relay.slot.open");
    }

    /// The proposer's side at the end of `slot`: closes it and takes its best valid bid.
    /// Returns `None` if no valid bid came, or `slot` is not the open slot.
    ///
    /// The devnet commits the winner with `chain.commit(&winner.executed)`.
    pub fn take_best(&self, slot: u64) -> Option<WinningBid> {
        let taken = self.shared.board.lock().take(slot);
        match &taken {
            Some((value, bid)) => tracing::info!(
                slot,
                value = wei(*value),
                number = bid.executed.header().number,
                block_hash = %bid.trace.block_hash,
                builder = %bid.trace.builder_pubkey,
                txs = bid.executed.block.block.body.transactions.len(),
                "relay.slot.winner"
            ),
            None => tracing::info!(slot, "relay.slot.no_bid"),
        }
        taken.map(|(_, bid)| bid)
    }

    /// The proposer's side at the end of `slot`, as [`RelayServer::take_best`], except that a
    /// bid the relay received before the end still counts: new submissions are refused at
    /// once, those being checked get up to `grace` to finish, then the best is taken.
    pub async fn close_and_take_best(
        &self,
        slot: u64,
        grace: std::time::Duration,
    ) -> Option<WinningBid> {
        self.shared.board.lock().stop_submissions(slot);
        let mut checking = self.shared.checking.subscribe();
        if tokio::time::timeout(grace, checking.wait_for(|n| *n == 0))
            .await
            .is_err()
        {
            tracing::info!(slot, "relay.slot.checks_cut_off");
        }
        self.take_best(slot)
    }

    /// The proposer duties the validators endpoint serves: the upcoming slot and the one
    /// after it, both proposed by the configured proposer. Empty before the first slot opens.
    pub fn duties(&self) -> Vec<Validator> {
        self.shared.duties()
    }

    /// Lists the proposer's registration (the default) or withdraws it: while withdrawn the
    /// validators endpoint lists no duty, as a relay does for a proposer that did not register
    /// (a solo staker without MEV-Boost), and builders must leave those slots alone.
    pub fn set_registered(&self, registered: bool) {
        self.shared
            .registered
            .store(registered, std::sync::atomic::Ordering::Relaxed);
    }

    /// The proposer's BLS public key.
    pub fn proposer_pubkey(&self) -> BlsPublicKey {
        self.shared.config.proposer.public_key()
    }

    /// The builder signing domain the relay verifies bids under.
    pub fn domain(&self) -> B256 {
        self.shared.domain
    }

    /// Every bid accepted from now on, with the transactions of its block. A subscriber that
    /// falls more than 1,024 bids behind skips the oldest (`RecvError::Lagged`); with no
    /// subscriber the relay does no extra work.
    pub fn accepted_bids(&self) -> broadcast::Receiver<Arc<AcceptedBid>> {
        self.shared.feed.subscribe()
    }

    /// Submissions accepted and rejected so far.
    pub fn stats(&self) -> Stats {
        Stats {
            accepted: self.shared.accepted.load(Ordering::Relaxed),
            rejected: self.shared.rejected.load(Ordering::Relaxed),
        }
    }
}

/// Counts one submission as being checked while it lives.
struct Checking<'a>(&'a watch::Sender<usize>);

impl<'a> Checking<'a> {
    fn start(checking: &'a watch::Sender<usize>) -> Self {
        checking.send_modify(|n| *n += 1);
        Self(checking)
    }
}

impl Drop for Checking<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

fn registration_message(config: &Config) -> ValidatorRegistrationMessage {
    ValidatorRegistrationMessage {
        fee_recipient: config.proposer_fee_recipient,
        gas_limit: config.gas_limit,
        timestamp: config.registration_timestamp,
        pubkey: config.proposer.public_key(),
    }
}

impl<V: BlockVerifier> Shared<V> {
    pub(crate) const fn config(&self) -> &Config {
        &self.config
    }

    /// Follows the slot announcements.
    pub(crate) fn announcements(&self) -> watch::Receiver<Announcements> {
        self.announcements.subscribe()
    }

    /// A place for one more event stream, if there is one; the stream holds it while open.
    pub(crate) fn subscriber(&self) -> Option<OwnedSemaphorePermit> {
        self.subscribers.clone().try_acquire_owned().ok()
    }

    pub(crate) fn duties(&self) -> Vec<Validator> {
        if !self.registered.load(std::sync::atomic::Ordering::Relaxed) {
            return Vec::new();
        }
        let Some(first) = self.board.lock().upcoming_slot() else {
            return Vec::new();
        };
        let message = registration_message(&self.config);
        (first..=first + 1)
            .map(|slot| Validator {
                slot,
                validator_index: 0,
                entry: ValidatorRegistration {
                    message: message.clone(),
                    signature: self.registration,
                },
            })
            .collect()
    }

    /// Accepted bids of `slot` (every slot when `None`), oldest first.
    pub(crate) fn received(&self, slot: Option<u64>) -> Vec<ReceivedBid> {
        self.received
            .lock()
            .iter()
            .filter(|bid| slot.is_none_or(|s| bid.trace.slot == s))
            .cloned()
            .collect()
    }

    /// Runs one submission through every check and offers it to the board; with
    /// `cancellation`, it replaces the builder's earlier bid even if worth less; with a
    /// `sequence` (the builder's number for it), only a bid numbered lower.
    pub(crate) async fn submit(
        self: Arc<Self>,
        body: axum::body::Bytes,
        format: BodyFormat,
        cancellation: bool,
        sequence: Option<u64>,
    ) -> Result<(), SubmissionError> {
        let result = self
            .clone()
            .check(body, format, cancellation, sequence)
            .await;
        match &result {
            Ok(true) => self.accepted.fetch_add(1, Ordering::Relaxed),
            // Answered as received, and dropped (strict mode's ignored bids).
            Ok(false) => 0,
            Err(_) => self.rejected.fetch_add(1, Ordering::Relaxed),
        };
        result.map(|_| ())
    }

    async fn check(
        self: Arc<Self>,
        body: axum::body::Bytes,
        format: BodyFormat,
        cancellation: bool,
        sequence: Option<u64>,
    ) -> Result<bool, SubmissionError> {
        let strict = self.config.strict;
        let simulated = move |e: SubmissionError| if strict { strict_simulation(e) } else { e };
        let received_at = std::time::Instant::now();
        let received = self.receipts.fetch_add(1, Ordering::Relaxed);
        let place = sequence.map_or(Place::Received(received), Place::Sequence);
        let _checking = Checking::start(&self.checking);
        let ctx = self.board.lock().context().ok_or(if strict {
            SubmissionError::Strict("payload attributes not (yet) known".to_owned())
        } else {
            SubmissionError::NoOpenSlot
        })?;
        // Parsing up to the body limit, the BLS check and decoding the payload are CPU work:
        // off the async workers.
        let this = self.clone();
        let checked = tokio::task::spawn_blocking(move || {
            let submission = format.decode(&body, this.config.max_body_bytes)?;
            if strict {
                let screened =
                    screen_strict(&this.config, &this.builders, this.domain, &ctx, &submission)?;
                if let Screened::Ignore(why) = screened {
                    tracing::info!(slot = submission.message.slot, why, "relay.bid.ignored");
                    return Ok(None);
                }
            } else {
                check_bid(&this.config, &this.builders, this.domain, &ctx, &submission)?;
            }
            let block = submission_block(&submission, ctx.parent_beacon_block_root)
                .map_err(|e| simulated(e.into()))?;
            Ok::<_, SubmissionError>(Some((block, submission.message)))
        })
        .await
        .map_err(|join| SubmissionError::Internal(Box::new(join)))??;
        let Some((block, trace)) = checked else {
            return Ok(false);
        };

        let _turn = self
            .validations
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let verifier = self.verifier.clone();
        let executed = tokio::task::spawn_blocking(move || verifier.verify(block))
            .await
            .map_err(|join| SubmissionError::Internal(Box::new(join)))?
            .map_err(|err| {
                if V::is_invalid_block(&err) {
                    simulated(SubmissionError::InvalidBlock(Box::new(err)))
                } else {
                    SubmissionError::Internal(Box::new(err))
                }
            })?;
        check_payment(&executed, &trace).map_err(simulated)?;

        let (slot, parent, value) = (trace.slot, trace.parent_hash, trace.value);
        let builder = trace.builder_pubkey;
        let block_hash = trace.block_hash;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let record = ReceivedBid {
            trace: trace.clone(),
            block_number: executed.header().number,
            num_tx: executed.block.block.body.transactions.len() as u64,
            timestamp: now_ms / 1000,
            timestamp_ms: now_ms,
            cancellation,
        };
        // Hashing the block's transactions again is only worth it for someone listening.
        let feed = (self.feed.receiver_count() > 0).then(|| AcceptedBid {
            slot,
            block_hash,
            value,
            received_at,
            transactions: executed
                .block
                .block
                .body
                .transactions
                .iter()
                .map(|tx| *tx.tx_hash())
                .collect(),
        });
        let offer = self.board.lock().offer(
            slot,
            parent,
            builder,
            value,
            WinningBid { trace, executed },
            cancellation,
            place,
        );
        match offer {
            Ok(Offer::Best) => tracing::info!(
                slot,
                value = wei(value),
                block_hash = %block_hash,
                builder = %builder,
                best = true,
                "relay.bid.accepted"
            ),
            Ok(Offer::Outbid { best }) => tracing::info!(
                slot,
                value = wei(value),
                best_value = wei(best),
                block_hash = %block_hash,
                builder = %builder,
                best = false,
                "relay.bid.accepted"
            ),
            Err(Closed) if strict => {
                return Err(SubmissionError::Strict(
                    "payload for this slot was already delivered".to_owned(),
                ));
            }
            Err(Closed) => return Err(SubmissionError::SlotClosed(slot)),
        }
        let mut received = self.received.lock();
        if received.len() == RECEIVED_KEPT {
            received.pop_front();
        }
        received.push_back(record);
        drop(received);
        if let Some(bid) = feed {
            // No subscriber left is not an error: the feed is best effort.
            let _ = self.feed.send(Arc::new(bid));
        }
        Ok(true)
    }
}

/// How a submission's body is encoded, from its headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct BodyFormat {
    /// SSZ (`application/octet-stream`), else JSON.
    pub ssz: bool,
    /// gzip-compressed.
    pub gzip: bool,
}

impl BodyFormat {
    /// The Fulu submission `body` holds; a compressed body may grow to at most `max_bytes`.
    pub(crate) fn decode(
        self,
        body: &[u8],
        max_bytes: usize,
    ) -> Result<SignedBidSubmissionV5, SubmissionError> {
        let malformed = |err: String| SubmissionError::Malformed(bounded(&err, MAX_ERROR_TEXT));
        let inflated;
        let body = if self.gzip {
            use std::io::Read;
            let mut out = Vec::new();
            // One byte over the limit tells a body that is too large from one that fits.
            flate2::read::GzDecoder::new(body)
                .take(max_bytes as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| malformed(format!("gzip: {e}")))?;
            if out.len() > max_bytes {
                return Err(malformed(format!(
                    "gzip: inflates to more than {max_bytes} bytes"
                )));
            }
            inflated = out;
            &inflated[..]
        } else {
            body
        };
        if self.ssz {
            ssz::Decode::from_ssz_bytes(body).map_err(|e| malformed(format!("ssz: {e:?}")))
        } else {
            serde_json::from_slice(body).map_err(|e| malformed(e.to_string()))
        }
    }
}
