//! Subscriptions over WebSocket on the RPC port, driven by a bare client (handshake and frames
//! by hand) that can stop reading: a subscriber that does not keep up is dropped, and the
//! server goes on serving everyone else.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    time::Duration,
};

use cobuild_rpc::{OrderflowLimits, RpcConfig};
use serde_json::{Value, json};

use super::Node;

/// A WebSocket client with just what the test needs: text frames out (masked, as a client
/// must send them) and in.
struct Ws {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Ws {
    fn connect(url: &str) -> Self {
        let host = url.trim_start_matches("http://");
        let stream = TcpStream::connect(host).expect("connects");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut writer = stream.try_clone().expect("clone");
        write!(
            writer,
            "GET / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .expect("handshake sent");
        let mut reader = BufReader::new(stream);
        let mut status = String::new();
        reader.read_line(&mut status).expect("status line");
        assert!(status.contains(" 101 "), "upgraded: {status}");
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("header");
            if line == "\r\n" {
                break;
            }
        }
        Self { reader, writer }
    }

    fn send(&mut self, message: &Value) {
        let payload = message.to_string().into_bytes();
        let mask = [0x5a, 0x17, 0xc3, 0x81];
        let mut frame = vec![0x81];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.writer.write_all(&frame).expect("frame sent");
    }

    /// The next text message; `None` once the server closes.
    fn recv(&mut self) -> Option<Value> {
        loop {
            let mut head = [0u8; 2];
            self.reader.read_exact(&mut head).ok()?;
            let len = match head[1] & 0x7f {
                126 => {
                    let mut ext = [0u8; 2];
                    self.reader.read_exact(&mut ext).ok()?;
                    u64::from(u16::from_be_bytes(ext))
                }
                127 => {
                    let mut ext = [0u8; 8];
                    self.reader.read_exact(&mut ext).ok()?;
                    u64::from_be_bytes(ext)
                }
                n => u64::from(n),
            };
            let mut payload = vec![0u8; len as usize];
            self.reader.read_exact(&mut payload).ok()?;
            match head[0] & 0x0f {
                0x1 => return Some(serde_json::from_slice(&payload).expect("json text")),
                0x8 => return None,
                // Pings and pongs carry nothing for the test.
                _ => {}
            }
        }
    }

    /// Calls `method` and returns its answer, counting the notifications that come first.
    fn call(&mut self, id: u64, method: &str, params: Value, notes: &mut usize) -> Value {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let message = self.recv().expect("an answer");
            if message["id"] == json!(id) {
                return message;
            }
            *notes += 1;
        }
    }
}

#[test]
fn test_a_subscriber_that_stops_reading_is_dropped_not_buffered() {
    let node = Node::start_configured(
        OrderflowLimits::default(),
        None,
        RpcConfig {
            message_buffer: 8,
            ..RpcConfig::new(([127, 0, 0, 1], 0).into())
        },
        |eth| eth,
    );
    let mut ws = Ws::connect(&node.url);
    let mut notes = 0;
    let subscriptions: Vec<Value> = (0..50)
        .map(|id| {
            let reply = ws.call(id, "eth_subscribe", json!(["newHeads"]), &mut notes);
            let sub = reply["result"].clone();
            assert!(
                sub.as_str().is_some_and(|s| s.starts_with("0x")),
                "a hex id, as geth gives: {reply}"
            );
            sub
        })
        .collect();

    // Blocks arrive while the client reads nothing: far more notifications than the socket
    // buffers and the connection's 8 queued messages hold.
    node.seal_empty(400);

    // Reading again, the client finds most subscriptions gone: the server dropped them rather
    // than queue their notifications.
    let mut alive = HashMap::new();
    for (n, sub) in subscriptions.iter().enumerate() {
        let reply = ws.call(
            1_000 + n as u64,
            "eth_unsubscribe",
            json!([sub]),
            &mut notes,
        );
        alive.insert(sub.to_string(), reply["result"] == json!(true));
    }
    let dropped = alive.values().filter(|alive| !**alive).count();
    assert!(
        dropped > 0,
        "no subscription was dropped ({notes} notifications read)"
    );
    assert!(
        notes < 50 * 400,
        "{notes} notifications: nothing was dropped"
    );

    // The server goes on: a new subscription on a new connection sees the next block.
    let mut fresh = Ws::connect(&node.url);
    let reply = fresh.call(1, "eth_subscribe", json!(["newHeads"]), &mut notes);
    let sub = reply["result"].clone();
    node.seal_empty(1);
    let head = fresh.recv().expect("a notification");
    assert_eq!(head["method"], "eth_subscription", "{head}");
    assert_eq!(head["params"]["subscription"], sub, "{head}");
    assert_eq!(head["params"]["result"]["number"], "0x191", "{head}");
    let plain = node.call(None, "eth_blockNumber", json!([]));
    assert_eq!(plain["result"], "0x191", "{plain}");
}
