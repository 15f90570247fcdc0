//! The figures of a run, printable as the table the `cobuild-bench` binary shows.

use std::{fmt, time::Duration};

use alloy_primitives::{B256, U256};
use cobuild_builder::BuiltBlock;
use cobuild_chain::HashedStateDiff;

use super::{
    anvil::AnvilFigure,
    bid_latency::BidLatencyFigure,
    intake::IntakeFigure,
    machine::Machine,
    measure::{Latency, ROUND_TXS},
    replication::ReplicationFigure,
    submit::SubmitFigure,
};
use crate::Mix;

/// Simulation of the whole pool with a number of threads.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SimFigure {
    /// Simulator worker threads.
    pub threads: usize,
    /// Latency of one `Simulator::simulate` over the whole pool, fresh cache.
    pub latency: Latency,
    /// Orders simulated per second at the median.
    pub orders_per_sec: f64,
}

/// One building algorithm on the simulated pool.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuildFigure {
    /// The algorithm (`greedy`, `conflict-search`, `build_best`).
    pub algorithm: &'static str,
    /// Latency of one build, seal included.
    pub latency: Latency,
    /// The bid: what the block pays the proposer.
    pub value: U256,
    /// What the coinbase gained before paying the proposer.
    pub profit: U256,
    /// Transactions in the block (refunds and the payment included).
    pub txs: usize,
    /// Orders included.
    pub orders: usize,
    /// Gas used by the block.
    pub gas_used: u64,
    /// Whether the chain re-executes the block to the same header.
    pub reexecutes: bool,
}

/// Sealing alone.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SealFigure {
    /// The algorithm that built the sealed block (build_best's choice).
    pub algorithm: &'static str,
    /// Latency of `BlockBuilder::finish`, roots hashed incrementally from the parent's trie
    /// nodes.
    pub latency: Latency,
    /// Latency of `BlockBuilder::finish` with every leaf read and hashed (no trie nodes): the
    /// baseline of `latency`.
    pub full_rebuild: Latency,
    /// Latency of sealing the block again after its last `ROUND_TXS` transactions, starting
    /// from what the seal before them kept, as a builder round does: the copy of the growing
    /// block the round seals included.
    pub round: Latency,
    /// Latency of executing the block's transactions into a fresh builder (the fill part of a
    /// replay, for reference).
    pub execute: Latency,
    /// Transactions in the block.
    pub txs: usize,
    /// What the incremental seal had to hash.
    pub size: SealSize,
}

/// What sealing a block hashes of the state: what it changed and the branch nodes it rebuilt.
/// The state root's time follows these counts (a changed leaf or a rebuilt node is about one
/// Keccak hash), not the number of transactions, so they are what compares a seal with
/// another builder's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SealSize {
    /// Accounts created, changed or deleted.
    pub accounts: usize,
    /// Storage tries with a changed slot.
    pub storage_tries: usize,
    /// Storage slots changed, across those tries.
    pub slots: usize,
    /// Branch nodes built anew, in the account trie and the storage tries.
    pub branch_nodes: usize,
}

impl SealSize {
    /// The size of the seal that produced `diff`.
    pub fn of(diff: &HashedStateDiff) -> Self {
        Self {
            accounts: diff.accounts.len(),
            storage_tries: diff.storage.len(),
            slots: diff.storage.values().map(|s| s.slots.len()).sum(),
            branch_nodes: diff.trie.accounts.updated.len()
                + diff
                    .trie
                    .storage
                    .values()
                    .map(|s| s.nodes.updated.len())
                    .sum::<usize>(),
        }
    }
}

/// Everything measured on one pool.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PoolReport {
    /// Orders in the pool.
    pub orders: usize,
    /// Pending transactions (outside bundles).
    pub txs: usize,
    /// Pending bundles.
    pub bundles: usize,
    /// Raw transactions a bundle-less client receives (bundles flattened).
    pub raw_txs: usize,
    /// The mix of kinds.
    pub mix: Mix,
    /// Digest of the pool's order ids (the same seed gives the same digest).
    pub fingerprint: B256,
    /// Setup blocks before the measured one.
    pub setup_blocks: usize,
    /// Base fee of the measured block.
    pub base_fee: u64,
    /// Orders the simulator kept.
    pub valid: usize,
    /// Orders it rejected.
    pub rejected: usize,
    /// Simulation per thread count.
    pub sim: Vec<SimFigure>,
    /// Building per algorithm.
    pub builds: Vec<BuildFigure>,
    /// Sealing alone.
    pub seal: SealFigure,
    /// Submitting the sealed block to a relay on loopback.
    pub submit: SubmitFigure,
    /// The anvil baseline, if run.
    pub anvil: Option<AnvilFigure>,
    /// The blocks built (one per algorithm, in `builds` order), for checks.
    #[serde(skip)]
    pub blocks: Vec<BuiltBlock>,
}

