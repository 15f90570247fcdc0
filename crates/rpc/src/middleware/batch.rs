//! Running a JSON-RPC batch: its calls in body order, with the durable writes of its orders
//! overlapped.
//!
//! jsonrpsee runs a batch's calls one after the other, and an order's call ends only once the
//! order is durable, so a batch of fifty orders waited for fifty disk flushes in a row. Here a
//! call that places or cancels an order lets the next call start as soon as its order has its
//! place in the log, so the writes share group commits. What the sender sees stays as if the
//! calls ran one by one:
//!
//! - **Places in the log** follow the body: a call starts only once the one before it has
//!   queued its order (or ended without one).
//! - **Effects on the pools** follow the body: a call publishes, withdraws or cancels its order
//!   only once every call before it has settled.
//! - **Checks** of an order may run while an earlier order of the batch is still reserved and
//!   hidden. Where that changes the outcome the check fails (the replacement of a reserved
//!   order, a `{hash}` that is not visible yet), so a call that failed without writing, while
//!   earlier calls were unsettled, runs again once they have settled; its second answer is the
//!   one given. Its request budgets are spent once over both runs ([`Admission`]).
//! - **Any other call** (a read, `eth_callBundle`) starts only once every call before it has
//!   settled, as in a one-by-one run.
//!
//! ```text
//!  call 0: checks ─ queue ─── durable ─ publish
//!  call 1:                checks ─ queue ─── durable ─ publish (after call 0's)
//!  call 2:                                checks ─ queue ─── durable ─ publish (after 1's)
//! ```

use std::{
    collections::BTreeSet,
    pin::pin,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
};

use alloy_primitives::Address;
use futures_util::{StreamExt, stream::FuturesOrdered};
use jsonrpsee::{
    Extensions,
    server::{
        BatchResponseBuilder, MethodResponse,
        middleware::rpc::{Batch, BatchEntry, BatchEntryErr, RpcServiceT},
    },
    types::{ErrorObject, Id},
};
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::RpcError;

/// How far a batch's calls have got through one ordered step: every call below `next` has
/// passed it; a call that gave up before its turn is skipped when its turn comes.
#[derive(Debug, Default)]
struct Progress {
    next: u32,
    skipped: BTreeSet<u32>,
}

/// One ordered step of a batch (queueing in the log, or settling in the pools).
#[derive(Debug)]
struct Step {
    progress: Mutex<Progress>,
    /// Woken when the call at that index may pass.
    turns: Vec<Notify>,
}

impl Step {
    fn new(calls: usize) -> Arc<Self> {
        Arc::new(Self {
            progress: Mutex::default(),
            turns: (0..calls).map(|_| Notify::new()).collect(),
        })
    }

    fn reached(&self, index: u32) -> bool {
        self.progress.lock().next >= index
    }

    /// Waits until every call before `index` has passed.
    async fn wait(&self, index: u32) {
        let Some(turn) = self.turns.get(index as usize) else {
            return;
        };
        loop {
            let mut woken = pin!(turn.notified());
            woken.as_mut().enable();
            if self.reached(index) {
                return;
            }
            woken.await;
        }
    }

    /// The call at `index` passes (or, before its turn, will be skipped).
    fn pass(&self, index: u32) {
        let mut progress = self.progress.lock();
        if progress.next != index {
            progress.skipped.insert(index);
            return;
        }
        let mut next = index + 1;
        while progress.skipped.remove(&next) {
            next += 1;
        }
        progress.next = next;
        drop(progress);
        if let Some(turn) = self.turns.get(next as usize) {
            turn.notify_waiters();
        }
    }
}

/// A call's place in one ordered step. Dropping it passes the step on: at once if it is the
/// call's turn, else when the turn comes.
#[derive(Debug)]
pub(crate) struct Ticket {
    step: Arc<Step>,
    index: u32,
}

impl Ticket {
    /// Waits until every earlier call of the batch has passed the step.
    pub(crate) async fn turn(&self) {
        self.step.wait(self.index).await;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.step.pass(self.index);
    }
}

/// The tickets of one batch call, in its extensions: its place in the log and its turn to
/// change the pools. The handler takes them when it writes an order
/// ([`durable_then`](crate::replicate::durable_then)); the batch drops what is left when the
/// call ends.
#[derive(Debug, Clone)]
pub(crate) struct Turns(Arc<Mutex<Option<(Ticket, Ticket)>>>);

