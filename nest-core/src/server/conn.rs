//! One connection: protocol sniffing under a timeout, then HTTP/1.1 or HTTP/2 with graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_util::task::TaskTracker;

use super::direct;
use super::head_watch::{Busy, HeadWatch, InProgress, Watched};
use super::rewind::Rewind;
use super::same_poll::{PollCount, SamePoll};
use super::stop::{Signal, Slot, Stop, StopWatch};
use crate::app::NestService;
use crate::config::ServerConfig;
use crate::context::{ConnWatch, StreamLink};
use crate::extract::ConnIds;
use crate::Response;

/// A request extension present on every request that came over nest's own TLS listener
/// ([`NestApp::bind_tls`](crate::NestApp::bind_tls)), HTTP/1.1 and HTTP/2 alike: the request was made over HTTPS even when
/// its URI has no scheme (HTTP/1.1 sends only the path). What sets a cookie's `Secure` attribute
/// looks for it (behind a proxy that ends TLS, `X-Forwarded-Proto` says so instead).
///
/// ```
/// use nest_core::server::TlsConnection;
///
/// let req = http::Request::get("/").body(()).unwrap();
/// assert!(req.extensions().get::<TlsConnection>().is_none(), "not over nest's TLS");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsConnection;

/// hyper's default limit on the number of request headers.
const HYPER_MAX_HEADERS: usize = 100;

pub(super) const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Tells HTTP/2's preface from anything else, under the first-byte timeout. Returns the bytes it
/// had to consume (empty in the common case) and whether it is HTTP/2, or `None` when the client
/// closed or stayed silent past the timeout (hyper-util's own sniffing has no timeout:
/// hyperium/hyper#3962).
///
/// It peeks rather than reads: hyper then reads the whole request head itself into its 8 KiB
/// read buffer. Handing hyper a few pre-read bytes first (as hyper-util's `auto` builder does)
/// makes its first read short, and its next `reserve` doubles the buffer to 16 KiB for the life
/// of the connection: 8 KiB more per idle SSE connection. Only a client whose first packet is a
/// strict prefix of the preface (a byte or two of `PRI * …`) makes it read and replay.
async fn sniff(stream: &mut TcpStream, config: &ServerConfig) -> Option<(Bytes, bool)> {
    let sniffing = async {
        let mut peeked = [0u8; H2_PREFACE.len()];
        let n = stream.peek(&mut peeked).await.ok()?;
        let seen = &peeked[..n];
        if n == 0 {
            return None;
        }
        if seen == H2_PREFACE || !H2_PREFACE.starts_with(seen) {
            return Some((Bytes::new(), seen == H2_PREFACE));
        }
        // A strict prefix of the preface: peeking again would return at once with the same
        // bytes, so read them and wait for the rest.
        let mut buf = BytesMut::with_capacity(H2_PREFACE.len());
        loop {
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
            if buf.len() >= H2_PREFACE.len() || !H2_PREFACE.starts_with(&buf) {
                let h2 = buf.starts_with(H2_PREFACE);
                return Some((buf.freeze(), h2));
            }
        }
    };
    tokio::time::timeout(config.first_byte_timeout, sniffing)
        .await
        .ok()
        .flatten()
}

/// hyper's executor for HTTP/2 stream tasks: spawns them on the server's task tracker.
#[derive(Clone)]
struct Tracked(TaskTracker);

impl<F> hyper::rt::Executor<F> for Tracked
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        self.0.spawn(fut);
    }
}

/// The app as a hyper service: each request's future is the app's own boxed future, so hyper's
/// per-connection slot for the in-flight request is one pointer wide.
struct Hyper {
    app: NestService,
    /// The connection is nest's TLS: each request carries [`TlsConnection`].
    tls: bool,
    /// The answer to the connection's first request, when the direct SSE path already ran the
    /// app on it and the response was not a stream (hyper reads the same head again).
    first: Option<Box<Mutex<Option<Response>>>>,
    /// What an HTTP/2 connection's SSE streams attach to: its watch of their polls.
    link: Option<Arc<StreamLink>>,
    /// The ids of the connection's requests.
    ids: ConnIds,
    /// What an HTTP/1 connection's header-read timeout watches ([`HeadWatch`]).
    busy: Option<Arc<Busy>>,
}

impl hyper::service::Service<http::Request<Incoming>> for Hyper {
    type Response = http::Response<Watched>;
    type Error = Infallible;
    type Future = Respond;

