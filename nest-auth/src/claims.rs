//! What a token says: its JSON claims on the wire, the [`Claims`] a verified token gives a
//! handler, and the [`Grant`] an app issues a token from.
//!
//! The wire format is on [`Claims`].
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use nest_auth::{Authenticator, Grant, Key};
//!
//! let auth = Authenticator::builder()
//!     .key(Key::hmac("k1", &[7; 32]).unwrap())
//!     .audience("rooms")
//!     .build()
//!     .unwrap();
//! let grant = Grant::new("ada")
//!     .subscribe(["rooms/{room}"])
//!     .publish(["rooms/a"])
//!     .ttl(Duration::from_secs(600));
//! let token = auth.issue(&grant).unwrap();
//! let claims = auth.verify(token.as_str()).unwrap();
//! assert_eq!(claims.subject(), "ada");
//! assert!(claims.can_subscribe("rooms/b") && !claims.can_publish("rooms/b"));
//! assert!(claims.expires_in() <= Duration::from_secs(600));
//! ```

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::topic::{any_matches, TopicSelector};

/// The JWT payload, as signed and as read.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireClaims {
    pub(crate) sub: String,
    /// Optional here so that a token without it gets jsonwebtoken's "missing claim" (it is
    /// required by the validation), not a parse error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) aud: Option<Audience>,
    pub(crate) exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) iss: Option<String>,
    #[serde(default)]
    pub(crate) topics: WireTopics,
}

/// `aud`: one string or an array of them (RFC 7519 §4.1.3).
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct WireTopics {
    #[serde(default)]
    pub(crate) subscribe: Vec<String>,
    #[serde(default)]
    pub(crate) publish: Vec<String>,
}

/// The claims of a verified token: who holds it, until when, and which topics it may
/// subscribe and publish to. Extracted by [`Auth`](crate::Auth).
///
/// On the wire (the JWT's payload), the topics sit under `topics`, as Mercure's sit under
/// `mercure`; `sub`, `aud` and `exp` are required:
///
/// ```json
/// {"sub":"ada","aud":"rooms","iat":1764892800,"exp":1764893700,
///  "topics":{"subscribe":["rooms/a","rooms/b"],"publish":["rooms/a"]}}
/// ```
#[derive(Clone)]
pub struct Claims {
    subject: String,
    kid: String,
    issued_at: Option<u64>,
    expires_at: u64,
    subscribe: Vec<TopicSelector>,
    publish: Vec<TopicSelector>,
}

impl Claims {
    /// Checks the topic selectors of verified wire claims.
    pub(crate) fn from_wire(wire: WireClaims, kid: String) -> Result<Self> {
        let parse = |list: Vec<String>| -> Result<Vec<TopicSelector>> {
            list.iter()
                .map(|s| TopicSelector::parse(s))
                .collect::<Result<_>>()
                .map_err(|e| Error::invalid(format!("the token's topics: {e}")))
        };
        Ok(Self {
            subject: wire.sub,
            kid,
            issued_at: wire.iat,
            expires_at: wire.exp,
            subscribe: parse(wire.topics.subscribe)?,
            publish: parse(wire.topics.publish)?,
        })
    }

    /// The subject (`sub`): the user.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The id of the key that signed the token (`kid`).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// When the token expires (`exp`).
    pub fn expires_at(&self) -> SystemTime {
        // A far-future `exp` (another issuer's) must not overflow the platform's time type.
        // (Callers add to it with `checked_add`.)
        UNIX_EPOCH
            .checked_add(Duration::from_secs(self.expires_at))
            .unwrap_or(UNIX_EPOCH + MAX_LIFETIME * 100)
    }

    /// How long until it expires, from now (zero once expired).
    pub fn expires_in(&self) -> Duration {
        self.expires_at()
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
    }

    /// How long the token was issued for (`exp - iat`), when it says when it was issued.
    pub fn lifetime(&self) -> Option<Duration> {
        self.issued_at
            .map(|iat| Duration::from_secs(self.expires_at.saturating_sub(iat)))
    }

    /// Whether the token allows subscribing to `topic` (and resuming it).
    pub fn can_subscribe(&self, topic: &str) -> bool {
        any_matches(&self.subscribe, topic)
    }

    /// Whether the token allows publishing to `topic`.
    pub fn can_publish(&self, topic: &str) -> bool {
        any_matches(&self.publish, topic)
    }

    /// The selectors of the topics it may subscribe to.
    pub fn subscribe_selectors(&self) -> &[TopicSelector] {
        &self.subscribe
    }

    /// The selectors of the topics it may publish to.
    pub fn publish_selectors(&self) -> &[TopicSelector] {
        &self.publish
    }

    /// A grant with the same subject and topics, for the same lifetime (15 minutes when the
    /// token does not say): what a refresh issues.
    pub fn to_grant(&self) -> Grant {
        Grant::new(self.subject.clone())
            .subscribe(self.subscribe.iter().map(TopicSelector::as_str))
            .publish(self.publish.iter().map(TopicSelector::as_str))
            .ttl(self.lifetime().unwrap_or(Grant::DEFAULT_TTL))
    }
}

impl fmt::Debug for Claims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claims")
            .field("subject", &self.subject)
            .field("kid", &self.kid)
            .field("expires_at", &self.expires_at)
            .field("subscribe", &self.subscribe)
            .field("publish", &self.publish)
            .finish()
    }
}

/// What a token to issue allows: a subject, topic selectors to subscribe and publish to, and
/// a lifetime (15 minutes by default). See [`Authenticator::issue`](crate::Authenticator::issue).
#[derive(Debug, Clone)]
#[must_use]
pub struct Grant {
    pub(crate) subject: String,
    pub(crate) subscribe: Vec<String>,
    pub(crate) publish: Vec<String>,
    pub(crate) ttl: Duration,
}

impl Grant {
    /// The lifetime of a token when none is given.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);

    /// A grant for `subject` that allows no topic yet.
    pub fn new(subject: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            subscribe: Vec::new(),
            publish: Vec::new(),
            ttl: Self::DEFAULT_TTL,
        }
    }

    /// Adds topic selectors the holder may subscribe to (see [`TopicSelector`]).
    pub fn subscribe<I, S>(mut self, selectors: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.subscribe.extend(selectors.into_iter().map(Into::into));
        self
    }

    /// Adds topic selectors the holder may publish to.
    pub fn publish<I, S>(mut self, selectors: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.publish.extend(selectors.into_iter().map(Into::into));
        self
    }

    /// How long the token is valid (at least one second, at most a hundred years).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl.clamp(Duration::from_secs(1), MAX_LIFETIME * 100);
        self
    }

    /// Checks every selector, so that no token is signed that would be refused.
    pub(crate) fn validate(&self) -> Result<()> {
        for selector in self.subscribe.iter().chain(&self.publish) {
            TopicSelector::parse(selector)?;
        }
        Ok(())
    }
}

/// The longest an authorized stream runs before it ends with `reauth`, whatever its token's
/// `exp` says (a year).
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// Seconds since the Unix epoch, now.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
