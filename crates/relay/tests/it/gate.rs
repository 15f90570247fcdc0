//! The client's gate against a live relay: bids that do not improve stay home, and the
//! per-second cap holds, on a clock the test moves by hand.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use alloy_primitives::U256;
use cobuild_relay::{Clock, client::SubmitOutcome};
use parking_lot::Mutex;

use crate::{Devnet, GWEI};

/// A clock that moves only when the test says so.
#[derive(Debug)]
pub(crate) struct ManualClock {
    start: Instant,
    elapsed: Mutex<Duration>,
}

impl ManualClock {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            elapsed: Mutex::new(Duration::ZERO),
        })
    }

    pub(crate) fn set(&self, elapsed: Duration) {
        *self.elapsed.lock() = elapsed;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + *self.elapsed.lock()
    }
}

#[tokio::test]
async fn test_client_sends_only_improving_bids() {
    let devnet = Devnet::start().await;
    let client = devnet.client();
    let two = devnet.bid(&devnet.paying_block(2 * GWEI));
    let one = devnet.bid(&devnet.paying_block(GWEI));
    let three = devnet.bid(&devnet.paying_block(3 * GWEI));

    assert_eq!(
        client.submit(&two).await.expect("sent"),
        SubmitOutcome::Sent
    );
    let last_sent = U256::from(2 * GWEI);
    assert_eq!(
        client.submit(&two).await.expect("not sent"),
        SubmitOutcome::NotImproved { last_sent }
    );
    assert_eq!(
        client.submit(&one).await.expect("not sent"),
        SubmitOutcome::NotImproved { last_sent }
    );
    assert_eq!(devnet.relay.stats().accepted, 1, "the relay saw one bid");
    assert_eq!(
        client.submit(&three).await.expect("sent"),
        SubmitOutcome::Sent
    );
    assert_eq!(devnet.relay.stats().accepted, 2);
    // Clones share the gate, and a submission runs on any task (its future is Send).
    let clone = client.clone();
    let outcome = tokio::spawn(async move { clone.submit(&three).await })
        .await
        .expect("task")
        .expect("not sent");
    assert!(matches!(outcome, SubmitOutcome::NotImproved { .. }));
}

#[tokio::test]
async fn test_client_spreads_its_per_second_cap_over_the_second() {
    let devnet = Devnet::start().await;
    let clock = ManualClock::new();
    let client = devnet.client_with(2, clock.clone());
    let bids: Vec<_> = (1..=4u128)
        .map(|i| devnet.bid(&devnet.paying_block(i * GWEI)))
        .collect();

    assert_eq!(
        client.submit(&bids[0]).await.expect("1"),
        SubmitOutcome::Sent
    );
    // Two a second go half a second apart, not both at once.
    clock.set(Duration::from_millis(400));
    assert_eq!(
        client.submit(&bids[1]).await.expect("2"),
        SubmitOutcome::RateLimited {
            retry_in: Duration::from_millis(100)
        }
    );
    assert_eq!(
        devnet.relay.stats().accepted,
        1,
        "the held bid was not sent"
    );
    // When the client says, the same bid goes.
    clock.set(Duration::from_millis(500));
    assert_eq!(
        client.submit(&bids[1]).await.expect("2"),
        SubmitOutcome::Sent
    );
    clock.set(Duration::from_millis(999));
    assert_eq!(
        client.submit(&bids[2]).await.expect("3"),
        SubmitOutcome::RateLimited {
            retry_in: Duration::from_millis(1)
        }
    );
    clock.set(Duration::from_millis(1000));
    assert_eq!(
        client.submit(&bids[2]).await.expect("3"),
        SubmitOutcome::Sent
    );
    clock.set(Duration::from_millis(1500));
    assert_eq!(
        client.submit(&bids[3]).await.expect("4"),
        SubmitOutcome::Sent
    );
    assert_eq!(devnet.relay.stats().accepted, 4);
    let winner = devnet.relay.take_best(devnet.ctx.slot).expect("winner");
    assert_eq!(winner.trace.value, U256::from(4 * GWEI));
}

#[tokio::test]
async fn test_refused_bid_gives_its_value_back() {
    let devnet = Devnet::start().await;
    let client = devnet.client();
    let executed = devnet.paying_block(5 * GWEI);
    let mut inflated = crate::fulu(devnet.bid(&executed));
    inflated.message.value = U256::from(6 * GWEI);
    inflated.signature =
        cobuild_relay::bid::sign_bid(&devnet.builder, &inflated.message, devnet.relay.domain());
    let err = client
        .submit(&cobuild_relay::SubmitBlockRequest::Fulu(inflated))
        .await
        .expect_err("refused");
    assert!(err.is_refusal(), "{err}");
    // The refused value does not count as sent: the honest, lower bid still goes.
    assert_eq!(
        client.submit(&devnet.bid(&executed)).await.expect("sent"),
        SubmitOutcome::Sent
    );
}
