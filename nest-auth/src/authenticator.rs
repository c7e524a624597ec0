//! The [`Authenticator`]: the keys, the audience, where tokens are looked for; it verifies a
//! token, issues one, and writes its cookie.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use nest_auth::{Authenticator, Grant, Key, SameSite};
//!
//! // The defaults: the `Authorization: Bearer` header and the cookie `nest_token`.
//! let auth = Authenticator::builder()
//!     .key(Key::hmac("2026-12", &[7; 32]).unwrap())
//!     .audience("rooms")
//!     .build()
//!     .unwrap();
//!
//! // Customised: two keys (rotation), a query parameter for clients that can set neither a
//! // header nor a cookie, a strict cookie, and 5 s of grace for open streams.
//! let rotated = Authenticator::builder()
//!     .key(Key::hmac("2026-11", &[6; 32]).unwrap())
//!     .key(Key::hmac("2026-12", &[7; 32]).unwrap())
//!     .signing_key("2026-12")
//!     .audience("rooms")
//!     .query_parameter("access_token")
//!     .same_site(SameSite::Strict)
//!     .grace(Duration::from_secs(5))
//!     .build()
//!     .unwrap();
//! let token = rotated.issue(&Grant::new("ada").subscribe(["rooms/*"])).unwrap();
//! assert_eq!(rotated.verify(token.as_str()).unwrap().kid(), "2026-12");
//! assert!(auth.verify(token.as_str()).is_ok(), "same secret under the same kid");
//!
//! // Invalid configuration is an error naming the setting, never a panic.
//! let err = Authenticator::builder().key(Key::hmac("k", &[7; 32]).unwrap()).build().unwrap_err();
//! assert!(err.to_string().contains("audience"), "{err}");
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::request::Parts;
use http::{HeaderValue, Uri};
use jsonwebtoken::errors::ErrorKind as JwtErrorKind;
use jsonwebtoken::{Header, Validation};

use crate::claims::{now_secs, Audience, Claims, Grant, WireClaims, WireTopics};
use crate::credentials::{self, Sources};
use crate::error::{Error, Kind, Result};
use crate::keys::Key;

/// The cookie's `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SameSite {
    /// Sent on same-site requests only.
    Strict,
    /// Also sent on top-level navigations from other sites (default).
    #[default]
    Lax,
    /// Sent on cross-site requests too; needs `Secure`.
    None,
}

/// A signed token and when it expires. `Display` and `Debug` do not show it: use
/// [`as_str`](Self::as_str).
#[derive(Clone)]
pub struct Token {
    value: String,
    ttl: Duration,
    expires_at: SystemTime,
}

impl Token {
    /// The compact JWT (`header.payload.signature`).
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// When it expires.
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// How long it was issued for.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("value", &"REDACTED")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Verifies and issues tokens; cheap to clone (the clones share everything). Register it as
/// app state (`NestApp::state`) for the [`Auth`](crate::Auth) extractor.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    keys: HashMap<String, (Key, Validation)>,
    signing: Option<String>,
    audience: String,
    issuer: Option<String>,
    sources: Sources,
    same_site: SameSite,
    secure: Option<bool>,
    realm: String,
    leeway: Duration,
    grace: Duration,
    reauth_retry: Duration,
    refresh_window: Duration,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kids: Vec<_> = self.inner.keys.keys().collect();
        kids.sort();
        f.debug_struct("Authenticator")
            .field("kids", &kids)
            .field("signing", &self.inner.signing)
            .field("audience", &self.inner.audience)
            .field("sources", &self.inner.sources)
            .finish_non_exhaustive()
    }
}

/// Builds an [`Authenticator`]; [`build`](Self::build) checks everything.
#[derive(Debug)]
#[must_use]
pub struct AuthenticatorBuilder {
    keys: Vec<Key>,
    signing: Option<String>,
    audience: Option<String>,
    issuer: Option<String>,
    sources: Sources,
    same_site: SameSite,
    secure: Option<bool>,
    realm: String,
    leeway: Duration,
    grace: Duration,
    reauth_retry: Duration,
    refresh_window: Duration,
}

