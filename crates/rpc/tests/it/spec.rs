//! What the JSON-RPC 2.0 spec and the eth API promise where jsonrpsee alone is lenient:
//! invalid ids, notifications that would place orders, parameters to methods that take none,
//! bounded error texts and bodies, and `eth_feeHistory` past the head.

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use cobuild_rpc::{MAX_ERROR_RESPONSE, OrderflowLimits, RpcConfig};
use serde_json::{Value, json};

use super::{Node, auth, error_code, raw_tx};

/// Sends `head` then `body` as is on a new connection; the status and the reply body.
fn exchange(node: &Node, head: &str, body: &[u8]) -> (u16, String) {
    let addr = node.url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.write_all(head.as_bytes()).expect("head");
    // The server may refuse before the whole body is sent and close: that is its answer.
    let _ = stream.write_all(body);
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    let status = reply
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP reply: {reply:?}"));
    let body = reply.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_owned())
}

/// A POST whose body is sent chunked, in one chunk, with an optional signature header.
fn post_chunked(node: &Node, body: &[u8], signature: Option<&str>) -> (u16, String) {
    let mut head = String::from(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n",
    );
    if let Some(signature) = signature {
        head.push_str(&format!("X-Flashbots-Signature: {signature}\r\n"));
    }
    head.push_str("\r\n");
    let mut chunked = format!("{:x}\r\n", body.len()).into_bytes();
    chunked.extend_from_slice(body);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    exchange(node, &head, &chunked)
}

fn post(node: &Node, body: &str) -> (u16, String) {
    cobuild_test_utils::http_post(&node.url, body.as_bytes(), &[])
}

fn reply(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| panic!("not JSON: {text:?}"))
}

#[test]
fn test_an_invalid_id_is_an_invalid_request() {
    let node = Node::start(OrderflowLimits::default());
    for id in [r#"{"a":1}"#, "[1]", "1.5", "-1", "true"] {
        let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"eth_chainId"}}"#);
        let (status, text) = post(&node, &body);
        assert_eq!(status, 200, "{text}");
        let answer = reply(&text);
        assert_eq!(error_code(&answer), -32600, "id {id}: {answer}");
        assert_eq!(answer["id"], Value::Null, "{answer}");
    }
    // In a batch, that call alone is refused; the others are answered in place.
    let batch = r#"[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","id":{},"method":"eth_chainId"},{"jsonrpc":"2.0","id":3,"method":"eth_chainId"}]"#;
    let answers = reply(&post(&node, batch).1);
    let answers = answers.as_array().expect("a batch answer");
    assert_eq!(answers.len(), 3, "{answers:?}");
    assert_eq!(answers[0]["result"], "0x7a69");
    assert_eq!(error_code(&answers[1]), -32600);
    assert_eq!(answers[2]["id"], 3);
}

