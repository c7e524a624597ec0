//! The SSE stream: a writer any task can `write` to, a body the handler returns, and the lifecycle
//! that ties them together (the seed's `getSSEStream({ cancel })` → `{ write, body }`).

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::Frame;
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::encode::KEEP_ALIVE;
use super::hub::Cursor;
use super::{encode, EncodedEvent, SseError, SseEvent};

/// The largest data frame the body hands hyper at once when it coalesces queued events.
pub(crate) const MAX_FRAME: usize = 64 * 1024;

/// Why a stream ended.
///
/// | reason | when | cancel hook |
/// |---|---|---|
/// | `ClientGone` | the client closed or reset the connection (EOF, TCP reset, HTTP/2 `RST_STREAM`), or the body was dropped unread | runs |
/// | `Closed` | the server called [`SseWriter::close`] (queued events are flushed first) | does **not** run: cancel means the consumer went away, as in the seed |
/// | `WritersDropped` | every [`SseWriter`] clone was dropped (also when the task holding it panicked); queued events are flushed first | runs |
/// | `Shutdown` | the server is shutting down; queued events are flushed, then an optional final event | runs |
/// | `Overflow` | the buffer was full and the policy is [`Overflow::Close`], or a hub subscriber fell behind the topic's buffer with [`LagPolicy::Close`](super::hub::LagPolicy) | runs |
/// | `Failed` | a hub backend failed | runs |
///
/// The hook runs exactly once, for the first reason that ends the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EndReason {
    /// The client went away.
    ClientGone,
    /// The server closed the stream with [`SseWriter::close`].
    Closed,
    /// Every writer was dropped.
    WritersDropped,
    /// The server is shutting down.
    Shutdown,
    /// A slow client filled the buffer (or fell behind a hub topic's buffer) and the policy
    /// closed the stream.
    Overflow,
    /// The stream's event source failed (a hub backend error).
    Failed,
}

impl EndReason {
    fn runs_hook(self) -> bool {
        self != EndReason::Closed
    }

    /// Whether queued events are still sent before the stream ends.
    fn flushes(self) -> bool {
        matches!(
            self,
            EndReason::Closed | EndReason::WritersDropped | EndReason::Shutdown
        )
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EndReason::ClientGone => "the client went away",
            EndReason::Closed => "the server closed it",
            EndReason::WritersDropped => "every writer was dropped",
            EndReason::Shutdown => "the server is shutting down",
            EndReason::Overflow => "the client was too slow and the buffer overflowed",
            EndReason::Failed => "its event source failed",
        })
    }
}

/// What `write` does when a slow client has filled the stream's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Overflow {
    /// Refuse the new event: `write` returns an error for which [`SseError::is_full`] is true (default).
    #[default]
    Error,
    /// Drop the oldest queued events to make room.
    DropOldest,
    /// End the stream with [`EndReason::Overflow`]; the client reconnects and resumes with
    /// `Last-Event-ID`.
    Close,
}

type Hook = Box<dyn FnOnce(EndReason) + Send>;

/// Settings of one SSE stream.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use nest_core::sse::{get_sse_stream, Overflow, SseOptions};
///
/// let options = SseOptions::new()
///     .keep_alive(Some(Duration::from_secs(30)))
///     .retry(Duration::from_secs(5))
///     .buffer(256, 64 * 1024)
///     .overflow(Overflow::DropOldest)
///     .auto_id(1)
///     .on_cancel(|reason| println!("stream ended: {reason}"));
/// let (writer, _body) = get_sse_stream(options);
/// assert!(!writer.is_closed());
/// ```
#[must_use]
pub struct SseOptions {
    keep_alive: Option<Duration>,
    retry: Option<Duration>,
    max_events: usize,
    max_bytes: usize,
    overflow: Overflow,
    auto_id: Option<u64>,
    shutdown_retry: Option<(Duration, Duration)>,
    on_cancel: Option<Hook>,
}

impl fmt::Debug for SseOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseOptions")
            .field("keep_alive", &self.keep_alive)
            .field("retry", &self.retry)
            .field("max_events", &self.max_events)
            .field("max_bytes", &self.max_bytes)
            .field("overflow", &self.overflow)
            .field("auto_id", &self.auto_id)
            .field("shutdown_retry", &self.shutdown_retry)
            .field("on_cancel", &self.on_cancel.is_some())
            .finish()
    }
}

