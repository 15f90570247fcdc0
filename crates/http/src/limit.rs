//! Counting open connections, in all and per client IP.

use std::{collections::HashMap, net::IpAddr, sync::Arc};

use parking_lot::Mutex;

use crate::ServeConfig;

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The server holds its most connections.
    #[error("the server holds its most connections ({0})")]
    Full(usize),
    /// The client's IP holds its most connections.
    #[error("{ip} holds its most connections ({max})")]
    PerIp {
        /// The client's address.
        ip: IpAddr,
        /// The bound.
        max: usize,
    },
}

/// The open connections of one server. Cheap to clone; clones share the counts.
#[derive(Debug, Clone)]
pub struct ConnectionLimit {
    inner: Arc<Mutex<Counts>>,
    max: usize,
    max_per_ip: usize,
    limit_loopback: bool,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct ConnectionPermit {
    limit: ConnectionLimit,
    ip: IpAddr,
}

impl ConnectionLimit {
    /// The bounds of `config`.
    pub fn new(config: &ServeConfig) -> Self {
        Self {
            inner: Arc::default(),
            max: config.max_connections,
            max_per_ip: config.max_connections_per_ip,
            limit_loopback: config.limit_loopback,
        }
    }

    /// A place for a connection from `ip`, if both bounds allow one.
    pub fn admit(&self, ip: IpAddr) -> Result<ConnectionPermit, Refused> {
        let mut counts = self.inner.lock();
        if counts.total >= self.max {
            return Err(Refused::Full(self.max));
        }
        let max_per_ip = self.max_per_ip;
        let capped = self.limit_loopback || !ip.is_loopback();
        let of_ip = counts.per_ip.entry(ip).or_default();
        if capped && *of_ip >= max_per_ip {
            return Err(Refused::PerIp {
                ip,
                max: max_per_ip,
            });
        }
        *of_ip += 1;
        counts.total += 1;
        Ok(ConnectionPermit {
            limit: self.clone(),
            ip,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.inner.lock().total
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut counts = self.limit.inner.lock();
        counts.total = counts.total.saturating_sub(1);
        if let Some(of_ip) = counts.per_ip.get_mut(&self.ip) {
            *of_ip -= 1;
            if *of_ip == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn limit(max: usize, max_per_ip: usize) -> ConnectionLimit {
        ConnectionLimit::new(&ServeConfig {
            max_connections: max,
            max_connections_per_ip: max_per_ip,
            limit_loopback: true,
            ..ServeConfig::default()
        })
    }

    #[test]
    fn test_one_ip_cannot_take_every_place() {
        let limit = limit(3, 2);
        let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let b = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        let first = limit.admit(a).expect("first");
        let _second = limit.admit(a).expect("second");
        assert_eq!(
            limit.admit(a).expect_err("over the per-IP bound"),
            Refused::PerIp { ip: a, max: 2 }
        );
        let _other = limit.admit(b).expect("another IP still gets in");
        assert_eq!(
            limit.admit(b).expect_err("over the total bound"),
            Refused::Full(3)
        );
        drop(first);
        assert_eq!(limit.open(), 2);
        let _again = limit.admit(a).expect("a freed place is free");
    }

    #[test]
    fn test_loopback_counts_only_against_the_total_unless_asked() {
        let limit = ConnectionLimit::new(&ServeConfig {
            max_connections: 3,
            max_connections_per_ip: 1,
            ..ServeConfig::default()
        });
        let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let held: Vec<_> = (0..3)
            .map(|_| limit.admit(local).expect("the devnet's own processes"))
            .collect();
        assert_eq!(limit.admit(local).expect_err("the total"), Refused::Full(3));
        drop(held);
        let remote = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let _one = limit.admit(remote).expect("one");
        assert!(
            limit.admit(remote).is_err(),
            "a remote IP gets its share only"
        );
    }
}
