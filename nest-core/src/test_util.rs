//! Test helpers: run a `NestApp` on 127.0.0.1:0 for integration tests (feature `test-util`).
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use nest_core::prelude::*;
//! use nest_core::test_util::TestServer;
//!
//! struct Hello;
//! impl Controller for Hello {
//!     fn routes(r: &mut Routes<Self>) {
//!         r.get("/", |_: Arc<Self>| async { "hello" });
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let server = TestServer::start(NestApp::new().controller(Hello)).await;
//! let body = reqwest::get(server.url("/")).await.unwrap().text().await.unwrap();
//! assert_eq!(body, "hello");
//! server.shutdown().await;
//! # });
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use crate::{NestApp, Server, ServerHandle};

/// A `NestApp` served on 127.0.0.1 at a free port, shut down when dropped (without waiting).
#[derive(Debug)]
pub struct TestServer {
    server: Option<Server>,
    addr: SocketAddr,
}

impl TestServer {
    /// Builds and binds the app; panics with the build error's message, as a test should.
    pub async fn start(app: NestApp) -> Self {
        let server = match app.bind(([127, 0, 0, 1], 0)).await {
            Ok(server) => server,
            Err(err) => panic!("the test app failed to start: {err}"),
        };
        let addr = server.local_addr();
        Self {
            server: Some(server),
            addr,
        }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A handle to shut the server down from elsewhere.
    pub fn handle(&self) -> Option<ServerHandle> {
        self.server.as_ref().map(Server::handle)
    }

    /// Shuts down with a 1 s grace period and waits until it is done.
    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown(Duration::from_secs(1)).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.handle().shutdown_with_grace(Duration::ZERO);
        }
    }
}

/// The head parser of the server's direct HTTP/1.1 SSE path (see
/// [`ServerConfig::direct_sse`](crate::ServerConfig::direct_sse)), for fuzzing: parses `head` as
/// a bodiless HTTP/1.1 `GET` with at most `max_headers` headers and returns the request and the
/// length of its head, or `None` when the server would hand the connection to hyper.
///
/// ```
/// let (parts, len) = nest_core::test_util::parse_direct_head(
///     b"GET /events?x=1 HTTP/1.1\r\nAccept: text/event-stream\r\n\r\nrest",
///     100,
/// )
/// .unwrap();
/// assert_eq!((parts.uri.path(), len), ("/events", 55));
/// assert_eq!(parts.headers["accept"], "text/event-stream");
/// assert!(nest_core::test_util::parse_direct_head(b"POST / HTTP/1.1\r\n\r\n", 100).is_none());
/// ```
pub fn parse_direct_head(head: &[u8], max_headers: usize) -> Option<(http::request::Parts, usize)> {
    crate::server::parse_direct_head(head, max_headers)
}
