//! The hub: its topics (created on first use, evicted when idle, bounded in number and name),
//! publishing, figures, and the records resumable streams keep. Subscribing is in
//! [`cursor`](crate::cursor).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use nest_core::sse::{encode, SseEvent};

use crate::backend::{BackendTopic, EncodeWithSeq, HubBackend, Record, MAX_IDEMPOTENCY_KEY};
use crate::error::HubError;
use crate::id::HubId;
use crate::log_gate::LogGate;
use crate::memory::MemoryBackend;
use crate::options::{History, HubOptions};

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
    /// Subscribers closed by [`LagPolicy::Close`](crate::LagPolicy::Close).
    pub lag_closes: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) subscribers: AtomicUsize,
    pub(crate) published: AtomicU64,
    pub(crate) gaps: AtomicU64,
    pub(crate) lag_closes: AtomicU64,
}

pub(crate) struct Topic {
    pub(crate) name: String,
    pub(crate) log: Arc<dyn BackendTopic>,
    pub(crate) counters: Counters,
    /// When it was last published to or subscribed to, in ms since the hub started.
    pub(crate) last_used: AtomicU64,
    /// The hub, for what a subscriber does rarely (a gap event, a log line): here, not in each
    /// subscriber's cursor (8 bytes less per idle subscriber). Weak: the hub holds its topics.
    pub(crate) hub: Weak<HubInner>,
    /// The hub's backend, kept as long as the topic is: a subscriber's topic outlives a dropped
    /// hub, and its backend (Redis's read loop, say) goes on feeding it.
    _backend: Arc<dyn HubBackend>,
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
///
/// A subscriber's stream keeps its topic and the backend alive, not the hub: after the last
/// clone is dropped, live subscribers still get what the backend brings them (Redis: other
/// processes' events), and one that falls behind the buffer then ends
/// ([`EndReason::Overflow`](nest_core::sse::EndReason::Overflow)) instead of getting a gap
/// event.
#[derive(Clone)]
pub struct Hub {
    pub(crate) inner: Arc<HubInner>,
}

pub(crate) struct HubInner {
    pub(crate) backend: Arc<dyn HubBackend>,
    pub(crate) options: HubOptions,
    topics: Mutex<Topics>,
    pub(crate) started: tokio::time::Instant,
    /// The lines about subscribers ended by a backend failure, and about lagging subscribers.
    pub(crate) failure_log: LogGate,
    pub(crate) lag_log: LogGate,
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
    /// A hub on the in-process backend with the default [`Retention`](crate::Retention) and [`HubOptions`].
    pub fn new() -> Self {
        Self::with_backend(MemoryBackend::default(), HubOptions::default())
    }

    /// A hub on `backend`.
    pub fn with_backend(backend: impl HubBackend, options: HubOptions) -> Self {
        crate::metrics::register();
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

    pub(crate) fn now_ms(&self) -> u64 {
        self.inner.started.elapsed().as_millis() as u64
    }

    fn lock_topics(&self) -> std::sync::MutexGuard<'_, Topics> {
        self.inner.topics.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The topic called `name`, created on first use (after evicting idle topics when the map
    /// grew, and within [`HubOptions::max_topics`]).
    pub(crate) fn topic(&self, name: &str) -> Result<Arc<Topic>, HubError> {
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
                hub: Arc::downgrade(&self.inner),
                _backend: self.inner.backend.clone(),
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

    /// The id of event `seq` in the backend's current epoch.
    pub(crate) fn id(&self, seq: u64) -> HubId {
        HubId::new(self.inner.backend.epoch(), seq)
    }

    /// The backend's current epoch.
    pub(crate) fn epoch(&self) -> u64 {
        self.inner.backend.epoch()
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
        Ok(self.id(seq).to_string())
    }

    /// As [`publish`](Self::publish), once per idempotency `key` (1 to
    /// [`MAX_IDEMPOTENCY_KEY`] bytes, e.g. from an `Idempotency-Key` header): a publish retried
    /// with the same key (after a timeout, say, when the first may have been stored) returns
    /// the id the first got and stores nothing, on every instance of the backend. A topic
    /// remembers its last [`IDEMPOTENCY_KEYS`](crate::IDEMPOTENCY_KEYS) keys for [`IDEMPOTENCY_TTL`](crate::IDEMPOTENCY_TTL); keys die with the
    /// epoch (an id of the old epoch is never returned).
    ///
    /// ```
    /// use nest_hub::Hub;
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
        Ok(self.id(seq).to_string())
    }

    /// Checks `event` and returns how to encode it once its number is known. Validated before
    /// appending (an event that cannot be sent must not take a number); the one encoding happens
    /// inside the append, once the id is known.
    fn encoder(&self, event: SseEvent) -> Result<EncodeWithSeq, HubError> {
        if event.id_str().is_some() {
            return Err(HubError::invalid_event(
                "the hub assigns ids; publish events without one",
            ));
        }
        nest_core::sse::validate(&event)?;
        let epoch = self.inner.backend.epoch();
        Ok(Box::new(move |seq| {
            let with_id = event.id(HubId::new(epoch, seq).to_string());
            encode(&with_id).map(|e| e.bytes()).unwrap_or_default()
        }))
    }

    /// Where a first subscriber starts: after the event before the history it asked for.
    pub(crate) async fn history_start(
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

    pub(crate) fn gap_event(&self, reason: &str, resume_after: u64) -> Result<Bytes, HubError> {
        let event = SseEvent::json(&serde_json::json!({ "reason": reason }))
            .event(self.inner.options.gap_event.clone())
            .id(self.id(resume_after).to_string());
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

#[cfg(test)]
#[path = "history_tests.rs"]
mod history_tests;
#[cfg(test)]
#[path = "tests.rs"]
mod tests;
