//! The Redis store: several nest instances serve the same streams with the same offsets.
//!
//! Per stream, two keys: `{prefix}m:{path}`, a hash of the metadata (JSON) and its revision,
//! and `{prefix}d:{path}`, a sorted set of chunks scored by their start position (each member is
//! the position, 8 bytes big-endian, then the data, so members are unique). Every change runs
//! the rules of `state.rs` on the metadata it read and commits with one Lua script that checks
//! the revision did not move (compare-and-set; on a race it reads again and retries), writes
//! metadata and chunks, and publishes the path on `{prefix}wake`. Each instance holds one
//! subscription to that channel and wakes its local readers: no polling loop per reader.
//!
//! A change to one stream is atomic; a fork's effect on its source (the fork count) is a second
//! step, so a crash between the two can leave a source counting a fork that does not exist
//! (the source is then only soft-deleted, never lost).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use http::StatusCode;
use redis::aio::ConnectionManager;

use super::{new_id, now_ms, Store, Wakeups};
use crate::config::DurableConfig;
use crate::error::Problem;
use crate::offset::ReadFrom;
use crate::state::{
    self, AppendRequest, Appended, Chunk, CreateRequest, Created, ForkSource, Meta, ReadOutcome,
};
use crate::Error;

/// The most chunks one read fetches (a read also stops at `max_read_bytes`).
const READ_CHUNKS: isize = 256;
/// How many times a change is retried when another instance changed the stream meanwhile.
const CAS_RETRIES: usize = 64;

const COMMIT: &str = r#"
local rev = redis.call('HGET', KEYS[1], 'rev')
if (rev or '') ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1], KEYS[2])
else
  redis.call('HSET', KEYS[1], 'rev', tostring((tonumber(rev) or 0) + 1), 'json', ARGV[2])
  for i = 5, #ARGV, 2 do
    redis.call('ZADD', KEYS[2], ARGV[i], ARGV[i + 1])
  end
end
if ARGV[3] ~= '' then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
return 1
"#;

/// Streams in Redis, shared by every instance that uses the same URL and prefix.
///
/// Bounds: [`max_stream_bytes`](DurableConfig::max_stream_bytes) per stream and the append and
/// read limits as in memory; the total is Redis's own (`maxmemory`, with `noeviction` so that
/// a full Redis refuses writes, which the service answers `503`). Expired streams are removed
/// when touched.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Shared>,
}

struct Shared {
    config: DurableConfig,
    wakeups: Arc<Wakeups>,
    conn: ConnectionManager,
    prefix: String,
    channel: String,
    commit: redis::Script,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.inner.prefix)
            .finish_non_exhaustive()
    }
}

/// What a change does to the stream's keys.
enum Change {
    Keep,
    Set(Box<Meta>, Vec<Chunk>),
    Delete,
}

impl RedisStore {
    /// Connects to Redis at `url` (`redis://host:port/db`); keys start with `prefix` (for
    /// example `ds:`). An invalid setting or an unreachable Redis is an error.
    pub async fn connect(
        url: &str,
        prefix: impl Into<String>,
        config: DurableConfig,
    ) -> Result<Self, Error> {
        config.validate()?;
        let prefix = prefix.into();
        let client = redis::Client::open(url)
            .map_err(|e| Error::config(format!("NEST_REDIS_URL {url:?}: {e}")))?;
        let conn = ConnectionManager::new(client.clone())
            .await
            .map_err(|e| Error::store(format!("connect to Redis at {url}: {e}")))?;
        let wakeups = Arc::new(Wakeups::default());
        let channel = format!("{prefix}wake");
        let mut pubsub = client
            .get_async_pubsub()
            .await
            .map_err(|e| Error::store(format!("subscribe on Redis at {url}: {e}")))?;
        pubsub
            .subscribe(&channel)
            .await
            .map_err(|e| Error::store(format!("subscribe on Redis at {url}: {e}")))?;
        let listener = tokio::spawn(listen(client, channel.clone(), pubsub, wakeups.clone()));
        Ok(Self {
            inner: Arc::new(Shared {
                config,
                wakeups,
                conn,
                prefix,
                channel,
                commit: redis::Script::new(COMMIT),
                listener,
            }),
        })
    }

