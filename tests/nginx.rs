//! nest behind a real nginx (Debian's), configured as DEPLOYING.md tells a user to: the seed's
//! example (`examples/sse.rs`) plus two quiet streams, served on 127.0.0.1:0, read through nginx
//! by nest's own `EventSource` and by reqwest.
//!
//! What is checked, through the proxy:
//! - events arrive while the stream is open, with `proxy_buffering off`, and with buffering left
//!   on where nest's `X-Accel-Buffering: no` alone turns it off (even over nginx's default
//!   HTTP/1.0 to nest); a control that ignores the header over HTTP/1.0 holds everything back;
//! - a stream silent for twice `proxy_read_timeout` stays open thanks to keep-alive comments; a
//!   control without keep-alive is broken off by nginx;
//! - `Last-Event-ID` reaches nest; CORS headers and preflights pass;
//! - behind an HTTPS listener, HTTP/2 is negotiated and eight event streams share one client
//!   connection;
//! - shutting nest down ends the stream at the client; nginx then answers 502, which an
//!   `EventSource` does not retry.
//!
//! nginx is an external program, so it runs once for this test binary: one test starts nest and
//! nginx and runs the scenarios in order (the shutdown last). nginx gets its own prefix, config,
//! logs and free ports in a temp directory (`nginx/process.rs`) and is stopped by its pid on
//! drop, also on panic. Without nginx (looked up in `NGINX`, `PATH` and `/usr/sbin`) the test
//! prints a loud `SKIPPED` and passes, unless `CI` is set: then it fails.
//!
//! Every wait on the network has a deadline and fails saying what it waited for; nginx's log is
//! polled with a deadline, never after a fixed sleep. The quiet streams' silence is the
//! server's, and the one wait expected to run out is the buffering control's.
//!
//! Run: `cargo test -p nest-tests --test nginx -- --nocapture` (the log shows what was observed).

#[path = "../examples/sse.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's `main` is not run here"
)]
mod example;

#[path = "nginx/process.rs"]
mod process;

use std::future::Future;
use std::time::Duration;

use nest::prelude::*;
use nest::server::Server;
use nest::sse_client::testing::{TestError, TestStream};
use nest::sse_client::{EventSource, ReadyState};
use serde_json::json;

use process::Nginx;

/// How often the example's streams write.
const PERIOD: Duration = Duration::from_millis(100);

/// `proxy_read_timeout` of the `/short/` location (keep in step with [`CONFIG`]).
const PROXY_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// The keep-alive interval of `/quiet`: shorter than [`PROXY_READ_TIMEOUT`].
const KEEP_ALIVE: Duration = Duration::from_millis(500);

/// How long `/quiet` and `/silent` write nothing before their one event: twice the proxy's
/// read timeout, so nginx would have cut a stream without keep-alive comments.
const QUIET: Duration = Duration::from_secs(2 * PROXY_READ_TIMEOUT.as_secs());

/// How long any one expected thing may take to arrive on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(10);

/// How long the control location is watched for an event it must not deliver: 20 periods.
const HELD_BACK: Duration = Duration::from_secs(2);

/// The nginx configuration: the guide's (DEPLOYING.md) `location /`, the same with buffering
/// left on, with nginx's defaults, two controls that ignore `X-Accel-Buffering`, a short read
/// timeout, and the guide's location behind an HTTPS listener with HTTP/2. `@DIR@`,
/// `@HTTP_PORT@`, `@HTTPS_PORT@` and `@NEST@` are filled in by the test; the rest is what a
/// user would write.
const CONFIG: &str = r#"
worker_processes 1;
pid @DIR@/nginx.pid;
error_log @DIR@/error.log info;

events {
    worker_connections 256;
}

