//! The operator's admin API: the node's replication and building state, and the order hashes
//! it holds for a block, so operators and tests can compare nodes.
//!
//! It runs on its own listener (loopback by default) and every request must carry
//! `Authorization: Bearer <token>`, the token a node writes to its data directory on start, as
//! an execution client guards its engine API with a shared secret.

use std::{fmt::Debug, net::SocketAddr, sync::Arc};

use alloy_primitives::{B256, Bytes, U256};
use jsonrpsee::{
    RpcModule,
    core::RpcResult,
    proc_macros::rpc,
    server::{
        HttpRequest, HttpResponse, ServerBuilder, ServerHandle, middleware::rpc::RpcServiceBuilder,
    },
};
use serde::{Deserialize, Serialize};

use crate::middleware::SpecLayer;

/// The admin methods that take no parameters.
const WITHOUT_PARAMS: &[&str] = &["cobuild_status"];

/// Largest admin answer (jsonrpsee's default).
const MAX_RESPONSE_BODY: u32 = 10 * 1024 * 1024;

/// One member as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberStatus {
    /// Registry id.
    pub id: u32,
    /// Its P2P address.
    pub address: String,
    /// This node itself.
    pub me: bool,
    /// Milliseconds since its last message (`None`: never heard from).
    pub last_heard_ms_ago: Option<u64>,
}

/// Replication of one origin's orders at this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OriginStatus {
    /// The origin member.
    pub origin: u32,
    /// Every envelope up to this seq is held.
    pub contiguous: u64,
    /// The highest seq some member proved exists.
    pub known_high: u64,
    /// Known to exist, not held yet: the replication lag in orders.
    pub missing: u64,
    /// Every envelope up to this seq has moved from the live log to the archive.
    #[serde(default)]
    pub archived: u64,
}

/// A bid this node sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BidStatus {
    /// The slot (block number).
    pub slot: u64,
    /// The block's hash.
    pub block_hash: B256,
    /// The bid value in wei.
    pub value: U256,
    /// Orders in it.
    pub orders: usize,
}

/// What a node reports to its operator.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    /// This node's member id.
    pub member: Option<u32>,
    /// Its chain head.
    pub head: u64,
    /// Members and their links.
    pub members: Vec<MemberStatus>,
    /// Per-origin replication progress.
    pub origins: Vec<OriginStatus>,
    /// Pending transactions held.
    pub pool_txs: usize,
    /// Pending bundles held.
    pub pool_bundles: usize,
    /// What the node refused or failed to take, by reason.
    pub refusals: Refusals,
    /// The last bids, newest first.
    pub bids: Vec<BidStatus>,
    /// The slot ledger, when the node keeps one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger: Option<LedgerStatus>,
}

/// Where a node's slot ledger stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerStatus {
    /// The slot of the last final record (`None`: no record yet).
    pub final_slot: Option<u64>,
    /// Blocks on the chain past the last final record.
    pub lag: u64,
    /// The membership epoch of the next record.
    #[serde(default)]
    pub epoch: u64,
    /// The members who agree on it.
    #[serde(default)]
    pub epoch_members: Vec<u32>,
}

/// Everything a node refused or failed to take in, counted since it started: envelopes the
/// replication engine turned away, and replicated orders its pools did not take.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refusals {
    /// Envelopes whose origin signature did not verify (forged or altered).
    pub bad_signatures: u64,
    /// Second, different envelopes for a place already taken: their origin equivocated (or
    /// reused sequence numbers after losing its log).
    pub equivocations: u64,
    /// Envelopes from origins that are not members.
    pub unknown_origins: u64,
    /// Messages that did not decode.
    pub malformed: u64,
    /// Envelopes left for a later pull because their origin was over its rate.
    pub throttled_origins: u64,
    /// Envelopes left unchecked because the peer that sent them was over its rate.
    pub throttled_peers: u64,
    /// Replicated orders a pool rule refused (expired, cancelled, nonce used ...): normal.
    pub orders_refused: u64,
    /// Replicated orders that failed: bad sender signature, no such call, wrong method,
    /// invalid, or a fault of this node.
    pub orders_failed: u64,
    /// Replicated orders of a kind this node does not know.
    pub unknown_kinds: u64,
}

/// Most orders one `cobuild_slotOrders` call returns; `skip` pages through the rest.
pub const MAX_SLOT_ORDERS_PER_CALL: usize = 512;

