//! The official Durable Streams conformance suite (npm, 0.3.6) against the Redis store, on a
//! `redis-server` of its own (free port, temp directory, stopped by pid); then two nest
//! instances on that Redis: the same stream, the same offsets, and an append on one wakes a
//! live reader on the other.
//!
//! Needs `npm`, Node 20 and `redis-server`; without them a loud skip (a failure under `CI=true`).
//! Run: `cargo test -p nest-durable --features redis --test conformance_redis -- --nocapture`.

#[path = "support/conformance.rs"]
mod suite;

#[allow(
    dead_code,
    unreachable_pub,
    reason = "shared with nest-hub's Redis tests"
)]
#[path = "../../nest-hub/tests/redis/server.rs"]
mod server;

use std::time::{Duration, Instant};

use nest_core::NestApp;
use nest_durable::{DurableConfig, DurableStreams, RedisStore};

#[test]
fn redis_store_passes_the_official_suite() {
    let Some(binary) = server::binary_or_skip("redis_store_passes_the_official_suite") else {
        return;
    };
    if suite::npm().is_none() {
        nest_core::test_util::skip(
            "redis_store_passes_the_official_suite",
            "npm is not on PATH",
        );
        return;
    }
    let dir = match suite::install() {
        Ok(dir) => dir,
        Err(why) => {
            nest_core::test_util::skip("redis_store_passes_the_official_suite", &why);
            return;
        }
    };
    let runtime = server::runtime();
    let mut redis = server::RedisServer::start(&binary);
    runtime.block_on(async {
        redis.ready().await;
        let long_poll = Duration::from_secs(2);
        let config = DurableConfig::default()
            .long_poll_timeout(long_poll)
            .max_append_bytes(16 * 1024 * 1024);
        let store = RedisStore::connect(&redis.url(), "suite:", config)
            .await
            .unwrap();
        suite::check(&dir, "redis", store, long_poll).await;
        two_instances(&redis.url()).await;
    });
}

/// Two instances on one Redis: a stream created on A is read on B with the same offsets, and
/// an append on A reaches a live SSE reader on B (woken by B's one subscription) within
/// milliseconds.
async fn two_instances(url: &str) {
    let instance = |url: String| async move {
        let store = RedisStore::connect(&url, "pair:", DurableConfig::default())
            .await
            .unwrap();
        let app = NestApp::new().controller(DurableStreams::new(store).at("/v1/stream"));
        app.bind(([127, 0, 0, 1], 0)).await.unwrap()
    };
    let a = instance(url.to_owned()).await;
    let b = instance(url.to_owned()).await;
    let on =
        |server: &nest_core::Server| format!("http://{}/v1/stream/shared", server.local_addr());
    let http = reqwest::Client::new();
    let created = http
        .put(on(&a))
        .header("content-type", "text/plain")
        .body("one ")
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let tail = created.headers()["stream-next-offset"]
        .to_str()
        .unwrap()
        .to_owned();
    let head = http.head(on(&b)).send().await.unwrap();
    assert_eq!(head.headers()["stream-next-offset"].to_str().unwrap(), tail);

    let mut live = http
        .get(format!("{}?offset={tail}&live=sse", on(&b)))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    let mut seen = String::new();
    while !seen.contains("upToDate") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), live.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let sent = Instant::now();
    let appended = http
        .post(on(&a))
        .header("content-type", "text/plain")
        .body("two")
        .send()
        .await
        .unwrap();
    assert_eq!(appended.status(), 204);
    seen.clear();
    while !seen.contains("data:two") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), live.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let latency = sent.elapsed();
    eprintln!("an append on instance A reached a live reader on instance B in {latency:?}");
    assert!(latency < Duration::from_secs(1), "{latency:?}");
    let read = http
        .get(format!("{}?offset=-1", on(&a)))
        .send()
        .await
        .unwrap();
    assert_eq!(read.text().await.unwrap(), "one two");
    drop(live);
    a.shutdown(Duration::from_secs(1)).await;
    b.shutdown(Duration::from_secs(1)).await;
}
