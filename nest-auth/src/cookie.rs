//! The token's cookie: `Set-Cookie` values that store and clear it, with `HttpOnly`, `SameSite`
//! and `Secure` over HTTPS.
//!
//! # Example
//!
//! ```
//! use nest_auth::{Authenticator, Grant, Key, SameSite};
//!
//! let auth = Authenticator::builder()
//!     .key(Key::hmac("k1", &[7; 32]).unwrap())
//!     .audience("rooms")
//!     .same_site(SameSite::Strict)
//!     .build()
//!     .unwrap();
//! let token = auth.issue(&Grant::new("ada")).unwrap();
//! let (parts, ()) = http::Request::get("https://rooms.example/login").body(()).unwrap().into_parts();
//! let cookie = auth.set_cookie(&token, &parts).unwrap();
//! let cookie = cookie.to_str().unwrap();
//! assert!(cookie.ends_with("; HttpOnly; SameSite=Strict; Secure"), "{cookie}");
//! ```

use http::request::Parts;
use http::HeaderValue;

use crate::authenticator::Authenticator;
use crate::error::{Error, Result};
use crate::same_site::SameSite;
use crate::token::Token;

impl Authenticator {
    /// The `Set-Cookie` value that stores `token` in the browser: `HttpOnly`, `Path=/`, the
    /// configured `SameSite`, `Secure` when configured so or, by default, when `request` came
    /// over HTTPS (its URI's scheme, nest's own TLS listener — `nest_core::server::TlsConnection`
    /// — or `X-Forwarded-Proto` / `Forwarded: proto=https`), and a
    /// `Max-Age` of the token's lifetime plus the refresh window: the browser still sends an
    /// expired token to the refresh endpoint (a cookie that died with its token could not be
    /// refreshed, and a page would have to sign in again).
    pub fn set_cookie(&self, token: &Token, request: &Parts) -> Result<HeaderValue> {
        let max_age = token.ttl().saturating_add(self.inner.refresh_window);
        self.cookie_header(token.as_str(), max_age.as_secs(), request)
    }

    /// The `Set-Cookie` value that removes the cookie (logout).
    pub fn clear_cookie(&self, request: &Parts) -> Result<HeaderValue> {
        self.cookie_header("", 0, request)
    }

    fn cookie_header(&self, value: &str, max_age: u64, request: &Parts) -> Result<HeaderValue> {
        let name = self.inner.sources.cookie.as_deref().ok_or_else(|| {
            Error::config("cookies are off (`no_cookie`): there is no cookie to set")
        })?;
        let same_site = match self.inner.same_site {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        };
        let secure = self.inner.secure.unwrap_or_else(|| over_https(request))
            || self.inner.same_site == SameSite::None;
        let mut cookie =
            format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite={same_site}");
        if secure {
            cookie.push_str("; Secure");
        }
        HeaderValue::try_from(cookie).map_err(|e| Error::config("invalid cookie").with_source(e))
    }
}

fn over_https(parts: &Parts) -> bool {
    let forwarded = |name: &str, needle: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains(needle))
    };
    parts.uri.scheme_str() == Some("https")
        || parts
            .extensions
            .get::<nest_core::server::TlsConnection>()
            .is_some()
        || forwarded("x-forwarded-proto", "https")
        || forwarded("forwarded", "proto=https")
}
