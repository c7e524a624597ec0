//! An MCP server over Streamable HTTP on nest: one `/mcp` endpoint that serves clients of
//! revision 2025-11-25 (and earlier) and of revision 2026-07-28 side by side, choosing per
//! request by what the client sent (`nest_mcp::Revision::detect`).
//!
//! **2025-11-25**: POST answered with JSON or, for tool calls that stream, with SSE (`event:
//! message`) from a resumable stream (priming event, `retry:`, resume by GET with
//! `Last-Event-ID`); sessions (`Mcp-Session-Id`: 128 random bits, 400 when missing, 404 when
//! unknown, deleted or idle for 30 minutes; at most 10,000 at once, 503 past it); a GET stream;
//! each call's stream bound to its session; logging and progress notifications before a call's
//! result; sampling and elicitation requests whose answers arrive on another POST.
//!
//! **2026-07-28** (`nest_mcp::Stateless`): no session; `_meta` on every request; `server/discover`;
//! `subscriptions/listen`; `InputRequiredResult` with an HMAC-sealed `requestState` instead of
//! server-to-client requests; cache hints; progress before the result on an event stream.
//!
//! Both: `Host` (`:authority` on HTTP/2) and `Origin` checked against DNS rebinding.
//!
//! It serves the tools, resources and prompts the official conformance suite calls:
//! `npx @modelcontextprotocol/conformance@0.2.0-alpha.12 server --url http://127.0.0.1:3006/mcp
//! --requirements 2026-07-28` (or `2025-11-25`).
//!
//! Run with: `cargo run --example mcp --features mcp` (`HOST`, `PORT`, default 3006).
#![allow(clippy::print_stdout, reason = "an example prints its URL")]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use nest::prelude::*;
use nest::sse::hub::Hub;
use nest::sse::resumable::{Resumable, ResumableOptions, ResumableWriter};
use nest::Response;
use nest_mcp::{
    check_loopback, CacheHint, CacheScope, Change, Changes, Handler, InputRequired, McpRequest,
    Reply, Revision, RpcError, Stateless,
};
use serde_json::{json, Value};
use tokio::sync::oneshot;

/// The protocol revisions this server speaks; the first is answered when the client asks for
/// one it does not know.
pub const VERSIONS: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];

/// The reconnection time sent on every stream (`retry:`).
pub const RETRY: Duration = Duration::from_millis(500);

const IMAGE: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
const AUDIO: &str = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";

/// The most sessions at once, by default.
pub const MAX_SESSIONS: usize = 10_000;

/// How long a session lives without a request, by default.
pub const SESSION_IDLE: Duration = Duration::from_secs(30 * 60);

/// One client session: the answers it owes to requests the server sent it, and when it was
/// last used.
#[derive(Debug)]
struct Session {
    pending: HashMap<String, oneshot::Sender<Value>>,
    last_seen: Instant,
}

/// The open sessions: at most `max`, each forgotten after `idle` without a request.
#[derive(Debug)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    max: usize,
    idle: Duration,
}

impl Sessions {
    /// No sessions yet; at most `max` at once, each forgotten after `idle` without a request.
    pub fn new(max: usize, idle: Duration) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            max,
            idle,
        }
    }

    /// Opens a session at `now`: its id (128 random bits, so that nobody finds one by probing),
    /// or `None` when `max` sessions are open and none is idle.
    pub fn open(&self, now: Instant) -> Option<String> {
        let mut map = self.map.lock().unwrap();
        if map.len() >= self.max {
            map.retain(|_, s| now.saturating_duration_since(s.last_seen) < self.idle);
            if map.len() >= self.max {
                return None;
            }
        }
        let id = nest::id::random_id();
        let session = Session {
            pending: HashMap::new(),
            last_seen: now,
        };
        map.insert(id.clone(), session);
        Some(id)
    }

    /// Whether `id` is an open session at `now` (and marks it used); an idle one is forgotten.
    pub fn touch(&self, id: &str, now: Instant) -> bool {
        let mut map = self.map.lock().unwrap();
        match map.get_mut(id) {
            Some(s) if now.saturating_duration_since(s.last_seen) < self.idle => {
                s.last_seen = now;
                true
            }
            Some(_) => {
                map.remove(id);
                false
            }
            None => false,
        }
    }

    /// Ends session `id`.
    pub fn close(&self, id: &str) {
        self.map.lock().unwrap().remove(id);
    }

    /// How many sessions are held.
    pub fn len(&self) -> usize {
        self.map.lock().unwrap().len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn with<T>(&self, id: &str, f: impl FnOnce(&mut Session) -> T) -> Option<T> {
        self.map.lock().unwrap().get_mut(id).map(f)
    }
}

/// The MCP endpoint.
pub struct Mcp {
    stateless: Stateless<Tools>,
    streams: Resumable,
    sessions: Sessions,
    counter: AtomicU64,
}

impl std::fmt::Debug for Mcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mcp").finish_non_exhaustive()
    }
}