impl Default for SseOptions {
    fn default() -> Self {
        Self {
            keep_alive: Some(Duration::from_secs(15)),
            retry: None,
            max_events: 1024,
            max_bytes: 256 * 1024,
            overflow: Overflow::Error,
            auto_id: None,
            shutdown_retry: None,
            on_cancel: None,
        }
    }
}

impl SseOptions {
    /// The defaults: keep-alive every 15 s, no initial retry, a buffer of 1,024 events or 256 KiB,
    /// [`Overflow::Error`], no automatic ids.
    pub fn new() -> Self {
        Self::default()
    }

    /// How long the stream may stay silent before a keep-alive comment (`:`) is sent, so proxies
    /// don't time it out; `None` turns it off. The timer is lazy: it is not reset by every event.
    pub fn keep_alive(mut self, interval: Option<Duration>) -> Self {
        self.keep_alive = interval.filter(|d| !d.is_zero());
        self
    }

    /// A `retry:` sent first when the stream opens: the client's reconnection time.
    pub fn retry(mut self, retry: Duration) -> Self {
        self.retry = Some(retry);
        self
    }

    /// The buffer bound: at most `max_events` events and `max_bytes` bytes queued for a client that
    /// reads slower than events are written (an event larger than `max_bytes` is still accepted
    /// into an empty buffer). Zero values are raised to 1.
    pub fn buffer(mut self, max_events: usize, max_bytes: usize) -> Self {
        self.max_events = max_events.max(1);
        self.max_bytes = max_bytes.max(1);
        self
    }

    /// What happens when the buffer is full; see [`Overflow`].
    pub fn overflow(mut self, policy: Overflow) -> Self {
        self.overflow = policy;
        self
    }

    /// Gives every event written without an id the next integer id, starting at `first`
    /// (e.g. one past the client's `Last-Event-ID`).
    pub fn auto_id(mut self, first: u64) -> Self {
        self.auto_id = Some(first);
        self
    }

    /// On server shutdown, sends a final `retry:` of `base` plus a random part of up to `jitter`,
    /// so that browsers don't all reconnect at the same moment.
    pub fn shutdown_retry(mut self, base: Duration, jitter: Duration) -> Self {
        self.shutdown_retry = Some((base, jitter));
        self
    }

    /// The seed's `cancel()`: runs once when the stream ends for any reason but
    /// [`SseWriter::close`] (see [`EndReason`]). It may run inside `Drop`, so it is synchronous:
    /// stop timers and tasks here (e.g. `JoinHandle::abort`).
    pub fn on_cancel(mut self, hook: impl FnOnce(EndReason) + Send + 'static) -> Self {
        self.on_cancel = Some(Box::new(hook));
        self
    }
}

/// Creates an SSE stream: the writer to send events with, and the body the handler returns
/// (the seed's `getSSEStream`).
pub fn get_sse_stream(options: SseOptions) -> (SseWriter, SseBody) {
    let body = SseBody::new(options, None);
    let writer = SseWriter {
        guard: Arc::new(WriterGuard {
            shared: body.shared.clone(),
        }),
    };
    (writer, body)
}

struct Shared {
    state: Mutex<State>,
    room: Notify,
    ended: Notify,
    lost: AtomicU64,
    max_events: usize,
    max_bytes: usize,
    overflow: Overflow,
    shutdown_retry: Option<(Duration, Duration)>,
    /// Whether events without an id get the next automatic one (fixed at creation, so a write
    /// without automatic ids takes the lock once).
    auto_id: bool,
    /// Set when the app's shutdown token fired: the body polls its shutdown future with a
    /// waker of its own (this `Shared`), so after registering once it only reads this flag
    /// instead of polling the token (two locks) on every wake.
    shutdown_fired: AtomicBool,
}

/// The waker the shutdown future is polled with: records that it fired, then wakes the task
/// through the waker the body left for writers.
impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.shutdown_fired.store(true, Ordering::Release);
        let waker = self.lock().waker.take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

