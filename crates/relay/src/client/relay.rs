//! The relay client: the gate in front, one plain-HTTP request behind it.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use alloy_primitives::Address;
use alloy_rpc_types_beacon::{
    BlsPublicKey, BlsSignature,
    relay::{SubmitBlockRequest, Validator},
};
use http::{Method, Request, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use parking_lot::Mutex;

use super::{
    config::{Config, Encoding},
    error::RelayError,
    gate::{Admit, Gate},
};
use crate::{Clock, SystemClock, wei};

/// The submission endpoint.
pub const BLOCKS_PATH: &str = "/relay/v1/builder/blocks";
/// The proposer duties endpoint.
pub const VALIDATORS_PATH: &str = "/relay/v1/builder/validators";
/// Path of the relay data API's accepted bids (`?slot=N` for one slot).
pub const RECEIVED_PATH: &str = "/relay/v1/data/bidtraces/builder_blocks_received";

/// The header that orders a builder's submissions as it made them (ultra sound relay and
/// others): a relay replaces a builder's bid only with one of a higher sequence, whatever the
/// order the network delivers them in.
pub const SEQUENCE_HEADER: &str = "x-sequence";

/// Longest reply body read (a duties list for two epochs is far smaller).
const MAX_REPLY_BYTES: usize = 4 << 20;

/// What happened to a bid handed to [`RelayClient::submit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum SubmitOutcome {
    /// The relay accepted it.
    Sent,
    /// Not sent: a bid worth at least as much was already sent for this slot and parent.
    NotImproved {
        /// The value of that bid.
        last_sent: alloy_primitives::U256,
    },
    /// Not sent: the per-second cap is reached, or the last bid went less than its share of
    /// the second ago.
    RateLimited {
        /// When the next bid may go.
        retry_in: std::time::Duration,
    },
    /// Not sent: worth more than the most this relay is configured to be bid.
    OverMaxBid {
        /// That maximum.
        max_bid: alloy_primitives::U256,
    },
}

/// One proposer duty from the relay's validators endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposerDuty {
    /// The slot the validator proposes in.
    pub slot: u64,
    /// Its validator index.
    pub validator_index: u64,
    /// Its BLS public key (the bid's `proposer_pubkey`).
    pub pubkey: BlsPublicKey,
    /// Where it wants to be paid.
    pub fee_recipient: Address,
    /// The gas limit it registered.
    pub gas_limit: u64,
    /// Its signature of the registration, for callers that verify it
    /// ([`verify_registration`](crate::bid::verify_registration)).
    pub signature: BlsSignature,
    /// The registration's timestamp.
    pub timestamp: u64,
}

impl From<Validator> for ProposerDuty {
    fn from(v: Validator) -> Self {
        let message = v.entry.message;
        Self {
            slot: v.slot,
            validator_index: v.validator_index,
            pubkey: message.pubkey,
            fee_recipient: message.fee_recipient,
            gas_limit: message.gas_limit,
            signature: v.entry.signature,
            timestamp: message.timestamp,
        }
    }
}

type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A client of one relay's builder API. Cheap to clone; clones share the gate, so the cap and
/// the improvement rule hold across all of them.
#[derive(Clone)]
pub struct RelayClient {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    headers: Vec<(header::HeaderName, header::HeaderValue)>,
    encoding: Encoding,
    gzip: bool,
    max_bid: Option<alloy_primitives::U256>,
    optimistic: bool,
    blocks: Uri,
    /// The blocks endpoint with `cancellations=1`.
    blocks_cancel: Uri,
    validators: Uri,
    timeout: Duration,
    http: HttpClient,
    gate: Mutex<Gate>,
    clock: Arc<dyn Clock>,
    /// The last submission's [`SEQUENCE_HEADER`].
    sequence: AtomicU64,
}

impl std::fmt::Debug for RelayClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayClient")
            .field("url", &self.inner.url)
            .field("gate", &*self.inner.gate.lock())
            .finish_non_exhaustive()
    }
}