impl Turns {
    /// The tickets of the call `ext` belongs to, if it is a batch's and they were not taken
    /// yet: (its place in the log, its turn to change the pools).
    pub(crate) fn take(ext: &Extensions) -> Option<(Ticket, Ticket)> {
        ext.get::<Self>().and_then(|turns| turns.0.lock().take())
    }

    /// Whether the call wrote nothing (its tickets are still here).
    fn unwritten(&self) -> bool {
        self.0.lock().is_some()
    }
}

/// What a batch call's runs have spent of its request budgets, shared by them (in the call's
/// extensions): a call that runs again is one request, and must not spend twice.
#[derive(Debug, Clone, Default)]
pub(crate) struct Admission(Arc<Spent>);

#[derive(Debug, Default)]
struct Spent {
    peer: AtomicBool,
    sender: OnceLock<Address>,
}

impl Admission {
    /// Admits the call `ext` belongs to: `peer` spends from its peer's budget, then `sender`
    /// proves its sender and spends from that one's. In a batch each runs until it has
    /// succeeded once; a refusal spends nothing, so a call refused on its first run is checked
    /// again on its second.
    pub(crate) fn admit(
        ext: &Extensions,
        peer: impl FnOnce() -> Result<(), RpcError>,
        sender: impl FnOnce() -> Result<Address, RpcError>,
    ) -> Result<Address, RpcError> {
        let Some(Self(spent)) = ext.get::<Self>() else {
            peer()?;
            return sender();
        };
        if let Some(from) = spent.sender.get() {
            return Ok(*from);
        }
        if !spent.peer.load(Ordering::Acquire) {
            peer()?;
            spent.peer.store(true, Ordering::Release);
        }
        let from = sender()?;
        // The runs of a call follow each other, so nothing else sets it meanwhile.
        let _ = spent.sender.set(from);
        Ok(from)
    }
}

/// Runs `batch` on `service` as the module doc says and puts the answers together in body
/// order, at most `limit` bytes of them (once they are more, jsonrpsee's error answer for a
/// batch too long). `orders` tells the methods that place or cancel orders.
pub(crate) async fn run<'a, S>(
    service: S,
    batch: Batch<'a>,
    limit: usize,
    orders: fn(&str) -> bool,
) -> MethodResponse
where
    S: RpcServiceT<MethodResponse = MethodResponse, NotificationResponse = MethodResponse>
        + Clone
        + Send
        + Sync
        + 'a,
{
    let entries: Vec<_> = batch.into_iter().collect();
    let (queue, settle) = (Step::new(entries.len()), Step::new(entries.len()));
    let mut calls = FuturesOrdered::new();
    for (index, entry) in entries.into_iter().enumerate() {
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        let call = Call {
            index,
            queue: queue.clone(),
            settle: settle.clone(),
            turns: Turns(Arc::new(Mutex::new(Some((
                Ticket {
                    step: queue.clone(),
                    index,
                },
                Ticket {
                    step: settle.clone(),
                    index,
                },
            ))))),
        };
        let service = service.clone();
        calls.push_back(async move {
            let answer = call.run(&service, entry, orders).await;
            // What the handler did not take passes on now.
            drop(call.turns.0.lock().take());
            answer
        });
    }
    let mut answers = BatchResponseBuilder::new_with_limit(limit);
    let mut notified = false;
    while let Some(answer) = calls.next().await {
        let Some(answer) = answer else {
            notified = true;
            continue;
        };
        if let Err(too_long) = answers.append(answer) {
            // The calls not answered yet are dropped; one that queued an order finishes
            // writing and settling it on its own task.
            return too_long;
        }
    }
    if answers.is_empty() && notified {
        MethodResponse::notification()
    } else {
        MethodResponse::from_batch(answers.finish())
    }
}

/// One entry of a batch and its place in the two steps.
struct Call {
    index: u32,
    queue: Arc<Step>,
    settle: Arc<Step>,
    turns: Turns,
}