struct State {
    queue: VecDeque<Bytes>,
    queued_bytes: usize,
    end: Option<EndReason>,
    /// The stream ended for a reason that runs the hook before one was registered.
    unhooked_end: Option<EndReason>,
    waker: Option<Waker>,
    next_id: Option<u64>,
    hook: Option<Hook>,
    shutdown: Option<CancellationToken>,
    live: Option<Arc<AtomicUsize>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state inconsistent (every update is a
        // single assignment or push), so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Ends the stream (first reason wins); returns the hook to run once the lock is released.
    fn end(&self, st: &mut State, reason: EndReason) -> Option<(Hook, EndReason)> {
        if st.end.is_some() {
            return None;
        }
        st.end = Some(reason);
        if !reason.flushes() {
            st.queue.clear();
            st.queued_bytes = 0;
        }
        if let Some(waker) = st.waker.take() {
            waker.wake();
        }
        self.room.notify_waiters();
        self.ended.notify_waiters();
        tracing::debug!(%reason, "SSE stream ended");
        if !reason.runs_hook() {
            return None;
        }
        match st.hook.take() {
            Some(hook) => Some((hook, reason)),
            None => {
                st.unhooked_end = Some(reason);
                None
            }
        }
    }

    fn end_now(&self, reason: EndReason) {
        let hook = {
            let mut st = self.lock();
            self.end(&mut st, reason)
        };
        run_hook(hook);
    }

    fn lose(&self, count: u64, why: &str) {
        let total = self.lost.fetch_add(count, Ordering::Relaxed) + count;
        tracing::warn!(lost = count, total_lost = total, "SSE event lost: {why}");
    }
}

fn run_hook(hook: Option<(Hook, EndReason)>) {
    if let Some((hook, reason)) = hook {
        hook(reason);
    }
}

enum Mode {
    /// Apply the overflow policy.
    Policy,
    /// Report `Full` without counting a loss, to wait for room.
    Wait,
}

/// Sends events to one SSE stream. `Clone + Send + Sync`: move clones into any task or timer.
/// The stream ends with [`EndReason::WritersDropped`] when the last clone is dropped.
///
/// # Example
///
/// ```
/// use nest_core::sse::{get_sse_stream, SseEvent, SseOptions};
/// use serde_json::json;
///
/// let (writer, body) = get_sse_stream(SseOptions::new());
/// writer.write(json!({"hello": "world"})).unwrap();
/// writer.write(SseEvent::data("x").event("myEvent").id(1)).unwrap();
/// let err = writer.write(SseEvent::data("x").event("bad\nname")).unwrap_err();
/// assert_eq!(err.field(), Some("event"));
/// drop(body); // the client went away
/// assert!(writer.write("late").unwrap_err().is_closed());
/// ```
#[derive(Clone)]
pub struct SseWriter {
    guard: Arc<WriterGuard>,
}

struct WriterGuard {
    shared: Arc<Shared>,
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        self.shared.end_now(EndReason::WritersDropped);
    }
}

impl fmt::Debug for SseWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseWriter")
            .field("closed", &self.is_closed())
            .field("lost_events", &self.lost_events())
            .finish()
    }
}

impl SseWriter {
    fn shared(&self) -> &Shared {
        &self.guard.shared
    }

    /// Queues an event; never blocks, never panics. Fails when a field would break the stream
    /// format (nothing is written), when the stream has ended, or when the buffer is full and the
    /// policy is [`Overflow::Error`].
    pub fn write(&self, event: impl Into<SseEvent>) -> Result<(), SseError> {
        self.push_event(event.into(), Mode::Policy)
    }

    /// Queues an event that was encoded once (e.g. for many streams), without re-encoding it.
    pub fn write_encoded(&self, event: &EncodedEvent) -> Result<(), SseError> {
        self.push(event.0.clone(), Mode::Policy)
    }

    /// Queues an event, waiting for room when the buffer is full instead of applying the policy.
    pub async fn send(&self, event: impl Into<SseEvent>) -> Result<(), SseError> {
        let event = event.into();
        // Encode once, unless the automatic id is only known when the event is queued.
        let encoded = if event.id.is_none() && self.shared().auto_id {
            None
        } else {
            Some(encode(&event)?.0)
        };
        loop {
            let room = self.shared().room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            let pushed = match &encoded {
                Some(bytes) => self.push(bytes.clone(), Mode::Wait),
                None => self.push_event(event.clone(), Mode::Wait),
            };
            match pushed {
                Err(err) if err.is_full() => room.await,
                other => return other,
            }
        }
    }

