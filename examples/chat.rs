//! A browser chat on the SSE hub: `POST /messages` publishes, `GET /events` streams them, and a
//! browser that reconnects resumes from its `Last-Event-ID` without gaps or duplicates. A post
//! with an `Idempotency-Key` header is stored once however often it is retried (a 503 may come
//! after the message was stored: retry it with the same key).
//!
//! Run with: `cargo run --example chat`, then open the printed URL in two windows. `HOST`
//! (default 127.0.0.1) and `PORT` (default 3001) choose the address. `GET /metrics` shows nest's
//! metrics in Prometheus's format (`nest_sse_streams_open{route="/events"}` counts the open
//! pages), `GET /ready` answers 503 once shutdown starts.
//!
//! `GET /openapi.json` is the API's OpenAPI 3.2 document (the stream's events typed by
//! [`ChatEvent`]), `GET /docs` shows it.
//!
//! Several instances, one chat: `NEST_REDIS_URL=redis://127.0.0.1:6379/ PORT=3002 cargo run
//! --example chat --features redis` (and again with another `PORT`) puts the hub on Redis.
#![allow(clippy::print_stdout, reason = "an example prints its URL")]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, StatusCode};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use nest::health::Readiness;
use nest::openapi::{Info, OpenApiRoute};
use nest::prelude::*;
use nest::server::ListenEnv;
use nest::sse::hub::{History, Hub, HubOptions, MemoryBackend, Retention, SubscribeOptions};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[allow(
    clippy::duplicate_mod,
    reason = "a test that includes two examples includes this module twice"
)]
mod support;

/// How many past messages a first visit shows.
pub const HISTORY: usize = 50;

/// The reconnection time the hub sends (`retry:`), shown by the page while reconnecting.
pub const RETRY: Duration = Duration::from_secs(2);

/// The largest message body accepted (a larger one answers 413).
pub const MAX_BODY: usize = 16 * 1024;

/// A message as posted.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct NewMessage {
    /// Who wrote it (not blank).
    #[schemars(pattern(r"\S"))]
    pub user: String,
    /// What they wrote.
    pub text: String,
}

/// An `Idempotency-Key` header as the hub takes it: up to 128 bytes of ASCII text, not all
/// blank (the document's schema of the header; the handler reads it from the `HeaderMap`).
#[derive(Debug, JsonSchema)]
pub struct IdempotencyKey(
    #[schemars(length(max = 128), pattern(r"^[\t -~]*[!-~][\t -~]*$"))] pub String,
);

/// A posted message's id: its event's id on the stream.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Posted {
    /// The event id.
    pub id: String,
}

/// A message as the stream carries it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ChatMessage {
    /// Who wrote it.
    pub user: String,
    /// What they wrote.
    pub text: String,
    /// When it was posted, in milliseconds since the Unix epoch.
    pub ts: u64,
}

/// Why the hub started a page over.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Reset {
    /// `lagged` (the page fell behind) or `unknown-id` (its `Last-Event-ID` is gone).
    pub reason: String,
}

/// The events of `GET /events`.
#[derive(Debug, SseEvents)]
pub enum ChatEvent {
    /// A message posted to the chat.
    Message(ChatMessage),
    /// The page's history is lost (a restart, or it fell behind): start over. The hub sends it.
    Reset(Reset),
}

/// The chat: one hub topic, `chat`.
#[derive(Debug)]
pub struct ChatController {
    hub: Hub,
}

impl ChatController {
    async fn index(self: Arc<Self>) -> Html<String> {
        Html(PAGE.replace("{RETRY_MS}", &RETRY.as_millis().to_string()))
    }