impl PoolReport {
    /// Build-and-seal p50 of `algorithm` over anvil's `evm_mine` p50 (below 1: faster).
    pub fn ratio_vs_anvil(&self, algorithm: &str) -> Option<f64> {
        let anvil = self.anvil.as_ref()?;
        let build = self.builds.iter().find(|b| b.algorithm == algorithm)?;
        ratio(build.latency.p50, anvil.latency.p50)
    }
}

/// All figures of a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// Seed of the workloads.
    pub seed: u64,
    /// Gas limit of the blocks.
    pub gas_limit: u64,
    /// Timed repetitions per measurement.
    pub reps: usize,
    /// Untimed warm-up runs per measurement.
    pub warmup: usize,
    /// Time after which a measurement stops repeating.
    #[serde(rename = "budget_ms", serialize_with = "crate::bench::report::ms")]
    pub budget: Duration,
    /// One report per pool size.
    pub pools: Vec<PoolReport>,
    /// The intake benchmark, if run.
    pub intake: Option<IntakeFigure>,
    /// The replication benchmark, if run.
    pub replication: Option<ReplicationFigure>,
    /// The accepted -> bid benchmark, if run.
    pub bid_latency: Option<BidLatencyFigure>,
    /// Cores and load average when the run began: figures taken beside other work mislead.
    pub machine: Machine,
}

impl Report {
    /// Writes every figure to `path` as JSON (what `--json` asks for).
    pub fn write_json(&self, path: &std::path::Path) -> std::io::Result<()> {
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text)
    }
}

/// Writes a duration as milliseconds (a float), the unit every figure is read in.
pub(crate) fn ms<S: serde::Serializer>(duration: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(duration.as_secs_f64() * 1e3)
}

fn ratio(a: Duration, b: Duration) -> Option<f64> {
    (!b.is_zero()).then(|| a.as_secs_f64() / b.as_secs_f64())
}

/// A duration in milliseconds with two decimals.
pub(crate) struct Ms(pub(crate) Duration);

impl fmt::Display for Ms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = format!("{:.2} ms", self.0.as_secs_f64() * 1e3);
        f.pad(&text)
    }
}

/// An amount of wei in ETH with six decimals.
struct Eth(U256);

impl fmt::Display for Eth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let micro = self.0 / U256::from(1_000_000_000_000u64);
        let micro: u128 = micro.saturating_to();
        let text = format!("{}.{:06}", micro / 1_000_000, micro % 1_000_000);
        f.pad(&text)
    }
}

/// A rate with thousands separators.
pub(crate) struct Rate(pub(crate) f64);

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = format!("{:.0}", self.0.max(0.0));
        let mut text = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                text.push(',');
            }
            text.push(c);
        }
        f.pad(&text)
    }
}

impl PoolReport {
    /// The slot's steps on anvil's state over JSON-RPC, beside the embedded chain's.
    fn fmt_el(
        &self,
        f: &mut fmt::Formatter<'_>,
        el: &Result<super::ElFigure, String>,
    ) -> fmt::Result {
        let el = match el {
            Ok(el) => el,
            Err(why) => return writeln!(f, "on anvil's state over JSON-RPC: failed: {why}"),
        };
        let embedded_sim = self
            .sim
            .iter()
            .find(|s| s.threads == 1)
            .map(|s| s.latency.p50);
        let embedded_greedy = self
            .builds
            .iter()
            .find(|b| b.algorithm == "greedy")
            .map(|b| b.latency.p50);
        let vs = |a: Duration, b: Option<Duration>| ratio_text(b.and_then(|b| ratio(a, b)));
        writeln!(
            f,
            "on anvil's state over JSON-RPC (one pass; round trips in brackets; vs the embedded chain's p50): list what the orders touch (access lists) {} [{}], read it ahead ({} accounts, {} slots) {} [{}]; simulate ({} threads, their reads overlapping; vs 1 thread here) {} [{}] {}; greedy build and seal {} [{}] {}; the greedy block sealed from proofs on a fresh snapshot {} [{}]; block {} txs, {} ETH, {} orders valid",
            Ms(el.list.time),
            el.list.round_trips,
            el.accounts,
            el.slots,
            Ms(el.fetch.time),
            el.fetch.round_trips,
            el.sim_threads,
            Ms(el.sim.time),
            el.sim.round_trips,
            vs(el.sim.time, embedded_sim),
            Ms(el.build.time),
            el.build.round_trips,
            vs(el.build.time, embedded_greedy),
            Ms(el.seal.time),
            el.seal.round_trips,
            el.txs,
            Eth(el.value),
            el.valid,
        )
    }
}

