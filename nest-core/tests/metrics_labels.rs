//! Hostile clients against the metrics: no client can add a series (every label value comes from
//! a set the app fixes when it is built), and the series known in advance are there at 0 before
//! the first request. (One test per binary: the recorder is process-wide.)

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::MetricKind;
use nest_core::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Api;

impl Controller for Api {
    fn routes(r: &mut Routes<Self>) {
        r.get("/ping", |_: Arc<Self>| async { "pong" });
        r.sse("/events", |_: Arc<Self>| async {
            get_sse_stream(SseOptions::new()).1
        });
    }
}

/// Sends one request with `method` on a fresh connection and reads the status line.
async fn request(addr: std::net::SocketAddr, method: &str, path: &str) -> String {
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!("{method} {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    sock.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), sock.read_to_end(&mut answer))
        .await
        .expect("the server answers and closes")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    answer.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invented_methods_add_no_series_and_known_series_start_at_zero() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this test binary");

    let app = NestApp::new().controller(Api).into_service().unwrap();

    // Before any request: the SSE route's gauge and the fixed-label counters are exported at 0.
    let before = snapshotter.snapshot().into_vec();
    let has = |name: &str, label: (&str, &str)| {
        before.iter().any(|(key, _, _, value)| {
            key.key().name() == name
                && key
                    .key()
                    .labels()
                    .any(|l| l.key() == label.0 && l.value() == label.1)
                && matches!(value, DebugValue::Counter(0))
                || key.key().name() == name
                    && key
                        .key()
                        .labels()
                        .any(|l| l.key() == label.0 && l.value() == label.1)
                    && matches!(value, DebugValue::Gauge(g) if g.into_inner() == 0.0)
        })
    };
    assert!(
        has("nest_sse_streams_open", ("route", "/events")),
        "{before:?}"
    );
    assert!(
        !has("nest_sse_streams_open", ("route", "/ping")),
        "not an SSE route"
    );
    for reason in ["client_gone", "shutdown", "overflow", "lifetime"] {
        assert!(
            has("nest_sse_streams_ended_total", ("reason", reason)),
            "{reason}"
        );
    }
    assert!(has("nest_sse_events_lost_total", ("why", "dropped")));
    // The buffer budget's series (issue 33), unlabelled, at 0.
    for name in ["nest_sse_buffered_bytes", "nest_sse_budget_refused_total"] {
        assert!(
            before
                .iter()
                .any(|(key, _, _, value)| key.key().name() == name
                    && matches!(value, DebugValue::Counter(0))
                    || key.key().name() == name
                        && matches!(value, DebugValue::Gauge(g) if g.into_inner() == 0.0)),
            "{name}"
        );
    }

    let server = nest_core::Server::bind(([127, 0, 0, 1], 0), app)
        .await
        .unwrap();
    let addr = server.local_addr();

    // 300 requests, each with a method of its own (16 random-looking bytes), and a few with an
    // 8,000-byte method: before, each became a label value of its own, kept forever.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..300 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let method: String = (0..16)
            .map(|k| char::from(b'A' + ((seed >> (k * 4)) & 0xf) as u8))
            .collect();
        let path = if i % 2 == 0 { "/ping" } else { "/nope" };
        let status = request(addr, &method, path).await;
        assert!(status.starts_with("HTTP/1.1 "), "{status}");
    }
    let long = "M".repeat(8_000);
    for _ in 0..3 {
        request(addr, &long, "/ping").await;
    }
    assert_eq!(request(addr, "GET", "/ping").await, "HTTP/1.1 200 OK");
    server.shutdown(Duration::from_secs(1)).await;

    let after = snapshotter.snapshot().into_vec();
    let methods: HashSet<String> = after
        .iter()
        .filter(|(key, ..)| {
            key.kind() == MetricKind::Counter && key.key().name() == "nest_http_requests_total"
        })
        .flat_map(|(key, ..)| {
            key.key()
                .labels()
                .filter(|l| l.key() == "method")
                .map(|l| l.value().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        methods,
        HashSet::from(["GET".to_owned(), "OTHER".to_owned()]),
        "invented methods share one label"
    );
    let series = after
        .iter()
        .filter(|(key, ..)| key.key().name() == "nest_http_requests_total")
        .count();
    eprintln!("RELIABILITY metrics: 303 requests with invented methods -> {series} request series");
    assert!(series <= 6, "{series} series: {after:?}");
}