/// The app: `/mcp` on a fresh hub.
pub fn app() -> NestApp {
    app_with(Sessions::new(MAX_SESSIONS, SESSION_IDLE))
}

/// The app with its own session limits.
pub fn app_with(sessions: Sessions) -> NestApp {
    let options = ResumableOptions::new().priming(true).retry(RETRY);
    let changes = Changes::new();
    let stateless = Stateless::builder(Tools {
        changes: changes.clone(),
    })
    .server_info("nest-mcp-example", "0.1.0")
    .cache(CacheHint::new(Duration::from_secs(60), CacheScope::Public))
    .changes(changes)
    .build()
    .expect("constant settings; a key from the OS's randomness");
    NestApp::new().controller(Mcp {
        stateless,
        streams: Resumable::with_options(Hub::new(), options),
        sessions,
        counter: AtomicU64::new(1),
    })
}

impl Controller for Mcp {
    fn routes(r: &mut Routes<Self>) {
        r.post("/mcp", Self::post);
        r.get("/mcp", Self::get);
        r.delete("/mcp", Self::delete);
    }
}

/// A request refused before any JSON-RPC processing: its status, JSON-RPC code and message.
struct Reject(StatusCode, i64, &'static str);

impl Reject {
    fn response(self) -> Response {
        rpc_error(self.0, self.1, self.2)
    }
}

fn rpc_error(status: StatusCode, code: i64, message: &str) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}});
    (status, Json(body)).into_response()
}

/// 2026-07-28 has no GET stream and no session to delete: a client of that revision gets 405
/// (`Allow: POST`), as the revision says.
fn stateless_refusal(headers: &HeaderMap) -> Option<Response> {
    (Revision::detect(headers, &Value::Null) == Revision::Stateless).then(|| {
        let mut res = StatusCode::METHOD_NOT_ALLOWED.into_response();
        res.headers_mut()
            .insert("allow", HeaderValue::from_static("POST"));
        res
    })
}

fn with_session(mut res: Response, session: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(session) {
        res.headers_mut().insert("mcp-session-id", value);
    }
    res
}

