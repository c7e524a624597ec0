//! The body: what the handler returns and hyper polls. Each poll hands the connection everything
//! queued as one frame; another source of events (the hub's cursor) plugs in as an
//! [`EventSource`].

use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::Frame;
use tokio::time::Sleep;

use super::encode::KEEP_ALIVE;
use super::end::EndReason;
use super::keep_alive::KeepAlive;
use super::lifecycle::{finish, List, Shared, SseAttach, State};
use super::options::SseOptions;
use super::source::{EventSource, SourceFrame};
use super::{encode, SseEvent};

/// The response body of an SSE stream; return it from the handler (it is an `IntoResponse` with
/// `200`, `content-type: text/event-stream`, `cache-control: no-cache`, `x-accel-buffering: no`).
///
/// Each poll hands the connection everything queued as one data frame (up to 64 KiB), so a burst
/// of events costs one write.
///
/// # Memory bound
///
/// What one stream whose client never reads can pin, in user space, with the defaults (measured
/// by `nest-core/tests/hostile.rs`, quoted in RELIABILITY.md):
///
/// - its queue: [`SseOptions::buffer`], 1,024 events and 256 KiB of encoded events by default,
///   plus up to ~80 bytes of bookkeeping per queued event (its slot, the shared handle and the
///   allocator's headers: at most ~80 KiB at 1,024 events; an event written to many streams
///   with [`SseWriter::write_encoded`](super::SseWriter::write_encoded) is stored once);
/// - HTTP/1.1: hyper's write queue, up to the server's `max_head_size` (64 KiB) plus the last
///   frame it took (up to 64 KiB), and its 8 KiB read buffer: at most **480 KiB per HTTP/1.1
///   connection** (measured: 438 KiB through hyper, 368 KiB on the direct SSE path, which
///   keeps only the frame being written);
/// - HTTP/2: h2's send buffer (`ServerConfig::http2_max_send_buf_size`, 16 KiB) plus one 16 KiB
///   frame per stream and the allocator's overhead: at most **400 KiB per HTTP/2 stream**, and
///   at most `http2_max_streams` (100) streams at once: at most **40 MiB per HTTP/2 connection**
///   (measured: 34.4–35.2 MiB). What a client sends is bounded by h2's receive windows (1 MiB
///   per connection).
///
/// All streams' queues together are bounded by the server's
/// [`ServerConfig::sse_buffer_budget`](crate::ServerConfig::sse_buffer_budget) (128 MiB by
/// default): past it, a stream holding more than its share is full.
///
/// The kernel's socket send buffer comes on top (on Linux autotuned up to the third value of
/// `net.ipv4.tcp_wmem`, 4 MiB by default). A hub subscriber has no queue of its own: it reads
/// the topic's shared buffer, so it costs only the connection's buffers.
pub struct SseBody {
    pub(super) shared: Arc<Shared>,
    /// Where events come from besides the writer's queue: a hub topic, a resumable stream.
    source: Option<Box<dyn EventSource>>,
    /// The timers few bodies have, in one box made when the first is needed (8 bytes on every
    /// other body): see [`Timers`].
    timers: Option<Box<Timers>>,
    /// The stream ended for the shutdown already (see `Shared::shutdown_fired`).
    shutdown_seen: bool,
    /// [`SseOptions::retry`] in ms (at most `u32::MAX - 1`, 49 days), plus one, sent as a
    /// `retry:` line at the head of the first event (a block of its own makes some clients
    /// (httpx-sse) yield an empty message); the line is made then, not kept (4 bytes here, not
    /// a `Bytes`'s 32).
    retry: Option<NonZeroU32>,
    finished: bool,
}

/// A body's rare timers. Every idle stream's body is boxed for its whole life, so they are not
/// in it: 40 bytes, a 48-byte block, where the two as fields of their own made it 56 (64).
#[derive(Default)]
struct Timers {
    /// The body's own keep-alive timer, for a stream with a keep-alive that is not on its
    /// app's checks (a body polled without being attached): made when first needed. An
    /// attached stream's keep-alive is the app's (see `Shared::on_app_checks`).
    keep_alive: Option<KeepAlive>,
    /// When the stream reaches its maximum lifetime, if it has one.
    lifetime: Option<Pin<Box<Sleep>>>,
}

