//! One client per relay, each with its own settings: headers, SSZ and gzip bodies, a maximum
//! bid; and every success answer a real relay gives is a bid received.

use std::sync::Arc;

use alloy_primitives::U256;
use axum::{
    Router,
    body::Bytes,
    http::{HeaderMap, StatusCode, header},
    response::IntoResponse,
    routing::post,
};
use cobuild_relay::{
    RelayClient, SubmitBlockRequest,
    client::{self, BLOCKS_PATH, Encoding, SubmitOutcome},
};
use parking_lot::Mutex;

use crate::{Devnet, GWEI};

/// What a stand-in relay received: each request's headers and body.
type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A relay that records every submission and answers `status` with `body`.
async fn recording_relay(status: StatusCode, body: &'static str) -> (String, Received) {
    let received: Received = Arc::default();
    let seen = received.clone();
    let app = Router::new().route(
        BLOCKS_PATH,
        post(move |headers: HeaderMap, bytes: Bytes| {
            let seen = seen.clone();
            async move {
                seen.lock().push((headers, bytes));
                (status, body).into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let url = format!("http://{}", listener.local_addr().expect("bound"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

#[tokio::test]
async fn test_a_bid_goes_in_ssz_gzipped_with_the_relays_headers_and_the_devnet_relay_takes_it() {
    let devnet = Devnet::start().await;
    let executed = devnet.paying_block(GWEI);
    let bid = devnet.bid(&executed);
    let settings = |url: &str| client::Config {
        headers: vec![
            ("X-Auth-Token".to_owned(), "secret".to_owned()),
            ("X-Builder-Id".to_owned(), "cobuild-test".to_owned()),
        ],
        encoding: Encoding::Ssz,
        gzip: true,
        ..client::Config::new(url)
    };

    // What goes on the wire.
    let (url, received) = recording_relay(StatusCode::OK, "").await;
    let outcome = RelayClient::new(settings(&url))
        .expect("client")
        .submit(&bid)
        .await;
    assert_eq!(outcome.expect("sent"), SubmitOutcome::Sent);
    let (headers, body) = received.lock().pop().expect("one request");
    let sequence = |headers: &HeaderMap| -> u64 {
        headers[client::SEQUENCE_HEADER]
            .to_str()
            .expect("text")
            .parse()
            .expect("a decimal number")
    };
    let first = sequence(&headers);
    assert_eq!(headers[header::CONTENT_TYPE], "application/octet-stream");
    assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
    assert_eq!(headers["x-auth-token"], "secret");
    assert_eq!(headers["x-builder-id"], "cobuild-test");
    let mut ssz = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut ssz)
        .expect("gzip");
    let decoded: SubmitBlockRequest = ssz::Decode::from_ssz_bytes(&ssz).expect("ssz");
    assert_eq!(
        decoded.bid_trace().block_hash,
        executed.block.hash,
        "the same bid"
    );

    // Each submission is numbered after the one before it.
    // (on a clock that moves a second between them, past the per-second cap)
    let clock = crate::gate::ManualClock::new();
    let sender = RelayClient::with_clock(settings(&url), clock.clone()).expect("client");
    for second in 0..2 {
        clock.set(std::time::Duration::from_secs(second));
        assert_eq!(
            sender.submit_replacing(&bid).await.expect("sent"),
            SubmitOutcome::Sent
        );
    }
    let numbers: Vec<u64> = received.lock().iter().map(|(h, _)| sequence(h)).collect();
    assert!(
        numbers[0] > first && numbers[1] > numbers[0],
        "{first} {numbers:?}"
    );
    // A bid numbered when it was made keeps that number, even if it reaches the gate after
    // one numbered later.
    let (made_first, made_second) = (sender.next_sequence(), sender.next_sequence());
    assert!(made_second > made_first && made_first > numbers[1]);
    clock.set(std::time::Duration::from_secs(2));
    assert_eq!(
        sender
            .submit_replacing_as(&bid, made_first)
            .await
            .expect("sent"),
        SubmitOutcome::Sent
    );
    assert_eq!(
        sequence(&received.lock().last().expect("sent").0),
        made_first
    );

    // A relay that reads SSZ and gzip (the devnet relay does, as mev-boost-relay) keeps it.
    let outcome = RelayClient::new(settings(&devnet.url))
        .expect("client")
        .submit(&bid)
        .await;
    assert_eq!(outcome.expect("accepted"), SubmitOutcome::Sent);
    let winner = devnet.relay.take_best(devnet.ctx.slot).expect("a winner");
    assert_eq!(winner.trace.block_hash, executed.block.hash);
}

#[tokio::test]
async fn test_a_bid_over_the_relays_maximum_stays_home_and_every_success_answer_is_received() {
    let devnet = Devnet::start().await;
    let bid = devnet.bid(&devnet.paying_block(GWEI));

    let (url, received) = recording_relay(StatusCode::OK, "").await;
    let capped = RelayClient::new(client::Config {
        max_bid: Some(U256::from(GWEI - 1)),
        ..client::Config::new(&url)
    })
    .expect("client");
    assert_eq!(
        capped.submit(&bid).await.expect("not sent"),
        SubmitOutcome::OverMaxBid {
            max_bid: U256::from(GWEI - 1)
        }
    );
    assert!(received.lock().is_empty(), "nothing reached the relay");
    let at_max = RelayClient::new(client::Config {
        max_bid: Some(U256::from(GWEI)),
        ..client::Config::new(&url)
    })
    .expect("client");
    assert_eq!(
        at_max.submit(&bid).await.expect("sent"),
        SubmitOutcome::Sent
    );

    // An empty 200, `{}`, and 202 (a bid below the relay's floor, still received).
    for (status, body) in [
        (StatusCode::OK, ""),
        (StatusCode::OK, "{}"),
        (StatusCode::ACCEPTED, ""),
        (StatusCode::NO_CONTENT, ""),
    ] {
        let (url, received) = recording_relay(status, body).await;
        let client = RelayClient::new(client::Config::new(&url)).expect("client");
        assert_eq!(
            client.submit(&bid).await.expect("received"),
            SubmitOutcome::Sent,
            "{status} {body:?}"
        );
        assert_eq!(received.lock().len(), 1);
    }

    // A header that is not one is refused when the client is made, not at the first bid.
    let bad = client::Config {
        headers: vec![("Bad Header".to_owned(), "x".to_owned())],
        ..client::Config::new(&devnet.url)
    };
    assert!(matches!(
        RelayClient::new(bad),
        Err(client::RelayError::InvalidHeader { .. })
    ));
}

/// A relay on loopback behind TLS with a certificate of its own for `localhost`: it answers the
/// validators endpoint with no duties and hands each request's head to `heads`. Returns its
/// port and the certificate (DER).
fn tls_relay(heads: std::sync::mpsc::Sender<String>) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};

    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let cert = certified.cert.der().to_vec();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocols")
    .with_no_client_auth()
    .with_single_cert(vec![cert.clone().into()], key)
    .expect("server config");
    let config = Arc::new(config);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let port = listener.local_addr().expect("bound").port();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let connection = rustls::ServerConnection::new(config.clone()).expect("connection");
            let mut tls = rustls::StreamOwned::new(connection, tcp);
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            // A failed handshake (a client that does not trust the certificate) ends here.
            while !head.ends_with(b"\r\n\r\n") {
                match tls.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            if head.ends_with(b"\r\n\r\n") {
                let _ = heads.send(String::from_utf8_lossy(&head).into_owned());
                let _ = tls.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n[]",
                );
                let _ = tls.flush();
            }
        }
    });
    (port, cert)
}

#[tokio::test]
async fn test_a_relay_is_reached_over_tls_with_its_key_in_the_url_and_an_untrusted_one_is_not() {
    let (heads, seen) = std::sync::mpsc::channel();
    let (port, cert) = tls_relay(heads);
    // Relay lists write each relay as https://<its BLS key>@host.
    let url = format!("https://0xa1b2c3@localhost:{port}");
    let trusting = RelayClient::new(client::Config {
        extra_roots: vec![cert],
        ..client::Config::new(url.clone())
    })
    .expect("client");
    let duties = trusting.proposer_duties().await.expect("reached over TLS");
    assert!(duties.is_empty());
    let head = seen.recv().expect("the relay saw the request");
    assert!(
        head.starts_with("GET /relay/v1/builder/validators HTTP/1.1\r\n"),
        "{head}"
    );
    assert!(
        !head.contains("a1b2c3"),
        "the key in the URL is not sent: {head}"
    );

    // Without the relay's certificate among its roots, the client refuses the connection.
    let wary = RelayClient::new(client::Config::new(url)).expect("client");
    assert!(
        wary.proposer_duties().await.is_err(),
        "an untrusted certificate"
    );
    assert!(seen.try_recv().is_err(), "no request reached the relay");

    // Neither a scheme other than http(s) nor a certificate that does not decode is taken.
    assert!(RelayClient::new(client::Config::new("ftp://localhost")).is_err());
    assert!(
        RelayClient::new(client::Config {
            extra_roots: vec![b"not a certificate".to_vec()],
            ..client::Config::new(format!("https://localhost:{port}"))
        })
        .is_err()
    );
}

#[tokio::test]
async fn test_the_devnet_relay_keeps_a_builders_newest_numbered_bid_whatever_arrives_last() {
    let devnet = Devnet::start().await;
    let (older, newer) = (
        devnet.bid(&devnet.paying_block(2 * GWEI)),
        devnet.bid(&devnet.paying_block(GWEI)),
    );
    let post = |bid: &SubmitBlockRequest, sequence: &str| {
        let body = serde_json::to_vec(bid).expect("json");
        let url = format!("{}{BLOCKS_PATH}?cancellations=1", devnet.url);
        let sequence = sequence.to_owned();
        async move {
            tokio::task::spawn_blocking(move || {
                cobuild_test_utils::http_post(
                    &url,
                    &body,
                    &[
                        ("content-type", "application/json"),
                        (client::SEQUENCE_HEADER, &sequence),
                    ],
                )
            })
            .await
            .expect("task")
        }
    };
    // The newer block (made second, worth less) arrives first; the older one, worth more, after.
    assert_eq!(post(&newer, "2").await.0, 200);
    assert_eq!(post(&older, "1").await.0, 200);
    let winner = devnet.relay.take_best(devnet.ctx.slot).expect("a winner");
    assert_eq!(
        winner.trace.value,
        newer.bid_trace().value,
        "the newest block stays"
    );

    // A number that is not one is refused, saying which header.
    let (status, reply) = post(&newer, "soon").await;
    assert_eq!(status, 400, "{reply}");
    assert!(reply.contains(client::SEQUENCE_HEADER), "{reply}");
}
