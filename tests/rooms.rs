//! The rooms example over HTTP (issue 34): the cookie flow, 401 and 403 before any byte of a
//! stream, posting only where the token allows, the refresh, and CORS with credentials
//! (`withCredentials`) through nest-cors.
//!
//! Run: `cargo test -p nest-tests --test rooms`.

#[path = "../examples/rooms.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's `main` is not run here"
)]
mod rooms;

use std::time::Duration;

use nest::server::Server;
use nest::sse_client::reqwest::{self, redirect::Policy, Client, StatusCode};
use serde_json::json;

const SECRET: &[u8] = b"a test secret of thirty-two bytes";
const PAGE_ORIGIN: &str = "http://page.test:8080";

async fn serve(settings: &rooms::Settings) -> (Server, nest::sse::hub::Hub) {
    let hub = rooms::hub();
    let auth = rooms::authenticator(SECRET, false).unwrap();
    let server = rooms::app(auth, hub.clone(), settings)
        .unwrap()
        .bind(([127, 0, 0, 1], 0))
        .await
        .unwrap();
    (server, hub)
}

fn client() -> Client {
    Client::builder().redirect(Policy::none()).build().unwrap()
}

/// Signs in through the development endpoint; returns the `Cookie` header to send.
async fn login(client: &Client, base: &str, user: &str, rooms: &str) -> String {
    let res = client
        .get(format!("{base}/dev/login?user={user}&rooms={rooms}&next=/"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/");
    let set_cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set_cookie.contains("; HttpOnly") && set_cookie.contains("; SameSite=Lax"),
        "{set_cookie}"
    );
    assert!(!set_cookie.contains("Secure"), "plain HTTP: {set_cookie}");
    set_cookie.split(';').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_read_and_post_only_in_the_rooms_their_token_names() {
    let (server, _hub) = serve(&rooms::Settings::default()).await;
    let base = format!("http://{}", server.local_addr());
    let client = client();

    // No cookie: 401 with a challenge, a JSON error, never a stream.
    let res = client
        .get(format!("{base}/rooms/a/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["www-authenticate"], r#"Bearer realm="rooms""#);
    assert_eq!(res.headers()["content-type"], "application/json");

    let ada = login(&client, &base, "ada", "a,b").await;
    let bob = login(&client, &base, "bob", "b").await;
    let me = client
        .get(format!("{base}/auth/me"))
        .header("cookie", &ada)
        .send()
        .await
        .unwrap();
    let me: serde_json::Value = me.json().await.unwrap();
    assert_eq!(
        (&me["user"], &me["rooms"]),
        (&json!("ada"), &json!(["a", "b"]))
    );

    let mut stream = client
        .get(format!("{base}/rooms/b/events"))
        .header("cookie", &bob)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");

    // Bob may not read or post in a: 403 before any byte.
    for res in [
        client
            .get(format!("{base}/rooms/a/events"))
            .header("cookie", &bob)
            .send()
            .await
            .unwrap(),
        client
            .post(format!("{base}/rooms/a/messages"))
            .header("cookie", &bob)
            .json(&json!({ "text": "let me in" }))
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert!(res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope"));
    }

    // Ada posts in b as herself; bob's stream gets it.
    let res = client
        .post(format!("{base}/rooms/b/messages"))
        .header("cookie", &ada)
        .json(&json!({ "text": "hi bob" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let mut text = String::new();
    while !text.contains("hi bob") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), stream.chunk())
            .await
            .expect("an event within 5 s")
            .unwrap()
            .expect("the stream goes on");
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(
        text.contains(r#"data: {"text":"hi bob","user":"ada"}"#),
        "{text}"
    );

    // A refresh gives a new cookie for the same user and rooms.
    let res = client
        .post(format!("{base}/auth/refresh"))
        .header("cookie", &ada)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let renewed = res.headers()["set-cookie"].to_str().unwrap();
    assert!(renewed.starts_with("nest_token=") && renewed.contains("HttpOnly"));
    // And a forged cookie gets nothing.
    let res = client
        .post(format!("{base}/auth/refresh"))
        .header("cookie", "nest_token=e30.e30.e30")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_with_credentials_carries_the_cookie_flow() {
    let settings = rooms::Settings {
        cors_origin: Some(PAGE_ORIGIN.to_owned()),
        ..rooms::Settings::default()
    };
    let (server, _hub) = serve(&settings).await;
    let base = format!("http://{}", server.local_addr());
    let client = client();
    let ada = login(&client, &base, "ada", "a").await;

    // `new EventSource(url, { withCredentials: true })` from the page's origin.
    let res = client
        .get(format!("{base}/rooms/a/events"))
        .header("origin", PAGE_ORIGIN)
        .header("cookie", &ada)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["access-control-allow-origin"], PAGE_ORIGIN);
    assert_eq!(res.headers()["access-control-allow-credentials"], "true");
    drop(res);

    // Without the cookie (no `withCredentials`): 401, readable by the page's origin.
    let res = client
        .get(format!("{base}/rooms/a/events"))
        .header("origin", PAGE_ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["access-control-allow-origin"], PAGE_ORIGIN);

    // The preflight of a JSON post with credentials, then the post.
    let res = client
        .request(reqwest::Method::OPTIONS, format!("{base}/rooms/a/messages"))
        .header("origin", PAGE_ORIGIN)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(res.headers()["access-control-allow-origin"], PAGE_ORIGIN);
    assert_eq!(res.headers()["access-control-allow-credentials"], "true");
    let res = client
        .post(format!("{base}/rooms/a/messages"))
        .header("origin", PAGE_ORIGIN)
        .header("cookie", &ada)
        .json(&json!({ "text": "from the page" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["access-control-allow-credentials"], "true");

    // Another origin gets no CORS headers: its page cannot read anything.
    let res = client
        .get(format!("{base}/auth/me"))
        .header("origin", "http://evil.test")
        .header("cookie", &ada)
        .send()
        .await
        .unwrap();
    assert!(!res.headers().contains_key("access-control-allow-origin"));
    server.shutdown(Duration::from_secs(1)).await;
}
