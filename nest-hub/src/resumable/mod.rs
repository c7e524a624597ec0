//! Resumable request streams: an LLM answer or an MCP tool call that outlives its connection.
//!
//! A handler starts a stream under an id; its producer runs in a task of its own, detached from
//! the request, and writes events into a hub topic (`resumable:<id>`). Any number of
//! subscribers read it, from the start or from a `Last-Event-ID`, and each ends cleanly when the
//! producer is done, also one that resumes after the end. Built on the [`Hub`]'s public API only,
//! so it works unchanged on any [`HubBackend`](crate::HubBackend).
//!
//! # Example
//!
//! ```
//! use http_body_util::BodyExt;
//! use nest_hub::Hub;
//! use nest_hub::resumable::Resumable;
//! use nest_core::sse::LastEventId;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let streams = Resumable::new(Hub::new());
//! streams
//!     .start("answer-1", |out| async move {
//!         for token in ["Hel", "lo"] {
//!             out.send(token).await?;
//!         }
//!         Ok::<_, nest_hub::resumable::ResumableError>(())
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
//! - A stream's id is a capability: whoever presents it (in `Last-Event-ID`) reads the stream.
//!   Make ids with [`Resumable::new_id`] (128 random bits; the example's `answer-1` is for
//!   reading only) and bind streams to their caller with [`Resumable::owned_by`], which makes
//!   them unknown (404) to anyone else on every instance. Limits: [`ResumableOptions::max_streams`]
//!   per instance, [`ResumableOptions::max_streams_per_owner`] per owner.
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
//! - The topic's [`Retention`](crate::Retention) must hold a whole stream, and the hub's
//!   `idle_topic_ttl` (10 min by default) must be longer than `ttl` (5 min by default): a reader
//!   of a topic the hub no longer holds would get a gap event.
//!
//! # Several instances
//!
//! Which streams exist, and their state, live in the hub's backend too (a record per stream,
//! see [`HubBackend::create_record`](crate::HubBackend::create_record)), so every instance
//! on one backend (two [`Resumable`]s on one [`Hub`], or instances on one Redis with
//! `RedisBackend`) serves every stream: a client resumes on whichever instance it lands, an
//! unknown or expired id is 404 or 410 on all of them, and an id started on two instances at
//! once starts on one ([`ResumableError::is_exists`] on the other).
//!
//! - The producer runs on the instance that started it, which holds a lease on the stream
//!   ([`ResumableOptions::lease`], 30 s by default), renewed every third of it. When that
//!   instance dies without finishing, the lease lapses: subscribers on other instances (which
//!   read the record every third of the lease while they wait) get `event: error` (`the
//!   stream's producer was lost`) and a clean end, never a hang, and the id is expired (410) for
//!   `ttl`, then unknown (404), never an empty 200.
//! - [`Resumable::cancel_anywhere`] stops a producer from any instance: it marks the record,
//!   and the producer's instance aborts it at its next renewal (within a third of the lease).
//!   [`Resumable::cancel`] and [`Resumable::is_running`] concern this instance's producers.
//! - Every instance must use the same [`ResumableOptions`].

mod error;
mod producer;
mod record;
mod source;
mod watch;

pub use error::ResumableError;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::task::AbortHandle;

use nest_core::sse::{LastEventId, SseBody, SseEvent, SseOptions};

use crate::{History, Hub, HubId};
use record::{Phase, State, StreamRecord};
use source::{StreamSource, END_EVENT, START_EVENT};
use watch::Watch;

/// Settings of [`Resumable`]. Every instance serving the same streams uses the same.
#[derive(Debug, Clone)]
#[must_use]
pub struct ResumableOptions {
    ttl: Duration,
    lease: Duration,
    priming: bool,
    retry: Option<Duration>,
    max_streams: usize,
    max_streams_per_owner: usize,
}

impl Default for ResumableOptions {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(300),
            lease: Duration::from_secs(30),
            priming: false,
            retry: None,
            max_streams: 10_000,
            max_streams_per_owner: 100,
        }
    }
}

impl ResumableOptions {
    /// The defaults: finished streams readable for 5 minutes, a 30 s lease, no priming event,
    /// no `retry:`.
    pub fn new() -> Self {
        Self::default()
    }

