//! [`EventSource`]: a client that behaves like a browser's `EventSource`, on
//! reqwest.
//!
//! It sends the request with `Accept: text/event-stream` and
//! `Cache-Control: no-cache` and `Pragma: no-cache`, as a browser does (and `Last-Event-ID` when reconnecting with a
//! non-empty last event ID), follows redirects, and yields a stream of
//! [`SseItem`]s.
//!
//! - 200 with `text/event-stream`: the stream opens ([`SseItem::Open`]).
//! - 204 No Content, the server's way to say "stop": the stream ends
//!   without an error ([`response`](EventSource::response) shows the 204).
//! - 503 or 429: a non-fatal [`Error::is_status`] error, then a reconnection
//!   after the response's `Retry-After` (else the usual delay).
//! - Another status, or a content type that is not `text/event-stream`: a
//!   fatal error that keeps the response's status and headers.
//! - The end of the response or a network error: a non-fatal error, then a
//!   reconnection after the reconnection time (the server's `retry`, else
//!   the configured default of 3 s), with optional exponential backoff and
//!   jitter, up to an optional limit of failures in a row
//!   ([`Builder::max_retries`]; the count starts over only after a
//!   connection stayed open for [`Builder::healthy_after`]).
//!
//! For the usual `while let Some(event) = events.next().await { event?; }`
//! loop, [`EventSource::into_events`] yields only events and ends with `None`
//! when the server ends the stream cleanly.
//!
//! Any method and body work (POST streams are how LLM APIs stream): build the
//! request with reqwest and pass it to [`EventSource::from_request`]. Pass a
//! shared [`reqwest::Client`] with [`Builder::client`]; HTTP/2 and TLS are
//! the `http2` and `rustls` features (see the crate docs).
//!
//! Delays use `tokio::time`, so tests run them on a paused clock.
//!
//! # Example
//!
//! ```
//! use futures_util::StreamExt;
//! use nest_sse_client::{EventSource, ReadyState, SseItem};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // Nothing listens on port 1: the connection fails, and with
//! // `max_retries(0)` the source gives up at once.
//! let mut source = EventSource::builder("http://127.0.0.1:1/events")
//!     .max_retries(0)
//!     .build()
//!     .unwrap();
//! assert_eq!(source.ready_state(), ReadyState::Connecting);
//! let error = source.next().await.unwrap().unwrap_err();
//! assert!(error.is_retry_limit() && error.is_fatal());
//! assert!(source.next().await.is_none());
//! assert_eq!(source.ready_state(), ReadyState::Closed);
//! # }
//! ```

mod builder;
mod events;
pub(crate) mod head;
mod reconnect;
mod response;

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use reqwest::header::HeaderValue;
use reqwest::{Client, Request, RequestBuilder, Response};

use crate::error::{Error, Result};
use crate::event::Event;
use crate::parser::{Item, Parser};

pub use builder::Builder;
pub use events::Events;
pub use head::ResponseHead;
use reconnect::{Next, Reconnect};
pub use reconnect::{DEFAULT_HEALTHY_AFTER, DEFAULT_RETRY};
use response::Checked;

/// The state of an [`EventSource`], as a browser's `readyState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadyState {
    /// Connecting, or waiting to reconnect.
    Connecting,
    /// A response with an event stream is being read.
    Open,
    /// Closed by [`EventSource::close`], a 204, a fatal error, or an end
    /// without reconnecting; the stream has ended.
    Closed,
}

/// What an [`EventSource`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SseItem {
    /// A connection opened (once per connection).
    Open,
    /// An event.
    Message(Event),
    /// A comment line, when enabled with [`Builder::comments`].
    Comment(String),
}

type ResponseFuture = Pin<Box<dyn Future<Output = reqwest::Result<Response>> + Send>>;
type BodyStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

enum State {
    /// About to send the request.
    Idle,
    Connecting(ResponseFuture),
    Streaming(BodyStream),
    Waiting {
        sleep: Pin<Box<tokio::time::Sleep>>,
        delay: Duration,
    },
    Closed,
}

