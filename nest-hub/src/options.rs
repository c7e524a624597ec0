//! The hub's settings ([`HubOptions`]) and a subscription's ([`SubscribeOptions`]).

use std::time::Duration;

use nest_core::sse::{LastEventId, SseOptions};

/// What happens to a subscriber that fell behind the topic's buffer (its client reads slower
/// than events are published, for longer than the buffer lasts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LagPolicy {
    /// Send the gap event (its id is where the stream goes on) and go on from the oldest event
    /// still buffered (default).
    #[default]
    Gap,
    /// End the stream ([`EndReason::Overflow`](nest_core::sse::EndReason::Overflow)); the client reconnects with `Last-Event-ID` and
    /// resumes from what is still buffered, or gets the gap event.
    Close,
}

/// What a client that subscribes for the first time (no `Last-Event-ID`) gets before live
/// events; see [`SubscribeOptions::history`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum History {
    /// Nothing: live events only (the default).
    #[default]
    None,
    /// The last `n` retained events (fewer when fewer are retained).
    Last(usize),
    /// The retained events younger than this.
    Since(Duration),
    /// The newest event only: the latest value, for dashboards.
    Latest,
}

/// Hub settings.
#[derive(Debug, Clone)]
#[must_use]
pub struct HubOptions {
    pub(crate) lag: LagPolicy,
    pub(crate) gap_event: String,
    pub(crate) keep_alive: Option<Duration>,
    pub(crate) retry: Option<Duration>,
    pub(crate) idle_topic_ttl: Duration,
    pub(crate) max_topics: usize,
    pub(crate) max_topic_name: usize,
}

impl Default for HubOptions {
    fn default() -> Self {
        Self {
            lag: LagPolicy::Gap,
            gap_event: "reset".to_owned(),
            keep_alive: Some(Duration::from_secs(15)),
            retry: None,
            idle_topic_ttl: Duration::from_secs(600),
            max_topics: 100_000,
            max_topic_name: 256,
        }
    }
}

impl HubOptions {
    /// The defaults: [`LagPolicy::Gap`], gap events of type `reset`, keep-alive every 15 s.
    pub fn new() -> Self {
        Self::default()
    }

    /// The lag policy.
    pub fn lag(mut self, policy: LagPolicy) -> Self {
        self.lag = policy;
        self
    }

    /// The type of the gap event (default `reset`). Its data is JSON:
    /// `{"reason":"lagged"}` or `{"reason":"unknown-id"}`.
    pub fn gap_event(mut self, event_type: impl Into<String>) -> Self {
        self.gap_event = event_type.into();
        self
    }

    /// The keep-alive interval of subscriber streams (see [`SseOptions::keep_alive`](nest_core::sse::SseOptions::keep_alive)).
    pub fn keep_alive(mut self, interval: Option<Duration>) -> Self {
        self.keep_alive = interval;
        self
    }

    /// The reconnection time, sent to each subscriber as a `retry:` line at the head of its first
    /// event (see [`SseOptions::retry`]).
    pub fn retry(mut self, retry: Duration) -> Self {
        self.retry = Some(retry);
        self
    }

    /// How long a topic with no subscribers and no publish is kept (default 10 minutes). Idle
    /// topics are evicted with their history when new topics are created, so memory does not
    /// grow with the names users choose (rooms, users); a client that resumes an evicted topic
    /// gets the gap event.
    pub fn idle_topic_ttl(mut self, ttl: Duration) -> Self {
        self.idle_topic_ttl = ttl;
        self
    }

    /// The most topics the hub holds at once (default 100,000, at least 1): past it, publishing
    /// or subscribing to a new topic fails with a [`HubError`](crate::HubError) for which [`HubError::is_too_many_topics`](crate::HubError::is_too_many_topics) is true (after evicting the
    /// idle ones).
    pub fn max_topics(mut self, max: usize) -> Self {
        self.max_topics = max.max(1);
        self
    }

    /// The longest topic name in bytes (default 256, at least 1): publishing or subscribing to a
    /// longer one fails with a [`HubError`](crate::HubError) for which [`HubError::is_invalid_topic`](crate::HubError::is_invalid_topic) is true,
    /// before anything is stored. Names are kept per topic and, on Redis, in keys.
    pub fn max_topic_name(mut self, bytes: usize) -> Self {
        self.max_topic_name = bytes.max(1);
        self
    }
}

