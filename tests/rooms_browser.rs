//! The rooms example in Chromium (issue 34): an `EventSource` authorized by an `HttpOnly`
//! cookie, same-origin and cross-origin with `withCredentials`; a page without the cookie gets
//! the error path (the server answers 401, the page gets no event); and a token that expires
//! mid-stream leads to `reauth`, a refreshed cookie and a resume with no lost event.
//!
//! The harness is `tests/browser/driver.rs`: without chromium/chromedriver the tests skip
//! loudly (stderr and `NEST_SKIP_LOG`), and fail when `CI` is set.
//!
//! Run: `cargo test -p nest-tests --test rooms_browser` (add `-- --nocapture` for timings).

#[path = "../examples/rooms.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's `main` is not run here"
)]
mod rooms;

#[path = "browser/driver.rs"]
#[allow(dead_code, reason = "the harness serves several test binaries")]
mod driver;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nest::server::Server;
use nest::sse::hub::Hub;
use nest::sse::SseEvent;
use nest::{NestApp, Request, Response};
use serde_json::{json, Value};
use tower::util::BoxCloneSyncService;
use tower::ServiceExt;

use driver::{Browser, DEADLINE};

const SECRET: &[u8] = b"a test secret of thirty-two bytes";

/// What the page saw (`window.state` of the example's page).
const OBSERVE: &str = "return window.state;";

/// The (path, status) of every response a server gave.
type Answers = Arc<Mutex<Vec<(String, u16)>>>;

/// Records the path and status of every response of `app` into `answers`.
fn recording(app: NestApp, answers: &Answers) -> NestApp {
    let answers = answers.clone();
    app.layer(tower::layer::layer_fn(
        move |inner: BoxCloneSyncService<Request, Response, Infallible>| {
            let answers = answers.clone();
            tower::service_fn(move |req: Request| {
                let inner = inner.clone();
                let answers = answers.clone();
                let path = req.uri().path().to_owned();
                async move {
                    let res = inner.oneshot(req).await?;
                    answers.lock().unwrap().push((path, res.status().as_u16()));
                    Ok::<_, Infallible>(res)
                }
            })
        },
    ))
}

/// A rooms server; its hub (to publish from the test) and what it answered.
async fn serve(settings: &rooms::Settings) -> (Server, Hub, Answers) {
    let hub = rooms::hub();
    let auth = rooms::authenticator(SECRET, false).unwrap();
    let answers = Answers::default();
    let app = recording(rooms::app(auth, hub.clone(), settings).unwrap(), &answers);
    let server = app.bind(([127, 0, 0, 1], 0)).await.unwrap();
    (server, hub, answers)
}

fn count(answers: &Answers, path: &str, status: u16) -> usize {
    answers
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, s)| p == path && *s == status)
        .count()
}

/// A message as a bot on the server side posts it.
async fn publish(hub: &Hub, room: &str, text: &str) {
    let event = SseEvent::json(&json!({ "user": "bot", "text": text }));
    hub.publish(&format!("rooms/{room}"), event).await.unwrap();
}

