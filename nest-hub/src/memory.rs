//! The in-process hub backend: a bounded ring per topic.

use std::collections::{HashMap, VecDeque};
use std::future::ready;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use tokio::time::Instant;

use super::backend::{
    BackendError, BackendTopic, Batch, EncodeWithSeq, HubBackend, Record, IDEMPOTENCY_KEYS,
    IDEMPOTENCY_TTL,
};
use crate::appends::Appends;

/// How much of a topic is kept for replay (and for slow subscribers to catch up from).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// At most this many events (at least 1).
    pub max_events: usize,
    /// Events older than this are dropped; `None`: no age limit.
    pub max_age: Option<Duration>,
    /// At most this many bytes of encoded events (the newest event is kept whatever its size),
    /// so a topic's memory does not grow with the size of what users publish.
    pub max_bytes: usize,
}

impl Default for Retention {
    /// The last 1,024 events and at most 1 MiB of them, any age.
    fn default() -> Self {
        Self {
            max_events: 1024,
            max_age: None,
            max_bytes: 1024 * 1024,
        }
    }
}

/// How many slots remember the last sequence number of evicted topics (by a hash of the name).
const EVICTED_SLOTS: usize = 1024;

/// How many records a [`MemoryBackend`] holds at most (as many as a hub's default
/// [`max_topics`](super::HubOptions::max_topics)).
const MAX_RECORDS: usize = 100_000;

/// The in-process backend: each topic is a ring of its last events, bounded by a [`Retention`].
/// Its epoch is the time it was created (with a random part), so ids from before a restart, or
/// from another instance, are recognised as unknown.
///
/// Its records (see [`HubBackend::create_record`]) live in a map beside the topics, at most
/// 100,000 of them: expired ones are dropped when the map grows, and past the bound creating
/// one fails. Their ttl is measured with tokio's clock, so a test may run them under the
/// paused clock.
#[derive(Debug)]
pub struct MemoryBackend {
    epoch: u64,
    retention: Retention,
    topics: Mutex<HashMap<String, Arc<MemoryTopic>>>,
    records: Mutex<Records>,
    /// The highest sequence number of any evicted topic whose name hashes to the slot: a topic
    /// created again numbers its events after it, so an id from before the eviction never
    /// names a new event (fixed memory, whatever the number of names).
    evicted: Box<[AtomicU64]>,
    hasher: std::collections::hash_map::RandomState,
}

impl MemoryBackend {
    fn slot(&self, name: &str) -> &AtomicU64 {
        use std::hash::BuildHasher;
        &self.evicted[(self.hasher.hash_one(name) % EVICTED_SLOTS as u64) as usize]
    }
}

impl MemoryBackend {
    /// A backend with the given retention.
    pub fn new(retention: Retention) -> Self {
        // The creation time in ms, times 2^20, plus a part that is random per process and counts
        // within it: hubs of one process never share an epoch, and two instances created in the
        // same millisecond do with a chance of one in a million, so an id from one is not taken
        // for a position in the other.
        static SALT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        static CREATED: AtomicU64 = AtomicU64::new(0);
        let salt = *SALT.get_or_init(|| {
            use std::hash::{BuildHasher, Hasher};
            std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish()
        });
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let low = salt.wrapping_add(CREATED.fetch_add(1, Ordering::Relaxed)) % (1 << 20);
        let epoch = (ms << 20) | low;
        Self {
            epoch,
            retention: Retention {
                max_events: retention.max_events.max(1),
                ..retention
            },
            topics: Mutex::new(HashMap::new()),
            records: Mutex::new(Records {
                map: HashMap::new(),
                sweep_at: 0,
                max: MAX_RECORDS,
            }),
            evicted: (0..EVICTED_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            hasher: Default::default(),
        }
    }
}

/// The records of a [`MemoryBackend`]: value and expiry by key.
#[derive(Debug)]
struct Records {
    map: HashMap<String, (Bytes, Instant)>,
    /// Expired records are dropped when a new one would make the map this large (doubling, so
    /// the sweep costs O(1) per record).
    sweep_at: usize,
    max: usize,
}

impl Records {
    /// The live record under `key`.
    fn live(&self, key: &str, now: Instant) -> Option<&(Bytes, Instant)> {
        self.map.get(key).filter(|(_, until)| *until > now)
    }

