//! Test helpers: [`TestStream`] reads an event stream with a timeout on every
//! step, so a test never hangs, and its errors list what did arrive.
//!
//! # Example
//!
//! ```
//! use futures_util::stream;
//! use nest_sse_client::testing::TestStream;
//! use nest_sse_client::{Event, SseItem};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // Any stream of `Result<SseItem, Error>` works; usually an `EventSource`.
//! let items = vec![
//!     Ok(SseItem::Open),
//!     Ok(SseItem::Message(Event::new("greet", "hi"))),
//!     Ok(SseItem::Message(Event::new("message", "1"))),
//!     Ok(SseItem::Message(Event::new("message", "2"))),
//! ];
//! let mut stream = TestStream::new(stream::iter(items).chain(stream::pending()));
//! assert_eq!(stream.expect_event("greet").await.unwrap().data, "hi");
//! let events = stream.collect(2).await.unwrap();
//! assert_eq!(events[1].data, "2");
//!
//! // Nothing more arrives: the timeout (5 s by default) says so, and lists
//! // what did arrive before.
//! tokio::time::pause();
//! let error = stream.next_event().await.unwrap_err();
//! assert!(error.is_timeout());
//! assert!(error.to_string().contains("greet"), "{error}");
//! # }
//! # use futures_util::StreamExt;
//! ```

use std::fmt;
use std::time::Duration;

use futures_util::{Stream, StreamExt};

use crate::client::{EventSource, SseItem};
use crate::error::{Error, Result};
use crate::event::Event;

/// The default time a [`TestStream`] waits for each expected item.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// How many received items a [`TestError`] lists (the most recent ones).
const SHOWN: usize = 20;

/// Wraps an event stream (usually an [`EventSource`]) with assertions that
/// time out and explain themselves.
///
/// Waiting uses `tokio::time`, so tests on a paused clock advance through
/// reconnection delays and time out without waiting in real time.
#[derive(Debug)]
pub struct TestStream<S = EventSource> {
    stream: S,
    timeout: Duration,
    received: Vec<String>,
}

impl TestStream<EventSource> {
    /// Connects to `url` (GET, comments enabled) with default settings; for
    /// others, wrap a built source with [`TestStream::new`].
    ///
    /// # Errors
    ///
    /// [`Error::is_builder`] for an invalid URL.
    pub fn connect(url: impl AsRef<str>) -> Result<Self> {
        Ok(Self::new(EventSource::builder(url).comments(true).build()?))
    }
}

