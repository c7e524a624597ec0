//! The hub's error: opaque, with predicates, its own message in `Display` and the cause in
//! `source()` (the hyper/reqwest recipe).

use std::fmt;

use super::BackendError;
use nest_core::sse::SseError;

/// Why the hub did not publish or subscribe.
///
/// # Example
///
/// ```
/// use nest_hub::Hub;
/// use nest_core::sse::SseEvent;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let hub = Hub::new();
/// let err = hub.publish("t", SseEvent::data("x").id(7)).await.unwrap_err();
/// assert!(err.is_invalid_event());
/// assert_eq!(err.to_string(), "invalid hub event: the hub assigns ids; publish events without one");
/// # });
/// ```
pub struct HubError(Box<Inner>);

struct Inner {
    kind: Kind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    InvalidEvent,
    Backend,
    TooManyTopics,
    InvalidTopic,
}

impl HubError {
    pub(super) fn invalid_event(why: &str) -> Self {
        Self::new(
            Kind::InvalidEvent,
            format!("invalid hub event: {why}"),
            None,
        )
    }

    pub(super) fn too_many_topics(limit: usize) -> Self {
        Self::new(
            Kind::TooManyTopics,
            format!(
                "the hub holds its maximum of {limit} topics; no new topic until idle ones expire"
            ),
            None,
        )
    }

    pub(super) fn topic_name_too_long(len: usize, limit: usize) -> Self {
        Self::new(
            Kind::InvalidTopic,
            format!(
                "the topic name is {len} bytes long; at most {limit} (HubOptions::max_topic_name)"
            ),
            None,
        )
    }

    fn new(
        kind: Kind,
        message: String,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self(Box::new(Inner {
            kind,
            message,
            source,
        }))
    }

    /// The event cannot be sent (a field would break the stream format: the source is the
    /// [`SseError`]), or it carries an id of its own (the hub assigns ids).
    pub fn is_invalid_event(&self) -> bool {
        self.0.kind == Kind::InvalidEvent
    }

    /// The backend failed; the source is its [`BackendError`].
    pub fn is_backend(&self) -> bool {
        self.0.kind == Kind::Backend
    }

    /// A new topic would pass `HubOptions::max_topics`.
    pub fn is_too_many_topics(&self) -> bool {
        self.0.kind == Kind::TooManyTopics
    }

    /// The topic name is longer than `HubOptions::max_topic_name`.
    pub fn is_invalid_topic(&self) -> bool {
        self.0.kind == Kind::InvalidTopic
    }
}

impl fmt::Debug for HubError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubError")
            .field("kind", &self.0.kind)
            .field("message", &self.0.message)
            .field("source", &self.0.source)
            .finish()
    }
}

impl fmt::Display for HubError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl std::error::Error for HubError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source.as_deref().map(|e| e as _)
    }
}

impl From<SseError> for HubError {
    fn from(err: SseError) -> Self {
        Self::new(
            Kind::InvalidEvent,
            "invalid hub event".to_owned(),
            Some(Box::new(err)),
        )
    }
}

impl From<BackendError> for HubError {
    fn from(err: BackendError) -> Self {
        Self::new(
            Kind::Backend,
            "the hub backend failed".to_owned(),
            Some(Box::new(err)),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn display_is_the_message_and_the_cause_is_the_source() {
        let err = HubError::from(BackendError::new("connection reset"));
        assert!(err.is_backend());
        assert_eq!(err.to_string(), "the hub backend failed");
        assert_eq!(err.source().unwrap().to_string(), "connection reset");
    }

    #[test]
    fn send_sync_and_one_word_wide() {
        fn assert<T: Send + Sync + 'static>() {}
        assert::<HubError>();
        assert_eq!(
            std::mem::size_of::<HubError>(),
            std::mem::size_of::<usize>()
        );
    }
}
