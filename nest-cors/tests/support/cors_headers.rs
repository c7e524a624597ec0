//! [`assert_cors`]: every CORS response header, and `Vary`, checked in one assertion.
//!
//! Works on any response whose header lines can be read ([`Headers`]): a response read off
//! the wire, a reqwest response, an `http` response. It needs only `http` and `reqwest`, so
//! the unit tests (`src/tests.rs`) and the workspace's `tests/cors.rs` include this file too.

#![allow(dead_code, unreachable_pub)] // each test crate uses part of it

use http::HeaderMap;

/// nest-cors's default `Access-Control-Allow-Methods` (npm `cors`'s).
pub const DEFAULT_METHODS: &str = "GET,HEAD,PUT,PATCH,POST,DELETE";

/// A response whose header lines can be read.
pub trait Headers {
    /// Every value of header `name`, one per line, in order.
    fn all(&self, name: &str) -> Vec<&str>;

    /// The value of header `name`; fails the test if it is sent more than once.
    #[track_caller]
    fn header(&self, name: &str) -> Option<&str> {
        let all = self.all(name);
        assert!(all.len() <= 1, "{name} sent {} times: {all:?}", all.len());
        all.first().copied()
    }
}

impl Headers for HeaderMap {
    fn all(&self, name: &str) -> Vec<&str> {
        self.get_all(name)
            .iter()
            .map(|value| value.to_str().expect("a visible-ASCII header value"))
            .collect()
    }
}

impl<B> Headers for http::Response<B> {
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers().all(name)
    }
}

impl Headers for reqwest::Response {
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers().all(name)
    }
}

/// The CORS headers a response should carry, and its `Vary`; whatever is not set here must
/// be absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CorsHeaders<'a> {
    pub allow_origin: Option<&'a str>,
    pub allow_credentials: bool,
    pub allow_methods: Option<&'a str>,
    pub allow_headers: Option<&'a str>,
    pub expose_headers: Option<&'a str>,
    pub max_age: Option<&'a str>,
    pub allow_private_network: bool,
    pub vary: Option<&'a str>,
}

impl<'a> CorsHeaders<'a> {
    /// No CORS header, no `Vary`: what a disallowed origin gets under a rule that does not
    /// vary, or what passes a disabled layer.
    pub fn none() -> Self {
        Self::default()
    }

    /// `Access-Control-Allow-Origin: origin`, and nothing else.
    pub fn allow(origin: &'a str) -> Self {
        Self {
            allow_origin: Some(origin),
            ..Self::default()
        }
    }

    /// An allowed preflight's answer under the default options: `origin`, the default methods
    /// and max-age 600; add `allow_headers` for echoed request headers.
    pub fn preflight(origin: &'a str) -> Self {
        Self::allow(origin).methods(DEFAULT_METHODS).max_age("600")
    }

    /// `Access-Control-Allow-Origin: origin` when `allowed`, else no CORS header.
    pub fn allow_if(allowed: bool, origin: &'a str) -> Self {
        Self {
            allow_origin: allowed.then_some(origin),
            ..Self::default()
        }
    }

    /// `Access-Control-Allow-Credentials: true`.
    pub fn credentials(self) -> Self {
        Self {
            allow_credentials: true,
            ..self
        }
    }

    /// `Access-Control-Allow-Methods: methods`.
    pub fn methods(self, methods: &'a str) -> Self {
        Self {
            allow_methods: Some(methods),
            ..self
        }
    }

    /// `Access-Control-Allow-Headers: headers`.
    pub fn allow_headers(self, headers: &'a str) -> Self {
        Self {
            allow_headers: Some(headers),
            ..self
        }
    }

    /// `Access-Control-Expose-Headers: headers`.
    pub fn expose(self, headers: &'a str) -> Self {
        Self {
            expose_headers: Some(headers),
            ..self
        }
    }

    /// `Access-Control-Max-Age: seconds`.
    pub fn max_age(self, seconds: &'a str) -> Self {
        Self {
            max_age: Some(seconds),
            ..self
        }
    }

    /// `Access-Control-Allow-Private-Network: true`.
    pub fn private_network(self) -> Self {
        Self {
            allow_private_network: true,
            ..self
        }
    }

    /// `Vary: names` (one line).
    pub fn vary(self, names: &'a str) -> Self {
        Self {
            vary: Some(names),
            ..self
        }
    }

    /// Reads them off a response; each header must be sent at most once.
    #[track_caller]
    pub fn of(res: &'a impl Headers) -> Self {
        Self {
            allow_origin: res.header("access-control-allow-origin"),
            allow_credentials: flag(res, "access-control-allow-credentials"),
            allow_methods: res.header("access-control-allow-methods"),
            allow_headers: res.header("access-control-allow-headers"),
            expose_headers: res.header("access-control-expose-headers"),
            max_age: res.header("access-control-max-age"),
            allow_private_network: flag(res, "access-control-allow-private-network"),
            vary: res.header("vary"),
        }
    }
}

/// A header that is either absent or `true`.
#[track_caller]
fn flag(res: &impl Headers, name: &str) -> bool {
    match res.header(name) {
        None => false,
        Some("true") => true,
        Some(other) => panic!("{name}: {other:?}, expected `true` or nothing"),
    }
}

/// Asserts that `res` carries exactly the CORS headers of `expected`, each once, and its `Vary`.
#[track_caller]
pub fn assert_cors(res: &impl Headers, expected: CorsHeaders<'_>) {
    assert_eq!(CorsHeaders::of(res), expected);
}
