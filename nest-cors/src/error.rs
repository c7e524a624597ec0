//! The crate's one error, [`CorsError`](crate::CorsError): an invalid configuration.

use std::error::Error as StdError;
use std::fmt;

/// The cause of an error, kept for [`source`](StdError::source).
type BoxError = Box<dyn StdError + Send + Sync>;

/// The result of building a CORS configuration.
pub type Result<T, E = CorsError> = std::result::Result<T, E>;

/// An invalid CORS configuration.
///
/// [`CorsBuilder::build`](crate::CorsBuilder::build) returns it instead of panicking. Its message
/// names the option at fault (the npm `cors` name, e.g. `origin` or `allowed_headers`), and
/// [`CorsError::option`] returns that name for programs that want to react to it.
///
/// As in hyper and reqwest, the error is opaque and one pointer wide: `Display` is this
/// error's own message, and the underlying error (such as the regex parser's, for an invalid
/// origin regex) is its [`source`](StdError::source), not appended to the message.
///
/// # Example
///
/// ```
/// use nest_cors::{AllowOrigin, CorsLayer};
///
/// // Browsers reject `Access-Control-Allow-Origin: *` together with credentials.
/// let err = CorsLayer::builder()
///     .origin(AllowOrigin::any())
///     .credentials(true)
///     .build()
///     .unwrap_err();
/// assert_eq!(err.option(), "credentials");
/// assert!(err.to_string().contains("origin"));
/// assert!(err.is_incompatible());
///
/// // The regex parser's error is the source; the message names the option and the pattern.
/// let err = CorsLayer::builder()
///     .origin(AllowOrigin::regex("https://(unclosed"))
///     .build()
///     .unwrap_err();
/// assert_eq!(err.to_string(), "invalid CORS option `origin`: `https://(unclosed` is not a valid regex");
/// assert!(std::error::Error::source(&err).is_some());
/// ```
pub struct CorsError {
    inner: Box<Inner>,
}

struct Inner {
    option: &'static str,
    kind: Kind,
    message: String,
    source: Option<BoxError>,
}

/// What went wrong, kept private so that new kinds are not a breaking change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A value that can never be valid for its option (a malformed header name, a bad regex…).
    InvalidValue,
    /// Two options that are valid alone but not together (credentials with `*`).
    Incompatible,
}

impl CorsError {
    fn new(kind: Kind, option: &'static str, message: String) -> Self {
        Self {
            inner: Box::new(Inner {
                option,
                kind,
                message,
                source: None,
            }),
        }
    }

    pub(crate) fn invalid(option: &'static str, message: impl Into<String>) -> Self {
        Self::new(Kind::InvalidValue, option, message.into())
    }

    pub(crate) fn incompatible(option: &'static str, message: impl Into<String>) -> Self {
        Self::new(Kind::Incompatible, option, message.into())
    }

    /// Keeps `source` as the cause; the message should not repeat it.
    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.inner.source = Some(source.into());
        self
    }

    /// The name of the option at fault, as in npm `cors`: `origin`, `methods`,
    /// `allowed_headers`, `exposed_headers`, `credentials` or `options_success_status`.
    #[must_use]
    pub fn option(&self) -> &'static str {
        self.inner.option
    }

    /// `true` when one option has a value that is never valid (a malformed header name or
    /// method, an invalid regex, an origin with a path, a status outside 200–299).
    #[must_use]
    pub fn is_invalid_value(&self) -> bool {
        self.inner.kind == Kind::InvalidValue
    }

    /// `true` when options valid on their own are invalid together (credentials with a `*`
    /// wildcard, or credentials with reflect-any without the explicit opt-in).
    #[must_use]
    pub fn is_incompatible(&self) -> bool {
        self.inner.kind == Kind::Incompatible
    }
}

impl fmt::Debug for CorsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("CorsError");
        debug
            .field("option", &self.inner.option)
            .field("kind", &self.inner.kind)
            .field("message", &self.inner.message);
        if let Some(source) = &self.inner.source {
            debug.field("source", source);
        }
        debug.finish()
    }
}

impl fmt::Display for CorsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid CORS option `{}`: {}",
            self.inner.option, self.inner.message
        )
    }
}

impl StdError for CorsError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner.source.as_deref().map(|source| source as _)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AllowOrigin, CorsLayer};

    #[test]
    fn is_send_sync_and_one_pointer_wide() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<CorsError>();
        assert_eq!(
            std::mem::size_of::<CorsError>(),
            std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn display_names_the_option_and_has_no_source() {
        let err = CorsError::invalid("methods", "`GE T` is not a valid method");
        assert_eq!(
            err.to_string(),
            "invalid CORS option `methods`: `GE T` is not a valid method"
        );
        assert!(err.is_invalid_value());
        assert!(!err.is_incompatible());
        assert!(err.source().is_none());
    }

    #[test]
    fn display_does_not_repeat_the_source() {
        let err = CorsLayer::builder()
            .origin(AllowOrigin::regex("https://(unclosed"))
            .build()
            .unwrap_err();
        let source = err.source().expect("the regex error is the source");
        assert!(
            source.downcast_ref::<regex::Error>().is_some(),
            "{source:?}"
        );
        let display = err.to_string();
        assert_eq!(
            display,
            "invalid CORS option `origin`: `https://(unclosed` is not a valid regex"
        );
        assert!(!display.contains(&source.to_string()), "{display}");
        // The parser's own wording stays out of the message entirely.
        assert!(source.to_string().contains("unclosed group"), "{source}");
        assert!(!display.contains("unclosed group"), "{display}");
        assert!(format!("{err:?}").contains("source"), "{err:?}");
    }
}
