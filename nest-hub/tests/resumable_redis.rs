//! Resumable streams on two instances sharing one Redis (each its own `Hub` and
//! `RedisBackend`): a stream started on one is read and resumed on the other, mid-stream and
//! after the end; it expires (410) and is forgotten (404) alike on both, never an empty 200; an
//! id started on both at once starts once; a cancel from the other instance stops the
//! producer; and when the producer's instance dies (its runtime shut down, so nothing finishes
//! the stream), a reader on the other instance ends with `event: error`, and the id expires.
//!
//! Redis runs once for this test binary (`redis/server.rs`: its own free port and directory,
//! stopped on drop). Without `redis-server` the test prints a loud `SKIPPED` and passes, unless
//! `CI` is set: then it fails. Every wait has a deadline and fails saying what it waited for.
//!
//! Run: `cargo test -p nest-core --features redis,test-util --test resumable_redis`.

// Shared with the Redis hub test, which also restarts Redis.
#[allow(dead_code)]
#[path = "redis/server.rs"]
mod server;

use std::future::Future;
use std::time::Duration;

use http_body_util::BodyExt;
use nest_core::sse::{LastEventId, SseBody};
use nest_hub::resumable::{Resumable, ResumableError, ResumableOptions};
use nest_hub::{Hub, HubOptions, RedisBackend, RedisConfig};
use tokio::sync::mpsc;

use server::RedisServer;

/// How long any one expected thing may take to arrive on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(20);

/// Short, so that a dead producer is noticed within the deadline.
const LEASE: Duration = Duration::from_secs(1);

/// Awaits `future` for at most [`DEADLINE`], failing with what was awaited.
async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(DEADLINE, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {DEADLINE:?}: {what}"),
    }
}

/// One instance: its own backend on the shared Redis.
async fn instance(url: &str, options: ResumableOptions) -> Resumable {
    let config = RedisConfig::new(url).prefix("resumable-test:");
    let backend = within("connect", RedisBackend::connect(config))
        .await
        .expect("connect to Redis");
    Resumable::with_options(Hub::with_backend(backend, HubOptions::new()), options)
}

/// Starts `id` on `on` with a producer that sends what the test feeds it, ending when the
/// sender is dropped.
async fn fed(on: &Resumable, id: &str) -> mpsc::UnboundedSender<&'static str> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let started = on.start(id, |out| async move {
        while let Some(text) = rx.recv().await {
            out.send(text).await?;
        }
        Ok::<_, ResumableError>(())
    });
    within("start", started).await.unwrap();
    tx
}

/// Reads `body` until its text contains `data`; returns the text read.
async fn until(body: &mut SseBody, data: &str) -> String {
    let mut text = String::new();
    while !text.contains(data) {
        let frame = within(&format!("a frame with {data:?}"), body.frame())
            .await
            .unwrap_or_else(|| panic!("the body ended before {data:?}: {text}"))
            .unwrap();
        text.push_str(std::str::from_utf8(&frame.into_data().unwrap()).unwrap());
    }
    text
}

/// Everything until the body ends.
async fn to_end(body: SseBody, what: &str) -> String {
    let all = within(what, body.collect()).await.unwrap();
    String::from_utf8(all.to_bytes().to_vec()).unwrap()
}

fn last_id(text: &str) -> String {
    let mut ids = text.lines().filter_map(|l| l.strip_prefix("id: "));
    ids.next_back().expect("an id").to_owned()
}

#[test]
fn resumable_streams_across_instances() {
    let Some(binary) = server::binary_or_skip("resumable_streams_across_instances") else {
        return;
    };
    let runtime = server::runtime();
    let mut redis = RedisServer::start(&binary);
    runtime.block_on(async {
        redis.ready().await;
        let url = redis.url();
        let options = ResumableOptions::new().lease(LEASE);
        let a = instance(&url, options.clone()).await;
        let b = instance(&url, options.clone()).await;
        resume_on_the_other_instance(&a, &b).await;
        started_once(&a, &b).await;
        cancel_from_the_other_instance(&a, &b).await;
        expiry_on_the_other_instance(&url).await;
        producer_instance_dies(&url, options, &b).await;
    });
}

