//! The benchmarks: simulation throughput, build and seal latency, block value, the anvil
//! baseline on the same pending transactions, and order intake, as named functions shared by
//! the `cobuild-bench` binary and the criterion harness.
//!
//! # Design
//! ```text
//!  BenchConfig ─▶ run ─┬─ per pool size: Workload::generate ─▶ run_pool
//!                      │     sim_orders     (threads 1, 2)        ─▶ SimFigure
//!                      │     build_block    (greedy, conflict-search, build_best) ─▶ BuildFigure
//!                      │     prepare_seal + seal_block (finish alone)            ─▶ SealFigure
//!                      │     sign + post to a loopback relay (JSON, SSZ+gzip)    ─▶ SubmitFigure
//!                      │     anvil: same txs, evm_mine                           ─▶ AnvilFigure
//!                      │       and on anvil's state over JSON-RPC: fetch, simulate, greedy,
//!                      │       seal from proofs (time, round trips)             ─▶ ElFigure
//!                      ├─ intake: signed eth_sendBundle over HTTP vs signature checks
//!                      ├─ replication: 4 members on loopback, latency at a fixed rate,
//!                      │  throughput, intake with replication on vs off
//!                      └─ accepted -> bid: a devnet node under load, each order timed from
//!                         its answer to the first accepted bid holding it
//!                                       ─▶ Report (Display: the table)
//! ```
//! Every figure that has a baseline is reported beside it from the same run, so the ratio
//! holds on whatever machine runs it. Every loop is bounded in count, and the request loops in
//! time too.

mod anvil;
mod bid_latency;
mod config;
mod el;
mod http;
mod intake;
mod machine;
mod measure;
mod replication;
mod report;
mod run;
mod submit;

pub use anvil::{AnvilConfig, AnvilError, AnvilFigure};
pub use bid_latency::{
    BidLatencyConfig, BidLatencyError, BidLatencyFigure, Footprint, FootprintSample, KindFigure,
    bid_latency,
};
pub use config::{BenchConfig, IntakeConfig};
pub use el::{ElFigure, ElStep};
pub use http::HttpError;
pub use intake::{IntakeError, IntakeFigure, ResentFigure, intake};
pub use machine::Machine;
pub use measure::{
    Algo, Latency, Prepared, ROUND_TXS, build_block, prepare_full_seal, prepare_round_seal,
    prepare_seal, seal_block, sim_orders,
};
pub use replication::{
    Baseline, IntakeComparison, IntakeRun, LedgerFigure, PhaseFigure, ReplicationBenchError,
    ReplicationConfig, ReplicationFigure, replication,
};
pub use report::{BuildFigure, PoolReport, Report, SealFigure, SealSize, SimFigure};
pub use run::{run, run_pool};
pub use submit::SubmitFigure;
