//! How a stream ends: the reasons, the cancel hook, and the state the writer and the body share.
//!
//! Nothing here logs or runs user code while the stream's lock is held: ending a stream under the
//! lock returns an [`Ending`] whose [`finish`](Ending::finish) logs and runs (or drops) the hook
//! after the lock is released, and losses are counted under the lock but reported after it.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::task::Waker;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;

use super::end::{EndReason, Hook};
use super::options::{Overflow, SseOptions};
use crate::context::{clock_ms, Budget, ShutdownWake, SseShared, StreamLink};
use crate::error::panic_message;

/// The largest data frame the body hands hyper at once when it coalesces queued events.
pub(crate) const MAX_FRAME: usize = 64 * 1024;

/// The largest frame on HTTP/2: h2 splits data into 16 KiB frames anyway, and holds the whole
/// buffer of a frame handed to it until its last byte is sent, so a smaller frame is less
/// memory per stream for a client that reads slowly.
pub(crate) const H2_MAX_FRAME: usize = 16 * 1024;

/// How often a stream that keeps losing events logs it: one line per stream per interval, with
/// the count, so a flood of slow clients costs O(1) log lines per client.
pub(super) const LOSS_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The state of one stream, shared by its writers and its body.
pub(super) struct Shared {
    state: Mutex<State>,
    /// Writers waiting for room in the queue ([`SseWriter::send`](super::SseWriter::send)),
    /// and for the stream's end ([`SseWriter::closed`](super::SseWriter::closed)): the lists
    /// are made by the first waiter (16 bytes until then, not two `Notify`s' 64), and a stream
    /// nobody waits on is told nothing (no lock per frame handed on).
    pub(super) waiters: Waiters,
    pub(super) max_events: usize,
    pub(super) max_bytes: usize,
    pub(super) overflow: Overflow,
    /// [`SseOptions::shutdown_retry`]'s base and jitter in whole milliseconds (what `retry:`
    /// carries): 24 bytes where two `Duration`s take 40.
    pub(super) shutdown_retry: Option<(u32, u32)>,
    /// Whether events without an id get the next automatic one (fixed at creation, so a write
    /// without automatic ids takes the lock once).
    pub(super) auto_id: bool,
    /// Set when the app's shutdown token fired: the app's shutdown roll wakes the stream
    /// through this `Shared` (`ShutdownWake for Shared`), which sets it; the body reads it on each
    /// poll instead of polling the token (two locks) or keeping a future of its own for it.
    pub(super) shutdown_fired: AtomicBool,
    /// Whether `State::span` is set: the body counts a hub frame under the lock only then.
    pub(super) traced: AtomicBool,
    /// How many `SseWriter`s of this stream exist (0 for a hub stream, which has none).
    pub(super) writers: AtomicUsize,
    /// The keep-alive interval in ms (0: none), for the app's keep-alive checks.
    keep_alive_ms: u32,
    /// The stream's keep-alive is the app's (`SseShared::join_keep_alive`, once attached): the
    /// body keeps no timer, it sends a keep-alive when `keep_alive_due` is set.
    pub(super) on_app_checks: AtomicBool,
    /// Set by the app's check when the stream was silent for its interval; taken by the body.
    pub(super) keep_alive_due: AtomicBool,
    /// The body's last write, and when the stream's pending check is due, while
    /// `on_app_checks`: ms on `clock_ms`'s clock, their low 32 bits (compared by difference:
    /// the write is never more than an interval and a check's delay old, and a check is never
    /// pending for longer than an interval).
    pub(super) last_write_ms: AtomicU32,
    keep_alive_next: AtomicU32,
}

/// How the app's shutdown roll ends the stream: records that the shutdown fired, then wakes
/// the task through the waker the body left for writers.
impl Shared {
    /// The keep-alive interval (whole ms), if the stream has one.
    pub(super) fn keep_alive(&self) -> Option<Duration> {
        (self.keep_alive_ms > 0).then(|| Duration::from_millis(self.keep_alive_ms.into()))
    }
}

