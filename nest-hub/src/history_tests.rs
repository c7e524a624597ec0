//! What a first subscriber gets with each `History` option, and that a reconnect ignores it.

use std::time::Duration;

use http_body_util::BodyExt;

use nest_core::sse::{LastEventId, SseBody, SseOptions};

use super::*;
use crate::*;

/// Everything the body has ready now, as text (hub frames coalesce what is retained).
async fn ready_text(body: &mut SseBody) -> String {
    let mut text = String::new();
    while let Ok(Some(frame)) = tokio::time::timeout(Duration::from_millis(50), body.frame()).await
    {
        text.push_str(std::str::from_utf8(&frame.unwrap().into_data().unwrap()).unwrap());
    }
    text
}

/// The `data:` values in `text`, in order.
fn data(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect()
}

fn hub(max_events: usize) -> Hub {
    Hub::with_backend(
        MemoryBackend::new(Retention {
            max_events,
            max_age: None,
            max_bytes: 1024 * 1024,
        }),
        HubOptions::new().keep_alive(None),
    )
}

async fn first(hub: &Hub, history: History) -> SseBody {
    hub.subscribe(
        "t",
        SubscribeOptions::from(&LastEventId(None))
            .history(history)
            .stream(SseOptions::new()),
    )
    .await
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn each_option_gives_what_it_names() {
    let hub = hub(100);
    for (i, text) in ["a", "b", "c", "d"].into_iter().enumerate() {
        hub.publish("t", text).await.unwrap();
        if i == 1 {
            tokio::time::advance(Duration::from_secs(60)).await;
        }
    }
    assert!(data(&ready_text(&mut first(&hub, History::None).await).await).is_empty());
    assert_eq!(
        data(&ready_text(&mut first(&hub, History::Last(3)).await).await),
        ["b", "c", "d"]
    );
    assert_eq!(
        data(&ready_text(&mut first(&hub, History::Latest).await).await),
        ["d"]
    );
    // "a" and "b" were published a minute before "c" and "d".
    assert_eq!(
        data(&ready_text(&mut first(&hub, History::Since(Duration::from_secs(30))).await).await),
        ["c", "d"]
    );
    // Then live events, once each.
    let mut body = first(&hub, History::Latest).await;
    assert_eq!(data(&ready_text(&mut body).await), ["d"]);
    hub.publish("t", "e").await.unwrap();
    assert_eq!(data(&ready_text(&mut body).await), ["e"]);
}

#[tokio::test(start_paused = true)]
async fn asking_for_more_than_is_retained_gives_what_is_retained_without_a_gap() {
    let hub = hub(2);
    for text in ["a", "b", "c"] {
        hub.publish("t", text).await.unwrap();
    }
    let text = ready_text(&mut first(&hub, History::Last(50)).await).await;
    assert_eq!(data(&text), ["b", "c"]);
    assert!(
        !text.contains("event: reset"),
        "history is not a gap: {text}"
    );
    assert_eq!(hub.stats("t").gaps, 0);
}

#[tokio::test(start_paused = true)]
async fn an_empty_topic_gives_nothing_then_live_events() {
    let hub = hub(10);
    let mut body = first(&hub, History::Last(50)).await;
    assert!(data(&ready_text(&mut body).await).is_empty());
    hub.publish("t", "first").await.unwrap();
    assert_eq!(data(&ready_text(&mut body).await), ["first"]);
}

#[tokio::test(start_paused = true)]
async fn a_reconnect_resumes_after_its_id_whatever_the_history_says() {
    let hub = hub(100);
    let mut ids = Vec::new();
    for text in ["a", "b", "c"] {
        ids.push(hub.publish("t", text).await.unwrap());
    }
    let mut body = hub
        .subscribe(
            "t",
            SubscribeOptions::from(&LastEventId(Some(ids[1].clone())))
                .history(History::Last(50))
                .stream(SseOptions::new()),
        )
        .await
        .unwrap();
    assert_eq!(data(&ready_text(&mut body).await), ["c"]);
}

#[tokio::test]
async fn backends_created_together_have_different_epochs() {
    use std::collections::HashSet;
    let epochs: HashSet<u64> = (0..64).map(|_| MemoryBackend::default().epoch()).collect();
    assert_eq!(epochs.len(), 64, "an id of one hub never matches another's");
}
