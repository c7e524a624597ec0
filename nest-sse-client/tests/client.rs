//! The EventSource against a raw HTTP/1.1 server on a real socket. Reconnection
//! delays are measured on tokio's paused clock.

mod support;

use std::error::Error as _;
use std::time::Duration;

use futures_util::StreamExt;
use nest_sse_client::client::{DEFAULT_HEALTHY_AFTER, DEFAULT_RETRY};
use nest_sse_client::testing::TestStream;
use nest_sse_client::{reqwest, Error, Event, EventSource, ReadyState, SseItem};
use support::{chunked_sse_head, empty_response, head, sse_head, write, Server, Step};
use tokio::time::Instant;

/// Awaits `future`, failing the test after 10 s (of tokio's clock) instead of hanging.
async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

fn source(server: &Server) -> TestStream {
    TestStream::new(EventSource::new(server.url("/events")).unwrap())
}

#[tokio::test(start_paused = true)]
async fn sends_browser_headers_and_custom_headers() {
    let server = Server::start(vec![vec![sse_head(), write("data: a\n\n"), Step::Hold]]).await;
    let es = EventSource::builder(server.url("/events"))
        .header("x-token", "abc")
        .build()
        .unwrap();
    let mut s = TestStream::new(es);
    assert_eq!(s.next_event().await.unwrap().data, "a");
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/events"));
    assert_eq!(r.header("accept"), Some("text/event-stream"));
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    assert_eq!(r.header("x-token"), Some("abc"));
    assert_eq!(r.header("last-event-id"), None);
}

#[tokio::test(start_paused = true)]
async fn reconnects_after_the_server_retry_with_last_event_id() {
    let server = Server::start(vec![
        vec![sse_head(), write("retry: 1500\nid: 7\ndata: a\n\n")],
        vec![sse_head(), write("data: b\n\n"), Step::Hold],
    ])
    .await;
    let mut s = source(&server);
    s.expect_open().await.unwrap();
    let a = s.next_event().await.unwrap();
    assert_eq!((a.id.as_str(), a.retry), ("7", Some(1500)));
    assert!(s.expect_error().await.unwrap().is_ended());
    assert_eq!(s.get_mut().ready_state(), ReadyState::Connecting);
    let ended = Instant::now();
    s.expect_open().await.unwrap();
    assert_eq!(ended.elapsed(), Duration::from_millis(1500));
    assert_eq!(s.get_mut().ready_state(), ReadyState::Open);
    let b = s.next_event().await.unwrap();
    assert_eq!((b.data.as_str(), b.id.as_str()), ("b", "7"));
    let requests = server.requests();
    assert_eq!(requests[0].header("last-event-id"), None);
    assert_eq!(requests[1].header("last-event-id"), Some("7"));
}

#[tokio::test(start_paused = true)]
async fn the_default_reconnection_time_is_three_seconds_and_configurable() {
    for (configured, expected) in [(None, 3000), (Some(250), 250)] {
        let server = Server::start(vec![
            vec![sse_head(), write("data: a\n\n")],
            vec![sse_head(), Step::Hold],
        ])
        .await;
        let mut builder = EventSource::builder(server.url("/"));
        if let Some(ms) = configured {
            builder = builder.retry(Duration::from_millis(ms));
        }
        let mut s = TestStream::new(builder.build().unwrap());
        s.next_event().await.unwrap();
        assert!(s.expect_error().await.unwrap().is_ended());
        let ended = Instant::now();
        s.expect_open().await.unwrap();
        assert_eq!(ended.elapsed(), Duration::from_millis(expected));
    }
}

#[tokio::test(start_paused = true)]
async fn an_id_only_block_is_sent_and_an_empty_id_is_not() {
    let server = Server::start(vec![
        vec![sse_head(), write("id: 9\n\n")],
        vec![sse_head(), write("id\n\n")],
        vec![sse_head(), Step::Hold],
    ])
    .await;
    let mut s = source(&server);
    for _ in 0..3 {
        s.expect_open().await.unwrap();
    }
    let requests = server.requests();
    assert_eq!(requests[1].header("last-event-id"), Some("9"));
    assert_eq!(requests[2].header("last-event-id"), None);
}

