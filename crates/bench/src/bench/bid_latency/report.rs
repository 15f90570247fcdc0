//! The accepted → bid figures as text.

use std::fmt;

use super::{BidLatencyFigure, Footprint, KindFigure};
use crate::bench::report::{Ms, Rate};

fn kind_row(f: &mut fmt::Formatter<'_>, name: &str, kind: &KindFigure) -> fmt::Result {
    writeln!(
        f,
        "  {name:<22} {:>7} {:>7} {:>7} {:>10} {:>10} {:>10} {:>9}",
        kind.acked,
        kind.in_bid,
        kind.missed(),
        Ms(kind.latency.p50),
        Ms(kind.latency.p99),
        Ms(kind.latency.max),
        kind.before_answer
    )
}

impl fmt::Display for BidLatencyFigure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "== accepted -> bid: a devnet node (RPC, pools, builder, bidder, local relay and proposer), {} slots ==",
            Ms(self.slot)
        )?;
        writeln!(
            f,
            "  load: {} orders/s asked for {} s over {} connections (half eth_sendRawTransaction, half signed eth_sendBundle for the next block); sent {} ({} /s), not sent {} (connection queue full) + {} (no bundle sender free in the slot), refused {}; request p50 {}, p99 {}",
            self.rate,
            self.duration.as_secs_f64(),
            self.connections,
            self.offered,
            Rate(self.offered_per_sec),
            self.behind,
            self.no_sender,
            self.refused,
            Ms(self.request.p50),
            Ms(self.request.p99)
        )?;
        writeln!(
            f,
            "  time from the answer at the client to the relay's receipt of the first accepted bid holding the order"
        )?;
        writeln!(
            f,
            "  {:<22} {:>7} {:>7} {:>7} {:>10} {:>10} {:>10} {:>9}",
            "orders", "acked", "in bid", "missed", "p50", "p99", "max", "bid first"
        )?;
        kind_row(f, "idle: bundles, 1 by 1", &self.idle)?;
        kind_row(f, "load: bundles", &self.bundles)?;
        kind_row(f, "load: raw transactions", &self.raw)?;
        writeln!(
            f,
            "  {} bids accepted, {} blocks during the load and two slots after it",
            self.bids, self.blocks
        )?;
        footprint_row(f, &self.footprint)?;
        let ratio = self.bundles.latency.p50.as_secs_f64()
            / self.idle.latency.p50.as_secs_f64().max(f64::MIN_POSITIVE);
        writeln!(
            f,
            "  bundles under load / idle p50: {ratio:.2}x; target p50 <= 50 ms: {}",
            if self.bundles.latency.samples > 0
                && self.bundles.latency.p50 <= std::time::Duration::from_millis(50)
            {
                "met"
            } else {
                "NOT met"
            }
        )
    }
}

/// The footprint at the load's start, at most four steps between, and its end; then how much
/// memory grew over the second half, and how fast where that half is long enough to tell.
fn footprint_row(f: &mut fmt::Formatter<'_>, footprint: &Footprint) -> fmt::Result {
    let samples = &footprint.samples;
    if samples.is_empty() {
        return Ok(());
    }
    let mb = |bytes: u64| bytes as f64 / f64::from(1 << 20);
    let step = (samples.len() / 5).max(1);
    let shown = samples
        .iter()
        .enumerate()
        .filter(|(i, _)| i % step == 0 || *i == samples.len() - 1)
        .map(|(_, s)| {
            let rss = s
                .rss_bytes
                .map_or("?".to_owned(), |b| format!("{:.0}", mb(b)));
            format!(
                "{:.0} s: {rss} / {:.0}",
                s.at.as_secs_f64(),
                mb(s.data_bytes)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    writeln!(
        f,
        "  footprint, process RSS (client included) / data folder, MB: {shown}"
    )?;
    let Some(growth) = footprint.late_rss_growth() else {
        return Ok(());
    };
    let mb = |bytes: f64| bytes / f64::from(1 << 20);
    write!(
        f,
        "  RSS growth over the second half of the load: {:+.1} MB in {:.0} s",
        mb(growth.bytes),
        growth.span.as_secs_f64()
    )?;
    match growth.per_min() {
        Some(rate) => writeln!(f, ", {:+.1} MB/min", mb(rate)),
        None => writeln!(f, " (too short for a rate a minute)"),
    }
}
