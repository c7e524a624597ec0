//! # nest-core
//!
//! A NestJS-style web framework for Rust whose first-class feature is Server-Sent Events.
//!
//! The architecture, in the order a request flows through it:
//!
//! - [`server`]: the accept loop on hyper 1 + hyper-util (HTTP/1.1 and HTTP/2 on one port,
//!   limits, timeouts, graceful shutdown that never hangs on an endless body).
//! - [`app`]: [`NestApp`] registers controllers, state, and tower layers that wrap everything,
//!   and builds a [`NestService`] (a tower service) or a [`Server`].
//! - `routing`: matchit paths in NestJS syntax (`/users/:id`), 404, 405 with `Allow`, HEAD.
//! - [`controller`]: the [`Controller`] trait, a prefix and a table of routes with their metadata
//!   (kind plain or SSE, status, headers, guards, layers).
//! - [`extract`]: typed extractors ([`Path`](extract::Path), [`Query`](extract::Query),
//!   [`Json`], [`State`](extract::State), headers, the raw request).
//! - [`handler`]: async functions of the controller and extractors.
//! - [`response`]: [`IntoResponse`], [`Json`], [`HttpException`] in the NestJS error shape.
//! - [`sse`]: the SSE stream (writer, body, cancel hook, keep-alive, buffer policy), the one
//!   encoder of the wire format, and the `Last-Event-ID` extractor.
//!
//! # Example
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
    pub use crate::sse::{get_sse_stream, LastEventId, SseBody, SseEvent, SseOptions, SseWriter};
    pub use crate::{NestApp, Request, ServerConfig};
    pub use nest_macros::{
        all, controller, delete, get, head, header, http_code, options, patch, post, put, redirect,
        sse, use_guards, use_layer,
    };
}
