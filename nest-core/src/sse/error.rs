//! `SseError`: why an event was not written.

use std::fmt;

use super::end::EndReason;

/// Why `SseWriter::write` (or encoding) did not take an event. Nothing was written in any case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseError {
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    InvalidField {
        field: &'static str,
        reason: &'static str,
    },
    Json(String),
    Empty,
    Full,
    Closed(EndReason),
}

impl SseError {
    pub(crate) fn invalid_field(field: &'static str, reason: &'static str) -> Self {
        Self {
            kind: Kind::InvalidField { field, reason },
        }
    }

    pub(crate) fn json(message: String) -> Self {
        Self {
            kind: Kind::Json(message),
        }
    }

    pub(crate) fn empty() -> Self {
        Self { kind: Kind::Empty }
    }

    pub(crate) fn full() -> Self {
        Self { kind: Kind::Full }
    }

    pub(crate) fn closed(reason: EndReason) -> Self {
        Self {
            kind: Kind::Closed(reason),
        }
    }

    /// The field that would have broken the stream format (`"event"` or `"id"`), if that is the error.
    pub fn field(&self) -> Option<&'static str> {
        match self.kind {
            Kind::InvalidField { field, .. } => Some(field),
            _ => None,
        }
    }

    /// The JSON data did not serialize.
    pub fn is_json(&self) -> bool {
        matches!(self.kind, Kind::Json(_))
    }

    /// The event had no field at all.
    pub fn is_empty_event(&self) -> bool {
        matches!(self.kind, Kind::Empty)
    }

    /// The stream's buffer is full (a slow client) and its policy is to refuse new events.
    pub fn is_full(&self) -> bool {
        matches!(self.kind, Kind::Full)
    }

    /// The stream has ended; [`end_reason`](Self::end_reason) says why.
    pub fn is_closed(&self) -> bool {
        matches!(self.kind, Kind::Closed(_))
    }

    /// Why the stream ended, when the error is that it did.
    pub fn end_reason(&self) -> Option<EndReason> {
        match self.kind {
            Kind::Closed(reason) => Some(reason),
            _ => None,
        }
    }
}

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::InvalidField { field, reason } => {
                write!(f, "invalid SSE field `{field}`: {reason}")
            }
            Kind::Json(message) => write!(f, "SSE data did not serialize to JSON: {message}"),
            Kind::Empty => f.write_str("an SSE event needs at least one field"),
            Kind::Full => f.write_str(
                "the SSE stream's buffer is full (the client reads slower than events are written)",
            ),
            Kind::Closed(reason) => write!(f, "the SSE stream has ended: {reason}"),
        }
    }
}

impl std::error::Error for SseError {}