impl ShutdownWake for Shared {
    fn shut_down(&self) {
        self.shutdown_fired.store(true, Ordering::Release);
        let waker = self.lock().waker.take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Silent since its last write for its whole interval: a keep-alive is due (the body takes
    /// `keep_alive_due` on its next poll, and the next check is an interval from now, which
    /// counts as the keep-alive's write); else the check moves to the last write plus the
    /// interval.
    fn keep_alive_check(&self, due: u64, now: u64) -> Option<u64> {
        if self.keep_alive_ms == 0 || self.keep_alive_next.load(Ordering::Relaxed) != due as u32 {
            return None;
        }
        let interval = u64::from(self.keep_alive_ms);
        let quiet_for =
            u64::from((now as u32).wrapping_sub(self.last_write_ms.load(Ordering::Relaxed)));
        let next = if quiet_for >= interval {
            self.last_write_ms.store(now as u32, Ordering::Relaxed);
            self.keep_alive_due.store(true, Ordering::Release);
            // Taken under the lock the body stores it under, after the flag: a body that
            // stored it before is woken, one that stores it after sees the flag.
            let waker = self.lock().waker.take();
            if let Some(waker) = waker {
                waker.wake();
            }
            now + interval
        } else {
            now + (interval - quiet_for)
        };
        self.keep_alive_next.store(next as u32, Ordering::Relaxed);
        Some(next)
    }
}

/// Tasks waiting on a stream: writers waiting for room in the queue ([`List::Room`]) and for
/// the stream's end ([`List::Ended`]), on two `Notify`s made together by the first of them (one word on
/// every stream until then). A waiter takes [`list`](Self::list)'s `notified()` before it
/// looks at the state under the stream's lock, and [`notify`](Self::notify) runs after the
/// change it announces: the lists a waiter made are seen by a notifier that took the lock after.
#[derive(Default)]
pub(super) struct Waiters(OnceLock<Box<[Notify; 2]>>);

/// The lists of [`Waiters`]: writers waiting for room, and for the stream's end.
pub(super) enum List {
    Room,
    Ended,
}

impl Waiters {
    /// The list `which`, made now when nobody waited before.
    pub(super) fn list(&self, which: List) -> &Notify {
        &self
            .0
            .get_or_init(|| Box::new([Notify::new(), Notify::new()]))[which as usize]
    }

    /// Wakes every waiter on the list `which`, if any ever waited.
    pub(super) fn notify(&self, which: List) {
        if let Some(lists) = self.0.get() {
            lists[which as usize].notify_waiters();
        }
    }
}

/// `duration` in whole milliseconds, at most `u32::MAX` (49 days: longer than any `retry:` or
/// keep-alive interval means anything).
fn ms_u32(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis()).unwrap_or(u32::MAX)
}

/// No key on the app's shutdown roll (see [`State::shutdown_key`]).
pub(super) const NO_KEY: u32 = u32::MAX;

pub(super) struct State {
    /// The queued events, one pointer each (see [`EncodedEvent`](super::EncodedEvent)).
    pub(super) queue: VecDeque<Arc<Bytes>>,
    pub(super) queued_bytes: usize,
    pub(super) end: Option<EndReason>,
    pub(super) waker: Option<Waker>,
    pub(super) next_id: Option<u64>,
    hook: Option<Hook>,
    /// What the stream is attached to, once attached: the app's shutdown token (kept to tell a
    /// forced close at the end of the grace period from a client that went away) and, on an
    /// HTTP/2 connection, its watch, where each poll of the body counts
    /// (`ServerConfig::http2_stall_timeout`).
    pub(super) link: Option<Arc<StreamLink>>,
    /// What the app's streams share (the open count, the budget), once attached.
    pub(super) app: Option<Arc<SseShared>>,
    /// The stream's key on the app's shutdown roll (`SseShared::join_shutdown`), once attached
    /// ([`NO_KEY`] before; a plain `u32`, which fits beside the other small fields where an
    /// `Option` would grow this state by a word).
    pub(super) shutdown_key: u32,
    /// Whether this stream counts in the app's open streams (from its attachment until its
    /// body goes).
    pub(super) live: bool,
    /// The `nest_sse_streams_open` gauge of the stream's route, once attached.
    pub(super) open_gauge: Option<metrics::Gauge>,
    /// The stream's tracing span, when a subscriber wants it (see [`StreamSpan`]).
    pub(super) span: Option<Box<StreamSpan>>,
    /// The body was dropped: the stream is over and must not be counted as live.
    pub(super) body_dropped: bool,
    /// Events lost to the overflow policy (counted under the lock the loss happens under: no
    /// atomic per lost event).
    pub(super) lost: u64,
    /// Losses not reported in a log line yet (saturating: a line is due every 10 s).
    unlogged: u32,
    /// Losses not counted in `nest_sse_events_lost_total` yet: counted by the stream's next
    /// loss that looks at the clock (see [`looks_at_clock`]: fewer than [`LOSS_CLOCK_EVERY`]
    /// losses later) or by its end, so a flood of losses costs the metric one update per 64,
    /// not one per loss.
    unmetered: u32,
    /// When the next loss may be logged, in ms on [`clock_ms`]'s clock (0: at once).
    next_loss_log: u64,
    /// The largest frame handed to the connection ([`H2_MAX_FRAME`] on HTTP/2).
    pub(super) max_frame: u32,
    /// What this stream has charged to the app's budget ([`State::held`], at most `u32::MAX`).
    charged: u32,
    /// The bytes of the frame the body handed its connection last, when they are this stream's
    /// alone (not an event shared with other streams): still held until the connection asks
    /// for the next frame, which it does once it took that one (the direct path: written to the
    /// socket; HTTP/2: in h2's send buffer, itself bounded per stream).
    pub(super) transit: u32,
    /// What the queue's events cost that this stream alone held when they were queued (their
    /// bytes plus [`Budget::PER_EVENT`]); an event shared with other streams
    /// (`write_encoded`) costs each of them only its slot. Reduced in proportion to the bytes
    /// handed on, zero when the queue is empty.
    owned: u32,
}

impl State {
    /// What the stream holds, as the budget counts it: a slot per queued event, the events it
    /// alone held when they were queued, and the frame in its connection's hands.
    pub(super) fn held(&self) -> usize {
        self.queue.len() * Budget::SLOT + self.owned as usize + self.transit as usize
    }

