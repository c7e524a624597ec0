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
    /// The attached streams, woken when the app's shutdown token is cancelled, and the
    /// keep-alive checks of those with a keep-alive.
    roll: Mutex<ShutdownRoll>,
    /// Tells the app's task that a keep-alive check earlier than all others was added (its own
    /// allocation: the task waits on it without holding the app).
    earlier_check: Arc<tokio::sync::Notify>,
}

/// A stream on the app's shutdown roll.
pub(crate) trait ShutdownWake: Send + Sync {
    /// The app shuts down: record it and wake the stream's task (never blocks for long: it
    /// runs for every stream in turn).
    fn shut_down(&self);

    /// The stream's keep-alive check that was due at `due` (ms on [`clock_ms`]'s clock), run at
    /// `now`: a stream silent for its whole interval is told to send a keep-alive and woken.
    /// When its next check is due; `None` when `due` is not its pending check (a check left by
    /// a stream that had this key before) or it has no keep-alive.
    fn keep_alive_check(&self, due: u64, now: u64) -> Option<u64>;
}

/// Milliseconds on the streams' clock (tokio's, so a paused clock in tests moves it), from 1:
/// 0 is free for "at once" marks.
pub(crate) fn clock_ms() -> u64 {
    let since = tokio::time::Instant::now().saturating_duration_since(clock_start());
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX) + 1
}

fn clock_start() -> tokio::time::Instant {
    static START: std::sync::OnceLock<tokio::time::Instant> = std::sync::OnceLock::new();
    *START.get_or_init(tokio::time::Instant::now)
}

/// The instant of `ms` on [`clock_ms`]'s clock.
fn clock_instant(ms: u64) -> tokio::time::Instant {
    clock_start() + Duration::from_millis(ms.saturating_sub(1))
}

/// A stream's pending keep-alive check in one word: when (ms on [`clock_ms`]'s clock, the top
/// 40 bits: 34 years from the clock's start) and its key on the roll (the low 24 bits: 16.7
/// million streams at once). Ordered by time, earliest first in the roll's heap; 8 bytes a
/// check, not a `(u64, u32)`'s 16. A stream whose key does not fit keeps a timer of its own.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Check(std::cmp::Reverse<u64>);

impl Check {
    const KEY_BITS: u32 = 24;
    const LAST_DUE: u64 = (1 << (64 - Self::KEY_BITS)) - 1;

    /// The check of `key` at `due` (a time past 34 years is taken as the last one); `None`
    /// when the key does not fit.
    fn new(due: u64, key: u32) -> Option<Self> {
        // (Wrapping: a key that does not fit is dropped below; it must not overflow first.)
        let word = (due.min(Self::LAST_DUE) << Self::KEY_BITS).wrapping_add(u64::from(key));
        (key < 1 << Self::KEY_BITS).then_some(Self(std::cmp::Reverse(word)))
    }

    fn due(self) -> u64 {
        self.0 .0 >> Self::KEY_BITS
    }

    fn key(self) -> u32 {
        // The low 24 bits: always fits.
        (self.0 .0 & ((1 << Self::KEY_BITS) - 1)) as u32
    }
}

/// The streams to end when the app shuts down: a weak pointer each (16 bytes), in a slab; and
/// the keep-alive checks of those with a keep-alive, in a heap (8 bytes each).
///
/// One task per app waits for the shutdown token and wakes them all, instead of every stream
/// waiting on the token itself (a 72-byte future in an allocation of its own per stream, for
/// the stream's whole life). The same task runs the keep-alive checks, instead of a timer per
/// stream (a 112-byte allocation each): each stream has one check pending, at its last write
/// plus its interval; a check finds the stream silent since (it sends a keep-alive, and the
/// next check is an interval later) or moves to the new time. The slab keeps its largest size:
/// at most 16 bytes per stream that was open at once, plus 4 per free key; the heap holds a
/// check per stream and the checks of streams that ended within their interval (dropped when
/// they come due).
#[derive(Default)]
struct ShutdownRoll {
    streams: Vec<Option<Weak<dyn ShutdownWake>>>,
    free: Vec<u32>,
    checks: std::collections::BinaryHeap<Check>,
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
                runtime.spawn(watch(app, self.earlier_check.clone(), shutdown));
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

    /// Puts the keep-alive check of the stream under `key` on the roll, due at `due` (ms on
    /// [`clock_ms`]'s clock). `false` when the app has no task to run it (outside a tokio
    /// runtime, or shutting down) or the key does not fit a check (see [`Check`]): the stream
    /// keeps a timer of its own.
    pub(crate) fn join_keep_alive(&self, key: u32, due: u64) -> bool {
        let mut roll = self.roll();
        if !roll.watched || roll.fired {
            return false;
        }
        let Some(check) = Check::new(due, key) else {
            return false;
        };
        let earliest = roll.checks.peek().is_none_or(|first| due < first.due());
        roll.checks.push(check);
        drop(roll);
        if earliest {
            self.earlier_check.notify_one();
        }
        true
    }

