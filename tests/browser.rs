//! Real browser end to end (issue 6): headless Chromium, driven over WebDriver (chromedriver +
//! fantoccini), opens `EventSource`s and `fetch`es against nest servers, same-origin and
//! cross-origin. Every assertion is on what the page observed (events, ids, types, errors,
//! `readyState`), plus what the servers saw. Scenario 8 (issue 8) drives the chat example's own
//! page through a post from another client and a server restart.
//!
//! Each test starts its own chromedriver (a new process group, killed on drop, also on panic)
//! and a headless Chromium with a fresh profile and no network access; at most two browsers run
//! at once (`driver::BROWSERS`). Conditions are awaited by polling the page (`driver::DEADLINE`,
//! 30 s), never by fixed sleeps.
//!
//! Without chromium/chromedriver (looked up in `PATH` and `/usr/bin`, or given by the
//! `CHROMIUM` / `CHROMEDRIVER` environment variables) the tests pass without running, unless
//! `CI` is set: then they fail. A skip is never silent: each skipped test writes
//! `SKIPPED: <test>: …` to the terminal past the test harness's capture, and to the file named
//! by `NEST_SKIP_LOG`, which `scripts/test` counts and repeats in its last line.
//!
//! Run: `cargo test -p nest-tests --test browser` (add `-- --nocapture` for timings).

#[path = "../examples/sse.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's `main` is not run here"
)]
mod example;

#[path = "../examples/chat.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's `main` is not run here"
)]
mod chat;

#[path = "browser/apps.rs"]
mod apps;
#[path = "browser/driver.rs"]
mod driver;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use nest::cors::AllowOrigin;
use nest::prelude::CorsLayer;
use nest::sse::EndReason;
use serde_json::{json, Value};

use apps::{origin, page_app, page_url, serve, stream_app, Seen, OBSERVE};
use driver::{Browser, DEADLINE};

/// How often the test streams write.
const PERIOD: Duration = Duration::from_millis(100);

/// The retry the restart test's server sends (Chromium's default is 3 s).
const RETRY: Duration = Duration::from_millis(300);

const GRACE: Duration = Duration::from_secs(1);

fn len(value: &Value) -> usize {
    value.as_array().map_or(0, Vec::len)
}

fn messages(observed: &Value) -> &Vec<Value> {
    observed["messages"]
        .as_array()
        .expect("messages is an array")
}

fn errors(observed: &Value) -> &Vec<Value> {
    observed["errors"].as_array().expect("errors is an array")
}

