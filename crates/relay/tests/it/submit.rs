//! The devnet relay's judgement: valid bids are kept (the best per slot), every invalid one is
//! answered 400 and never wins.

use alloy_primitives::{B256, U256};
use alloy_rpc_types_engine::ExecutionPayloadV3;
use cobuild_relay::{
    RejectReason, SubmitBlockRequest,
    bid::{BuilderKey, builder_domain, sign_bid, verify_registration},
    client::{RelayError, SubmitOutcome},
};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};

use crate::{Devnet, FEE_RECIPIENT, GWEI, SINK, fulu, transfer};

async fn refused(devnet: &Devnet, submission: cobuild_relay::SignedBidSubmissionV5) -> RelayError {
    // A fresh client per bid, so the client's own gate never holds one back.
    devnet
        .client()
        .submit(&SubmitBlockRequest::Fulu(submission))
        .await
        .expect_err("the relay must refuse this bid")
}

#[tokio::test]
async fn test_valid_bid_is_accepted_and_taken_as_best() {
    let devnet = Devnet::start().await;
    let executed = devnet.paying_block(GWEI);
    let bid = devnet.bid(&executed);
    assert_eq!(
        bid.bid_trace().value,
        U256::from(GWEI),
        "value is the payment"
    );

    let outcome = devnet.client().submit(&bid).await.expect("accepted");
    assert_eq!(outcome, SubmitOutcome::Sent);

    let winner = devnet.relay.take_best(devnet.ctx.slot).expect("a winner");
    assert_eq!(winner.trace.block_hash, executed.block.hash);
    assert_eq!(winner.trace.value, U256::from(GWEI));
    assert_eq!(winner.trace.builder_pubkey, devnet.builder.public_key());
    assert_eq!(winner.executed.block.hash, executed.block.hash);
    assert!(
        devnet.relay.take_best(devnet.ctx.slot).is_none(),
        "taken once"
    );

    // The proposer's side: the winner commits and becomes the head.
    devnet.chain.commit(&winner.executed).expect("commits");
    assert_eq!(devnet.chain.head().hash(), executed.block.hash);
    assert_eq!(devnet.relay.stats().accepted, 1);
}

#[tokio::test]
async fn test_the_feed_gives_each_accepted_bid_with_its_transactions() {
    let devnet = Devnet::start().await;
    let mut feed = devnet.relay.accepted_bids();
    let executed = devnet.paying_block(GWEI);
    let before = std::time::Instant::now();
    let outcome = devnet.client().submit(&devnet.bid(&executed)).await;
    assert_eq!(outcome.expect("accepted"), SubmitOutcome::Sent);

    let bid = feed.try_recv().expect("the accepted bid is on the feed");
    assert_eq!(bid.slot, devnet.ctx.slot);
    assert_eq!(bid.block_hash, executed.block.hash);
    assert_eq!(bid.value, U256::from(GWEI));
    assert!(bid.received_at >= before, "stamped when it arrived");
    let hashes: Vec<B256> = executed
        .block
        .block
        .body
        .transactions
        .iter()
        .map(|tx| *tx.tx_hash())
        .collect();
    assert_eq!(bid.transactions, hashes);

    // A refused bid never reaches the feed.
    let mut bad = fulu(devnet.bid(&devnet.paying_block(2 * GWEI)));
    bad.signature = sign_bid(&devnet.builder, &bad.message, builder_domain([0; 4]));
    refused(&devnet, bad).await;
    assert!(feed.try_recv().is_err(), "only accepted bids are fed");
}

