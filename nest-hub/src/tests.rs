//! Hub unit tests: replay, gaps, lag policies (on the body, without sockets).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;

use nest_core::sse::{EndReason, LastEventId, SseBody, SseEvent, SseOptions};

use super::*;
use crate::*;
use futures_util::future::BoxFuture;

async fn next(body: &mut SseBody) -> String {
    let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("a frame");
    String::from_utf8(frame.unwrap().unwrap().into_data().unwrap().to_vec()).unwrap()
}

fn ready(body: &mut SseBody) -> Option<Bytes> {
    use futures_util::FutureExt;
    body.frame()
        .now_or_never()
        .flatten()
        .map(|f| f.unwrap().into_data().unwrap())
}

fn quiet() -> HubOptions {
    HubOptions::new().keep_alive(None)
}

/// A hub whose topics keep 3 events: a subscriber lags after 4.
fn three_event_hub(options: HubOptions) -> Hub {
    let retention = Retention {
        max_events: 3,
        max_age: None,
        max_bytes: 1024 * 1024,
    };
    Hub::with_backend(MemoryBackend::new(retention), options)
}

#[tokio::test]
async fn live_events_reach_every_subscriber_with_growing_ids() {
    let hub = Hub::with_backend(MemoryBackend::default(), quiet());
    let mut a = hub.subscribe("t", &LastEventId(None)).await.unwrap();
    let mut b = hub.subscribe("t", &LastEventId(None)).await.unwrap();
    assert_eq!(hub.stats("t").subscribers, 2);
    let id = hub
        .publish("t", SseEvent::data("one").event("message"))
        .await
        .unwrap();
    let expected = format!("event: message\nid: {id}\ndata: one\n\n");
    assert_eq!(next(&mut a).await, expected);
    assert_eq!(next(&mut b).await, expected);
    let id2 = hub.publish("t", "two").await.unwrap();
    let epoch = hub.inner.backend.epoch();
    assert_eq!(HubId::parse(&id), Some(HubId::new(epoch, 1)));
    assert_eq!(HubId::parse(&id2), Some(HubId::new(epoch, 2)));
    drop(a);
    assert_eq!(hub.stats("t").subscribers, 1);
    assert_eq!(hub.stats("t").published, 2);
}

#[tokio::test]
async fn resume_replays_exactly_the_events_after_the_id() {
    let hub = Hub::with_backend(MemoryBackend::default(), quiet());
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(hub.publish("t", format!("{i}")).await.unwrap());
    }
    let mut sub = hub
        .subscribe("t", &LastEventId(Some(ids[1].clone())))
        .await
        .unwrap();
    let replay = next(&mut sub).await;
    assert_eq!(
        replay,
        format!(
            "id: {}\ndata: 2\n\nid: {}\ndata: 3\n\nid: {}\ndata: 4\n\n",
            ids[2], ids[3], ids[4]
        )
    );
    assert!(ready(&mut sub).is_none(), "no duplicates");
    hub.publish("t", "5").await.unwrap();
    assert!(next(&mut sub).await.ends_with("data: 5\n\n"));
}

#[tokio::test]
async fn unknown_or_old_ids_get_a_gap_event_carrying_the_resume_point() {
    let hub = Hub::with_backend(
        MemoryBackend::new(Retention {
            max_events: 2,
            max_age: None,
            max_bytes: 1024 * 1024,
        }),
        quiet(),
    );
    let first = hub.publish("t", "0").await.unwrap();
    for i in 1..5 {
        hub.publish("t", format!("{i}")).await.unwrap();
    }
    // From before a restart (another epoch): unknown, so the stream starts over with this
    // epoch, whose first events are no longer retained (only 4 and 5 are): a second gap says so.
    let mut restarted = hub
        .subscribe("t", &LastEventId(Some("1-3".into())))
        .await
        .unwrap();
    let epoch = hub.inner.backend.epoch();
    assert_eq!(
        next(&mut restarted).await,
        format!("event: reset\nid: {epoch}-0\ndata: {{\"reason\":\"unknown-id\"}}\n\n")
    );
    // Too old for the buffer: a gap, then what is kept (the same for the restarted stream).
    let mut old = hub.subscribe("t", &LastEventId(Some(first))).await.unwrap();
    for sub in [&mut restarted, &mut old] {
        assert_eq!(
            next(sub).await,
            format!("event: reset\nid: {epoch}-3\ndata: {{\"reason\":\"lagged\"}}\n\n")
        );
        assert_eq!(
            next(sub).await,
            format!("id: {epoch}-4\ndata: 3\n\nid: {epoch}-5\ndata: 4\n\n")
        );
        assert!(ready(sub).is_none());
    }
    assert_eq!(hub.stats("t").gaps, 3);
}