impl Call {
    /// Runs the entry in its turn; `None` for a notification with nothing to answer.
    async fn run<S>(
        &self,
        service: &S,
        entry: Result<BatchEntry<'_>, BatchEntryErr<'_>>,
        orders: fn(&str) -> bool,
    ) -> Option<MethodResponse>
    where
        S: RpcServiceT<MethodResponse = MethodResponse, NotificationResponse = MethodResponse>,
    {
        let request = match entry {
            Ok(BatchEntry::Call(request)) => request,
            Ok(BatchEntry::Notification(notification)) => {
                self.queue.wait(self.index).await;
                self.settle.wait(self.index).await;
                let answer = service.notification(notification).await;
                // A notification that would place an order is refused with an answer.
                return answer.is_error().then_some(answer);
            }
            Err(error) => {
                let (error, id): (ErrorObject<'_>, Id<'_>) = BatchEntryErr::into_parts(error);
                return Some(MethodResponse::error(id, error));
            }
        };
        self.queue.wait(self.index).await;
        if !orders(request.method_name()) {
            self.settle.wait(self.index).await;
            return Some(service.call(request).await);
        }
        let mut request = request;
        request.extensions_mut().insert(self.turns.clone());
        request.extensions_mut().insert(Admission::default());
        let again = (!self.settle.reached(self.index)).then(|| request.clone());
        let answer = service.call(request).await;
        match again {
            Some(request) if answer.is_error() && self.turns.unwritten() => {
                self.settle.wait(self.index).await;
                Some(service.call(request).await)
            }
            _ => Some(answer),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::atomic::{AtomicBool, AtomicUsize, Ordering},
        time::Duration,
    };

    use jsonrpsee::{
        ResponsePayload,
        server::middleware::rpc::Notification,
        types::{ErrorObjectOwned, Request},
    };

    use super::*;

    /// Order calls as the handlers make them, without a pool: `first` queues at once and
    /// settles once `release` is told; `second` fails while `first` is unsettled; `read`
    /// answers whether `first` had settled when it ran.
    #[derive(Debug, Clone, Default)]
    struct Orders {
        settled: Arc<AtomicBool>,
        second_runs: Arc<AtomicUsize>,
        /// Budget spends of the second call: (peer, sender).
        spends: Arc<(AtomicUsize, AtomicUsize)>,
        second_ran: Arc<Notify>,
        read_ran: Arc<Notify>,
        release: Arc<Notify>,
    }

    impl Orders {
        async fn first(&self, ext: &Extensions) {
            let (queue, settle) = Turns::take(ext).unzip();
            let this = self.clone();
            let write = tokio::spawn(async move {
                drop(queue);
                this.release.notified().await;
                if let Some(settle) = &settle {
                    settle.turn().await;
                }
                this.settled.store(true, Ordering::SeqCst);
            });
            write.await.expect("the write ends");
        }
    }

    impl RpcServiceT for Orders {
        type MethodResponse = MethodResponse;
        type NotificationResponse = MethodResponse;
        type BatchResponse = MethodResponse;

        fn call<'a>(
            &self,
            request: Request<'a>,
        ) -> impl std::future::Future<Output = MethodResponse> + Send + 'a {
            let this = self.clone();
            async move {
                let id = request.id().into_owned();
                let settled = match request.method_name() {
                    "first" => {
                        this.first(request.extensions()).await;
                        true
                    }
                    "second" => {
                        let spends = &this.spends;
                        let admitted = Admission::admit(
                            request.extensions(),
                            || {
                                spends.0.fetch_add(1, Ordering::SeqCst);
                                Ok(())
                            },
                            || {
                                spends.1.fetch_add(1, Ordering::SeqCst);
                                Ok(Address::ZERO)
                            },
                        );
                        assert!(admitted.is_ok());
                        this.second_runs.fetch_add(1, Ordering::SeqCst);
                        // Read before the test hears of the run: once told, it lets the first
                        // settle, which must not change this run's outcome.
                        let settled = this.settled.load(Ordering::SeqCst);
                        this.second_ran.notify_one();
                        settled
                    }
                    _ => {
                        let settled = this.settled.load(Ordering::SeqCst);
                        this.read_ran.notify_one();
                        return MethodResponse::response(
                            id,
                            ResponsePayload::success(settled),
                            usize::MAX,
                        );
                    }
                };
                if settled {
                    MethodResponse::response(id, ResponsePayload::success("ok"), usize::MAX)
                } else {
                    let pending = ErrorObjectOwned::owned(-32000, "pending", None::<()>);
                    MethodResponse::error(id, pending)
                }
            }
        }

