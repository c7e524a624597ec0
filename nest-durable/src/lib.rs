//! # nest-durable
//!
//! A [Durable Streams](https://github.com/durable-streams/durable-streams) server for nest:
//! ElectricSQL's open HTTP protocol for append-only streams addressed by offset. A client
//! creates a stream with `PUT`, appends with `POST`, reads from any offset with `GET`, follows
//! live by long-poll (`live=long-poll`) or Server-Sent Events (`live=sse`), and resumes after
//! any failure from the last `Stream-Next-Offset` it saw.
//!
//! # Example
//!
//! Mount the service in one line, append, and read from an offset:
//!
//! ```
//! use nest_core::NestApp;
//! use nest_durable::{DurableConfig, DurableStreams, MemoryStore};
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let store = MemoryStore::new(DurableConfig::default()).unwrap();
//! let app = NestApp::new().controller(DurableStreams::new(store).at("/v1/stream"));
//! let server = app.bind(([127, 0, 0, 1], 0)).await.unwrap();
//! let url = format!("http://{}/v1/stream/chat-1", server.local_addr());
//! let http = reqwest::Client::new();
//!
//! let created = http.put(&url).header("content-type", "text/plain").body("hello ").send().await.unwrap();
//! assert_eq!(created.status(), 201);
//! let offset = created.headers()["stream-next-offset"].to_str().unwrap().to_owned();
//!
//! let appended = http.post(&url).header("content-type", "text/plain").body("world").send().await.unwrap();
//! assert_eq!(appended.status(), 204);
//!
//! // A reader that saw the first part resumes from its offset and gets only what came after.
//! let read = http.get(format!("{url}?offset={offset}")).send().await.unwrap();
//! assert_eq!(read.headers()["stream-up-to-date"], "true");
//! assert_eq!(read.text().await.unwrap(), "world");
//! server.shutdown(std::time::Duration::from_secs(1)).await;
//! # });
//! ```
//!
//! # What it serves
//!
//! - create (`PUT`): idempotent (201 new, 200 same configuration, 409 another), `Content-Type`,
//!   `Stream-TTL` (sliding) or `Stream-Expires-At`, `Stream-Closed: true`, forks
//!   (`Stream-Forked-From`, `Stream-Fork-Offset`, `Stream-Fork-Sub-Offset`; the fork copies the
//!   references to its source's data, so deleting the source soft-deletes it only while forks
//!   count it);
//! - append (`POST`): `Stream-Seq` (scoped per stream, compared byte-wise), idempotent producers
//!   (`Producer-Id`, `-Epoch`, `-Seq`), `Stream-Closed: true`; `HEAD`; `DELETE`;
//! - read (`GET ?offset=`): `-1`, `now`, offsets that sort as text, `ETag`/304, JSON mode
//!   (arrays flattened on append, one array per response), `live=long-poll` with
//!   `Stream-Cursor`, `live=sse` with a `control` event after every `data` event and base64 for
//!   binary streams; the connection ends after [`DurableConfig::sse_lifetime`].
//!
//! Bad input is a 4xx whose message names the problem and nothing is stored: a malformed offset
//! or header (400), an append over [`DurableConfig::max_append_bytes`] (413), a content type
//! that differs from the stream's (409), a `Stream-Seq` that does not grow (409), a stale
//! producer epoch (403).
//!
//! # Security
//!
//! Stream paths are chosen by clients and are public by design: the service has no notion of
//! users. Whoever reaches the base path can create, read, append to and delete every stream
//! under it; authorization is the app's (a layer in front of the service). `Producer-Id` and
//! `Stream-Seq` are the client's own too: they order and deduplicate writes, they do not
//! authenticate them. Every response carries `X-Content-Type-Options: nosniff` and
//! `Cross-Origin-Resource-Policy: cross-origin`.
//!
//! # Buffers and shutdown
//!
//! A live SSE response queues at most 4 frames (each at most
//! [`DurableConfig::max_read_bytes`], base64 a third more); a slow client slows only its own
//! reads. A live reader holds no data between reads, only a wake-up subscription of its stream.
//! When the app shuts down, SSE responses end cleanly and long-polls answer `204` at once (the
//! service awaits nest-core's `Readiness::draining`), so clients reconnect from their offsets (on another instance) instead of being cut at
//! the end of the grace period.
//!
//! # Stores
//!
//! - [`MemoryStore`]: bounded in streams, bytes per stream and bytes in total
//!   ([`DurableConfig`]); expired streams are removed.
//! - `RedisStore` (feature `redis`): several instances serve the same streams with the same
//!   offsets; an append on one wakes live readers on all of them through one Redis
//!   subscription per instance (no polling loop per reader).

mod config;
mod error;
mod offset;
mod service;
mod state;
mod store;

pub use config::DurableConfig;
pub use error::Error;
pub use service::{AnyStore, DurableStreams, MAX_PATH_BYTES};
pub use store::memory::MemoryStore;
#[cfg(feature = "redis")]
pub use store::redis::RedisStore;
