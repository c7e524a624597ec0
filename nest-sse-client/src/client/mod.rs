//! [`EventSource`]: a client that behaves like a browser's `EventSource`, on
//! reqwest.
//!
//! It sends the request with `Accept: text/event-stream` and
//! `Cache-Control: no-cache` (and `Last-Event-ID` when reconnecting with a
//! non-empty last event ID), follows redirects, and yields a stream of
//! [`SseItem`]s. A status other than 200 or a content type that is not
//! `text/event-stream` is a fatal error (a server says "stop" with 204). When
//! the response ends or the network fails, it yields a non-fatal error and
//! reconnects after the reconnection time: the server's `retry` if it sent
//! one, else the configured default (3 s), optionally with exponential
//! backoff, up to an optional limit of consecutive failed attempts.
//!
//! Any method and body work (POST streams are how LLM APIs stream): build the
//! request with reqwest and pass it to [`EventSource::from_request`].
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use nest_sse_client::{EventSource, ReadyState};
//!
//! let source = EventSource::builder("http://127.0.0.1:3000/events")
//!     .header("authorization", "Bearer token")
//!     .last_event_id("41")
//!     .retry(Duration::from_secs(1))
//!     .backoff(Duration::from_secs(30))
//!     .max_retries(5)
//!     .build()
//!     .unwrap();
//! assert_eq!(source.ready_state(), ReadyState::Connecting);
//! assert_eq!(source.last_event_id(), "41");
//!
//! // A request whose body cannot be re-sent is refused up front.
//! let bad = EventSource::builder("not a url").build().unwrap_err();
//! assert!(bad.is_builder());
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use reqwest::{Client, Request, RequestBuilder, Response, StatusCode};

use crate::error::{Error, Result};
use crate::event::Event;
use crate::parser::{Item, Parser};

/// The reconnection time a browser uses when the server sent no `retry`.
pub const DEFAULT_RETRY: Duration = Duration::from_secs(3);

/// The state of an [`EventSource`], as a browser's `readyState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadyState {
    /// Connecting, or waiting to reconnect.
    Connecting,
    /// A response with an event stream is being read.
    Open,
    /// Closed by [`EventSource::close`] or a fatal error; the stream has ended.
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

/// Configures an [`EventSource`]; made by [`EventSource::builder`] or
/// [`EventSource::builder_from_request`]. Errors are reported by
/// [`build`](Builder::build).
#[derive(Debug)]
#[must_use]
pub struct Builder {
    /// `None` when no HTTP client could be made (the error says why).
    request: Option<RequestBuilder>,
    headers: HeaderMap,
    error: Option<Error>,
    last_event_id: String,
    retry: Duration,
    backoff_max: Option<Duration>,
    max_retries: Option<u32>,
    reconnect: bool,
    comments: bool,
}

impl Builder {
    fn new(request: Option<RequestBuilder>) -> Self {
        Self {
            request,
            headers: HeaderMap::new(),
            error: None,
            last_event_id: String::new(),
            retry: DEFAULT_RETRY,
            backoff_max: None,
            max_retries: None,
            reconnect: true,
            comments: false,
        }
    }

    /// Adds a request header (sent on every connection).
    pub fn header(mut self, name: impl AsRef<str>, value: impl AsRef<str>) -> Self {
        let (name, value) = (name.as_ref(), value.as_ref());
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(name), Ok(value)) => {
                self.headers.append(name, value);
            }
            (Err(e), _) => self.fail(format!("bad header name {name:?}"), e),
            (_, Err(e)) => self.fail(format!("bad value for header {name:?}"), e),
        }
        self
    }

    fn fail(&mut self, message: String, source: impl std::error::Error + Send + Sync + 'static) {
        if self.error.is_none() {
            self.error = Some(Error::builder(message, Some(Box::new(source))));
        }
    }

    /// The last event ID to start with: sent as `Last-Event-ID` on the first
    /// request too, as when resuming a stream.
    pub fn last_event_id(mut self, id: impl Into<String>) -> Self {
        self.last_event_id = id.into();
        self
    }

    /// The reconnection time used until the server sends `retry` (default
    /// 3 s, as in browsers).
    pub fn retry(mut self, delay: Duration) -> Self {
        self.retry = delay;
        self
    }

    /// Doubles the delay after each consecutive failed reconnection, up to
    /// `max` (default: no backoff, as in browsers).
    pub fn backoff(mut self, max: Duration) -> Self {
        self.backoff_max = Some(max);
        self
    }

    /// Gives up (with a fatal [`Error::is_retry_limit`] error) after this many
    /// consecutive reconnection attempts without a successful open (default:
    /// no limit). `0` never reconnects after a failure.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = Some(retries);
        self
    }

    /// Whether to reconnect at all (default: yes). Without, the stream ends
    /// after the first response ends or fails.
    pub fn reconnect(mut self, enabled: bool) -> Self {
        self.reconnect = enabled;
        self
    }

    /// Whether comment lines are yielded as [`SseItem::Comment`] (default: no).
    pub fn comments(mut self, enabled: bool) -> Self {
        self.comments = enabled;
        self
    }

    /// Builds the source. It connects when first polled.
    ///
    /// # Errors
    ///
    /// [`Error::is_builder`] for a bad URL or header, or a request whose body
    /// is a stream (it could not be re-sent when reconnecting).
    pub fn build(self) -> Result<EventSource> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let Some(request) = self.request else {
            return Err(Error::builder("no HTTP client", None));
        };
        let (client, request) = request.build_split();
        let mut request = request.map_err(|e| Error::builder("bad request", Some(Box::new(e))))?;
        if request.try_clone().is_none() {
            return Err(Error::builder(
                "the request body is a stream and could not be re-sent on reconnect",
                None,
            ));
        }
        let headers = request.headers_mut();
        for (name, value) in &self.headers {
            headers.append(name, value.clone());
        }
        headers
            .entry(ACCEPT)
            .or_insert(HeaderValue::from_static("text/event-stream"));
        headers
            .entry(CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-cache"));
        Ok(EventSource {
            client,
            request,
            parser: Parser::new()
                .with_comments(self.comments)
                .with_last_event_id(self.last_event_id),
            retry: self.retry,
            backoff_max: self.backoff_max,
            max_retries: self.max_retries,
            reconnect: self.reconnect,
            attempts: 0,
            ready_state: ReadyState::Connecting,
            state: State::Idle,
            queue: VecDeque::new(),
        })
    }
}