#[tokio::test]
async fn test_higher_bid_replaces_lower_and_lower_does_not() {
    let devnet = Devnet::start().await;
    let low = devnet.paying_block(GWEI);
    let high = devnet.paying_block(3 * GWEI);
    let middle = devnet.paying_block(2 * GWEI);
    let client = devnet.client();
    assert_eq!(
        client.submit(&devnet.bid(&low)).await.expect("low"),
        SubmitOutcome::Sent
    );
    assert_eq!(
        client.submit(&devnet.bid(&high)).await.expect("high"),
        SubmitOutcome::Sent
    );
    // A valid bid below the best is accepted (200) but does not replace it; this client
    // would not send it, so another builder process (another client) does.
    let other = devnet.client();
    assert_eq!(
        other.submit(&devnet.bid(&middle)).await.expect("middle"),
        SubmitOutcome::Sent
    );

    let winner = devnet.relay.take_best(devnet.ctx.slot).expect("a winner");
    assert_eq!(winner.trace.block_hash, high.block.hash);
    assert_eq!(winner.trace.value, U256::from(3 * GWEI));
    assert_eq!(devnet.relay.stats().accepted, 3);
}

#[tokio::test]
async fn test_a_withdrawal_replaces_the_builders_higher_bid() {
    let devnet = Devnet::start().await;
    let high = devnet.paying_block(3 * GWEI);
    let low = devnet.paying_block(GWEI);
    let client = devnet.client();
    assert_eq!(
        client.submit(&devnet.bid(&high)).await.expect("high"),
        SubmitOutcome::Sent
    );
    assert!(
        matches!(
            client.submit(&devnet.bid(&low)).await.expect("not sent"),
            SubmitOutcome::NotImproved { .. }
        ),
        "a plain lower bid stays home"
    );
    // The builder's high block held an order that was cancelled: it withdraws it with a lower
    // bid sent as a cancellation, and the relay must not keep the high one.
    assert_eq!(
        client
            .submit_replacing(&devnet.bid(&low))
            .await
            .expect("withdrawal"),
        SubmitOutcome::Sent
    );
    let winner = devnet.relay.take_best(devnet.ctx.slot).expect("a winner");
    assert_eq!(winner.trace.block_hash, low.block.hash);
}