impl Authenticator {
    /// The name of the cookie looked for by default.
    pub const DEFAULT_COOKIE: &'static str = "nest_token";

    /// A builder with the defaults: tokens from the `Authorization: Bearer` header and the
    /// cookie [`DEFAULT_COOKIE`](Self::DEFAULT_COOKIE) (not the query string), no leeway on
    /// `exp`, no grace for open streams, a `reauth` retry of 1 s, a refresh window of 15
    /// minutes, realm `nest`, cookies `HttpOnly; SameSite=Lax`, `Secure` when the request came
    /// over HTTPS.
    pub fn builder() -> AuthenticatorBuilder {
        AuthenticatorBuilder {
            keys: Vec::new(),
            signing: None,
            audience: None,
            issuer: None,
            sources: Sources {
                header: true,
                cookie: Some(Self::DEFAULT_COOKIE.to_owned()),
                query: None,
            },
            same_site: SameSite::Lax,
            secure: None,
            realm: "nest".to_owned(),
            leeway: Duration::ZERO,
            grace: Duration::ZERO,
            reauth_retry: Duration::from_secs(1),
            refresh_window: Duration::from_secs(15 * 60),
        }
    }

    /// Verifies a compact JWT: its `kid` names a known key, its `alg` is that key's, the
    /// signature holds, `aud` is this audience (and `iss` this issuer when one is set), it has
    /// not expired, and its topic selectors parse. The error never contains the token.
    pub fn verify(&self, token: &str) -> Result<Claims> {
        self.verify_with(token, true)
            .map_err(|e| e.with_realm(&self.inner.realm))
    }

