//! Server settings, validated when the app is built.

use std::time::Duration;

use crate::error::Error;

/// Limits and timeouts of the server. Every setting has a safe default; invalid values are an
/// [`Error`] when the app is built, never a panic (hyper panics on some, e.g. a read buffer below 8 KiB).
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use nest_core::{NestApp, ServerConfig};
///
/// let config = ServerConfig::default().body_limit(64 * 1024).header_read_timeout(Duration::from_secs(5));
/// assert!(NestApp::new().config(config).into_service().is_ok());
///
/// let err = NestApp::new().config(ServerConfig::default().max_head_size(1024)).into_service().unwrap_err();
/// assert!(err.is_config() && err.to_string().contains("max_head_size"), "{err}");
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ServerConfig {
    pub(crate) body_limit: usize,
    pub(crate) max_head_size: usize,
    pub(crate) max_headers: usize,
    pub(crate) header_read_timeout: Duration,
    pub(crate) first_byte_timeout: Duration,
    pub(crate) tcp_keepalive: Option<Duration>,
    pub(crate) tcp_user_timeout: Option<Duration>,
    pub(crate) http2_keep_alive: Option<Duration>,
    pub(crate) http2_stall_timeout: Option<Duration>,
    pub(crate) http2_max_streams: u32,
    pub(crate) http2_max_send_buf_size: usize,
    pub(crate) max_connections: Option<usize>,
    pub(crate) tls_handshake_timeout: Duration,
    pub(crate) max_tls_handshakes: usize,
    pub(crate) drain_delay: Duration,
    pub(crate) shutdown_grace: Duration,
    pub(crate) direct_sse: bool,
    pub(crate) sse_buffer_budget: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            body_limit: 2 * 1024 * 1024,
            max_head_size: 64 * 1024,
            max_headers: 100,
            header_read_timeout: Duration::from_secs(30),
            first_byte_timeout: Duration::from_secs(10),
            tcp_keepalive: Some(Duration::from_secs(60)),
            tcp_user_timeout: Some(Duration::from_secs(60)),
            http2_keep_alive: Some(Duration::from_secs(30)),
            http2_stall_timeout: Some(Duration::from_secs(60)),
            http2_max_streams: 100,
            http2_max_send_buf_size: 16 * 1024,
            max_connections: Some(10_000),
            tls_handshake_timeout: Duration::from_secs(10),
            max_tls_handshakes: 256,
            drain_delay: Duration::ZERO,
            shutdown_grace: Duration::from_secs(10),
            direct_sse: direct_sse_default(),
            sse_buffer_budget: 128 * 1024 * 1024,
        }
    }
}

impl ServerConfig {
    /// The request body limit in bytes (default 2 MiB); a larger body answers 413.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// The largest request head (request line and headers) in bytes, default 64 KiB, at least
    /// 8 KiB; a larger head answers 431.
    pub fn max_head_size(mut self, bytes: usize) -> Self {
        self.max_head_size = bytes;
        self
    }

    /// The most headers a request may have (default 100).
    pub fn max_headers(mut self, count: usize) -> Self {
        self.max_headers = count;
        self
    }

    /// How long an HTTP/1.1 connection may go without a request (default 30 s): one that has no
    /// response in progress and receives no complete request head for a whole period of it is
    /// closed. So a client has at most twice it to send a request head (a slow-loris client
    /// trickling one is dropped), and an idle keep-alive connection is closed between once and
    /// twice it after its last response (never sooner: a proxy's keep-alive timeout below it is
    /// safe), over cleartext and TLS alike. A long handler or response is not cut by it.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// How long a new connection may take to send its first bytes, and to show which protocol it
    /// speaks (default 10 s). A client that connects and stalls is dropped after it. Over TLS it
    /// bounds the ClientHello (read before a handshake slot is taken), and, once ALPN chose
    /// `h2`, HTTP/2's connection preface after the handshake.
    pub fn first_byte_timeout(mut self, timeout: Duration) -> Self {
        self.first_byte_timeout = timeout;
        self
    }

