//! The hub's storage and transport, behind a trait: append with an id, read after an id, tail live.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;

use crate::appends::Appends;

/// How long a publish's idempotency key is remembered (see [`BackendTopic::append_once`]):
/// 10 minutes, time enough for a publisher to retry a publish that failed or timed out.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(600);

/// How many idempotency keys a topic remembers at most (the newest; an older key is forgotten
/// before its ttl when more publishes carry keys): 1,024.
pub const IDEMPOTENCY_KEYS: usize = 1024;

/// The longest idempotency key, in bytes: 128.
pub const MAX_IDEMPOTENCY_KEY: usize = 128;

/// Encodes an event once its sequence number is known (the id is part of its wire bytes).
pub type EncodeWithSeq = Box<dyn FnOnce(u64) -> Bytes + Send>;

/// Where a hub keeps its topics. The in-process default is [`MemoryBackend`](super::MemoryBackend);
/// a distributed one (Redis Streams, say) implements the same two traits, and handlers don't change.
/// Run `hub::conformance::run` (feature `test-util`) against every backend.
pub trait HubBackend: Send + Sync + 'static {
    /// The backend's epoch: a number that differs for every incarnation of its id space (e.g. the
    /// start time of an in-process buffer), so an id from before a restart never matches a new event.
    fn epoch(&self) -> u64;

    /// The topic called `name`, created on first use.
    fn topic(&self, name: &str) -> Arc<dyn BackendTopic>;

    /// Forgets the topic called `name` (the hub evicts topics nobody used for a while, so memory
    /// does not grow with the names users choose). A topic created again under that name must
    /// never reuse a number given before (in-process: it numbers after the old head). The
    /// default keeps everything (a backend whose topics live elsewhere).
    fn evict(&self, name: &str) {
        let _ = name;
    }

    /// Stores `value` under `key` for `ttl` unless a record lives there already; returns whether
    /// it stored. Atomic: of several callers (on several instances) racing for one key, exactly
    /// one gets `true`. Records are small shared state beside the topics (which resumable
    /// streams exist, and in what state), seen alike by every instance on the backend; a record
    /// is gone once its ttl has passed. The default fails: a backend without records cannot
    /// serve [`Resumable`](crate::resumable::Resumable) streams.
    fn create_record(
        &self,
        key: &str,
        value: Bytes,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<bool, BackendError>> {
        let _ = (key, value, ttl);
        Box::pin(std::future::ready(Err(no_records())))
    }

    /// The record under `key` with the time it still lives, `None` when there is none (never
    /// stored, or expired).
    fn record(&self, key: &str) -> BoxFuture<'static, Result<Option<Record>, BackendError>> {
        let _ = key;
        Box::pin(std::future::ready(Err(no_records())))
    }

    /// Replaces the record under `key` by `value` for `ttl` when its value is `expected` (an
    /// atomic compare-and-set: a change made meanwhile by another instance is never
    /// overwritten); a `ttl` of zero removes it. Returns whether it replaced; a record that is
    /// gone is not replaced.
    fn replace_record(
        &self,
        key: &str,
        expected: Bytes,
        value: Bytes,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<bool, BackendError>> {
        let _ = (key, expected, value, ttl);
        Box::pin(std::future::ready(Err(no_records())))
    }
}

fn no_records() -> BackendError {
    BackendError::new("this hub backend keeps no records: resumable streams are not available")
}

/// A record of a [`HubBackend`]: its value, and how long it still lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The value stored.
    pub value: Bytes,
    /// The time left before it expires.
    pub ttl: Duration,
}

/// One topic of a backend: an append-only log with bounded retention.
pub trait BackendTopic: Send + Sync + 'static {
    /// Appends an event: assigns the next sequence number (1, 2, 3… never reused), calls `encode`
    /// with it, stores the bytes, wakes the readers, and returns the number.
    fn append(
        self: Arc<Self>,
        encode: EncodeWithSeq,
    ) -> BoxFuture<'static, Result<u64, BackendError>>;

    /// As [`append`](Self::append), once per idempotency `key`: when an event of this epoch was
    /// appended under `key` within [`IDEMPOTENCY_TTL`] and among the topic's last
    /// [`IDEMPOTENCY_KEYS`] keys, returns its number and `false`, and stores nothing;
    /// otherwise appends and returns the new number and `true`. Atomic: of
    /// several publishes racing with one key (on several instances), one appends. The default
    /// fails: a backend without it cannot take idempotency keys.
    fn append_once(
        self: Arc<Self>,
        key: String,
        encode: EncodeWithSeq,
    ) -> BoxFuture<'static, Result<(u64, bool), BackendError>> {
        let _ = (key, encode);
        Box::pin(std::future::ready(Err(BackendError::new(
            "this hub backend keeps no idempotency keys",
        ))))
    }

    /// The events after sequence number `after`, in order, up to about `max_bytes` (at least one);
    /// waits until there is one. When some events after `after` are no longer retained, returns
    /// [`Batch::Gap`] instead.
    fn read_after(
        self: Arc<Self>,
        after: u64,
        max_bytes: usize,
    ) -> BoxFuture<'static, Result<Batch, BackendError>>;

    /// As [`read_after`](Self::read_after) without waiting: `None` when nothing is there yet (or
    /// the backend cannot tell without waiting, the default). Subscribers try this first, so an
    /// in-process backend delivers without allocating a future per read.
    fn try_read(&self, after: u64, max_bytes: usize) -> Option<Result<Batch, BackendError>> {
        let _ = (after, max_bytes);
        None
    }

    /// For an in-process backend: the [`Appends`] whose [`notify`](Appends::notify) wakes
    /// readers after each append. With it a subscriber waits without a future per read (it
    /// registers, tries [`try_read`](Self::try_read) and sleeps until the next append); `None`,
    /// the default, makes it wait with [`read_after`](Self::read_after).
    fn appended(&self) -> Option<&Appends> {
        None
    }

    /// The newest sequence number (0 for an empty topic).
    fn head(self: Arc<Self>) -> BoxFuture<'static, Result<u64, BackendError>>;

    /// The sequence number after which the retained events are younger than `age` (the head
    /// when none is), for [`History::Since`](super::History::Since). The default is an error:
    /// a backend that keeps no append times cannot answer.
    fn after_age(self: Arc<Self>, age: Duration) -> BoxFuture<'static, Result<u64, BackendError>> {
        let _ = age;
        Box::pin(std::future::ready(Err(BackendError::new(
            "this hub backend keeps no event times: History::Since is not available",
        ))))
    }
}

/// What a read returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Batch {
    /// Consecutive events, their wire bytes concatenated (one frame for the connection); `last`
    /// is the sequence number of the last one.
    Events {
        /// The events' wire bytes, in order, concatenated.
        bytes: Bytes,
        /// The sequence number of the last event.
        last: u64,
    },
    /// Events after the requested number are gone; the oldest retained one has number `oldest`
    /// (or `head + 1` when none is retained).
    Gap {
        /// The oldest sequence number still retained.
        oldest: u64,
    },
}

/// A backend failure (lost connection to a store, say): its own message in `Display`, the cause
/// (e.g. the store client's error) in `source()`.
#[derive(Debug)]
pub struct BackendError {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl BackendError {
    /// A failure described by `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// A failure described by `message`, caused by `source`.
    pub fn with_source(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(source.into()),
        }
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}
