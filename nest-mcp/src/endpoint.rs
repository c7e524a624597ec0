//! The 2026-07-28 endpoint: checks a request, routes it, and answers with JSON or, when the
//! handler sends notifications first, with an event stream.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, StatusCode};
use nest_core::sse::{get_sse_stream, SseEvent, SseOptions, SseWriter};
use nest_core::{IntoResponse, Json, Response};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::cache::CACHEABLE;
use crate::request::name_of;
use crate::revision::{META_SERVER_INFO, STATELESS_VERSION};
use crate::subscriptions::acknowledged;
use crate::{CacheHint, Changes, McpRequest, Reply, RequestMeta, RpcError, Sealer};

/// Methods of the session revisions that 2026-07-28 removed: 404 with `-32601`.
pub const REMOVED_METHODS: [&str; 5] = [
    "initialize",
    "ping",
    "logging/setLevel",
    "resources/subscribe",
    "resources/unsubscribe",
];

/// What an app implements: its capabilities and its answer to each request.
pub trait Handler: Send + Sync + 'static {
    /// The server's capabilities (`ServerCapabilities`), as `server/discover` reports them.
    fn capabilities(&self) -> Value;

    /// The result of `request` (its `resultType` and, for the cacheable methods, its cache
    /// hints are added when absent), or an error. Notifications sent on `reply` before it
    /// returns reach the client first, on an event stream.
    fn call(
        &self,
        request: McpRequest,
        reply: Reply,
    ) -> impl Future<Output = Result<Value, RpcError>> + Send;

    /// The `(argument, header suffix)` pairs of tool `name` whose values also travel in
    /// `Mcp-Param-<suffix>` headers (its `inputSchema`'s `x-mcp-header`s, see
    /// [`header_params`](crate::header_params)); the endpoint checks that they agree. None by
    /// default.
    fn header_params(&self, name: &str) -> Vec<(String, String)> {
        let _ = name;
        Vec::new()
    }
}