/// Waits (by polling, with [`DEADLINE`]) until `check` holds on the server side.
async fn wait_server(what: &str, check: impl Fn() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(
            started.elapsed() < DEADLINE,
            "timed out after {DEADLINE:?} waiting for the server: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// --- 1 and 2: the seed's example, same origin ---------------------------------------------------

/// Scenario 1: the example's page, `onmessage` on `/sse` receives `{"hello":"world"}` (the page
/// parses it with `JSON.parse`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_origin_example_page_receives_hello_world() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    let server = serve(example::app(PERIOD)).await;
    browser
        .goto(&format!("http://{}/", server.local_addr()))
        .await;

    let received = browser
        .wait_for(
            "3 parsed messages in window.received.sse",
            "return window.received.sse;",
            |v| len(v) >= 3,
        )
        .await;
    for message in received.as_array().expect("an array") {
        assert_eq!(message, &json!({ "hello": "world" }));
    }
    // `sse` is the page's own `const sse = new EventSource('/sse')`.
    assert_eq!(browser.eval("return sse.readyState;").await, 1, "OPEN");
    let shown = browser
        .eval("return document.getElementById('sse').textContent;")
        .await;
    assert!(
        shown
            .as_str()
            .is_some_and(|s| s.contains(r#"New message {"hello":"world"}"#)),
        "the page shows the messages: {shown}"
    );

    browser.close().await;
    server.shutdown(GRACE).await;
}

/// Scenario 2: `/sse2` gives `myEvent`s with `lastEventId` 1, 2, 3 to `addEventListener`, and
/// nothing to `onmessage` (the example page's own listener and a probe `EventSource`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse2_custom_event_ids_reach_add_event_listener_not_onmessage() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    let server = serve(example::app(PERIOD)).await;
    browser
        .goto(&format!("http://{}/", server.local_addr()))
        .await;
    // A probe of our own on the same page records every event type it could get.
    browser
        .eval(
            "window.probe = { myEvent: [], message: [] };
             const p = new EventSource('/sse2');
             p.onmessage = (e) => window.probe.message.push({ type: e.type, id: e.lastEventId, data: e.data });
             p.addEventListener('myEvent', (e) => window.probe.myEvent.push({ type: e.type, id: e.lastEventId, data: JSON.parse(e.data) }));
             return true;",
        )
        .await;

    let received = browser
        .wait_for(
            "3 myEvents in window.received.sse2",
            "return window.received.sse2;",
            |v| len(v) >= 3,
        )
        .await;
    for (event, id) in received
        .as_array()
        .expect("an array")
        .iter()
        .zip(["1", "2", "3"])
    {
        assert_eq!(event, &json!({ "id": id, "data": { "hello": "world" } }));
    }

    let probe = browser
        .wait_for("3 myEvents on the probe", "return window.probe;", |v| {
            len(&v["myEvent"]) >= 3
        })
        .await;
    for (event, id) in probe["myEvent"]
        .as_array()
        .expect("an array")
        .iter()
        .zip(["1", "2", "3"])
    {
        assert_eq!(
            event,
            &json!({ "type": "myEvent", "id": id, "data": { "hello": "world" } })
        );
    }
    assert_eq!(
        probe["message"],
        json!([]),
        "onmessage got nothing from /sse2"
    );
    let shown = browser
        .eval("return document.getElementById('sse2').textContent;")
        .await;
    let shown = shown.as_str().expect("text");
    assert!(
        shown.contains("myEvent id=1 "),
        "the page shows the events: {shown}"
    );
    assert!(
        !shown.contains("should not happen"),
        "the example page's onmessage fired: {shown}"
    );

    browser.close().await;
    server.shutdown(GRACE).await;
}

// --- 3: cross origin ---------------------------------------------------------------------------

/// Opens the page on `page` with an `EventSource` to `src` and waits for `count` messages.
async fn expect_events(browser: &Browser, page: SocketAddr, src: &str, credentials: bool) {
    browser.goto(&page_url(page, Some(src), credentials)).await;
    let observed = browser
        .wait_for(
            &format!("2 messages from {src} (withCredentials: {credentials})"),
            OBSERVE,
            |v| len(&v["messages"]) >= 2,
        )
        .await;
    assert_eq!(observed["opened"], 1, "open fired once: {observed}");
    let first = &messages(&observed)[..2];
    assert_eq!(first[0]["id"], "1", "{observed}");
    assert_eq!(first[0]["data"], json!({ "n": 1 }), "{observed}");
    assert_eq!(first[1]["id"], "2", "{observed}");
    assert_eq!(errors(&observed), &Vec::<Value>::new(), "{observed}");
    assert_eq!(observed["readyState"], 1, "OPEN: {observed}");
}

/// Opens the page on `page` with an `EventSource` to `src` and expects the browser to refuse it:
/// `error` fires, no `open`, no message, although the server got the request (`hits`).
async fn expect_refused(
    browser: &Browser,
    page: SocketAddr,
    src: &str,
    credentials: bool,
    hits: impl Fn() -> usize,
) {
    let before = hits();
    browser.goto(&page_url(page, Some(src), credentials)).await;
    let observed = browser
        .wait_for(
            &format!("an error from {src} (withCredentials: {credentials})"),
            OBSERVE,
            |v| len(&v["errors"]) >= 1,
        )
        .await;
    wait_server("the refused request reached the server", || hits() > before).await;
    // The server answered with a stream: make sure its events had time to arrive, by a round
    // trip from the page to the page server, then look again.
    browser.eval("window.ping('/'); return true;").await;
    let observed_later = browser
        .wait_for("the ping to return", OBSERVE, |v| {
            v["ping"].as_str().is_some_and(|p| p != "pending")
        })
        .await;
    for observed in [&observed, &observed_later] {
        assert_eq!(observed["opened"], 0, "no open event: {observed}");
        assert_eq!(
            messages(observed),
            &Vec::<Value>::new(),
            "no message: {observed}"
        );
    }
    eprintln!(
        "refused {src} (withCredentials: {credentials}): readyState {} after {} error(s)",
        observed_later["readyState"],
        len(&observed_later["errors"])
    );
}

/// Scenario 3: a page on one port, streams on others. With nest-cors the events arrive; without
/// a CORS layer the browser fires `error` and delivers nothing; `withCredentials` works with an
/// exact origin and credentials on, and fails against `*` without credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_origin_needs_cors_and_credentials_need_an_exact_origin() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    let page = serve(page_app()).await;
    let page_addr = page.local_addr();

    let (any_seen, _rx) = Seen::new();
    let any = serve(stream_app(
        any_seen.clone(),
        PERIOD,
        None,
        Some(CorsLayer::new()),
    ))
    .await;
    let (none_seen, _rx) = Seen::new();
    let none = serve(stream_app(none_seen.clone(), PERIOD, None, None)).await;
    let (cred_seen, _rx) = Seen::new();
    let exact = CorsLayer::builder()
        .origin(AllowOrigin::exact(origin(page_addr)))
        .credentials(true)
        .build()
        .expect("a valid CORS configuration");
    let cred = serve(stream_app(cred_seen.clone(), PERIOD, None, Some(exact))).await;
    assert_ne!(page_addr.port(), any.local_addr().port());

    // nest-cors, any origin: the events arrive.
    let any_src = format!("http://{}/stream", any.local_addr());
    expect_events(&browser, page_addr, &any_src, false).await;
    // Without withCredentials the page's cookie stays home.
    assert_eq!(any_seen.cookies(), vec![None]);

    // No CORS layer: the browser refuses the response.
    let none_src = format!("http://{}/stream", none.local_addr());
    expect_refused(&browser, page_addr, &none_src, false, || {
        none_seen.stream_hits.load(Ordering::SeqCst)
    })
    .await;

    // withCredentials + an exact origin with credentials: the events arrive.
    let cred_src = format!("http://{}/stream", cred.local_addr());
    expect_events(&browser, page_addr, &cred_src, true).await;
    // With it, the cookie the page set for 127.0.0.1 went along.
    assert_eq!(cred_seen.cookies(), vec![Some("nest_page=1".to_owned())]);

    // withCredentials against `*` without credentials: refused.
    expect_refused(&browser, page_addr, &any_src, true, || {
        any_seen.stream_hits.load(Ordering::SeqCst)
    })
    .await;

    browser.close().await;
    for server in [page, any, none, cred] {
        server.shutdown(GRACE).await;
    }
}

// --- 4: close() runs the server's cancel hook ---------------------------------------------------

/// Scenario 4: `eventSource.close()` in the page makes the server's cancel hook run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_in_the_page_runs_the_cancel_hook() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    let page = serve(page_app()).await;
    let (seen, mut cancels) = Seen::new();
    let stream = serve(stream_app(
        seen.clone(),
        PERIOD,
        None,
        Some(CorsLayer::new()),
    ))
    .await;
    let src = format!("http://{}/stream", stream.local_addr());
    browser
        .goto(&page_url(page.local_addr(), Some(&src), false))
        .await;
    browser
        .wait_for("2 messages", OBSERVE, |v| len(&v["messages"]) >= 2)
        .await;
    assert!(
        cancels.try_recv().is_err(),
        "the cancel hook ran before close()"
    );

    let state = browser
        .eval("window.es.close(); return window.es.readyState;")
        .await;
    assert_eq!(state, 2, "CLOSED right after close()");
    let count_at_close = len(&browser.eval(OBSERVE).await["messages"]);

    let reason = tokio::time::timeout(DEADLINE, cancels.recv())
        .await
        .expect("the cancel hook ran within the deadline")
        .expect("the channel is open");
    assert_eq!(reason, EndReason::ClientGone);
    assert_eq!(seen.stream_hits.load(Ordering::SeqCst), 1);

    // After a round trip to the stream server, still no new message and no reconnection.
    browser
        .eval(&format!(
            "window.ping('http://{}/ping'); return true;",
            stream.local_addr()
        ))
        .await;
    let observed = browser
        .wait_for("the ping to return", OBSERVE, |v| v["ping"] == "pong")
        .await;
    assert_eq!(len(&observed["messages"]), count_at_close, "{observed}");
    assert_eq!(observed["readyState"], 2, "{observed}");
    assert_eq!(seen.stream_hits.load(Ordering::SeqCst), 1);

    browser.close().await;
    page.shutdown(GRACE).await;
    stream.shutdown(GRACE).await;
}

