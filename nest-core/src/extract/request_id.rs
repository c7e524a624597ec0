//! The request id: the client's `x-request-id` when it is a sane token, otherwise one nest makes.
//! It is on the request's tracing span, in the response's `x-request-id` header, and available
//! to handlers as an extractor.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use bytes::{BufMut, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};

use super::{FromRequest, RequestCtx};
use crate::response::HttpException;

/// The header that carries the id, on requests and responses.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest incoming id kept (longer ones are replaced).
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The id of one request (an extractor).
///
/// An incoming `x-request-id` of 1 to 128 characters from `A–Z a–z 0–9 - _ . : / + =` is kept (a
/// proxy or the client chose it); anything else is replaced by a new id (24 hex digits, unique
/// within the process, random across processes). Responses carry it in `x-request-id`, except
/// that an SSE response carries only an id the client sent (a generated one would cost each idle
/// stream ~330 bytes for the connection's life).
///
/// # Example
///
/// ```
/// use std::sync::Arc;
/// use nest_core::prelude::*;
/// use nest_core::extract::RequestId;
/// use tower::ServiceExt;
///
/// struct Echo;
/// impl Controller for Echo {
///     fn routes(r: &mut Routes<Self>) {
///         r.get("/", |_: Arc<Self>, id: RequestId| async move { id.as_str().to_owned() });
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let app = NestApp::new().controller(Echo).into_service().unwrap();
/// let req = http::Request::get("/").header("x-request-id", "abc-123").body(nest_core::body::Body::empty()).unwrap();
/// let res = app.clone().oneshot(req).await.unwrap();
/// assert_eq!(res.headers()["x-request-id"], "abc-123");
///
/// let req = http::Request::get("/").header("x-request-id", "no spaces please").body(nest_core::body::Body::empty()).unwrap();
/// let res = app.oneshot(req).await.unwrap();
/// assert_eq!(res.headers()["x-request-id"].len(), 24, "replaced by a new id");
/// # });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// The client's id if it is acceptable, else a new one.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Self {
        match headers.get(&X_REQUEST_ID) {
            Some(value) if acceptable(value.as_bytes()) => Self(value.clone()),
            _ => Self::new(),
        }
    }

    /// A new id: a random per-process prefix and a counter, 24 hex digits.
    pub fn new() -> Self {
        static PREFIX: OnceLock<u32> = OnceLock::new();
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let prefix = *PREFIX.get_or_init(|| {
            use std::hash::{BuildHasher, Hasher};
            std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish() as u32
        });
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let mut buf = BytesMut::with_capacity(24);
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for shift in (0..8).rev() {
            buf.put_u8(HEX[((prefix >> (shift * 4)) & 0xf) as usize]);
        }
        for shift in (0..16).rev() {
            buf.put_u8(HEX[((n >> (shift * 4)) & 0xf) as usize]);
        }
        // Hex digits are always a valid header value.
        Self(HeaderValue::from_maybe_shared(buf.freeze()).expect("hex digits"))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only acceptable ids and hex ids are ever held: both are ASCII.
        self.0.to_str().unwrap_or_default()
    }

    pub(crate) fn header_value(&self) -> HeaderValue {
        self.0.clone()
    }
}

impl Default for RequestId {
    fn default() -> Self {
        Self::new()
    }
}

fn acceptable(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(b))
}

impl FromRequest for RequestId {
    async fn from_request(req: &mut RequestCtx) -> Result<Self, HttpException> {
        Ok(req
            .parts()
            .extensions
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(|| RequestId::from_headers(req.headers())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sane_ids_are_kept() {
        for ok in ["a", "abc-123", "A.b_c:d/e+f=", &"x".repeat(128)] {
            assert!(acceptable(ok.as_bytes()), "{ok}");
        }
        for bad in ["", "has space", "ünï", "a\"b", "<script>", &"x".repeat(129)] {
            assert!(!acceptable(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn new_ids_are_unique_hex() {
        let (a, b) = (RequestId::new(), RequestId::new());
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 24);
        assert!(a.as_str().bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
