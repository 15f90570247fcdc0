//! A devnet's builder bids to every relay in its `--relay-config`, each the way its entry
//! says: here a stand-in relay that takes SSZ, gzip and an auth header, beside the local one.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    sync::{Arc, OnceLock, mpsc},
    time::Duration,
};

use cobuild_relay::SubmitBlockRequest;
use cobuild_test_utils::http_get;

use crate::{DEV0_KEY, Devnet, TxSpec};

/// One HTTP request as the stand-in relay read it.
struct Received {
    head: String,
    body: Vec<u8>,
}

/// Reads one request (headers, then `Content-Length` bytes) from `stream`.
fn read_request(stream: &mut TcpStream) -> Option<Received> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let split = loop {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..split]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap_or(0));
    let mut body = buf[split..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Received { head, body })
}

/// A relay on loopback that hands every submission to `submissions` and answers 200, and
/// serves the proposer duties of the relay in `duties_from` once it is set.
fn stand_in_relay(
    submissions: mpsc::Sender<Received>,
    duties_from: Arc<OnceLock<String>>,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
    let url = format!("http://{}", listener.local_addr().expect("bound"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let submissions = submissions.clone();
            let duties_from = duties_from.clone();
            std::thread::spawn(move || {
                while let Some(request) = read_request(&mut stream) {
                    let body = if request.head.starts_with("get /relay/v1/builder/validators") {
                        duties_from
                            .get()
                            .map(|relay| http_get(relay, "/relay/v1/builder/validators").1)
                            .unwrap_or_else(|| "[]".to_owned())
                            .into_bytes()
                    } else {
                        let _ = submissions.send(request);
                        Vec::new()
                    };
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                        body.len()
                    );
                    if stream.write_all(head.as_bytes()).is_err()
                        || stream.write_all(&body).is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    url
}

#[test]
fn test_a_devnet_bids_to_every_configured_relay_in_its_encoding_with_its_headers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sent, submissions) = mpsc::channel();
    let duties_from = Arc::new(OnceLock::new());
    let url = stand_in_relay(sent, duties_from.clone());
    let config = dir.path().join("relays.toml");
    std::fs::write(
        &config,
        format!(
            "[[relay]]\nurl = \"{url}\"\nheaders = {{ \"X-Auth-Token\" = \"s3cret\" }}\n\
             encoding = \"ssz\"\ngzip = true\n"
        ),
    )
    .expect("writes");
    let devnet = Devnet::start_with(
        &dir.path().join("chain"),
        &["--relay-config", config.to_str().expect("utf-8 path")],
    );
    duties_from.set(devnet.relay.clone()).expect("set once");
    // An order worth bidding for.
    let raw = devnet.signed_tx(DEV0_KEY, TxSpec::default());
    devnet
        .cast(&["publish", "--async", &raw])
        .expect("published");

    let request = submissions
        .recv_timeout(Duration::from_secs(60))
        .expect("a bid reached the second relay");
    let head = &request.head;
    assert!(
        head.starts_with("post /relay/v1/builder/blocks?cancellations=1 "),
        "{head}"
    );
    assert!(
        head.contains("content-type: application/octet-stream"),
        "{head}"
    );
    assert!(head.contains("content-encoding: gzip"), "{head}");
    assert!(head.contains("x-auth-token: s3cret"), "{head}");
    let mut ssz = Vec::new();
    flate2::read::GzDecoder::new(&request.body[..])
        .read_to_end(&mut ssz)
        .expect("gzip");
    let bid: SubmitBlockRequest = ssz::Decode::from_ssz_bytes(&ssz).expect("an SSZ submission");
    let trace = bid.bid_trace();
    assert_eq!(
        trace.proposer_fee_recipient.to_string().to_lowercase(),
        "0x0000000000000000000000000000000000c0b11d",
        "the devnet proposer's, from the duties it served"
    );
    // The bid builds on a block of the devnet's chain.
    let parent = devnet
        .cast(&["block", &trace.parent_hash.to_string(), "--json"])
        .expect("the parent is on the devnet's chain");
    assert!(parent.contains(&trace.parent_hash.to_string()), "{parent}");
}
