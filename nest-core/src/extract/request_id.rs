//! The request id: the client's `x-request-id` when it is a sane token, otherwise one nest makes.
//! It is on the request's tracing span, in the response's `x-request-id` header, and available
//! to handlers as an extractor.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

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
#[derive(Clone)]
pub struct RequestId(Repr);

/// The client's header value, or the digits of a new id (inline: a new id costs no allocation
/// until it is written on the response).
#[derive(Clone)]
enum Repr {
    Client(HeaderValue),
    Made([u8; 24]),
}

impl PartialEq for RequestId {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for RequestId {}

impl std::fmt::Debug for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RequestId").field(&self.as_str()).finish()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl RequestId {
    /// The client's id if it is acceptable, else a new one.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Self {
        Self::from_client(headers, None).0
    }

    /// The client's id if it is acceptable (and `true`), else a new one (and `false`): the next
    /// of `conn`'s ids for a request of a connection.
    pub(crate) fn from_client(headers: &HeaderMap, conn: Option<&ConnIds>) -> (Self, bool) {
        match find_header(headers, &X_REQUEST_ID) {
            Some(value) if acceptable(value.as_bytes()) => {
                (Self(Repr::Client(value.clone())), true)
            }
            _ => (conn.map_or_else(Self::new, ConnIds::next), false),
        }
    }

    /// A new id: 24 hex digits, the first 16 a counter passed through a keyed permutation. Unique
    /// within the process (the permutation is one to one), random across processes, and the ids
    /// of consecutive requests look unrelated: they do not reveal how many requests the server
    /// answered. (The requests of one connection share the 16 digits, and their last 8 count
    /// them: the client learns how many requests it sent on its own connection, nothing else.)
    pub fn new() -> Self {
        ConnIds::default().next()
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only acceptable ids and hex ids are ever held: both are ASCII.
        match &self.0 {
            Repr::Client(value) => value.to_str().unwrap_or_default(),
            Repr::Made(digits) => std::str::from_utf8(digits).unwrap_or_default(),
        }
    }

    pub(crate) fn header_value(&self) -> HeaderValue {
        match &self.0 {
            Repr::Client(value) => value.clone(),
            // Hex digits are always a valid header value.
            Repr::Made(digits) => HeaderValue::from_bytes(digits).expect("hex digits"),
        }
    }
}

impl Default for RequestId {
    fn default() -> Self {
        Self::new()
    }
}

/// The ids of one connection's requests: a number drawn for the connection, through the keyed
/// permutation (16 digits, made at its first request), then the request's number on the
/// connection (8 digits). So a request pays the permutation (~400 instructions) once per
/// connection, and what a client can tell from the ids it gets is how many requests it sent on
/// its own connection.
#[derive(Default)]
pub(crate) struct ConnIds(Cell<Option<([u8; 16], u32)>>);

impl ConnIds {
    /// The connection's next id (a new number for the connection after 2³² requests).
    pub(crate) fn next(&self) -> RequestId {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let (conn, n) = match self.0.get() {
            Some((conn, n)) if n < u32::MAX => (conn, n + 1),
            _ => {
                let drawn = permute(keys(), NEXT.fetch_add(1, Ordering::Relaxed));
                let mut conn = [0u8; 16];
                conn[..8].copy_from_slice(&hex8((drawn >> 32) as u32));
                conn[8..].copy_from_slice(&hex8(drawn as u32));
                (conn, 0)
            }
        };
        self.0.set(Some((conn, n)));
        let mut digits = [0u8; 24];
        digits[..16].copy_from_slice(&conn);
        digits[16..].copy_from_slice(&hex8(n));
        RequestId(Repr::Made(digits))
    }
}

/// The permutation's round key (SipHash's two 64-bit keys), made once from the OS's randomness
/// (through std's `RandomState`, whose SipHash keys are random per process).
fn keys() -> (u64, u64) {
    static KEYS: OnceLock<(u64, u64)> = OnceLock::new();
    *KEYS.get_or_init(|| {
        use std::hash::BuildHasher;
        let random = std::collections::hash_map::RandomState::new();
        (random.hash_one(0u64), random.hash_one(1u64))
    })
}

