//! The app's shared context: what every request of an app can reach (state, limits, the
//! shutdown signal, SSE figures). It sits below the extractors, the router and the app, which
//! all read it; it imports nothing above the ground (config).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
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

/// What all SSE streams of an app share, behind one pointer per stream: the open-stream count
/// and the buffer budget.
#[derive(Debug, Default)]
pub(crate) struct SseShared {
    /// SSE streams open now.
    pub(crate) live: AtomicUsize,
    /// The server-wide budget of buffered SSE bytes (`ServerConfig::sse_buffer_budget`).
    pub(crate) budget: Budget,
}

impl SseShared {
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            live: AtomicUsize::new(0),
            budget: Budget::new(budget),
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
