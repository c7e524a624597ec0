//! When the app shuts down, live reads end cleanly, well within the grace period: an SSE
//! response ends (no cut connection; the client reconnects from its offset elsewhere), a
//! long-poll answers `204` with the tail.
//!
//! Run: `cargo test -p nest-durable --test shutdown`.

use std::time::{Duration, Instant};

use nest_core::NestApp;
use nest_durable::{DurableConfig, DurableStreams, MemoryStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_reads_end_cleanly_on_shutdown() {
    let store = MemoryStore::new(DurableConfig::default()).unwrap();
    let app = NestApp::new().controller(DurableStreams::new(store.clone()).at("/s"));
    let server = app.bind(([127, 0, 0, 1], 0)).await.unwrap();
    let url = format!("http://{}/s/live", server.local_addr());
    let http = reqwest::Client::new();
    let put = http
        .put(&url)
        .header("content-type", "text/plain")
        .body("a");
    assert_eq!(put.send().await.unwrap().status(), 201);

    let mut sse = http
        .get(format!("{url}?offset=-1&live=sse"))
        .send()
        .await
        .unwrap();
    let mut seen = String::new();
    while !seen.contains("upToDate") {
        seen.push_str(&String::from_utf8_lossy(
            &sse.chunk().await.unwrap().unwrap(),
        ));
    }
    let poll_url = format!("http://{}/s/poll", server.local_addr());
    assert_eq!(http.put(&poll_url).send().await.unwrap().status(), 201);
    let poll = tokio::spawn(
        http.get(format!("{poll_url}?offset=now&live=long-poll"))
            .send(),
    );
    // Both reads are in the server before it shuts down.
    tokio::time::timeout(Duration::from_secs(5), async {
        while store.live_streams() < 2 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the long-poll reaches the server");

    let started = Instant::now();
    let grace = Duration::from_secs(10);
    let shutdown = tokio::spawn(server.shutdown(grace));
    // The body ends (`None`), it is not cut (`Err`).
    while let Some(chunk) = sse.chunk().await.expect("the SSE response ends cleanly") {
        assert!(
            chunk.starts_with(b":"),
            "only keep-alives after the catch-up"
        );
    }
    let polled = poll.await.unwrap().expect("the long-poll is answered");
    assert_eq!(polled.status(), 204);
    assert_eq!(
        polled.headers()["stream-next-offset"],
        "0000000000000000_0000000000000000"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    shutdown.await.unwrap();
}