/// A reconnecting event stream: a [`Stream`] of `Result<SseItem, Error>`.
///
/// Non-fatal errors (see [`Error::is_fatal`]) are yielded and followed by a
/// reconnection ([`reconnect_delay`](EventSource::reconnect_delay) says
/// when); after a fatal error the stream ends and
/// [`ready_state`](EventSource::ready_state) is [`ReadyState::Closed`].
pub struct EventSource {
    client: Client,
    request: Request,
    parser: Parser,
    reconnect: Reconnect,
    ready_state: ReadyState,
    state: State,
    queue: VecDeque<SseItem>,
    response: Option<ResponseHead>,
}

impl fmt::Debug for EventSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSource")
            .field("method", self.request.method())
            .field("url", &self.request.url().as_str())
            .field("ready_state", &self.ready_state)
            .field("last_event_id", &self.parser.last_event_id())
            .field("failures", &self.reconnect.failures())
            .finish_non_exhaustive()
    }
}

impl EventSource {
    /// A GET event source with default settings.
    ///
    /// # Errors
    ///
    /// [`Error::is_builder`] for an invalid URL.
    pub fn new(url: impl AsRef<str>) -> Result<Self> {
        Self::builder(url).build()
    }

    /// An event source sending this request (any method, headers and body).
    ///
    /// # Errors
    ///
    /// [`Error::is_builder`] when the request is invalid or its body cannot
    /// be cloned (a stream).
    pub fn from_request(request: RequestBuilder) -> Result<Self> {
        Self::builder_from_request(request).build()
    }

    /// A builder for a GET event source. `url` must be absolute, http or
    /// https ([`build`](Builder::build) says "invalid URL" otherwise).
    pub fn builder(url: impl AsRef<str>) -> Builder {
        Builder::get(url.as_ref())
    }

    /// A builder for an event source sending this request, with its client.
    pub fn builder_from_request(request: RequestBuilder) -> Builder {
        Builder::request(request)
    }

    fn new_with(client: Client, request: Request, parser: Parser, reconnect: Reconnect) -> Self {
        Self {
            client,
            request,
            parser,
            reconnect,
            ready_state: ReadyState::Connecting,
            state: State::Idle,
            queue: VecDeque::new(),
            response: None,
        }
    }

    /// This source's events only, ending with `None` on a clean end: see
    /// [`Events`].
    pub fn into_events(self) -> Events {
        Events::new(self)
    }

    /// The state, as a browser's `readyState`.
    #[must_use]
    pub fn ready_state(&self) -> ReadyState {
        self.ready_state
    }

    /// The last event ID (sent as `Last-Event-ID` when reconnecting).
    #[must_use]
    pub fn last_event_id(&self) -> &str {
        self.parser.last_event_id()
    }

    /// The current reconnection time: the server's last `retry`, else the
    /// configured default (before backoff and jitter).
    #[must_use]
    pub fn reconnection_time(&self) -> Duration {
        self.parser
            .reconnection_time()
            .map_or(self.reconnect.default_retry(), Duration::from_millis)
    }

    /// The delay of the reconnection being waited for, after a non-fatal
    /// error and until the request is sent again: the reconnection time, or
    /// the backoff with jitter, or the server's `Retry-After`.
    #[must_use]
    pub fn reconnect_delay(&self) -> Option<Duration> {
        match self.state {
            State::Waiting { delay, .. } => Some(delay),
            _ => None,
        }
    }

    /// The head of the last response that opened the stream, or that ended
    /// it with 204. (A failing response's head is in its error:
    /// [`Error::headers`].)
    #[must_use]
    pub fn response(&self) -> Option<&ResponseHead> {
        self.response.as_ref()
    }

    /// Closes the source: the connection is dropped and the stream ends.
    pub fn close(&mut self) {
        self.state = State::Closed;
        self.ready_state = ReadyState::Closed;
        self.queue.clear();
    }

