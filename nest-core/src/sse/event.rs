//! `SseEvent`: one Server-Sent Event (the seed's `SSEMessageEvent`).

use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// One event: `data` (text or JSON), `id`, `event` (the type), `retry` and an optional comment.
///
/// Building never fails; an event that cannot be sent (an `event` or `id` with a line break, an
/// `id` with NUL, JSON that does not serialize) is rejected by [`encode`](crate::sse::encode) and
/// therefore by `SseWriter::write`, with an error naming the field.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use nest_core::sse::SseEvent;
///
/// // The seed's `write({ data: { hello: "world" }, event: "myEvent", id: eventId++, retry: 5000 })`:
/// let event = SseEvent::json(&serde_json::json!({"hello": "world"})).event("myEvent").id(1).retry_ms(5000);
/// assert_eq!(
///     event.encode().unwrap().as_bytes(),
///     b"event: myEvent\nid: 1\nretry: 5000\ndata: {\"hello\":\"world\"}\n\n"
/// );
/// assert_eq!(SseEvent::data("hi").retry(Duration::from_secs(1)).encode().unwrap().as_bytes(), b"retry: 1000\ndata: hi\n\n");
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct SseEvent {
    pub(crate) data: Option<String>,
    pub(crate) event: Option<String>,
    pub(crate) id: Option<String>,
    pub(crate) retry: Option<u64>,
    pub(crate) comment: Option<String>,
    pub(crate) json_error: Option<String>,
}

impl fmt::Debug for SseEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseEvent")
            .field("event", &self.event)
            .field("id", &self.id)
            .field("retry", &self.retry)
            .field("data", &self.data)
            .field("comment", &self.comment)
            .finish()
    }
}

impl SseEvent {
    /// An event with no fields; set at least one before sending it.
    pub fn new() -> Self {
        Self::default()
    }

    /// An event whose data is `text` (one `data:` line per line of it).
    pub fn data(text: impl Into<String>) -> Self {
        Self {
            data: Some(text.into()),
            ..Self::default()
        }
    }

    /// An event whose data is `value` as compact JSON. A value that does not serialize makes the
    /// event fail to encode, with the serializer's message.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Self {
        match serde_json::to_string(value) {
            Ok(json) => Self::data(json),
            Err(err) => Self {
                json_error: Some(err.to_string()),
                ..Self::default()
            },
        }
    }

    /// A comment-only event (`: text`), ignored by clients; useful as a heartbeat.
    pub fn comment_only(text: impl Into<String>) -> Self {
        Self {
            comment: Some(text.into()),
            ..Self::default()
        }
    }

    /// Sets the data to `text`.
    pub fn with_data(mut self, text: impl Into<String>) -> Self {
        self.data = Some(text.into());
        self
    }

    /// Sets the event type (`event:`); browsers dispatch it to `addEventListener(type)` instead of
    /// `onmessage`. Must not contain CR or LF.
    pub fn event(mut self, event: impl Into<String>) -> Self {
        self.event = Some(event.into());
        self
    }

    /// Sets the id (`id:`), a string or an integer; it becomes the client's `Last-Event-ID`.
    /// Must not contain CR, LF or NUL.
    pub fn id(mut self, id: impl Into<EventId>) -> Self {
        self.id = Some(id.into().0);
        self
    }

    /// Sets the client's reconnection time (`retry:`).
    pub fn retry(mut self, retry: Duration) -> Self {
        self.retry = Some(u64::try_from(retry.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// Sets the client's reconnection time in milliseconds, as the seed's `retry: 5000`.
    pub fn retry_ms(mut self, millis: u64) -> Self {
        self.retry = Some(millis);
        self
    }

    /// Adds a comment (`: text`), sent before the fields; one `:` line per line of text.
    pub fn comment(mut self, text: impl Into<String>) -> Self {
        self.comment = Some(text.into());
        self
    }

    /// The id, if set.
    pub fn id_str(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The event type (`event:`), if set.
    pub fn event_type(&self) -> Option<&str> {
        self.event.as_deref()
    }
}

/// An event id: a string or an integer (the seed's `id?: string | number`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventId(pub String);

impl From<String> for EventId {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for EventId {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

macro_rules! id_from_int {
    ($($ty:ty),*) => {$(
        impl From<$ty> for EventId {
            fn from(value: $ty) -> Self {
                Self(value.to_string())
            }
        }
    )*};
}
id_from_int!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize);

impl From<&str> for SseEvent {
    fn from(text: &str) -> Self {
        Self::data(text)
    }
}

impl From<String> for SseEvent {
    fn from(text: String) -> Self {
        Self::data(text)
    }
}

/// `writer.write(json!({"hello": "world"}))`, as the seed's `write({ data: { hello: 'world' } })`.
impl From<serde_json::Value> for SseEvent {
    fn from(value: serde_json::Value) -> Self {
        Self::json(&value)
    }
}