    /// What queueing `event` costs this stream: its slot, and its bytes and bookkeeping when
    /// it is this stream's alone (`sole`: a `write` or `send`, not a `write_encoded`).
    pub(super) fn cost(event: &Bytes, sole: bool) -> usize {
        if sole {
            Budget::SLOT + event.len() + Budget::PER_EVENT
        } else {
            Budget::SLOT
        }
    }

    /// Whether the server's budget refuses an event costing `cost` to this stream (see
    /// [`Budget::refuses`]).
    pub(super) fn over_budget(&self, cost: usize) -> bool {
        self.app.as_ref().is_some_and(|app| {
            let streams = app.live.load(Ordering::Relaxed);
            app.budget.refuses(self.held(), cost, streams)
        })
    }

    /// Queues an event (the one place events enter the queue): counts its bytes and its cost
    /// (see [`State::cost`]).
    pub(super) fn enqueue(&mut self, event: Arc<Bytes>, sole: bool) {
        let owned = State::cost(&event, sole) - Budget::SLOT;
        self.queued_bytes += event.len();
        self.owned = self
            .owned
            .saturating_add(u32::try_from(owned).unwrap_or(u32::MAX));
        self.queue.push_back(event);
        self.sync_budget();
    }

    /// `bytes` of queued events were taken off the queue (handed on or dropped): what they
    /// cost goes back, in proportion.
    pub(super) fn dequeued(&mut self, bytes: usize) {
        if self.owned > 0 {
            // (Nothing to divide for events shared with other streams, which own nothing.)
            let before = self.queued_bytes.max(1) as u64;
            let given = u64::from(self.owned) * bytes as u64 / before;
            self.owned = self
                .owned
                .saturating_sub(u32::try_from(given).unwrap_or(u32::MAX));
        }
        self.queued_bytes -= bytes;
        if self.queue.is_empty() {
            self.owned = 0;
        }
        self.sync_budget();
    }

    /// Empties the queue.
    pub(super) fn clear_queue(&mut self) {
        self.queue.clear();
        self.queued_bytes = 0;
        self.owned = 0;
        self.sync_budget();
    }

