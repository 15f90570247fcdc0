//! The cobuild command-line interface.
//!
//! `cobuild devnet` runs an embedded Ethereum chain that produces a block every slot and serves
//! the eth JSON-RPC API on loopback. `cobuild keys` and `cobuild registry` manage a member's
//! key file and the member registry. Logs go to stderr and follow `RUST_LOG`.

mod members;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use alloy_primitives::{Address, B256};
use clap::{Parser, Subcommand};
use cobuild_bench::BenchArgs;
use cobuild_chain::dev_signers;
use cobuild_node::{Devnet, DevnetConfig, devnet::default_builder_key};
use cobuild_primitives::{DEFAULT_GAS_LIMIT, DEVNET_CHAIN_ID};
use std::io::Write;

use eyre::WrapErr;

/// cobuild: a distributed, Byzantine-fault-tolerant block builder for Ethereum.
#[derive(Debug, Parser)]
#[command(name = "cobuild", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a local chain that produces a block every slot, with the eth JSON-RPC API.
    ///
    /// The genesis funds the ten standard development accounts (mnemonic "test test ... junk")
    /// with 10,000 ETH each, as anvil does. State and blocks persist in --data-dir: stopping
    /// (Ctrl-C, or even kill -9) and starting again continues the same chain.
    Devnet(DevnetArgs),
    /// Benchmark simulation, building, sealing and order intake on a deterministic
    /// mainnet-like workload, with anvil mining the same transactions as the baseline.
    ///
    /// Prints p50/p99 latencies, throughput and block values per algorithm, each beside the
    /// baseline measured in the same run.
    Bench(BenchArgs),
    /// A member node's key file: create one, or print its public parts.
    #[command(subcommand)]
    Keys(members::KeysCommand),
    /// The member registry: add, remove and list members.
    #[command(subcommand)]
    Registry(members::RegistryCommand),
}

#[derive(Debug, clap::Args)]
struct DevnetArgs {
    /// Directory for the chain database (created if missing).
    #[arg(long, default_value = "data/devnet", env = "COBUILD_DATA_DIR")]
    data_dir: PathBuf,
    /// Port of the JSON-RPC server.
    #[arg(long, default_value_t = 8545)]
    http_port: u16,
    /// Address the JSON-RPC server binds to.
    #[arg(long, default_value = "127.0.0.1")]
    http_addr: std::net::IpAddr,
    /// Chain id transactions must be signed for.
    #[arg(long, default_value_t = DEVNET_CHAIN_ID)]
    chain_id: u64,
    /// Milliseconds between blocks.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(100..))]
    slot_ms: u64,
    /// Block gas limit (the genesis limit; later blocks move toward it if it changes).
    #[arg(long, default_value_t = DEFAULT_GAS_LIMIT)]
    gas_limit: u64,
    /// Beneficiary (coinbase) of the blocks the devnet produces.
    #[arg(long, default_value = "0x0000000000000000000000000000000000c0b11d")]
    fee_recipient: Address,
    /// Do not deploy the demo tokens and AMM pool into the first block of a new chain.
    #[arg(long)]
    no_demo_contracts: bool,
    /// Bundle-method calls per second one signing sender may make on average.
    #[arg(long, default_value_t = 1000)]
    bundle_rate: u32,
    /// Bundle-method calls one signing sender may make in a burst.
    #[arg(long, default_value_t = 2000)]
    bundle_burst: u32,
    /// Orderflow-method calls (bundles, private transactions) per second one peer IP may make
    /// on average, whoever signs them.
    #[arg(long, default_value_t = 5000)]
    ip_rate: u32,
    /// Orderflow-method calls one peer IP may make in a burst.
    #[arg(long, default_value_t = 10000)]
    ip_burst: u32,
    /// Most orders (transactions plus bundles) held; when full, a more valuable order evicts
    /// the least valuable one, others are refused with "txpool is full".
    #[arg(long, default_value_t = 20000)]
    max_orders: usize,
    /// Secret key (hex) of the builder's coinbase, which pays refunds and the proposer
    /// [default: a fixed devnet key]
    #[arg(long, env = "COBUILD_BUILDER_KEY", hide_env_values = true)]
    builder_key: Option<B256>,
    /// Share of a block's profit the builder bids to the proposer, in percent.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u8).range(1..=100))]
    bid_percent: u8,
    /// Port of the local relay's builder API (0: any free port; printed at start).
    #[arg(long, default_value_t = 0)]
    relay_port: u16,
    /// Most bids the builder submits to the relay per second.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    max_bids_per_second: u32,
}

fn main() -> eyre::Result<()> {
    let cli = Cli::parse();
    // The benchmark's table goes to stdout; by default only its own progress goes to stderr.
    let default_filter = match cli.command {
        Command::Devnet(_) => "info",
        Command::Bench(_) => "warn,cobuild_bench=info",
        Command::Keys(_) | Command::Registry(_) => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Devnet(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(devnet(args)),
        // The benchmark runs its own runtimes around the measured work.
        Command::Bench(args) => {
            let report =
                cobuild_bench::run(&args.into_config()).wrap_err("benchmark run failed")?;
            print!("{report}");
            Ok(())
        }
        Command::Keys(command) => {
            print!("{}", members::keys(command)?);
            Ok(())
        }
        Command::Registry(command) => {
            print!("{}", members::registry(command)?);
            Ok(())
        }
    }
}

async fn devnet(args: DevnetArgs) -> eyre::Result<()> {
    let config = DevnetConfig {
        data_dir: args.data_dir.clone(),
        http_addr: SocketAddr::new(args.http_addr, args.http_port),
        chain_id: args.chain_id,
        slot: Duration::from_millis(args.slot_ms),
        gas_limit: args.gas_limit,
        fee_recipient: args.fee_recipient,
        demo_contracts: !args.no_demo_contracts,
        bundle_rate: args.bundle_rate,
        bundle_burst: args.bundle_burst,
        ip_rate: args.ip_rate,
        ip_burst: args.ip_burst,
        max_orders: args.max_orders,
        builder_key: args.builder_key.unwrap_or_else(default_builder_key),
        bid_percent: args.bid_percent,
        relay_port: args.relay_port,
        max_bids_per_second: args.max_bids_per_second,
    };
    let devnet = Devnet::start(config.clone())
        .await
        .wrap_err_with(|| format!("starting the devnet in {}", args.data_dir.display()))?;
    let head = devnet.chain.head();
    let mut banner = String::new();
    let mut line = |text: String| {
        banner.push_str(&text);
        banner.push('\n');
    };
    line("cobuild devnet".into());
    line(format!("  rpc        http://{}", devnet.rpc_addr));
    line(format!(
        "  relay      http://{} (builder API)",
        devnet.relay_addr
    ));
    if let Some(coinbase) = devnet.builder_coinbase {
        line(format!("  builder    coinbase {coinbase}"));
    }
    line(format!("  chain id   {}", config.chain_id));
    line(format!("  slot       {} ms", args.slot_ms));
    line(format!("  head       #{} {}", head.number, head.hash()));
    line(format!("  data dir   {}", args.data_dir.display()));
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
    // A closed stdout (the launcher went away) must not stop the node: logs go to stderr.
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(banner.as_bytes())
        .and_then(|()| stdout.flush());
    drop(stdout);
    devnet
        .run(shutdown_signal())
        .await
        .wrap_err("devnet stopped with an error")
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cli.signal.ctrl_c_unavailable");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("cli.shutdown");
}
