//! Resumable request streams: an LLM answer or an MCP tool call that outlives its connection.
//!
//! A handler starts a stream under an id; its producer runs in a task of its own, detached from
//! the request, and writes events into a hub topic (`resumable:<id>`). Any number of
//! subscribers read it, from the start or from a `Last-Event-ID`, and each ends cleanly when the
//! producer is done, also one that resumes after the end. Built on the [`Hub`]'s public API only,
//! so it works unchanged on any [`HubBackend`](super::hub::HubBackend).
//!
//! # Example
//!
//! ```
//! use http_body_util::BodyExt;
//! use nest_core::sse::hub::Hub;
//! use nest_core::sse::resumable::Resumable;
//! use nest_core::sse::LastEventId;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let streams = Resumable::new(Hub::new());
//! streams
//!     .start("answer-1", |out| async move {
//!         for token in ["Hel", "lo"] {
//!             out.send(token).await?;
//!         }
//!         Ok::<_, nest_core::sse::resumable::ResumableError>(())
//!     })
//!     .await
//!     .unwrap();
//!
//! // A first reader gets every token, then the body ends (no hang).
//! let first = streams.subscribe("answer-1", &LastEventId(None)).await.unwrap();
//! let text = String::from_utf8(first.collect().await.unwrap().to_bytes().to_vec()).unwrap();
//! assert!(text.contains("data: Hel\n") && text.contains("data: lo\n"));
//!
//! // Its ids name the stream and the position: resuming after "Hel" gives the rest only.
//! let id = text.lines().find_map(|l| l.strip_prefix("id: ")).unwrap().to_owned();
//! assert!(id.starts_with("answer-1:"));
//! let rest = streams.resume(&LastEventId(Some(id))).await.unwrap();
//! let text = String::from_utf8(rest.collect().await.unwrap().to_bytes().to_vec()).unwrap();
//! assert!(text.contains("data: lo\n") && !text.contains("Hel"));
//! # });
//! ```
//!
//! # Ids, end and errors
//!
//! - Event ids are `<stream id>:<hub id>` (the hub's `EPOCH-SEQ`), so a `Last-Event-ID` alone
//!   names the stream and the position: [`Resumable::resume`] needs nothing else (a GET, or the
//!   POST retried with the header).
//! - The producer's end is an end marker in the topic (an event of type `nest.end`, no data).
//!   Subscribers never deliver it: they end the body cleanly there.
//! - A producer that returns `Err` or panics, or that [`Resumable::cancel`] stops, ends the
//!   stream with an `event: error` whose data is the message, then the end.
//! - A finished stream can be read for [`ResumableOptions::ttl`]; after that its id is
//!   [expired](ResumableError::is_expired) (410) for another `ttl`, then
//!   [unknown](ResumableError::is_unknown) (404) like an id never started.
//! - The topic's [`Retention`](super::hub::Retention) must hold a whole stream, and the hub's
//!   `idle_topic_ttl` (10 min by default) must be longer than `ttl` (5 min by default): a reader
//!   of a topic the hub no longer holds would get a gap event.
//! - Which streams exist (and their state) is known to the process that started them; the
//!   events themselves live in the hub's backend.

mod error;
mod source;

pub use error::ResumableError;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::hub::{History, Hub};
use super::{LastEventId, SseBody, SseEvent, SseOptions};
use source::StreamSource;

/// The type of the marker event that ends a stream (never delivered to clients).
const END_EVENT: &str = "nest.end";
/// The type of the marker event that starts a stream without a priming event (never delivered).
const START_EVENT: &str = "nest.start";

/// Settings of [`Resumable`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ResumableOptions {
    ttl: Duration,
    priming: bool,
    retry: Option<Duration>,
}

impl Default for ResumableOptions {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(300),
            priming: false,
            retry: None,
        }
    }
}

impl ResumableOptions {
    /// The defaults: finished streams readable for 5 minutes, no priming event, no `retry:`.
    pub fn new() -> Self {
        Self::default()
    }

    /// How long a finished stream can still be read (default 5 minutes).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Starts every stream with a priming event: an id and empty data (`data:`), as MCP's
    /// Streamable HTTP asks, so a client has an id to resume from before the first real event.
    pub fn priming(mut self, on: bool) -> Self {
        self.priming = on;
        self
    }

    /// A `retry:` sent first to every subscriber: how long a client waits before it resumes a
    /// stream the server closed early (see [`SseOptions::max_lifetime`]).
    pub fn retry(mut self, retry: Duration) -> Self {
        self.retry = Some(retry);
        self
    }
}

enum State {
    Running(AbortHandle),
    Finished(Instant),
}

struct Entry {
    /// The hub id of the stream's first event (the priming or start marker).
    first: String,
    state: State,
}

