//! One topic on Redis: appends go to Redis by script; reads come from the local window the read
//! loop fills, or from Redis by range when they start before it. With it, what the backend, its
//! topics and its read loop share ([`Shared`], which holds the topics: the two live together).

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use redis::aio::ConnectionManager;
use tokio::sync::Notify;

use super::failure::{call, Failure};
use super::record::Records;
use super::scripts::{Range, Scripts, TopicKeys};
use super::window::{Read, Window};
use crate::{BackendError, BackendTopic, Batch, EncodeWithSeq, Retention};

/// How long the wake stream of an instance is kept after its last use.
const WAKE_TTL: Duration = Duration::from_secs(24 * 3600);

/// How long a read that found Redis unavailable waits before trying again (it tries sooner
/// when the read loop is connected again).
const RETRY_READ: Duration = Duration::from_secs(1);

/// What the backend, its topics and its read loop share.
pub(super) struct Shared {
    pub(super) prefix: String,
    pub(super) retention: Retention,
    pub(super) timeout: Duration,
    pub(super) client: redis::Client,
    /// Commands (appends, range reads); reconnects by itself.
    pub(super) conn: ConnectionManager,
    pub(super) scripts: Scripts,
    /// The records' commands.
    pub(super) records: Records,
    pub(super) epoch: AtomicU64,
    pub(super) topics: Mutex<HashMap<String, Arc<RedisTopic>>>,
    /// This instance's wake stream, in the read loop's `XREAD`.
    pub(super) wake_key: String,
    /// A wake was sent since the read loop last built its `XREAD`.
    pub(super) wake_sent: AtomicBool,
    /// Notified when the read loop is connected again.
    pub(super) online: Notify,
    pub(super) random: RandomState,
    pub(super) stand_ins: AtomicU64,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("prefix", &self.prefix)
            .field("epoch", &self.epoch())
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(super) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    pub(super) fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    pub(super) fn topics(&self) -> MutexGuard<'_, HashMap<String, Arc<RedisTopic>>> {
        self.topics.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The followed topics with their read cursor: (topic, head, window generation).
    pub(super) fn followed(&self) -> Vec<(Arc<RedisTopic>, u64, u64)> {
        self.topics()
            .values()
            .filter_map(|topic| {
                let (head, generation) = topic.cursor()?;
                Some((topic.clone(), head, generation))
            })
            .collect()
    }

    /// A number that stands in for the sequence number while encoding: 20 random digits, so
    /// that it is found where the number goes and nowhere else.
    pub(super) fn stand_in(&self) -> u64 {
        let n = self.stand_ins.fetch_add(1, Ordering::Relaxed);
        twenty_digits(self.random.hash_one(n))
    }

    /// Wakes the read loop so that it adds a newly followed topic to its `XREAD`.
    pub(super) async fn wake(&self) {
        if self.wake_sent.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut wake = redis::pipe();
        wake.cmd("XADD")
            .arg(&self.wake_key)
            .arg("MAXLEN")
            .arg(1)
            .arg("*")
            .arg("w")
            .arg(1)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&self.wake_key)
            .arg(WAKE_TTL.as_millis() as u64)
            .ignore();
        // When this fails the loop is reconnecting or its `XREAD` times out soon: either way
        // its next `XREAD` has the topic.
        let _ = call(self.timeout, wake.query_async::<()>(&mut self.conn())).await;
    }

    /// Waits until the read loop is connected again, or [`RETRY_READ`].
    pub(super) async fn until_online(&self) {
        let _ = tokio::time::timeout(RETRY_READ, self.online.notified()).await;
    }

    /// Takes the epoch in Redis (made now when missing) after a script found it changed.
    pub(super) async fn history_lost(&self) {
        match self.scripts.epoch(&mut self.conn()).await {
            Ok(epoch) => self.adopt_epoch(epoch),
            Err(failure) => {
                tracing::debug!(error = %failure.into_error(), "redis hub: epoch not read")
            }
        }
    }

    /// Makes `epoch` the backend's; when it is a new one, every window is forgotten and the
    /// reads waiting on them fail (their numbers belong to the old epoch).
    pub(super) fn adopt_epoch(&self, epoch: u64) {
        let old = self.epoch.swap(epoch, Ordering::AcqRel);
        if old == epoch {
            return;
        }
        tracing::warn!(
            old,
            new = epoch,
            "redis hub: Redis lost its data (new epoch): open streams end and their clients \
             resync through the gap event"
        );
        for topic in self.topics().values() {
            topic.reset();
        }
    }

    /// Runs `call` with the epoch; when Redis has another epoch, adopts it and runs it again
    /// (for reads that carry no event of the old epoch).
    pub(super) async fn retry_epoch<T, F, Fut>(&self, call: F) -> Result<T, BackendError>
    where
        F: Fn(u64) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        match call(self.epoch()).await {
            Err(Failure::Epoch) => {
                self.history_lost().await;
                call(self.epoch()).await.map_err(Failure::into_error)
            }
            result => result.map_err(Failure::into_error),
        }
    }
}

