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
use http::Uri;
use jsonwebtoken::errors::ErrorKind as JwtErrorKind;
use jsonwebtoken::{Header, Validation};

use crate::claims::{now_secs, Audience, Claims, Grant, WireClaims, WireTopics};
use crate::credentials::{self, Sources};
use crate::error::{Error, Kind, Result};
use crate::keys::Key;
use crate::same_site::SameSite;
use crate::token::Token;

/// Verifies and issues tokens; cheap to clone (the clones share everything). Register it as
/// app state (`NestApp::state`) for the [`Auth`](crate::Auth) extractor.
#[derive(Clone)]
pub struct Authenticator {
    pub(crate) inner: Arc<Inner>,
}

/// What every clone shares; set once by the builder.
pub(crate) struct Inner {
    pub(crate) keys: HashMap<String, (Key, Validation)>,
    pub(crate) signing: Option<String>,
    pub(crate) audience: String,
    pub(crate) issuer: Option<String>,
    pub(crate) sources: Sources,
    pub(crate) same_site: SameSite,
    pub(crate) secure: Option<bool>,
    pub(crate) realm: String,
    pub(crate) leeway: Duration,
    pub(crate) grace: Duration,
    pub(crate) reauth_retry: Duration,
    pub(crate) refresh_window: Duration,
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

impl Authenticator {
    /// The name of the cookie looked for by default.
    pub const DEFAULT_COOKIE: &'static str = "nest_token";

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
        let ends = claims.expires_at().checked_add(self.inner.leeway);
        if check_exp && ends.is_some_and(|ends| ends <= SystemTime::now()) {
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
            exp: now.saturating_add(ttl.as_secs()),
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
        Ok(Token::new(
            value,
            ttl,
            std::time::UNIX_EPOCH + Duration::from_secs(claims.exp),
        ))
    }

    /// Re-issues the request's token for the same subject, topics and lifetime, when it is
    /// valid in every way but `exp`, and expired no longer than the
    /// [`refresh_window`](crate::AuthenticatorBuilder::refresh_window) ago. What a page calls when
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

    /// `uri` as text, with the query parameter's token (when tokens are read from one)
    /// replaced by `REDACTED`: what an app's own access log should print. nest's own request
    /// spans and metrics carry the path and the route only, never the query.
    pub fn redact(&self, uri: &Uri) -> String {
        match &self.inner.sources.query {
            Some(name) => credentials::redact(uri, name),
            None => uri.to_string(),
        }
    }

    /// How long after `exp` an open stream still runs ([`AuthenticatorBuilder::grace`](crate::AuthenticatorBuilder::grace)).
    pub fn grace(&self) -> Duration {
        self.inner.grace
    }

    /// The `retry:` sent with the `reauth` event ([`AuthenticatorBuilder::reauth_retry`](crate::AuthenticatorBuilder::reauth_retry)).
    pub fn reauth_retry(&self) -> Duration {
        self.inner.reauth_retry
    }

    /// The realm of the `WWW-Authenticate` challenges.
    pub fn realm(&self) -> &str {
        &self.inner.realm
    }
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