    fn push_event(&self, mut event: SseEvent, mode: Mode) -> Result<(), SseError> {
        if event.id.is_none() && self.shared().auto_id {
            // Assign and queue under one lock so automatic ids reach the client in order.
            let shared = self.shared();
            let mut st = shared.lock();
            if let Some(id) = st.next_id {
                event.id = Some(id.to_string());
                let bytes = encode(&event)?.0;
                let (result, hook) = push_locked(shared, &mut st, bytes, mode);
                if result.is_ok() {
                    st.next_id = Some(id + 1);
                }
                drop(st);
                run_hook(hook);
                return result;
            }
        }
        let bytes = encode(&event)?.0;
        self.push(bytes, mode)
    }

    fn push(&self, bytes: Bytes, mode: Mode) -> Result<(), SseError> {
        let shared = self.shared();
        let (result, hook) = {
            let mut st = shared.lock();
            push_locked(shared, &mut st, bytes, mode)
        };
        run_hook(hook);
        result
    }

    /// Ends the stream after flushing what is queued; the cancel hook does not run. Later writes fail.
    pub fn close(&self) {
        self.shared().end_now(EndReason::Closed);
    }

    /// Whether the stream has ended (no more writes are accepted).
    pub fn is_closed(&self) -> bool {
        self.shared().lock().end.is_some()
    }

    /// Why the stream ended, once it has.
    pub fn end_reason(&self) -> Option<EndReason> {
        self.shared().lock().end
    }

    /// Resolves when the stream has ended, with the reason (for `tokio::select!` in writer loops).
    pub async fn closed(&self) -> EndReason {
        loop {
            let ended = self.shared().ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            if let Some(reason) = self.end_reason() {
                return reason;
            }
            ended.await;
        }
    }

    /// How many events this stream lost to its overflow policy (refused or dropped).
    pub fn lost_events(&self) -> u64 {
        self.shared().lost.load(Ordering::Relaxed)
    }

    /// How many events are queued, not yet handed to the connection.
    pub fn queued(&self) -> usize {
        self.shared().lock().queue.len()
    }
}

fn push_locked(
    shared: &Shared,
    st: &mut State,
    bytes: Bytes,
    mode: Mode,
) -> (Result<(), SseError>, Option<(Hook, EndReason)>) {
    if let Some(reason) = st.end {
        return (Err(SseError::closed(reason)), None);
    }
    let len = bytes.len();
    let is_full = |st: &State| {
        !st.queue.is_empty()
            && (st.queue.len() >= shared.max_events || st.queued_bytes + len > shared.max_bytes)
    };
    if is_full(st) {
        match (mode, shared.overflow) {
            (Mode::Wait, _) => return (Err(SseError::full()), None),
            (Mode::Policy, Overflow::Error) => {
                shared.lose(1, "buffer full, event refused");
                return (Err(SseError::full()), None);
            }
            (Mode::Policy, Overflow::DropOldest) => {
                let mut dropped = 0;
                while is_full(st) {
                    if let Some(old) = st.queue.pop_front() {
                        st.queued_bytes -= old.len();
                        dropped += 1;
                    }
                }
                shared.lose(dropped, "buffer full, oldest events dropped");
            }
            (Mode::Policy, Overflow::Close) => {
                let lost = st.queue.len() as u64 + 1;
                let hook = shared.end(st, EndReason::Overflow);
                shared.lose(lost, "buffer full, stream closed");
                return (Err(SseError::closed(EndReason::Overflow)), hook);
            }
        }
    }
    st.queue.push_back(bytes);
    st.queued_bytes += len;
    if let Some(waker) = st.waker.take() {
        waker.wake();
    }
    (Ok(()), None)
}

struct KeepAlive {
    interval: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    last_write: Option<Instant>,
}

