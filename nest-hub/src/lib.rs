//! nest's SSE broadcast hub: publish to a topic, every subscriber gets it, and a reconnecting client
//! resumes from its `Last-Event-ID` without gaps or duplicates.
//!
//! - Each event is encoded once (with its id) and the same bytes go to every subscriber.
//! - Ids are `EPOCH-SEQ`: the sequence grows by one per topic, and the epoch changes when the
//!   in-process buffer is new (a restart), so an old `Last-Event-ID` never matches a new event.
//! - Each topic keeps its last events ([`Retention`]). A subscriber that connects with
//!   `Last-Event-ID` gets exactly the events after it, then live ones. An id that is too old or
//!   unknown gets a gap event (`event: reset` by default) whose id is where the stream resumes, so
//!   the client knows to resync. An id of another epoch (from before a restart) resumes from the
//!   start of this epoch: what was published while the client reconnected is not skipped.
//! - There is no queue per subscriber: each reads the topic's buffer at its own pace, so a slow
//!   one never blocks the publisher or the others. One that falls behind the buffer is handled by
//!   [`LagPolicy`]: a gap event and go on, or close so that the client resumes through
//!   `Last-Event-ID`. A stream never ends or skips silently.
//! - Figures per topic: [`Hub::stats`]; metrics: [`metrics`].
//! - Subscribing is one call, [`Hub::subscribe`], with a `&LastEventId` or a
//!   [`SubscribeOptions`] (history for first visits, a lag policy, stream options).
//! - Each subscriber is one [`SseBody`](nest_core::sse::SseBody) whose
//!   [`EventSource`](nest_core::sse::EventSource) is its cursor in the topic: the body keeps the
//!   lifecycle, keep-alive, limits and metrics, as for any nest stream.
//! - [`resumable`]: streams that outlive their request (an LLM answer, an MCP tool call), on
//!   the hub's public API.
//! - Backends: the in-process [`MemoryBackend`] (default) and, with the feature `redis`,
//!   `RedisBackend` (Redis Streams), so several instances serve one stream; both pass the
//!   conformance suite in `conformance` (feature `test-util`).
//!
//! The facade crate re-exports this crate as `nest::sse::hub` (and `nest::sse::resumable`).
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use nest_core::prelude::*;
//! use nest_hub::Hub;
//!
//! struct Chat { hub: Hub }
//!
//! impl Chat {
//!     async fn events(self: Arc<Self>, last: LastEventId) -> Result<SseBody, HttpException> {
//!         self.hub.subscribe("chat", &last).await.map_err(|e| HttpException::service_unavailable(e.to_string()))
//!     }
//! }
//!
//! impl Controller for Chat {
//!     fn routes(r: &mut Routes<Self>) {
//!         r.sse("/events", Self::events);
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let hub = Hub::new();
//! let id = hub.publish("chat", SseEvent::data("hello").event("message")).await.unwrap();
//! assert!(id.ends_with("-1"));
//! assert_eq!(hub.stats("chat").published, 1);
//! assert!(NestApp::new().controller(Chat { hub }).into_service().is_ok());
//! # });
//! ```

mod appends;
mod backend;
#[cfg(feature = "test-util")]
pub mod conformance;
mod cursor;
mod error;
mod hub;
mod id;
mod log_gate;
mod memory;
pub mod metrics;
mod options;
#[cfg(feature = "redis")]
mod redis;
pub mod resumable;
#[cfg(feature = "test-util")]
pub mod test_util;

pub use appends::{Appends, Wait};
pub use backend::{
    BackendError, BackendTopic, Batch, EncodeWithSeq, HubBackend, Record, IDEMPOTENCY_KEYS,
    IDEMPOTENCY_TTL, MAX_IDEMPOTENCY_KEY,
};
pub use error::HubError;
pub use hub::{Hub, TopicStats};
pub use id::{HubId, ParseHubIdError};
pub use memory::{MemoryBackend, Retention};
pub use options::{History, HubOptions, LagPolicy, SubscribeOptions};
#[cfg(feature = "redis")]
pub use redis::{RedisBackend, RedisConfig};
pub use resumable::{Resumable, ResumableError, ResumableOptions};
