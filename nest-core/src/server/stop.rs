//! The server's stop signal as its connections see it ([`Stop`]), a connection's place under the
//! connection limit ([`Slot`]), and the one way a connection watches the signal ([`StopWatch`]):
//! hyper's connections (`conn.rs`) and the direct SSE path (`direct.rs`) both use it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Context;

use tokio::sync::Semaphore;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};
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
    /// Every connection task and every HTTP/2 stream task of the server.
    pub(crate) tasks: TaskTracker,
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
            tasks: TaskTracker::new(),
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
        self.deadline.cancel();
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
