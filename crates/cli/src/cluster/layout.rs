//! The files of a multi-node devnet: one directory and key file per node, one registry listing
//! them all, and the ports each node uses. Everything that exists is reused, so a restarted
//! devnet keeps its nodes' keys, ports and chain replicas.
//!
//! ```text
//!  <data-dir>/chain.redb        the hub's chain
//!  <data-dir>/registry.toml     members 0..N (address = <host>:<p2p port>)
//!  <data-dir>/endpoints.json    written once the nodes run
//!  <data-dir>/node-<i>/node.key, chain.redb, node.log (rotated: node.log.1 ...), node.out
//! ```

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
};

use cobuild_registry::{FileRegistry, MemberId, NodeKeys, PublicKeys, Registry};
use eyre::WrapErr;

use super::{
    endpoints::{Endpoints, port_of},
    ports::PortBook,
};
use crate::node::KEY_FILE;

/// The registry file's name in the devnet's data directory.
pub(crate) const REGISTRY_FILE: &str = "registry.toml";

/// One node's files and ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodePlan {
    /// Its member id.
    pub(crate) id: MemberId,
    /// Its data directory.
    pub(crate) dir: PathBuf,
    /// Its key file.
    pub(crate) key_file: PathBuf,
    /// Its keys' public parts.
    pub(crate) public: PublicKeys,
    /// Port of its JSON-RPC server.
    pub(crate) rpc_port: u16,
    /// Port of its P2P transport.
    pub(crate) p2p_port: u16,
    /// Port of its admin API (on loopback).
    pub(crate) admin_port: u16,
}

impl NodePlan {
    /// The log the node writes (and rotates: `node.log.1` ...).
    pub(crate) fn log(&self) -> PathBuf {
        self.dir.join("node.log")
    }

    /// Where its stdout and stderr go: whatever it prints outside its log.
    pub(crate) fn out(&self) -> PathBuf {
        self.dir.join("node.out")
    }

    /// Where to look when it fails, for an error message.
    pub(crate) fn files(&self) -> String {
        format!(
            "its log: {}, its output: {}",
            self.log().display(),
            self.out().display()
        )
    }
}

/// Where the ports of new nodes come from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ports {
    /// The host nodes listen on and the registry lists.
    pub(crate) host: IpAddr,
    /// The hub's RPC port when fixed: node `i`'s RPC gets the port `i + 1` above it. When 0,
    /// free ports are picked.
    pub(crate) hub_rpc: u16,
}