impl Timers {
    /// Whether the body's maximum lifetime is over (its timer is gone then).
    fn lifetime_over(&mut self, cx: &mut Context<'_>) -> bool {
        let over = (self.lifetime.as_mut()).is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready());
        if over {
            self.lifetime = None;
        }
        over
    }
}

impl fmt::Debug for SseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseBody")
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl SseBody {
    /// A stream whose events come from `source` (a hub's cursor, say; see [`EventSource`]),
    /// with the lifecycle, keep-alive, `retry:` and limits of `options`. It has no writer: its
    /// buffer holds only the final `retry:` of [`SseOptions::shutdown_retry`].
    ///
    /// ```
    /// use std::task::{Context, Poll};
    /// use nest_core::sse::{EndReason, EventSource, SourceFrame, SseBody, SseOptions};
    ///
    /// struct Never;
    /// impl EventSource for Never {
    ///     fn poll_frame(&mut self, _: &mut Context<'_>, _: usize) -> Poll<Result<SourceFrame, EndReason>> {
    ///         Poll::Pending
    ///     }
    /// }
    /// let body = SseBody::from_source(SseOptions::new(), Never);
    /// assert!(format!("{body:?}").contains("finished: false"));
    /// ```
    pub fn from_source(options: SseOptions, source: impl EventSource) -> Self {
        Self::new(options, Some(Box::new(source)))
    }

    /// A stream with the given options; events come from its writer's queue and, for a stream
    /// made by [`from_source`](Self::from_source), from `source`.
    pub(crate) fn new(options: SseOptions, source: Option<Box<dyn EventSource>>) -> Self {
        let retry = options.retry.and_then(|retry| {
            let ms = u32::try_from(retry.as_millis()).unwrap_or(u32::MAX);
            NonZeroU32::new(ms.min(u32::MAX - 1) + 1)
        });
        let timers = options.max_lifetime.map(|(lifetime, jitter)| {
            let lifetime = Some(Box::pin(tokio::time::sleep(lifetime + jittered(jitter))));
            Box::new(Timers {
                keep_alive: None,
                lifetime,
            })
        });
        SseBody {
            shared: Arc::new(Shared::new(options)),
            source,
            timers,
            shutdown_seen: false,
            retry,
            finished: false,
        }
    }

    /// Adds a cancel hook after the stream was created (e.g. to abort the task that writes to
    /// it). A hook set in [`SseOptions::on_cancel`] and this one both run (that one first). If
    /// the stream already ended for a reason that runs hooks, this one runs at once with it.
    #[must_use]
    pub fn on_cancel(self, hook: impl FnOnce(EndReason) + Send + 'static) -> Self {
        self.shared.add_hook(Box::new(hook));
        self
    }

    pub(crate) fn attachment(&self) -> SseAttach {
        SseAttach(self.shared.clone())
    }

    fn shutdown_frame(&self) -> Option<Arc<Bytes>> {
        let (base, jitter) = self.shared.shutdown_retry?;
        let retry =
            Duration::from_millis(base.into()) + jittered(Duration::from_millis(jitter.into()));
        encode(&SseEvent::new().retry(retry)).ok().map(|e| e.0)
    }

    /// Ends the stream for shutdown or its lifetime: the final `retry:` is queued behind what
    /// is left.
    fn end_with_retry(&mut self, reason: EndReason) {
        let last = self.shutdown_frame();
        let ending = {
            let mut st = self.shared.lock();
            if st.end.is_none() {
                if let Some(last) = last {
                    if st.queue.is_empty() {
                        // The final `retry:` comes first: it replaces the initial one.
                        self.retry = None;
                    }
                    st.enqueue(last, true);
                }
            }
            self.shared.end(&mut st, reason)
        };
        finish(ending);
    }

    /// Whether the body made a keep-alive timer of its own (not when its keep-alive is the
    /// app's checks).
    #[cfg(test)]
    pub(super) fn has_timer(&self) -> bool {
        let keep_alive = self.timers.as_ref().and_then(|t| t.keep_alive.as_ref());
        keep_alive.is_some_and(KeepAlive::has_timer)
    }

    /// The body's own keep-alive timer, made now if it was not.
    fn own_keep_alive(&mut self, every: Duration) -> &mut KeepAlive {
        let timers = self.timers.get_or_insert_with(Box::default);
        timers
            .keep_alive
            .get_or_insert_with(|| KeepAlive::new(every))
    }

    fn wrote(&mut self) {
        if let Some(every) = self.shared.keep_alive() {
            if self.shared.on_app_checks.load(Ordering::Relaxed) {
                let shared = &self.shared;
                shared
                    .last_write_ms
                    .store(crate::context::clock_ms() as u32, Ordering::Relaxed);
                // A keep-alive asked for before this write is not needed any more.
                if shared.keep_alive_due.load(Ordering::Relaxed) {
                    shared.keep_alive_due.store(false, Ordering::Relaxed);
                }
            } else {
                self.own_keep_alive(every).wrote();
            }
        }
    }
}

