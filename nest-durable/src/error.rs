//! Errors: the crate's configuration and store error, and the protocol's answers to bad requests.

use std::fmt;

use http::{HeaderName, HeaderValue, StatusCode};
use nest_core::{HttpException, IntoResponse, Response};

/// An error of the crate: invalid configuration, or a store that cannot be reached.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ErrorKind {
    Config,
    Store,
}

impl Error {
    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Config,
            message: message.into(),
        }
    }

    #[cfg_attr(
        not(feature = "redis"),
        allow(dead_code, reason = "only the Redis store fails to connect")
    )]
    pub(crate) fn store(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Store,
            message: message.into(),
        }
    }

    /// Whether a setting is invalid (the message names it).
    pub fn is_config(&self) -> bool {
        self.kind == ErrorKind::Config
    }

    /// Whether the store could not be reached or answered something unexpected.
    pub fn is_store(&self) -> bool {
        self.kind == ErrorKind::Store
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// A protocol answer that is not a success: a status, a message naming the problem, and the
/// headers the protocol asks for (`Stream-Closed`, `Producer-Expected-Seq`, …).
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
    pub(crate) headers: Vec<(HeaderName, String)>,
}

impl Problem {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    pub(crate) fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "stream not found")
    }

    pub(crate) fn gone() -> Self {
        Self::new(
            StatusCode::GONE,
            "stream was deleted; its forks still read its data",
        )
    }

    pub(crate) fn header(mut self, name: &'static str, value: impl ToString) -> Self {
        self.headers
            .push((HeaderName::from_static(name), value.to_string()));
        self
    }

    #[cfg_attr(
        not(feature = "redis"),
        allow(dead_code, reason = "only the Redis store fails at run time")
    )]
    pub(crate) fn unavailable(err: impl fmt::Display) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the stream store is unavailable: {err}"),
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut exception = HttpException::with_message(self.status, self.message);
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                exception = exception.header(name, value);
            }
        }
        exception.into_response()
    }
}