    fn call(&self, mut req: http::Request<Incoming>) -> Self::Future {
        let progress = self.busy.as_ref().map(Busy::start);
        if self.tls {
            req.extensions_mut().insert(TlsConnection);
        }
        if let Some(first) = &self.first {
            if let Some(res) = first.lock().unwrap_or_else(|p| p.into_inner()).take() {
                let future = Box::pin(std::future::ready(Ok(res)));
                return Respond { future, progress };
            }
        }
        let future = self.app.handle_on(req, self.link.clone(), Some(&self.ids));
        Respond { future, progress }
    }
}

/// A request's future on a hyper connection: the app's, and (HTTP/1) the request's count in
/// the connection's [`Busy`], which moves into the response's body when there is one.
struct Respond {
    future: crate::app::ResponseFuture,
    progress: Option<InProgress>,
}

impl Future for Respond {
    type Output = Result<http::Response<Watched>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Ok(res) = std::task::ready!(self.future.as_mut().poll(cx));
        let progress = self.progress.take();
        Poll::Ready(Ok(res.map(|body| Watched::new(body, progress))))
    }
}

/// An HTTP/2 connection's stall check (`ServerConfig::http2_stall_timeout`): every half of the
/// timeout it looks whether the connection's SSE streams with a keep-alive were polled since
/// its last look; when none was for the timeout plus their longest keep-alive (a stream whose
/// client takes what it is sent is polled at least once per keep-alive), the connection is
/// stalled.
struct StallCheck {
    link: Arc<StreamLink>,
    timeout: Duration,
    tick: Pin<Box<Sleep>>,
    /// The polls at the last look, and when that was.
    polls: u64,
    looked: Instant,
    /// Since when no watched stream was polled, at the earliest look that saw it.
    quiet_since: Option<Instant>,
}

impl StallCheck {
    fn new(link: Arc<StreamLink>, timeout: Duration) -> Self {
        let now = Instant::now();
        Self {
            link,
            timeout,
            tick: Box::pin(tokio::time::sleep_until(now + timeout / 2)),
            polls: 0,
            looked: now,
            quiet_since: None,
        }
    }

    /// Whether the connection is stalled; registers the next look.
    fn poll_stalled(&mut self, cx: &mut Context<'_>) -> bool {
        while self.tick.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            let Some(watch) = &self.link.watch else {
                return false;
            };
            let (polls, watched, longest_keep_alive) = watch.sample();
            if !watched || polls != self.polls {
                self.quiet_since = None;
            } else {
                // Nothing polled since the last look: quiet since then at least.
                let since = *self.quiet_since.get_or_insert(self.looked);
                if now.duration_since(since) >= self.timeout + longest_keep_alive {
                    return true;
                }
            }
            self.polls = polls;
            self.looked = now;
            self.tick.as_mut().reset(now + self.timeout / 2);
        }
        false
    }
}

/// What a connection goes on with once its protocol and first request are known.
pub(super) enum Next {
    /// A direct SSE stream: the socket, the response head and the body (boxed: the task keeps
    /// this enum's slot for the stream's life).
    /// Unless the flag is set, the head and the body's frames are written as they are (TLS:
    /// framed and sealed already).
    Direct(Box<(TcpStream, Bytes, crate::body::Body, bool)>),
    /// hyper serves the connection.
    Hyper(Pin<Box<dyn Future<Output = ()> + Send>>),
    /// Nothing to serve: the client closed or stalled, or the server is closing.
    Closed,
}

/// Serves one cleartext connection, holding its `slot` until it ends.
///
/// Everything until the connection settles is boxed and freed once it has, and this is a plain
/// `fn` returning the task's future: an `async fn` would keep its arguments (the socket, the
/// app, the config) in slots of their own for the connection's life. The task keeps only what
/// an idle stream needs.
pub(crate) fn serve(
    stream: TcpStream,
    app: NestService,
    config: Arc<ServerConfig>,
    slot: Slot,
) -> impl Future<Output = ()> + Send {
    Serve::opening(slot, |stop| open(stream, app, config, stop))
}

/// A connection task's future (see [`serve`]), written by hand: an `async` block kept the
/// direct stream beside the slot and the opening's leftovers (168 bytes, not the stream's
/// 120), and every byte of it is a byte of every idle connection. Here each state holds what
/// it needs once: the direct stream owns the slot.
pub(super) enum Serve<O> {
    /// Sniffing the protocol and, on the direct path, running the app on the first request.
    Opening { open: Pin<Box<O>>, slot: Slot },
    /// A direct SSE stream (`None` once it parked or ended: see [`super::park`]).
    Direct(Option<direct::Stream>),
    /// hyper serves the connection.
    Hyper {
        conn: Pin<Box<dyn Future<Output = ()> + Send>>,
        /// Held for the connection's life: dropped when it ends.
        _slot: Slot,
    },
    /// The connection ended.
    Done,
}

