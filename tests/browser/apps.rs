//! The test servers: a page server (one origin) and a stream server (another origin) whose
//! handlers record on the server side what the browser did.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use nest::prelude::*;
use nest::server::Server;
use nest::sse::EndReason;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// Binds `app` on 127.0.0.1 (port 0: a free one).
pub(crate) async fn serve(app: NestApp) -> Server {
    app.bind(([127, 0, 0, 1], 0))
        .await
        .expect("bind 127.0.0.1:0")
}

/// The page server: `/` serves [`PAGE`], whatever the query.
#[derive(Debug)]
pub(crate) struct PageApp;

impl PageApp {
    async fn page(self: Arc<Self>) -> Html<&'static str> {
        Html(PAGE)
    }
}

impl Controller for PageApp {
    fn routes(routes: &mut Routes<Self>) {
        routes.get("/", Self::page);
    }
}

/// The page server's app.
pub(crate) fn page_app() -> NestApp {
    NestApp::new().controller(PageApp)
}

/// The URL of the page on `page`, opening an `EventSource` to `src` (with `withCredentials`
/// when `credentials`), or none when `src` is `None`.
pub(crate) fn page_url(page: SocketAddr, src: Option<&str>, credentials: bool) -> String {
    match src {
        Some(src) => format!(
            "http://{page}/?src={}&cred={}",
            encode_query(src),
            u8::from(credentials)
        ),
        None => format!("http://{page}/"),
    }
}