#[tokio::test]
async fn test_invalid_bids_are_refused_and_never_win() {
    let devnet = Devnet::start().await;
    // A valid bid first, so "never wins" is tested against a real alternative.
    let honest = devnet.paying_block(GWEI);
    assert_eq!(
        devnet
            .client()
            .submit(&devnet.bid(&honest))
            .await
            .expect("honest bid accepted"),
        SubmitOutcome::Sent
    );

    // Bad signature: signed under another domain (mainnet's).
    let executed = devnet.paying_block(10 * GWEI);
    let mut bad_sig = fulu(devnet.bid(&executed));
    bad_sig.signature = sign_bid(&devnet.builder, &bad_sig.message, builder_domain([0; 4]));
    let err = refused(&devnet, bad_sig).await;
    assert_eq!(
        err.reject_reason(),
        Some(RejectReason::BadSignature),
        "{err}"
    );

    // A value changed after signing is a bad signature too.
    let mut resigned_not = fulu(devnet.bid(&executed));
    resigned_not.message.value = U256::from(11 * GWEI);
    let err = refused(&devnet, resigned_not).await;
    assert_eq!(
        err.reject_reason(),
        Some(RejectReason::BadSignature),
        "{err}"
    );

    // A correctly signed bid from a key that is not on the allow-list.
    let stranger = BuilderKey::from_seed(b"not an allowed builder");
    let unknown = devnet.raw_bid(&executed, U256::from(10 * GWEI), &stranger);
    let err = refused(&devnet, unknown).await;
    assert_eq!(
        err.reject_reason(),
        Some(RejectReason::UnknownBuilder),
        "{err}"
    );

    // Claims more than the block pays (signed properly: only execution can tell).
    let inflated = devnet.raw_bid(&executed, U256::from(10 * GWEI + 1), &devnet.builder);
    let err = refused(&devnet, inflated).await;
    assert_eq!(
        err.reject_reason(),
        Some(RejectReason::ValueMismatch),
        "{err}"
    );

    // The last transaction pays the proposer, but not from the coinbase.
    let not_coinbase =
        devnet.block_with_last(transfer(&devnet.signers[2], 0, FEE_RECIPIENT, 20 * GWEI));
    let err = refused(
        &devnet,
        devnet.raw_bid(&not_coinbase, U256::from(20 * GWEI), &devnet.builder),
    )
    .await;
    assert_eq!(
        err.reject_reason(),
        Some(RejectReason::ValueMismatch),
        "{err}"
    );

    // The last transaction pays someone else.
    let elsewhere = devnet.block_with_last(transfer(devnet.coinbase(), 0, SINK, 20 * GWEI));
    let err = refused(
        &devnet,
        devnet.raw_bid(&elsewhere, U256::from(20 * GWEI), &devnet.builder),
    )
    .await;
    assert_eq!(
        err.reject_reason(),
        Some(RejectReason::ValueMismatch),
        "{err}"
    );

    // Tampered state root, with the header hash and the signature made consistent again:
    // only re-execution catches it.
    let mut block = executed.block.block.clone();
    block.header.state_root = B256::repeat_byte(0xee);
    let hash = block.header.hash_slow();
    let mut tampered = devnet.raw_bid(&executed, U256::from(10 * GWEI), &devnet.builder);
    tampered.execution_payload = ExecutionPayloadV3::from_block_unchecked(hash, &block);
    tampered.message.block_hash = hash;
    tampered.signature = sign_bid(&devnet.builder, &tampered.message, devnet.relay.domain());
    let err = refused(&devnet, tampered).await;
    assert_eq!(
        err.reject_reason(),
        Some(RejectReason::InvalidBlock),
        "{err}"
    );

    // Tampered state root with the old hash: the payload is not the block it claims.
    let mut lying = devnet.raw_bid(&executed, U256::from(10 * GWEI), &devnet.builder);
    lying
        .execution_payload
        .payload_inner
        .payload_inner
        .state_root = B256::repeat_byte(0xee);
    let err = refused(&devnet, lying).await;
    assert_eq!(
        err.reject_reason(),
        Some(RejectReason::InvalidPayload),
        "{err}"
    );

    // Wrong slot and wrong parent.
    let mut late = devnet.raw_bid(&executed, U256::from(10 * GWEI), &devnet.builder);
    late.message.slot += 1;
    late.signature = sign_bid(&devnet.builder, &late.message, devnet.relay.domain());
    let err = refused(&devnet, late).await;
    assert_eq!(err.reject_reason(), Some(RejectReason::WrongSlot), "{err}");

    // Another prev_randao than the slot's, and withdrawals the slot does not have.
    let mut randao = devnet.raw_bid(&executed, U256::from(10 * GWEI), &devnet.builder);
    randao
        .execution_payload
        .payload_inner
        .payload_inner
        .prev_randao = B256::repeat_byte(0x04);
    let err = refused(&devnet, randao).await;
    assert_eq!(
        err.reject_reason(),
        Some(RejectReason::InvalidPayload),
        "{err}"
    );
    let mut withdrawing = devnet.raw_bid(&executed, U256::from(10 * GWEI), &devnet.builder);
    withdrawing.execution_payload.payload_inner.withdrawals =
        vec![alloy_eips::eip4895::Withdrawal {
            index: 1,
            validator_index: 2,
            address: alloy_primitives::Address::repeat_byte(0x05),
            amount: 3,
        }];
    let err = refused(&devnet, withdrawing).await;
    assert!(err.to_string().contains("withdrawals root"), "{err}");

    assert_eq!(devnet.relay.stats().accepted, 1);
    assert_eq!(devnet.relay.stats().rejected, 11);
    let winner = devnet
        .relay
        .take_best(devnet.ctx.slot)
        .expect("the honest bid");
    assert_eq!(winner.trace.block_hash, honest.block.hash);
    assert_eq!(winner.trace.value, U256::from(GWEI));
}

#[tokio::test]
async fn test_refusals_are_400_with_code_and_message() {
    let devnet = Devnet::start().await;
    let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = http::Request::post(format!("{}/relay/v1/builder/blocks", devnet.url))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from_static(b"{\"message\": 1}")))
        .expect("request");
    let response = http.request(request).await.expect("reply");
    assert_eq!(response.status(), http::StatusCode::BAD_REQUEST);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).expect("json body");
    assert_eq!(json["code"], 400);
    assert!(
        json["message"]
            .as_str()
            .is_some_and(|m| m.contains("malformed")),
        "{json}"
    );
    assert_eq!(json["reason"], "malformed");
}