impl<O> Serve<O> {
    /// A connection's future that holds `slot` until the connection ends and opens with the
    /// future `open` makes from the server's stop signal (boxed: freed once it settled).
    pub(super) fn opening(slot: Slot, open: impl FnOnce(Arc<Stop>) -> O) -> Self {
        let stop = slot.0.clone();
        Serve::Opening {
            open: Box::pin(open(stop)),
            slot,
        }
    }
}

impl<O: Future<Output = Next>> Future for Serve<O> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // Every state is `Unpin`: what is not is boxed.
        let this = self.get_mut();
        loop {
            match this {
                Serve::Opening { open, .. } => {
                    let Poll::Ready(next) = open.as_mut().poll(cx) else {
                        return Poll::Pending;
                    };
                    // The finished opening's box is freed here; the slot moves on.
                    let Serve::Opening { slot, .. } = std::mem::replace(this, Serve::Done) else {
                        return Poll::Ready(());
                    };
                    *this = match next {
                        Next::Direct(parts) => {
                            // Unboxed in a call of its own: the box is freed now.
                            let (sock, head, body, chunked) = unbox(parts);
                            Serve::Direct(Some(direct::Stream::new(
                                sock, head, body, slot, chunked,
                            )))
                        }
                        Next::Hyper(conn) => Serve::Hyper { conn, _slot: slot },
                        // The slot is given back now.
                        Next::Closed => return Poll::Ready(()),
                    };
                }
                Serve::Direct(stream) => {
                    // Ready once the stream ended (its socket, then its slot, dropped now) or
                    // parked (it lives on in its node, and this task ends).
                    if super::park::poll_or_park(stream, cx).is_pending() {
                        return Poll::Pending;
                    }
                    *this = Serve::Done;
                    return Poll::Ready(());
                }
                Serve::Hyper { conn, .. } => {
                    if conn.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    *this = Serve::Done;
                    return Poll::Ready(());
                }
                Serve::Done => return Poll::Ready(()),
            }
        }
    }
}

/// Moves a value out of its box and frees the box (`*boxed` in a match arm keeps the
/// allocation until the arm ends: for a stream, its whole life).
#[allow(clippy::boxed_local)] // The box is the point: it is freed on return.
fn unbox<T>(boxed: Box<T>) -> T {
    *boxed
}

/// Sniffs the protocol and, for a first request that can stream events, runs the direct path's
/// start; gives back how the connection goes on.
async fn open(
    mut stream: TcpStream,
    app: NestService,
    config: Arc<ServerConfig>,
    stop: Arc<Stop>,
) -> Next {
    let sniffed = tokio::select! {
        sniffed = sniff(&mut stream, &config) => sniffed,
        // Shutting down: a connection that has not sent a request yet is closed.
        () = stop.token.cancelled() => None,
    };
    let Some((prefix, h2)) = sniffed else {
        tracing::debug!("connection closed or stalled before its first request");
        return Next::Closed;
    };
    let mut first = None;
    if config.direct_sse && !h2 && prefix.is_empty() {
        match direct::first(&mut stream, &app, &config, &stop).await {
            direct::First::Stream(head, body) => {
                return Next::Direct(Box::new((stream, head, body, true)));
            }
            direct::First::Hyper(res) => first = res,
            direct::First::Closed => return Next::Closed,
        }
    }
    // Boxed: hyper's connection state stays out of the task of a direct SSE connection.
    Next::Hyper(Box::pin(async move {
        serve_io(
            TokioIo::new(Rewind::new(prefix, stream)),
            h2,
            false,
            app,
            first,
            &config,
            &stop,
        )
        .await;
    }))
}

