//! A spec-exact Server-Sent Events parser, a browser-like `EventSource` client
//! on reqwest, test helpers that never hang, and the `nest-sse` CLI.
//!
//! # Testing a server end to end
//!
//! A complete integration test against a real nest app, served on
//! 127.0.0.1 at a free port by
//! [`nest_core::test_util::TestServer`](https://docs.rs/nest-core/latest/nest_core/test_util/struct.TestServer.html)
//! (nest-core's `test-util` feature; `nest::test_util` in the facade). The
//! first response carries `myEvent` with an id and a `retry` and ends; the
//! client reconnects after that `retry` with `Last-Event-ID`; the second
//! response ends too, and the third answers 204, which ends the stream
//! without an error.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use nest_core::prelude::*;
//! use nest_core::test_util::TestServer;
//! use nest_sse_client::reqwest::StatusCode;
//! use nest_sse_client::testing::TestStream;
//!
//! struct Events;
//! impl Controller for Events {
//!     fn routes(r: &mut Routes<Self>) {
//!         r.sse("/events", |_: Arc<Self>, last: LastEventId| async move {
//!             let id = match last.as_u64() {
//!                 None => 1,
//!                 Some(1) => 2,
//!                 Some(_) => return Err(StatusCode::NO_CONTENT), // "stop"
//!             };
//!             let (writer, body) = get_sse_stream(SseOptions::new());
//!             let data = format!("after {:?}", last.0);
//!             writer.write(SseEvent::data(data).event("myEvent").id(id).retry_ms(100)).unwrap();
//!             writer.close();
//!             Ok(body)
//!         });
//!     }
//! }
//!
//! # /*
//! #[tokio::test]
//! # */
//! async fn my_event_has_an_id_and_a_retry_and_resumes() {
//!     let server = TestServer::start(NestApp::new().controller(Events)).await;
//!     let mut stream = TestStream::connect(server.url("/events")).unwrap();
//!
//!     let event = stream.expect_event("myEvent").await.unwrap();
//!     assert_eq!(event.data, "after None");
//!     assert_eq!(event.id, "1");
//!     assert_eq!(event.retry_duration(), Some(Duration::from_millis(100)));
//!
//!     // The response ended; 100 ms later the client sent `Last-Event-ID: 1`.
//!     let event = stream.expect_event("myEvent").await.unwrap();
//!     assert_eq!((event.data.as_str(), event.id.as_str()), (r#"after Some("1")"#, "2"));
//!
//!     // Then the server answered 204: the stream ends, cleanly.
//!     stream.expect_end().await.unwrap();
//!     server.shutdown().await;
//! }
//! # #[tokio::main]
//! # async fn main() {
//! #     my_event_has_an_id_and_a_retry_and_resumes().await;
//! # }
//! ```
//!
//! `TestStream` (feature `test-util`) waits at most 5 s for each
//! expectation and says what did arrive: `next_event`, `expect_event`,
//! `next_matching(|e| …)`, `collect(n)`, `expect_comment`, `expect_open`,
//! `expect_error`, `expect_no_event(window)`, `expect_end`. It waits with
//! `tokio::time`, so a test on a paused clock runs reconnection delays and
//! quiet windows at once.
//!
//! # Reading a stream
//!
//! [`EventSource::into_events`] yields the events only: reconnections are
//! handled inside, a clean end (a 204, the end without reconnecting) is
//! `None`, and the error that stops the stream is the one `?` sees.
//!
//! ```no_run
//! use nest_sse_client::EventSource;
//!
//! # async fn run() -> Result<(), nest_sse_client::Error> {
//! let mut events = EventSource::new("http://127.0.0.1:3000/events")?.into_events();
//! while let Some(event) = events.next().await {
//!     let event = event?;
//!     println!("{}: {}", event.event, event.data);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! The [`EventSource`] itself yields every [`SseItem`] (opens, comments) and
//! each reconnection's error, as a browser's `onerror`.
//!
//! And the parser alone:
//!
//! ```
//! use nest_sse_client::parser::{Item, Parser};
//!
//! let mut parser = Parser::new();
//! let items: Vec<Item> = parser.feed(b"data: hi\n\n").collect();
//! assert!(matches!(&items[..], [Item::Event(e)] if e.data == "hi" && e.event == "message"));
//! ```
//!
//! # HTTP client, HTTP/2 and TLS
//!
//! The client is [`reqwest`] (re-exported: use `nest_sse_client::reqwest`
//! to get the same version). [`Builder::client`] takes your own
//! `reqwest::Client`, so many streams share one connection pool and its
//! settings. `https://` needs the `rustls` feature; HTTP/2 the `http2`
//! feature: over TLS it is chosen by ALPN when the server offers it, over
//! cleartext build the client with `http2_prior_knowledge()`. For a private
//! CA, pass a client built with `tls_certs_only` or `add_root_certificate`.
//!
//! # Modules
//!
//! - [`parser`] is the one place the wire format is parsed.
//! - [`event`] holds [`Event`], with [`Event::data_json`].
//! - [`client`] holds [`EventSource`], reconnecting like a browser, its
//!   [`Builder`] and [`Events`].
//! - `testing` (feature `test-util`) holds `TestStream`, assertions with timeouts.
//! - [`error`] holds [`Error`].
//!
//! # Optional features
//!
//! - `test-util`: the `testing` module, for dev-dependencies (as nest-core's own `test-util`).
//! - `rustls`: `https://` URLs (reqwest's `rustls`).
//! - `http2`: HTTP/2 (reqwest's `http2`).
//! - `cli`: the `nest-sse` binary (with `rustls` and `http2`).

pub mod client;
pub mod error;
pub mod event;
pub mod parser;
#[cfg(feature = "test-util")]
pub mod testing;

pub use client::{Builder, EventSource, Events, ReadyState, ResponseHead, SseItem};
pub use error::{Error, Result};
pub use event::Event;
/// The HTTP client this crate is built on, for [`Builder::client`],
/// [`EventSource::from_request`] and status codes and headers.
pub use reqwest;

/// The README's code blocks, compiled as doc tests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
