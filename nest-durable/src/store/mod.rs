//! The stores: where streams live. Both run the rules of `state.rs`; they differ only in where
//! the metadata and data are kept and how a live reader learns of an append.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::future::BoxFuture;
use tokio::sync::watch;

use crate::config::DurableConfig;
use crate::error::Problem;
use crate::offset::ReadFrom;
use crate::state::{AppendRequest, Appended, CreateRequest, Created, Meta, ReadOutcome};

pub(crate) mod memory;
#[cfg(feature = "redis")]
pub(crate) mod redis;

/// What the service asks of a store. Every method answers the protocol's 4xx as a [`Problem`].
pub(crate) trait Store: Send + Sync + fmt::Debug + 'static {
    /// `PUT`: 201 (`created`), 200 (same configuration), or 409 and others.
    fn create<'a>(
        &'a self,
        path: &'a str,
        req: CreateRequest,
    ) -> BoxFuture<'a, Result<Created, Problem>>;
    /// `POST`.
    fn append<'a>(
        &'a self,
        path: &'a str,
        req: AppendRequest,
    ) -> BoxFuture<'a, Result<Appended, Problem>>;
    /// `GET`: the data from `from` on (resets a sliding TTL).
    fn read<'a>(
        &'a self,
        path: &'a str,
        from: ReadFrom,
    ) -> BoxFuture<'a, Result<ReadOutcome, Problem>>;
    /// `HEAD`: the metadata (does not reset the TTL).
    fn head<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<Meta, Problem>>;
    /// `DELETE`: removed, or soft-deleted while forks read it.
    fn delete<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<(), Problem>>;
    /// Where live readers wait for a change of a stream.
    fn wakeups(&self) -> &Wakeups;
    /// The limits the store was built with.
    fn config(&self) -> &DurableConfig;
}

/// Live readers waiting for streams to change: one watch channel per stream that has a reader,
/// created by the first reader and dropped by the first notification after the last one left.
/// Bounded by the number of live readers.
#[derive(Debug, Default)]
pub(crate) struct Wakeups {
    channels: Mutex<HashMap<String, watch::Sender<u64>>>,
}

impl Wakeups {
    /// A receiver that changes whenever `path` does; subscribe before reading, so that an append
    /// between the read and the wait is not missed.
    pub(crate) fn subscribe(&self, path: &str) -> watch::Receiver<u64> {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if channels.len() > 1024 && channels.len().is_power_of_two() {
            channels.retain(|_, tx| tx.receiver_count() > 0);
        }
        channels
            .entry(path.to_owned())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Wakes every reader of `path`.
    pub(crate) fn notify(&self, path: &str) {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = channels.get(path) {
            if tx.receiver_count() == 0 {
                channels.remove(path);
            } else {
                tx.send_modify(|v| *v = v.wrapping_add(1));
            }
        }
    }

    /// Wakes every reader (after a lost subscription: they read again).
    #[cfg_attr(
        not(feature = "redis"),
        allow(dead_code, reason = "only the Redis store loses its subscription")
    )]
    pub(crate) fn notify_all(&self) {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        channels.retain(|_, tx| tx.receiver_count() > 0);
        for tx in channels.values() {
            tx.send_modify(|v| *v = v.wrapping_add(1));
        }
    }

    /// How many streams have live readers (for tests of the bound).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.channels.lock().unwrap().len()
    }

    /// How many streams have at least one live reader waiting or following.
    pub(crate) fn watched(&self) -> usize {
        let channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        channels
            .values()
            .filter(|tx| tx.receiver_count() > 0)
            .count()
    }
}

/// Milliseconds since the Unix epoch: TTLs and `Expires-At` are wall-clock times, shared by
/// every instance on a Redis store.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A stream's incarnation: a new random id each time a path is created, so that an `ETag` of a
/// deleted stream never matches its successor's.
pub(crate) fn new_id() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return now_ms() as u64;
    }
    u64::from_le_bytes(bytes) >> 1
}
