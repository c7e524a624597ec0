//! # nest-core
//!
//! A NestJS-style web framework for Rust whose first-class feature is Server-Sent Events.
//!
//! # Server-Sent Events in ten lines
//!
//! The seed's `@Get('/sse') @Sse()`: a handler creates a stream, moves its writer into a task,
//! and returns the body; the cancel hook stops the task when the client goes away.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use nest_core::prelude::*;
//! use nest_core::test_util::TestServer;
//!
//! struct Clock;
//! impl Controller for Clock {
//!     fn routes(r: &mut Routes<Self>) {
//!         r.sse("/sse", |_: Arc<Self>| async {
//!             let (writer, body) = get_sse_stream(SseOptions::new());
//!             let task = tokio::spawn(async move {
//!                 for i in 1.. {
//!                     if writer.write(SseEvent::data("tick").event("clock").id(i)).is_err() { break }
//!                     tokio::time::sleep(Duration::from_millis(10)).await;
//!                 }
//!             });
//!             body.on_cancel(move |_reason| task.abort())
//!         });
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let server = TestServer::start(NestApp::new().controller(Clock)).await;
//! let mut res = reqwest::get(server.url("/sse")).await.unwrap();
//! assert_eq!(res.headers()["content-type"], "text/event-stream");
//! let first = res.chunk().await.unwrap().unwrap();
//! assert_eq!(&first[..], b"event: clock\nid: 1\ndata: tick\n\n");
//! server.shutdown().await;
//! # });
//! ```
//!
//! # Layers
//!
//! A request flows down this list from `server` to `response`; imports run the other way: each
//! module uses only the modules listed after it (a trait lets a lower module call a higher one,
//! as other event sources, the hub's cursor among them, plug into the SSE body through
//! `sse::EventSource`).
//!
//! - [`server`]: the accept loop on hyper 1 (HTTP/1.1 and HTTP/2 on one port, limits, timeouts,
//!   graceful shutdown that never hangs on an endless body); `NestApp::bind`/`listen` live here.
//! - [`app`]: [`NestApp`] registers controllers, state, and tower layers that wrap everything,
//!   and builds a [`NestService`] (a tower service).
//! - `routing`: matchit paths in NestJS syntax (the grammar is the `nest-path` crate), 404, 405
//!   with `Allow`, HEAD, running a route's guards and handler, attaching SSE streams to the app.
//! - `openapi_routes`: the routes that serve the OpenAPI document and its docs page.
//! - [`controller`]: the [`Controller`] trait, a prefix and a table of routes with their metadata
//!   (kind plain or SSE, status, headers, guards, layers).
//! - [`openapi`]: the OpenAPI 3.2 document made from the routes: what each extractor and
//!   response type says about a route, typed SSE events as `itemSchema`, the docs page.
//! - [`handler`]: async functions of the controller and extractors; [`health`]: readiness and
//!   liveness routes.
//! - [`sse`]: the SSE stream (options, lifecycle, writer, keep-alive, body, the event-source
//!   trait), the one encoder of the wire format, and the `Last-Event-ID` extractor. The hub and
//!   resumable streams are the crate `nest-hub`, on this crate's public API.
//! - [`extract`]: typed extractors ([`Path`](extract::Path), [`Query`](extract::Query),
//!   [`Json`], [`State`](extract::State), headers, the raw request).
//! - `context`: what every request of an app can reach (state, limits, shutdown token).
//! - ground: [`response`] ([`IntoResponse`], [`Json`], [`HttpException`] in the NestJS error
//!   shape), [`ServerConfig`], [`Error`], [`metrics`], [`body`].
//!
//! `tests/layering.rs` reads the sources and fails on an import that points upward.
//!
//! # A controller
//!
//! A controller written by hand (no macros), with path, query, JSON and state extractors:
//!
//! ```
//! use std::sync::Arc;
//! use nest_core::prelude::*;
//! use serde::Deserialize;
//!
//! #[derive(Clone)]
//! struct Greeting(&'static str);
//!
//! #[derive(Deserialize)]
//! struct Page { page: u32 }
//!
//! #[derive(Deserialize)]
//! struct NewUser { name: String }
//!
//! struct Users;
//!
//! impl Users {
//!     async fn find(self: Arc<Self>, Path(id): Path<u32>, Query(p): Query<Page>, State(g): State<Greeting>) -> String {
//!         format!("{} user {id} on page {}", g.0, p.page)
//!     }
//!     async fn create(self: Arc<Self>, Json(user): Json<NewUser>) -> Json<serde_json::Value> {
//!         Json(serde_json::json!({ "created": user.name }))
//!     }
//! }
//!
//! impl Controller for Users {
//!     fn prefix(&self) -> &str { "/users" }
//!     fn routes(routes: &mut Routes<Self>) {
//!         routes.get("/:id", Self::find);
//!         routes.post("/", Self::create).http_code(201);
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let server = NestApp::new().state(Greeting("hello")).controller(Users).bind(([127, 0, 0, 1], 0)).await.unwrap();
//! let base = format!("http://{}", server.local_addr());
//! let client = reqwest::Client::new();
//! let text = client.get(format!("{base}/users/7?page=2")).send().await.unwrap().text().await.unwrap();
//! assert_eq!(text, "hello user 7 on page 2");
//! let res = client.post(format!("{base}/users")).json(&serde_json::json!({"name": "ada"})).send().await.unwrap();
//! assert_eq!(res.status(), 201);
//! assert_eq!(res.text().await.unwrap(), r#"{"created":"ada"}"#);
//! server.shutdown(std::time::Duration::from_secs(1)).await;
//! # });
//! ```

pub mod app;
pub mod body;
mod config;
mod context;
pub mod controller;
mod error;
pub mod extract;
pub mod handler;
pub mod health;
pub mod id;
pub mod metrics;
pub mod openapi;
mod openapi_routes;
pub mod response;
mod routing;
pub mod server;
pub mod sse;

#[cfg(feature = "test-util")]
pub mod test_util;

pub use app::{NestApp, NestService};
pub use config::ServerConfig;
pub use controller::{CanActivate, Controller, RouteConfig, RouteKind, Routes};
pub use error::Error;
pub use response::{Html, HttpException, IntoResponse, Json, Redirect, Response};
pub use server::{Server, ServerHandle};

/// The request type handlers and layers see.
pub type Request = http::Request<body::Body>;

/// What most apps need, in one import.
pub mod prelude {
    pub use crate::controller::{CanActivate, Controller, Routes};
    pub use crate::extract::{Path, Query, State};
    pub use crate::response::{Html, HttpException, IntoResponse, Json, Redirect};
    pub use crate::sse::{
        get_sse_stream, get_typed_sse_stream, LastEventId, SseBody, SseEvent, SseEvents,
        SseOptions, SseWriter, TypedSseBody,
    };
    pub use crate::{NestApp, Request, ServerConfig};
    pub use nest_macros::{
        all, api_response, controller, delete, get, head, header, http_code, options, patch, post,
        put, redirect, sse, use_guards, use_layer,
    };
}