    fn meta_key(&self, path: &str) -> String {
        format!("{}m:{path}", self.inner.prefix)
    }

    fn data_key(&self, path: &str) -> String {
        format!("{}d:{path}", self.inner.prefix)
    }

    fn conn(&self) -> ConnectionManager {
        self.inner.conn.clone()
    }

    /// The metadata and its revision (`""` when the stream does not exist).
    async fn load(&self, path: &str) -> Result<(String, Option<Meta>), Problem> {
        let (rev, json): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(self.meta_key(path))
            .arg("rev")
            .arg("json")
            .query_async(&mut self.conn())
            .await
            .map_err(Problem::unavailable)?;
        let meta = match json {
            Some(json) => Some(serde_json::from_str(&json).map_err(Problem::unavailable)?),
            None => None,
        };
        Ok((rev.unwrap_or_default(), meta))
    }

    /// Chunks overlapping `[from, until)`, at most `limit`.
    async fn chunks(
        &self,
        path: &str,
        from: u64,
        until: u64,
        json: bool,
        limit: isize,
    ) -> Result<Vec<Chunk>, Problem> {
        let key = self.data_key(path);
        let (before, after): (Vec<Vec<u8>>, Vec<Vec<u8>>) = redis::pipe()
            .cmd("ZRANGE")
            .arg(&key)
            .arg(from)
            .arg("-inf")
            .arg("BYSCORE")
            .arg("REV")
            .arg("LIMIT")
            .arg(0)
            .arg(1)
            .cmd("ZRANGE")
            .arg(&key)
            .arg(format!("({from}"))
            .arg(format!("({until}"))
            .arg("BYSCORE")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut self.conn())
            .await
            .map_err(Problem::unavailable)?;
        let mut out = Vec::with_capacity(after.len() + 1);
        for member in before.into_iter().chain(after) {
            if member.len() < 8 {
                return Err(Problem::unavailable("a chunk in Redis is malformed"));
            }
            let start = u64::from_be_bytes(member[..8].try_into().unwrap_or_default());
            let chunk = Chunk {
                start,
                data: Bytes::from(member).slice(8..),
            };
            if chunk.end(json) > from && chunk.start < until {
                out.push(chunk);
            }
        }
        Ok(out)
    }

    /// Commits `change` if the stream is still at revision `rev`; `false` when it moved.
    async fn commit(
        &self,
        path: &str,
        rev: &str,
        change: &Change,
        wake: bool,
    ) -> Result<bool, Problem> {
        let mut invocation = self.inner.commit.key(self.meta_key(path));
        invocation.key(self.data_key(path)).arg(rev);
        match change {
            Change::Keep => return Ok(true),
            Change::Delete => {
                invocation.arg("");
            }
            Change::Set(meta, _) => {
                invocation.arg(serde_json::to_string(meta).map_err(Problem::unavailable)?);
            }
        }
        invocation
            .arg(if wake {
                self.inner.channel.as_str()
            } else {
                ""
            })
            .arg(path);
        if let Change::Set(_, chunks) = change {
            for chunk in chunks {
                let mut member = Vec::with_capacity(8 + chunk.data.len());
                member.extend_from_slice(&chunk.start.to_be_bytes());
                member.extend_from_slice(&chunk.data);
                invocation.arg(chunk.start).arg(member);
            }
        }
        let done: i64 = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(Problem::unavailable)?;
        Ok(done == 1)
    }

    /// Reads the stream, applies `f`, commits; again when another instance won the race.
    async fn update<R>(
        &self,
        path: &str,
        wake: bool,
        mut f: impl FnMut(Option<Meta>) -> (Change, Result<R, Problem>),
    ) -> Result<R, Problem> {
        for _ in 0..CAS_RETRIES {
            let (rev, meta) = self.load(path).await?;
            let (change, result) = f(meta);
            if self.commit(path, &rev, &change, wake).await? {
                if wake && !matches!(change, Change::Keep) {
                    self.inner.wakeups.notify(path);
                }
                return result;
            }
        }
        Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the stream changed too often to commit; retry",
        ))
    }

    /// The metadata if the stream is live: expired streams are removed (soft-deleted while
    /// forks read them) on the way.
    async fn live(&self, path: &str) -> Result<(String, Meta), Problem> {
        loop {
            let (rev, meta) = self.load(path).await?;
            let Some(meta) = meta else {
                return Err(Problem::not_found());
            };
            if !meta.expired(now_ms()) || meta.deleted {
                return Ok((rev, meta));
            }
            self.expire(path).await?;
        }
    }

    async fn expire(&self, path: &str) -> Result<(), Problem> {
        let now = now_ms();
        let removed = self
            .update(path, true, |meta| match meta {
                Some(mut m) if m.expired(now) && !m.deleted => {
                    if m.forks > 0 {
                        m.deleted = true;
                        (Change::Set(Box::new(m), Vec::new()), Ok(None))
                    } else {
                        let origin = m.fork.clone();
                        (Change::Delete, Ok(origin))
                    }
                }
                _ => (Change::Keep, Ok(None)),
            })
            .await?;
        if let Some(origin) = removed {
            self.release(origin).await?;
        }
        Ok(())
    }

    /// A fork is gone: its source counts one fork less, and goes too when it was deleted and
    /// this was its last fork (and so on up the chain).
    async fn release(&self, origin: state::ForkOrigin) -> Result<(), Problem> {
        let mut next = Some(origin);
        while let Some(origin) = next.take() {
            next = self
                .update(&origin.source, false, |meta| match meta {
                    Some(mut m) if m.id == origin.source_id => {
                        m.forks = m.forks.saturating_sub(1);
                        if m.forks == 0 && m.deleted {
                            let up = m.fork.clone();
                            (Change::Delete, Ok(up))
                        } else {
                            (Change::Set(Box::new(m), Vec::new()), Ok(None))
                        }
                    }
                    _ => (Change::Keep, Ok(None)),
                })
                .await?;
        }
        Ok(())
    }

    async fn create_now(&self, path: &str, req: CreateRequest) -> Result<Created, Problem> {
        let config = &self.inner.config;
        for _ in 0..CAS_RETRIES {
            match self.live(path).await {
                Ok((_, existing)) => return state::check_existing(&existing, &req),
                Err(p) if p.status == StatusCode::NOT_FOUND => {}
                Err(p) => return Err(p),
            }
            let source = match &req.fork {
                Some(fork) => {
                    let (_, src) = match self.live(&fork.source).await {
                        Err(p) if p.status == StatusCode::NOT_FOUND => {
                            return Err(Problem::new(
                                StatusCode::NOT_FOUND,
                                "the fork's source stream does not exist",
                            ))
                        }
                        other => other?,
                    };
                    let (_, point) = state::fork_point(&src, fork)?;
                    let chunks = self
                        .chunks(&fork.source, 0, point, src.json, isize::MAX)
                        .await?;
                    Some((src, chunks))
                }
                None => None,
            };
            let (meta, chunks) = state::new_stream(
                &req,
                source.as_ref().map(|(meta, chunks)| ForkSource {
                    meta,
                    chunks: chunks.clone(),
                }),
                new_id(),
                now_ms(),
                config,
            )?;
            let created = Created::of(&meta, true);
            if !self
                .commit(path, "", &Change::Set(Box::new(meta), chunks), false)
                .await?
            {
                continue;
            }
            if let Some((src, _)) = source {
                let source_id = src.id;
                let fork = req
                    .fork
                    .as_ref()
                    .map(|f| f.source.clone())
                    .unwrap_or_default();
                self.update(&fork, false, |meta| match meta {
                    Some(mut m) if m.id == source_id => {
                        m.forks += 1;
                        (Change::Set(Box::new(m), Vec::new()), Ok(()))
                    }
                    _ => (Change::Keep, Ok(())),
                })
                .await?;
            }
            return Ok(created);
        }
        Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the stream changed too often to create; retry",
        ))
    }

    async fn append_now(&self, path: &str, req: AppendRequest) -> Result<Appended, Problem> {
        self.live(path).await?;
        let now = now_ms();
        let config = &self.inner.config;
        self.update(path, true, |meta| {
            let Some(mut meta) = meta else {
                return (Change::Keep, Err(Problem::not_found()));
            };
            match state::append(&mut meta, &req, now, 0, config) {
                Ok((appended, chunks)) => {
                    if chunks.is_empty() && !req.close && appended.status == StatusCode::NO_CONTENT
                    {
                        (Change::Keep, Ok(appended))
                    } else {
                        (Change::Set(Box::new(meta), chunks), Ok(appended))
                    }
                }
                Err(problem) => (Change::Keep, Err(problem)),
            }
        })
        .await
    }

    async fn read_now(&self, path: &str, from: ReadFrom) -> Result<ReadOutcome, Problem> {
        let (rev, mut meta) = self.live(path).await?;
        meta.visible()?;
        let start = match from {
            ReadFrom::Start => 0,
            ReadFrom::Now => meta.tail,
            ReadFrom::At(at) => {
                state::check_position(&meta, at)?;
                at
            }
        };
        let chunks = if start < meta.tail {
            self.chunks(path, start, meta.tail, meta.json, READ_CHUNKS)
                .await?
        } else {
            Vec::new()
        };
        let (data, next) =
            state::collect(&chunks, meta.json, start, self.inner.config.max_read_bytes);
        let outcome = state::outcome(&meta, start, data, next);
        if meta.ttl.is_some() {
            // The sliding TTL restarts on a read; a race with a write loses nothing (the write
            // restarted it too), so one attempt is enough.
            meta.touch(now_ms());
            self.commit(path, &rev, &Change::Set(Box::new(meta), Vec::new()), false)
                .await?;
        }
        Ok(outcome)
    }

    async fn delete_now(&self, path: &str) -> Result<(), Problem> {
        self.live(path).await?;
        let origin = self
            .update(path, true, |meta| match meta {
                None => (Change::Keep, Err(Problem::not_found())),
                Some(m) if m.deleted => (Change::Keep, Err(Problem::gone())),
                Some(mut m) if m.forks > 0 => {
                    m.deleted = true;
                    (Change::Set(Box::new(m), Vec::new()), Ok(None))
                }
                Some(m) => {
                    let origin = m.fork.clone();
                    (Change::Delete, Ok(origin))
                }
            })
            .await?;
        if let Some(origin) = origin {
            self.release(origin).await?;
        }
        Ok(())
    }
}