    /// When the earliest keep-alive check is due.
    fn next_check(&self) -> Option<u64> {
        self.roll().checks.peek().map(|check| check.due())
    }

    /// Runs the keep-alive checks due at `now`, each outside the roll's lock (a check takes
    /// the stream's lock), and puts each stream's next one on the heap.
    fn run_checks(&self, now: u64) {
        let due: Vec<(u64, u32, Weak<dyn ShutdownWake>)> = {
            let mut roll = self.roll();
            let mut due = Vec::new();
            while let Some(&check) = roll.checks.peek() {
                let (at, key) = (check.due(), check.key());
                if at > now {
                    break;
                }
                roll.checks.pop();
                // A check whose stream left is dropped.
                if let Some(Some(stream)) = roll.streams.get(key as usize) {
                    due.push((at, key, stream.clone()));
                }
            }
            due
        };
        let next: Vec<Check> = due
            .into_iter()
            .filter_map(|(at, key, stream)| {
                let next = stream.upgrade()?.keep_alive_check(at, now)?;
                // Never at or before now: the task would run the same check again at once.
                Check::new(next.max(now + 1), key)
            })
            .collect();
        if !next.is_empty() {
            self.roll().checks.extend(next);
        }
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
            roll.checks = std::collections::BinaryHeap::new();
            std::mem::take(&mut roll.streams)
        };
        for stream in streams.into_iter().flatten() {
            if let Some(stream) = stream.upgrade() {
                stream.shut_down();
            }
        }
    }
}