/// Issue 28: the hub's `retry:` heads the first event (published or gap), never a block of its
/// own (httpx-sse yields an empty message for one), and is sent once.
#[tokio::test]
async fn the_hub_retry_heads_the_first_event() {
    let hub = Hub::with_backend(
        MemoryBackend::default(),
        quiet().retry(Duration::from_secs(3)),
    );
    let mut live = hub.subscribe("t", &LastEventId(None)).await.unwrap();
    assert!(ready(&mut live).is_none(), "no lone retry block");
    let one = hub.publish("t", "one").await.unwrap();
    assert_eq!(
        next(&mut live).await,
        format!("retry: 3000\nid: {one}\ndata: one\n\n")
    );
    let two = hub.publish("t", "two").await.unwrap();
    assert_eq!(next(&mut live).await, format!("id: {two}\ndata: two\n\n"));
    let mut reset = hub
        .subscribe("t", &LastEventId(Some("1-1".into())))
        .await
        .unwrap();
    assert!(
        next(&mut reset)
            .await
            .starts_with("retry: 3000\nevent: reset\n"),
        "the gap event carries it"
    );
}

/// Issue 28: a client that comes back after a restart with an id of the old epoch must get what
/// was published since the restart (while it was reconnecting), whatever the history option.
#[tokio::test]
async fn a_client_from_before_a_restart_gets_every_event_of_the_new_epoch() {
    let before = Hub::with_backend(MemoryBackend::default(), quiet());
    let old_id = before.publish("t", "before").await.unwrap();
    drop(before);
    // The restart: a new in-process hub, and messages posted while the page reconnects.
    let hub = Hub::with_backend(MemoryBackend::default(), quiet());
    let mut published = String::new();
    for text in ["during 1", "during 2"] {
        let id = hub.publish("t", text).await.unwrap();
        published.push_str(&format!("id: {id}\ndata: {text}\n\n"));
    }
    let epoch = hub.inner.backend.epoch();
    for history in [History::None, History::Latest, History::Last(1)] {
        let options = SseOptions::new().keep_alive(None);
        let last = LastEventId(Some(old_id.clone()));
        let mut sub = hub
            .subscribe(
                "t",
                SubscribeOptions::from(&last)
                    .history(history)
                    .stream(options),
            )
            .await
            .unwrap();
        assert_eq!(
            next(&mut sub).await,
            format!("event: reset\nid: {epoch}-0\ndata: {{\"reason\":\"unknown-id\"}}\n\n"),
            "{history:?}"
        );
        assert_eq!(
            next(&mut sub).await,
            published,
            "{history:?}: nothing posted during the reconnect is lost"
        );
        assert!(ready(&mut sub).is_none(), "no duplicates");
        let live = hub.publish("t", "after").await.unwrap();
        let live = format!("id: {live}\ndata: after\n\n");
        assert_eq!(next(&mut sub).await, live);
        published.push_str(&live);
    }
}

#[tokio::test]
async fn a_lagging_subscriber_gets_a_gap_event_and_goes_on() {
    let hub = three_event_hub(quiet());
    let mut slow = hub.subscribe("t", &LastEventId(None)).await.unwrap();
    for i in 0..10 {
        hub.publish("t", format!("{i}")).await.unwrap();
    }
    let gap = next(&mut slow).await;
    assert!(
        gap.starts_with("event: reset\n") && gap.contains("lagged"),
        "{gap}"
    );
    let rest = next(&mut slow).await;
    assert!(
        rest.contains("data: 7\n") && rest.contains("data: 9\n") && !rest.contains("data: 6\n"),
        "{rest}"
    );
    assert_eq!(hub.stats("t").gaps, 1);
}

