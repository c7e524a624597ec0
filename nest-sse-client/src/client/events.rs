//! [`Events`]: an [`EventSource`] as a stream of events whose end is `None`
//! when the server ends it cleanly, for the usual `while let` / `?` loop.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_util::{Stream, StreamExt};

use super::{EventSource, ReadyState, SseItem};
use crate::error::Result;
use crate::event::Event;

/// The events of an [`EventSource`], made by
/// [`EventSource::into_events`]: a [`Stream`] of `Result<Event, Error>`.
///
/// - Each event is `Some(Ok(event))`; opens and comments are skipped.
/// - Reconnections are skipped (logged with `tracing` at debug level): the
///   stream goes on after the server restarts.
/// - A clean end is `None`: a 204 from the server, [`EventSource::close`],
///   or the end of the response when reconnecting is off.
/// - A failure is `Some(Err(error))`, then `None`: a fatal error (a bad
///   status or content type, the retry limit), or a network error when
///   reconnecting is off.
///
/// # Example
///
/// ```no_run
/// use nest_sse_client::EventSource;
///
/// # async fn run() -> Result<(), nest_sse_client::Error> {
/// let mut events = EventSource::new("http://127.0.0.1:3000/events")?.into_events();
/// while let Some(event) = events.next().await {
///     let event = event?;
///     println!("{}: {}", event.event, event.data);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct Events {
    source: EventSource,
}

impl Events {
    pub(super) fn new(source: EventSource) -> Self {
        Self { source }
    }

    /// The next event, `None` after a clean end: `StreamExt::next` without
    /// importing it.
    pub async fn next(&mut self) -> Option<Result<Event>> {
        StreamExt::next(self).await
    }

    /// The source (its `ready_state()`, `last_event_id()`, `response()`).
    #[must_use]
    pub fn get_ref(&self) -> &EventSource {
        &self.source
    }

    /// The source, to [`close`](EventSource::close) it.
    pub fn get_mut(&mut self) -> &mut EventSource {
        &mut self.source
    }

    /// The source back.
    #[must_use]
    pub fn into_inner(self) -> EventSource {
        self.source
    }
}

impl Stream for Events {
    type Item = Result<Event>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let source = &mut self.get_mut().source;
        loop {
            let error = match ready!(source.poll_next_unpin(cx)) {
                None => return Poll::Ready(None),
                Some(Ok(SseItem::Message(event))) => return Poll::Ready(Some(Ok(event))),
                Some(Ok(_)) => continue,
                Some(Err(error)) => error,
            };
            if source.ready_state() != ReadyState::Closed {
                tracing::debug!(%error, "reconnecting");
            } else if !error.is_ended() {
                return Poll::Ready(Some(Err(error)));
            }
            // An end without reconnecting: the next poll is `None`.
        }
    }
}
