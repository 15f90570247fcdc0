//! Holding a member's listening ports from the moment it starts until each server binds.
//!
//! A member opens its replica and recovers its order numbering before it serves, which takes a
//! second or more. Until then the ports it was given are free for anything else on the machine
//! to take, and the node fails late, after all that work. In CI another devnet's hub, looking
//! for free ports to hand out, took a member's RPC port in that gap. Holding each port from the
//! start narrows the gap to the moment between letting it go and the server's bind, and a busy
//! port fails the start early, naming the port.
//!
//! A hold is a listening socket: Linux lets a port be shared by sockets that all allow reuse
//! and none of which listens, so only a listener keeps a port from every other bind. A
//! connection to a held port is accepted by the kernel but never answered, so whoever waits for
//! the node (the devnet's hub) waits for an HTTP answer, not for a connection.

use std::{
    io::ErrorKind,
    net::{SocketAddr, TcpListener},
    time::{Duration, Instant},
};

/// How long a port in use is tried again before the start fails.
const BUSY_GRACE: Duration = Duration::from_secs(3);
/// Pause between tries.
const BUSY_RETRY: Duration = Duration::from_millis(50);

/// A port this node must listen on, and could not hold.
#[derive(Debug, thiserror::Error)]
#[error("{what} on {addr}: {source}")]
pub struct PortError {
    /// Which server the port is for.
    pub what: &'static str,
    /// The address it was to listen on.
    pub addr: SocketAddr,
    /// Why it could not be bound.
    #[source]
    pub source: std::io::Error,
}

/// A port held for a server that binds it later.
#[derive(Debug)]
pub(super) struct PortHold {
    /// `None` for port 0: the server takes any free port when it starts, nothing to hold.
    socket: Option<TcpListener>,
}

impl PortHold {
    /// Binds `addr` for the server named `what`. A port in use is tried again for up to
    /// [`BUSY_GRACE`]: a node restarted right after it was killed may start before the old
    /// process has closed its sockets (binding a second or more into the start, as servers did
    /// before the hold, hid that).
    pub(super) async fn bind(what: &'static str, addr: SocketAddr) -> Result<Self, PortError> {
        Self::bind_within(what, addr, BUSY_GRACE).await
    }

    async fn bind_within(
        what: &'static str,
        addr: SocketAddr,
        grace: Duration,
    ) -> Result<Self, PortError> {
        if addr.port() == 0 {
            return Ok(Self { socket: None });
        }
        let deadline = Instant::now() + grace;
        loop {
            match TcpListener::bind(addr) {
                Ok(socket) => {
                    return Ok(Self {
                        socket: Some(socket),
                    });
                }
                Err(e) if e.kind() == ErrorKind::AddrInUse && Instant::now() < deadline => {
                    tokio::time::sleep(BUSY_RETRY).await;
                }
                Err(source) => return Err(PortError { what, addr, source }),
            }
        }
    }

    /// Lets the port go, just before its server binds it.
    pub(super) fn release(self) {
        drop(self.socket);
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn loopback(port: u16) -> SocketAddr {
        (Ipv4Addr::LOCALHOST, port).into()
    }

    #[tokio::test]
    async fn test_a_held_port_cannot_be_bound_until_released() {
        let port = TcpListener::bind(loopback(0))
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let hold = PortHold::bind("rpc", loopback(port)).await.expect("hold");
        assert!(TcpListener::bind(loopback(port)).is_err(), "held");
        hold.release();
        TcpListener::bind(loopback(port)).expect("free once released");
    }

    #[tokio::test]
    async fn test_a_port_busy_past_the_grace_is_an_error_naming_it() {
        let busy = TcpListener::bind(loopback(0)).expect("bind");
        let addr = busy.local_addr().expect("addr");
        let err = PortHold::bind_within("the RPC server", addr, 2 * BUSY_RETRY)
            .await
            .expect_err("busy");
        assert_eq!((err.what, err.addr), ("the RPC server", addr));
        assert_eq!(err.source.kind(), ErrorKind::AddrInUse);
        assert!(
            err.to_string()
                .starts_with(&format!("the RPC server on {addr}: ")),
            "{err}"
        );
        let any = PortHold::bind("admin", loopback(0)).await.expect("port 0");
        assert!(any.socket.is_none(), "port 0 holds nothing");
    }

    #[tokio::test]
    async fn test_a_port_freed_within_the_grace_is_held() {
        let busy = TcpListener::bind(loopback(0)).expect("bind");
        let addr = busy.local_addr().expect("addr");
        let holding = tokio::spawn(PortHold::bind("rpc", addr));
        // On this one-thread runtime the task makes its first try (the port is busy) and waits
        // before the old holder lets the port go.
        tokio::task::yield_now().await;
        drop(busy);
        let hold = holding.await.expect("task").expect("held once freed");
        assert!(TcpListener::bind(addr).is_err(), "held");
        hold.release();
    }
}