/// An invalid endpoint setting, reported by [`StatelessBuilder::build`].
#[derive(Debug)]
pub struct ConfigError(String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Builds a [`Stateless`] endpoint.
#[derive(Debug)]
#[must_use]
pub struct StatelessBuilder<H> {
    handler: H,
    name: String,
    version: String,
    cache: CacheHint,
    changes: Changes,
    state_ttl: Duration,
    max_listeners: usize,
    key: Option<[u8; 32]>,
}

impl<H: Handler> StatelessBuilder<H> {
    /// The server's name and version (`serverInfo`); both must be non-empty.
    pub fn server_info(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.name = name.into();
        self.version = version.into();
        self
    }

    /// The cache hint put on cacheable results that carry none (default: `ttlMs: 0`,
    /// `private`).
    pub fn cache(mut self, hint: CacheHint) -> Self {
        self.cache = hint;
        self
    }

    /// The channel the app announces list changes on (default: a fresh one, see
    /// [`Stateless::changes`]).
    pub fn changes(mut self, changes: Changes) -> Self {
        self.changes = changes;
        self
    }

    /// How long a `requestState` stays valid (default 10 minutes; must not be zero).
    pub fn state_ttl(mut self, ttl: Duration) -> Self {
        self.state_ttl = ttl;
        self
    }

    /// The most `subscriptions/listen` streams open at once (default 1,000; more get 503).
    pub fn max_listeners(mut self, max: usize) -> Self {
        self.max_listeners = max;
        self
    }

    /// Seals `requestState` with `key` instead of a random one (for servers that share
    /// retries behind a load balancer).
    pub fn state_key(mut self, key: [u8; 32]) -> Self {
        self.key = Some(key);
        self
    }

    /// The endpoint, or the setting that is invalid.
    pub fn build(self) -> Result<Stateless<H>, ConfigError> {
        if self.name.is_empty() || self.version.is_empty() {
            return Err(ConfigError(
                "server_info: name and version must not be empty".into(),
            ));
        }
        if self.state_ttl.is_zero() {
            return Err(ConfigError("state_ttl must be longer than zero".into()));
        }
        let sealer = match self.key {
            Some(key) => Sealer::with_key(key, self.state_ttl),
            None => Sealer::random(self.state_ttl)
                .map_err(|e| ConfigError(format!("state key: no randomness ({e})")))?,
        };
        let info = json!({"name": self.name, "version": self.version});
        Ok(Stateless {
            handler: Arc::new(self.handler),
            completer: Arc::new(Completer {
                info: info.clone(),
                cache: self.cache,
            }),
            info,
            changes: self.changes,
            sealer: Arc::new(sealer),
            max_listeners: self.max_listeners,
        })
    }
}

/// The stateless (2026-07-28) side of an MCP endpoint. An app routes a POSTed message here
/// when [`Revision::detect`](crate::Revision::detect) says so.
pub struct Stateless<H> {
    handler: Arc<H>,
    info: Value,
    completer: Arc<Completer>,
    changes: Changes,
    sealer: Arc<Sealer>,
    max_listeners: usize,
}

impl<H> std::fmt::Debug for Stateless<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stateless")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl<H: Handler> Stateless<H> {
    /// A builder around `handler`.
    pub fn builder(handler: H) -> StatelessBuilder<H> {
        StatelessBuilder {
            handler,
            name: "nest-mcp".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            cache: CacheHint::default(),
            changes: Changes::new(),
            state_ttl: Duration::from_secs(600),
            max_listeners: 1000,
            key: None,
        }
    }

    /// The channel list changes are announced on.
    pub fn changes(&self) -> &Changes {
        &self.changes
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// Answers one POSTed JSON-RPC `message` (already parsed; a body that is not JSON is
    /// [`RpcError::parse_error`]).
    pub async fn serve(&self, headers: &HeaderMap, message: Value) -> Response {
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        match self.route(headers, message).await {
            Ok(response) => response,
            Err(error) => error.into_response_for(&id),
        }
    }

    async fn route(&self, headers: &HeaderMap, message: Value) -> Result<Response, RpcError> {
        let Value::Object(mut message) = message else {
            return Err(RpcError::invalid_request(
                "Invalid Request: not a JSON-RPC object",
            ));
        };
        if message.get("jsonrpc") != Some(&json!("2.0")) {
            return Err(RpcError::invalid_request(
                "Invalid Request: jsonrpc must be \"2.0\"",
            ));
        }
        let Some(Value::String(method)) = message.remove("method") else {
            return Err(RpcError::invalid_request("Invalid Request: no method"));
        };
        let id = match message.remove("id") {
            // A notification: nothing to answer.
            None => return Ok(StatusCode::ACCEPTED.into_response()),
            Some(id @ (Value::String(_) | Value::Number(_))) => id,
            Some(_) => {
                return Err(RpcError::invalid_request(
                    "Invalid Request: id must be a string or a number",
                ))
            }
        };
        let params = message.remove("params").unwrap_or_else(|| json!({}));
        if !params.is_object() {
            return Err(RpcError::invalid_params("params must be an object")
                .with_status(StatusCode::BAD_REQUEST));
        }
        let meta = RequestMeta::parse(headers, &params, &[STATELESS_VERSION])?;
        check_header(headers, "mcp-method", Some(&method))?;
        let name = match method.as_str() {
            "tools/call" | "prompts/get" | "resources/read" => Some(name_of(&method, &params)),
            _ => None,
        };
        check_header(headers, "mcp-name", name)?;
        if method == "tools/call" {
            let params_of_tool = self.handler.header_params(name_of(&method, &params));
            crate::params::check(headers, &params["arguments"], &params_of_tool)?;
        }
        match method.as_str() {
            "server/discover" => Ok(self.result(&id, &method, self.discover())),
            "subscriptions/listen" => self.listen(id, &params),
            m if REMOVED_METHODS.contains(&m) => Err(RpcError::method_not_found(m)),
            _ => self.call(id, method, params, meta).await,
        }
    }

    fn discover(&self) -> Value {
        json!({
            "supportedVersions": [STATELESS_VERSION],
            "capabilities": self.handler.capabilities(),
            "serverInfo": self.info,
        })
    }

    /// The response carrying `result` for `method`, completed with `resultType`, cache hints
    /// and the server's identity.
    fn result(&self, id: &Value, method: &str, result: Value) -> Response {
        Json(self.completer.complete(id, method, result)).into_response()
    }

    fn listen(&self, id: Value, params: &Value) -> Result<Response, RpcError> {
        let filter = params
            .get("notifications")
            .filter(|f| f.is_object())
            .cloned()
            .ok_or_else(|| {
                RpcError::invalid_params("subscriptions/listen needs notifications")
                    .with_status(StatusCode::BAD_REQUEST)
            })?;
        let mut listener = self.changes.subscribe(self.max_listeners).ok_or_else(|| {
            RpcError::new(-32000, "Too many subscriptions: try again later")
                .with_status(StatusCode::SERVICE_UNAVAILABLE)
        })?;
        let (writer, body) = get_sse_stream(SseOptions::new());
        send(&writer, &acknowledged(&filter, &id)).map_err(RpcError::internal)?;
        let task = tokio::spawn(async move {
            while let Some(notification) = listener.next(&filter, &id).await {
                if send(&writer, &notification).is_err() {
                    break;
                }
            }
        });
        Ok(body.on_cancel(move |_| task.abort()).into_response())
    }

    async fn call(
        &self,
        id: Value,
        method: String,
        params: Value,
        meta: RequestMeta,
    ) -> Result<Response, RpcError> {
        let state = match params.get("requestState") {
            None | Some(Value::Null) => None,
            Some(Value::String(token)) => Some(self.sealer.open(
                &method,
                name_of(&method, &params),
                token,
            )?),
            Some(_) => return Err(RpcError::invalid_params("requestState must be a string")),
        };
        let (tx, mut rx) = mpsc::channel(32);
        let reply = Reply::new(tx, &meta);
        let request = McpRequest {
            method: method.clone(),
            params,
            meta,
            state,
            sealer: self.sealer.clone(),
        };
        let handler = self.handler.clone();
        let mut task = tokio::spawn(async move { handler.call(request, reply).await });
        // Until the answer is handed to a stream, a client that goes away (hyper drops this
        // future) stops the handler too.
        let mut guard = AbortOnDrop(Some(task.abort_handle()));
        tokio::select! {
            biased;
            Some(first) = rx.recv() => {
                // A notification before the result: the answer becomes an event stream, which
                // carries the notifications, then the result, then ends.
                let (writer, body) = get_sse_stream(SseOptions::new());
                let _ = send(&writer, &first);
                let abort = guard.0.take().expect("armed");
                let done = self.completer(id, method);
                tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            biased;
                            Some(notification) = rx.recv() => {
                                if send(&writer, &notification).is_err() {
                                    task.abort();
                                    return;
                                }
                            }
                            outcome = &mut task => {
                                while let Ok(notification) = rx.try_recv() {
                                    let _ = send(&writer, &notification);
                                }
                                let _ = send(&writer, &done(outcome));
                                return;
                            }
                        }
                    }
                });
                Ok(body.on_cancel(move |_| abort.abort()).into_response())
            }
            outcome = &mut task => {
                let result = outcome.map_err(|e| RpcError::internal(format!("handler failed: {e}")))??;
                Ok(self.result(&id, &method, result))
            }
        }
    }

    /// Turns the handler's outcome into the final message of a stream.
    fn completer(
        &self,
        id: Value,
        method: String,
    ) -> impl FnOnce(Result<Result<Value, RpcError>, tokio::task::JoinError>) -> Value + Send + 'static
    {
        let this = self.completer.clone();
        move |outcome| match outcome {
            Ok(Ok(result)) => this.complete(&id, &method, result),
            Ok(Err(error)) => error.to_message(&id),
            Err(e) => RpcError::internal(format!("handler failed: {e}")).to_message(&id),
        }
    }
}

