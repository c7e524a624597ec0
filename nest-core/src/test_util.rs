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

/// The TLS front (features `tls` and `test-util`) on a connection whose client sends `client`
/// and then goes away: the server's real handshake (ClientHello under `first_byte_timeout`, a
/// handshake slot for the crypto only, the rest under `tls_handshake_timeout`), then, when ALPN
/// chose `h2`, HTTP/2's preface under `first_byte_timeout`. `Ok(h2)` when both passed, which
/// bytes written ahead of time cannot do (the client's `Finished` depends on the server's
/// random). For the fuzz target `tls_front`.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
/// let tls = nest_core::server::TlsConfig::from_pem(cert.cert.pem(), cert.signing_key.serialize_pem()).unwrap();
/// let config = nest_core::ServerConfig::default();
/// assert!(nest_core::test_util::tls_front(&tls, &config, b"GET / HTTP/1.1\r\n\r\n").await.is_err());
/// # });
/// ```
#[cfg(feature = "tls")]
pub async fn tls_front(
    tls: &crate::server::TlsConfig,
    config: &crate::ServerConfig,
    client: &[u8],
) -> Result<bool, ()> {
    use tokio::io::AsyncWriteExt;
    let (mut near, far) = tokio::io::duplex(64 * 1024);
    let client = client.to_vec();
    let writer = tokio::spawn(async move {
        let _ = near.write_all(&client).await;
        // Then gone: the server meets the end of the stream (or its timeouts) and answers.
        let _ = near.shutdown().await;
    });
    let outcome = crate::server::tls_front(far, tls, config).await;
    writer.abort();
    outcome
}

/// HTTP/2's preface reader (features `tls` and `test-util`; the TLS front runs it once ALPN chose
/// `h2`) on a stream that holds `bytes` and then ends: the bytes it read when it accepted them
/// (exactly the 24-byte preface, nothing after it), `None` otherwise. For the fuzz target
/// `tls_front`.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let config = nest_core::ServerConfig::default();
/// let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// let mut with_more = preface.to_vec();
/// with_more.extend_from_slice(b"\x00\x00\x00\x04");
/// let read = nest_core::test_util::h2_preface(&config, &with_more).await.unwrap();
/// assert_eq!(&read[..], &preface[..]);
/// assert!(nest_core::test_util::h2_preface(&config, b"PRI * HTTP/1.1").await.is_none());
/// # });
/// ```
#[cfg(feature = "tls")]
pub async fn h2_preface(config: &crate::ServerConfig, bytes: &[u8]) -> Option<bytes::Bytes> {
    let mut reader = bytes;
    crate::server::read_preface(&mut reader, config).await
}

/// Whether the tests run under CI (`CI` set to anything but empty or `false`): there, a test
/// that cannot run fails instead of skipping.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false")
}

/// Records that `test` could not run (`why`: what is missing and how to get it), the one way
/// every test that needs a real program (nginx, Redis, Chromium, Node) skips:
///
/// - under CI ([`in_ci`]) it panics: a skip there is a failure;
/// - otherwise it writes `SKIPPED: <test>: <why>` to the process's standard error directly
///   (the test harness captures what a passing test prints with `eprintln!`, not this), and
///   appends the line to the file named by `NEST_SKIP_LOG`, which `scripts/test` repeats at the
///   end of its run (and fails on under CI).
///
/// ```
/// // Outside CI this only reports; under CI the same call would panic.
/// if !nest_core::test_util::in_ci() {
///     nest_core::test_util::skip("doc example", "nothing is missing, this is a demonstration");
/// }
/// ```
pub fn skip(test: &str, why: &str) {
    use std::io::Write;
    let line = format!("SKIPPED: {test}: {why}");
    assert!(!in_ci(), "CI is set, and a test cannot run: {line}");
    let _ = writeln!(std::io::stderr(), "\n*** {line} ***\n");
    if let Some(path) = std::env::var_os("NEST_SKIP_LOG") {
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut log| writeln!(log, "{line}"));
        if let Err(err) = appended {
            let _ = writeln!(std::io::stderr(), "cannot append to NEST_SKIP_LOG: {err}");
        }
    }
}

/// Connects `body` as the server does when it sends the stream (without a server): it ends with
/// [`EndReason::Shutdown`](crate::sse::EndReason::Shutdown) when `shutdown` is cancelled, after
/// flushing what is queued and its final `retry:`. For unit tests of an
/// [`EventSource`](crate::sse::EventSource) (the hub's shutdown test).
///
/// ```
/// use http_body_util::BodyExt;
/// use nest_core::sse::{get_sse_stream, SseOptions};
/// use tokio_util::sync::CancellationToken;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let (writer, body) = get_sse_stream(SseOptions::new());
/// let token = CancellationToken::new();
/// nest_core::test_util::attach_shutdown(&body, token.clone());
/// writer.write("last").unwrap();
/// token.cancel();
/// let bytes = body.collect().await.unwrap().to_bytes();
/// assert_eq!(&bytes[..], b"data: last\n\n");
/// # });
/// ```
pub fn attach_shutdown(body: &crate::sse::SseBody, shutdown: tokio_util::sync::CancellationToken) {
    let app = std::sync::Arc::new(crate::context::SseShared::default());
    let link = std::sync::Arc::new(crate::context::StreamLink {
        shutdown,
        watch: None,
    });
    body.attachment()
        .attach(&link, &app, &std::sync::Arc::from("/test"), false);
}

/// A waker that counts its wakes ([`counting_waker`]), for tests of code that keeps wakers and
/// wakes them.
#[derive(Debug, Default)]
pub struct WakeCount(std::sync::atomic::AtomicUsize);

impl WakeCount {
    /// How many times the waker was woken.
    pub fn get(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl std::task::Wake for WakeCount {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A waker and its count of wakes.
///
/// ```
/// let (count, waker) = nest_core::test_util::counting_waker();
/// waker.wake_by_ref();
/// waker.wake();
/// assert_eq!(count.get(), 2);
/// ```
pub fn counting_waker() -> (std::sync::Arc<WakeCount>, std::task::Waker) {
    let count = std::sync::Arc::new(WakeCount::default());
    (count.clone(), std::task::Waker::from(count))
}
