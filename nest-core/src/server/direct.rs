//! The direct HTTP/1.1 SSE path: an SSE response written straight to the socket.
//!
//! hyper keeps an 8 KiB read buffer and an 8 KiB write buffer per HTTP/1.1 connection for its
//! whole life, and frames every event with chunked encoding. Once an SSE response has started,
//! nothing more is read from its connection but its close, so neither is needed. For the first
//! request of a cleartext connection, when it can be an SSE stream (`GET`, HTTP/1.1, no body, an
//! SSE route or `Accept: text/event-stream`), [`first`] peeks at its head without consuming it,
//! parses it with `httparse` (the parser hyper uses, with hyper's limits), and runs the app on it
//! exactly as hyper would. Then:
//!
//! - a `200 text/event-stream` response with a streaming body is written here: the head is
//!   consumed from the socket, the response head written as hyper writes it plus
//!   `connection: close`, then each frame as it comes, chunked as hyper chunks it (one chunk per
//!   frame, so a proxy that passes chunks on passes each event on, and a client tells a
//!   finished stream from a broken connection). The socket is watched for its end (a read of
//!   EOF) while the stream is idle, so the cancel hook runs as soon as the client goes away, as
//!   with hyper. The connection closes after the stream: bytes the client sent after its
//!   request were dropped, not kept for a next request;
//! - any other response is handed to hyper with the connection untouched: hyper reads the same
//!   head and answers it with the response already made, then serves the rest of
//!   the connection as always;
//! - a head that is incomplete in the first packet, invalid, over a limit, or anything but a
//!   bodiless `GET` goes to hyper without the app having run, so hyper's answers (400, 431, the
//!   header read timeout) are unchanged.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};
use http_body::Body as _;
use tokio::io::{AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;

use super::stop::{Slot, Stop, UNREGISTERED};
use crate::app::NestService;
use crate::body::Body;
use crate::config::ServerConfig;
use crate::Response;

/// The most bytes of a first request head looked at (and the most kept while the app runs).
/// A longer head (rare: large cookies) goes to hyper.
const PEEK: usize = 8 * 1024;

/// The most reads of unexpected client bytes per wake before yielding: a client that sends
/// without end cannot hold the thread.
const READS_PER_WAKE: usize = 16;

/// The most bytes a client may send after its request while its stream runs (read and
/// dropped: stray bytes, a pipelined request that will never be served since the stream ends the
/// connection). Past it the connection is reset: a client that sends without end would
/// otherwise keep the server reading and discarding for the stream's life.
pub(super) const DISCARD_LIMIT: u16 = 16 * 1024;

/// What the first request of a connection turned into.
pub(super) enum First {
    /// An SSE response to write here: its head (already serialized) and its body.
    Stream(Bytes, Body),
    /// Serve the connection with hyper, answering its first request with this response when
    /// there is one (the app already ran on it).
    Hyper(Option<Response>),
    /// The connection closed, or the server is closing, before there was anything to answer.
    Closed,
}

/// Peeks at the first request and, when it can be an SSE stream, runs the app on it.
pub(super) async fn first(
    stream: &mut TcpStream,
    app: &NestService,
    config: &ServerConfig,
    stop: &Stop,
) -> First {
    let Some((request, head_len)) = peek(stream, app, config).await else {
        return First::Hyper(None);
    };
    let Some(res) = answer(request, app, stop).await else {
        return First::Closed;
    };
    if !is_stream(&res) {
        return First::Hyper(Some(res));
    }
    // The head was peeked, so it is in the socket's receive buffer: consume exactly it.
    let mut head = vec![0u8; head_len];
    if stream.read_exact(&mut head).await.is_err() {
        return First::Closed;
    }
    let (parts, body) = res.into_parts();
    First::Stream(response_head(parts.status, &parts.headers), body)
}

/// Runs the app on a first request the direct path may serve: `None` when the grace period
/// of a shutdown ended first (the connection closes, as hyper would close it).
pub(super) async fn answer(
    request: http::Request<Body>,
    app: &NestService,
    stop: &Stop,
) -> Option<Response> {
    let running = app.handle(request);
    tokio::select! {
        res = running => match res {
            Ok(res) => Some(res),
            Err(never) => match never {},
        },
        () = stop.deadline.cancelled() => None,
    }
}

/// Parses the first request from what the socket holds, without consuming it: the request and
/// the length of its head. `None`: hyper serves it (see [`candidate`]).
async fn peek(
    stream: &TcpStream,
    app: &NestService,
    config: &ServerConfig,
) -> Option<(http::Request<Body>, usize)> {
    let mut buf = vec![0u8; PEEK.min(config.max_head_size)];
    let n = stream.peek(&mut buf).await.ok()?;
    candidate(&buf[..n], app, config)
}

/// The first request in `buf` when the direct path may serve it: the request and the length of
/// its head. `None`: hyper serves it (see [`parse_head`]; a head longer than [`PEEK`] bytes or
/// `max_head_size` goes to hyper too), or it is not for an SSE route and does not accept
/// `text/event-stream`.
pub(super) fn candidate(
    buf: &[u8],
    app: &NestService,
    config: &ServerConfig,
) -> Option<(http::Request<Body>, usize)> {
    let buf = &buf[..buf.len().min(PEEK.min(config.max_head_size))];
    let (parts, head_len) = parse_head(buf, config.max_headers)?;
    let accepts_events = parts.headers.get_all(header::ACCEPT).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.to_ascii_lowercase().contains("text/event-stream"))
    });
    if !accepts_events && !app.is_sse_get(parts.uri.path()) {
        return None;
    }
    Some((http::Request::from_parts(parts, Body::empty()), head_len))
}

