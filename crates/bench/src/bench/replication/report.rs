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

/// The target (docs/invariants.md): accepted → at every member, p99 within this on loopback,
/// at [`TARGET_RATE`] with [`TARGET_MEMBERS`].
const TARGET_P99: Duration = Duration::from_millis(5);
/// The rate the target is set at, in orders a second.
const TARGET_RATE: f64 = 5_000.0;
/// The members the target is set for.
const TARGET_MEMBERS: usize = 4;

/// Whether a fixed-rate phase meets the target: a run at a lower rate or with fewer members
/// says nothing about it either way. The rate offered falls a little short of the rate asked
/// (the offering loop's own time), hence the 2 % slack.
fn target_outcome(members: usize, phase: &PhaseFigure) -> &'static str {
    if members < TARGET_MEMBERS || phase.offered_per_sec < TARGET_RATE * 0.98 {
        "not comparable (run below the target's rate or members)"
    } else if phase.latency.p99 <= TARGET_P99 && phase.lost == 0 {
        "met"
    } else {
        "NOT met"
    }
}

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
            "  machine: {}; shared by the {} members' transports (2 runtime workers each), the offering runtime and the RPC server",
            self.machine, self.members
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
        writeln!(
            f,
            "  target (p99 <= {} at {} orders/s with {} members, zero loss): this run {} orders/s, {} members: p99 {}, lost {} -> {}; after commit p99 {}",
            Ms(TARGET_P99),
            Rate(TARGET_RATE),
            TARGET_MEMBERS,
            Rate(self.at_rate.offered_per_sec),
            self.members,
            Ms(self.at_rate.latency.p99),
            self.at_rate.lost,
            target_outcome(self.members, &self.at_rate),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::Latency;

    fn phase(offered_per_sec: f64, p99_ms: u64, lost: usize) -> PhaseFigure {
        let latency = Latency::from_samples(vec![Duration::from_millis(p99_ms)]);
        PhaseFigure {
            offered: 1,
            offered_per_sec,
            replicated: 1 - lost,
            lost,
            duplicates: 0,
            latency,
            commit: latency,
            network: latency,
            replicated_per_sec: offered_per_sec,
        }
    }

    #[test]
    fn test_the_target_is_judged_only_at_its_rate_and_members() {
        assert_eq!(target_outcome(4, &phase(4_990.0, 4, 0)), "met");
        assert_eq!(target_outcome(4, &phase(4_990.0, 6, 0)), "NOT met");
        assert_eq!(target_outcome(4, &phase(4_990.0, 4, 1)), "NOT met");
        // The default run offers 2,000 a second: fast enough there says nothing at 5,000.
        assert!(target_outcome(4, &phase(2_000.0, 4, 0)).starts_with("not comparable"));
        assert!(target_outcome(3, &phase(5_000.0, 4, 0)).starts_with("not comparable"));
    }
}