// --- 5: restart, retry and Last-Event-ID ---------------------------------------------------------

/// Scenario 5: stop the stream server and start it again on the same port: the browser keeps
/// reconnecting (CONNECTING, not CLOSED) and reaches the new server with `Last-Event-ID` = the
/// last id it saw, and the server resumes from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_reconnects_after_retry_with_last_event_id() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    let page = serve(page_app()).await;
    let (seen, _rx) = Seen::new();
    let stream = serve(stream_app(
        seen.clone(),
        PERIOD,
        Some(RETRY),
        Some(CorsLayer::new()),
    ))
    .await;
    let addr = stream.local_addr();
    let src = format!("http://{addr}/stream");
    browser
        .goto(&page_url(page.local_addr(), Some(&src), false))
        .await;
    browser
        .wait_for("3 messages", OBSERVE, |v| len(&v["messages"]) >= 3)
        .await;
    assert_eq!(seen.last_event_ids(), vec![None], "a first connection");

    stream.shutdown(GRACE).await;
    // The stream ended (error #1, CONNECTING); after `retry` the browser tries again and is
    // refused (error #2, still CONNECTING): it keeps trying while the server is down. Errors
    // come after every event of the ended stream was dispatched, so the last id is final.
    let down = browser
        .wait_for("2 errors while the server is down", OBSERVE, |v| {
            len(&v["errors"]) >= 2
        })
        .await;
    for error in errors(&down) {
        assert_eq!(error["readyState"], 0, "CONNECTING, not CLOSED: {down}");
    }
    // That the browser waits the server's `retry` is shown by scenario 5b, by the order of the
    // requests a server sees (not by the page's clock).
    let seen_before = messages(&down).len();
    let last_id: u64 = messages(&down)
        .last()
        .and_then(|m| m["id"].as_str())
        .and_then(|id| id.parse().ok())
        .expect("a numeric last id");
    assert_eq!(
        seen_before as u64, last_id,
        "ids 1..=last without gaps: {down}"
    );

    // Start again on the same port (retry while the old socket is being released).
    let (seen2, _rx2) = Seen::new();
    let started = Instant::now();
    let stream = loop {
        match stream_app(seen2.clone(), PERIOD, Some(RETRY), Some(CorsLayer::new()))
            .bind(addr)
            .await
        {
            Ok(server) => break server,
            Err(err) => {
                assert!(
                    started.elapsed() < DEADLINE,
                    "cannot bind {addr} again: {err}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let resumed = browser
        .wait_for("a message from the restarted server", OBSERVE, |v| {
            len(&v["messages"]) > seen_before
        })
        .await;
    let next = &messages(&resumed)[seen_before];
    assert_eq!(next["id"], (last_id + 1).to_string(), "{resumed}");
    assert_eq!(next["data"], json!({ "n": last_id + 1 }), "{resumed}");
    assert_eq!(resumed["readyState"], 1, "OPEN again: {resumed}");
    assert_eq!(
        seen2.last_event_ids().first(),
        Some(&Some(last_id.to_string())),
        "the reconnection carried Last-Event-ID"
    );

    browser.close().await;
    page.shutdown(GRACE).await;
    stream.shutdown(GRACE).await;
}

/// Scenario 5b: the server's `retry` sets the reconnection delay. Two `EventSource`s on one page
/// get one event each and the end of their stream: `fast` with `retry: 100`, `slow` with
/// `retry: 60000`. By the time the server has seen `fast` connect four times, it has seen `slow`
/// once; a browser that ignored `retry` (Chromium's default is 3 s for both) would have sent
/// `slow`'s second request before `fast`'s fourth. Each reconnection carries the id before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_retry_orders_the_reconnections() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    let page = serve(page_app()).await;
    let (seen, _rx) = Seen::new();
    let stream = serve(stream_app(
        seen.clone(),
        PERIOD,
        None,
        Some(CorsLayer::new()),
    ))
    .await;
    browser
        .goto(&page_url(page.local_addr(), None, false))
        .await;
    browser
        .eval(&format!(
            "window.briefs = {{ fast: [], slow: [] }};
             for (const [name, retry] of [['fast', 100], ['slow', 60000]]) {{
               const es = new EventSource('http://{}/brief?name=' + name + '&retry=' + retry);
               es.onmessage = (e) => window.briefs[name].push(e.lastEventId);
             }}
             return true;",
            stream.local_addr()
        ))
        .await;
    let count = |name: &str| seen.briefs().iter().filter(|(n, _)| n == name).count();
    wait_server("four requests from `fast`", || count("fast") >= 4).await;
    let briefs = seen.briefs();
    let ids = |name: &str| -> Vec<Option<String>> {
        briefs
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, id)| id.clone())
            .collect()
    };
    assert_eq!(
        ids("slow"),
        [None],
        "slow: its first request only: {briefs:?}"
    );
    assert_eq!(
        ids("fast")[..4],
        [
            None,
            Some("1".to_owned()),
            Some("2".to_owned()),
            Some("3".to_owned())
        ],
        "fast: each reconnection after the event before it: {briefs:?}"
    );
    let received = browser
        .wait_for("fast's first three events", "return window.briefs;", |v| {
            len(&v["fast"]) >= 3
        })
        .await;
    assert_eq!(
        received["fast"].as_array().expect("an array")[..3],
        [json!("1"), json!("2"), json!("3")],
        "{received}"
    );
    assert_eq!(received["slow"], json!(["1"]), "{received}");

    browser.close().await;
    page.shutdown(GRACE).await;
    stream.shutdown(GRACE).await;
}

