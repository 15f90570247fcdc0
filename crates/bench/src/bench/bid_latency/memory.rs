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

impl Footprint {
    /// How fast the resident memory grew over the run's second half, in bytes a minute: near
    /// zero once it has levelled off. None with fewer than two samples there or no `/proc`.
    pub fn late_rss_growth_per_min(&self) -> Option<f64> {
        let last = self.samples.last()?;
        let half = last.at / 2;
        let from = self.samples.iter().find(|s| s.at >= half)?;
        let span = last.at.checked_sub(from.at).filter(|d| !d.is_zero())?;
        let grew = last.rss_bytes? as f64 - from.rss_bytes? as f64;
        Some(grew / span.as_secs_f64() * 60.0)
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
        let late = run.late_rss_growth_per_min().expect("two late samples");
        assert!(late.abs() < 1.0, "{late}");
        let growing = Footprint {
            samples: vec![sample(0, 100), sample(120, 200), sample(240, 300)],
        };
        let late = growing.late_rss_growth_per_min().expect("two late samples");
        assert!((late - f64::from(50 << 20)).abs() < 1.0, "{late}");
        assert_eq!(Footprint::default().late_rss_growth_per_min(), None);
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
