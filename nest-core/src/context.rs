//! The app's shared context: what every request of an app can reach (state, limits, the
//! shutdown signal, SSE figures). It sits below the extractors, the router and the app, which
//! all read it; it imports nothing above the ground (config).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::ServerConfig;

/// How an HTTP/2 connection's SSE streams are taken: what tells a client that keeps its
/// flow-control window shut (while it reads the socket and answers PINGs) from one that is
/// idle. A stream with a keep-alive is polled by its connection at least once per keep-alive
/// when the client takes what it is sent; one whose window stays shut is never polled. The
/// connection's task checks the count of polls (`ServerConfig::http2_stall_timeout`).
#[derive(Debug, Default)]
pub(crate) struct ConnWatch {
    /// Polls of the connection's SSE bodies that have a keep-alive.
    polls: AtomicU64,
    /// Those bodies now.
    streams: AtomicUsize,
    /// The longest keep-alive among them (ms), never lowered.
    longest_keep_alive_ms: AtomicU64,
}

impl ConnWatch {
    /// A stream with this keep-alive joins the connection.
    pub(crate) fn join(&self, keep_alive: Duration) {
        self.streams.fetch_add(1, Ordering::Relaxed);
        let ms = u64::try_from(keep_alive.as_millis()).unwrap_or(u64::MAX);
        self.longest_keep_alive_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// A stream that joined is gone.
    pub(crate) fn leave(&self) {
        self.streams.fetch_sub(1, Ordering::Relaxed);
    }

    /// A joined stream's body was polled.
    pub(crate) fn polled(&self) {
        self.polls.fetch_add(1, Ordering::Relaxed);
    }

    /// The polls so far, whether any stream is joined, and the longest keep-alive.
    pub(crate) fn sample(&self) -> (u64, bool, Duration) {
        (
            self.polls.load(Ordering::Relaxed),
            self.streams.load(Ordering::Relaxed) > 0,
            Duration::from_millis(self.longest_keep_alive_ms.load(Ordering::Relaxed)),
        )
    }
}

/// What an SSE stream is attached to, behind one pointer per stream: the app's shutdown token
/// and, for a stream of an HTTP/2 connection, that connection's watch. One per app
/// ([`AppShared::link`]) and one per HTTP/2 connection that watches for stalls.
#[derive(Debug, Default)]
pub(crate) struct StreamLink {
    pub(crate) shutdown: CancellationToken,
    pub(crate) watch: Option<ConnWatch>,
}

/// What every request of an app can reach: state, limits, the shutdown signal, SSE figures.
#[derive(Debug)]
pub(crate) struct AppShared {
    pub(crate) states: StateMap,
    pub(crate) config: ServerConfig,
    pub(crate) shutdown: CancellationToken,
    /// What the app's SSE streams share: how many are open, and the buffer budget.
    pub(crate) sse: Arc<SseShared>,
    /// Set when a shutdown was requested: readiness turns false (see `health`).
    pub(crate) draining: AtomicBool,
    /// Cancelled when `draining` is set, for handlers that wait for it
    /// (`Readiness::draining`).
    pub(crate) drain_signal: CancellationToken,
    /// What the app's streams are attached to (its `shutdown`, no connection watch).
    pub(crate) link: Arc<StreamLink>,
}

impl AppShared {
    /// The shared context of an app with these parts (its shutdown token made here).
    pub(crate) fn new(states: StateMap, config: ServerConfig) -> Self {
        let shutdown = CancellationToken::new();
        AppShared {
            sse: Arc::new(SseShared::new(config.sse_buffer_budget)),
            states,
            config,
            link: Arc::new(StreamLink {
                shutdown: shutdown.clone(),
                watch: None,
            }),
            shutdown,
            draining: AtomicBool::default(),
            drain_signal: CancellationToken::new(),
        }
    }
}

impl Default for AppShared {
    fn default() -> Self {
        Self::new(StateMap::default(), ServerConfig::default())
    }
}

/// What all SSE streams of an app share, behind one pointer per stream: the open-stream count,
/// the buffer budget and the roll of streams to end at shutdown.
#[derive(Debug, Default)]
pub(crate) struct SseShared {
    /// SSE streams open now.
    pub(crate) live: AtomicUsize,
    /// The server-wide budget of buffered SSE bytes (`ServerConfig::sse_buffer_budget`).
    pub(crate) budget: Budget,
    /// The attached streams, woken when the app's shutdown token is cancelled.
    roll: Mutex<ShutdownRoll>,
}

/// A stream on the app's shutdown roll.
pub(crate) trait ShutdownWake: Send + Sync {
    /// The app shuts down: record it and wake the stream's task (never blocks for long: it
    /// runs for every stream in turn).
    fn shut_down(&self);
}

/// The streams to end when the app shuts down: a weak pointer each (16 bytes), in a slab.
///
/// One task per app waits for the shutdown token and wakes them all, instead of every stream
/// waiting on the token itself (a 72-byte future in an allocation of its own per stream, for
/// the stream's whole life). The slab keeps its largest size: at most 16 bytes per stream that
/// was open at once, plus 4 per free key.
#[derive(Default)]
struct ShutdownRoll {
    streams: Vec<Option<Weak<dyn ShutdownWake>>>,
    free: Vec<u32>,
    /// The task that waits for the token was started.
    watched: bool,
    /// The token was cancelled and the streams woken: later ones are told at once.
    fired: bool,
}

impl std::fmt::Debug for ShutdownRoll {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShutdownRoll")
            .field("streams", &(self.streams.len() - self.free.len()))
            .field("fired", &self.fired)
            .finish()
    }
}