    /// How long a finished stream can still be read (default 5 minutes).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long a running stream outlives the last sign of life of its producer's instance
    /// (default 30 s, at least 30 ms): the instance renews it every third of it, and when the
    /// instance dies, subscribers elsewhere end with `event: error` about a lease later. A
    /// third of it is also how long a [`Resumable::cancel_anywhere`] from another instance
    /// may take. Shorter means quicker, at one backend call per running stream (and per
    /// waiting subscriber) every third of it.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(30));
        self
    }

    /// Starts every stream with a priming event: an id and empty data (`data:`), as MCP's
    /// Streamable HTTP asks, so a client has an id to resume from before the first real event.
    pub fn priming(mut self, on: bool) -> Self {
        self.priming = on;
        self
    }

    /// A `retry:` sent to every subscriber with its first event (a line at the head of the first
    /// frame, see [`SseOptions::retry`]): how long a client waits before it resumes a stream
    /// the server closed early (see [`SseOptions::max_lifetime`]).
    pub fn retry(mut self, retry: Duration) -> Self {
        self.retry = Some(retry);
        self
    }

    /// The most streams this instance holds at once (default 10,000): running ones, and finished
    /// ones still readable (for [`ttl`](Self::ttl)), whose topics hold their events. A start
    /// past it is [`ResumableError::is_limited`] (503), and the hub's other topics go on (before,
    /// a flood of starts filled the hub's topic limit and every publish to a new topic failed).
    /// At ~10 KiB per short answer, the default bounds the streams of one instance to ~100 MiB.
    pub fn max_streams(mut self, max: usize) -> Self {
        self.max_streams = max;
        self
    }

    /// The most streams one owner ([`Resumable::owned_by`]) holds on this instance at once
    /// (default 100): a start past it is [`ResumableError::is_limited`] (429), so one caller
    /// cannot take the whole of [`max_streams`](Self::max_streams).
    pub fn max_streams_per_owner(mut self, max: usize) -> Self {
        self.max_streams_per_owner = max;
        self
    }

    /// How often the lease is renewed, and a waiting subscriber reads the record.
    fn renew_every(&self) -> Duration {
        self.lease / 3
    }

    /// How long a running stream's record lives after a renewal: the lease, then `ttl` expired.
    fn running_ttl(&self) -> Duration {
        self.lease + self.ttl
    }
}

/// Resumable streams on a [`Hub`]. Cheap to clone; clones share the streams, and so do
/// `Resumable`s on other instances with the same hub backend.
#[derive(Clone)]
pub struct Resumable {
    hub: Hub,
    options: ResumableOptions,
    /// The producers running on this instance (the backend's records say which streams exist).
    producers: Arc<Mutex<HashMap<String, Producer>>>,
    /// How many streams this instance holds, in all and per owner.
    held: Arc<Mutex<Held>>,
    /// Whom this handle acts for ([`Resumable::owned_by`]).
    owner: Option<Arc<str>>,
}

/// A producer running on this instance.
struct Producer {
    task: AbortHandle,
    owner: Option<Arc<str>>,
}

/// The streams this instance holds (running, or finished and still readable).
#[derive(Default)]
struct Held {
    total: usize,
    by_owner: HashMap<Arc<str>, usize>,
}

/// One stream's place under the limits: given back when dropped (when the stream's topic goes,
/// or when its start fails).
struct HeldSlot {
    held: Arc<Mutex<Held>>,
    owner: Option<Arc<str>>,
}

impl Drop for HeldSlot {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.total -= 1;
        if let Some(owner) = &self.owner {
            if let Some(count) = held.by_owner.get_mut(owner) {
                *count -= 1;
                if *count == 0 {
                    held.by_owner.remove(owner);
                }
            }
        }
    }
}

impl fmt::Debug for Resumable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resumable")
            .field("options", &self.options)
            .field("producers", &self.lock().len())
            .field("owner", &self.owner)
            .finish()
    }
}

