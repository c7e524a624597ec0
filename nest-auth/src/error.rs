//! The crate's one error: why a request was refused (401, 403), or why a configuration is
//! invalid, with `is_*` predicates and the HTTP answer it becomes.
//!
//! # Example
//!
//! ```
//! use nest_auth::Authenticator;
//! use nest_core::IntoResponse;
//!
//! let err = Authenticator::builder().build().unwrap_err(); // no key
//! assert!(err.is_config());
//! assert!(err.to_string().contains("key"), "{err}");
//!
//! # let auth = Authenticator::builder()
//! #     .key(nest_auth::Key::hmac("k1", &[7; 32]).unwrap())
//! #     .audience("rooms")
//! #     .build()
//! #     .unwrap();
//! let err = auth.verify("not.a.token").unwrap_err();
//! assert!(err.is_invalid() && !err.is_expired());
//! let res = nest_core::HttpException::from(err).into_response();
//! assert_eq!(res.status(), 401);
//! assert!(res.headers()["www-authenticate"].to_str().unwrap().contains(r#"error="invalid_token""#));
//! ```

use std::fmt;

use http::{header, HeaderValue, StatusCode};
use nest_core::HttpException;

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a request was refused, or why a configuration is invalid.
///
/// `Display` is the error's own message; it never contains the token. Turned into an
/// [`HttpException`] (`From`), it answers:
///
/// | predicate | status | `WWW-Authenticate` |
/// |---|---|---|
/// | [`is_missing`](Self::is_missing) | 401 | `Bearer realm="…"` |
/// | [`is_invalid`](Self::is_invalid) (also [`is_expired`](Self::is_expired)) | 401 | `Bearer realm="…", error="invalid_token", error_description="…"` |
/// | [`is_forbidden`](Self::is_forbidden) | 403 | `Bearer realm="…", error="insufficient_scope"` |
/// | [`is_hub`](Self::is_hub) | 503 | |
/// | [`is_config`](Self::is_config) | 500 | |
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: Kind,
    message: String,
    realm: Option<String>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Missing,
    Invalid,
    Expired,
    Forbidden,
    Hub,
    Config,
}

impl Error {
    pub(crate) fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                realm: None,
                source: None,
            }),
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::new(Kind::Config, message)
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(Kind::Invalid, message)
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(Kind::Forbidden, message)
    }

    pub(crate) fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        self.inner.source = Some(Box::new(source));
        self
    }

    pub(crate) fn with_realm(mut self, realm: &str) -> Self {
        self.inner.realm = Some(realm.to_owned());
        self
    }

    /// No credentials were sent (no `Authorization`, no cookie, no query parameter).
    pub fn is_missing(&self) -> bool {
        self.inner.kind == Kind::Missing
    }

    /// The credentials were refused: malformed, a bad signature, an unknown `kid`, an
    /// algorithm the key is not for (`alg: none` included), another audience or issuer, not
    /// yet valid, or expired.
    pub fn is_invalid(&self) -> bool {
        matches!(self.inner.kind, Kind::Invalid | Kind::Expired)
    }

    /// The token has expired (a kind of [`is_invalid`](Self::is_invalid)).
    pub fn is_expired(&self) -> bool {
        self.inner.kind == Kind::Expired
    }

    /// The token is valid but does not allow this (a topic its claims do not name).
    pub fn is_forbidden(&self) -> bool {
        self.inner.kind == Kind::Forbidden
    }

    /// The hub failed (see the `source()`): not a matter of credentials.
    pub fn is_hub(&self) -> bool {
        self.inner.kind == Kind::Hub
    }

    /// A configuration (a key, a setting, a grant) is invalid; the message names it.
    pub fn is_config(&self) -> bool {
        self.inner.kind == Kind::Config
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self.inner.kind {
            Kind::Missing | Kind::Invalid | Kind::Expired => StatusCode::UNAUTHORIZED,
            Kind::Forbidden => StatusCode::FORBIDDEN,
            Kind::Hub => StatusCode::SERVICE_UNAVAILABLE,
            Kind::Config => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `WWW-Authenticate` challenge (RFC 6750) this error answers with, if any.
    pub fn challenge(&self) -> Option<HeaderValue> {
        let realm = self.inner.realm.as_deref().unwrap_or("nest");
        let value = match self.inner.kind {
            Kind::Missing => format!("Bearer realm=\"{realm}\""),
            Kind::Invalid | Kind::Expired => format!(
                "Bearer realm=\"{realm}\", error=\"invalid_token\", error_description=\"{}\"",
                quoted(&self.inner.message)
            ),
            Kind::Forbidden => format!("Bearer realm=\"{realm}\", error=\"insufficient_scope\""),
            Kind::Hub | Kind::Config => return None,
        };
        HeaderValue::try_from(value).ok()
    }
}

/// What may stand inside a quoted-string: printable ASCII without `"` and `\`.
fn quoted(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            c if c.is_ascii_graphic() || c == ' ' => c,
            _ => '?',
        })
        .collect()
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.inner.kind)
            .field("message", &self.inner.message)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<nest_hub::HubError> for Error {
    fn from(err: nest_hub::HubError) -> Self {
        Self::new(Kind::Hub, "the hub is unavailable").with_source(err)
    }
}

impl From<Error> for HttpException {
    fn from(err: Error) -> Self {
        let challenge = err.challenge();
        let message = match err.inner.kind {
            // A configuration error is the server's: its details stay in the logs.
            Kind::Config => {
                tracing::error!(error = %err, "nest-auth configuration error");
                "internal server error".to_owned()
            }
            _ => err.inner.message.clone(),
        };
        let exception = HttpException::with_message(err.status(), message);
        match challenge {
            Some(value) => exception.header(header::WWW_AUTHENTICATE, value),
            None => exception,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_is_one_pointer_wide_and_send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Error>();
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
    }

    #[test]
    fn challenges_follow_rfc_6750() {
        let missing = Error::new(Kind::Missing, "no credentials").with_realm("rooms");
        assert_eq!(missing.challenge().unwrap(), r#"Bearer realm="rooms""#);
        let invalid = Error::invalid("bad \"sig\"\n");
        assert_eq!(
            invalid.challenge().unwrap(),
            r#"Bearer realm="nest", error="invalid_token", error_description="bad 'sig'?""#
        );
        assert_eq!(Error::forbidden("no").status(), StatusCode::FORBIDDEN);
        assert!(Error::config("x").challenge().is_none());
    }
}
