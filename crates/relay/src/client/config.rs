//! The relay client's settings.

use std::{num::NonZeroU32, time::Duration};

use alloy_primitives::U256;

/// How a submission's body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// JSON (`Content-Type: application/json`), what every relay takes.
    #[default]
    Json,
    /// SSZ (`Content-Type: application/octet-stream`): a third of JSON's size and no hex to
    /// parse, taken by mev-boost-relay and its forks.
    Ssz,
}

/// How to reach a relay and how hard to use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Base URL of the relay, `https://host` or `http://host:port`; a relay's public key
    /// written before the host (`https://0xabc…@host`, as relay lists give them) is dropped.
    pub url: String,
    /// Most submissions sent in any one-second window; bids over the cap are not sent.
    pub max_submissions_per_second: NonZeroU32,
    /// How long one request may take, connection included.
    pub timeout: Duration,
    /// Headers sent with every request (an auth token, a builder id), as name and value.
    pub headers: Vec<(String, String)>,
    /// How submissions are encoded.
    pub encoding: Encoding,
    /// Whether submission bodies are gzip-compressed (`Content-Encoding: gzip`).
    pub gzip: bool,
    /// Largest bid value sent to this relay; a block worth more is not sent to it (the value
    /// is the block's proposer payment, so it cannot be lowered without a new block).
    pub max_bid: Option<U256>,
    /// Certificates (DER) trusted for `https://` beside Mozilla's roots: a relay behind a
    /// private certificate authority.
    pub extra_roots: Vec<Vec<u8>>,
    /// The relay offers this builder's bids to proposers before it has simulated them
    /// (optimistic relaying, backed by the builder's collateral): a bad block costs the
    /// builder, so each one is re-executed from its parent's state before it goes there.
    pub optimistic: bool,
}

impl Config {
    /// Settings for the relay at `url`: at most 10 submissions a second, 2 s per request, JSON
    /// without compression, no extra headers, no maximum bid, not optimistic.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_submissions_per_second: NonZeroU32::new(10).expect("10 is not zero"),
            timeout: Duration::from_secs(2),
            headers: Vec::new(),
            encoding: Encoding::Json,
            gzip: false,
            max_bid: None,
            extra_roots: Vec::new(),
            optimistic: false,
        }
    }
}
