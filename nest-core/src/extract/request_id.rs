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

    /// A new id: 24 hex digits, a random per-process prefix and a counter passed through a keyed
    /// permutation. Unique within the process (the permutation is one to one), random across
    /// processes, and the ids of consecutive requests look unrelated: they do not reveal how
    /// many requests the server answered.
    pub fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let keys = keys();
        let n = permute(&keys.rounds, NEXT.fetch_add(1, Ordering::Relaxed));
        let prefix = keys.prefix;
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

/// The process's keys for new ids, made once from the OS's randomness (through std's
/// `RandomState`, whose SipHash keys are random per process).
struct Keys {
    prefix: u32,
    rounds: std::collections::hash_map::RandomState,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        use std::hash::BuildHasher;
        let rounds = std::collections::hash_map::RandomState::new();
        Keys {
            prefix: rounds.hash_one(u64::MAX) as u32,
            rounds,
        }
    })
}

/// A keyed permutation of the 64-bit numbers: a four-round Feistel network on 32-bit halves
/// whose round function is SipHash under the process's keys (one to one by construction, and
/// without the keys the next output cannot be told from the last).
fn permute(keys: &std::collections::hash_map::RandomState, n: u64) -> u64 {
    use std::hash::BuildHasher;
    let (mut left, mut right) = ((n >> 32) as u32, n as u32);
    for round in 0..4u64 {
        let f = keys.hash_one((round << 32) | u64::from(right)) as u32;
        (left, right) = (right, left ^ f);
    }
    (u64::from(left) << 32) | u64::from(right)
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

    /// Consecutive ids differ in about half their bits, not in the last digit: the count of
    /// requests answered cannot be read off them. And the permutation is one to one.
    #[test]
    fn new_ids_do_not_count_requests() {
        let ids: Vec<RequestId> = (0..64).map(|_| RequestId::new()).collect();
        let counters: Vec<u64> = ids
            .iter()
            .map(|id| u64::from_str_radix(&id.as_str()[8..], 16).unwrap())
            .collect();
        let mut differing_bits = 0;
        for pair in counters.windows(2) {
            differing_bits += (pair[0] ^ pair[1]).count_ones();
        }
        let mean = f64::from(differing_bits) / 63.0;
        assert!((20.0..44.0).contains(&mean), "mean differing bits {mean}");
        let keys = keys();
        let outputs: std::collections::HashSet<u64> =
            (0..10_000).map(|n| permute(&keys.rounds, n)).collect();
        assert_eq!(outputs.len(), 10_000);
    }

    #[test]
    fn new_ids_are_unique_hex() {
        let (a, b) = (RequestId::new(), RequestId::new());
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 24);
        assert!(a.as_str().bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
