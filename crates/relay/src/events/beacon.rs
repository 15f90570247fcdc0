//! The Beacon API reads a builder needs beside the event stream: the chain's genesis time
//! (`GET /eth/v1/beacon/genesis`) and its slot length (`GET /eth/v1/config/spec`), which make
//! its [`SlotClock`]. Numbers come as decimal strings, as the Beacon API writes them.

use std::time::Duration;

use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use serde::Deserialize;

use super::clock::SlotClock;

/// The genesis endpoint.
pub const GENESIS_PATH: &str = "/eth/v1/beacon/genesis";
/// The chain configuration endpoint.
pub const SPEC_PATH: &str = "/eth/v1/config/spec";

/// Longest answer read (a spec is a few kB).
const MAX_BODY: usize = 1 << 20;

/// The slot clock could not be read from a beacon node.
#[derive(Debug, thiserror::Error)]
pub enum BeaconError {
    /// The URL is not a plain `http://` URL.
    #[error("beacon node url {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as configured.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The request failed.
    #[error("beacon node request: {0}")]
    Transport(#[from] hyper_util::client::legacy::Error),
    /// The answer was not 200.
    #[error("beacon node answered {status} to {path}")]
    Status {
        /// The path asked.
        path: &'static str,
        /// Its status.
        status: StatusCode,
    },
    /// The answer could not be read in time or in size.
    #[error("beacon node answer to {path}: {reason}")]
    Body {
        /// The path asked.
        path: &'static str,
        /// Why.
        reason: String,
    },
    /// The answer does not hold what the endpoint promises.
    #[error("beacon node answer to {path} does not decode: {reason}")]
    Decode {
        /// The path asked.
        path: &'static str,
        /// Why.
        reason: String,
    },
}

#[derive(Deserialize)]
struct Data<T> {
    data: T,
}

#[derive(Deserialize)]
struct Genesis {
    genesis_time: String,
    #[serde(default)]
    genesis_fork_version: Option<String>,
}

/// What a beacon node says of its chain's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BeaconGenesis {
    /// When each slot starts.
    pub clock: SlotClock,
    /// The genesis fork version, which with a zero validators root makes the builder signing
    /// domain (`None` when the node does not give it).
    pub fork_version: Option<[u8; 4]>,
}

#[derive(Deserialize)]
struct Spec {
    #[serde(rename = "SECONDS_PER_SLOT")]
    seconds_per_slot: String,
}

/// Reads the slot clock of the beacon node at `url`; each request may take `timeout`.
pub async fn fetch_slot_clock(url: &str, timeout: Duration) -> Result<SlotClock, BeaconError> {
    Ok(fetch_genesis(url, timeout).await?.clock)
}

/// Reads the slot clock and genesis fork version of the beacon node at `url`; each request may
/// take `timeout`.
pub async fn fetch_genesis(url: &str, timeout: Duration) -> Result<BeaconGenesis, BeaconError> {
    let base = url.trim_end_matches('/');
    let uri = |path: &str| -> Result<Uri, BeaconError> {
        let uri: Uri = format!("{base}{path}")
            .parse()
            .map_err(|e: http::uri::InvalidUri| BeaconError::InvalidUrl {
                url: url.to_owned(),
                reason: e.to_string(),
            })?;
        if uri.scheme() != Some(&http::uri::Scheme::HTTP) {
            return Err(BeaconError::InvalidUrl {
                url: url.to_owned(),
                reason: "only http:// is supported".to_owned(),
            });
        }
        Ok(uri)
    };
    let genesis: Data<Genesis> = get(uri(GENESIS_PATH)?, GENESIS_PATH, timeout).await?;
    let spec: Data<Spec> = get(uri(SPEC_PATH)?, SPEC_PATH, timeout).await?;
    let number = |path: &'static str, text: &str| {
        text.parse::<u64>().map_err(|e| BeaconError::Decode {
            path,
            reason: format!("{text:?}: {e}"),
        })
    };
    let genesis_time = number(GENESIS_PATH, &genesis.data.genesis_time)?;
    let seconds_per_slot = number(SPEC_PATH, &spec.data.seconds_per_slot)?;
    let clock = SlotClock::new(genesis_time, seconds_per_slot).ok_or(BeaconError::Decode {
        path: SPEC_PATH,
        reason: "SECONDS_PER_SLOT is 0".to_owned(),
    })?;
    let fork_version = genesis
        .data
        .genesis_fork_version
        .map(|hex| {
            alloy_primitives::hex::decode(&hex)
                .ok()
                .and_then(|bytes| <[u8; 4]>::try_from(bytes.as_slice()).ok())
                .ok_or_else(|| BeaconError::Decode {
                    path: GENESIS_PATH,
                    reason: format!("genesis_fork_version {hex:?} is not four hex bytes"),
                })
        })
        .transpose()?;
    Ok(BeaconGenesis {
        clock,
        fork_version,
    })
}

async fn get<T: serde::de::DeserializeOwned>(
    uri: Uri,
    path: &'static str,
    timeout: Duration,
) -> Result<T, BeaconError> {
    let http: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = Request::get(uri)
        .header(header::ACCEPT, "application/json")
        .body(Empty::new())
        .expect("a parsed uri and static headers make a valid request");
    let body_error = |reason: String| BeaconError::Body { path, reason };
    let exchange = async {
        let response = http.request(request).await?;
        let status = response.status();
        if status != StatusCode::OK {
            return Err(BeaconError::Status { path, status });
        }
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| body_error(e.to_string()))?
            .to_bytes();
        Ok(body)
    };
    let body = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| body_error(format!("no answer within {timeout:?}")))??;
    serde_json::from_slice(&body).map_err(|e| BeaconError::Decode {
        path,
        reason: e.to_string(),
    })
}
