//! The server's stop signal as its connections see it ([`Stop`]), a connection's place under the
//! connection limit ([`Slot`]), the way hyper's connections (`conn.rs`) watch the signal
//! ([`StopWatch`]), and the registry through which the end of the grace period reaches the
//! direct SSE path's streams (`direct.rs`), which keep no stop future of their own.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Waker};

use tokio::sync::Semaphore;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};
use tokio_util::task::task_tracker::TaskTrackerToken;
use tokio_util::task::TaskTracker;

/// The server's stop signal as connections see it.
#[derive(Debug)]
pub(crate) struct Stop {
    /// Set before `token` is cancelled: the cheap check a connection makes on each wake.
    pub(super) fired: AtomicBool,
    /// The app's shutdown token: finish in-flight requests and close.
    pub(super) token: CancellationToken,
    /// The grace period is over: close now.
    pub(super) deadline: CancellationToken,
    /// Set before `deadline` is cancelled and before the direct streams are woken: the check a
    /// direct stream makes on each wake (`CancellationToken::is_cancelled` takes a lock).
    forced: AtomicBool,
    /// The wakers of the open direct SSE streams, woken when the grace period ends.
    direct: Mutex<DirectStreams>,
    /// Every connection task and every HTTP/2 stream task of the server.
    pub(crate) tasks: TaskTracker,
    /// The runtime the server's connections run on: parked direct streams are resumed there
    /// (see `park.rs`). Set by the first stream that parks.
    runtime: std::sync::OnceLock<tokio::runtime::Handle>,
    /// The parked direct streams (`park.rs`): how many, and while there is one, a token on
    /// `tasks`, so a shutdown waits for them as for tasks (one token, not one per stream).
    parked: Mutex<(usize, Option<TaskTrackerToken>)>,
    /// `ServerConfig::max_connections`: one permit per open connection, taken when it is
    /// accepted and given back by its [`Slot`].
    pub(crate) limit: Option<Semaphore>,
}

/// A connection's place on the server: its task holds it for the connection's life and gives
/// the connection limit's permit back when it ends (or is dropped). One pointer: the task
/// keeps no permit of its own.
pub(crate) struct Slot(pub(crate) Arc<Stop>);

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(limit) = &self.0.limit {
            limit.add_permits(1);
        }
    }
}

impl Stop {
    pub(crate) fn new(token: CancellationToken) -> Self {
        Self {
            fired: AtomicBool::new(false),
            token,
            deadline: CancellationToken::new(),
            forced: AtomicBool::new(false),
            direct: Mutex::new(DirectStreams::default()),
            tasks: TaskTracker::new(),
            runtime: std::sync::OnceLock::new(),
            parked: Mutex::new((0, None)),
            limit: None,
        }
    }

    /// As [`Stop::new`], with at most `max_connections` connections open at once.
    pub(crate) fn with_limit(token: CancellationToken, max_connections: Option<usize>) -> Self {
        Self {
            limit: max_connections.map(Semaphore::new),
            ..Self::new(token)
        }
    }

    /// Tells every connection to finish its in-flight requests and close.
    pub(crate) fn fire(&self) {
        self.fired.store(true, Ordering::Release);
        self.token.cancel();
    }

    /// Tells every connection to close now, whatever it is doing.
    pub(crate) fn force(&self) {
        self.forced.store(true, Ordering::Release);
        self.deadline.cancel();
        // Under the lock: a stream that registers or changes its waker after this pass sees
        // `forced` when it checks under the same lock (see `DirectStreams::set`).
        for waker in self.direct_streams().wakers.iter().flatten() {
            waker.wake_by_ref();
        }
    }

    /// The runtime to resume parked streams on: the one this is called on the first time
    /// (from a stream's task); `None` when that first call is made outside a runtime.
    pub(super) fn runtime(&self) -> Option<&tokio::runtime::Handle> {
        if let Some(handle) = self.runtime.get() {
            return Some(handle);
        }
        let handle = tokio::runtime::Handle::try_current().ok()?;
        Some(self.runtime.get_or_init(|| handle))
    }

