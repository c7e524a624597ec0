//! The in-memory store: every stream behind one lock, bounded in streams, bytes per stream and
//! bytes in total; expired streams are removed when touched and by a sweep when a create finds
//! the store full (and at most once a minute otherwise).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::future::{self, BoxFuture};
use http::StatusCode;

use super::{new_id, now_ms, Store, Wakeups};
use crate::config::DurableConfig;
use crate::error::Problem;
use crate::offset::ReadFrom;
use crate::state::{
    self, AppendRequest, Appended, Chunk, CreateRequest, Created, ForkSource, Meta, ReadOutcome,
};
use crate::Error;

/// Streams in this process's memory: fast, bounded ([`DurableConfig`]), and gone on restart.
///
/// Limits: [`max_streams`](DurableConfig::max_streams) streams,
/// [`max_stream_bytes`](DurableConfig::max_stream_bytes) per stream,
/// [`max_total_bytes`](DurableConfig::max_total_bytes) in all; past them a request is `413` or
/// `507` naming the limit, and nothing is stored. A fork shares its source's bytes (they are
/// reference-counted) but counts them against the limits as its own.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    config: DurableConfig,
    wakeups: Wakeups,
    streams: Mutex<Streams>,
}

#[derive(Debug, Default)]
struct Streams {
    map: HashMap<String, Entry>,
    total_bytes: u64,
    last_sweep_ms: i64,
}

#[derive(Debug)]
struct Entry {
    meta: Meta,
    chunks: Vec<Chunk>,
}

const SWEEP_EVERY_MS: i64 = 60_000;

impl MemoryStore {
    /// An empty store with these limits; an invalid setting is an error naming it.
    pub fn new(config: DurableConfig) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self {
            inner: Arc::new(Shared {
                config,
                wakeups: Wakeups::default(),
                streams: Mutex::new(Streams::default()),
            }),
        })
    }

    /// How many streams the store holds (soft-deleted ones included).
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether the store holds no stream.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many streams have a live reader (long-poll or SSE) right now.
    pub fn live_streams(&self) -> usize {
        self.inner.wakeups.watched()
    }

    /// The bytes all streams hold together.
    pub fn total_bytes(&self) -> u64 {
        self.lock().total_bytes
    }

    fn lock(&self) -> MutexGuard<'_, Streams> {
        self.inner.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn create_now(&self, path: &str, req: CreateRequest) -> Result<Created, Problem> {
        let now = now_ms();
        let config = &self.inner.config;
        let mut streams = self.lock();
        streams.expire(path, now);
        if let Some(existing) = streams.map.get(path) {
            return state::check_existing(&existing.meta, &req);
        }
        if streams.map.len() >= config.max_streams || now - streams.last_sweep_ms > SWEEP_EVERY_MS {
            streams.sweep(now);
        }
        if streams.map.len() >= config.max_streams {
            return Err(Problem::new(
                StatusCode::INSUFFICIENT_STORAGE,
                format!(
                    "the store is full: it holds at most {} streams",
                    config.max_streams
                ),
            ));
        }
        let source = match &req.fork {
            Some(fork) => {
                streams.expire(&fork.source, now);
                let Some(src) = streams.map.get(&fork.source) else {
                    return Err(Problem::new(
                        StatusCode::NOT_FOUND,
                        "the fork's source stream does not exist",
                    ));
                };
                let (_, point) = state::fork_point(&src.meta, fork)?;
                let upto = src.chunks.partition_point(|c| c.start < point);
                Some(ForkSource {
                    meta: &src.meta,
                    chunks: src.chunks[..upto].to_vec(),
                })
            }
            None => None,
        };
        let (meta, chunks) = state::new_stream(&req, source, new_id(), now, config)?;
        if streams.total_bytes + meta.bytes > config.max_total_bytes {
            return Err(Problem::new(
                StatusCode::INSUFFICIENT_STORAGE,
                format!(
                    "the store is full: it holds at most {} bytes",
                    config.max_total_bytes
                ),
            ));
        }
        if let Some(fork) = &req.fork {
            if let Some(src) = streams.map.get_mut(&fork.source) {
                src.meta.forks += 1;
            }
        }
        streams.total_bytes += meta.bytes;
        let created = Created::of(&meta, true);
        streams.map.insert(path.to_owned(), Entry { meta, chunks });
        Ok(created)
    }

    fn append_now(&self, path: &str, req: AppendRequest) -> Result<Appended, Problem> {
        let now = now_ms();
        let mut streams = self.lock();
        streams.expire(path, now);
        let total = streams.total_bytes;
        let entry = streams.map.get_mut(path).ok_or_else(Problem::not_found)?;
        let (appended, chunks) =
            state::append(&mut entry.meta, &req, now, total, &self.inner.config)?;
        let added: u64 = chunks.iter().map(|c| c.data.len() as u64).sum();
        let changed = !chunks.is_empty() || req.close;
        entry.chunks.extend(chunks);
        streams.total_bytes += added;
        drop(streams);
        if changed {
            self.inner.wakeups.notify(path);
        }
        Ok(appended)
    }

    fn read_now(&self, path: &str, from: ReadFrom) -> Result<ReadOutcome, Problem> {
        let now = now_ms();
        let mut streams = self.lock();
        streams.expire(path, now);
        let entry = streams.map.get_mut(path).ok_or_else(Problem::not_found)?;
        entry.meta.visible()?;
        entry.meta.touch(now);
        let meta = &entry.meta;
        let start = match from {
            ReadFrom::Start => 0,
            ReadFrom::Now => meta.tail,
            ReadFrom::At(at) => {
                state::check_position(meta, at)?;
                at
            }
        };
        let (data, next) = state::collect(
            &entry.chunks,
            meta.json,
            start,
            self.inner.config.max_read_bytes,
        );
        Ok(state::outcome(meta, start, data, next))
    }

    fn head_now(&self, path: &str) -> Result<Meta, Problem> {
        let mut streams = self.lock();
        streams.expire(path, now_ms());
        let entry = streams.map.get(path).ok_or_else(Problem::not_found)?;
        entry.meta.visible()?;
        let mut meta = entry.meta.clone();
        meta.producers.clear();
        Ok(meta)
    }

    fn delete_now(&self, path: &str) -> Result<(), Problem> {
        let mut streams = self.lock();
        streams.expire(path, now_ms());
        let entry = streams.map.get_mut(path).ok_or_else(Problem::not_found)?;
        entry.meta.visible()?;
        if entry.meta.forks > 0 {
            entry.meta.deleted = true;
        } else {
            streams.remove(path);
        }
        drop(streams);
        self.inner.wakeups.notify(path);
        Ok(())
    }
}