#[tokio::test(start_paused = true)]
async fn an_initial_last_event_id_is_sent_on_the_first_request() {
    let server = Server::start(vec![vec![sse_head(), write("data: a\n\n"), Step::Hold]]).await;
    let es = EventSource::builder(server.url("/"))
        .last_event_id("41")
        .build()
        .unwrap();
    let mut s = TestStream::new(es);
    assert_eq!(s.next_event().await.unwrap().id, "41");
    assert_eq!(server.requests()[0].header("last-event-id"), Some("41"));
}

#[tokio::test(start_paused = true)]
async fn a_status_other_than_200_is_fatal_and_not_retried() {
    for status in [
        "404 Not Found",
        "500 Internal Server Error",
        "502 Bad Gateway",
    ] {
        let server = Server::start(vec![vec![head(status, Some("text/event-stream"))]]).await;
        let mut s = source(&server);
        let error = s.expect_error().await.unwrap();
        assert!(error.is_status() && error.is_fatal(), "{error}");
        assert!(error.to_string().contains(status), "{error}");
        s.expect_end().await.unwrap();
        assert_eq!(s.get_mut().ready_state(), ReadyState::Closed);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(server.requests().len(), 1, "{status} was retried");
    }
}

#[tokio::test(start_paused = true)]
async fn the_error_keeps_the_failed_response_status_and_headers() {
    let server = Server::start(vec![vec![empty_response(
        "401 Unauthorized",
        &[
            ("WWW-Authenticate", r#"Bearer realm="events""#),
            ("X-Request-Id", "r-1"),
        ],
    )]])
    .await;
    let error = source(&server).expect_error().await.unwrap();
    assert_eq!(error.status(), Some(reqwest::StatusCode::UNAUTHORIZED));
    let headers = error.headers().expect("the response's headers");
    assert_eq!(headers["www-authenticate"], r#"Bearer realm="events""#);
    assert_eq!(headers["x-request-id"], "r-1");
    let version = error.response().map(|head| head.version());
    assert_eq!(version, Some(reqwest::Version::HTTP_11));
}

#[tokio::test(start_paused = true)]
async fn a_204_ends_the_stream_without_an_error() {
    let server = Server::start(vec![
        vec![sse_head(), write("retry: 100\nid: 1\ndata: a\n\n")],
        vec![head("204 No Content", None)],
    ])
    .await;
    let mut es = EventSource::new(server.url("/")).unwrap();
    let mut items = Vec::new();
    while let Some(item) = within("the next item", es.next()).await {
        items.push(item);
    }
    assert!(
        matches!(
            &items[..],
            [Ok(SseItem::Open), Ok(SseItem::Message(_)), Err(e)] if e.is_ended()
        ),
        "{items:?}"
    );
    assert_eq!(es.ready_state(), ReadyState::Closed);
    let status = es.response().map(|head| head.status());
    assert_eq!(status, Some(reqwest::StatusCode::NO_CONTENT));
    tokio::time::sleep(Duration::from_secs(60)).await;
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].header("last-event-id"), Some("1"));
}

