//! A minimal keep-alive HTTP/1.1 JSON-RPC client over one loopback connection (hyper), for
//! driving anvil and the node's RPC server.
//!
//! One connection per client, requests sent one after another on it: a benchmark controls its
//! concurrency by how many clients it opens.

use std::{net::SocketAddr, time::Duration};

use http_body_util::{BodyExt, Full};
use hyper::{
    Request, StatusCode,
    body::Bytes,
    client::conn::http1::{self, SendRequest},
};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// An HTTP or JSON-RPC exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The connection could not be made.
    #[error("connect {addr}: {source}")]
    Connect {
        /// Where to.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The HTTP exchange failed.
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    /// The request could not be built.
    #[error("http request: {0}")]
    Request(#[from] hyper::http::Error),
    /// The server answered with an HTTP error status.
    #[error("http status {status}: {body}")]
    Status {
        /// The status.
        status: StatusCode,
        /// The start of the body.
        body: String,
    },
    /// No reply within the time allowed.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The reply is not the JSON expected.
    #[error("bad json-rpc reply: {0}")]
    Reply(String),
    /// The call returned a JSON-RPC error.
    #[error("{method}: json-rpc error {error}")]
    Rpc {
        /// The method called.
        method: String,
        /// The error object.
        error: Value,
    },
}

/// Longest any single exchange may take (anvil mining a full block takes well under a second).
const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

/// One keep-alive connection.
#[derive(Debug)]
pub(crate) struct HttpClient {
    sender: SendRequest<Full<Bytes>>,
    host: String,
}

impl HttpClient {
    /// Connects to `addr`; the connection is driven by a task on the current runtime.
    pub(crate) async fn connect(addr: SocketAddr) -> Result<Self, HttpError> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|source| HttpError::Connect { addr, source })?;
        stream
            .set_nodelay(true)
            .map_err(|source| HttpError::Connect { addr, source })?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "bench.http.connection.closed");
            }
        });
        Ok(Self {
            sender,
            host: addr.to_string(),
        })
    }

    /// POSTs `body` as JSON with extra `headers`; the status and the whole reply body. Gives
    /// up after [`REPLY_TIMEOUT`].
    pub(crate) async fn post(
        &mut self,
        body: Bytes,
        headers: &[(&str, &str)],
    ) -> Result<(StatusCode, Bytes), HttpError> {
        tokio::time::timeout(REPLY_TIMEOUT, self.exchange(body, headers))
            .await
            .map_err(|_| HttpError::Timeout(REPLY_TIMEOUT))?
    }

    async fn exchange(
        &mut self,
        body: Bytes,
        headers: &[(&str, &str)],
    ) -> Result<(StatusCode, Bytes), HttpError> {
        let mut request = Request::post("/")
            .header(hyper::header::HOST, &self.host)
            .header(hyper::header::CONTENT_TYPE, "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(body))?;
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// A JSON-RPC client on one connection.
#[derive(Debug)]
pub(crate) struct JsonRpc {
    http: HttpClient,
    next_id: u64,
}

impl JsonRpc {
    /// Connects to `addr`.
    pub(crate) async fn connect(addr: SocketAddr) -> Result<Self, HttpError> {
        Ok(Self {
            http: HttpClient::connect(addr).await?,
            next_id: 1,
        })
    }

    async fn exchange(&mut self, request: &Value) -> Result<Value, HttpError> {
        let body = serde_json::to_vec(request).map_err(|e| HttpError::Reply(e.to_string()))?;
        let (status, reply) = self.http.post(Bytes::from(body), &[]).await?;
        if !status.is_success() {
            return Err(HttpError::Status {
                status,
                body: String::from_utf8_lossy(&reply[..reply.len().min(200)]).into_owned(),
            });
        }
        serde_json::from_slice(&reply).map_err(|e| HttpError::Reply(e.to_string()))
    }

    /// Calls `method` with `params`; its result.
    pub(crate) async fn call(&mut self, method: &str, params: Value) -> Result<Value, HttpError> {
        let id = self.next_id;
        self.next_id += 1;
        let reply = self
            .exchange(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await?;
        result(method, reply)
    }

    /// Calls `method` once per entry of `params`, in one batch request; one result per call,
    /// in order.
    pub(crate) async fn batch(
        &mut self,
        method: &str,
        params: impl IntoIterator<Item = Value>,
    ) -> Result<Vec<Result<Value, HttpError>>, HttpError> {
        let first = self.next_id;
        let calls: Vec<Value> = params
            .into_iter()
            .map(|params| {
                let id = self.next_id;
                self.next_id += 1;
                json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
            })
            .collect();
        if calls.is_empty() {
            return Ok(Vec::new());
        }
        let reply = self.exchange(&Value::Array(calls.clone())).await?;
        let Value::Array(replies) = reply else {
            return Err(HttpError::Reply(format!("{method} batch: not an array")));
        };
        let mut out: Vec<Option<Result<Value, HttpError>>> =
            (0..calls.len()).map(|_| None).collect();
        for reply in replies {
            let slot = reply["id"]
                .as_u64()
                .and_then(|id| id.checked_sub(first))
                .and_then(|i| out.get_mut(i as usize))
                .ok_or_else(|| HttpError::Reply(format!("{method} batch: unknown id")))?;
            *slot = Some(result(method, reply));
        }
        out.into_iter()
            .map(|r| r.ok_or_else(|| HttpError::Reply(format!("{method} batch: missing reply"))))
            .collect()
    }
}

fn result(method: &str, mut reply: Value) -> Result<Value, HttpError> {
    if let Some(error) = reply.get("error").filter(|e| !e.is_null()) {
        return Err(HttpError::Rpc {
            method: method.to_string(),
            error: error.clone(),
        });
    }
    match reply.get_mut("result") {
        Some(result) => Ok(result.take()),
        None => Err(HttpError::Reply(format!("{method}: no result"))),
    }
}
