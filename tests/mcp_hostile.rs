//! Hostile clients against the MCP example (issue 31): session ids cannot be found by probing
//! (128 random bits, not `s<nanoseconds><counter>`), sessions are capped and expire when idle,
//! a call's stream is resumable by its own session only, and HTTP/2 clients (whose host is
//! `:authority`, not a `Host` header) are served. Issue 29: on the same endpoint, bad input of
//! either revision (malformed JSON, an unknown method, a tampered `requestState`, a version
//! the server does not speak, a rebound Host) gets the spec's error, and both revisions'
//! clients keep being served around it.

#[path = "../examples/mcp.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's `main` is not run here"
)]
mod mcp;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "hostile", "version": "1"}}})
}

async fn open_session(client: &reqwest::Client, url: &str) -> reqwest::Response {
    client
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .json(&initialize())
        .send()
        .await
        .unwrap()
}

fn session_of(res: &reqwest::Response) -> String {
    res.headers()["mcp-session-id"].to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_ids_are_random_capped_and_http2_is_served() {
    let server = mcp::app_with(mcp::Sessions::new(50, mcp::SESSION_IDLE))
        .bind(([127, 0, 0, 1], 0))
        .await
        .unwrap();
    let url = format!("http://localhost:{}/mcp", server.local_addr().port());
    let client = reqwest::Client::new();
    let mut ids = HashSet::new();
    for _ in 0..50 {
        let res = open_session(&client, &url).await;
        assert_eq!(res.status(), 200);
        let id = session_of(&res);
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.bytes().all(|c| c.is_ascii_hexdigit()), "{id}");
        ids.insert(id);
    }
    assert_eq!(ids.len(), 50);
    // Consecutive ids share no prefix a prober could fix (the old ones shared 12 digits).
    let sorted: Vec<&String> = ids.iter().collect();
    let common = sorted
        .windows(2)
        .map(|w| {
            w[0].bytes()
                .zip(w[1].bytes())
                .take_while(|(a, b)| a == b)
                .count()
        })
        .max()
        .unwrap();
    assert!(common < 8, "ids share {common} leading digits");
    // The 51st: refused with a clear answer, nothing kept.
    let res = open_session(&client, &url).await;
    assert_eq!(res.status(), 503);
    // A made-up id is unknown.
    let res = client
        .post(&url)
        .header("mcp-session-id", "0123456789abcdef0123456789abcdef")
        .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    server.shutdown(Duration::from_secs(1)).await;

    // HTTP/2 (prior knowledge, cleartext): the host is `:authority` (before: 403 to every
    // HTTP/2 request).
    let server = mcp::app().bind(([127, 0, 0, 1], 0)).await.unwrap();
    let url = format!("http://localhost:{}/mcp", server.local_addr().port());
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let res = open_session(&h2, &url).await;
    assert_eq!(res.version(), http::Version::HTTP_2);
    assert_eq!(res.status(), 200);
    // And DNS rebinding is still refused on HTTP/2.
    let rebound = reqwest::Client::builder()
        .http2_prior_knowledge()
        .resolve("rebind.example", server.local_addr())
        .build()
        .unwrap();
    let evil = format!("http://rebind.example:{}/mcp", server.local_addr().port());
    let res = rebound
        .post(&evil)
        .header("accept", "application/json, text/event-stream")
        .json(&initialize())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    server.shutdown(Duration::from_secs(1)).await;
}

/// Idle sessions are forgotten (before: 200,000 `initialize` calls kept +25 MiB forever).
/// Explicit instants, no sleeps.
#[test]
fn idle_sessions_expire_and_free_their_places() {
    let sessions = mcp::Sessions::new(2, Duration::from_secs(60));
    let t0 = Instant::now();
    let a = sessions.open(t0).unwrap();
    let b = sessions.open(t0).unwrap();
    assert!(sessions.open(t0).is_none(), "full");
    assert!(sessions.touch(&a, t0 + Duration::from_secs(59)));
    // b idle for 60 s: its place goes to a new session; a was used at 59 s and stays.
    let c = sessions.open(t0 + Duration::from_secs(60)).unwrap();
    assert!(!sessions.touch(&b, t0 + Duration::from_secs(60)));
    assert!(sessions.touch(&a, t0 + Duration::from_secs(118)));
    assert!(!sessions.touch(&c, t0 + Duration::from_secs(120)), "idle");
    assert_eq!(sessions.len(), 1);
}

/// A call's stream is bound to its session: another session that presents its event id gets
/// 404 (before: the ownership check compared a prefix of a guessable id).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_session_cannot_resume_a_calls_stream() {
    let server = mcp::app().bind(([127, 0, 0, 1], 0)).await.unwrap();
    let url = format!("http://localhost:{}/mcp", server.local_addr().port());
    let client = reqwest::Client::new();
    let victim = session_of(&open_session(&client, &url).await);
    let thief = session_of(&open_session(&client, &url).await);
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "test_tool_with_progress", "arguments": {}, "_meta": {"progressToken": 1}}});
    let mut res = client
        .post(&url)
        .header("mcp-session-id", &victim)
        .header("accept", "application/json, text/event-stream")
        .json(&call)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let first = tokio::time::timeout(WAIT, res.chunk())
        .await
        .expect("the priming event")
        .unwrap()
        .unwrap();
    let first = String::from_utf8(first.to_vec()).unwrap();
    let id = first
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .expect("an id")
        .to_owned();
    let resume = |session: String| {
        client
            .get(&url)
            .header("mcp-session-id", session)
            .header("accept", "text/event-stream")
            .header("last-event-id", id.clone())
            .send()
    };
    assert_eq!(resume(thief).await.unwrap().status(), 404);
    assert_eq!(resume(victim).await.unwrap().status(), 200);
    server.shutdown(Duration::from_secs(1)).await;
}