/// Percent-encodes a query value (the URLs here are ASCII).
fn encode_query(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The origin the browser sends for a page served from `addr`.
pub(crate) fn origin(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// What the stream server saw, shared between its handlers and the test.
#[derive(Debug)]
pub(crate) struct Seen {
    /// Requests to `/stream`.
    pub(crate) stream_hits: AtomicUsize,
    /// The `Last-Event-ID` of each request to `/stream`, in order (`None`: no header).
    pub(crate) last_event_ids: Mutex<Vec<Option<String>>>,
    /// The `Cookie` header of each request to `/stream`, in order (`None`: no header).
    pub(crate) cookies: Mutex<Vec<Option<String>>>,
    /// Requests to `/forbidden`.
    pub(crate) forbidden_hits: AtomicUsize,
    /// Requests to `/empty`.
    pub(crate) empty_hits: AtomicUsize,
    /// Requests to `/ping`.
    pub(crate) ping_hits: AtomicUsize,
    /// PUT requests that reached the `/echo` handler.
    pub(crate) echo_hits: AtomicUsize,
    /// Each request to `/brief`, in order: its `name` and its `Last-Event-ID`.
    pub(crate) briefs: Mutex<Vec<(String, Option<String>)>>,
    cancels: mpsc::UnboundedSender<EndReason>,
}

impl Seen {
    /// A fresh record, and the receiving end of the cancel hooks' reasons.
    pub(crate) fn new() -> (Arc<Self>, mpsc::UnboundedReceiver<EndReason>) {
        let (cancels, rx) = mpsc::unbounded_channel();
        let seen = Self {
            stream_hits: AtomicUsize::new(0),
            last_event_ids: Mutex::new(Vec::new()),
            cookies: Mutex::new(Vec::new()),
            forbidden_hits: AtomicUsize::new(0),
            empty_hits: AtomicUsize::new(0),
            ping_hits: AtomicUsize::new(0),
            echo_hits: AtomicUsize::new(0),
            briefs: Mutex::new(Vec::new()),
            cancels,
        };
        (Arc::new(seen), rx)
    }

    /// The `Last-Event-ID` headers seen so far.
    pub(crate) fn last_event_ids(&self) -> Vec<Option<String>> {
        self.last_event_ids.lock().expect("not poisoned").clone()
    }

    /// The `Cookie` headers seen so far on `/stream`.
    pub(crate) fn cookies(&self) -> Vec<Option<String>> {
        self.cookies.lock().expect("not poisoned").clone()
    }

    /// The requests to `/brief` seen so far, in order.
    pub(crate) fn briefs(&self) -> Vec<(String, Option<String>)> {
        self.briefs.lock().expect("not poisoned").clone()
    }
}

/// The query of `/brief`.
#[derive(Debug, Deserialize)]
pub(crate) struct Brief {
    name: String,
    retry: u64,
}

/// The stream server's controller.
#[derive(Debug)]
pub(crate) struct StreamApp {
    seen: Arc<Seen>,
    period: Duration,
    retry: Option<Duration>,
}

impl StreamApp {
    /// `/stream`: `{"n": id}` with ids 1, 2, 3… (continuing after `Last-Event-ID`) every period,
    /// after an initial `retry:` when configured; the cancel hook reports its reason.
    async fn stream(self: Arc<Self>, last_event_id: LastEventId, headers: HeaderMap) -> SseBody {
        self.seen.stream_hits.fetch_add(1, Ordering::SeqCst);
        let cookie = headers
            .get("cookie")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        self.seen.cookies.lock().expect("not poisoned").push(cookie);
        self.seen
            .last_event_ids
            .lock()
            .expect("not poisoned")
            .push(last_event_id.0.clone());
        let mut options = SseOptions::new();
        if let Some(retry) = self.retry {
            options = options.retry(retry);
        }
        let (writer, body) = get_sse_stream(options);
        let mut id = last_event_id.as_u64().map_or(1, |id| id + 1);
        let period = self.period;
        let task = tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            loop {
                interval.tick().await;
                if writer
                    .write(SseEvent::json(&json!({ "n": id })).id(id))
                    .is_err()
                {
                    break;
                }
                id += 1;
            }
        });
        let cancels = self.seen.cancels.clone();
        body.on_cancel(move |reason| {
            task.abort();
            let _ = cancels.send(reason);
        })
    }

    /// `/brief?name=…&retry=MS`: `retry: MS`, one event (id: one more than `Last-Event-ID`, data:
    /// `name`), and the end of the stream, so the browser reconnects after `retry`.
    async fn brief(
        self: Arc<Self>,
        Query(brief): Query<Brief>,
        last_event_id: LastEventId,
    ) -> SseBody {
        self.seen
            .briefs
            .lock()
            .expect("not poisoned")
            .push((brief.name.clone(), last_event_id.0.clone()));
        let options = SseOptions::new().retry(Duration::from_millis(brief.retry));
        let (writer, body) = get_sse_stream(options);
        let id = last_event_id.as_u64().map_or(1, |id| id + 1);
        let written = writer.write(SseEvent::data(brief.name).id(id));
        assert!(written.is_ok(), "a fresh stream takes an event");
        writer.close();
        body
    }

    /// `/forbidden`: refuses before streaming.
    async fn forbidden(self: Arc<Self>) -> Result<SseBody, HttpException> {
        self.seen.forbidden_hits.fetch_add(1, Ordering::SeqCst);
        Err(HttpException::forbidden("no stream for you"))
    }

    /// `/empty`: 204, the server's way to tell an `EventSource` to stop.
    async fn empty(self: Arc<Self>) -> Result<SseBody, StatusCode> {
        self.seen.empty_hits.fetch_add(1, Ordering::SeqCst);
        Err(StatusCode::NO_CONTENT)
    }

    /// `/ping`: a plain round trip.
    async fn ping(self: Arc<Self>) -> &'static str {
        self.seen.ping_hits.fetch_add(1, Ordering::SeqCst);
        "pong"
    }

    /// `PUT /echo`: echoes the JSON body and `x-custom-req`, with an exposed and a hidden
    /// response header.
    async fn echo(
        self: Arc<Self>,
        headers: HeaderMap,
        Json(body): Json<Value>,
    ) -> ([(HeaderName, HeaderValue); 2], Json<Value>) {
        self.seen.echo_hits.fetch_add(1, Ordering::SeqCst);
        let custom = headers
            .get("x-custom-req")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (
            [
                (
                    HeaderName::from_static("x-exposed"),
                    HeaderValue::from_static("visible"),
                ),
                (
                    HeaderName::from_static("x-hidden"),
                    HeaderValue::from_static("secret"),
                ),
            ],
            Json(json!({ "method": "PUT", "x-custom-req": custom, "body": body })),
        )
    }
}