impl Mcp {
    fn next(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    /// The request's session: 400 when it names none, 404 when it is unknown or deleted.
    fn session(&self, headers: &HeaderMap) -> Result<String, Reject> {
        let Some(id) = headers.get("mcp-session-id").and_then(|v| v.to_str().ok()) else {
            return Err(Reject(
                StatusCode::BAD_REQUEST,
                -32000,
                "Bad Request: Mcp-Session-Id header is required",
            ));
        };
        if !self.sessions.touch(id, Instant::now()) {
            return Err(Reject(StatusCode::NOT_FOUND, -32001, "Session not found"));
        }
        if let Some(version) = headers
            .get("mcp-protocol-version")
            .and_then(|v| v.to_str().ok())
        {
            if !VERSIONS.contains(&version) {
                return Err(Reject(
                    StatusCode::BAD_REQUEST,
                    -32000,
                    "Unsupported MCP-Protocol-Version",
                ));
            }
        }
        Ok(id.to_owned())
    }

    async fn post(self: Arc<Self>, uri: Uri, headers: HeaderMap, body: String) -> Response {
        if let Err(refused) = check_loopback(&uri, &headers) {
            return refused.into_response_for(&Value::Null);
        }
        let Ok(message) = serde_json::from_str::<Value>(&body) else {
            return rpc_error(StatusCode::BAD_REQUEST, -32700, "Parse error");
        };
        if Revision::detect(&headers, &message) == Revision::Stateless {
            return self.stateless.serve(&headers, message).await;
        }
        let method = message.get("method").and_then(Value::as_str);
        if method == Some("initialize") {
            return self.initialize(&message);
        }
        let session = match self.session(&headers) {
            Ok(session) => session,
            Err(reject) => return reject.response(),
        };
        let id = message.get("id").cloned();
        match (method, id) {
            // A notification, or the client's answer to a request of ours: 202, no body.
            (None, Some(id)) => {
                let waiter = self
                    .sessions
                    .with(&session, |s| s.pending.remove(&id.to_string()))
                    .flatten();
                if let Some(waiter) = waiter {
                    let _ = waiter.send(message);
                }
                StatusCode::ACCEPTED.into_response()
            }
            (Some(_), None) | (None, None) => StatusCode::ACCEPTED.into_response(),
            (Some(method), Some(id)) => {
                let params = message.get("params").cloned().unwrap_or(Value::Null);
                if method == "tools/call" {
                    let name = params["name"].as_str().unwrap_or("");
                    if STREAMING_TOOLS.contains(&name) {
                        return self.streaming_call(&session, id, params).await;
                    }
                }
                let answer = match answer(method, &params) {
                    Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
                    Err((code, text)) => {
                        json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": text}})
                    }
                };
                with_session(Json(answer).into_response(), &session)
            }
        }
    }

    fn initialize(&self, message: &Value) -> Response {
        let asked = message["params"]["protocolVersion"].as_str().unwrap_or("");
        let version = VERSIONS
            .iter()
            .find(|v| **v == asked)
            .unwrap_or(&VERSIONS[0]);
        let Some(session) = self.sessions.open(Instant::now()) else {
            return rpc_error(
                StatusCode::SERVICE_UNAVAILABLE,
                -32000,
                "Too many sessions: try again later",
            );
        };
        let result = json!({
            "protocolVersion": version,
            "capabilities": {
                "tools": {"listChanged": true},
                "resources": {"subscribe": true, "listChanged": true},
                "prompts": {"listChanged": true},
                "logging": {},
                "completions": {}
            },
            "serverInfo": {"name": "nest-mcp-example", "version": "0.1.0"}
        });
        let body = json!({"jsonrpc": "2.0", "id": message["id"], "result": result});
        with_session(Json(body).into_response(), &session)
    }

    /// A tool call answered on its own resumable stream: notifications and server requests,
    /// then the result. `test_reconnection` closes the stream early; the client resumes by GET.
    async fn streaming_call(self: &Arc<Self>, session: &str, id: Value, params: Value) -> Response {
        // The call's stream: an unguessable id, bound to its session (resumable by it only).
        let stream_id = Resumable::new_id();
        let streams = self.streams.owned_by(session);
        let this = self.clone();
        let owner = session.to_owned();
        let name = params["name"].as_str().unwrap_or("").to_owned();
        let reconnect = name == "test_reconnection";
        let started = streams
            .start(&stream_id, move |out| async move {
                let result = this.run_tool(&owner, &out, &name, &params).await?;
                let message = json!({"jsonrpc": "2.0", "id": id, "result": result});
                out.send(SseEvent::json(&message).event("message"))
                    .await
                    .map_err(|e| e.to_string())?;
                Ok::<(), String>(())
            })
            .await;
        if let Err(err) = started {
            return HttpException::from(err).into_response();
        }
        let mut options = SseOptions::new();
        if reconnect {
            options = options.max_lifetime(Duration::from_millis(50), Duration::ZERO);
        }
        match streams
            .subscribe_with(&stream_id, &LastEventId(None), options)
            .await
        {
            Ok(body) => with_session(body.into_response(), session),
            Err(err) => HttpException::from(err).into_response(),
        }
    }

    /// Sends a request to the client on the call's stream and waits for its answer (which
    /// arrives on another POST).
    async fn ask(
        &self,
        session: &str,
        out: &ResumableWriter,
        method: &str,
        params: Value,
    ) -> Result<Value, String> {
        let id = json!(format!("srv-{}", self.next()));
        let (tx, rx) = oneshot::channel();
        self.sessions
            .with(session, |s| s.pending.insert(id.to_string(), tx))
            .ok_or("session gone")?;
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        out.send(SseEvent::json(&request).event("message"))
            .await
            .map_err(|e| e.to_string())?;
        let answer = tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .map_err(|_| "no answer within 30 s".to_owned())?
            .map_err(|_| "session gone".to_owned())?;
        Ok(answer["result"].clone())
    }

    async fn notify(out: &ResumableWriter, method: &str, params: Value) -> Result<(), String> {
        let message = json!({"jsonrpc": "2.0", "method": method, "params": params});
        out.send(SseEvent::json(&message).event("message"))
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }

    async fn run_tool(
        &self,
        session: &str,
        out: &ResumableWriter,
        name: &str,
        params: &Value,
    ) -> Result<Value, String> {
        let text = |t: String| json!({"content": [{"type": "text", "text": t}]});
        let pause = || tokio::time::sleep(Duration::from_millis(50));
        match name {
            "test_tool_with_logging" => {
                for (i, step) in [
                    "Tool execution started",
                    "Tool processing data",
                    "Tool execution completed",
                ]
                .iter()
                .enumerate()
                {
                    if i > 0 {
                        pause().await;
                    }
                    let log = json!({"level": "info", "logger": "nest-mcp-example", "data": step});
                    Self::notify(out, "notifications/message", log).await?;
                }
                Ok(text("Tool with logging executed successfully".into()))
            }
            "test_tool_with_progress" => {
                let token = params["_meta"]["progressToken"].clone();
                let token = if token.is_null() { json!(0) } else { token };
                for (i, progress) in [0, 50, 100].into_iter().enumerate() {
                    if i > 0 {
                        pause().await;
                    }
                    let p = json!({"progressToken": token, "progress": progress, "total": 100,
                        "message": format!("Completed step {progress} of 100")});
                    Self::notify(out, "notifications/progress", p).await?;
                }
                Ok(text(match &token {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                }))
            }
            "test_reconnection" => {
                // The subscriber's stream closes after 50 ms; the result comes later, on the
                // GET that resumes it.
                tokio::time::sleep(Duration::from_millis(200)).await;
                Ok(text("Reconnection test completed successfully. If you received this, the client properly reconnected after stream closure.".into()))
            }
            "test_sampling" => {
                let prompt = params["arguments"]["prompt"].as_str().unwrap_or("");
                let request = json!({"messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
                    "maxTokens": 100});
                let result = self
                    .ask(session, out, "sampling/createMessage", request)
                    .await?;
                let reply = result["content"]["text"].as_str().unwrap_or("No response");
                Ok(text(format!("LLM response: {reply}")))
            }
            _ => {
                let (message, schema) = elicitation(name, params);
                let result = self
                    .ask(
                        session,
                        out,
                        "elicitation/create",
                        json!({"message": message, "requestedSchema": schema}),
                    )
                    .await?;
                let content = if result["content"].is_null() {
                    json!({})
                } else {
                    result["content"].clone()
                };
                let prefix = if name == "test_elicitation" {
                    "User response"
                } else {
                    "Elicitation completed"
                };
                Ok(text(format!(
                    "{prefix}: action={}, content={content}",
                    result["action"].as_str().unwrap_or("")
                )))
            }
        }
    }

    /// `GET /mcp`: with `Last-Event-ID`, resumes that stream of this session; without, the
    /// session's own stream (open, for notifications the server may send later).
    async fn get(self: Arc<Self>, uri: Uri, headers: HeaderMap, last: LastEventId) -> Response {
        if let Err(refused) = check_loopback(&uri, &headers) {
            return refused.into_response_for(&Value::Null);
        }
        if let Some(refused) = stateless_refusal(&headers) {
            return refused;
        }
        let session = match self.session(&headers) {
            Ok(session) => session,
            Err(reject) => return reject.response(),
        };
        if last.0.is_some() {
            // Only this session's streams: another session's id is unknown here.
            return match self.streams.owned_by(session.as_str()).resume(&last).await {
                Ok(body) => with_session(body.into_response(), &session),
                Err(err) if err.is_unknown() || err.is_invalid_id() => {
                    rpc_error(StatusCode::NOT_FOUND, -32001, "Unknown event id")
                }
                Err(err) => HttpException::from(err).into_response(),
            };
        }
        let (writer, body) = get_sse_stream(SseOptions::new().retry(RETRY));
        let id = format!("{session}.get");
        let _ = writer.write(SseEvent::data("").id(id));
        with_session(
            body.on_cancel(move |_| drop(writer)).into_response(),
            &session,
        )
    }

    /// `DELETE /mcp`: ends the session; later requests naming it get 404.
    async fn delete(self: Arc<Self>, uri: Uri, headers: HeaderMap) -> Response {
        if let Err(refused) = check_loopback(&uri, &headers) {
            return refused.into_response_for(&Value::Null);
        }
        if let Some(refused) = stateless_refusal(&headers) {
            return refused;
        }
        match self.session(&headers) {
            Ok(session) => {
                self.sessions.close(&session);
                StatusCode::OK.into_response()
            }
            Err(reject) => reject.response(),
        }
    }
}

const STREAMING_TOOLS: [&str; 8] = [
    "test_tool_with_logging",
    "test_tool_with_progress",
    "test_reconnection",
    "test_sampling",
    "test_elicitation",
    "test_elicitation_sep1034_defaults",
    "test_elicitation_sep1330_enums",
    "test_client_elicitation_defaults",
];

/// The message and schema of an elicitation tool.
fn elicitation(name: &str, params: &Value) -> (String, Value) {
    match name {
        "test_elicitation_sep1034_defaults" | "test_client_elicitation_defaults" => (
            "Please review and update the form fields with defaults".into(),
            json!({"type": "object", "properties": {
                "name": {"type": "string", "description": "User name", "default": "John Doe"},
                "age": {"type": "integer", "description": "User age", "default": 30},
                "score": {"type": "number", "description": "User score", "default": 95.5},
                "status": {"type": "string", "description": "User status",
                    "enum": ["active", "inactive", "pending"], "default": "active"},
                "verified": {"type": "boolean", "description": "Verification status", "default": true}
            }, "required": []}),
        ),
        "test_elicitation_sep1330_enums" => (
            "Please select options from the enum fields".into(),
            json!({"type": "object", "properties": {
                "untitledSingle": {"type": "string", "description": "Select one option",
                    "enum": ["option1", "option2", "option3"]},
                "titledSingle": {"type": "string", "description": "Select one option with titles",
                    "oneOf": [{"const": "value1", "title": "First Option"},
                              {"const": "value2", "title": "Second Option"},
                              {"const": "value3", "title": "Third Option"}]},
                "legacyEnum": {"type": "string", "description": "Select one option (legacy)",
                    "enum": ["opt1", "opt2", "opt3"],
                    "enumNames": ["Option One", "Option Two", "Option Three"]},
                "untitledMulti": {"type": "array", "description": "Select multiple options",
                    "minItems": 1, "maxItems": 3,
                    "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
                "titledMulti": {"type": "array", "description": "Select multiple options with titles",
                    "minItems": 1, "maxItems": 3,
                    "items": {"anyOf": [{"const": "value1", "title": "First Choice"},
                                        {"const": "value2", "title": "Second Choice"},
                                        {"const": "value3", "title": "Third Choice"}]}}
            }, "required": []}),
        ),
        _ => (
            params["arguments"]["message"]
                .as_str()
                .unwrap_or("Please respond")
                .to_owned(),
            json!({"type": "object", "properties": {
                "response": {"type": "string", "description": "User's response"}
            }, "required": ["response"]}),
        ),
    }
}

fn tools() -> Value {
    let empty = json!({"type": "object", "properties": {}});
    let plain = |name: &str, description: &str| json!({"name": name, "description": description, "inputSchema": empty});
    json!({"tools": [
        plain("test_simple_text", "Tests simple text content response"),
        plain("test_image_content", "Tests image content response"),
        plain("test_audio_content", "Tests audio content response"),
        plain("test_embedded_resource", "Tests embedded resource content response"),
        plain("test_multiple_content_types", "Tests response with multiple content types (text, image, resource)"),
        plain("test_tool_with_logging", "Tests tool that emits log messages during execution"),
        plain("test_tool_with_progress", "Tests tool that reports progress notifications"),
        plain("test_error_handling", "Tests error response handling"),
        plain("test_reconnection", "Tests SSE stream disconnection and client reconnection (SEP-1699)"),
        {"name": "test_sampling", "description": "Tests server-initiated sampling (LLM completion request)",
         "inputSchema": {"type": "object", "properties": {"prompt": {"type": "string", "description": "The prompt to send to the LLM"}}, "required": ["prompt"]}},
        {"name": "test_elicitation", "description": "Tests server-initiated elicitation (user input request)",
         "inputSchema": {"type": "object", "properties": {"message": {"type": "string", "description": "The message to show the user"}}, "required": ["message"]}},
        plain("test_elicitation_sep1034_defaults", "Tests elicitation with default values per SEP-1034"),
        plain("test_elicitation_sep1330_enums", "Tests elicitation with enum schema improvements per SEP-1330"),
        {"name": "json_schema_2020_12_tool", "description": "Tool with JSON Schema 2020-12 features for conformance testing (SEP-1613)",
         "inputSchema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "$defs": {"address": {"$anchor": "addressDef", "type": "object",
                "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
            "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"},
                "contactMethod": {"type": "string", "enum": ["phone", "email"]},
                "phone": {"type": "string"}, "email": {"type": "string"}},
            "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
            "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
            "then": {"required": ["phone"]},
            "else": {"required": ["email"]},
            "additionalProperties": false
         }}
    ]})
}

