//! Starting the HTTP JSON-RPC server.

use std::net::SocketAddr;

use std::time::Duration;

use jsonrpsee::{
    Methods, RpcModule,
    server::{
        BatchRequestConfig, ServerBuilder, ServerConfig, ServerHandle,
        middleware::rpc::RpcServiceBuilder, serve_with_graceful_shutdown, stop_channel,
    },
};

use crate::{
    bundle::{BundleApiServer, Bundles, MevApiServer},
    eth::{DebugApiServer, Eth, EthApiServer, NetApiServer, Web3ApiServer},
    middleware::{CallIndexLayer, FlashbotsAuthLayer, PeerAddrService},
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
    /// Most concurrent connections.
    pub max_connections: u32,
    /// Most calls in one JSON-RPC batch (geth's default: 1,000); a longer batch is refused.
    pub max_batch_calls: u32,
}

impl RpcConfig {
    /// Defaults (5 MiB requests like geth, 64 MiB responses) on `addr`.
    pub const fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            max_request_body: 5 * 1024 * 1024,
            max_response_body: 64 * 1024 * 1024,
            max_connections: 1024,
            max_batch_calls: 1_000,
        }
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
/// Connections are accepted here rather than by jsonrpsee's `Server::start`, which does not
/// hand the remote address to the HTTP middleware: each connection's jsonrpsee service is
/// wrapped so every request carries its [`PeerAddr`](crate::PeerAddr).
pub async fn start(config: RpcConfig, eth: Eth, bundles: Bundles) -> std::io::Result<RpcServer> {
    let server_config = ServerConfig::builder()
        .max_request_body_size(config.max_request_body)
        .max_response_body_size(config.max_response_body)
        .max_connections(config.max_connections)
        .set_batch_request_config(BatchRequestConfig::Limit(config.max_batch_calls))
        .http_only()
        .build();
    let http = tower::ServiceBuilder::new().layer(FlashbotsAuthLayer::new(config.max_request_body));
    let services = ServerBuilder::with_config(server_config)
        .set_http_middleware(http)
        .set_rpc_middleware(RpcServiceBuilder::new().layer(CallIndexLayer))
        .to_service_builder();
    let listener = tokio::net::TcpListener::bind(config.addr).await?;
    let local_addr = listener.local_addr()?;
    let mut module = RpcModule::new(());
    module
        .merge(EthApiServer::into_rpc(eth.clone()))
        .map_err(std::io::Error::other)?;
    module
        .merge(NetApiServer::into_rpc(eth.clone()))
        .map_err(std::io::Error::other)?;
    module
        .merge(BundleApiServer::into_rpc(bundles.clone()))
        .map_err(std::io::Error::other)?;
    module
        .merge(MevApiServer::into_rpc(bundles))
        .map_err(std::io::Error::other)?;
    module
        .merge(DebugApiServer::into_rpc(eth.clone()))
        .map_err(std::io::Error::other)?;
    module
        .merge(Web3ApiServer::into_rpc(eth))
        .map_err(std::io::Error::other)?;
    let methods = Methods::from(module);
    let (stop, handle) = stop_channel();
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = stop.clone().shutdown() => break,
            };
            let (socket, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    tracing::debug!(%error, "rpc.accept.failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            if let Err(error) = socket.set_nodelay(true) {
                tracing::debug!(%error, "rpc.accept.nodelay");
            }
            let service =
                PeerAddrService::new(services.clone().build(methods.clone(), stop.clone()), peer);
            let stopped = stop.clone().shutdown();
            tokio::spawn(async move {
                if let Err(error) = serve_with_graceful_shutdown(socket, service, stopped).await {
                    tracing::debug!(%error, %peer, "rpc.connection.closed");
                }
            });
        }
    });
    tracing::info!(%local_addr, "rpc.start");
    Ok(RpcServer { local_addr, handle })
}
