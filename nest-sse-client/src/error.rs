//! [`Error`]: the crate's one error type, opaque, with `is_*()` predicates.
//!
//! As in hyper and reqwest, an error's `Display` is its own message only and
//! [`source`](std::error::Error::source) is what caused it, so a report that
//! walks the chain (anyhow's, or the `nest-sse` CLI's) prints each cause once.
//!
//! # Example
//!
//! ```
//! use std::error::Error as _;
//! use nest_sse_client::{Error, Event};
//!
//! let error: Error = Event::new("message", "not json").data_json::<u32>().unwrap_err();
//! assert!(error.is_json());
//! assert!(!error.is_status());
//! assert_eq!(error.to_string(), "event data is not the expected JSON");
//!
//! // What the JSON parser said is the source, not part of the message.
//! let source = error.source().expect("the serde_json error");
//! assert!(source.is::<serde_json::Error>());
//! assert!(!error.to_string().contains(&source.to_string()));
//! ```

use std::fmt;

/// A boxed error source.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `Result<T, Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error from the parser's helpers, the client or the CLI.
///
/// Errors from an [`EventSource`](crate::EventSource) are either *fatal* (the
/// stream ends and the source is closed: a bad status, a bad content type, the
/// retry limit, an invalid request) or not (a network error or the end of the
/// response: the source reconnects).
///
/// `Display` shows this error's own message (`connection failed`); the cause
/// (reqwest's error, the last failure before the retry limit, serde_json's
/// error) is [`source`](std::error::Error::source). The error is `Send + Sync`
/// and one pointer wide.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: Kind,
    source: Option<BoxError>,
}

#[derive(Debug)]
enum Kind {
    Builder(String),
    Status(u16, String),
    ContentType(Option<String>),
    Network,
    Ended,
    RetryLimit(u32),
    Json,
}

impl Error {
    fn new(kind: Kind, source: Option<BoxError>) -> Self {
        Self {
            inner: Box::new(Inner { kind, source }),
        }
    }

    pub(crate) fn builder(message: impl Into<String>, source: Option<BoxError>) -> Self {
        Self::new(Kind::Builder(message.into()), source)
    }

    pub(crate) fn status(status: reqwest::StatusCode) -> Self {
        let reason = status.canonical_reason().unwrap_or("").to_owned();
        Self::new(Kind::Status(status.as_u16(), reason), None)
    }

    pub(crate) fn content_type(content_type: Option<String>) -> Self {
        Self::new(Kind::ContentType(content_type), None)
    }

    pub(crate) fn network(source: impl Into<BoxError>) -> Self {
        Self::new(Kind::Network, Some(source.into()))
    }

    pub(crate) fn ended() -> Self {
        Self::new(Kind::Ended, None)
    }

    pub(crate) fn retry_limit(retries: u32, last: Error) -> Self {
        Self::new(Kind::RetryLimit(retries), Some(Box::new(last)))
    }

    pub(crate) fn json(source: serde_json::Error) -> Self {
        Self::new(Kind::Json, Some(Box::new(source)))
    }

    /// Invalid configuration: a bad URL, header, or a request that cannot be
    /// cloned for reconnecting.
    #[must_use]
    pub fn is_builder(&self) -> bool {
        matches!(self.inner.kind, Kind::Builder(_))
    }

    /// The server answered with a status other than 200 (fatal).
    #[must_use]
    pub fn is_status(&self) -> bool {
        matches!(self.inner.kind, Kind::Status(..))
    }

    /// The status code, when [`is_status`](Self::is_status).
    #[must_use]
    pub fn status_code(&self) -> Option<u16> {
        match self.inner.kind {
            Kind::Status(code, _) => Some(code),
            _ => None,
        }
    }

    /// The response's content type was not `text/event-stream` (fatal).
    #[must_use]
    pub fn is_content_type(&self) -> bool {
        matches!(self.inner.kind, Kind::ContentType(_))
    }

    /// The content type that came back, when
    /// [`is_content_type`](Self::is_content_type) and there was one.
    #[must_use]
    pub fn content_type_received(&self) -> Option<&str> {
        match &self.inner.kind {
            Kind::ContentType(ct) => ct.as_deref(),
            _ => None,
        }
    }

