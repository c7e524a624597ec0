//! The stateless (2026-07-28) transport, driven through `Stateless::serve`: bad input gets the
//! spec's error codes and statuses and nothing else; progress arrives before the result on an
//! event stream; `subscriptions/listen` acknowledges first and honours its filter.

use std::time::Duration;

use http::HeaderMap;
use http_body_util::BodyExt;
use nest_core::Response;
use nest_mcp::{
    CacheHint, CacheScope, Change, Handler, InputRequired, McpRequest, Reply, RpcError, Stateless,
};
use serde_json::{json, Value};

struct App;

static HANG: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>> =
    std::sync::Mutex::new(None);

impl Handler for App {
    fn capabilities(&self) -> Value {
        json!({"tools": {"listChanged": true}, "prompts": {"listChanged": true}})
    }

    async fn call(&self, request: McpRequest, reply: Reply) -> Result<Value, RpcError> {
        match (request.method(), request.name()) {
            ("tools/list", _) => Ok(json!({"tools": []})),
            ("tools/call", "slow") => {
                for step in [1.0, 2.0] {
                    reply.progress(step, Some(2.0), "working").await;
                }
                reply
                    .log("debug", "app", json!("below the asked level"))
                    .await;
                reply.log("error", "app", json!("at the asked level")).await;
                Ok(json!({"content": []}))
            }
            ("tools/call", "ask") => Ok(match request.state() {
                Some(state) => json!({"content": [{"type": "text", "text": state.to_string()}]}),
                None => request.input_required(InputRequired::new().roots("r"), Some(json!(42))),
            }),
            ("tools/call", "hang") => {
                // Holds `_alive` until aborted: the test sees its receiver close.
                let _alive = HANG.lock().unwrap().take();
                std::future::pending().await
            }
            ("tools/call", "panic") => panic!("a handler bug"),
            ("tools/call", "route") => Ok(json!({"content": []})),
            ("tools/call", "sample") => {
                request.meta().require("sampling")?;
                Ok(json!({"content": []}))
            }
            (method, _) => Err(RpcError::method_not_found(method)),
        }
    }

    fn header_params(&self, name: &str) -> Vec<(String, String)> {
        let schema =
            json!({"properties": {"region": {"type": "string", "x-mcp-header": "Region"}}});
        match name {
            "route" => nest_mcp::header_params(&schema),
            _ => Vec::new(),
        }
    }
}

fn endpoint() -> Stateless<App> {
    Stateless::builder(App)
        .server_info("test", "1")
        .cache(CacheHint::new(Duration::from_secs(5), CacheScope::Private))
        .max_listeners(1)
        .build()
        .unwrap()
}

fn headers(version: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("mcp-protocol-version", version.parse().unwrap());
    headers
}

fn meta() -> Value {
    json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
           "io.modelcontextprotocol/clientCapabilities": {}})
}

