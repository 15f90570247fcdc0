//! The cobuild command-line interface.
//!
//! `cobuild devnet` runs an embedded Ethereum chain that produces a block every slot and serves
//! the eth JSON-RPC API on loopback; with `--nodes N` it is the hub of N member nodes, each a
//! `cobuild node` process. `cobuild keys` and `cobuild registry` manage a member's key file and
//! the member registry. Logs go to stderr (a node's, with `--log-file`, to a file it rotates by
//! size) and follow `RUST_LOG`.

mod args;
mod cluster;
mod devnet;
mod ledger;
mod logging;
mod members;
mod node;
mod refunds;
mod relays;
mod status;

use clap::{Parser, Subcommand};
use cobuild_bench::BenchArgs;
use eyre::WrapErr;

/// jemalloc returns freed pages to the system. Under glibc's malloc a node's resident size
/// grew for as long as it ran (150 to over 350 MiB in ten minutes of orderflow), by about three
/// times what its live heap grew: the per-thread arenas kept what was freed.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// cobuild: a distributed, Byzantine-fault-tolerant block builder for Ethereum.
#[derive(Debug, Parser)]
#[command(name = "cobuild", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a local chain that produces a block every slot, with the eth JSON-RPC API.
    ///
    /// The genesis funds the ten standard development accounts (mnemonic "test test ... junk")
    /// with 10,000 ETH each, as anvil does. State and blocks persist in --data-dir: stopping
    /// (Ctrl-C, or even kill -9) and starting again continues the same chain.
    Devnet(devnet::DevnetArgs),
    /// Run one member node: a chain replica following a hub (`cobuild devnet`), the orderflow
    /// RPC, and a builder bidding to the hub's relay with the member's keys.
    ///
    /// The key file must match the member's entry in the registry.
    Node(Box<node::NodeArgs>),
    /// Benchmark simulation, building, sealing and order intake on a deterministic
    /// mainnet-like workload, with anvil mining the same transactions as the baseline.
    ///
    /// Prints p50/p99 latencies, throughput and block values per algorithm, each beside the
    /// baseline measured in the same run.
    Bench(BenchArgs),
    /// A member node's key file: create one, or print its public parts.
    #[command(subcommand)]
    Keys(members::KeysCommand),
    /// The member registry (a TOML file or the registry contract): deploy, add, remove and list
    /// members.
    #[command(subcommand)]
    Registry(members::RegistryCommand),
    /// What each node reports: members and links, replication lag per origin, pool sizes and
    /// the last bids (every node of `cobuild devnet --nodes N`, or one with --node).
    Status(status::StatusArgs),
    /// The slot ledger: show a final record, or verify a range of them against the registry's
    /// keys and the chain, from any member's RPC.
    #[command(subcommand)]
    Ledger(ledger::LedgerCommand),
    /// What a recipient has earned from the ledger's refunds, from any member's RPC: each
    /// order's refund, the slot record it comes from, and whether its payout landed.
    Refunds(refunds::RefundsArgs),
}

fn main() -> eyre::Result<()> {
    let cli = Cli::parse();
    // The benchmark's table goes to stdout; by default only its own progress goes to stderr.
    let default_filter = match cli.command {
        Command::Devnet(_) | Command::Node(_) => "info",
        Command::Bench(_) => "warn,cobuild_bench=info",
        Command::Keys(_)
        | Command::Registry(_)
        | Command::Status(_)
        | Command::Ledger(_)
        | Command::Refunds(_) => "warn",
    };
    let log_args = match &cli.command {
        Command::Node(args) => Some(&args.log),
        Command::Devnet(args) => Some(&args.log),
        _ => None,
    };
    // Held to the end of main: dropping it flushes the log file's last lines.
    let _log = logging::init(default_filter, log_args).wrap_err("opening the log")?;
    let result = match cli.command {
        Command::Devnet(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(devnet::run(args)),
        Command::Node(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(node::run(*args)),
        // The benchmark runs its own runtimes around the measured work.
        Command::Bench(args) => {
            let json = args.json.clone();
            let report =
                cobuild_bench::run(&args.into_config()).wrap_err("benchmark run failed")?;
            print!("{report}");
            if let Some(path) = json {
                report
                    .write_json(&path)
                    .wrap_err_with(|| format!("writing {}", path.display()))?;
            }
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
        Command::Status(args) => {
            print!("{}", status::status(&args)?);
            Ok(())
        }
        Command::Ledger(command) => {
            print!("{}", ledger::ledger(command)?);
            Ok(())
        }
        Command::Refunds(args) => {
            print!("{}", refunds::refunds(&args)?);
            Ok(())
        }
    };
    // Into the log file too, where an operator reads why the node stopped.
    if let Err(error) = &result {
        tracing::error!(error = format!("{error:#}"), "cli.failed");
    }
    result
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
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
