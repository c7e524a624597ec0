//! Typed streams: an enum whose variants are a stream's event types ([`SseEvents`]), and a
//! writer that takes only that enum, so that writing another event is a compile error.
//!
//! The same enum describes the stream in the app's OpenAPI document (`itemSchema`, one branch
//! per event type); see the `openapi` module.
//!
//! # Example
//!
//! ```
//! use nest_core::sse::{get_typed_sse_stream, SseEvents, SseOptions, TypedEvent};
//!
//! #[derive(serde::Serialize, schemars::JsonSchema)]
//! struct Token { text: String }
//!
//! /// What an answer's stream carries.
//! #[derive(SseEvents)]
//! enum Answer {
//!     /// One token of the answer (`event: token`).
//!     Token(Token),
//!     /// The end of the answer (`event: done`, empty data).
//!     Done,
//! }
//!
//! let (writer, _body) = get_typed_sse_stream::<Answer>(SseOptions::new());
//! writer.write(Answer::Token(Token { text: "hi".into() })).unwrap();
//! writer.write(TypedEvent::new(Answer::Done).id(2)).unwrap();
//!
//! let event = Answer::Token(Token { text: "hi".into() }).to_sse_event();
//! assert_eq!(event.encode().unwrap().as_bytes(), b"event: token\ndata: {\"text\":\"hi\"}\n\n");
//! assert_eq!(Answer::Done.event_name(), "done");
//! ```
//!
//! A stream of `Answer`s does not take anything else:
//!
//! ```compile_fail
//! # use nest_core::sse::{get_typed_sse_stream, SseEvents, SseOptions};
//! #[derive(SseEvents)]
//! enum Answer { Done }
//! let (writer, _body) = get_typed_sse_stream::<Answer>(SseOptions::new());
//! writer.write(serde_json::json!({ "not": "an answer" })).unwrap();
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use nest_openapi::EventSchemas;

use super::{get_sse_stream, EndReason, EventId, SseBody, SseError, SseEvent, SseOptions};
use crate::response::{IntoResponse, Response};

/// The event types of a stream: usually an enum with `#[derive(SseEvents)]`, one variant per
/// `event:` name, each holding its data (serialized as JSON) or nothing (empty data).
///
/// The derive names each event after its variant in lower camel case (`MyEvent` is `myEvent`);
/// `#[sse_event(name = "…")]` on a variant chooses another name, and `#[sse_event(text)]` sends
/// its data (anything `Display`) as text rather than JSON. Doc comments on the variants describe
/// the events in the OpenAPI document.
///
/// A hand implementation writes the two traits the derive writes: this one, and the schemas of
/// the events for the OpenAPI document ([`EventSchemas`]):
///
/// ```
/// use nest_core::sse::{EventSchema, EventSchemas, SseEvent, SseEvents};
/// use schemars::SchemaGenerator;
///
/// struct Tick(u64);
///
/// impl SseEvents for Tick {
///     fn to_sse_event(&self) -> SseEvent {
///         SseEvent::json(&self.0).event("tick")
///     }
///     fn event_name(&self) -> &'static str {
///         "tick"
///     }
/// }
///
/// impl EventSchemas for Tick {
///     fn event_schemas(generator: &mut SchemaGenerator) -> Vec<EventSchema> {
///         vec![EventSchema::json::<u64>("tick", generator)]
///     }
/// }
///
/// assert_eq!(Tick(7).to_sse_event().encode().unwrap().as_bytes(), b"event: tick\ndata: 7\n\n");
/// ```
pub trait SseEvents: EventSchemas + Send + 'static {
    /// The event this value is on the wire: its `event:` name and its data.
    fn to_sse_event(&self) -> SseEvent;

    /// This value's `event:` name.
    fn event_name(&self) -> &'static str;
}

/// An event of type `E` with the fields that are not its type: an id and a `retry:`.
#[derive(Debug, Clone)]
#[must_use]
pub struct TypedEvent<E> {
    event: E,
    id: Option<EventId>,
    retry: Option<Duration>,
}

impl<E> TypedEvent<E> {
    /// The event, without id or `retry:`.
    pub fn new(event: E) -> Self {
        Self {
            event,
            id: None,
            retry: None,
        }
    }