#[tokio::test(start_paused = true)]
async fn a_content_type_other_than_event_stream_is_fatal() {
    for content_type in [Some("text/html; charset=utf-8"), Some("text/plain"), None] {
        let server = Server::start(vec![vec![head("200 OK", content_type)]]).await;
        let mut s = source(&server);
        let error = s.expect_error().await.unwrap();
        assert!(error.is_content_type() && error.is_fatal(), "{error}");
        assert_eq!(error.content_type_received(), content_type);
        if let Some(ct) = content_type {
            assert!(error.to_string().contains(ct), "{error}");
        }
        s.expect_end().await.unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(server.requests().len(), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn the_content_type_essence_is_compared_case_insensitively() {
    let server = Server::start(vec![vec![
        head("200 OK", Some("Text/Event-Stream ; charset=utf-8")),
        write("data: a\n\n"),
        Step::Hold,
    ]])
    .await;
    assert_eq!(source(&server).next_event().await.unwrap().data, "a");
}

#[tokio::test(start_paused = true)]
async fn redirects_are_followed() {
    let server = Server::start(vec![
        vec![empty_response(
            "307 Temporary Redirect",
            &[("Location", "/moved")],
        )],
        vec![sse_head(), write("data: here\n\n"), Step::Hold],
    ])
    .await;
    assert_eq!(source(&server).next_event().await.unwrap().data, "here");
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/events", "/moved"]);
}

/// Every error until the stream ends, with its time from the first on the
/// paused clock.
async fn errors_until_the_end(s: &mut TestStream) -> (Vec<Duration>, Vec<Error>) {
    // An overall bound (issue 36): with the retry limit not counted, the stream never ends, and
    // on the paused clock this loop spun at full CPU for minutes instead of failing.
    const MOST: usize = 100;
    let start = Instant::now();
    let (mut at, mut errors) = (Vec::new(), Vec::new());
    loop {
        assert!(
            errors.len() < MOST,
            "{MOST} errors and the stream has not ended: is the retry limit counted? {errors:?}"
        );
        match s.expect_error().await {
            Ok(error) => {
                at.push(start.elapsed());
                errors.push(error);
            }
            Err(end) if end.is_ended() => return (at, errors),
            Err(other) => panic!("{other}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn backoff_doubles_up_to_its_max_and_the_retry_limit_counts() {
    // Every connection is closed before a response: a network error.
    let server = Server::start(vec![vec![]]).await;
    let es = EventSource::builder(server.url("/"))
        .retry(Duration::from_secs(1))
        .backoff(Duration::from_secs(4))
        .jitter(false)
        .max_retries(4)
        .build()
        .unwrap();
    let mut s = TestStream::new(es).timeout(Duration::from_secs(60));
    let (at, errors) = errors_until_the_end(&mut s).await;
    let secs: Vec<u64> = at.iter().map(Duration::as_secs).collect();
    assert_eq!(secs, [0, 1, 3, 7, 11]);
    assert!(errors[..4].iter().all(|e| e.is_network() && !e.is_fatal()));
    assert!(errors[4].is_retry_limit() && errors[4].is_fatal());
    assert_eq!(
        errors[4].to_string(),
        "gave up after 4 failed reconnection attempts"
    );
    let last = errors[4].source().and_then(|e| e.downcast_ref::<Error>());
    assert!(last.is_some_and(Error::is_network), "{:?}", errors[4]);
    assert_eq!(server.requests().len(), 5);
    assert_eq!(s.get_mut().ready_state(), ReadyState::Closed);
}

#[tokio::test(start_paused = true)]
async fn backoff_delays_are_jittered_between_half_and_all() {
    let server = Server::start(vec![vec![]]).await;
    let es = EventSource::builder(server.url("/"))
        .retry(Duration::from_secs(1))
        .backoff(Duration::from_secs(8))
        .max_retries(5)
        .build()
        .unwrap();
    let mut s = TestStream::new(es).timeout(Duration::from_secs(60));
    let mut error = s.expect_error().await.unwrap();
    for full in [1, 2, 4, 8, 8].map(Duration::from_secs) {
        assert!(error.is_network(), "{error}");
        let delay = s
            .get_mut()
            .reconnect_delay()
            .expect("a pending reconnection");
        assert!((full / 2..=full).contains(&delay), "{delay:?} for {full:?}");
        let failed = Instant::now();
        error = s.expect_error().await.unwrap();
        assert_eq!(
            failed.elapsed(),
            delay,
            "the delay announced is the one waited"
        );
    }
    assert!(error.is_retry_limit(), "{error}");
    assert_eq!(s.get_mut().reconnect_delay(), None);
}

#[tokio::test(start_paused = true)]
async fn a_server_that_accepts_and_closes_reaches_the_retry_limit() {
    // Each connection opens (200, an event) and ends at once: without a
    // healthy period, those are failures in a row.
    let server = Server::start(vec![vec![sse_head(), write("data: a\n\n")]]).await;
    let es = EventSource::builder(server.url("/"))
        .retry(Duration::from_millis(10))
        .max_retries(3)
        .build()
        .unwrap();
    let mut s = TestStream::new(es);
    let (_, errors) = errors_until_the_end(&mut s).await;
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert!(errors[..3].iter().all(Error::is_ended));
    assert!(errors[3].is_retry_limit());
    assert_eq!(server.requests().len(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_healthy_connection_resets_the_retry_count() {
    let server = Server::start(vec![
        vec![],
        vec![],
        // Open for a minute (the default `healthy_after`): the count starts
        // over, so its end is the first failure again, not the limit.
        vec![
            sse_head(),
            write("data: a\n\n"),
            Step::Pause(DEFAULT_HEALTHY_AFTER),
        ],
        vec![],
    ])
    .await;
    let es = EventSource::builder(server.url("/"))
        .retry(Duration::from_millis(10))
        .max_retries(2)
        .build()
        .unwrap();
    let mut s = TestStream::new(es).timeout(Duration::from_secs(120));
    let (_, errors) = errors_until_the_end(&mut s).await;
    let kinds: Vec<&str> = errors
        .iter()
        .map(|e| match () {
            () if e.is_retry_limit() => "limit",
            () if e.is_ended() => "ended",
            () => "network",
        })
        .collect();
    assert_eq!(kinds, ["network", "network", "ended", "network", "limit"]);
    assert_eq!(server.requests().len(), 5);
}

#[tokio::test(start_paused = true)]
async fn a_503_is_retried_after_its_retry_after_in_seconds() {
    let server = Server::start(vec![
        vec![empty_response(
            "503 Service Unavailable",
            &[("Retry-After", "120")],
        )],
        vec![sse_head(), write("data: back\n\n"), Step::Hold],
    ])
    .await;
    let mut s = source(&server);
    let error = s.expect_error().await.unwrap();
    assert!(error.is_status() && !error.is_fatal(), "{error}");
    assert_eq!(error.status_code(), Some(503));
    assert_eq!(error.retry_after(), Some(Duration::from_secs(120)));
    let delay = s.get_mut().reconnect_delay();
    assert_eq!(delay, Some(Duration::from_secs(120)));
    let failed = Instant::now();
    s = s.timeout(Duration::from_secs(180));
    s.expect_open().await.unwrap();
    assert_eq!(failed.elapsed(), Duration::from_secs(120));
    assert_eq!(s.next_event().await.unwrap().data, "back");
}

#[tokio::test(start_paused = true)]
async fn a_429_is_retried_after_its_retry_after_date_and_counts_as_a_failure() {
    let at = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(30));
    let too_many = empty_response("429 Too Many Requests", &[("Retry-After", &at)]);
    let server = Server::start(vec![vec![too_many]]).await;
    let es = EventSource::builder(server.url("/"))
        .max_retries(1)
        .build()
        .unwrap();
    let mut s = TestStream::new(es).timeout(Duration::from_secs(60));
    let error = s.expect_error().await.unwrap();
    assert_eq!(error.status_code(), Some(429));
    // An HTTP date has whole seconds, and the wall clock is not paused.
    let delay = s.get_mut().reconnect_delay().unwrap();
    assert!(
        (Duration::from_secs(28)..=Duration::from_secs(30)).contains(&delay),
        "{delay:?}"
    );
    let failed = Instant::now();
    let error = s.expect_error().await.unwrap();
    assert_eq!(failed.elapsed(), delay);
    assert!(error.is_retry_limit(), "{error}");
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_503_without_retry_after_waits_the_reconnection_time() {
    let server = Server::start(vec![
        vec![head("503 Service Unavailable", None)],
        vec![sse_head(), Step::Hold],
    ])
    .await;
    let mut s = source(&server);
    assert_eq!(s.expect_error().await.unwrap().status_code(), Some(503));
    let failed = Instant::now();
    s.expect_open().await.unwrap();
    assert_eq!(failed.elapsed(), DEFAULT_RETRY);
}

#[tokio::test(start_paused = true)]
async fn max_retries_zero_never_reconnects() {
    let server = Server::start(vec![vec![sse_head(), write("data: a\n\n")]]).await;
    let es = EventSource::builder(server.url("/"))
        .max_retries(0)
        .build()
        .unwrap();
    let mut s = TestStream::new(es);
    s.next_event().await.unwrap();
    assert!(s.expect_error().await.unwrap().is_retry_limit());
    s.expect_end().await.unwrap();
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn without_reconnect_the_stream_ends_with_the_response() {
    let server = Server::start(vec![vec![sse_head(), write("data: a\n\n")]]).await;
    let es = EventSource::builder(server.url("/"))
        .reconnect(false)
        .build()
        .unwrap();
    let mut s = TestStream::new(es);
    s.next_event().await.unwrap();
    assert!(s.expect_error().await.unwrap().is_ended());
    s.expect_end().await.unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_broken_body_is_a_network_error_and_reconnects() {
    let server = Server::start(vec![
        vec![
            chunked_sse_head(),
            write("9\r\ndata: a\n\n\r\n"),
            write("20\r\ndata: cut"),
        ],
        vec![sse_head(), write("data: b\n\n"), Step::Hold],
    ])
    .await;
    let mut s = source(&server);
    assert_eq!(s.next_event().await.unwrap().data, "a");
    let error = s.expect_error().await.unwrap();
    assert!(error.is_network() && !error.is_fatal(), "{error}");
    assert_eq!(s.next_event().await.unwrap().data, "b");
}

#[tokio::test(start_paused = true)]
async fn any_method_and_body_via_a_request_builder() {
    let server = Server::start(vec![vec![sse_head(), write("data: token\n\n"), Step::Hold]]).await;
    let request = reqwest::Client::new()
        .post(server.url("/v1/chat"))
        .header("content-type", "application/json")
        .body(r#"{"stream":true}"#);
    let mut s = TestStream::new(EventSource::from_request(request).unwrap());
    assert_eq!(s.next_event().await.unwrap().data, "token");
    let r = &server.requests()[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.body, br#"{"stream":true}"#);
    assert_eq!(r.header("accept"), Some("text/event-stream"));
    assert_eq!(r.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn a_request_that_cannot_be_resent_is_refused() {
    let body =
        reqwest::Body::wrap_stream(futures_util::stream::iter(vec![Ok::<_, std::io::Error>(
            "x",
        )]));
    let request = reqwest::Client::new()
        .post("http://127.0.0.1:1/")
        .body(body);
    let error = EventSource::from_request(request).unwrap_err();
    assert!(error.is_builder(), "{error}");
    let error = EventSource::builder("http://127.0.0.1:1/")
        .header("bad header", "x")
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("bad header"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn close_ends_the_stream() {
    let server = Server::start(vec![vec![
        sse_head(),
        write("data: a\n\ndata: b\n\n"),
        Step::Hold,
    ]])
    .await;
    let mut es = EventSource::new(server.url("/")).unwrap();
    assert_eq!(es.ready_state(), ReadyState::Connecting);
    let open = within("the open", es.next()).await;
    assert_eq!(open.unwrap().unwrap(), SseItem::Open);
    assert_eq!(es.ready_state(), ReadyState::Open);
    let message = within("an event", es.next()).await;
    assert!(matches!(message, Some(Ok(SseItem::Message(_)))));
    es.close();
    assert_eq!(es.ready_state(), ReadyState::Closed);
    assert!(within("the end", es.next()).await.is_none());
}

#[tokio::test(start_paused = true)]
async fn comments_are_observable_for_keep_alive_assertions() {
    let server = Server::start(vec![vec![
        sse_head(),
        write(": keep-alive\n\n"),
        write("\u{FEFF}data: not stripped mid-stream\n\n"),
        Step::Hold,
    ]])
    .await;
    let mut s = TestStream::connect(server.url("/")).unwrap();
    assert_eq!(s.expect_comment().await.unwrap(), "keep-alive");
    let error = s.next_event().await.unwrap_err();
    assert!(error.is_timeout(), "{error}");
}

#[tokio::test(start_paused = true)]
async fn a_connection_refused_is_a_network_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let es = EventSource::builder(format!("http://{addr}/"))
        .max_retries(1)
        .build()
        .unwrap();
    let mut s = TestStream::new(es);
    let error = s.expect_error().await.unwrap();
    assert!(error.is_network());
    // The message is the error's own; reqwest's error, with the OS error at
    // the end of its chain, is the source.
    let text = format!("{error}");
    assert_eq!(text, "connection failed");
    let source = error.source().expect("reqwest's error");
    assert!(source.is::<reqwest::Error>(), "{source:?}");
    assert!(!text.contains(&source.to_string()), "{text}");
    let root = std::iter::successors(Some(source), |&e| e.source()).last();
    assert!(
        root.is_some_and(|e| e.to_string().contains("refused")),
        "{error:?}"
    );
    assert!(s.expect_error().await.unwrap().is_retry_limit());
    s.expect_end().await.unwrap();
}

#[test]
fn the_error_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Error>();
    // So it converts into the usual boxed error (and anyhow::Error).
    let error = Event::new("message", "x").data_json::<u32>().unwrap_err();
    let _: Box<dyn std::error::Error + Send + Sync> = Box::new(error);
}

#[tokio::test(start_paused = true)]
async fn an_id_that_is_no_header_value_is_left_out_on_reconnect() {
    let server = Server::start(vec![
        vec![sse_head(), write("id: a\x01b\ndata: x\n\n")],
        vec![sse_head(), write("data: y\n\n"), Step::Hold],
    ])
    .await;
    let mut s = source(&server);
    assert_eq!(s.next_event().await.unwrap().id, "a\u{1}b");
    let y = s.next_event().await.unwrap();
    assert_eq!((y.data.as_str(), y.id.as_str()), ("y", "a\u{1}b"));
    assert_eq!(server.requests()[1].header("last-event-id"), None);
}

#[tokio::test(start_paused = true)]
async fn a_shared_client_is_used_for_every_connection() {
    let server = Server::start(vec![
        vec![sse_head(), write("retry: 10\ndata: a\n\n")],
        vec![sse_head(), write("data: b\n\n"), Step::Hold],
    ])
    .await;
    let mut defaults = reqwest::header::HeaderMap::new();
    defaults.insert("x-client", "shared".parse().unwrap());
    let client = reqwest::Client::builder()
        .default_headers(defaults)
        .build()
        .unwrap();
    let es = EventSource::builder(server.url("/"))
        .client(client.clone())
        .build()
        .unwrap();
    let mut s = TestStream::new(es);
    assert_eq!(s.collect(2).await.unwrap()[1].data, "b");
    // A request's own client is replaced too.
    let other = EventSource::builder_from_request(reqwest::Client::new().get(server.url("/")))
        .client(client)
        .build()
        .unwrap();
    TestStream::new(other).expect_open().await.unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests
        .iter()
        .all(|r| r.header("x-client") == Some("shared")));
}

#[tokio::test(start_paused = true)]
async fn method_and_body_on_the_builder() {
    let server = Server::start(vec![vec![sse_head(), write("data: token\n\n"), Step::Hold]]).await;
    let es = EventSource::builder(server.url("/v1/chat"))
        .method(reqwest::Method::POST)
        .header("content-type", "application/json")
        .body(r#"{"stream":true}"#)
        .build()
        .unwrap();
    assert_eq!(
        TestStream::new(es).next_event().await.unwrap().data,
        "token"
    );
    let r = &server.requests()[0];
    assert_eq!(
        (r.method.as_str(), r.body.as_slice()),
        ("POST", &br#"{"stream":true}"#[..])
    );
}

#[test]
fn an_invalid_url_says_so() {
    for (url, message) in [
        ("/events", r#"invalid URL "/events""#),
        (
            "localhost:3000/events",
            r#"invalid URL "localhost:3000/events" (an event stream needs http or https)"#,
        ),
        (
            "ftp://example.com/",
            r#"invalid URL "ftp://example.com/" (an event stream needs http or https)"#,
        ),
        ("http://", r#"invalid URL "http://""#),
    ] {
        let error = EventSource::new(url).unwrap_err();
        assert!(error.is_builder() && error.is_fatal(), "{error}");
        assert_eq!(error.to_string(), message);
    }
    let error = EventSource::new("/events").unwrap_err();
    let cause = error.source().expect("the URL parser's error");
    assert_eq!(cause.to_string(), "relative URL without a base");
}

mod events {
    //! `into_events()`: the usual `while let` / `?` loop.

    use super::*;

    /// A source that does not reconnect.
    fn once(server: &Server) -> EventSource {
        EventSource::builder(server.url("/"))
            .reconnect(false)
            .build()
            .unwrap()
    }

    /// What the usual loop sees: the events, then the error `?` would return.
    async fn usual_loop(es: EventSource) -> (Vec<String>, Option<Error>) {
        let mut events = es.into_events();
        let mut data = Vec::new();
        let result: Result<(), Error> = async {
            while let Some(event) = within("the next event", events.next()).await {
                data.push(event?.data);
            }
            Ok(())
        }
        .await;
        // After the end, the stream stays ended.
        assert!(within("the end", events.next()).await.is_none());
        (data, result.err())
    }

    #[tokio::test(start_paused = true)]
    async fn an_end_without_reconnecting_is_a_clean_end() {
        let server = Server::start(vec![vec![
            sse_head(),
            write(": hi\ndata: a\n\ndata: b\n\n"),
        ]])
        .await;
        let (data, error) = usual_loop(once(&server)).await;
        assert_eq!(data, ["a", "b"]);
        assert!(error.is_none(), "{error:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn reconnections_are_inside_and_a_204_ends_cleanly() {
        let server = Server::start(vec![
            vec![sse_head(), write("retry: 10\nid: 1\ndata: a\n\n")],
            vec![],
            vec![sse_head(), write("data: b\n\n")],
            vec![head("204 No Content", None)],
        ])
        .await;
        let (data, error) = usual_loop(EventSource::new(server.url("/")).unwrap()).await;
        assert_eq!(data, ["a", "b"]);
        assert!(error.is_none(), "{error:?}");
        assert_eq!(server.requests().len(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_fatal_error_is_what_the_question_mark_returns() {
        let server = Server::start(vec![
            vec![sse_head(), write("retry: 10\ndata: a\n\n")],
            vec![head("404 Not Found", None)],
        ])
        .await;
        let (data, error) = usual_loop(EventSource::new(server.url("/")).unwrap()).await;
        assert_eq!(data, ["a"]);
        assert_eq!(error.and_then(|e| e.status_code()), Some(404));
    }

    #[tokio::test(start_paused = true)]
    async fn a_broken_stream_without_reconnecting_is_an_error() {
        let server = Server::start(vec![vec![
            chunked_sse_head(),
            write("9\r\ndata: a\n\n\r\n20\r\ncut"),
        ]])
        .await;
        let (data, error) = usual_loop(once(&server)).await;
        assert_eq!(data, ["a"]);
        assert!(error.is_some_and(|e| e.is_network()));
    }
}
