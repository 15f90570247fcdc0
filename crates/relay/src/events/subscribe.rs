//! The builder's side of the stream: one task that keeps a subscription open, reconnecting
//! with backoff, and keeps the newest slot announcement in a `watch`.

use std::time::{Duration, Instant};

use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use tokio::sync::watch;

use super::{
    event::{EVENTS_PATH, PAYLOAD_ATTRIBUTES_TOPIC, SlotEvent},
    sse::{LineTooLong, Parser},
};

/// Longest line of the stream accepted (an event with many withdrawals is a few kB).
const MAX_LINE: usize = 1 << 20;

/// Where to subscribe and how to keep the subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeConfig {
    /// Base URL of the server, `http://host:port` (the devnet relay serves the stream).
    pub url: String,
    /// Pause before the first reconnect; it doubles per failed attempt up to `max_backoff`,
    /// and starts over once an event arrived.
    pub min_backoff: Duration,
    /// Longest pause between reconnects.
    pub max_backoff: Duration,
    /// A stream silent this long is taken for dead and reconnected (the devnet relay sends a
    /// keep-alive comment every second; a beacon node sends none, so beside one this must be
    /// longer than a slot).
    pub idle_timeout: Duration,
    /// Subscribe to the `head` topic too: a beacon node sends a head event every slot, which
    /// keeps a stream alive through slots whose payload attributes it does not send. Head
    /// events are otherwise ignored.
    pub with_head: bool,
}

impl SubscribeConfig {
    /// Settings for the server at `url`: reconnects after 100 ms up to 2 s, dead after 5 s of
    /// silence.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(5),
            with_head: false,
        }
    }
}

/// A slot announcement and when it arrived (its deadline is relative to that).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedSlot {
    /// The announcement.
    pub event: SlotEvent,
    /// When it was read off the stream.
    pub received: Instant,
}

impl ReceivedSlot {
    /// When the relay stops taking bids for the slot.
    pub fn deadline(&self) -> Instant {
        self.event.deadline(self.received)
    }
}

/// Why a subscription could not start or broke (the task logs it and reconnects).
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    /// The URL is not a plain `http://` URL.
    #[error("event stream url {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as configured.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The request could not be sent.
    #[error("event stream request failed: {0}")]
    Transport(#[from] hyper_util::client::legacy::Error),
    /// The server answered with another status than 200.
    #[error("event stream answered {0}")]
    Status(StatusCode),
    /// Reading the stream failed.
    #[error("event stream body: {0}")]
    Body(#[from] hyper::Error),
    /// Nothing arrived, not even a keep-alive, within the idle timeout.
    #[error("event stream silent for {0:?}")]
    Idle(Duration),
    /// The server closed the stream.
    #[error("event stream closed by the server")]
    Closed,
    /// A line was longer than the client accepts.
    #[error("event stream line longer than {0} bytes")]
    LineTooLong(usize),
}

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// Subscribes to `payload_attributes` at `config.url` and follows the newest announcement.
///
/// The subscription runs in a tokio task until every receiver is dropped; failures are logged
/// and retried, so the receiver only ever sees announcements. An announcement that does not
/// decode is logged and skipped. Fails at once only if the URL is not a plain `http://` URL.
pub fn subscribe(
    config: SubscribeConfig,
) -> Result<watch::Receiver<Option<ReceivedSlot>>, SubscribeError> {
    let uri = events_uri(&config)?;
    let (tx, rx) = watch::channel(None);
    tokio::spawn(run(config, uri, tx));
    Ok(rx)
}

/// The stream's URI: `payload_attributes`, and `head` when asked.
fn events_uri(config: &SubscribeConfig) -> Result<Uri, SubscribeError> {
    let base = config.url.trim_end_matches('/');
    let head = if config.with_head { ",head" } else { "" };
    let uri: Uri = format!("{base}{EVENTS_PATH}?topics={PAYLOAD_ATTRIBUTES_TOPIC}{head}")
        .parse()
        .map_err(|e: http::uri::InvalidUri| SubscribeError::InvalidUrl {
            url: config.url.clone(),
            reason: e.to_string(),
        })?;
    if uri.scheme() != Some(&http::uri::Scheme::HTTP) {
        return Err(SubscribeError::InvalidUrl {
            url: config.url.clone(),
            reason: "only http:// is supported".to_owned(),
        });
    }
    Ok(uri)
}

async fn run(config: SubscribeConfig, uri: Uri, tx: watch::Sender<Option<ReceivedSlot>>) {
    let http: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let mut backoff = config.min_backoff;
    loop {
        let mut delivered = false;
        let result = tokio::select! {
            () = tx.closed() => return,
            result = stream(&http, &uri, config.idle_timeout, &tx, &mut delivered) => result,
        };
        if delivered {
            backoff = config.min_backoff;
        }
        tracing::warn!(url = %config.url, error = %result, retry_ms = backoff.as_millis() as u64, "relay.events.disconnected");
        tokio::select! {
            () = tx.closed() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(config.max_backoff);
    }
}

/// One subscription, until it breaks; sets `delivered` once an announcement went out.
async fn stream(
    http: &HttpClient,
    uri: &Uri,
    idle: Duration,
    tx: &watch::Sender<Option<ReceivedSlot>>,
    delivered: &mut bool,
) -> SubscribeError {
    let request = Request::get(uri.clone())
        .header(header::ACCEPT, "text/event-stream")
        .body(Empty::new())
        .expect("a parsed uri and static headers make a valid request");
    let response = match tokio::time::timeout(idle, http.request(request)).await {
        Err(_) => return SubscribeError::Idle(idle),
        Ok(Err(e)) => return e.into(),
        Ok(Ok(response)) => response,
    };
    if response.status() != StatusCode::OK {
        return SubscribeError::Status(response.status());
    }
    tracing::info!(%uri, "relay.events.subscribed");
    let mut body = response.into_body();
    let mut parser = Parser::new(MAX_LINE);
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return SubscribeError::Idle(idle),
            Ok(None) => return SubscribeError::Closed,
            Ok(Some(Err(e))) => return e.into(),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let messages = match parser.push(&data) {
            Ok(messages) => messages,
            Err(LineTooLong(max)) => return SubscribeError::LineTooLong(max),
        };
        for message in messages {
            if message.event != PAYLOAD_ATTRIBUTES_TOPIC {
                continue;
            }
            match serde_json::from_str::<SlotEvent>(&message.data) {
                Ok(event) => {
                    tracing::debug!(slot = event.slot(), "relay.events.slot");
                    tx.send_replace(Some(ReceivedSlot {
                        event,
                        received: Instant::now(),
                    }));
                    *delivered = true;
                }
                Err(error) => tracing::warn!(%error, "relay.events.undecodable"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn test_only_plain_http_urls_are_accepted() {
        assert!(subscribe(SubscribeConfig::new("http://127.0.0.1:1")).is_ok());
        assert!(matches!(
            subscribe(SubscribeConfig::new("https://beacon.example")),
            Err(SubscribeError::InvalidUrl { .. })
        ));
    }

    #[test]
    fn test_the_head_topic_is_asked_for_beside_payload_attributes_when_wanted() {
        let config = SubscribeConfig::new("http://127.0.0.1:5052/");
        assert_eq!(
            events_uri(&config).expect("uri").to_string(),
            "http://127.0.0.1:5052/eth/v1/events?topics=payload_attributes"
        );
        let with_head = SubscribeConfig {
            with_head: true,
            ..config
        };
        assert_eq!(
            events_uri(&with_head).expect("uri").to_string(),
            "http://127.0.0.1:5052/eth/v1/events?topics=payload_attributes,head"
        );
    }
}