/// How one subscriber starts and behaves: the one argument of [`Hub::subscribe`](crate::Hub::subscribe)
/// besides the topic. A `&LastEventId` alone converts into it (the usual case: resume after
/// the client's `Last-Event-ID`, else live events only).
///
/// ```
/// use std::time::Duration;
/// use nest_core::sse::{LastEventId, SseOptions};
/// use nest_hub::{History, Hub, LagPolicy, SubscribeOptions};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let hub = Hub::new();
/// let last = LastEventId(None);
/// // Resume (or start live): the common case.
/// let _plain = hub.subscribe("chat", &last).await.unwrap();
/// // A first visit gets the last 50 messages; this subscriber is closed when it lags; its
/// // stream ends after an hour.
/// let how = SubscribeOptions::new()
///     .last_event_id(&last)
///     .history(History::Last(50))
///     .lag(LagPolicy::Close)
///     .stream(SseOptions::new().max_lifetime(Duration::from_secs(3600), Duration::ZERO));
/// let _tuned = hub.subscribe("chat", how).await.unwrap();
/// assert_eq!(hub.stats("chat").subscribers, 2);
/// # });
/// ```
#[derive(Debug, Default)]
#[must_use]
pub struct SubscribeOptions {
    pub(crate) last_event_id: Option<String>,
    pub(crate) history: History,
    pub(crate) lag: Option<LagPolicy>,
    pub(crate) stream: SseOptions,
}

impl SubscribeOptions {
    /// Live events only, the hub's lag policy, the default stream options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Resume after the client's `Last-Event-ID` (when it sent one): the events after it that
    /// are still retained, then live ones; an id too old or unknown gets the gap event first.
    pub fn last_event_id(mut self, last_event_id: &LastEventId) -> Self {
        self.last_event_id = last_event_id.0.clone();
        self
    }

    /// What a client that subscribes for the first time (no `Last-Event-ID`) gets before live
    /// events (a chat's last 50 messages, a dashboard's latest value). A reconnect with
    /// `Last-Event-ID` resumes exactly as always, whatever this says.
    pub fn history(mut self, history: History) -> Self {
        self.history = history;
        self
    }

    /// This subscriber's lag policy, instead of the hub's ([`HubOptions::lag`]).
    pub fn lag(mut self, policy: LagPolicy) -> Self {
        self.lag = Some(policy);
        self
    }

    /// The stream's options (a cancel hook, a maximum lifetime, a shutdown `retry:`). The hub's
    /// keep-alive and retry settings ([`HubOptions`]) replace those of `options`.
    pub fn stream(mut self, options: SseOptions) -> Self {
        self.stream = options;
        self
    }

    /// Changes the stream options already set: for a layer above the hub that adds its own
    /// (nest-auth's `AuthorizedHub` ends each stream when its token expires).
    ///
    /// ```
    /// use std::time::Duration;
    /// use nest_hub::SubscribeOptions;
    ///
    /// let how = SubscribeOptions::new().map_stream(|o| o.max_lifetime(Duration::from_secs(60), Duration::ZERO));
    /// assert!(format!("{how:?}").contains("max_lifetime: Some((60s, 0ns))"));
    /// ```
    pub fn map_stream(mut self, change: impl FnOnce(SseOptions) -> SseOptions) -> Self {
        self.stream = change(std::mem::take(&mut self.stream));
        self
    }
}

impl From<&LastEventId> for SubscribeOptions {
    fn from(last_event_id: &LastEventId) -> Self {
        Self::new().last_event_id(last_event_id)
    }
}

impl From<LastEventId> for SubscribeOptions {
    fn from(last_event_id: LastEventId) -> Self {
        Self {
            last_event_id: last_event_id.0,
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use nest_core::sse::LastEventId;

    use super::{LagPolicy, SubscribeOptions};

    /// Issue 36: each builder keeps what was set before it and sets what it names.
    #[test]
    fn subscribe_options_keep_the_client_id_and_set_what_they_name() {
        let last = LastEventId(Some("7-1".into()));
        let owned = SubscribeOptions::from(last.clone());
        assert_eq!(owned.last_event_id.as_deref(), Some("7-1"));
        let how = SubscribeOptions::from(&last)
            .lag(LagPolicy::Close)
            .map_stream(|o| o.max_lifetime(Duration::from_secs(60), Duration::ZERO));
        assert_eq!(how.last_event_id.as_deref(), Some("7-1"));
        assert_eq!(how.lag, Some(LagPolicy::Close));
        assert!(format!("{:?}", how.stream).contains("max_lifetime: Some((60s, 0ns))"));
    }
}
