//! Subscribing: [`Hub::subscribe`] places a cursor in the topic, and the cursor is the event
//! source of the subscriber's one [`SseBody`]: it reads the topic's shared buffer at its own
//! pace (no queue per subscriber), and answers a gap with the gap event or the end.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use nest_core::sse::{EndReason, EventSource, SourceFrame, SseBody, SseOptions};

use crate::appends::Place;
use crate::backend::{BackendError, Batch};
use crate::error::HubError;
use crate::hub::{Hub, Topic};
use crate::id::HubId;
use crate::options::{History, LagPolicy, SubscribeOptions};

impl Hub {
    /// A subscriber stream of `topic`; return it from an SSE handler. `how` says where it
    /// starts and how it behaves ([`SubscribeOptions`]); a `&LastEventId` alone is the usual
    /// case: the events after the client's `Last-Event-ID` (when it sent one and it is still
    /// buffered), then live ones.
    ///
    /// An id too old, unknown or of another epoch gets a gap event (`event: reset`, see
    /// [`HubOptions::gap_event`](crate::HubOptions::gap_event)) whose id is where the stream
    /// resumes.
    ///
    /// ```
    /// use http_body_util::BodyExt;
    /// use nest_core::sse::LastEventId;
    /// use nest_hub::{History, Hub, SubscribeOptions};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let hub = Hub::new();
    /// for text in ["a", "b", "c"] {
    ///     hub.publish("chat", text).await.unwrap();
    /// }
    /// let how = SubscribeOptions::new().last_event_id(&LastEventId(None)).history(History::Last(2));
    /// let mut body = hub.subscribe("chat", how).await.unwrap();
    /// let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
    /// let text = String::from_utf8(frame.to_vec()).unwrap();
    /// assert!(text.contains("data: b\n") && text.contains("data: c\n") && !text.contains("data: a\n"));
    /// # });
    /// ```
    pub async fn subscribe(
        &self,
        topic: &str,
        how: impl Into<SubscribeOptions>,
    ) -> Result<SseBody, HubError> {
        let how = how.into();
        let last_event_id = how.last_event_id.as_deref();
        let cursor = self
            .cursor(topic, last_event_id, how.history, how.lag)
            .await?;
        Ok(SseBody::from_source(
            self.stream_options(how.stream),
            cursor,
        ))
    }

    /// `options` with the hub's keep-alive and retry.
    pub(crate) fn stream_options(&self, options: SseOptions) -> SseOptions {
        let mut options = options.keep_alive(self.inner.options.keep_alive);
        if let Some(retry) = self.inner.options.retry {
            options = options.retry(retry);
        }
        options
    }

    /// A cursor in `topic` after `last_event_id` (a hub id; `None` for a first subscriber,
    /// which starts where `history` says), with `lag` or the hub's lag policy. (Not a
    /// `&SubscribeOptions`: its stream options hold a hook that is `Send` but not `Sync`, and
    /// a reference to them would make this future not `Send`.)
    pub(crate) async fn cursor(
        &self,
        topic: &str,
        last_event_id: Option<&str>,
        history: History,
        lag: Option<LagPolicy>,
    ) -> Result<Cursor, HubError> {
        let topic = self.topic(topic)?;
        let head = topic.log.clone().head().await?;
        let epoch = self.epoch();
        let resume = last_event_id.map(|id| match HubId::parse(id) {
            Some(id) if id.epoch() == epoch && id.seq() <= head => Ok(id.seq()),
            // Of this epoch but never given (Redis lost its last writes): resume at the head.
            Some(id) if id.epoch() == epoch => Err(head),
            // Another epoch (before a restart, or another in-process instance), or no id of
            // this hub: the client knows nothing of this epoch, so it gets all of it that is
            // retained, whatever `history` says (a gap from its start is announced as one).
            _ => Err(0),
        });
        let (after, gap) = match resume {
            None => (self.history_start(&topic, head, history).await?, None),
            Some(Ok(seq)) => (seq, None),
            Some(Err(at)) => (at, Some(self.gap_event("unknown-id", at)?)),
        };
        topic.counters.subscribers.fetch_add(1, Ordering::Relaxed);
        if gap.is_some() {
            topic.counters.gaps.fetch_add(1, Ordering::Relaxed);
            crate::metrics::gap("unknown-id");
            tracing::debug!(topic = %topic.name, "subscriber resumed from an unknown id: gap event");
        }
        Ok(Cursor {
            lag: lag.unwrap_or(self.inner.options.lag),
            topic,
            after,
            resuming: resume.is_some(),
            history: resume.is_none() && after < head,
            slow: gap.map(|gap| Box::new(Slow::Gap(gap))),
            place: Place::NONE,
        })
    }
}