/// The answer to a request that needs no stream: its result, or a JSON-RPC error.
fn answer(method: &str, params: &Value) -> Result<Value, (i64, String)> {
    let text = |t: &str| json!({"content": [{"type": "text", "text": t}]});
    Ok(match method {
        "ping" | "logging/setLevel" | "resources/subscribe" | "resources/unsubscribe" => json!({}),
        "tools/list" => tools(),
        "tools/call" => match params["name"].as_str().unwrap_or("") {
            "test_simple_text" => text("This is a simple text response for testing."),
            "test_image_content" => {
                json!({"content": [{"type": "image", "data": IMAGE, "mimeType": "image/png"}]})
            }
            "test_audio_content" => {
                json!({"content": [{"type": "audio", "data": AUDIO, "mimeType": "audio/wav"}]})
            }
            "test_embedded_resource" => json!({"content": [{"type": "resource", "resource": {
                "uri": "test://embedded-resource", "mimeType": "text/plain",
                "text": "This is an embedded resource content."}}]}),
            "test_multiple_content_types" => json!({"content": [
                {"type": "text", "text": "Multiple content types test:"},
                {"type": "image", "data": IMAGE, "mimeType": "image/png"},
                {"type": "resource", "resource": {"uri": "test://mixed-content-resource",
                    "mimeType": "application/json", "text": "{\"test\":\"data\",\"value\":123}"}}]}),
            "test_error_handling" => json!({"isError": true, "content": [{"type": "text",
                "text": "This tool intentionally returns an error for testing"}]}),
            "json_schema_2020_12_tool" => text(&format!(
                "JSON Schema 2020-12 tool called with: {}",
                params["arguments"]
            )),
            other => return Err((-32602, format!("Unknown tool: {other}"))),
        },
        "resources/list" => json!({"resources": [
            {"uri": "test://static-text", "name": "static-text", "title": "Static Text Resource",
             "description": "A static text resource for testing", "mimeType": "text/plain"},
            {"uri": "test://static-binary", "name": "static-binary", "title": "Static Binary Resource",
             "description": "A static binary resource (image) for testing", "mimeType": "image/png"},
            {"uri": "test://watched-resource", "name": "watched-resource", "title": "Watched Resource",
             "description": "A resource that auto-updates every 3 seconds", "mimeType": "text/plain"}
        ]}),
        "resources/templates/list" => json!({"resourceTemplates": [
            {"uriTemplate": "test://template/{id}/data", "name": "template", "title": "Resource Template",
             "description": "A resource template with parameter substitution", "mimeType": "application/json"}
        ]}),
        "resources/read" => {
            let uri = params["uri"].as_str().unwrap_or("");
            let content = match uri {
                "test://static-text" => json!({"uri": uri, "mimeType": "text/plain",
                    "text": "This is the content of the static text resource."}),
                "test://static-binary" => {
                    json!({"uri": uri, "mimeType": "image/png", "blob": IMAGE})
                }
                "test://watched-resource" => json!({"uri": uri, "mimeType": "text/plain",
                    "text": "Watched resource content"}),
                _ => match uri
                    .strip_prefix("test://template/")
                    .and_then(|rest| rest.strip_suffix("/data"))
                {
                    Some(id) => json!({"uri": uri, "mimeType": "application/json",
                        "text": json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")}).to_string()}),
                    None => return Err((-32002, format!("Resource not found: {uri}"))),
                },
            };
            json!({"contents": [content]})
        }
        "prompts/list" => json!({"prompts": [
            {"name": "test_simple_prompt", "title": "Simple Test Prompt", "description": "A simple prompt without arguments"},
            {"name": "test_prompt_with_arguments", "title": "Prompt With Arguments", "description": "A prompt with required arguments",
             "arguments": [{"name": "arg1", "description": "First test argument", "required": true},
                           {"name": "arg2", "description": "Second test argument", "required": true}]},
            {"name": "test_prompt_with_embedded_resource", "title": "Prompt With Embedded Resource",
             "description": "A prompt that includes an embedded resource",
             "arguments": [{"name": "resourceUri", "description": "URI of the resource to embed", "required": true}]},
            {"name": "test_prompt_with_image", "title": "Prompt With Image", "description": "A prompt that includes image content"}
        ]}),
        "prompts/get" => {
            let args = &params["arguments"];
            let user = |content: Value| json!({"role": "user", "content": content});
            let messages = match params["name"].as_str().unwrap_or("") {
                "test_simple_prompt" => vec![user(
                    json!({"type": "text", "text": "This is a simple prompt for testing."}),
                )],
                "test_prompt_with_arguments" => vec![user(json!({"type": "text", "text": format!(
                    "Prompt with arguments: arg1='{}', arg2='{}'",
                    args["arg1"].as_str().unwrap_or(""), args["arg2"].as_str().unwrap_or(""))}))],
                "test_prompt_with_embedded_resource" => vec![
                    user(
                        json!({"type": "resource", "resource": {"uri": args["resourceUri"],
                        "mimeType": "text/plain", "text": "Embedded resource content for testing."}}),
                    ),
                    user(
                        json!({"type": "text", "text": "Please process the embedded resource above."}),
                    ),
                ],
                "test_prompt_with_image" => vec![
                    user(json!({"type": "image", "data": IMAGE, "mimeType": "image/png"})),
                    user(json!({"type": "text", "text": "Please analyze the image above."})),
                ],
                other => return Err((-32602, format!("Unknown prompt: {other}"))),
            };
            json!({"messages": messages})
        }
        "completion/complete" => {
            json!({"completion": {"values": [], "total": 0, "hasMore": false}})
        }
        other => return Err((-32601, format!("Method not found: {other}"))),
    })
}

// ===== revision 2026-07-28 =====

/// The tools, prompts and resources of revision 2026-07-28: the same static ones as the
/// session revision, tools that ask for input with `InputRequiredResult` instead of sending
/// requests to the client, and tools that change the lists (announced on `subscriptions/listen`).
#[derive(Debug)]
pub struct Tools {
    changes: Changes,
}

/// The tools that only the session revision serves (they send requests to the client, or
/// close their stream to be resumed).
const SESSION_ONLY_TOOLS: [&str; 6] = [
    "test_reconnection",
    "test_sampling",
    "test_elicitation",
    "test_elicitation_sep1034_defaults",
    "test_elicitation_sep1330_enums",
    "test_tool_with_logging",
];

fn stateless_tools() -> Value {
    let mut list = tools();
    let tools = list["tools"].as_array_mut().expect("a list");
    tools.retain(|t| !SESSION_ONLY_TOOLS.contains(&t["name"].as_str().unwrap_or("")));
    for (name, description) in [
        (
            "test_logging_tool",
            "Logs while it runs, at the level the request asks for (none without one)",
        ),
        (
            "test_streaming_elicitation",
            "Asks the user for input with an InputRequiredResult",
        ),
        (
            "test_missing_capability",
            "Needs the client's sampling capability",
        ),
        (
            "test_trigger_tool_change",
            "Announces a tool list change to subscribers",
        ),
        (
            "test_trigger_prompt_change",
            "Announces a prompt list change to subscribers",
        ),
        (
            "test_input_required_result_elicitation",
            "Asks for the user's name (elicitation)",
        ),
        (
            "test_input_required_result_sampling",
            "Asks the client's LLM a question (sampling)",
        ),
        (
            "test_input_required_result_list_roots",
            "Asks for the client's roots",
        ),
        (
            "test_input_required_result_request_state",
            "Round-trips a sealed requestState",
        ),
        (
            "test_input_required_result_multiple_inputs",
            "Asks for three inputs at once",
        ),
        (
            "test_input_required_result_multi_round",
            "Asks in two rounds",
        ),
        (
            "test_input_required_result_tampered_state",
            "Refuses a tampered requestState",
        ),
        (
            "test_input_required_result_capabilities",
            "Asks only for what the client can answer",
        ),
    ] {
        tools.push(json!({"name": name, "description": description,
            "inputSchema": {"type": "object", "properties": {}}}));
    }
    // SEP-2243: `region` travels in the body and in the `Mcp-Param-Region` header too.
    tools.push(json!({"name": "test_header_param",
        "description": "Echoes a region that also travels in the Mcp-Param-Region header",
        "inputSchema": {"type": "object", "required": ["region"],
            "properties": {"region": {"type": "string", "x-mcp-header": "Region"}}}}));
    list
}

fn name_schema(key: &str) -> Value {
    json!({"type": "object", "properties": {key: {"type": "string"}}, "required": [key]})
}

fn text_result(text: String) -> Value {
    json!({"content": [{"type": "text", "text": text}]})
}

/// The answers the client gave, as text (`action=…, content=…` for an elicitation, the text
/// for a sampling, the URIs for roots).
fn describe(answer: &Value) -> String {
    if let Some(roots) = answer["roots"].as_array() {
        let uris: Vec<&str> = roots.iter().filter_map(|r| r["uri"].as_str()).collect();
        return format!("roots: {}", uris.join(", "));
    }
    if let Some(text) = answer["content"]["text"].as_str() {
        return text.to_owned();
    }
    format!(
        "action={}, content={}",
        answer["action"].as_str().unwrap_or(""),
        answer["content"]
    )
}

impl Handler for Tools {
    fn capabilities(&self) -> Value {
        json!({
            "tools": {"listChanged": true},
            "resources": {"listChanged": true},
            "prompts": {"listChanged": true},
            "completions": {},
            "logging": {}
        })
    }

    fn header_params(&self, name: &str) -> Vec<(String, String)> {
        stateless_tools()["tools"]
            .as_array()
            .and_then(|tools| tools.iter().find(|t| t["name"] == name))
            .map(|tool| nest_mcp::header_params(&tool["inputSchema"]))
            .unwrap_or_default()
    }

    async fn call(&self, request: McpRequest, reply: Reply) -> Result<Value, RpcError> {
        match request.method() {
            "tools/list" => Ok(stateless_tools()),
            "tools/call" => self.call_tool(&request, &reply).await,
            "prompts/list" => {
                let mut list = answer("prompts/list", &Value::Null).map_err(legacy_error)?;
                list["prompts"].as_array_mut().expect("a list").push(json!({
                    "name": "test_input_required_result_prompt",
                    "description": "A prompt that asks the user for context first"}));
                Ok(list)
            }
            "prompts/get" if request.name() == "test_input_required_result_prompt" => {
                match request.input_response("user_context") {
                    Some(context) => Ok(json!({"messages": [{"role": "user", "content": {
                        "type": "text", "text": format!("Use this context: {}", describe(context))}}]})),
                    None => Ok(request.input_required(
                        InputRequired::new().elicit(
                            "user_context",
                            "What context should the prompt use?",
                            name_schema("context"),
                        ),
                        None,
                    )),
                }
            }
            "resources/read" => answer("resources/read", request.params()).map_err(|_| {
                RpcError::invalid_params("Resource not found")
                    .with_data(json!({"uri": request.name()}))
            }),
            method => answer(method, request.params()).map_err(|(code, text)| {
                if code == nest_mcp::METHOD_NOT_FOUND {
                    RpcError::method_not_found(method)
                } else {
                    RpcError::new(code, text)
                }
            }),
        }
    }
}

fn legacy_error((code, text): (i64, String)) -> RpcError {
    RpcError::new(code, text)
}

impl Tools {
    async fn call_tool(&self, request: &McpRequest, reply: &Reply) -> Result<Value, RpcError> {
        let meta = request.meta();
        let state = request.state();
        match request.name() {
            "test_tool_with_progress" => {
                for progress in [0.0, 50.0, 100.0] {
                    reply
                        .progress(
                            progress,
                            Some(100.0),
                            &format!("Completed step {progress} of 100"),
                        )
                        .await;
                }
                let token = meta.progress_token().cloned().unwrap_or(json!(0));
                Ok(text_result(match token {
                    Value::String(s) => s,
                    other => other.to_string(),
                }))
            }
            "test_logging_tool" => {
                for step in ["Tool execution started", "Tool execution completed"] {
                    reply.log("info", "nest-mcp-example", json!(step)).await;
                }
                Ok(text_result("Logging tool executed".into()))
            }
            "test_missing_capability" => {
                meta.require("sampling")?;
                Ok(request
                    .input_required(InputRequired::new().sample("answer", "Say hello", 20), None))
            }
            "test_header_param" => Ok(text_result(format!(
                "region: {}",
                request.arguments()["region"].as_str().unwrap_or("")
            ))),
            "test_trigger_tool_change" => {
                self.changes.publish(Change::Tools);
                Ok(text_result("Tool list changed".into()))
            }
            "test_trigger_prompt_change" => {
                self.changes.publish(Change::Prompts);
                Ok(text_result("Prompt list changed".into()))
            }
            "test_streaming_elicitation" | "test_input_required_result_elicitation" => {
                meta.require("elicitation")?;
                Ok(match request.input_response("user_name") {
                    Some(answer) => text_result(format!(
                        "Hello, {}!",
                        answer["content"]["name"].as_str().unwrap_or("stranger")
                    )),
                    None => request.input_required(
                        InputRequired::new().elicit(
                            "user_name",
                            "What is your name?",
                            name_schema("name"),
                        ),
                        None,
                    ),
                })
            }
            "test_input_required_result_sampling" => {
                meta.require("sampling")?;
                Ok(match request.input_response("capital_question") {
                    Some(answer) => text_result(format!("The LLM said: {}", describe(answer))),
                    None => request.input_required(
                        InputRequired::new().sample(
                            "capital_question",
                            "What is the capital of France?",
                            100,
                        ),
                        None,
                    ),
                })
            }
            "test_input_required_result_list_roots" => {
                meta.require("roots")?;
                Ok(match request.input_response("client_roots") {
                    Some(answer) => text_result(format!("The client's {}", describe(answer))),
                    None => {
                        request.input_required(InputRequired::new().roots("client_roots"), None)
                    }
                })
            }
            "test_input_required_result_request_state"
            | "test_input_required_result_tampered_state" => {
                meta.require("elicitation")?;
                let asked = json!({"asked": "confirm"});
                Ok(match (request.input_response("confirm"), state) {
                    (Some(answer), Some(s)) if *s == asked => {
                        text_result(format!("state-ok: {}", describe(answer)))
                    }
                    _ => request.input_required(
                        InputRequired::new().elicit(
                            "confirm",
                            "Please confirm",
                            json!({"type": "object",
                            "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}),
                        ),
                        Some(asked),
                    ),
                })
            }
            "test_input_required_result_multiple_inputs" => {
                for capability in ["elicitation", "sampling", "roots"] {
                    meta.require(capability)?;
                }
                let keys = ["user_name", "greeting", "client_roots"];
                let answers: Vec<&Value> = keys
                    .iter()
                    .filter_map(|k| request.input_response(k))
                    .collect();
                Ok(if answers.len() == keys.len() && state.is_some() {
                    let parts: Vec<String> = answers.into_iter().map(describe).collect();
                    text_result(format!("All inputs received: {}", parts.join("; ")))
                } else {
                    request.input_required(
                        InputRequired::new()
                            .elicit("user_name", "What is your name?", name_schema("name"))
                            .sample("greeting", "Generate a greeting", 50)
                            .roots("client_roots"),
                        Some(json!({"asked": keys})),
                    )
                })
            }
            "test_input_required_result_multi_round" => {
                meta.require("elicitation")?;
                let round = state.and_then(|s| s["round"].as_u64()).unwrap_or(0);
                Ok(
                    match (
                        round,
                        request.input_response("step1"),
                        request.input_response("step2"),
                    ) {
                        (1, Some(name), _) => request.input_required(
                            InputRequired::new().elicit(
                                "step2",
                                "Step 2: What is your favorite color?",
                                name_schema("color"),
                            ),
                            Some(json!({"round": 2, "name": name["content"]["name"]})),
                        ),
                        (2, _, Some(color)) => text_result(format!(
                            "Done: name={}, color={}",
                            state.map(|s| s["name"].clone()).unwrap_or_default(),
                            color["content"]["color"]
                        )),
                        _ => request.input_required(
                            InputRequired::new().elicit(
                                "step1",
                                "Step 1: What is your name?",
                                name_schema("name"),
                            ),
                            Some(json!({"round": 1})),
                        ),
                    },
                )
            }
            "test_input_required_result_capabilities" => {
                let mut input = InputRequired::new();
                if meta.supports("elicitation") {
                    input = input.elicit("user_name", "What is your name?", name_schema("name"));
                }
                if meta.supports("sampling") {
                    input = input.sample("greeting", "Generate a greeting", 50);
                }
                if meta.supports("roots") {
                    input = input.roots("client_roots");
                }
                let answered = ["user_name", "greeting", "client_roots"]
                    .iter()
                    .any(|k| request.input_response(k).is_some());
                Ok(if input.is_empty() || answered {
                    text_result("Done with what the client can answer".into())
                } else {
                    request.input_required(input, None)
                })
            }
            _ => answer("tools/call", request.params()).map_err(legacy_error),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = nest::server::ListenEnv::from_env(3006)?;
    let server = app().bind_env(&listen).await?;
    println!("nest MCP example: {}mcp", server.url());
    server.run_until_signal().await;
    Ok(())
}