// --- 6: 403 and 204 stop the EventSource -------------------------------------------------------

/// Chromium's reconnection delay when the server sent no `retry`: an observation window longer
/// than this would see a reconnection.
const DEFAULT_RECONNECT_MS: u64 = 3000;

async fn expect_closed_for_good(
    browser: &Browser,
    page: SocketAddr,
    stream: SocketAddr,
    path: &str,
    hits: impl Fn() -> usize,
) {
    let src = format!("http://{stream}{path}");
    browser.goto(&page_url(page, Some(&src), false)).await;
    let observed = browser
        .wait_for(&format!("{path}: error and CLOSED"), OBSERVE, |v| {
            len(&v["errors"]) >= 1 && v["readyState"] == 2
        })
        .await;
    assert_eq!(
        errors(&observed)[0]["readyState"],
        2,
        "CLOSED in the error handler: {observed}"
    );
    // Observe for longer than the default reconnection delay (measured on the page's clock),
    // then do one more round trip to the same server.
    let window = DEFAULT_RECONNECT_MS + 500;
    browser
        .wait_for(
            "the observation window",
            &format!("return performance.now() - window.state.errors[0].t > {window};"),
            |v| v == true,
        )
        .await;
    browser
        .eval(&format!(
            "window.ping('http://{stream}/ping'); return true;"
        ))
        .await;
    let observed = browser
        .wait_for("the ping to return", OBSERVE, |v| v["ping"] == "pong")
        .await;
    assert_eq!(observed["opened"], 0, "{observed}");
    assert_eq!(messages(&observed), &Vec::<Value>::new(), "{observed}");
    assert_eq!(
        len(&observed["errors"]),
        1,
        "one error, no reconnection: {observed}"
    );
    assert_eq!(observed["readyState"], 2, "still CLOSED: {observed}");
    assert_eq!(hits(), 1, "{path}: exactly one request, no reconnect storm");
}

