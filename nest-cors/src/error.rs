//! The crate's one error, [`CorsError`](crate::CorsError): an invalid configuration.

use std::fmt;

/// The result of building a CORS configuration.
pub type Result<T, E = CorsError> = std::result::Result<T, E>;

/// An invalid CORS configuration.
///
/// [`CorsBuilder::build`](crate::CorsBuilder::build) returns it instead of panicking. Its message
/// names the option at fault (the npm `cors` name, e.g. `origin` or `allowed_headers`), and
/// [`CorsError::option`] returns that name for programs that want to react to it.
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
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsError {
    option: &'static str,
    kind: Kind,
    message: String,
}

/// What went wrong, kept private so that new kinds are not a breaking change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A value that can never be valid for its option (a malformed header name, a bad regex…).
    InvalidValue,
    /// Two options that are valid alone but not together (credentials with `*`).
    Incompatible,
}

impl CorsError {
    pub(crate) fn invalid(option: &'static str, message: impl Into<String>) -> Self {
        Self {
            option,
            kind: Kind::InvalidValue,
            message: message.into(),
        }
    }

    pub(crate) fn incompatible(option: &'static str, message: impl Into<String>) -> Self {
        Self {
            option,
            kind: Kind::Incompatible,
            message: message.into(),
        }
    }

    /// The name of the option at fault, as in npm `cors`: `origin`, `methods`,
    /// `allowed_headers`, `exposed_headers`, `credentials` or `options_success_status`.
    #[must_use]
    pub fn option(&self) -> &'static str {
        self.option
    }

    /// `true` when one option has a value that is never valid (a malformed header name or
    /// method, an invalid regex, an origin with a path, a status outside 200–299).
    #[must_use]
    pub fn is_invalid_value(&self) -> bool {
        self.kind == Kind::InvalidValue
    }

    /// `true` when options valid on their own are invalid together (credentials with a `*`
    /// wildcard, or credentials with reflect-any without the explicit opt-in).
    #[must_use]
    pub fn is_incompatible(&self) -> bool {
        self.kind == Kind::Incompatible
    }
}

impl fmt::Display for CorsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid CORS option `{}`: {}", self.option, self.message)
    }
}

impl std::error::Error for CorsError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_is_send_sync_and_names_the_option() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<CorsError>();
        let err = CorsError::invalid("methods", "`GE T` is not a valid method");
        assert_eq!(
            err.to_string(),
            "invalid CORS option `methods`: `GE T` is not a valid method"
        );
        assert!(err.is_invalid_value());
        assert!(!err.is_incompatible());
    }
}