    /// Publishes a message. With an `Idempotency-Key` header (1 to 128 bytes), a post retried
    /// with the same key (after a timeout, say) answers the first post's id and stores nothing.
    /// A post that ends after a shutdown began answers 503: the open streams may have ended
    /// before it reached them, and the in-process hub's messages end with the process, so the
    /// client retries it on the next instance.
    async fn post(
        self: Arc<Self>,
        headers: HeaderMap,
        readiness: Readiness,
        Json(message): Json<NewMessage>,
    ) -> Result<(StatusCode, Json<Posted>), HttpException> {
        if message.user.trim().is_empty() {
            return Err(HttpException::bad_request("user must not be empty"));
        }
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let (user, text) = (message.user, message.text);
        let event = ChatEvent::Message(ChatMessage { user, text, ts }).to_sse_event();
        let key = match headers.get("idempotency-key") {
            Some(key) => Some(
                key.to_str()
                    .map_err(|_| HttpException::bad_request("Idempotency-Key must be text"))?,
            ),
            None => None,
        };
        let published = match key {
            Some(key) => self.hub.publish_idempotent("chat", key, event).await,
            None => self.hub.publish("chat", event).await,
        };
        let id = published.map_err(|e| match e.is_invalid_event() {
            true => HttpException::bad_request(e.to_string()),
            // Redis unreachable or slow: retry (with the same key, stored once).
            false => HttpException::service_unavailable(e.to_string()),
        })?;
        if !readiness.is_ready() {
            return Err(HttpException::service_unavailable(
                "shutting down: the message may not reach the open streams; post it again \
                 (with the same Idempotency-Key)",
            ));
        }
        Ok((StatusCode::CREATED, Json(Posted { id })))
    }

    /// A first visit gets the last 50 messages, a reconnect what it missed.
    async fn events(self: Arc<Self>, last: LastEventId) -> Result<SseBody, HttpException> {
        self.hub
            .subscribe(
                "chat",
                SubscribeOptions::from(&last).history(History::Last(HISTORY)),
            )
            .await
            .map_err(|e| HttpException::service_unavailable(e.to_string()))
    }
}

impl Controller for ChatController {
    fn routes(routes: &mut Routes<Self>) {
        routes
            .get("/", Self::index)
            .doc(|op| op.summary("The chat page"));
        routes.post("/messages", Self::post).doc(|op| {
            op.summary("Post a message")
                .success_status(201)
                .typed_header::<IdempotencyKey>(
                    "Idempotency-Key",
                    "1 to 128 bytes: a post retried with the same key is stored once",
                )
                .response(503, "Not stored, or shutting down: retry with the same key")
        });
        routes.sse("/events", Self::events).doc(|op| {
            op.summary("The chat's messages: the last 50, then live; a reconnect resumes")
                .sse_events::<ChatEvent>()
                .response(503, "The hub is unreachable")
        });
    }
}

/// What the hub keeps: the last 1,000 messages, at most 1 MiB of them.
pub const RETENTION: Retention = Retention {
    max_events: 1000,
    max_age: None,
    max_bytes: 1024 * 1024,
};

/// The hub the example uses: in process, [`RETENTION`], a [`RETRY`] reconnection time (`main`
/// puts it on Redis when `NEST_REDIS_URL` is set).
pub fn hub() -> Hub {
    Hub::with_backend(
        MemoryBackend::new(RETENTION),
        HubOptions::new().retry(RETRY),
    )
}

/// The app on `hub`, with CORS on and the body limit.
pub fn app(hub: Hub) -> NestApp {
    app_with_metrics(hub, None)
}

/// The app, plus `GET /metrics` in Prometheus's text format when a recorder's handle is given,
/// and `GET /ready` for load balancers.
pub fn app_with_metrics(hub: Hub, metrics: Option<PrometheusHandle>) -> NestApp {
    NestApp::new()
        .controller(ChatController { hub })
        .controller(Ops { metrics })
        .openapi_info(Info::new("nest chat example", "0.1.0"))
        .openapi_route(OpenApiRoute::new("/openapi.json").docs("/docs"))
        .layer(CorsLayer::new())
        .body_limit(MAX_BODY)
}

/// Operations: readiness and, when installed, the Prometheus metrics.
#[derive(Debug)]
pub struct Ops {
    metrics: Option<PrometheusHandle>,
}

impl Controller for Ops {
    fn routes(routes: &mut Routes<Self>) {
        routes.get("/ready", nest::health::ready).doc(|op| {
            op.summary("Ready for traffic")
                .json_response::<serde_json::Value>(200, "`{\"status\":\"ready\"}`")
                .json_response::<serde_json::Value>(503, "`{\"status\":\"draining\"}`")
        });
        routes
            .get("/metrics", |this: Arc<Self>| async move {
                match &this.metrics {
                    Some(handle) => Ok(handle.render()),
                    None => Err(HttpException::not_found("metrics are not installed")),
                }
            })
            .doc(|op| op.summary("nest's metrics, in Prometheus's text format"));
    }
}