/// An order a final ledger record covers, exactly as its origin signed it into the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchivedOrder {
    /// The member that accepted it.
    pub origin: u32,
    /// Its number in the origin's log.
    pub seq: u64,
    /// When the origin accepted it (Unix milliseconds).
    pub received_at_ms: u64,
    /// The order kind's byte (0 raw transaction, 1 bundle, 2 bundle cancel, 3 private
    /// transaction, 4 private transaction cancel, 5 `mev_sendBundle`).
    pub kind: u8,
    /// The raw transaction, or the sender's JSON-RPC body.
    pub payload: Bytes,
    /// The sender's `X-Flashbots-Signature` header (empty for raw transactions).
    pub auth: Bytes,
    /// The call's place in a batch body.
    pub call: u32,
}

/// The orders one slot's final record added to the archive: per origin, those after the
/// previous record's agreed cut up to this record's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlotOrders {
    /// The slot.
    pub slot: u64,
    /// The record's digest.
    pub digest: B256,
    /// How many orders the record added in all.
    pub total: u64,
    /// Those from `skip` on, at most [`MAX_SLOT_ORDERS_PER_CALL`], by origin and seq.
    pub orders: Vec<ArchivedOrder>,
}

/// Where the admin API gets its answers (the node).
pub trait AdminSource: Send + Sync + Debug + 'static {
    /// The node's current state.
    fn status(&self) -> NodeStatus;
    /// Hashes of the orders (transactions and bundles) held that are valid for block `number`,
    /// sorted.
    fn order_hashes(&self, number: u64) -> Vec<B256>;
    /// The orders slot `slot`'s final record added, from the `skip`-th on (`None`: no record
    /// for the slot); an error says why they could not be read.
    fn slot_orders(&self, slot: u64, skip: u64) -> Result<Option<SlotOrders>, String>;
}

/// The admin methods.
#[rpc(server, namespace = "cobuild")]
pub trait AdminApi {
    /// The node's members, links, replication lag, pool and last bids.
    #[method(name = "status")]
    async fn status(&self) -> RpcResult<NodeStatus>;
    /// The sorted hashes of the orders the node holds for block `number`.
    #[method(name = "orderHashes")]
    async fn order_hashes(&self, number: u64) -> RpcResult<Vec<B256>>;
    /// The orders a slot's final record added to the archive, paged by `skip`.
    #[method(name = "slotOrders")]
    async fn slot_orders(&self, slot: u64, skip: Option<u64>) -> RpcResult<Option<SlotOrders>>;
}

#[derive(Debug, Clone)]
struct Admin(Arc<dyn AdminSource>);

#[jsonrpsee::core::async_trait]
impl AdminApiServer for Admin {
    async fn status(&self) -> RpcResult<NodeStatus> {
        let source = self.0.clone();
        tokio::task::spawn_blocking(move || source.status())
            .await
            .map_err(|e| crate::RpcError::internal(e.to_string()).into())
    }

    async fn order_hashes(&self, number: u64) -> RpcResult<Vec<B256>> {
        let source = self.0.clone();
        tokio::task::spawn_blocking(move || source.order_hashes(number))
            .await
            .map_err(|e| crate::RpcError::internal(e.to_string()).into())
    }

    async fn slot_orders(&self, slot: u64, skip: Option<u64>) -> RpcResult<Option<SlotOrders>> {
        let source = self.0.clone();
        tokio::task::spawn_blocking(move || source.slot_orders(slot, skip.unwrap_or(0)))
            .await
            .map_err(|e| crate::RpcError::internal(e.to_string()))?
            .map_err(|e| crate::RpcError::internal(e).into())
    }
}

/// A running admin server.
#[derive(Debug)]
pub struct AdminServer {
    /// Where it listens.
    pub local_addr: SocketAddr,
    /// Stops it.
    pub handle: ServerHandle,
}

/// Starts the admin API on `addr`, answering only requests with `Authorization: Bearer
/// <token>`.
pub async fn start_admin(
    addr: SocketAddr,
    token: String,
    source: Arc<dyn AdminSource>,
) -> std::io::Result<AdminServer> {
    let middleware = tower::ServiceBuilder::new().layer(BearerLayer(Arc::new(token)));
    // The same JSON-RPC rules as the public server: bounded errors, no junk parameters.
    let rpc = RpcServiceBuilder::new().layer(SpecLayer::new(MAX_RESPONSE_BODY, WITHOUT_PARAMS));
    let server = ServerBuilder::with_config(
        jsonrpsee::server::ServerConfig::builder()
            .max_response_body_size(MAX_RESPONSE_BODY)
            .http_only()
            .build(),
    )
    .set_http_middleware(middleware)
    .set_rpc_middleware(rpc)
    .build(addr)
    .await?;
    let local_addr = server.local_addr()?;
    let mut module = RpcModule::new(());
    module
        .merge(AdminApiServer::into_rpc(Admin(source)))
        .map_err(std::io::Error::other)?;
    Ok(AdminServer {
        local_addr,
        handle: server.start(module),
    })
}

