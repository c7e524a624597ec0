//! A hub backend on Redis Streams (feature `redis`), so that several nest instances serve one
//! resumable stream: an event published on any instance reaches the subscribers of every
//! instance, with the same id everywhere, and a client that reconnects to another instance with
//! its `Last-Event-ID` resumes without a gap.
//!
//! # Example
//!
//! `no_run`: it needs a Redis server at the URL.
//!
//! ```no_run
//! use nest_hub::{Hub, HubOptions, RedisBackend, RedisConfig, Retention};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = RedisConfig::new("redis://127.0.0.1:6379/")
//!     .prefix("chat:")
//!     .retention(Retention { max_events: 1000, ..Retention::default() });
//! let hub = Hub::with_backend(RedisBackend::connect(config).await?, HubOptions::new());
//! // `EPOCH-SEQ`, the same on every instance, and the epoch survives a restart of the app.
//! let id = hub.publish("room", "hello").await?;
//! println!("published {id}");
//! # Ok(())
//! # }
//! ```

mod failure;
mod record;
mod scripts;
mod tail;
mod topic;
mod window;

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::{BackendError, BackendTopic, HubBackend, Record, Retention};
use failure::{call, Failure};
use record::Records;
use scripts::Scripts;
use topic::{RedisTopic, Shared};

/// The settings of a [`RedisBackend`]: where Redis is, the key prefix, the retention, and how
/// long a call to Redis may take.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use nest_hub::{RedisBackend, RedisConfig, Retention};
///
/// // The defaults: keys under `nest:hub:`, `Retention::default()`, 2 s per call.
/// let config = RedisConfig::new("redis://127.0.0.1:6379/");
/// // Customised: another prefix (several apps on one Redis), 10,000 events, 5 s.
/// let config = RedisConfig::new("redis://:secret@redis.internal:6379/2")
///     .prefix("shop:")
///     .retention(Retention { max_events: 10_000, ..Retention::default() })
///     .timeout(Duration::from_secs(5));
/// assert!(!format!("{config:?}").contains("secret"), "Debug hides the password");
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// // A bad URL is reported by `connect`, naming the setting.
/// let err = RedisBackend::connect(RedisConfig::new("not a url")).await.unwrap_err();
/// assert!(err.to_string().contains("RedisConfig::new"));
/// # });
/// ```
#[derive(Clone)]
#[must_use]
pub struct RedisConfig {
    url: String,
    prefix: String,
    retention: Retention,
    timeout: Duration,
}

impl RedisConfig {
    /// Redis at `url` (`redis://[[user]:password@]host[:port][/db]`; `rediss://` needs one of the
    /// `redis` crate's TLS features, enabled in the app's own `Cargo.toml`), keys under
    /// `nest:hub:`, [`Retention::default`], 2 s per call.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "nest:hub:".to_owned(),
            retention: Retention::default(),
            timeout: failure::DEFAULT_TIMEOUT,
        }
    }

    /// The prefix of every key the backend uses (default `nest:hub:`). Instances that share a
    /// hub share a prefix; different apps on one Redis use different ones.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How much of each topic is kept (default [`Retention::default`]). Every instance of one
    /// hub must use the same.
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = Retention {
            max_events: retention.max_events.max(1),
            ..retention
        };
        self
    }

    /// How long connecting or one call to Redis may take before it counts as unavailable
    /// (default 2 s): a publish fails after at most about this long when Redis is away.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password: show what is after the `@` only.
        let url = match (self.url.split_once("://"), self.url.rsplit_once('@')) {
            (Some((scheme, _)), Some((_, host))) => format!("{scheme}://…@{host}"),
            _ => self.url.clone(),
        };
        f.debug_struct("RedisConfig")
            .field("url", &url)
            .field("prefix", &self.prefix)
            .field("retention", &self.retention)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A [`HubBackend`] on Redis Streams, shared by every instance that connects to the same Redis