/// Parses `buf` as the head of a bodiless HTTP/1.1 `GET` with at most `max_headers` headers:
/// the request and the length of its head. `None` for anything else: an incomplete or invalid
/// head, too many headers, another method or version, or a head that announces a body, an
/// upgrade or an expectation (hyper's business).
pub(crate) fn parse_head(buf: &[u8], max_headers: usize) -> Option<(http::request::Parts, usize)> {
    let mut headers = vec![httparse::EMPTY_HEADER; max_headers];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        _ => return None,
    };
    if req.method != Some("GET") || req.version != Some(1) {
        return None;
    }
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = Method::GET;
    parts.version = Version::HTTP_11;
    parts.uri = req.path?.parse().ok()?;
    parts.headers.reserve(req.headers.len());
    for h in req.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(h.value).ok()?;
        parts.headers.append(name, value);
    }
    let hyper_only = [
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::EXPECT,
    ];
    if hyper_only.iter().any(|h| parts.headers.contains_key(h)) {
        return None;
    }
    Some((parts, head_len))
}

/// A response this path writes: `200`, `text/event-stream`, no length, a body still to come.
pub(super) fn is_stream(res: &Response) -> bool {
    let headers = res.headers();
    res.status() == StatusCode::OK
        && headers
            .get(header::CONTENT_TYPE)
            .is_some_and(crate::sse::is_event_stream)
        && !headers.contains_key(header::CONTENT_LENGTH)
        && !headers.contains_key(header::TRANSFER_ENCODING)
        && !res.body().is_end_stream()
}

/// The response head as hyper writes it (lower-case names in the map's order, then
/// `transfer-encoding: chunked` and `date`), with `connection: close`: the connection is not
/// reused after the stream.
pub(super) fn response_head(status: StatusCode, headers: &HeaderMap) -> Bytes {
    let mut head = BytesMut::with_capacity(256);
    head.put_slice(b"HTTP/1.1 ");
    head.put_slice(status.as_str().as_bytes());
    head.put_u8(b' ');
    head.put_slice(status.canonical_reason().unwrap_or("").as_bytes());
    head.put_slice(b"\r\n");
    for (name, value) in headers {
        if name == header::CONNECTION || name == "keep-alive" {
            continue;
        }
        if name == header::TRANSFER_ENCODING {
            continue;
        }
        head.put_slice(name.as_str().as_bytes());
        head.put_slice(b": ");
        head.put_slice(value.as_bytes());
        head.put_slice(b"\r\n");
    }
    head.put_slice(b"transfer-encoding: chunked\r\n");
    if !headers.contains_key(header::DATE) {
        head.put_slice(b"date: ");
        head.put_slice(httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes());
        head.put_slice(b"\r\n");
    }
    head.put_slice(b"connection: close\r\n\r\n");
    head.freeze()
}

/// How a directly written stream ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// The body ended and its last chunk is written: close.
    Done,
    /// The client closed or reset the connection.
    Gone,
    /// The body failed: reset the connection, so the client sees an error and not an end.
    Failed,
    /// The grace period of a shutdown is over.
    Deadline,
    /// The client sent more than [`DISCARD_LIMIT`] bytes after its request: reset.
    Flooded,
}

