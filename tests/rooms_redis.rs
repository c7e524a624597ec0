//! The rooms example on the Redis hub backend (issue 34): authorization sits above the backend,
//! so two instances sharing one Redis check the same tokens the same way. A user's stream on
//! one instance gets what is posted on the other; a token that does not name the room is 403 on
//! both; a token that expires ends the stream with `reauth`, and the refreshed cookie resumes on
//! the *other* instance after the last id, with nothing lost.
//!
//! Needs Debian's `redis-server` (see `nest-hub/tests/redis.rs`): without it the test skips
//! loudly, and fails when `CI` is set.
//!
//! Run: `cargo test -p nest-tests --features redis --test rooms_redis`.
#![cfg(feature = "redis")]

#[path = "../examples/rooms.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's `main` is not run here"
)]
mod rooms;

#[path = "../nest-hub/tests/redis/server.rs"]
#[allow(dead_code, reason = "shared with nest-hub's Redis tests")]
mod server;

use std::future::Future;
use std::time::Duration;

use nest::server::Server;
use nest::sse::hub::{Hub, HubOptions, RedisBackend, RedisConfig};
use nest::sse_client::reqwest::{redirect::Policy, Client, Response, StatusCode};
use serde_json::json;

const SECRET: &[u8] = b"a test secret of thirty-two bytes";

/// How long any one expected thing may take on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(20);

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {DEADLINE:?}: {what}"))
}

/// One instance of the app on the shared Redis.
async fn instance(url: &str, settings: &rooms::Settings) -> Server {
    let config = RedisConfig::new(url).prefix("rooms-test:");
    let backend = within("connect to Redis", RedisBackend::connect(config))
        .await
        .expect("connect to Redis");
    let hub = Hub::with_backend(backend, HubOptions::new().retry(Duration::from_secs(1)));
    let auth = rooms::authenticator(SECRET, false).unwrap();
    rooms::app(auth, hub, settings)
        .unwrap()
        .bind(([127, 0, 0, 1], 0))
        .await
        .unwrap()
}

async fn login(client: &Client, server: &Server, user: &str, rooms: &str) -> String {
    let res = client
        .get(format!(
            "http://{}/dev/login?user={user}&rooms={rooms}",
            server.local_addr()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let cookie = res.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

/// Reads `stream` until `needle` has arrived; returns all it read.
async fn read_until(stream: &mut Response, needle: &str) -> String {
    let mut text = String::new();
    while !text.contains(needle) {
        let chunk = within(needle, stream.chunk())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("the stream ended before {needle:?}; it sent: {text}"));
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    text
}

#[test]
fn two_instances_on_one_redis_authorize_alike_and_resume_across_after_reauth() {
    let Some(binary) = server::binary_or_skip("rooms_on_redis") else {
        return;
    };
    let runtime = server::runtime();
    let mut redis = server::RedisServer::start(&binary);
    runtime.block_on(async {
        redis.ready().await;
        scenario(&redis.url()).await;
    });
}

async fn scenario(url: &str) {
    // Tokens of 2 s (`exp` in whole seconds: 1 to 2 s), so the first stream ends soon.
    let settings = rooms::Settings {
        token_ttl: Duration::from_secs(2),
        ..rooms::Settings::default()
    };
    let one = instance(url, &settings).await;
    let two = instance(url, &settings).await;
    let client = Client::builder().redirect(Policy::none()).build().unwrap();
    let ada = login(&client, &one, "ada", "a").await;
    let bob = login(&client, &two, "bob", "b").await;

    let mut stream = client
        .get(format!("http://{}/rooms/a/events", one.local_addr()))
        .header("cookie", &ada)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);

    // Posted on instance two, delivered on instance one.
    let post = |server: &Server, cookie: &str, text: &str| {
        client
            .post(format!("http://{}/rooms/a/messages", server.local_addr()))
            .header("cookie", cookie)
            .json(&json!({ "text": text }))
            .send()
    };
    assert_eq!(
        post(&two, &ada, "one").await.unwrap().status(),
        StatusCode::CREATED
    );
    let text = read_until(&mut stream, "\"one\"").await;
    let last_id = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("id: "))
        .expect("the event's id")
        .to_owned();

    // Bob's token does not name room a, on either instance.
    for server in [&one, &two] {
        let res = client
            .get(format!("http://{}/rooms/a/events", server.local_addr()))
            .header("cookie", &bob)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            post(server, &bob, "x").await.unwrap().status(),
            StatusCode::FORBIDDEN
        );
    }

    // Ada's token expires: `reauth`, then the end.
    let text = read_until(&mut stream, "event: reauth\n").await;
    assert!(text.contains("retry: 500\n"), "{text}");
    assert!(
        within("the end after reauth", stream.chunk())
            .await
            .unwrap()
            .is_none(),
        "the stream ends after reauth"
    );
    // Meanwhile the room goes on; her expired cookie can no longer post.
    assert_eq!(
        post(&one, &ada, "x").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let carol = login(&client, &two, "carol", "a").await;
    assert_eq!(
        post(&two, &carol, "two").await.unwrap().status(),
        StatusCode::CREATED
    );

    // Refreshed on instance two, resumed on instance two after the last id seen on one.
    let res = client
        .post(format!("http://{}/auth/refresh", two.local_addr()))
        .header("cookie", &ada)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let renewed = res.headers()["set-cookie"].to_str().unwrap();
    let renewed = renewed.split(';').next().unwrap().to_owned();
    let mut resumed = client
        .get(format!("http://{}/rooms/a/events", two.local_addr()))
        .header("cookie", &renewed)
        .header("last-event-id", &last_id)
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), StatusCode::OK);
    let text = read_until(&mut resumed, "\"two\"").await;
    assert!(!text.contains("\"one\""), "resumed after one: {text}");
    assert!(!text.contains("event: reset"), "no gap: {text}");
    drop(resumed);
    one.shutdown(Duration::from_secs(1)).await;
    two.shutdown(Duration::from_secs(1)).await;
}