/// Resumable streams on a [`Hub`]. Cheap to clone; clones share the streams.
#[derive(Clone)]
pub struct Resumable {
    hub: Hub,
    options: ResumableOptions,
    streams: Arc<Mutex<HashMap<String, Entry>>>,
}

impl fmt::Debug for Resumable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resumable")
            .field("options", &self.options)
            .field("streams", &self.lock().len())
            .finish()
    }
}

/// What a producer writes with: each event is published to its stream's topic.
#[derive(Clone, Debug)]
pub struct ResumableWriter {
    hub: Hub,
    id: Arc<str>,
}

impl ResumableWriter {
    /// Publishes an event (without an id of its own: the hub gives it one) and returns its id,
    /// `<stream id>:<hub id>`.
    pub async fn send(&self, event: impl Into<SseEvent>) -> Result<String, ResumableError> {
        let event = event.into();
        if matches!(event.event.as_deref(), Some(END_EVENT | START_EVENT)) {
            return Err(ResumableError::invalid_id(
                "the event types nest.start and nest.end are reserved",
            ));
        }
        let hub_id = self
            .hub
            .publish(&topic(&self.id), event)
            .await
            .map_err(ResumableError::hub)?;
        Ok(format!("{}:{hub_id}", self.id))
    }

    /// The stream's id.
    pub fn stream_id(&self) -> &str {
        &self.id
    }
}

fn topic(id: &str) -> String {
    format!("resumable:{id}")
}

fn check_id(id: &str) -> Result<(), ResumableError> {
    if id.is_empty() || id.len() > 200 {
        return Err(ResumableError::invalid_id("empty or longer than 200 bytes"));
    }
    if id.contains(|c: char| c.is_control() || c.is_whitespace()) {
        return Err(ResumableError::invalid_id(
            "contains whitespace or control characters",
        ));
    }
    Ok(())
}

impl Resumable {
    /// Resumable streams on `hub` with the default [`ResumableOptions`].
    pub fn new(hub: Hub) -> Self {
        Self::with_options(hub, ResumableOptions::default())
    }

