//! [`Error`]: the crate's one error type, opaque, with `is_*()` predicates.
//!
//! # Example
//!
//! ```
//! use nest_sse_client::{Error, Event};
//!
//! let error: Error = Event::new("message", "not json").data_json::<u32>().unwrap_err();
//! assert!(error.is_json());
//! assert!(!error.is_status());
//! assert!(error.to_string().starts_with("event data is not the expected JSON"));
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
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.kind {
            Kind::Builder(message) => write!(f, "invalid event source: {message}")?,
            Kind::Status(code, reason) => write!(
                f,
                "unexpected status {code} {reason} (an event stream needs 200 OK)"
            )?,
            Kind::ContentType(Some(ct)) => write!(
                f,
                "unexpected content type `{ct}` (an event stream needs text/event-stream)"
            )?,
            Kind::ContentType(None) => {
                f.write_str("no content type (an event stream needs text/event-stream)")?;
            }
            Kind::Network => f.write_str("connection failed")?,
            Kind::Ended => f.write_str("the server ended the stream")?,
            Kind::RetryLimit(n) => {
                write!(f, "gave up after {n} failed reconnection attempts")?;
            }
            Kind::Json => f.write_str("event data is not the expected JSON")?,
        }
        if let Some(source) = &self.inner.source {
            write!(f, ": {source}")?;
            // Our own errors already print their causes.
            let mut next = if source.is::<Error>() {
                None
            } else {
                source.source()
            };
            while let Some(cause) = next {
                write!(f, ": {cause}")?;
                next = cause.source();
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.inner.kind)
            .field("message", &self.to_string())
            .finish()
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
            "gave up after 3 failed reconnection attempts: the server ended the stream"
        );
    }
}