    /// Whether the grace period is over (see [`Stop::force`]): one atomic load, made by a direct
    /// stream on each wake.
    pub(super) fn is_forced(&self) -> bool {
        self.forced.load(Ordering::Acquire)
    }

    /// Counts a stream that parks (on `tasks` while any is parked).
    pub(super) fn park_one(&self) {
        let mut parked = self.parked.lock().unwrap_or_else(|p| p.into_inner());
        parked.0 += 1;
        if parked.1.is_none() {
            parked.1 = Some(self.tasks.token());
        }
    }

    /// Counts off a parked stream (resumed in a task of its own, or dropped); the last one
    /// gives the token on `tasks` back, outside the lock.
    pub(super) fn unpark_one(&self) {
        let mut parked = self.parked.lock().unwrap_or_else(|p| p.into_inner());
        parked.0 = parked.0.saturating_sub(1);
        let last = (parked.0 == 0).then(|| parked.1.take());
        drop(parked);
        drop(last);
    }

    /// The direct streams' registry. A poisoned lock is taken as it is: every change to it is
    /// a single assignment or push, never left half done.
    pub(super) fn direct_streams(&self) -> MutexGuard<'_, DirectStreams> {
        self.direct.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a direct stream's `waker` under its `key` (see [`DirectStreams::set`]):
    /// `true` when the grace period is over. Checked under the registry's lock: the end of
    /// the grace period wakes what is registered under it, so a stream registered after that
    /// pass sees it here.
    pub(super) fn register_direct(&self, key: &mut u32, waker: &Waker) -> bool {
        let mut streams = self.direct_streams();
        streams.set(key, waker);
        self.is_forced()
    }
}

/// The wakers of the open direct SSE streams, each under the key its stream keeps: the end of
/// the grace period wakes them all, and each ends (it sees [`Stop::is_forced`]).
///
/// It stands in for a stop future per stream (`stop.token.cancelled()`, 72 bytes, plus its
/// watch): that future lives in the stream's task for the stream's whole life, and every byte
/// there is a byte of every idle connection. Here a stream costs an entry of 16 bytes on a list
/// the server shares (reused once the stream ends), and no work on its wakes but a load of
/// [`Stop::forced`]. The stream does not need the shutdown itself: its SSE body ends at the
/// shutdown on its own (it holds the app's token).
#[derive(Debug, Default)]
pub(super) struct DirectStreams {
    /// `None`: a free entry, its key on `free`.
    wakers: Vec<Option<Waker>>,
    free: Vec<u32>,
}

/// The key of a stream not registered (yet): [`DirectStreams::set`] registers it.
pub(super) const UNREGISTERED: u32 = u32::MAX;

impl DirectStreams {
    /// Registers `waker` under `key` (a new key when it is [`UNREGISTERED`], written back), or
    /// replaces the waker registered under it. Called with the lock held, so `forced` read
    /// after it (see [`Stop::force`]) tells whether the stream must end now. When the registry
    /// is full (`u32::MAX - 1` streams, more than the file descriptors of any system: never in
    /// practice) the stream stays unregistered, and ends at the deadline only by its own means
    /// (the client's end, a failed write).
    pub(super) fn set(&mut self, key: &mut u32, waker: &Waker) {
        if let Some(Some(slot)) = self.wakers.get_mut(*key as usize) {
            slot.clone_from(waker);
            return;
        }
        if let Some(free) = self.free.pop() {
            self.wakers[free as usize] = Some(waker.clone());
            *key = free;
            return;
        }
        match u32::try_from(self.wakers.len()) {
            Ok(new) if new != UNREGISTERED => {
                self.wakers.push(Some(waker.clone()));
                *key = new;
            }
            _ => {}
        }
    }

    /// How many streams are registered.
    #[cfg(test)]
    pub(super) fn registered(&self) -> usize {
        self.wakers.iter().flatten().count()
    }

