//! The writer: queues events for one stream under its buffer bound and overflow policy.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Waker;

use bytes::Bytes;

use super::body::SseBody;
use super::end::EndReason;
use super::lifecycle::{finish, Ending, List, Loss, Lost, Shared, State};
use super::options::{Overflow, SseOptions};
use super::{encode, EncodedEvent, SseError, SseEvent};

/// Creates an SSE stream: the writer to send events with, and the body the handler returns
/// (the seed's `getSSEStream`).
pub fn get_sse_stream(options: SseOptions) -> (SseWriter, SseBody) {
    let body = SseBody::new(options, None);
    body.shared.writers.store(1, Ordering::Relaxed);
    let writer = SseWriter {
        shared: body.shared.clone(),
    };
    (writer, body)
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
pub struct SseWriter {
    /// The stream itself, one pointer away: a write to many streams in a loop (the seed's one
    /// writer per client) touches each stream's state and nothing else. The clones are counted
    /// in `Shared::writers`; the last one dropped ends the stream (`WritersDropped`).
    shared: Arc<Shared>,
}

impl Clone for SseWriter {
    fn clone(&self) -> Self {
        self.shared.writers.fetch_add(1, Ordering::Relaxed);
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for SseWriter {
    fn drop(&mut self) {
        // AcqRel: the last writer's drop sees every other writer's writes before it ends.
        if self.shared.writers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.end_now(EndReason::WritersDropped);
        }
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
        &self.shared
    }

    /// Queues an event; never blocks, never panics. Fails when a field would break the stream
    /// format (nothing is written), when the stream has ended, or when the buffer is full and the
    /// policy is [`Overflow::Error`].
    pub fn write(&self, event: impl Into<SseEvent>) -> Result<(), SseError> {
        self.push_event(event.into(), Mode::Policy)
    }

    /// Queues an event that was encoded once (e.g. for many streams), without re-encoding it.
    pub fn write_encoded(&self, event: &EncodedEvent) -> Result<(), SseError> {
        // Shared: its bytes are stored once, whatever the streams (the budget charges a slot).
        self.push(event.0.clone(), Mode::Policy, false)
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
            let room = self.shared().waiters.list(List::Room).notified();
            tokio::pin!(room);
            room.as_mut().enable();
            let pushed = match &encoded {
                Some(bytes) => self.push(bytes.clone(), Mode::Wait, true),
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
                let pushed = push_locked(shared, &mut st, bytes, mode, true);
                if pushed.result.is_ok() {
                    // Saturates rather than wraps or panics: an id from a client's
                    // `Last-Event-ID` may be near `u64::MAX`.
                    st.next_id = Some(id.saturating_add(1));
                }
                drop(st);
                return pushed.finish(shared);
            }
        }
        let bytes = encode(&event)?.0;
        self.push(bytes, mode, true)
    }

    /// Queues `bytes`; `sole` when they are this stream's alone (not a shared encoded event).
    ///
    /// The common case (an open stream with room) is a few field updates under the lock and
    /// the wake after it; an ended or full stream takes [`push_past_room`]'s way. No waker runs
    /// under the lock.
    fn push(&self, bytes: Arc<Bytes>, mode: Mode, sole: bool) -> Result<(), SseError> {
        let shared = self.shared();
        let mut st = shared.lock();
        if st.end.is_none() && !is_full(shared, &st, bytes.len(), State::cost(&bytes, sole)) {
            let waker = queue(&mut st, bytes, sole);
            drop(st);
            if let Some(waker) = waker {
                waker.wake();
            }
            return Ok(());
        }
        let pushed = push_past_room(shared, &mut st, bytes, mode, sole);
        drop(st);
        pushed.finish(shared)
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
            let ended = self.shared().waiters.list(List::Ended).notified();
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
        self.shared().lock().lost
    }

    /// How many events are queued, not yet handed to the connection.
    pub fn queued(&self) -> usize {
        self.shared().lock().queue.len()
    }
}

/// What a push under the lock leaves to do after it: wake the body, report losses, finish an
/// ending.
#[must_use]
struct Pushed {
    result: Result<(), SseError>,
    waker: Option<Waker>,
    lost: Option<Lost>,
    ending: Option<Ending>,
}

impl Pushed {
    fn done(result: Result<(), SseError>) -> Self {
        Self {
            result,
            waker: None,
            lost: None,
            ending: None,
        }
    }

    /// Called once the lock is released.
    fn finish(self, shared: &Shared) -> Result<(), SseError> {
        if let Some(waker) = self.waker {
            waker.wake();
        }
        if let Some(lost) = self.lost {
            shared.report_loss(lost);
        }
        finish(self.ending);
        self.result
    }
}

/// Whether a stream's queue has no room for an event of `len` bytes costing `cost`: full by
/// the stream's own bound, or by the server's budget when this stream holds more than its
/// share of it (an event into an empty queue is always taken).
fn is_full(shared: &Shared, st: &State, len: usize, cost: usize) -> bool {
    !st.queue.is_empty()
        && (st.queue.len() >= shared.max_events
            || st.queued_bytes + len > shared.max_bytes
            || st.over_budget(cost))
}

/// Queues an event the stream has room for; returns the body's waker, to wake once the lock is
/// released (a waker may run code that looks at the stream: a custom executor's, a test's).
fn queue(st: &mut State, bytes: Arc<Bytes>, sole: bool) -> Option<Waker> {
    st.enqueue(bytes, sole);
    if let Some(span) = &mut st.span {
        span.events += 1;
    }
    st.waker.take()
}

/// Queues `bytes` under the lock (the way of a write with an automatic id, which must take its
/// id under the same lock): an open stream with room takes them at once, else
/// [`push_past_room`] applies the policy.
fn push_locked(
    shared: &Shared,
    st: &mut State,
    bytes: Arc<Bytes>,
    mode: Mode,
    sole: bool,
) -> Pushed {
    if st.end.is_none() && !is_full(shared, st, bytes.len(), State::cost(&bytes, sole)) {
        return Pushed {
            waker: queue(st, bytes, sole),
            ..Pushed::done(Ok(()))
        };
    }
    push_past_room(shared, st, bytes, mode, sole)
}

/// Queues `bytes` on a stream that ended (refused) or has no room: the overflow policy, or
/// `Full` for a writer that waits for room.
#[cold]
fn push_past_room(
    shared: &Shared,
    st: &mut State,
    bytes: Arc<Bytes>,
    mode: Mode,
    sole: bool,
) -> Pushed {
    if let Some(reason) = st.end {
        return Pushed::done(Err(SseError::closed(reason)));
    }
    let len = bytes.len();
    let cost = State::cost(&bytes, sole);
    let is_full = |st: &State| is_full(shared, st, len, cost);
    let mut lost = None;
    if is_full(st) {
        match (mode, shared.overflow) {
            (Mode::Wait, _) => return Pushed::done(Err(SseError::full())),
            (Mode::Policy, Overflow::Error) => {
                return Pushed {
                    lost: Some(st.lose(1, Loss::Refused)),
                    ..Pushed::done(Err(SseError::full()))
                };
            }
            (Mode::Policy, Overflow::DropOldest) => {
                let mut dropped = 0;
                while is_full(st) {
                    if let Some(old) = st.queue.pop_front() {
                        st.dequeued(old.len());
                        dropped += 1;
                    }
                }
                lost = Some(st.lose(dropped, Loss::Dropped));
            }
            (Mode::Policy, Overflow::Close) => {
                // Counted before the end, whose line reports them.
                let lost = st.lose(st.queue.len() as u64 + 1, Loss::Closed);
                return Pushed {
                    result: Err(SseError::closed(EndReason::Overflow)),
                    waker: None,
                    lost: Some(lost),
                    ending: shared.end(st, EndReason::Overflow),
                };
            }
        }
    }
    Pushed {
        waker: queue(st, bytes, sole),
        lost,
        ..Pushed::done(Ok(()))
    }
}