/// Writes the response head, then the body's frames, until the body ends, the client goes
/// away or the grace period of a shutdown is over.
///
/// A future written by hand, not an `async fn`: it is the connection task's whole state for
/// the stream's life, and an `async fn` keeps its arguments and every local that lives across
/// an await in slots of their own (the head, the references a polling closure captures): here
/// each field exists once. Every byte of it is a byte of every idle connection (see the test
/// `an_idle_stream_stays_small`).
///
/// It holds no stop future: the body ends at the shutdown on its own (it holds the app's
/// token), and the end of the grace period reaches the stream through its waker in
/// [`Stop`]'s registry of direct streams (see [`DirectStreams`](super::stop::DirectStreams)), under the key it keeps.
pub(super) struct Stream {
    // Dropped first when the task ends early: the cancel hook runs with the reason the body
    // knows, while the socket is still open.
    body: Option<Body>,
    sock: TcpStream,
    pending: Out,
    // The socket's read interest is registered with a waker of its own, so a wake for an event
    // (the common case) does not poll the read side again (a lock in tokio's registration per
    // poll); only a wake from the socket itself does.
    reads: Option<Arc<ReadWake>>,
    // The stream's key in the stop's registry of direct streams (`UNREGISTERED` until its
    // first poll, and once it ended).
    key: u32,
    // Bytes the client sent after its request, read and dropped (at most `DISCARD_LIMIT` plus
    // one read). Two bytes, not four: with `key` and `_open` the fields after the pointers fit
    // in one word.
    discarded: u16,
    _open: crate::metrics::ConnectionOpen,
    // The body's frames are framed here as chunks (cleartext); `false` when they come framed
    // and sealed already (TLS: see `tls_direct`), so they are written as they are, and the body
    // ends with its own last chunk.
    chunked: bool,
    // Whether the stream may park once idle (see `super::park`): no frame written since its
    // head, or its last frame came after a silence of at least `PARK_AFTER_MS`; and when (ms
    // on the streams' clock, wrapping) it last wrote.
    quiet: bool,
    last_write_ms: u32,
    // The connection's place on the server, given back last (after the socket closed): the
    // stream owns it, so the connection's future holds no reference into itself.
    slot: Slot,
}

/// How long a stream must have written nothing before the frame after which it parks when it
/// is idle again (see [`super::park`]): a stream with events more often than this keeps its
/// task; one with an event now and then, or only keep-alives, is parked between them.
pub(super) const PARK_AFTER_MS: u32 = 1000;

impl Stream {
    /// The stream of `body` on `sock`, after `head` (the response head, not written yet), on the
    /// connection that holds `slot`. Unless `chunked`, the head and the body's frames are
    /// written as they are (already framed and sealed for TLS), with nothing after the body.
    pub(super) fn new(sock: TcpStream, head: Bytes, body: Body, slot: Slot, chunked: bool) -> Self {
        Self {
            body: Some(body),
            sock,
            pending: Out::raw(head),
            reads: None,
            key: UNREGISTERED,
            discarded: 0,
            _open: crate::metrics::ConnectionOpen::new(false),
            chunked,
            quiet: true,
            last_write_ms: crate::context::clock_ms() as u32,
            slot,
        }
    }

    /// The server's stop signal and tracker of connection tasks.
    pub(super) fn stop(&self) -> &Stop {
        &self.slot.0
    }

    /// Whether the stream is idle and may park (see [`super::park`]): its body is waited for,
    /// nothing is left to write, and it is quiet (its last frame came after a silence of
    /// [`PARK_AFTER_MS`] or more, or it wrote none yet). Asked after a pending poll.
    pub(super) fn parkable(&self) -> bool {
        self.quiet && self.body.is_some() && self.pending.is_empty()
    }
}

impl Future for Stream {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // No field is pinned (the socket and the body are `Unpin`).
        self.get_mut().poll_with(cx, false)
    }
}

