//! The chat example's `/metrics` (Prometheus text format): the open-stream gauge goes up by 3
//! when three clients subscribe and back when they leave. Its own test binary: the recorder is
//! process-wide.

#[path = "../examples/chat.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's `main` is not run here"
)]
mod chat;

use std::time::Duration;

use nest::sse_client::testing::TestStream;

/// The value of `nest_sse_streams_open{route="/events"}` in the exposition (0 when absent).
async fn open_streams(http: &reqwest::Client, base: &str) -> f64 {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with("nest_sse_streams_open{") && l.contains(r#"route="/events""#))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0.0, |v| v.parse().unwrap())
}

/// Polls the gauge until it reads `want`, failing after 10 s with what it read.
async fn until_open(http: &reqwest::Client, base: &str, want: f64) {
    let mut seen = f64::NAN;
    for _ in 0..200 {
        seen = open_streams(http, base).await;
        if seen == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nest_sse_streams_open stayed at {seen}, expected {want}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_gauge_follows_three_clients() {
    let handle = chat::install_prometheus().unwrap();
    let server = chat::app_with_metrics(chat::hub(), Some(handle))
        .bind(([127, 0, 0, 1], 0))
        .await
        .unwrap();
    let base = format!("http://{}", server.local_addr());
    let http = reqwest::Client::new();
    assert_eq!(open_streams(&http, &base).await, 0.0);
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut stream = TestStream::connect(format!("{base}/events")).unwrap();
        // The hub's first frame is its `retry:`; once it arrived the stream is open.
        stream.expect_open().await.unwrap();
        clients.push(stream);
    }
    until_open(&http, &base, 3.0).await;
    drop(clients);
    until_open(&http, &base, 0.0).await;
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"nest_sse_streams_ended_total{reason="client_gone"} 3"#),
        "{text}"
    );
    assert!(
        text.contains(r#"nest_http_requests_total{route="/metrics",method="GET",status="200"}"#)
    );
    server.shutdown(Duration::from_secs(1)).await;
}
