//! The SSE broadcast hub: publish to a topic, every subscriber gets it, and a reconnecting client
//! resumes from its `Last-Event-ID` without gaps or duplicates.
//!
//! - Each event is encoded once (with its id) and the same bytes go to every subscriber.
//! - Ids are `EPOCH-SEQ`: the sequence grows by one per topic, and the epoch changes when the
//!   in-process buffer is new (a restart), so an old `Last-Event-ID` never matches a new event.
//! - Each topic keeps its last events ([`Retention`]). A subscriber that connects with
//!   `Last-Event-ID` gets exactly the events after it, then live ones. An id that is too old or
//!   unknown gets a gap event (`event: reset` by default) whose id is where the stream resumes, so
//!   the client knows to resync. An id of another epoch (from before a restart) resumes from the
//!   start of this epoch: what was published while the client reconnected is not skipped.
//! - There is no queue per subscriber: each reads the topic's buffer at its own pace, so a slow
//!   one never blocks the publisher or the others. One that falls behind the buffer is handled by
//!   [`LagPolicy`]: a gap event and go on, or close so that the client resumes through
//!   `Last-Event-ID`. A stream never ends or skips silently.
//! - Figures per topic: [`Hub::stats`].
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use nest_core::prelude::*;
//! use nest_core::sse::hub::Hub;
//!
//! struct Chat { hub: Hub }
//!
//! impl Chat {
//!     async fn events(self: Arc<Self>, last: LastEventId) -> Result<SseBody, HttpException> {
//!         self.hub.subscribe("chat", &last).await.map_err(|e| HttpException::service_unavailable(e.to_string()))
//!     }
//! }
//!
//! impl Controller for Chat {
//!     fn routes(r: &mut Routes<Self>) {
//!         r.sse("/events", Self::events);
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let hub = Hub::new();
//! let id = hub.publish("chat", SseEvent::data("hello").event("message")).await.unwrap();
//! assert!(id.ends_with("-1"));
//! assert_eq!(hub.stats("chat").published, 1);
//! assert!(NestApp::new().controller(Chat { hub }).into_service().is_ok());
//! # });
//! ```

mod backend;
#[cfg(feature = "test-util")]
pub mod conformance;
mod error;
mod memory;
#[cfg(feature = "redis")]
mod redis;

pub use backend::{
    BackendError, BackendTopic, Batch, EncodeWithSeq, HubBackend, Record, IDEMPOTENCY_KEYS,
    IDEMPOTENCY_TTL, MAX_IDEMPOTENCY_KEY,
};
pub use error::HubError;

#[cfg(feature = "redis")]
pub use self::redis::{RedisBackend, RedisConfig};
pub use memory::{MemoryBackend, Retention};

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use tokio::sync::futures::OwnedNotified;

use super::body::FrameSource;
use super::{encode, EndReason, LastEventId, SseBody, SseEvent, SseOptions};

/// What happens to a subscriber that fell behind the topic's buffer (its client reads slower
/// than events are published, for longer than the buffer lasts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LagPolicy {
    /// Send the gap event (its id is where the stream goes on) and go on from the oldest event
    /// still buffered (default).
    #[default]
    Gap,
    /// End the stream ([`EndReason::Overflow`]); the client reconnects with `Last-Event-ID` and
    /// resumes from what is still buffered, or gets the gap event.
    Close,
}

/// What a client that subscribes for the first time (no `Last-Event-ID`) gets before live
/// events; see [`Hub::subscribe_with_history`].
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
    lag: LagPolicy,
    gap_event: String,
    keep_alive: Option<Duration>,
    retry: Option<Duration>,
    idle_topic_ttl: Duration,
    max_topics: usize,
    max_topic_name: usize,
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

    /// The keep-alive interval of subscriber streams (see [`SseOptions::keep_alive`]).
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
    /// or subscribing to a new topic fails with a [`HubError`] for which [`HubError::is_too_many_topics`] is true (after evicting the
    /// idle ones).
    pub fn max_topics(mut self, max: usize) -> Self {
        self.max_topics = max.max(1);
        self
    }

    /// The longest topic name in bytes (default 256, at least 1): publishing or subscribing to a
    /// longer one fails with a [`HubError`] for which [`HubError::is_invalid_topic`] is true,
    /// before anything is stored. Names are kept per topic and, on Redis, in keys.
    pub fn max_topic_name(mut self, bytes: usize) -> Self {
        self.max_topic_name = bytes.max(1);
        self
    }
}

