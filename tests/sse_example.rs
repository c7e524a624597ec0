//! End to end: `examples/sse.rs` (the seed) served on a real socket, read by nest-sse-client.

#[path = "../examples/sse.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's `main` is not run here"
)]
mod example;

use std::time::Duration;

use nest::sse_client::testing::TestStream;
use nest::sse_client::EventSource;
use serde_json::json;

const PERIOD: Duration = Duration::from_millis(20);

#[tokio::test]
async fn sse_gives_hello_world_messages() {
    let server = example::app(PERIOD)
        .bind(([127, 0, 0, 1], 0))
        .await
        .unwrap();
    let mut stream = TestStream::connect(format!("http://{}/sse", server.local_addr())).unwrap();
    for event in stream.collect(3).await.unwrap() {
        assert_eq!(event.event, "message");
        assert_eq!(
            event.data_json::<serde_json::Value>().unwrap(),
            json!({"hello": "world"})
        );
        assert_eq!(event.id, "");
    }
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn sse2_gives_my_event_with_ids_and_retry() {
    let server = example::app(PERIOD)
        .bind(([127, 0, 0, 1], 0))
        .await
        .unwrap();
    let mut stream = TestStream::connect(format!("http://{}/sse2", server.local_addr())).unwrap();
    for expected_id in ["1", "2", "3"] {
        let event = stream.expect_event("myEvent").await.unwrap();
        assert_eq!(event.id, expected_id);
        assert_eq!(event.retry, Some(5000));
        assert_eq!(
            event.data_json::<serde_json::Value>().unwrap(),
            json!({"hello": "world"})
        );
    }
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn sse2_continues_after_the_last_event_id() {
    let server = example::app(PERIOD)
        .bind(([127, 0, 0, 1], 0))
        .await
        .unwrap();
    let source = EventSource::builder(format!("http://{}/sse2", server.local_addr()))
        .last_event_id("41")
        .build()
        .unwrap();
    let mut stream = TestStream::new(source);
    assert_eq!(stream.expect_event("myEvent").await.unwrap().id, "42");
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn sse2_survives_the_largest_last_event_id() {
    let server = example::app(PERIOD)
        .bind(([127, 0, 0, 1], 0))
        .await
        .unwrap();
    let source = EventSource::builder(format!("http://{}/sse2", server.local_addr()))
        .last_event_id(u64::MAX.to_string())
        .build()
        .unwrap();
    let mut stream = TestStream::new(source);
    assert_eq!(stream.expect_event("myEvent").await.unwrap().id, "1");
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn index_page_opens_both_streams() {
    let server = example::app(PERIOD)
        .bind(([127, 0, 0, 1], 0))
        .await
        .unwrap();
    let res = reqwest::get(format!("http://{}/", server.local_addr()))
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
    let page = res.text().await.unwrap();
    assert!(page.contains("new EventSource('/sse')") && page.contains("new EventSource('/sse2')"));
    assert!(page.contains("addEventListener('myEvent'"));
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn after_a_server_restart_the_client_reconnects_with_last_event_id() {
    let server = example::app(PERIOD)
        .bind(([127, 0, 0, 1], 0))
        .await
        .unwrap();
    let addr = server.local_addr();
    let mut stream = TestStream::connect(format!("http://{addr}/sse2"))
        .unwrap()
        .timeout(Duration::from_secs(15));
    stream.expect_event("myEvent").await.unwrap();
    let second = stream.expect_event("myEvent").await.unwrap();
    server.shutdown(Duration::from_secs(1)).await;
    // The server is gone; the client waits `retry: 5000` and reconnects to the new one.
    let server = example::app(PERIOD).bind(addr).await.unwrap();
    let next = stream.expect_event("myEvent").await.unwrap();
    let last: u64 = second.id.parse().unwrap();
    assert!(
        next.id.parse::<u64>().unwrap() > last,
        "resumed after {last}, got {}",
        next.id
    );
    assert_eq!(stream.get_mut().last_event_id(), next.id);
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn cross_origin_requests_get_cors_headers() {
    let server = example::app(PERIOD)
        .bind(([127, 0, 0, 1], 0))
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let res = client
        .get(format!("http://{}/sse", server.local_addr()))
        .header("origin", "http://localhost:9999")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    // A preflight on a path with no route is answered by the CORS layer, not 404.
    let res = client
        .request(
            reqwest::Method::OPTIONS,
            format!("http://{}/nowhere", server.local_addr()),
        )
        .header("origin", "http://localhost:9999")
        .header("access-control-request-method", "PUT")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    server.shutdown(Duration::from_secs(1)).await;
}