    /// The first registered waker.
    #[cfg(test)]
    pub(super) fn first(&self) -> Option<Waker> {
        self.wakers.iter().flatten().next().cloned()
    }

    /// Removes the waker registered under `key`, if any, and marks `key` unregistered.
    pub(super) fn remove(&mut self, key: &mut u32) {
        if let Some(slot @ Some(_)) = self.wakers.get_mut(*key as usize) {
            *slot = None;
            self.free.push(*key);
        }
        *key = UNREGISTERED;
    }
}

/// What [`StopWatch::poll_signal`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Signal {
    /// Nothing yet, or closing already began: keep serving.
    Running,
    /// The stop fired now: begin closing (finish in-flight requests). Returned once.
    Closing,
    /// The grace period is over: close now.
    Deadline,
}

/// A connection's watch on the stop signal, without a `select!` on the token: that would poll it
/// (two locks) on every wake of the connection, i.e. on every SSE event. The token is polled
/// once to register the task's waker (a task's waker always wakes that task), then again only
/// when [`Stop::fired`] says it fired. Once closing, the same future (`signal`, which the
/// connection keeps pinned next to it: `stop.token.cancelled()` at first) waits for the end of
/// the grace period. Two flags and no references, so that it packs into the connection's
/// future (every byte there is a byte of every idle connection).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct StopWatch {
    registered: bool,
    closing: bool,
}

impl StopWatch {
    /// Polls `stop`'s signal as described above, through `signal` (made by
    /// `stop.token.cancelled()`); registers `cx`'s waker with the token (then with the grace
    /// period's end) the first time it polls each.
    pub(super) fn poll_signal<'a>(
        &mut self,
        mut signal: Pin<&mut WaitForCancellationFuture<'a>>,
        stop: &'a Stop,
        cx: &mut Context<'_>,
    ) -> Signal {
        let mut began = false;
        if !self.closing && (!self.registered || stop.fired.load(Ordering::Acquire)) {
            self.registered = true;
            if signal.as_mut().poll(cx).is_ready() {
                self.closing = true;
                began = true;
                signal.set(stop.deadline.cancelled());
            }
        }
        if self.closing && signal.as_mut().poll(cx).is_ready() {
            return Signal::Deadline;
        }
        if began {
            Signal::Closing
        } else {
            Signal::Running
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    use tokio_util::sync::CancellationToken;

    use super::{Stop, UNREGISTERED};

    /// Counts its wakes.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The end of the grace period wakes every registered direct stream once, with the waker
    /// it registered last, and none that left; a key that was given back is reused.
    #[test]
    fn the_deadline_wakes_every_registered_direct_stream() {
        let stop = Stop::new(CancellationToken::new());
        let counts: Vec<Arc<Count>> = (0..4).map(|_| Arc::default()).collect();
        let wakers: Vec<Waker> = counts.iter().map(|c| Waker::from(c.clone())).collect();
        let mut keys = [UNREGISTERED; 3];
        for (key, waker) in keys.iter_mut().zip(&wakers) {
            stop.direct_streams().set(key, waker);
        }
        assert_eq!(keys, [0, 1, 2]);
        // The second stream's task changed its waker: the same key, the new waker.
        stop.direct_streams().set(&mut keys[1], &wakers[3]);
        assert_eq!(keys[1], 1);
        // The third ended: its key is free and the next stream takes it.
        stop.direct_streams().remove(&mut keys[2]);
        assert_eq!(keys[2], UNREGISTERED);
        let mut next = UNREGISTERED;
        stop.direct_streams().set(&mut next, &wakers[2]);
        assert_eq!(next, 2);
        stop.direct_streams().remove(&mut next);
        assert!(!stop.is_forced());
        stop.force();
        assert!(stop.is_forced() && stop.deadline.is_cancelled());
        let woken: Vec<usize> = counts.iter().map(|c| c.0.load(Ordering::Relaxed)).collect();
        assert_eq!(woken, [1, 0, 0, 1]);
    }
}
