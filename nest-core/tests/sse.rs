//! SSE over real sockets: wire format, headers, lifecycle rows, GET enforcement, errors before the
//! stream, ping-pong delivery (with and without compression), HTTP/2, shutdown, connect cycles.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nest_core::prelude::*;
use nest_core::sse::{EndReason, Overflow};
use nest_core::test_util::TestServer;
use open_files::streams_within_the_open_file_limit;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

#[path = "support/open_files.rs"]
mod open_files;

/// What the test observes of the server: each stream's writer and its end reason.
#[derive(Clone, Default)]
struct Probe {
    writers: Arc<Mutex<Option<mpsc::UnboundedSender<SseWriter>>>>,
    ended: Arc<Mutex<Option<mpsc::UnboundedSender<EndReason>>>>,
    hooks: Arc<AtomicUsize>,
}

impl Probe {
    fn channels(
        &self,
    ) -> (
        mpsc::UnboundedReceiver<SseWriter>,
        mpsc::UnboundedReceiver<EndReason>,
    ) {
        let (wtx, wrx) = mpsc::unbounded_channel();
        let (etx, erx) = mpsc::unbounded_channel();
        *self.writers.lock().unwrap() = Some(wtx);
        *self.ended.lock().unwrap() = Some(etx);
        (wrx, erx)
    }

    fn stream(&self, options: SseOptions) -> SseBody {
        let (writer, body) = get_sse_stream(options.keep_alive(None));
        if let Some(tx) = &*self.writers.lock().unwrap() {
            let _ = tx.send(writer);
        }
        let ended = self.ended.lock().unwrap().clone();
        let hooks = self.hooks.clone();
        body.on_cancel(move |reason| {
            hooks.fetch_add(1, Ordering::SeqCst);
            if let Some(tx) = ended {
                let _ = tx.send(reason);
            }
        })
    }
}

struct Streams {
    probe: Probe,
}

impl Streams {
    async fn plain(self: Arc<Self>) -> SseBody {
        self.probe.stream(SseOptions::new())
    }
    async fn with_retry(self: Arc<Self>) -> SseBody {
        self.probe
            .stream(SseOptions::new().retry(Duration::from_millis(1500)))
    }
    async fn tiny_buffer(self: Arc<Self>) -> SseBody {
        self.probe
            .stream(SseOptions::new().buffer(2, 1024).overflow(Overflow::Close))
    }
    async fn forbidden(self: Arc<Self>) -> Result<SseBody, HttpException> {
        Err(HttpException::forbidden("no stream for you"))
    }
    async fn seed(self: Arc<Self>, last: LastEventId) -> SseBody {
        // The seed's /sse2, driven by the test instead of a timer.
        let (writer, body) = get_sse_stream(SseOptions::new().keep_alive(None));
        let first = last.as_u64().map_or(1, |id| id + 1);
        for id in first..first + 3 {
            writer
                .write(
                    SseEvent::json(&serde_json::json!({"hello": "world"}))
                        .event("myEvent")
                        .id(id)
                        .retry_ms(5000),
                )
                .unwrap();
        }
        writer.close();
        body
    }
    async fn shutdown_retry(self: Arc<Self>) -> SseBody {
        self.probe
            .stream(SseOptions::new().shutdown_retry(Duration::from_secs(2), Duration::ZERO))
    }
}

impl Controller for Streams {
    fn routes(r: &mut Routes<Self>) {
        r.sse("/sse", Self::plain);
        r.sse("/retry", Self::with_retry);
        r.sse("/tiny", Self::tiny_buffer);
        r.sse("/forbidden", Self::forbidden);
        r.sse("/sse2", Self::seed);
        r.sse("/shutdown-retry", Self::shutdown_retry);
        r.post("/post-stream", Self::plain).allow_non_get();
    }
}

async fn start(probe: &Probe) -> TestServer {
    TestServer::start(NestApp::new().controller(Streams {
        probe: probe.clone(),
    }))
    .await
}

/// How long any one awaited thing may take before the test fails instead of hanging.
const WAIT: Duration = Duration::from_secs(10);

/// Awaits `fut`, failing (not hanging) after [`WAIT`] with what was awaited.
async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out after {WAIT:?} waiting for {what}"))
}

/// Receives from a test channel, failing (not hanging) after [`WAIT`] with what was awaited.
async fn recv<T>(rx: &mut mpsc::UnboundedReceiver<T>, what: &str) -> T {
    within(what, rx.recv())
        .await
        .unwrap_or_else(|| panic!("channel closed waiting for {what}"))
}

