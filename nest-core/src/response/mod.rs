//! Turning handler results into HTTP responses.
//!
//! Anything a handler returns implements [`IntoResponse`]: text, JSON, status codes, headers,
//! raw bodies and streams, `Result<T, E>` where both sides do, and [`HttpException`].
//!
//! # Example
//!
//! ```
//! use http::{header, StatusCode};
//! use nest_core::{IntoResponse, Json};
//!
//! let res = "hello".into_response();
//! assert_eq!(res.headers()[header::CONTENT_TYPE], "text/plain; charset=utf-8");
//!
//! let res = (StatusCode::CREATED, Json(serde_json::json!({"id": 1}))).into_response();
//! assert_eq!(res.status(), StatusCode::CREATED);
//! assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
//! ```

mod exception;

pub use exception::HttpException;

use std::borrow::Cow;
use std::convert::Infallible;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::Serialize;

use crate::body::Body;

/// The response type of nest.
pub type Response = http::Response<Body>;

/// Converts a value into a [`Response`].
pub trait IntoResponse {
    /// Performs the conversion.
    fn into_response(self) -> Response;
}

/// The content types the responses here carry, checked once at compile time (`from_static`
/// at run time checks every byte on every response).
const TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
const OCTETS: HeaderValue = HeaderValue::from_static("application/octet-stream");
pub(crate) const JSON: HeaderValue = HeaderValue::from_static("application/json");
const HTML: HeaderValue = HeaderValue::from_static("text/html; charset=utf-8");

fn with_content_type(body: Body, content_type: HeaderValue) -> Response {
    let mut res = Response::new(body);
    res.headers_mut().insert(header::CONTENT_TYPE, content_type);
    res
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

impl IntoResponse for Body {
    fn into_response(self) -> Response {
        Response::new(self)
    }
}

impl IntoResponse for () {
    fn into_response(self) -> Response {
        Response::new(Body::empty())
    }
}

impl IntoResponse for Infallible {
    fn into_response(self) -> Response {
        match self {}
    }
}

impl IntoResponse for StatusCode {
    fn into_response(self) -> Response {
        let mut res = Response::new(Body::empty());
        *res.status_mut() = self;
        res
    }
}

impl IntoResponse for String {
    fn into_response(self) -> Response {
        with_content_type(self.into(), TEXT)
    }
}

impl IntoResponse for &'static str {
    fn into_response(self) -> Response {
        with_content_type(self.into(), TEXT)
    }
}

impl IntoResponse for Cow<'static, str> {
    fn into_response(self) -> Response {
        match self {
            Cow::Borrowed(s) => s.into_response(),
            Cow::Owned(s) => s.into_response(),
        }
    }
}

impl IntoResponse for Bytes {
    fn into_response(self) -> Response {
        with_content_type(self.into(), OCTETS)
    }
}

impl IntoResponse for Vec<u8> {
    fn into_response(self) -> Response {
        with_content_type(self.into(), OCTETS)
    }
}

impl IntoResponse for serde_json::Value {
    fn into_response(self) -> Response {
        Json(self).into_response()
    }
}

impl<T: IntoResponse, E: IntoResponse> IntoResponse for Result<T, E> {
    fn into_response(self) -> Response {
        match self {
            Ok(v) => v.into_response(),
            Err(e) => e.into_response(),
        }
    }
}

impl<T: IntoResponse> IntoResponse for (StatusCode, T) {
    fn into_response(self) -> Response {
        let mut res = self.1.into_response();
        *res.status_mut() = self.0;
        res
    }
}

impl<T: IntoResponse> IntoResponse for (HeaderMap, T) {
    fn into_response(self) -> Response {
        let mut res = self.1.into_response();
        res.headers_mut().extend(self.0);
        res
    }
}

impl<T: IntoResponse> IntoResponse for (StatusCode, HeaderMap, T) {
    fn into_response(self) -> Response {
        let mut res = (self.1, self.2).into_response();
        *res.status_mut() = self.0;
        res
    }
}

impl<T: IntoResponse, const N: usize> IntoResponse for ([(HeaderName, HeaderValue); N], T) {
    fn into_response(self) -> Response {
        let mut res = self.1.into_response();
        for (name, value) in self.0 {
            res.headers_mut().insert(name, value);
        }
        res
    }
}

/// A JSON body, as a response (any `Serialize`) or as an extractor (any `DeserializeOwned`,
/// see [`crate::extract`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(bytes) => with_content_type(bytes.into(), JSON),
            Err(err) => {
                HttpException::internal_server_error(format!("failed to serialize JSON: {err}"))
                    .into_response()
            }
        }
    }
}

/// An HTML body (`text/html; charset=utf-8`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Html<T>(pub T);

impl<T: Into<Body>> IntoResponse for Html<T> {
    fn into_response(self) -> Response {
        with_content_type(self.0.into(), HTML)
    }
}

/// A redirect: `Location` and a 3xx status (302 Found by default).
#[derive(Debug, Clone)]
pub struct Redirect {
    status: StatusCode,
    location: HeaderValue,
}

impl Redirect {
    /// A 302 Found redirect. An invalid location becomes a 500 when the response is built.
    pub fn to(location: &str) -> Result<Self, HttpException> {
        Self::with_status(location, StatusCode::FOUND)
    }

    /// A redirect with the given 3xx status.
    pub fn with_status(location: &str, status: StatusCode) -> Result<Self, HttpException> {
        if !status.is_redirection() {
            return Err(HttpException::internal_server_error(format!(
                "redirect status must be 3xx, got {status}"
            )));
        }
        let location = HeaderValue::try_from(location)
            .map_err(|_| HttpException::internal_server_error("invalid redirect location"))?;
        Ok(Self { status, location })
    }
}

impl IntoResponse for Redirect {
    fn into_response(self) -> Response {
        let mut res = self.status.into_response();
        res.headers_mut().insert(header::LOCATION, self.location);
        res
    }
}
