//! Why a benchmark run failed.

use cobuild_builder::BuildError;
use cobuild_chain::{BlockError, ChainError};
use cobuild_sim::SimError;

use crate::{
    WorkloadError,
    bench::{AnvilError, BidLatencyError, IntakeError, ReplicationBenchError},
};

/// A benchmark run failed (not a slow figure: a broken measurement).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The workload could not be generated.
    #[error("workload: {0}")]
    Workload(#[from] WorkloadError),
    /// Simulation failed to read state.
    #[error("simulation: {0}")]
    Sim(#[from] SimError),
    /// A block attempt failed.
    #[error("build: {0}")]
    Build(#[from] BuildError),
    /// A node's round failed.
    #[error("round: {0}")]
    Round(#[from] cobuild_node::builder::BuilderError),
    /// Sealing failed.
    #[error("seal: {0}")]
    Block(#[from] BlockError),
    /// The chain refused a built block.
    #[error("re-executing a built block: {0}")]
    Chain(#[from] ChainError),
    /// Replaying a built block for the seal measurement did not give the same block.
    #[error("replay: {0}")]
    Replay(String),
    /// Building on the execution client's state failed.
    #[error("execution client: {0}")]
    El(String),
    /// One step of building on the execution client's state failed.
    #[error("{step}: {source}")]
    ElStep {
        /// The step.
        step: &'static str,
        /// Why.
        source: Box<BenchError>,
    },
    /// Submitting a bid to the loopback relay failed.
    #[error("submitting to the loopback relay: {0}")]
    Relay(String),
    /// The simulator's thread pool could not start.
    #[error("simulator threads: {0}")]
    Threads(String),
    /// The async runtime could not start.
    #[error("runtime: {0}")]
    Runtime(std::io::Error),
    /// The anvil baseline failed.
    #[error("anvil baseline: {0}")]
    Anvil(#[from] AnvilError),
    /// The intake benchmark failed.
    #[error("intake: {0}")]
    Intake(#[from] IntakeError),
    /// The accepted -> bid benchmark failed (boxed, as replication's).
    #[error("accepted -> bid: {0}")]
    BidLatency(Box<BidLatencyError>),
    /// The replication benchmark failed (boxed: its error is large and rare).
    #[error("replication: {0}")]
    Replication(Box<ReplicationBenchError>),
}

impl From<BidLatencyError> for BenchError {
    fn from(error: BidLatencyError) -> Self {
        Self::BidLatency(Box::new(error))
    }
}

impl From<ReplicationBenchError> for BenchError {
    fn from(error: ReplicationBenchError) -> Self {
        Self::Replication(Box::new(error))
    }
}