    /// Resumable streams on `hub`.
    pub fn with_options(hub: Hub, options: ResumableOptions) -> Self {
        Self {
            hub,
            options,
            streams: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The stream a `Last-Event-ID` belongs to (the part before the last `:`).
    pub fn stream_of(last_event_id: &str) -> Option<&str> {
        last_event_id
            .trim()
            .rsplit_once(':')
            .map(|(stream, _)| stream)
    }

    /// Starts the stream `id`: `producer` runs in a task of its own, detached from the request
    /// (the client going away does not stop it; [`cancel`](Self::cancel) does). When it returns
    /// `Ok` the stream ends; `Err` or a panic first adds an `event: error` with the message.
    ///
    /// An id already started (and not yet forgotten) is [`ResumableError::is_exists`].
    pub async fn start<F, Fut, E>(&self, id: &str, producer: F) -> Result<(), ResumableError>
    where
        F: FnOnce(ResumableWriter) -> Fut,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display + Send + 'static,
    {
        check_id(id)?;
        {
            let mut streams = self.lock();
            self.forget_old(&mut streams);
            if streams.contains_key(id) {
                return Err(ResumableError::exists(id));
            }
            // Reserve the id while the first event is published.
            streams.insert(
                id.to_owned(),
                Entry {
                    first: String::new(),
                    state: State::Finished(Instant::now() + Duration::from_secs(3600)),
                },
            );
        }
        let first = if self.options.priming {
            SseEvent::data("")
        } else {
            SseEvent::new().event(START_EVENT)
        };
        let first = match self.hub.publish(&topic(id), first).await {
            Ok(first) => first,
            Err(err) => {
                self.lock().remove(id);
                return Err(ResumableError::hub(err));
            }
        };
        let writer = ResumableWriter {
            hub: self.hub.clone(),
            id: id.into(),
        };
        let task = tokio::spawn(producer(writer));
        if let Some(entry) = self.lock().get_mut(id) {
            entry.first = first;
            entry.state = State::Running(task.abort_handle());
        }
        let this = self.clone();
        let id = id.to_owned();
        tokio::spawn(async move {
            let failure = match task.await {
                Ok(Ok(())) => None,
                Ok(Err(err)) => Some(err.to_string()),
                Err(err) if err.is_cancelled() => Some("cancelled".to_owned()),
                Err(_) => Some("the producer panicked".to_owned()),
            };
            this.finish(&id, failure).await;
        });
        Ok(())
    }

    /// Publishes the error event (if any) and the end marker, and marks the stream finished.
    async fn finish(&self, id: &str, failure: Option<String>) {
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
        if let Some(entry) = self.lock().get_mut(id) {
            entry.state = State::Finished(Instant::now());
        }
    }

    /// Forgets streams that finished more than twice the ttl ago (expired ones answer
    /// "expired" for one more ttl, then "unknown").
    fn forget_old(&self, streams: &mut HashMap<String, Entry>) {
        let now = Instant::now();
        let keep = self.options.ttl * 2;
        streams.retain(|_, e| match e.state {
            State::Finished(at) => now.saturating_duration_since(at) < keep,
            State::Running(_) => true,
        });
    }

    /// Stops the producer of `id` (the app asks: say, from a cancel hook when the client goes
    /// away). Its subscribers get `event: error` (`cancelled`) and the end. Returns whether a
    /// running producer was stopped.
    pub fn cancel(&self, id: &str) -> bool {
        match self.lock().get(id).map(|e| &e.state) {
            Some(State::Running(task)) => {
                task.abort();
                true
            }
            _ => false,
        }
    }

    /// Whether the stream `id` is known and its producer still runs.
    pub fn is_running(&self, id: &str) -> bool {
        matches!(
            self.lock().get(id).map(|e| &e.state),
            Some(State::Running(_))
        )
    }

    /// A subscriber of stream `id`: from its start, or after `last_event_id` when that is one of
    /// this stream's ids; ends cleanly after the producer's last event.
    pub async fn subscribe(
        &self,
        id: &str,
        last_event_id: &LastEventId,
    ) -> Result<SseBody, ResumableError> {
        self.subscribe_with(id, last_event_id, SseOptions::new())
            .await
    }

    /// As [`subscribe`](Self::subscribe), with stream options (a cancel hook, a maximum
    /// lifetime to close long streams early, a `retry:`).
    pub async fn subscribe_with(
        &self,
        id: &str,
        last_event_id: &LastEventId,
        options: SseOptions,
    ) -> Result<SseBody, ResumableError> {
        let first = self.lookup(id)?;
        let after = match last_event_id.0.as_deref().map(str::trim) {
            Some(last) => match last.rsplit_once(':') {
                Some((stream, hub_id)) if stream == id => hub_id.to_owned(),
                _ => {
                    return Err(ResumableError::invalid_id(
                        "the Last-Event-ID is not an id of this stream",
                    ))
                }
            },
            None => before(&first)?,
        };
        let mut options = options.keep_alive(None);
        if let Some(retry) = self.options.retry {
            options = options.retry(retry);
        }
        let hub_body = self
            .hub
            .subscribe_with_history(
                &topic(id),
                &LastEventId(Some(after)),
                History::None,
                SseOptions::new(),
            )
            .await
            .map_err(ResumableError::hub)?;
        let source = StreamSource {
            hub_body,
            prefix: Bytes::from(format!("{id}:")),
            ended: false,
        };
        Ok(SseBody::new(options, Some(Box::new(source))))
    }

    /// A subscriber that resumes after `last_event_id`, whose stream it names: a GET with
    /// `Last-Event-ID`, or the POST retried with it. No header is
    /// [`ResumableError::is_invalid_id`].
    pub async fn resume(&self, last_event_id: &LastEventId) -> Result<SseBody, ResumableError> {
        self.resume_with(last_event_id, SseOptions::new()).await
    }

    /// As [`resume`](Self::resume), with stream options.
    pub async fn resume_with(
        &self,
        last_event_id: &LastEventId,
        options: SseOptions,
    ) -> Result<SseBody, ResumableError> {
        let stream = last_event_id
            .0
            .as_deref()
            .and_then(Self::stream_of)
            .ok_or_else(|| ResumableError::invalid_id("no Last-Event-ID naming a stream"))?;
        self.subscribe_with(stream, last_event_id, options).await
    }

    /// The hub id of the stream's first event, or why it cannot be read.
    fn lookup(&self, id: &str) -> Result<String, ResumableError> {
        let streams = self.lock();
        let entry = streams.get(id).ok_or_else(|| ResumableError::unknown(id))?;
        if let State::Finished(at) = entry.state {
            if Instant::now().saturating_duration_since(at) >= self.options.ttl {
                return Err(ResumableError::expired(id));
            }
        }
        if entry.first.is_empty() {
            // Reserved by `start`, first event not published yet.
            return Err(ResumableError::unknown(id));
        }
        Ok(entry.first.clone())
    }
}

/// The hub id just before `first` (`EPOCH-SEQ` → `EPOCH-(SEQ-1)`): where a reader from the
/// start resumes.
fn before(first: &str) -> Result<String, ResumableError> {
    let (epoch, seq) = first
        .rsplit_once('-')
        .and_then(|(e, s)| Some((e, s.parse::<u64>().ok()?)))
        .ok_or_else(|| ResumableError::invalid_id("the hub gave an id that is not EPOCH-SEQ"))?;
    Ok(format!("{epoch}-{}", seq.saturating_sub(1)))
}