impl Stream {
    /// Polls the stream. `parked`: a poll of a stream about to park, where every waker (the
    /// body's, the socket's read interest, the stop registry's) is registered as `cx`'s, and
    /// the stream keeps no read waker of its own (48 bytes less while parked; it makes one
    /// again on its next task's first poll).
    pub(super) fn poll_with(&mut self, cx: &mut Context<'_>, parked: bool) -> Poll<()> {
        let this = self;
        let stop = &*this.slot.0;
        let Some(body) = this.body.as_mut() else {
            return Poll::Ready(());
        };
        let end = 'end: {
            if stop.is_forced() {
                break 'end End::Deadline;
            }
            if parked {
                if stop.register_direct(&mut this.key, cx.waker()) {
                    break 'end End::Deadline;
                }
                this.reads = None;
                if let Poll::Ready(end) = watch_reads(&this.sock, &mut this.discarded, cx) {
                    break 'end end;
                }
            }
            let watch = match &this.reads {
                _ if parked => None,
                Some(wake) if wake.task.will_wake(cx.waker()) => wake
                    .fired
                    .swap(false, Ordering::AcqRel)
                    .then(|| wake.clone()),
                // First poll, or the task's waker changed: a fresh registration, here and in
                // the stop's registry.
                _ => {
                    if stop.register_direct(&mut this.key, cx.waker()) {
                        break 'end End::Deadline;
                    }
                    Some(ReadWake::new(cx.waker()))
                }
            };
            if let Some(wake) = watch {
                let waker = Waker::from(wake.clone());
                this.reads = Some(wake);
                let mut cx = Context::from_waker(&waker);
                if let Poll::Ready(end) = watch_reads(&this.sock, &mut this.discarded, &mut cx) {
                    break 'end end;
                }
            }
            let mut wrote = false;
            match write_frames(
                &mut this.sock,
                &mut this.pending,
                body,
                this.chunked,
                &mut wrote,
                cx,
            ) {
                Poll::Ready(end) => end,
                Poll::Pending => {
                    if wrote {
                        let now = crate::context::clock_ms() as u32;
                        this.quiet = now.wrapping_sub(this.last_write_ms) >= PARK_AFTER_MS;
                        this.last_write_ms = now;
                    }
                    return Poll::Pending;
                }
            }
        };
        match end {
            End::Done => {
                // FIN after the last chunk (a socket's shutdown does not wait); the drop closes.
                let _ = Pin::new(&mut this.sock).poll_shutdown(cx);
            }
            End::Failed | End::Flooded => {
                if matches!(end, End::Flooded) {
                    tracing::debug!("client sent too much after its SSE request: reset");
                }
                // SO_LINGER 0: the close resets (it does not block), so a client cannot take a
                // failure for an end.
                let _ =
                    socket2::SockRef::from(&this.sock).set_linger(Some(std::time::Duration::ZERO));
            }
            End::Gone => tracing::trace!("client closed its SSE connection"),
            End::Deadline => tracing::debug!("grace period over: connection closed"),
        }
        // The body is dropped before the socket: its cancel hook runs now, with the reason it
        // knows.
        this.body = None;
        stop.direct_streams().remove(&mut this.key);
        Poll::Ready(())
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        // A stream dropped before it ended (its task aborted): its waker leaves the registry
        // (it would keep the task's memory alive).
        if self.key != UNREGISTERED {
            self.slot.0.direct_streams().remove(&mut self.key);
        }
    }
}

/// The waker the socket's read interest is registered with: records that the socket woke the
/// task, then wakes it.
struct ReadWake {
    fired: AtomicBool,
    task: Waker,
}

impl ReadWake {
    fn new(task: &Waker) -> Arc<Self> {
        Arc::new(Self {
            fired: AtomicBool::new(false),
            task: task.clone(),
        })
    }
}

impl Wake for ReadWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Ordering::Release);
        self.task.wake_by_ref();
    }
}