    /// TCP keepalive on accepted sockets (default 60 s; `None` turns it off). It is how a client
    /// that vanished without closing (a pulled cable) is found on an idle SSE stream.
    pub fn tcp_keepalive(mut self, idle: Option<Duration>) -> Self {
        self.tcp_keepalive = idle;
        self
    }

    /// How long what the server sent may wait for the client's TCP (unacknowledged, or held by a
    /// receive window the client keeps shut) before the kernel ends the connection (Linux's
    /// `TCP_USER_TIMEOUT`; default 60 s; `None`: the kernel's default, which keeps probing a shut
    /// window for as long as the client's kernel answers). It is what ends an HTTP/1.1 client
    /// that never reads an SSE stream: its kernel acknowledges every window probe, so neither
    /// keepalive nor the stream's queue bound would ever end it, and it would hold a connection
    /// slot forever. At most `u32::MAX` milliseconds; other systems ignore it.
    pub fn tcp_user_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.tcp_user_timeout = timeout;
        self
    }

    /// The HTTP/2 PING interval that finds dead connections (default 30 s; `None`: off).
    pub fn http2_keep_alive(mut self, interval: Option<Duration>) -> Self {
        self.http2_keep_alive = interval;
        self
    }

    /// How long an HTTP/2 connection may take nothing from its SSE streams before it is closed
    /// (default 60 s; `None`: never). A client can keep its flow-control window shut while it
    /// reads the socket and answers PINGs: neither the PINGs nor `tcp_user_timeout` end it, and
    /// its streams are never polled again. A stream with a keep-alive is polled at least once
    /// per keep-alive while its client takes what it is sent, so a connection whose streams
    /// with a keep-alive were all left unpolled for this long plus the longest of their
    /// keep-alives is closed (its streams end as `ClientGone`; checked every half of this).
    /// Streams without a keep-alive cannot tell a stalled client from an idle one and are not
    /// watched.
    pub fn http2_stall_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.http2_stall_timeout = timeout;
        self
    }

    /// The most concurrent HTTP/2 streams per connection (default 100, the minimum RFC 9113
    /// recommends). With [`http2_max_send_buf_size`](Self::http2_max_send_buf_size) and the SSE
    /// buffer it sets the memory one HTTP/2 connection can pin (see `SseBody`'s memory bound).
    pub fn http2_max_streams(mut self, streams: u32) -> Self {
        self.http2_max_streams = streams;
        self
    }

    /// The most bytes h2 buffers per HTTP/2 stream before the response body is polled again
    /// (default 16 KiB; hyper's own default is ~400 KiB). A client that opens a large window and
    /// never reads otherwise pins that much per stream, times up to
    /// [`http2_max_streams`](Self::http2_max_streams) per connection.
    pub fn http2_max_send_buf_size(mut self, bytes: usize) -> Self {
        self.http2_max_send_buf_size = bytes;
        self
    }

    /// The most connections served at once (default 10,000; `None`: no limit but the process's
    /// open-file limit). Past it the server stops accepting: new connections wait in the
    /// kernel's backlog until one closes.
    pub fn max_connections(mut self, limit: Option<usize>) -> Self {
        self.max_connections = limit;
        self
    }

    /// How long a TLS client may take to complete its handshake (default 10 s; feature `tls`).
    /// A client that opens TCP and never finishes the handshake is dropped after it.
    pub fn tls_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.tls_handshake_timeout = timeout;
        self
    }

    /// The most TLS handshakes computing at once (default 256; feature `tls`): a handshake
    /// costs CPU, so a flood of new connections waits for a slot instead of taking every core.
    /// A slot is held only for the cryptographic work (rustls computing the server's first
    /// flight from the ClientHello): a connection that stays silent, or stalls before or after
    /// its ClientHello, holds none.
    pub fn max_tls_handshakes(mut self, count: usize) -> Self {
        self.max_tls_handshakes = count;
        self
    }

    /// How long the server keeps serving after a shutdown was requested, with readiness
    /// already false, before it stops accepting and ends streams (default 0). Set it to a little
    /// more than the load balancer's readiness check interval, so it stops sending new streams
    /// to this instance before they are cut.
    pub fn drain_delay(mut self, delay: Duration) -> Self {
        self.drain_delay = delay;
        self
    }

    /// How long a graceful shutdown lets in-flight requests finish before closing what is left
    /// (default 10 s).
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Writes HTTP/1.1 SSE responses straight to the socket (default on).
    ///
    /// When a connection's first request is a `GET` with no body for an SSE route (or one that
    /// accepts `text/event-stream`), the server parses its head itself (with `httparse`, hyper's
    /// parser), runs the app exactly as for any request, and, when the response is a
    /// `200 text/event-stream` stream, writes hyper's head (plus `connection: close`) and then
    /// each frame to the socket as one chunk, as hyper would, ending with the last chunk.
    /// Nothing else is kept per connection (not hyper's 8 KiB read and write buffers): an idle
    /// stream costs a small fraction of what it costs through hyper (BENCHMARKS.md has the
    /// figures). An idle stream that was quiet for a second before its last frame even gives up
    /// its task until its next wake (an event, a keep-alive, its client's close, the shutdown):
    /// under 1 KiB per idle writer stream at 10,000 connections. Every other request, a first
    /// request whose head
    /// is incomplete, invalid or over a limit, and any other response, go to hyper exactly as
    /// with this off. HTTP/2 connections always go to hyper.
    ///
    /// Over TLS (feature `tls`), an HTTP/1.1 connection on TLS 1.3 takes the same path: the
    /// test runs on the first decrypted record (not consumed), and a stream's head and frames
    /// are sealed as TLS records with the sending key taken from rustls, which is then dropped
    /// (no record buffers, no receiving key); the stream ends with its last chunk and
    /// `close_notify`. TLS 1.2 connections go to hyper. A connection over TLS that sends no
    /// request within `first_byte_timeout` of its handshake is closed.
    ///
    /// What changes on the wire: `connection: close` in the stream's head, and the connection
    /// is not reused after the stream ends (an `EventSource` opens a new one to reconnect
    /// anyway); bytes the client sends after its request are read and dropped.
    pub fn direct_sse(mut self, on: bool) -> Self {
        self.direct_sse = on;
        self
    }

    /// The server-wide budget of buffered SSE bytes (default 128 MiB, at least 64 KiB): what all
    /// SSE streams' queues hold together, with the frame each stream has handed its connection
    /// until the connection takes it (asks for the next one: on the direct path once it is
    /// written to the socket, over HTTP/2 once it is in h2's send buffer). Each queued event
    /// counts its slot (16 bytes) and, when the stream holds it alone (`write`, `send`), its
    /// bytes plus ~80 bytes of bookkeeping; an event written to many streams with
    /// `write_encoded` is stored once, so each of them counts only its slot (and nothing in
    /// transit); a frame of events copied together counts its bytes. A stream's count moves in
    /// 512-byte steps: one that holds anything counts less than 1 KiB more than it holds (one
    /// that holds nothing, nothing), so the server-wide counter, one cache line that writers on
    /// every thread update, moves once per ~32 events written with `write_encoded`, not per
    /// event. Each stream's own bound ([`SseOptions::buffer`](crate::sse::SseOptions::buffer),
    /// 256 KiB by default) keeps one slow client from holding much; this keeps many of them from
    /// holding the server's memory. When it is reached:
    ///
    /// - a stream holding more than its share (the budget ÷ open streams) is full: its overflow
    ///   policy acts on its next write (`Error` refuses the event, `DropOldest` drops its oldest,
    ///   `Close` ends it with `Overflow`, and its client resumes with `Last-Event-ID`), while
    ///   streams whose clients keep up still get every event;
    /// - a new SSE stream is answered `503` with `Retry-After: 5`, and the rest of the server
    ///   keeps serving.
    ///
    /// Streams that filled before the budget was reached keep what they hold until it is read
    /// or they end (up to their own bound), so the queues hold at most about twice the budget.
    /// The gauge `nest_sse_buffered_bytes` shows what is counted. Not counted here, bounded per
    /// connection instead (see `SseBody`): what h2 holds beyond the frame it took (its send
    /// buffer, [`http2_max_send_buf_size`](Self::http2_max_send_buf_size) per stream), what
    /// hyper's HTTP/1.1 writer buffers when the direct path is off, and the kernel's buffers.
    /// Hub subscribers queue nothing of their own.
    pub fn sse_buffer_budget(mut self, bytes: usize) -> Self {
        self.sse_buffer_budget = bytes;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.sse_buffer_budget < 64 * 1024 {
            return Err(Error::config(format!(
                "sse_buffer_budget must be at least 65536 bytes, got {}",
                self.sse_buffer_budget
            )));
        }
        if self.max_head_size < 8192 {
            return Err(Error::config(format!(
                "max_head_size must be at least 8192 bytes, got {}",
                self.max_head_size
            )));
        }
        if self.max_headers == 0 {
            return Err(Error::config("max_headers must be at least 1"));
        }
        if self.header_read_timeout.is_zero() {
            return Err(Error::config(
                "header_read_timeout must be longer than zero",
            ));
        }
        if self.first_byte_timeout.is_zero() {
            return Err(Error::config("first_byte_timeout must be longer than zero"));
        }
        if self.http2_max_streams == 0 {
            return Err(Error::config("http2_max_streams must be at least 1"));
        }
        if self.http2_max_send_buf_size == 0 || self.http2_max_send_buf_size > u32::MAX as usize {
            return Err(Error::config(format!(
                "http2_max_send_buf_size must be between 1 and {} bytes, got {}",
                u32::MAX,
                self.http2_max_send_buf_size
            )));
        }
        if self.tls_handshake_timeout.is_zero() {
            return Err(Error::config(
                "tls_handshake_timeout must be longer than zero",
            ));
        }
        if self.max_tls_handshakes == 0 {
            return Err(Error::config("max_tls_handshakes must be at least 1"));
        }
        if self.max_connections == Some(0) {
            return Err(Error::config(
                "max_connections must be at least 1 (or None)",
            ));
        }
        if self.tcp_keepalive.is_some_and(|d| d.is_zero()) {
            return Err(Error::config(
                "tcp_keepalive must be longer than zero (or None)",
            ));
        }
        if self
            .tcp_user_timeout
            .is_some_and(|d| d.is_zero() || d.as_millis() > u128::from(u32::MAX))
        {
            return Err(Error::config(format!(
                "tcp_user_timeout must be between 1 ms and {} ms (or None), got {:?}",
                u32::MAX,
                self.tcp_user_timeout
            )));
        }
        if self.http2_stall_timeout.is_some_and(|d| d.is_zero()) {
            return Err(Error::config(
                "http2_stall_timeout must be longer than zero (or None)",
            ));
        }
        if self.http2_keep_alive.is_some_and(|d| d.is_zero()) {
            return Err(Error::config(
                "http2_keep_alive must be longer than zero (or None)",
            ));
        }
        Ok(())
    }
}