impl<S> TestStream<S>
where
    S: Stream<Item = Result<SseItem>> + Unpin,
{
    /// Wraps a stream, with the default timeout of 5 s.
    pub fn new(stream: S) -> Self {
        Self {
            stream,
            timeout: DEFAULT_TIMEOUT,
            received: Vec::new(),
        }
    }

    /// Sets how long each expectation waits.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The wrapped stream (e.g. to read `ready_state()` or `close()` it).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Descriptions of everything received so far, in order.
    #[must_use]
    pub fn received(&self) -> &[String] {
        &self.received
    }

    /// The next item of any kind, or an error on timeout or end of stream.
    ///
    /// # Errors
    ///
    /// [`TestError::is_timeout`] or [`TestError::is_ended`].
    pub async fn next_item(&mut self) -> Result<Result<SseItem>, TestError> {
        let waiting = "any item";
        match tokio::time::timeout(self.timeout, self.stream.next()).await {
            Err(_) => Err(self.error(Failure::Timeout(self.timeout), waiting)),
            Ok(None) => Err(self.error(Failure::Ended, waiting)),
            Ok(Some(item)) => {
                self.received.push(describe(&item));
                Ok(item)
            }
        }
    }

    /// Waits for the next item matching `want` (described by `waiting` in
    /// errors), skipping the others; a fatal error stops the wait.
    async fn wait_for<T>(
        &mut self,
        waiting: &str,
        mut want: impl FnMut(&SseItem) -> Option<T>,
    ) -> Result<T, TestError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let next = tokio::time::timeout_at(deadline, self.stream.next()).await;
            let item = match next {
                Err(_) => return Err(self.error(Failure::Timeout(self.timeout), waiting)),
                Ok(None) => return Err(self.error(Failure::Ended, waiting)),
                Ok(Some(item)) => item,
            };
            self.received.push(describe(&item));
            match item {
                Ok(item) => {
                    if let Some(found) = want(&item) {
                        return Ok(found);
                    }
                }
                Err(error) if error.is_fatal() => {
                    return Err(self.error(Failure::Fatal(error), waiting));
                }
                Err(_) => {}
            }
        }
    }

    /// The next event, skipping opens, comments and non-fatal errors (they
    /// are listed in errors).
    ///
    /// # Errors
    ///
    /// On timeout, end of stream or a fatal error.
    pub async fn next_event(&mut self) -> Result<Event, TestError> {
        self.wait_for("an event", |item| match item {
            SseItem::Message(event) => Some(event.clone()),
            _ => None,
        })
        .await
    }

    /// The next event, which must have type `event_type`.
    ///
    /// # Errors
    ///
    /// [`TestError::is_mismatch`] when the next event has another type; as
    /// [`next_event`](Self::next_event) otherwise.
    pub async fn expect_event(&mut self, event_type: &str) -> Result<Event, TestError> {
        let waiting = format!("an event of type {event_type:?}");
        let event = self
            .wait_for(&waiting, |item| match item {
                SseItem::Message(event) => Some(event.clone()),
                _ => None,
            })
            .await?;
        if event.event == event_type {
            Ok(event)
        } else {
            Err(self.error(Failure::Mismatch, &waiting))
        }
    }

    /// The next event for which `matches` holds, skipping the others (they
    /// are listed in errors): past a chat's `reset`, or to the event with
    /// an id.
    ///
    /// ```
    /// # use futures_util::{stream, StreamExt};
    /// # use nest_sse_client::{testing::TestStream, Event, SseItem};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let items = [Event::new("reset", ""), Event::new("message", "hi").with_id("7")];
    /// # let mut stream = TestStream::new(stream::iter(items).map(|e| Ok(SseItem::Message(e))));
    /// let message = stream.next_matching(|e| e.event == "message").await.unwrap();
    /// assert_eq!(message.id, "7");
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// On timeout (the timeout covers the whole wait), end of stream or a
    /// fatal error.
    pub async fn next_matching(
        &mut self,
        mut matches: impl FnMut(&Event) -> bool,
    ) -> Result<Event, TestError> {
        self.wait_for("a matching event", |item| match item {
            SseItem::Message(event) if matches(event) => Some(event.clone()),
            _ => None,
        })
        .await
    }

    /// No event arrives within `window` (opens, comments and reconnections
    /// may; an end of the stream is fine too). The window is measured with
    /// `tokio::time`: on a paused clock (`#[tokio::test(start_paused =
    /// true)]`) it passes without waiting.
    ///
    /// # Errors
    ///
    /// [`TestError::is_unexpected`] when an event arrives, or a fatal error.
    pub async fn expect_no_event(&mut self, window: Duration) -> Result<(), TestError> {
        let deadline = tokio::time::Instant::now() + window;
        let waiting = format!("no event for {window:?}");
        loop {
            let item = match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) | Ok(None) => return Ok(()),
                Ok(Some(item)) => item,
            };
            self.received.push(describe(&item));
            match item {
                Ok(SseItem::Message(_)) => {
                    return Err(self.error(Failure::Unexpected, &waiting));
                }
                Err(error) if error.is_fatal() => {
                    return Err(self.error(Failure::Fatal(error), &waiting));
                }
                _ => {}
            }
        }
    }

    /// The next `n` events.
    ///
    /// # Errors
    ///
    /// When fewer arrive in time (each waits up to the timeout).
    pub async fn collect(&mut self, n: usize) -> Result<Vec<Event>, TestError> {
        let mut events = Vec::with_capacity(n);
        for _ in 0..n {
            events.push(self.next_event().await?);
        }
        Ok(events)
    }

    /// The next comment (e.g. a keep-alive), skipping other items. Needs a
    /// source with comments enabled.
    ///
    /// # Errors
    ///
    /// On timeout, end of stream or a fatal error.
    pub async fn expect_comment(&mut self) -> Result<String, TestError> {
        self.wait_for("a comment", |item| match item {
            SseItem::Comment(text) => Some(text.clone()),
            _ => None,
        })
        .await
    }

    /// The next open of a connection (the first, or a reconnection).
    ///
    /// # Errors
    ///
    /// On timeout, end of stream or a fatal error.
    pub async fn expect_open(&mut self) -> Result<(), TestError> {
        self.wait_for("a connection to open", |item| {
            matches!(item, SseItem::Open).then_some(())
        })
        .await
    }

    /// The next error, skipping other items; fatal errors are returned too.
    ///
    /// # Errors
    ///
    /// On timeout or end of stream.
    pub async fn expect_error(&mut self) -> Result<Error, TestError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let waiting = "an error";
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return Err(self.error(Failure::Timeout(self.timeout), waiting)),
                Ok(None) => return Err(self.error(Failure::Ended, waiting)),
                Ok(Some(item)) => {
                    self.received.push(describe(&item));
                    if let Err(error) = item {
                        return Ok(error);
                    }
                }
            }
        }
    }

    /// The stream ends within the timeout (after a fatal error, `close`, or
    /// the end of a response when reconnecting is off).
    ///
    /// # Errors
    ///
    /// On timeout.
    pub async fn expect_end(&mut self) -> Result<(), TestError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => {
                    return Err(self.error(Failure::Timeout(self.timeout), "the end of the stream"))
                }
                Ok(None) => return Ok(()),
                Ok(Some(item)) => self.received.push(describe(&item)),
            }
        }
    }

    fn error(&self, failure: Failure, waiting: &str) -> TestError {
        let skip = self.received.len().saturating_sub(SHOWN);
        TestError {
            failure,
            waiting: waiting.to_owned(),
            received: self.received[skip..].to_vec(),
            omitted: skip,
        }
    }
}

