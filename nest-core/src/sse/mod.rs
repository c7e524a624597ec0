//! Server-Sent Events: the seed's `getSSEStream` / `@Sse()` / `SSEMessageEvent`, in Rust.
//!
//! A handler creates a stream with [`get_sse_stream`], moves the [`SseWriter`] into any task or
//! timer, and returns the [`SseBody`]. The cancel hook runs when the client goes away.
//!
//! # Example
//!
//! The seed's `/sse` route: write `{"hello":"world"}` every second, stop the timer on cancel.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use nest_core::prelude::*;
//! use nest_core::sse::{get_sse_stream, SseBody, SseOptions};
//! use serde_json::json;
//!
//! struct App;
//!
//! impl App {
//!     async fn sse(self: Arc<Self>) -> SseBody {
//!         let (writer, body) = get_sse_stream(SseOptions::new());
//!         let timer = tokio::spawn(async move {
//!             let mut interval = tokio::time::interval(Duration::from_secs(1));
//!             loop {
//!                 interval.tick().await;
//!                 if writer.write(json!({"hello": "world"})).is_err() {
//!                     break;
//!                 }
//!             }
//!         });
//!         body.on_cancel(move |_reason| timer.abort())
//!     }
//! }
//!
//! impl Controller for App {
//!     fn routes(routes: &mut Routes<Self>) {
//!         routes.sse("/sse", Self::sse);
//!     }
//! }
//!
//! assert!(NestApp::new().controller(App).into_service().is_ok());
//! ```
//!
//! # Lifecycle
//!
//! A stream ends for one of the reasons of [`EndReason`]; the cancel hook runs exactly once for
//! every reason except [`SseWriter::close`]. After the end, `write` returns an error whose
//! [`SseError::end_reason`] says why. hyper notices a client that closed its connection within
//! milliseconds even on an idle stream; a client that vanished without closing is found by TCP
//! keepalive (see `ServerConfig::tcp_keepalive`) or HTTP/2 PING. A writer task that panics drops
//! its writer, which ends only its own stream ([`EndReason::WritersDropped`]).
//!
//! # Wire format
//!
//! One encoder ([`encode`]) writes every event; see its docs for the rules. Events are encoded
//! once into shared bytes ([`EncodedEvent`]) that any number of streams can carry.
//!
//! # Shutdown
//!
//! When the server shuts down every open stream flushes what is queued, sends the optional final
//! `retry:` of [`SseOptions::shutdown_retry`], and ends with [`EndReason::Shutdown`]. Events still
//! queued when the grace period forces connections closed are lost.

mod body;
mod encode;
mod end;
mod error;
mod event;
mod keep_alive;
mod last_event_id;
mod lifecycle;
mod options;
mod source;
mod typed;
mod writer;

pub use body::SseBody;
pub use encode::{encode, validate, EncodedEvent};
pub use end::EndReason;
pub use error::SseError;
pub use event::{EventId, SseEvent};
pub use last_event_id::LastEventId;
pub use options::{Overflow, SseOptions};
pub use source::{EventSource, SourceFrame};
pub use typed::{
    get_typed_sse_stream, IntoTypedEvent, SseEvents, TypedEvent, TypedSseBody, TypedSseWriter,
};
pub use writer::{get_sse_stream, SseWriter};

/// The event types of a typed stream as its route's OpenAPI document describes them (from
/// `nest-openapi`).
pub use nest_openapi::{EventSchema, EventSchemas};

/// `#[derive(SseEvents)]` on an enum of event types; see [`SseEvents`].
pub use nest_macros::SseEvents;

pub(crate) use lifecycle::SseAttach;

use http::{header, HeaderValue};

use crate::body::Body;
use crate::response::{IntoResponse, Response};

/// The headers of every SSE response, checked once at compile time (`from_static` at run time
/// checks every byte of each, on every response).
const EVENT_STREAM: HeaderValue = HeaderValue::from_static("text/event-stream");
const NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache");
const X_ACCEL_BUFFERING: http::HeaderName = http::HeaderName::from_static("x-accel-buffering");
const NO: HeaderValue = HeaderValue::from_static("no");

/// The head of every SSE response: 200 and the headers that keep proxies from buffering it.
pub(crate) fn sse_response_head() -> Response {
    let mut res = Response::new(Body::empty());
    // Sized for these three: hyper keeps the response's map for the connection's next request,
    // so on an SSE connection it lives as long as the stream (a default map holds six).
    *res.headers_mut() = http::HeaderMap::with_capacity(3);
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, EVENT_STREAM);
    headers.insert(header::CACHE_CONTROL, NO_CACHE);
    headers.insert(X_ACCEL_BUFFERING, NO);
    res
}

/// Whether a `Content-Type` value is an event stream: its media type (before any `;`
/// parameters, without surrounding spaces) is `text/event-stream`, in any ASCII case, as the
/// HTML standard's EventSource and the Fetch standard's MIME type parsing read it. The one check
/// nest-core makes (the direct SSE path, request ids).
///
/// ```
/// use http::HeaderValue;
/// use nest_core::sse::is_event_stream;
///
/// assert!(is_event_stream(&HeaderValue::from_static("text/event-stream")));
/// assert!(is_event_stream(&HeaderValue::from_static("Text/Event-Stream; charset=utf-8")));
/// assert!(!is_event_stream(&HeaderValue::from_static("text/event-streams")));
/// assert!(!is_event_stream(&HeaderValue::from_static("text/plain")));
/// ```
pub fn is_event_stream(content_type: &HeaderValue) -> bool {
    // Asked of every response (request ids): the media type's length decides most answers
    // before a byte is compared, and nothing after it is scanned.
    const ESSENCE: &[u8] = b"text/event-stream";
    let value = content_type.as_bytes().trim_ascii_start();
    match value.split_at_checked(ESSENCE.len()) {
        Some((essence, rest)) => {
            essence.eq_ignore_ascii_case(ESSENCE)
                && matches!(rest.trim_ascii_start().first(), None | Some(b';'))
        }
        None => false,
    }
}

impl IntoResponse for SseBody {
    fn into_response(self) -> Response {
        let attach = self.attachment();
        let mut res = sse_response_head();
        res.extensions_mut().insert(attach);
        *res.body_mut() = Body::new(self);
        res
    }
}

#[cfg(test)]
mod tests;