/// A subscriber keeps its topic, not its hub: one that lags after the hub was dropped cannot
/// get a gap event (its id is the hub's) and ends as a lag-closed one does.
#[tokio::test]
async fn a_subscriber_that_lags_after_its_hub_was_dropped_ends() {
    let hub = three_event_hub(quiet());
    let reasons = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = reasons.clone();
    let mut slow = hub
        .subscribe("t", &LastEventId(None))
        .await
        .unwrap()
        .on_cancel(move |r| seen.lock().unwrap().push(r));
    for i in 0..10 {
        hub.publish("t", format!("{i}")).await.unwrap();
    }
    drop(hub);
    let end = tokio::time::timeout(Duration::from_secs(5), slow.frame())
        .await
        .expect("the end of the stream");
    assert!(end.is_none(), "the stream ends");
    assert_eq!(*reasons.lock().unwrap(), [EndReason::Overflow]);
}

/// A subscriber keeps its topic's backend, not its hub: with the hub dropped, the backend
/// (Redis's read loop, say) still runs, until the last subscriber goes.
#[tokio::test]
async fn a_subscriber_keeps_the_backend_running_after_its_hub_is_dropped() {
    struct Watched(MemoryBackend, std::sync::Arc<std::sync::atomic::AtomicBool>);
    impl Drop for Watched {
        fn drop(&mut self) {
            self.1.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
    impl HubBackend for Watched {
        fn epoch(&self) -> u64 {
            self.0.epoch()
        }
        fn topic(&self, name: &str) -> std::sync::Arc<dyn BackendTopic> {
            self.0.topic(name)
        }
    }
    let dropped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let backend = Watched(MemoryBackend::default(), dropped.clone());
    let hub = Hub::with_backend(backend, quiet());
    let body = hub.subscribe("t", &LastEventId(None)).await.unwrap();
    drop(hub);
    let is_dropped = || dropped.load(std::sync::atomic::Ordering::SeqCst);
    assert!(!is_dropped(), "kept by the subscriber's topic");
    drop(body);
    assert!(is_dropped(), "gone with the last subscriber");
}

#[tokio::test]
async fn a_lagging_subscriber_is_closed_with_the_close_policy() {
    let hub = three_event_hub(quiet().lag(LagPolicy::Close));
    let reasons = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = reasons.clone();
    let mut slow = hub
        .subscribe(
            "t",
            SubscribeOptions::from(&LastEventId(None))
                .stream(SseOptions::new().on_cancel(move |r| seen.lock().unwrap().push(r))),
        )
        .await
        .unwrap();
    for i in 0..10 {
        hub.publish("t", format!("{i}")).await.unwrap();
    }
    let end = tokio::time::timeout(Duration::from_secs(5), slow.frame())
        .await
        .expect("the end of the stream");
    assert!(end.is_none(), "the stream ends");
    assert_eq!(*reasons.lock().unwrap(), [EndReason::Overflow]);
    assert_eq!(hub.stats("t").lag_closes, 1);
}

#[tokio::test(start_paused = true)]
async fn retention_by_age() {
    let hub = Hub::with_backend(
        MemoryBackend::new(Retention {
            max_events: 100,
            max_age: Some(Duration::from_secs(60)),
            max_bytes: 1024 * 1024,
        }),
        quiet(),
    );
    let old = hub.publish("t", "old").await.unwrap();
    tokio::time::advance(Duration::from_secs(61)).await;
    hub.publish("t", "new").await.unwrap();
    let mut sub = hub.subscribe("t", &LastEventId(Some(old))).await.unwrap();
    assert!(
        next(&mut sub).await.ends_with("data: new\n\n"),
        "the id right before a kept event resumes cleanly"
    );
}

#[tokio::test]
async fn events_with_ids_or_invalid_fields_are_refused() {
    let hub = Hub::new();
    assert!(matches!(
        hub.publish("t", SseEvent::data("x").id(1)).await,
        Err(ref e) if e.is_invalid_event()
    ));
    assert!(matches!(
        hub.publish("t", SseEvent::data("x").event("a\nb")).await,
        Err(ref e) if e.is_invalid_event()
    ));
    assert_eq!(hub.stats("t").published, 0);
}

#[tokio::test]
async fn memory_backend_conformance() {
    #[cfg(feature = "test-util")]
    conformance::run(MemoryBackend::new).await;
}

#[tokio::test]
async fn retention_bounds_bytes_too_keeping_the_newest_event() {
    let hub = Hub::with_backend(
        MemoryBackend::new(Retention {
            max_events: 1000,
            max_age: None,
            max_bytes: 10 * 1024,
        }),
        quiet(),
    );
    let first = hub.publish("t", "x".repeat(4 * 1024)).await.unwrap();
    for _ in 0..9 {
        hub.publish("t", "x".repeat(4 * 1024)).await.unwrap();
    }
    // 10 events of 4 KiB: only the last two fit in 10 KiB, so resuming from the first is a gap.
    let mut sub = hub.subscribe("t", &LastEventId(Some(first))).await.unwrap();
    let frame = next(&mut sub).await;
    assert!(frame.starts_with("event: reset\n"), "{frame}");
    // An event larger than the whole bound is still kept (the newest always is).
    let big = hub.publish("t", "y".repeat(64 * 1024)).await.unwrap();
    let before_big = HubId::parse(&big).unwrap().before().to_string();
    let mut sub = hub
        .subscribe("t", &LastEventId(Some(before_big)))
        .await
        .unwrap();
    assert!(next(&mut sub).await.contains(&"y".repeat(64 * 1024)));
}

#[tokio::test(start_paused = true)]
async fn idle_topics_are_evicted_and_their_old_ids_never_match_new_events() {
    let hub = Hub::with_backend(
        MemoryBackend::default(),
        quiet().idle_topic_ttl(Duration::from_secs(60)),
    );
    let mut old_ids = Vec::new();
    for i in 0..100 {
        old_ids.push(hub.publish(&format!("room-{i}"), "hello").await.unwrap());
    }
    let held = hub.subscribe("room-0", &LastEventId(None)).await.unwrap();
    tokio::time::advance(Duration::from_secs(61)).await;
    // New names trigger the sweep: every idle topic goes, the subscribed one stays.
    for i in 0..100 {
        hub.publish(&format!("new-{i}"), "hi").await.unwrap();
    }
    let mut topics = hub.topics();
    topics.sort();
    let mut kept: Vec<String> = (0..100).map(|i| format!("new-{i}")).collect();
    kept.push("room-0".to_owned());
    kept.sort();
    assert_eq!(topics, kept, "every idle topic went, the others stayed");
    // room-1 again: its new events never reuse a number given before the eviction, so the old
    // id is not taken for a position in the new topic.
    let new_id = hub.publish("room-1", "again").await.unwrap();
    assert_ne!(new_id, old_ids[1]);
    let mut sub = hub
        .subscribe("room-1", &LastEventId(Some(old_ids[1].clone())))
        .await
        .unwrap();
    let frame = next(&mut sub).await;
    assert!(
        frame.starts_with("event: reset\n") || frame.contains("data: again\n"),
        "{frame}"
    );
    assert!(!frame.contains("data: hello"), "{frame}");
    drop(held);
}

#[tokio::test]
async fn the_topic_limit_is_a_clear_error() {
    let hub = Hub::with_backend(MemoryBackend::default(), quiet().max_topics(3));
    for i in 0..3 {
        hub.publish(&format!("t{i}"), "x").await.unwrap();
    }
    let err = hub.publish("t3", "x").await.unwrap_err();
    assert!(err.is_too_many_topics());
    assert!(err.to_string().contains("maximum of 3 topics"), "{err}");
    let err = hub.subscribe("t4", &LastEventId(None)).await.unwrap_err();
    assert!(err.is_too_many_topics());
    // Existing topics still work.
    hub.publish("t0", "y").await.unwrap();
}

#[tokio::test]
async fn resuming_at_the_newest_event_replays_nothing_and_goes_on_live() {
    let hub = Hub::with_backend(MemoryBackend::default(), quiet());
    let mut newest = String::new();
    for i in 0..3 {
        newest = hub.publish("t", format!("{i}")).await.unwrap();
    }
    let mut sub = hub
        .subscribe("t", &LastEventId(Some(newest)))
        .await
        .unwrap();
    assert!(ready(&mut sub).is_none(), "nothing to replay, no gap event");
    let id = hub.publish("t", "3").await.unwrap();
    assert_eq!(next(&mut sub).await, format!("id: {id}\ndata: 3\n\n"));
    assert_eq!(hub.stats("t").gaps, 0);

    // One past the newest was never given: unknown, so a gap event at the newest.
    let epoch = hub.inner.backend.epoch();
    let mut sub = hub
        .subscribe("t", &LastEventId(Some(format!("{epoch}-5"))))
        .await
        .unwrap();
    assert_eq!(
        next(&mut sub).await,
        format!("event: reset\nid: {epoch}-4\ndata: {{\"reason\":\"unknown-id\"}}\n\n")
    );
}

/// A client that resumes from an id older than the buffer gets the gap event even under
/// `LagPolicy::Close`: closing it would make it come back with the same id, forever. Once it has
/// caught up, falling behind again closes it.
#[tokio::test]
async fn the_close_policy_answers_a_stale_resume_with_a_gap_event() {
    let hub = three_event_hub(quiet().lag(LagPolicy::Close));
    let stale = hub.publish("t", "0").await.unwrap();
    for i in 1..10 {
        hub.publish("t", format!("{i}")).await.unwrap();
    }
    let reasons = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = reasons.clone();
    let mut sub = hub
        .subscribe(
            "t",
            SubscribeOptions::from(&LastEventId(Some(stale)))
                .stream(SseOptions::new().on_cancel(move |r| seen.lock().unwrap().push(r))),
        )
        .await
        .unwrap();
    let epoch = hub.inner.backend.epoch();
    assert_eq!(
        next(&mut sub).await,
        format!("event: reset\nid: {epoch}-7\ndata: {{\"reason\":\"lagged\"}}\n\n")
    );
    assert_eq!(
        next(&mut sub).await,
        format!("id: {epoch}-8\ndata: 7\n\nid: {epoch}-9\ndata: 8\n\nid: {epoch}-10\ndata: 9\n\n")
    );
    assert!(ready(&mut sub).is_none());
    let stats = hub.stats("t");
    assert_eq!((stats.gaps, stats.lag_closes), (1, 0), "{stats:?}");
    assert!(reasons.lock().unwrap().is_empty(), "still open");

    for i in 10..20 {
        hub.publish("t", format!("{i}")).await.unwrap();
    }
    let end = tokio::time::timeout(Duration::from_secs(5), sub.frame())
        .await
        .expect("the end of the stream");
    assert!(end.is_none(), "a subscriber that fell behind is closed");
    assert_eq!(*reasons.lock().unwrap(), [EndReason::Overflow]);
    assert_eq!(hub.stats("t").lag_closes, 1);
}

#[tokio::test]
async fn a_custom_gap_event_names_both_kinds_of_gap() {
    let hub = Hub::with_backend(
        MemoryBackend::new(Retention {
            max_events: 2,
            max_age: None,
            max_bytes: 1024 * 1024,
        }),
        quiet().gap_event("resync"),
    );
    let mut slow = hub.subscribe("t", &LastEventId(None)).await.unwrap();
    for i in 0..4 {
        hub.publish("t", format!("{i}")).await.unwrap();
    }
    let epoch = hub.inner.backend.epoch();
    assert_eq!(
        next(&mut slow).await,
        format!("event: resync\nid: {epoch}-2\ndata: {{\"reason\":\"lagged\"}}\n\n")
    );
    let mut unknown = hub
        .subscribe("t", &LastEventId(Some("elsewhere".into())))
        .await
        .unwrap();
    // No id of this hub: the client knows nothing of this epoch, so it starts over.
    assert_eq!(
        next(&mut unknown).await,
        format!("event: resync\nid: {epoch}-0\ndata: {{\"reason\":\"unknown-id\"}}\n\n")
    );
    assert_eq!(
        next(&mut unknown).await,
        format!("event: resync\nid: {epoch}-2\ndata: {{\"reason\":\"lagged\"}}\n\n")
    );
}

#[tokio::test]
async fn topics_lists_each_topic_published_or_subscribed_once() {
    let hub = Hub::with_backend(MemoryBackend::default(), quiet());
    assert_eq!(hub.topics(), Vec::<String>::new());
    hub.publish("b", "x").await.unwrap();
    hub.publish("a", "x").await.unwrap();
    hub.publish("a", "y").await.unwrap();
    let _sub = hub.subscribe("c", &LastEventId(None)).await.unwrap();
    let mut topics = hub.topics();
    topics.sort();
    assert_eq!(topics, ["a", "b", "c"]);
}

/// A backend whose store answers the first read and then fails (a lost connection, say).
struct Failing;

struct FailingTopic;

impl HubBackend for Failing {
    fn epoch(&self) -> u64 {
        7
    }

    fn topic(&self, _: &str) -> std::sync::Arc<dyn BackendTopic> {
        std::sync::Arc::new(FailingTopic)
    }
}

impl BackendTopic for FailingTopic {
    fn append(
        self: std::sync::Arc<Self>,
        _: EncodeWithSeq,
    ) -> BoxFuture<'static, Result<u64, BackendError>> {
        Box::pin(async { Err(BackendError::new("the store is unreachable")) })
    }

    fn read_after(
        self: std::sync::Arc<Self>,
        after: u64,
        _: usize,
    ) -> BoxFuture<'static, Result<Batch, BackendError>> {
        Box::pin(async move {
            match after {
                0 => Ok(Batch::Events {
                    bytes: Bytes::from_static(b"id: 7-1\ndata: kept\n\n"),
                    last: 1,
                }),
                _ => Err(BackendError::new("the store is unreachable")),
            }
        })
    }

    fn head(self: std::sync::Arc<Self>) -> BoxFuture<'static, Result<u64, BackendError>> {
        Box::pin(async { Ok(0) })
    }
}

