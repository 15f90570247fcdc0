//! The relay's `payload_attributes` stream (Beacon API `GET /eth/v1/events`, server-sent
//! events): the slot open now, then each new one, with the time left for bids stamped as each
//! message leaves.

use std::{convert::Infallible, sync::Arc, time::Instant};

use alloy_rpc_types_beacon::events::PayloadAttributesEvent;
use axum::{
    extract::State,
    http::{StatusCode, Uri},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};

use super::service::Shared;
use crate::{
    BlockVerifier,
    events::{PAYLOAD_ATTRIBUTES_TOPIC, SlotEvent},
    reply::RejectReason,
};

/// Time between keep-alive comments; subscribers take a longer silence for a dead stream.
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(1);

/// A slot as announced by the proposer.
#[derive(Debug, Clone)]
pub(crate) struct Announcement {
    /// The event.
    pub(crate) event: PayloadAttributesEvent,
    /// When the relay stops taking bids for it.
    pub(crate) bids_until: Instant,
}

/// What the stream serves: the newest announcement, and whether the server is stopping.
#[derive(Debug, Clone, Default)]
pub(crate) struct Announcements {
    /// The slot announced last.
    pub(crate) current: Option<Announcement>,
    /// The server is shutting down: streams end.
    pub(crate) closed: bool,
}

/// `GET /eth/v1/events?topics=...`: the stream, if `payload_attributes` is among the topics.
pub(crate) async fn events<V: BlockVerifier>(
    State(shared): State<Arc<Shared<V>>>,
    uri: Uri,
) -> Response {
    let topics: Vec<&str> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.strip_prefix("topics="))
        .flat_map(|topics| topics.split(','))
        .collect();
    if !topics.contains(&PAYLOAD_ATTRIBUTES_TOPIC) {
        return super::handlers::error_reply(
            StatusCode::BAD_REQUEST,
            Some(RejectReason::Malformed),
            format!("topics: only {PAYLOAD_ATTRIBUTES_TOPIC} is served, asked for {topics:?}"),
        );
    }
    let Some(permit) = shared.subscriber() else {
        return super::handlers::error_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            Some(RejectReason::Busy),
            format!(
                "the relay serves at most {} event streams at once",
                shared.config().max_subscribers
            ),
        );
    };
    let mut announcements = shared.announcements();
    // The slot open now goes first, so a builder that (re)connects mid-slot still bids in it.
    announcements.mark_changed();
    // The permit travels with the stream: the place frees when the subscriber hangs up.
    let stream =
        futures_util::stream::unfold((announcements, permit), |(mut rx, permit)| async move {
            loop {
                rx.changed().await.ok()?;
                let state = rx.borrow_and_update().clone();
                if state.closed {
                    return None;
                }
                if let Some(event) = state.current.as_ref().and_then(message) {
                    return Some((Ok::<_, Infallible>(event), (rx, permit)));
                }
            }
        });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

/// The SSE message of `announcement` as of now; `None` if it cannot be encoded (logged).
fn message(announcement: &Announcement) -> Option<Event> {
    let left = announcement
        .bids_until
        .saturating_duration_since(Instant::now());
    let event = SlotEvent {
        event: announcement.event.clone(),
        bid_window_ms: Some(left.as_millis() as u64),
    };
    match serde_json::to_string(&event) {
        Ok(json) => Some(Event::default().event(PAYLOAD_ATTRIBUTES_TOPIC).data(json)),
        Err(error) => {
            tracing::error!(%error, "relay.events.encode_failed");
            None
        }
    }
}