/// Serves HTTP/1.1 or HTTP/2 on a connection whose protocol is known (sniffed, or ALPN); `tls`
/// when it is nest's TLS.
pub(crate) async fn serve_io<I>(
    io: I,
    h2: bool,
    tls: bool,
    app: NestService,
    first: Option<Response>,
    config: &ServerConfig,
    stop: &Stop,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let _open = crate::metrics::ConnectionOpen::new(h2);
    let polls = (!tls).then(PollCount::default);
    let io = SamePoll::new(io, polls.clone());
    let watch = h2
        .then_some(config.http2_stall_timeout)
        .flatten()
        .map(|timeout| {
            let link = StreamLink {
                shutdown: app.shutdown_token(),
                watch: Some(ConnWatch::default()),
            };
            (Arc::new(link), timeout)
        });
    let busy = (!h2).then(Arc::<Busy>::default);
    let svc = Hyper {
        app,
        tls,
        first: first.map(|res| Box::new(Mutex::new(Some(res)))),
        link: watch.as_ref().map(|(link, _)| link.clone()),
        ids: ConnIds::default(),
        busy: busy.clone(),
    };
    // The connection, the stop signal and (HTTP/2) the stall check in one task (see
    // `StopWatch`).
    macro_rules! drive {
        ($conn:expr, $stall:expr, $head:expr) => {{
            let conn = $conn;
            let mut stall: Option<StallCheck> = $stall;
            let mut head: Option<HeadWatch> = $head;
            tokio::pin!(conn);
            let signal = stop.token.cancelled();
            tokio::pin!(signal);
            let mut watch = StopWatch::default();
            std::future::poll_fn(|cx| {
                if let Some(polls) = &polls {
                    polls.tick();
                }
                if stall.as_mut().is_some_and(|stall| stall.poll_stalled(cx)) {
                    tracing::debug!(
                        "HTTP/2 connection closed: its SSE streams were not polled for the stall timeout"
                    );
                    return Poll::Ready(Ok(()));
                }
                if head.as_mut().is_some_and(|head| head.poll_idle(cx)) {
                    tracing::debug!(
                        "HTTP/1 connection closed: no request head for the header read timeout"
                    );
                    return Poll::Ready(Ok(()));
                }
                match watch.poll_signal(signal.as_mut(), stop, cx) {
                    Signal::Running => {}
                    Signal::Closing => conn.as_mut().graceful_shutdown(),
                    Signal::Deadline => {
                        tracing::debug!("grace period over: connection closed");
                        return Poll::Ready(Ok(()));
                    }
                }
                conn.as_mut().poll(cx)
            })
            .await
        }};
    }
    let result = if h2 {
        // Boxed: HTTP/2's connection state is large, and keeping it out of the future every
        // HTTP/1 connection's task carries keeps idle HTTP/1 connections (most SSE clients) small.
        // Stream tasks are spawned on the server's tracker, so shutdown waits for every
        // stream's body (and its cancel hook), not only for the connection.
        let conn = http2::Builder::new(Tracked(stop.tasks.clone()))
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(config.max_head_size).unwrap_or(u32::MAX))
            .max_concurrent_streams(config.http2_max_streams)
            .max_send_buf_size(config.http2_max_send_buf_size)
            .keep_alive_interval(config.http2_keep_alive)
            .serve_connection(io, svc);
        let stall = watch.map(|(link, timeout)| StallCheck::new(link, timeout));
        Box::pin(async move { drive!(conn, stall, None) }).await
    } else {
        // The builder lives in a block: one in scope at the await would stay in the task's
        // future for the connection's life.
        let conn = {
            let mut builder = http1::Builder::new();
            // nest keeps the header-read timeout itself (`HeadWatch`): hyper's costs every
            // keep-alive request a turn of its loop.
            builder
                .header_read_timeout(None)
                // Both: `max_buf_size` alone is checked only while a head is incomplete, so a
                // large head that arrives in one read got through.
                .max_buf_size(config.max_head_size)
                .max_header_size(config.max_head_size)
                .keep_alive(true)
                .writev(true);
            // hyper's own limit is 100 on an uninitialised array; setting any limit makes it
            // initialise a vector of that many headers for every request (1-2 % of a small
            // request's CPU), so only a different limit is set.
            if config.max_headers != HYPER_MAX_HEADERS {
                builder.max_headers(config.max_headers);
            }
            builder.serve_connection(io, svc)
        };
        let period = config.header_read_timeout;
        drive!(conn, None, busy.map(|busy| HeadWatch::new(busy, period)))
    };
    match result {
        Ok(()) => tracing::trace!("connection closed"),
        Err(err) => tracing::debug!(error = %err, "connection ended with an error"),
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    /// A first packet that is a strict prefix of HTTP/2's preface ("P") is read, not peeked
    /// (peeking again would spin), the sniff waits for more, and the bytes are handed back for
    /// replay. Deterministic: the server socket is readable before the sniff is polled.
    #[tokio::test]
    async fn a_partial_preface_is_read_waited_on_and_replayed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        client.write_all(b"P").await.unwrap();
        server.readable().await.unwrap();
        let config = crate::ServerConfig::default();
        let mut sniff = Box::pin(super::sniff(&mut server, &config));
        assert!(
            futures_util::poll!(sniff.as_mut()).is_pending(),
            "one byte of the preface must not decide the protocol"
        );
        client.write_all(b"OST / HTTP/1.1\r\n").await.unwrap();
        let (prefix, h2) = sniff.await.expect("the client sent bytes");
        assert!(!h2);
        assert!(prefix.starts_with(b"PO"), "{prefix:?}");
        assert!(b"POST / HTTP/1.1\r\n".starts_with(&prefix), "{prefix:?}");
    }

    /// The common case consumes nothing: hyper reads the whole request itself.
    #[tokio::test]
    async fn an_http1_request_is_peeked_not_consumed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let config = crate::ServerConfig::default();
        let (prefix, h2) = super::sniff(&mut server, &config).await.unwrap();
        assert!(!h2 && prefix.is_empty());
        let mut buf = [0u8; 3];
        tokio::io::AsyncReadExt::read_exact(&mut server, &mut buf)
            .await
            .unwrap();
        assert_eq!(&buf, b"GET");
    }

    /// Every connection's task carries this future: keep it small (the sniff, the direct path's
    /// start and hyper's state are boxed; what stays is an idle direct SSE stream's state).
    /// tokio's task cell is the future plus 112 bytes (header, scheduler, id, stage tag, the
    /// tracker's token, trailer) rounded up to 128: up to 144 bytes the cell is 256 bytes; 8
    /// more and every connection costs 128 bytes more. (120 when written, release and debug
    /// alike: the direct stream and the state's tag in its niche.)
    #[tokio::test]
    async fn the_connection_future_stays_small() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let app = crate::NestApp::new().into_service().unwrap();
        let config = std::sync::Arc::new(crate::ServerConfig::default());
        let fut = super::serve(
            stream,
            app,
            config,
            super::Slot(std::sync::Arc::new(super::Stop::new(
                tokio_util::sync::CancellationToken::new(),
            ))),
        );
        let size = std::mem::size_of_val(&fut);
        eprintln!("connection future: {size} bytes");
        assert!(size <= 144, "the connection future grew to {size} bytes");
    }

    /// The stall check looks every half timeout and finds a connection stalled at the first look
    /// once its watched streams were not polled for the timeout plus their longest keep-alive:
    /// with 300 ms and a 200 ms keep-alive, not at 450 ms, stalled at 600 ms; a stream polled
    /// between every two looks never stalls it. Deterministic: tokio's paused clock.
    #[tokio::test(start_paused = true)]
    async fn a_connection_is_stalled_at_the_first_look_past_the_timeout_and_keep_alive() {
        use std::sync::Arc;
        use std::time::Duration;

        use crate::context::{ConnWatch, StreamLink};

        let link = Arc::new(StreamLink {
            shutdown: tokio_util::sync::CancellationToken::new(),
            watch: Some(ConnWatch::default()),
        });
        let watch = link.watch.as_ref().unwrap();
        watch.join(Duration::from_millis(200));
        let step = Duration::from_millis(150);
        let mut check = super::StallCheck::new(link.clone(), Duration::from_millis(300));
        async fn look(check: &mut super::StallCheck) -> bool {
            std::future::poll_fn(|cx| std::task::Poll::Ready(check.poll_stalled(cx))).await
        }
        // Polled between every two looks: never stalled.
        for _ in 0..10 {
            watch.polled();
            tokio::time::advance(step).await;
            assert!(!look(&mut check).await);
            // The next look half a timeout on (not at once: a look per wake would spin).
            let next = tokio::time::Instant::now() + step;
            assert_eq!(check.tick.deadline(), next);
        }
        // Then never again: quiet since the last look that saw a poll.
        for looks in 1..=3 {
            tokio::time::advance(step).await;
            assert!(
                !look(&mut check).await,
                "{looks} quiet looks (450 ms) are too early"
            );
        }
        tokio::time::advance(step).await;
        assert!(look(&mut check).await, "quiet for 600 ms: stalled");
        // Once no stream is watched, nothing is stalled.
        watch.leave();
        let mut check = super::StallCheck::new(link, Duration::from_millis(300));
        for _ in 0..10 {
            tokio::time::advance(step).await;
            assert!(!look(&mut check).await);
        }
    }
}
