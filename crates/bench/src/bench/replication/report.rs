//! The replication section of the report.

use std::{fmt, time::Duration};

use super::{IntakeRun, PhaseFigure, ReplicationFigure};
use crate::bench::report::{Ms, Rate};

/// A duration in microseconds.
struct Us(Duration);

impl fmt::Display for Us {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = format!("{:.0} us", self.0.as_secs_f64() * 1e6);
        f.pad(&text)
    }
}

/// The design target: accepted → at every member, p99 within this on loopback.
const TARGET_P99: Duration = Duration::from_millis(5);

fn phase_row(f: &mut fmt::Formatter<'_>, name: &str, p: &PhaseFigure) -> fmt::Result {
    writeln!(
        f,
        "  {:<26} {:>7} {:>9} {:>10} {:>5} {:>4} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>12}",
        name,
        p.offered,
        Rate(p.offered_per_sec),
        p.replicated,
        p.lost,
        p.duplicates,
        Ms(p.latency.p50),
        Ms(p.latency.p99),
        Ms(p.latency.max),
        Ms(p.commit.p50),
        Ms(p.commit.p99),
        Ms(p.network.p50),
        Ms(p.network.p99),
        Rate(p.replicated_per_sec)
    )
}

fn intake_row(f: &mut fmt::Formatter<'_>, name: &str, run: &IntakeRun) -> fmt::Result {
    writeln!(
        f,
        "    {:<16} {:>8} req/s ({} sent, {} accepted, {} errors in {}); request p50 {}, p99 {}",
        name,
        Rate(run.requests_per_sec),
        run.sent,
        run.accepted,
        run.errors,
        Ms(run.elapsed),
        Ms(run.latency.p50),
        Ms(run.latency.p99)
    )
}

impl fmt::Display for ReplicationFigure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "== replication: {} members on loopback (commonware lookup, encrypted links), redb logs in a temp dir; payloads: {} signed raw txs of the workload, {:.0} bytes on average ==",
            self.members, self.payloads, self.payload_bytes
        )?;
        writeln!(
            f,
            "  machine: {} cores{}, shared by the {} members' transports (2 runtime workers each), the offering runtime and the RPC server",
            self.machine.cores,
            self.machine.load.map_or_else(String::new, |load| format!(
                ", load average {load:.2} at the start"
            )),
            self.members
        )?;
        writeln!(
            f,
            "  latency: just before the durable commit (group commit: Log::append_own_batch on a committer thread, as the node does) -> delivered at the last of the {} other members; commit: the commit alone; after commit: end of the commit -> last delivery",
            self.members - 1
        )?;
        writeln!(
            f,
            "  {:<26} {:>7} {:>9} {:>10} {:>5} {:>4} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>12}",
            "phase",
            "offered",
            "offered/s",
            "replicated",
            "lost",
            "dup",
            "p50",
            "p99",
            "max",
            "commit p50",
            "commit p99",
            "after p50",
            "after p99",
            "replicated/s"
        )?;
        phase_row(
            f,
            &format!(
                "{} orders/s for {} s",
                Rate(f64::from(self.rate)),
                self.duration.as_secs_f64()
            ),
            &self.at_rate,
        )?;
        phase_row(
            f,
            &format!(
                "flood {} s, {} in flight/m",
                self.flood_duration.as_secs_f64(),
                self.flood_in_flight
            ),
            &self.flood,
        )?;
        if let Some(intake) = &self.intake {
            phase_row(f, "intake, replication on", &intake.replicated)?;
        }
        writeln!(
            f,
            "  (offered/s below the asked rate: the members could not take orders that fast; replicated/s: from the first offer to the last delivery)"
        )?;
        let b = &self.baseline;
        writeln!(
            f,
            "  baseline: Log::append_own alone, one at a time on an idle log: p50 {}, p99 {} over {} appends; fixed-rate latency p50 / this p50: {}",
            Ms(b.commit.p50),
            Ms(b.commit.p99),
            b.commit.samples,
            self.ratio_vs_commit()
                .map_or_else(|| "-".to_string(), |r| format!("{r:.2}x"))
        )?;
        writeln!(
            f,
            "  baseline: a receiver's decode + check + verify + Log::insert, one envelope at a time: new envelope p50 {}, p99 {}; already held p50 {}, p99 {} -> with {} copies of each foreign order, one engine doing only that takes in at most {} orders/s network-wide, and {} members doing it on {} cores at most {} orders/s (the engine writes and checks signatures in batches, and skips the check for copies it holds, so it can pass this)",
            Us(b.receive_new.p50),
            Us(b.receive_new.p99),
            Us(b.receive_duplicate.p50),
            Us(b.receive_duplicate.p99),
            self.members - 1,
            b.receive_ceiling(self.members)
                .map_or_else(|| "-".to_string(), |r| Rate(r).to_string()),
            self.members,
            self.machine.cores,
            b.machine_ceiling(self.members, self.machine.cores)
                .map_or_else(|| "-".to_string(), |r| Rate(r).to_string()),
        )?;
        if let Some(intake) = &self.intake {
            writeln!(
                f,
                "  intake: signed eth_sendBundle over HTTP/1.1 keep-alive, {} connections, up to {} s per run, the same requests to two in-process RPC servers",
                intake.connections,
                intake.duration.as_secs_f64()
            )?;
            intake_row(f, "replication off", &intake.off)?;
            intake_row(f, "replication on", &intake.on)?;
            writeln!(f, "    ratio on / off: {:.3}", intake.ratio())?;
        }
        let met = self.at_rate.latency.p99 <= TARGET_P99 && self.at_rate.lost == 0;
        writeln!(
            f,
            "  target (DESIGN.md: p99 <= {} at 2,000 orders/s with 4 nodes, zero loss): this run {} orders/s, {} members: p99 {}, lost {} -> {}; after commit p99 {}",
            Ms(TARGET_P99),
            Rate(self.at_rate.offered_per_sec),
            self.members,
            Ms(self.at_rate.latency.p99),
            self.at_rate.lost,
            if met { "met" } else { "NOT met" },
            Ms(self.at_rate.network.p99)
        )?;
        if let Some(ledger) = &self.ledger {
            writeln!(
                f,
                "  slot ledger beside replication (simplex, ed25519 votes, the same links): a block every {}; block -> record final at all {} members: p50 {}, p99 {}, max {} over {} records ({} not final in time); CPU per record {} (whole cluster, idle rate taken out) vs per replicated order at the fixed rate {} -> one record costs {} orders",
                Ms(ledger.slot),
                self.members,
                Ms(ledger.latency.p50),
                Ms(ledger.latency.p99),
                Ms(ledger.latency.max),
                ledger.records,
                ledger.missed,
                Us(ledger.cpu_per_record),
                Us(ledger.cpu_per_order),
                ledger
                    .orders_per_record()
                    .map_or_else(|| "-".to_string(), |r| format!("{r:.1}"))
            )?;
        }
        if self.strays > 0 {
            writeln!(
                f,
                "  {} deliveries of unknown origins or sequence numbers",
                self.strays
            )?;
        }
        Ok(())
    }
}
