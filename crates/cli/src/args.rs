//! Flags both `cobuild devnet` and `cobuild node` take: the order intake and the bidding.

use std::{ffi::OsString, net::SocketAddr};

use cobuild_node::OrderflowConfig;
use cobuild_rpc::{LogLimits, OrderflowLimits};

/// Where the JSON-RPC server listens and how much orderflow it takes.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub(crate) struct OrderflowArgs {
    /// Port of the JSON-RPC server.
    #[arg(long, default_value_t = 8545)]
    pub(crate) http_port: u16,
    /// Address the JSON-RPC server binds to.
    #[arg(long, default_value = "127.0.0.1")]
    pub(crate) http_addr: std::net::IpAddr,
    /// Bundle-method calls per second one signing sender may make on average.
    #[arg(long, default_value_t = 1000)]
    pub(crate) bundle_rate: u32,
    /// Bundle-method calls one signing sender may make in a burst.
    #[arg(long, default_value_t = 2000)]
    pub(crate) bundle_burst: u32,
    /// Orderflow-method calls (bundles, private transactions) per second one peer IP may make
    /// on average, whoever signs them.
    #[arg(long, default_value_t = 5000)]
    pub(crate) ip_rate: u32,
    /// Orderflow-method calls one peer IP may make in a burst.
    #[arg(long, default_value_t = 10000)]
    pub(crate) ip_burst: u32,
    /// Gas per second one signing sender may have simulated by `eth_callBundle` and
    /// `mev_simBundle` on average (each call is charged its transactions' gas limits); twice
    /// this in a burst.
    #[arg(long, default_value_t = 300_000_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) sim_gas_rate: u32,
    /// Most orders (transactions plus bundles) held; when full, a more valuable order evicts
    /// the least valuable one, others are refused with "txpool is full".
    #[arg(long, default_value_t = 20000)]
    pub(crate) max_orders: usize,
    /// How many blocks past the head a bundle may reach; a bundle for any block (block 0) is
    /// dropped this many blocks after it arrived. Farther targets are refused.
    #[arg(long, default_value_t = cobuild_pool::DEFAULT_BUNDLE_HORIZON, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) bundle_horizon: u64,
    /// Most blocks one `eth_getLogs` query may span; a wider one is refused with the limit.
    #[arg(long, default_value_t = LogLimits::DEFAULT.max_blocks, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) max_log_blocks: u64,
    /// Most logs one `eth_getLogs` answer may carry; a query that finds more is refused with
    /// a range that fits.
    #[arg(long, default_value_t = LogLimits::DEFAULT.max_logs)]
    pub(crate) max_logs: usize,
    /// Keep the state of the last this many blocks only (at least 256) for queries at past
    /// blocks; by default every block's state is kept.
    #[arg(long)]
    pub(crate) history_blocks: Option<u64>,
    /// How far behind the head `eth_getProof` answers, in blocks: a proof at a past block
    /// rebuilds that block's trie from the state changes since, so its cost grows with them.
    #[arg(long, default_value_t = cobuild_rpc::DEFAULT_PROOF_WINDOW)]
    pub(crate) proof_window: u64,
}

impl OrderflowArgs {
    /// The node's order intake settings.
    pub(crate) const fn config(&self) -> OrderflowConfig {
        OrderflowConfig {
            http_addr: SocketAddr::new(self.http_addr, self.http_port),
            limits: OrderflowLimits {
                sender_rate: self.bundle_rate,
                sender_burst: self.bundle_burst,
                ip_rate: self.ip_rate,
                ip_burst: self.ip_burst,
                sim_gas_rate: self.sim_gas_rate,
                sim_gas_burst: self.sim_gas_rate.saturating_mul(2),
            },
            max_orders: self.max_orders,
            bundle_horizon: self.bundle_horizon,
            log_limits: LogLimits {
                max_blocks: self.max_log_blocks,
                max_logs: self.max_logs,
            },
            history_blocks: self.history_blocks,
            proof_window: self.proof_window,
        }
    }

    /// The flags that give these settings.
    pub(crate) fn to_argv(&self) -> Vec<OsString> {
        let mut argv = flags(&[
            ("--http-port", self.http_port.to_string()),
            ("--http-addr", self.http_addr.to_string()),
            ("--bundle-rate", self.bundle_rate.to_string()),
            ("--bundle-burst", self.bundle_burst.to_string()),
            ("--ip-rate", self.ip_rate.to_string()),
            ("--ip-burst", self.ip_burst.to_string()),
            ("--sim-gas-rate", self.sim_gas_rate.to_string()),
            ("--max-orders", self.max_orders.to_string()),
            ("--bundle-horizon", self.bundle_horizon.to_string()),
            ("--max-log-blocks", self.max_log_blocks.to_string()),
            ("--max-logs", self.max_logs.to_string()),
            ("--proof-window", self.proof_window.to_string()),
        ]);
        if let Some(blocks) = self.history_blocks {
            argv.extend(flags(&[("--history-blocks", blocks.to_string())]));
        }
        argv
    }
}

/// How a builder bids.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub(crate) struct BidArgs {
    /// Share of a block's profit the builder bids to the proposer, in percent.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub(crate) bid_percent: u8,
    /// Most bids the builder submits to the relay per second.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_bids_per_second: u32,
    /// More relays to bid to, each with its own URL, headers, encoding, cap and maximum bid
    /// (a TOML list of `[[relay]]` tables; see the README).
    #[arg(long, value_name = "FILE")]
    pub(crate) relay_config: Option<std::path::PathBuf>,
}

impl BidArgs {
    /// The flags that give these settings.
    pub(crate) fn to_argv(&self) -> Vec<OsString> {
        let mut argv = flags(&[
            ("--bid-percent", self.bid_percent.to_string()),
            (
                "--max-bids-per-second",
                self.max_bids_per_second.to_string(),
            ),
        ]);
        if let Some(file) = &self.relay_config {
            argv.extend(["--relay-config".into(), file.clone().into_os_string()]);
        }
        argv
    }

    /// The relays of `--relay-config` (none without it).
    pub(crate) fn extra_relays(&self) -> eyre::Result<Vec<cobuild_relay::client::Config>> {
        crate::relays::read_relays(self.relay_config.as_deref())
    }
}

/// `--flag value` pairs as arguments.
pub(crate) fn flags(pairs: &[(&str, String)]) -> Vec<OsString> {
    pairs
        .iter()
        .flat_map(|(flag, value)| [OsString::from(flag), OsString::from(value)])
        .collect()
}