/// Figures of one topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TopicStats {
    /// Subscribers connected now.
    pub subscribers: usize,
    /// Events published since the hub started.
    pub published: u64,
    /// Gap events sent (lagging subscribers, and resumes from ids too old or unknown).
    pub gaps: u64,
    /// Subscribers closed by [`LagPolicy::Close`].
    pub lag_closes: u64,
}

#[derive(Debug, Default)]
struct Counters {
    subscribers: AtomicUsize,
    published: AtomicU64,
    gaps: AtomicU64,
    lag_closes: AtomicU64,
}

struct Topic {
    name: String,
    log: Arc<dyn BackendTopic>,
    counters: Counters,
    /// When it was last published to or subscribed to, in ms since the hub started.
    last_used: AtomicU64,
}

/// The hub's topics, and when to look for idle ones next.
#[derive(Default)]
struct Topics {
    map: HashMap<String, Arc<Topic>>,
    /// Idle topics are looked for when a new topic would make the map this large (doubling, so
    /// the sweep costs O(1) per new topic).
    sweep_at: usize,
}

/// A broadcast hub of SSE topics. Cheap to clone; clones share the topics.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

struct HubInner {
    backend: Arc<dyn HubBackend>,
    options: HubOptions,
    topics: Mutex<Topics>,
    started: tokio::time::Instant,
    /// The lines about subscribers ended by a backend failure, and about lagging subscribers.
    failure_log: LogGate,
    lag_log: LogGate,
}

/// At most one log line per second for what befalls many subscribers at once (a backend that
/// lost its data ends every subscriber of every topic; a burst makes many lag): the line says how
/// many were folded into it, so logging stays O(1) per second whatever the subscribers.
#[derive(Default)]
pub(crate) struct LogGate {
    next_ms: AtomicU64,
    folded: AtomicU64,
}

impl LogGate {
    /// How long a line covers.
    pub(crate) const INTERVAL_MS: u64 = 1000;