    fn create(&mut self, key: &str, value: Bytes, ttl: Duration) -> Result<bool, BackendError> {
        let now = Instant::now();
        if self.live(key, now).is_some() {
            return Ok(false);
        }
        if self.map.len() >= self.sweep_at.min(self.max) {
            self.map.retain(|_, (_, until)| *until > now);
            self.sweep_at = (self.map.len() * 2).max(64);
        }
        if self.map.len() >= self.max && !self.map.contains_key(key) {
            return Err(BackendError::new(format!(
                "the in-process hub holds {} records, its most",
                self.max
            )));
        }
        self.map.insert(key.to_owned(), (value, now + ttl));
        Ok(true)
    }

    fn replace(&mut self, key: &str, expected: &[u8], value: Bytes, ttl: Duration) -> bool {
        let now = Instant::now();
        if self.live(key, now).is_none_or(|(old, _)| old != expected) {
            return false;
        }
        if ttl.is_zero() {
            self.map.remove(key);
        } else {
            self.map.insert(key.to_owned(), (value, now + ttl));
        }
        true
    }
}

impl MemoryBackend {
    fn records(&self) -> std::sync::MutexGuard<'_, Records> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self::new(Retention::default())
    }
}

impl HubBackend for MemoryBackend {
    fn epoch(&self) -> u64 {
        self.epoch
    }

    fn topic(&self, name: &str) -> Arc<dyn BackendTopic> {
        let mut topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        topics
            .entry(name.to_owned())
            .or_insert_with(|| {
                Arc::new(MemoryTopic {
                    ring: Mutex::new(Ring {
                        events: VecDeque::new(),
                        bytes: 0,
                        keys: Keys::default(),
                    }),
                    appended: Appends::new(),
                    head: AtomicU64::new(self.slot(name).load(Ordering::Relaxed)),
                    retention: self.retention,
                })
            })
            .clone()
    }

    fn evict(&self, name: &str) {
        let removed = self
            .topics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        if let Some(topic) = removed {
            self.slot(name)
                .fetch_max(topic.head.load(Ordering::Acquire), Ordering::Relaxed);
        }
    }

    fn create_record(
        &self,
        key: &str,
        value: Bytes,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<bool, BackendError>> {
        Box::pin(ready(self.records().create(key, value, ttl)))
    }

    fn record(&self, key: &str) -> BoxFuture<'static, Result<Option<Record>, BackendError>> {
        let now = Instant::now();
        let record = self.records().live(key, now).map(|(value, until)| Record {
            value: value.clone(),
            ttl: *until - now,
        });
        Box::pin(ready(Ok(record)))
    }