    /// Brings the budget up to date with the queue; called after every change of the queue.
    ///
    /// The charge moves in [`Budget::STEP`]s: it goes up to what the stream holds rounded up
    /// to a step, and comes down (to that) only once it is two steps or more above it, or when
    /// the stream holds nothing. So a stream that holds anything is charged at least what it
    /// holds and less than two steps more, one that holds nothing is charged nothing, and the
    /// server's counter (one cache line every writer on every thread writes to) moves once per
    /// ~32 events written to a stream with `write_encoded`, not once per event.
    pub(super) fn sync_budget(&mut self) {
        const STEP: u32 = Budget::STEP as u32;
        if let Some(app) = &self.app {
            let held = u32::try_from(self.held()).unwrap_or(u32::MAX);
            let stepped = held.div_ceil(STEP).saturating_mul(STEP);
            if held > self.charged {
                app.budget.charge((stepped - self.charged) as usize);
                self.charged = stepped;
            } else if held == 0 || self.charged - held >= 2 * STEP {
                app.budget.release((self.charged - stepped) as usize);
                self.charged = stepped;
            }
        }
    }
}

impl Drop for State {
    fn drop(&mut self) {
        // Whatever the queue still held when the stream's last handle went.
        if let Some(app) = &self.app {
            app.budget.release(self.charged as usize);
        }
    }
}

impl Shared {
    /// The state of a new stream (its initial `retry:` is the body's: it goes with the first
    /// event).
    pub(super) fn new(options: SseOptions) -> Self {
        Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                queued_bytes: 0,
                end: None,
                waker: None,
                next_id: options.auto_id,
                hook: options.on_cancel,
                link: None,
                app: None,
                shutdown_key: NO_KEY,
                live: false,
                open_gauge: None,
                span: None,
                body_dropped: false,
                lost: 0,
                unlogged: 0,
                unmetered: 0,
                next_loss_log: 0,
                max_frame: MAX_FRAME as u32,
                charged: 0,
                transit: 0,
                owned: 0,
            }),
            waiters: Waiters::default(),
            max_events: options.max_events,
            max_bytes: options.max_bytes,
            overflow: options.overflow,
            shutdown_retry: options
                .shutdown_retry
                .map(|(base, jitter)| (ms_u32(base), ms_u32(jitter))),
            auto_id: options.auto_id.is_some(),
            shutdown_fired: AtomicBool::new(false),
            traced: AtomicBool::new(false),
            writers: AtomicUsize::new(0),
            // At most 2^31 ms (24 days), so differences of these times fit in 32 bits.
            keep_alive_ms: options
                .keep_alive
                .map_or(0, |every| ms_u32(every).clamp(1, 1 << 31)),
            on_app_checks: AtomicBool::new(false),
            keep_alive_due: AtomicBool::new(false),
            last_write_ms: AtomicU32::new(0),
            keep_alive_next: AtomicU32::new(0),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state inconsistent (every update is a
        // single assignment or push, and no user code runs under it), so a poisoned lock is
        // still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Ends the stream (first reason wins). What is left to do once the lock is released (log,
    /// run or drop the hook) is returned: call [`Ending::finish`] after dropping the guard.
    pub(super) fn end(&self, st: &mut State, reason: EndReason) -> Option<Ending> {
        if st.end.is_some() {
            return None;
        }
        st.end = Some(reason);
        if !reason.flushes() {
            st.clear_queue();
        }
        self.waiters.notify(List::Room);
        self.waiters.notify(List::Ended);
        Some(Ending {
            waker: st.waker.take(),
            reason,
            span: st.span.take(),
            hook: st.hook.take(),
            unlogged: std::mem::take(&mut st.unlogged).into(),
            unmetered: (std::mem::take(&mut st.unmetered), Loss::of(self.overflow)),
            lost: st.lost,
        })
    }

    /// Ends the stream now (first reason wins) and finishes the ending outside the lock.
    pub(super) fn end_now(&self, reason: EndReason) {
        let ending = self.end(&mut self.lock(), reason);
        finish(ending);
    }

    /// Adds a cancel hook: it runs with the others when the stream ends, or at once if the stream
    /// already ended for a reason that runs hooks.
    pub(super) fn add_hook(&self, hook: Hook) {
        let ended = {
            let mut st = self.lock();
            match st.end {
                Some(reason) => reason,
                None => {
                    st.hook = Some(match st.hook.take() {
                        None => hook,
                        Some(first) => Box::new(move |reason| {
                            run_hook(first, reason);
                            run_hook(hook, reason);
                        }),
                    });
                    return;
                }
            }
        };
        if ended.runs_hook() {
            run_hook(hook, ended);
        }
    }

    /// Logs losses counted by [`State::lose`], at most once per stream per
    /// [`LOSS_LOG_INTERVAL`] (losses in between are summed into the next line, or the line at
    /// the end of the stream), and counts them in the metric. Called after the lock is
    /// released: only a loss that finds a line due takes it again. The clock is read only at
    /// the losses [`State::lose`] marks (see [`LOSS_CLOCK_EVERY`]), not at each loss of a flood.
    pub(super) fn report_loss(&self, lost: Lost) {
        if !lost.look {
            return;
        }
        crate::metrics::sse_events_lost(lost.metered.into(), lost.loss.label());
        let now = clock_ms();
        if now < lost.due {
            return;
        }
        let (unlogged, total) = {
            let mut st = self.lock();
            if st.next_loss_log != lost.due {
                return; // another writer logged this interval
            }
            st.next_loss_log = now + LOSS_LOG_INTERVAL.as_millis() as u64;
            (std::mem::take(&mut st.unlogged), st.lost)
        };
        if unlogged == 0 {
            return; // the stream's end reported them
        }
        let why = lost.loss.message();
        tracing::warn!(
            lost = unlogged,
            total_lost = total,
            "SSE events lost: {why} (logged at most once per {}s per stream)",
            LOSS_LOG_INTERVAL.as_secs()
        );
    }
}

impl State {
    /// Counts `count` events lost to the overflow policy; what to report once the lock is
    /// released: the losses not counted in the metric yet, when this loss looks at the clock.
    pub(super) fn lose(&mut self, count: u64, loss: Loss) -> Lost {
        let before = u64::from(self.unlogged);
        let after = before.saturating_add(count);
        self.lost += count;
        self.unlogged = u32::try_from(after).unwrap_or(u32::MAX);
        let look = looks_at_clock(before, after);
        // At most `count` + 63 (see `unmetered`); a `u32` unless one loss is 4 billion events.
        let unmetered = u64::from(self.unmetered).saturating_add(count);
        let unmetered = u32::try_from(unmetered).unwrap_or(u32::MAX);
        let metered = if look { unmetered } else { 0 };
        self.unmetered = unmetered - metered;
        Lost {
            metered,
            loss,
            due: self.next_loss_log,
            look,
        }
    }
}

/// Events lost under the lock, to report after it ([`Shared::report_loss`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct Lost {
    /// Losses to count in the metric now (this one's and the unmetered ones before it).
    metered: u32,
    loss: Loss,
    /// When the stream's next loss line was due at the time of the loss.
    due: u64,
    /// Whether to read the clock to see if the stream's loss line is due.
    look: bool,
}

