//! The client and its test helpers against a real nest app on 127.0.0.1:0
//! (nest-core's `TestServer`): what a test of a nest server does with them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nest_core::prelude::*;
use nest_core::test_util::TestServer;
use nest_sse_client::reqwest::StatusCode;
use nest_sse_client::testing::TestStream;
use nest_sse_client::{EventSource, ReadyState};

/// What the routes share with the test.
#[derive(Default)]
struct Shared {
    /// Requests to `/closing`.
    closing_hits: AtomicUsize,
    /// The writer of the last `/held` stream.
    held: Mutex<Option<SseWriter>>,
}

struct App(Arc<Shared>);

impl Controller for App {
    fn routes(r: &mut Routes<Self>) {
        // A chat after a restart: the client's id is unknown, so history
        // starts over with `reset`, then the messages.
        r.sse("/chat", |_: Arc<Self>, last: LastEventId| async move {
            let (writer, body) = get_sse_stream(SseOptions::new());
            if last.0.is_some() {
                writer.write(SseEvent::data("").event("reset")).unwrap();
            }
            for (id, text) in [(1, "hello"), (2, "world")] {
                writer.write(SseEvent::data(text).id(id)).unwrap();
            }
            body
        });
        // Accepts and ends at once.
        r.sse("/closing", |this: Arc<Self>| async move {
            this.0.closing_hits.fetch_add(1, Ordering::SeqCst);
            let (writer, body) = get_sse_stream(SseOptions::new());
            writer.close();
            body
        });
        // Stays open; the test writes through the kept writer.
        r.sse("/held", |this: Arc<Self>| async move {
            let (writer, body) = get_sse_stream(SseOptions::new());
            *this.0.held.lock().unwrap() = Some(writer);
            body
        });
        // Two events over two connections, then 204.
        r.sse("/twice", |_: Arc<Self>, last: LastEventId| async move {
            let id = match last.as_u64() {
                None => 1,
                Some(1) => 2,
                Some(_) => return Err(StatusCode::NO_CONTENT),
            };
            let (writer, body) = get_sse_stream(SseOptions::new());
            writer
                .write(SseEvent::data(id.to_string()).id(id).retry_ms(10))
                .unwrap();
            writer.close();
            Ok(body)
        });
    }
}

async fn start() -> (TestServer, Arc<Shared>) {
    let shared = Arc::new(Shared::default());
    let app = NestApp::new().controller(App(Arc::clone(&shared)));
    (TestServer::start(app).await, shared)
}

#[tokio::test]
async fn next_matching_skips_past_the_reset() {
    let (server, _) = start().await;
    let source = EventSource::builder(server.url("/chat"))
        .last_event_id("from-before-the-restart")
        .build()
        .unwrap();
    let mut stream = TestStream::new(source);
    let first = stream
        .next_matching(|e| e.event == "message")
        .await
        .unwrap();
    assert_eq!((first.data.as_str(), first.id.as_str()), ("hello", "1"));
    // The `reset` was skipped (it shows the id the client started with).
    let skipped = &stream.received()[1];
    assert!(skipped.starts_with("event \"reset\""), "{skipped}");
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn expect_no_event_passes_a_quiet_hour_at_once_and_fails_on_an_event() {
    let (server, shared) = start().await;
    let mut stream = TestStream::connect(server.url("/held")).unwrap();
    stream.expect_open().await.unwrap();
    // An hour on the paused clock: nest's keep-alive comments arrive, no event.
    stream
        .expect_no_event(Duration::from_secs(3600))
        .await
        .unwrap();
    let comments = stream
        .received()
        .iter()
        .filter(|r| r.starts_with("comment"))
        .count();
    assert!(comments >= 200, "a keep-alive every 15 s: {comments}");

    let writer = shared
        .held
        .lock()
        .unwrap()
        .clone()
        .expect("the stream's writer");
    writer.write(SseEvent::data("late").event("late")).unwrap();
    let error = stream
        .expect_no_event(Duration::from_secs(60))
        .await
        .unwrap_err();
    assert!(error.is_unexpected(), "{error}");
    assert!(error.to_string().contains("event \"late\""), "{error}");
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_route_that_accepts_and_closes_reaches_the_retry_limit() {
    let (server, shared) = start().await;
    let source = EventSource::builder(server.url("/closing"))
        .retry(Duration::from_millis(10))
        .max_retries(3)
        .build()
        .unwrap();
    let mut stream = TestStream::new(source);
    for _ in 0..3 {
        assert!(stream.expect_error().await.unwrap().is_ended());
    }
    assert!(stream.expect_error().await.unwrap().is_retry_limit());
    stream.expect_end().await.unwrap();
    assert_eq!(shared.closing_hits.load(Ordering::SeqCst), 4);
    server.shutdown().await;
}

#[tokio::test]
async fn the_usual_loop_reads_to_the_204() {
    let (server, _) = start().await;
    let mut events = EventSource::new(server.url("/twice"))
        .unwrap()
        .into_events();
    let mut ids = Vec::new();
    let read = async {
        while let Some(event) = events.next().await {
            ids.push(event?.id);
        }
        Ok::<_, nest_sse_client::Error>(())
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the stream ends within 10 s")
        .unwrap();
    assert_eq!(ids, ["1", "2"]);
    assert_eq!(events.get_ref().ready_state(), ReadyState::Closed);
    let status = events.get_ref().response().map(|head| head.status());
    assert_eq!(status, Some(StatusCode::NO_CONTENT));
    server.shutdown().await;
}