/// The 8 lowercase hex digits of `value`, most significant first, made in one word without a
/// loop or a table (a digit at a time cost ~150 instructions per id).
fn hex8(value: u32) -> [u8; 8] {
    // Each nibble to a byte of its own, the lowest nibble in the lowest byte (the two parts
    // of each step have no bit in common: `+` is `|`).
    let mut v = u64::from(value);
    v = ((v & 0xffff_0000) << 16) + (v & 0xffff);
    v = ((v & 0x0000_ff00_0000_ff00) << 8) + (v & 0x0000_00ff_0000_00ff);
    v = ((v & 0x00f0_00f0_00f0_00f0) << 4) + (v & 0x000f_000f_000f_000f);
    // '0' + n, and 'a' - '0' - 10 more where n > 9 (n + 6 carries into the byte's bit 4).
    let letters = ((v + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
    (v + 0x3030_3030_3030_3030 + letters * 0x27).to_be_bytes()
}

/// A keyed permutation of the 64-bit numbers: a four-round Feistel network on 32-bit halves
/// whose round function is SipHash-1-3 under the process's keys (one to one by construction, and
/// without the keys the next output cannot be told from the last).
fn permute(keys: (u64, u64), n: u64) -> u64 {
    // (`+` joins halves that share no bit.)
    let (mut left, mut right) = ((n >> 32) as u32, n as u32);
    for round in 0..4u64 {
        let f = siphash::<1, 3>(keys, (round << 32) + u64::from(right)) as u32;
        (left, right) = (right, left ^ f);
    }
    (u64::from(left) << 32) + u64::from(right)
}

/// SipHash-C-D of one 8-byte message (`m`, little-endian), as `std`'s hashers compute it for a
/// `write_u64`, without their buffering: the request path hashes four of these per new id.
fn siphash<const C: usize, const D: usize>((k0, k1): (u64, u64), m: u64) -> u64 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }
    // The message, then the last block: the length (8) in the top byte, no tail bytes.
    for block in [m, 8 << 56] {
        v[3] ^= block;
        for _ in 0..C {
            round(&mut v);
        }
        v[0] ^= block;
    }
    v[2] ^= 0xff;
    for _ in 0..D {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// `headers.get(name)`, without hashing `name` when the map is small (a custom name's hash is
/// ~100 instructions, more than comparing it to a few names): a request's or a response's
/// headers, where nest looks for `x-request-id` and a content type on every request.
pub(crate) fn find_header<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> Option<&'a HeaderValue> {
    if headers.len() > 8 {
        return headers.get(name);
    }
    headers
        .iter()
        .find(|(each, _)| *each == name)
        .map(|(_, value)| value)
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
            .request_id()
            .or_else(|| req.parts().extensions.get::<RequestId>())
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
            .map(|id| u64::from_str_radix(&id.as_str()[..16], 16).unwrap())
            .collect();
        assert!(ids.iter().all(|id| id.as_str().ends_with("00000000")));
        let mut differing_bits = 0;
        for pair in counters.windows(2) {
            differing_bits += (pair[0] ^ pair[1]).count_ones();
        }
        let mean = f64::from(differing_bits) / 63.0;
        assert!((20.0..44.0).contains(&mean), "mean differing bits {mean}");
        let outputs: std::collections::HashSet<u64> =
            (0..10_000).map(|n| permute(keys(), n)).collect();
        assert_eq!(outputs.len(), 10_000);
    }

    /// The permutation is the Feistel network it says: undone round by round (each round with
    /// its own number), it gives back its input, high half included.
    #[test]
    fn the_permutation_is_undone_by_its_rounds_backwards() {
        let keys = keys();
        let unpermute = |out: u64| {
            let (mut left, mut right) = ((out >> 32) as u32, out as u32);
            for round in (0..4u64).rev() {
                let f = siphash::<1, 3>(keys, (round << 32) | u64::from(left)) as u32;
                (left, right) = (right ^ f, left);
            }
            (u64::from(left) << 32) | u64::from(right)
        };
        for n in [
            0,
            1,
            1 << 32,
            (7 << 32) | 9,
            u64::MAX,
            0x0123_4567_89ab_cdef,
        ] {
            assert_eq!(unpermute(permute(keys, n)), n, "{n:#x}");
        }
        // Each round has its own number: the same network with one number for all differs.
        let same_rounds = |n: u64| {
            let (mut left, mut right) = ((n >> 32) as u32, n as u32);
            for _ in 0..4 {
                let f = siphash::<1, 3>(keys, u64::from(right)) as u32;
                (left, right) = (right, left ^ f);
            }
            (u64::from(left) << 32) | u64::from(right)
        };
        assert_ne!(permute(keys, 42), same_rounds(42));
    }

    /// The round function is SipHash: the same code with SipHash-2-4's rounds gives what
    /// `std`'s (deprecated, stable) `SipHasher` gives for one `u64`.
    #[test]
    fn the_round_function_is_siphash() {
        #[allow(deprecated)]
        fn std_sip24(k0: u64, k1: u64, m: u64) -> u64 {
            use std::hash::Hasher;
            let mut h = std::hash::SipHasher::new_with_keys(k0, k1);
            h.write_u64(m);
            h.finish()
        }
        for (k0, k1, m) in [
            (0, 0, 0),
            (1, 2, 3),
            (u64::MAX, 7, 1 << 40),
            (0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908, 42),
        ] {
            assert_eq!(
                siphash::<2, 4>((k0, k1), m),
                std_sip24(k0, k1, m),
                "{k0} {k1} {m}"
            );
        }
    }

    #[test]
    fn hex_digits_are_format_s() {
        let mut x = 0x9e37_79b9u32;
        for value in [0, 1, 9, 10, 15, 16, 0x1234_abcd, 0xa0b0_c0d0, u32::MAX]
            .into_iter()
            .chain((0..1_000).map(|_| {
                x = x.wrapping_mul(0x0019_660d).wrapping_add(0x3c6e_f35f);
                x
            }))
        {
            assert_eq!(hex8(value), format!("{value:08x}").as_bytes(), "{value:#x}");
        }
    }

    /// A handler's extractor gets the request's id: the client's, or the one made for the
    /// request (the response's); a request served by hand, without the app's id, gets the
    /// client's from its headers.
    #[tokio::test]
    async fn the_extractor_gets_the_request_s_id() {
        use crate::prelude::*;
        use tower::ServiceExt;
        struct Echo;
        impl Controller for Echo {
            fn routes(r: &mut Routes<Self>) {
                r.get("/", |_: std::sync::Arc<Self>, id: RequestId| async move {
                    id.as_str().to_owned()
                });
            }
        }
        let app = NestApp::new().controller(Echo).into_service().unwrap();
        for sent in [Some("abc-123"), None, Some("no spaces")] {
            let mut req = http::Request::get("/");
            if let Some(sent) = sent {
                req = req.header("x-request-id", sent);
            }
            let req = req.body(crate::body::Body::empty()).unwrap();
            let res = app.clone().oneshot(req).await.unwrap();
            let header = res.headers()["x-request-id"].to_str().unwrap().to_owned();
            let body = http_body_util::BodyExt::collect(res.into_body())
                .await
                .unwrap();
            assert_eq!(body.to_bytes(), header.as_bytes(), "{sent:?}");
            if sent != Some("abc-123") {
                assert_eq!(header.len(), 24, "a new id, not {sent:?}");
            }
        }
        let req = http::Request::get("/")
            .header("x-request-id", "by-hand")
            .body(crate::body::Body::empty())
            .unwrap();
        let id = RequestId::from_request(&mut RequestCtx::for_test(req))
            .await
            .unwrap();
        assert_eq!(id.as_str(), "by-hand");
    }

    /// A connection's ids share their first 16 digits and count its requests in the last 8;
    /// another connection's differ in the first 16; after 2³² requests a connection draws anew.
    #[test]
    fn a_connections_ids_count_its_own_requests() {
        let (one, other) = (ConnIds::default(), ConnIds::default());
        let ids: Vec<RequestId> = (0..3).map(|_| one.next()).collect();
        let (head, _) = ids[0].as_str().split_at(16);
        for (n, id) in ids.iter().enumerate() {
            assert_eq!(id.as_str(), format!("{head}{n:08x}"));
        }
        assert_ne!(&other.next().as_str()[..16], head);
        let (conn, _) = one.0.get().unwrap();
        one.0.set(Some((conn, u32::MAX)));
        let drawn = one.next();
        assert_ne!(&drawn.as_str()[..16], head);
        assert!(drawn.as_str().ends_with("00000000"));
        let (headers, pair) = (HeaderMap::new(), ConnIds::default());
        let (first, from_client) = RequestId::from_client(&headers, Some(&pair));
        assert!(!from_client);
        assert!(first.as_str().ends_with("00000000"));
        let second = RequestId::from_client(&headers, Some(&pair)).0;
        assert_eq!(
            second.as_str(),
            format!("{}00000001", &first.as_str()[..16])
        );
    }

    #[test]
    fn new_ids_are_unique_hex() {
        let (a, b) = (RequestId::new(), RequestId::new());
        assert_eq!(a, a.clone());
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 24);
        assert!(a.as_str().bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
