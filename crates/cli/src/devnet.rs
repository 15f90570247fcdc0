//! `cobuild devnet`: the embedded chain with its relay and proposer, building its own blocks in
//! one process, or, with `--nodes N`, as the hub of N member node processes
//! ([`crate::cluster`]).

use std::{io::Write, path::PathBuf, time::Duration};

use alloy_primitives::{Address, B256};
use cobuild_chain::dev_signers;
use cobuild_node::{Devnet, DevnetConfig, devnet::default_builder_key};
use cobuild_primitives::{DEFAULT_GAS_LIMIT, DEVNET_CHAIN_ID};
use eyre::WrapErr;

use crate::{
    args::{BidArgs, OrderflowArgs},
    logging::LogArgs,
};

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct DevnetArgs {
    /// Directory for the chain database (created if missing).
    #[arg(long, default_value = "data/devnet", env = "COBUILD_DATA_DIR")]
    pub(crate) data_dir: PathBuf,
    /// Chain id transactions must be signed for.
    #[arg(long, default_value_t = DEVNET_CHAIN_ID)]
    pub(crate) chain_id: u64,
    /// Milliseconds between blocks.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(100..))]
    pub(crate) slot_ms: u64,
    /// Block gas limit (the genesis limit; later blocks move toward it if it changes).
    #[arg(long, default_value_t = DEFAULT_GAS_LIMIT)]
    pub(crate) gas_limit: u64,
    /// Beneficiary (coinbase) of the blocks the devnet produces.
    #[arg(long, default_value = "0x0000000000000000000000000000000000c0b11d")]
    pub(crate) fee_recipient: Address,
    /// Do not deploy the demo tokens and AMM pool into the first block of a new chain.
    #[arg(long)]
    pub(crate) no_demo_contracts: bool,
    /// Secret key (hex) of the builder's coinbase, which pays refunds and the proposer
    /// [default: a fixed devnet key] (single-process devnet only)
    #[arg(long, env = "COBUILD_BUILDER_KEY", hide_env_values = true)]
    pub(crate) builder_key: Option<B256>,
    /// Port of the local relay's builder API (0: any free port; printed at start).
    #[arg(long, default_value_t = 0)]
    pub(crate) relay_port: u16,
    /// Run the local relay in strict mode: submissions checked in mev-boost-relay's order and
    /// refused with its messages (`{code, message}`), as a real relay would.
    #[arg(long)]
    pub(crate) strict_relay: bool,
    /// Run N member nodes as separate processes (each with its own data dir, keys, chain
    /// replica, RPC and builder) that bid to this devnet's relay; the devnet itself then only
    /// proposes. Endpoints go to <data-dir>/endpoints.json, node logs to
    /// <data-dir>/node-<i>/node.log.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub(crate) nodes: Option<u32>,
    /// Start even if the chain store was truncated or rolled back since its last commit (the
    /// devnet otherwise refuses, naming the head it had); the rollback is logged.
    #[arg(long)]
    pub(crate) accept_chain_rollback: bool,
    /// With --nodes: slots an order stays in each node's live order log after a final ledger
    /// record covers it, before it moves to the node's archive.
    #[arg(long, default_value_t = crate::node::DEFAULT_LOG_RETENTION_SLOTS)]
    pub(crate) log_retention_slots: u64,
    /// With --nodes: each node pays the refunds it owes whenever its refund book has processed
    /// a multiple of this many slots (small, so payouts are seen within seconds).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) refund_batch_slots: u64,
    #[command(flatten)]
    pub(crate) orderflow: OrderflowArgs,
    #[command(flatten)]
    pub(crate) bid: BidArgs,
    /// The hub's log; with --nodes, each node writes its own to <data-dir>/node-<i>/node.log,
    /// rotated at the same size and keeping as many files.
    #[command(flatten)]
    pub(crate) log: LogArgs,
}

impl DevnetArgs {
    pub(crate) fn config(&self) -> eyre::Result<DevnetConfig> {
        let orderflow = self.orderflow.config();
        Ok(DevnetConfig {
            data_dir: self.data_dir.clone(),
            http_addr: orderflow.http_addr,
            chain_id: self.chain_id,
            slot: Duration::from_millis(self.slot_ms),
            gas_limit: self.gas_limit,
            fee_recipient: self.fee_recipient,
            demo_contracts: !self.no_demo_contracts,
            limits: orderflow.limits,
            max_orders: orderflow.max_orders,
            bundle_horizon: orderflow.bundle_horizon,
            log_limits: orderflow.log_limits,
            history_blocks: orderflow.history_blocks,
            proof_window: orderflow.proof_window,
            accept_chain_rollback: self.accept_chain_rollback,
            builder_key: self.builder_key.unwrap_or_else(default_builder_key),
            bid_percent: self.bid.bid_percent,
            relay_port: self.relay_port,
            max_bids_per_second: self.bid.max_bids_per_second,
            extra_relays: self.bid.extra_relays()?,
            strict_relay: self.strict_relay,
        })
    }
}

/// Runs the devnet until Ctrl-C or SIGTERM.
pub(crate) async fn run(args: DevnetArgs) -> eyre::Result<()> {
    if let Some(nodes) = args.nodes {
        return crate::cluster::run(args, nodes).await;
    }
    let devnet = Devnet::start(args.config()?)
        .await
        .wrap_err_with(|| format!("starting the devnet in {}", args.data_dir.display()))?;
    print_banner(&banner(&devnet, &args, &[]));
    devnet
        .run(crate::shutdown_signal())
        .await
        .wrap_err("devnet stopped with an error")
}

/// The text printed once the devnet is up: every endpoint, then `extra` lines, the dev
/// accounts and the demo contracts. Tests read the `rpc` and `relay` lines.
pub(crate) fn banner(devnet: &Devnet, args: &DevnetArgs, extra: &[String]) -> String {
    let head = devnet.chain.head();
    let mut banner = String::new();
    let mut line = |text: String| {
        banner.push_str(&text);
        banner.push('\n');
    };
    match args.nodes {
        Some(n) => line(format!("cobuild devnet (hub of {n} member nodes)")),
        None => line("cobuild devnet".into()),
    }
    line(format!("  rpc        http://{}", devnet.rpc_addr));
    line(format!(
        "  relay      http://{} (builder API, payload_attributes events)",
        devnet.relay_addr
    ));
    if let Some(coinbase) = devnet.builder_coinbase {
        line(format!("  builder    coinbase {coinbase}"));
    }
    line(format!("  chain id   {}", args.chain_id));
    line(format!("  slot       {} ms", args.slot_ms));
    line(format!("  head       #{} {}", head.number, head.hash()));
    line(format!("  data dir   {}", args.data_dir.display()));
    for text in extra {
        line(text.clone());
    }
    line("  dev accounts (10,000 ETH each at genesis):".into());
    for (i, signer) in dev_signers().iter().enumerate() {
        line(format!(
            "    ({i}) {} 0x{}",
            signer.address(),
            alloy_primitives::hex::encode(signer.to_bytes())
        ));
    }
    if let Some(demo) = &devnet.demo {
        line("  demo contracts (deployed in block 1 by account 9):".into());
        line(format!("    token A  {}", demo.token_a));
        line(format!("    token B  {}", demo.token_b));
        line(format!("    pool     {}", demo.pool));
    }
    banner
}

/// Prints the banner; a closed stdout (the launcher went away) must not stop the devnet: logs
/// go to stderr.
pub(crate) fn print_banner(banner: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(banner.as_bytes())
        .and_then(|()| stdout.flush());
}