    /// `Some(n)` when a line is due at `now_ms` (`n` earlier occurrences were folded into it);
    /// `None` when this one is folded into the next line.
    pub(crate) fn due(&self, now_ms: u64) -> Option<u64> {
        let next = self.next_ms.load(Ordering::Relaxed);
        if now_ms >= next
            && self
                .next_ms
                .compare_exchange(
                    next,
                    now_ms + Self::INTERVAL_MS,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            Some(self.folded.swap(0, Ordering::Relaxed))
        } else {
            self.folded.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("epoch", &self.inner.backend.epoch())
            .field("options", &self.inner.options)
            .finish()
    }
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    /// A hub on the in-process backend with the default [`Retention`] and [`HubOptions`].
    pub fn new() -> Self {
        Self::with_backend(MemoryBackend::default(), HubOptions::default())
    }

    /// A hub on `backend`.
    pub fn with_backend(backend: impl HubBackend, options: HubOptions) -> Self {
        Self {
            inner: Arc::new(HubInner {
                backend: Arc::new(backend),
                options,
                topics: Mutex::new(Topics::default()),
                started: tokio::time::Instant::now(),
                failure_log: LogGate::default(),
                lag_log: LogGate::default(),
            }),
        }
    }

    fn now_ms(&self) -> u64 {
        self.inner.started.elapsed().as_millis() as u64
    }

    fn lock_topics(&self) -> std::sync::MutexGuard<'_, Topics> {
        self.inner.topics.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The topic called `name`, created on first use (after evicting idle topics when the map
    /// grew, and within [`HubOptions::max_topics`]).
    fn topic(&self, name: &str) -> Result<Arc<Topic>, HubError> {
        if name.len() > self.inner.options.max_topic_name {
            return Err(HubError::topic_name_too_long(
                name.len(),
                self.inner.options.max_topic_name,
            ));
        }
        let now = self.now_ms();
        let mut evicted = 0;
        let topic = {
            let mut topics = self.lock_topics();
            if let Some(topic) = topics.map.get(name) {
                topic.last_used.store(now, Ordering::Relaxed);
                return Ok(topic.clone());
            }
            if topics.map.len() >= topics.sweep_at {
                evicted = self.evict_idle(&mut topics.map, now);
                topics.sweep_at = (topics.map.len() * 2).max(64);
            }
            let limit = self.inner.options.max_topics;
            if topics.map.len() >= limit {
                drop(topics);
                tracing::warn!(limit, "hub topic limit reached: new topic refused");
                return Err(HubError::too_many_topics(limit));
            }
            let topic = Arc::new(Topic {
                name: name.to_owned(),
                log: self.inner.backend.topic(name),
                counters: Counters::default(),
                last_used: AtomicU64::new(now),
            });
            topics.map.insert(name.to_owned(), topic.clone());
            topic
        };
        log_evicted(evicted);
        Ok(topic)
    }

    /// Removes the topics nobody holds (no subscriber, no publish in progress) that were not used
    /// for [`HubOptions::idle_topic_ttl`]; returns how many.
    fn evict_idle(&self, map: &mut HashMap<String, Arc<Topic>>, now: u64) -> usize {
        let ttl = self.inner.options.idle_topic_ttl.as_millis() as u64;
        let before = map.len();
        map.retain(|name, topic| {
            let idle = Arc::strong_count(topic) == 1
                && now.saturating_sub(topic.last_used.load(Ordering::Relaxed)) >= ttl;
            if idle {
                self.inner.backend.evict(name);
            }
            !idle
        });
        before - map.len()
    }

    fn id(&self, seq: u64) -> String {
        format!("{}-{seq}", self.inner.backend.epoch())
    }

    /// Publishes an event to every subscriber of `topic` and returns the id the hub gave it. The
    /// event is encoded once. It must not carry an id of its own.
    pub async fn publish(
        &self,
        topic: &str,
        event: impl Into<SseEvent>,
    ) -> Result<String, HubError> {
        let encode = self.encoder(event.into())?;
        let topic = self.topic(topic)?;
        let seq = topic.log.clone().append(encode).await?;
        topic.counters.published.fetch_add(1, Ordering::Relaxed);
        tracing::trace!(topic = %topic.name, seq, "published");
        Ok(self.id(seq))
    }

    /// As [`publish`](Self::publish), once per idempotency `key` (1 to
    /// [`MAX_IDEMPOTENCY_KEY`] bytes, e.g. from an `Idempotency-Key` header): a publish retried
    /// with the same key (after a timeout, say, when the first may have been stored) returns
    /// the id the first got and stores nothing, on every instance of the backend. A topic
    /// remembers its last [`IDEMPOTENCY_KEYS`] keys for [`IDEMPOTENCY_TTL`]; keys die with the
    /// epoch (an id of the old epoch is never returned).
    ///
    /// ```
    /// use nest_core::sse::hub::Hub;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let hub = Hub::new();
    /// let first = hub.publish_idempotent("chat", "post-17", "hello").await.unwrap();
    /// let retried = hub.publish_idempotent("chat", "post-17", "hello").await.unwrap();
    /// assert_eq!(first, retried);
    /// assert_eq!(hub.stats("chat").published, 1);
    /// # });
    /// ```
    pub async fn publish_idempotent(
        &self,
        topic: &str,
        key: &str,
        event: impl Into<SseEvent>,
    ) -> Result<String, HubError> {
        if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
            return Err(HubError::invalid_event(&format!(
                "an idempotency key has 1 to {MAX_IDEMPOTENCY_KEY} bytes"
            )));
        }
        let encode = self.encoder(event.into())?;
        let topic = self.topic(topic)?;
        let (seq, fresh) = topic
            .log
            .clone()
            .append_once(key.to_owned(), encode)
            .await?;
        if fresh {
            topic.counters.published.fetch_add(1, Ordering::Relaxed);
        }
        tracing::trace!(topic = %topic.name, seq, fresh, "published with an idempotency key");
        Ok(self.id(seq))
    }

    /// Checks `event` and returns how to encode it once its number is known. Validated before
    /// appending (an event that cannot be sent must not take a number); the one encoding happens
    /// inside the append, once the id is known.
    fn encoder(&self, event: SseEvent) -> Result<EncodeWithSeq, HubError> {
        if event.id.is_some() {
            return Err(HubError::invalid_event(
                "the hub assigns ids; publish events without one",
            ));
        }
        super::encode::validate(&event)?;
        let epoch = self.inner.backend.epoch();
        Ok(Box::new(move |seq| {
            let with_id = event.id(format!("{epoch}-{seq}"));
            encode(&with_id).map(|e| e.bytes()).unwrap_or_default()
        }))
    }

    /// A subscriber stream of `topic`: the events after `last_event_id` (when the client sent one
    /// and it is still buffered), then live ones. Return it from an SSE handler.
    pub async fn subscribe(
        &self,
        topic: &str,
        last_event_id: &LastEventId,
    ) -> Result<SseBody, HubError> {
        self.subscribe_with(topic, last_event_id, SseOptions::new())
            .await
    }

    /// As [`subscribe`](Self::subscribe), with stream options (e.g. a cancel hook or a buffer
    /// policy). The hub's keep-alive and retry settings ([`HubOptions`]) replace those of `options`.
    pub async fn subscribe_with(
        &self,
        topic: &str,
        last_event_id: &LastEventId,
        options: SseOptions,
    ) -> Result<SseBody, HubError> {
        self.subscribe_with_history(topic, last_event_id, History::None, options)
            .await
    }

    /// As [`subscribe_with`](Self::subscribe_with), and a client that connects for the first
    /// time (no `Last-Event-ID`) first gets the retained events `history` asks for (a chat's
    /// last 50 messages, a dashboard's latest value). A reconnect with `Last-Event-ID` resumes
    /// exactly as always, whatever `history` says.
    ///
    /// ```
    /// use http_body_util::BodyExt;
    /// use nest_core::sse::hub::{History, Hub};
    /// use nest_core::sse::{LastEventId, SseOptions};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let hub = Hub::new();
    /// for text in ["a", "b", "c"] {
    ///     hub.publish("chat", text).await.unwrap();
    /// }
    /// let mut body = hub
    ///     .subscribe_with_history("chat", &LastEventId(None), History::Last(2), SseOptions::new())
    ///     .await
    ///     .unwrap();
    /// let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
    /// let text = String::from_utf8(frame.to_vec()).unwrap();
    /// assert!(text.contains("data: b\n") && text.contains("data: c\n") && !text.contains("data: a\n"));
    /// # });
    /// ```
    pub async fn subscribe_with_history(
        &self,
        topic: &str,
        last_event_id: &LastEventId,
        history: History,
        options: SseOptions,
    ) -> Result<SseBody, HubError> {
        let topic = self.topic(topic)?;
        let head = topic.log.clone().head().await?;
        let epoch = self.inner.backend.epoch();
        let resume = last_event_id
            .0
            .as_deref()
            .map(|id| match parse_id(id, epoch) {
                Some(seq) if seq <= head => Ok(seq),
                // Of this epoch but never given (Redis lost its last writes): resume at the head.
                Some(_) => Err(head),
                // Another epoch (before a restart, or another in-process instance), or no id of
                // this hub: the client knows nothing of this epoch, so it gets all of it that is
                // retained, whatever `history` says (a gap from its start is announced as one).
                None => Err(0),
            });
        let (after, gap) = match resume {
            None => (self.history_start(&topic, head, history).await?, None),
            Some(Ok(seq)) => (seq, None),
            Some(Err(at)) => (at, Some(self.gap_event("unknown-id", at)?)),
        };
        let mut options = options.keep_alive(self.inner.options.keep_alive);
        if let Some(retry) = self.inner.options.retry {
            options = options.retry(retry);
        }
        topic.counters.subscribers.fetch_add(1, Ordering::Relaxed);
        if gap.is_some() {
            topic.counters.gaps.fetch_add(1, Ordering::Relaxed);
            crate::metrics::hub_gap("unknown-id");
            tracing::debug!(topic = %topic.name, "subscriber resumed from an unknown id: gap event");
        }
        let cursor = Cursor {
            hub: self.clone(),
            topic,
            after,
            resuming: resume.is_some(),
            history: resume.is_none() && after < head,
            pending: gap,
            read: None,
            wait: AppendWait::default(),
        };
        Ok(SseBody::new(options, Some(Box::new(cursor))))
    }

    /// Where a first subscriber starts: after the event before the history it asked for.
    async fn history_start(
        &self,
        topic: &Topic,
        head: u64,
        history: History,
    ) -> Result<u64, HubError> {
        Ok(match history {
            History::None => head,
            History::Last(n) => head.saturating_sub(n as u64),
            History::Latest => head.saturating_sub(1),
            History::Since(age) => topic.log.clone().after_age(age).await?.min(head),
        })
    }

    fn gap_event(&self, reason: &str, resume_after: u64) -> Result<Bytes, HubError> {
        let event = SseEvent::json(&serde_json::json!({ "reason": reason }))
            .event(self.inner.options.gap_event.clone())
            .id(self.id(resume_after));
        Ok(encode(&event)?.bytes())
    }

    /// The figures of `topic`.
    pub fn stats(&self, topic: &str) -> TopicStats {
        self.lock_topics()
            .map
            .get(topic)
            .map_or_else(TopicStats::default, |t| TopicStats {
                subscribers: t.counters.subscribers.load(Ordering::Relaxed),
                published: t.counters.published.load(Ordering::Relaxed),
                gaps: t.counters.gaps.load(Ordering::Relaxed),
                lag_closes: t.counters.lag_closes.load(Ordering::Relaxed),
            })
    }

    /// Stores a record under `key` for `ttl` unless one lives there; whether it stored (see
    /// [`HubBackend::create_record`]: atomic across instances).
    pub(crate) async fn create_record(
        &self,
        key: &str,
        value: Bytes,
        ttl: Duration,
    ) -> Result<bool, HubError> {
        Ok(self.inner.backend.create_record(key, value, ttl).await?)
    }

    /// The record under `key` and the time it still lives.
    pub(crate) async fn record(&self, key: &str) -> Result<Option<Record>, HubError> {
        Ok(self.inner.backend.record(key).await?)
    }

    /// Replaces the record under `key` when its value is `expected` (a `ttl` of zero removes it).
    pub(crate) async fn replace_record(
        &self,
        key: &str,
        expected: Bytes,
        value: Bytes,
        ttl: Duration,
    ) -> Result<bool, HubError> {
        Ok(self
            .inner
            .backend
            .replace_record(key, expected, value, ttl)
            .await?)
    }

    /// The names of the topics the hub holds now (idle ones are evicted; see
    /// [`HubOptions::idle_topic_ttl`]).
    pub fn topics(&self) -> Vec<String> {
        self.lock_topics().map.keys().cloned().collect()
    }

    /// Removes the topic called `name` now, when nobody holds it (no subscriber, no publish in
    /// progress): a resumable stream's topic once the stream can no longer be read. Returns
    /// whether it was removed; one still held is left to the idle eviction.
    pub(crate) fn remove_topic(&self, name: &str) -> bool {
        let mut topics = self.lock_topics();
        let free = topics
            .map
            .get(name)
            .is_some_and(|topic| Arc::strong_count(topic) == 1);
        if free {
            topics.map.remove(name);
            self.inner.backend.evict(name);
        }
        free
    }
}

/// A debug line when idle topics were evicted (outside the topics' lock).
fn log_evicted(evicted: usize) {
    if evicted > 0 {
        tracing::debug!(evicted, "idle hub topics evicted");
    }
}

/// `EPOCH-SEQ` → `SEQ` when the epoch is this backend's.
fn parse_id(id: &str, epoch: u64) -> Option<u64> {
    let (e, seq) = id.trim().split_once('-')?;
    (e.parse::<u64>().ok()? == epoch).then_some(())?;
    seq.parse().ok()
}

/// A subscriber's position in a topic: the event source of its [`SseBody`].
struct Cursor {
    hub: Hub,
    topic: Arc<Topic>,
    after: u64,
    /// Until the first read succeeds, a gap is answered with a gap event whatever the policy
    /// (closing would make the client come back with the same id, forever).
    resuming: bool,
    /// The first read may start before the oldest retained event (a first subscriber asking
    /// for history): it starts at the oldest, silently.
    history: bool,
    pending: Option<Bytes>,
    read: Option<BoxFuture<'static, Result<Batch, BackendError>>>,
    /// On an in-process topic, how the cursor waits for the next append.
    wait: AppendWait,
}

/// Waiting for the next append on an in-process topic ([`BackendTopic::appended`]): one
/// registration, reused from wait to wait (no future per read).
#[derive(Default)]
struct AppendWait {
    registration: Option<Pin<Box<OwnedNotified>>>,
    /// Registered and not yet woken.
    waiting: bool,
}

impl AppendWait {
    /// The events after `after` in `log`, or `Pending` until `appended` wakes the task: it
    /// registers, then reads again, so an append between the last read and the registration is
    /// not missed.
    fn poll_read(
        &mut self,
        log: &dyn BackendTopic,
        appended: &Arc<tokio::sync::Notify>,
        after: u64,
        max_frame: usize,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Batch, BackendError>> {
        loop {
            if self.waiting {
                let woken = self.registration.as_mut().map(|r| r.as_mut().poll(cx));
                if let Some(Poll::Pending) = woken {
                    return Poll::Pending;
                }
                self.waiting = false;
            } else {
                let notified = appended.clone().notified_owned();
                let registration = match &mut self.registration {
                    Some(registration) => {
                        registration.set(notified);
                        registration
                    }
                    None => self.registration.insert(Box::pin(notified)),
                };
                self.waiting = registration.as_mut().poll(cx).is_pending();
            }
            if let Some(batch) = log.try_read(after, max_frame) {
                return Poll::Ready(batch);
            }
            if self.waiting {
                return Poll::Pending;
            }
        }
    }
}

impl FrameSource for Cursor {
    /// The next frame of this subscriber, or why its stream must end.
    fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
        max_frame: usize,
    ) -> Poll<Result<(Bytes, u64), EndReason>> {
        if let Some(gap) = self.pending.take() {
            return Poll::Ready(Ok((gap, 1)));
        }
        loop {
            let batch = self.read_batch(cx, max_frame);
            let Poll::Ready(batch) = batch else {
                return Poll::Pending;
            };
            match batch {
                // History asked for more than is retained: start at the oldest, no gap event.
                Ok(Batch::Gap { oldest }) if self.history => {
                    self.history = false;
                    self.after = oldest - 1;
                }
                batch => return self.deliver(batch),
            }
        }
    }
}

impl Cursor {
    /// One read of the topic after `self.after`.
    fn read_batch(
        &mut self,
        cx: &mut Context<'_>,
        max_frame: usize,
    ) -> Poll<Result<Batch, BackendError>> {
        let batch = match self.read.as_mut() {
            // A read is already waiting: poll it.
            Some(read) => match read.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(batch) => {
                    self.read = None;
                    batch
                }
            },
            // Try without waiting first (no future, no allocation), then wait.
            None => match self.topic.log.try_read(self.after, max_frame) {
                Some(batch) => batch,
                None => {
                    let log = &*self.topic.log;
                    if let Some(appended) = log.appended() {
                        return self
                            .wait
                            .poll_read(log, appended, self.after, max_frame, cx);
                    }
                    let mut read = self.topic.log.clone().read_after(self.after, max_frame);
                    match read.as_mut().poll(cx) {
                        Poll::Pending => {
                            self.read = Some(read);
                            return Poll::Pending;
                        }
                        Poll::Ready(batch) => batch,
                    }
                }
            },
        };
        Poll::Ready(batch)
    }