/// A one-line description of a received item, for error messages.
fn describe(item: &Result<SseItem>) -> String {
    match item {
        Ok(SseItem::Open) => "open".to_owned(),
        Ok(SseItem::Message(e)) => {
            let mut text = format!("event {:?} data {:?}", e.event, e.data);
            if !e.id.is_empty() {
                text.push_str(&format!(" id {:?}", e.id));
            }
            if let Some(retry) = e.retry {
                text.push_str(&format!(" retry {retry}"));
            }
            text
        }
        Ok(SseItem::Comment(c)) => format!("comment {c:?}"),
        // With its causes: "connection failed" alone does not say why.
        Err(error) => {
            let chain: Vec<String> =
                std::iter::successors(Some(error as &dyn std::error::Error), |&e| e.source())
                    .map(ToString::to_string)
                    .collect();
            format!("error: {}", chain.join(": "))
        }
    }
}

#[derive(Debug)]
enum Failure {
    Timeout(Duration),
    Ended,
    Fatal(Error),
    Mismatch,
    Unexpected,
}

/// Why an expectation of a [`TestStream`] failed; its message lists what
/// did arrive (the last 20 items, errors with their causes). A fatal error
/// that stopped the wait is its [`source`](std::error::Error::source).
pub struct TestError {
    failure: Failure,
    waiting: String,
    received: Vec<String>,
    omitted: usize,
}

impl TestError {
    /// Nothing expected arrived within the timeout.
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        matches!(self.failure, Failure::Timeout(_))
    }

    /// The stream ended first.
    #[must_use]
    pub fn is_ended(&self) -> bool {
        matches!(self.failure, Failure::Ended)
    }

    /// A fatal error arrived first (see [`fatal_error`](Self::fatal_error)).
    #[must_use]
    pub fn is_fatal(&self) -> bool {
        matches!(self.failure, Failure::Fatal(_))
    }

    /// Something else arrived (an event of another type).
    #[must_use]
    pub fn is_mismatch(&self) -> bool {
        matches!(self.failure, Failure::Mismatch)
    }

    /// An event arrived while none was expected
    /// ([`TestStream::expect_no_event`]).
    #[must_use]
    pub fn is_unexpected(&self) -> bool {
        matches!(self.failure, Failure::Unexpected)
    }

    /// The fatal error, when [`is_fatal`](Self::is_fatal).
    #[must_use]
    pub fn fatal_error(&self) -> Option<&Error> {
        match &self.failure {
            Failure::Fatal(error) => Some(error),
            _ => None,
        }
    }
}

impl fmt::Display for TestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.failure {
            Failure::Timeout(t) => write!(f, "timed out after {t:?} waiting for {}", self.waiting)?,
            Failure::Ended => write!(f, "the stream ended while waiting for {}", self.waiting)?,
            // The error itself is the source (and the last item received).
            Failure::Fatal(_) => write!(f, "fatal error while waiting for {}", self.waiting)?,
            Failure::Mismatch => write!(f, "expected {}, got another", self.waiting)?,
            Failure::Unexpected => write!(f, "expected {}, got one", self.waiting)?,
        }
        if self.received.is_empty() {
            return f.write_str("; nothing was received");
        }
        f.write_str("; received:")?;
        if self.omitted > 0 {
            write!(f, "\n  ... {} earlier items", self.omitted)?;
        }
        for item in &self.received {
            write!(f, "\n  - {item}")?;
        }
        Ok(())
    }
}