#[tokio::test]
async fn a_failing_backend_ends_the_stream_as_failed_and_runs_the_hook_once() {
    let hub = Hub::with_backend(Failing, quiet());
    let err = hub.publish("t", "x").await.unwrap_err();
    assert!(err.is_backend(), "{err}");
    assert_eq!(hub.stats("t").published, 0);

    let reasons = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = reasons.clone();
    let mut sub = hub
        .subscribe(
            "t",
            SubscribeOptions::from(&LastEventId(None))
                .stream(SseOptions::new().on_cancel(move |r| seen.lock().unwrap().push(r))),
        )
        .await
        .unwrap();
    assert_eq!(next(&mut sub).await, "id: 7-1\ndata: kept\n\n");
    let end = tokio::time::timeout(Duration::from_secs(5), sub.frame())
        .await
        .expect("the end of the stream");
    assert!(end.is_none(), "the stream ends when the backend fails");
    assert_eq!(*reasons.lock().unwrap(), [EndReason::Failed]);
    drop(sub);
    assert_eq!(*reasons.lock().unwrap(), [EndReason::Failed], "once");
    assert_eq!(hub.stats("t").subscribers, 0);
}

// --- the memory backend at its boundaries (what cargo-mutants found unchecked) -----------------

/// An event of exactly five bytes, always the same static bytes.
fn five_bytes() -> EncodeWithSeq {
    Box::new(|_| Bytes::from_static(b"12345"))
}