impl RelayClient {
    /// A client for the relay `config` names, on the system clock.
    ///
    /// Fails if the URL is not an `http://` or `https://` URL, or a trusted certificate does
    /// not decode. Requests need a tokio runtime.
    pub fn new(config: Config) -> Result<Self, RelayError> {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// A client whose per-second cap reads `clock`.
    pub fn with_clock(config: Config, clock: Arc<dyn Clock>) -> Result<Self, RelayError> {
        let base = without_userinfo(config.url.trim_end_matches('/'));
        let uri = |path: &str| {
            let uri: Uri =
                format!("{base}{path}")
                    .parse()
                    .map_err(|e: http::uri::InvalidUri| RelayError::InvalidUrl {
                        url: config.url.clone(),
                        reason: e.to_string(),
                    })?;
            if uri.scheme() != Some(&http::uri::Scheme::HTTP)
                && uri.scheme() != Some(&http::uri::Scheme::HTTPS)
            {
                return Err(RelayError::InvalidUrl {
                    url: config.url.clone(),
                    reason: "only http:// and https:// are supported".to_owned(),
                });
            }
            Ok(uri)
        };
        let blocks = uri(BLOCKS_PATH)?;
        let blocks_cancel = uri(&format!("{BLOCKS_PATH}?cancellations=1"))?;
        let validators = uri(VALIDATORS_PATH)?;
        let headers = config
            .headers
            .iter()
            .map(|(name, value)| {
                let invalid = |reason: String| RelayError::InvalidHeader {
                    name: name.clone(),
                    reason,
                };
                Ok((
                    header::HeaderName::try_from(name.as_str())
                        .map_err(|e| invalid(e.to_string()))?,
                    header::HeaderValue::try_from(value.as_str())
                        .map_err(|e| invalid(e.to_string()))?,
                ))
            })
            .collect::<Result<_, RelayError>>()?;
        let http = Client::builder(TokioExecutor::new()).build(https_connector(&config)?);
        Ok(Self {
            inner: Arc::new(Inner {
                url: config.url.clone(),
                headers,
                encoding: config.encoding,
                gzip: config.gzip,
                max_bid: config.max_bid,
                optimistic: config.optimistic,
                blocks,
                blocks_cancel,
                validators,
                timeout: config.timeout,
                http,
                gate: Mutex::new(Gate::new(config.max_submissions_per_second.get())),
                clock,
                sequence: AtomicU64::new(0),
            }),
        })
    }

    /// Sends `request` if it is worth strictly more than the last bid sent for its slot and
    /// parent and the per-second cap has room; otherwise answers why it was not sent.
    ///
    /// `Err` means it was sent and did not succeed: the relay refused it
    /// ([`RelayError::Refused`]) or could not be reached.
    pub async fn submit(&self, request: &SubmitBlockRequest) -> Result<SubmitOutcome, RelayError> {
        self.send(request, false, None).await
    }

    /// Sends `request` to replace this builder's earlier bid for the slot whatever its value
    /// (the builder-specs `cancellations=1` option), e.g. a block rebuilt because an order in the
    /// earlier one was cancelled. The per-second cap still applies; the improvement rule is the
    /// caller's.
    pub async fn submit_replacing(
        &self,
        request: &SubmitBlockRequest,
    ) -> Result<SubmitOutcome, RelayError> {
        self.send(request, true, None).await
    }

    /// [`submit_replacing`](Self::submit_replacing) numbered `sequence`, taken from
    /// [`next_sequence`](Self::next_sequence) when the bid was made: a caller that signs bids
    /// side by side numbers them in the order it made them, not the order they reach the
    /// gate, so a relay that orders by the number keeps the newest even if it is sent first.
    pub async fn submit_replacing_as(
        &self,
        request: &SubmitBlockRequest,
        sequence: u64,
    ) -> Result<SubmitOutcome, RelayError> {
        self.send(request, true, Some(sequence)).await
    }

    /// Sends `request` numbered `sequence`, or, without one, numbered as the gate admits it.
    async fn send(
        &self,
        request: &SubmitBlockRequest,
        withdrawal: bool,
        sequence: Option<u64>,
    ) -> Result<SubmitOutcome, RelayError> {
        let trace = request.bid_trace();
        let (slot, parent, value) = (trace.slot, trace.parent_hash, trace.value);
        if let Some(max_bid) = self.inner.max_bid.filter(|max| value > *max) {
            tracing::debug!(
                slot,
                value = wei(value),
                max_bid = wei(max_bid),
                "relay.client.over_max_bid"
            );
            return Ok(SubmitOutcome::OverMaxBid { max_bid });
        }
        let now = self.inner.clock.now();
        let (admitted, sequence) = {
            let mut gate = self.inner.gate.lock();
            let admitted = gate.admit(now, slot, parent, value, withdrawal);
            // Under the gate's lock: bids admitted one after another are numbered in that order.
            (admitted, sequence.unwrap_or_else(|| self.next_sequence()))
        };
        let previous = match admitted {
            Admit::Go { previous } => previous,
            Admit::NotImproved { last_sent } => {
                tracing::debug!(
                    slot,
                    value = wei(value),
                    last_sent = wei(last_sent),
                    "relay.client.not_improved"
                );
                return Ok(SubmitOutcome::NotImproved { last_sent });
            }
            Admit::RateLimited { retry_in } => {
                tracing::debug!(slot, value = wei(value), "relay.client.rate_limited");
                return Ok(SubmitOutcome::RateLimited { retry_in });
            }
        };
        // Encoded only once admitted: most bids a builder makes do not improve and stay home.
        let uri = if withdrawal {
            self.inner.blocks_cancel.clone()
        } else {
            self.inner.blocks.clone()
        };
        let result = match self.encode(request) {
            Ok(body) => {
                self.request(Method::POST, uri, Some((body, sequence)))
                    .await
            }
            Err(err) => Err(err),
        };
        match result {
            Ok(_) => {
                tracing::debug!(slot, value = wei(value), block_hash = %trace.block_hash, "relay.client.sent");
                Ok(SubmitOutcome::Sent)
            }
            Err(err) => {
                self.inner
                    .gate
                    .lock()
                    .give_back(slot, parent, value, previous);
                tracing::debug!(slot, value = wei(value), error = %err, "relay.client.failed");
                Err(err)
            }
        }
    }

    /// The next submission's sequence: nanoseconds since the Unix epoch, or one more than the
    /// last if the clock has not moved past it. From the clock, not a counter, so a restarted
    /// node's bids still order after those it sent before it stopped.
    pub fn next_sequence(&self) -> u64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let next = |last: u64| now.max(last.saturating_add(1));
        let last = self
            .inner
            .sequence
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
                Some(next(last))
            })
            .unwrap_or_else(|last| last);
        next(last)
    }

    /// The submission's body as this relay takes it.
    fn encode(&self, request: &SubmitBlockRequest) -> Result<Vec<u8>, RelayError> {
        let body = match self.inner.encoding {
            Encoding::Json => serde_json::to_vec(request).map_err(RelayError::Encode)?,
            Encoding::Ssz => ssz::Encode::as_ssz_bytes(request),
        };
        if !self.inner.gzip {
            return Ok(body);
        }
        use std::io::Write;
        // Fast compression: a payload is mostly hashes and calldata, and the bid is in a race.
        let mut encoder = flate2::write::GzEncoder::new(
            Vec::with_capacity(body.len() / 2),
            flate2::Compression::fast(),
        );
        encoder.write_all(&body).map_err(RelayError::Compress)?;
        encoder.finish().map_err(RelayError::Compress)
    }

    /// The base URL this client talks to.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// Whether the relay offers bids before simulating them ([`Config::optimistic`]): the
    /// builder must check each block itself first.
    pub fn is_optimistic(&self) -> bool {
        self.inner.optimistic
    }

    /// The proposer duties the relay knows of (`GET /relay/v1/builder/validators`).
    pub async fn proposer_duties(&self) -> Result<Vec<ProposerDuty>, RelayError> {
        let body = self
            .request(Method::GET, self.inner.validators.clone(), None)
            .await?;
        let validators: Vec<Validator> =
            serde_json::from_slice(&body).map_err(RelayError::Decode)?;
        Ok(validators.into_iter().map(ProposerDuty::from).collect())
    }

    /// One request, a submission with its body and sequence; a success status gives the body,
    /// anything else a [`RelayError`].
    async fn request(
        &self,
        method: Method,
        uri: Uri,
        submission: Option<(Vec<u8>, u64)>,
    ) -> Result<Bytes, RelayError> {
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::ACCEPT, "application/json");
        let body = match submission {
            Some((body, sequence)) => {
                builder = builder.header(SEQUENCE_HEADER, sequence);
                Some(body)
            }
            None => None,
        };
        if body.is_some() {
            let content_type = match self.inner.encoding {
                Encoding::Json => "application/json",
                Encoding::Ssz => "application/octet-stream",
            };
            builder = builder.header(header::CONTENT_TYPE, content_type);
            if self.inner.gzip {
                builder = builder.header(header::CONTENT_ENCODING, "gzip");
            }
        }
        for (name, value) in &self.inner.headers {
            builder = builder.header(name, value);
        }
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .expect("method, a parsed uri and static headers make a valid request");
        let exchange = async {
            let response = self.inner.http.request(request).await?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_REPLY_BYTES)
                .collect()
                .await
                .map_err(RelayError::Body)?
                .to_bytes();
            Ok::<_, RelayError>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.inner.timeout, exchange)
            .await
            .map_err(|_| RelayError::Timeout)??;
        if status.is_success() {
            Ok(body)
        } else {
            Err(RelayError::from_reply(status, &body))
        }
    }
}