/// The app's one task for its streams: the keep-alive checks as they come due, until the
/// shutdown token is cancelled; then every stream on the roll is told. It holds the app's
/// shared part weakly: it ends when the app is gone.
async fn watch(
    app: Weak<SseShared>,
    earlier: Arc<tokio::sync::Notify>,
    shutdown: CancellationToken,
) {
    loop {
        let Some(next) = app.upgrade().map(|app| app.next_check()) else {
            return;
        };
        let check = async {
            match next {
                Some(at) => tokio::time::sleep_until(clock_instant(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => {
                if let Some(app) = app.upgrade() {
                    app.fire_shutdown();
                }
                return;
            }
            () = check => {
                if let Some(app) = app.upgrade() {
                    app.run_checks(clock_ms());
                }
            }
            // A check earlier than `next` was added since (a permit, if before this wait).
            () = earlier.notified() => {}
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

    /// What a stream's charge moves by (see `State::sync_budget` in `sse::lifecycle`): a
    /// stream holding anything is charged less than two steps (1 KiB) more than it holds.
    pub(crate) const STEP: usize = 512;

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

    /// A check is one word: its time and key come back out, it orders by time then key, a key
    /// past 24 bits has no check (the stream keeps its own timer), and a time past 34 years
    /// is the last one.
    #[test]
    fn a_check_packs_time_and_key_in_one_word() {
        assert_eq!(std::mem::size_of::<Check>(), 8);
        let check = Check::new(123_456_789, 0xab_cdef).unwrap();
        assert_eq!((check.due(), check.key()), (123_456_789, 0xab_cdef));
        let last_key = (1 << Check::KEY_BITS) - 1;
        assert_eq!(Check::new(7, last_key).unwrap().key(), last_key);
        assert!(Check::new(7, 1 << Check::KEY_BITS).is_none());
        assert!(Check::new(u64::MAX, u32::MAX).is_none());
        assert_eq!(Check::new(u64::MAX, 3).unwrap().due(), Check::LAST_DUE);
        assert_eq!(Check::new(1 << 41, 3).unwrap().key(), 3);
        // Earliest first in the heap (a max-heap of `Reverse`): by time, then key.
        let mut heap = std::collections::BinaryHeap::new();
        for (due, key) in [(20, 1), (10, 9), (10, 2), (30, 0)] {
            heap.push(Check::new(due, key).unwrap());
        }
        let order: Vec<(u64, u32)> = std::iter::from_fn(|| heap.pop())
            .map(|c| (c.due(), c.key()))
            .collect();
        assert_eq!(order, [(10, 2), (10, 9), (20, 1), (30, 0)]);
    }

    /// A stream that reports its shutdown on a channel.
    struct Probe(u32, tokio::sync::mpsc::UnboundedSender<u32>);

    impl ShutdownWake for Probe {
        fn shut_down(&self) {
            let _ = self.1.send(self.0);
        }

        fn keep_alive_check(&self, _due: u64, _now: u64) -> Option<u64> {
            None
        }
    }

    /// A stream whose keep-alive checks report (its number, when they were due, when they ran)
    /// on a channel; each asks for the next one `every` ms later (none at 0).
    struct Checked {
        n: u32,
        every: u64,
        told: tokio::sync::mpsc::UnboundedSender<(u32, u64, u64)>,
    }

    impl ShutdownWake for Checked {
        fn shut_down(&self) {}

        fn keep_alive_check(&self, due: u64, now: u64) -> Option<u64> {
            let _ = self.told.send((self.n, due, now));
            (self.every > 0).then_some(now + self.every)
        }
    }

    /// The app's task runs each keep-alive check when it is due (on the paused clock, to the
    /// millisecond), earliest first, and the next one when the stream asks for it; a check
    /// earlier than the one it sleeps for wakes it; a stream that left, or that asks for no
    /// next check, is not checked again; after the shutdown no check runs and none is taken.
    #[tokio::test(start_paused = true)]
    async fn keep_alive_checks_run_when_due_and_again_when_asked() {
        let app = Arc::new(SseShared::new(usize::MAX));
        let token = CancellationToken::new();
        let (tx, mut told) = tokio::sync::mpsc::unbounded_channel();
        let streams: Vec<Arc<dyn ShutdownWake>> = [(0, 1_000), (1, 0), (2, 250)]
            .into_iter()
            .map(|(n, every)| {
                Arc::new(Checked {
                    n,
                    every,
                    told: tx.clone(),
                }) as Arc<dyn ShutdownWake>
            })
            .collect();
        let keys: Vec<u32> = streams
            .iter()
            .map(|s| app.join_shutdown(&token, Arc::downgrade(s)).unwrap())
            .collect();
        let start = clock_ms();
        assert!(app.join_keep_alive(keys[0], start + 1_000));
        // Let the task sleep for that one: an earlier one wakes it, each time.
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(app.join_keep_alive(keys[1], start + 300));
        let (n, due, now) = told.recv().await.unwrap();
        assert_eq!((n, due - start, now), (1, 300, due));
        assert!(app.join_keep_alive(keys[2], start + 500));
        let mut seen = Vec::new();
        for _ in 0..4 {
            let (n, due, now) = told.recv().await.unwrap();
            assert_eq!(now, due, "stream {n} checked when due");
            seen.push((n, due - start));
        }
        assert_eq!(seen, [(2, 500), (2, 750), (0, 1_000), (2, 1_000)]);
        // Stream 2 leaves: its pending check (at 1,250) is dropped. Stream 0's comes at 2,000.
        app.leave_shutdown(keys[2]);
        let (n, due, _) = told.recv().await.unwrap();
        assert_eq!((n, due - start), (0, 2_000));
        token.cancel();
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(told.try_recv().is_err(), "no check after the shutdown");
        assert!(!app.join_keep_alive(keys[0], clock_ms() + 10));
    }

    /// A stream that answers a check by asking for one now is checked again a millisecond
    /// later, not over and over at the same instant (the task would never yield).
    #[tokio::test(start_paused = true)]
    async fn a_check_asked_for_now_runs_a_millisecond_later() {
        struct AtOnce(
            std::sync::atomic::AtomicBool,
            tokio::sync::mpsc::UnboundedSender<u64>,
        );
        impl ShutdownWake for AtOnce {
            fn shut_down(&self) {}
            fn keep_alive_check(&self, _due: u64, now: u64) -> Option<u64> {
                let _ = self.1.send(now);
                (!self.0.swap(true, Ordering::Relaxed)).then_some(now)
            }
        }
        let app = Arc::new(SseShared::new(usize::MAX));
        let (tx, mut told) = tokio::sync::mpsc::unbounded_channel();
        let stream = Arc::new(AtOnce(AtomicBool::new(false), tx)) as Arc<dyn ShutdownWake>;
        let key = app
            .join_shutdown(&CancellationToken::new(), Arc::downgrade(&stream))
            .unwrap();
        assert!(app.join_keep_alive(key, clock_ms() + 100));
        let first = told.recv().await.unwrap();
        assert_eq!(told.recv().await.unwrap(), first + 1);
    }

    /// Outside a runtime there is no task to run checks: a stream keeps its own timer.
    #[test]
    fn without_the_app_s_task_there_are_no_checks() {
        let app = Arc::new(SseShared::new(usize::MAX));
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let stream = Arc::new(Probe(0, tx)) as Arc<dyn ShutdownWake>;
        let key = app
            .join_shutdown(&CancellationToken::new(), Arc::downgrade(&stream))
            .unwrap();
        assert!(!app.join_keep_alive(key, 10));
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
