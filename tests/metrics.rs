//! The metrics nest records, read through a test recorder after a scripted session: requests
//! by route and status, connections by protocol, SSE streams open and ended, events, losses,
//! and hub gaps. Exact counts. (One test per binary: the recorder is process-wide.)

use std::sync::Arc;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::MetricKind;
use nest_core::prelude::*;
use nest_core::sse::Overflow;
use nest_hub::Hub;

struct Session {
    hub: Hub,
}

impl Controller for Session {
    fn routes(r: &mut Routes<Self>) {
        r.get("/ping", |_: Arc<Self>| async { "pong" });
        // A client too slow for three events in a buffer of one: two are dropped.
        r.sse("/stream", |_: Arc<Self>| async {
            let (writer, body) = get_sse_stream(
                SseOptions::new()
                    .keep_alive(None)
                    .buffer(1, 1024)
                    .overflow(Overflow::DropOldest),
            );
            for i in 0..3 {
                writer.write(format!("{i}")).unwrap();
            }
            body.on_cancel(move |_| drop(writer))
        });
        r.sse("/hub", |this: Arc<Self>, last: LastEventId| async move {
            this.hub
                .subscribe("t", &last)
                .await
                .map_err(|e| HttpException::service_unavailable(e.to_string()))
        });
    }
}

/// One snapshot of the recorder (taking it resets the counters).
type Snapshot = Vec<(
    metrics_util::CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    DebugValue,
)>;

/// The value of metric `name` whose labels include all of `labels`, if any.
fn value<'a>(
    snapshot: &'a Snapshot,
    kind: MetricKind,
    name: &str,
    labels: &[(&str, &str)],
) -> Option<&'a DebugValue> {
    snapshot
        .iter()
        .find(|(key, _, _, _)| {
            key.kind() == kind
                && key.key().name() == name
                && labels
                    .iter()
                    .all(|(k, v)| key.key().labels().any(|l| l.key() == *k && l.value() == *v))
        })
        .map(|(_, _, _, value)| value)
}

fn counter(snapshot: &Snapshot, name: &str, labels: &[(&str, &str)]) -> u64 {
    match value(snapshot, MetricKind::Counter, name, labels) {
        Some(DebugValue::Counter(n)) => *n,
        None => 0,
        other => panic!("{name}: {other:?}"),
    }
}

fn gauge(snapshot: &Snapshot, name: &str, labels: &[(&str, &str)]) -> f64 {
    match value(snapshot, MetricKind::Gauge, name, labels) {
        Some(DebugValue::Gauge(g)) => g.into_inner(),
        None => 0.0,
        other => panic!("{name}: {other:?}"),
    }
}

/// Waits (bounded) until `cond` holds, failing with `what` otherwise.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_session_gives_exact_counts() {
    let recorder = DebuggingRecorder::new();
    let s = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this test binary");

    let hub = Hub::new();
    let app = NestApp::new()
        .controller(Session { hub: hub.clone() })
        .into_service()
        .unwrap();
    let server = nest_core::Server::bind(([127, 0, 0, 1], 0), app.clone())
        .await
        .unwrap();
    let url = |path: &str| format!("http://{}{path}", server.local_addr());
    let client = reqwest::Client::new();
    for _ in 0..2 {
        let res = client.get(url("/ping")).send().await.unwrap();
        assert_eq!(res.text().await.unwrap(), "pong");
    }
    assert_eq!(client.get(url("/nope")).send().await.unwrap().status(), 404);

    // A stream that lost two events to its buffer, read, then dropped by the client.
    let mut res = client.get(url("/stream")).send().await.unwrap();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(10), res.chunk())
            .await
            .expect("a frame")
            .unwrap()
            .unwrap(),
        "data: 2\n\n"
    );
    assert_eq!(app.live_sse_streams(), 1);
    drop(res);
    until("the stream to end", || app.live_sse_streams() == 0).await;

    // A hub subscriber resuming from an unknown id gets a gap event, then one live event.
    let mut sub = client
        .get(url("/hub"))
        .header("last-event-id", "0-99")
        .send()
        .await
        .unwrap();
    let gap = tokio::time::timeout(Duration::from_secs(10), sub.chunk())
        .await
        .expect("the gap event")
        .unwrap()
        .unwrap();
    assert!(gap.starts_with(b"event: reset\n"), "{gap:?}");
    hub.publish("t", "live").await.unwrap();
    let live = tokio::time::timeout(Duration::from_secs(10), sub.chunk())
        .await
        .expect("the live event")
        .unwrap()
        .unwrap();
    assert!(live.ends_with(b"data: live\n\n"), "{live:?}");
    drop(sub);
    drop(client);
    until("the hub stream to end", || app.live_sse_streams() == 0).await;
    // Shutdown returns once every connection is closed.
    server.shutdown(Duration::from_secs(1)).await;

    // The recorder's snapshots reset counters: one snapshot for every count.
    let snapshot: Snapshot = s.snapshot().into_vec();
    let s = &snapshot;
    let get_ok = [("method", "GET"), ("status", "200")];
    let requests = |route: &str| {
        counter(
            s,
            "nest_http_requests_total",
            &[("route", route), get_ok[0], get_ok[1]],
        )
    };
    assert_eq!(requests("/ping"), 2);
    assert_eq!(requests("/stream"), 1);
    assert_eq!(requests("/hub"), 1);
    assert_eq!(
        counter(
            s,
            "nest_http_requests_total",
            &[("route", "<unmatched>"), ("status", "404")]
        ),
        1
    );
    assert!(matches!(
        value(s, MetricKind::Histogram, "nest_http_request_duration_seconds", &[("route", "/ping")]),
        Some(DebugValue::Histogram(h)) if h.len() == 2
    ));
    // Events handed to connections: on /stream one of three writes (two were dropped by its
    // one-event buffer), one live event by the hub (its gap event is not one).
    assert_eq!(counter(s, "nest_sse_events_total", &[]), 2);
    assert_eq!(
        counter(s, "nest_sse_events_lost_total", &[("why", "dropped")]),
        2
    );
    assert_eq!(
        counter(s, "nest_hub_gaps_total", &[("reason", "unknown-id")]),
        1
    );
    assert_eq!(
        counter(
            s,
            "nest_sse_streams_ended_total",
            &[("reason", "client_gone")]
        ),
        2
    );
    assert_eq!(
        gauge(s, "nest_sse_streams_open", &[("route", "/stream")]),
        0.0
    );
    assert_eq!(gauge(s, "nest_sse_streams_open", &[("route", "/hub")]), 0.0);
    assert_eq!(
        gauge(s, "nest_connections_open", &[("protocol", "http1")]),
        0.0
    );
    let expected = "data: 2\n\n".len() + gap.len() + live.len();
    assert_eq!(
        counter(s, "nest_sse_bytes_total", &[]),
        expected as u64,
        "every frame handed to a connection"
    );
}
