//! The `payload_attributes` stream: what the proposer announces reaches subscribers, a late
//! subscriber gets the open slot first, other topics are refused, and shutdown ends streams.

use std::{
    io::{Read, Write},
    time::{Duration, Instant},
};

use cobuild_relay::events::{SubscribeConfig, payload_event, subscribe};
use tokio::sync::oneshot;

use super::Devnet;

/// Waits for the next announcement on `rx` (bounded, so a broken stream fails the test).
async fn next_slot(
    rx: &mut tokio::sync::watch::Receiver<Option<cobuild_relay::events::ReceivedSlot>>,
) -> cobuild_relay::events::ReceivedSlot {
    tokio::time::timeout(Duration::from_secs(10), rx.changed())
        .await
        .expect("an announcement within 10 s")
        .expect("the subscription task runs");
    rx.borrow_and_update().clone().expect("an announcement")
}

fn announce(devnet: &Devnet, slot: u64, window: Duration) -> Instant {
    let head = devnet.chain.head();
    let until = Instant::now() + window;
    devnet.relay.announce(
        payload_event(
            slot,
            head.number,
            head.hash(),
            &devnet.attrs(),
            head.gas_limit,
        ),
        until,
    );
    until
}

#[tokio::test]
async fn test_subscribers_get_the_open_slot_first_then_each_new_one() {
    let devnet = Devnet::start().await;
    let mut early = subscribe(SubscribeConfig::new(&devnet.url)).expect("subscribes");
    let until = announce(&devnet, 1, Duration::from_secs(3));
    let got = next_slot(&mut early).await;
    assert_eq!(got.event.slot(), 1);
    assert_eq!(got.event.parent_hash(), devnet.chain.head().hash());
    assert_eq!(
        got.event
            .block_attributes(devnet.chain.head().gas_limit, devnet.attrs().extra_data),
        devnet.attrs()
    );
    // The window is measured when the message leaves: never past the relay's own deadline.
    assert!(got.deadline() <= until + Duration::from_millis(50));
    assert!(got.deadline() > until - Duration::from_secs(1));

    announce(&devnet, 2, Duration::from_secs(3));
    assert_eq!(next_slot(&mut early).await.event.slot(), 2);
    let mut late = subscribe(SubscribeConfig::new(&devnet.url)).expect("subscribes");
    assert_eq!(next_slot(&mut late).await.event.slot(), 2);
}

#[tokio::test]
async fn test_other_topics_are_refused() {
    let devnet = Devnet::start().await;
    let addr = devnet.url.trim_start_matches("http://").to_owned();
    let reply = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).expect("connects");
        stream
            .write_all(
                b"GET /eth/v1/events?topics=head HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            )
            .expect("writes");
        let mut reply = String::new();
        stream.read_to_string(&mut reply).expect("reads");
        reply
    })
    .await
    .expect("joins");
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
}

#[tokio::test]
async fn test_event_streams_are_capped() {
    let devnet = Devnet::start_with(|config| config.max_subscribers = 1).await;
    let addr = devnet.url.trim_start_matches("http://").to_owned();
    let open = |addr: String| {
        tokio::task::spawn_blocking(move || {
            let mut stream = std::net::TcpStream::connect(addr).expect("connects");
            stream
                .write_all(
                    b"GET /eth/v1/events?topics=payload_attributes HTTP/1.1\r\nHost: x\r\n\r\n",
                )
                .expect("writes");
            let mut head = [0u8; 12];
            stream.read_exact(&mut head).expect("reads a status line");
            (stream, String::from_utf8_lossy(&head).into_owned())
        })
    };
    let (first, status) = open(addr.clone()).await.expect("joins");
    assert_eq!(status, "HTTP/1.1 200");
    let (_, status) = open(addr.clone()).await.expect("joins");
    assert_eq!(status, "HTTP/1.1 503", "one stream is the cap");
    // A subscriber that hangs up frees its place (the relay notices at its next write, a
    // keep-alive at most a second later).
    drop(first);
    let mut served = false;
    for _ in 0..50 {
        let (_stream, status) = open(addr.clone()).await.expect("joins");
        if status == "HTTP/1.1 200" {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "the freed place is given again");
}

#[tokio::test]
async fn test_shutdown_ends_open_streams() {
    let devnet = Devnet::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(devnet.relay.clone().serve(listener, async {
        let _ = stopped.await;
    }));
    let mut rx = subscribe(SubscribeConfig::new(&url)).expect("subscribes");
    announce(&devnet, 1, Duration::from_secs(3));
    next_slot(&mut rx).await;
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server stops although a subscriber is connected")
        .expect("joins")
        .expect("serves cleanly");
}

#[tokio::test]
async fn test_slots_from_several_sources_are_merged_and_outlive_a_source_that_stops() {
    let (first, second) = (Devnet::start().await, Devnet::start().await);
    let mut merged = cobuild_relay::events::subscribe_all(vec![
        SubscribeConfig::new(&first.url),
        SubscribeConfig::new(&second.url),
    ])
    .expect("subscribes");
    // Heard from whichever source announces it.
    announce(&first, 1, Duration::from_secs(3));
    let got = next_slot(&mut merged).await;
    assert_eq!(got.event.slot(), 1);
    assert_eq!(got.event.parent_hash(), first.chain.head().hash());
    announce(&second, 2, Duration::from_secs(3));
    assert_eq!(next_slot(&mut merged).await.event.slot(), 2);
    // The first source goes away; the second still announces.
    drop(first);
    announce(&second, 3, Duration::from_secs(3));
    assert_eq!(next_slot(&mut merged).await.event.slot(), 3);
}

#[tokio::test]
async fn test_the_slot_clock_comes_from_a_beacon_nodes_genesis_and_spec() {
    use axum::{Json, Router, routing::get};
    use cobuild_relay::events::{GENESIS_PATH, SPEC_PATH, fetch_genesis, fetch_slot_clock};
    use serde_json::json;

    let serve = |seconds: &'static str| async move {
        let app = Router::new()
            .route(
                GENESIS_PATH,
                get(|| async {
                    Json(json!({"data": {
                        "genesis_time": "1606824023",
                        "genesis_validators_root": format!("0x{}", "4b".repeat(32)),
                        "genesis_fork_version": "0x00000000"
                    }}))
                }),
            )
            .route(
                SPEC_PATH,
                get(move || async move {
                    Json(json!({"data": {"SECONDS_PER_SLOT": seconds, "SLOTS_PER_EPOCH": "32"}}))
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let url = format!("http://{}", listener.local_addr().expect("bound"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    };
    let url = serve("12").await;
    let clock = fetch_slot_clock(&url, Duration::from_secs(5))
        .await
        .expect("reads the clock");
    assert_eq!(clock.seconds_per_slot(), 12);
    assert_eq!(clock.start(10), 1_606_824_023 + 120);
    // The genesis also names the fork version that makes the builder signing domain.
    let genesis = fetch_genesis(&url, Duration::from_secs(5))
        .await
        .expect("reads the genesis");
    assert_eq!((genesis.clock, genesis.fork_version), (clock, Some([0; 4])));

    // A spec without a usable slot length, and a node that is not there, are errors.
    let error = fetch_slot_clock(&serve("0").await, Duration::from_secs(5))
        .await
        .expect_err("slots of no length");
    assert!(error.to_string().contains("SECONDS_PER_SLOT"), "{error}");
    assert!(
        fetch_slot_clock("http://127.0.0.1:1", Duration::from_secs(5))
            .await
            .is_err()
    );
}
