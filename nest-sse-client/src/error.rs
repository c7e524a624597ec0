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
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::StatusCode;

use crate::client::head::ResponseHead;

/// A boxed error source.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `Result<T, Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error from the parser's helpers, the client or the CLI.
///
/// Errors from an [`EventSource`](crate::EventSource) are either *fatal* (the
/// stream ends and the source is closed: a bad status, a bad content type, the
/// retry limit, an invalid request) or not (a network error, the end of the
/// response, a 503 or 429: the source reconnects).
///
/// `Display` shows this error's own message (`connection failed`); the cause
/// (reqwest's error, the last failure before the retry limit, serde_json's
/// error) is [`source`](std::error::Error::source). An error caused by a
/// response keeps its status and headers ([`status`](Self::status),
/// [`headers`](Self::headers)). The error is `Send + Sync` and one pointer
/// wide.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: Kind,
    source: Option<BoxError>,
    /// The response that caused a status or content-type error.
    response: Option<ResponseHead>,
}

#[derive(Debug)]
enum Kind {
    Builder(String),
    Status,
    ContentType(Option<String>),
    Network,
    Ended,
    RetryLimit(u32),
    Json,
}

impl Error {
    fn new(kind: Kind, source: Option<BoxError>) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                source,
                response: None,
            }),
        }
    }

    pub(crate) fn builder(message: impl Into<String>, source: Option<BoxError>) -> Self {
        Self::new(Kind::Builder(message.into()), source)
    }

    pub(crate) fn bad_status(response: ResponseHead) -> Self {
        let mut error = Self::new(Kind::Status, None);
        error.inner.response = Some(response);
        error
    }

    pub(crate) fn bad_content_type(response: ResponseHead) -> Self {
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let mut error = Self::new(Kind::ContentType(content_type), None);
        error.inner.response = Some(response);
        error
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

    /// The server answered with a status other than 200 (and 204, which ends
    /// the stream without an error). Fatal, except 503 and 429: the source
    /// reconnects, after the response's `Retry-After` when it has one.
    #[must_use]
    pub fn is_status(&self) -> bool {
        matches!(self.inner.kind, Kind::Status)
    }

    /// The head of the response that caused this error (a status or
    /// content-type error).
    #[must_use]
    pub fn response(&self) -> Option<&ResponseHead> {
        self.inner.response.as_ref()
    }

    /// The status of the response that caused this error (a status or
    /// content-type error).
    #[must_use]
    pub fn status(&self) -> Option<StatusCode> {
        self.response().map(ResponseHead::status)
    }

    /// [`status`](Self::status) as a number.
    #[must_use]
    pub fn status_code(&self) -> Option<u16> {
        self.status().map(|status| status.as_u16())
    }

    /// The headers of the response that caused this error (a status or
    /// content-type error): `Retry-After`, `WWW-Authenticate`, a request id…
    #[must_use]
    pub fn headers(&self) -> Option<&HeaderMap> {
        self.response().map(ResponseHead::headers)
    }

    /// What the response's `Retry-After` asks for (delay-seconds or an
    /// HTTP date, from now), when this is a status error that has one.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        self.response()?.retry_after()
    }

    /// A 503 or 429: the server asks to come back later.
    fn is_retryable_status(&self) -> bool {
        self.is_status()
            && self.status().is_some_and(|status| {
                status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS
            })
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

    /// A network error because the response was not valid HTTP: a
    /// malformed status line, header or chunk (the source reconnects, as a
    /// browser does).
    #[must_use]
    pub fn is_invalid_response(&self) -> bool {
        self.is_network() && self.causes().any(is_parse_error)
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

    /// After this error the source is closed and its stream ends (it also
    /// ends after any error when reconnecting is off).
    #[must_use]
    pub fn is_fatal(&self) -> bool {
        !(self.is_network() || self.is_ended() || self.is_json() || self.is_retryable_status())
    }

    /// The chain of causes below this error.
    fn causes(&self) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
        let first = std::error::Error::source(self);
        std::iter::successors(first, |&e| e.source())
    }
}