/// A subscriber's position in a topic: the event source of its [`SseBody`].
pub(crate) struct Cursor {
    /// What happens when it falls behind the buffer.
    lag: LagPolicy,
    topic: Arc<Topic>,
    after: u64,
    /// Until the first read succeeds, a gap is answered with a gap event whatever the policy
    /// (closing would make the client come back with the same id, forever).
    resuming: bool,
    /// The first read may start before the oldest retained event (a first subscriber asking
    /// for history): it starts at the oldest, silently.
    history: bool,
    /// A gap event to send first, or a read waiting on a backend without an in-process append
    /// list (Redis): both rare, so boxed (an idle subscriber on an in-process topic holds
    /// neither: 40 bytes less each). A Redis subscriber keeps its box between reads (`Idle`):
    /// no allocation per wait but its read's own.
    slow: Option<Box<Slow>>,
    /// On an in-process topic, where the cursor waits for the next append (its slot in the
    /// topic's [`Appends`](crate::Appends): no node or future of its own).
    place: Place,
}

/// What a cursor rarely holds (see `Cursor::slow`).
enum Slow {
    Gap(Bytes),
    Read(BoxFuture<'static, Result<Batch, BackendError>>),
    Idle,
}

impl EventSource for Cursor {
    /// The next frame of this subscriber, or why its stream must end.
    fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
        max_frame: usize,
    ) -> Poll<Result<SourceFrame, EndReason>> {
        if matches!(self.slow.as_deref(), Some(Slow::Gap(_))) {
            if let Some(Slow::Gap(gap)) = self.slow.take().map(|slow| *slow) {
                // A notice, not one of the topic's events: it counts for no event.
                return Poll::Ready(Ok(SourceFrame::new(gap, 0)));
            }
        }
        loop {
            let batch = self.read_batch(cx, max_frame);
            let Poll::Ready(batch) = batch else {
                return Poll::Pending;
            };
            match batch {
                // History asked for more than is retained: start at the oldest, no gap event.
                Ok(Batch::Gap { oldest }) if self.history => {
                    self.history = false;
                    self.after = oldest - 1;
                }
                batch => return self.deliver(batch),
            }
        }
    }
}

impl Cursor {
    /// One read of the topic after `self.after`.
    fn read_batch(
        &mut self,
        cx: &mut Context<'_>,
        max_frame: usize,
    ) -> Poll<Result<Batch, BackendError>> {
        // A read already waiting is polled; once it answers, the box stays for the next one.
        let waited = match self.slow.as_deref_mut() {
            Some(Slow::Read(read)) => Some(read.as_mut().poll(cx)),
            _ => None,
        };
        let batch = match waited {
            Some(Poll::Pending) => return Poll::Pending,
            Some(Poll::Ready(batch)) => {
                if let Some(slow) = self.slow.as_deref_mut() {
                    *slow = Slow::Idle;
                }
                batch
            }
            // Try without waiting first (no future, no allocation), then wait (a gap event is
            // sent before any read).
            None => match self.topic.log.try_read(self.after, max_frame) {
                Some(batch) => batch,
                None => {
                    let log = &*self.topic.log;
                    if let Some(appends) = log.appended() {
                        let after = self.after;
                        return appends
                            .poll_read(&mut self.place, cx, || log.try_read(after, max_frame));
                    }
                    let mut read = self.topic.log.clone().read_after(self.after, max_frame);
                    match read.as_mut().poll(cx) {
                        Poll::Pending => {
                            match &mut self.slow {
                                Some(slow) => **slow = Slow::Read(read),
                                None => self.slow = Some(Box::new(Slow::Read(read))),
                            }
                            return Poll::Pending;
                        }
                        Poll::Ready(batch) => batch,
                    }
                }
            },
        };
        Poll::Ready(batch)
    }

