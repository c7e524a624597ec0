//! The EventSource against a raw HTTP/1.1 server on a real socket. Reconnection
//! delays are measured on tokio's paused clock.

mod support;

use std::error::Error as _;
use std::time::Duration;

use futures_util::StreamExt;
use nest_sse_client::testing::TestStream;
use nest_sse_client::{Error, Event, EventSource, ReadyState, SseItem};
use support::{head, sse_head, write, Server, Step};
use tokio::time::Instant;

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
        "204 No Content",
        "404 Not Found",
        "500 Internal Server Error",
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
        vec![write(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: /moved\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )],
        vec![sse_head(), write("data: here\n\n"), Step::Hold],
    ])
    .await;
    assert_eq!(source(&server).next_event().await.unwrap().data, "here");
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/events", "/moved"]);
}

#[tokio::test(start_paused = true)]
async fn backoff_doubles_up_to_its_max_and_the_retry_limit_counts() {
    // Every connection is closed before a response: a network error.
    let server = Server::start(vec![vec![]]).await;
    let es = EventSource::builder(server.url("/"))
        .retry(Duration::from_secs(1))
        .backoff(Duration::from_secs(4))
        .max_retries(4)
        .build()
        .unwrap();
    let mut s = TestStream::new(es).timeout(Duration::from_secs(60));
    let start = Instant::now();
    let mut at = Vec::new();
    let mut errors = Vec::new();
    while let Ok(error) = s.expect_error().await {
        at.push(start.elapsed().as_secs());
        errors.push(error);
    }
    assert_eq!(at, [0, 1, 3, 7, 11]);
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
async fn the_retry_count_resets_after_a_successful_open() {
    let server = Server::start(vec![
        vec![sse_head(), write("data: a\n\n")],
        vec![],
        vec![sse_head(), write("data: b\n\n")],
        vec![],
    ])
    .await;
    let es = EventSource::builder(server.url("/"))
        .retry(Duration::from_millis(10))
        .max_retries(2)
        .build()
        .unwrap();
    let mut s = TestStream::new(es);
    let events = s.collect(2).await.unwrap();
    assert_eq!(events[1].data, "b");
    let error = s.next_event().await.unwrap_err();
    assert!(
        error.fatal_error().is_some_and(|e| e.is_retry_limit()),
        "{error}"
    );
    assert_eq!(server.requests().len(), 5);
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
            write("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"),
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
    assert_eq!(es.next().await.unwrap().unwrap(), SseItem::Open);
    assert_eq!(es.ready_state(), ReadyState::Open);
    assert!(matches!(es.next().await, Some(Ok(SseItem::Message(_)))));
    es.close();
    assert_eq!(es.ready_state(), ReadyState::Closed);
    assert!(es.next().await.is_none());
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