impl Controller for StreamApp {
    fn routes(routes: &mut Routes<Self>) {
        routes.sse("/stream", Self::stream);
        routes.sse("/brief", Self::brief);
        routes.sse("/forbidden", Self::forbidden);
        routes.sse("/empty", Self::empty);
        routes.get("/ping", Self::ping);
        routes.put("/echo", Self::echo);
    }
}

/// The stream server: events every `period`, an initial `retry` when given, and `cors` (none:
/// no CORS layer at all, so the browser refuses cross-origin responses).
pub(crate) fn stream_app(
    seen: Arc<Seen>,
    period: Duration,
    retry: Option<Duration>,
    cors: Option<CorsLayer>,
) -> NestApp {
    let app = NestApp::new().controller(StreamApp {
        seen,
        period,
        retry,
    });
    match cors {
        Some(cors) => app.layer(cors),
        None => app,
    }
}

/// Reads the page's record: `{ opened, messages: [{id, data}], errors: [{readyState, t}],
/// readyState, ping, put }`.
pub(crate) const OBSERVE: &str = "return {
    opened: window.state.opened,
    messages: window.state.messages,
    errors: window.state.errors,
    readyState: window.es ? window.es.readyState : null,
    ping: window.state.ping,
    put: window.state.put,
};";

/// The page: sets the cookie `nest_page=1`, opens `new EventSource(src, { withCredentials })`
/// from its query and records everything into `window.state`; `ping(url)` and `put(url)` do a `fetch` and record the result.
const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>nest browser test page</title></head>
<body>
<pre id="log"></pre>
<script>
  const log = (line) => { document.getElementById('log').textContent += line + "\n"; };
  const params = new URLSearchParams(location.search);
  window.state = { opened: 0, messages: [], errors: [], ping: null, put: null };
  // A cookie of the page's site: 127.0.0.1 on any port (cookies ignore ports), so the stream
  // servers see it exactly when the request carries credentials.
  document.cookie = 'nest_page=1; path=/; SameSite=Lax';
  const src = params.get('src');
  if (src) {
    const es = new EventSource(src, { withCredentials: params.get('cred') === '1' });
    window.es = es;
    es.onopen = () => { window.state.opened += 1; log('open'); };
    es.onmessage = (e) => {
      window.state.messages.push({ id: e.lastEventId, data: JSON.parse(e.data), t: performance.now() });
      log('message id=' + e.lastEventId + ' ' + e.data);
    };
    es.onerror = () => {
      window.state.errors.push({ readyState: es.readyState, t: performance.now() });
      log('error, readyState ' + es.readyState);
    };
  }
  window.ping = (url) => {
    window.state.ping = 'pending';
    fetch(url, { cache: 'no-store' })
      .then((r) => r.text())
      .then((t) => { window.state.ping = t; }, (e) => { window.state.ping = 'error: ' + e; });
  };
  window.put = (url) => {
    window.state.put = 'pending';
    fetch(url, {
      method: 'PUT',
      cache: 'no-store',
      headers: { 'content-type': 'application/json', 'x-custom-req': 'from-the-page' },
      body: JSON.stringify({ hello: 'world', n: 7 }),
    })
      .then(async (r) => {
        window.state.put = {
          status: r.status,
          exposed: r.headers.get('x-exposed'),
          hidden: r.headers.get('x-hidden'),
          body: await r.json(),
        };
      })
      .catch((e) => { window.state.put = { error: String(e) }; });
  };
</script>
</body>
</html>
"#;
