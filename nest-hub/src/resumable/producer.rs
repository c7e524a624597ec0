//! The producer's side of a stream, on the instance that started it: its lease renewed while
//! it runs, a cancel asked by another instance carried out, and its end written (error event,
//! end marker, finished record).

use std::fmt;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use tokio::task::JoinHandle;

use super::record::{self, Phase, State, StreamRecord};
use super::source::{END_EVENT, START_EVENT};
use super::{
    check_id, topic, HeldSlot, Producer, Resumable, ResumableError, ResumableWriter, MAX_OWNER_LEN,
};
use crate::{BackendError, HubError};
use nest_core::sse::SseEvent;

/// What a renewal found.
enum Renewal {
    /// The lease runs on; the record's value is unchanged.
    Renewed,
    /// Another instance asked the producer to stop; the record's value is now this.
    Cancel(Bytes),
    /// The record is gone, expired or another stream's: the stream is lost to its readers.
    Lost,
}

/// Waits for the producer, renewing its lease every third of it, then writes its end; once the
/// stream has been readable for `ttl`, removes its topic from this instance's hub and gives its
/// place under the limits back (`slot`).
pub(super) async fn supervise<E: fmt::Display>(
    streams: Resumable,
    id: String,
    mut task: JoinHandle<Result<(), E>>,
    mut value: Bytes,
    slot: HeldSlot,
) {
    let mut lost = false;
    let outcome = loop {
        tokio::select! {
            outcome = &mut task => break outcome,
            () = tokio::time::sleep(streams.options.renew_every()) => {}
        }
        match streams.renew(&id, &value).await {
            Renewal::Renewed => {}
            Renewal::Cancel(cancel) => {
                value = cancel;
                task.abort();
            }
            Renewal::Lost => {
                lost = true;
                task.abort();
            }
        }
    };
    let failure = match outcome {
        _ if lost => Some("the stream's lease lapsed".to_owned()),
        Ok(Ok(())) => None,
        Ok(Err(err)) => Some(err.to_string()),
        Err(err) if err.is_cancelled() => Some("cancelled".to_owned()),
        Err(_) => Some("the producer panicked".to_owned()),
    };
    // A lapsed lease's record is left to expire: its readers were told the stream was lost.
    streams.finish(&id, failure, (!lost).then_some(value)).await;
    // Readable for `ttl`, then expired (410): its events are no longer needed here. A reader
    // still attached keeps the topic; the hub evicts it once idle.
    tokio::time::sleep(streams.options.ttl).await;
    streams.hub.remove_topic(&topic(&id));
    drop(slot);
}

impl Resumable {
    /// Starts the stream `id`: `producer` runs in a task of its own on this instance, detached
    /// from the request (the client going away does not stop it; [`cancel`](Self::cancel)
    /// does). When it returns `Ok` the stream ends; `Err` or a panic first adds an
    /// `event: error` with the message.
    ///
    /// An id already started (and not yet forgotten), on this instance or another one on the
    /// same backend, is [`ResumableError::is_exists`].
    pub async fn start<F, Fut, E>(&self, id: &str, producer: F) -> Result<(), ResumableError>
    where
        F: FnOnce(ResumableWriter) -> Fut,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display + Send + 'static,
    {
        check_id(id)?;
        if self
            .owner()
            .is_some_and(|o| o.is_empty() || o.len() > MAX_OWNER_LEN)
        {
            return Err(ResumableError::invalid_id(
                "the owner is empty or longer than 256 bytes",
            ));
        }
        let slot = self.hold()?;
        // Reserve the id (atomically, across instances) while the first event is published.
        let key = record::key(id);
        let ttl = self.options.running_ttl();
        let owner = self.owner();
        let reserved = StreamRecord::new(State::Running, self.options.ttl, None)
            .owned(owner)
            .encode();
        let created = self.hub.create_record(&key, reserved.clone(), ttl).await;
        if !created.map_err(ResumableError::hub)? {
            return Err(ResumableError::exists(id));
        }
        let first = if self.options.priming {
            SseEvent::data("")
        } else {
            SseEvent::new().event(START_EVENT)
        };
        let first = match self.hub.publish(&topic(id), first).await {
            Ok(first) => first,
            Err(err) => {
                let released =
                    self.hub
                        .replace_record(&key, reserved, Bytes::new(), Duration::ZERO);
                if let Err(err) = released.await {
                    tracing::warn!(stream = id, error = %err, "resumable stream: reservation kept");
                }
                return Err(ResumableError::hub(err));
            }
        };
        let running = StreamRecord::new(State::Running, self.options.ttl, Some(&first))
            .owned(owner)
            .encode();
        let replaced = self
            .hub
            .replace_record(&key, reserved, running.clone(), ttl)
            .await;
        if !replaced.map_err(ResumableError::hub)? {
            return Err(ResumableError::hub(HubError::from(BackendError::new(
                "the stream's record was lost while it started",
            ))));
        }
        let writer = ResumableWriter {
            hub: self.hub.clone(),
            id: id.into(),
        };
        let task = tokio::spawn(producer(writer));
        let running_here = Producer {
            task: task.abort_handle(),
            owner: self.owner.clone(),
        };
        self.lock().insert(id.to_owned(), running_here);
        tokio::spawn(supervise(self.clone(), id.to_owned(), task, running, slot));
        Ok(())
    }