/// Shows the message, so `unwrap()` in a test prints what arrived.
impl fmt::Debug for TestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for TestError {
    /// The fatal error, when [`is_fatal`](Self::is_fatal).
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.fatal_error()
            .map(|error| error as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;

    fn message(event: &str, data: &str) -> Result<SseItem> {
        Ok(SseItem::Message(Event::new(event, data)))
    }

    #[tokio::test(start_paused = true)]
    async fn a_mismatch_lists_what_arrived() {
        let items = vec![Ok(SseItem::Open), message("a", "1"), message("b", "2")];
        let mut s = TestStream::new(stream::iter(items));
        let error = s.expect_event("b").await.unwrap_err();
        assert!(error.is_mismatch());
        assert_eq!(
            error.to_string(),
            "expected an event of type \"b\", got another; received:\n  - open\n  - event \"a\" data \"1\""
        );
        let error = s.collect(2).await.unwrap_err();
        assert!(error.is_ended(), "{error}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_timeout_takes_the_configured_time() {
        let mut s = TestStream::new(stream::pending()).timeout(Duration::from_secs(2));
        let start = tokio::time::Instant::now();
        let error = s.next_event().await.unwrap_err();
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        assert_eq!(
            error.to_string(),
            "timed out after 2s waiting for an event; nothing was received"
        );
    }

    #[tokio::test]
    async fn a_fatal_error_stops_the_wait() {
        let items = vec![
            Err(Error::ended()),
            Ok(SseItem::Comment("k".into())),
            Err(Error::bad_status(crate::client::ResponseHead::new(
                reqwest::StatusCode::NOT_FOUND,
                reqwest::Version::HTTP_11,
                reqwest::header::HeaderMap::new(),
            ))),
        ];
        let mut s = TestStream::new(stream::iter(items));
        let error = s.next_event().await.unwrap_err();
        assert!(error.is_fatal());
        assert_eq!(error.fatal_error().and_then(Error::status_code), Some(404));
        let source = std::error::Error::source(&error).expect("the fatal error");
        assert_eq!(
            source.to_string(),
            "unexpected status 404 Not Found (an event stream needs 200 OK)"
        );
        assert_eq!(
            error.to_string(),
            format!("fatal error while waiting for an event; received:\n  - error: the server ended the stream\n  - comment \"k\"\n  - error: {source}")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn next_matching_skips_until_a_match_within_one_timeout() {
        let items = vec![
            message("reset", ""),
            Err(Error::ended()),
            message("message", "1"),
        ];
        let mut s = TestStream::new(stream::iter(items).chain(stream::pending()));
        let event = s.next_matching(|e| e.event == "message").await.unwrap();
        assert_eq!(event.data, "1");
        assert_eq!(s.received().len(), 3);
        let start = tokio::time::Instant::now();
        let error = s.next_matching(|_| true).await.unwrap_err();
        assert!(error.is_timeout());
        assert_eq!(start.elapsed(), DEFAULT_TIMEOUT);
        assert!(
            error
                .to_string()
                .starts_with("timed out after 5s waiting for a matching event"),
            "{error}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn expect_no_event_waits_the_window_on_the_paused_clock() {
        let items = vec![Ok(SseItem::Open), Ok(SseItem::Comment("k".into()))];
        let mut s = TestStream::new(stream::iter(items).chain(stream::pending()));
        let start = tokio::time::Instant::now();
        s.expect_no_event(Duration::from_secs(600)).await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(600));

        let items = vec![Ok(SseItem::Open), message("late", "x")];
        let mut s = TestStream::new(stream::iter(items).chain(stream::pending()));
        let error = s.expect_no_event(Duration::from_secs(1)).await.unwrap_err();
        assert!(error.is_unexpected());
        assert_eq!(
            error.to_string(),
            "expected no event for 1s, got one; received:\n  - open\n  - event \"late\" data \"x\""
        );

        // An end is no event.
        let mut s = TestStream::new(stream::iter(vec![Ok(SseItem::Open)]));
        s.expect_no_event(Duration::from_secs(1)).await.unwrap();
    }

    #[tokio::test]
    async fn received_errors_are_listed_with_their_causes() {
        let network = Error::network(std::io::Error::other("reset by peer"));
        let items = vec![Err(Error::retry_limit(1, network))];
        let mut s = TestStream::new(stream::iter(items));
        assert!(s.next_event().await.unwrap_err().is_fatal());
        assert_eq!(
            s.received(),
            ["error: gave up after 1 failed reconnection attempts: connection failed: reset by peer"]
        );
    }

    #[tokio::test]
    async fn comments_and_errors_can_be_expected() {
        let items = vec![
            message("a", "1"),
            Ok(SseItem::Comment("keep-alive".into())),
            Err(Error::ended()),
        ];
        let mut s = TestStream::new(stream::iter(items));
        assert_eq!(s.expect_comment().await.unwrap(), "keep-alive");
        assert!(s.expect_error().await.unwrap().is_ended());
        s.expect_end().await.unwrap();
        assert_eq!(s.received().len(), 3);
    }

    #[tokio::test]
    async fn long_histories_are_trimmed() {
        let items: Vec<_> = (0..30).map(|i| message("m", &i.to_string())).collect();
        let mut s = TestStream::new(stream::iter(items));
        let error = s.expect_comment().await.unwrap_err();
        let text = error.to_string();
        assert!(text.contains("... 10 earlier items"), "{text}");
        assert!(
            text.contains("data \"29\"") && !text.contains("data \"9\""),
            "{text}"
        );
    }
}
