//! `<data-dir>/endpoints.json`: where everything of a multi-node devnet listens, each node's
//! process, log and full command line (to restart one by hand), written atomically.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
};

use alloy_primitives::{Address, Bytes};
use cobuild_registry::MemberId;
use eyre::WrapErr;
use serde::{Deserialize, Serialize};

/// The file's name in the devnet's data directory.
pub(crate) const ENDPOINTS_FILE: &str = "endpoints.json";

/// The whole devnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Endpoints {
    /// The hub: chain, relay and proposer.
    pub(crate) hub: Hub,
    /// The registry file listing the nodes.
    pub(crate) registry: PathBuf,
    /// The registry contract on the hub's chain that the nodes follow.
    #[serde(default)]
    pub(crate) registry_contract: Option<alloy_primitives::Address>,
    /// The member nodes, by id.
    pub(crate) nodes: Vec<Node>,
}

/// The hub process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Hub {
    /// Its eth JSON-RPC.
    pub(crate) rpc: String,
    /// Its relay's builder API.
    pub(crate) relay: String,
    /// The relay's `payload_attributes` stream.
    pub(crate) events: String,
    /// Its process id.
    pub(crate) pid: u32,
    /// Its data directory.
    pub(crate) data_dir: PathBuf,
}

/// One member node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Node {
    /// Its member id.
    pub(crate) id: MemberId,
    /// Its orderflow JSON-RPC.
    pub(crate) rpc: String,
    /// Where its P2P transport listens.
    pub(crate) p2p: String,
    /// Its admin API (`cobuild status`), behind the token in `<data_dir>/admin.token`.
    #[serde(default)]
    pub(crate) admin: String,
    /// Its data directory.
    pub(crate) data_dir: PathBuf,
    /// Its key file.
    pub(crate) key_file: PathBuf,
    /// The log it writes and rotates (its command line says so); whatever it prints outside
    /// the log goes to `node.out` beside it.
    pub(crate) log: PathBuf,
    /// The process the hub started (stale once it was restarted by hand).
    pub(crate) pid: Option<u32>,
    /// The coinbase of its blocks.
    pub(crate) coinbase: Address,
    /// Its BLS builder key (the relay's data API names bids by it).
    pub(crate) bls_key: Bytes,
    /// The extra data of its blocks.
    pub(crate) extra_data: String,
    /// Its full command line, program first: run it again to restart the node.
    pub(crate) argv: Vec<String>,
}

impl Endpoints {
    /// Reads the file in `data_dir`, if there is one that parses (a damaged one is ignored:
    /// it only tells which ports to reuse).
    pub(crate) fn read(data_dir: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(data_dir.join(ENDPOINTS_FILE)).ok()?;
        match serde_json::from_str(&text) {
            Ok(endpoints) => Some(endpoints),
            Err(error) => {
                tracing::warn!(%error, "cli.devnet.endpoints_unreadable");
                None
            }
        }
    }

    /// Writes the file in `data_dir`: a reader sees the old file or the new one, never half.
    pub(crate) fn write(&self, data_dir: &Path) -> eyre::Result<PathBuf> {
        let path = data_dir.join(ENDPOINTS_FILE);
        let json = serde_json::to_string_pretty(self).wrap_err("encoding endpoints.json")?;
        let mut file = tempfile::NamedTempFile::new_in(data_dir)
            .wrap_err_with(|| format!("writing {}", path.display()))?;
        std::io::Write::write_all(&mut file, json.as_bytes())
            .and_then(|()| file.as_file().sync_all())
            .wrap_err_with(|| format!("writing {}", path.display()))?;
        file.persist(&path)
            .wrap_err_with(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// The previous run's node `id`, if listed.
    pub(crate) fn node(&self, id: MemberId) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }
}

/// The port of a URL or `host:port` string, if it ends in one.
pub(crate) fn port_of(address: &str) -> Option<u16> {
    address
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
}

/// The address clients dial for a server bound to `addr` (a wildcard bind is reached on
/// loopback).
pub(crate) fn dial(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
    } else {
        addr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Endpoints {
        Endpoints {
            hub: Hub {
                rpc: "http://127.0.0.1:8545".into(),
                relay: "http://127.0.0.1:9000".into(),
                events: "http://127.0.0.1:9000/eth/v1/events?topics=payload_attributes".into(),
                pid: 10,
                data_dir: "/d".into(),
            },
            registry: "/d/registry.toml".into(),
            registry_contract: Some(Address::repeat_byte(9)),
            nodes: vec![Node {
                id: 0,
                rpc: "http://127.0.0.1:8546".into(),
                p2p: "127.0.0.1:30303".into(),
                admin: "http://127.0.0.1:8600".into(),
                data_dir: "/d/node-0".into(),
                key_file: "/d/node-0/node.key".into(),
                log: "/d/node-0/node.log".into(),
                pid: Some(11),
                coinbase: Address::repeat_byte(1),
                bls_key: Bytes::from(vec![2; 48]),
                extra_data: "cobuild node 0".into(),
                argv: vec!["cobuild".into(), "node".into()],
            }],
        }
    }

    #[test]
    fn test_written_endpoints_read_back_the_same() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(Endpoints::read(dir.path()), None);
        let endpoints = sample();
        endpoints.write(dir.path()).expect("writes");
        assert_eq!(Endpoints::read(dir.path()), Some(endpoints.clone()));
        // A second write replaces the first.
        let mut changed = endpoints;
        changed.hub.pid = 12;
        changed.write(dir.path()).expect("writes again");
        assert_eq!(Endpoints::read(dir.path()), Some(changed));
        std::fs::write(dir.path().join(ENDPOINTS_FILE), "{").expect("damage");
        assert_eq!(Endpoints::read(dir.path()), None);
    }

    #[test]
    fn test_ports_and_dial_addresses() {
        assert_eq!(port_of("http://127.0.0.1:8546"), Some(8546));
        assert_eq!(port_of("127.0.0.1:30303"), Some(30303));
        assert_eq!(port_of("http://host/"), None);
        let wildcard: SocketAddr = "0.0.0.0:8545".parse().expect("addr");
        assert_eq!(dial(wildcard).to_string(), "127.0.0.1:8545");
        let bound: SocketAddr = "10.0.0.1:8545".parse().expect("addr");
        assert_eq!(dial(bound), bound);
    }
}