/// hyper's parse errors (a bad status line, header or head size) and the I/O errors its
/// decoder reports for a bad chunk or length.
fn is_parse_error(error: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(error) = error.downcast_ref::<hyper::Error>() {
        return error.is_parse() || error.is_parse_status();
    }
    error.downcast_ref::<std::io::Error>().is_some_and(|error| {
        matches!(
            error.kind(),
            std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput
        )
    })
}

impl fmt::Display for Error {
    /// The error's own message; what caused it is [`source`](std::error::Error::source).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.kind {
            Kind::Builder(message) => f.write_str(message),
            Kind::Status => {
                let status = self.status().unwrap_or_default();
                let reason = status.canonical_reason().unwrap_or("");
                write!(
                    f,
                    "unexpected status {} {reason} (an event stream needs 200 OK)",
                    status.as_u16()
                )
            }
            Kind::ContentType(Some(ct)) => write!(
                f,
                "unexpected content type `{ct}` (an event stream needs text/event-stream)"
            ),
            Kind::ContentType(None) => {
                f.write_str("no content type (an event stream needs text/event-stream)")
            }
            Kind::Network if self.is_invalid_response() => f.write_str("invalid HTTP response"),
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
        if let Some(response) = &self.inner.response {
            debug.field("response", response);
        }
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
    use reqwest::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
    use reqwest::Version;

    fn head(status: u16, headers: &[(reqwest::header::HeaderName, &'static str)]) -> ResponseHead {
        let headers = headers
            .iter()
            .map(|(name, value)| (name.clone(), HeaderValue::from_static(value)))
            .collect();
        ResponseHead::new(
            StatusCode::from_u16(status).unwrap(),
            Version::HTTP_11,
            headers,
        )
    }

    #[test]
    fn is_send_sync_and_one_word() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Error>();
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
    }

    #[test]
    fn messages_name_what_came_back() {
        let e = Error::bad_status(head(404, &[]));
        assert_eq!(e.status_code(), Some(404));
        assert!(e.to_string().contains("404 Not Found"), "{e}");
        assert!(e.is_fatal());
        let e = Error::bad_content_type(head(200, &[(CONTENT_TYPE, "text/html")]));
        assert_eq!(e.content_type_received(), Some("text/html"));
        assert!(e.to_string().contains("`text/html`"), "{e}");
        assert_eq!(e.status(), Some(StatusCode::OK));
        assert_eq!(e.headers().unwrap()[CONTENT_TYPE], "text/html");
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
    fn a_503_or_429_is_retried_after_its_retry_after() {
        for status in [503, 429] {
            let e = Error::bad_status(head(status, &[(RETRY_AFTER, "7")]));
            assert!(e.is_status() && !e.is_fatal(), "{e}");
            assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(7)));
        }
        let e = Error::bad_status(head(502, &[(RETRY_AFTER, "7")]));
        assert!(e.is_fatal(), "only 503 and 429 are retried");
        assert_eq!(Error::ended().retry_after(), None);
    }

    #[test]
    fn a_malformed_response_is_an_invalid_response() {
        let io = std::io::Error::new(std::io::ErrorKind::InvalidInput, "invalid chunk size");
        let e = Error::network(io);
        assert!(e.is_invalid_response() && e.is_network() && !e.is_fatal());
        assert_eq!(e.to_string(), "invalid HTTP response");
        let e = Error::network(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(!e.is_invalid_response());
    }

    #[test]
    fn errors_without_a_cause_have_no_source() {
        for error in [
            Error::ended(),
            Error::bad_status(head(502, &[])),
            Error::bad_content_type(head(200, &[])),
            Error::builder("no HTTP client", None),
        ] {
            assert!(error.source().is_none(), "{error:?}");
        }
    }
}