/// After the first [`LOSS_CLOCK_EVERY`] losses since a stream's last loss line (at the 1st,
/// 2nd, 4th … of them), a loss looks at the clock for the next line once per this many: under
/// a flood, a clock read per 64 lost events instead of one per event (it was a tenth of the
/// server's time with 1,000 writers dropping), and a due line comes at most 64 losses late.
/// The losses metric is updated by the same losses (and at the stream's end).
pub(super) const LOSS_CLOCK_EVERY: u64 = 64;

/// Whether losses that took the stream's unlogged count from `before` to `after` look at the
/// clock: when they reach a power of two or cross a multiple of [`LOSS_CLOCK_EVERY`]. The
/// first loss after a line (`before` 0) always does, so sparse losses are logged when due.
pub(super) fn looks_at_clock(before: u64, after: u64) -> bool {
    before.leading_zeros() != after.leading_zeros()
        || before / LOSS_CLOCK_EVERY != after / LOSS_CLOCK_EVERY
}

/// The tracing span of one stream (`sse_stream`, with `route`): it lasts as long as the stream
/// and records `end_reason`, `events` (written or delivered) and `bytes` when it ends. Made only
/// when a subscriber is interested, so it costs nothing otherwise.
pub(super) struct StreamSpan {
    span: tracing::Span,
    pub(super) events: u64,
    pub(super) bytes: u64,
}

