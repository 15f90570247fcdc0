//! `--relay-config FILE`: the relays a builder bids to besides its hub's, each with its own
//! settings, as a TOML list:
//!
//! ```toml
//! [[relay]]
//! url = "http://127.0.0.1:18550"
//! headers = { "X-Auth-Token" = "…" }   # sent with every request
//! encoding = "ssz"                       # or "json" (the default)
//! gzip = true                            # compress submission bodies
//! max_submissions_per_second = 5         # default 10
//! max_bid_eth = "2.5"                    # blocks worth more are not sent to this relay
//! timeout_ms = 2000                      # per request, default 2000
//! optimistic = true                      # the relay offers bids before simulating them:
//!                                        # each block is re-executed here before it goes
//! ```

use std::{collections::BTreeMap, num::NonZeroU32, path::Path, time::Duration};

use cobuild_relay::client::{Config, Encoding};
use eyre::{WrapErr, eyre};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RelayFile {
    #[serde(default)]
    relay: Vec<RelayEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RelayEntry {
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    gzip: bool,
    max_submissions_per_second: Option<NonZeroU32>,
    max_bid_eth: Option<String>,
    timeout_ms: Option<u64>,
    #[serde(default)]
    optimistic: bool,
}

/// The relays `text` (the file's contents) lists.
pub(crate) fn parse_relays(text: &str) -> eyre::Result<Vec<Config>> {
    let file: RelayFile = toml::from_str(text)?;
    file.relay
        .into_iter()
        .enumerate()
        .map(|(i, entry)| entry.config().wrap_err_with(|| format!("relay {}", i + 1)))
        .collect()
}

impl RelayEntry {
    fn config(self) -> eyre::Result<Config> {
        let defaults = Config::new(&self.url);
        let encoding = match self.encoding.as_deref() {
            None | Some("json") => Encoding::Json,
            Some("ssz") => Encoding::Ssz,
            Some(other) => return Err(eyre!("encoding {other:?}: expected \"json\" or \"ssz\"")),
        };
        let max_bid = self
            .max_bid_eth
            .map(|eth| {
                alloy_primitives::utils::parse_ether(&eth)
                    .map_err(|e| eyre!("max_bid_eth {eth:?}: {e}"))
            })
            .transpose()?;
        Ok(Config {
            headers: self.headers.into_iter().collect(),
            encoding,
            gzip: self.gzip,
            max_submissions_per_second: self
                .max_submissions_per_second
                .unwrap_or(defaults.max_submissions_per_second),
            timeout: self
                .timeout_ms
                .map_or(defaults.timeout, Duration::from_millis),
            max_bid,
            optimistic: self.optimistic,
            ..defaults
        })
    }
}

/// The relays the file at `path` lists (none without a file).
pub(crate) fn read_relays(path: Option<&Path>) -> eyre::Result<Vec<Config>> {
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    let text = std::fs::read_to_string(path)
        .wrap_err_with(|| format!("reading the relay list {}", path.display()))?;
    parse_relays(&text).wrap_err_with(|| format!("relay list {}", path.display()))
}

#[cfg(test)]
mod tests {
    use alloy_primitives::U256;

    use super::*;

    #[test]
    fn test_each_relay_gets_its_own_settings_and_bad_entries_are_named() {
        let relays = parse_relays(
            r#"
            [[relay]]
            url = "http://127.0.0.1:1"

            [[relay]]
            url = "http://127.0.0.1:2"
            headers = { "X-Auth-Token" = "secret" }
            encoding = "ssz"
            gzip = true
            max_submissions_per_second = 5
            max_bid_eth = "2.5"
            timeout_ms = 500
            optimistic = true
            "#,
        )
        .expect("parses");
        assert_eq!(relays[0], Config::new("http://127.0.0.1:1"));
        let second = &relays[1];
        assert_eq!(
            second.headers,
            vec![("X-Auth-Token".to_owned(), "secret".to_owned())]
        );
        assert_eq!(second.encoding, Encoding::Ssz);
        assert!(second.gzip);
        assert_eq!(second.max_submissions_per_second.get(), 5);
        assert_eq!(
            second.max_bid,
            Some(U256::from(2_500_000_000_000_000_000u128))
        );
        assert_eq!(second.timeout, Duration::from_millis(500));
        assert!(second.optimistic && !relays[0].optimistic);

        let error = parse_relays("[[relay]]\nurl = \"http://x\"\nencoding = \"xml\"\n")
            .expect_err("unknown encoding");
        assert!(format!("{error:#}").contains("relay 1"), "{error:#}");
        assert!(parse_relays("[[relay]]\nurl = \"http://x\"\ncolour = 1\n").is_err());
        assert!(parse_relays("[[relay]]\nurl = \"http://x\"\nmax_bid_eth = \"lots\"\n").is_err());
    }
}
