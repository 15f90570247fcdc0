//! `cobuild-bench`: generates the workloads, runs every benchmark and prints the figures with
//! the anvil baseline side by side (the same as `cobuild bench`). Progress goes to stderr
//! (`RUST_LOG`), the table to stdout.

use clap::Parser;
use cobuild_bench::{BenchArgs, run};
use eyre::WrapErr;

/// The node's allocator (see the `cobuild` binary), so in-process nodes measure as they run.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Simulation, build and seal benchmarks against anvil, order intake, and replication among
/// members on loopback.
#[derive(Debug, Parser)]
#[command(name = "cobuild-bench", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    args: BenchArgs,
}

fn main() -> eyre::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,cobuild_bench=info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let json = cli.args.json.clone();
    let report = run(&cli.args.into_config()).wrap_err("benchmark run failed")?;
    print!("{report}");
    if let Some(path) = json {
        report
            .write_json(&path)
            .wrap_err_with(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
