//! JSON-RPC errors with the HTTP status the transport answers them with.

use http::StatusCode;
use nest_core::{IntoResponse, Json, Response};
use serde_json::{json, Value};

/// Invalid JSON was received (`-32700`).
pub const PARSE_ERROR: i64 = -32700;
/// The JSON sent is not a valid request object (`-32600`).
pub const INVALID_REQUEST: i64 = -32600;
/// The method does not exist or is not available (`-32601`).
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Invalid method parameters (`-32602`), also a tampered `requestState`.
pub const INVALID_PARAMS: i64 = -32602;
/// Internal JSON-RPC error (`-32603`).
pub const INTERNAL_ERROR: i64 = -32603;
/// HTTP headers do not match the body, or a required header is missing (`-32020`, 2026-07-28).
pub const HEADER_MISMATCH: i64 = -32020;
/// The request needs a capability the client did not declare (`-32021`, 2026-07-28).
pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i64 = -32021;
/// The request's protocol version is not one the server speaks (`-32022`, 2026-07-28).
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// A JSON-RPC error and the HTTP status of the response that carries it.
///
/// ```
/// use nest_mcp::RpcError;
/// let e = RpcError::method_not_found("tools/lsit");
/// assert_eq!((e.code(), e.status().as_u16()), (-32601, 404));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    code: i64,
    message: String,
    data: Option<Value>,
    status: StatusCode,
}

impl RpcError {
    /// An error with `code` and `message`, answered with HTTP 200 (a JSON-RPC error in a
    /// successful HTTP exchange, as for an unknown tool).
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
            status: StatusCode::OK,
        }
    }

    /// `-32700`, HTTP 400: the body is not JSON.
    pub fn parse_error() -> Self {
        Self::new(PARSE_ERROR, "Parse error").with_status(StatusCode::BAD_REQUEST)
    }

    /// `-32600`, HTTP 400: the body is JSON but not a JSON-RPC request.
    pub fn invalid_request(why: impl Into<String>) -> Self {
        Self::new(INVALID_REQUEST, why).with_status(StatusCode::BAD_REQUEST)
    }

    /// `-32601`, HTTP 404 (as 2026-07-28 requires for a method the server does not implement).
    pub fn method_not_found(method: &str) -> Self {
        Self::new(METHOD_NOT_FOUND, format!("Method not found: {method}"))
            .with_status(StatusCode::NOT_FOUND)
    }

    /// `-32602`, HTTP 200: parameters the method cannot use (an unknown tool, a missing argument).
    pub fn invalid_params(why: impl Into<String>) -> Self {
        Self::new(INVALID_PARAMS, why)
    }

    /// `-32020`, HTTP 400: a header disagrees with the body, or a required one is missing.
    pub fn header_mismatch(why: impl Into<String>) -> Self {
        Self::new(HEADER_MISMATCH, why).with_status(StatusCode::BAD_REQUEST)
    }

    /// `-32021`, HTTP 400: the request needs client capability `name` (e.g. `"sampling"`),
    /// which the client did not declare; `data.requiredCapabilities` names it.
    pub fn missing_capability(name: &str) -> Self {
        Self::new(
            MISSING_REQUIRED_CLIENT_CAPABILITY,
            format!("Missing required client capability: {name}"),
        )
        .with_data(json!({ "requiredCapabilities": { name: {} } }))
        .with_status(StatusCode::BAD_REQUEST)
    }

    /// `-32022`, HTTP 400: version `requested` is not spoken here; `data` lists `supported`.
    pub fn unsupported_version(requested: &str, supported: &[&str]) -> Self {
        Self::new(
            UNSUPPORTED_PROTOCOL_VERSION,
            format!("Unsupported protocol version: {requested}"),
        )
        .with_data(json!({ "supported": supported, "requested": requested }))
        .with_status(StatusCode::BAD_REQUEST)
    }

    /// `-32603`, HTTP 200: the server failed.
    pub fn internal(why: impl Into<String>) -> Self {
        Self::new(INTERNAL_ERROR, why)
    }

    /// The same error with `data`.
    #[must_use]
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// The same error answered with HTTP `status`.
    #[must_use]
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// The JSON-RPC error code.
    pub fn code(&self) -> i64 {
        self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status of the response that carries the error.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The JSON-RPC error response for request `id` (`null` when unknown).
    pub fn to_message(&self, id: &Value) -> Value {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(data) = &self.data {
            error["data"] = data.clone();
        }
        json!({ "jsonrpc": "2.0", "id": id, "error": error })
    }

    /// The HTTP response for request `id`.
    pub fn into_response_for(self, id: &Value) -> Response {
        (self.status, Json(self.to_message(id))).into_response()
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for RpcError {}