/// with the same prefix.
///
/// # Example
///
/// `no_run`: it needs a Redis server at the URL.
///
/// ```no_run
/// use nest_hub::{Hub, HubId, HubOptions, RedisBackend, RedisConfig};
/// use nest_core::sse::LastEventId;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = RedisConfig::new("redis://127.0.0.1:6379/").prefix("demo:");
/// // Two instances (two processes, usually) on one Redis.
/// let a = Hub::with_backend(RedisBackend::connect(config.clone()).await?, HubOptions::new());
/// let b = Hub::with_backend(RedisBackend::connect(config).await?, HubOptions::new());
/// let first = a.publish("room", "one").await?;
/// let second = b.publish("room", "two").await?;
/// let (one, two) = (HubId::parse(&first).unwrap(), HubId::parse(&second).unwrap());
/// assert_eq!(one.epoch(), two.epoch(), "one epoch");
/// // A client that saw `first` from `a` resumes on `b` with `two`, then live events.
/// let stream = b.subscribe("room", &LastEventId(Some(first))).await?;
/// # drop(stream);
/// # Ok(())
/// # }
/// ```
///
/// **Ids.** Each topic numbers its events 1, 2, 3… in Redis: a Lua script takes the next
/// number and appends the event under it in one atomic step, so a number means the same event
/// on every instance, is never reused, and no event is ever stored after a later one. The
/// epoch (the `EPOCH` of `EPOCH-SEQ`) is kept in Redis under `PREFIX epoch`, made from Redis's
/// clock when missing, and read by [`connect`](Self::connect).
///
/// **History lost.** When Redis loses its data (a restart without persistence, a flush), the
/// epoch key goes with it. The next call that notices (the read loop reconnecting, or any
/// script, since each checks the epoch first) makes or adopts the new epoch: the publish that
/// noticed fails (its event was encoded under the old epoch; publish it again), open streams
/// end, and their clients come back with an id of the old epoch and get the hub's gap event
/// (`event: reset`). Numbers then start again from 1 under the new epoch. When Redis comes back
/// with only its last writes lost (a crash with the append-only file on but not
/// `appendfsync always`), the epoch survives but the lost numbers would be given again to other
/// events: an instance that saw a number higher than Redis's head (it appended it, or its read
/// loop read it) notices when its read loop reconnects and replaces the epoch, with the same
/// effects. Numbers nobody alive saw cannot be noticed; `appendfsync always` avoids the case.
///
/// **Reading.** One read loop per backend, on its own connection, runs a multi-key
/// `XREAD BLOCK` over the topics that have local readers and fills a local window per topic,
/// kept under the same [`Retention`]; local subscribers read that window as they read the
/// in-process ring (without waiting when something is there, else waiting on a notification).
/// 10,000 subscribers on an instance cost one read loop, never a Redis command per subscriber
/// per event. A subscriber that resumes from before the window reads that part from Redis by
/// range (`XRANGE`) until it reaches the window.
///
/// **Retention.** The count, bytes and age of [`Retention`] are kept exactly by a per-topic
/// low mark that the append script moves (Redis has no byte limit on streams); the stream is
/// trimmed with `XADD … MAXLEN ~ N` and `XTRIM … MINID ~ low`, so Redis may hold a few entries
/// more than retained, never fewer. A client that resumes from an id no longer retained gets
/// the gap event. Ages are measured with Redis's clock when appending and with the instance's
/// clock when reading the window, so keep clocks in sync when you use `max_age`.
///
/// **Failure.** When Redis is unavailable a publish returns an error after at most about
/// [`RedisConfig::timeout`]; it is never dropped silently. Open streams stay open: the read loop
/// reconnects with backoff (100 ms doubling to 3 s) and each window goes on after its last
/// event, so subscribers resume without a gap. New subscriptions fail meanwhile (the hub needs
/// the head). The loop logs one warning when Redis is lost and one line when it is back.
///
/// **Durability.** An acknowledged publish is in Redis's memory. It survives a Redis restart
/// only with the append-only file and `appendfsync always` (or a clean shutdown, which writes
/// everything); with `appendfsync everysec` (Redis's default) a crash may lose the last second.
/// A publish that failed with a timeout may still have been stored (its event then reaches
/// subscribers); one that failed because Redis was unreachable was not. The tests run Redis
/// with `--appendonly yes --appendfsync always`.
///
/// **Redis.** Redis 6.2 or newer (exclusive ranges), one server or a primary with replicas (the
/// scripts use keys of several topics' hashes and the epoch, so Redis Cluster is not supported),
/// with `maxmemory-policy noeviction` (an evicted key would lose numbers). Keys: `PREFIX epoch`,
/// per topic `PREFIX topic:NAME` (the stream) and `PREFIX meta:NAME` (head, low mark, bytes),
/// per record `PREFIX record:KEY` (a string with a Redis expiry; resumable streams keep their
/// state there, so every instance knows them), and per instance `PREFIX wake:ID` (wakes the read loop when a topic is added; expires a day
/// after its last use). Topics stay in Redis after the hub evicts them from memory, bounded by
/// the retention each.
pub struct RedisBackend {
    shared: Arc<Shared>,
    tail: JoinHandle<()>,
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackend")
            .field("prefix", &self.shared.prefix)
            .field("epoch", &self.shared.epoch())
            .field("retention", &self.shared.retention)
            .finish()
    }
}