/// A topic of a [`RedisBackend`](super::RedisBackend).
#[derive(Debug)]
pub(super) struct RedisTopic {
    shared: Arc<Shared>,
    keys: TopicKeys,
    window: Mutex<Window>,
    /// The window's head while it is followed (0 otherwise), written under its lock: a
    /// subscriber with nothing new to read skips the lock.
    head: AtomicU64,
    /// Notified when the read loop added events, or when the window was reset.
    appended: Notify,
    /// The highest number this instance knows Redis gave (appended here, or read by the loop).
    known: AtomicU64,
}

impl RedisTopic {
    pub(super) fn new(shared: Arc<Shared>, name: &str) -> Self {
        let keys = TopicKeys::new(&shared.prefix, name);
        Self {
            shared,
            keys,
            window: Mutex::new(Window::default()),
            head: AtomicU64::new(0),
            appended: Notify::new(),
            known: AtomicU64::new(0),
        }
    }

    fn window(&self) -> MutexGuard<'_, Window> {
        self.window.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The topic's keys.
    pub(super) fn keys(&self) -> &TopicKeys {
        &self.keys
    }

    /// The highest number this instance saw Redis give, 0 for none (or since a reset).
    pub(super) fn known(&self) -> u64 {
        self.known.load(Ordering::Acquire)
    }

    /// For the read loop: the number to read after and the window's generation, while the
    /// topic is followed.
    pub(super) fn cursor(&self) -> Option<(u64, u64)> {
        let window = self.window();
        window
            .followed_head()
            .map(|head| (head, window.generation()))
    }

    /// The read loop's delivery: events `(seq, ms, bytes)` read after the cursor of
    /// `generation` (dropped when the window was reset since).
    pub(super) fn deliver(&self, generation: u64, events: Vec<(u64, u64, Bytes)>) {
        {
            let mut window = self.window();
            if window.generation() != generation {
                return;
            }
            for (seq, ms, bytes) in events {
                window.push(seq, ms, bytes, &self.shared.retention);
            }
            let head = window.followed_head().unwrap_or(0);
            self.head.store(head, Ordering::Release);
            self.known.fetch_max(head, Ordering::AcqRel);
        }
        self.appended.notify_waiters();
    }

    /// Forgets the window (Redis lost its data); waiting reads fail.
    pub(super) fn reset(&self) {
        {
            let mut window = self.window();
            window.reset();
            self.head.store(0, Ordering::Release);
            self.known.store(0, Ordering::Release);
        }
        self.appended.notify_waiters();
    }

    /// Waits until the events after `after` are there (locally or in Redis), for a read that
    /// started in window generation `generation`.
    async fn read_waiting(
        self: Arc<Self>,
        after: u64,
        max_bytes: usize,
        generation: u64,
    ) -> Result<Batch, BackendError> {
        loop {
            let appended = self.appended.notified();
            tokio::pin!(appended);
            appended.as_mut().enable();
            let read = {
                let mut window = self.window();
                if window.generation() != generation {
                    return Err(history_lost());
                }
                window.read(after, max_bytes, &self.shared.retention)
            };
            match read {
                Read::Batch(batch) => return Ok(batch),
                Read::Wait => appended.await,
                Read::Remote => match self.read_redis(after, max_bytes, generation).await? {
                    Range::Batch(batch) => return Ok(batch),
                    Range::Empty { head } => self.follow(head, generation).await,
                },
            }
        }
    }

    /// A range read in Redis; while Redis is unavailable it waits and tries again, so the
    /// stream stays open.
    async fn read_redis(
        &self,
        after: u64,
        max_bytes: usize,
        generation: u64,
    ) -> Result<Range, BackendError> {
        loop {
            let epoch = self.shared.epoch();
            let read = self
                .shared
                .scripts
                .read(&mut self.shared.conn(), &self.keys, epoch, after, max_bytes)
                .await;
            if self.window().generation() != generation {
                return Err(history_lost());
            }
            match read {
                Ok(range) => return Ok(range),
                Err(Failure::Unavailable(_)) => self.shared.until_online().await,
                Err(Failure::Epoch) => {
                    self.shared.history_lost().await;
                    return Err(history_lost());
                }
                Err(Failure::Failed(err)) => return Err(err),
            }
        }
    }

    /// Has the read loop follow the topic from `head` on (it is woken to add the topic).
    async fn follow(&self, head: u64, generation: u64) {
        let started = {
            let mut window = self.window();
            let started = window.generation() == generation && window.follow(head);
            if started {
                self.head.store(head, Ordering::Release);
            }
            started
        };
        if started {
            self.shared.wake().await;
        }
    }
}

fn history_lost() -> BackendError {
    BackendError::new("Redis lost the hub's history (its epoch changed): the stream must resync")
}

