//! The node's footprint through the accepted → bid load: the process's resident memory and the
//! size of its data folder, sampled at even steps, so a long run shows whether either keeps
//! growing with time or levels off. The client shares the process: its per-order records
//! (~100 bytes an order) are in the resident figure too.

use std::{path::Path, time::Duration};

/// One sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct FootprintSample {
    /// Since the load started.
    #[serde(rename = "at_ms", serialize_with = "crate::bench::report::ms")]
    pub at: Duration,
    /// The process's resident memory (none where `/proc` does not tell it).
    pub rss_bytes: Option<u64>,
    /// Bytes of the files under the node's data folder.
    pub data_bytes: u64,
}

impl FootprintSample {
    /// Samples the process and `data_dir` now, `at` into the load.
    pub fn take(at: Duration, data_dir: &Path) -> Self {
        Self {
            at,
            rss_bytes: rss_bytes(),
            data_bytes: dir_bytes(data_dir),
        }
    }
}

/// The samples of one run, first to last.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Footprint {
    /// In the order taken.
    pub samples: Vec<FootprintSample>,
}

/// How much the resident memory grew over a run's second half.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Growth {
    /// Bytes gained (negative when it shrank).
    pub bytes: f64,
    /// Between these two samples.
    pub span: Duration,
}

impl Growth {
    /// Below this a rate a minute says nothing of a trend: a run of seconds sees one cache fill
    /// or one collection, and a minute's rate of it is that burst times ten.
    pub const RATE_SPAN: Duration = Duration::from_secs(60);

    /// Bytes a minute, where the span is long enough to read a rate off it.
    pub fn per_min(&self) -> Option<f64> {
        (self.span >= Self::RATE_SPAN).then(|| self.bytes / self.span.as_secs_f64() * 60.0)
    }
}

impl Footprint {
    /// How much the resident memory grew over the run's second half: near zero once it has
    /// levelled off. None with fewer than two samples there or no `/proc`.
    pub fn late_rss_growth(&self) -> Option<Growth> {
        let last = self.samples.last()?;
        let half = last.at / 2;
        let from = self.samples.iter().find(|s| s.at >= half)?;
        let span = last.at.checked_sub(from.at).filter(|d| !d.is_zero())?;
        Some(Growth {
            bytes: last.rss_bytes? as f64 - from.rss_bytes? as f64,
            span,
        })
    }
}

/// The process's resident set, from `/proc/self/status` (Linux).
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Bytes of the files under `dir`, walked depth first (a folder it cannot read counts zero).
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => dir_bytes(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(secs: u64, rss_mb: u64) -> FootprintSample {
        FootprintSample {
            at: Duration::from_secs(secs),
            rss_bytes: Some(rss_mb << 20),
            data_bytes: 0,
        }
    }

    #[test]
    fn test_growth_is_read_over_the_second_half_only() {
        // Fast growth early (caches filling), flat late.
        let run = Footprint {
            samples: vec![
                sample(0, 100),
                sample(60, 300),
                sample(120, 310),
                sample(240, 310),
            ],
        };
        let late = run.late_rss_growth().expect("two late samples");
        assert_eq!(late.span, Duration::from_secs(120));
        assert!(late.bytes.abs() < 1.0, "{late:?}");
        let growing = Footprint {
            samples: vec![sample(0, 100), sample(120, 200), sample(240, 300)],
        };
        let late = growing.late_rss_growth().expect("two late samples");
        assert!((late.bytes - f64::from(100 << 20)).abs() < 1.0, "{late:?}");
        let rate = late.per_min().expect("two minutes are enough for a rate");
        assert!((rate - f64::from(50 << 20)).abs() < 1.0, "{rate}");
        assert_eq!(Footprint::default().late_rss_growth(), None);
    }

    #[test]
    fn test_a_run_of_seconds_gives_no_rate() {
        // The default accepted -> bid run: 10 s, a sample every 2 s, a cache filling late.
        let run = Footprint {
            samples: vec![sample(0, 170), sample(6, 169), sample(10, 187)],
        };
        let late = run.late_rss_growth().expect("two late samples");
        assert_eq!(late.span, Duration::from_secs(4));
        assert!((late.bytes - f64::from(18 << 20)).abs() < 1.0, "{late:?}");
        assert_eq!(late.per_min(), None, "18 MB in 4 s is no 270 MB a minute");
    }

    #[test]
    fn test_a_sample_reads_this_process_and_a_folders_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("a"), [0u8; 100]).expect("write");
        std::fs::write(dir.path().join("sub").join("b"), [0u8; 23]).expect("write");
        let now = FootprintSample::take(Duration::ZERO, dir.path());
        assert_eq!(now.data_bytes, 123);
        if cfg!(target_os = "linux") {
            assert!(now.rss_bytes.is_some_and(|b| b > 1 << 20), "{now:?}");
        }
    }
}