/// Sends `head` and `body` on a new connection (blocking, off the runtime) and reads the reply.
async fn exchange(url: &str, head: String, body: Vec<u8>) -> String {
    let addr = url.trim_start_matches("http://").to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).expect("connects");
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .expect("timeout");
        stream.write_all(head.as_bytes()).expect("writes");
        // The relay may answer before the whole body is sent and close: that is its answer.
        let _ = stream.write_all(&body);
        let mut reply = String::new();
        let _ = stream.read_to_string(&mut reply);
        reply
    })
    .await
    .expect("joins")
}

#[tokio::test]
async fn test_a_malformed_submission_is_answered_in_a_few_words() {
    let devnet = Devnet::start().await;
    // serde names the offending value in its error: here a 4 MB string.
    let body = format!("{{\"message\": \"{}\"}}", "x".repeat(4 << 20)).into_bytes();
    let head = format!(
        "POST /relay/v1/builder/blocks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let reply = exchange(&devnet.url, head, body).await;
    assert!(
        reply.starts_with("HTTP/1.1 400"),
        "{}",
        &reply[..reply.len().min(300)]
    );
    let body = reply.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    assert!(body.len() < 1024, "{} bytes of error", body.len());
    let json: serde_json::Value = serde_json::from_str(body).expect("json body");
    assert_eq!(json["reason"], "malformed");
}

#[tokio::test]
async fn test_a_submission_too_large_or_too_slow_is_refused() {
    let devnet = Devnet::start_with(|config| {
        config.max_body_bytes = 1 << 20;
        config.serve.body_timeout = std::time::Duration::from_millis(300);
    })
    .await;
    // Chunked, so only reading tells the size.
    let chunk = vec![b' '; 2 << 20];
    let mut body = format!("{:x}\r\n", chunk.len()).into_bytes();
    body.extend_from_slice(&chunk);
    body.extend_from_slice(b"\r\n0\r\n\r\n");
    let head = "POST /relay/v1/builder/blocks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_owned();
    let reply = exchange(&devnet.url, head, body).await;
    assert!(
        reply.starts_with("HTTP/1.1 413"),
        "{}",
        &reply[..reply.len().min(300)]
    );
    // 100 bytes promised, 10 sent, then silence.
    let head = "POST /relay/v1/builder/blocks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n".to_owned();
    let reply = exchange(&devnet.url, head, b"{\"message\"".to_vec()).await;
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
}

#[tokio::test]
async fn test_next_slot_takes_bids_on_the_new_head_only() {
    let mut devnet = Devnet::start().await;
    let first = devnet.paying_block(GWEI);
    let stale = devnet.bid(&first);
    assert_eq!(
        devnet.client().submit(&stale).await.expect("accepted"),
        SubmitOutcome::Sent
    );
    let winner = devnet.relay.take_best(devnet.ctx.slot).expect("winner");
    devnet.chain.commit(&winner.executed).expect("commit");
    assert!(devnet.relay.take_best(devnet.ctx.slot).is_none());

    devnet.open_next_slot();
    // The old bid again: wrong slot now.
    let err = devnet.client().submit(&stale).await.expect_err("stale");
    assert_eq!(err.reject_reason(), Some(RejectReason::WrongSlot), "{err}");
    // A bid on the old parent, re-signed for the new slot: wrong parent.
    let mut old_parent = devnet.raw_bid(&first, U256::from(GWEI), &devnet.builder);
    old_parent.message.slot = devnet.ctx.slot;
    old_parent.signature = sign_bid(&devnet.builder, &old_parent.message, devnet.relay.domain());
    let err = refused(&devnet, old_parent).await;
    assert_eq!(
        err.reject_reason(),
        Some(RejectReason::WrongParent),
        "{err}"
    );

    let second = devnet.paying_block(2 * GWEI);
    assert_eq!(
        devnet
            .client()
            .submit(&devnet.bid(&second))
            .await
            .expect("accepted"),
        SubmitOutcome::Sent
    );
    let winner = devnet.relay.take_best(devnet.ctx.slot).expect("winner");
    devnet.chain.commit(&winner.executed).expect("commit");
    assert_eq!(devnet.chain.head().number, 2);
}

#[tokio::test]
async fn test_validators_endpoint_gives_signed_duties() {
    let devnet = Devnet::start().await;
    let duties = devnet.client().proposer_duties().await.expect("duties");
    assert_eq!(duties.len(), 2);
    assert_eq!(duties[0].slot, devnet.ctx.slot);
    assert_eq!(duties[1].slot, devnet.ctx.slot + 1);
    for duty in &duties {
        assert_eq!(duty.pubkey, devnet.relay.proposer_pubkey());
        assert_eq!(duty.fee_recipient, FEE_RECIPIENT);
        assert_eq!(duty.gas_limit, cobuild_primitives::DEFAULT_GAS_LIMIT);
        let message = alloy_rpc_types_beacon::relay::ValidatorRegistrationMessage {
            fee_recipient: duty.fee_recipient,
            gas_limit: duty.gas_limit,
            timestamp: duty.timestamp,
            pubkey: duty.pubkey,
        };
        verify_registration(&message, &duty.signature, devnet.relay.domain())
            .expect("the proposer signed its registration");
    }
}

/// Verifies with the chain, but only once the test lets it, and says when it started.
struct Gated {
    chain: cobuild_chain::Chain,
    entered: tokio::sync::mpsc::UnboundedSender<()>,
    release: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

impl cobuild_relay::BlockVerifier for Gated {
    type Error = cobuild_chain::ChainError;

    fn verify(
        &self,
        block: alloy_consensus::Block<alloy_consensus::TxEnvelope>,
    ) -> Result<cobuild_chain::ExecutedBlock, Self::Error> {
        let _ = self.entered.send(());
        let release = self.release.lock().expect("not poisoned");
        let _ = release.recv();
        self.chain.reexecute(block)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_a_bid_received_before_the_slot_ends_counts_when_checked_after() {
    let devnet = Devnet::start().await;
    let (entered_tx, mut entered) = tokio::sync::mpsc::unbounded_channel();
    let (release, gate) = std::sync::mpsc::channel();
    let relay = cobuild_relay::RelayServer::new(
        cobuild_relay::server::Config::devnet(
            vec![devnet.builder.public_key()],
            crate::FEE_RECIPIENT,
            cobuild_primitives::DEFAULT_GAS_LIMIT,
        ),
        Gated {
            chain: devnet.chain.clone(),
            entered: entered_tx,
            release: std::sync::Mutex::new(gate),
        },
    );
    relay.open_slot(devnet.ctx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(relay.clone().serve(listener, std::future::pending()));
    let client =
        cobuild_relay::RelayClient::new(cobuild_relay::client::Config::new(&url)).expect("client");

    let executed = devnet.paying_block(GWEI);
    let bid = devnet.bid(&executed);
    let sending = tokio::spawn(async move { client.submit(&bid).await });
    entered.recv().await.expect("the check started");

    // The slot ends while the bid is being checked: it still counts once it passes.
    let closing = tokio::spawn({
        let relay = relay.clone();
        let slot = devnet.ctx.slot;
        async move {
            relay
                .close_and_take_best(slot, std::time::Duration::from_secs(30))
                .await
        }
    });
    release.send(()).expect("verifier waits");
    let winner = closing
        .await
        .expect("closes")
        .expect("the checked bid wins");
    assert_eq!(winner.trace.block_hash, executed.block.hash);
    assert_eq!(
        sending.await.expect("sends").expect("accepted"),
        SubmitOutcome::Sent
    );
    assert_eq!(relay.stats().accepted, 1);
}
