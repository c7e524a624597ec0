//! The settings of one SSE stream and the overflow policy.

use std::fmt;
use std::time::Duration;

use super::end::{EndReason, Hook};

/// What `write` does when a slow client has filled the stream's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Overflow {
    /// Refuse the new event: `write` returns an error for which [`SseError::is_full`](super::SseError::is_full) is true (default).
    #[default]
    Error,
    /// Drop the oldest queued events to make room.
    DropOldest,
    /// End the stream with [`EndReason::Overflow`]; the client reconnects and resumes with
    /// `Last-Event-ID`.
    Close,
}

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
    pub(super) keep_alive: Option<Duration>,
    pub(super) retry: Option<Duration>,
    pub(super) max_events: usize,
    pub(super) max_bytes: usize,
    pub(super) overflow: Overflow,
    pub(super) auto_id: Option<u64>,
    pub(super) shutdown_retry: Option<(Duration, Duration)>,
    pub(super) max_lifetime: Option<(Duration, Duration)>,
    pub(super) on_cancel: Option<Hook>,
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
            .field("max_lifetime", &self.max_lifetime)
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
            max_lifetime: None,
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

    /// The client's reconnection time, as a `retry:` line at the head of the stream's first
    /// event (never a block of its own: httpx-sse, for one, yields an empty message for that).
    /// A stream that ends before its first event does not send it (the final `retry:` of
    /// [`shutdown_retry`](Self::shutdown_retry) is sent all the same). Sent in whole
    /// milliseconds, at most `4294967294` (49 days).
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

    /// Ends the stream after `lifetime` plus a random part of up to `jitter` (queued events
    /// are flushed first, then the final `retry:` of [`shutdown_retry`](Self::shutdown_retry)
    /// if set), with [`EndReason::Lifetime`]. The client reconnects (with `Last-Event-ID`), so a
    /// load balancer can move long-lived connections to new instances; the jitter keeps a
    /// fleet of clients from reconnecting at once.
    pub fn max_lifetime(mut self, lifetime: Duration, jitter: Duration) -> Self {
        self.max_lifetime = Some((lifetime, jitter));
        self
    }

    /// The seed's `cancel()`: runs once when the stream ends for any reason but
    /// [`SseWriter::close`](super::SseWriter::close) (see [`EndReason`]). It may run inside `Drop`,
    /// so it is synchronous: stop timers and tasks here (e.g. `JoinHandle::abort`). A hook set here
    /// and another set with [`SseBody::on_cancel`](super::SseBody::on_cancel) both run, this one
    /// first; a hook that panics is caught and logged, the others still run.
    pub fn on_cancel(mut self, hook: impl FnOnce(EndReason) + Send + 'static) -> Self {
        self.on_cancel = Some(Box::new(hook));
        self
    }
}