/// Scenario 6: a handler that answers 403 before streaming, or 204: `error`, CLOSED, one request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_and_no_content_close_the_event_source() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    let page = serve(page_app()).await;
    let (seen, _rx) = Seen::new();
    let stream = serve(stream_app(
        seen.clone(),
        PERIOD,
        None,
        Some(CorsLayer::new()),
    ))
    .await;

    expect_closed_for_good(
        &browser,
        page.local_addr(),
        stream.local_addr(),
        "/forbidden",
        || seen.forbidden_hits.load(Ordering::SeqCst),
    )
    .await;
    expect_closed_for_good(
        &browser,
        page.local_addr(),
        stream.local_addr(),
        "/empty",
        || seen.empty_hits.load(Ordering::SeqCst),
    )
    .await;

    browser.close().await;
    page.shutdown(GRACE).await;
    stream.shutdown(GRACE).await;
}

// --- 7: a preflighted fetch through the CORS layer ----------------------------------------------

/// Scenario 7: a cross-origin PUT with JSON and `x-custom-req` is preflighted and passes the CORS
/// layer; `x-exposed` (in `exposed_headers`) is readable, `x-hidden` is not. A layer that does
/// not allow `x-custom-req` stops it at the preflight: the handler never runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflighted_put_passes_cors_and_reads_exposed_headers() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    let page = serve(page_app()).await;
    let page_origin = origin(page.local_addr());
    let (seen, _rx) = Seen::new();
    let cors = CorsLayer::builder()
        .origin(AllowOrigin::exact(page_origin.clone()))
        .exposed_headers(["x-exposed"])
        .build()
        .expect("a valid CORS configuration");
    let api = serve(stream_app(seen.clone(), PERIOD, None, Some(cors))).await;

    browser
        .goto(&page_url(page.local_addr(), None, false))
        .await;
    browser
        .eval(&format!(
            "window.put('http://{}/echo'); return true;",
            api.local_addr()
        ))
        .await;
    let observed = browser
        .wait_for("the PUT to finish", OBSERVE, |v| v["put"].is_object())
        .await;
    let put = &observed["put"];
    assert_eq!(put["status"], 200, "{put}");
    assert_eq!(put["exposed"], "visible", "x-exposed is readable: {put}");
    assert_eq!(put["hidden"], Value::Null, "x-hidden is not exposed: {put}");
    assert_eq!(
        put["body"],
        json!({ "method": "PUT", "x-custom-req": "from-the-page", "body": { "hello": "world", "n": 7 } }),
    );
    assert_eq!(seen.echo_hits.load(Ordering::SeqCst), 1);

    // The same request against a layer that allows only `content-type`: the preflight fails.
    let (strict_seen, _rx) = Seen::new();
    let strict = CorsLayer::builder()
        .origin(AllowOrigin::exact(page_origin))
        .allowed_headers(["content-type"])
        .exposed_headers(["x-exposed"])
        .build()
        .expect("a valid CORS configuration");
    let strict_api = serve(stream_app(strict_seen.clone(), PERIOD, None, Some(strict))).await;
    browser
        .eval(&format!(
            "window.put('http://{}/echo'); return true;",
            strict_api.local_addr()
        ))
        .await;
    let observed = browser
        .wait_for("the refused PUT to finish", OBSERVE, |v| {
            v["put"].is_object()
        })
        .await;
    let put = &observed["put"];
    assert!(
        put["error"]
            .as_str()
            .is_some_and(|e| e.contains("TypeError")),
        "the fetch failed: {put}"
    );
    assert_eq!(
        strict_seen.echo_hits.load(Ordering::SeqCst),
        0,
        "the PUT never reached the handler"
    );

    browser.close().await;
    for server in [page, api, strict_api] {
        server.shutdown(GRACE).await;
    }
}