/// The response body of an SSE stream; return it from the handler (it is an `IntoResponse` with
/// `200`, `content-type: text/event-stream`, `cache-control: no-cache`, `x-accel-buffering: no`).
///
/// Each poll hands the connection everything queued as one data frame (up to 64 KiB), so a burst
/// of events costs one write. Memory per stream is bounded by the queue bound
/// ([`SseOptions::buffer`], 256 KiB by default) + hyper's write buffer (at most the server's
/// `max_head_size`, 64 KiB by default, as hyper sizes both buffers alike) + the kernel's socket
/// send buffer (on Linux autotuned up to the third value of `net.ipv4.tcp_wmem`, 4 MiB by default).
/// With the defaults that is about 320 KiB per stream in user space. A hub subscriber has no queue
/// of its own: it reads the topic's shared buffer, so it costs only hyper's buffer and the socket's.
pub struct SseBody {
    shared: Arc<Shared>,
    /// Where events come from besides the writer's queue: a hub topic.
    source: Option<Cursor>,
    keep_alive: Option<KeepAlive>,
    shutdown: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
    /// Whether `shutdown` was polled once (so it holds the stream's waker).
    shutdown_registered: bool,
    finished: bool,
}

impl fmt::Debug for SseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseBody")
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl SseBody {
    /// A stream with the given options; events come from its writer's queue and, for hub
    /// subscribers, from `source`.
    pub(crate) fn new(options: SseOptions, source: Option<Cursor>) -> Self {
        let mut queue = VecDeque::new();
        let mut queued_bytes = 0;
        if let Some(retry) = options.retry {
            if let Ok(encoded) = encode(&SseEvent::new().retry(retry)) {
                queued_bytes += encoded.len();
                queue.push_back(encoded.0);
            }
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue,
                queued_bytes,
                end: None,
                unhooked_end: None,
                waker: None,
                next_id: options.auto_id,
                hook: options.on_cancel,
                shutdown: None,
                live: None,
            }),
            room: Notify::new(),
            ended: Notify::new(),
            lost: AtomicU64::new(0),
            max_events: options.max_events,
            max_bytes: options.max_bytes,
            overflow: options.overflow,
            shutdown_retry: options.shutdown_retry,
            auto_id: options.auto_id.is_some(),
            shutdown_fired: AtomicBool::new(false),
        });
        SseBody {
            shared,
            source,
            keep_alive: options.keep_alive.map(|interval| KeepAlive {
                interval,
                sleep: None,
                last_write: None,
            }),
            shutdown: None,
            shutdown_registered: false,
            finished: false,
        }
    }

    /// Sets the cancel hook after the stream was created (e.g. to abort the task that writes to
    /// it); runs at once if the stream already ended for a reason that runs it.
    #[must_use]
    pub fn on_cancel(self, hook: impl FnOnce(EndReason) + Send + 'static) -> Self {
        let due = {
            let mut st = self.shared.lock();
            let due = st.unhooked_end.take();
            if due.is_none() {
                st.hook = Some(Box::new(hook));
                return {
                    drop(st);
                    self
                };
            }
            due
        };
        if let Some(reason) = due {
            hook(reason);
        }
        self
    }

    /// Connects the stream to an app: it ends with [`EndReason::Shutdown`] when `token` is
    /// cancelled, and counts itself in `live` while open.
    pub(crate) fn attach(shared: &SseAttach, token: CancellationToken, live: Arc<AtomicUsize>) {
        let mut st = shared.0.lock();
        live.fetch_add(1, Ordering::Relaxed);
        st.live = Some(live);
        st.shutdown = Some(token);
        if let Some(waker) = st.waker.take() {
            waker.wake();
        }
    }

    pub(crate) fn attachment(&self) -> SseAttach {
        SseAttach(self.shared.clone())
    }

    fn shutdown_frame(&self) -> Option<Bytes> {
        let (base, jitter) = self.shared.shutdown_retry?;
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let jitter_ms = u64::try_from(jitter.as_millis()).unwrap_or(u64::MAX);
        let extra = if jitter_ms == 0 {
            0
        } else {
            random % (jitter_ms + 1)
        };
        let retry = base + Duration::from_millis(extra);
        encode(&SseEvent::new().retry(retry)).ok().map(|e| e.0)
    }
}

/// Carries a stream's shared state in the response extensions until the router attaches it to
/// the app.
#[derive(Clone)]
pub(crate) struct SseAttach(Arc<Shared>);

