//! `cobuild node`: one member node against a hub (a `cobuild devnet` or any chain that serves
//! `debug_getRawBlock` and a relay with the `payload_attributes` stream). `cobuild devnet
//! --nodes N` starts its nodes with exactly these flags, rendered by [`NodeArgs::to_argv`].
//!
//! With `--el-rpc` the node builds beside an execution client instead (real-chain mode): slots
//! from `--beacon` event streams, bids to every `--relay`, no hub, registry or replication.

use std::{ffi::OsString, net::SocketAddr, num::NonZeroU32, path::PathBuf, time::Duration};

use cobuild_chain::HeadSource;
use cobuild_node::{
    el::{ElNode, ElNodeConfig},
    member::{MemberConfig, MemberNode, RegistrySource},
};
use cobuild_registry::{MemberId, NodeKeys};
use cobuild_relay::client::Config as RelayConfig;
use eyre::WrapErr;

use crate::{
    args::{BidArgs, OrderflowArgs, flags},
    logging::LogArgs,
};

/// The key file's name in a node's data directory, unless `--key-file` says otherwise.
pub(crate) const KEY_FILE: &str = "node.key";

/// Slots an order stays in the live log after a record covers it, unless told otherwise: longer
/// than the default bundle horizon (256 blocks) and a private transaction's default range (25),
/// so a restart still refills what can land. A private transaction given a longer
/// `maxBlockNumber` is not refilled after it; it stays in the running pool.
pub(crate) const DEFAULT_LOG_RETENTION_SLOTS: u64 = 300;
/// Slots between two payout batches of a node's refunds, when not set.
pub(crate) const DEFAULT_REFUND_BATCH_SLOTS: u64 = 32;

#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub(crate) struct NodeArgs {
    /// The node's own directory: its chain replica (created if missing).
    #[arg(long, default_value = "data/node", env = "COBUILD_DATA_DIR")]
    pub(crate) data_dir: PathBuf,
    /// The node's key file (`cobuild keys new`) [default: <data-dir>/node.key].
    #[arg(long)]
    pub(crate) key_file: Option<PathBuf>,
    /// The registry file listing the members (`cobuild registry add --file`).
    #[arg(
        long,
        required_unless_present_any = ["registry_contract", "el_rpc"],
        conflicts_with = "registry_contract"
    )]
    pub(crate) registry: Option<PathBuf>,
    /// The registry contract listing the members (`cobuild registry deploy`), read over
    /// --registry-rpc.
    #[arg(long)]
    pub(crate) registry_contract: Option<alloy_primitives::Address>,
    /// JSON-RPC URL the registry contract is read through [default: --hub-rpc].
    #[arg(long, requires = "registry_contract")]
    pub(crate) registry_rpc: Option<String>,
    /// This node's member id [default: the member whose node key is in the key file].
    #[arg(long)]
    pub(crate) member_id: Option<MemberId>,
    /// JSON-RPC URL of the hub whose chain the node follows.
    #[arg(long, required_unless_present = "el_rpc", conflicts_with = "el_rpc")]
    pub(crate) hub_rpc: Option<String>,
    /// Base URL of the hub's relay (builder API and payload_attributes events).
    #[arg(long, required_unless_present = "el_rpc", conflicts_with = "el_rpc")]
    pub(crate) relay_url: Option<String>,
    /// Build beside this execution client (its JSON-RPC URL: `http(s)://`, `ws(s)://`, or the
    /// path of its IPC socket) instead of following a hub: orders are checked against its head and blocks built on its state, pinned by block
    /// hash and sealed from its proofs. Takes --beacon and --relay (or --relay-config), and the
    /// key file's coinbase and BLS keys; no registry, replication or ledger.
    #[arg(long, value_name = "URL", requires = "beacons")]
    pub(crate) el_rpc: Option<String>,
    /// Beacon API base URL of a consensus client whose `payload_attributes` events announce
    /// the slots (repeat for several: the first to announce a slot wins); with --el-rpc.
    #[arg(long = "beacon", value_name = "URL", conflicts_with = "hub_rpc")]
    pub(crate) beacons: Vec<String>,
    /// Base URL of a relay to bid to (repeat for several; --relay-config gives one headers, an
    /// encoding, a cap or a maximum bid); with --el-rpc.
    #[arg(long = "relay", value_name = "URL", conflicts_with = "hub_rpc")]
    pub(crate) relays: Vec<String>,
    /// The chain's genesis fork version, hex: with a zero validators root it makes the builder
    /// signing domain (mainnet 0x00000000, hoodi 0x10000910); with --el-rpc [default: the one
    /// the beacon API gives].
    #[arg(long, value_name = "HEX", conflicts_with = "hub_rpc")]
    pub(crate) genesis_fork_version: Option<String>,
    /// Port of the P2P transport, on --http-addr [default: the port the registry lists].
    #[arg(long)]
    pub(crate) p2p_port: Option<u16>,
    /// Port of the admin API (cobuild_status, cobuild_orderHashes) on 127.0.0.1, behind the
    /// bearer token in <data-dir>/admin.token (0: any free port, logged at start).
    #[arg(long, default_value_t = 0)]
    pub(crate) admin_port: u16,
    /// Milliseconds between asking the hub (with --el-rpc: the execution client) for its head,
    /// besides each slot announcement.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..))]
    pub(crate) poll_ms: u64,
    /// Seconds a starting node waits to hear from every other member, to learn how far its
    /// own orders were numbered (a wiped or restored order log must not reuse numbers), before
    /// it settles for a quorum; without a quorum it refuses to start.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) recovery_timeout_secs: u64,
    /// Start even if the chain replica was truncated or rolled back since its last commit
    /// (the node otherwise refuses, naming the head it had); the rollback is logged.
    #[arg(long)]
    pub(crate) accept_chain_rollback: bool,
    /// Slots an order stays in the live order log after a final ledger record covers it; then
    /// it moves to the archive (<data-dir>/orders.archive.redb), still served to members and
    /// the ledger, and a restart no longer reads it back into the pools.
    #[arg(long, default_value_t = DEFAULT_LOG_RETENTION_SLOTS)]
    pub(crate) log_retention_slots: u64,
    /// The refunds this node owes (for slots it won) are paid in one batch whenever its refund
    /// book has processed a multiple of this many slots.
    #[arg(long, default_value_t = DEFAULT_REFUND_BATCH_SLOTS, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) refund_batch_slots: u64,
    /// The ledger's founding members (JSON, as `cobuild ledger founders` prints them from any
    /// member), for a node that joins after the ledger's first membership change; ignored once
    /// this node's ledger has started.
    #[arg(long, value_name = "FILE")]
    pub(crate) ledger_founders: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) orderflow: OrderflowArgs,
    #[command(flatten)]
    pub(crate) bid: BidArgs,
    #[command(flatten)]
    pub(crate) log: LogArgs,
}