    fn verify_with(&self, token: &str, check_exp: bool) -> Result<Claims> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            Error::invalid("malformed token (or an algorithm nest does not accept, as `none`)")
        })?;
        let (key, validation) = match &header.kid {
            Some(kid) => self
                .inner
                .keys
                .get(kid)
                .ok_or_else(|| Error::invalid("the token's key id (kid) is unknown"))?,
            None if self.inner.keys.len() == 1 => self.inner.keys.values().next().expect("one key"),
            None => return Err(Error::invalid("the token names no key id (kid)")),
        };
        if header.alg != key.algorithm() {
            return Err(Error::invalid(
                "the token's algorithm is not its key's algorithm",
            ));
        }
        let data = if check_exp {
            jsonwebtoken::decode::<WireClaims>(token, key.decoding(), validation)
        } else {
            let mut validation = validation.clone();
            validation.validate_exp = false;
            jsonwebtoken::decode::<WireClaims>(token, key.decoding(), &validation)
        };
        let data = data.map_err(jwt_error)?;
        let claims = Claims::from_wire(data.claims, key.kid().to_owned())?;
        // RFC 7519 §4.1.4: valid only *before* `exp`. jsonwebtoken compares whole seconds and
        // still accepts a token during the second of its `exp`, when its streams have already
        // ended with `reauth`: the same instant decides both here.
        if check_exp && claims.expires_at() + self.inner.leeway <= SystemTime::now() {
            return Err(Error::new(Kind::Expired, "the token has expired"));
        }
        Ok(claims)
    }

    /// Finds the request's token (header, then cookie, then the query parameter when enabled)
    /// and verifies it. What the [`Auth`](crate::Auth) extractor calls.
    pub fn authenticate(&self, parts: &Parts) -> Result<Claims> {
        let token = credentials::find(parts, &self.inner.sources)
            .map_err(|e| e.with_realm(&self.inner.realm))?;
        self.verify(&token)
    }

    /// Signs a token for `grant` with the signing key.
    pub fn issue(&self, grant: &Grant) -> Result<Token> {
        grant.validate()?;
        let kid = self.inner.signing.as_deref().ok_or_else(|| {
            Error::config("no signing key: this authenticator only verifies (see `signing_key`)")
        })?;
        let (key, _) = &self.inner.keys[kid];
        let encoding = key.encoding().ok_or_else(|| {
            Error::config(format!(
                "key `{kid}` cannot sign (no private key or secret)"
            ))
        })?;
        let now = now_secs();
        let ttl = Duration::from_secs(grant.ttl.as_secs().max(1));
        let claims = WireClaims {
            sub: grant.subject.clone(),
            aud: Some(Audience::One(self.inner.audience.clone())),
            exp: now + ttl.as_secs(),
            iat: Some(now),
            iss: self.inner.issuer.clone(),
            topics: WireTopics {
                subscribe: grant.subscribe.clone(),
                publish: grant.publish.clone(),
            },
        };
        let mut header = Header::new(key.algorithm());
        header.kid = Some(kid.to_owned());
        let value = jsonwebtoken::encode(&header, &claims, encoding)
            .map_err(|e| Error::config(format!("key `{kid}` failed to sign")).with_source(e))?;
        Ok(Token {
            value,
            ttl,
            expires_at: std::time::UNIX_EPOCH + Duration::from_secs(claims.exp),
        })
    }

    /// Re-issues the request's token for the same subject, topics and lifetime, when it is
    /// valid in every way but `exp`, and expired no longer than the
    /// [`refresh_window`](AuthenticatorBuilder::refresh_window) ago. What a page calls when
    /// its stream ended with `reauth`. An app that can revoke rights checks them again before
    /// answering with the new cookie.
    pub fn refresh(&self, parts: &Parts) -> Result<(Claims, Token)> {
        let window = self.inner.refresh_window;
        let realm = &self.inner.realm;
        let token =
            credentials::find(parts, &self.inner.sources).map_err(|e| e.with_realm(realm))?;
        let claims = self
            .verify_with(&token, false)
            .map_err(|e| e.with_realm(realm))?;
        let expired_for = SystemTime::now()
            .duration_since(claims.expires_at())
            .unwrap_or(Duration::ZERO);
        if expired_for > window {
            return Err(
                Error::new(Kind::Expired, "the token expired too long ago to refresh")
                    .with_realm(realm),
            );
        }
        let token = self.issue(&claims.to_grant())?;
        Ok((claims, token))
    }

    /// The `Set-Cookie` value that stores `token` in the browser: `HttpOnly`, `Path=/`, the
    /// configured `SameSite`, `Secure` when configured so or, by default, when `request` came
    /// over HTTPS (its URI's scheme, `X-Forwarded-Proto` or `Forwarded: proto=https`), and a
    /// `Max-Age` of the token's lifetime plus the refresh window: the browser still sends an
    /// expired token to the refresh endpoint (a cookie that died with its token could not be
    /// refreshed, and a page would have to sign in again).
    pub fn set_cookie(&self, token: &Token, request: &Parts) -> Result<HeaderValue> {
        let max_age = token.ttl + self.inner.refresh_window;
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

    /// `uri` as text, with the query parameter's token (when tokens are read from one)
    /// replaced by `REDACTED`: what an app's own access log should print. nest's own request
    /// spans and metrics carry the path and the route only, never the query.
    pub fn redact(&self, uri: &Uri) -> String {
        match &self.inner.sources.query {
            Some(name) => credentials::redact(uri, name),
            None => uri.to_string(),
        }
    }

    /// How long after `exp` an open stream still runs ([`AuthenticatorBuilder::grace`]).
    pub fn grace(&self) -> Duration {
        self.inner.grace
    }

    /// The `retry:` sent with the `reauth` event ([`AuthenticatorBuilder::reauth_retry`]).
    pub fn reauth_retry(&self) -> Duration {
        self.inner.reauth_retry
    }

    /// The realm of the `WWW-Authenticate` challenges.
    pub fn realm(&self) -> &str {
        &self.inner.realm
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
        || forwarded("x-forwarded-proto", "https")
        || forwarded("forwarded", "proto=https")
}

fn jwt_error(err: jsonwebtoken::errors::Error) -> Error {
    let message = match err.kind() {
        JwtErrorKind::ExpiredSignature => {
            return Error::new(Kind::Expired, "the token has expired")
        }
        JwtErrorKind::InvalidSignature => "the token's signature is invalid",
        JwtErrorKind::InvalidAudience => "the token is for another audience",
        JwtErrorKind::InvalidIssuer => "the token is from another issuer",
        JwtErrorKind::ImmatureSignature => "the token is not valid yet",
        JwtErrorKind::InvalidAlgorithm => "the token's algorithm is not its key's algorithm",
        JwtErrorKind::MissingRequiredClaim(_) => "the token lacks a required claim (exp, aud)",
        _ => "malformed token",
    };
    Error::invalid(message)
}

impl AuthenticatorBuilder {
    /// Adds a key (see [`Key`]); each `kid` once. Several keys: rotation.
    pub fn key(mut self, key: Key) -> Self {
        self.keys.push(key);
        self
    }

    /// The key new tokens are signed with; by default the first key added that can sign.
    pub fn signing_key(mut self, kid: impl Into<String>) -> Self {
        self.signing = Some(kid.into());
        self
    }

    /// The audience (`aud`) tokens must be for, and issued tokens are for. Required.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// The issuer (`iss`) tokens must come from, and issued tokens carry; none by default.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The cookie tokens are read from and written to (default `nest_token`).
    pub fn cookie(mut self, name: impl Into<String>) -> Self {
        self.sources.cookie = Some(name.into());
        self
    }

    /// Tokens are not read from a cookie.
    pub fn no_cookie(mut self) -> Self {
        self.sources.cookie = None;
        self
    }

    /// Tokens are not read from the `Authorization` header.
    pub fn no_header(mut self) -> Self {
        self.sources.header = false;
        self
    }

    /// Opt-in: tokens are also read from this query parameter (for clients that can set
    /// neither a header nor a cookie). A query string ends up in access logs and browser
    /// history: nest never logs it, but proxies may; prefer the cookie.
    pub fn query_parameter(mut self, name: impl Into<String>) -> Self {
        self.sources.query = Some(name.into());
        self
    }

    /// The cookie's `SameSite` (default [`SameSite::Lax`]).
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = same_site;
        self
    }

    /// `Secure` on the cookie always (`true`) or never (`false`); by default when the request
    /// says it came over HTTPS: an HTTP/2 request's `:scheme`, or `X-Forwarded-Proto` /
    /// `Forwarded` from a proxy. nest's own TLS listener does not mark HTTP/1.1 requests, so
    /// an app that serves HTTPS itself sets `secure_cookie(true)`. [`SameSite::None`] always
    /// sets it.
    pub fn secure_cookie(mut self, secure: bool) -> Self {
        self.secure = Some(secure);
        self
    }

    /// The realm of the `WWW-Authenticate` challenges (default `nest`).
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// Clock skew allowed on `exp` when a token is verified (default none; whole seconds).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// How long after its token's `exp` an open stream still runs before it ends with
    /// `reauth` (default none).
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The `retry:` sent with the `reauth` event: how long the browser waits before it
    /// reconnects, time for the page to refresh its cookie (default 1 s).
    pub fn reauth_retry(mut self, retry: Duration) -> Self {
        self.reauth_retry = retry;
        self
    }

    /// How long after its expiry a token can still be [refreshed](Authenticator::refresh)
    /// (default 15 minutes); the cookie lives this much longer than its token. Zero: an
    /// expired token cannot be refreshed.
    pub fn refresh_window(mut self, window: Duration) -> Self {
        self.refresh_window = window;
        self
    }

    /// Checks the configuration: at least one key, each `kid` once, an audience, a signing key
    /// that exists and can sign (and whose pair matches), valid cookie and parameter names, a
    /// realm without quotes.
    pub fn build(self) -> Result<Authenticator> {
        if self.keys.is_empty() {
            return Err(Error::config("no key: add one with `key(Key::…)`"));
        }
        let audience = self
            .audience
            .filter(|a| !a.is_empty())
            .ok_or_else(|| Error::config("no audience: set one with `audience(…)`"))?;
        if let Some(name) = &self.sources.cookie {
            if name.is_empty() || !name.bytes().all(is_token_char) {
                return Err(Error::config(format!(
                    "cookie name `{name}` is not a token"
                )));
            }
        }
        if let Some(name) = &self.sources.query {
            if name.is_empty() || name.contains(['&', '=', '#', ' ']) {
                return Err(Error::config(format!(
                    "query parameter name `{name}` is invalid"
                )));
            }
        }
        if !self.sources.header && self.sources.cookie.is_none() && self.sources.query.is_none() {
            return Err(Error::config(
                "no source of tokens: header, cookie and query all off",
            ));
        }
        if self.realm.contains(['"', '\\']) || !self.realm.is_ascii() {
            return Err(Error::config("realm: ASCII without `\"` or `\\`"));
        }
        if self.same_site == SameSite::None && self.secure == Some(false) {
            return Err(Error::config(
                "SameSite=None needs Secure; drop `secure_cookie(false)`",
            ));
        }
        let signing = match self.signing {
            Some(kid) => match self.keys.iter().find(|k| k.kid() == kid) {
                Some(key) if key.can_sign() => Some(kid),
                Some(_) => return Err(Error::config(format!("signing key `{kid}` cannot sign"))),
                None => return Err(Error::config(format!("signing key `{kid}` was not added"))),
            },
            None => self
                .keys
                .iter()
                .find(|k| k.can_sign())
                .map(|k| k.kid().to_owned()),
        };
        let mut keys = HashMap::new();
        for key in self.keys {
            let mut validation = Validation::new(key.algorithm());
            validation.leeway = self.leeway.as_secs();
            validation.set_audience(&[&audience]);
            validation.set_required_spec_claims(&["exp", "aud", "sub"]);
            if let Some(issuer) = &self.issuer {
                validation.set_issuer(&[issuer]);
                validation.required_spec_claims.insert("iss".to_owned());
            }
            let kid = key.kid().to_owned();
            if keys.insert(kid.clone(), (key, validation)).is_some() {
                return Err(Error::config(format!("key id `{kid}` added twice")));
            }
        }
        let auth = Authenticator {
            inner: Arc::new(Inner {
                keys,
                signing,
                audience,
                issuer: self.issuer,
                sources: self.sources,
                same_site: self.same_site,
                secure: self.secure,
                realm: self.realm,
                leeway: Duration::from_secs(self.leeway.as_secs()),
                grace: self.grace,
                reauth_retry: self.reauth_retry,
                refresh_window: self.refresh_window,
            }),
        };
        auth.check_key_pairs()?;
        Ok(auth)
    }
}

impl Authenticator {
    /// Signs and verifies a probe with each key that can sign: a private key whose public key
    /// was mixed up is found now, not at the first login.
    fn check_key_pairs(&self) -> Result<()> {
        for (kid, (key, validation)) in &self.inner.keys {
            let Some(encoding) = key.encoding() else {
                continue;
            };
            let probe = WireClaims {
                sub: "probe".to_owned(),
                aud: Some(Audience::One(self.inner.audience.clone())),
                exp: now_secs() + 60,
                iat: None,
                iss: self.inner.issuer.clone(),
                topics: WireTopics::default(),
            };
            let token = jsonwebtoken::encode(&Header::new(key.algorithm()), &probe, encoding)
                .map_err(|e| Error::config(format!("key `{kid}` cannot sign")).with_source(e))?;
            jsonwebtoken::decode::<WireClaims>(&token, key.decoding(), validation).map_err(
                |e| {
                    Error::config(format!(
                        "key `{kid}`: the private and public keys do not match"
                    ))
                    .with_source(e)
                },
            )?;
        }
        Ok(())
    }
}

/// RFC 6265's cookie-name: an RFC 7230 token.
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