fn request(id: i64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

async fn json_of(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// The JSON-RPC messages of an event stream that has ended.
async fn events_of(response: Response) -> Vec<Value> {
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec())
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

/// `headers` plus the `Mcp-Method` and `Mcp-Name` headers `message` calls for (SEP-2243),
/// where `headers` does not set them.
fn standard(headers: &HeaderMap, message: &Value) -> HeaderMap {
    let mut headers = headers.clone();
    if let Some(method) = message["method"].as_str() {
        if !headers.contains_key("mcp-method") {
            headers.insert("mcp-method", method.parse().unwrap());
        }
        let name = message["params"]["name"]
            .as_str()
            .or(message["params"]["uri"].as_str());
        if let (Some(name), false) = (name, headers.contains_key("mcp-name")) {
            headers.insert("mcp-name", name.parse().unwrap());
        }
    }
    headers
}

async fn serve(mcp: &Stateless<App>, headers: &HeaderMap, message: Value) -> Response {
    mcp.serve(&standard(headers, &message), message).await
}

async fn error_of(mcp: &Stateless<App>, headers: &HeaderMap, message: Value) -> (u16, i64, Value) {
    let (status, body) = json_of(serve(mcp, headers, message).await).await;
    (status, body["error"]["code"].as_i64().unwrap(), body)
}

#[tokio::test]
async fn bad_input_gets_the_spec_s_codes() {
    let mcp = endpoint();
    let h = headers("2026-07-28");
    // Not a request object; no method; a bad id.
    let (status, code, _) = error_of(&mcp, &h, json!([1, 2])).await;
    assert_eq!((status, code), (400, -32600));
    let (status, code, _) = error_of(&mcp, &h, json!({"jsonrpc": "2.0", "id": 1})).await;
    assert_eq!((status, code), (400, -32600));
    let (status, code, _) = error_of(
        &mcp,
        &h,
        json!({"jsonrpc": "2.0", "id": [1], "method": "tools/list"}),
    )
    .await;
    assert_eq!((status, code), (400, -32600));
    let (status, code, _) =
        error_of(&mcp, &h, json!({"jsonrpc": "1.0", "id": 1, "method": "x"})).await;
    assert_eq!((status, code), (400, -32600));
    // Unknown and removed methods: 404, -32601, the request's id.
    for method in ["unknown/method", "initialize", "ping", "logging/setLevel"] {
        let (status, code, body) =
            error_of(&mcp, &h, request(9, method, json!({"_meta": meta()}))).await;
        assert_eq!(
            (status, code, &body["id"]),
            (404, -32601, &json!(9)),
            "{method}"
        );
    }
    // _meta missing, or without version or capabilities: -32602, 400.
    for params in [
        json!({}),
        json!({"_meta": {"io.modelcontextprotocol/clientCapabilities": {}}}),
        json!({"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}),
    ] {
        let (status, code, body) = error_of(&mcp, &h, request(3, "tools/list", params)).await;
        assert_eq!((status, code, &body["id"]), (400, -32602, &json!(3)));
    }
    // A version the server does not speak: -32022, 400, with what it speaks.
    let mut unknown = meta();
    unknown["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
    let (status, code, body) = error_of(
        &mcp,
        &headers("2099-01-01"),
        request(4, "tools/list", json!({"_meta": unknown})),
    )
    .await;
    assert_eq!((status, code), (400, -32022));
    assert_eq!(
        body["error"]["data"],
        json!({"supported": ["2026-07-28"], "requested": "2099-01-01"})
    );
    // An unknown version in the header is named first, whatever the body holds.
    let (status, code, body) = error_of(
        &mcp,
        &headers("2099-01-01"),
        request(4, "tools/list", json!({})),
    )
    .await;
    assert_eq!(
        (status, code, &body["error"]["data"]["requested"]),
        (400, -32022, &json!("2099-01-01"))
    );
    // Header and body disagree, or the header is missing: -32020, 400.
    let (status, code, _) = error_of(
        &mcp,
        &h,
        request(5, "tools/list", json!({"_meta": unknown})),
    )
    .await;
    assert_eq!((status, code), (400, -32020));
    let (status, code, _) = error_of(
        &mcp,
        &HeaderMap::new(),
        request(5, "tools/list", json!({"_meta": meta()})),
    )
    .await;
    assert_eq!((status, code), (400, -32020));
    let mut wrong_method = h.clone();
    wrong_method.insert("mcp-method", "tools/call".parse().unwrap());
    let (status, code, _) = error_of(
        &mcp,
        &wrong_method,
        request(5, "tools/list", json!({"_meta": meta()})),
    )
    .await;
    assert_eq!((status, code), (400, -32020));
    // SEP-2243: Mcp-Method always, Mcp-Name when the body names a tool.
    let call = request(5, "tools/call", json!({"name": "ask", "_meta": meta()}));
    let (status, body) = json_of(mcp.serve(&h, call.clone()).await).await;
    assert_eq!((status, &body["error"]["code"]), (400, &json!(-32020)));
    let mut no_name = h.clone();
    no_name.insert("mcp-method", "tools/call".parse().unwrap());
    let (status, body) = json_of(mcp.serve(&no_name, call).await).await;
    assert_eq!((status, &body["error"]["code"]), (400, &json!(-32020)));
    // A capability the client did not declare: -32021, 400, naming it.
    let call = request(6, "tools/call", json!({"name": "sample", "_meta": meta()}));
    let (status, code, body) = error_of(&mcp, &h, call).await;
    assert_eq!((status, code), (400, -32021));
    assert_eq!(
        body["error"]["data"]["requiredCapabilities"],
        json!({"sampling": {}})
    );
    // A notification is accepted with no body; nothing else changed: a good request works.
    let note =
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"_meta": meta()}});
    assert_eq!(serve(&mcp, &h, note).await.status(), 202);
    let (status, body) =
        json_of(serve(&mcp, &h, request(7, "tools/list", json!({"_meta": meta()}))).await).await;
    assert_eq!(status, 200);
    assert_eq!(body["result"]["resultType"], "complete");
    assert_eq!(
        (
            body["result"]["ttlMs"].clone(),
            body["result"]["cacheScope"].clone()
        ),
        (json!(5000), json!("private"))
    );
    assert_eq!(
        body["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "test"
    );
}

#[tokio::test]
async fn a_tampered_or_foreign_request_state_is_refused() {
    let mcp = endpoint();
    let h = headers("2026-07-28");
    let ask = |extra: Value| {
        let mut params = json!({"name": "ask", "_meta": meta()});
        params
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        request(1, "tools/call", params)
    };
    let (_, first) = json_of(serve(&mcp, &h, ask(json!({}))).await).await;
    assert_eq!(first["result"]["resultType"], "input_required");
    let state = first["result"]["requestState"].as_str().unwrap().to_owned();
    for bad in [
        format!("{state}-TAMPERED"),
        state.replace('.', ""),
        "x".into(),
        String::new(),
    ] {
        let (status, code, _) = error_of(&mcp, &h, ask(json!({"requestState": bad}))).await;
        assert_eq!((status, code), (200, -32602));
    }
    // Another endpoint (another key) does not accept this one's state.
    let (_, code, _) = error_of(&endpoint(), &h, ask(json!({"requestState": state}))).await;
    assert_eq!(code, -32602);
    let (_, done) = json_of(serve(&mcp, &h, ask(json!({"requestState": state}))).await).await;
    assert_eq!(done["result"]["content"][0]["text"], "42");
}

#[tokio::test]
async fn progress_and_asked_for_logs_come_before_the_result_on_an_event_stream() {
    let mcp = endpoint();
    let mut meta = meta();
    meta["progressToken"] = json!("p1");
    meta["io.modelcontextprotocol/logLevel"] = json!("warning");
    let call = request(8, "tools/call", json!({"name": "slow", "_meta": meta}));
    let events = events_of(serve(&mcp, &headers("2026-07-28"), call).await).await;
    let methods: Vec<&str> = events
        .iter()
        .map(|e| e["method"].as_str().unwrap_or("result"))
        .collect();
    assert_eq!(
        methods,
        [
            "notifications/progress",
            "notifications/progress",
            "notifications/message",
            "result"
        ]
    );
    assert_eq!(events[0]["params"]["progressToken"], "p1");
    assert_eq!(events[2]["params"]["data"], "at the asked level");
    assert_eq!(
        (
            events[3]["id"].clone(),
            events[3]["result"]["resultType"].clone()
        ),
        (json!(8), json!("complete"))
    );
}

#[tokio::test]
async fn without_a_progress_token_or_log_level_the_answer_is_plain_json() {
    let mcp = endpoint();
    let call = request(8, "tools/call", json!({"name": "slow", "_meta": meta()}));
    let response = serve(&mcp, &headers("2026-07-28"), call).await;
    assert_eq!(response.headers()["content-type"], "application/json");
}

#[tokio::test]
async fn listen_acknowledges_first_and_sends_only_what_the_filter_asks_for() {
    let mcp = endpoint();
    let h = headers("2026-07-28");
    let listen = request(
        11,
        "subscriptions/listen",
        json!({"_meta": meta(), "notifications": {"promptsListChanged": true}}),
    );
    let response = serve(&mcp, &h, listen.clone()).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    // At most one listener here: a second gets 503.
    let (status, _, _) = error_of(&mcp, &h, listen).await;
    assert_eq!(status, 503);
    let mut body = response.into_body();
    let mut next = async || loop {
        let frame = body.frame().await.unwrap().unwrap();
        if let Some(data) = frame.data_ref() {
            let text = String::from_utf8(data.to_vec()).unwrap();
            if let Some(json) = text.lines().find_map(|l| l.strip_prefix("data: ")) {
                return serde_json::from_str::<Value>(json).unwrap();
            }
        }
    };
    let ack = next().await;
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(
        ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        11
    );
    assert_eq!(mcp.changes().publish(Change::Tools), 1);
    assert_eq!(mcp.changes().publish(Change::Prompts), 1);
    // The tools change was filtered out: the prompts change is next.
    let change = next().await;
    assert_eq!(change["method"], "notifications/prompts/list_changed");
    assert_eq!(
        change["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        11
    );
}

#[test]
fn invalid_settings_are_errors() {
    assert!(Stateless::builder(App)
        .server_info("", "1")
        .build()
        .is_err());
    assert!(Stateless::builder(App)
        .state_ttl(Duration::ZERO)
        .build()
        .is_err());
}

#[tokio::test(start_paused = true)]
async fn a_client_that_goes_away_stops_its_handler_and_a_panic_is_an_internal_error() {
    let mcp = endpoint();
    let h = headers("2026-07-28");
    let (alive, gone) = tokio::sync::oneshot::channel();
    *HANG.lock().unwrap() = Some(alive);
    let call = request(1, "tools/call", json!({"name": "hang", "_meta": meta()}));
    // The client gives up (hyper drops the request's future): the handler is aborted.
    let given_up = tokio::time::timeout(Duration::from_secs(30), serve(&mcp, &h, call)).await;
    assert!(given_up.is_err());
    let dropped = tokio::time::timeout(Duration::from_secs(1), gone).await;
    assert!(dropped.expect("the handler was aborted").is_err());
    let call = request(2, "tools/call", json!({"name": "panic", "_meta": meta()}));
    let (status, code, body) = error_of(&mcp, &h, call).await;
    assert_eq!((status, code, &body["id"]), (200, -32603, &json!(2)));
}

#[tokio::test]
async fn mcp_param_headers_must_agree_with_the_arguments() {
    let mcp = endpoint();
    let call = |region: Option<&str>| {
        let mut params = json!({"name": "route", "_meta": meta(), "arguments": {}});
        if let Some(region) = region {
            params["arguments"]["region"] = json!(region);
        }
        request(1, "tools/call", params)
    };
    let with = |value: &str| {
        let mut h = headers("2026-07-28");
        h.insert("mcp-param-region", value.parse().unwrap());
        h
    };
    // Literal, or Base64 of the value (standard alphabet, padded): accepted.
    for (header, body) in [
        ("Hello", "Hello"),
        ("=?base64?SGVsbG8=?=", "Hello"),
        ("SGVsbG8=", "SGVsbG8="),
        ("=?base64?SGVsbG8=", "=?base64?SGVsbG8="),
    ] {
        let (status, body) = json_of(serve(&mcp, &with(header), call(Some(body))).await).await;
        assert_eq!(
            (status, &body["result"]["resultType"]),
            (200, &json!("complete")),
            "{header}"
        );
    }
    // Missing, different, bad padding, bad characters: -32020, 400.
    let h = headers("2026-07-28");
    for (headers, body) in [
        (&h, "Hello"),
        (&with("Bye"), "Hello"),
        (&with("=?base64?SGVsbG8?="), "Hello"),
        (&with("=?base64?SGVs!!!bG8=?="), "Hello"),
    ] {
        let (status, code, _) = error_of(&mcp, headers, call(Some(body))).await;
        assert_eq!((status, code), (400, -32020));
    }
    // No argument in the body: nothing to agree with.
    let (status, _) = json_of(serve(&mcp, &h, call(None)).await).await;
    assert_eq!(status, 200);
}