// --- 8: the chat example across a server restart (issue 8) --------------------------------------

/// What the chat page observed: its `EventSource`'s state, the messages, the resets.
const CHAT_OBSERVE: &str =
    "return { readyState: source.readyState, messages: window.messages, resets: window.resets };";

/// Posts `{user, text}` to the chat at `addr` as another client (not the page) and expects 201.
async fn post_chat(http: &reqwest::Client, addr: SocketAddr, user: &str, text: &str) {
    let res = http
        .post(format!("http://{addr}/messages"))
        .json(&json!({ "user": user, "text": text }))
        .send()
        .await
        .expect("POST /messages");
    assert_eq!(res.status(), reqwest::StatusCode::CREATED, "POST /messages");
}

/// Asserts that the page holds exactly one message, from `user` with `text` (and a timestamp).
fn assert_only_message(observed: &Value, user: &str, text: &str) {
    let messages = messages(observed);
    assert_eq!(messages.len(), 1, "exactly one message: {observed}");
    assert_eq!(messages[0]["user"], user, "{observed}");
    assert_eq!(messages[0]["text"], text, "{observed}");
    assert!(messages[0]["ts"].is_u64(), "a numeric ts: {observed}");
}

/// Scenario 8: the chat example's page receives what another client posts; after a server restart
/// (a new hub: the in-process buffer and its ids are gone) the browser reconnects with its old
/// `Last-Event-ID`, gets the hub's `reset` gap event, clears its messages, and then receives new
/// posts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_page_receives_posts_and_resyncs_after_a_restart() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    let http = reqwest::Client::builder()
        .timeout(DEADLINE)
        .build()
        .expect("a reqwest client");
    let hub = chat::hub();
    let server = serve(chat::app(hub.clone())).await;
    let addr = server.local_addr();
    browser.goto(&format!("http://{addr}/")).await;

    // The page's `const source = new EventSource('/events')` is open and the hub counts it.
    browser
        .wait_for("the chat page's EventSource to open", CHAT_OBSERVE, |v| {
            v["readyState"] == 1
        })
        .await;
    wait_server("one subscriber on the hub", || {
        hub.stats("chat").subscribers == 1
    })
    .await;

    // Another client posts: the page gets exactly that message.
    post_chat(&http, addr, "alice", "hello from another client").await;
    let observed = browser
        .wait_for("the posted message on the page", CHAT_OBSERVE, |v| {
            len(&v["messages"]) >= 1
        })
        .await;
    assert_only_message(&observed, "alice", "hello from another client");
    assert_eq!(observed["resets"], 0, "{observed}");
    assert_eq!(hub.stats("chat").published, 1);

    // Restart: the old server (and its hub's buffer) goes away, a new app with a new hub is bound
    // on the same address (retry while the old socket is being released).
    let restart = Instant::now();
    server.shutdown(GRACE).await;
    drop(hub);
    let hub = chat::hub();
    let server = loop {
        match chat::app(hub.clone()).bind(addr).await {
            Ok(server) => break server,
            Err(err) => {
                assert!(
                    restart.elapsed() < DEADLINE,
                    "cannot bind {addr} again: {err}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };

    // The browser reconnects (after `retry: 2000`) with the old Last-Event-ID, which the new hub
    // does not know: it sends `reset`, and the page clears its messages.
    let observed = browser
        .wait_for("the reset event after the restart", CHAT_OBSERVE, |v| {
            v["resets"].as_u64() >= Some(1) && v["readyState"] == 1
        })
        .await;
    eprintln!(
        "chat: resynced {:?} after the restart began",
        restart.elapsed()
    );
    assert_eq!(observed["resets"], 1, "exactly one reset: {observed}");
    assert_eq!(
        messages(&observed),
        &Vec::<Value>::new(),
        "the page cleared its messages: {observed}"
    );
    let stats = hub.stats("chat");
    assert_eq!(stats.gaps, 1, "the new hub sent one gap event: {stats:?}");
    assert_eq!(
        stats.subscribers, 1,
        "the page is subscribed again: {stats:?}"
    );
    assert_eq!(stats.published, 0, "{stats:?}");

    // New posts reach the page: exactly the one posted after the restart.
    post_chat(&http, addr, "bob", "after the restart").await;
    let observed = browser
        .wait_for("the message posted after the restart", CHAT_OBSERVE, |v| {
            len(&v["messages"]) >= 1
        })
        .await;
    assert_only_message(&observed, "bob", "after the restart");
    assert_eq!(observed["resets"], 1, "no further reset: {observed}");
    assert_eq!(observed["readyState"], 1, "OPEN: {observed}");

    browser.close().await;
    server.shutdown(GRACE).await;
}