impl StreamSpan {
    fn new(route: &str) -> Option<Box<Self>> {
        let span = tracing::info_span!(
            "sse_stream",
            route,
            end_reason = tracing::field::Empty,
            events = tracing::field::Empty,
            bytes = tracing::field::Empty,
        );
        (!span.is_disabled()).then(|| {
            Box::new(Self {
                span,
                events: 0,
                bytes: 0,
            })
        })
    }

    fn close(self, reason: EndReason) {
        self.span.record("end_reason", reason.label());
        self.span.record("events", self.events);
        self.span.record("bytes", self.bytes);
        let _entered = self.span.enter();
        tracing::debug!(%reason, events = self.events, bytes = self.bytes, "SSE stream ended");
    }
}

/// How events were lost to the overflow policy.
#[derive(Debug, Clone, Copy)]
pub(super) enum Loss {
    /// `Overflow::Error`: the new event was refused.
    Refused,
    /// `Overflow::DropOldest`: queued events were dropped.
    Dropped,
    /// `Overflow::Close`: the stream was closed with its queue.
    Closed,
}

impl Loss {
    /// How a stream with the overflow policy `overflow` loses events.
    fn of(overflow: Overflow) -> Self {
        match overflow {
            Overflow::Error => Loss::Refused,
            Overflow::DropOldest => Loss::Dropped,
            Overflow::Close => Loss::Closed,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Loss::Refused => "refused",
            Loss::Dropped => "dropped",
            Loss::Closed => "closed",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Loss::Refused => "buffer full, event refused",
            Loss::Dropped => "buffer full, oldest events dropped",
            Loss::Closed => "buffer full, stream closed",
        }
    }
}

/// What ending a stream leaves to do once its lock is released.
#[must_use]
pub(super) struct Ending {
    /// The body's, woken once the lock is released.
    waker: Option<Waker>,
    reason: EndReason,
    span: Option<Box<StreamSpan>>,
    hook: Option<Hook>,
    unlogged: u64,
    /// Losses not counted in the metric yet, and how they were lost.
    unmetered: (u32, Loss),
    lost: u64,
}

/// Wakes the body, logs the end of a stream and runs its hook (or drops it, for a reason that
/// runs none), outside the stream's lock: a hook may drop the last writer, which takes the lock.
pub(super) fn finish(ending: Option<Ending>) {
    let Some(Ending {
        waker,
        reason,
        span,
        hook,
        unlogged,
        unmetered: (unmetered, loss),
        lost,
    }) = ending
    else {
        return;
    };
    if let Some(waker) = waker {
        waker.wake();
    }
    crate::metrics::sse_events_lost(unmetered.into(), loss.label());
    if unlogged > 0 {
        tracing::warn!(
            lost = unlogged,
            total_lost = lost,
            %reason,
            "SSE events lost since the last report; the stream ended"
        );
    }
    if let Some(span) = span {
        span.close(reason);
    }
    tracing::debug!(%reason, total_lost = lost, "SSE stream ended");
    crate::metrics::sse_stream_ended(reason.label());
    if let Some(hook) = hook {
        if reason.runs_hook() {
            run_hook(hook, reason);
        }
    }
}

/// Runs a hook; a panic in it is caught and logged (hooks run inside `Drop`, where a second
/// panic would abort the process).
fn run_hook(hook: Hook, reason: EndReason) {
    if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(|| hook(reason))) {
        tracing::error!(panic = %panic_message(&*panic), %reason, "an SSE cancel hook panicked");
    }
}

/// Carries a stream's shared state (its keep-alive interval with it) in the response extensions until the
/// router attaches it to the app.
#[derive(Clone)]
pub(crate) struct SseAttach(pub(super) Arc<Shared>);