http {
    access_log @DIR@/access.log;
    # Which client connection carried each request (the HTTPS listener's log).
    log_format connections '$connection $server_protocol $request_uri $status';
    # Temporary files in the test's directory rather than /var/lib/nginx.
    client_body_temp_path @DIR@/client_body;
    proxy_temp_path @DIR@/proxy;
    fastcgi_temp_path @DIR@/fastcgi;
    uwsgi_temp_path @DIR@/uwsgi;
    scgi_temp_path @DIR@/scgi;

    upstream nest {
        server @NEST@;
        keepalive 16;
        # Below nest's idle keep-alive timeout (header_read_timeout, 30 s).
        keepalive_timeout 20s;
    }

    server {
        listen 127.0.0.1:@HTTP_PORT@;

        # The guide's location.
        location / {
            proxy_pass http://nest;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }

        # Buffering left on: nest's `X-Accel-Buffering: no` turns it off for event streams.
        location /buffered/ {
            proxy_pass http://nest/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }

        # nginx's defaults (HTTP/1.0 to nest, buffering on): the header alone.
        location /defaults/ {
            proxy_pass http://nest/;
        }

        # Control: the defaults, and the header ignored.
        location /ignored/ {
            proxy_pass http://nest/;
            proxy_ignore_headers X-Accel-Buffering;
        }

        # Control: HTTP/1.1, buffering on, the header ignored.
        location /chunked-ignored/ {
            proxy_pass http://nest/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_ignore_headers X-Accel-Buffering;
        }

        # A read timeout shorter than a quiet stream's silence, longer than its keep-alive.
        location /short/ {
            proxy_pass http://nest/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_read_timeout 2s;
        }
    }

    # HTTPS with HTTP/2 to clients (nginx >= 1.25.1 writes `listen … ssl;` and `http2 on;`);
    # nginx still speaks HTTP/1.1 to nest.
    server {
        listen 127.0.0.1:@HTTPS_PORT@ ssl http2;
        ssl_certificate @DIR@/cert.pem;
        ssl_certificate_key @DIR@/key.pem;
        access_log @DIR@/h2.log connections;

        location / {
            proxy_pass http://nest;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }
    }
}
"#;

/// Streams that write nothing for [`QUIET`], then one `late` event, then stay open.
#[derive(Debug)]
struct Quiet;

#[controller("")]
impl Quiet {
    /// Keep-alive comments every [`KEEP_ALIVE`] while silent.
    #[get("/quiet")]
    #[sse]
    async fn quiet(&self) -> SseBody {
        late_event(SseOptions::new().keep_alive(Some(KEEP_ALIVE)))
    }

    /// The control: no keep-alive comments at all.
    #[get("/silent")]
    #[sse]
    async fn silent(&self) -> SseBody {
        late_event(SseOptions::new().keep_alive(None))
    }
}

fn late_event(options: SseOptions) -> SseBody {
    let (write, body) = get_sse_stream(options);
    let task = tokio::spawn(async move {
        tokio::time::sleep(QUIET).await;
        let _ = write.write(SseEvent::data("still here").event("late"));
        // Hold the writer: the stream stays open until the client leaves.
        write.closed().await;
    });
    body.on_cancel(move |_| task.abort())
}

/// Awaits `future` for at most [`DEADLINE`], failing with what was awaited.
async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {DEADLINE:?} waiting for {what}"))
}

/// Opens an `EventSource` that does not reconnect, so an end is seen as an end.
fn once(url: String) -> TestStream {
    let source = EventSource::builder(url)
        .reconnect(false)
        .comments(true)
        .build()
        .expect("a valid URL");
    TestStream::new(source).timeout(DEADLINE)
}

#[tokio::test]
async fn nest_behind_nginx() {
    let Some(binary) = process::binary() else {
        return;
    };
    let server = example::app(PERIOD)
        .controller(Quiet)
        .bind(([127, 0, 0, 1], 0))
        .await
        .expect("nest binds 127.0.0.1:0");
    let config = CONFIG.replace("@NEST@", &server.local_addr().to_string());
    // nginx's certificate, for 127.0.0.1; the HTTP/2 client trusts only it.
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()])
        .expect("a self-signed certificate");
    let cert_pem = cert.cert.pem();
    let files = [
        ("cert.pem", cert_pem.as_str()),
        ("key.pem", &cert.signing_key.serialize_pem()),
    ];
    let nginx = Nginx::start(&binary, &config, &["HTTP_PORT", "HTTPS_PORT"], &files);
    let base = format!("http://{}", nginx.addr("HTTP_PORT"));

    events_arrive_while_the_stream_is_open(&base).await;
    x_accel_buffering_alone_turns_buffering_off(&base).await;
    keep_alive_comments_outlast_the_read_timeout(&base).await;
    last_event_id_reaches_nest(&base).await;
    cors_headers_pass_the_proxy(&base).await;
    streams_share_one_http2_connection(&nginx, &cert_pem).await;
    shutting_nest_down_ends_the_stream(&base, server).await;
}

/// Scenario 1: with `proxy_buffering off`, each event arrives while the stream is open.
async fn events_arrive_while_the_stream_is_open(base: &str) {
    let mut stream = once(format!("{base}/sse"));
    for n in 1..=2 {
        let event = stream
            .next_event()
            .await
            .unwrap_or_else(|e| panic!("event {n} of /sse through nginx: {e}"));
        assert_eq!(event.event, "message");
        assert_eq!(
            event.data_json::<serde_json::Value>().unwrap(),
            json!({ "hello": "world" })
        );
        assert_eq!(stream.get_mut().ready_state(), ReadyState::Open);
    }
    eprintln!("1. /sse through nginx: {:?}", stream.received());
}

