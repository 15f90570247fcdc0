//! The bounds of one server.

use std::time::Duration;

/// What one server allows its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeConfig {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Most connections open at once from one IP address.
    pub max_connections_per_ip: usize,
    /// Whether loopback clients get only a per-IP share too. Off by default: on loopback are
    /// this machine's own processes (a devnet's member nodes, each with an event stream and a
    /// bid client on the hub's relay, a local load generator, a reverse proxy that enforces its
    /// own limits); they still count against `max_connections`.
    pub limit_loopback: bool,
    /// Time a client has to send a request's header once it started one.
    pub header_timeout: Duration,
    /// Time a client has to send a request's body once its header arrived.
    pub body_timeout: Duration,
}

impl Default for ServeConfig {
    /// 1,024 connections, 64 per IP (a searcher's client pool, a load balancer's handful, with
    /// room; loopback excepted), 10 s for a header and 30 s for a body (a 32 MiB block at
    /// 1 MiB/s with room).
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_connections_per_ip: 64,
            limit_loopback: false,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
        }
    }
}
