//! Holding a member's listening ports from the moment it starts until each server binds.
//!
//! A member opens its replica and recovers its order numbering before it serves, which takes a
//! second or more. Until then the ports it was given are free for anything else on the machine
//! to take, and the node fails late, after all that work. In CI another devnet's hub, looking
//! for free ports to hand out, took a member's RPC port in that gap. Holding each port (bound
//! and listening) from the start narrows the gap to the moment between letting it go and the
//! server's bind, and a busy port fails the start at once, naming the port.

use std::net::{SocketAddr, TcpListener};

/// A port this node must listen on, or could not hold.
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
    listener: Option<TcpListener>,
}

impl PortHold {
    /// Binds `addr` now, for the server named `what`.
    pub(super) fn bind(what: &'static str, addr: SocketAddr) -> Result<Self, PortError> {
        if addr.port() == 0 {
            return Ok(Self { listener: None });
        }
        let listener =
            TcpListener::bind(addr).map_err(|source| PortError { what, addr, source })?;
        Ok(Self {
            listener: Some(listener),
        })
    }

    /// Lets the port go, just before its server binds it.
    pub(super) fn release(self) {
        drop(self.listener);
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn loopback(port: u16) -> SocketAddr {
        (Ipv4Addr::LOCALHOST, port).into()
    }

    #[test]
    fn test_a_held_port_cannot_be_bound_until_released() {
        let port = TcpListener::bind(loopback(0))
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let hold = PortHold::bind("rpc", loopback(port)).expect("hold");
        assert!(TcpListener::bind(loopback(port)).is_err(), "held");
        hold.release();
        TcpListener::bind(loopback(port)).expect("free once released");
    }

    #[test]
    fn test_a_busy_port_is_an_error_naming_it_and_port_0_holds_nothing() {
        let busy = TcpListener::bind(loopback(0)).expect("bind");
        let addr = busy.local_addr().expect("addr");
        let err = PortHold::bind("the RPC server", addr).expect_err("busy");
        assert_eq!((err.what, err.addr), ("the RPC server", addr));
        assert!(
            err.to_string()
                .starts_with(&format!("the RPC server on {addr}: ")),
            "{err}"
        );
        let any = PortHold::bind("admin", loopback(0)).expect("port 0");
        assert!(any.listener.is_none());
    }
}