    /// Renews the lease of `id` when its record is still `value` and live.
    async fn renew(&self, id: &str, value: &Bytes) -> Renewal {
        let key = record::key(id);
        let found = match self.hub.record(&key).await {
            Ok(found) => found,
            Err(err) => {
                // Tried again at the next renewal; past the lease, readers end.
                tracing::warn!(stream = id, error = %err, "resumable stream: lease not renewed");
                return Renewal::Renewed;
            }
        };
        match record::phase(found) {
            Phase::Live(_, found) if found == value => {}
            Phase::Live(stream, found) if stream.state == State::Cancel => {
                return Renewal::Cancel(found)
            }
            _ => return Renewal::Lost,
        }
        let ttl = self.options.running_ttl();
        // Not replaced: changed since the read (a cancel, most likely), seen at the next one.
        let renewed = self
            .hub
            .replace_record(&key, value.clone(), value.clone(), ttl);
        if let Err(err) = renewed.await {
            tracing::warn!(stream = id, error = %err, "resumable stream: lease not renewed");
        }
        Renewal::Renewed
    }

    /// Publishes the error event (if any) and the end marker, and marks the stream finished
    /// (when its record, `value`, is still there).
    async fn finish(&self, id: &str, failure: Option<String>, value: Option<Bytes>) {
        let topic = topic(id);
        if let Some(message) = failure {
            tracing::warn!(stream = id, error = %message, "resumable stream failed");
            if let Err(err) = self
                .hub
                .publish(&topic, SseEvent::data(message).event("error"))
                .await
            {
                tracing::error!(stream = id, error = %err, "resumable stream: error event lost");
            }
        }
        if let Err(err) = self
            .hub
            .publish(&topic, SseEvent::new().event(END_EVENT))
            .await
        {
            tracing::error!(stream = id, error = %err, "resumable stream: end marker lost");
        }
        if let Some(value) = value {
            self.mark_finished(id, &value).await;
        }
        self.lock().remove(id);
    }

    /// Replaces the stream's record (`value`, or its cancel-asked form) by the finished one,
    /// readable for `ttl`, then expired for another `ttl`.
    async fn mark_finished(&self, id: &str, value: &[u8]) {
        let Some(stream) = StreamRecord::decode(value) else {
            return;
        };
        let finished = stream.with_state(State::Finished).encode();
        let key = record::key(id);
        let ttl = self.options.ttl * 2;
        // A cancel may have been asked since `value` was read.
        for state in [State::Running, State::Cancel] {
            let expected = stream.with_state(state).encode();
            match self
                .hub
                .replace_record(&key, expected, finished.clone(), ttl)
                .await
            {
                Ok(true) => return,
                Ok(false) => {}
                Err(err) => {
                    tracing::error!(stream = id, error = %err, "resumable stream: not marked finished");
                    return;
                }
            }
        }
        tracing::warn!(
            stream = id,
            "resumable stream: its record was gone when it finished"
        );
    }
}