/// `frame` (whole events) with the initial `retry:` line at its head, the first time it starts
/// with an event: a block of comments only (padding, say) stays one, or `retry:` would make it a
/// message to clients that dispatch on `retry:` alone.
fn with_retry(retry: &mut Option<NonZeroU32>, frame: Bytes) -> Bytes {
    let Some(ms) = retry.map(|plus_one| u64::from(plus_one.get() - 1)) else {
        return frame;
    };
    let comments_only = frame
        .split(|b| *b == b'\n')
        .take_while(|line| !line.is_empty())
        .all(|line| line.starts_with(b":"));
    if comments_only {
        return frame;
    }
    *retry = None;
    // `retry: N\n\n` without its blank line: the event's lines follow it.
    let Ok(line) = encode(&SseEvent::new().retry_ms(ms)) else {
        return frame;
    };
    let line = &line.0[..line.0.len() - 1];
    let mut buf = BytesMut::with_capacity(line.len() + frame.len());
    buf.extend_from_slice(line);
    buf.extend_from_slice(&frame);
    buf.freeze()
}

/// A random duration of up to `jitter` (whole milliseconds).
fn jittered(jitter: Duration) -> Duration {
    let jitter_ms = u64::try_from(jitter.as_millis()).unwrap_or(u64::MAX);
    if jitter_ms == 0 {
        return Duration::ZERO;
    }
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    Duration::from_millis(random % jitter_ms.saturating_add(1))
}

fn drain(st: &mut State) -> Option<(Bytes, u64)> {
    let max_frame = st.max_frame as usize;
    let first = st.queue.pop_front()?;
    let mut events = 1;
    let frame = if st.queue.is_empty() || first.len() >= max_frame {
        // Handed on without a copy (the `Bytes` itself when this stream held the only
        // pointer, as for a plain `write`).
        Arc::try_unwrap(first).unwrap_or_else(|shared| Bytes::clone(&shared))
    } else {
        let mut buf = BytesMut::with_capacity(st.queued_bytes.min(max_frame));
        buf.extend_from_slice(&first);
        while let Some(next) = st.queue.front() {
            if buf.len() + next.len() > max_frame {
                break;
            }
            buf.extend_from_slice(next);
            st.queue.pop_front();
            events += 1;
        }
        buf.freeze()
    };
    if st.queue.is_empty() {
        // Back to the ring's first slots: a stream drained as fast as it is written reuses
        // the same few (warm) cache lines instead of walking its whole buffer.
        st.queue.clear();
    }
    // Still held while the connection has it (counted in the same budget update).
    st.transit = in_transit(&frame);
    st.dequeued(frame.len());
    Some((frame, events))
}

