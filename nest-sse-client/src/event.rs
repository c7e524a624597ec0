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

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A dispatched event.
///
/// Serialized (for example by `nest-sse --json`) as
/// `{"event":"message","data":"...","id":"...","retry":5000}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The event type: the `event` field, or `message` when the block had none.
    pub event: String,
    /// The `data` lines joined with LF.
    pub data: String,
    /// The last event ID when the event was dispatched (the spec's
    /// `lastEventId`): the `id` of this block or of an earlier one.
    pub id: String,
    /// The `retry` value in milliseconds if this block carried a valid one.
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