type ResponseFuture = Pin<Box<dyn Future<Output = reqwest::Result<Response>> + Send>>;
type BodyStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

enum State {
    /// About to send the request.
    Idle,
    Connecting(ResponseFuture),
    Streaming(BodyStream),
    Waiting(Pin<Box<tokio::time::Sleep>>),
    Closed,
}

/// A reconnecting event stream: a [`Stream`] of `Result<SseItem, Error>`.
///
/// Non-fatal errors (see [`Error::is_fatal`]) are yielded and followed by a
/// reconnection; after a fatal error the stream ends and
/// [`ready_state`](EventSource::ready_state) is [`ReadyState::Closed`].
pub struct EventSource {
    client: Client,
    request: Request,
    parser: Parser,
    retry: Duration,
    backoff_max: Option<Duration>,
    max_retries: Option<u32>,
    reconnect: bool,
    /// Reconnection attempts since the last successful open.
    attempts: u32,
    ready_state: ReadyState,
    state: State,
    queue: VecDeque<SseItem>,
}

impl fmt::Debug for EventSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSource")
            .field("method", self.request.method())
            .field("url", &self.request.url().as_str())
            .field("ready_state", &self.ready_state)
            .field("last_event_id", &self.parser.last_event_id())
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

impl EventSource {
    /// A GET event source with default settings.
    ///
    /// # Errors
    ///
    /// [`Error::is_builder`] for a bad URL.
    pub fn new(url: impl reqwest::IntoUrl) -> Result<Self> {
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

    /// A builder for a GET event source.
    pub fn builder(url: impl reqwest::IntoUrl) -> Builder {
        match Client::builder().build() {
            Ok(client) => Builder::new(Some(client.get(url))),
            Err(e) => {
                let mut builder = Builder::new(None);
                builder.fail("cannot create an HTTP client".into(), e);
                builder
            }
        }
    }

    /// A builder for an event source sending this request.
    pub fn builder_from_request(request: RequestBuilder) -> Builder {
        Builder::new(Some(request))
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
    /// configured default.
    #[must_use]
    pub fn reconnection_time(&self) -> Duration {
        self.parser
            .reconnection_time()
            .map_or(self.retry, Duration::from_millis)
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

    /// Checks the response as a browser does: 200 and `text/event-stream`.
    fn check(response: &Response) -> Result<()> {
        if response.status() != StatusCode::OK {
            return Err(Error::status(response.status()));
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let is_event_stream = content_type.as_deref().is_some_and(|ct| {
            let essence = ct.split(';').next().unwrap_or("").trim();
            essence.eq_ignore_ascii_case("text/event-stream")
        });
        if is_event_stream {
            Ok(())
        } else {
            Err(Error::content_type(content_type))
        }
    }

    /// After a non-fatal failure: reconnect after the delay, or give up.
    /// Returns the error to yield.
    fn schedule_reconnect(&mut self, error: Error) -> Error {
        self.parser.finish();
        if !self.reconnect {
            self.close();
            return error;
        }
        if self.max_retries.is_some_and(|max| self.attempts >= max) {
            tracing::debug!(attempts = self.attempts, "retry limit reached");
            self.close();
            return Error::retry_limit(self.attempts, error);
        }
        self.attempts += 1;
        let delay = self.delay();
        tracing::debug!(?delay, attempt = self.attempts, %error, "reconnecting");
        self.ready_state = ReadyState::Connecting;
        self.state = State::Waiting(Box::pin(tokio::time::sleep(delay)));
        error
    }

    fn delay(&self) -> Duration {
        let base = self.reconnection_time();
        match self.backoff_max {
            None => base,
            Some(max) => {
                let doublings = self.attempts.saturating_sub(1).min(32);
                base.saturating_mul(1u32 << doublings.min(31)).min(max)
            }
        }
    }

    fn fatal(&mut self, error: Error) -> Poll<Option<Result<SseItem>>> {
        self.close();
        Poll::Ready(Some(Err(error)))
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
                    Err(error) => return this.fatal(error),
                },
                State::Connecting(future) => match ready!(future.as_mut().poll(cx)) {
                    Ok(response) => {
                        if let Err(error) = Self::check(&response) {
                            return this.fatal(error);
                        }
                        this.attempts = 0;
                        this.ready_state = ReadyState::Open;
                        this.state = State::Streaming(Box::pin(response.bytes_stream()));
                        return Poll::Ready(Some(Ok(SseItem::Open)));
                    }
                    Err(error) => {
                        let error = this.schedule_reconnect(Error::network(error));
                        return Poll::Ready(Some(Err(error)));
                    }
                },
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
                State::Waiting(sleep) => {
                    ready!(sleep.as_mut().poll(cx));
                    this.state = State::Idle;
                }
            }
        }
    }
}