/// What a frame handed to the connection counts while it is there: its bytes when they are
/// this stream's alone; nothing for an event shared with other streams (stored once, whatever
/// the streams: see [`Budget`](crate::context::Budget)).
fn in_transit(frame: &Bytes) -> u32 {
    if frame.is_unique() {
        u32::try_from(frame.len()).unwrap_or(u32::MAX)
    } else {
        0
    }
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
            let max_frame = {
                let mut st = shared.lock();
                // The connection asks for a frame once it took the last one: that one is no
                // longer this stream's to hold.
                let handed_on = std::mem::take(&mut st.transit) > 0;
                if let Some(watch) = st.link.as_ref().and_then(|link| link.watch.as_ref()) {
                    watch.polled();
                }
                if let Some((frame, events)) = drain(&mut st) {
                    let frame = with_retry(&mut this.retry, frame);
                    if let Some(span) = &mut st.span {
                        span.bytes += frame.len() as u64;
                    }
                    drop(st);
                    // Per frame, not per event and writer: one call for all the events in it.
                    crate::metrics::sse_events(events);
                    crate::metrics::sse_bytes(frame.len());
                    shared.waiters.notify(List::Room);
                    this.wrote();
                    return Poll::Ready(Some(Ok(Frame::data(frame))));
                }
                if handed_on {
                    st.sync_budget();
                }
                if st.end.is_some() {
                    this.finished = true;
                    return Poll::Ready(None);
                }
                match &st.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => st.waker = Some(cx.waker().clone()),
                }
                st.max_frame as usize
            };
            if let Some(source) = &mut this.source {
                match source.poll_frame(cx, max_frame) {
                    Poll::Ready(Ok(SourceFrame { bytes, events })) => {
                        let frame = with_retry(&mut this.retry, bytes);
                        crate::metrics::sse_events(events);
                        crate::metrics::sse_bytes(frame.len());
                        let transit = in_transit(&frame);
                        if transit > 0 || shared.traced.load(Ordering::Relaxed) {
                            let mut st = shared.lock();
                            st.transit = transit;
                            st.sync_budget();
                            if let Some(span) = &mut st.span {
                                span.events += events;
                                span.bytes += frame.len() as u64;
                            }
                        }
                        this.wrote();
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
            // Set by the app's shutdown roll, which then wakes the waker stored above (read
            // after storing it, so a shutdown between the two is seen here).
            if !this.shutdown_seen && shared.shutdown_fired.load(Ordering::Acquire) {
                this.shutdown_seen = true;
                this.end_with_retry(EndReason::Shutdown);
                continue;
            }
            if this
                .timers
                .as_mut()
                .is_some_and(|timers| timers.lifetime_over(cx))
            {
                this.end_with_retry(EndReason::Lifetime);
                continue;
            }
            if let Some(every) = shared.keep_alive() {
                let due = if shared.on_app_checks.load(Ordering::Acquire) {
                    // Attached after a poll made the body's own timer: it goes.
                    if let Some(timers) = &mut this.timers {
                        timers.keep_alive = None;
                    }
                    // The app's check asked for it (and woke the waker stored above).
                    shared.keep_alive_due.load(Ordering::Acquire)
                        && shared.keep_alive_due.swap(false, Ordering::AcqRel)
                } else {
                    this.own_keep_alive(every).poll_due(cx).is_ready()
                };
                if due {
                    crate::metrics::sse_bytes(KEEP_ALIVE.len());
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(KEEP_ALIVE)))));
                }
            }
            return Poll::Pending;
        }
    }
}

impl Drop for SseBody {
    fn drop(&mut self) {
        // A body dropped while the server shuts down (a connection closed at the end of the
        // grace period, its client not reading) ends for the shutdown, not the client. The token
        // is asked outside the stream's lock (it has a lock of its own).
        let link = self.shared.lock().link.clone();
        let shutting_down = self.shared.shutdown_fired.load(Ordering::Acquire)
            || link.as_ref().is_some_and(|l| l.shutdown.is_cancelled());
        let (ending, app, open_gauge) = {
            let mut st = self.shared.lock();
            let reason = if shutting_down {
                EndReason::Shutdown
            } else {
                EndReason::ClientGone
            };
            st.body_dropped = true;
            // Whatever the connection still held of the last frame goes with it.
            if std::mem::take(&mut st.transit) > 0 {
                st.sync_budget();
            }
            let key = std::mem::replace(&mut st.shutdown_key, super::lifecycle::NO_KEY);
            if let (true, Some(app)) = (key != super::lifecycle::NO_KEY, &st.app) {
                app.leave_shutdown(key);
            }
            (
                self.shared.end(&mut st, reason),
                // The app's shared part, when this stream still counts as open.
                std::mem::take(&mut st.live)
                    .then(|| st.app.clone())
                    .flatten(),
                st.open_gauge.take(),
            )
        };
        if let Some(app) = app {
            // Still counted, so attached: it joined its connection's watch if it has one and
            // a keep-alive.
            if self.shared.keep_alive().is_some() {
                if let Some(watch) = link.as_ref().and_then(|l| l.watch.as_ref()) {
                    watch.leave();
                }
            }
            app.live.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(gauge) = open_gauge {
            gauge.decrement(1.0);
        }
        finish(ending);
    }
}