/// GET `path`: the response head, within [`WAIT`].
async fn get(s: &TestServer, path: &str) -> reqwest::Response {
    within(
        &format!("the response head of GET {path}"),
        reqwest::get(s.url(path)),
    )
    .await
    .unwrap()
}

/// The whole body of a stream that is expected to end, within [`WAIT`].
async fn body_text(res: reqwest::Response) -> String {
    within("the end of the response body", res.text())
        .await
        .unwrap()
}

async fn next_chunk(res: &mut reqwest::Response) -> String {
    let chunk = within("a chunk", res.chunk())
        .await
        .expect("stream error")
        .expect("stream ended");
    String::from_utf8(chunk.to_vec()).unwrap()
}

#[tokio::test]
async fn headers_and_wire_bytes() {
    let probe = Probe::default();
    let (mut writers, _) = probe.channels();
    let s = start(&probe).await;
    let mut res = get(&s, "/sse").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    assert_eq!(res.headers()["cache-control"], "no-cache");
    assert_eq!(res.headers()["x-accel-buffering"], "no");
    let writer = recv(&mut writers, "the stream's writer").await;
    writer.write(serde_json::json!({"hello": "world"})).unwrap();
    assert_eq!(
        next_chunk(&mut res).await,
        "data: {\"hello\":\"world\"}\n\n"
    );
    let forged = "a\n\nevent: admin\ndata: x";
    writer.write(SseEvent::data(forged)).unwrap();
    assert_eq!(
        next_chunk(&mut res).await,
        "data: a\ndata:\ndata: event: admin\ndata: data: x\n\n"
    );
    let err = writer.write(SseEvent::data("x").id("1\n2")).unwrap_err();
    assert_eq!(err.field(), Some("id"));
    writer.write(SseEvent::new().retry_ms(0)).unwrap();
    assert_eq!(
        next_chunk(&mut res).await,
        "retry: 0\n\n",
        "the rejected event wrote nothing"
    );
}

/// The initial `retry:` goes at the head of the first event, never as a block of its own:
/// httpx-sse yields an empty message for a lone `retry:` block (issue 28).
#[tokio::test]
async fn retry_is_sent_first_on_connect_with_the_first_event() {
    let probe = Probe::default();
    let (mut writers, _) = probe.channels();
    let s = start(&probe).await;
    let mut res = get(&s, "/retry").await;
    let writer = recv(&mut writers, "the stream's writer").await;
    // A block of comments only (padding) stays one: no `retry:` in it.
    writer.write(SseEvent::new().comment("pad")).unwrap();
    assert_eq!(next_chunk(&mut res).await, ": pad\n\n");
    writer.write(SseEvent::data("first")).unwrap();
    assert_eq!(next_chunk(&mut res).await, "retry: 1500\ndata: first\n\n");
    writer.write(SseEvent::data("second")).unwrap();
    assert_eq!(next_chunk(&mut res).await, "data: second\n\n", "once");
}

#[tokio::test]
async fn seed_sse2_continues_after_last_event_id() {
    let probe = Probe::default();
    let s = start(&probe).await;
    let res = within(
        "the response to GET /sse2",
        reqwest::Client::new()
            .get(s.url("/sse2"))
            .header("last-event-id", "41")
            .send(),
    )
    .await
    .unwrap();
    let text = body_text(res).await;
    let ids: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .collect();
    assert_eq!(ids, ["42", "43", "44"]);
    assert!(
        text.starts_with("event: myEvent\nid: 42\nretry: 5000\ndata: {\"hello\":\"world\"}\n\n"),
        "{text}"
    );
}