#[derive(Debug, Clone)]
struct BearerLayer(Arc<String>);

impl<S> tower::Layer<S> for BearerLayer {
    type Service = Bearer<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Bearer {
            inner,
            token: self.0.clone(),
        }
    }
}

/// Refuses requests without the admin token (HTTP 401) before they reach the methods.
#[derive(Debug, Clone)]
pub(crate) struct Bearer<S> {
    inner: S,
    token: Arc<String>,
}

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S> tower::Service<HttpRequest> for Bearer<S>
where
    S: tower::Service<HttpRequest, Response = HttpResponse> + Send,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = HttpResponse;
    type Error = S::Error;
    type Future = BoxFuture<Result<HttpResponse, S::Error>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: HttpRequest) -> Self::Future {
        let presented = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !constant_time_eq(presented.as_bytes(), self.token.as_bytes()) {
            let response = http::Response::builder()
                .status(http::StatusCode::UNAUTHORIZED)
                .body(jsonrpsee::server::HttpBody::from("admin token required"))
                .unwrap_or_default();
            return Box::pin(async move { Ok(response) });
        }
        Box::pin(self.inner.call(request))
    }
}

/// Compares without leaking where the first difference is.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Fixed;

    impl AdminSource for Fixed {
        fn status(&self) -> NodeStatus {
            NodeStatus {
                member: Some(2),
                head: 7,
                ..NodeStatus::default()
            }
        }

        fn order_hashes(&self, number: u64) -> Vec<B256> {
            vec![B256::with_last_byte(number as u8)]
        }

        fn slot_orders(&self, _slot: u64, _skip: u64) -> Result<Option<SlotOrders>, String> {
            Ok(None)
        }
    }

    async fn call(addr: SocketAddr, token: Option<&str>, body: &str) -> (u16, String) {
        let url = format!("http://{addr}");
        let auth = token.map(|t| format!("Bearer {t}"));
        let body = body.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut headers = vec![("content-type", "application/json")];
            if let Some(auth) = &auth {
                headers.push(("authorization", auth.as_str()));
            }
            cobuild_test_utils::http_post(&url, body.as_bytes(), &headers)
        })
        .await
        .expect("request ran")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn test_admin_answers_only_with_the_token() {
        let server = start_admin(
            "127.0.0.1:0".parse().expect("addr"),
            "s3cret".into(),
            Arc::new(Fixed),
        )
        .await
        .expect("starts");
        let status = r#"{"jsonrpc":"2.0","id":1,"method":"cobuild_status","params":[]}"#;
        let (code, body) = call(server.local_addr, Some("s3cret"), status).await;
        assert_eq!(code, 200, "{body}");
        assert!(
            body.contains(r#""member":2"#) && body.contains(r#""head":7"#),
            "{body}"
        );
        let hashes = r#"{"jsonrpc":"2.0","id":1,"method":"cobuild_orderHashes","params":[5]}"#;
        let (_, body) = call(server.local_addr, Some("s3cret"), hashes).await;
        assert!(
            body.contains(&format!("{}", B256::with_last_byte(5))),
            "{body}"
        );
        for token in [None, Some("wrong"), Some("s3cre")] {
            let (code, _) = call(server.local_addr, token, status).await;
            assert_eq!(code, 401, "token {token:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn test_admin_errors_are_bounded_and_junk_parameters_refused() {
        let server = start_admin(
            "127.0.0.1:0".parse().expect("addr"),
            "s3cret".into(),
            Arc::new(Fixed),
        )
        .await
        .expect("starts");
        let junk = r#"{"jsonrpc":"2.0","id":1,"method":"cobuild_status","params":[1]}"#;
        let (_, body) = call(server.local_addr, Some("s3cret"), junk).await;
        assert!(body.contains("-32602"), "{body}");
        let quoting = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"cobuild_orderHashes","params":["{}"]}}"#,
            "x".repeat(100_000)
        );
        let (_, body) = call(server.local_addr, Some("s3cret"), &quoting).await;
        assert!(body.contains("-32602"), "{}", &body[..body.len().min(200)]);
        assert!(
            body.len() <= crate::MAX_ERROR_RESPONSE,
            "{} bytes",
            body.len()
        );
    }
}
