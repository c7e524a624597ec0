//! [`AuthenticatorBuilder`]: every setting of an [`Authenticator`], checked by `build()`.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use nest_auth::{Authenticator, Key};
//!
//! let auth = Authenticator::builder()
//!     .key(Key::hmac("k1", &[7; 32]).unwrap())
//!     .audience("rooms")
//!     .grace(Duration::from_secs(5))
//!     .build()
//!     .unwrap();
//! assert_eq!(auth.grace(), Duration::from_secs(5));
//! let err = Authenticator::builder().key(Key::hmac("k1", &[7; 32]).unwrap()).audience("rooms").cookie("a b").build();
//! assert!(err.unwrap_err().is_config());
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Header, Validation};

use crate::authenticator::{Authenticator, Inner};
use crate::claims::{now_secs, Audience, WireClaims, WireTopics};
use crate::credentials::Sources;
use crate::error::{Error, Result};
use crate::keys::Key;
use crate::same_site::SameSite;

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
    /// says it came over HTTPS: it came over nest's own TLS listener (HTTP/1.1 or HTTP/2: the
    /// request carries `nest_core::server::TlsConnection`), its URI's scheme is `https`, or a
    /// proxy says so in `X-Forwarded-Proto` / `Forwarded`. [`SameSite::None`] always sets it.
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
