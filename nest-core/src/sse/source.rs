//! [`EventSource`]: what drives an [`SseBody`](super::SseBody) besides its writers' queue.
//!
//! The hub's subscriber cursor and resumable streams (crate `nest-hub`) plug into the body
//! here, as can a source of your own; the body keeps the lifecycle (end reasons, cancel hook,
//! shutdown, lifetime), the keep-alive, the initial `retry:`, and the metrics (counted once,
//! per frame, in the body).
//!
//! # Example
//!
//! A source that sends three encoded events in one frame, then ends the stream cleanly.
//!
//! ```
//! use std::task::{Context, Poll};
//! use http_body_util::BodyExt;
//! use nest_core::sse::{encode, EndReason, EventSource, SourceFrame, SseBody, SseEvent, SseOptions};
//!
//! struct Countdown { done: bool }
//!
//! impl EventSource for Countdown {
//!     fn poll_frame(&mut self, _cx: &mut Context<'_>, _max_frame: usize) -> Poll<Result<SourceFrame, EndReason>> {
//!         if self.done {
//!             return Poll::Ready(Err(EndReason::Closed));
//!         }
//!         self.done = true;
//!         let mut frame = Vec::new();
//!         for n in (1..=3).rev() {
//!             frame.extend_from_slice(encode(&SseEvent::data(n.to_string())).unwrap().as_bytes());
//!         }
//!         Poll::Ready(Ok(SourceFrame::new(frame.into(), 3)))
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let body = SseBody::from_source(SseOptions::new(), Countdown { done: false });
//! let bytes = body.collect().await.unwrap().to_bytes();
//! assert_eq!(&bytes[..], b"data: 3\n\ndata: 2\n\ndata: 1\n\n");
//! # });
//! ```

use std::task::{Context, Poll};

use bytes::Bytes;

use super::end::EndReason;

/// Whole encoded events for the body to hand the connection, and how many events they are.
#[derive(Debug, Clone)]
pub struct SourceFrame {
    pub(super) bytes: Bytes,
    pub(super) events: u64,
}

impl SourceFrame {
    /// `bytes` are whole events as [`encode`](super::encode) writes them (each ended by its
    /// blank line; the body puts the initial `retry:` line at the head of the first one, so a
    /// frame must never end inside an event); `events` is how many of them count in
    /// `nest_sse_events_total` and the stream's span (a source may count a notice, such as the
    /// hub's gap event, as 0).
    pub fn new(bytes: Bytes, events: u64) -> Self {
        Self { bytes, events }
    }

    /// The frame's bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// How many events the frame counts for.
    pub fn events(&self) -> u64 {
        self.events
    }
}

/// Where a stream's events come from besides its writers' queue: the hub's cursor, a resumable
/// stream, a source of your own. Give it to [`SseBody::from_source`](super::SseBody::from_source).
///
/// The body polls it from its own `poll_frame` with the task's context, after its queue is
/// empty; a source returns `Pending` only after arranging for `cx`'s waker to be woken.
pub trait EventSource: Send + 'static {
    /// The next frame of encoded events (at most `max_frame` bytes unless one event is larger:
    /// 64 KiB on HTTP/1.1, 16 KiB on HTTP/2), `Pending` until there is one, or the reason the
    /// stream must end: [`EndReason::Closed`] for a clean end (queued events are flushed first,
    /// and the cancel hook does not run), [`EndReason::Overflow`] or [`EndReason::Failed`]
    /// otherwise. It is not polled again after an end.
    fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
        max_frame: usize,
    ) -> Poll<Result<SourceFrame, EndReason>>;
}
