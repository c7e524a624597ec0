//! One topic on Redis: appends go to Redis by script; reads come from the local window the read
//! loop fills, or from Redis by range when they start before it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use tokio::sync::Notify;

use super::failure::Failure;
use super::scripts::{Range, TopicKeys};
use super::window::{Read, Window};
use super::Shared;
use crate::sse::hub::{BackendError, BackendTopic, Batch, EncodeWithSeq};

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
