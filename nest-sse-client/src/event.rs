//! [`Event`]: one dispatched server-sent event, as a browser's `MessageEvent`
//! would show it.
//!
//! # Example
//!
//! ```
//! use nest_sse_client::Event;
//!
//! #[derive(serde::Deserialize, Debug, PartialEq)]
//! struct Tick {
//!     n: u32,
//! }
//!
//! let event = Event::new("tick", r#"{"n":3}"#).with_id("3");
//! assert_eq!(event.data_json::<Tick>().unwrap(), Tick { n: 3 });
//! assert_eq!(event.id, "3");
//! assert!(event.data_json::<Vec<u8>>().unwrap_err().is_json());
//! ```
//!
//! The id persists from block to block, as the spec says; `retry` does not:
//!
//! ```
//! use std::time::Duration;
//! use nest_sse_client::parser::{Item, Parser};
//! use nest_sse_client::Event;
//!
//! let wire = b"id: 1\nretry: 1500\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\n";
//! let events: Vec<Event> = Parser::new()
//!     .feed(wire)
//!     .filter_map(|item| match item {
//!         Item::Event(event) => Some(event),
//!         Item::Comment(_) => None,
//!     })
//!     .collect();
//! let [a, b, c] = &events[..] else { panic!("{events:?}") };
//! assert_eq!((a.id.as_str(), a.retry_duration()), ("1", Some(Duration::from_millis(1500))));
//! // `b` had no `id` field: its id is still the last event ID; it had no `retry`.
//! assert_eq!((b.id.as_str(), b.retry), ("1", None));
//! // "This block carried an id": with an id per event, the id changed.
//! assert_ne!(c.id, b.id);
//! ```

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A dispatched event.
///
/// Serialized (for example by `nest-sse --json`) as
/// `{"event":"message","data":"...","id":"...","retry":5000}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The event type: the block's `event` field, or `message` when it had
    /// none (a browser dispatches `message` to `onmessage`, other types only
    /// to `addEventListener(type)`).
    pub event: String,
    /// The block's `data` lines joined with LF. (A block without `data` is
    /// no event, but its `id` still sets the last event ID.)
    pub data: String,
    /// The *last event ID* when the event was dispatched (the spec's
    /// `lastEventId`): the `id` of this block, or else of the last earlier
    /// block that had one; an empty `id` field resets it. It is what the
    /// client sends as `Last-Event-ID` when it reconnects.
    ///
    /// So a block without `id` shows the previous id. To assert that a block
    /// carried an id, give every event its own (nest's `SseEvent::id`,
    /// automatic ids and the hub's ids are) and assert the exact value, or
    /// that it changed: `assert_ne!(event.id, previous.id)`.
    pub id: String,
    /// The block's `retry` field in milliseconds, when it carried a valid
    /// one (ASCII digits only); [`retry_duration`](Self::retry_duration) is
    /// the same as a `Duration`, the unit of
    /// [`Builder::retry`](crate::Builder::retry). The client then waits this
    /// long before reconnecting. It does not persist: a later block without
    /// `retry` has `None`, while
    /// [`EventSource::reconnection_time`](crate::EventSource::reconnection_time)
    /// keeps the last one.
    pub retry: Option<u64>,
}

impl Event {
    /// An event of type `event` with `data`, no id and no retry.
    #[must_use]
    pub fn new(event: impl Into<String>, data: impl Into<String>) -> Self {
        Self {
            event: event.into(),
            data: data.into(),
            id: String::new(),
            retry: None,
        }
    }

    /// Sets the last event ID.
    #[must_use]
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// Sets the retry value (milliseconds).
    #[must_use]
    pub fn with_retry(mut self, retry: u64) -> Self {
        self.retry = Some(retry);
        self
    }

    /// [`retry`](Self::retry) as a `Duration`.
    #[must_use]
    pub fn retry_duration(&self) -> Option<Duration> {
        self.retry.map(Duration::from_millis)
    }

    /// Deserializes the data as JSON.
    ///
    /// # Errors
    ///
    /// An error for which [`Error::is_json`] holds when the data is not JSON
    /// of type `T`.
    pub fn data_json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_str(&self.data).map_err(Error::json)
    }
}
