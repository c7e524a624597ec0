//! Unit tests of the stream: keep-alive under tokio's paused clock, buffer policies, ids, hooks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;

use super::*;

async fn next(body: &mut SseBody) -> Option<Bytes> {
    body.frame().await.map(|f| f.unwrap().into_data().unwrap())
}

/// Whether the body has a frame ready right now (without letting time pass).
fn ready(body: &mut SseBody) -> Option<Bytes> {
    use futures_util::FutureExt;
    body.frame()
        .now_or_never()
        .flatten()
        .map(|f| f.unwrap().into_data().unwrap())
}

#[tokio::test(start_paused = true)]
async fn keep_alive_fires_only_after_a_whole_idle_interval() {
    let (writer, mut body) =
        get_sse_stream(SseOptions::new().keep_alive(Some(Duration::from_secs(15))));
    assert!(ready(&mut body).is_none());
    tokio::time::advance(Duration::from_secs(10)).await;
    writer.write("event").unwrap();
    assert_eq!(next(&mut body).await.unwrap(), "data: event\n\n");
    // 15 s after the start but only 5 s after the last write: no keep-alive yet.
    tokio::time::advance(Duration::from_secs(5)).await;
    assert!(ready(&mut body).is_none());
    // 15 s after the last write: one keep-alive comment.
    let start = tokio::time::Instant::now();
    assert_eq!(next(&mut body).await.unwrap(), ":\n\n");
    assert_eq!(start.elapsed(), Duration::from_secs(10));
    // And again a whole interval later.
    let start = tokio::time::Instant::now();
    assert_eq!(next(&mut body).await.unwrap(), ":\n\n");
    assert_eq!(start.elapsed(), Duration::from_secs(15));
}

#[tokio::test(start_paused = true)]
async fn keep_alive_off_sends_nothing() {
    let (_writer, mut body) = get_sse_stream(SseOptions::new().keep_alive(None));
    assert!(ready(&mut body).is_none());
    tokio::time::advance(Duration::from_secs(3600)).await;
    assert!(ready(&mut body).is_none());
}

#[tokio::test]
async fn queued_events_are_coalesced_into_one_frame() {
    let (writer, mut body) = get_sse_stream(SseOptions::new().keep_alive(None));
    for i in 0..3 {
        writer.write(format!("{i}")).unwrap();
    }
    assert_eq!(
        next(&mut body).await.unwrap(),
        "data: 0\n\ndata: 1\n\ndata: 2\n\n"
    );
}

#[tokio::test]
async fn overflow_error_refuses_and_counts() {
    let (writer, mut body) = get_sse_stream(SseOptions::new().keep_alive(None).buffer(2, 1 << 20));
    writer.write("a").unwrap();
    writer.write("b").unwrap();
    assert!(writer.write("c").unwrap_err().is_full());
    assert_eq!(writer.lost_events(), 1);
    assert_eq!(next(&mut body).await.unwrap(), "data: a\n\ndata: b\n\n");
    writer.write("d").unwrap();
}

#[tokio::test]
async fn overflow_by_bytes() {
    let (writer, _body) = get_sse_stream(SseOptions::new().keep_alive(None).buffer(100, 20));
    writer.write("0123456789").unwrap(); // 18 bytes on the wire
    assert!(writer.write("x").unwrap_err().is_full());
}

#[tokio::test]
async fn overflow_drop_oldest() {
    let (writer, mut body) = get_sse_stream(
        SseOptions::new()
            .keep_alive(None)
            .buffer(2, 1 << 20)
            .overflow(Overflow::DropOldest),
    );
    for s in ["a", "b", "c", "d"] {
        writer.write(s).unwrap();
    }
    assert_eq!(writer.lost_events(), 2);
    assert_eq!(next(&mut body).await.unwrap(), "data: c\n\ndata: d\n\n");
}

#[tokio::test]
async fn send_waits_for_room() {
    let (writer, mut body) = get_sse_stream(SseOptions::new().keep_alive(None).buffer(1, 1 << 20));
    writer.write("a").unwrap();
    let sender = {
        let writer = writer.clone();
        tokio::spawn(async move { writer.send("b").await })
    };
    tokio::task::yield_now().await;
    assert!(!sender.is_finished());
    assert_eq!(next(&mut body).await.unwrap(), "data: a\n\n");
    sender.await.unwrap().unwrap();
    assert_eq!(next(&mut body).await.unwrap(), "data: b\n\n");
    assert_eq!(writer.lost_events(), 0);
}

#[tokio::test]
async fn auto_ids_grow_and_explicit_ids_are_kept() {
    let (writer, mut body) = get_sse_stream(SseOptions::new().keep_alive(None).auto_id(42));
    writer.write("a").unwrap();
    writer.write(SseEvent::data("b").id("x")).unwrap();
    writer.write("c").unwrap();
    assert_eq!(
        next(&mut body).await.unwrap(),
        "id: 42\ndata: a\n\nid: x\ndata: b\n\nid: 43\ndata: c\n\n"
    );
}

#[tokio::test]
async fn write_encoded_shares_bytes() {
    let encoded = SseEvent::data("shared").encode().unwrap();
    let (w1, mut b1) = get_sse_stream(SseOptions::new().keep_alive(None));
    let (w2, mut b2) = get_sse_stream(SseOptions::new().keep_alive(None));
    w1.write_encoded(&encoded).unwrap();
    w2.write_encoded(&encoded).unwrap();
    let f1 = next(&mut b1).await.unwrap();
    let f2 = next(&mut b2).await.unwrap();
    assert_eq!(f1.as_ptr(), f2.as_ptr(), "one encoding, no copy");
}

#[tokio::test]
async fn hook_registered_after_the_end_runs_at_once_exactly_once() {
    let (writer, body) = get_sse_stream(SseOptions::new());
    drop(writer);
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let body = body.on_cancel(move |reason| {
        assert_eq!(reason, EndReason::WritersDropped);
        r.fetch_add(1, Ordering::SeqCst);
    });
    drop(body);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn options_hook_runs_on_drop_of_the_body() {
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let (writer, body) = get_sse_stream(SseOptions::new().on_cancel(move |reason| {
        assert_eq!(reason, EndReason::ClientGone);
        r.fetch_add(1, Ordering::SeqCst);
    }));
    drop(body);
    drop(writer);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn closed_resolves_with_the_reason() {
    let (writer, body) = get_sse_stream(SseOptions::new());
    let w = writer.clone();
    let waiter = tokio::spawn(async move { w.closed().await });
    tokio::task::yield_now().await;
    drop(body);
    assert_eq!(waiter.await.unwrap(), EndReason::ClientGone);
}