/// Scenario 1b: with buffering left on, nest's `X-Accel-Buffering: no` alone lets events
/// through as they are written, even over nginx's default HTTP/1.0 to nest. Controls: where
/// nginx ignores that header, HTTP/1.0 holds back even the response head, while HTTP/1.1
/// passes each complete chunk on.
async fn x_accel_buffering_alone_turns_buffering_off(base: &str) {
    let (buffered, defaults, chunked, ignored) = tokio::join!(
        first_event(base, "/buffered/sse", DEADLINE),
        first_event(base, "/defaults/sse", DEADLINE),
        first_event(base, "/chunked-ignored/sse", DEADLINE),
        first_event(base, "/ignored/sse", HELD_BACK),
    );
    for (path, got) in [
        ("/buffered/sse", buffered),
        ("/defaults/sse", defaults),
        ("/chunked-ignored/sse", chunked),
    ] {
        let received = got.unwrap_or_else(|e| panic!("the first event of {path}: {e}"));
        eprintln!("1b. {path}: {received:?}");
    }
    let held = ignored.expect_err(
        "nginx with HTTP/1.0 to nest, buffering on and X-Accel-Buffering ignored \
         should hold the small events back",
    );
    assert!(
        held.is_timeout() && held.to_string().contains("nothing was received"),
        "{held}"
    );
    eprintln!("1b. /ignored/sse: {held}");
}

/// Opens `path` and waits up to `wait` for its first event; gives back what arrived (with
/// the stream still open), or why nothing did.
async fn first_event(base: &str, path: &str, wait: Duration) -> Result<Vec<String>, TestError> {
    let mut stream = once(format!("{base}{path}")).timeout(wait);
    stream.next_event().await?;
    assert_eq!(stream.get_mut().ready_state(), ReadyState::Open);
    Ok(stream.received().to_vec())
}

/// Scenario 2: a stream silent for twice `proxy_read_timeout` stays open, because the
/// keep-alive comments are traffic to nginx. Without them nginx breaks the stream off.
async fn keep_alive_comments_outlast_the_read_timeout(base: &str) {
    let wait = QUIET + DEADLINE;
    let mut quiet = once(format!("{base}/short/quiet")).timeout(wait);
    let mut silent = once(format!("{base}/short/silent")).timeout(wait);
    // Both run at once, so the scenario takes one quiet period.
    let (late, cut) = tokio::join!(quiet.expect_event("late"), silent.expect_error());

    let late = late.unwrap_or_else(|e| {
        panic!(
            "/short/quiet (keep-alive {KEEP_ALIVE:?}, proxy_read_timeout \
             {PROXY_READ_TIMEOUT:?}) should outlast its {QUIET:?} of silence: {e}"
        )
    });
    assert_eq!(late.data, "still here");
    let comments = quiet
        .received()
        .iter()
        .filter(|item| item.starts_with("comment"))
        .count();
    assert!(
        comments > 0,
        "keep-alive comments should pass nginx: {:?}",
        quiet.received()
    );
    eprintln!(
        "2. /short/quiet: {comments} keep-alive comments, then the late event: {:?}",
        quiet.received()
    );

    let cut = cut.unwrap_or_else(|e| panic!("/short/silent should be cut by nginx: {e}"));
    assert!(cut.is_network(), "nginx breaks the response off: {cut}");
    eprintln!("2. /short/silent (no keep-alive): {:?}", silent.received());
}

/// Scenario 3: `Last-Event-ID` reaches nest through the proxy; `/sse2` continues after it.
async fn last_event_id_reaches_nest(base: &str) {
    let source = EventSource::builder(format!("{base}/sse2"))
        .last_event_id("41")
        .reconnect(false)
        .build()
        .expect("a valid URL");
    let mut stream = TestStream::new(source).timeout(DEADLINE);
    let event = stream
        .expect_event("myEvent")
        .await
        .unwrap_or_else(|e| panic!("myEvent of /sse2 after Last-Event-ID 41: {e}"));
    assert_eq!(event.id, "42");
    eprintln!("3. /sse2 with Last-Event-ID 41: {:?}", stream.received());
}

/// Scenario 4: the example's `CorsLayer::new()` answers through nginx, on the stream and on a
/// preflight. nginx keeps `X-Accel-Buffering` to itself.
async fn cors_headers_pass_the_proxy(base: &str) {
    let client = reqwest::Client::new();
    let res = within(
        "the head of /sse with an Origin",
        client
            .get(format!("{base}/sse"))
            .header("origin", "https://elsewhere.example")
            .send(),
    )
    .await
    .expect("GET /sse through nginx");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    assert_eq!(res.headers()["cache-control"], "no-cache");
    assert!(
        !res.headers().contains_key("x-accel-buffering"),
        "nginx does not pass X-Accel-* to clients: {:?}",
        res.headers()
    );
    eprintln!("4. GET /sse with Origin: {:?}", res.headers());
    drop(res);

    let res = within(
        "the answer to a preflight",
        client
            .request(reqwest::Method::OPTIONS, format!("{base}/sse"))
            .header("origin", "https://elsewhere.example")
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "last-event-id")
            .send(),
    )
    .await
    .expect("OPTIONS /sse through nginx");
    assert_eq!(res.status(), 204);
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    eprintln!("4. preflight: {} {:?}", res.status(), res.headers());
}

