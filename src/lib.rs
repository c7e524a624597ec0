//! # nest
//!
//! A NestJS-style web framework for Rust whose first-class feature is Server-Sent Events.
//! This facade re-exports the member crates:
//!
//! - [`nest_core`] (everything at the top level): controllers, routing, extractors, responses,
//!   the server, and the SSE stream.
//! - [`cors`] ([`nest_cors`]): the CORS tower layer.
//! - `sse_client` (`nest_sse_client`, feature `client`): the spec-exact parser, the
//!   `EventSource` client and test helpers; its HTTP client is `nest::sse_client::reqwest`.
//! - `auth` (`nest_auth`, feature `auth`): signed stream credentials (JWT in a cookie or a
//!   header), expiry on open streams, per-topic authorization for the hub.
//! - `mcp` (`nest_mcp`, feature `mcp`): the Model Context Protocol over Streamable HTTP, both
//!   revisions on one endpoint.
//! - `durable` (`nest_durable`, feature `durable`): the Durable Streams protocol, in memory or
//!   on Redis.
//! - [`http`]: status codes, headers and methods, so a first app and its tests need one
//!   dependency.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use nest::prelude::*;
//!
//! struct App;
//! impl Controller for App {
//!     fn routes(r: &mut Routes<Self>) {
//!         r.sse("/sse", |_: Arc<Self>| async {
//!             let (writer, body) = get_sse_stream(SseOptions::new());
//!             writer.write(serde_json::json!({"hello": "world"})).unwrap();
//!             body
//!         });
//!     }
//! }
//!
//! let app = NestApp::new().controller(App).layer(CorsLayer::new());
//! assert!(app.into_service().is_ok());
//! ```

pub use nest_core::*;

#[cfg(feature = "auth")]
pub use nest_auth as auth;
pub use nest_cors as cors;
#[cfg(feature = "durable")]
pub use nest_durable as durable;
#[cfg(feature = "mcp")]
pub use nest_mcp as mcp;
#[cfg(feature = "client")]
pub use nest_sse_client as sse_client;

/// The `http` crate nest is built on: `nest::http::StatusCode`, `nest::http::header`.
pub use http;

/// Server-Sent Events: nest-core's stream ([`get_sse_stream`](nest_core::sse::get_sse_stream),
/// [`SseBody`](nest_core::sse::SseBody), [`SseEvent`](nest_core::sse::SseEvent)…) with the hub
/// and resumable streams of nest-hub under the paths they have always had: `nest::sse::hub`,
/// `nest::sse::resumable`, `nest::sse::Resumable`.
///
/// ```
/// use nest::sse::hub::{Hub, SubscribeOptions};
/// use nest::sse::{LastEventId, Resumable};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let hub = Hub::new();
/// assert!(hub.subscribe("chat", SubscribeOptions::from(&LastEventId(None))).await.is_ok());
/// assert_eq!(Resumable::new_id().len(), 32);
/// # });
/// ```
pub mod sse {
    pub use nest_core::sse::*;
    pub use nest_hub as hub;
    pub use nest_hub::resumable;
    pub use nest_hub::resumable::{Resumable, ResumableError, ResumableOptions};
}

/// What most apps need, in one import: nest-core's prelude and the CORS layer.
pub mod prelude {
    pub use nest_core::prelude::*;
    pub use nest_cors::CorsLayer;
}

/// The README's code blocks, compiled as doc tests so they cannot rot (they use the client
/// over TLS, auth and the test helpers: `cargo test -p nest-web --all-features` runs them).
#[cfg(all(
    doctest,
    feature = "client",
    feature = "auth",
    feature = "test-util",
    feature = "tls"
))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