fn ratio_text(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_string(), |r| format!("{r:.2}x"))
}

impl fmt::Display for PoolReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "== pool of {} orders: {} txs + {} bundles ({} raw txs), fingerprint {} ==",
            self.orders, self.txs, self.bundles, self.raw_txs, self.fingerprint
        )?;
        writeln!(f, "mix: {}", self.mix)?;
        writeln!(
            f,
            "chain: {} setup blocks; measured block base fee {} wei; simulation keeps {} orders, rejects {} (arb-void: {})",
            self.setup_blocks,
            self.base_fee,
            self.valid,
            self.rejected,
            self.mix.count(crate::OrderKind::ArbitrageVoid)
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "simulation (Simulator::simulate over the whole pool, fresh cache)"
        )?;
        writeln!(
            f,
            "  {:<8} {:>5} {:>10} {:>10} {:>12}",
            "threads", "runs", "p50", "p99", "orders/s"
        )?;
        for s in &self.sim {
            writeln!(
                f,
                "  {:<8} {:>5} {:>10} {:>10} {:>12}",
                s.threads,
                s.latency.samples,
                Ms(s.latency.p50),
                Ms(s.latency.p99),
                Rate(s.orders_per_sec)
            )?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "build + seal (Algorithm::build / build_best on the simulated orders)"
        )?;
        writeln!(
            f,
            "  {:<16} {:>5} {:>11} {:>11} {:>6} {:>7} {:>11} {:>12} {:>12} {:>8} {:>9}",
            "algorithm",
            "runs",
            "p50",
            "p99",
            "txs",
            "orders",
            "gas used",
            "value ETH",
            "profit ETH",
            "reimport",
            "vs anvil"
        )?;
        for b in &self.builds {
            writeln!(
                f,
                "  {:<16} {:>5} {:>11} {:>11} {:>6} {:>7} {:>11} {:>12} {:>12} {:>8} {:>9}",
                b.algorithm,
                b.latency.samples,
                Ms(b.latency.p50),
                Ms(b.latency.p99),
                b.txs,
                b.orders,
                b.gas_used,
                Eth(b.value),
                Eth(b.profit),
                if b.reexecutes { "ok" } else { "FAILED" },
                ratio_text(self.ratio_vs_anvil(b.algorithm))
            )?;
        }
        writeln!(
            f,
            "  (vs anvil: build+seal p50 / anvil evm_mine p50 for the same pending txs; below 1 is faster)"
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "seal alone (BlockBuilder::finish on the block build_best chose, by {}, {} txs, replayed untimed): p50 {}, p99 {} over {} runs; replay execution p50 {}",
            self.seal.algorithm,
            self.seal.txs,
            Ms(self.seal.latency.p50),
            Ms(self.seal.latency.p99),
            self.seal.latency.samples,
            Ms(self.seal.execute.p50)
        )?;
        writeln!(
            f,
            "  vs the full rebuild (every leaf read and hashed, same block): p50 {}, p99 {}; incremental/full p50 {:.2}x",
            Ms(self.seal.full_rebuild.p50),
            Ms(self.seal.full_rebuild.p99),
            self.seal.latency.p50.as_secs_f64()
                / self.seal.full_rebuild.p50.as_secs_f64().max(1e-9)
        )?;
        writeln!(
            f,
            "  sealed again after its last {ROUND_TXS} txs, from what the earlier seal kept, on a copy of the block that goes on growing (as a builder round): p50 {}, p99 {}; round/full p50 {:.2}x",
            Ms(self.seal.round.p50),
            Ms(self.seal.round.p99),
            self.seal.round.p50.as_secs_f64() / self.seal.full_rebuild.p50.as_secs_f64().max(1e-9)
        )?;
        let size = self.seal.size;
        writeln!(
            f,
            "  the block changed {} accounts and {} slots in {} storage tries; the seal rebuilt {} branch nodes",
            size.accounts, size.slots, size.storage_tries, size.branch_nodes
        )?;
        writeln!(
            f,
            "submit the same block (sign the submission and post it to a relay on loopback that takes every bid): JSON p50 {}, p99 {}; SSZ+gzip p50 {}, p99 {}; over {} runs; JSON/seal p50 {:.2}x",
            Ms(self.submit.json.p50),
            Ms(self.submit.json.p99),
            Ms(self.submit.ssz_gzip.p50),
            Ms(self.submit.ssz_gzip.p99),
            self.submit.json.samples,
            self.submit.json.p50.as_secs_f64() / self.seal.latency.p50.as_secs_f64().max(1e-9)
        )?;
        match &self.anvil {
            Some(a) => {
                writeln!(
                    f,
                    "anvil evm_mine ({}; --no-mining --order fifo; same pending txs, bundles flattened): p50 {}, p99 {} over {} runs; block {} txs, {} gas, coinbase gain {} ETH (bundles not atomic)",
                    a.version,
                    Ms(a.latency.p50),
                    Ms(a.latency.p99),
                    a.latency.samples,
                    a.txs,
                    a.gas_used,
                    Eth(a.coinbase_gain)
                )?;
                self.fmt_el(f, &a.el)
            }
            None => writeln!(f, "anvil baseline: not run"),
        }
    }
}

