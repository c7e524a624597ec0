//! Why a stream ended ([`EndReason`]) and the cancel hook's type: the bottom of the SSE module,
//! which the options, the errors, the lifecycle and the body all name.

use std::fmt;

/// Why a stream ended.
///
/// | reason | when | cancel hook |
/// |---|---|---|
/// | `ClientGone` | the client closed or reset the connection (EOF, TCP reset, HTTP/2 `RST_STREAM`), or the body was dropped unread (also after a HEAD request, which runs the handler like GET and sends no body) | runs |
/// | `Closed` | the server called [`SseWriter::close`](super::SseWriter::close) (queued events are flushed first) | does **not** run: cancel means the consumer went away, as in the seed |
/// | `WritersDropped` | every [`SseWriter`](super::SseWriter) clone was dropped (also when the task holding it panicked); queued events are flushed first | runs |
/// | `Shutdown` | the server is shutting down; queued events are flushed, then an optional final event (also when the grace period ends before a client that does not read got them) | runs |
/// | `Overflow` | the buffer was full and the policy is [`Overflow::Close`](super::Overflow::Close), or an event source ended it so (a hub subscriber that fell behind its topic's buffer with `LagPolicy::Close`, in nest-hub) | runs |
/// | `Failed` | the stream's event source failed (a hub backend) | runs |
/// | `Lifetime` | the stream reached [`SseOptions::max_lifetime`](super::SseOptions::max_lifetime); queued events are flushed, then an optional final event | runs |
///
/// The hook runs exactly once, for the first reason that ends the stream. A hook attached after
/// the stream ended runs at once with that reason (or is dropped at once after `Closed`); after
/// the end the stream holds no hook, so whatever a hook captured (e.g. its own writer) is freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EndReason {
    /// The client went away.
    ClientGone,
    /// The server closed the stream with [`SseWriter::close`](super::SseWriter::close).
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
    /// The stream reached its maximum lifetime; the client reconnects.
    Lifetime,
}

impl EndReason {
    /// Every reason, for metrics exported before the first stream ends.
    pub(crate) const ALL: [EndReason; 7] = [
        EndReason::ClientGone,
        EndReason::Closed,
        EndReason::WritersDropped,
        EndReason::Shutdown,
        EndReason::Overflow,
        EndReason::Failed,
        EndReason::Lifetime,
    ];

    pub(super) fn runs_hook(self) -> bool {
        self != EndReason::Closed
    }

    /// Whether queued events are still sent before the stream ends.
    pub(super) fn flushes(self) -> bool {
        matches!(
            self,
            EndReason::Closed
                | EndReason::WritersDropped
                | EndReason::Shutdown
                | EndReason::Lifetime
        )
    }
}

impl EndReason {
    /// The `reason` label of the `nest_sse_streams_ended_total` metric.
    pub(crate) fn label(self) -> &'static str {
        match self {
            EndReason::ClientGone => "client_gone",
            EndReason::Closed => "closed",
            EndReason::WritersDropped => "writers_dropped",
            EndReason::Shutdown => "shutdown",
            EndReason::Overflow => "overflow",
            EndReason::Failed => "failed",
            EndReason::Lifetime => "lifetime",
        }
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
            EndReason::Lifetime => "it reached its maximum lifetime",
        })
    }
}

/// The cancel hook: runs once with the reason the stream ended.
pub(super) type Hook = Box<dyn FnOnce(EndReason) + Send>;