#[test]
fn test_a_notification_that_would_place_an_order_is_refused_not_dropped() {
    let node = Node::start(OrderflowLimits::default());
    let raw = raw_tx(0, 0, alloy_primitives::Address::repeat_byte(1), 21_000, 1);
    let notification =
        json!({"jsonrpc": "2.0", "method": "eth_sendRawTransaction", "params": [raw]});
    let answer = reply(&post(&node, &notification.to_string()).1);
    assert_eq!(error_code(&answer), -32600, "{answer}");
    assert!(node.txs.is_empty(), "nothing was taken without an answer");

    // In a batch too, beside a call that is served.
    let batch = json!([
        notification,
        {"jsonrpc": "2.0", "id": 2, "method": "eth_chainId"},
    ]);
    let answers = reply(&post(&node, &batch.to_string()).1);
    let answers = answers.as_array().expect("a batch answer");
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert_eq!(error_code(&answers[0]), -32600);
    assert_eq!(answers[1]["result"], "0x7a69");
    assert!(node.txs.is_empty());

    // A notification that changes nothing gets no answer, as the spec says.
    let (status, text) = post(&node, r#"{"jsonrpc":"2.0","method":"eth_chainId"}"#);
    assert_eq!(status, 200);
    assert!(!text.contains("error"), "{text}");
}

#[test]
fn test_methods_without_parameters_refuse_parameters() {
    let node = Node::start(OrderflowLimits::default());
    for method in cobuild_rpc::WITHOUT_PARAMS {
        let served = node.call(None, method, json!([]));
        assert!(served.get("result").is_some(), "{method}: {served}");
        let refused = node.call(None, method, json!(["junk", 1]));
        assert_eq!(error_code(&refused), -32602, "{method}: {refused}");
    }
}

#[test]
fn test_fee_history_past_the_head_is_an_error() {
    let node = Node::start(OrderflowLimits::default());
    node.seal_empty(2);
    let ok = node.call(None, "eth_feeHistory", json!(["0x2", "0x2", []]));
    assert_eq!(ok["result"]["oldestBlock"], "0x1", "{ok}");
    let beyond = node.call(None, "eth_feeHistory", json!(["0x2", "0x100000", []]));
    assert_eq!(error_code(&beyond), -32602, "{beyond}");
    let latest = node.call(None, "eth_feeHistory", json!(["0x1", "latest", []]));
    assert_eq!(latest["result"]["oldestBlock"], "0x2", "{latest}");
}

#[test]
fn test_an_error_never_echoes_the_input() {
    let node = Node::start(OrderflowLimits::default());
    let junk = format!("0x{}zz", "ab".repeat(200_000));
    let answer = node.call(None, "eth_sendRawTransaction", json!([junk]));
    assert_eq!(error_code(&answer), -32602, "{answer}");
    let length = answer.to_string().len();
    assert!(length <= MAX_ERROR_RESPONSE, "{length} bytes of error");
    // Signed orderflow methods too, one call and in a batch.
    let signer = auth(7);
    let answer = node.call(
        Some(&signer),
        "eth_sendBundle",
        json!([{"txs": [junk], "blockNumber": "0x5"}]),
    );
    assert!(answer.to_string().len() <= MAX_ERROR_RESPONSE, "{answer}");
    let batch =
        json!([{"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction", "params": [junk]}]);
    let answers = reply(&post(&node, &batch.to_string()).1);
    assert!(
        answers.to_string().len() <= MAX_ERROR_RESPONSE + 2,
        "{answers}"
    );
}

#[test]
fn test_a_body_over_the_limit_is_413_however_it_is_sent() {
    let mut config = RpcConfig::new(([127, 0, 0, 1], 0).into());
    config.max_request_body = 1024;
    let node = Node::start_configured(OrderflowLimits::default(), None, config, |eth| eth);
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[],"pad":"{}"}}"#,
        "x".repeat(2048)
    );
    let signature = format!("{}:0x{}", alloy_primitives::Address::ZERO, "00".repeat(65));
    for signed in [None, Some(signature.as_str())] {
        let (status, _) = post_chunked(&node, body.as_bytes(), signed);
        assert_eq!(status, 413, "chunked, signed: {}", signed.is_some());
        let mut head = format!(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        if let Some(signature) = signed {
            head.push_str(&format!("X-Flashbots-Signature: {signature}\r\n"));
        }
        head.push_str("\r\n");
        let (status, _) = exchange(&node, &head, body.as_bytes());
        assert_eq!(status, 413, "with a length, signed: {}", signed.is_some());
    }
    // Under the limit, chunked is served.
    let (status, text) = post_chunked(
        &node,
        br#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#,
        None,
    );
    assert_eq!(
        (status, reply(&text)["result"].clone()),
        (200, json!("0x7a69"))
    );
}

#[test]
fn test_a_body_that_does_not_arrive_in_time_is_cut_off() {
    let mut config = RpcConfig::new(([127, 0, 0, 1], 0).into());
    config.serve.body_timeout = Duration::from_millis(300);
    let node = Node::start_configured(OrderflowLimits::default(), None, config, |eth| eth);
    let addr = node.url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("connect");
    // The header promises 100 bytes; 10 come, then nothing.
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"jsonrpc\"")
        .expect("write");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
}
