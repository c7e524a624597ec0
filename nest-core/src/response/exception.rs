//! `HttpException`: an HTTP error as a value, in the NestJS body shape.
//!
//! # Example
//!
//! ```
//! use nest_core::{HttpException, IntoResponse};
//! use http::StatusCode;
//!
//! let err = HttpException::forbidden("nope");
//! assert_eq!(err.status(), StatusCode::FORBIDDEN);
//! assert_eq!(err.body_json(), r#"{"statusCode":403,"message":"nope","error":"Forbidden"}"#);
//!
//! let err = HttpException::new(StatusCode::NOT_FOUND);
//! assert_eq!(err.body_json(), r#"{"statusCode":404,"message":"Not Found"}"#);
//! assert_eq!(err.into_response().status(), StatusCode::NOT_FOUND);
//! ```

use std::fmt;

use http::{header, HeaderName, HeaderValue, StatusCode};

use crate::response::{IntoResponse, Response};

/// An HTTP error that becomes a JSON response shaped like NestJS's (and deno_nest's):
/// `{"statusCode":403,"message":"nope","error":"Forbidden"}`, or `{"statusCode":404,"message":"Not Found"}`
/// when it carries no message of its own.
#[derive(Clone)]
pub struct HttpException {
    status: StatusCode,
    message: Option<String>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

macro_rules! constructors {
    ($($(#[$doc:meta])* $name:ident => $status:ident;)*) => {$(
        $(#[$doc])*
        pub fn $name(message: impl Into<String>) -> Self {
            Self::with_message(StatusCode::$status, message)
        }
    )*};
}

impl HttpException {
    /// An exception with a status and no message of its own (the body's message is the reason phrase).
    pub fn new(status: StatusCode) -> Self {
        Self {
            status,
            message: None,
            headers: Vec::new(),
        }
    }

    /// An exception with a status and a message.
    pub fn with_message(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: Some(message.into()),
            headers: Vec::new(),
        }
    }

    constructors! {
        /// 400 Bad Request.
        bad_request => BAD_REQUEST;
        /// 401 Unauthorized.
        unauthorized => UNAUTHORIZED;
        /// 403 Forbidden.
        forbidden => FORBIDDEN;
        /// 404 Not Found.
        not_found => NOT_FOUND;
        /// 405 Method Not Allowed.
        method_not_allowed => METHOD_NOT_ALLOWED;
        /// 409 Conflict.
        conflict => CONFLICT;
        /// 413 Payload Too Large.
        payload_too_large => PAYLOAD_TOO_LARGE;
        /// 415 Unsupported Media Type.
        unsupported_media_type => UNSUPPORTED_MEDIA_TYPE;
        /// 422 Unprocessable Entity.
        unprocessable_entity => UNPROCESSABLE_ENTITY;
        /// 429 Too Many Requests.
        too_many_requests => TOO_MANY_REQUESTS;
        /// 500 Internal Server Error.
        internal_server_error => INTERNAL_SERVER_ERROR;
        /// 503 Service Unavailable.
        service_unavailable => SERVICE_UNAVAILABLE;
    }

    /// Adds a header to the response this exception becomes (e.g. `Allow` on a 405).
    #[must_use]
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message: the one given, or the status's reason phrase.
    pub fn message(&self) -> &str {
        self.message
            .as_deref()
            .unwrap_or_else(|| reason(self.status))
    }

    /// The JSON body this exception is sent as.
    pub fn body_json(&self) -> String {
        #[derive(serde::Serialize)]
        struct Shape<'a> {
            #[serde(rename = "statusCode")]
            status_code: u16,
            message: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            error: Option<&'a str>,
        }
        let shape = Shape {
            status_code: self.status.as_u16(),
            message: self.message(),
            error: self.message.as_ref().map(|_| reason(self.status)),
        };
        serde_json::to_string(&shape).unwrap_or_default()
    }
}

fn reason(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("Error")
}

impl fmt::Debug for HttpException {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpException")
            .field("status", &self.status.as_u16())
            .field("message", &self.message())
            .finish()
    }
}

impl fmt::Display for HttpException {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message())
    }
}

impl std::error::Error for HttpException {}

impl IntoResponse for HttpException {
    fn into_response(self) -> Response {
        let mut res = Response::new(self.body_json().into());
        *res.status_mut() = self.status;
        res.headers_mut().insert(header::CONTENT_TYPE, super::JSON);
        for (name, value) in self.headers {
            res.headers_mut().append(name, value);
        }
        res
    }
}

impl From<http::Error> for HttpException {
    fn from(err: http::Error) -> Self {
        Self::internal_server_error(err.to_string())
    }
}