impl Streams {
    /// Removes `path` if it has expired; one that forks still read is soft-deleted (410) and
    /// goes with its last fork.
    fn expire(&mut self, path: &str, now: i64) {
        let Some(entry) = self.map.get_mut(path) else {
            return;
        };
        if !entry.meta.expired(now) {
            return;
        }
        if entry.meta.forks > 0 {
            entry.meta.deleted = true;
        } else {
            self.remove(path);
        }
    }

    fn sweep(&mut self, now: i64) {
        self.last_sweep_ms = now;
        let expired: Vec<String> = self
            .map
            .iter()
            .filter(|(_, e)| e.meta.expired(now) && !e.meta.deleted)
            .map(|(k, _)| k.clone())
            .collect();
        for path in expired {
            self.expire(&path, now);
        }
    }

    /// Removes a stream and releases its source; a soft-deleted source whose last fork this was
    /// goes too, and so on up the chain.
    fn remove(&mut self, path: &str) {
        let mut next = Some(path.to_owned());
        while let Some(path) = next.take() {
            let Some(entry) = self.map.remove(&path) else {
                break;
            };
            self.total_bytes = self.total_bytes.saturating_sub(entry.meta.bytes);
            let Some(origin) = entry.meta.fork else { break };
            if let Some(src) = self.map.get_mut(&origin.source) {
                if src.meta.id == origin.source_id {
                    src.meta.forks = src.meta.forks.saturating_sub(1);
                    if src.meta.forks == 0 && src.meta.deleted {
                        next = Some(origin.source);
                    }
                }
            }
        }
    }
}

impl Store for MemoryStore {
    fn create<'a>(
        &'a self,
        path: &'a str,
        req: CreateRequest,
    ) -> BoxFuture<'a, Result<Created, Problem>> {
        Box::pin(future::ready(self.create_now(path, req)))
    }

    fn append<'a>(
        &'a self,
        path: &'a str,
        req: AppendRequest,
    ) -> BoxFuture<'a, Result<Appended, Problem>> {
        Box::pin(future::ready(self.append_now(path, req)))
    }

    fn read<'a>(
        &'a self,
        path: &'a str,
        from: ReadFrom,
    ) -> BoxFuture<'a, Result<ReadOutcome, Problem>> {
        Box::pin(future::ready(self.read_now(path, from)))
    }

    fn head<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<Meta, Problem>> {
        Box::pin(future::ready(self.head_now(path)))
    }

    fn delete<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<(), Problem>> {
        Box::pin(future::ready(self.delete_now(path)))
    }

    fn wakeups(&self) -> &Wakeups {
        &self.inner.wakeups
    }

    fn config(&self) -> &DurableConfig {
        &self.inner.config
    }
}