/// Reads (and drops) whatever the client sends after its request, to notice its end: a read of
/// EOF, or an error. Pending while the client is silent; `Flooded` once it sent more than
/// [`DISCARD_LIMIT`] bytes (counted in `discarded`).
fn watch_reads(sock: &TcpStream, discarded: &mut u16, cx: &mut Context<'_>) -> Poll<End> {
    let mut scratch = [0u8; 256];
    for _ in 0..READS_PER_WAKE {
        match sock.poll_read_ready(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(_)) => return Poll::Ready(End::Gone),
            Poll::Ready(Ok(())) => match sock.try_read(&mut scratch) {
                Ok(0) => return Poll::Ready(End::Gone),
                Ok(n) => {
                    // n <= 256 and the count at most the limit (16 KiB) before: no overflow
                    // of the u16 before the limit is seen.
                    *discarded += n as u16;
                    if *discarded > DISCARD_LIMIT {
                        return Poll::Ready(End::Flooded);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return Poll::Ready(End::Gone),
            },
        }
    }
    // Still more to read: come back after the others had their turn.
    cx.waker().wake_by_ref();
    Poll::Pending
}

/// Bytes on their way to the socket: a chunk's size line, its data and its CRLF (or raw bytes:
/// the head, the last chunk), written with one vectored write.
///
/// 40 bytes (the data and three counters): an idle stream keeps one. The size line is not kept
/// but made again from the data's length on each write that still has some of it to write:
/// the data is written after the whole line, so until then it is whole and its length is the
/// chunk's.
struct Out {
    data: Bytes,
    /// The chunk-size line's length (0 for raw bytes); `size_at` of it is written.
    size_len: u8,
    size_at: u8,
    /// How much of the CRLF after the data is still to write (0 for raw bytes).
    crlf_left: u8,
}

impl Out {
    fn raw(data: Bytes) -> Self {
        Self {
            data,
            size_len: 0,
            size_at: 0,
            crlf_left: 0,
        }
    }

    /// `data` as one HTTP/1.1 chunk (never empty: an empty chunk would end the body).
    fn chunk(data: Bytes) -> Self {
        let size_len = format_size(data.len(), &mut [0u8; 18]);
        Self {
            data,
            size_len,
            size_at: 0,
            crlf_left: 2,
        }
    }

    fn is_empty(&self) -> bool {
        self.size_at == self.size_len && self.data.is_empty() && self.crlf_left == 0
    }

    /// Writes as much as the socket takes; Ready(Ok) once all is written.
    fn poll_write(&mut self, sock: &mut TcpStream, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        const CRLF: &[u8] = b"\r\n";
        while !self.is_empty() {
            let mut size = [0u8; 18];
            if self.size_at < self.size_len {
                // Nothing of the data is written yet: its length is the chunk's.
                format_size(self.data.len(), &mut size);
            }
            let crlf = &CRLF[2 - usize::from(self.crlf_left)..];
            let parts = [
                io::IoSlice::new(&size[usize::from(self.size_at)..usize::from(self.size_len)]),
                io::IoSlice::new(&self.data),
                io::IoSlice::new(crlf),
            ];
            let mut n = match Pin::new(&mut *sock).poll_write_vectored(cx, &parts) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Pending => return Poll::Pending,
            };
            let size_left = usize::from(self.size_len - self.size_at);
            let step = n.min(size_left);
            // Both below 18: the casts cannot truncate.
            self.size_at += step as u8;
            n -= step;
            let step = n.min(self.data.len());
            self.data.advance(step);
            n -= step;
            self.crlf_left -= n.min(usize::from(self.crlf_left)) as u8;
        }
        // An advanced-to-the-end `Bytes` still holds its allocation: the response head (256
        // bytes) or the last large frame (up to 64 KiB) would stay with an idle stream.
        self.data = Bytes::new();
        Poll::Ready(Ok(()))
    }
}

/// Writes `len` in hex followed by CRLF into `buf`; returns the line's length.
pub(super) fn format_size(len: usize, buf: &mut [u8; 18]) -> u8 {
    let digits = if len == 0 {
        1
    } else {
        (usize::BITS - len.leading_zeros()).div_ceil(4) as usize
    };
    for (i, digit) in buf[..digits].iter_mut().enumerate() {
        let nibble = (len >> (4 * (digits - 1 - i))) & 0xf;
        *digit = b"0123456789abcdef"[nibble];
    }
    buf[digits] = b'\r';
    buf[digits + 1] = b'\n';
    (digits + 2) as u8
}

/// The largest frame written as one contiguous chunk from the stack (one `send`, no iovecs).
const SMALL_CHUNK: usize = 2048;

