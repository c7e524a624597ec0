//! A spec-exact Server-Sent Events parser, a browser-like `EventSource` client
//! on reqwest, test helpers that never hang, and the `nest-sse` CLI.
//!
//! # Example
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use nest_sse_client::{EventSource, SseItem};
//!
//! # async fn run() -> Result<(), nest_sse_client::Error> {
//! let mut source = EventSource::new("http://127.0.0.1:3000/events")?;
//! while let Some(item) = source.next().await {
//!     match item {
//!         Ok(SseItem::Message(event)) => println!("{}: {}", event.event, event.data),
//!         Ok(_) => {}
//!         Err(error) if error.is_fatal() => return Err(error),
//!         Err(error) => eprintln!("reconnecting: {error}"),
//!     }
//! }
//! # Ok(())
//! # }
//! ```
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
//! # Modules
//!
//! - [`parser`] is the one place the wire format is parsed.
//! - [`event`] holds [`Event`], with [`Event::data_json`].
//! - [`client`] holds [`EventSource`], reconnecting like a browser.
//! - [`testing`] holds [`TestStream`](testing::TestStream), assertions with timeouts.
//! - [`error`] holds [`Error`].
//!
//! # Optional features
//!
//! - `cli`: the `nest-sse` binary.
//! - `rustls`: `https://` URLs.

pub mod client;
pub mod error;
pub mod event;
pub mod parser;
pub mod testing;

pub use client::{Builder, EventSource, ReadyState, SseItem};
pub use error::{Error, Result};
pub use event::Event;