    fn replace_record(
        &self,
        key: &str,
        expected: Bytes,
        value: Bytes,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<bool, BackendError>> {
        let replaced = self.records().replace(key, &expected, value, ttl);
        Box::pin(ready(Ok(replaced)))
    }
}

#[derive(Debug)]
struct MemoryTopic {
    ring: Mutex<Ring>,
    appended: Appends,
    /// The sequence number of the newest event (0: none yet). Written only under the ring's
    /// lock, so it is consistent with the ring there; read without the lock, it lets a
    /// subscriber with nothing new to read (the poll after each delivery) skip the lock.
    head: AtomicU64,
    retention: Retention,
}

#[derive(Debug)]
struct Ring {
    events: VecDeque<(u64, Instant, Bytes)>,
    /// The bytes of `events`.
    bytes: usize,
    /// The idempotency keys of the last publishes that carried one.
    keys: Keys,
}

/// A topic's idempotency keys: the number each was appended under, at most
/// [`IDEMPOTENCY_KEYS`] of them, each for [`IDEMPOTENCY_TTL`] (oldest first in `order`).
#[derive(Debug, Default)]
struct Keys {
    map: HashMap<String, u64>,
    order: VecDeque<(Instant, String)>,
}

impl Keys {
    /// The number appended under `key`, if it is still remembered.
    fn get(&mut self, key: &str, now: Instant) -> Option<u64> {
        while let Some((at, _)) = self.order.front() {
            if now.duration_since(*at) < IDEMPOTENCY_TTL && self.order.len() <= IDEMPOTENCY_KEYS {
                break;
            }
            if let Some((_, old)) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
        self.map.get(key).copied()
    }

    fn insert(&mut self, key: String, seq: u64, now: Instant) {
        self.order.push_back((now, key.clone()));
        self.map.insert(key, seq);
    }
}

impl Ring {
    fn pop(&mut self) {
        if let Some((_, _, bytes)) = self.events.pop_front() {
            self.bytes -= bytes.len();
        }
    }

    fn prune(&mut self, retention: &Retention) {
        while self.events.len() > retention.max_events
            || (self.bytes > retention.max_bytes && self.events.len() > 1)
        {
            self.pop();
        }
        if let Some(max_age) = retention.max_age {
            let now = Instant::now();
            while self
                .events
                .front()
                .is_some_and(|(_, at, _)| now.duration_since(*at) > max_age)
            {
                self.pop();
            }
        }
    }

    /// The oldest sequence number kept; `head + 1` when nothing is.
    fn oldest(&self, head: u64) -> u64 {
        self.events.front().map_or(head + 1, |(seq, _, _)| *seq)
    }
}

impl MemoryTopic {
    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What a read after `after` returns right now, if anything. One event is shared as is;
    /// several are copied into one buffer under the lock (one copy, one allocation per read).
    fn read_now(&self, after: u64, max_bytes: usize) -> Option<Batch> {
        if after >= self.head.load(Ordering::Acquire) {
            return None;
        }
        let mut ring = self.lock();
        if self.retention.max_age.is_some() {
            // The count bound is kept by `append`; age needs checking when reading too.
            ring.prune(&self.retention);
        }
        // Under the lock the head is consistent with the ring (and only grew since the check).
        let oldest = ring.oldest(self.head.load(Ordering::Relaxed));
        if after + 1 < oldest {
            return Some(Batch::Gap { oldest });
        }
        let start = (after + 1 - oldest) as usize;
        let mut events = ring.events.range(start..);
        let (first_seq, _, first) = events.next()?;
        let mut last = *first_seq;
        let mut size = first.len();
        let mut end = start + 1;
        for (seq, _, bytes) in events {
            if size + bytes.len() > max_bytes {
                break;
            }
            size += bytes.len();
            last = *seq;
            end += 1;
        }
        let bytes = if end == start + 1 {
            first.clone()
        } else {
            let mut buf = BytesMut::with_capacity(size);
            for (_, _, bytes) in ring.events.range(start..end) {
                buf.extend_from_slice(bytes);
            }
            buf.freeze()
        };
        Some(Batch::Events { bytes, last })
    }
}

impl MemoryTopic {
    /// Appends under the ring's lock; the caller wakes the readers.
    fn append_locked(&self, ring: &mut Ring, encode: EncodeWithSeq) -> u64 {
        let seq = self.head.load(Ordering::Relaxed) + 1;
        let bytes = encode(seq);
        ring.bytes += bytes.len();
        ring.events.push_back((seq, Instant::now(), bytes));
        self.head.store(seq, Ordering::Release);
        ring.prune(&self.retention);
        seq
    }
}

impl BackendTopic for MemoryTopic {
    fn append(
        self: Arc<Self>,
        encode: EncodeWithSeq,
    ) -> BoxFuture<'static, Result<u64, BackendError>> {
        let seq = self.append_locked(&mut self.lock(), encode);
        self.appended.notify();
        Box::pin(ready(Ok(seq)))
    }