impl RedisBackend {
    /// Connects to Redis, reads (or makes) the epoch, and starts the read loop. Fails when the
    /// URL is not valid or Redis cannot be reached within the timeout.
    pub async fn connect(config: RedisConfig) -> Result<Self, BackendError> {
        let client = redis::Client::open(config.url.as_str()).map_err(|err| {
            BackendError::with_source("RedisConfig::new: the Redis URL is not valid", err)
        })?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(config.timeout)
            .set_response_timeout(config.timeout)
            .set_number_of_retries(1)
            .set_max_delay(1000);
        let mut conn = call(
            config.timeout,
            ConnectionManager::new_with_config(client.clone(), manager),
        )
        .await
        .map_err(|failure| {
            BackendError::with_source("could not connect to Redis", failure.into_error())
        })?;
        let scripts = Scripts::new(&config.prefix, config.retention, config.timeout);
        let records = Records::new(&config.prefix, config.timeout, conn.clone());
        let epoch = scripts
            .epoch(&mut conn)
            .await
            .map_err(Failure::into_error)?;
        let random = RandomState::new();
        let shared = Arc::new(Shared {
            wake_key: format!("{}wake:{:016x}", config.prefix, random.hash_one(epoch)),
            prefix: config.prefix,
            retention: config.retention,
            timeout: config.timeout,
            client,
            conn,
            scripts,
            records,
            epoch: AtomicU64::new(epoch),
            topics: Mutex::new(HashMap::new()),
            wake_sent: AtomicBool::new(false),
            online: Notify::new(),
            random,
            stand_ins: AtomicU64::new(0),
        });
        let tail = tokio::spawn(tail::run(shared.clone()));
        Ok(Self { shared, tail })
    }
}

impl HubBackend for RedisBackend {
    fn epoch(&self) -> u64 {
        self.shared.epoch()
    }

    fn topic(&self, name: &str) -> Arc<dyn BackendTopic> {
        self.shared
            .topics()
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(RedisTopic::new(self.shared.clone(), name)))
            .clone()
    }

    /// Forgets the topic's local window (the read loop stops following it); its events stay
    /// in Redis, so its numbers go on where they were.
    fn evict(&self, name: &str) {
        self.shared.topics().remove(name);
    }

    /// `SET PREFIX record:KEY value NX PX ttl`.
    fn create_record(
        &self,
        key: &str,
        value: Bytes,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<bool, BackendError>> {
        let (shared, key) = (self.shared.clone(), key.to_owned());
        Box::pin(async move { shared.records.create(&key, &value, ttl).await })
    }

    /// `GET` and `PTTL` of `PREFIX record:KEY`, in one script.
    fn record(&self, key: &str) -> BoxFuture<'static, Result<Option<Record>, BackendError>> {
        let (shared, key) = (self.shared.clone(), key.to_owned());
        Box::pin(async move { shared.records.get(&key).await })
    }

    /// A script compares and sets (or deletes) in one step.
    fn replace_record(
        &self,
        key: &str,
        expected: Bytes,
        value: Bytes,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<bool, BackendError>> {
        let (shared, key) = (self.shared.clone(), key.to_owned());
        Box::pin(async move {
            let records = &shared.records;
            records.replace(&key, &expected, &value, ttl).await
        })
    }
}

impl Drop for RedisBackend {
    fn drop(&mut self) {
        self.tail.abort();
        // The topics hold the shared state: let it go with the last of them.
        self.shared.topics().clear();
    }
}