impl RedisTopic {
    /// Appends by script (once per idempotency key `once`, when given).
    fn append_script(
        self: Arc<Self>,
        once: Option<String>,
        encode: EncodeWithSeq,
    ) -> BoxFuture<'static, Result<(u64, bool), BackendError>> {
        // The number is assigned in Redis: encode with a stand-in number and let the script put
        // the real one where the stand-in is.
        let epoch = self.shared.epoch();
        let stand_in = self.shared.stand_in();
        let parts = split(&encode(stand_in), stand_in);
        Box::pin(async move {
            let shared = &self.shared;
            let once = once.as_deref();
            match shared
                .scripts
                .append(&mut shared.conn(), &self.keys, epoch, once, parts)
                .await
            {
                Ok((seq, appended)) => {
                    self.known.fetch_max(seq, Ordering::AcqRel);
                    Ok((seq, appended))
                }
                Err(Failure::Epoch) => {
                    shared.history_lost().await;
                    Err(BackendError::new(
                        "Redis lost the hub's history (its epoch changed): the event was not \
                         published; publish it again",
                    ))
                }
                Err(failure) => Err(failure.into_error()),
            }
        })
    }
}

impl BackendTopic for RedisTopic {
    fn append(
        self: Arc<Self>,
        encode: EncodeWithSeq,
    ) -> BoxFuture<'static, Result<u64, BackendError>> {
        let append = self.append_script(None, encode);
        Box::pin(async move { append.await.map(|(seq, _)| seq) })
    }

    /// `SET … PX` of the key in the append script, beside a list that keeps the topic's newest
    /// keys: atomic across instances, and persisted as the events are.
    fn append_once(
        self: Arc<Self>,
        key: String,
        encode: EncodeWithSeq,
    ) -> BoxFuture<'static, Result<(u64, bool), BackendError>> {
        self.append_script(Some(key), encode)
    }

    fn read_after(
        self: Arc<Self>,
        after: u64,
        max_bytes: usize,
    ) -> BoxFuture<'static, Result<Batch, BackendError>> {
        // Before reading: a reset from now on makes this read fail.
        let generation = self.window().generation();
        if let Some(batch) = self.try_read(after, max_bytes) {
            return Box::pin(std::future::ready(batch));
        }
        Box::pin(self.read_waiting(after, max_bytes, generation))
    }

    fn try_read(&self, after: u64, max_bytes: usize) -> Option<Result<Batch, BackendError>> {
        if after >= self.head.load(Ordering::Acquire) {
            return None;
        }
        match self.window().read(after, max_bytes, &self.shared.retention) {
            Read::Batch(batch) => Some(Ok(batch)),
            Read::Wait | Read::Remote => None,
        }
    }

    fn head(self: Arc<Self>) -> BoxFuture<'static, Result<u64, BackendError>> {
        Box::pin(async move {
            let (shared, keys) = (&self.shared, &self.keys);
            shared
                .retry_epoch(|epoch| async move {
                    shared.scripts.head(&mut shared.conn(), keys, epoch).await
                })
                .await
        })
    }

    fn after_age(self: Arc<Self>, age: Duration) -> BoxFuture<'static, Result<u64, BackendError>> {
        // Events older than the retention's age are gone, whatever `age` asks.
        let age = self
            .shared
            .retention
            .max_age
            .map_or(age, |max| max.min(age));
        let age_ms = age.as_millis().min(u64::MAX as u128) as u64;
        Box::pin(async move {
            let (shared, keys) = (&self.shared, &self.keys);
            shared
                .retry_epoch(|epoch| async move {
                    let mut conn = shared.conn();
                    shared
                        .scripts
                        .after_age(&mut conn, keys, epoch, age_ms)
                        .await
                })
                .await
        })
    }
}

/// A number of 20 decimal digits (the most a `u64` has) made from `random`: no sequence
/// number, which has fewer, is ever mistaken for one.
fn twenty_digits(random: u64) -> u64 {
    const LOW: u64 = 10_000_000_000_000_000_000;
    LOW + random % (u64::MAX - LOW)
}

/// `bytes` cut at each decimal `stand_in`.
fn split(bytes: &Bytes, stand_in: u64) -> Vec<Bytes> {
    let needle = stand_in.to_string();
    let needle = needle.as_bytes();
    let mut parts = Vec::with_capacity(2);
    let mut start = 0;
    let mut at = 0;
    while at + needle.len() <= bytes.len() {
        if &bytes[at..at + needle.len()] == needle {
            parts.push(bytes.slice(start..at));
            at += needle.len();
            start = at;
        } else {
            at += 1;
        }
    }
    parts.push(bytes.slice(start..));
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stand_ins_have_twenty_digits() {
        for random in [0, 1, 42, u64::MAX / 2, u64::MAX - 1, u64::MAX] {
            assert_eq!(twenty_digits(random).to_string().len(), 20, "{random}");
        }
        assert_ne!(twenty_digits(1), twenty_digits(2));
    }

    #[test]
    fn split_cuts_at_every_stand_in() {
        let bytes =
            Bytes::from_static(b"id: 7-12345678901234567890\ndata: 12345678901234567890\n\n");
        let parts = split(&bytes, 12345678901234567890);
        assert_eq!(parts, ["id: 7-", "\ndata: ", "\n\n"]);
        assert_eq!(
            split(&Bytes::from_static(b"a:1"), 12345678901234567890),
            ["a:1"]
        );
    }
}
