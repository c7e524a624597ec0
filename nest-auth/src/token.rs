//! A signed token as issued: its text and when it expires; its `Debug` hides it.
//!
//! # Example
//!
//! ```
//! use nest_auth::{Authenticator, Grant, Key};
//!
//! let auth = Authenticator::builder().key(Key::hmac("k1", &[7; 32]).unwrap()).audience("a").build().unwrap();
//! let token = auth.issue(&Grant::new("ada")).unwrap();
//! assert_eq!(token.as_str().split('.').count(), 3);
//! assert!(!format!("{token:?}").contains(token.as_str()));
//! ```

use std::fmt;
use std::time::{Duration, SystemTime};

/// A signed token and when it expires. `Display` and `Debug` do not show it: use
/// [`as_str`](Self::as_str).
#[derive(Clone)]
pub struct Token {
    value: String,
    ttl: Duration,
    expires_at: SystemTime,
}

impl Token {
    pub(crate) fn new(value: String, ttl: Duration, expires_at: SystemTime) -> Self {
        Self {
            value,
            ttl,
            expires_at,
        }
    }
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