impl SseShared {
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            budget: Budget::new(budget),
            ..Self::default()
        }
    }

    fn roll(&self) -> std::sync::MutexGuard<'_, ShutdownRoll> {
        self.roll
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Puts `stream` on the roll: it is told (`ShutdownWake::shut_down`) once `shutdown` is
    /// cancelled. Its key, for [`leave_shutdown`](Self::leave_shutdown); `None` when the
    /// shutdown already happened (the caller ends the stream itself). The first stream starts
    /// the app's one task that waits for the token (outside a tokio runtime there is none, and
    /// streams are not woken at shutdown).
    pub(crate) fn join_shutdown(
        self: &Arc<Self>,
        shutdown: &CancellationToken,
        stream: Weak<dyn ShutdownWake>,
    ) -> Option<u32> {
        let mut roll = self.roll();
        if roll.fired {
            return None;
        }
        if !roll.watched {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                roll.watched = true;
                let (app, shutdown) = (Arc::downgrade(self), shutdown.clone());
                runtime.spawn(async move {
                    shutdown.cancelled().await;
                    if let Some(app) = app.upgrade() {
                        app.fire_shutdown();
                    }
                });
            }
        }
        let key = match roll.free.pop() {
            Some(key) => {
                roll.streams[key as usize] = Some(stream);
                key
            }
            None => {
                roll.streams.push(Some(stream));
                // More than u32::MAX streams at once cannot be open (a socket each).
                u32::try_from(roll.streams.len() - 1).unwrap_or(u32::MAX)
            }
        };
        Some(key)
    }

    /// Takes a stream off the roll (its body is gone).
    pub(crate) fn leave_shutdown(&self, key: u32) {
        let mut roll = self.roll();
        if let Some(slot) = roll.streams.get_mut(key as usize) {
            if slot.take().is_some() {
                roll.free.push(key);
            }
        }
    }

    /// Wakes every stream on the roll, outside its lock (a wake takes the stream's lock).
    fn fire_shutdown(&self) {
        let streams = {
            let mut roll = self.roll();
            roll.fired = true;
            roll.free = Vec::new();
            std::mem::take(&mut roll.streams)
        };
        for stream in streams.into_iter().flatten() {
            if let Some(stream) = stream.upgrade() {
                stream.shut_down();
            }
        }
    }
}

/// What the server's SSE streams hold in their queues, all together, against one limit
/// (`ServerConfig::sse_buffer_budget`). A stream charges each queued event its slot
/// ([`Budget::SLOT`]) and, when it alone holds the event (a plain `write`), the event's bytes
/// plus [`Budget::PER_EVENT`] of bookkeeping; an event shared by many streams
/// (`write_encoded`) is stored once, so each pays only its slot. Past the limit, a stream that
/// holds more than its share (limit ÷ open streams) is full: its overflow policy acts on its
/// next write, while streams whose clients keep up go on; and new streams are refused (503).
#[derive(Debug)]
pub(crate) struct Budget {
    limit: usize,
    used: AtomicUsize,
}