/// `url` without a user part before its host (`https://0xpubkey@relay.example`: relay lists
/// name each relay's BLS key that way; it is no credential to send).
fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// A connector for `http://` and `https://` (rustls on aws-lc-rs, Mozilla's roots plus the
/// configured ones, HTTP/1.1).
fn https_connector(
    config: &Config,
) -> Result<hyper_rustls::HttpsConnector<HttpConnector>, RelayError> {
    let tls_error = |reason: String| RelayError::Tls(reason);
    let mut roots =
        rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for der in &config.extra_roots {
        roots
            .add(rustls::pki_types::CertificateDer::from(der.clone()))
            .map_err(|e| tls_error(format!("trusted certificate: {e}")))?;
    }
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| tls_error(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut http = HttpConnector::new();
    // The TLS layer takes `https://`; the plain connector must let it through.
    http.enforce_http(false);
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_http_and_https_urls_are_accepted_and_nothing_else() {
        assert!(RelayClient::new(Config::new("http://127.0.0.1:1/")).is_ok());
        assert!(RelayClient::new(Config::new("https://relay.example")).is_ok());
        assert!(matches!(
            RelayClient::new(Config::new("ws://relay.example")),
            Err(RelayError::InvalidUrl { .. })
        ));
        assert!(matches!(
            RelayClient::new(Config::new("not a url")),
            Err(RelayError::InvalidUrl { .. })
        ));
    }

    #[test]
    fn test_a_relay_key_before_the_host_is_dropped_from_the_url() {
        assert_eq!(
            without_userinfo("https://0xac6e77@boost-relay.flashbots.net"),
            "https://boost-relay.flashbots.net"
        );
        assert_eq!(
            without_userinfo("http://127.0.0.1:9000/path@x"),
            "http://127.0.0.1:9000/path@x"
        );
        assert_eq!(without_userinfo("not a url"), "not a url");
    }
}