fn drain(st: &mut State) -> Option<Bytes> {
    let first = st.queue.pop_front()?;
    let frame = if st.queue.is_empty() || first.len() >= MAX_FRAME {
        first
    } else {
        let mut buf = BytesMut::with_capacity(st.queued_bytes.min(MAX_FRAME));
        buf.extend_from_slice(&first);
        while let Some(next) = st.queue.front() {
            if buf.len() + next.len() > MAX_FRAME {
                break;
            }
            buf.extend_from_slice(next);
            st.queue.pop_front();
        }
        buf.freeze()
    };
    st.queued_bytes -= frame.len();
    Some(frame)
}

impl http_body::Body for SseBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        loop {
            if this.finished {
                return Poll::Ready(None);
            }
            // A borrow, not an Arc clone: no atomic increment per poll.
            let shared: &Shared = &this.shared;
            {
                let mut st = shared.lock();
                if this.shutdown.is_none() {
                    if let Some(token) = st.shutdown.take() {
                        this.shutdown = Some(Box::pin(token.cancelled_owned()));
                    }
                }
                if let Some(frame) = drain(&mut st) {
                    drop(st);
                    shared.room.notify_waiters();
                    if let Some(ka) = &mut this.keep_alive {
                        ka.last_write = Some(Instant::now());
                    }
                    return Poll::Ready(Some(Ok(Frame::data(frame))));
                }
                if st.end.is_some() {
                    this.finished = true;
                    return Poll::Ready(None);
                }
                match &st.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => st.waker = Some(cx.waker().clone()),
                }
            }
            if let Some(source) = &mut this.source {
                match source.poll_next(cx) {
                    Poll::Ready(Ok(frame)) => {
                        if let Some(ka) = &mut this.keep_alive {
                            ka.last_write = Some(Instant::now());
                        }
                        return Poll::Ready(Some(Ok(Frame::data(frame))));
                    }
                    Poll::Ready(Err(reason)) => {
                        this.source = None;
                        shared.end_now(reason);
                        continue;
                    }
                    Poll::Pending => {}
                }
            }
            if let Some(shutdown) = &mut this.shutdown {
                // Polled with the stream's own waker (see `Shared::wake`): the first poll
                // registers it, later polls are needed only once it fired. The writers' waker
                // was stored above, before this registration, so the wake reaches the task.
                let fired = shared.shutdown_fired.load(Ordering::Acquire);
                let ready = (!this.shutdown_registered || fired) && {
                    this.shutdown_registered = true;
                    let waker = Waker::from(this.shared.clone());
                    shutdown
                        .as_mut()
                        .poll(&mut Context::from_waker(&waker))
                        .is_ready()
                };
                if ready {
                    this.shutdown = None;
                    let last = this.shutdown_frame();
                    let hook = {
                        let mut st = shared.lock();
                        if st.end.is_none() {
                            if let Some(last) = last {
                                st.queued_bytes += last.len();
                                st.queue.push_back(last);
                            }
                        }
                        shared.end(&mut st, EndReason::Shutdown)
                    };
                    run_hook(hook);
                    continue;
                }
            }
            if let Some(ka) = &mut this.keep_alive {
                // A lazy timer: writes only record their time; when the timer fires it checks
                // whether the stream was really idle for a whole interval, and re-arms if not.
                let last = *ka.last_write.get_or_insert_with(Instant::now);
                let interval = ka.interval;
                let sleep = ka
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(last + interval)));
                while sleep.as_mut().poll(cx).is_ready() {
                    let now = Instant::now();
                    let due = ka.last_write.unwrap_or(now) + interval;
                    if now >= due {
                        ka.last_write = Some(now);
                        sleep.as_mut().reset(now + interval);
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(KEEP_ALIVE)))));
                    }
                    sleep.as_mut().reset(due);
                }
            }
            return Poll::Pending;
        }
    }
}

impl Drop for SseBody {
    fn drop(&mut self) {
        let (hook, live) = {
            let mut st = self.shared.lock();
            let hook = self.shared.end(&mut st, EndReason::ClientGone);
            (hook, st.live.take())
        };
        if let Some(live) = live {
            live.fetch_sub(1, Ordering::Relaxed);
        }
        run_hook(hook);
    }
}
