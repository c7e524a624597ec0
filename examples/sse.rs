//! The seed's SSE chapter, in Rust: `/sse` writes `{"hello":"world"}` every second; `/sse2` writes
//! it as `event: myEvent` with ids 1, 2, 3… and `retry: 5000`, continuing after the browser's
//! `Last-Event-ID`; `/` serves a page that opens both `EventSource`s and shows what arrives.
//!
//! The API describes itself: `GET /openapi.json` is its OpenAPI 3.2 document (`/sse2`'s events
//! typed by [`Sse2Event`], `/sse`'s untyped), `GET /docs` shows it.
//!
//! Run with: `cargo run --example sse`, then open the printed URL. `HOST` (default 127.0.0.1) and
//! `PORT` (default 3000) choose the address.
#![allow(clippy::print_stdout, reason = "an example prints its URL")]

use std::time::Duration;

use nest::openapi::{Info, OpenApiRoute};
use nest::prelude::*;
use nest::server::ListenEnv;
use nest::sse::{LastEventId, TypedEvent};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::json;

#[allow(
    clippy::duplicate_mod,
    reason = "a test that includes two examples includes this module twice"
)]
mod support;

/// The data of `/sse2`'s events: the seed's `{ hello: 'world' }`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Hello {
    /// Always `world`.
    pub hello: String,
}

/// The events of `/sse2`.
#[derive(Debug, SseEvents)]
pub enum Sse2Event {
    /// The seed's custom event type.
    MyEvent(Hello),
}

/// The seed's `AppController`.
#[derive(Debug)]
pub struct AppController {
    /// How often each stream writes (the seed's `setInterval(…, 1000)`).
    pub period: Duration,
    /// The `retry:` of `/sse2`'s events (the seed's 5,000 ms).
    pub retry: Duration,
}

#[controller("")] // @Controller('')
impl AppController {
    /// The page that opens both streams.
    #[get("/")]
    async fn index(&self) -> Html<&'static str> {
        Html(PAGE)
    }

    /// `{"hello":"world"}` every second, as unnamed events.
    #[get("/sse")] // @Get('/sse')
    #[sse] // @Sse()
    async fn sse(&self) -> SseBody {
        let (write, body) = get_sse_stream(SseOptions::new());
        let st = tokio::spawn(every(self.period, move || {
            write.write(json!({ "hello": "world" })).is_ok()
        }));
        body.on_cancel(move |_| st.abort()) // clearInterval(st)
    }

    /// A custom event type, ids and a retry hint.
    #[get("/sse2")]
    #[sse]
    async fn sse2(&self, last_event_id: LastEventId) -> TypedSseBody<Sse2Event> {
        let (write, body) = get_typed_sse_stream(SseOptions::new());
        // A hostile or stale `Last-Event-ID` of u64::MAX starts the count over instead of
        // overflowing (a panic in debug, a wrap to 0 in release).
        let mut event_id = last_event_id
            .as_u64()
            .and_then(|id| id.checked_add(1))
            .unwrap_or(1);
        let retry = self.retry;
        let st = tokio::spawn(every(self.period, move || {
            let hello = Hello {
                hello: "world".to_owned(),
            };
            let event = TypedEvent::new(Sse2Event::MyEvent(hello))
                .id(event_id)
                .retry(retry);
            event_id = event_id.checked_add(1).unwrap_or(1);
            write.write(event).is_ok()
        }));
        body.on_cancel(move |_| st.abort())
    }
}

/// Calls `tick` every `period` (first after one period, as `setInterval` does) until it returns false.
async fn every(period: Duration, mut tick: impl FnMut() -> bool + Send) {
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        interval.tick().await;
        if !tick() {
            break;
        }
    }
}

/// The app: the controller, with CORS on as the seed advises for cross-origin `EventSource`, its
/// OpenAPI document at `/openapi.json` and a docs page at `/docs`.
pub fn app(period: Duration) -> NestApp {
    app_with(period, Duration::from_millis(5000))
}

/// As [`app`], with another `retry:` on `/sse2` (tests reconnect without waiting 5 s).
pub fn app_with(period: Duration, retry: Duration) -> NestApp {
    NestApp::new()
        .controller(AppController { period, retry })
        .openapi_info(Info::new("nest SSE example", "0.1.0"))
        .openapi_route(OpenApiRoute::new("/openapi.json").docs("/docs"))
        .layer(CorsLayer::new())
}

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>nest SSE</title>
<style>body{font:14px system-ui;margin:2em}pre{background:#f4f4f4;padding:1em;height:14em;overflow:auto}</style>
</head>
<body>
<h1>nest: Server-Sent Events</h1>
<h2><code>new EventSource('/sse')</code>, <code>onmessage</code></h2>
<pre id="sse"></pre>
<h2><code>new EventSource('/sse2')</code>, <code>addEventListener('myEvent')</code></h2>
<pre id="sse2"></pre>
<button id="close">eventSource.close()</button>
<script>
  const log = (id, line) => { const el = document.getElementById(id); el.textContent += line + "\n"; el.scrollTop = el.scrollHeight; };
  window.received = { sse: [], sse2: [] };
  const sse = new EventSource('/sse');
  sse.onmessage = ({ data }) => { window.received.sse.push(JSON.parse(data)); log('sse', 'New message ' + data); };
  sse.onerror = () => log('sse', 'error, readyState ' + sse.readyState);
  const sse2 = new EventSource('/sse2');
  sse2.onmessage = ({ data }) => log('sse2', 'onmessage (should not happen) ' + data);
  sse2.addEventListener('myEvent', (e) => { window.received.sse2.push({ id: e.lastEventId, data: JSON.parse(e.data) }); log('sse2', 'myEvent id=' + e.lastEventId + ' ' + e.data); });
  sse2.onerror = () => log('sse2', 'error, readyState ' + sse2.readyState + ' (the browser reconnects after retry)');
  document.getElementById('close').onclick = () => { sse.close(); sse2.close(); log('sse', 'closed'); log('sse2', 'closed'); };
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
    let listen = ListenEnv::from_env(3000)?;
    // Built with `--features tls`: HTTPS (HTTP/2 and HTTP/1.1 by ALPN), with the PEM files that
    // TLS_CERT / TLS_KEY name, else with a development certificate made now.
    #[cfg(feature = "tls")]
    if listen.tls_files().is_none() {
        let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
        if !listen.addr().ip().is_unspecified() {
            names.push(listen.addr().ip().to_string());
        }
        let (tls, cert_pem) = nest::server::TlsConfig::self_signed(names)?;
        let cert_file =
            std::env::temp_dir().join(format!("nest-dev-cert-{}.pem", std::process::id()));
        std::fs::write(&cert_file, cert_pem)?;
        let server = app(Duration::from_secs(1))
            .bind_tls(listen.addr(), tls)
            .await?;
        println!("nest SSE example: open {}", server.url());
        println!(
            "development certificate (self-signed, for localhost and this address): {file}\n\
             trust it with `curl --cacert {file} {url}sse`, or accept the browser's warning once",
            file = cert_file.display(),
            url = server.url(),
        );
        server.run_until_signal().await;
        let _ = std::fs::remove_file(cert_file);
        return Ok(());
    }
    let server = app(Duration::from_secs(1)).bind_env(&listen).await?;
    println!("nest SSE example: open {}", server.url());
    server.run_until_signal().await;
    Ok(())
}
