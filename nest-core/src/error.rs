//! The error of building and running a nest app.

use std::any::Any;
use std::fmt;

use crate::body::BoxError;

/// An error building or serving an app: a route, state or configuration problem found when the app
/// is built, or an I/O error binding the listener. Its message names what is wrong.
pub struct Error {
    kind: Kind,
    message: String,
    source: Option<BoxError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Route,
    State,
    Config,
    Io,
    Tls,
}

impl Error {
    pub(crate) fn route(message: impl Into<String>) -> Self {
        Self {
            kind: Kind::Route,
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn state(message: impl Into<String>) -> Self {
        Self {
            kind: Kind::State,
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self {
            kind: Kind::Config,
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn io(message: impl Into<String>, source: std::io::Error) -> Self {
        Self {
            kind: Kind::Io,
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }

    /// A TLS setting is unusable (unreadable PEM, an empty chain, a key that does not match).
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub(crate) fn tls(
        message: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            kind: Kind::Tls,
            message: message.into(),
            source,
        }
    }

    /// A route is invalid, conflicts with another, or breaks a rule (e.g. a non-GET SSE route).
    pub fn is_route(&self) -> bool {
        self.kind == Kind::Route
    }

    /// A route extracts state the app does not hold.
    pub fn is_state(&self) -> bool {
        self.kind == Kind::State
    }

    /// A setting is invalid.
    pub fn is_config(&self) -> bool {
        self.kind == Kind::Config
    }

    /// Binding or accepting failed.
    pub fn is_io(&self) -> bool {
        self.kind == Kind::Io
    }

    /// A certificate or key cannot be used (feature `tls`).
    pub fn is_tls(&self) -> bool {
        self.kind == Kind::Tls
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The error's own message only; the cause is `source()` (so `anyhow` and friends print
        // it once, as for hyper's and reqwest's errors).
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}

/// The message of a panic payload.
pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn display_is_the_message_and_the_cause_is_the_source() {
        use std::error::Error as _;
        let cause = std::io::Error::new(std::io::ErrorKind::AddrInUse, "address in use");
        let err = super::Error::io("cannot bind 127.0.0.1:80", cause);
        assert_eq!(err.to_string(), "cannot bind 127.0.0.1:80");
        assert_eq!(err.source().unwrap().to_string(), "address in use");
    }

    #[test]
    fn error_is_send_sync() {
        fn assert<T: Send + Sync + 'static>() {}
        assert::<super::Error>();
    }
}
