//! A subscriber's watch on its stream's record: a subscriber waiting for events of a stream
//! whose producer's instance died would wait forever, so while it waits it reads the record
//! every `lease / 3`, and ends (with `event: error`) once the lease lapsed without an end.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::{Instant, Sleep};

use super::record::{self, Phase, State};
use crate::{Hub, HubError, Record};

/// The data of the error event of a stream whose producer was lost.
pub(super) const LOST: &str = "the stream's producer was lost";

/// Reads a stream's record while its subscriber waits.
pub(super) struct Watch {
    hub: Hub,
    key: String,
    /// The stream's first event: a record of a later stream under the same id is not this one.
    first: String,
    every: Duration,
    sleep: Pin<Box<Sleep>>,
    check: Option<BoxFuture<'static, Result<Option<Record>, HubError>>>,
    /// A check found the stream finished (its end marker is in the topic, so the subscriber
    /// reads it soon): one more such check and the end counts as lost.
    finished_seen: bool,
}

impl Watch {
    pub(super) fn new(hub: Hub, id: &str, first: String, every: Duration) -> Self {
        Self {
            hub,
            key: record::key(id),
            first,
            every,
            sleep: Box::pin(tokio::time::sleep(every)),
            check: None,
            finished_seen: false,
        }
    }

    /// Ready with the error event's data once the stream can no longer end by its marker;
    /// pending otherwise (with the waker registered for the next check).
    pub(super) fn poll_lost(&mut self, cx: &mut Context<'_>) -> Poll<&'static str> {
        loop {
            if let Some(check) = self.check.as_mut() {
                let found = ready!(check.as_mut().poll(cx));
                self.check = None;
                self.sleep.as_mut().reset(Instant::now() + self.every);
                if let Some(lost) = self.verdict(found) {
                    return Poll::Ready(lost);
                }
                continue;
            }
            ready!(self.sleep.as_mut().poll(cx));
            let (hub, key) = (self.hub.clone(), self.key.clone());
            self.check = Some(Box::pin(async move { hub.record(&key).await }));
        }
    }

    /// What a check found: `Some` when the subscriber must end.
    fn verdict(&mut self, found: Result<Option<Record>, HubError>) -> Option<&'static str> {
        let found = match found {
            Ok(found) => found,
            Err(err) => {
                // The backend is away: its own failure ends the subscriber if it lasts.
                tracing::debug!(key = %self.key, error = %err, "resumable stream: record not read");
                return None;
            }
        };
        let (stream, live) = match record::phase(found) {
            Phase::Live(stream, _) => (stream, true),
            Phase::Expired(stream) => (stream, false),
            Phase::Unknown => return Some(LOST),
        };
        if stream.first.as_deref() != Some(self.first.as_str()) {
            return Some(LOST);
        }
        match stream.state {
            State::Finished if self.finished_seen => Some("the stream's end was lost"),
            State::Finished => {
                self.finished_seen = true;
                None
            }
            State::Running | State::Cancel if live => None,
            // A running stream in its last phase: its lease lapsed.
            State::Running | State::Cancel => Some(LOST),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::record::StreamRecord;
    use super::*;

    fn record(state: State, first: &str) -> Result<Option<Record>, HubError> {
        Ok(Some(Record {
            value: StreamRecord::new(state, Duration::from_secs(60), Some(first)).encode(),
            ttl: Duration::from_secs(3600),
        }))
    }

    #[tokio::test]
    async fn a_finished_stream_gets_one_more_check_for_its_end_marker() {
        let mut watch = Watch::new(Hub::new(), "s", "1-1".to_owned(), Duration::from_secs(1));
        assert_eq!(watch.verdict(record(State::Running, "1-1")), None);
        // The record says finished: the end marker is in the topic, maybe not read yet.
        assert_eq!(watch.verdict(record(State::Finished, "1-1")), None);
        // Still waiting a check later: the marker was lost.
        assert_eq!(
            watch.verdict(record(State::Finished, "1-1")),
            Some("the stream's end was lost")
        );
        // A record of a later stream under the same id is not this one.
        let mut watch = Watch::new(Hub::new(), "s", "1-1".to_owned(), Duration::from_secs(1));
        assert_eq!(watch.verdict(record(State::Running, "2-1")), Some(LOST));
        assert_eq!(watch.verdict(Ok(None)), Some(LOST));
    }
}