fn keep(max_events: usize, max_age: Option<Duration>, max_bytes: usize) -> MemoryBackend {
    MemoryBackend::new(Retention {
        max_events,
        max_age,
        max_bytes,
    })
}

fn events(bytes: &'static [u8], last: u64) -> Batch {
    Batch::Events {
        bytes: Bytes::from_static(bytes),
        last,
    }
}

#[tokio::test]
async fn memory_retention_by_bytes_keeps_exactly_what_fits() {
    let topic = keep(100, None, 10).topic("t");
    for _ in 0..4 {
        topic.clone().append(five_bytes()).await.unwrap();
    }
    // Two events are exactly the 10-byte bound: the newest two stay, the others went.
    assert_eq!(
        topic.clone().read_after(0, usize::MAX).await.unwrap(),
        Batch::Gap { oldest: 3 }
    );
    assert_eq!(
        topic.clone().read_after(2, usize::MAX).await.unwrap(),
        events(b"1234512345", 4)
    );
}

#[tokio::test(start_paused = true)]
async fn memory_retention_by_age_keeps_an_event_exactly_as_old_as_the_limit() {
    let topic = keep(100, Some(Duration::from_secs(60)), 1024).topic("t");
    for _ in 0..2 {
        topic.clone().append(five_bytes()).await.unwrap();
    }
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(
        topic.clone().read_after(0, usize::MAX).await.unwrap(),
        events(b"1234512345", 2),
        "exactly 60 s old: kept"
    );
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(
        topic.clone().read_after(0, usize::MAX).await.unwrap(),
        Batch::Gap { oldest: 3 },
        "older: gone, and nothing is left"
    );
}