impl SseAttach {
    /// Connects the stream: it ends with [`EndReason::Shutdown`] when `link`'s token is cancelled,
    /// counts itself in `app`'s open streams while open, charges its queue to `app`'s budget, and hands
    /// the connection smaller frames on HTTP/2, where it joins `link`'s connection watch when it
    /// has a keep-alive. A stream whose body was already dropped is not counted.
    pub(crate) fn attach(
        &self,
        link: &Arc<StreamLink>,
        app: &Arc<SseShared>,
        route: &Arc<str>,
        http2: bool,
    ) {
        let mut st = self.0.lock();
        st.app = Some(app.clone());
        st.sync_budget();
        crate::metrics::sse_buffered(app.budget.used());
        if http2 {
            st.max_frame = H2_MAX_FRAME as u32;
        }
        if st.body_dropped {
            // Nothing left to count or to end (a body dropped before it was sent, e.g. for HEAD).
            return;
        }
        app.live.fetch_add(1, Ordering::Relaxed);
        st.live = true;
        if let (Some(watch), Some(keep_alive)) = (&link.watch, self.0.keep_alive()) {
            watch.join(keep_alive);
        }
        st.open_gauge = Some(crate::metrics::sse_stream_opened(route));
        st.span = StreamSpan::new(route);
        if st.span.is_some() {
            self.0.traced.store(true, Ordering::Relaxed);
        }
        st.link = Some(link.clone());
        // Woken through `ShutdownWake for Shared` when the app shuts down, which sets `shutdown_fired`.
        let stream: Weak<Shared> = Arc::downgrade(&self.0);
        let key = app.join_shutdown(&link.shutdown, stream);
        st.shutdown_key = key.unwrap_or(NO_KEY);
        if let (Some(key), true) = (key, self.0.keep_alive_ms > 0) {
            // The keep-alive goes to the app's checks: no timer of the body's own.
            let now = clock_ms();
            let due = now + u64::from(self.0.keep_alive_ms);
            self.0.last_write_ms.store(now as u32, Ordering::Relaxed);
            self.0.keep_alive_next.store(due as u32, Ordering::Relaxed);
            if app.join_keep_alive(key, due) {
                self.0.on_app_checks.store(true, Ordering::Release);
            }
        }
        if key.is_none() {
            // The app is shutting down already.
            self.0.shutdown_fired.store(true, Ordering::Release);
        }
        let waker = st.waker.take();
        drop(st);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A keep-alive check answers only for the stream's pending check (a check left in the
    /// app's heap by a stream that had the same key before gets `None` and changes nothing);
    /// silent for its whole interval, the stream is told to send one and is next checked an
    /// interval later; written to since, it is next checked at its last write plus the
    /// interval, exactly. A stream without a keep-alive has no checks.
    #[test]
    fn a_keep_alive_check_answers_for_its_pending_time_only() {
        let shared = Shared::new(SseOptions::new().keep_alive(Some(Duration::from_secs(15))));
        shared.last_write_ms.store(1_000, Ordering::Relaxed);
        shared.keep_alive_next.store(16_000, Ordering::Relaxed);
        assert_eq!(
            shared.keep_alive_check(15_999, 16_000),
            None,
            "a stale check"
        );
        assert!(!shared.keep_alive_due.load(Ordering::Relaxed));
        assert_eq!(shared.keep_alive_check(16_000, 16_000), Some(31_000));
        assert!(
            shared.keep_alive_due.swap(false, Ordering::Relaxed),
            "one is due"
        );
        // A write at 20 s: the check at 31 s finds 11 s of silence, and moves to 35 s.
        shared.last_write_ms.store(20_000, Ordering::Relaxed);
        assert_eq!(shared.keep_alive_check(31_000, 31_000), Some(35_000));
        assert!(!shared.keep_alive_due.load(Ordering::Relaxed));
        assert_eq!(shared.keep_alive_check(35_000, 35_000), Some(50_000));
        assert!(shared.keep_alive_due.load(Ordering::Relaxed));

        let quiet = Shared::new(SseOptions::new().keep_alive(None));
        assert_eq!(quiet.keep_alive_check(0, 16_000), None);
        assert!(!quiet.keep_alive_due.load(Ordering::Relaxed));
    }
}