/// Writes `data` as one chunk assembled on the stack: one plain write, which costs the kernel
/// less than a three-part vectored one (`writev` goes through the VFS and imports an iovec).
/// What the socket does not take now becomes `pending`. `Some` only when the client is gone.
fn write_small(
    sock: &mut TcpStream,
    data: &[u8],
    pending: &mut Out,
    cx: &mut Context<'_>,
) -> Option<End> {
    let mut buf = [0u8; SMALL_CHUNK + 20];
    let mut size = [0u8; 18];
    let line = usize::from(format_size(data.len(), &mut size));
    let len = line + data.len() + 2;
    buf[..line].copy_from_slice(&size[..line]);
    buf[line..line + data.len()].copy_from_slice(data);
    buf[len - 2..len].copy_from_slice(b"\r\n");
    let written = match Pin::new(&mut *sock).poll_write(cx, &buf[..len]) {
        Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Some(End::Gone),
        Poll::Ready(Ok(n)) => n,
        Poll::Pending => 0,
    };
    if written < len {
        *pending = Out::raw(Bytes::copy_from_slice(&buf[written..len]));
    }
    None
}

/// The chunk that ends a chunked body.
pub(super) const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Writes what is pending, then the body's next frames (one chunk each, or as they are unless
/// `chunked`), until the socket or the body is not ready. Ready when the body ended (its last
/// chunk written) or failed, or the client is gone.
fn write_frames(
    sock: &mut TcpStream,
    pending: &mut Out,
    body: &mut Body,
    chunked: bool,
    wrote: &mut bool,
    cx: &mut Context<'_>,
) -> Poll<End> {
    let mut ended = false;
    loop {
        match pending.poll_write(sock, cx) {
            Poll::Ready(Ok(())) if ended => return Poll::Ready(End::Done),
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(_)) => return Poll::Ready(End::Gone),
            Poll::Pending => return Poll::Pending,
        }
        match Pin::new(&mut *body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                // Trailers are not sent (hyper sends them only when the request allowed them).
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                *wrote = true;
                if !chunked {
                    *pending = Out::raw(data);
                } else if data.len() > SMALL_CHUNK {
                    *pending = Out::chunk(data);
                } else if !data.is_empty() {
                    if let Some(end) = write_small(sock, &data, pending, cx) {
                        return Poll::Ready(end);
                    }
                }
            }
            Poll::Ready(Some(Err(err))) => {
                tracing::debug!(error = %err, "SSE body failed");
                return Poll::Ready(End::Failed);
            }
            Poll::Ready(None) => {
                if chunked {
                    *pending = Out::raw(Bytes::from_static(LAST_CHUNK));
                }
                ended = true;
            }
            Poll::Pending => return Poll::Pending,
        }
    }
}