impl NodeArgs {
    /// The key file in use.
    pub(crate) fn key_file(&self) -> PathBuf {
        self.key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join(KEY_FILE))
    }

    /// The arguments after the program name that give exactly these settings (every flag
    /// spelled out, so a recorded command line does not depend on later defaults).
    pub(crate) fn to_argv(&self) -> Vec<OsString> {
        let mut argv: Vec<OsString> = vec![
            "node".into(),
            "--data-dir".into(),
            self.data_dir.clone().into(),
            "--key-file".into(),
            self.key_file().into(),
        ];
        if let Some(file) = &self.registry {
            argv.extend(["--registry".into(), file.clone().into()]);
        }
        let mut pairs = vec![
            ("--poll-ms", self.poll_ms.to_string()),
            (
                "--log-retention-slots",
                self.log_retention_slots.to_string(),
            ),
            ("--refund-batch-slots", self.refund_batch_slots.to_string()),
            ("--admin-port", self.admin_port.to_string()),
            (
                "--recovery-timeout-secs",
                self.recovery_timeout_secs.to_string(),
            ),
        ];
        if let Some(hub) = &self.hub_rpc {
            pairs.push(("--hub-rpc", hub.clone()));
        }
        if let Some(relay) = &self.relay_url {
            pairs.push(("--relay-url", relay.clone()));
        }
        if let Some(id) = self.member_id {
            pairs.push(("--member-id", id.to_string()));
        }
        if let Some(contract) = self.registry_contract {
            pairs.push(("--registry-contract", contract.to_string()));
        }
        if let Some(rpc) = &self.registry_rpc {
            pairs.push(("--registry-rpc", rpc.clone()));
        }
        if let Some(port) = self.p2p_port {
            pairs.push(("--p2p-port", port.to_string()));
        }
        if let Some(file) = &self.ledger_founders {
            pairs.push(("--ledger-founders", file.display().to_string()));
        }
        argv.extend(flags(&pairs));
        if self.accept_chain_rollback {
            argv.push("--accept-chain-rollback".into());
        }
        argv.extend(self.orderflow.to_argv());
        argv.extend(self.bid.to_argv());
        argv.extend(self.log.to_argv());
        argv
    }

    fn config(&self) -> eyre::Result<MemberConfig> {
        let (Some(hub_rpc), Some(relay_url)) = (self.hub_rpc.clone(), self.relay_url.clone())
        else {
            eyre::bail!("a member node needs --hub-rpc and --relay-url");
        };
        let ledger_founders = self
            .ledger_founders
            .as_ref()
            .map(|path| crate::ledger::read_founders(path))
            .transpose()?;
        Ok(MemberConfig {
            data_dir: self.data_dir.clone(),
            key_file: self.key_file(),
            registry: match (&self.registry, self.registry_contract) {
                (_, Some(address)) => RegistrySource::Contract {
                    rpc_url: self.registry_rpc.clone().unwrap_or_else(|| hub_rpc.clone()),
                    address,
                },
                // clap requires one of the two.
                (Some(file), None) => RegistrySource::File(file.clone()),
                (None, None) => RegistrySource::File(PathBuf::from("registry.toml")),
            },
            member_id: self.member_id,
            p2p_addr: self
                .p2p_port
                .map(|port| SocketAddr::new(self.orderflow.http_addr, port)),
            hub_rpc,
            relay_url,
            orderflow: self.orderflow.config(),
            bid_percent: self.bid.bid_percent,
            max_bids_per_second: self.bid.max_bids_per_second,
            extra_relays: self.bid.extra_relays()?,
            poll_interval: Duration::from_millis(self.poll_ms),
            hub_timeout: Duration::from_secs(30),
            recovery_timeout: Duration::from_secs(self.recovery_timeout_secs),
            accept_chain_rollback: self.accept_chain_rollback,
            log_retention_slots: self.log_retention_slots,
            refund_batch_slots: self.refund_batch_slots,
            ledger_founders,
            admin_addr: SocketAddr::new(
                std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
                self.admin_port,
            ),
        })
    }

    /// The settings of a node beside the execution client at `el_rpc`.
    fn el_config(&self, el_rpc: &str) -> eyre::Result<ElNodeConfig> {
        let keys = NodeKeys::read(&self.key_file())
            .wrap_err_with(|| format!("reading {}", self.key_file().display()))?;
        let genesis_fork_version = self
            .genesis_fork_version
            .as_ref()
            .map(|hex| {
                let bytes = alloy_primitives::hex::decode(hex)
                    .wrap_err_with(|| format!("--genesis-fork-version {hex}"))?;
                <[u8; 4]>::try_from(bytes.as_slice())
                    .map_err(|_| eyre::eyre!("--genesis-fork-version {hex}: four bytes expected"))
            })
            .transpose()?;
        let cap = NonZeroU32::new(self.bid.max_bids_per_second).unwrap_or(NonZeroU32::MIN);
        let mut relays: Vec<RelayConfig> = self
            .relays
            .iter()
            .map(|url| RelayConfig {
                max_submissions_per_second: cap,
                ..RelayConfig::new(url.clone())
            })
            .collect();
        relays.extend(self.bid.extra_relays()?);
        if relays.is_empty() {
            eyre::bail!("--el-rpc needs a relay to bid to: --relay URL or --relay-config FILE");
        }
        Ok(ElNodeConfig {
            el_rpc: el_rpc.to_owned(),
            beacons: self.beacons.clone(),
            relays,
            coinbase: keys.coinbase().clone(),
            bls: keys.builder().clone(),
            genesis_fork_version,
            orderflow: self.orderflow.config(),
            bid_percent: self.bid.bid_percent,
            extra_data: alloy_primitives::Bytes::from_static(b"cobuild"),
            round_interval: Duration::from_millis(20),
            head_poll: Duration::from_millis(self.poll_ms),
        })
    }
}

