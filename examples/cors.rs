//! CORS setups with nest-cors, each serving a cross-origin `EventSource` stream and a
//! preflighted `fetch` (PUT with JSON):
//!
//! - [`public_api`]: any origin may read, no credentials;
//! - [`spa`]: a credentialed single-page app on one known origin (cookies, `withCredentials`);
//! - [`subdomains`]: any `https://*.example.com` origin, by an anchored regex.
//!
//! Run with: `cargo run --example cors`, then open the printed URL: the page is served from one
//! port and calls the API on another, so every request is cross-origin. `HOST` (default
//! 127.0.0.1) and `PORT` (default 3002; the page is on `PORT + 1`) choose the addresses.
#![allow(clippy::print_stdout, reason = "an example prints its URL")]

use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;
use nest::cors::{AllowOrigin, CorsError, CorsLayer};
use nest::prelude::*;
use nest::server::ListenEnv;
use serde_json::{json, Value};

#[allow(
    clippy::duplicate_mod,
    reason = "a test that includes two examples includes this module twice"
)]
mod support;

/// A small API: a JSON resource and an event stream.
#[derive(Debug)]
pub struct Api;

impl Api {
    async fn item(self: Arc<Self>, Path(id): Path<u32>) -> Json<Value> {
        Json(json!({ "id": id, "name": format!("item {id}") }))
    }

    async fn put_item(
        self: Arc<Self>,
        Path(id): Path<u32>,
        Json(body): Json<Value>,
    ) -> (HeaderMap, Json<Value>) {
        let mut headers = HeaderMap::new();
        headers.insert("x-request-id", http::HeaderValue::from(id));
        headers.insert("x-internal", http::HeaderValue::from_static("not exposed"));
        (headers, Json(json!({ "id": id, "saved": body })))
    }

    async fn events(self: Arc<Self>) -> SseBody {
        let (writer, body) = get_sse_stream(SseOptions::new());
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            for n in 0u64.. {
                tick.tick().await;
                if writer
                    .write(SseEvent::json(&json!({ "n": n })).id(n))
                    .is_err()
                {
                    break;
                }
            }
        });
        body.on_cancel(move |_| task.abort())
    }
}

impl Controller for Api {
    fn prefix(&self) -> &str {
        "/api"
    }

    fn routes(routes: &mut Routes<Self>) {
        routes.get("/items/:id", Self::item);
        routes.put("/items/:id", Self::put_item);
        routes.sse("/events", Self::events);
    }
}

/// A public API: any origin, no credentials (`Access-Control-Allow-Origin: *`).
pub fn public_api() -> NestApp {
    NestApp::new().controller(Api).layer(CorsLayer::new())
}

/// A credentialed SPA on `origin`: cookies and `withCredentials` work from that origin only, and
/// the page may read the `x-request-id` response header.
pub fn spa(origin: &str) -> Result<NestApp, CorsError> {
    let cors = CorsLayer::builder()
        .origin(AllowOrigin::exact(origin))
        .credentials(true)
        .allowed_headers(["content-type", "last-event-id"])
        .exposed_headers(["x-request-id"])
        .max_age(Duration::from_secs(3600))
        .build()?;
    Ok(NestApp::new().controller(Api).layer(cors))
}

/// Any subdomain of example.com over HTTPS (the regex must match the whole origin).
pub fn subdomains() -> Result<NestApp, CorsError> {
    let cors = CorsLayer::builder()
        .origin(AllowOrigin::regex(r"https://[a-z0-9-]+\.example\.com"))
        .build()?;
    Ok(NestApp::new().controller(Api).layer(cors))
}

/// The page, served from another origin than the API.
#[derive(Debug)]
struct Page {
    api: String,
}

impl Controller for Page {
    fn routes(routes: &mut Routes<Self>) {
        routes.get("/", |this: Arc<Self>| async move {
            Html(PAGE.replace("API_ORIGIN", &this.api))
        });
    }
}

const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>nest CORS</title></head>
<body>
<h1>Cross-origin calls to API_ORIGIN</h1>
<pre id="log"></pre>
<script>
  const log = (line) => { document.getElementById('log').textContent += line + "\n"; };
  const source = new EventSource('API_ORIGIN/api/events', { withCredentials: true });
  source.onmessage = (e) => log('event ' + e.lastEventId + ': ' + e.data);
  source.onerror = () => log('EventSource error, readyState ' + source.readyState);
  fetch('API_ORIGIN/api/items/7', { method: 'PUT', credentials: 'include',
      headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'seven' }) })
    .then(async (res) => log('PUT ' + res.status + ' x-request-id=' + res.headers.get('x-request-id')
                             + ' x-internal=' + res.headers.get('x-internal') + ' ' + await res.text()))
    .catch((e) => log('fetch failed: ' + e));
</script>
</body></html>
"#;

#[allow(
    dead_code,
    reason = "tests include this file for the setups and do not call `main`"
)]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    support::init_logging();
    let listen = ListenEnv::from_env(3002)?;
    if listen.tls_files().is_some() {
        return Err("the CORS example serves plain HTTP only: unset TLS_CERT and TLS_KEY".into());
    }
    // The page on the next port: another origin (same host, other port).
    let api_addr = listen.addr();
    let page_port = api_addr
        .port()
        .checked_add(1)
        .filter(|_| api_addr.port() != 0)
        .ok_or("the CORS example needs PORT between 1 and 65534 (its page is on PORT + 1)")?;
    let page_addr = std::net::SocketAddr::new(api_addr.ip(), page_port);
    let page_origin = format!("http://{page_addr}");
    let api = spa(&page_origin)?.bind(api_addr).await?;
    let api_origin = format!("http://{}", api.local_addr());
    let page = NestApp::new()
        .controller(Page {
            api: api_origin.clone(),
        })
        .bind(page_addr)
        .await?;
    println!("nest CORS example: API on {api_origin}, open the page at {page_origin}/");
    let page_handle = page.handle();
    api.run_until_signal().await;
    page_handle.shutdown();
    page.wait().await;
    Ok(())
}