impl Default for Budget {
    fn default() -> Self {
        Self::new(usize::MAX)
    }
}

impl Budget {
    /// The bookkeeping of an event a stream alone holds, charged with its bytes: its shared
    /// handle and the allocator's headers (~80 bytes; see `SseBody`'s memory bound).
    pub(crate) const PER_EVENT: usize = 80;

    /// A queue slot: a pointer, and the ring's spare capacity (it doubles as it grows).
    pub(crate) const SLOT: usize = 16;

    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            used: AtomicUsize::new(0),
        }
    }

    pub(crate) fn charge(&self, bytes: usize) {
        self.used.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Bytes held now.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Whether the limit is reached: new streams are refused.
    pub(crate) fn exhausted(&self) -> bool {
        self.used() >= self.limit
    }

    /// Whether a stream that holds `held` bytes, of `streams` open ones, may not queue `more`:
    /// the budget would pass its limit and the stream holds more than its share.
    pub(crate) fn refuses(&self, held: usize, more: usize, streams: usize) -> bool {
        self.used().saturating_add(more) > self.limit
            && held.saturating_add(more) > self.limit / streams.max(1)
    }
}

/// The app's shared state, one value per type.
#[derive(Debug, Default, Clone)]
pub(crate) struct StateMap(HashMap<TypeId, Arc<dyn Any + Send + Sync>>);

impl StateMap {
    pub(crate) fn insert<T: Clone + Send + Sync + 'static>(&mut self, value: T) {
        self.0.insert(TypeId::of::<T>(), Arc::new(value));
    }

    pub(crate) fn get<T: Clone + 'static>(&self) -> Option<T> {
        self.0
            .get(&TypeId::of::<T>())
            .and_then(|v| v.downcast_ref::<T>())
            .cloned()
    }

    pub(crate) fn contains(&self, id: TypeId) -> bool {
        self.0.contains_key(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream that reports its shutdown on a channel.
    struct Probe(u32, tokio::sync::mpsc::UnboundedSender<u32>);

    impl ShutdownWake for Probe {
        fn shut_down(&self) {
            let _ = self.1.send(self.0);
        }
    }

    #[tokio::test]
    async fn the_shutdown_roll_tells_the_streams_still_on_it_and_refuses_later_ones() {
        let app = Arc::new(SseShared::new(usize::MAX));
        let token = CancellationToken::new();
        let (tx, mut told) = tokio::sync::mpsc::unbounded_channel();
        let mut probes: Vec<Arc<dyn ShutdownWake>> = (0..4)
            .map(|n| Arc::new(Probe(n, tx.clone())) as Arc<dyn ShutdownWake>)
            .collect();
        let keys: Vec<u32> = probes
            .iter()
            .map(|p| app.join_shutdown(&token, Arc::downgrade(p)).unwrap())
            .collect();
        assert_eq!(keys, [0, 1, 2, 3]);
        // A stream that left is not told; its key is used again.
        app.leave_shutdown(keys[1]);
        app.leave_shutdown(keys[1]);
        let again = Arc::new(Probe(9, tx.clone())) as Arc<dyn ShutdownWake>;
        assert_eq!(app.join_shutdown(&token, Arc::downgrade(&again)), Some(1));
        // A stream whose state is gone (dropped without leaving) is skipped.
        drop(probes.pop());
        token.cancel();
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(told.recv().await.unwrap());
        }
        got.sort_unstable();
        assert_eq!(got, [0, 2, 9]);
        assert!(told.try_recv().is_err(), "told once each");
        // After the shutdown, a stream is refused: it ends by itself.
        let late = Arc::new(Probe(7, tx)) as Arc<dyn ShutdownWake>;
        assert_eq!(app.join_shutdown(&token, Arc::downgrade(&late)), None);
        app.leave_shutdown(0);
    }
}