#[tokio::test]
async fn a_memory_read_takes_the_events_that_fit_in_max_bytes_and_shares_a_single_one() {
    let topic = keep(100, None, 1024).topic("t");
    for _ in 0..3 {
        topic.clone().append(five_bytes()).await.unwrap();
    }
    let read = |max_bytes| topic.clone().read_after(0, max_bytes);
    assert_eq!(read(10).await.unwrap(), events(b"1234512345", 2));
    assert_eq!(read(14).await.unwrap(), events(b"1234512345", 2));
    assert_eq!(read(15).await.unwrap(), events(b"123451234512345", 3));
    // Without waiting too, as an in-process backend can.
    assert_eq!(
        topic.try_read(0, 15).map(Result::unwrap),
        Some(events(b"123451234512345", 3))
    );
    // A single event is handed out as stored (one encoding, shared), not copied.
    let Batch::Events { bytes, .. } = topic.clone().read_after(2, usize::MAX).await.unwrap() else {
        panic!("an event");
    };
    assert_eq!(bytes.as_ptr(), b"12345".as_ptr());
}

#[tokio::test]
async fn an_evicted_memory_topic_comes_back_empty_and_numbers_after_its_old_head() {
    let backend = keep(100, None, 1024);
    let topic = backend.topic("t");
    for _ in 0..3 {
        topic.clone().append(five_bytes()).await.unwrap();
    }
    backend.evict("t");
    let again = backend.topic("t");
    assert_eq!(again.clone().head().await.unwrap(), 3, "numbers go on");
    assert_eq!(
        again.clone().read_after(0, usize::MAX).await.unwrap(),
        Batch::Gap { oldest: 4 },
        "its history went with it"
    );
    assert_eq!(again.clone().append(five_bytes()).await.unwrap(), 4);
}

