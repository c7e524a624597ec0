//! The resumable streams' error: opaque, with predicates and the HTTP status an app answers with.

use std::fmt;

use http::StatusCode;

use crate::HubError;
use nest_core::HttpException;

/// Why a resumable stream could not be started, resumed or written to.
///
/// [`status`](Self::status) is the answer it stands for (unknown id → 404, expired → 410), and
/// it converts into an [`HttpException`] with that status, so a handler can use `?`.
///
/// # Example
///
/// ```
/// use nest_hub::Hub;
/// use nest_hub::resumable::Resumable;
/// use nest_core::sse::LastEventId;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let streams = Resumable::new(Hub::new());
/// let err = streams.resume(&LastEventId(Some("nope:1-1".into()))).await.unwrap_err();
/// assert!(err.is_unknown());
/// assert_eq!(err.status(), http::StatusCode::NOT_FOUND);
/// # });
/// ```
pub struct ResumableError(Box<Inner>);

struct Inner {
    kind: Kind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Unknown,
    Expired,
    Exists,
    InvalidId,
    Hub,
    /// This instance holds `max_streams` streams.
    Busy,
    /// The caller's owner holds `max_streams_per_owner` streams on this instance.
    OwnerLimit,
}

impl ResumableError {
    pub(super) fn unknown(id: &str) -> Self {
        Self::new(Kind::Unknown, format!("no resumable stream `{id}`"), None)
    }

    pub(super) fn expired(id: &str) -> Self {
        Self::new(
            Kind::Expired,
            format!("the resumable stream `{id}` has expired"),
            None,
        )
    }

    pub(super) fn exists(id: &str) -> Self {
        Self::new(
            Kind::Exists,
            format!("a resumable stream `{id}` already exists"),
            None,
        )
    }

    pub(super) fn invalid_id(why: &str) -> Self {
        Self::new(Kind::InvalidId, format!("invalid stream id: {why}"), None)
    }

    pub(super) fn busy(limit: usize) -> Self {
        Self::new(
            Kind::Busy,
            format!("this server holds its most resumable streams ({limit}); try again later"),
            None,
        )
    }

    pub(super) fn owner_limit(limit: usize) -> Self {
        Self::new(
            Kind::OwnerLimit,
            format!("too many resumable streams for this caller (at most {limit} at once)"),
            None,
        )
    }

    pub(super) fn hub(err: HubError) -> Self {
        Self::new(Kind::Hub, "the hub failed".to_owned(), Some(Box::new(err)))
    }

    fn new(
        kind: Kind,
        message: String,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self(Box::new(Inner {
            kind,
            message,
            source,
        }))
    }

    /// No stream has this id (never started, or forgotten after its expiry). 404.
    pub fn is_unknown(&self) -> bool {
        self.0.kind == Kind::Unknown
    }

    /// The stream finished longer ago than `ResumableOptions::ttl`. 410.
    pub fn is_expired(&self) -> bool {
        self.0.kind == Kind::Expired
    }

    /// A stream with this id was already started. 409.
    pub fn is_exists(&self) -> bool {
        self.0.kind == Kind::Exists
    }

    /// The stream id or the `Last-Event-ID` cannot name a stream position. 400.
    pub fn is_invalid_id(&self) -> bool {
        self.0.kind == Kind::InvalidId
    }

    /// The hub failed (the source is its [`HubError`]). 503.
    pub fn is_hub(&self) -> bool {
        self.0.kind == Kind::Hub
    }

    /// A stream could not start: this instance holds
    /// [`max_streams`](super::ResumableOptions::max_streams) streams (503), or the caller's owner
    /// holds [`max_streams_per_owner`](super::ResumableOptions::max_streams_per_owner) (429).
    pub fn is_limited(&self) -> bool {
        matches!(self.0.kind, Kind::Busy | Kind::OwnerLimit)
    }

    /// The HTTP status this error stands for.
    pub fn status(&self) -> StatusCode {
        match self.0.kind {
            Kind::Unknown => StatusCode::NOT_FOUND,
            Kind::Expired => StatusCode::GONE,
            Kind::Exists => StatusCode::CONFLICT,
            Kind::InvalidId => StatusCode::BAD_REQUEST,
            Kind::Hub | Kind::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Kind::OwnerLimit => StatusCode::TOO_MANY_REQUESTS,
        }
    }
}

impl fmt::Debug for ResumableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResumableError")
            .field("kind", &self.0.kind)
            .field("message", &self.0.message)
            .field("source", &self.0.source)
            .finish()
    }
}

impl fmt::Display for ResumableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl std::error::Error for ResumableError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source.as_deref().map(|e| e as _)
    }
}

impl From<ResumableError> for HttpException {
    fn from(err: ResumableError) -> Self {
        HttpException::with_message(err.status(), err.to_string())
    }
}
