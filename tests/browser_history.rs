//! The chat example in a real browser (issue 22): a first visit shows the messages posted
//! before it, exactly once each, then live ones; the page shows its connection state; after a
//! reconnect the messages it missed are marked as such.
//!
//! Same setup as `tests/browser.rs` (Debian chromium + chromedriver; a loud skip without them,
//! a failure under `CI`).

#[path = "../examples/chat.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's `main` is not run here"
)]
mod chat;

#[path = "browser/driver.rs"]
mod driver;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};

use driver::Browser;

const OBSERVE: &str = "return { state: window.state, messages: window.messages };";

async fn post(http: &reqwest::Client, addr: SocketAddr, text: &str) {
    let res = http
        .post(format!("http://{addr}/messages"))
        .json(&json!({ "user": "ada", "text": text }))
        .send()
        .await
        .expect("POST /messages");
    assert_eq!(res.status(), reqwest::StatusCode::CREATED);
}

fn texts(observed: &Value) -> Vec<String> {
    observed["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|m| m["text"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_visit_shows_the_earlier_posts_once_then_live_ones() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let server = chat::app(chat::hub())
        .bind(([127, 0, 0, 1], 0))
        .await
        .unwrap();
    let addr = server.local_addr();
    for text in ["one", "two", "three"] {
        post(&http, addr, text).await;
    }
    browser.goto(&format!("http://{addr}/")).await;
    let observed = browser
        .wait_for("the three earlier posts, live", OBSERVE, |v| {
            texts(v).len() >= 3 && v["state"] == "live"
        })
        .await;
    assert_eq!(texts(&observed), ["one", "two", "three"], "{observed}");
    assert!(
        observed["messages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["replayed"] == false),
        "history on a first visit is not a replay: {observed}"
    );
    post(&http, addr, "four").await;
    let observed = browser
        .wait_for("the fourth, live", OBSERVE, |v| texts(v).len() >= 4)
        .await;
    assert_eq!(
        texts(&observed),
        ["one", "two", "three", "four"],
        "{observed}"
    );
    let shown = browser
        .eval("return document.getElementById('state').textContent;")
        .await;
    assert_eq!(shown, "● live");
    browser.close().await;
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_reconnect_the_missed_messages_are_marked_and_none_is_shown_twice() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    // The same hub across a server restart on the same port: the page resumes with its
    // Last-Event-ID and gets what was posted while it was away.
    let hub = chat::hub();
    let server = chat::app(hub.clone())
        .bind(([127, 0, 0, 1], 0))
        .await
        .unwrap();
    let addr = server.local_addr();
    post(&http, addr, "before").await;
    browser.goto(&format!("http://{addr}/")).await;
    browser
        .wait_for("the first message, live", OBSERVE, |v| {
            texts(v) == ["before"] && v["state"] == "live"
        })
        .await;
    server.shutdown(Duration::from_secs(1)).await;
    browser
        .wait_for("the page to notice", OBSERVE, |v| {
            v["state"] == "reconnecting"
        })
        .await;
    let shown = browser
        .eval("return document.getElementById('state').textContent;")
        .await;
    assert!(
        shown
            .as_str()
            .is_some_and(|s| s.contains("reconnecting in 2 s")),
        "{shown}"
    );
    // Posted while the page is away (straight to the hub: the server is down).
    hub.publish(
        "chat",
        nest::sse::SseEvent::json(&json!({ "user": "bob", "text": "missed", "ts": 0 }))
            .event("message"),
    )
    .await
    .unwrap();
    let server = bind_again(hub.clone(), addr).await;
    let observed = browser
        .wait_for("the missed message", OBSERVE, |v| texts(v).len() >= 2)
        .await;
    assert_eq!(
        texts(&observed),
        ["before", "missed"],
        "nothing twice: {observed}"
    );
    assert_eq!(observed["messages"][1]["replayed"], true, "{observed}");
    assert_eq!(observed["messages"][0]["replayed"], false, "{observed}");
    post(&http, addr, "after").await;
    let observed = browser
        .wait_for("a live message after the reconnect", OBSERVE, |v| {
            texts(v).len() >= 3
        })
        .await;
    assert_eq!(texts(&observed), ["before", "missed", "after"]);
    assert_eq!(observed["messages"][2]["replayed"], false, "{observed}");
    browser.close().await;
    server.shutdown(Duration::from_secs(1)).await;
}

/// Binds the chat again on `addr` (the port may take a moment to be free).
async fn bind_again(hub: nest::sse::hub::Hub, addr: SocketAddr) -> nest::Server {
    let mut last = String::new();
    for _ in 0..50 {
        match chat::app(hub.clone()).bind(addr).await {
            Ok(server) => return server,
            Err(err) => last = err.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot bind {addr} again: {last}");
}