    /// What a read gives the stream: its events, a gap event, or the end.
    fn deliver(
        &mut self,
        batch: Result<Batch, BackendError>,
    ) -> Poll<Result<SourceFrame, EndReason>> {
        self.history = false;
        match batch {
            Ok(Batch::Events { bytes, last }) => {
                // Counted in the metrics by the body, once per frame.
                let events = last.saturating_sub(self.after);
                self.after = last;
                self.resuming = false;
                Poll::Ready(Ok(SourceFrame::new(bytes, events)))
            }
            Ok(Batch::Gap { oldest }) => {
                let hub = self.hub();
                let counters = &self.topic.counters;
                if self.lag == LagPolicy::Close && !self.resuming {
                    counters.lag_closes.fetch_add(1, Ordering::Relaxed);
                    if let Some(folded) = hub
                        .as_ref()
                        .and_then(|hub| hub.inner.lag_log.due(hub.now_ms()))
                    {
                        tracing::warn!(topic = %self.topic.name, others_since_last_line = folded, "subscriber fell behind the buffer: closing its stream");
                    }
                    return Poll::Ready(Err(EndReason::Overflow));
                }
                // The gap event's id is the hub's: with the hub gone (no event can come any
                // more), the stream ends as a lag-closed one would.
                let Some(hub) = hub else {
                    return Poll::Ready(Err(EndReason::Overflow));
                };
                counters.gaps.fetch_add(1, Ordering::Relaxed);
                crate::metrics::gap("lagged");
                if let Some(folded) = hub.inner.lag_log.due(hub.now_ms()) {
                    tracing::warn!(topic = %self.topic.name, missed_after = self.after, others_since_last_line = folded, "subscriber fell behind the buffer: gap event");
                }
                self.after = oldest - 1;
                self.resuming = false;
                Poll::Ready(
                    hub.gap_event("lagged", self.after)
                        .map(|gap| SourceFrame::new(gap, 0))
                        .map_err(|_| EndReason::Failed),
                )
            }
            Err(err) => {
                let hub = self.hub();
                if let Some(folded) = hub
                    .as_ref()
                    .and_then(|hub| hub.inner.failure_log.due(hub.now_ms()))
                {
                    tracing::error!(topic = %self.topic.name, error = %err, others_since_last_line = folded, "hub backend failed: ending the subscriber");
                }
                Poll::Ready(Err(EndReason::Failed))
            }
        }
    }
}

impl Cursor {
    /// The hub, unless it was dropped.
    fn hub(&self) -> Option<Hub> {
        self.topic.hub.upgrade().map(|inner| Hub { inner })
    }
}

impl Drop for Cursor {
    fn drop(&mut self) {
        if let Some(appends) = self.topic.log.appended() {
            appends.cancel(&mut self.place);
        }
        self.topic
            .counters
            .subscribers
            .fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    /// Every idle subscriber holds its cursor (boxed, as its stream's event source): the
    /// allocator's 48-byte class (112 with the gap event and the backend's read inline and a
    /// pinned wait node beside it, a 64-byte block of its own; 56, a 64-byte block, with the
    /// hub in it and a 16-byte place).
    #[test]
    fn a_cursor_stays_small() {
        let size = std::mem::size_of::<super::Cursor>();
        assert!(size <= 40, "{size}");
    }
}