#[tokio::test]
async fn lifecycle_client_gone_runs_the_hook_once() {
    let probe = Probe::default();
    let (mut writers, mut ended) = probe.channels();
    let s = start(&probe).await;
    let res = get(&s, "/sse").await;
    let writer = recv(&mut writers, "the stream's writer").await;
    drop(res); // the client goes away on an idle stream (keep-alive off)
    assert_eq!(
        recv(&mut ended, "the hook after the client left").await,
        EndReason::ClientGone
    );
    assert_eq!(
        within("writer.closed()", writer.closed()).await,
        EndReason::ClientGone
    );
    assert_eq!(
        writer.write("late").unwrap_err().end_reason(),
        Some(EndReason::ClientGone)
    );
    assert_eq!(probe.hooks.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn lifecycle_close_flushes_and_does_not_run_the_hook() {
    let probe = Probe::default();
    let (mut writers, _ended) = probe.channels();
    let s = start(&probe).await;
    let res = get(&s, "/sse").await;
    let writer = recv(&mut writers, "the stream's writer").await;
    writer.write("one").unwrap();
    writer.write("two").unwrap();
    writer.close();
    assert_eq!(body_text(res).await, "data: one\n\ndata: two\n\n");
    assert!(writer.write("three").unwrap_err().is_closed());
    drop(writer);
    assert_eq!(probe.hooks.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn lifecycle_writers_dropped_flushes_and_runs_the_hook() {
    let probe = Probe::default();
    let (mut writers, mut ended) = probe.channels();
    let s = start(&probe).await;
    let res = get(&s, "/sse").await;
    let writer = recv(&mut writers, "the stream's writer").await;
    let clone = writer.clone();
    writer.write("queued").unwrap();
    drop(writer);
    drop(clone);
    assert_eq!(
        recv(&mut ended, "the hook after the writers were dropped").await,
        EndReason::WritersDropped
    );
    assert_eq!(body_text(res).await, "data: queued\n\n");
}

#[tokio::test]
async fn lifecycle_a_panicking_writer_task_ends_only_its_stream() {
    let probe = Probe::default();
    let (mut writers, mut ended) = probe.channels();
    let s = start(&probe).await;
    let a = get(&s, "/sse").await;
    let wa = recv(&mut writers, "stream a's writer").await;
    let mut b = get(&s, "/sse").await;
    let wb = recv(&mut writers, "stream b's writer").await;
    let task = tokio::spawn(async move {
        wa.write("before").unwrap();
        panic!("writer task failed");
    });
    assert!(within("the writer task", task)
        .await
        .unwrap_err()
        .is_panic());
    assert_eq!(
        recv(&mut ended, "stream a's hook").await,
        EndReason::WritersDropped
    );
    assert_eq!(body_text(a).await, "data: before\n\n");
    wb.write("still here").unwrap();
    assert_eq!(next_chunk(&mut b).await, "data: still here\n\n");
}

#[tokio::test]
async fn lifecycle_overflow_close_policy() {
    let probe = Probe::default();
    let (mut writers, mut ended) = probe.channels();
    let s = start(&probe).await;
    // Raw socket that never reads: the server's queue fills once the socket buffers are full.
    let mut sock = TcpStream::connect(s.addr()).await.unwrap();
    sock.write_all(b"GET /tiny HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let writer = recv(&mut writers, "the stream's writer").await;
    let big = "x".repeat(1000);
    let mut result = Ok(());
    for _ in 0..100_000 {
        result = writer.write(big.as_str());
        if result.is_err() {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(result.unwrap_err().end_reason(), Some(EndReason::Overflow));
    assert_eq!(
        recv(&mut ended, "the hook after the overflow").await,
        EndReason::Overflow
    );
    // An event takes 1,008 bytes on the wire and the buffer 1,024, so one was queued when the
    // next did not fit: the policy closed the stream with both.
    assert_eq!(
        writer.lost_events(),
        2,
        "the queued event and the refused one"
    );
    drop(sock); // kept open (and unread) until here
}

#[tokio::test]
async fn lifecycle_shutdown_flushes_sends_final_retry_and_runs_the_hook() {
    let probe = Probe::default();
    let (mut writers, mut ended) = probe.channels();
    let s = start(&probe).await;
    let res = get(&s, "/shutdown-retry").await;
    let writer = recv(&mut writers, "the stream's writer").await;
    writer.write("last words").unwrap();
    let shutdown = tokio::spawn(s.shutdown());
    assert_eq!(
        recv(&mut ended, "the hook on shutdown").await,
        EndReason::Shutdown
    );
    assert_eq!(body_text(res).await, "data: last words\n\nretry: 2000\n\n");
    within("the shutdown", shutdown).await.unwrap();
    assert!(writer.write("x").unwrap_err().is_closed());
}

#[tokio::test]
async fn http2_reset_of_one_stream_ends_only_that_one() {
    let probe = Probe::default();
    let (mut writers, mut ended) = probe.channels();
    let s = start(&probe).await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let mut responses = Vec::new();
    let mut stream_writers = Vec::new();
    for _ in 0..100 {
        let res = within("an HTTP/2 response head", client.get(s.url("/sse")).send())
            .await
            .unwrap();
        assert_eq!(res.version(), http::Version::HTTP_2);
        responses.push(res);
        stream_writers.push(recv(&mut writers, "an HTTP/2 stream's writer").await);
    }
    for (i, w) in stream_writers.iter().enumerate() {
        w.write(format!("to {i}")).unwrap();
    }
    for (i, res) in responses.iter_mut().enumerate() {
        assert_eq!(next_chunk(res).await, format!("data: to {i}\n\n"));
    }
    // Dropping one response resets its HTTP/2 stream (RST_STREAM).
    drop(responses.remove(0));
    assert_eq!(
        recv(&mut ended, "the reset stream's hook").await,
        EndReason::ClientGone
    );
    assert!(stream_writers[0].is_closed());
    for (i, w) in stream_writers.iter().enumerate().skip(1) {
        w.write(format!("again {i}")).unwrap();
    }
    for (i, res) in responses.iter_mut().enumerate() {
        assert_eq!(next_chunk(res).await, format!("data: again {}\n\n", i + 1));
    }
    assert_eq!(probe.hooks.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn ping_pong_each_write_reaches_the_client_at_once() {
    for compressed in [false, true] {
        let probe = Probe::default();
        let (mut writers, _) = probe.channels();
        let mut app = NestApp::new().controller(Streams {
            probe: probe.clone(),
        });
        if compressed {
            app = app.layer(tower_http::compression::CompressionLayer::new());
        }
        let s = TestServer::start(app).await;
        let mut res = within(
            "the response head",
            reqwest::Client::new()
                .get(s.url("/sse"))
                .header("accept-encoding", "gzip")
                .send(),
        )
        .await
        .unwrap();
        assert!(
            res.headers().get("content-encoding").is_none(),
            "SSE must never be compressed"
        );
        let writer = recv(&mut writers, "the stream's writer").await;
        for i in 0..20 {
            writer.write(format!("ping {i}")).unwrap();
            assert_eq!(next_chunk(&mut res).await, format!("data: ping {i}\n\n"));
        }
    }
}

#[tokio::test]
async fn sse_routes_must_be_get_unless_opted_in() {
    struct PostSse;
    impl Controller for PostSse {
        fn routes(r: &mut Routes<Self>) {
            r.post("/events", |_: Arc<Self>| async {
                get_sse_stream(SseOptions::new()).1
            })
            .sse();
        }
    }
    let err = NestApp::new()
        .controller(PostSse)
        .into_service()
        .unwrap_err();
    assert!(err.is_route(), "{err}");
    assert!(
        err.to_string().contains("POST /events") && err.to_string().contains("must be GET"),
        "{err}"
    );

    let probe = Probe::default();
    let (mut writers, _) = probe.channels();
    let s = start(&probe).await;
    let mut res = within(
        "the response head",
        reqwest::Client::new().post(s.url("/post-stream")).send(),
    )
    .await
    .unwrap();
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    recv(&mut writers, "the POST stream's writer")
        .await
        .write("posted")
        .unwrap();
    assert_eq!(next_chunk(&mut res).await, "data: posted\n\n");
}

/// HEAD gets exactly GET's status and headers: guards and the handler run (a guarded stream
/// cannot be probed), the stream is dropped unsent (hook: `ClientGone`), nothing stays counted.
#[tokio::test]
async fn head_on_an_sse_route_answers_what_get_answers() {
    let probe = Probe::default();
    let (mut writers, mut ended) = probe.channels();
    let app = NestApp::new()
        .controller(Streams {
            probe: probe.clone(),
        })
        .controller(Guarded)
        .into_service()
        .unwrap();
    let server = nest_core::Server::bind(([127, 0, 0, 1], 0), app.clone())
        .await
        .unwrap();
    let base = format!("http://{}", server.local_addr());
    for client in [
        reqwest::Client::new(),
        reqwest::Client::builder()
            .http2_prior_knowledge()
            .build()
            .unwrap(),
    ] {
        for path in ["/guarded", "/forbidden"] {
            let get = client.get(format!("{base}{path}")).send().await.unwrap();
            let head = client.head(format!("{base}{path}")).send().await.unwrap();
            assert_eq!(get.status(), 403, "GET {path}");
            assert_eq!(
                head.status(),
                get.status(),
                "HEAD {path} must answer GET's status"
            );
            assert_eq!(head.headers()["content-type"], "application/json");
        }
        let head = client.head(format!("{base}/sse")).send().await.unwrap();
        assert_eq!(head.status(), 200);
        assert_eq!(head.headers()["content-type"], "text/event-stream");
        assert_eq!(head.headers()["cache-control"], "no-cache");
        let writer = recv(&mut writers, "the handler to run for HEAD").await;
        assert_eq!(
            recv(&mut ended, "the HEAD stream's hook").await,
            EndReason::ClientGone
        );
        assert!(writer.is_closed());
    }
    assert_eq!(
        app.live_sse_streams(),
        0,
        "HEAD must not leave a live stream"
    );
    server.shutdown(Duration::from_secs(1)).await;
}

/// An SSE route behind a guard that refuses everyone.
struct Guarded;

impl Controller for Guarded {
    fn routes(r: &mut Routes<Self>) {
        r.sse("/guarded", |_: Arc<Self>| async {
            get_sse_stream(SseOptions::new()).1
        })
        .guard(|_: &http::request::Parts| false);
    }
}

#[tokio::test]
async fn an_error_before_streaming_is_a_normal_error_response() {
    let probe = Probe::default();
    let s = start(&probe).await;
    let res = reqwest::get(s.url("/forbidden")).await.unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert!(res.headers().get("cache-control").is_none());
    assert_eq!(
        res.text().await.unwrap(),
        r#"{"statusCode":403,"message":"no stream for you","error":"Forbidden"}"#
    );
}

/// A thousand streams (fewer when the open-file limit cannot be raised that far).
#[tokio::test]
async fn shutdown_with_1000_open_streams_finishes() {
    let streams = streams_within_the_open_file_limit(1000);
    let probe = Probe::default();
    let (mut writers, mut ended) = probe.channels();
    let service_probe = probe.clone();
    let s = start(&service_probe).await;
    // One HTTP/1.1 connection per stream, as browsers' EventSource would open.
    let client = reqwest::Client::new();
    let mut responses = Vec::new();
    let mut open_writers = Vec::new();
    for i in 0..streams {
        let res = within(
            &format!("the response head of stream {i}"),
            client.get(s.url("/sse")).send(),
        )
        .await
        .unwrap();
        responses.push(res);
        open_writers.push(recv(&mut writers, &format!("stream {i}'s writer")).await);
    }
    tokio::time::timeout(Duration::from_secs(30), s.shutdown())
        .await
        .expect("shutdown must finish");
    for i in 0..streams {
        assert_eq!(
            recv(&mut ended, &format!("hook {i} on shutdown")).await,
            EndReason::Shutdown
        );
    }
    for mut res in responses {
        let end = within("the end of a stream", res.chunk()).await;
        assert!(
            end.map(|c| c.is_none()).unwrap_or(true),
            "every stream ends"
        );
    }
    assert!(open_writers.iter().all(SseWriter::is_closed));
}

#[tokio::test]
async fn connect_disconnect_cycles_leave_no_live_stream() {
    struct Cycle;
    impl Controller for Cycle {
        fn routes(r: &mut Routes<Self>) {
            r.sse("/sse", |_: Arc<Self>| async {
                let (writer, body) = get_sse_stream(SseOptions::new());
                writer.write("hi").unwrap();
                let task = tokio::spawn(async move {
                    writer.closed().await;
                });
                body.on_cancel(move |_| task.abort())
            });
        }
    }
    let service = NestApp::new().controller(Cycle).into_service().unwrap();
    let probe = service.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = &mut stop_rx => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let service = service.clone();
                        tokio::spawn(async move {
                            let svc = hyper::service::service_fn(move |req| {
                                tower::ServiceExt::oneshot(service.clone(), req)
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                                .await;
                        });
                    }
                    // Out of descriptors for a moment: back off instead of spinning.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                },
            }
        }
    });
    for i in 0..10_000 {
        within(&format!("connection {i} to deliver its event"), async {
            let mut sock = TcpStream::connect(addr).await.unwrap();
            sock.write_all(b"GET /sse HTTP/1.1\r\nhost: x\r\n\r\n")
                .await
                .unwrap();
            let mut buf = [0u8; 512];
            let mut seen = Vec::new();
            while !seen.windows(10).any(|w| w == b"data: hi\n\n") {
                let n = sock.read(&mut buf).await.unwrap();
                assert!(n > 0, "the connection closed before its event");
                seen.extend_from_slice(&buf[..n]);
            }
        })
        .await;
    }
    // Every stream's body is dropped when its connection task notices the close.
    tokio::time::timeout(Duration::from_secs(30), async {
        while probe.live_sse_streams() != 0 {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("every stream must end");
    let _ = stop_tx.send(());
}

/// An app served without nest's `Server` (tower directly): cancelling its shutdown token ends a
/// stream that has already delivered events and gone idle (the body registers for shutdown once
/// and must still notice it later).
#[tokio::test]
async fn cancelling_the_shutdown_token_ends_streams_of_a_service_served_by_hand() {
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let probe = Probe::default();
    let (mut writers, mut ended) = probe.channels();
    let svc = NestApp::new()
        .controller(Streams {
            probe: probe.clone(),
        })
        .into_service()
        .unwrap();
    let req = http::Request::get("/shutdown-retry")
        .body(nest_core::body::Body::empty())
        .unwrap();
    let mut body = svc.clone().oneshot(req).await.unwrap().into_body();
    let writer = recv(&mut writers, "the stream's writer").await;
    for i in 0..3 {
        writer.write(format!("event {i}")).unwrap();
        let frame = within("a frame", body.frame()).await;
        let frame = frame.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&frame[..], format!("data: event {i}\n\n").as_bytes());
    }
    // Idle now: the next frame waits (polled once, pending). Cancel while it waits.
    let mut rest = Box::pin(async move {
        let mut rest = Vec::new();
        while let Some(frame) = body.frame().await {
            rest.extend_from_slice(&frame.unwrap().into_data().unwrap());
        }
        rest
    });
    let first_poll =
        std::future::poll_fn(|cx| std::task::Poll::Ready(rest.as_mut().poll(cx).is_pending()))
            .await;
    assert!(first_poll, "an idle stream waits for its next frame");
    svc.shutdown_token().cancel();
    assert_eq!(
        within("the stream to end on shutdown", rest).await,
        b"retry: 2000\n\n"
    );
    assert_eq!(
        recv(&mut ended, "the hook on shutdown").await,
        EndReason::Shutdown
    );
}

/// Issue 33: when the server's SSE buffer budget is spent, a new stream is answered 503 with
/// `Retry-After` (the rest of the app keeps serving), the metric says why, and once the held
/// bytes are released new streams start again. The bodies are never polled: clients that do
/// not read.
#[tokio::test]
async fn a_spent_buffer_budget_answers_new_streams_503_with_retry_after() {
    use tower::ServiceExt;

    struct Flood;
    impl Controller for Flood {
        fn routes(r: &mut Routes<Self>) {
            r.sse("/flood", |_: Arc<Self>| async {
                let (writer, body) = nest_core::sse::get_sse_stream(
                    nest_core::sse::SseOptions::new().keep_alive(None),
                );
                // 40 events of ~1 KiB queued before the stream starts.
                for _ in 0..40 {
                    writer.write("z".repeat(1000)).unwrap();
                }
                body.on_cancel(move |_| drop(writer))
            });
            r.get("/ping", |_: Arc<Self>| async { "pong" });
        }
    }
    let svc = NestApp::new()
        .config(ServerConfig::default().sse_buffer_budget(64 * 1024))
        .controller(Flood)
        .into_service()
        .unwrap();
    let get = |path: &str| {
        http::Request::get(path)
            .body(nest_core::body::Body::empty())
            .unwrap()
    };
    // Two streams of ~43 KiB each: the second spends the 64 KiB.
    let first = svc.clone().oneshot(get("/flood")).await.unwrap();
    assert_eq!(first.status(), 200);
    let second = svc.clone().oneshot(get("/flood")).await.unwrap();
    assert_eq!(second.status(), 200);
    let refused = svc.clone().oneshot(get("/flood")).await.unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "5");
    let ping = svc.clone().oneshot(get("/ping")).await.unwrap();
    assert_eq!(ping.status(), 200, "the rest of the app keeps serving");
    // The clients go: their bytes come back, and a new stream starts.
    drop(first);
    drop(second);
    let again = svc.clone().oneshot(get("/flood")).await.unwrap();
    assert_eq!(again.status(), 200);
    let err = NestApp::new()
        .config(ServerConfig::default().sse_buffer_budget(1024))
        .into_service()
        .unwrap_err();
    assert!(err.to_string().contains("sse_buffer_budget"), "{err}");
}
