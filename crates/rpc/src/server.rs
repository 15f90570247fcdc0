//! Starting the HTTP JSON-RPC server.

use std::net::SocketAddr;

use cobuild_http::ServeConfig;

use jsonrpsee::{
    Methods, RpcModule,
    server::{
        BatchRequestConfig, ServerBuilder, ServerConfig, ServerHandle,
        middleware::rpc::RpcServiceBuilder, stop_channel,
    },
};

use crate::{
    bundle::{BundleApiServer, Bundles, MevApiServer, RefundRecipientApiServer},
    eth::{
        DebugApiServer, Eth, EthApiServer, EthPubSubApiServer, NetApiServer, WITHOUT_PARAMS,
        Web3ApiServer,
    },
    middleware::{
        BodyLimits, CallIndexLayer, FlashbotsAuthLayer, PeerAddrService, RequestCheckLayer,
        SpecLayer,
    },
};

/// Settings of the RPC server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RpcConfig {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Largest request body accepted, in bytes; larger ones are refused before buffering.
    pub max_request_body: u32,
    /// Largest response body, in bytes.
    pub max_response_body: u32,
    /// Most calls in one JSON-RPC batch (geth's default: 1,000); a longer batch is refused.
    pub max_batch_calls: u32,
    /// Most `eth_subscribe` subscriptions one WebSocket connection holds.
    pub max_subscriptions: u32,
    /// Messages one WebSocket connection may have waiting to be written; a subscription whose
    /// notifications find it full is ended.
    pub message_buffer: u32,
    /// Connections in all and per client IP, and the header and body deadlines.
    pub serve: ServeConfig,
}

impl RpcConfig {
    /// Defaults (5 MiB requests like geth, 64 MiB responses, [`ServeConfig::default`]) on
    /// `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            max_request_body: 5 * 1024 * 1024,
            max_response_body: 64 * 1024 * 1024,
            max_batch_calls: 1_000,
            max_subscriptions: 1_024,
            message_buffer: 1_024,
            serve: ServeConfig::default(),
        }
    }
}

/// Subscription ids as geth gives them: 16 random bytes in `0x` hex (jsonrpsee's default, a
/// number, trips clients that expect a string).
#[derive(Debug, Clone, Copy)]
struct HexIds;

impl jsonrpsee::core::traits::IdProvider for HexIds {
    fn next_id(&self) -> jsonrpsee::types::SubscriptionId<'static> {
        let mut id = [0u8; 16];
        // The OS's randomness failing leaves the (still distinct per call) counter below.
        if getrandom::fill(&mut id).is_err() {
            static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            id[8..].copy_from_slice(&n.to_be_bytes());
        }
        jsonrpsee::types::SubscriptionId::Str(
            format!("0x{}", alloy_primitives::hex::encode(id)).into(),
        )
    }
}

/// A running server.
#[derive(Debug)]
pub struct RpcServer {
    /// The address it listens on (the real port when 0 was asked for).
    pub local_addr: SocketAddr,
    /// Stops the server when told to.
    pub handle: ServerHandle,
}

/// Starts serving the eth, net, web3 and debug (raw blocks) namespaces and the Flashbots/MEV-Share orderflow
/// methods.
///
/// Connections are accepted by [`cobuild_http::serve`] rather than by jsonrpsee's
/// `Server::start`, which neither hands the remote address to the HTTP middleware nor bounds
/// connections per IP or a slow client's header: each connection's jsonrpsee service is
/// wrapped so every request carries its [`PeerAddr`](crate::PeerAddr).
pub async fn start(config: RpcConfig, eth: Eth, bundles: Bundles) -> std::io::Result<RpcServer> {
    start_with(config, Some(eth), bundles, Methods::new()).await
}

/// [`start`], serving `extra` methods too (a member's slot ledger); without `eth` (a node whose
/// chain is an execution client's, which serves those namespaces itself) only the orderflow
/// methods.
pub async fn start_with(
    config: RpcConfig,
    eth: Option<Eth>,
    bundles: Bundles,
    extra: Methods,
) -> std::io::Result<RpcServer> {
    let server_config = ServerConfig::builder()
        .max_request_body_size(config.max_request_body)
        .max_response_body_size(config.max_response_body)
        .set_batch_request_config(BatchRequestConfig::Limit(config.max_batch_calls))
        .max_subscriptions_per_connection(config.max_subscriptions)
        // Notifications waiting to be written, per connection: a subscriber that reads slower
        // than its notifications come is dropped once this is full (see `eth::pubsub`).
        .set_message_buffer_capacity(config.message_buffer)
        .set_id_provider(HexIds)
        .build();
    let limits = BodyLimits {
        max: config.max_request_body,
        deadline: config.serve.body_timeout,
    };
    // The signature is checked on the body as sent, before the request check may rewrite it.
    let http = tower::ServiceBuilder::new()
        .layer(FlashbotsAuthLayer::new(limits))
        .layer(RequestCheckLayer::new(limits));
    let rpc = RpcServiceBuilder::new()
        .layer(CallIndexLayer)
        .layer(SpecLayer::new(config.max_response_body, WITHOUT_PARAMS));
    let services = ServerBuilder::with_config(server_config)
        .set_http_middleware(http)
        .set_rpc_middleware(rpc)
        .to_service_builder();
    let listener = tokio::net::TcpListener::bind(config.addr).await?;
    let local_addr = listener.local_addr()?;
    let mut module = RpcModule::new(());
    if let Some(eth) = eth {
        module
            .merge(EthApiServer::into_rpc(eth.clone()))
            .map_err(std::io::Error::other)?;
        module
            .merge(EthPubSubApiServer::into_rpc(eth.clone()))
            .map_err(std::io::Error::other)?;
        module
            .merge(NetApiServer::into_rpc(eth.clone()))
            .map_err(std::io::Error::other)?;
        module
            .merge(DebugApiServer::into_rpc(eth.clone()))
            .map_err(std::io::Error::other)?;
        module
            .merge(Web3ApiServer::into_rpc(eth))
            .map_err(std::io::Error::other)?;
    }
    module
        .merge(BundleApiServer::into_rpc(bundles.clone()))
        .map_err(std::io::Error::other)?;
    module
        .merge(MevApiServer::into_rpc(bundles.clone()))
        .map_err(std::io::Error::other)?;
    module
        .merge(RefundRecipientApiServer::into_rpc(bundles))
        .map_err(std::io::Error::other)?;
    module
        .merge(crate::eth::refused())
        .map_err(std::io::Error::other)?;
    module.merge(extra).map_err(std::io::Error::other)?;
    let methods = Methods::from(module);
    let (stop, handle) = stop_channel();
    let stopped = stop.clone().shutdown();
    tokio::spawn(cobuild_http::serve(
        listener,
        config.serve,
        move |peer| {
            PeerAddrService::new(services.clone().build(methods.clone(), stop.clone()), peer)
        },
        stopped,
    ));
    tracing::info!(%local_addr, "rpc.start");
    Ok(RpcServer { local_addr, handle })
}