    fn append_once(
        self: Arc<Self>,
        key: String,
        encode: EncodeWithSeq,
    ) -> BoxFuture<'static, Result<(u64, bool), BackendError>> {
        let now = Instant::now();
        let appended = {
            let mut ring = self.lock();
            match ring.keys.get(&key, now) {
                Some(seq) => (seq, false),
                None => {
                    let seq = self.append_locked(&mut ring, encode);
                    ring.keys.insert(key, seq, now);
                    (seq, true)
                }
            }
        };
        if appended.1 {
            self.appended.notify();
        }
        Box::pin(ready(Ok(appended)))
    }

    fn read_after(
        self: Arc<Self>,
        after: u64,
        max_bytes: usize,
    ) -> BoxFuture<'static, Result<Batch, BackendError>> {
        if let Some(batch) = self.read_now(after, max_bytes) {
            return Box::pin(ready(Ok(batch)));
        }
        Box::pin(async move {
            let mut wait = self.appended.wait();
            let batch =
                std::future::poll_fn(|cx| wait.poll_with(cx, || self.read_now(after, max_bytes)))
                    .await;
            Ok(batch)
        })
    }

    fn try_read(&self, after: u64, max_bytes: usize) -> Option<Result<Batch, BackendError>> {
        self.read_now(after, max_bytes).map(Ok)
    }

    fn appended(&self) -> Option<&Appends> {
        Some(&self.appended)
    }

    fn after_age(self: Arc<Self>, age: Duration) -> BoxFuture<'static, Result<u64, BackendError>> {
        let now = Instant::now();
        let mut ring = self.lock();
        ring.prune(&self.retention);
        let head = self.head.load(Ordering::Relaxed);
        let after = ring
            .events
            .iter()
            .find(|(_, at, _)| now.duration_since(*at) <= age)
            .map_or(head, |(seq, _, _)| seq - 1);
        Box::pin(ready(Ok(after)))
    }

    fn head(self: Arc<Self>) -> BoxFuture<'static, Result<u64, BackendError>> {
        let head = self.head.load(Ordering::Acquire);
        Box::pin(ready(Ok(head)))
    }
}

#[cfg(test)]
mod record_tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn records_expire_by_the_tokio_clock() {
        let backend = MemoryBackend::default();
        let ttl = Duration::from_secs(10);
        assert!(backend.create_record("k", "v".into(), ttl).await.unwrap());
        tokio::time::advance(Duration::from_secs(4)).await;
        let record = backend.record("k").await.unwrap().unwrap();
        assert_eq!(record.ttl, Duration::from_secs(6));
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(backend.record("k").await.unwrap(), None, "gone at its ttl");
        let replaced = backend.replace_record("k", "v".into(), "w".into(), ttl);
        assert!(
            !replaced.await.unwrap(),
            "an expired record is not replaced"
        );
        assert!(
            backend.create_record("k", "w".into(), ttl).await.unwrap(),
            "an expired record's key can be created again"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn records_are_bounded_and_expired_ones_make_room() {
        let backend = MemoryBackend::default();
        backend.records().max = 3;
        let short = Duration::from_secs(1);
        for key in ["a", "b", "c"] {
            assert!(backend.create_record(key, "v".into(), short).await.unwrap());
        }
        let err = backend
            .create_record("d", "v".into(), short)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("3 records"), "{err}");
        tokio::time::advance(short).await;
        // At the bound, the expired ones are dropped first.
        assert!(backend.create_record("d", "v".into(), short).await.unwrap());
        assert_eq!(backend.records().map.len(), 1);
    }
}