impl fmt::Display for IntakeFigure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "== intake: signed eth_sendBundle over HTTP/1.1 keep-alive, in-process node RPC server =="
        )?;
        writeln!(
            f,
            "  {} requests on {} connections in {}: {} req/s (accepted {}, errors {}{})",
            self.sent,
            self.connections,
            Ms(self.elapsed),
            Rate(self.requests_per_sec),
            self.accepted,
            self.errors,
            if self.timed_out {
                ", stopped at the deadline"
            } else {
                ""
            }
        )?;
        writeln!(
            f,
            "  request latency p50 {}, p99 {}",
            Ms(self.latency.p50),
            Ms(self.latency.p99)
        )?;
        writeln!(
            f,
            "  baseline: verify_flashbots_signature alone on one thread, same requests: {} /s",
            Rate(self.verify_per_sec)
        )?;
        writeln!(
            f,
            "  ratio intake / signature checks: {:.2}",
            self.requests_per_sec / self.verify_per_sec.max(f64::MIN_POSITIVE)
        )?;
        match &self.resent {
            Some(resent) => {
                writeln!(
                    f,
                    "  each transaction re-sent for the next {} blocks (a fresh node, {} requests): {} req/s (accepted {}, errors {}); request latency p50 {}, p99 {}; signers from the sender cache {}, recovered {}",
                    resent.blocks,
                    resent.run.sent,
                    Rate(resent.run.requests_per_sec),
                    resent.run.accepted,
                    resent.run.errors,
                    Ms(resent.run.latency.p50),
                    Ms(resent.run.latency.p99),
                    resent.senders.hits,
                    resent.senders.misses,
                )?;
                writeln!(
                    f,
                    "  ratio re-sent / distinct bundles: {:.2}",
                    resent.run.requests_per_sec / self.requests_per_sec.max(f64::MIN_POSITIVE)
                )
            }
            None => Ok(()),
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "cobuild-bench: seed {}, gas limit {}, up to {} timed runs after {} warm-up (fewer past {} s per measurement); p99 is the max below 100 runs",
            self.seed,
            self.gas_limit,
            self.reps,
            self.warmup,
            self.budget.as_secs()
        )?;
        writeln!(f, "machine: {}", self.machine)?;
        for pool in &self.pools {
            writeln!(f)?;
            write!(f, "{pool}")?;
        }
        if let Some(intake) = &self.intake {
            writeln!(f)?;
            write!(f, "{intake}")?;
        }
        if let Some(replication) = &self.replication {
            writeln!(f)?;
            write!(f, "{replication}")?;
        }
        if let Some(bid_latency) = &self.bid_latency {
            writeln!(f)?;
            write!(f, "{bid_latency}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_number_formats() {
        assert_eq!(
            Eth(U256::from(1_234_567_000_000_000_000u128)).to_string(),
            "1.234567"
        );
        assert_eq!(Eth(U256::from(5u64)).to_string(), "0.000000");
        assert_eq!(Rate(1_234_567.4).to_string(), "1,234,567");
        assert_eq!(Rate(999.0).to_string(), "999");
        assert_eq!(Ms(Duration::from_micros(12_346)).to_string(), "12.35 ms");
    }
}
