//! Bounds and bad input on the in-memory store, over HTTP: each refusal is a 4xx or 5xx whose
//! message names the problem or the limit, and the stream is unchanged afterwards.
//!
//! Run: `cargo test -p nest-durable --test limits`.

use std::time::Duration;

use nest_core::test_util::TestServer;
use nest_core::NestApp;
use nest_durable::{DurableConfig, DurableStreams, MemoryStore};
use reqwest::{Client, StatusCode};

async fn server(config: DurableConfig) -> (TestServer, MemoryStore) {
    let store = MemoryStore::new(config).unwrap();
    let app = NestApp::new().controller(DurableStreams::new(store.clone()).at("/streams"));
    (TestServer::start(app).await, store)
}

/// The stream's whole content and tail offset.
async fn content(http: &Client, url: &str) -> (String, String) {
    let res = http.get(format!("{url}?offset=-1")).send().await.unwrap();
    let tail = res.headers()["stream-next-offset"]
        .to_str()
        .unwrap()
        .to_owned();
    (res.text().await.unwrap(), tail)
}

async fn refused(res: reqwest::Response, status: StatusCode, names: &str) {
    assert_eq!(res.status(), status);
    let body = res.text().await.unwrap();
    assert!(body.contains(names), "{body:?} does not name {names:?}");
}

#[tokio::test]
async fn bad_input_is_a_named_4xx_and_stores_nothing() {
    let (server, _) = server(DurableConfig::default().max_append_bytes(16)).await;
    let http = Client::new();
    let url = server.url("/streams/a/b");
    let put = http
        .put(&url)
        .header("content-type", "text/plain")
        .body("start");
    assert_eq!(put.send().await.unwrap().status(), 201);
    let seq = http
        .post(&url)
        .header("content-type", "text/plain")
        .header("stream-seq", "5")
        .body("+");
    assert_eq!(seq.send().await.unwrap().status(), 204);
    let before = content(&http, &url).await;
    assert_eq!(before.0, "start+");

    let get = |q: &str| http.get(format!("{url}?{q}")).send();
    refused(
        get("offset=abc").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "offset",
    )
    .await;
    refused(
        get("offset=-1&offset=now").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "twice",
    )
    .await;
    refused(
        get("offset=-1&live=forever").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "live",
    )
    .await;
    let post = || http.post(&url).header("content-type", "text/plain");
    refused(
        post().body("x".repeat(17)).send().await.unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "16 bytes",
    )
    .await;
    refused(
        http.post(&url)
            .header("content-type", "application/json")
            .body("1")
            .send()
            .await
            .unwrap(),
        StatusCode::CONFLICT,
        "Content-Type",
    )
    .await;
    refused(
        post()
            .header("stream-seq", "4")
            .body("x")
            .send()
            .await
            .unwrap(),
        StatusCode::CONFLICT,
        "Stream-Seq",
    )
    .await;
    refused(
        post().body("").send().await.unwrap(),
        StatusCode::BAD_REQUEST,
        "body",
    )
    .await;
    refused(
        post()
            .header("producer-id", "p")
            .body("x")
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "Producer-Epoch",
    )
    .await;
    let producer = |epoch: &str, seq: &str| {
        post()
            .header("producer-id", "p")
            .header("producer-epoch", epoch)
            .header("producer-seq", seq)
    };
    assert_eq!(
        producer("2", "0").body("!").send().await.unwrap().status(),
        200
    );
    let after_producer = content(&http, &url).await;
    refused(
        producer("1", "0").body("x").send().await.unwrap(),
        StatusCode::FORBIDDEN,
        "stale",
    )
    .await;
    refused(
        producer("2", "7").body("x").send().await.unwrap(),
        StatusCode::CONFLICT,
        "gap",
    )
    .await;
    refused(
        producer("3", "1").body("x").send().await.unwrap(),
        StatusCode::BAD_REQUEST,
        "Producer-Seq 0",
    )
    .await;
    refused(
        http.put(server.url("/streams/c"))
            .header("stream-ttl", "03600")
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "Stream-TTL",
    )
    .await;
    assert_eq!(content(&http, &url).await, after_producer);
    assert_eq!(after_producer.0, "start+!");
    server.shutdown().await;
}

#[tokio::test]
async fn a_full_store_says_which_limit() {
    let config = DurableConfig::default()
        .max_streams(2)
        .max_stream_bytes(8)
        .max_total_bytes(12);
    let (server, store) = server(config).await;
    let http = Client::new();
    let put = |path: &str, body: &'static str| {
        http.put(server.url(path))
            .header("content-type", "text/plain")
            .body(body)
            .send()
    };
    assert_eq!(put("/streams/one", "12345678").await.unwrap().status(), 201);
    refused(
        put("/streams/big", "123456789").await.unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "8 bytes",
    )
    .await;
    assert_eq!(put("/streams/two", "1234").await.unwrap().status(), 201);
    refused(
        put("/streams/three", "").await.unwrap(),
        StatusCode::INSUFFICIENT_STORAGE,
        "2 streams",
    )
    .await;
    let append = http
        .post(server.url("/streams/two"))
        .header("content-type", "text/plain")
        .body("5");
    refused(
        append.send().await.unwrap(),
        StatusCode::INSUFFICIENT_STORAGE,
        "12 bytes",
    )
    .await;
    assert_eq!((store.len(), store.total_bytes()), (2, 12));
    // Deleting frees room.
    assert_eq!(
        http.delete(server.url("/streams/one"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(put("/streams/three", "abc").await.unwrap().status(), 201);
    assert_eq!((store.len(), store.total_bytes()), (2, 7));
    server.shutdown().await;
}

#[tokio::test]
async fn invalid_configuration_is_an_error_naming_the_setting() {
    for (config, name) in [
        (DurableConfig::default().max_streams(0), "max_streams"),
        (
            DurableConfig::default().long_poll_timeout(Duration::ZERO),
            "long_poll_timeout",
        ),
        (
            DurableConfig::default().cache_control("a\nb"),
            "cache_control",
        ),
    ] {
        let err = MemoryStore::new(config).unwrap_err();
        assert!(err.is_config() && err.to_string().contains(name), "{err}");
    }
}

#[tokio::test]
async fn mounts_under_any_base_path_next_to_other_routes() {
    let store = MemoryStore::new(DurableConfig::default()).unwrap();
    let app = NestApp::new().controller(DurableStreams::new(store).at("/api/v2/durable"));
    let server = TestServer::start(app).await;
    let http = Client::new();
    let url = server.url("/api/v2/durable/x");
    let res = http
        .put(&url)
        .header("content-type", "text/plain")
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert!(res.headers()["location"]
        .to_str()
        .unwrap()
        .ends_with("/api/v2/durable/x"));
    assert_eq!(
        http.get(server.url("/elsewhere"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    server.shutdown().await;
}