    /// Connecting failed or the connection broke (the source reconnects).
    #[must_use]
    pub fn is_network(&self) -> bool {
        matches!(self.inner.kind, Kind::Network)
    }

    /// The server ended the response (the source reconnects).
    #[must_use]
    pub fn is_ended(&self) -> bool {
        matches!(self.inner.kind, Kind::Ended)
    }

    /// The source gave up after its retry limit of consecutive failed
    /// reconnections (fatal).
    #[must_use]
    pub fn is_retry_limit(&self) -> bool {
        matches!(self.inner.kind, Kind::RetryLimit(_))
    }

    /// Event data was not the expected JSON.
    #[must_use]
    pub fn is_json(&self) -> bool {
        matches!(self.inner.kind, Kind::Json)
    }

    /// After this error the source is closed and its stream ends.
    #[must_use]
    pub fn is_fatal(&self) -> bool {
        !(self.is_network() || self.is_ended() || self.is_json())
    }
}

impl fmt::Display for Error {
    /// The error's own message; what caused it is [`source`](std::error::Error::source).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.kind {
            Kind::Builder(message) => write!(f, "invalid event source: {message}"),
            Kind::Status(code, reason) => write!(
                f,
                "unexpected status {code} {reason} (an event stream needs 200 OK)"
            ),
            Kind::ContentType(Some(ct)) => write!(
                f,
                "unexpected content type `{ct}` (an event stream needs text/event-stream)"
            ),
            Kind::ContentType(None) => {
                f.write_str("no content type (an event stream needs text/event-stream)")
            }
            Kind::Network => f.write_str("connection failed"),
            Kind::Ended => f.write_str("the server ended the stream"),
            Kind::RetryLimit(n) => write!(f, "gave up after {n} failed reconnection attempts"),
            Kind::Json => f.write_str("event data is not the expected JSON"),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("nest_sse_client::Error");
        debug.field("kind", &self.inner.kind);
        if let Some(source) = &self.inner.source {
            debug.field("source", source);
        }
        debug.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as StdError;

    use super::*;

    #[test]
    fn is_send_sync_and_one_word() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Error>();
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
    }

    #[test]
    fn messages_name_what_came_back() {
        let e = Error::status(reqwest::StatusCode::NOT_FOUND);
        assert_eq!(e.status_code(), Some(404));
        assert!(e.to_string().contains("404 Not Found"), "{e}");
        assert!(e.is_fatal());
        let e = Error::content_type(Some("text/html".into()));
        assert_eq!(e.content_type_received(), Some("text/html"));
        assert!(e.to_string().contains("`text/html`"), "{e}");
        assert!(!Error::ended().is_fatal());
        let e = Error::retry_limit(3, Error::ended());
        assert!(e.is_retry_limit() && e.is_fatal());
        assert_eq!(
            e.to_string(),
            "gave up after 3 failed reconnection attempts"
        );
    }

    /// What anyhow and the CLI print: each message once, as they walk `source()`.
    fn chain(error: &dyn StdError) -> Vec<String> {
        std::iter::successors(Some(error), |&e| e.source())
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn display_is_the_own_message_and_the_cause_is_the_source() {
        let io = std::io::Error::other("tcp connect error: Connection refused");
        let error = Error::network(io);
        let text = format!("{error}");
        assert_eq!(text, "connection failed");
        assert!(!text.contains("Connection refused"), "{text}");
        let source = error.source().expect("the network error's cause");
        assert_eq!(source.to_string(), "tcp connect error: Connection refused");
        assert!(source.is::<std::io::Error>());

        let error = Error::retry_limit(2, error);
        assert_eq!(
            chain(&error),
            [
                "gave up after 2 failed reconnection attempts",
                "connection failed",
                "tcp connect error: Connection refused",
            ]
        );
        let debug = format!("{error:?}");
        assert!(
            debug.contains("RetryLimit(2)") && debug.contains("Connection refused"),
            "{debug}"
        );
    }

    #[test]
    fn errors_without_a_cause_have_no_source() {
        for error in [
            Error::ended(),
            Error::status(reqwest::StatusCode::BAD_GATEWAY),
            Error::content_type(None),
            Error::builder("no HTTP client", None),
        ] {
            assert!(error.source().is_none(), "{error:?}");
        }
    }
}