/// Every subscriber of a topic gets the same bytes for an event: encoded once, never copied.
#[tokio::test]
async fn one_event_reaches_every_subscriber_as_the_same_bytes() {
    let hub = Hub::with_backend(MemoryBackend::default(), quiet());
    let mut a = hub.subscribe("t", &LastEventId(None)).await.unwrap();
    let mut b = hub.subscribe("t", &LastEventId(None)).await.unwrap();
    hub.publish("t", "once").await.unwrap();
    let frame = |body: &mut SseBody| {
        ready(body)
            .map(|bytes| bytes.as_ptr())
            .expect("a frame ready")
    };
    assert_eq!(frame(&mut a), frame(&mut b));
}

/// Idempotency keys (issue 28): 1 to 128 bytes, remembered for `IDEMPOTENCY_TTL`.
#[tokio::test(start_paused = true)]
async fn idempotency_keys_are_bounded_in_length_and_expire() {
    let hub = Hub::with_backend(MemoryBackend::default(), quiet());
    let long = "k".repeat(MAX_IDEMPOTENCY_KEY);
    for bad in [String::new(), format!("{long}k")] {
        let err = hub.publish_idempotent("t", &bad, "x").await.unwrap_err();
        assert!(err.is_invalid_event(), "{err}");
        assert!(err.to_string().contains("1 to 128 bytes"), "{err}");
    }
    let first = hub.publish_idempotent("t", &long, "x").await.unwrap();
    tokio::time::advance(IDEMPOTENCY_TTL - Duration::from_secs(1)).await;
    let retried = hub.publish_idempotent("t", &long, "x").await.unwrap();
    assert_eq!(
        retried, first,
        "within the ttl: the first id, nothing stored"
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    let late = hub.publish_idempotent("t", &long, "x").await.unwrap();
    assert_ne!(late, first, "past the ttl the key is forgotten");
    assert_eq!(hub.stats("t").published, 2);
}

/// Issue 28: a graceful shutdown delivers every event published (acknowledged) before it to the
/// open hub streams, then the final `retry:`, then the end; an in-process hub's events are gone
/// with the process, so a client would otherwise never get them.
#[tokio::test]
async fn a_graceful_shutdown_flushes_every_acknowledged_event_first() {
    let hub = Hub::with_backend(MemoryBackend::default(), quiet());
    let token = tokio_util::sync::CancellationToken::new();
    let options = SseOptions::new().shutdown_retry(Duration::from_secs(2), Duration::ZERO);
    let mut body = hub
        .subscribe(
            "t",
            SubscribeOptions::from(&LastEventId(None)).stream(options),
        )
        .await
        .unwrap();
    nest_core::test_util::attach_shutdown(&body, token.clone());
    assert!(ready(&mut body).is_none());
    let mut expected = String::new();
    for i in 0..200 {
        let id = hub.publish("t", format!("{i}")).await.unwrap();
        expected.push_str(&format!("id: {id}\ndata: {i}\n\n"));
    }
    token.cancel();
    let mut delivered = String::new();
    while let Some(frame) = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("the stream ends")
    {
        let data = frame.unwrap().into_data().unwrap();
        delivered.push_str(std::str::from_utf8(&data).unwrap());
    }
    expected.push_str("retry: 2000\n\n");
    assert_eq!(delivered, expected);
}

/// Counts the ERROR lines logged while it is the default subscriber.
#[derive(Clone, Default)]
struct ErrorLines(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ErrorLines {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if *event.metadata().level() == tracing::Level::ERROR {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// Issue 31: when the backend fails (Redis lost its data), every subscriber logged an ERROR line
/// of its own. 200 subscribers ended by one failure log one line, which counts the others.
#[tokio::test(start_paused = true)]
async fn a_backend_failure_under_many_subscribers_logs_one_line() {
    use tracing_subscriber::layer::SubscriberExt;
    let lines = ErrorLines::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(lines.clone()));
    // Other tests' threads may have registered these callsites before this subscriber existed.
    tracing::callsite::rebuild_interest_cache();
    let hub = Hub::with_backend(Failing, quiet());
    let started = tokio::time::Instant::now();
    let mut subs = Vec::new();
    for _ in 0..200 {
        subs.push(hub.subscribe("t", &LastEventId(None)).await.unwrap());
    }
    for sub in &mut subs {
        assert_eq!(next(sub).await, "id: 7-1\ndata: kept\n\n");
        let end = tokio::time::timeout(Duration::from_secs(5), sub.frame())
            .await
            .expect("the end of the stream");
        assert!(end.is_none(), "ended");
    }
    // One line per second of the hub's clock (the paused clock may run ahead while the test
    // waits), whatever the number of subscribers: here 1, unless the clock jumped.
    let logged = lines.0.load(std::sync::atomic::Ordering::SeqCst);
    let seconds = started.elapsed().as_secs() as usize;
    assert!(
        (1..=1 + seconds).contains(&logged),
        "{logged} lines for 200 subscribers in {seconds} s"
    );
    // A second later, another failure logs again.
    tokio::time::advance(Duration::from_secs(1)).await;
    let mut sub = hub.subscribe("t", &LastEventId(None)).await.unwrap();
    next(&mut sub).await;
    assert!(sub.frame().await.is_none());
    assert_eq!(
        lines.0.load(std::sync::atomic::Ordering::SeqCst),
        logged + 1
    );
}

/// `HubOptions::max_topic_name` at its edge: a name of exactly the limit is served, one byte
/// more is `is_invalid_topic` (256 by default; any other value the same way).
#[tokio::test]
async fn topic_names_up_to_the_limit_are_served() {
    let hub = Hub::with_backend(MemoryBackend::default(), quiet());
    hub.publish(&"n".repeat(256), "x").await.unwrap();
    let err = hub.publish(&"n".repeat(257), "x").await.unwrap_err();
    assert!(err.is_invalid_topic(), "{err}");
    let hub = Hub::with_backend(MemoryBackend::default(), quiet().max_topic_name(1_000));
    hub.publish(&"n".repeat(1_000), "x").await.unwrap();
    let err = hub
        .subscribe(&"n".repeat(1_001), &LastEventId(None))
        .await
        .unwrap_err();
    assert!(err.is_invalid_topic(), "{err}");
}

/// `HubOptions::keep_alive` reaches its subscribers: a comment after the interval, and nothing
/// when it is off (on the paused clock).
#[tokio::test(start_paused = true)]
async fn the_hub_keep_alive_reaches_its_subscribers() {
    let hub = Hub::with_backend(
        MemoryBackend::default(),
        HubOptions::new().keep_alive(Some(Duration::from_secs(5))),
    );
    let mut sub = hub.subscribe("t", &LastEventId(None)).await.unwrap();
    let frame = tokio::time::timeout(Duration::from_secs(6), sub.frame())
        .await
        .expect("a keep-alive within the interval")
        .unwrap()
        .unwrap();
    assert!(frame.into_data().unwrap().starts_with(b":"), "a comment");
    let hub = Hub::with_backend(MemoryBackend::default(), quiet());
    let mut sub = hub.subscribe("t", &LastEventId(None)).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_secs(3600), sub.frame())
            .await
            .is_err(),
        "no keep-alive when it is off"
    );
}