/// Scenario 4b: behind an HTTPS listener, HTTP/2 is chosen by ALPN, and eight event streams
/// (more than the six HTTP/1.1 connections a browser opens per origin) each get their events,
/// all on one client connection (nginx's access log names the connection of each request).
async fn streams_share_one_http2_connection(nginx: &Nginx, cert_pem: &str) {
    const STREAMS: usize = 8;
    let base = format!("https://{}", nginx.addr("HTTPS_PORT"));
    let cert = reqwest::Certificate::from_pem(cert_pem.as_bytes()).expect("a PEM certificate");
    let client = reqwest::Client::builder()
        .tls_certs_only([cert])
        .build()
        .expect("an HTTPS client");
    let res = within(
        "the head of / over HTTPS",
        client.get(format!("{base}/")).send(),
    )
    .await
    .expect("GET / over HTTPS through nginx");
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    drop(res);

    let mut streams: Vec<TestStream> = (0..STREAMS)
        .map(|_| {
            let request = client.get(format!("{base}/sse"));
            let source = EventSource::builder_from_request(request)
                .reconnect(false)
                .build()
                .expect("a valid request");
            TestStream::new(source).timeout(DEADLINE)
        })
        .collect();
    for (n, stream) in streams.iter_mut().enumerate() {
        stream
            .next_event()
            .await
            .unwrap_or_else(|e| panic!("an event on HTTP/2 stream {n}: {e}"));
    }
    // nginx logs a request when it ends: close the streams, then read the log.
    drop(streams);
    let log = poll(
        "nginx to log the HTTP/2 event streams",
        || nginx.log("h2.log").unwrap_or_default(),
        |log| log.lines().filter(|l| l.contains(" /sse ")).count() == STREAMS,
    )
    .await;
    let connections: std::collections::BTreeSet<&str> = log
        .lines()
        .map(|line| line.split(' ').next().unwrap_or_default())
        .collect();
    assert!(log.lines().all(|l| l.contains(" HTTP/2.0 ")), "{log}");
    assert_eq!(connections.len(), 1, "one client connection:\n{log}");
    eprintln!("4b. HTTPS + HTTP/2 through nginx, {STREAMS} event streams, nginx's log:\n{log}");
}

/// Polls `observe` until `ready` holds for what it returns, for at most [`DEADLINE`].
async fn poll<T: std::fmt::Debug>(
    what: &str,
    observe: impl Fn() -> T,
    ready: impl Fn(&T) -> bool,
) -> T {
    let started = tokio::time::Instant::now();
    loop {
        let observed = observe();
        if ready(&observed) {
            return observed;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "timed out after {DEADLINE:?} waiting for {what}; last observed: {observed:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Scenario 5: shutting nest down ends the stream at the client (an end, not a hang). Then
/// nginx answers 502, which an `EventSource` treats as fatal: it does not reconnect.
async fn shutting_nest_down_ends_the_stream(base: &str, server: Server) {
    let mut stream = once(format!("{base}/sse"));
    stream
        .next_event()
        .await
        .unwrap_or_else(|e| panic!("an event of /sse before the shutdown: {e}"));
    server.handle().shutdown_with_grace(Duration::from_secs(1));

    let end = stream
        .expect_error()
        .await
        .unwrap_or_else(|e| panic!("the end of /sse after nest shut down: {e}"));
    assert!(
        end.is_ended(),
        "the stream should end cleanly, not break: {end}"
    );
    stream
        .expect_end()
        .await
        .unwrap_or_else(|e| panic!("the source closing after the end: {e}"));
    within("nest to finish shutting down", server.wait()).await;
    eprintln!("5. /sse when nest shut down: {:?}", stream.received());

    let mut after =
        TestStream::new(EventSource::new(format!("{base}/sse")).unwrap()).timeout(DEADLINE);
    let gone = after
        .expect_error()
        .await
        .unwrap_or_else(|e| panic!("an answer from nginx with nest gone: {e}"));
    assert_eq!(gone.status_code(), Some(502), "{gone}");
    assert!(gone.is_fatal(), "{gone}");
    eprintln!("5. /sse with nest gone: {gone}");
}