/// Installs the Prometheus recorder for the whole process and returns its handle.
pub fn install_prometheus() -> Result<PrometheusHandle, Box<dyn std::error::Error>> {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)?;
    Ok(handle)
}

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>nest chat</title>
<style>body{font:14px system-ui;margin:2em;max-width:40em}#log{border:1px solid #ccc;height:20em;overflow:auto;padding:.5em}.sys{color:#888}.replayed{color:#555}.replayed::after{content:" (while you were away)";color:#999;font-size:85%}#state{font-size:85%;color:#666}</style>
</head>
<body>
<h1>nest chat <span id="state">connecting…</span></h1>
<div id="log"></div>
<form id="form"><input id="user" placeholder="name" value="guest" size="8"> <input id="text" placeholder="message" size="30" autofocus> <button>send</button></form>
<script>
  const RETRY_MS = {RETRY_MS};
  const log = document.getElementById('log');
  const stateEl = document.getElementById('state');
  window.messages = [];   // what the page shows, in order: {user, text, ts, id, replayed}
  window.resets = 0;
  window.state = 'connecting';
  const seen = new Set();  // event ids shown, so nothing is shown twice
  let lostAt = null;       // when the connection dropped; messages older than the reconnect are replays
  let reopenedAt = null;
  const setState = (state, text) => { window.state = state; stateEl.textContent = text; };
  const line = (text, cls) => { const p = document.createElement('div'); p.textContent = text; if (cls) p.className = cls; log.appendChild(p); log.scrollTop = log.scrollHeight; };
  const source = new EventSource('/events');
  source.onopen = () => { if (lostAt !== null) reopenedAt = Date.now(); setState('live', '● live'); };
  source.addEventListener('message', (e) => {
    if (seen.has(e.lastEventId)) return;
    seen.add(e.lastEventId);
    const m = JSON.parse(e.data);
    m.id = e.lastEventId;
    m.replayed = reopenedAt !== null && m.ts < reopenedAt;
    window.messages.push(m);
    line(m.user + ': ' + m.text, m.replayed ? 'replayed' : '');
  });
  source.addEventListener('reset', () => { window.resets += 1; window.messages = []; seen.clear(); log.textContent = ''; line('(history lost after a server restart: resynced)', 'sys'); });
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) { setState('closed', '○ closed'); return; }
    lostAt = Date.now();
    setState('reconnecting', '◌ reconnecting in ' + (RETRY_MS / 1000) + ' s…');
  };
  document.getElementById('form').onsubmit = async (e) => {
    e.preventDefault();
    const text = document.getElementById('text');
    const res = await fetch('/messages', { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: document.getElementById('user').value, text: text.value }) });
    if (res.ok) text.value = ''; else line('(not sent: ' + res.status + ')', 'sys');
  };
</script>
</body>
</html>
"#;

#[allow(
    dead_code,
    reason = "tests include this file for `app` and do not call `main`"
)]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    support::init_logging();
    let listen = ListenEnv::from_env(3001)?;
    // With `NEST_REDIS_URL` (and `--features redis`) the hub is on Redis: instances on several
    // ports share one chat, and a page moved from one to another resumes without a gap.
    let hub = match std::env::var("NEST_REDIS_URL") {
        Ok(url) => redis_hub(&url).await?,
        Err(_) => hub(),
    };
    let server = app_with_metrics(hub, Some(install_prometheus()?))
        .bind_env(&listen)
        .await?;
    println!("nest chat example: open {}", server.url());
    server.run_until_signal().await;
    Ok(())
}

/// The example's hub on the Redis at `url`: the same retention and options, keys under
/// `nest-chat:`.
#[cfg(feature = "redis")]
pub async fn redis_hub(url: &str) -> Result<Hub, Box<dyn std::error::Error>> {
    use nest::sse::hub::{RedisBackend, RedisConfig};
    let config = RedisConfig::new(url)
        .prefix("nest-chat:")
        .retention(RETENTION);
    let backend = RedisBackend::connect(config).await?;
    Ok(Hub::with_backend(backend, HubOptions::new().retry(RETRY)))
}

/// Without the `redis` feature there is no Redis hub: setting `NEST_REDIS_URL` is an error that
/// says how to build the example.
#[cfg(not(feature = "redis"))]
pub async fn redis_hub(_url: &str) -> Result<Hub, Box<dyn std::error::Error>> {
    Err(
        "NEST_REDIS_URL is set, but the example was built without Redis: add --features redis"
            .into(),
    )
}