fn texts(state: &Value) -> Vec<String> {
    state["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Signs in through the development endpoint, which sets the cookie and redirects to `next`.
async fn sign_in(browser: &Browser, server: &Server, user: &str, rooms: &str, next: &str) {
    let next: String = next
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    browser
        .goto(&format!(
            "http://{}/dev/login?user={user}&rooms={rooms}&next={next}",
            server.local_addr()
        ))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_origin_the_cookie_authorizes_the_stream_and_posts_in_named_rooms_only() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    let (server, hub, answers) = serve(&rooms::Settings::default()).await;
    sign_in(&browser, &server, "ada", "a,b", "/?room=a").await;
    browser
        .wait_for("the stream to open", OBSERVE, |s| s["opened"] == json!(1))
        .await;
    assert_eq!(browser.eval(OBSERVE).await["me"], "ada");
    // The cookie is HttpOnly: the page's script cannot read it.
    assert_eq!(browser.eval("return document.cookie;").await, "");

    publish(&hub, "a", "from the server").await;
    assert_eq!(
        browser.eval("return await window.post('from ada');").await,
        201
    );
    let state = browser
        .wait_for("two messages", OBSERVE, |s| texts(s).len() >= 2)
        .await;
    assert_eq!(texts(&state), ["from the server", "from ada"]);
    assert_eq!(state["messages"][1]["user"], "ada");

    // A room the token does not name: 403 for a post and for a stream.
    let status = browser
        .eval("return (await fetch('/rooms/c/messages', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{\"text\":\"x\"}' })).status;")
        .await;
    assert_eq!(status, 403);
    let status = browser
        .eval("return (await fetch('/rooms/c/events')).status;")
        .await;
    assert_eq!(status, 403);
    assert_eq!(count(&answers, "/rooms/a/events", 200), 1);
    browser.close().await;
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_origin_with_credentials_the_cookie_authorizes_the_stream() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    // The page's server (another port: another origin), then the API that allows it.
    let (page, _page_hub, _) = serve(&rooms::Settings::default()).await;
    let settings = rooms::Settings {
        cors_origin: Some(format!("http://{}", page.local_addr())),
        ..rooms::Settings::default()
    };
    let (api, hub, answers) = serve(&settings).await;
    // The cookie is set by the API's host (127.0.0.1: cookies ignore ports); `next` is a page
    // that opens no stream.
    sign_in(&browser, &api, "ada", "a", "/auth/me").await;
    browser
        .goto(&format!(
            "http://{}/?api=http://{}&room=a",
            page.local_addr(),
            api.local_addr()
        ))
        .await;
    browser
        .wait_for("the cross-origin stream to open", OBSERVE, |s| {
            s["opened"] == json!(1)
        })
        .await;
    assert_eq!(
        browser.eval("return window.source.withCredentials;").await,
        true
    );
    assert_eq!(
        browser.eval("return window.source.url;").await,
        format!("http://{}/rooms/a/events", api.local_addr())
    );
    publish(&hub, "a", "across origins").await;
    assert_eq!(browser.eval("return await window.post('back');").await, 201);
    let state = browser
        .wait_for("two messages", OBSERVE, |s| texts(s).len() >= 2)
        .await;
    assert_eq!(texts(&state), ["across origins", "back"]);
    assert_eq!(count(&answers, "/rooms/a/events", 200), 1);
    assert_eq!(count(&answers, "/rooms/a/events", 401), 0);
    browser.close().await;
    api.shutdown(Duration::from_secs(1)).await;
    page.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_cookie_the_page_gets_the_error_path_and_no_event() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    let (server, hub, answers) = serve(&rooms::Settings::default()).await;
    browser
        .goto(&format!("http://{}/?room=a", server.local_addr()))
        .await;
    let state = browser
        .wait_for(
            "the EventSource to fail and close, and the refresh to be refused",
            "return { state: window.state, readyState: window.source ? window.source.readyState : null };",
            |s| {
                s["readyState"] == json!(2)
                    && s["state"]["closed"] == json!(1)
                    && s["state"]["refusals"] == json!(1)
            },
        )
        .await;
    assert_eq!(state["state"]["me"], "anonymous");
    assert_eq!(state["state"]["opened"], 0);
    assert_eq!(
        count(&answers, "/rooms/a/events", 401),
        1,
        "the server saw the 401"
    );
    assert_eq!(count(&answers, "/rooms/a/events", 200), 0);
    // The page's one refresh attempt was refused too, and it did not try again.
    assert_eq!(count(&answers, "/auth/refresh", 401), 1);

    publish(&hub, "a", "private").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let state = browser.eval(OBSERVE).await;
    assert!(texts(&state).is_empty(), "{state}");
    assert_eq!(
        count(&answers, "/rooms/a/events", 401),
        1,
        "no reconnection loop"
    );
    browser.close().await;
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_expiring_mid_stream_is_refreshed_and_the_stream_resumes_without_loss() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    // Tokens of 2 s (`exp` in whole seconds: each lives 1 to 2 s), so the stream ends with
    // `reauth` several times while the bot posts.
    let settings = rooms::Settings {
        token_ttl: Duration::from_secs(2),
        ..rooms::Settings::default()
    };
    let (server, hub, answers) = serve(&settings).await;
    sign_in(&browser, &server, "ada", "a", "/?room=a").await;
    browser
        .wait_for("the stream to open", OBSERVE, |s| s["opened"] == json!(1))
        .await;

    let sent: Vec<String> = (1..=40).map(|n| n.to_string()).collect();
    let started = Instant::now();
    for text in &sent {
        publish(&hub, "a", text).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("published 40 messages over {:?}", started.elapsed());
    let state = browser
        .wait_for("all 40 messages", OBSERVE, |s| texts(s).len() >= sent.len())
        .await;
    assert_eq!(texts(&state), sent, "every message, in order");
    assert_eq!(state["duplicates"], 0, "none delivered twice: {state}");
    let reauths = state["reauths"].as_u64().unwrap();
    let refreshed = state["refreshed"].as_u64().unwrap();
    let opened = state["opened"].as_u64().unwrap();
    eprintln!(
        "reauth events {reauths}, refreshes {refreshed}, streams opened {opened}, state {state}"
    );
    assert!(reauths >= 1, "the token expired mid-stream: {state}");
    assert!(
        refreshed >= 1 && opened >= 2,
        "refreshed and resumed: {state}"
    );
    let resumed = count(&answers, "/rooms/a/events", 200);
    assert!(resumed >= 2, "the server served the resumes: {resumed}");
    assert!(started.elapsed() < DEADLINE * 2);
    browser.close().await;
    server.shutdown(Duration::from_secs(1)).await;
}