/// A connected pair over loopback for the server's unit tests: (the client's end, the
/// server's end).
#[cfg(test)]
pub(super) async fn socket_pair() -> (TcpStream, TcpStream) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (client, server)
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;

    #[tokio::test]
    async fn written_bytes_are_released_at_once() {
        let (client, mut sock) = socket_pair().await;
        let probe = Bytes::from(vec![b'x'; 256]);
        let outs: [fn(Bytes) -> Out; 2] = [Out::raw, Out::chunk];
        for make in outs {
            let mut out = make(probe.clone());
            std::future::poll_fn(|cx| out.poll_write(&mut sock, cx))
                .await
                .unwrap();
            // Nothing of the written bytes stays with the (idle) stream.
            assert!(out.is_empty());
            assert!(probe.is_unique(), "the written bytes are still held");
        }
        drop(client);
    }

    /// A stream registers its waker for the end of the grace period on its first poll, and a
    /// stream dropped before it ended (its task aborted, say) takes it off again: a waker left
    /// there would keep the task's memory for the server's life.
    #[tokio::test]
    async fn a_dropped_stream_leaves_the_stop_registry() {
        let (client, sock) = socket_pair().await;
        let stop = Arc::new(Stop::new(tokio_util::sync::CancellationToken::new()));
        let body = Body::from_stream(futures_util::stream::pending::<Result<Bytes, Infallible>>());
        let mut stream = Box::pin(Stream::new(
            sock,
            Bytes::from_static(b"HTTP/1.1 200 OK\r\n\r\n"),
            body,
            Slot(stop.clone()),
            true,
        ));
        assert!(futures_util::poll!(stream.as_mut()).is_pending());
        assert_eq!(stop.direct_streams().registered(), 1);
        drop(stream);
        assert_eq!(stop.direct_streams().registered(), 0);
        drop(client);
    }

    /// A stream may park while it is quiet: before its first frame, and after a frame that
    /// came `PARK_AFTER_MS` or more after the last; not after a frame sooner than that. A
    /// parked poll leaves it no read waker of its own, a task's poll makes one again.
    #[tokio::test(start_paused = true)]
    async fn a_stream_may_park_while_it_writes_rarely_and_keeps_no_read_waker_parked() {
        let (_client, sock) = socket_pair().await;
        let stop = Arc::new(Stop::new(tokio_util::sync::CancellationToken::new()));
        let (frames, mut rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
        let body = Body::from_stream(futures_util::stream::poll_fn(move |cx| {
            rx.poll_recv(cx).map(|b| b.map(Ok::<_, Infallible>))
        }));
        let head = Bytes::from_static(b"HTTP/1.1 200 OK\r\n\r\n");
        let mut stream = Stream::new(sock, head, body, Slot(stop.clone()), true);
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(stream.poll_with(&mut cx, false).is_pending());
        assert!(stream.reads.is_some());
        assert!(stream.parkable(), "nothing written but the head");
        for (ms, quiet) in [(999, false), (1000, true), (10, false), (5000, true)] {
            tokio::time::advance(std::time::Duration::from_millis(ms)).await;
            frames.send(Bytes::from_static(b"data: x\n\n")).unwrap();
            assert!(stream.poll_with(&mut cx, false).is_pending());
            assert_eq!(stream.parkable(), quiet, "a frame {ms} ms after the last");
        }
        assert!(stream.poll_with(&mut cx, true).is_pending());
        assert!(stream.reads.is_none(), "parked: no read waker");
        assert!(stream.poll_with(&mut cx, false).is_pending());
        assert!(stream.reads.is_some(), "in a task again: its read waker");
    }

    /// Every idle direct SSE connection holds a `Stream` (and its `Out`) for the connection's
    /// life, in its task or parked in a node (see `park.rs`): every byte here is a byte of
    /// every idle connection, and past 128 bytes the connection future outgrows tokio's
    /// 256-byte task cell (see the connection future's size test in `conn.rs`): 128 bytes more
    /// per busy connection.
    #[test]
    fn an_idle_stream_stays_small() {
        let out = std::mem::size_of::<Out>();
        assert!(out <= 40, "Out grew to {out} bytes");
        let stream = std::mem::size_of::<Stream>();
        assert!(stream <= 128, "the direct stream grew to {stream} bytes");
    }

    #[test]
    fn the_head_is_hypers_with_connection_close() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        headers.append("x-a", HeaderValue::from_static("1"));
        headers.append("x-a", HeaderValue::from_static("2"));
        let head = response_head(StatusCode::OK, &headers);
        let text = std::str::from_utf8(&head).unwrap();
        assert!(
            text.starts_with(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nx-a: 1\r\nx-a: 2\r\n\
                 transfer-encoding: chunked\r\ndate: "
            ),
            "{text}"
        );
        assert!(
            text.ends_with(" GMT\r\nconnection: close\r\n\r\n"),
            "{text}"
        );
        assert_eq!(text.matches("connection").count(), 1, "{text}");
    }

    #[test]
    fn chunk_size_lines_are_lower_case_hex() {
        for (len, line) in [
            (0, "0\r\n"),
            (1, "1\r\n"),
            (15, "f\r\n"),
            (16, "10\r\n"),
            (0x1a2b, "1a2b\r\n"),
            (usize::MAX, "ffffffffffffffff\r\n"),
        ] {
            let mut buf = [0u8; 18];
            let n = format_size(len, &mut buf);
            assert_eq!(std::str::from_utf8(&buf[..usize::from(n)]).unwrap(), line);
        }
    }

    #[test]
    fn only_a_streaming_event_stream_is_written_directly() {
        let sse = || {
            http::Response::builder()
                .header(header::CONTENT_TYPE, "text/event-stream")
                .body(Body::from_stream(futures_util::stream::pending::<
                    Result<Bytes, Infallible>,
                >()))
                .unwrap()
        };
        assert!(is_stream(&sse()));
        let mut forbidden = sse();
        *forbidden.status_mut() = StatusCode::FORBIDDEN;
        assert!(!is_stream(&forbidden));
        let mut sized = sse();
        sized
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(0));
        assert!(!is_stream(&sized));
        let mut empty = sse();
        *empty.body_mut() = Body::empty();
        assert!(!is_stream(&empty));
        let json = http::Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{}"))
            .unwrap();
        assert!(!is_stream(&json));
    }
}