/// Creates or reuses the files of `count` nodes under `data_dir`, and makes the registry list
/// exactly them. `previous` is the last run's endpoints, whose ports are kept where they are
/// still free; every port comes from `book`, so none is used twice.
pub(crate) fn prepare(
    data_dir: &Path,
    count: u32,
    ports: Ports,
    previous: Option<&Endpoints>,
    book: &mut PortBook,
) -> eyre::Result<(PathBuf, Vec<NodePlan>)> {
    std::fs::create_dir_all(data_dir)
        .wrap_err_with(|| format!("creating {}", data_dir.display()))?;
    let registry_path = data_dir.join(REGISTRY_FILE);
    let registry = FileRegistry::open_or_create(&registry_path)
        .wrap_err_with(|| format!("opening {}", registry_path.display()))?;
    // Members beyond the count leave first, so their keys cannot clash with new ones.
    for member in registry.members()? {
        if member.id >= count {
            registry
                .remove(member.id)
                .wrap_err_with(|| format!("removing member {} (beyond --nodes)", member.id))?;
            tracing::info!(id = member.id, "cli.devnet.member_removed");
        }
    }
    let listed = registry.members()?;
    let mut plans = Vec::new();
    for id in 0..count {
        let dir = data_dir.join(format!("node-{id}"));
        std::fs::create_dir_all(&dir).wrap_err_with(|| format!("creating {}", dir.display()))?;
        let key_file = dir.join(KEY_FILE);
        let keys = if key_file.exists() {
            NodeKeys::read(&key_file)?
        } else {
            let keys = NodeKeys::generate().wrap_err("generating node keys")?;
            keys.write(&key_file)?;
            keys
        };
        let public = keys.public();
        let entry = listed.iter().find(|m| m.id == id);
        let last = previous.and_then(|p| p.node(id));
        let p2p_port = book.take(ports.host, entry.and_then(|m| port_of(&m.address)))?;
        let rpc_port = match last.and_then(|n| port_of(&n.rpc)) {
            Some(port) => book.take(ports.host, Some(port))?,
            None if ports.hub_rpc != 0 => {
                let port = ports.hub_rpc.checked_add(1 + id as u16).ok_or_else(|| {
                    eyre::eyre!("no RPC port above {} for node {id}", ports.hub_rpc)
                })?;
                book.fixed(ports.host, port, &format!("node {id}'s RPC"))?
            }
            None => book.take(ports.host, None)?,
        };
        let admin_port = book.take(
            std::net::Ipv4Addr::LOCALHOST.into(),
            last.and_then(|n| port_of(&n.admin)),
        )?;
        let member = public.member(id, format!("{}:{p2p_port}", ports.host), None);
        match entry {
            Some(listed) if *listed == member => {}
            Some(_) => registry
                .update(member)
                .wrap_err_with(|| format!("updating member {id} in the registry"))?,
            None => registry
                .add(member)
                .wrap_err_with(|| format!("adding member {id} to the registry"))?,
        }
        plans.push(NodePlan {
            id,
            dir,
            key_file,
            public,
            rpc_port,
            p2p_port,
            admin_port,
        });
    }
    Ok((registry_path, plans))
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const LOOPBACK: Ports = Ports {
        host: IpAddr::V4(Ipv4Addr::LOCALHOST),
        hub_rpc: 0,
    };

    #[test]
    fn test_a_second_run_reuses_keys_and_ports_and_the_registry_follows_the_count() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut book = PortBook::new([]);
        let (registry, first) =
            prepare(dir.path(), 3, LOOPBACK, None, &mut book).expect("prepares");
        book.release();
        let members = FileRegistry::open(&registry)
            .and_then(|r| r.members())
            .expect("registry");
        assert_eq!(members.len(), 3);
        for (plan, member) in first.iter().zip(&members) {
            assert_eq!(member.node_key, plan.public.node_key);
            assert_eq!(member.address, format!("127.0.0.1:{}", plan.p2p_port));
            assert!(plan.key_file.exists());
        }

        // The RPC ports the last run used come from its endpoints.
        let previous = Endpoints {
            hub: super::super::endpoints::Hub {
                rpc: String::new(),
                relay: String::new(),
                events: String::new(),
                pid: 0,
                data_dir: dir.path().to_owned(),
            },
            registry: registry.clone(),
            registry_contract: None,
            nodes: first
                .iter()
                .map(|p| super::super::endpoints::Node {
                    id: p.id,
                    rpc: format!("http://127.0.0.1:{}", p.rpc_port),
                    p2p: String::new(),
                    admin: format!("http://127.0.0.1:{}", p.admin_port),
                    data_dir: p.dir.clone(),
                    key_file: p.key_file.clone(),
                    log: p.log(),
                    pid: None,
                    coinbase: p.public.coinbase,
                    bls_key: p.public.bls_key.clone(),
                    extra_data: String::new(),
                    argv: Vec::new(),
                })
                .collect(),
        };
        let (_, second) = prepare(
            dir.path(),
            2,
            LOOPBACK,
            Some(&previous),
            &mut PortBook::new([]),
        )
        .expect("prepares");
        assert_eq!(second, first[..2]);
        let members = FileRegistry::open(&registry)
            .and_then(|r| r.members())
            .expect("registry");
        assert_eq!(members.len(), 2, "member 2 left with --nodes 2");
    }

    #[test]
    fn test_fixed_hub_port_numbers_the_nodes_above_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ports = Ports {
            hub_rpc: 18_545,
            ..LOOPBACK
        };
        let (_, plans) =
            prepare(dir.path(), 2, ports, None, &mut PortBook::new([18_545])).expect("prepares");
        assert_eq!(
            plans.iter().map(|p| p.rpc_port).collect::<Vec<_>>(),
            [18_546, 18_547]
        );
    }

    #[test]
    fn test_a_node_is_never_numbered_onto_the_relays_port() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ports = Ports {
            hub_rpc: 18_645,
            ..LOOPBACK
        };
        // The relay was asked for the port node 1's RPC would get.
        let error = prepare(
            dir.path(),
            2,
            ports,
            None,
            &mut PortBook::new([18_645, 18_647]),
        )
        .expect_err("a clash");
        assert!(
            error
                .to_string()
                .contains("node 1's RPC would be port 18647"),
            "{error}"
        );
    }

    #[test]
    fn test_a_last_runs_port_that_the_hub_now_uses_moves() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut book = PortBook::new([]);
        let (registry, first) =
            prepare(dir.path(), 1, LOOPBACK, None, &mut book).expect("prepares");
        book.release();
        // The hub's relay now has node 0's P2P port of the last run.
        let relay = first[0].p2p_port;
        let mut book = PortBook::new([relay]);
        let (_, second) = prepare(dir.path(), 1, LOOPBACK, None, &mut book).expect("prepares");
        assert_ne!(second[0].p2p_port, relay);
        let members = FileRegistry::open(&registry)
            .and_then(|r| r.members())
            .expect("registry");
        assert_eq!(
            members[0].address,
            format!("127.0.0.1:{}", second[0].p2p_port)
        );
    }
}