/// Runs a member node, or with --el-rpc a node beside an execution client, until Ctrl-C or
/// SIGTERM.
pub(crate) async fn run(args: NodeArgs) -> eyre::Result<()> {
    if let Some(el_rpc) = &args.el_rpc {
        let node = ElNode::start(args.el_config(el_rpc)?)
            .await
            .wrap_err_with(|| format!("starting the node beside {el_rpc}"))?;
        let head = node.chain.head();
        crate::devnet::print_banner(&format!(
            "cobuild node (beside an execution client)\n  rpc        http://{}\n  el         {el_rpc} (chain id {}, head #{} {})\n  beacons    {}\n  coinbase   {}\n",
            node.rpc_addr(),
            node.chain.spec().chain_id(),
            head.number,
            head.hash(),
            args.beacons.join(" "),
            node.coinbase(),
        ));
        tracing::info!(rpc = %node.rpc_addr(), coinbase = %node.coinbase(), "cli.node.ready");
        node.run(crate::shutdown_signal()).await;
        return Ok(());
    }
    let node = MemberNode::start(args.config()?)
        .await
        .wrap_err_with(|| format!("starting the node in {}", args.data_dir.display()))?;
    tracing::info!(
        id = node.member.id,
        rpc = %node.orderflow.rpc_addr,
        "cli.node.ready"
    );
    node.run(crate::shutdown_signal()).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::{Cli, Command};

    fn parse(argv: &[OsString]) -> NodeArgs {
        let cli = Cli::try_parse_from(
            std::iter::once(OsString::from("cobuild")).chain(argv.iter().cloned()),
        )
        .expect("the rendered command line parses");
        match cli.command {
            Command::Node(args) => *args,
            other => panic!("expected the node command, got {other:?}"),
        }
    }

    #[test]
    fn test_rendered_command_line_parses_back_to_the_same_settings() {
        let minimal = parse(
            &[
                "node",
                "--registry",
                "/r/registry.toml",
                "--hub-rpc",
                "http://127.0.0.1:8545",
                "--relay-url",
                "http://127.0.0.1:9000",
            ]
            .map(OsString::from),
        );
        let mut full = minimal.clone();
        full.data_dir = PathBuf::from("/d/node 0");
        full.member_id = Some(3);
        full.p2p_port = Some(30_303);
        full.orderflow.http_port = 0;
        full.orderflow.max_orders = 7;
        full.orderflow.bundle_horizon = 9;
        full.accept_chain_rollback = true;
        full.bid.bid_percent = 90;
        full.log.log_file = Some(PathBuf::from("/d/node 0/node.log"));
        full.log.log_max_size = crate::logging::ByteSize(1000);
        full.log.log_keep = 9;
        let mut contract = full.clone();
        contract.registry = None;
        contract.registry_contract = Some(alloy_primitives::Address::repeat_byte(7));
        contract.registry_rpc = Some("http://127.0.0.1:1".into());
        for args in [minimal, full, contract] {
            let argv = args.to_argv();
            let back = parse(&argv);
            // The key file default is spelled out, so it survives a different data dir default.
            assert_eq!(back.key_file, Some(args.key_file()));
            assert_eq!(
                NodeArgs {
                    key_file: None,
                    ..back
                },
                NodeArgs {
                    key_file: None,
                    ..args
                }
            );
        }
    }

    #[test]
    fn test_beside_an_execution_client_the_node_takes_beacons_and_relays_instead_of_a_hub() {
        let parse = |argv: &[&str]| {
            Cli::try_parse_from(std::iter::once("cobuild").chain(argv.iter().copied())).map(|cli| {
                match cli.command {
                    Command::Node(args) => *args,
                    other => panic!("expected the node command, got {other:?}"),
                }
            })
        };
        let args = parse(&[
            "node",
            "--el-rpc",
            "http://127.0.0.1:8545",
            "--beacon",
            "http://127.0.0.1:5052",
            "--beacon",
            "http://127.0.0.1:5053",
            "--relay",
            "http://127.0.0.1:9000",
            "--genesis-fork-version",
            "0x10000910",
        ])
        .expect("parses without a hub or registry");
        assert_eq!(args.beacons.len(), 2);
        assert_eq!(args.relays, ["http://127.0.0.1:9000"]);
        assert_eq!((args.hub_rpc, args.registry), (None, None));

        // The execution client needs a consensus client's slots; the beacon flags need the
        // execution client; a hub and an execution client exclude each other.
        assert!(parse(&["node", "--el-rpc", "http://127.0.0.1:8545"]).is_err());
        let member = [
            "node",
            "--registry",
            "r.toml",
            "--hub-rpc",
            "http://127.0.0.1:8545",
            "--relay-url",
            "http://127.0.0.1:9000",
        ];
        assert!(parse(&member).is_ok());
        assert!(parse(&[&member[..], &["--beacon", "http://127.0.0.1:5052"]].concat()).is_err());
        assert!(
            parse(&[
                "node",
                "--el-rpc",
                "http://127.0.0.1:8545",
                "--beacon",
                "http://127.0.0.1:5052",
                "--hub-rpc",
                "http://127.0.0.1:8546",
            ])
            .is_err()
        );
    }
}
