//! Handing out the ports of a multi-node devnet: every port distinct from every other the
//! devnet uses, and each held (bound) from the moment it is chosen until the node that will
//! listen on it starts, so the hub's own port-0 binds (its relay) cannot be given the same one.
//! New ports come from below the kernel's ephemeral range, so that no outgoing connection can
//! take one in the moment between the hub letting it go and the node binding it.

use std::{
    collections::BTreeSet,
    net::{IpAddr, TcpListener},
};

use eyre::WrapErr;

/// The ports handed out so far, held until [`PortBook::release`].
#[derive(Debug, Default)]
pub(crate) struct PortBook {
    used: BTreeSet<u16>,
    held: Vec<TcpListener>,
    /// How many ports lie between [`QUIET_FLOOR`] and the kernel's ephemeral range: read once.
    quiet_span: u16,
}

impl PortBook {
    /// A book in which `reserved` (the hub's fixed ports) are taken already.
    pub(crate) fn new(reserved: impl IntoIterator<Item = u16>) -> Self {
        Self {
            used: reserved.into_iter().filter(|p| *p != 0).collect(),
            held: Vec::new(),
            quiet_span: quiet_span(),
        }
    }

    /// `preferred` (last run's port) if no other use has it and it can be bound on `host`
    /// now, else a free port; held either way.
    pub(crate) fn take(&mut self, host: IpAddr, preferred: Option<u16>) -> eyre::Result<u16> {
        if let Some(port) = preferred.filter(|p| !self.used.contains(p))
            && let Ok(listener) = TcpListener::bind((host, port))
        {
            return Ok(self.hold(port, listener));
        }
        if let Some(port) = preferred {
            tracing::info!(port, "cli.devnet.port_moved");
        }
        // Below the ephemeral range first: a port there cannot be taken by an outgoing
        // connection made on this machine between the release and the node's bind.
        for port in quiet_ports(self.quiet_span).take(256) {
            if self.used.contains(&port) {
                continue;
            }
            if let Ok(listener) = TcpListener::bind((host, port)) {
                return Ok(self.hold(port, listener));
            }
        }
        // The kernel never hands out a port bound now, and every port of this book is bound
        // (or is a hub port, bound by the hub or checked below), so a retry only skips a
        // reserved port the hub has not bound yet.
        for _ in 0..64 {
            let listener = TcpListener::bind((host, 0)).wrap_err("finding a free port")?;
            let port = listener.local_addr()?.port();
            if !self.used.contains(&port) {
                return Ok(self.hold(port, listener));
            }
        }
        eyre::bail!("found no free port on {host} outside the devnet's own")
    }

    /// Exactly `port` (a fixed numbering), held; an error naming `what` if another use of the
    /// devnet has it or something else listens on it.
    pub(crate) fn fixed(&mut self, host: IpAddr, port: u16, what: &str) -> eyre::Result<u16> {
        if self.used.contains(&port) {
            eyre::bail!(
                "{what} would be port {port}, which the devnet already uses for another server; choose other ports"
            );
        }
        let listener = TcpListener::bind((host, port))
            .wrap_err_with(|| format!("{what} would be port {port}, which is in use"))?;
        Ok(self.hold(port, listener))
    }

    fn hold(&mut self, port: u16, listener: TcpListener) -> u16 {
        self.used.insert(port);
        self.held.push(listener);
        port
    }

    /// Lets the nodes bind their ports.
    pub(crate) fn release(&mut self) {
        self.held.clear();
    }
}

/// The lowest port a free port is looked for at.
const QUIET_FLOOR: u16 = 10_000;

/// How many ports lie between [`QUIET_FLOOR`] and the kernel's ephemeral range: none where
/// the range is unknown (not Linux) or leaves no room below it.
fn quiet_span() -> u16 {
    ephemeral_floor()
        .unwrap_or(QUIET_FLOOR)
        .saturating_sub(QUIET_FLOOR)
}

/// The `span` ports from [`QUIET_FLOOR`] up, from a random start.
///
/// The kernel gives outgoing connections (and binds to port 0) a local port from its ephemeral
/// range. A node's port chosen there is free while the hub holds it, but once the hub lets it
/// go, a connection made anywhere on the machine before the node binds can take it and the
/// node fails to start (the likely cause of one failed start in CI, beside tests that connect).
fn quiet_ports(span: u16) -> impl Iterator<Item = u16> {
    // Two devnets starting at once (tests) should not walk the same ports in step.
    let random = std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), 0u8);
    let start = random % u64::from(span.max(1));
    (0..span).map(move |i| QUIET_FLOOR + ((start + u64::from(i)) % u64::from(span)) as u16)
}

/// The first port of the kernel's ephemeral range, where it says (Linux).
fn ephemeral_floor() -> Option<u16> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    range.split_whitespace().next()?.parse().ok()
}

/// An error unless every port in `ports` (what, port) is distinct.
pub(crate) fn check_distinct<'a>(
    ports: impl IntoIterator<Item = (&'a str, u16)>,
) -> eyre::Result<()> {
    let mut seen: Vec<(&str, u16)> = Vec::new();
    for (what, port) in ports {
        if let Some((other, _)) = seen.iter().find(|(_, p)| *p == port) {
            eyre::bail!("{what} and {other} would both use port {port}");
        }
        seen.push((what, port));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[test]
    fn test_ports_are_distinct_and_held_until_released() {
        let mut book = PortBook::new([]);
        let a = book.take(LOOPBACK, None).expect("a");
        let b = book.take(LOOPBACK, Some(a)).expect("b");
        assert_ne!(
            a, b,
            "a preferred port already handed out is not handed out again"
        );
        assert!(TcpListener::bind((LOOPBACK, a)).is_err(), "held");
        book.release();
        assert!(TcpListener::bind((LOOPBACK, a)).is_ok(), "released");
    }

    #[test]
    fn test_a_free_port_is_found_below_the_ephemeral_range() {
        let Some(floor) = ephemeral_floor().filter(|floor| *floor > QUIET_FLOOR + 1_000) else {
            return;
        };
        let mut book = PortBook::new([]);
        for _ in 0..8 {
            let port = book.take(LOOPBACK, None).expect("a port");
            assert!(
                (QUIET_FLOOR..floor).contains(&port),
                "port {port} is outside {QUIET_FLOOR}..{floor}"
            );
        }
    }

    #[test]
    fn test_a_reserved_port_is_never_handed_out() {
        let hub = TcpListener::bind((LOOPBACK, 0)).expect("hub");
        let port = hub.local_addr().expect("addr").port();
        drop(hub);
        let mut book = PortBook::new([port]);
        assert_ne!(book.take(LOOPBACK, Some(port)).expect("moved"), port);
        assert!(book.fixed(LOOPBACK, port, "node 0's RPC").is_err());
    }

    #[test]
    fn test_a_clash_is_named() {
        let error = check_distinct([
            ("the relay", 9000),
            ("node 0's RPC", 9001),
            ("node 1's P2P", 9000),
        ])
        .expect_err("a clash");
        assert_eq!(
            error.to_string(),
            "node 1's P2P and the relay would both use port 9000"
        );
        assert!(check_distinct([("a", 1), ("b", 2)]).is_ok());
    }
}