/// Read and resumed on `b`, mid-stream and after the end, by `Last-Event-ID` alone.
async fn resume_on_the_other_instance(a: &Resumable, b: &Resumable) {
    let tx = fed(a, "r1").await;
    tx.send("one").unwrap();
    let mut live = within("subscribe on b", b.subscribe("r1", &LastEventId(None)))
        .await
        .unwrap();
    let after_one = LastEventId(Some(last_id(&until(&mut live, "data: one").await)));
    let mut resumed = within("resume on b", b.resume(&after_one)).await.unwrap();
    tx.send("two").unwrap();
    until(&mut resumed, "data: two").await;
    drop(tx);
    let rest = to_end(resumed, "the end of the resumed stream on b").await;
    assert!(!rest.contains("data:"), "{rest}");
    assert!(to_end(live, "the end of the live stream on b")
        .await
        .contains("data: two"));
    // After the end, on b.
    let after = within("resume after the end", b.resume(&after_one))
        .await
        .unwrap();
    let rest = to_end(after, "the rest after the end").await;
    assert!(
        rest.contains("data: two") && !rest.contains("data: one"),
        "{rest}"
    );
    eprintln!("resumed on the other instance, mid-stream and after the end");
}

/// One id started on both instances at once: one start fails with `is_exists`.
async fn started_once(a: &Resumable, b: &Resumable) {
    let producer = |_| async { Ok::<_, ResumableError>(()) };
    let (on_a, on_b) = within("two starts", async {
        tokio::join!(a.start("x1", producer), b.start("x1", producer))
    })
    .await;
    let errors: Vec<_> = [on_a, on_b].into_iter().filter_map(Result::err).collect();
    assert_eq!(errors.len(), 1, "exactly one start fails: {errors:?}");
    assert!(errors[0].is_exists(), "{:?}", errors[0]);
    eprintln!("one id started on two instances: started once");
}

/// `b` cancels a producer running on `a`.
async fn cancel_from_the_other_instance(a: &Resumable, b: &Resumable) {
    let _tx = fed(a, "c1").await;
    let reader = within("subscribe", b.subscribe("c1", &LastEventId(None)))
        .await
        .unwrap();
    assert!(within("cancel", b.cancel_anywhere("c1")).await.unwrap());
    let text = to_end(reader, "the end of the cancelled stream").await;
    assert!(
        text.contains("event: error\n") && text.ends_with("data: cancelled\n\n"),
        "{text}"
    );
    eprintln!("cancelled from the other instance");
}

/// What `b` answers for a finished stream, polled until it is forgotten: readable (with its
/// data, never empty), then expired, then unknown, in that order.
async fn expiry_on_the_other_instance(url: &str) {
    let ttl = Duration::from_millis(600);
    let options = ResumableOptions::new().lease(LEASE).ttl(ttl);
    let a = instance(url, options.clone()).await;
    let b = instance(url, options).await;
    let tx = fed(&a, "e1").await;
    tx.send("only").unwrap();
    drop(tx);
    let mut seen = Vec::new();
    within("readable, then 410, then 404", async {
        loop {
            let phase = match b.subscribe("e1", &LastEventId(None)).await {
                Ok(body) => {
                    let text = to_end(body, "a read of the finished stream").await;
                    assert!(text.contains("data: only"), "never an empty 200: {text}");
                    200
                }
                Err(err) if err.is_expired() => 410,
                Err(err) if err.is_unknown() => 404,
                Err(err) => panic!("{err}"),
            };
            if seen.last() != Some(&phase) {
                seen.push(phase);
            }
            if phase == 404 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(seen, [200, 410, 404], "the phases on b, in order");
    eprintln!("expired, then forgotten, on the other instance");
}

/// The producer's instance dies mid-stream (its runtime shut down: nothing finishes the
/// stream): `b`'s reader ends with an error event, and the id is expired.
async fn producer_instance_dies(url: &str, options: ResumableOptions, b: &Resumable) {
    let doomed = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let url = url.to_owned();
    let a = doomed.spawn(async move {
        let a = instance(&url, options).await;
        let producer = |out: nest_hub::resumable::ResumableWriter| async move {
            out.send("partial").await?;
            std::future::pending::<()>().await;
            Ok::<_, ResumableError>(())
        };
        a.start("d1", producer).await.unwrap();
        a
    });
    let a = within("start on the doomed instance", a).await.unwrap();
    let mut reader = within("subscribe", b.subscribe("d1", &LastEventId(None)))
        .await
        .unwrap();
    until(&mut reader, "data: partial").await;
    doomed.shutdown_background();
    let text = to_end(reader, "the end of a stream whose producer died").await;
    assert!(
        text.ends_with("event: error\ndata: the stream's producer was lost\n\n"),
        "{text}"
    );
    let err = within("subscribe", b.subscribe("d1", &LastEventId(None)))
        .await
        .unwrap_err();
    assert!(err.is_expired(), "never an empty 200: {err}");
    drop(a);
    eprintln!("the producer's instance died: the reader ended with an error event");
}