        fn batch<'a>(
            &self,
            batch: Batch<'a>,
        ) -> impl std::future::Future<Output = MethodResponse> + Send + 'a {
            run(self.clone(), batch, usize::MAX, |method| method != "read")
        }

        fn notification<'a>(
            &self,
            _: Notification<'a>,
        ) -> impl std::future::Future<Output = MethodResponse> + Send + 'a {
            std::future::ready(MethodResponse::notification())
        }
    }

    fn calls(methods: &[&str]) -> Batch<'static> {
        Batch::from(
            methods
                .iter()
                .enumerate()
                .map(|(id, method)| {
                    let id = Id::Number(id as u64);
                    Ok(BatchEntry::Call(Request::owned((*method).into(), None, id)))
                })
                .collect(),
        )
    }

    fn answers(response: &MethodResponse) -> Vec<serde_json::Value> {
        serde_json::from_str(response.as_json().get()).expect("a batch answer")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn test_an_order_that_failed_beside_an_unsettled_one_runs_again_after_it() {
        let orders = Orders::default();
        let batch = tokio::spawn(orders.batch(calls(&["first", "second"])));
        // The second ran while the first was queued but not settled, and failed.
        orders.second_ran.notified().await;
        assert!(!orders.settled.load(Ordering::SeqCst));
        orders.release.notify_one();
        let answers = answers(&batch.await.expect("the batch ends"));
        assert_eq!(answers[0]["result"], "ok");
        assert_eq!(answers[1]["result"], "ok", "its second run is the answer");
        assert_eq!(orders.second_runs.load(Ordering::SeqCst), 2);
        let spends = &orders.spends;
        assert_eq!(
            (
                spends.0.load(Ordering::SeqCst),
                spends.1.load(Ordering::SeqCst)
            ),
            (1, 1),
            "its budgets are spent once over both runs"
        );
    }

    #[test]
    fn test_an_admission_spends_each_budget_once_and_a_refusal_nothing() {
        let mut ext = Extensions::new();
        ext.insert(Admission::default());
        let peer = AtomicUsize::new(0);
        let spend_peer = || {
            peer.fetch_add(1, Ordering::SeqCst);
            Ok(())
        };
        let refused = Admission::admit(&ext, spend_peer, || {
            Err(RpcError::RateLimited { retry_after_ms: 1 })
        });
        assert!(refused.is_err());
        let sender = Address::repeat_byte(7);
        assert_eq!(
            Admission::admit(&ext, spend_peer, || Ok(sender)).ok(),
            Some(sender)
        );
        let again = Admission::admit(&ext, spend_peer, || {
            Err(RpcError::RateLimited { retry_after_ms: 1 })
        });
        assert_eq!(again.ok(), Some(sender), "admitted once, not checked again");
        assert_eq!(
            peer.load(Ordering::SeqCst),
            1,
            "the peer's budget spent once"
        );
        // Outside a batch every call spends.
        let single = Extensions::new();
        assert!(Admission::admit(&single, spend_peer, || Ok(sender)).is_ok());
        assert_eq!(peer.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn test_a_call_that_is_no_order_waits_for_the_orders_before_it() {
        let orders = Orders::default();
        let batch = tokio::spawn(orders.batch(calls(&["first", "read"])));
        // The clock moves only once every task waits: the read had every chance to run.
        let read = tokio::time::timeout(Duration::from_secs(1), orders.read_ran.notified());
        assert!(
            read.await.is_err(),
            "the read ran while the write was unsettled"
        );
        orders.release.notify_one();
        let answers = answers(&batch.await.expect("the batch ends"));
        assert_eq!(
            answers[1]["result"], true,
            "the read ran after the write settled"
        );
    }

    fn tickets(step: &Arc<Step>, n: u32) -> Vec<Ticket> {
        (0..n)
            .map(|index| Ticket {
                step: step.clone(),
                index,
            })
            .collect()
    }

    #[test]
    fn test_a_step_passes_in_order_and_skips_a_call_that_gave_up() {
        let step = Step::new(4);
        let mut all = tickets(&step, 4);
        let (t3, t2) = (all.pop().expect("3"), all.pop().expect("2"));
        assert!(step.reached(0) && !step.reached(1));
        // Call 2 gives up before its turn: it is skipped once call 1 passes.
        drop(t2);
        assert!(!step.reached(2), "not before the calls ahead of it");
        drop(all.pop());
        assert!(
            !step.reached(2),
            "call 1 gave up too, but call 0 has not passed"
        );
        drop(all.pop());
        assert!(step.reached(3), "0 passed, 1 and 2 skipped");
        drop(t3);
        assert_eq!(step.progress.lock().next, 4);
        assert!(step.progress.lock().skipped.is_empty());
    }

    #[tokio::test]
    async fn test_a_wait_ends_when_the_calls_before_it_have_passed() {
        let step = Step::new(3);
        let mut all = tickets(&step, 3);
        let last = all.pop().expect("2");
        let waiting = tokio::spawn(async move {
            last.turn().await;
            last.index
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        all.clear();
        assert_eq!(waiting.await.expect("waits"), 2);
    }
}
