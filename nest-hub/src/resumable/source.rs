//! A subscriber's view of a stream's topic: the frames of its hub cursor with the stream's
//! markers taken out, every id prefixed with the stream id, and a clean end at the end marker.
//! It is the one event source of the subscriber's body (no hub body inside another body).

use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use nest_core::sse::{encode, EndReason, EventSource, SourceFrame, SseEvent};

use super::watch::Watch;
use crate::cursor::Cursor;

/// The type of the marker event that ends a stream (never delivered to clients).
pub(super) const END_EVENT: &str = "nest.end";
/// The type of the marker event that starts a stream without a priming event (never delivered).
pub(super) const START_EVENT: &str = "nest.start";

/// Reads the stream's topic through a hub cursor. The hub's frames are whole events written by the one encoder
/// (`comments, event, id, retry, data`, each event ended by a blank line), so an event is found
/// by its blank line and its fields by their line prefix, without parsing data.
pub(super) struct StreamSource {
    pub(super) cursor: Cursor,
    /// `"<stream id>:"`, put before every hub id.
    pub(super) prefix: Bytes,
    pub(super) ended: bool,
    /// Ends the subscriber with an error event when the stream can no longer end by its marker.
    pub(super) watch: Watch,
}

impl EventSource for StreamSource {
    fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
        max_frame: usize,
    ) -> Poll<Result<SourceFrame, EndReason>> {
        loop {
            if self.ended {
                // The end marker was read: a clean end, after what came before it.
                return Poll::Ready(Err(EndReason::Closed));
            }
            let frame = match self.cursor.poll_frame(cx, max_frame) {
                Poll::Pending => {
                    let Poll::Ready(why) = self.watch.poll_lost(cx) else {
                        return Poll::Pending;
                    };
                    tracing::warn!(error = why, "resumable stream: ending a subscriber");
                    self.ended = true;
                    let error = encode(&SseEvent::data(why).event("error"));
                    return Poll::Ready(
                        error
                            .map(|e| SourceFrame::new(e.bytes(), 1))
                            .map_err(|_| EndReason::Failed),
                    );
                }
                Poll::Ready(Ok(frame)) => frame,
                // The topic ended without the marker: its backend failed, or the subscriber
                // fell behind with the lag policy `Close`.
                Poll::Ready(Err(reason)) => return Poll::Ready(Err(reason)),
            };
            let (out, events, ended) = rewrite(frame.bytes(), &self.prefix);
            self.ended = ended;
            if !out.is_empty() {
                return Poll::Ready(Ok(SourceFrame::new(out, events)));
            }
        }
    }
}

/// The frame without marker events and with prefixed ids; how many events it holds; whether it
/// reached the end marker (anything after it is dropped).
pub(super) fn rewrite(frame: &[u8], prefix: &[u8]) -> (Bytes, u64, bool) {
    let mut out = BytesMut::with_capacity(frame.len() + 4 * prefix.len());
    let mut event_start = 0;
    let mut marker: Option<bool> = None;
    let mut events = 0;
    for line in frame.split_inclusive(|b| *b == b'\n') {
        if line == b"\n" {
            match marker.take() {
                Some(true) => {
                    out.truncate(event_start);
                    return (out.freeze(), events, true);
                }
                Some(false) => out.truncate(event_start),
                None => {
                    out.put_slice(line);
                    events += 1;
                }
            }
            event_start = out.len();
            continue;
        }
        if let Some(kind) = line.strip_prefix(b"event: ") {
            let kind = kind.strip_suffix(b"\n").unwrap_or(kind);
            if kind == END_EVENT.as_bytes() {
                marker = Some(true);
            } else if kind == START_EVENT.as_bytes() {
                marker = Some(false);
            }
        }
        match line.strip_prefix(b"id: ") {
            Some(id) => {
                out.put_slice(b"id: ");
                out.put_slice(prefix);
                out.put_slice(id);
            }
            None => out.put_slice(line),
        }
    }
    (out.freeze(), events, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_and_markers_dropped() {
        let frame = b"event: nest.start\nid: 5-1\n\n:\n\nid: 5-2\ndata: a\n\nid: 5-3\ndata: b\n\n";
        let (out, events, ended) = rewrite(frame, b"s1:");
        assert_eq!(
            &out[..],
            b":\n\nid: s1:5-2\ndata: a\n\nid: s1:5-3\ndata: b\n\n"
        );
        assert_eq!(events, 3);
        assert!(!ended);
    }

    #[test]
    fn the_end_marker_ends_and_drops_the_rest() {
        let frame = b"id: 5-2\ndata: a\n\nevent: nest.end\nid: 5-3\n\nid: 5-4\ndata: x\n\n";
        let (out, _, ended) = rewrite(frame, b"s:");
        assert_eq!(&out[..], b"id: s:5-2\ndata: a\n\n");
        assert!(ended);
    }

    #[test]
    fn data_that_looks_like_a_field_is_left_alone() {
        let frame = b"id: 1-1\ndata: event: nest.end\ndata: id: 3\n\n";
        let (out, _, ended) = rewrite(frame, b"s:");
        assert_eq!(
            &out[..],
            b"id: s:1-1\ndata: event: nest.end\ndata: id: 3\n\n"
        );
        assert!(!ended);
    }
}