    fn connect(&mut self) -> Result<ResponseFuture> {
        let mut request = self
            .request
            .try_clone()
            .ok_or_else(|| Error::builder("the request body could not be cloned", None))?;
        let id = self.parser.last_event_id();
        if !id.is_empty() {
            // An id with control characters cannot be sent; a server must not
            // be able to end the stream that way, so it is left out.
            match HeaderValue::from_str(id) {
                Ok(value) => {
                    request.headers_mut().insert("last-event-id", value);
                }
                Err(_) => tracing::warn!(id, "last event ID is not a valid header value"),
            }
        }
        Ok(Box::pin(self.client.execute(request)))
    }

    /// After a non-fatal failure: reconnect after the delay, or give up.
    /// Returns the error to yield.
    fn schedule_reconnect(&mut self, error: Error) -> Error {
        self.parser.finish();
        let retry_after = error.retry_after();
        match self.reconnect.failed(self.reconnection_time(), retry_after) {
            Next::Stop => {
                self.close();
                error
            }
            Next::GiveUp(attempts) => {
                tracing::debug!(attempts, "retry limit reached");
                self.close();
                Error::retry_limit(attempts, error)
            }
            Next::After(delay) => {
                tracing::debug!(?delay, attempt = self.reconnect.failures(), %error, "reconnecting");
                self.ready_state = ReadyState::Connecting;
                self.state = State::Waiting {
                    sleep: Box::pin(tokio::time::sleep(delay)),
                    delay,
                };
                error
            }
        }
    }

    /// What a response's head means for the stream.
    fn on_response(&mut self, response: Response) -> Poll<Option<Result<SseItem>>> {
        match response::check(&response) {
            Checked::Stream(head) => {
                self.response = Some(head);
                self.reconnect.opened();
                self.ready_state = ReadyState::Open;
                self.state = State::Streaming(Box::pin(response.bytes_stream()));
                Poll::Ready(Some(Ok(SseItem::Open)))
            }
            Checked::NoContent(head) => {
                tracing::debug!("204 No Content: the server ended the stream");
                self.response = Some(head);
                self.close();
                Poll::Ready(None)
            }
            Checked::Failed(error) if error.is_fatal() => {
                self.close();
                Poll::Ready(Some(Err(error)))
            }
            Checked::Failed(error) => Poll::Ready(Some(Err(self.schedule_reconnect(error)))),
        }
    }
}

impl Stream for EventSource {
    type Item = Result<SseItem>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(item) = this.queue.pop_front() {
                return Poll::Ready(Some(Ok(item)));
            }
            match &mut this.state {
                State::Closed => return Poll::Ready(None),
                State::Idle => match this.connect() {
                    Ok(future) => {
                        this.ready_state = ReadyState::Connecting;
                        this.state = State::Connecting(future);
                    }
                    Err(error) => {
                        this.close();
                        return Poll::Ready(Some(Err(error)));
                    }
                },
                State::Connecting(future) => {
                    return match ready!(future.as_mut().poll(cx)) {
                        Ok(response) => this.on_response(response),
                        Err(error) => {
                            Poll::Ready(Some(Err(this.schedule_reconnect(Error::network(error)))))
                        }
                    };
                }
                State::Streaming(body) => match ready!(body.as_mut().poll_next(cx)) {
                    Some(Ok(chunk)) => {
                        let mut items = Vec::new();
                        this.parser.push(&chunk, &mut items);
                        this.queue.extend(items.into_iter().map(|item| match item {
                            Item::Event(event) => SseItem::Message(event),
                            Item::Comment(text) => SseItem::Comment(text),
                        }));
                    }
                    Some(Err(error)) => {
                        let error = this.schedule_reconnect(Error::network(error));
                        return Poll::Ready(Some(Err(error)));
                    }
                    None => {
                        let error = this.schedule_reconnect(Error::ended());
                        return Poll::Ready(Some(Err(error)));
                    }
                },
                State::Waiting { sleep, .. } => {
                    ready!(sleep.as_mut().poll(cx));
                    this.state = State::Idle;
                }
            }
        }
    }
}