fn stateless(id: i64, method: &str, version: &str, params: Value) -> Value {
    let mut params = params;
    params["_meta"] = json!({"io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}}});
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// POSTs `body` as a 2026-07-28 client would (`MCP-Protocol-Version: version`): status, JSON.
async fn post_stateless(
    client: &reqwest::Client,
    url: &str,
    version: &str,
    body: &str,
) -> (u16, Value) {
    let message: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let mut req = client
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", version);
    if let Some(method) = message["method"].as_str() {
        req = req.header("mcp-method", method);
    }
    if let Some(name) = message["params"]["name"].as_str() {
        req = req.header("mcp-name", name);
    }
    let res = req.body(body.to_owned()).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_of_either_revision_gets_the_spec_s_error_and_nothing_else_changes() {
    let server = mcp::app().bind(([127, 0, 0, 1], 0)).await.unwrap();
    let url = format!("http://127.0.0.1:{}/mcp", server.local_addr().port());
    let client = reqwest::Client::new();
    let v = "2026-07-28";
    let send = |body: Value| {
        let (client, url) = (client.clone(), url.clone());
        async move { post_stateless(&client, &url, v, &body.to_string()).await }
    };
    // A session-revision client, open throughout.
    let session = session_of(&open_session(&client, &url).await);

    // Malformed JSON: -32700 (either revision: nothing to tell them apart).
    let (status, body) = post_stateless(&client, &url, v, "{\"jsonrpc\": \"2.0\", ").await;
    assert_eq!((status, &body["error"]["code"]), (400, &json!(-32700)));
    // Not a request: -32600.
    let (status, body) = post_stateless(&client, &url, v, "[1, 2]").await;
    assert_eq!((status, &body["error"]["code"]), (400, &json!(-32600)));
    // An unknown method: 404, -32601, the request's id.
    let (status, body) = send(stateless(41, "tools/unknown", v, json!({}))).await;
    assert_eq!(
        (status, &body["error"]["code"], &body["id"]),
        (404, &json!(-32601), &json!(41))
    );
    // A version the server does not speak: -32022 with what it speaks.
    let body = stateless(42, "tools/list", "2099-01-01", json!({}));
    let (status, body) = post_stateless(&client, &url, "2099-01-01", &body.to_string()).await;
    assert_eq!((status, &body["error"]["code"]), (400, &json!(-32022)));
    assert_eq!(body["error"]["data"]["requested"], "2099-01-01");
    // A tampered requestState: -32602.
    let call = |state: Option<&str>| {
        let mut params = json!({"name": "test_input_required_result_request_state", "arguments": {},
            "inputResponses": {"confirm": {"action": "accept", "content": {"ok": true}}}});
        if let Some(state) = state {
            params["requestState"] = json!(state);
        }
        stateless(43, "tools/call", v, params)
    };
    let (_, first) = send(call(None)).await;
    let state = first["result"]["requestState"].as_str().unwrap().to_owned();
    let (status, body) = send(call(Some(&format!("{state}-TAMPERED")))).await;
    assert_eq!((status, &body["error"]["code"]), (200, &json!(-32602)));
    // A state sealed for another tool is refused too.
    let mut other = call(Some(&state));
    other["params"]["name"] = json!("test_input_required_result_tampered_state");
    let (_, body) = send(other).await;
    assert_eq!(body["error"]["code"], -32602);
    // A rebound Host: 403.
    let (status, _) = {
        let res = client
            .post(&url)
            .header("host", "evil.example.com")
            .header("mcp-protocol-version", v)
            .json(&stateless(44, "server/discover", v, json!({})))
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), ())
    };
    assert_eq!(status, 403);

    // No GET stream, no session to delete in 2026-07-28: 405, Allow: POST.
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let res = client
            .request(method, &url)
            .header("mcp-protocol-version", v)
            .send()
            .await
            .unwrap();
        assert_eq!(
            (
                res.status().as_u16(),
                res.headers()["allow"].to_str().unwrap()
            ),
            (405, "POST")
        );
    }
    // Nothing else changed: the honest state completes, and the session still works.
    let (status, body) = send(call(Some(&state))).await;
    assert_eq!(status, 200);
    assert!(
        body["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("state-ok"),
        "{body}"
    );
    let res = client
        .post(&url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let tools: Value = res.json().await.unwrap();
    assert!(tools["result"]["tools"].as_array().unwrap().len() > 10);
    server.shutdown(WAIT).await;
}
