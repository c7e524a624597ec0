//! Issue 32: a hub subscriber and a resumable stream are each one `SseBody` whose event source
//! is the hub's cursor, so every stream is counted once: one `nest_sse_streams_ended_total`,
//! and `nest_sse_events_total` / `nest_sse_bytes_total` equal to what the client received.
//! (Before, a resumable stream was a hub body inside a second body: it ended twice, once as
//! `client_gone`, and its bytes were counted by both.) A local recorder per test: no global
//! state shared between tests.

use std::time::Duration;

use http_body_util::BodyExt;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::MetricKind;
use nest_core::sse::{LastEventId, SseBody};
use nest_hub::resumable::Resumable;
use nest_hub::{Hub, SubscribeOptions};

/// Runs `test` on a current-thread runtime with a recorder of its own; the counters it left.
fn counted<F: std::future::Future<Output = usize>>(test: impl FnOnce() -> F) -> (usize, Counters) {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let received = metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(test())
    });
    let mut counters = Counters::default();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let (kind, key) = key.into_parts();
        let DebugValue::Counter(n) = value else {
            continue;
        };
        if kind != MetricKind::Counter {
            continue;
        }
        match key.name() {
            "nest_sse_streams_ended_total" => {
                let reason = key.labels().next().map(|l| l.value().to_owned());
                counters.ended.push((reason.unwrap_or_default(), n));
            }
            "nest_hub_gaps_total" => {
                let reason = key.labels().next().map(|l| l.value().to_owned());
                counters.gaps.push((reason.unwrap_or_default(), n));
            }
            "nest_sse_events_total" => counters.events += n,
            "nest_sse_bytes_total" => counters.bytes += n,
            _ => {}
        }
    }
    counters.ended.retain(|(_, n)| *n > 0);
    (received, counters)
}

#[derive(Debug, Default)]
struct Counters {
    ended: Vec<(String, u64)>,
    events: u64,
    bytes: u64,
    /// `nest_hub_gaps_total` by reason, zeros included.
    gaps: Vec<(String, u64)>,
}

impl Counters {
    /// One stream ended, for `reason`, having carried `events` events in `received` bytes.
    fn one_stream(&self, reason: &str, events: u64, received: usize) {
        assert_eq!(self.ended, vec![(reason.to_owned(), 1)], "{self:?}");
        assert_eq!(self.events, events, "{self:?}");
        assert_eq!(self.bytes, received as u64, "{self:?}");
    }
}

async fn read_all(body: SseBody) -> String {
    let bytes = tokio::time::timeout(Duration::from_secs(10), body.collect())
        .await
        .expect("the stream ends")
        .unwrap()
        .to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn a_resumable_stream_is_one_stream_in_the_metrics() {
    let (received, counters) = counted(|| async {
        let streams = Resumable::new(Hub::new());
        streams
            .start("s1", |out| async move {
                for token in ["a", "b", "c"] {
                    out.send(token).await?;
                }
                Ok::<_, nest_hub::ResumableError>(())
            })
            .await
            .unwrap();
        let body = streams.subscribe("s1", &LastEventId(None)).await.unwrap();
        let text = read_all(body).await;
        assert_eq!(text.matches("data: ").count(), 3, "{text}");
        text.len()
    });
    counters.one_stream("closed", 3, received);
}

#[test]
fn a_hub_subscriber_is_one_stream_in_the_metrics() {
    let (received, mut counters) = counted(|| async {
        let hub = Hub::new();
        for text in ["a", "b"] {
            hub.publish("t", text).await.unwrap();
        }
        let how = SubscribeOptions::new().history(nest_hub::History::Last(2));
        let mut body = hub.subscribe("t", how).await.unwrap();
        let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
        drop(body);
        frame.len()
    });
    counters.one_stream("client_gone", 2, received);
    // The hub's series exist at 0 from the hub's making on (a dashboard sees them at once).
    counters.gaps.sort();
    assert_eq!(
        counters.gaps,
        vec![("lagged".to_owned(), 0), ("unknown-id".to_owned(), 0)],
        "{counters:?}"
    );
}