/// On, unless the test suite runs its second pass: `NEST_TEST_DIRECT_SSE=0` turns the default
/// off in builds with the `test-util` feature (never in an app's build without it), so the same
/// tests check both paths (`scripts/test` runs the SSE suites both ways).
fn direct_sse_default() -> bool {
    #[cfg(any(test, feature = "test-util"))]
    if std::env::var_os("NEST_TEST_DIRECT_SSE").is_some_and(|v| v == "0") {
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tcp_user_timeout` takes 1 ms to `u32::MAX` ms (the socket option's range) or `None`;
    /// anything else is a config error that names it.
    #[test]
    fn tcp_user_timeout_is_checked_against_the_socket_options_range() {
        let max = Duration::from_millis(u64::from(u32::MAX));
        for ok in [None, Some(Duration::from_millis(1)), Some(max)] {
            let config = ServerConfig::default().tcp_user_timeout(ok);
            assert!(config.validate().is_ok(), "{ok:?}");
        }
        for bad in [Duration::ZERO, max + Duration::from_millis(1)] {
            let err = ServerConfig::default()
                .tcp_user_timeout(Some(bad))
                .validate()
                .unwrap_err();
            assert!(
                err.is_config() && err.to_string().contains("tcp_user_timeout"),
                "{bad:?}: {err}"
            );
        }
    }
}
