//! The relay client's settings.

use std::{num::NonZeroU32, time::Duration};

/// How to reach a relay and how hard to use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Base URL of the relay, `http://host:port` (plain HTTP: no TLS is compiled in).
    pub url: String,
    /// Most submissions sent in any one-second window; bids over the cap are not sent.
    pub max_submissions_per_second: NonZeroU32,
    /// How long one request may take, connection included.
    pub timeout: Duration,
}

impl Config {
    /// Settings for the relay at `url`: at most 10 submissions a second, 2 s per request.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_submissions_per_second: NonZeroU32::new(10).expect("10 is not zero"),
            timeout: Duration::from_secs(2),
        }
    }
}