/// The instance's one subscription: every published path wakes the local readers of that
/// stream. When the connection drops it reconnects (with a pause) and wakes every local reader,
/// who read again and so miss nothing that was published meanwhile.
async fn listen(
    client: redis::Client,
    channel: String,
    first: redis::aio::PubSub,
    wakeups: Arc<Wakeups>,
) {
    let mut pubsub = Some(first);
    loop {
        if let Some(mut ps) = pubsub.take() {
            {
                let mut messages = ps.on_message();
                while let Some(msg) = messages.next().await {
                    if let Ok(path) = msg.get_payload::<String>() {
                        wakeups.notify(&path);
                    }
                }
            }
            tracing::warn!("the Redis wake-up subscription ended; reconnecting");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Ok(mut ps) = client.get_async_pubsub().await {
            if ps.subscribe(&channel).await.is_ok() {
                wakeups.notify_all();
                pubsub = Some(ps);
            }
        }
    }
}

impl Store for RedisStore {
    fn create<'a>(
        &'a self,
        path: &'a str,
        req: CreateRequest,
    ) -> BoxFuture<'a, Result<Created, Problem>> {
        Box::pin(self.create_now(path, req))
    }

    fn append<'a>(
        &'a self,
        path: &'a str,
        req: AppendRequest,
    ) -> BoxFuture<'a, Result<Appended, Problem>> {
        Box::pin(self.append_now(path, req))
    }

    fn read<'a>(
        &'a self,
        path: &'a str,
        from: ReadFrom,
    ) -> BoxFuture<'a, Result<ReadOutcome, Problem>> {
        Box::pin(self.read_now(path, from))
    }

    fn head<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<Meta, Problem>> {
        Box::pin(async move {
            let (_, mut meta) = self.live(path).await?;
            meta.visible()?;
            meta.producers.clear();
            Ok(meta)
        })
    }

    fn delete<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<(), Problem>> {
        Box::pin(self.delete_now(path))
    }

    fn wakeups(&self) -> &Wakeups {
        &self.inner.wakeups
    }

    fn config(&self) -> &DurableConfig {
        &self.inner.config
    }
}