/// Aborts a handler task whose answer nobody will read.
struct AbortOnDrop(Option<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

/// What completing a result needs, for a task that outlives the request.
struct Completer {
    info: Value,
    cache: CacheHint,
}

impl Completer {
    fn complete(&self, id: &Value, method: &str, mut result: Value) -> Value {
        if let Some(object) = result.as_object_mut() {
            object.entry("resultType").or_insert(json!("complete"));
            let meta = object.entry("_meta").or_insert(json!({}));
            if let Some(meta) = meta.as_object_mut() {
                meta.entry(META_SERVER_INFO).or_insert(self.info.clone());
            }
        }
        if CACHEABLE.contains(&method) && result["resultType"] == "complete" {
            self.cache.apply(&mut result);
        }
        json!({"jsonrpc": "2.0", "id": id, "result": result})
    }
}

/// SEP-2243: header `name` must be present and equal `expected` when the body has a value
/// for it (a method always, a tool or prompt name or resource URI when there is one).
fn check_header(headers: &HeaderMap, name: &str, expected: Option<&str>) -> Result<(), RpcError> {
    let Some(expected) = expected.filter(|e| !e.is_empty()) else {
        return Ok(());
    };
    match headers.get(name).map(|v| v.to_str()) {
        Some(Ok(sent)) if sent == expected => Ok(()),
        Some(_) => Err(RpcError::header_mismatch(format!(
            "{name} header does not match the request"
        ))),
        None => Err(RpcError::header_mismatch(format!(
            "{name} header is required"
        ))),
    }
}

fn send(writer: &SseWriter, message: &Value) -> Result<(), String> {
    writer
        .write(SseEvent::json(message).event("message"))
        .map_err(|e| e.to_string())
}