    /// Sets the event's id (the client's `Last-Event-ID` when it reconnects).
    pub fn id(mut self, id: impl Into<EventId>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the reconnection time sent with the event.
    pub fn retry(mut self, retry: Duration) -> Self {
        self.retry = Some(retry);
        self
    }
}

/// What a typed stream's [`write`](TypedSseWriter::write) takes: an `E`, or a [`TypedEvent`] of
/// one. Anything else is a compile error that names the stream's event type.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an event of this stream, whose events are `{E}`",
    label = "not an `{E}`",
    note = "a stream from `get_typed_sse_stream::<{E}>(…)` takes `{E}` values, or \
            `TypedEvent::new(event).id(…)` of one; add a variant to `{E}` for a new event type"
)]
pub trait IntoTypedEvent<E> {
    /// The event, with its id and `retry:` if it has them.
    fn into_typed_event(self) -> TypedEvent<E>;
}

impl<E: SseEvents> IntoTypedEvent<E> for E {
    fn into_typed_event(self) -> TypedEvent<E> {
        TypedEvent::new(self)
    }
}

impl<E: SseEvents> IntoTypedEvent<E> for TypedEvent<E> {
    fn into_typed_event(self) -> TypedEvent<E> {
        self
    }
}

/// Creates a stream that carries only events of type `E`: the typed [`get_sse_stream`].
pub fn get_typed_sse_stream<E: SseEvents>(
    options: SseOptions,
) -> (TypedSseWriter<E>, TypedSseBody<E>) {
    let (writer, body) = get_sse_stream(options);
    (
        TypedSseWriter {
            writer,
            events: PhantomData,
        },
        TypedSseBody {
            body,
            events: PhantomData,
        },
    )
}

/// The writer of a typed stream: an [`SseWriter`](super::SseWriter) that takes only `E`s.
/// `Clone + Send + Sync` like it.
pub struct TypedSseWriter<E> {
    writer: super::SseWriter,
    events: PhantomData<fn(E)>,
}

impl<E> Clone for TypedSseWriter<E> {
    fn clone(&self) -> Self {
        Self {
            writer: self.writer.clone(),
            events: PhantomData,
        }
    }
}

impl<E> fmt::Debug for TypedSseWriter<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedSseWriter")
            .field("events", &std::any::type_name::<E>())
            .field("writer", &self.writer)
            .finish()
    }
}

impl<E: SseEvents> TypedSseWriter<E> {
    /// Queues an event: an `E`, or a [`TypedEvent`] of one with an id or a `retry:`. Fails as
    /// [`SseWriter::write`](super::SseWriter::write) does.
    pub fn write(&self, event: impl IntoTypedEvent<E>) -> Result<(), SseError> {
        self.writer.write(self.untyped(event))
    }

    /// Queues an event, waiting for room when the buffer is full (see
    /// [`SseWriter::send`](super::SseWriter::send)).
    pub async fn send(&self, event: impl IntoTypedEvent<E>) -> Result<(), SseError> {
        self.writer.send(self.untyped(event)).await
    }

    /// Resolves when the stream has ended, with the reason.
    pub async fn closed(&self) -> EndReason {
        self.writer.closed().await
    }

    fn untyped(&self, event: impl IntoTypedEvent<E>) -> SseEvent {
        let TypedEvent { event, id, retry } = event.into_typed_event();
        let mut event = event.to_sse_event();
        if let Some(id) = id {
            event = event.id(id);
        }
        if let Some(retry) = retry {
            event = event.retry(retry);
        }
        event
    }

    /// Ends the stream (see [`SseWriter::close`](super::SseWriter::close)).
    pub fn close(&self) {
        self.writer.close();
    }

    /// Whether the stream has ended.
    pub fn is_closed(&self) -> bool {
        self.writer.is_closed()
    }

    /// Why the stream ended, once it has.
    pub fn end_reason(&self) -> Option<EndReason> {
        self.writer.end_reason()
    }
}

/// The body of a typed stream: what a handler returns; an [`SseBody`] whose events are `E`s,
/// as the route's OpenAPI description says.
pub struct TypedSseBody<E> {
    body: SseBody,
    events: PhantomData<fn() -> E>,
}

impl<E> fmt::Debug for TypedSseBody<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedSseBody")
            .field("events", &std::any::type_name::<E>())
            .field("body", &self.body)
            .finish()
    }
}

impl<E> TypedSseBody<E> {
    /// Adds a cancel hook (see [`SseBody::on_cancel`]).
    #[must_use]
    pub fn on_cancel(self, hook: impl FnOnce(EndReason) + Send + 'static) -> Self {
        Self {
            body: self.body.on_cancel(hook),
            events: PhantomData,
        }
    }

    /// The untyped body.
    pub fn into_inner(self) -> SseBody {
        self.body
    }
}

impl<E> IntoResponse for TypedSseBody<E> {
    fn into_response(self) -> Response {
        self.body.into_response()
    }
}