/// The longest owner name (see [`Resumable::owned_by`]).
const MAX_OWNER_LEN: usize = 256;

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
        if matches!(event.event_type(), Some(END_EVENT | START_EVENT)) {
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
            producers: Arc::new(Mutex::new(HashMap::new())),
            held: Arc::new(Mutex::new(Held::default())),
            owner: None,
        }
    }

    /// A new stream id: 128 random bits as 32 hex digits ([`nest_core::id::random_id`]). A stream's
    /// id is a capability: whoever holds it can read the stream (unless it is bound to an owner,
    /// see [`owned_by`](Self::owned_by)), so ids must not be guessable; a counter or a time
    /// (`answer-1`, `answer-2`, …) lets anyone read everyone's answers.
    pub fn new_id() -> String {
        nest_core::id::random_id()
    }

    /// This handle acting for `owner` (the app's name for the caller: a user id, a session):
    /// the streams it starts are bound to `owner`, and only a handle acting for the same owner
    /// can read, resume or cancel them, on any instance (the owner is in the stream's record).
    /// To anyone else a bound stream is unknown (404), whether or not they hold its id. Streams
    /// started without an owner stay readable by whoever holds their id. At most 256 bytes; a
    /// longer owner makes `start` fail with [`ResumableError::is_invalid_id`].
    ///
    /// ```
    /// use nest_hub::Hub;
    /// use nest_hub::resumable::{Resumable, ResumableError};
    /// use nest_core::sse::LastEventId;
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let streams = Resumable::new(Hub::new());
    /// let id = Resumable::new_id();
    /// assert_eq!(id.len(), 32);
    /// let alice = streams.owned_by("alice");
    /// alice.start(&id, |out| async move { out.send("secret").await.map(drop) }).await.unwrap();
    /// assert!(alice.subscribe(&id, &LastEventId(None)).await.is_ok());
    /// // Someone else with the id: unknown, as if it did not exist.
    /// let mallory = streams.owned_by("mallory").subscribe(&id, &LastEventId(None)).await;
    /// assert!(mallory.unwrap_err().is_unknown());
    /// assert!(streams.subscribe(&id, &LastEventId(None)).await.unwrap_err().is_unknown());
    /// assert!(!streams.owned_by("mallory").cancel(&id));
    /// # });
    /// ```
    pub fn owned_by(&self, owner: impl Into<Arc<str>>) -> Self {
        Self {
            owner: Some(owner.into()),
            ..self.clone()
        }
    }

    /// The owner this handle acts for.
    fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }

    /// Takes a place for a new stream under [`ResumableOptions::max_streams`] and
    /// [`ResumableOptions::max_streams_per_owner`].
    fn hold(&self) -> Result<HeldSlot, ResumableError> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.total >= self.options.max_streams {
            drop(held);
            tracing::warn!(
                limit = self.options.max_streams,
                "resumable streams: the instance's limit is reached, a start refused"
            );
            return Err(ResumableError::busy(self.options.max_streams));
        }
        if let Some(owner) = &self.owner {
            let count = held.by_owner.entry(owner.clone()).or_default();
            if *count >= self.options.max_streams_per_owner {
                return Err(ResumableError::owner_limit(
                    self.options.max_streams_per_owner,
                ));
            }
            *count += 1;
        }
        held.total += 1;
        Ok(HeldSlot {
            held: self.held.clone(),
            owner: self.owner.clone(),
        })
    }

    /// How many streams this instance holds now (running, or finished and still readable).
    pub fn held_streams(&self) -> usize {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).total
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Producer>> {
        self.producers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The stream a `Last-Event-ID` belongs to (the part before the last `:`).
    pub fn stream_of(last_event_id: &str) -> Option<&str> {
        last_event_id
            .trim()
            .rsplit_once(':')
            .map(|(stream, _)| stream)
    }

    /// Stops the producer of `id` when it runs on this instance (the app asks: say, from a
    /// cancel hook when the client goes away). Its subscribers get `event: error`
    /// (`cancelled`) and the end. Returns whether a running producer was stopped; a producer
    /// on another instance is not ([`cancel_anywhere`](Self::cancel_anywhere) stops it).
    ///
    /// A stream bound to an owner is cancelled only by a handle acting for that owner.
    pub fn cancel(&self, id: &str) -> bool {
        match self.lock().get(id) {
            Some(producer) if allows(producer.owner.as_deref(), self.owner()) => {
                producer.task.abort();
                true
            }
            _ => false,
        }
    }

    /// Stops the producer of `id` on whichever instance runs it: at once on this one, else by
    /// marking the stream's record, which the producer's instance reads at its next lease
    /// renewal (within a third of [`ResumableOptions::lease`]). Its subscribers get
    /// `event: error` (`cancelled`) and the end. Returns whether a running stream was asked to
    /// stop (`false` for an unknown, finished or expired one).
    pub async fn cancel_anywhere(&self, id: &str) -> Result<bool, ResumableError> {
        if self.cancel(id) {
            return Ok(true);
        }
        // A renewal may replace the record between the read and the write: read again.
        for _ in 0..3 {
            let found = self.hub.record(&record::key(id)).await;
            let found = found.map_err(ResumableError::hub)?;
            let ttl = found.as_ref().map(|r| r.ttl).unwrap_or_default();
            let (stream, value) = match record::phase(found) {
                Phase::Live(stream, value)
                    if stream.first.is_some() && stream.allows(self.owner()) =>
                {
                    (stream, value)
                }
                _ => return Ok(false),
            };
            match stream.state {
                State::Running => {}
                State::Cancel => return Ok(true),
                State::Finished => return Ok(false),
            }
            let cancel = stream.with_state(State::Cancel).encode();
            let key = record::key(id);
            let marked = self.hub.replace_record(&key, value, cancel, ttl).await;
            if marked.map_err(ResumableError::hub)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether the producer of `id` runs on this instance.
    pub fn is_running(&self, id: &str) -> bool {
        self.lock().contains_key(id)
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
        let first = self.lookup(id).await?;
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
        // One body: the hub's cursor is its source, read through the stream's view (markers
        // out, ids prefixed); the hub's keep-alive, this stream's `retry:` when it has one.
        let mut options = self.hub.stream_options(options);
        if let Some(retry) = self.options.retry {
            options = options.retry(retry);
        }
        let cursor = self
            .hub
            .cursor(&topic(id), Some(&after), History::None, None)
            .await
            .map_err(ResumableError::hub)?;
        let source = StreamSource {
            cursor,
            prefix: Bytes::from(format!("{id}:")),
            ended: false,
            watch: Watch::new(self.hub.clone(), id, first, self.options.renew_every()),
        };
        Ok(SseBody::from_source(options, source))
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

    /// The hub id of the stream's first event, or why it cannot be read: from the backend's
    /// record, so any instance answers alike.
    ///
    /// A stream bound to another owner is unknown (404), not forbidden: its id's existence is
    /// not told to someone who guessed or stole it.
    async fn lookup(&self, id: &str) -> Result<String, ResumableError> {
        match record::lookup(&self.hub, id).await? {
            Phase::Live(stream, _) | Phase::Expired(stream) if !stream.allows(self.owner()) => {
                Err(ResumableError::unknown(id))
            }
            Phase::Live(
                StreamRecord {
                    first: Some(first), ..
                },
                _,
            ) => Ok(first),
            // Reserved by `start`, first event not published yet.
            Phase::Live(..) | Phase::Unknown => Err(ResumableError::unknown(id)),
            Phase::Expired(_) => Err(ResumableError::expired(id)),
        }
    }
}

/// Whether a stream bound to `bound` may be read and cancelled by a caller acting for `caller`.
fn allows(bound: Option<&str>, caller: Option<&str>) -> bool {
    bound.is_none() || bound == caller
}

/// The hub id just before `first` (`EPOCH-SEQ` → `EPOCH-(SEQ-1)`): where a reader from the
/// start resumes.
fn before(first: &str) -> Result<String, ResumableError> {
    HubId::parse(first)
        .map(|first| first.before().to_string())
        .ok_or_else(|| ResumableError::invalid_id("the hub gave an id that is not EPOCH-SEQ"))
}

/// A record value's fields (state, tail in ms, first id, owner) when it decodes, for the fuzz
/// target (feature `test-util`).
#[cfg(feature = "test-util")]
pub(crate) fn decode_record(value: &[u8]) -> Option<(String, u64, Option<String>, Option<String>)> {
    let record = StreamRecord::decode(value)?;
    let state = match record.state {
        State::Running => "running",
        State::Cancel => "cancel",
        State::Finished => "finished",
    };
    Some((
        state.to_owned(),
        record.tail.as_millis() as u64,
        record.first,
        record.owner,
    ))
}

/// A record value made of its fields (`state` 0, 1, 2: running, cancel, finished), for the fuzz
/// target (feature `test-util`).
#[cfg(feature = "test-util")]
pub(crate) fn encode_record(
    state: u8,
    tail_ms: u64,
    first: Option<&str>,
    owner: Option<&str>,
) -> Bytes {
    let state = match state % 3 {
        0 => State::Running,
        1 => State::Cancel,
        _ => State::Finished,
    };
    StreamRecord::new(state, Duration::from_millis(tail_ms), first)
        .owned(owner)
        .encode()
}

/// Whether `id` can name a stream (what [`Resumable::start`] accepts), for the fuzz target
/// (feature `test-util`).
#[cfg(feature = "test-util")]
pub(crate) fn is_valid_id(id: &str) -> bool {
    check_id(id).is_ok()
}

#[cfg(test)]
mod tests;