    /// What a read gives the stream: its events, a gap event, or the end.
    fn deliver(
        &mut self,
        batch: Result<Batch, BackendError>,
    ) -> Poll<Result<(Bytes, u64), EndReason>> {
        self.history = false;
        match batch {
            Ok(Batch::Events { bytes, last }) => {
                let events = last.saturating_sub(self.after);
                crate::metrics::sse_events(events);
                self.after = last;
                self.resuming = false;
                Poll::Ready(Ok((bytes, events)))
            }
            Ok(Batch::Gap { oldest }) => {
                let counters = &self.topic.counters;
                if self.hub.inner.options.lag == LagPolicy::Close && !self.resuming {
                    counters.lag_closes.fetch_add(1, Ordering::Relaxed);
                    if let Some(folded) = self.hub.inner.lag_log.due(self.hub.now_ms()) {
                        tracing::warn!(topic = %self.topic.name, others_since_last_line = folded, "subscriber fell behind the buffer: closing its stream");
                    }
                    return Poll::Ready(Err(EndReason::Overflow));
                }
                counters.gaps.fetch_add(1, Ordering::Relaxed);
                crate::metrics::hub_gap("lagged");
                if let Some(folded) = self.hub.inner.lag_log.due(self.hub.now_ms()) {
                    tracing::warn!(topic = %self.topic.name, missed_after = self.after, others_since_last_line = folded, "subscriber fell behind the buffer: gap event");
                }
                self.after = oldest - 1;
                self.resuming = false;
                Poll::Ready(
                    self.hub
                        .gap_event("lagged", self.after)
                        .map(|gap| (gap, 1))
                        .map_err(|_| EndReason::Failed),
                )
            }
            Err(err) => {
                if let Some(folded) = self.hub.inner.failure_log.due(self.hub.now_ms()) {
                    tracing::error!(topic = %self.topic.name, error = %err, others_since_last_line = folded, "hub backend failed: ending the subscriber");
                }
                Poll::Ready(Err(EndReason::Failed))
            }
        }
    }
}

impl Drop for Cursor {
    fn drop(&mut self) {
        self.topic
            .counters
            .subscribers
            .fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod history_tests;
#[cfg(test)]
mod tests;
